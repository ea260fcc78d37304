/**
 * Consumer authentication of every distribution route, generated from the router's own route list
 * (DISTRIBUTION_ROUTES): a route added to the router without authentication fails here. The router runs
 * in a real express app with the real consumer authentication (`createConsumerAuth`): JWT-SVIDs signed with
 * jose against the local bundle's JWT authority, an allow-list per partner trust domain. Also checked: the
 * all-bundles routes show a caller only the partners it may read.
 */
import { request } from "node:http";
import { SignJWT } from "jose";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createConsumerAuth } from "../../src/api/auth/consumer-auth.js";
import { DISTRIBUTION_ROUTES } from "../../src/api/distribution/router.js";
import { createTrustBundle, jwtAuthority, type TrustBundle } from "../../src/spiffe/bundle.js";
import { importPublicJwk } from "../../src/spiffe/public-key.js";
import type { StoredBundle } from "../../src/store/federation-state.js";
import { type CryptoKeyPair, createJwtKey, type JsonWebKey } from "../support/pki.js";
import {
  ACTIVE,
  eventually,
  get,
  type Harness,
  type Material,
  makeBundle,
  makeMaterial,
  openSse,
  put,
  relationship,
  SECOND,
  type SseStream,
  startHarness,
} from "./distribution/support.js";

const LOCAL_TD = "example.org";
const AUDIENCE = "bundlegate";
/** Allowed on ACTIVE only. */
const ONLY_ACTIVE = "spiffe://example.org/agent-active";
/** Allowed on SECOND only. */
const ONLY_SECOND = "spiffe://example.org/agent-second";
/** Allowed on both partners. */
const BOTH = "spiffe://example.org/server";
/** Authenticates, but is allowed on nothing. */
const NOBODY = "spiffe://example.org/stranger";

let material: Material;
let signingKey: { keys: CryptoKeyPair; publicJwk: JsonWebKey };
let otherKey: { keys: CryptoKeyPair; publicJwk: JsonWebKey };
let localBundle: TrustBundle;
let harness: Harness;
const partnerBundles: StoredBundle[] = [];
let nextSequence = 1n;

const now = () => Math.floor(Date.now() / 1000);

