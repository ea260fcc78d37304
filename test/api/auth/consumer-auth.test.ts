/**
 * Consumer authentication of the distribution API over real listeners: JWT-SVIDs signed with real keys,
 * static bearer tokens over HTTP, and X509-SVID client certificates over a real node:https server.
 */
import { createHash, createPublicKey, X509Certificate } from "node:crypto";
import type { Server } from "node:http";
import { createServer as createHttpsServer, request as httpsRequest } from "node:https";
import type { AddressInfo } from "node:net";
import express, { type NextFunction, type Request, type Response } from "express";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  allowedTrustDomainsOf,
  type ConsumerAuthOptions,
  callerOf,
  createConsumerAuth,
} from "../../../src/api/auth/consumer-auth.js";
import { problemOf, sendProblem } from "../../../src/api/distribution/problem.js";
import {
  createTrustBundle,
  jwtAuthority,
  type TrustBundle,
  x509AuthorityFromCertificate,
} from "../../../src/spiffe/bundle.js";
import { importPublicJwk, type PublicJwk } from "../../../src/spiffe/public-key.js";
import { type CryptoKeyPair, createCa, createJwtKey, createSvid, type Issued } from "../../support/pki.js";

const TD = "example.org";
const AUDIENCE = "bundlegate";
const AGENT = "spiffe://example.org/agent";
const ADMIN = "spiffe://example.org/admin";
const STRANGER = "spiffe://example.org/stranger";
const CI_TOKEN = "ci-token-value-1234567890";
const SVC_TOKEN = "svc-token-value-0987654321";
const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

function publicJwk(raw: object): PublicJwk {
  const imported = importPublicJwk(raw as Record<string, unknown>);
  if (!imported.ok) throw new Error(imported.message);
  return imported.jwk;
}

let jwtKey: { keys: CryptoKeyPair; publicJwk: object };
let otherJwtKey: { keys: CryptoKeyPair; publicJwk: object };
let ca: Issued;
let bundle: TrustBundle;

function options(overrides: Partial<ConsumerAuthOptions> = {}): ConsumerAuthOptions {
  return {
    trustDomain: TD,
    localBundle: () => bundle,
    audience: [AUDIENCE, "other-audience"],
    tokens: [
      { name: "ci", sha256: sha256(CI_TOKEN) },
      { name: "svc", sha256: sha256(SVC_TOKEN), spiffeId: "spiffe://example.org/svc" },
    ],
    allow: {
      "partner.org": [AGENT, "token:ci", "spiffe://example.org/svc"],
      "other.org": ["*"],
      "*": [ADMIN],
    },
    clock: () => new Date(),
    ...overrides,
  };
}

