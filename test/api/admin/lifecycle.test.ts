/**
 * The admin API against a real gateway pair: B (two replicas on one real Redis prefix) federates with a
 * partner gateway P. Bad input on every write route is refused with 400 problem+json naming the field and
 * leaves the stored state as it was; the lifecycle moves a relationship in and out of distribution; an
 * expired relationship suspends itself and is audited; a delete leaves distribution on every replica.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RedisServerHandle, startRedisServer } from "../../support/redis-server.js";
import { type ApiReply, eventually, type Gateway, startGateway } from "./support.js";

let redis: RedisServerHandle;
let partner: Gateway;
let b1: Gateway;
let b2: Gateway;
let bundleJson: unknown;

const PARTNER = "partner.test";

beforeAll(async () => {
  redis = await startRedisServer();
  partner = await startGateway({ trustDomain: PARTNER, redisUrl: redis.url, keyPrefix: "p" });
  bundleJson = JSON.parse(partner.app.localBundle.current().bytes.toString("utf8"));
  b1 = await startGateway({
    trustDomain: "b.test",
    redisUrl: redis.url,
    keyPrefix: "b",
    replicaId: "b1",
    distribution: true,
    relationships: [
      {
        trust_domain: "config-partner.test",
        endpoint_url: "https://config-partner.test/",
        profile: "https_web",
        owner: "config-team",
      },
    ],
  });
  b2 = await startGateway({
    trustDomain: "b.test",
    redisUrl: redis.url,
    keyPrefix: "b",
    replicaId: "b2",
    sameAs: b1,
    distribution: true,
    relationships: [
      {
        trust_domain: "config-partner.test",
        endpoint_url: "https://config-partner.test/",
        profile: "https_web",
        owner: "config-team",
      },
    ],
  });
}, 60_000);

afterAll(async () => {
  await b1?.stop();
  await b2?.stop();
  await partner?.stop();
  await redis?.stop();
});

function spec(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    trust_domain: PARTNER,
    endpoint_url: partner.endpointUrl,
    profile: "https_spiffe",
    endpoint_spiffe_id: partner.endpointSpiffeId,
    bootstrap_bundle: bundleJson,
    owner: "payments-team",
    contact: "payments@example.org",
    labels: { env: "prod" },
    allowed_cidrs: ["127.0.0.0/8"],
    ...overrides,
  };
}

function expectFieldProblem(reply: ApiReply, path: string) {
  expect(reply.status, reply.text).toBe(400);
  expect(String(reply.headers["content-type"])).toContain("application/problem+json");
  expect(reply.json.code).toBe("ERR_API_VALIDATION");
  expect(reply.json.errors.map((e: { path: string }) => e.path)).toContain(path);
}

/** The stored state an admin can read (not what polling moves: status, staleness, bundle): compared around refused writes. */
async function snapshot(gateway: Gateway) {
  const list = await gateway.api("GET", "/v1/relationships");
  const audit = await gateway.api("GET", "/v1/audit?limit=1000");
  const shown = await gateway.api("GET", `/v1/relationships/${PARTNER}`);
  const stored = (r: Record<string, unknown>) => {
    const {
      staleness,
      sequence,
      last_success_at,
      last_error_code,
      status,
      bundle,
      preflight,
      quarantined,
      warnings,
      ...rest
    } = r;
    return rest;
  };
  return {
    list: list.json.relationships.map(stored),
    audit: audit.json,
    shown: shown.json.relationship ? stored(shown.json.relationship) : shown.status,
  };
}

const distributed = async (gateway: Gateway, td = PARTNER) =>
  (await gateway.api("GET", `/v1/bundles/${td}`, { token: "reader" })).status;

