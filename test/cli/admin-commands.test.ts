/**
 * The admin commands (relationships, quarantine, invite, audit), run in-process through runCli against a
 * real local HTTP server (test/cli/support/fake-admin-api.ts): what each command asks the API, and what it
 * prints of the answer. Every run also checks that the API token appears in no output.
 */
import { X509Certificate } from "node:crypto";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { createTrustBundle, x509AuthorityFromCertificate } from "../../src/spiffe/bundle.js";
import { serializeSpiffeBundle } from "../../src/spiffe/codec.js";
import { serializePem } from "../../src/spiffe/pem.js";
import { createCa, createWebCert, type Issued } from "../support/pki.js";
import {
  createFakeAdminApi,
  type FakeAdminApi,
  invitationToken,
  type ServedApi,
  sampleView,
  serveAdminApi,
} from "./support/fake-admin-api.js";
import { type CliRun, runCapturing } from "./support/run-cli.js";

const TOKEN = "s3cret-admin-token-0123456789";
const NOW = new Date("2025-06-01T00:00:00.000Z");
const TD = "partner.test";
const QUARANTINED_DIGEST = "d".repeat(64);

let api: FakeAdminApi;
let served: ServedApi;
let dir: string;
let partnerCa: Issued;
let stdinText = "";

async function run(args: readonly string[], env: Record<string, string> = {}): Promise<CliRun> {
  const result = await runCapturing(args, {
    readStdin: async () => new TextEncoder().encode(stdinText),
    now: () => NOW,
    env,
  });
  expect(result.stdout).not.toContain(TOKEN);
  expect(result.stderr).not.toContain(TOKEN);
  return result;
}

/** The API options most tests use: the fake's URL and the right token. */
const withApi = (...args: string[]) => [...args, "--api", served.url, "--token", TOKEN];

const lastRequest = () => api.requests.at(-1)!;

function quarantinedView() {
  return sampleView(TD, {
    quarantined: true,
    warnings: ["a fetched bundle is quarantined: accept or discard it"],
    quarantine: {
      digest: QUARANTINED_DIGEST,
      sequence: "13",
      reasons: ["FULL_REPLACEMENT"],
      added: ["x509-svid e".padEnd(20, "e")],
      removed: ["x509-svid b".padEnd(20, "b")],
      quarantined_at: "2025-05-31T22:00:00.000Z",
    },
    preflight: {
      verdict: "warning",
      checked_at: "2025-05-31T00:00:00.000Z",
      code: "ERR_FETCH_TLS_UNTRUSTED",
      hint: "did you mean https_spiffe?",
    },
  });
}

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), "bundlegate-admin-cli-"));
  partnerCa = await createCa({ trustDomain: TD });
  const bundle = createTrustBundle({
    x509Authorities: [x509AuthorityFromCertificate(new X509Certificate(partnerCa.der))],
  });
  await writeFile(path.join(dir, "partner.pem"), serializePem(bundle));
  await writeFile(path.join(dir, "partner.json"), serializeSpiffeBundle(bundle));
  await writeFile(path.join(dir, "web-ca.pem"), partnerCa.pem);
  await writeFile(path.join(dir, "broken.json"), '{"keys": [], "keys": []}');
  await writeFile(
    path.join(dir, "relationship.yaml"),
    [
      `trust_domain: ${TD}`,
      `endpoint_url: https://${TD}/bundle`,
      "profile: https_spiffe",
      `endpoint_spiffe_id: spiffe://${TD}/bundle-server`,
      "bootstrap_bundle_file: partner.json",
      "owner: team-from-file",
      "labels: { env: prod }",
      "max_staleness_seconds: 900",
      "",
    ].join("\n"),
  );
  api = createFakeAdminApi({
    token: TOKEN,
    now: NOW,
    invitation: {
      token: "header.payload.signature",
      expiresAt: "2025-06-02T00:00:00.000Z",
      payload: invitationPayload(),
    },
  });
  served = await serveAdminApi(api.handler);
});

afterAll(async () => {
  await served.close();
  await rm(dir, { recursive: true, force: true });
});

beforeEach(() => {
  api.requests.length = 0;
  api.relationships.clear();
  api.audit.length = 0;
  stdinText = "";
});

function invitationPayload(exp = Math.floor(NOW.getTime() / 1000) + 86_400) {
  return {
    iss: "spiffe://inviter.test/bundlegate",
    iat: Math.floor(NOW.getTime() / 1000) - 60,
    exp,
    jti: "inv-1",
    bundlegate_invitation: {
      version: 1,
      trust_domain: "inviter.test",
      endpoint_url: "https://inviter.test/bundle",
      profile: "https_spiffe",
      endpoint_spiffe_id: "spiffe://inviter.test/bundle-server",
      note: "from the platform team",
      bundle: JSON.parse(serializeSpiffeBundle(createTrustBundle({ x509Authorities: [] }))),
    },
  };
}

