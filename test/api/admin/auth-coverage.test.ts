/**
 * Every admin route, taken from the router's own table (ADMIN_ROUTES), refuses: no token, a static token
 * without the route's scope, an expired JWT, a JWT signed by a key not in the JWKS, and a JWT whose scope
 * claim lacks the route's scope. A JWT with the scope gets past authentication (any answer but 401/403).
 * Refusals are problem+json and change nothing (the audit log stays empty).
 */
import { exportJWK, generateKeyPair, SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ADMIN_ROUTES, type AdminRoute } from "../../../src/api/admin/routes.js";
import { type ApiReply, type Gateway, startGateway, type TokenName } from "./support.js";

const ISSUER = "https://idp.test/";
const AUDIENCE = "bundlegate-admin";

let gateway: Gateway;
type SigningKey = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];

let signingKey: SigningKey;
let strangerKey: SigningKey;

beforeAll(async () => {
  const trusted = await generateKeyPair("ES256");
  const stranger = await generateKeyPair("ES256");
  signingKey = trusted.privateKey;
  strangerKey = stranger.privateKey;
  const jwk = { ...(await exportJWK(trusted.publicKey)), kid: "k1", alg: "ES256", use: "sig" };
  gateway = await startGateway({
    trustDomain: "example.org",
    files: { "jwks.json": JSON.stringify({ keys: [jwk] }) },
    adminExtra: { jwt: { issuer: ISSUER, audience: AUDIENCE, jwks_file: "jwks.json" } },
  });
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
});

async function jwt(options: { scope: string; key?: SigningKey; expiresIn?: string | number; kid?: string }) {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ scope: options.scope })
    .setProtectedHeader({ alg: "ES256", kid: options.kid ?? "k1" })
    .setIssuer(ISSUER)
    .setAudience(AUDIENCE)
    .setSubject("alice")
    .setIssuedAt(now - 600)
    .setExpirationTime(options.expiresIn ?? now + 300)
    .sign(options.key ?? signingKey);
}

/** A concrete path for a route; a trust domain that does not exist (past auth it gets 404). */
const pathOf = (route: AdminRoute) => route.path.replace(":trustDomain", "nobody.test");

/** A static token that lacks the route's scope. */
function tokenWithout(route: AdminRoute): TokenName {
  return route.scope === "audit:read"
    ? "writer"
    : route.scope === "relationships:read"
      ? "auditor"
      : route.scope === "relationships:write"
        ? "approver"
        : "writer";
}

const OTHER_SCOPES: Record<string, string> = {
  "relationships:read": "audit:read",
  "relationships:write": "relationships:read relationships:approve audit:read",
  "relationships:approve": "relationships:read relationships:write audit:read",
  "audit:read": "relationships:read relationships:write relationships:approve",
};

function expectProblem(reply: ApiReply, status: number) {
  expect(reply.status).toBe(status);
  expect(String(reply.headers["content-type"])).toContain("application/problem+json");
  expect(reply.json.code).toMatch(/^ERR_ADMIN_/);
}

describe.each(ADMIN_ROUTES.map((route) => [`${route.method} ${route.path}`, route] as const))("%s", (_name, route) => {
  const send = (token: string | null | TokenName) =>
    gateway.api(route.method, pathOf(route), { token, ...(route.body ? { body: {} } : {}) });

  it("refuses a request without a token (401)", async () => {
    const reply = await send(null);
    expectProblem(reply, 401);
    expect(String(reply.headers["www-authenticate"])).toMatch(/^Bearer/);
  });

  it("refuses an unknown static token (401)", async () => {
    expectProblem(await send("not-a-configured-token"), 401);
  });

  it("refuses a static token without the route's scope (403)", async () => {
    const reply = await send(tokenWithout(route));
    expectProblem(reply, 403);
    expect(String(reply.headers["www-authenticate"])).toContain("insufficient_scope");
  });

  it("refuses an expired JWT (401)", async () => {
    expectProblem(await send(await jwt({ scope: route.scope, expiresIn: Math.floor(Date.now() / 1000) - 60 })), 401);
  });

  it("refuses a JWT signed by a key not in the JWKS (401)", async () => {
    expectProblem(await send(await jwt({ scope: route.scope, key: strangerKey })), 401);
  });

  it("refuses a JWT whose scopes lack the route's (403)", async () => {
    expectProblem(await send(await jwt({ scope: OTHER_SCOPES[route.scope]! })), 403);
  });

  it("lets a JWT with the route's scope through authentication", async () => {
    const reply = await send(await jwt({ scope: route.scope }));
    expect([401, 403]).not.toContain(reply.status);
  });
});

describe("refusals change nothing", () => {
  it("left no audit entry and no relationship behind", async () => {
    const audit = await gateway.api("GET", "/v1/audit", { token: "auditor" });
    expect(audit.status).toBe(200);
    // Only the calls let through (an invitation signed for the JWT caller) left a trace.
    for (const entry of audit.json.entries) expect(entry.actor).toBe(`jwt:${ISSUER}#alice`);
    const list = await gateway.api("GET", "/v1/relationships", { token: "reader" });
    expect(list.json.relationships).toEqual([]);
  });
});
