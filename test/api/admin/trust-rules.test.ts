import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TrustDomain } from "../../../src/spiffe/id.js";
import { type RedisServerHandle, startRedisServer } from "../../support/redis-server.js";
import { eventually, type Gateway, startGateway } from "./support.js";

let redis: RedisServerHandle;
let partner: Gateway;
let gateway: Gateway;
let bundle: unknown;

beforeAll(async () => {
  redis = await startRedisServer();
  partner = await startGateway({ trustDomain: "partner.test" });
  gateway = await startGateway({
    trustDomain: "example.org",
    redisUrl: redis.url,
    keyPrefix: "trust",
    distribution: true,
  });
  bundle = JSON.parse(partner.app.localBundle.current().bytes.toString("utf8"));
}, 60_000);

afterAll(async () => {
  await gateway?.stop();
  await partner?.stop();
  await redis?.stop();
});

const spec = (overrides: Record<string, unknown> = {}) => ({
  trust_domain: "partner.test",
  endpoint_url: partner.endpointUrl,
  profile: "https_spiffe",
  endpoint_spiffe_id: partner.endpointSpiffeId,
  bootstrap_bundle: bundle,
  owner: "team",
  allowed_cidrs: ["127.0.0.0/8"],
  ...overrides,
});

const TD = "/v1/relationships/partner.test";
const distributed = async () => (await gateway.api("GET", "/v1/bundles/partner.test", { token: "reader" })).status;
const show = async () => (await gateway.api("GET", TD, { token: "reader" })).json.relationship;
const auditActions = async () =>
  (await gateway.api("GET", "/v1/audit?trust_domain=partner.test&limit=1000", { token: "auditor" })).json.entries.map(
    (e: { action: string }) => e.action,
  );

async function activeRelationship(overrides: Record<string, unknown> = {}) {
  await gateway.api("DELETE", TD, { token: "writer" });
  expect((await gateway.api("POST", "/v1/relationships", { token: "writer", body: spec(overrides) })).status).toBe(201);
  expect((await gateway.api("POST", `${TD}/approve`, { token: "approver" })).status).toBe(200);
  await gateway.api("POST", `${TD}/refresh`, { token: "writer" });
  await eventually(async () => ((await distributed()) === 200 ? true : undefined));
}

describe("trust is added only with the approve scope", () => {
  it("a writer moving expires_at of an expired relationship does not make it active again", async () => {
    const soon = new Date(Math.ceil((Date.now() + 5000) / 1000) * 1000).toISOString().replace(".000Z", "Z");
    // A caller with write and approve may shorten or extend life; this one ends in about five seconds.
    await activeRelationship();
    expect(
      (await gateway.api("PATCH", TD, { token: "admin", body: { expires_at: soon } })).json.relationship.state,
    ).toBe("active");
    await eventually(async () => ((await distributed()) === 404 ? true : undefined));
    const patched = await gateway.api("PATCH", TD, { token: "writer", body: { expires_at: "2099-01-01" } });
    expect(patched.status, patched.text).toBe(200);
    expect(patched.json.relationship.state).toBe("suspended");
    expect(await distributed()).toBe(404);
  }, 30_000);

  it("a writer extending an active relationship's life sends it back to pending, with a new preflight", async () => {
    await activeRelationship({ expires_at: "2098-01-01" });
    const before = await show();
    expect(before.lifecycle.approved_by).toBe("token:approver");
    const patched = await gateway.api("PATCH", TD, { token: "writer", body: { expires_at: "2099-01-01" } });
    expect(patched.json.relationship.state).toBe("pending");
    expect(patched.json.relationship.lifecycle.approved_by).toBeUndefined();
    expect(patched.json.relationship.preflight.checked_at >= before.preflight.checked_at).toBe(true);
    expect(await distributed()).toBe(404);
  }, 30_000);

  it("a change that changes nothing writes nothing", async () => {
    await activeRelationship();
    const before = await show();
    const audited = (await auditActions()).length;
    for (const body of [{}, { owner: "team" }]) {
      expect((await gateway.api("PATCH", TD, { token: "writer", body })).json.relationship.revision).toBe(
        before.revision,
      );
    }
    expect((await auditActions()).length).toBe(audited);
  }, 30_000);
});