describe("relationships list", () => {
  it("sends the filters and the token, and prints an aligned table", async () => {
    api.relationships.set(TD, sampleView(TD, { owner: "team-a", sequence: "12" }));
    api.relationships.set(
      "other.test",
      sampleView("other.test", {
        state: "pending",
        owner: "team-bb",
        quarantined: true,
        staleness: { state: "stale", age_seconds: 7_380 },
        last_error_code: "ERR_FETCH_TIMEOUT",
      }),
    );
    const { code, stdout, stderr } = await run(
      withApi(
        "relationships",
        "list",
        "--owner",
        "team-a",
        "--label",
        "env=prod",
        "--label",
        "tier=1",
        "--staleness",
        "stale",
      ),
    );
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(lastRequest()).toMatchObject({
      method: "GET",
      path: "/v1/relationships",
      query: [
        ["owner", "team-a"],
        ["label", "env=prod"],
        ["label", "tier=1"],
        ["staleness", "stale"],
      ],
      authorization: `Bearer ${TOKEN}`,
      body: undefined,
    });
    const lines = stdout.split("\n");
    expect(lines[0]).toMatch(/^TRUST DOMAIN +STATE +OWNER +PROFILE +STALENESS +AGE +SEQUENCE +LAST ERROR$/);
    expect(lines[1]).toMatch(/^partner\.test +active +team-a +https_spiffe +fresh +2m5s +12 +-$/);
    expect(lines[2]).toMatch(
      /^other\.test +pending \(quarantine\) +team-bb +https_spiffe +stale +2h3m +12 +ERR_FETCH_TIMEOUT$/,
    );
    // Aligned: each cell starts where its header does, after at least two blanks.
    for (const column of ["STATE", "OWNER", "PROFILE", "STALENESS", "AGE", "SEQUENCE", "LAST ERROR"]) {
      const at = lines[0]!.indexOf(column);
      for (const row of [lines[1]!, lines[2]!]) {
        expect(row.slice(at - 2, at)).toBe("  ");
        expect(row[at]).not.toBe(" ");
      }
    }
    expect(stdout).toContain("2 relationships, 1 pending approval, 1 quarantined, 1 stale");
  });

  it("--state with a value the API does not know is a usage error, and nothing is sent", async () => {
    const { code, stderr } = await run(withApi("relationships", "list", "--state", "gone"));
    expect(code).toBe(2);
    expect(stderr).toMatch(/--state/);
    expect(api.requests).toHaveLength(0);
  });

  it("--json prints the API's answer as it is, a 64-bit sequence exactly", async () => {
    api.relationships.set(TD, sampleView(TD, { sequence: 18_446_744_073_709_551_615n }));
    const { code, stdout } = await run(withApi("relationships", "list", "--json"));
    expect(code).toBe(0);
    expect(stdout).toContain('"sequence": 18446744073709551615');
    expect(JSON.parse(stdout)).toMatchObject({ relationships: [{ trust_domain: TD, state: "active" }] });
    expect(stdout.startsWith("{\n  ")).toBe(true);
  });

  it("an empty list", async () => {
    const { code, stdout } = await run(withApi("relationships", "list"));
    expect(code).toBe(0);
    expect(stdout).toBe("no relationships\n");
  });
});

