/**
 * GET /v1/bundles, /v1/bundles/:trustDomain (spiffe, jwks, pem) and /history over a real HTTP listener.
 */
import { X509Certificate } from "node:crypto";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { withMetadata } from "../../../src/spiffe/bundle.js";
import { parseSpiffeBundle, serializeSpiffeBundle } from "../../../src/spiffe/codec.js";
import { bundleDigest } from "../../../src/spiffe/digest.js";
import { serializePem } from "../../../src/spiffe/pem.js";
import type { StoredBundle } from "../../../src/store/federation-state.js";
import {
  ACTIVE,
  get,
  type Harness,
  type Material,
  makeBundle,
  makeMaterial,
  PENDING,
  put,
  relationship,
  SECOND,
  SUSPENDED,
  startHarness,
} from "./support.js";

let material: Material;
let harness: Harness;
let active: StoredBundle;
let second: StoredBundle;

beforeAll(async () => {
  material = await makeMaterial();
  harness = await startHarness({
    relationships: [
      relationship(ACTIVE, "active"),
      relationship(SECOND, "active"),
      relationship(PENDING, "pending"),
      relationship(SUSPENDED, "suspended"),
      relationship("nobundle.test" as never, "active"),
    ],
    fill: (cache) => {
      active = put(
        cache,
        ACTIVE,
        makeBundle(material, {
          ca: [0, 1],
          jwt: [0],
          wit: [1],
          sequence: 18446744073709551615n,
          refreshHintSeconds: 300,
        }),
      );
      second = put(cache, SECOND, makeBundle(material, { ca: [2], jwt: [], sequence: 3n }));
      put(cache, PENDING, makeBundle(material, { ca: [0], jwt: [] }));
      put(cache, SUSPENDED, makeBundle(material, { ca: [1], jwt: [] }));
    },
  });
});

afterAll(async () => {
  await harness?.close();
});

function expectProblem(reply: Awaited<ReturnType<typeof get>>, status: number, code: string | RegExp) {
  expect(reply.status).toBe(status);
  expect(reply.headers["content-type"]).toBe("application/problem+json");
  const body = JSON.parse(reply.text) as Record<string, unknown>;
  expect(body).toMatchObject({
    status,
    type: expect.any(String),
    title: expect.any(String),
    detail: expect.any(String),
  });
  expect(body.code).toMatch(code);
  return body;
}

