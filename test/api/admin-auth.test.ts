/**
 * Admin API caller authentication and rate limiting over a real listener: static tokens, JWTs signed with
 * real keys and checked against a JWKS file or a JWKS URL served by a real HTTPS server, on a manual clock.
 */
import { createHash, createPublicKey } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import type { Server } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import express, { type NextFunction, type Request, type RequestHandler, type Response } from "express";
import { exportJWK, generateKeyPair, type JWK, jwtVerify, SignJWT } from "jose";
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import {
  type AdminAuth,
  type AdminAuthOptions,
  adminCallerOf,
  createAdminAuth,
} from "../../src/api/auth/admin-auth.js";
import { createAdminRateLimit } from "../../src/api/auth/admin-rate-limit.js";
import { problemOf, sendProblem } from "../../src/api/distribution/problem.js";
import { manualClock } from "../../src/clock.js";
import { createLogger } from "../../src/logging.js";
import { createCa, createWebCert, type Issued } from "../support/pki.js";

// jose as it is, with jwtVerify wrapped so a test can count the verifications one request costs.
vi.mock(import("jose"), async (importOriginal) => {
  const jose = await importOriginal();
  return { ...jose, jwtVerify: vi.fn(jose.jwtVerify) as typeof jose.jwtVerify };
});

const ISSUER = "https://idp.example.org/";
const AUDIENCE = "bundlegate-admin";
const OPS_TOKEN = "ops-static-token-5f1e0c3a9b7d";
const READER_TOKEN = "reader-static-token-8a2c4e6f";
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");
const b64url = (value: object) => Buffer.from(JSON.stringify(value)).toString("base64url");
// A static token shaped like a JWT: still matched as a static token.
const JWT_SHAPED_TOKEN = `${b64url({ alg: "ES256", kid: "k1" })}.${b64url({ sub: "nobody" })}.c2lnbmF0dXJl`;

// Far from the real time, so a check made on the system clock instead of the injected one gives another answer.
const START = new Date("2031-05-01T12:00:00Z");
const clock = manualClock(START);
const nowSeconds = () => Math.floor(clock.now().getTime() / 1000);

type Key = Awaited<ReturnType<typeof generateKeyPair>>["privateKey"];
interface KeyPair {
  privateKey: Key;
  jwk: JWK;
}
let k1: KeyPair;
let k2: KeyPair;
let rogue: KeyPair;
let ed: KeyPair;

async function keyPair(alg: string, kid: string): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: "sig" } };
}

const logLines: string[] = [];
const logger = createLogger(
  { level: "debug", name: "admin-auth-test" },
  { write: (line: string) => logLines.push(line) },
);
/** Every token any test presented, to check none of them reached the log. */
const presented = new Set<string>();

function refusals(): { reason?: string; code?: string; caller?: string; claim?: string; scope?: string }[] {
  return logLines.map((line) => JSON.parse(line)).filter((entry) => entry.msg === "admin request refused");
}
const lastRefusal = () => refusals().at(-1);

let dir: string;
let jwksFile: string;
const writeJwks = (keys: JWK[], file = jwksFile) => writeFile(file, JSON.stringify({ keys }));

async function signJwt(
  claims: Record<string, unknown> = {},
  key: Key | Uint8Array = k1.privateKey,
  header: Record<string, unknown> = { alg: "ES256", kid: "k1" },
): Promise<string> {
  const now = nowSeconds();
  return new SignJWT({
    iss: ISSUER,
    aud: AUDIENCE,
    sub: "alice",
    iat: now,
    exp: now + 300,
    scope: "relationships:read audit:read",
    ...claims,
  })
    .setProtectedHeader(header as { alg: string })
    .sign(key);
}

