/**
 * `bundlegate bundle inspect`: run in-process through runCli with a fake CliIo (files from a Map, a fixed
 * clock), plus one run of the real entry point in a child process to prove the exit status is wired.
 */
import { execFile } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { VERSION } from "../../src/cli/version.js";
import { parseSpiffeBundle } from "../../src/spiffe/codec.js";
import { bundleDigest } from "../../src/spiffe/digest.js";
import { parsePemBundle } from "../../src/spiffe/pem.js";
import { parseBundle } from "../../src/spiffe/read.js";
import { bundleDoc } from "../support/bundle-docs.js";
import { derToBase64, jwtEntry, x509Entry } from "../support/jwk-entries.js";
import { createCa, createJwtKey, createNonCaCert, type Issued, type JsonWebKey } from "../support/pki.js";
import { type CliRun, memoryFiles, runCapturing } from "./support/run-cli.js";

/** A clock far from the machine's: certificates valid only around it prove the command uses io.now(). */
const NOW = new Date("2001-03-01T00:00:00.000Z");
const DAY = 24 * 60 * 60 * 1000;
const at = (offsetMs: number) => new Date(NOW.getTime() + offsetMs);

let root: Issued;
let rsaRoot: Issued;
let expiredCa: Issued;
let otherDomainCa: Issued;
let nonCa: Issued;
let jwtKey: JsonWebKey;
let otherJwtKey: JsonWebKey;
const files = new Map<string, string | Uint8Array>();

beforeAll(async () => {
  const valid = { notBefore: at(-DAY), notAfter: at(30 * DAY) };
  [root, rsaRoot, expiredCa, otherDomainCa, nonCa] = await Promise.all([
    createCa({ trustDomain: "example.org", ...valid }),
    createCa({ trustDomain: "example.org", keyAlg: "RSA-2048", ...valid }),
    createCa({ trustDomain: "example.org", notBefore: at(-30 * DAY), notAfter: at(-DAY) }),
    createCa({ trustDomain: "other.org", ...valid }),
    createNonCaCert({ notBefore: at(-DAY), notAfter: at(DAY) }),
  ]);
  jwtKey = (await createJwtKey()).publicJwk;
  otherJwtKey = (await createJwtKey("EC-P384")).publicJwk;

  files.set(
    "good.json",
    // JSON.stringify cannot write a bigint; the sequence goes in as text, past 2^53.
    bundleDoc([x509Entry(root), jwtEntry("jwt-1", jwtKey)], { spiffe_refresh_hint: 300 }).replace(
      /}$/,
      ',"spiffe_sequence":18446744073709551615}',
    ),
  );
  files.set("good.pem", `# roots of example.org\n${root.pem}${rsaRoot.pem}`);
  files.set("empty.json", '{"keys":[]}');
  files.set("null-keys.json", '{"keys":null}');
  files.set("expired.json", bundleDoc([x509Entry(expiredCa)]));
  files.set("expired.pem", expiredCa.pem);
  files.set("non-ca.pem", nonCa.pem);
  files.set("other-domain.json", bundleDoc([x509Entry(otherDomainCa)]));
  files.set("bytes.pem", new TextEncoder().encode(root.pem));
});

function run(args: readonly string[], stdin?: string): Promise<CliRun> {
  return runCapturing(["bundle", "inspect", ...args], {
    readFile: memoryFiles(files),
    readStdin: async () => {
      if (stdin === undefined) throw new Error("stdin was not expected to be read");
      return new TextEncoder().encode(stdin);
    },
    now: () => NOW,
  });
}

const inspectJson = async (...args: string[]) => {
  const result = await run([...args, "--json"]);
  return { ...result, summary: JSON.parse(result.stdout) as Record<string, unknown> & { authorities: unknown[] } };
};
const digestOf = (name: string) => bundleDigest(parseBundle(files.get(name)!).bundle);