describe("deleting and making again", () => {
  it("finishes a delete cut short, and a relationship made again starts without the old bundle", async () => {
    await activeRelationship();
    const td = "partner.test" as TrustDomain;
    // The record goes, the bundle stays: what a store failure between the delete's two steps leaves.
    await gateway.app.store.deleteRelationshipRecord(td, {
      at: Date.now(),
      origin: "test",
      audit: { at: Date.now(), actor: "test", action: "relationship.delete" },
    });
    await eventually(async () =>
      (await gateway.api("GET", TD, { token: "reader" })).status === 404 ? true : undefined,
    );
    expect(await gateway.app.store.getBundle(td)).toBeDefined();

    // Made again before anyone cleaned up: it must not show, serve or verify with the old bundle.
    const created = await gateway.api("POST", "/v1/relationships", { token: "writer", body: spec() });
    expect(created.json.relationship.bundle).toBeUndefined();
    expect(await gateway.app.store.getBundle(td)).toBeUndefined();

    // And a delete cut short can be finished by deleting again.
    await gateway.app.store.deleteRelationshipRecord(td, {
      at: Date.now(),
      origin: "test",
      audit: { at: Date.now(), actor: "test", action: "relationship.delete" },
    });
    await eventually(async () =>
      (await gateway.api("GET", TD, { token: "reader" })).status === 404 ? true : undefined,
    );
    await gateway.app.store.commitFetch(
      td,
      Number.MAX_SAFE_INTEGER,
      {
        kind: "accepted",
        bundle: { json: '{"keys":[]}', digest: "0".repeat(64) },
        previousDigest: "",
        history: { digest: "0".repeat(64), event: "accepted", reasons: [], added: [], removed: [] },
      },
      { at: Date.now(), success: true, result: "accepted", nextRefreshAt: Date.now() + 60_000 },
      { historyLimit: 5, origin: "test" },
    );
    expect((await gateway.api("DELETE", TD, { token: "writer" })).status).toBe(204);
    expect(await gateway.app.store.getBundle(td)).toBeUndefined();
    expect((await gateway.api("DELETE", TD, { token: "writer" })).status).toBe(404);
    expect(await auditActions()).toContain("relationship.cleanup");
  }, 30_000);

  it("refuses to delete a relationship whose bundle verifies another's endpoint, and a fresh replica loads both", async () => {
    await activeRelationship();
    const via = await gateway.api("POST", "/v1/relationships", {
      token: "writer",
      body: {
        trust_domain: "via.test",
        endpoint_url: "https://via.test/",
        profile: "https_spiffe",
        endpoint_spiffe_id: "spiffe://partner.test/bundlegate",
        owner: "team",
      },
    });
    expect(via.status, via.text).toBe(201);
    const refused = await gateway.api("DELETE", TD, { token: "writer" });
    expect(refused.status).toBe(409);
    expect(refused.json.code).toBe("ERR_RELATIONSHIP_IN_USE");

    const replica = await startGateway({
      trustDomain: "example.org",
      redisUrl: redis.url,
      keyPrefix: "trust",
      sameAs: gateway,
    });
    try {
      const listed = (await replica.api("GET", "/v1/relationships", { token: "reader" })).json.relationships;
      expect(listed.map((r: { trust_domain: string }) => r.trust_domain).sort()).toEqual(["partner.test", "via.test"]);
    } finally {
      await replica.stop();
    }
    expect((await gateway.api("DELETE", "/v1/relationships/via.test", { token: "writer" })).status).toBe(204);
  }, 30_000);
});

describe("exact input", () => {
  it("keeps a bootstrap bundle's spiffe_sequence exact up to 2^64-1", async () => {
    await gateway.api("DELETE", TD, { token: "writer" });
    const text = JSON.stringify(spec()).replace(/"spiffe_sequence":\d+/, '"spiffe_sequence":18446744073709551615');
    expect(text).toContain("18446744073709551615");
    const created = await gateway.api("POST", "/v1/relationships", { token: "writer", rawBody: text });
    expect(created.status, created.text).toBe(201);
    const stored = JSON.parse((await gateway.app.store.getRelationshipRecord("partner.test" as TrustDomain))!.document);
    expect(stored.spec.bootstrap_bundle).toContain('"spiffe_sequence":18446744073709551615');
  });

  it("answers 400 for a path or query it cannot read", async () => {
    expect((await gateway.api("GET", "/v1/relationships/%E0%A4%A", { token: "reader" })).json.code).toBe(
      "ERR_API_BAD_REQUEST",
    );
    const upper = await gateway.api("GET", "/v1/relationships/Partner.Test", { token: "reader" });
    expect([upper.status, upper.json.code]).toEqual([400, "ERR_TRUST_DOMAIN_UPPERCASE"]);
    const rolled = await gateway.api("GET", "/v1/audit?since=2024-02-30", { token: "auditor" });
    expect(rolled.json.errors.map((e: { path: string }) => e.path)).toEqual(["since"]);
    const badTd = await gateway.api("GET", "/v1/audit?trust_domain=Bad!", { token: "auditor" });
    expect(badTd.json.errors.map((e: { path: string }) => e.path)).toEqual(["trust_domain"]);
  });
});