function options(overrides: Partial<AdminAuthOptions> = {}): AdminAuthOptions {
  return {
    tokens: [
      { name: "ops", sha256: sha256(OPS_TOKEN), scopes: ["relationships:read", "relationships:write"] },
      { name: "reader", sha256: sha256(READER_TOKEN), scopes: ["relationships:read"] },
      { name: "shaped", sha256: sha256(JWT_SHAPED_TOKEN), scopes: ["audit:read"] },
    ],
    jwt: { issuer: ISSUER, audience: [AUDIENCE, "other-audience"], jwksFile },
    clock,
    logger,
    ...overrides,
  };
}

const answer = (_req: Request, res: Response) => {
  const caller = adminCallerOf(res)!;
  res.json({ id: caller.id, kind: caller.kind, scopes: [...caller.scopes].sort() });
};

function appWith(auth: AdminAuth, before: RequestHandler[] = [], between: RequestHandler[] = []): express.Express {
  const app = express();
  app.use(...(before.length > 0 ? before : [(_req: Request, _res: Response, next: NextFunction) => next()]));
  app.get("/read", auth.requireScope("relationships:read"), answer);
  app.get("/audit", auth.requireScope("audit:read"), answer);
  app.post("/approve", auth.requireScope("relationships:approve"), answer);
  // authenticate first (as a router-wide step), the scope check after it.
  app.get("/chain", auth.authenticate, ...between, auth.requireScope("relationships:read"), answer);
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => sendProblem(res, problemOf(error)));
  return app;
}

async function listen(server: Server | HttpsServer): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

async function close(server: Server | HttpsServer): Promise<void> {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
}