describe("relationships show", () => {
  it("prints config, staleness, authorities with expiries, warnings, quarantine with diff, preflight with hint", async () => {
    api.relationships.set(TD, quarantinedView());
    const { code, stdout } = await run(withApi("relationships", "show", TD));
    expect(code).toBe(0);
    expect(lastRequest()).toMatchObject({ method: "GET", path: `/v1/relationships/${TD}` });
    expect(stdout).toMatch(/^relationship partner\.test$/m);
    expect(stdout).toMatch(/^ {2}state: +active \(a bundle is in quarantine\)$/m);
    expect(stdout).toMatch(/^ {2}endpoint id: +spiffe:\/\/partner\.test\/bundle-server$/m);
    expect(stdout).toMatch(/^staleness$/m);
    expect(stdout).toMatch(/^ {2}age: +2m5s$/m);
    expect(stdout).toMatch(/^ {2}thresholds: +stale after 15m, critical after 25m$/m);
    expect(stdout).toMatch(/^ {2}last success: +2025-05-31T23:57:55\.000Z \(2m5s ago\)$/m);
    expect(stdout).toMatch(/^ {4}x509-svid +b{64} +not after 2026-06-01T00:00:00\.000Z \(in 365d\)$/m);
    expect(stdout).toMatch(/^ {4}jwt-svid +kid-1 +no expiry$/m);
    expect(stdout).toMatch(/^warnings\n {2}a fetched bundle is quarantined: accept or discard it$/m);
    expect(stdout).toMatch(/^quarantine /m);
    expect(stdout).toMatch(new RegExp(`^ {2}digest: +${QUARANTINED_DIGEST}$`, "m"));
    expect(stdout).toMatch(/^ {4}FULL_REPLACEMENT$/m);
    expect(stdout).toMatch(/^ {2}diff against the bundle served: 1 added, 1 removed$/m);
    expect(stdout).toMatch(/^ {4}\+ x509-svid e+$/m);
    expect(stdout).toMatch(/^ {4}- x509-svid b+$/m);
    expect(stdout).toContain(`bundlegate quarantine accept ${TD} --digest ${QUARANTINED_DIGEST}`);
    expect(stdout).toMatch(/^preflight\n {2}verdict: +warning$/m);
    expect(stdout).toMatch(/^ {2}code: +ERR_FETCH_TLS_UNTRUSTED$/m);
    expect(stdout).toMatch(/^ {2}hint: +did you mean https_spiffe\?$/m);
  });

  it("an unknown relationship: the API's 404 problem, exit 1", async () => {
    const { code, stdout, stderr } = await run(withApi("relationships", "show", "missing.test"));
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(stderr).toBe("error: no relationship for trust domain missing.test (ERR_RELATIONSHIP_NOT_FOUND)\n");
  });

  it("a trust domain that is not one is a usage error, and nothing is sent", async () => {
    const { code, stderr } = await run(withApi("relationships", "show", "spiffe://partner.test"));
    expect(code).toBe(2);
    expect(stderr).toMatch(/^TRUST_DOMAIN: ERR_TRUST_DOMAIN_IS_SPIFFE_ID: /m);
    expect(api.requests).toHaveLength(0);
  });
});

describe("relationships create", () => {
  it("from flags: a PEM bootstrap bundle is sent as the SPIFFE JSON object", async () => {
    const { code, stdout, stderr } = await run(
      withApi(
        "relationships",
        "create",
        "--trust-domain",
        TD,
        "--endpoint-url",
        `https://${TD}/bundle`,
        "--profile",
        "https_spiffe",
        "--endpoint-spiffe-id",
        `spiffe://${TD}/bundle-server`,
        "--bootstrap-bundle",
        path.join(dir, "partner.pem"),
        "--owner",
        "team-a",
        "--contact",
        "ops@partner.test",
        "--label",
        "env=prod",
        "--label",
        "tier=1",
        "--review-by",
        "2025-12-01",
      ),
    );
    expect(stderr).toBe("");
    expect(code).toBe(0);
    const request = lastRequest();
    expect(request).toMatchObject({
      method: "POST",
      path: "/v1/relationships",
      contentType: "application/json",
      authorization: `Bearer ${TOKEN}`,
    });
    expect(request.body).toEqual({
      trust_domain: TD,
      endpoint_url: `https://${TD}/bundle`,
      profile: "https_spiffe",
      endpoint_spiffe_id: `spiffe://${TD}/bundle-server`,
      owner: "team-a",
      contact: "ops@partner.test",
      review_by: "2025-12-01",
      bootstrap_bundle: JSON.parse(await readFile(path.join(dir, "partner.json"), "utf8")),
      labels: { env: "prod", tier: "1" },
    });
    expect(stdout).toMatch(/^created partner\.test\n\nrelationship partner\.test\n {2}state: +pending$/m);
    expect(stdout).toContain(`pending approval: bundlegate relationships approve ${TD}`);
  });

  it("from a YAML --file: bootstrap_bundle_file is read next to it; flags override and labels add up", async () => {
    const { code } = await run(
      withApi(
        "relationships",
        "create",
        "--file",
        path.join(dir, "relationship.yaml"),
        "--owner",
        "team-flag",
        "--label",
        "tier=1",
        "--ca-file",
        path.join(dir, "web-ca.pem"),
      ),
    );
    expect(code).toBe(0);
    expect(lastRequest().body).toEqual({
      trust_domain: TD,
      endpoint_url: `https://${TD}/bundle`,
      profile: "https_spiffe",
      endpoint_spiffe_id: `spiffe://${TD}/bundle-server`,
      bootstrap_bundle: JSON.parse(await readFile(path.join(dir, "partner.json"), "utf8")),
      owner: "team-flag",
      labels: { env: "prod", tier: "1" },
      max_staleness_seconds: 900,
      ca_pem: partnerCa.pem,
    });
  });

  it("the API's validation problem: the detail, the code and each field", async () => {
    const { code, stdout, stderr } = await run(
      withApi(
        "relationships",
        "create",
        "--trust-domain",
        TD,
        "--endpoint-url",
        "http://x",
        "--profile",
        "https_web",
        "--owner",
        "a",
      ),
    );
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(stderr).toBe(
      "error: the request has invalid fields (ERR_API_VALIDATION)\n  endpoint_url: must be an https URL\n",
    );
  });

  it.each<[string, string[], RegExp]>([
    [
      "no fields at all",
      [],
      /^--trust-domain: ERR_CLI_USAGE: required: --trust-domain, --endpoint-url, --profile, --owner/m,
    ],
    [
      "a bad --label",
      ["--file", "relationship.yaml", "--label", "novalue"],
      /^--label: ERR_CLI_USAGE: "novalue" is not key=value/m,
    ],
    [
      "an invalid bootstrap bundle",
      ["--file", "relationship.yaml", "--bootstrap-bundle", "broken.json"],
      /^--bootstrap-bundle: ERR_BUNDLE_DUPLICATE_MEMBER: /m,
    ],
    [
      "a missing --file",
      ["--file", "nothing.yaml"],
      /^--file: ERR_FILE_UNREADABLE: cannot read .*nothing\.yaml: ENOENT/m,
    ],
    ["an unknown --profile", ["--file", "relationship.yaml", "--profile", "https"], /--profile/],
  ])("usage error, nothing sent: %s", async (_name, args, message) => {
    const inDir = args.map((arg) => (/\.(yaml|json|pem)$/.test(arg) ? path.join(dir, arg) : arg));
    const { code, stderr } = await run(withApi("relationships", "create", ...inDir));
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(api.requests).toHaveLength(0);
  });

  it("a YAML file that is not a mapping", async () => {
    await writeFile(path.join(dir, "list.yaml"), "- a\n- b\n");
    const { code, stderr } = await run(withApi("relationships", "create", "--file", path.join(dir, "list.yaml")));
    expect(code).toBe(2);
    expect(stderr).toMatch(/^--file: ERR_CLI_DOCUMENT_INVALID: .*must be a mapping/m);
  });
});