async function jwtSvid(
  sub: string,
  options: { aud?: string; exp?: number; key?: CryptoKeyPair; kid?: string } = {},
): Promise<string> {
  return new SignJWT({ sub, aud: options.aud ?? AUDIENCE, exp: options.exp ?? now() + 300, iat: now() })
    .setProtectedHeader({ alg: "ES256", kid: options.kid ?? "k1", typ: "JWT" })
    .sign((options.key ?? signingKey.keys).privateKey);
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

beforeAll(async () => {
  material = await makeMaterial();
  [signingKey, otherKey] = await Promise.all([createJwtKey(), createJwtKey()]);
  const imported = importPublicJwk(signingKey.publicJwk as Record<string, unknown>);
  if (!imported.ok) throw new Error(imported.message);
  localBundle = createTrustBundle({ jwtAuthorities: [jwtAuthority("k1", imported.jwk)] });
  harness = await startHarness({
    relationships: [relationship(ACTIVE, "active"), relationship(SECOND, "active")],
    fill: (cache) => {
      partnerBundles.push(put(cache, ACTIVE, makeBundle(material, { ca: [0], jwt: [0], sequence: nextSequence++ })));
      partnerBundles.push(put(cache, SECOND, makeBundle(material, { ca: [2], jwt: [1], sequence: nextSequence++ })));
    },
    authorize: createConsumerAuth({
      trustDomain: LOCAL_TD,
      localBundle: () => localBundle,
      audience: [AUDIENCE],
      tokens: [],
      allow: { [ACTIVE]: [ONLY_ACTIVE, BOTH], [SECOND]: [ONLY_SECOND, BOTH] },
      clock: () => new Date(),
    }),
  });
});

afterAll(async () => {
  await harness?.close();
});

interface Probe {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
}

/**
 * One request that also works on the SSE stream: a streaming answer is read for a moment and then dropped,
 * so a route that (wrongly) streams to an unauthenticated caller is seen with what it sent.
 */
function probe(path: string, headers: Record<string, string> = {}): Promise<Probe> {
  return new Promise((resolve, reject) => {
    const req = request(`${harness.url}${path}`, { headers }, (res) => {
      const chunks: Buffer[] = [];
      const done = () => {
        clearTimeout(timer);
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") });
        req.destroy();
      };
      const timer = setTimeout(done, 150);
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", done);
    });
    req.on("error", reject);
    req.end();
  });
}

const routes = DISTRIBUTION_ROUTES.map(([method, path]) => ({
  method,
  path,
  perTrustDomain: path.includes(":trustDomain"),
  concrete: path.replace(":trustDomain", ACTIVE),
}));

/** A 401/403 that is the problem and nothing else: no bundle, no tag, no stream. */
function expectRefusal(reply: Probe, status: 401 | 403, code: string): void {
  expect(reply.status).toBe(status);
  expect(reply.headers["content-type"]).toBe("application/problem+json");
  const problem = JSON.parse(reply.text) as Record<string, unknown>;
  expect(Object.keys(problem).sort()).toEqual(["code", "detail", "status", "title", "type"]);
  expect(problem).toMatchObject({ status, code });
  expect(reply.headers.etag).toBeUndefined();
  for (const leak of ["trust_domains", "keys", "x5c", "BEGIN CERTIFICATE", "event:"]) {
    expect(reply.text).not.toContain(leak);
  }
  for (const bundle of partnerBundles) {
    expect(reply.text).not.toContain(bundle.digest);
    expect(reply.text).not.toContain(bundle.json);
  }
  if (status === 401) expect(reply.headers["www-authenticate"]).toMatch(/^Bearer/);
}

describe("every /v1 route requires an allowed caller", () => {
  it("covers a non-empty route list, all under /v1 and all GET", () => {
    expect(routes.length).toBeGreaterThan(0);
    for (const { method, path } of routes) {
      expect(method).toBe("GET");
      expect(path.startsWith("/v1/")).toBe(true);
    }
  });

  describe.each(routes)("$method $path", ({ concrete, perTrustDomain }) => {
    it("refuses a request with no credentials (401 ERR_AUTH_REQUIRED)", async () => {
      expectRefusal(await probe(concrete), 401, "ERR_AUTH_REQUIRED");
      // Another scheme than Bearer is no credential either.
      expectRefusal(await probe(concrete, { authorization: "Basic dXNlcjpwYXNz" }), 401, "ERR_AUTH_REQUIRED");
    });

    it("refuses a JWT signed by a key the local bundle does not hold (401)", async () => {
      const forged = await jwtSvid(BOTH, { key: otherKey.keys });
      expectRefusal(await probe(concrete, bearer(forged)), 401, "ERR_AUTH_INVALID");
    });

    it("refuses an expired JWT-SVID (401)", async () => {
      const expired = await jwtSvid(BOTH, { exp: now() - 60 });
      expectRefusal(await probe(concrete, bearer(expired)), 401, "ERR_AUTH_INVALID");
    });

    it("refuses a JWT-SVID for another audience (401)", async () => {
      const elsewhere = await jwtSvid(BOTH, { aud: "someone-else" });
      expectRefusal(await probe(concrete, bearer(elsewhere)), 401, "ERR_AUTH_INVALID");
    });

    it("refuses a valid JWT-SVID of a caller that is not allowed (403)", async () => {
      // Per trust domain: allowed elsewhere but not on ACTIVE. All bundles: allowed on nothing.
      const notAllowed = await jwtSvid(perTrustDomain ? ONLY_SECOND : NOBODY);
      expectRefusal(await probe(concrete, bearer(notAllowed)), 403, "ERR_AUTH_FORBIDDEN");
      // A caller allowed nowhere is refused on every route.
      expectRefusal(await probe(concrete, bearer(await jwtSvid(NOBODY))), 403, "ERR_AUTH_FORBIDDEN");
    });

    it("lets an allowed caller through", async () => {
      for (const caller of [ONLY_ACTIVE, BOTH]) {
        const reply = await probe(concrete, bearer(await jwtSvid(caller)));
        expect(reply.status).not.toBe(401);
        expect(reply.status).not.toBe(403);
        expect(reply.status).toBe(200);
      }
      await eventually(() => harness.router.activity().streams === 0);
    });
  });
});

describe("the all-bundles routes show only the partners the caller may read", () => {
  it("/v1/bundles holds only the allowed trust domains, with the ETag of those bytes", async () => {
    const onlyActive = await get(`${harness.url}/v1/bundles`, bearer(await jwtSvid(ONLY_ACTIVE)));
    const onlySecond = await get(`${harness.url}/v1/bundles`, bearer(await jwtSvid(ONLY_SECOND)));
    const both = await get(`${harness.url}/v1/bundles`, bearer(await jwtSvid(BOTH)));
    for (const reply of [onlyActive, onlySecond, both]) expect(reply.status).toBe(200);
    expect(Object.keys(JSON.parse(onlyActive.text).trust_domains)).toEqual([ACTIVE]);
    expect(Object.keys(JSON.parse(onlySecond.text).trust_domains)).toEqual([SECOND]);
    expect(Object.keys(JSON.parse(both.text).trust_domains).sort()).toEqual([ACTIVE, SECOND].sort());
    expect(onlyActive.text).not.toContain(SECOND);
    expect(onlySecond.text).not.toContain(ACTIVE);

    const tags = [onlyActive, onlySecond, both].map((reply) => reply.headers.etag);
    expect(new Set(tags).size).toBe(3);
    // A caller's tag revalidates its own map only.
    const mine = await get(`${harness.url}/v1/bundles`, {
      ...bearer(await jwtSvid(ONLY_ACTIVE)),
      "if-none-match": onlyActive.headers.etag!,
    });
    expect(mine.status).toBe(304);
    const theirs = await get(`${harness.url}/v1/bundles`, {
      ...bearer(await jwtSvid(BOTH)),
      "if-none-match": onlyActive.headers.etag!,
    });
    expect(theirs.status).toBe(200);
    expect(theirs.headers.etag).toBe(both.headers.etag);
  });

  it("/v1/bundles/watch streams only the allowed trust domains' events, live and resumed", async () => {
    const streams: SseStream[] = [];
    const open = async (sub: string, headers: Record<string, string> = {}) => {
      const before = harness.router.activity().streams;
      const stream = await openSse(`${harness.url}/v1/bundles/watch`, {
        ...bearer(await jwtSvid(sub)),
        ...headers,
      });
      streams.push(stream);
      expect(stream.status).toBe(200);
      await eventually(() => harness.router.activity().streams > before);
      return stream;
    };
    try {
      const onlyActive = await open(ONLY_ACTIVE);
      const both = await open(BOTH);
      const second = put(harness.cache, SECOND, makeBundle(material, { ca: [2], jwt: [0], sequence: nextSequence++ }));
      const active = put(harness.cache, ACTIVE, makeBundle(material, { ca: [1], jwt: [0], sequence: nextSequence++ }));

      const all = await both.waitForEvents(2);
      expect(all.map((event) => JSON.parse(event.data!).trust_domain)).toEqual([SECOND, ACTIVE]);
      const [first] = await onlyActive.waitForEvents(1);
      // The SECOND event was written first; had it been sent, it would have been the first one seen.
      expect(first).toEqual({
        id: all[1]!.id,
        event: "change",
        data: JSON.stringify({ trust_domain: ACTIVE, sequence: active.sequence, digest: active.digest }),
      });
      expect(JSON.parse(all[0]!.data!).digest).toBe(second.digest);

      // Resuming replays only the allowed trust domain's missed events, then streams its live ones.
      const resumed = await open(ONLY_ACTIVE, { "last-event-id": String(Number(all[0]!.id) - 1) });
      const [replayed] = await resumed.waitForEvents(1);
      expect(replayed!.id).toBe(all[1]!.id);
      put(harness.cache, SECOND, makeBundle(material, { ca: [2], jwt: [1], sequence: nextSequence++ }));
      const later = put(harness.cache, ACTIVE, makeBundle(material, { ca: [0], jwt: [0], sequence: nextSequence++ }));
      const [, live] = await resumed.waitForEvents(2);
      expect(JSON.parse(live!.data!)).toEqual({ trust_domain: ACTIVE, sequence: later.sequence, digest: later.digest });
      expect(Number(live!.id)).toBe(Number(all[1]!.id) + 2);
      expect(onlyActive.events.every((event) => JSON.parse(event.data!).trust_domain === ACTIVE)).toBe(true);

      // A Last-Event-ID that cannot be resumed from still gets the reset, filtered caller or not.
      const reset = await open(ONLY_SECOND, { "last-event-id": "999999" });
      const [resetEvent] = await reset.waitForEvents(1);
      expect(resetEvent!.event).toBe("reset");
      expect(resetEvent!.id).toBe(live!.id);
    } finally {
      for (const stream of streams) stream.close();
      await eventually(() => harness.router.activity().streams === 0);
    }
  });
});