describe("accepted and usable: exit 0", () => {
  it("a good SPIFFE JSON bundle prints its summary", async () => {
    const { code, stdout, stderr } = await run(["good.json"]);
    expect(code).toBe(0);
    expect(stderr).toBe("");
    expect(stdout).toContain("accepted, usable");
    expect(stdout).toMatch(/^format:\s+spiffe$/m);
    expect(stdout).toContain(`sha256:${digestOf("good.json")}`);
    expect(stdout).toMatch(/^sequence:\s+18446744073709551615$/m);
    expect(stdout).toMatch(/^refresh hint:\s+300s$/m);
    expect(stdout).toMatch(/^authorities:\s+1 x509-svid, 1 jwt-svid\/wit-svid$/m);
    expect(stdout).toContain("kid=jwt-1");
    expect(stdout).toContain(
      parseSpiffeBundle(files.get("good.json") as string).bundle.x509Authorities[0]!.fingerprint,
    );
    expect(stdout).toContain("spiffe://example.org");
    expect(stdout).not.toContain("warnings:");
  });

  it("a good PEM bundle prints its summary", async () => {
    const { code, stdout, stderr } = await run(["good.pem"]);
    expect(code).toBe(0);
    expect(stderr).toBe("");
    expect(stdout).toContain("accepted, usable");
    expect(stdout).toMatch(/^format:\s+pem$/m);
    expect(stdout).toMatch(/^authorities:\s+2 x509-svid, 0 jwt-svid\/wit-svid$/m);
    expect(stdout).toContain(`sha256:${digestOf("good.pem")}`);
    expect(stdout).toContain("RSA 2048");
    expect(stdout).toContain("EC P-256");
  });

  it("reads a file given as bytes", async () => {
    expect((await run(["bytes.pem"])).code).toBe(0);
  });

  it("--json prints a summary that parses, with ok, usable, digest and authorities", async () => {
    const { code, stderr, summary } = await inspectJson("good.json");
    expect(code).toBe(0);
    expect(stderr).toBe("");
    expect(summary).toMatchObject({
      ok: true,
      usable: true,
      format: "spiffe",
      digest: digestOf("good.json"),
      sequence: "18446744073709551615",
      refreshHintSeconds: 300,
      x509AuthorityCount: 1,
      jwtAuthorityCount: 1,
      warnings: [],
    });
    expect(summary.authorities).toHaveLength(2);
    expect(summary.authorities[0]).toMatchObject({ use: "x509-svid", ca: true, selfSigned: true, status: "valid" });
    expect(summary.authorities[1]).toMatchObject({ use: "jwt-svid", keyId: "jwt-1", status: "valid" });
    expect(summary).not.toHaveProperty("canonical");
  });

  it("--trust-domain names the trust domain and warns about an authority of another", async () => {
    const mine = await inspectJson("good.json", "--trust-domain", "example.org");
    expect(mine.code).toBe(0);
    expect(mine.summary).toMatchObject({ trustDomain: "example.org", warnings: [] });

    const foreign = await run(["other-domain.json", "--trust-domain", "example.org"]);
    expect(foreign.code).toBe(0);
    expect(foreign.stdout).toContain("WARN_AUTHORITY_OTHER_TRUST_DOMAIN");
    expect(foreign.stdout).toMatch(/^trust domain:\s+example\.org$/m);
  });

  it("parse warnings are printed", async () => {
    files.set("with-non-ca.pem", root.pem + nonCa.pem);
    const { code, stdout } = await run(["with-non-ca.pem"]);
    expect(code).toBe(0);
    expect(stdout).toContain("warnings:");
    expect(stdout).toContain("WARN_CERT_NOT_CA");
  });

  it("judges validity by the injected clock", async () => {
    // Seen from the machine's clock, decades after NOW, the same certificates expired long ago.
    expect(NOW.getTime()).toBeLessThan(Date.now() - 365 * DAY);
    const { summary } = await inspectJson("good.pem");
    expect(summary.authorities.map((a) => (a as { status: string }).status)).toEqual(["valid", "valid"]);
  });
});