describe("relationships lifecycle actions", () => {
  it("approve, suspend with a reason, resume, reset-sequence: one POST each", async () => {
    api.relationships.set(TD, sampleView(TD, { state: "pending" }));
    const approve = await run(withApi("relationships", "approve", TD));
    expect(approve.code).toBe(0);
    expect(lastRequest()).toMatchObject({ method: "POST", path: `/v1/relationships/${TD}/approve`, body: undefined });
    expect(approve.stdout).toBe(`${TD}: approved; state active, revision 2, serving sequence 12\n`);

    const suspend = await run(withApi("relationships", "suspend", TD, "--reason", "partner incident"));
    expect(suspend.code).toBe(0);
    expect(lastRequest()).toMatchObject({
      path: `/v1/relationships/${TD}/suspend`,
      body: { reason: "partner incident" },
    });
    expect(suspend.stdout).toMatch(/^partner\.test: suspended; state suspended, revision 3/);

    const resume = await run(withApi("relationships", "resume", TD));
    expect(resume.code).toBe(0);
    expect(lastRequest().path).toBe(`/v1/relationships/${TD}/resume`);

    const reset = await run(withApi("relationships", "reset-sequence", TD));
    expect(reset.code).toBe(0);
    expect(lastRequest()).toMatchObject({ method: "POST", path: `/v1/relationships/${TD}/sequence/reset` });
    expect(reset.stdout).toMatch(/^partner\.test: sequence reset; state active, revision 5/);
  });

  it("approving an active relationship: the API's 409, exit 1", async () => {
    api.relationships.set(TD, sampleView(TD));
    const { code, stderr } = await run(withApi("relationships", "approve", TD));
    expect(code).toBe(1);
    expect(stderr).toBe(`error: cannot approve ${TD}: it is active (ERR_RELATIONSHIP_STATE)\n`);
  });

  it("refresh prints the outcome", async () => {
    api.relationships.set(TD, sampleView(TD));
    const { code, stdout } = await run(withApi("relationships", "refresh", TD));
    expect(code).toBe(0);
    expect(lastRequest()).toMatchObject({ method: "POST", path: `/v1/relationships/${TD}/refresh` });
    expect(stdout).toBe(
      `${TD}: refresh: accepted; serving sequence 13, digest ${"c".repeat(64)}\n${TD}: state active, staleness fresh\n`,
    );
  });

  it("a refresh whose fetch failed: exit 1 with the fetch's code", async () => {
    api.relationships.set(TD, sampleView(TD));
    api.respondOnce(
      200,
      JSON.stringify({
        outcome: { result: "ERR_FETCH_CONNECT", error_code: "ERR_FETCH_CONNECT" },
        relationship: sampleView(TD, { last_error_code: "ERR_FETCH_CONNECT" }),
      }),
    );
    const { code, stdout, stderr } = await run(withApi("relationships", "refresh", TD));
    expect(code).toBe(1);
    expect(stdout).toMatch(/^partner\.test: refresh: ERR_FETCH_CONNECT$/m);
    expect(stderr).toBe(`error: the refresh of ${TD} failed (ERR_FETCH_CONNECT)\n`);
  });

  it("preflight prints the verdict and hint", async () => {
    api.relationships.set(TD, sampleView(TD));
    const { code, stdout } = await run(withApi("relationships", "preflight", TD));
    expect(code).toBe(0);
    expect(stdout).toMatch(
      /^partner\.test: preflight\n {2}verdict: +warning\n {2}checked at: +2025-06-01T00:00:00\.000Z \(now\)\n {2}code: +WARN_X\n {2}hint: +look here\n$/,
    );
  });

  it("a preflight that fails: exit 1 with its code", async () => {
    api.relationships.set(TD, sampleView(TD));
    api.respondOnce(
      200,
      JSON.stringify({ preflight: { verdict: "fail", code: "ERR_FETCH_CONNECT", hint: "check the port" } }),
    );
    const { code, stdout, stderr } = await run(withApi("relationships", "preflight", TD));
    expect(code).toBe(1);
    expect(stdout).toMatch(/^ {2}hint: +check the port$/m);
    expect(stderr).toBe(`error: the preflight of ${TD} failed (ERR_FETCH_CONNECT)\n`);
  });

  it("delete needs --yes; then one DELETE", async () => {
    api.relationships.set(TD, sampleView(TD));
    const refused = await run(withApi("relationships", "delete", TD));
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/^--yes: ERR_CLI_CONFIRMATION_REQUIRED: /m);
    expect(api.requests).toHaveLength(0);

    const { code, stdout } = await run(withApi("relationships", "delete", TD, "--yes"));
    expect(code).toBe(0);
    expect(lastRequest()).toMatchObject({ method: "DELETE", path: `/v1/relationships/${TD}` });
    expect(stdout).toBe(`deleted ${TD}\n`);
    expect(api.relationships.has(TD)).toBe(false);
  });

  it("update sends a merge patch with If-Match; --unset sends null", async () => {
    api.relationships.set(TD, sampleView(TD, { revision: 4, contact: "old@partner.test" }));
    const { code, stdout } = await run(
      withApi("relationships", "update", TD, "--owner", "team-b", "--unset", "contact", "--revision", "4"),
    );
    expect(code).toBe(0);
    expect(lastRequest()).toMatchObject({
      method: "PATCH",
      path: `/v1/relationships/${TD}`,
      ifMatch: '"4"',
      body: { owner: "team-b", contact: null },
    });
    expect(stdout).toMatch(/^partner\.test: updated; state active, revision 5/);

    const stale = await run(withApi("relationships", "update", TD, "--owner", "team-c", "--revision", "4"));
    expect(stale.code).toBe(1);
    expect(stale.stderr).toMatch(/\(ERR_RELATIONSHIP_CONFLICT\)$/m);
  });
});