describe("bad input on every write route", () => {
  it("POST /v1/relationships names each bad field and stores nothing", async () => {
    const before = await snapshot(b1);
    expectFieldProblem(await b1.api("POST", "/v1/relationships", { body: spec({ colour: "blue" }) }), "colour");
    expectFieldProblem(await b1.api("POST", "/v1/relationships", { body: spec({ owner: 5 }) }), "owner");
    expectFieldProblem(
      await b1.api("POST", "/v1/relationships", { body: spec({ trust_domain: "Bad_Domain!" }) }),
      "trust_domain",
    );
    expectFieldProblem(
      await b1.api("POST", "/v1/relationships", { body: spec({ endpoint_url: "http://127.0.0.1:1/" }) }),
      "endpoint_url",
    );
    expectFieldProblem(
      await b1.api("POST", "/v1/relationships", {
        body: spec({ trust_domain: "b.test", endpoint_spiffe_id: "spiffe://b.test/x" }),
      }),
      "trust_domain",
    );
    expectFieldProblem(
      await b1.api("POST", "/v1/relationships", {
        body: spec({ trust_domain: "config-partner.test", endpoint_spiffe_id: "spiffe://config-partner.test/x" }),
      }),
      "trust_domain",
    );
    expectFieldProblem(await b1.api("POST", "/v1/relationships", { body: spec({ state: "active" }) }), "state");
    expectFieldProblem(
      await b1.api("POST", "/v1/relationships", { body: spec({ bootstrap_bundle: { keys: 5 } }) }),
      "bootstrap_bundle",
    );
    expectFieldProblem(await b1.api("POST", "/v1/relationships", { body: spec({ labels: { env: 7 } }) }), "labels.env");
    expect((await b1.api("POST", "/v1/relationships", { rawBody: '{"owner":"a","owner":"b"}' })).json.code).toBe(
      "ERR_API_BAD_JSON",
    );
    expect(await snapshot(b1)).toEqual(before);
  });

  it("creates once; a second create of the same trust domain is a duplicate", async () => {
    const created = await b1.api("POST", "/v1/relationships", { token: "writer", body: spec() });
    expect(created.status, created.text).toBe(201);
    expect(created.json.relationship).toMatchObject({ state: "pending", origin: "api", read_only: false, revision: 1 });
    const before = await snapshot(b1);
    expectFieldProblem(await b1.api("POST", "/v1/relationships", { body: spec() }), "trust_domain");
    expect(await snapshot(b1)).toEqual(before);
  });

  it("PATCH, suspend, quarantine, invitations: each names the bad field and changes nothing", async () => {
    const before = await snapshot(b1);
    const td = `/v1/relationships/${PARTNER}`;
    expectFieldProblem(await b1.api("PATCH", td, { body: { colour: "blue" } }), "colour");
    expectFieldProblem(await b1.api("PATCH", td, { body: { owner: [] } }), "owner");
    expectFieldProblem(await b1.api("PATCH", td, { body: { endpoint_url: "http://partner.test/" } }), "endpoint_url");
    expectFieldProblem(await b1.api("PATCH", td, { body: { trust_domain: "other.test" } }), "trust_domain");
    expectFieldProblem(await b1.api("PATCH", td, { body: { expires_at: "tomorrow" } }), "expires_at");
    expectFieldProblem(await b1.api("POST", `${td}/suspend`, { body: { reason: 5 } }), "reason");
    expectFieldProblem(await b1.api("POST", `${td}/suspend`, { body: { why: "x" } }), "why");
    expectFieldProblem(await b1.api("POST", `${td}/quarantine/accept`, { body: { digest: "abc" } }), "digest");
    expectFieldProblem(await b1.api("POST", `${td}/quarantine/discard`, { body: {} }), "digest");
    expectFieldProblem(await b1.api("POST", "/v1/invitations", { body: { ttl_seconds: "1h" } }), "ttl_seconds");
    expectFieldProblem(await b1.api("POST", "/v1/invitations/accept", { body: { owner: "x" } }), "token");
    expectFieldProblem(
      await b1.api("POST", "/v1/invitations/accept", { body: { token: "not.a.jws", owner: "x" } }),
      "token",
    );
    for (const action of ["approve", "resume", "refresh", "preflight", "sequence/reset"]) {
      expectFieldProblem(await b1.api("POST", `${td}/${action}`, { body: { force: true } }), "");
    }
    expectFieldProblem(await b1.api("DELETE", td, { body: { cascade: true } }), "");
    expect((await b1.api("PATCH", td, { body: { owner: "x" }, headers: { "if-match": '"99"' } })).json.code).toBe(
      "ERR_RELATIONSHIP_CONFLICT",
    );
    expect(await snapshot(b1)).toEqual(before);
  });

  it("config relationships are read-only", async () => {
    const reply = await b1.api("PATCH", "/v1/relationships/config-partner.test", { body: { owner: "x" } });
    expect(reply.status).toBe(409);
    expect(reply.json.code).toBe("ERR_RELATIONSHIP_READ_ONLY");
    const shown = await b1.api("GET", "/v1/relationships/config-partner.test");
    expect(shown.json.relationship).toMatchObject({ origin: "config", read_only: true, state: "active" });
  });
});