describe("--canonical", () => {
  it("spiffe: prints canonical JSON that parses back to the same digest", async () => {
    const { code, stdout } = await run(["good.json", "--canonical", "spiffe"]);
    expect(code).toBe(0);
    const canonical = stdout.slice(stdout.indexOf("\n{\n") + 1);
    expect(canonical.startsWith("{\n")).toBe(true);
    const reread = parseSpiffeBundle(canonical);
    expect(reread.warnings).toEqual([]);
    expect(bundleDigest(reread.bundle)).toBe(digestOf("good.json"));
    expect(reread.bundle.sequence).toBe(18446744073709551615n);
  });

  it("spiffe from a PEM input: the PEM's authorities as a SPIFFE bundle", async () => {
    const { code, summary } = await inspectJson("good.pem", "--canonical", "spiffe");
    expect(code).toBe(0);
    const reread = parseSpiffeBundle(summary.canonical as string);
    expect(bundleDigest(reread.bundle)).toBe(summary.digest);
    expect(reread.bundle.x509Authorities).toHaveLength(2);
  });

  it("pem: prints the X.509 authorities as PEM", async () => {
    const { code, stdout } = await run(["good.json", "--canonical", "pem"]);
    expect(code).toBe(0);
    const pem = stdout.slice(stdout.indexOf("-----BEGIN CERTIFICATE-----"));
    expect(pem).toBe(root.pem);
    expect(parsePemBundle(pem).bundle.x509Authorities.map((a) => a.fingerprint)).toEqual(
      parseSpiffeBundle(files.get("good.json") as string).bundle.x509Authorities.map((a) => a.fingerprint),
    );
  });

  it("pem with --json: the canonical PEM is a member of the summary", async () => {
    const { code, summary } = await inspectJson("good.pem", "--canonical", "pem");
    expect(code).toBe(0);
    expect(bundleDigest(parsePemBundle(summary.canonical as string).bundle)).toBe(summary.digest);
  });
});

describe("rejected: exit 1 with the error code on stderr", () => {
  const cases: Array<[string, () => string | Uint8Array, string]> = [
    ["not JSON", () => "keys: []", "ERR_BUNDLE_NOT_JSON"],
    ["a JSON array", () => "[]", "ERR_BUNDLE_NOT_OBJECT"],
    ["a duplicate member", () => '{"keys":[],"keys":[]}', "ERR_BUNDLE_DUPLICATE_MEMBER"],
    ["no keys", () => '{"spiffe_sequence":1}', "ERR_BUNDLE_KEYS_MISSING"],
    ["keys not an array", () => '{"keys":{}}', "ERR_BUNDLE_KEYS_NOT_ARRAY"],
    ["a private key member", () => bundleDoc([{ ...jwtEntry("k", jwtKey), d: "AAAA" }]), "ERR_BUNDLE_PRIVATE_KEY"],
    ["sequence 2^64", () => '{"keys":[],"spiffe_sequence":18446744073709551616}', "ERR_BUNDLE_BAD_SEQUENCE"],
    ["refresh hint 1.5", () => '{"keys":[],"spiffe_refresh_hint":1.5}', "ERR_BUNDLE_BAD_REFRESH_HINT"],
    [
      "one kid, two keys",
      () => bundleDoc([jwtEntry("k", jwtKey), jwtEntry("k", otherJwtKey)]),
      "ERR_BUNDLE_DUPLICATE_KID",
    ],
    [
      "DER with trailing bytes",
      () => bundleDoc([{ ...x509Entry(root), x5c: [derToBase64(Buffer.concat([root.der, Buffer.from([0])]))] }]),
      "ERR_BUNDLE_DER_TRAILING_DATA",
    ],
    ["too deep", () => `{"keys":[],"x":${"[".repeat(40)}${"]".repeat(40)}}`, "ERR_BUNDLE_TOO_DEEP"],
    ["over 64 KiB", () => bundleDoc([], { padding: "x".repeat(64 * 1024) }), "ERR_BUNDLE_TOO_LARGE"],
    ["not UTF-8", () => Uint8Array.from([0x7b, 0x22, 0xff, 0x22, 0x3a, 0x31, 0x7d]), "ERR_BUNDLE_NOT_UTF8"],
    ["a PEM private key", () => root.pem + root.keyPem, "ERR_PEM_PRIVATE_KEY"],
    ["a PEM block without END", () => "-----BEGIN CERTIFICATE-----\nMIIB\n", "ERR_PEM_INVALID"],
    [
      "a PEM without certificates",
      () => "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n",
      "ERR_PEM_NO_CERTIFICATES",
    ],
  ];
  it.each(cases)("%s → %s", async (name, content, errorCode) => {
    const file = `rejected-${name}`;
    files.set(file, content());
    const text = await run([file]);
    expect(text.code).toBe(1);
    expect(text.stdout).toBe("");
    expect(text.stderr).toContain(`${errorCode}:`);
    expect(text.stderr.trimEnd().split("\n")).toHaveLength(1);

    const json = await inspectJson(file);
    expect(json.code).toBe(1);
    expect(json.summary).toMatchObject({ ok: false, code: errorCode });
    expect(json.stderr).toContain(`${errorCode}:`);
  });

  it("--format pem on a SPIFFE document", async () => {
    const { code, stderr } = await run(["good.json", "--format", "pem"]);
    expect(code).toBe(1);
    expect(stderr).toContain("ERR_PEM_NO_CERTIFICATES:");
  });

  it("--format spiffe on a PEM document", async () => {
    const { code, stderr } = await run(["good.pem", "--format", "spiffe"]);
    expect(code).toBe(1);
    expect(stderr).toContain("ERR_BUNDLE_NOT_JSON:");
  });

  it("--format spiffe and pem on matching documents are accepted", async () => {
    expect((await run(["good.json", "--format", "spiffe"])).code).toBe(0);
    expect((await run(["good.pem", "--format", "pem"])).code).toBe(0);
    expect((await run(["good.pem", "--format", "auto"])).code).toBe(0);
  });
});