describe("GET /v1/bundles/:trustDomain", () => {
  it("serves the stored canonical JSON exactly by default, with a strong ETag and no-cache", async () => {
    const reply = await get(`${harness.url}/v1/bundles/${ACTIVE}`);
    expect(reply.status).toBe(200);
    expect(reply.headers["content-type"]).toBe("application/json");
    expect(reply.text).toBe(active.json);
    expect(reply.text).toContain('"spiffe_sequence":18446744073709551615');
    expect(reply.headers.etag).toMatch(/^"[^"]+"$/);
    expect(reply.headers.etag).toContain(active.digest);
    expect(reply.headers["cache-control"]).toBe("no-cache");
    expect((await get(`${harness.url}/v1/bundles/${ACTIVE}?format=spiffe`)).text).toBe(active.json);
  });

  it("serves the jwt-svid keys only as a JWK Set", async () => {
    const reply = await get(`${harness.url}/v1/bundles/${ACTIVE}?format=jwks`);
    expect(reply.status).toBe(200);
    expect(reply.headers["content-type"]).toBe("application/jwk-set+json");
    const body = JSON.parse(reply.text) as { keys: Array<Record<string, string>> };
    expect(body.keys).toEqual([{ ...material.jwt[0], kid: "jwt-0", use: "sig" }]);
  });

  it("serves the X.509 authorities as PEM", async () => {
    const reply = await get(`${harness.url}/v1/bundles/${ACTIVE}?format=pem`);
    expect(reply.status).toBe(200);
    expect(reply.headers["content-type"]).toBe("application/x-pem-file");
    const bundle = parseSpiffeBundle(active.json).bundle;
    expect(reply.text).toBe(serializePem(bundle));
    const blocks = reply.text.match(/-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/g) ?? [];
    expect(blocks.map((pem) => new X509Certificate(pem).fingerprint256).sort()).toEqual(
      [material.ca[0]!, material.ca[1]!].map((ca) => ca.fingerprint256).sort(),
    );
  });

  it("gives each representation its own ETag and answers a matching If-None-Match with 304", async () => {
    const tags = new Set<string>();
    for (const format of ["spiffe", "jwks", "pem"]) {
      const first = await get(`${harness.url}/v1/bundles/${ACTIVE}?format=${format}`);
      const etag = first.headers.etag!;
      tags.add(etag);
      const again = await get(`${harness.url}/v1/bundles/${ACTIVE}?format=${format}`, { "if-none-match": etag });
      expect(again.status).toBe(304);
      expect(again.body.length).toBe(0);
      expect(again.headers.etag).toBe(etag);
      expect(again.headers["cache-control"]).toBe("no-cache");
      // The weak comparison and lists, as RFC 9110 13.1.2 asks.
      const listed = await get(`${harness.url}/v1/bundles/${ACTIVE}?format=${format}`, {
        "if-none-match": `"other", W/${etag}`,
      });
      expect(listed.status).toBe(304);
      const stale = await get(`${harness.url}/v1/bundles/${ACTIVE}?format=${format}`, { "if-none-match": '"other"' });
      expect(stale.status).toBe(200);
    }
    expect(tags.size).toBe(3);
  });

  it("answers HEAD like GET without a body", async () => {
    const reply = await get(`${harness.url}/v1/bundles/${ACTIVE}`, {}, { method: "HEAD" });
    expect(reply.status).toBe(200);
    expect(reply.body.length).toBe(0);
    expect(reply.headers["content-length"]).toBe(String(Buffer.byteLength(active.json)));
  });

  it("answers 404 problem+json for unknown, pending, suspended and not yet fetched trust domains alike", async () => {
    const details = new Set<string>();
    for (const td of ["unknown.test", PENDING, SUSPENDED, "nobundle.test"]) {
      for (const format of ["spiffe", "jwks", "pem"]) {
        const body = expectProblem(
          await get(`${harness.url}/v1/bundles/${td}?format=${format}`),
          404,
          "ERR_API_BUNDLE_NOT_FOUND",
        );
        details.add(String(body.title));
      }
    }
    expect(details.size).toBe(1);
  });

  it("answers 400 problem+json for an invalid trust domain", async () => {
    for (const td of ["UPPER.test", "bad%20name", "a..b%3Fx", encodeURIComponent("spiffe://partner.test")]) {
      expectProblem(await get(`${harness.url}/v1/bundles/${td}`), 400, /^ERR_(TRUST_DOMAIN|SPIFFEID)_/);
    }
  });

  it("answers 400 problem+json for an unknown or repeated format", async () => {
    expectProblem(await get(`${harness.url}/v1/bundles/${ACTIVE}?format=der`), 400, "ERR_API_BAD_FORMAT");
    expectProblem(await get(`${harness.url}/v1/bundles/${ACTIVE}?format=pem&format=jwks`), 400, "ERR_API_BAD_FORMAT");
  });

  it("answers 400 problem+json for a bad wait", async () => {
    for (const wait of ["61s", "60001ms", "30", "1m", "-1s", "1.5s", "s"]) {
      expectProblem(await get(`${harness.url}/v1/bundles/${ACTIVE}?wait=${wait}`), 400, "ERR_API_BAD_WAIT");
    }
    // Without a matching If-None-Match, a valid wait answers at once.
    expect((await get(`${harness.url}/v1/bundles/${ACTIVE}?wait=60s`)).status).toBe(200);
  });
});