describe("quarantine", () => {
  beforeEach(() => {
    api.relationships.set(TD, quarantinedView());
  });

  it("accept without --digest or --yes shows what is held, and accepts nothing", async () => {
    const { code, stdout, stderr } = await run(withApi("quarantine", "accept", TD));
    expect(code).toBe(2);
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual([`GET /v1/relationships/${TD}`]);
    expect(stdout).toMatch(new RegExp(`^ {2}digest: +${QUARANTINED_DIGEST}$`, "m"));
    expect(stdout).toMatch(/^ {4}\+ x509-svid e+$/m);
    expect(stderr).toContain(`pass --digest ${QUARANTINED_DIGEST} to accept exactly this bundle`);
    expect(stderr).toContain("(ERR_CLI_CONFIRMATION_REQUIRED)");
  });

  it("accept --yes reads the digest first and accepts exactly that one", async () => {
    const { code, stdout } = await run(withApi("quarantine", "accept", TD, "--yes"));
    expect(code).toBe(0);
    expect(api.requests.map((r) => `${r.method} ${r.path}`)).toEqual([
      `GET /v1/relationships/${TD}`,
      `POST /v1/relationships/${TD}/quarantine/accept`,
    ]);
    expect(lastRequest().body).toEqual({ digest: QUARANTINED_DIGEST });
    expect(stdout).toContain(`in quarantine for ${TD}`);
    expect(stdout).toMatch(
      new RegExp(
        `^${TD.replace(".", "\\.")}: accepted ${QUARANTINED_DIGEST}; state active, revision 2, serving sequence 13$`,
        "m",
      ),
    );
  });

  it("accept --digest (with a sha256: prefix) sends that digest without reading first", async () => {
    const { code } = await run(withApi("quarantine", "accept", TD, "--digest", `sha256:${QUARANTINED_DIGEST}`));
    expect(code).toBe(0);
    expect(api.requests).toHaveLength(1);
    expect(lastRequest()).toMatchObject({
      method: "POST",
      path: `/v1/relationships/${TD}/quarantine/accept`,
      body: { digest: QUARANTINED_DIGEST },
    });
  });

  it("accept with a digest that is no longer the one held: the API refuses, exit 1", async () => {
    const { code, stderr } = await run(withApi("quarantine", "accept", TD, "--digest", "f".repeat(64)));
    expect(code).toBe(1);
    expect(stderr).toMatch(/\(ERR_QUARANTINE_MISMATCH\)$/m);
  });

  it("discard without --digest uses the one held, and needs no --yes", async () => {
    const { code, stdout } = await run(withApi("quarantine", "discard", TD));
    expect(code).toBe(0);
    expect(lastRequest()).toMatchObject({
      path: `/v1/relationships/${TD}/quarantine/discard`,
      body: { digest: QUARANTINED_DIGEST },
    });
    expect(stdout).toMatch(/: discarded d+; state active, revision 2, serving sequence 12$/m);
  });

  it("nothing in quarantine: exit 1 with a code", async () => {
    api.relationships.set(TD, sampleView(TD));
    const { code, stderr } = await run(withApi("quarantine", "discard", TD));
    expect(code).toBe(1);
    expect(stderr).toBe(`error: no bundle of ${TD} is in quarantine (ERR_CLI_NOTHING_QUARANTINED)\n`);
    expect(api.requests).toHaveLength(1);
  });

  it("--json: stdout is the API's answer alone; what was looked at goes to stderr", async () => {
    const { code, stdout, stderr } = await run(withApi("quarantine", "accept", TD, "--yes", "--json"));
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ relationship: { trust_domain: TD, quarantined: false } });
    expect(stderr).toContain(`in quarantine for ${TD}`);
  });
});