function appWith(opts: ConsumerAuthOptions): express.Express {
  const app = express();
  const auth = createConsumerAuth(opts);
  const answer = (_req: Request, res: Response) => {
    const allowed = allowedTrustDomainsOf(res);
    res.json({
      caller: callerOf(res),
      partner: allowed("partner.org"),
      other: allowed("other.org"),
      third: allowed("third.org"),
    });
  };
  app.get("/v1/bundles", auth, answer);
  app.get("/v1/bundles/:trustDomain", auth, answer);
  app.use((error: unknown, _req: Request, res: Response, _next: NextFunction) => sendProblem(res, problemOf(error)));
  return app;
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

async function signJwt(
  claims: Record<string, unknown>,
  key: CryptoKeyPair = jwtKey.keys,
  header: Record<string, unknown> = { alg: "ES256", kid: "k1" },
): Promise<string> {
  const now = Math.floor(Date.now() / 1000);
  return new SignJWT({ sub: AGENT, aud: AUDIENCE, exp: now + 300, iat: now, ...claims })
    .setProtectedHeader(header as { alg: string })
    .sign(key.privateKey);
}

function b64url(value: object): string {
  return Buffer.from(JSON.stringify(value)).toString("base64url");
}

beforeAll(async () => {
  jwtKey = await createJwtKey();
  otherJwtKey = await createJwtKey();
  ca = await createCa({ trustDomain: TD });
  bundle = createTrustBundle({
    x509Authorities: [x509AuthorityFromCertificate(new X509Certificate(ca.der))],
    jwtAuthorities: [jwtAuthority("k1", publicJwk(jwtKey.publicJwk))],
  });
});

describe("bearer credentials over HTTP", () => {
  let server: Server;
  let base: string;

  beforeAll(async () => {
    server = appWith(options()).listen(0, "127.0.0.1");
    await new Promise((resolve) => server.once("listening", resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  const get = (path: string, token?: string, scheme = "Bearer") =>
    fetch(`${base}${path}`, token === undefined ? {} : { headers: { authorization: `${scheme} ${token}` } });

  async function expectProblem(response: globalThis.Response, status: number, code: string) {
    expect(response.status).toBe(status);
    expect(response.headers.get("content-type")).toBe("application/problem+json");
    const body = (await response.json()) as { code: string; status: number; detail: string };
    expect(body.code).toBe(code);
    expect(body.status).toBe(status);
    if (status === 401) expect(response.headers.get("www-authenticate")).toMatch(/^Bearer/);
    return body;
  }

  it("accepts a valid JWT-SVID and records the caller", async () => {
    const response = await get("/v1/bundles/partner.org", await signJwt({}));
    expect(response.status).toBe(200);
    expect(await response.json()).toEqual({
      caller: { kind: "jwt", id: AGENT },
      partner: true,
      other: true,
      third: false,
    });
  });

  it("accepts a JWT-SVID whose aud array names one configured audience", async () => {
    const response = await get("/v1/bundles/partner.org", await signJwt({ aud: ["x", "other-audience"] }));
    expect(response.status).toBe(200);
  });

  it("answers a request without credentials with 401 ERR_AUTH_REQUIRED and WWW-Authenticate: Bearer", async () => {
    const response = await get("/v1/bundles/partner.org");
    await expectProblem(response, 401, "ERR_AUTH_REQUIRED");
    expect(response.headers.get("www-authenticate")).toBe("Bearer");
  });

  it("treats another authorization scheme as no credentials", async () => {
    await expectProblem(await get("/v1/bundles/partner.org", "dXNlcjpwYXNz", "Basic"), 401, "ERR_AUTH_REQUIRED");
  });

  it("refuses an empty bearer token", async () => {
    await expectProblem(await get("/v1/bundles/partner.org", ""), 401, "ERR_AUTH_INVALID");
  });

  const refused: [string, () => Promise<string>][] = [
    ["signed by a key not in the bundle", () => signJwt({}, otherJwtKey.keys)],
    ["expired", () => signJwt({ exp: Math.floor(Date.now() / 1000) - 10 })],
    ["without exp", () => signJwt({ exp: undefined })],
    ["for another audience", () => signJwt({ aud: "someone-else" })],
    ["without aud", () => signJwt({ aud: undefined })],
    ["with a sub in another trust domain", () => signJwt({ sub: "spiffe://partner.org/agent" })],
    ["with a sub that is not a SPIFFE ID", () => signJwt({ sub: "agent" })],
    ["with the trust domain's own ID as sub", () => signJwt({ sub: "spiffe://example.org" })],
    ["without kid", () => signJwt({}, jwtKey.keys, { alg: "ES256" })],
    ["with an unknown kid", () => signJwt({}, jwtKey.keys, { alg: "ES256", kid: "k2" })],
    ["with typ other than JWT/JOSE", () => signJwt({}, jwtKey.keys, { alg: "ES256", kid: "k1", typ: "at+jwt" })],
    [
      "with alg none",
      async () => {
        const now = Math.floor(Date.now() / 1000);
        return `${b64url({ alg: "none", kid: "k1" })}.${b64url({ sub: AGENT, aud: AUDIENCE, exp: now + 300 })}.`;
      },
    ],
    [
      "HS256 with the public key as the secret",
      async () => {
        const now = Math.floor(Date.now() / 1000);
        const publicPem = createPublicKey({ key: jwtKey.publicJwk as never, format: "jwk" })
          .export({ type: "spki", format: "pem" })
          .toString();
        return new SignJWT({ sub: AGENT, aud: AUDIENCE, exp: now + 300 })
          .setProtectedHeader({ alg: "HS256", kid: "k1" })
          .sign(new TextEncoder().encode(publicPem));
      },
    ],
    [
      "with a tampered payload",
      async () => {
        const [h, , s] = (await signJwt({})).split(".");
        return `${h}.${b64url({ sub: ADMIN, aud: AUDIENCE, exp: Math.floor(Date.now() / 1000) + 300 })}.${s}`;
      },
    ],
  ];

  it.each(refused)("refuses a JWT-SVID %s with 401 ERR_AUTH_INVALID", async (_name, make) => {
    const token = await make();
    const response = await get("/v1/bundles/partner.org", token);
    const body = await expectProblem(response, 401, "ERR_AUTH_INVALID");
    expect(response.headers.get("www-authenticate")).toBe('Bearer error="invalid_token"');
    expect(body.detail).not.toContain(token);
  });

  it("refuses EdDSA, which JWT-SVID.md does not list, even from a bundle key", async () => {
    const ed = await createJwtKey("Ed25519");
    const saved = bundle;
    bundle = createTrustBundle({
      x509Authorities: saved.x509Authorities,
      jwtAuthorities: [...saved.jwtAuthorities.values(), jwtAuthority("ed", publicJwk(ed.publicJwk))],
    });
    try {
      const token = await signJwt({}, ed.keys, { alg: "EdDSA", kid: "ed" });
      await expectProblem(await get("/v1/bundles/partner.org", token), 401, "ERR_AUTH_INVALID");
    } finally {
      bundle = saved;
    }
  });

  it("uses the injected clock for exp", async () => {
    const late = appWith(options({ clock: () => new Date(Date.now() + 3600_000) }));
    const lateServer = late.listen(0, "127.0.0.1");
    await new Promise((resolve) => lateServer.once("listening", resolve));
    try {
      const url = `http://127.0.0.1:${(lateServer.address() as AddressInfo).port}/v1/bundles/partner.org`;
      const response = await fetch(url, { headers: { authorization: `Bearer ${await signJwt({})}` } });
      await expectProblem(response, 401, "ERR_AUTH_INVALID");
    } finally {
      await new Promise((resolve) => lateServer.close(resolve));
    }
  });

  it("accepts a configured static token as token:<name>", async () => {
    const response = await get("/v1/bundles/partner.org", CI_TOKEN);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { caller: unknown }).caller).toEqual({ kind: "token", id: "token:ci" });
  });

  it("accepts a static token that stands for a SPIFFE ID as that ID", async () => {
    const response = await get("/v1/bundles/partner.org", SVC_TOKEN);
    expect(response.status).toBe(200);
    expect(((await response.json()) as { caller: unknown }).caller).toEqual({
      kind: "token",
      id: "spiffe://example.org/svc",
    });
  });

  it("refuses a wrong token without echoing it", async () => {
    const body = await expectProblem(await get("/v1/bundles/partner.org", "wrong-token"), 401, "ERR_AUTH_INVALID");
    expect(body.detail).not.toContain("wrong-token");
  });

  it("answers 403 ERR_AUTH_FORBIDDEN to an authenticated caller not allowed on the trust domain", async () => {
    // token:ci is allowed on other.org through that domain's "*"; the stranger only there.
    expect((await get("/v1/bundles/other.org", CI_TOKEN)).status).toBe(200);
    await expectProblem(await get("/v1/bundles/third.org", CI_TOKEN), 403, "ERR_AUTH_FORBIDDEN");
    expect((await get("/v1/bundles/partner.org", await signJwt({ sub: AGENT }))).status).toBe(200);
    await expectProblem(
      await get("/v1/bundles/partner.org", await signJwt({ sub: STRANGER })),
      403,
      "ERR_AUTH_FORBIDDEN",
    );
  });

  it("lets a caller allowed on every trust domain read any of them", async () => {
    const token = await signJwt({ sub: ADMIN });
    expect((await get("/v1/bundles/third.org", token)).status).toBe(200);
    expect((await get("/v1/bundles/not..a..name", token)).status).toBe(200);
  });

  it("does not treat a trust domain named * or an inherited property as an allow-list entry", async () => {
    await expectProblem(await get("/v1/bundles/constructor", CI_TOKEN), 403, "ERR_AUTH_FORBIDDEN");
    await expectProblem(await get("/v1/bundles/__proto__", CI_TOKEN), 403, "ERR_AUTH_FORBIDDEN");
    await expectProblem(await get("/v1/bundles/*", CI_TOKEN), 403, "ERR_AUTH_FORBIDDEN");
  });

  it("lets an all-bundles request through with the caller's allowed subset", async () => {
    const response = await get("/v1/bundles", CI_TOKEN);
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ partner: true, other: true, third: false });
    const admin = await get("/v1/bundles", await signJwt({ sub: ADMIN }));
    expect(await admin.json()).toMatchObject({ partner: true, other: true, third: true });
  });

  it("refuses an all-bundles request from a caller allowed nowhere", async () => {
    const strict = appWith(options({ allow: { "partner.org": [AGENT] } }));
    const strictServer = strict.listen(0, "127.0.0.1");
    await new Promise((resolve) => strictServer.once("listening", resolve));
    try {
      const url = `http://127.0.0.1:${(strictServer.address() as AddressInfo).port}/v1/bundles`;
      const response = await fetch(url, { headers: { authorization: `Bearer ${await signJwt({ sub: STRANGER })}` } });
      await expectProblem(response, 403, "ERR_AUTH_FORBIDDEN");
    } finally {
      await new Promise((resolve) => strictServer.close(resolve));
    }
  });

  it("follows the local bundle: a JWT authority removed from it stops authenticating", async () => {
    const token = await signJwt({});
    const saved = bundle;
    bundle = createTrustBundle({ x509Authorities: saved.x509Authorities });
    try {
      await expectProblem(await get("/v1/bundles/partner.org", token), 401, "ERR_AUTH_INVALID");
    } finally {
      bundle = saved;
    }
    expect((await get("/v1/bundles/partner.org", token)).status).toBe(200);
  });
});

describe("configuration", () => {
  it.each([
    ["a bad trust domain", { trustDomain: "Example.org" }],
    ["no audience", { audience: [] }],
    ["a sha256 that is not hex", { tokens: [{ name: "a", sha256: "nope" }] }],
    ["an allow-list key that is not a trust domain", { allow: { "spiffe://x": ["*"] } }],
    ["an allowed ID that is neither a SPIFFE ID nor a token", { allow: { "partner.org": ["token:unknown"] } }],
  ] as [string, Partial<ConsumerAuthOptions>][])("refuses %s", (_name, overrides) => {
    expect(() => createConsumerAuth(options(overrides))).toThrow(
      expect.objectContaining({ code: "ERR_AUTH_CONFIG_INVALID" }),
    );
  });
});

describe("X509-SVID client certificates over HTTPS", () => {
  let server: Server;
  let port: number;
  let serverCa: Issued;

  beforeAll(async () => {
    serverCa = await createCa({ trustDomain: "gateway.test" });
    const serving = await createSvid({
      issuer: serverCa,
      spiffeId: "spiffe://example.org/gateway",
      dnsNames: ["localhost"],
    });
    server = createHttpsServer(
      { cert: serving.pem, key: serving.keyPem, requestCert: true, rejectUnauthorized: false },
      appWith(options()),
    );
    port = await listen(server);
  });
  afterAll(async () => {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  });

  function get(
    path: string,
    client?: { cert: string; key: string },
    headers: Record<string, string> = {},
  ): Promise<{ status: number; headers: Record<string, unknown>; body: string }> {
    return new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: "127.0.0.1",
          port,
          path,
          ca: serverCa.pem,
          servername: "localhost",
          checkServerIdentity: () => undefined,
          agent: false,
          headers,
          ...(client ?? {}),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (chunk: Buffer) => chunks.push(chunk));
          res.on("end", () =>
            resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }),
          );
        },
      );
      req.on("error", reject);
      req.end();
    });
  }

  it("accepts an X509-SVID of this trust domain chained to the local bundle", async () => {
    const svid = await createSvid({ issuer: ca, spiffeId: AGENT });
    const response = await get("/v1/bundles/partner.org", { cert: svid.pem, key: svid.keyPem });
    expect(response.status).toBe(200);
    expect(JSON.parse(response.body)).toMatchObject({ caller: { kind: "x509", id: AGENT } });
  });

  it("reads the client certificate once per connection: a second request on it still authenticates", async () => {
    const svid = await createSvid({ issuer: ca, spiffeId: AGENT });
    const agent = new (await import("node:https")).Agent({ keepAlive: true, maxSockets: 1 });
    try {
      const once = (): Promise<{ status: number; port: number | undefined }> =>
        new Promise((resolve, reject) => {
          const req = httpsRequest(
            {
              host: "127.0.0.1",
              port,
              path: "/v1/bundles/partner.org",
              ca: serverCa.pem,
              checkServerIdentity: () => undefined,
              agent,
              cert: svid.pem,
              key: svid.keyPem,
            },
            (res) => {
              res.resume();
              res.on("end", () => resolve({ status: res.statusCode ?? 0, port: res.socket?.localPort }));
            },
          );
          req.on("error", reject);
          req.end();
        });
      const first = await once();
      const second = await once();
      expect([first.status, second.status]).toEqual([200, 200]);
      expect(second.port).toBe(first.port);
    } finally {
      agent.destroy();
    }
  });

  it("refuses an X509-SVID of another trust domain with 401 ERR_AUTH_INVALID", async () => {
    const otherCa = await createCa({ trustDomain: "partner.org" });
    const svid = await createSvid({ issuer: otherCa, spiffeId: "spiffe://partner.org/agent" });
    const response = await get("/v1/bundles/partner.org", { cert: svid.pem, key: svid.keyPem });
    expect(response.status).toBe(401);
    expect(response.headers["content-type"]).toBe("application/problem+json");
    expect(JSON.parse(response.body)).toMatchObject({ code: "ERR_AUTH_INVALID" });
  });

  it("refuses an SVID of this trust domain's name issued by a CA outside the local bundle", async () => {
    const rogueCa = await createCa({ trustDomain: TD });
    const svid = await createSvid({ issuer: rogueCa, spiffeId: AGENT });
    const response = await get("/v1/bundles/partner.org", { cert: svid.pem, key: svid.keyPem });
    expect(response.status).toBe(401);
    expect(JSON.parse(response.body)).toMatchObject({ code: "ERR_AUTH_INVALID" });
  });

  it("refuses an expired SVID", async () => {
    const svid = await createSvid({
      issuer: ca,
      spiffeId: AGENT,
      notBefore: new Date(Date.now() - 7200_000),
      notAfter: new Date(Date.now() - 3600_000),
    });
    const response = await get("/v1/bundles/partner.org", { cert: svid.pem, key: svid.keyPem });
    expect(response.status).toBe(401);
    expect(JSON.parse(response.body)).toMatchObject({ code: "ERR_AUTH_INVALID" });
  });

  it("refuses a certificate with two URI SANs", async () => {
    const svid = await createSvid({ issuer: ca, spiffeId: [AGENT, ADMIN] });
    const response = await get("/v1/bundles/partner.org", { cert: svid.pem, key: svid.keyPem });
    expect(response.status).toBe(401);
  });

  it("answers 403 to an SVID not allowed on the trust domain", async () => {
    const svid = await createSvid({ issuer: ca, spiffeId: STRANGER });
    const response = await get("/v1/bundles/partner.org", { cert: svid.pem, key: svid.keyPem });
    expect(response.status).toBe(403);
    expect(JSON.parse(response.body)).toMatchObject({ code: "ERR_AUTH_FORBIDDEN" });
  });

  it("falls back to a bearer token when the client sends no certificate", async () => {
    expect((await get("/v1/bundles/partner.org", undefined, { authorization: `Bearer ${CI_TOKEN}` })).status).toBe(200);
    const none = await get("/v1/bundles/partner.org");
    expect(none.status).toBe(401);
    expect(JSON.parse(none.body)).toMatchObject({ code: "ERR_AUTH_REQUIRED" });
  });
});