describe("GET /v1/bundles", () => {
  it("shows nothing when authorize says nothing about what the caller may read (fails closed)", async () => {
    const silent = await startHarness({
      relationships: [relationship(ACTIVE, "active")],
      fill: (cache) => void put(cache, ACTIVE, makeBundle(material, { ca: [0], jwt: [] })),
      authorize: (_req, _res, next) => next(),
    });
    try {
      const reply = await get(`${silent.url}/v1/bundles`);
      expect(reply.status).toBe(200);
      expect(JSON.parse(reply.text)).toEqual({ trust_domains: {} });
    } finally {
      await silent.close();
    }
  });

  it("serves a SPIFFE Bundle Map of the active relationships' bundles, without refresh hints", async () => {
    const reply = await get(`${harness.url}/v1/bundles`);
    expect(reply.status).toBe(200);
    expect(reply.headers["content-type"]).toBe("application/json");
    expect(reply.headers["cache-control"]).toBe("no-cache");
    const map = JSON.parse(reply.text) as { trust_domains: Record<string, unknown> };
    expect(Object.keys(map.trust_domains)).toEqual([ACTIVE, SECOND]);
    expect(reply.text).not.toContain("spiffe_refresh_hint");
    // Each entry is the canonical bundle (the exact 64-bit sequence included) less the refresh hint.
    const expected = serializeSpiffeBundle(
      withMetadata(parseSpiffeBundle(active.json).bundle, { refreshHintSeconds: undefined }),
    );
    expect(reply.text).toBe(`{"trust_domains":{"${ACTIVE}":${expected},"${SECOND}":${second.json}}}`);
  });

  it("has a strong ETag over its bytes and answers 304", async () => {
    const first = await get(`${harness.url}/v1/bundles`);
    expect(first.headers.etag).toMatch(/^"[^"]+"$/);
    const again = await get(`${harness.url}/v1/bundles`);
    expect(again.headers.etag).toBe(first.headers.etag);
    const conditional = await get(`${harness.url}/v1/bundles`, { "if-none-match": first.headers.etag! });
    expect(conditional.status).toBe(304);
    expect(conditional.body.length).toBe(0);
  });
});

describe("GET /v1/bundles/:trustDomain/history", () => {
  it("lists the stored history, newest first, capped by limit (default 20, max 100)", async () => {
    const bundles = [1n, 2n, 3n].map((sequence) => makeBundle(material, { ca: [0], jwt: [], sequence }));
    const lease = await harness.store.acquireLease(ACTIVE, "test", 60_000);
    for (const [index, bundle] of bundles.entries()) {
      const digest = bundleDigest(bundle);
      const sequence = `${index + 1}`;
      const result = await harness.store.commitFetch(
        ACTIVE,
        lease!.fence,
        {
          kind: "accepted",
          bundle: { json: serializeSpiffeBundle(bundle), digest, sequence },
          previousDigest: index === 0 ? "" : bundleDigest(bundles[index - 1]!),
          history: { digest, sequence, event: "accepted", reasons: [], added: [`added-${index}`], removed: [] },
        },
        { at: 1_700_000_000_000 + index * 1000, success: true, result: "accepted", nextRefreshAt: 1_800_000_000_000 },
        { historyLimit: 200, origin: "test" },
      );
      expect(result).toEqual({ ok: true });
    }
    const reply = await get(`${harness.url}/v1/bundles/${ACTIVE}/history`);
    expect(reply.status).toBe(200);
    expect(reply.headers["content-type"]).toBe("application/json");
    const entries = JSON.parse(reply.text) as Array<Record<string, unknown>>;
    expect(entries.map((entry) => entry.sequence)).toEqual(["3", "2", "1"]);
    expect(entries[0]).toEqual({
      at: new Date(1_700_000_002_000).toISOString(),
      event: "accepted",
      digest: expect.stringMatching(/^[0-9a-f]{64}$/),
      sequence: "3",
      reasons: [],
      added: ["added-2"],
      removed: [],
    });
    const limited = JSON.parse((await get(`${harness.url}/v1/bundles/${ACTIVE}/history?limit=2`)).text) as unknown[];
    expect(limited).toHaveLength(2);
    expect(JSON.parse((await get(`${harness.url}/v1/bundles/${SECOND}/history`)).text)).toEqual([]);
  });

  it("answers 400 for a bad limit and 404 for an inactive relationship", async () => {
    for (const limit of ["0", "101", "abc", "1.5", "-1"]) {
      expectProblem(await get(`${harness.url}/v1/bundles/${ACTIVE}/history?limit=${limit}`), 400, "ERR_API_BAD_LIMIT");
    }
    expect((await get(`${harness.url}/v1/bundles/${ACTIVE}/history?limit=100`)).status).toBe(200);
    for (const td of [PENDING, SUSPENDED, "unknown.test"]) {
      expectProblem(await get(`${harness.url}/v1/bundles/${td}/history`), 404, "ERR_API_BUNDLE_NOT_FOUND");
    }
    expectProblem(await get(`${harness.url}/v1/bundles/Bad.test/history`), 400, /^ERR_TRUST_DOMAIN_/);
  });
});