describe("invite", () => {
  it("create: the token alone on stdout, what it says on stderr", async () => {
    const { code, stdout, stderr } = await run(withApi("invite", "create", "--ttl", "3600"));
    expect(code).toBe(0);
    expect(lastRequest()).toMatchObject({ method: "POST", path: "/v1/invitations", body: { ttl_seconds: 3600 } });
    expect(stdout).toBe("header.payload.signature\n");
    expect(stderr).toMatch(/^ {2}trust domain: +inviter\.test$/m);
    expect(stderr).toContain("bundlegate invite accept TOKEN --owner TEAM");
  });

  it("accept: the token and the relationship fields, from standard input", async () => {
    stdinText = "  the.invitation.token\n";
    const { code, stdout } = await run(
      withApi("invite", "accept", "-", "--owner", "team-a", "--label", "env=prod", "--review-by", "2025-12-01"),
    );
    expect(code).toBe(0);
    expect(lastRequest()).toMatchObject({
      method: "POST",
      path: "/v1/invitations/accept",
      body: { token: "the.invitation.token", owner: "team-a", labels: { env: "prod" }, review_by: "2025-12-01" },
    });
    expect(stdout).toMatch(/^created inviter\.test from the invitation\n/);
  });

  it("accept without --owner is a usage error", async () => {
    const { code } = await run(withApi("invite", "accept", "t.o.k"));
    expect(code).toBe(2);
    expect(api.requests).toHaveLength(0);
  });

  it("show decodes locally, says it is not verified, and inspects the bundle inside", async () => {
    const token = invitationToken(invitationPayload());
    // An API that cannot be reached: show must not need it.
    const { code, stdout, stderr } = await run(["invite", "show", token], { BUNDLEGATE_API_URL: "http://127.0.0.1:9" });
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(api.requests).toHaveLength(0);
    expect(stdout).toMatch(/^invitation \(decoded locally: the signature is NOT verified/);
    expect(stdout).toMatch(/^ {2}issuer: +spiffe:\/\/inviter\.test\/bundlegate$/m);
    expect(stdout).toMatch(/^ {2}note: +from the platform team$/m);
    expect(stdout).toMatch(/^ {2}expires at: +2025-06-02T00:00:00\.000Z \(in 1d\)$/m);
    expect(stdout).toMatch(/^ {2}signed with: +ES256, by the X509-SVID in x5c \(1 certificate\)$/m);
    expect(stdout).toMatch(/^bundle inside\n {2}bundle: +accepted, NOT usable$/m);
  });

  it("show --json keeps numbers exact", async () => {
    const payload = invitationPayload();
    payload.bundlegate_invitation.bundle = { keys: [], spiffe_sequence: 18_446_744_073_709_551_615n } as never;
    const { code, stdout } = await run(["invite", "show", invitationToken(payload), "--json"]);
    expect(code).toBe(0);
    expect(stdout).toContain('"spiffe_sequence": 18446744073709551615');
    expect(JSON.parse(stdout)).toMatchObject({ verified: false, expired: false, header: { alg: "ES256" } });
  });

  it("show of an expired or malformed token: exit 1 with a code", async () => {
    const expired = await run(["invite", "show", invitationToken(invitationPayload(1_000))]);
    expect(expired.code).toBe(1);
    expect(expired.stdout).toMatch(/^ {2}expires at: .*EXPIRED$/m);
    expect(expired.stderr).toMatch(/\(ERR_INVITATION_EXPIRED\)$/m);

    const malformed = await run(["invite", "show", "not-a-token"]);
    expect(malformed.code).toBe(1);
    expect(malformed.stderr).toMatch(/\(ERR_INVITATION_MALFORMED\)$/m);
  });
});

describe("audit list", () => {
  it("sends the filters, an age turned into a time, and prints the page with the next cursor", async () => {
    api.audit.push({
      id: "e-2",
      at: "2025-05-31T23:00:00.000Z",
      actor: "token:ops",
      action: "relationship.approve",
      trust_domain: TD,
      details: { reason: "ok" },
    });
    const { code, stdout } = await run(
      withApi(
        "audit",
        "list",
        "--trust-domain",
        TD,
        "--action",
        "relationship.approve",
        "--since",
        "7d",
        "--limit",
        "1",
      ),
    );
    expect(code).toBe(0);
    expect(lastRequest()).toMatchObject({
      method: "GET",
      path: "/v1/audit",
      query: [
        ["trust_domain", TD],
        ["action", "relationship.approve"],
        ["since", "2025-05-25T00:00:00.000Z"],
        ["limit", "1"],
      ],
    });
    expect(stdout).toMatch(/^AT +AGO +ACTOR +ACTION +TRUST DOMAIN +DETAILS$/m);
    expect(stdout).toMatch(
      /^2025-05-31T23:00:00\.000Z +1h +token:ops +relationship\.approve +partner\.test +reason=ok$/m,
    );
    expect(stdout).toContain("more: add --before older-than-this for the next page");
  });

  it("a --since that is no time is a usage error", async () => {
    const { code, stderr } = await run(withApi("audit", "list", "--since", "yesterday"));
    expect(code).toBe(2);
    expect(stderr).toMatch(/^--since: ERR_CLI_USAGE: /m);
    expect(api.requests).toHaveLength(0);
  });
});

describe("talking to the API", () => {
  it("takes the URL and token from the environment; flags win over it", async () => {
    api.relationships.set(TD, sampleView(TD));
    const fromEnv = await run(["relationships", "show", TD], {
      BUNDLEGATE_API_URL: served.url,
      BUNDLEGATE_API_TOKEN: TOKEN,
    });
    expect(fromEnv.code).toBe(0);
    expect(lastRequest().authorization).toBe(`Bearer ${TOKEN}`);

    const overridden = await run(["relationships", "show", TD, "--api", served.url, "--token", "other-token-value"], {
      BUNDLEGATE_API_URL: "http://127.0.0.1:9",
      BUNDLEGATE_API_TOKEN: TOKEN,
    });
    expect(overridden.code).toBe(1);
    expect(lastRequest().authorization).toBe("Bearer other-token-value");
    expect(overridden.stderr).toMatch(/\(ERR_ADMIN_UNAUTHENTICATED\)$/m);
  });

  it("401 without a token: the problem and a hint", async () => {
    const { code, stderr } = await run(["relationships", "list", "--api", served.url]);
    expect(code).toBe(1);
    expect(lastRequest().authorization).toBeUndefined();
    expect(stderr).toBe(
      "error: a valid bearer token is required (ERR_ADMIN_UNAUTHENTICATED)\n" +
        "hint: no API token was given: pass --token or set BUNDLEGATE_API_TOKEN\n",
    );
  });

  it("the token is never printed, even when a server echoes it", async () => {
    api.respondOnce(
      403,
      JSON.stringify({ status: 403, code: "ERR_ADMIN_FORBIDDEN", detail: `token ${TOKEN} lacks a scope` }),
      "application/problem+json",
    );
    const { code, stderr } = await run(withApi("relationships", "list"));
    expect(code).toBe(1);
    expect(stderr).toBe("error: token [redacted] lacks a scope (ERR_ADMIN_FORBIDDEN)\n");
  });

  it("--json on failure: the API's problem on stdout, the message on stderr", async () => {
    const { code, stdout, stderr } = await run(withApi("relationships", "show", "missing.test", "--json"));
    expect(code).toBe(1);
    expect(JSON.parse(stdout)).toEqual({
      type: "urn:bundlegate:problem:ERR_RELATIONSHIP_NOT_FOUND",
      title: "Error",
      status: 404,
      detail: "no relationship for trust domain missing.test",
      code: "ERR_RELATIONSHIP_NOT_FOUND",
    });
    expect(stderr).toMatch(/\(ERR_RELATIONSHIP_NOT_FOUND\)$/m);

    const closed = await serveAdminApi(api.handler);
    await closed.close();
    const unreachable = await run(["relationships", "list", "--json", "--api", closed.url, "--token", TOKEN]);
    expect(unreachable.code).toBe(1);
    expect(JSON.parse(unreachable.stdout)).toMatchObject({ code: "ERR_CLI_API_UNREACHABLE" });
  });

  it("an error without problem+json: the status, exit 1", async () => {
    api.respondOnce(502, "<html>bad gateway</html>", "text/html");
    const { code, stderr } = await run(withApi("relationships", "list"));
    expect(code).toBe(1);
    expect(stderr).toBe(
      `error: GET ${served.url}/v1/relationships answered HTTP 502 Bad Gateway (ERR_CLI_API_STATUS)\n`,
    );
  });

  it("a 200 that is not JSON: not the admin API", async () => {
    api.respondOnce(200, "<html>hello</html>", "text/html");
    const { code, stderr } = await run(withApi("relationships", "list"));
    expect(code).toBe(1);
    expect(stderr).toMatch(/answered 200 with a body that is not JSON \(text\/html\).*\(ERR_CLI_API_BAD_RESPONSE\)$/m);
  });

  it("connection refused: ERR_CLI_API_UNREACHABLE with the URL", async () => {
    const closed = await serveAdminApi(api.handler);
    await closed.close();
    const { code, stdout, stderr } = await run(["relationships", "list", "--api", closed.url, "--token", TOKEN]);
    expect(code).toBe(1);
    expect(stdout).toBe("");
    expect(stderr).toBe(
      `error: cannot reach the admin API at ${closed.url}/v1/relationships: ECONNREFUSED (ERR_CLI_API_UNREACHABLE)\n`,
    );
  });

  it("no answer within --timeout: ERR_CLI_API_UNREACHABLE", async () => {
    api.hangOnce();
    const { code, stderr } = await run(withApi("relationships", "list", "--timeout", "0.2"));
    expect(code).toBe(1);
    expect(stderr).toBe(
      `error: no answer from the admin API at ${served.url}/v1/relationships within 0.2s (ERR_CLI_API_UNREACHABLE)\n`,
    );
  });

  it.each<[string, string[], RegExp]>([
    [
      "a URL with a password",
      ["--api", "http://admin:hunter2@127.0.0.1:1"],
      /^--api: ERR_CLI_API_URL: must not hold a user name or password/m,
    ],
    ["a URL that is not http", ["--api", "ftp://127.0.0.1"], /^--api: ERR_CLI_API_URL: /m],
    ["a bad --timeout", ["--api", "http://127.0.0.1:1", "--timeout", "0"], /--timeout/],
  ])("usage error: %s", async (_name, args, message) => {
    const { code, stderr } = await run(["relationships", "list", ...args]);
    expect(code).toBe(2);
    expect(stderr).toMatch(message);
    expect(stderr).not.toContain("hunter2");
  });

  describe("over https", () => {
    let tlsApi: ServedApi;
    let caFile: string;

    beforeAll(async () => {
      const ca = await createCa({ trustDomain: "api.test", withSpiffeUri: false });
      const leaf = await createWebCert({ issuer: ca, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
      tlsApi = await serveAdminApi(api.handler, { cert: leaf.pem, key: leaf.keyPem });
      caFile = path.join(dir, "api-ca.pem");
      await writeFile(caFile, ca.pem);
    });
    afterAll(() => tlsApi.close());

    it("--api-ca-file (or BUNDLEGATE_API_CA_FILE) trusts the API's CA", async () => {
      const flag = await run(["relationships", "list", "--api", tlsApi.url, "--token", TOKEN, "--api-ca-file", caFile]);
      expect(flag.code).toBe(0);
      const env = await run(["relationships", "list"], {
        BUNDLEGATE_API_URL: tlsApi.url,
        BUNDLEGATE_API_TOKEN: TOKEN,
        BUNDLEGATE_API_CA_FILE: caFile,
      });
      expect(env.code).toBe(0);
      expect(env.stdout).toBe("no relationships\n");
    });

    it("without it the certificate is not trusted: ERR_CLI_API_TLS", async () => {
      const { code, stderr } = await run(["relationships", "list", "--api", tlsApi.url, "--token", TOKEN]);
      expect(code).toBe(1);
      expect(stderr).toMatch(
        /^error: TLS with the admin API at https:\/\/127\.0\.0\.1:\d+\/v1\/relationships failed: .*\(ERR_CLI_API_TLS\)$/m,
      );
    });
  });
});