describe("accepted but unusable: exit 1 with WARN_NO_USABLE_AUTHORITIES on stderr", () => {
  it.each([
    ["an empty bundle", "empty.json"],
    ['"keys": null', "null-keys.json"],
    ["an all-expired SPIFFE bundle", "expired.json"],
    ["an all-expired PEM bundle", "expired.pem"],
    ["a PEM bundle of a non-CA certificate only", "non-ca.pem"],
  ])("%s", async (_name, file) => {
    const { code, stdout, stderr } = await run([file]);
    expect(code).toBe(1);
    expect(stderr).toContain("WARN_NO_USABLE_AUTHORITIES:");
    expect(stdout).toContain("accepted, NOT usable");
    expect(stdout).toContain("WARN_NO_USABLE_AUTHORITIES");

    const json = await inspectJson(file);
    expect(json.code).toBe(1);
    expect(json.summary).toMatchObject({ ok: false, usable: false });
    expect(json.stderr).toContain("WARN_NO_USABLE_AUTHORITIES:");
  });

  it("the all-expired bundle names each expired authority", async () => {
    const { summary } = await inspectJson("expired.json");
    expect((summary.warnings as Array<{ code: string }>).map((w) => w.code)).toEqual([
      "WARN_AUTHORITY_EXPIRED",
      "WARN_NO_USABLE_AUTHORITIES",
    ]);
  });
});

describe("usage errors: exit 2", () => {
  it("a missing file → ERR_FILE_UNREADABLE", async () => {
    const { code, stdout, stderr } = await run(["missing.json"]);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain("ERR_FILE_UNREADABLE:");
  });

  it.each([
    ["Example.org", "ERR_TRUST_DOMAIN_UPPERCASE"],
    ["spiffe://example.org", "ERR_TRUST_DOMAIN_IS_SPIFFE_ID"],
    ["", "ERR_TRUST_DOMAIN_EMPTY"],
    ["example.org:8443", "ERR_TRUST_DOMAIN_PORT"],
    ["exa mple.org", "ERR_TRUST_DOMAIN_BAD_CHAR"],
  ])("--trust-domain %j → %s", async (trustDomain, errorCode) => {
    const { code, stdout, stderr } = await run(["good.json", "--trust-domain", trustDomain]);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).toContain(`${errorCode}:`);
  });

  it("a bad --trust-domain is reported before the file is read", async () => {
    const { code, stderr } = await run(["missing.json", "--trust-domain", "Example.org"]);
    expect(code).toBe(2);
    expect(stderr).toContain("ERR_TRUST_DOMAIN_UPPERCASE:");
    expect(stderr).not.toContain("ERR_FILE_UNREADABLE");
  });

  it.each([
    ["an unknown option", ["good.json", "--nope"]],
    ["a bad --format choice", ["good.json", "--format", "der"]],
    ["a bad --canonical choice", ["good.json", "--canonical", "jwks"]],
    ["--format without its value", ["good.json", "--format"]],
    ["no file argument", []],
    ["two file arguments", ["good.json", "good.pem"]],
  ])("%s", async (_name, args) => {
    const { code, stdout, stderr } = await run(args);
    expect(code).toBe(2);
    expect(stdout).toBe("");
    expect(stderr).not.toBe("");
  });

  it("an unknown subcommand", async () => {
    const { code } = await runCollect(["bundle", "frobnicate"]);
    expect(code).toBe(2);
  });
});

