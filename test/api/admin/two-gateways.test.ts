/**
 * Issue 6's end-to-end acceptance: two gateways, two trust domains, each on its own Redis prefix. A signs
 * an invitation, B accepts it, B's relationship goes pending -> active after approval, B fetches A's
 * bundle over https_spiffe (verified with the bundle the invitation carried); then the reverse direction.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { bundleDigest } from "../../../src/spiffe/digest.js";
import { type RedisServerHandle, startRedisServer } from "../../support/redis-server.js";
import { type Gateway, startGateway } from "./support.js";

let redis: RedisServerHandle;
let a: Gateway;
let b: Gateway;

beforeAll(async () => {
  redis = await startRedisServer();
  a = await startGateway({ trustDomain: "a.test", redisUrl: redis.url, keyPrefix: "gw-a" });
  b = await startGateway({ trustDomain: "b.test", redisUrl: redis.url, keyPrefix: "gw-b" });
}, 30_000);

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  await redis?.stop();
});

async function federate(from: Gateway, to: Gateway) {
  // `from` invites; `to` accepts and ends up fetching `from`'s bundle.
  const invitation = await from.api("POST", "/v1/invitations", { token: "writer", body: { ttl_seconds: 600 } });
  expect(invitation.status, invitation.text).toBe(201);
  const token: string = invitation.json.token;
  // The payload reads as plain JSON for partners without bundlegate.
  const payload = JSON.parse(Buffer.from(token.split(".")[1]!, "base64url").toString("utf8"));
  expect(JSON.stringify(payload)).toContain(from.trustDomain);

  const accepted = await to.api("POST", "/v1/invitations/accept", {
    token: "writer",
    body: { token, owner: "platform-team", allowed_cidrs: ["127.0.0.0/8"] },
  });
  expect(accepted.status, accepted.text).toBe(201);
  const created = accepted.json.relationship;
  expect(created).toMatchObject({
    trust_domain: from.trustDomain,
    state: "pending",
    origin: "api",
    profile: "https_spiffe",
    endpoint_url: from.endpointUrl,
    endpoint_spiffe_id: from.endpointSpiffeId,
    lifecycle: { source: "invitation", created_by: "token:writer" },
  });
  // The preflight ran on create: the endpoint answered, verified with the invitation's bundle.
  expect(created.preflight.verdict, JSON.stringify(created.preflight)).toBe("ok");

  // A writer cannot approve; the approver can.
  const denied = await to.api("POST", `/v1/relationships/${from.trustDomain}/approve`, { token: "writer" });
  expect(denied.status).toBe(403);
  const approved = await to.api("POST", `/v1/relationships/${from.trustDomain}/approve`, { token: "approver" });
  expect(approved.status, approved.text).toBe(200);
  expect(approved.json.relationship.state).toBe("active");
  expect(approved.json.relationship.lifecycle.approved_by).toBe("token:approver");

  const refreshed = await to.api("POST", `/v1/relationships/${from.trustDomain}/refresh`, { token: "writer" });
  expect(refreshed.status, refreshed.text).toBe(200);
  const expected = bundleDigest(from.app.localBundle.current().bundle);
  expect(refreshed.json.outcome.result, JSON.stringify(refreshed.json.outcome)).toMatch(/^accept/);
  expect(refreshed.json.relationship.bundle.digest).toBe(expected);
  expect(to.app.cache.get(from.trustDomain as never)?.stored.digest).toBe(expected);

  const audit = await to.api("GET", `/v1/audit?trust_domain=${from.trustDomain}`, { token: "auditor" });
  expect(audit.status).toBe(200);
  expect(audit.json.entries.map((entry: { action: string }) => entry.action)).toEqual([
    "relationship.approve",
    "relationship.create",
  ]);
}

describe("two gateways federate through invitations", () => {
  it("B accepts A's invitation, approves it and fetches A's bundle over https_spiffe", async () => {
    await federate(a, b);
  }, 30_000);

  it("and the reverse direction works the same way", async () => {
    await federate(b, a);
  }, 30_000);
});