describe("lifecycle", () => {
  it("pending is polled but not distributed; approve distributes; suspend and resume", async () => {
    const td = `/v1/relationships/${PARTNER}`;
    const refreshed = await b1.api("POST", `${td}/refresh`, { token: "writer" });
    // Either this fetch accepted it, or the other replica had just done so and this one found it unchanged.
    expect(refreshed.json.outcome.result).toMatch(/^(accept|unchanged)/);
    expect(refreshed.json.relationship.bundle.digest).toMatch(/^[0-9a-f]{64}$/);
    expect(await distributed(b1)).toBe(404);
    expect((await b1.api("POST", `${td}/resume`, { token: "approver" })).json.code).toBe("ERR_RELATIONSHIP_STATE");

    expect((await b1.api("POST", `${td}/approve`, { token: "approver" })).status).toBe(200);
    await eventually(async () => ((await distributed(b2)) === 200 ? true : undefined));
    expect(await distributed(b1)).toBe(200);

    const suspended = await b1.api("POST", `${td}/suspend`, { token: "writer", body: { reason: "partner incident" } });
    expect(suspended.json.relationship).toMatchObject({
      state: "suspended",
      lifecycle: { suspended_reason: "partner incident" },
    });
    await eventually(async () => ((await distributed(b2)) === 404 ? true : undefined));
    expect(await distributed(b1)).toBe(404);

    expect((await b1.api("POST", `${td}/resume`, { token: "writer" })).status).toBe(403);
    expect((await b1.api("POST", `${td}/resume`, { token: "approver" })).json.relationship.state).toBe("active");
    await eventually(async () => ((await distributed(b2)) === 200 ? true : undefined));

    // A trust change by a caller without the approve scope sends it back to pending.
    const patched = await b1.api("PATCH", td, { token: "writer", body: { allowed_cidrs: ["127.0.0.1/32"] } });
    expect(patched.json.relationship).toMatchObject({ state: "pending", revision: 5 });
    // A change that does not touch trust keeps the state.
    expect((await b1.api("POST", `${td}/approve`, { token: "approver" })).status).toBe(200);
    const relabelled = await b1.api("PATCH", td, {
      token: "writer",
      body: { labels: { env: "staging" }, contact: null },
    });
    expect(relabelled.json.relationship).toMatchObject({ state: "active", labels: { env: "staging" } });
    expect(relabelled.json.relationship.contact).toBeUndefined();

    const list = await b2.api("GET", "/v1/relationships?label=env=staging&state=active", { token: "reader" });
    expect(list.json.relationships.map((r: { trust_domain: string }) => r.trust_domain)).toEqual([PARTNER]);
    expectFieldProblem(await b2.api("GET", "/v1/relationships?state=gone", { token: "reader" }), "state");

    const actions = (
      await b2.api("GET", `/v1/audit?trust_domain=${PARTNER}&limit=1000`, { token: "auditor" })
    ).json.entries.map((e: { action: string }) => e.action);
    expect(actions).toEqual([
      "relationship.update",
      "relationship.approve",
      "relationship.update",
      "relationship.resume",
      "relationship.suspend",
      "relationship.approve",
      "relationship.create",
    ]);
  }, 30_000);

  it("a relationship past expires_at suspends itself, is audited, and leaves distribution", async () => {
    const expiresAt = new Date(Math.ceil((Date.now() + 5000) / 1000) * 1000).toISOString().replace(".000Z", "Z");
    const td = `/v1/relationships/${PARTNER}`;
    expect((await b1.api("PATCH", td, { token: "writer", body: { expires_at: expiresAt } })).status).toBe(200);
    expect(await distributed(b2)).toBe(200);
    const shown = await eventually(async () => {
      const reply = await b2.api("GET", td, { token: "reader" });
      return reply.json.relationship.lifecycle.suspended_by === "system:expiry" ? reply.json.relationship : undefined;
    });
    expect(shown.state).toBe("suspended");
    expect(await distributed(b1)).toBe(404);
    expect(await distributed(b2)).toBe(404);
    const entries = (await b1.api("GET", `/v1/audit?action=relationship.expire`, { token: "auditor" })).json.entries;
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({ actor: "system:expiry", trust_domain: PARTNER, after: { state: "suspended" } });
    const resumed = await b1.api("POST", `${td}/resume`, { token: "approver" });
    expect(resumed.json.code).toBe("ERR_RELATIONSHIP_EXPIRED");
  }, 30_000);

  it("deleting removes it from distribution at once on every replica; history and audit stay", async () => {
    const td = `/v1/relationships/${PARTNER}`;
    expect((await b1.api("PATCH", td, { token: "writer", body: { expires_at: null } })).status).toBe(200);
    expect((await b1.api("POST", `${td}/resume`, { token: "approver" })).status).toBe(200);
    await eventually(async () => ((await distributed(b2)) === 200 ? true : undefined));

    expect((await b1.api("DELETE", td, { token: "writer" })).status).toBe(204);
    expect(await distributed(b1)).toBe(404);
    await eventually(async () => ((await distributed(b2)) === 404 ? true : undefined), 1000);
    await eventually(() => (b2.app.cache.get(PARTNER as never) === undefined ? true : undefined), 1000);
    expect((await b2.api("GET", td, { token: "reader" })).status).toBe(404);
    const audit = (await b2.api("GET", `/v1/audit?trust_domain=${PARTNER}&limit=1`, { token: "auditor" })).json;
    expect(audit.entries[0]).toMatchObject({ action: "relationship.delete", actor: "token:writer" });
    expect(audit.next).toBeDefined();
  }, 30_000);
});