/** Serves `app` until `stop`. */
async function serve(app: express.Express): Promise<{ call: Caller; stop: () => Promise<void> }> {
  const server = app.listen(0, "127.0.0.1");
  await new Promise((resolve) => server.once("listening", resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const call: Caller = (route, token, scheme = "Bearer", method = "GET") => {
    if (token !== undefined && token !== "") presented.add(token);
    return fetch(`${base}${route}`, {
      method,
      ...(token === undefined ? {} : { headers: { authorization: `${scheme} ${token}`.trimEnd() } }),
    });
  };
  return { call, stop: () => close(server) };
}

/** Serves `app` for the duration of `use`. */
async function withApp<T>(app: express.Express, use: (call: Caller) => Promise<T>): Promise<T> {
  const { call, stop } = await serve(app);
  try {
    return await use(call);
  } finally {
    await stop();
  }
}
type Caller = (route: string, token?: string, scheme?: string, method?: string) => Promise<globalThis.Response>;

async function expectProblem(response: globalThis.Response, status: number, code: string) {
  expect(response.status).toBe(status);
  expect(response.headers.get("content-type")).toBe("application/problem+json");
  const body = (await response.json()) as { code: string; status: number; detail: string };
  expect(body).toMatchObject({ code, status });
  return body;
}

const INVALID_TOKEN = 'Bearer realm="bundlegate-admin", error="invalid_token"';

beforeAll(async () => {
  [k1, k2, rogue, ed] = await Promise.all([
    keyPair("ES256", "k1"),
    keyPair("ES256", "k2"),
    keyPair("ES256", "k1"),
    keyPair("EdDSA", "ed"),
  ]);
  dir = await mkdtemp(path.join(tmpdir(), "bundlegate-admin-auth-"));
  jwksFile = path.join(dir, "jwks.json");
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

beforeEach(async () => {
  clock.set(START);
  await writeJwks([k1.jwk, ed.jwk]);
});

describe("static tokens", () => {
  it("lets a token with the route's scope through as token:<name>", async () => {
    await withApp(appWith(createAdminAuth(options())), async (call) => {
      const response = await call("/read", OPS_TOKEN);
      expect(response.status).toBe(200);
      expect(await response.json()).toEqual({
        id: "token:ops",
        kind: "token",
        scopes: ["relationships:read", "relationships:write"],
      });
    });
  });

  it("answers 403 ERR_ADMIN_FORBIDDEN with insufficient_scope to a token without the scope", async () => {
    await withApp(appWith(createAdminAuth(options())), async (call) => {
      const response = await call("/approve", OPS_TOKEN, "Bearer", "POST");
      await expectProblem(response, 403, "ERR_ADMIN_FORBIDDEN");
      expect(response.headers.get("www-authenticate")).toBe(
        'Bearer realm="bundlegate-admin", error="insufficient_scope", scope="relationships:approve"',
      );
      expect(lastRefusal()).toMatchObject({
        code: "ERR_ADMIN_FORBIDDEN",
        reason: "insufficient_scope",
        caller: "token:ops",
        scope: "relationships:approve",
      });
      await expectProblem(await call("/audit", READER_TOKEN), 403, "ERR_ADMIN_FORBIDDEN");
    });
  });

  it("counts a JWT-shaped token that matches a configured hash as that static token", async () => {
    await withApp(appWith(createAdminAuth(options())), async (call) => {
      const response = await call("/audit", JWT_SHAPED_TOKEN);
      expect(response.status).toBe(200);
      expect(await response.json()).toMatchObject({ id: "token:shaped", kind: "token" });
    });
  });

  it("refuses an unknown token, a missing, blank or malformed header, and another scheme with 401", async () => {
    await withApp(appWith(createAdminAuth(options())), async (call) => {
      const unknown = await call("/read", "not-a-configured-token");
      const body = await expectProblem(unknown, 401, "ERR_ADMIN_UNAUTHENTICATED");
      expect(body.detail).not.toContain("not-a-configured-token");
      expect(unknown.headers.get("www-authenticate")).toBe(INVALID_TOKEN);
      expect(lastRefusal()).toMatchObject({ reason: "unknown_static_token" });

      const none = await call("/read");
      await expectProblem(none, 401, "ERR_ADMIN_UNAUTHENTICATED");
      expect(none.headers.get("www-authenticate")).toBe('Bearer realm="bundlegate-admin"');
      expect(lastRefusal()).toMatchObject({ reason: "no_credentials" });

      const basic = await call("/read", "dXNlcjpwYXNz", "Basic");
      await expectProblem(basic, 401, "ERR_ADMIN_UNAUTHENTICATED");
      expect(basic.headers.get("www-authenticate")).toBe('Bearer realm="bundlegate-admin"');
      expect(lastRefusal()).toMatchObject({ reason: "not_bearer" });

      for (const token of ["", "two words", "bad*chars"]) {
        const response = await call("/read", token);
        await expectProblem(response, 401, "ERR_ADMIN_UNAUTHENTICATED");
        expect(response.headers.get("www-authenticate")).toBe(INVALID_TOKEN);
        expect(lastRefusal()).toMatchObject({ reason: "malformed_token" });
      }
    });
  });

  it("refuses every request when nothing is configured: no route is open by default", async () => {
    await withApp(appWith(createAdminAuth({ tokens: [], clock, logger })), async (call) => {
      await expectProblem(await call("/read", OPS_TOKEN), 401, "ERR_ADMIN_UNAUTHENTICATED");
      await expectProblem(await call("/read", await signJwt()), 401, "ERR_ADMIN_UNAUTHENTICATED");
      expect(lastRefusal()).toMatchObject({ reason: "jwt_not_configured" });
    });
  });
});

describe("JWTs against a JWKS file", () => {
  let call: Caller;
  let stop: () => Promise<void>;

  beforeEach(async () => {
    ({ call, stop } = await serve(appWith(createAdminAuth(options()))));
  });
  afterEach(async () => {
    await stop();
  });

  it("lets a JWT with the scope through as jwt:<iss>#<sub>", async () => {
    const response = await call("/read", await signJwt());
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      id: `jwt:${ISSUER}#alice`,
      kind: "jwt",
      scopes: ["audit:read", "relationships:read"],
    });
  });

  it("answers 403 to a valid JWT without the route's scope", async () => {
    const response = await call("/approve", await signJwt(), "Bearer", "POST");
    await expectProblem(response, 403, "ERR_ADMIN_FORBIDDEN");
    expect(response.headers.get("www-authenticate")).toContain('error="insufficient_scope"');
    expect(lastRefusal()).toMatchObject({ caller: `jwt:${ISSUER}#alice`, scope: "relationships:approve" });
  });

  it("reads scopes as a space-separated string, as an array, and from scp; ignores unknown names", async () => {
    const asArray = await signJwt({ scope: ["relationships:approve", "admin:everything"] });
    expect((await call("/approve", asArray, "Bearer", "POST")).status).toBe(200);
    await expectProblem(await call("/read", asArray), 403, "ERR_ADMIN_FORBIDDEN");

    const asString = await signJwt({ scope: "relationships:approve  relationships:read" });
    expect((await call("/approve", asString, "Bearer", "POST")).status).toBe(200);
    expect((await call("/read", asString)).status).toBe(200);

    const scp = await signJwt({ scope: undefined, scp: ["relationships:approve"] });
    expect((await call("/approve", scp, "Bearer", "POST")).status).toBe(200);

    const none = await signJwt({ scope: undefined });
    await expectProblem(await call("/read", none), 403, "ERR_ADMIN_FORBIDDEN");
  });

  it("accepts an EdDSA JWT and an aud array naming one configured audience", async () => {
    const token = await signJwt({ aud: ["someone", "other-audience"] }, ed.privateKey, { alg: "EdDSA", kid: "ed" });
    expect((await call("/read", token)).status).toBe(200);
  });

  it("checks exp on the injected clock", async () => {
    const token = await signJwt();
    expect((await call("/read", token)).status).toBe(200);
    clock.advance(301_000);
    await expectProblem(await call("/read", token), 401, "ERR_ADMIN_UNAUTHENTICATED");
    expect(lastRefusal()).toMatchObject({ reason: "expired", caller: `jwt:${ISSUER}#alice` });
  });

  const refused: [string, string, () => Promise<string>][] = [
    ["expired", "expired", () => signJwt({ iat: nowSeconds() - 600, exp: nowSeconds() - 1 })],
    ["with nbf in the future", "not_yet_valid", () => signJwt({ nbf: nowSeconds() + 60 })],
    ["from another issuer", "wrong_issuer", () => signJwt({ iss: "https://evil.example/" })],
    ["without iss", "missing_claim", () => signJwt({ iss: undefined })],
    ["for another audience", "wrong_audience", () => signJwt({ aud: "someone-else" })],
    ["without exp", "missing_claim", () => signJwt({ exp: undefined })],
    ["without sub", "missing_claim", () => signJwt({ sub: undefined })],
    ["with an empty sub", "invalid_claim", () => signJwt({ sub: "" })],
    ["with a scope claim that is a number", "invalid_claim", () => signJwt({ scope: 7 })],
    ["signed by another key under a known kid", "bad_signature", () => signJwt({}, rogue.privateKey)],
    ["with an unknown kid", "unknown_kid", () => signJwt({}, k2.privateKey, { alg: "ES256", kid: "k2" })],
    [
      "with an allowed alg its kid's key does not fit",
      "unknown_kid",
      () => signJwt({}, ed.privateKey, { alg: "EdDSA", kid: "k1" }),
    ],
    [
      "with alg none",
      "alg_not_allowed",
      async () => {
        const now = nowSeconds();
        const claims = { iss: ISSUER, aud: AUDIENCE, sub: "alice", exp: now + 300, scope: "relationships:read" };
        return `${b64url({ alg: "none", kid: "k1" })}.${b64url(claims)}.`;
      },
    ],
    [
      "HS256 with the public key as the secret",
      "alg_not_allowed",
      async () => {
        const publicPem = createPublicKey({ key: k1.jwk as never, format: "jwk" })
          .export({ type: "spki", format: "pem" })
          .toString();
        return signJwt({}, new TextEncoder().encode(publicPem), { alg: "HS256", kid: "k1" });
      },
    ],
    [
      "with a tampered payload",
      "bad_signature",
      async () => {
        const [h, , s] = (await signJwt({ scope: "audit:read" })).split(".");
        const claims = {
          iss: ISSUER,
          aud: AUDIENCE,
          sub: "alice",
          exp: nowSeconds() + 300,
          scope: "relationships:read",
        };
        return `${h}.${b64url(claims)}.${s}`;
      },
    ],
    ["that is not JSON inside", "malformed_jwt", async () => "bm90LWpzb24.bm90LWpzb24.c2ln"],
  ];

  it.each(refused)("refuses a JWT %s with 401 (reason %s in the log)", async (_name, reason, make) => {
    const token = await make();
    const response = await call("/read", token);
    const body = await expectProblem(response, 401, "ERR_ADMIN_UNAUTHENTICATED");
    expect(response.headers.get("www-authenticate")).toBe(INVALID_TOKEN);
    expect(body.detail).not.toContain(token);
    expect(lastRefusal()).toMatchObject({ code: "ERR_ADMIN_UNAUTHENTICATED", reason });
  });

  it("authenticates once when authenticate runs before requireScope", async () => {
    const token = await signJwt();
    vi.mocked(jwtVerify).mockClear();
    const response = await call("/chain", token);
    expect(response.status).toBe(200);
    // requireScope takes the caller authenticate found: the JWT is verified once, not once per step.
    expect(jwtVerify).toHaveBeenCalledTimes(1);
    const refusedBefore = refusals().length;
    await expectProblem(await call("/chain", "nope"), 401, "ERR_ADMIN_UNAUTHENTICATED");
    expect(refusals().length).toBe(refusedBefore + 1);
  });
});

describe("JWKS file reloads", () => {
  it("picks up an added key after the cooldown and drops a removed one after the max age", async () => {
    const auth = createAdminAuth(
      options({
        jwt: { issuer: ISSUER, audience: AUDIENCE, jwksFile, jwksCooldownSeconds: 30, jwksMaxAgeSeconds: 300 },
      }),
    );
    await withApp(appWith(auth), async (call) => {
      const k1Token = await signJwt({ exp: nowSeconds() + 3600 });
      expect((await call("/read", k1Token)).status).toBe(200);

      // Rotation: k2 added. Within the cooldown an unknown kid does not cause a re-read.
      await writeJwks([k1.jwk, k2.jwk]);
      const k2Token = await signJwt({ exp: nowSeconds() + 3600 }, k2.privateKey, { alg: "ES256", kid: "k2" });
      await expectProblem(await call("/read", k2Token), 401, "ERR_ADMIN_UNAUTHENTICATED");
      expect(lastRefusal()).toMatchObject({ reason: "unknown_kid" });
      clock.advance(30_000);
      expect((await call("/read", k2Token)).status).toBe(200);

      // k1 retired: still trusted until the loaded copy is max-age old, then refused.
      await writeJwks([k2.jwk]);
      expect((await call("/read", k1Token)).status).toBe(200);
      clock.advance(300_000);
      await expectProblem(await call("/read", k1Token), 401, "ERR_ADMIN_UNAUTHENTICATED");
      expect(lastRefusal()).toMatchObject({ reason: "unknown_kid" });
      expect((await call("/read", k2Token)).status).toBe(200);
    });
  });

  it("keeps the loaded keys when the file turns bad, and warns", async () => {
    const auth = createAdminAuth(
      options({ jwt: { issuer: ISSUER, audience: AUDIENCE, jwksFile, jwksMaxAgeSeconds: 10 } }),
    );
    await withApp(appWith(auth), async (call) => {
      await writeFile(jwksFile, "{ not json");
      clock.advance(10_000);
      expect((await call("/read", await signJwt())).status).toBe(200);
      const warning = logLines.map((line) => JSON.parse(line)).at(-1);
      expect(warning).toMatchObject({ level: 40, code: "ERR_ADMIN_JWKS_INVALID" });
    });
  });
});

describe("JWKS URL", () => {
  let ca: Issued;
  let otherCa: Issued;
  let jwksServer: HttpsServer;
  let jwksUrl: string;
  let served: { status: number; keys: JWK[] };
  let fetches: number;

  beforeAll(async () => {
    ca = await createCa({ trustDomain: "idp.example.org" });
    otherCa = await createCa({ trustDomain: "elsewhere.example.org" });
    const cert = await createWebCert({ issuer: ca, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
    jwksServer = createHttpsServer({ cert: cert.pem, key: cert.keyPem }, (req, res) => {
      fetches += 1;
      if (req.url !== "/jwks.json") {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(served.status, { "content-type": "application/json" }).end(JSON.stringify({ keys: served.keys }));
    });
    jwksUrl = `https://127.0.0.1:${await listen(jwksServer)}/jwks.json`;
  });
  afterAll(async () => {
    await close(jwksServer);
  });
  beforeEach(() => {
    served = { status: 200, keys: [k1.jwk] };
    fetches = 0;
  });

  const urlOptions = (overrides: Record<string, unknown> = {}) =>
    options({ jwt: { issuer: ISSUER, audience: AUDIENCE, jwksUrl, jwksCa: ca.pem, ...overrides } });

  it("verifies JWTs with keys fetched over HTTPS from a server the configured CA vouches for", async () => {
    await withApp(appWith(createAdminAuth(urlOptions())), async (call) => {
      expect((await call("/read", await signJwt())).status).toBe(200);
      expect((await call("/read", await signJwt())).status).toBe(200);
      expect(fetches).toBe(1);
      await expectProblem(await call("/read", await signJwt({}, rogue.privateKey)), 401, "ERR_ADMIN_UNAUTHENTICATED");
      expect(lastRefusal()).toMatchObject({ reason: "bad_signature" });
    });
  });

  it("refetches on an unknown kid once the cooldown has passed", async () => {
    await withApp(appWith(createAdminAuth(urlOptions({ jwksCooldownSeconds: 0 }))), async (call) => {
      expect((await call("/read", await signJwt())).status).toBe(200);
      served = { status: 200, keys: [k1.jwk, k2.jwk] };
      const k2Token = await signJwt({}, k2.privateKey, { alg: "ES256", kid: "k2" });
      expect((await call("/read", k2Token)).status).toBe(200);
      expect(fetches).toBe(2);
    });
  });

  it("answers 503 ERR_ADMIN_AUTH_UNAVAILABLE, not 401, when the JWKS cannot be had", async () => {
    served = { status: 500, keys: [] };
    await withApp(appWith(createAdminAuth(urlOptions())), async (call) => {
      const response = await call("/read", await signJwt());
      await expectProblem(response, 503, "ERR_ADMIN_AUTH_UNAVAILABLE");
      expect(response.headers.get("www-authenticate")).toBeNull();
      expect(lastRefusal()).toMatchObject({ reason: "jwks_unavailable" });
    });
  });

  it("does not trust a JWKS server the configured CA does not vouch for", async () => {
    await withApp(appWith(createAdminAuth(urlOptions({ jwksCa: otherCa.pem }))), async (call) => {
      await expectProblem(await call("/read", await signJwt()), 503, "ERR_ADMIN_AUTH_UNAVAILABLE");
      expect(fetches).toBe(0);
    });
  });

  it("never fetches the JWKS for a token whose alg is not allowed", async () => {
    await withApp(appWith(createAdminAuth(urlOptions())), async (call) => {
      const hs = await signJwt({}, new TextEncoder().encode("secret-secret-secret-secret-32b!"), {
        alg: "HS256",
        kid: "k1",
      });
      await expectProblem(await call("/read", hs), 401, "ERR_ADMIN_UNAUTHENTICATED");
      expect(fetches).toBe(0);
    });
  });

  it("accepts plain http to the loopback host", async () => {
    const plain = express().get("/jwks.json", (_req, res) => {
      res.json({ keys: [k1.jwk] });
    });
    const server = plain.listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    const url = `http://localhost:${(server.address() as AddressInfo).port}/jwks.json`;
    try {
      const auth = createAdminAuth(options({ jwt: { issuer: ISSUER, audience: AUDIENCE, jwksUrl: url } }));
      await withApp(appWith(auth), async (call) => {
        expect((await call("/read", await signJwt())).status).toBe(200);
      });
    } finally {
      await close(server);
    }
  });
});

describe("configuration", () => {
  const jwt = () => ({ issuer: ISSUER, audience: AUDIENCE, jwksFile });
  it.each<[string, () => Partial<AdminAuthOptions>]>([
    ["a sha256 that is not hex", () => ({ tokens: [{ name: "a", sha256: "nope", scopes: [] }] })],
    [
      "a token name used twice",
      () => ({
        tokens: [
          { name: "a", sha256: sha256("x"), scopes: [] },
          { name: "a", sha256: sha256("y"), scopes: [] },
        ],
      }),
    ],
    ["an unknown scope", () => ({ tokens: [{ name: "a", sha256: sha256("x"), scopes: ["root" as never] }] })],
    ["HS256 among the algorithms", () => ({ jwt: { ...jwt(), allowedAlgorithms: ["ES256", "HS256"] } })],
    ["alg none among the algorithms", () => ({ jwt: { ...jwt(), allowedAlgorithms: ["none"] } })],
    ["no audience", () => ({ jwt: { ...jwt(), audience: [] } })],
    ["both a JWKS file and URL", () => ({ jwt: { ...jwt(), jwksUrl: "https://idp.example.org/jwks" } })],
    ["neither a JWKS file nor URL", () => ({ jwt: { issuer: ISSUER, audience: AUDIENCE } })],
    ["a missing JWKS file", () => ({ jwt: { ...jwt(), jwksFile: path.join(dir, "absent.json") } })],
    [
      "a plain http JWKS URL to another host",
      () => ({ jwt: { issuer: ISSUER, audience: AUDIENCE, jwksUrl: "http://idp.example.org/jwks" } }),
    ],
    [
      "a JWKS URL with a password",
      () => ({ jwt: { issuer: ISSUER, audience: AUDIENCE, jwksUrl: "https://u:p@idp.example.org/jwks" } }),
    ],
  ])("refuses %s with ERR_ADMIN_AUTH_CONFIG_INVALID", (_name, overrides) => {
    expect(() => createAdminAuth(options(overrides()))).toThrow(
      expect.objectContaining({ code: "ERR_ADMIN_AUTH_CONFIG_INVALID" }),
    );
  });

  it("refuses a JWKS file holding a private key", async () => {
    const file = path.join(dir, "private.json");
    const { privateKey } = await generateKeyPair("ES256", { extractable: true });
    await writeJwks([{ ...(await exportJWK(privateKey)), kid: "p" }], file);
    expect(() => createAdminAuth(options({ jwt: { ...jwt(), jwksFile: file } }))).toThrow(
      expect.objectContaining({ code: "ERR_ADMIN_AUTH_CONFIG_INVALID" }),
    );
  });

  it("refuses requireScope of a name that is not an admin scope", () => {
    expect(() => createAdminAuth(options()).requireScope("root" as never)).toThrow(
      expect.objectContaining({ code: "ERR_ADMIN_AUTH_CONFIG_INVALID" }),
    );
  });
});

describe("rate limiting", () => {
  it("answers 429 ERR_ADMIN_RATE_LIMITED with Retry-After after max requests per address", async () => {
    const limit = createAdminRateLimit({ windowMs: 60_000, max: 3, clock, logger });
    await withApp(appWith(createAdminAuth(options()), [limit]), async (call) => {
      // Refused attempts count too: the limiter runs before authentication.
      expect((await call("/read", "guess-1")).status).toBe(401);
      expect((await call("/read", "guess-2")).status).toBe(401);
      const third = await call("/read", OPS_TOKEN);
      expect(third.status).toBe(200);
      expect(third.headers.get("ratelimit")).toMatch(/^"admin"; r=0; t=60$/);
      expect(third.headers.get("ratelimit-policy")).toMatch(/^"admin"; q=3; w=60; pk=:[^:]+:$/);

      clock.advance(20_000);
      const limited = await call("/read", OPS_TOKEN);
      await expectProblem(limited, 429, "ERR_ADMIN_RATE_LIMITED");
      expect(limited.headers.get("retry-after")).toBe("40");
      expect(limited.headers.get("x-ratelimit-limit")).toBeNull();
      expect(logLines.map((line) => JSON.parse(line)).at(-1)).toMatchObject({
        code: "ERR_ADMIN_RATE_LIMITED",
        key: "ip:127.0.0.1",
      });

      clock.advance(40_000);
      expect((await call("/read", OPS_TOKEN)).status).toBe(200);
    });
  });

  it("keys by the authenticated caller after authentication: callers do not share a bucket", async () => {
    const perAddress = createAdminRateLimit({ windowMs: 60_000, max: 100, clock, name: "admin-address" });
    const perCaller = createAdminRateLimit({ windowMs: 60_000, max: 2, clock, name: "admin-caller", logger });
    const auth = createAdminAuth(options());
    await withApp(appWith(auth, [perAddress], [perCaller]), async (call) => {
      expect((await call("/chain", OPS_TOKEN)).status).toBe(200);
      expect((await call("/chain", OPS_TOKEN)).status).toBe(200);
      await expectProblem(await call("/chain", OPS_TOKEN), 429, "ERR_ADMIN_RATE_LIMITED");
      // Same address, another caller: its own bucket.
      const reader = await call("/chain", READER_TOKEN);
      expect(reader.status).toBe(200);
      expect(reader.headers.get("ratelimit")).toContain('"admin-caller"; r=1;');
      const jwtCaller = await signJwt();
      expect((await call("/chain", jwtCaller)).status).toBe(200);
      expect((await call("/chain", jwtCaller)).status).toBe(200);
      await expectProblem(await call("/chain", jwtCaller), 429, "ERR_ADMIN_RATE_LIMITED");
      expect(logLines.map((line) => JSON.parse(line)).at(-1)).toMatchObject({
        code: "ERR_ADMIN_RATE_LIMITED",
        key: `caller:jwt:${ISSUER}#alice`,
      });
    });
  });

  it("refuses a window under a second or a max under one", () => {
    expect(() => createAdminRateLimit({ windowMs: 10, max: 1 })).toThrow(
      expect.objectContaining({ code: "ERR_ADMIN_AUTH_CONFIG_INVALID" }),
    );
    expect(() => createAdminRateLimit({ windowMs: 60_000, max: 0 })).toThrow(
      expect.objectContaining({ code: "ERR_ADMIN_AUTH_CONFIG_INVALID" }),
    );
  });
});

describe("logging", () => {
  it("logs each refusal without the token, nor any part of a JWT's signature", async () => {
    const before = refusals().length;
    const tokens = [
      "wrong-static-token-value",
      READER_TOKEN,
      await signJwt({ exp: nowSeconds() - 1 }),
      await signJwt({}, rogue.privateKey),
      await signJwt({ aud: "someone-else" }),
    ];
    await withApp(appWith(createAdminAuth(options())), async (call) => {
      for (const token of tokens) expect((await call("/audit", token)).status).toBeGreaterThanOrEqual(401);
    });
    expect(
      refusals()
        .slice(before)
        .map((entry) => entry.reason),
    ).toEqual(["unknown_static_token", "insufficient_scope", "expired", "bad_signature", "wrong_audience"]);
    // Everything this file presented, in whichever order its tests ran.
    const log = logLines.join("");
    for (const token of presented) {
      expect(log).not.toContain(token);
      const signature = token.split(".")[2];
      if (signature !== undefined && signature.length > 8) expect(log).not.toContain(signature);
    }
    expect(log).not.toContain(OPS_TOKEN);
    expect(log).not.toContain(READER_TOKEN);
  });
});