describe("standard input and help", () => {
  it("- reads standard input", async () => {
    const { code, stdout } = await run(["-"], files.get("good.json") as string);
    expect(code).toBe(0);
    expect(stdout).toContain(`sha256:${digestOf("good.json")}`);
  });

  it("- with a rejected document on standard input", async () => {
    const { code, stderr } = await run(["-"], '{"keys":[],"keys":[]}');
    expect(code).toBe(1);
    expect(stderr).toContain("ERR_BUNDLE_DUPLICATE_MEMBER:");
  });

  it("- with PEM on standard input", async () => {
    const { code, stdout } = await run(["-"], files.get("good.pem") as string);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^format:\s+pem$/m);
  });

  it("--help exits 0 and prints usage on stdout", async () => {
    const { code, stdout, stderr } = await run(["--help"]);
    expect(code).toBe(0);
    expect(stdout).toContain("--trust-domain");
    expect(stdout).toContain("--canonical");
    expect(stderr).toBe("");
  });

  it("--version exits 0 and prints the version", async () => {
    const { code, stdout } = await runCollect(["--version"]);
    expect(code).toBe(0);
    expect(stdout.trim()).toBe(VERSION);
  });
});

/** runCli with arbitrary arguments (not under `bundle inspect`). */
function runCollect(argv: readonly string[]): Promise<CliRun> {
  return runCapturing(argv, {
    readFile: async () => {
      throw new Error("no files");
    },
    now: () => NOW,
  });
}

describe("the real entry point", () => {
  const repo = fileURLToPath(new URL("../../", import.meta.url));
  let dir: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "bundlegate-inspect-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const exec = (args: string[]) =>
    new Promise<CliRun>((resolve, reject) => {
      execFile(
        process.execPath,
        ["--import", "tsx", "src/cli/main.ts", "bundle", "inspect", ...args],
        { cwd: repo, timeout: 25_000 },
        (error, stdout, stderr) => {
          if (error && typeof error.code !== "number") reject(error);
          else resolve({ code: error ? (error.code as number) : 0, stdout, stderr });
        },
      );
    });

  it("sets the process exit status: 0 usable, 1 rejected or unusable, 2 usage error", async () => {
    // Certificates valid at the machine's clock: the real process reads the real time.
    const live = await createCa({ trustDomain: "example.org" });
    const good = join(dir, "good.pem");
    const rejected = join(dir, "rejected.json");
    const empty = join(dir, "empty.json");
    await Promise.all([
      writeFile(good, live.pem),
      writeFile(rejected, '{"keys":[],"keys":[]}'),
      writeFile(empty, '{"keys":[]}'),
    ]);

    const [ok, bad, unusable, missing, usage] = await Promise.all([
      exec([good]),
      exec([rejected]),
      exec([empty]),
      exec([join(dir, "missing.json")]),
      exec([good, "--format", "der"]),
    ]);
    expect(ok).toMatchObject({ code: 0, stderr: "" });
    expect(ok.stdout).toContain("accepted, usable");
    expect(bad.code).toBe(1);
    expect(bad.stderr).toContain("ERR_BUNDLE_DUPLICATE_MEMBER:");
    expect(unusable.code).toBe(1);
    expect(unusable.stderr).toContain("WARN_NO_USABLE_AUTHORITIES:");
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("ERR_FILE_UNREADABLE:");
    expect(usage.code).toBe(2);
  });
});
