import { X509Certificate } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { beforeAll, beforeEach, describe, expect, it } from "vitest";
import { type BundleCache, createBundleCache } from "../../src/federation/bundle-cache.js";
import { silentLogger } from "../../src/logging.js";
import { createRelayHandler, type RelayRequestHandler, trustDomainOf } from "../../src/relay/handler.js";
import { createRelayServer, type RelayServer } from "../../src/relay/server.js";
import { loadTlsCredentials } from "../../src/sources/tls-credentials.js";
import type { TlsCredentials } from "../../src/sources/types.js";
import { createTrustBundle, type TrustBundle, x509AuthorityFromCertificate } from "../../src/spiffe/bundle.js";
import { parseSpiffeBundle, serializeSpiffeBundle } from "../../src/spiffe/codec.js";
import { bundleDigest } from "../../src/spiffe/digest.js";
import { parseTrustDomain } from "../../src/spiffe/id.js";
import type { StoredBundle } from "../../src/store/federation-state.js";
import { fingerprintOf, type HttpsReply, type SendOptions, spiffeRequest } from "../support/https-client.js";
import { createCa, createSvid, type Issued } from "../support/pki.js";
import { createWatchedValue, type WatchedValue } from "../support/watched.js";

const GATEWAY_ID = "spiffe://example.org/bundlegate";
const PARTNER_A = parseTrustDomain("partner-a.test");
const PARTNER_B = parseTrustDomain("partner-b.test");
const NOT_SERVED = parseTrustDomain("partner-c.test");
const TIMEOUTS = { headersMs: 5000, requestMs: 10_000, keepAliveMs: 5000 };

let domainCa: Issued;
let gatewaySvid: Issued;
let gatewaySvid2: Issued;
let partnerACa: Issued;
let partnerACa2: Issued;
let partnerBCa: Issued;
let partnerCCa: Issued;
/** This trust domain's bundle: what the internal SPIRE server already trusts. */
let localBundle: TrustBundle;

let cache: BundleCache;
let served: Set<string>;
let credentials: WatchedValue<TlsCredentials>;
let handler: RelayRequestHandler;
let relay: RelayServer;
let port: number;

function authorityOf(ca: Issued) {
  return x509AuthorityFromCertificate(new X509Certificate(ca.der));
}

function storedOf(
  cas: readonly Issued[],
  metadata: { sequence?: bigint; refreshHintSeconds?: number },
  at = 1,
): StoredBundle {
  const bundle = createTrustBundle({ x509Authorities: cas.map(authorityOf), ...metadata });
  return {
    json: serializeSpiffeBundle(bundle),
    digest: bundleDigest(bundle),
    ...(bundle.sequence === undefined ? {} : { sequence: bundle.sequence.toString() }),
    ...(bundle.refreshHintSeconds === undefined ? {} : { refreshHintSeconds: bundle.refreshHintSeconds }),
    acceptedAt: at,
  };
}

function fetchRelay(path: string, options: SendOptions = {}): Promise<HttpsReply> {
  // A go-spiffe-style https_spiffe client: the SVID must chain to this domain's bundle and carry the gateway's ID.
  return spiffeRequest({ port, bundle: localBundle, endpointSpiffeId: GATEWAY_ID }, { path, ...options });
}

beforeAll(async () => {
  [domainCa, partnerACa, partnerACa2, partnerBCa, partnerCCa] = await Promise.all([
    createCa({ trustDomain: "example.org" }),
    createCa({ trustDomain: "partner-a.test" }),
    createCa({ trustDomain: "partner-a.test" }),
    createCa({ trustDomain: "partner-b.test" }),
    createCa({ trustDomain: "partner-c.test" }),
  ]);
  [gatewaySvid, gatewaySvid2] = await Promise.all([
    createSvid({ issuer: domainCa, spiffeId: GATEWAY_ID }),
    createSvid({ issuer: domainCa, spiffeId: GATEWAY_ID }),
  ]);
  localBundle = createTrustBundle({ x509Authorities: [authorityOf(domainCa)] });
});

beforeEach(async () => {
  cache = createBundleCache();
  cache.put(PARTNER_A, storedOf([partnerACa], { sequence: 7n, refreshHintSeconds: 120 }));
  cache.put(PARTNER_B, storedOf([partnerBCa], { sequence: 3n, refreshHintSeconds: 3600 }));
  cache.put(NOT_SERVED, storedOf([partnerCCa], { sequence: 1n }));
  served = new Set([PARTNER_A, PARTNER_B]);
  credentials = createWatchedValue(loadTlsCredentials(gatewaySvid.pem, gatewaySvid.keyPem));
  handler = createRelayHandler({ cache, isServed: (td) => served.has(td) });
  relay = createRelayServer({
    listen: { host: "127.0.0.1", port: 0 },
    handler,
    credentials,
    timeouts: TIMEOUTS,
    logger: silentLogger(),
    closeGraceMs: 500,
  });
  ({ port } = await relay.start());
  return async () => {
    await relay.close();
  };
});

describe("relay over https_spiffe", () => {
  it("serves a partner's canonical bundle with the digest the gateway holds", async () => {
    const reply = await fetchRelay("/federation/partner-a.test");
    expect(reply.status).toBe(200);
    expect(reply.peer).toBe(fingerprintOf(gatewaySvid.der));
    const cached = cache.get(PARTNER_A)!;
    expect(reply.body.toString("utf8")).toBe(cached.stored.json);
    const parsed = parseSpiffeBundle(reply.body).bundle;
    expect(bundleDigest(parsed)).toBe(cached.stored.digest);
    expect(parsed.sequence).toBe(7n);
    expect(parsed.x509Authorities.map((a) => a.fingerprint)).toEqual([authorityOf(partnerACa).fingerprint]);
    expect(reply.headers["content-type"]).toBe("application/json");
    expect(reply.headers["content-length"]).toBe(String(reply.body.length));
    expect(reply.headers.etag).toBe(`"${cached.stored.digest}"`);
    expect(reply.headers["cache-control"]).toBe("public, max-age=120");
    expect(reply.headers["x-content-type-options"]).toBe("nosniff");
  });

  it("serves each partner its own bundle, max-age capped at 300 s", async () => {
    const reply = await fetchRelay("/federation/partner-b.test?ignored=1");
    expect(reply.status).toBe(200);
    expect(reply.body.toString("utf8")).toBe(cache.get(PARTNER_B)!.stored.json);
    expect(reply.headers["cache-control"]).toBe("public, max-age=300");
  });

  it("is refused by a client expecting another SPIFFE ID or trusting another bundle", async () => {
    await expect(
      spiffeRequest(
        { port, bundle: localBundle, endpointSpiffeId: "spiffe://example.org/other" },
        { path: "/federation/partner-a.test" },
      ),
    ).rejects.toThrow(/SPIFFE ID/);
    const partnerBundle = createTrustBundle({ x509Authorities: [authorityOf(partnerACa)] });
    await expect(
      spiffeRequest(
        { port, bundle: partnerBundle, endpointSpiffeId: GATEWAY_ID },
        { path: "/federation/partner-a.test" },
      ),
    ).rejects.toThrow(/chain/);
  });

  it("answers a matching If-None-Match with 304 and no body", async () => {
    const first = await fetchRelay("/federation/partner-a.test");
    const etag = first.headers.etag!;
    const again = await fetchRelay("/federation/partner-a.test", { headers: { "if-none-match": etag } });
    expect(again.status).toBe(304);
    expect(again.body.length).toBe(0);
    expect(again.headers.etag).toBe(etag);
    expect(again.headers["cache-control"]).toBe("public, max-age=120");
    expect(again.headers["content-type"]).toBeUndefined();

    const weak = await fetchRelay("/federation/partner-a.test", { headers: { "if-none-match": `"x", W/${etag}` } });
    expect(weak.status).toBe(304);
    const other = await fetchRelay("/federation/partner-a.test", { headers: { "if-none-match": '"other"' } });
    expect(other.status).toBe(200);
    // Partner B's tag does not revalidate partner A.
    const b = await fetchRelay("/federation/partner-b.test");
    const crossed = await fetchRelay("/federation/partner-a.test", { headers: { "if-none-match": b.headers.etag! } });
    expect(crossed.status).toBe(200);
  });

  it("answers HEAD with the GET headers and no body", async () => {
    const get = await fetchRelay("/federation/partner-a.test");
    const head = await fetchRelay("/federation/partner-a.test", { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    expect(head.headers["content-length"]).toBe(get.headers["content-length"]);
    expect(head.headers.etag).toBe(get.headers.etag);
    expect(head.headers["content-type"]).toBe("application/json");
  });

  it("gives 404 to trust domains not served, unknown, invalid, and to other paths", async () => {
    for (const path of [
      "/federation/partner-c.test", // cached, but the relay is not enabled for it
      "/federation/unknown.test",
      "/federation/",
      "/federation",
      "/federation/Partner-A.test",
      "/federation/partner-a.test/",
      "/federation/partner-a.test/extra",
      "/federation/partner%2Da.test",
      "/federation/spiffe://partner-a.test",
      `/federation/${"a".repeat(300)}`,
      "/",
      "/bundle",
      "/v1/bundles/partner-a.test",
    ]) {
      const reply = await fetchRelay(path);
      expect(reply.status, path).toBe(404);
      expect(reply.body.length, path).toBe(0);
      expect(reply.headers.etag, path).toBeUndefined();
    }
  });

  it("gives 405 with Allow to other methods on a served bundle, 404 elsewhere", async () => {
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"]) {
      const reply = await fetchRelay("/federation/partner-a.test", { method });
      expect(reply.status, method).toBe(405);
      expect(reply.headers.allow, method).toBe("GET, HEAD");
    }
    expect((await fetchRelay("/federation/partner-c.test", { method: "POST" })).status).toBe(404);
  });

  it("serves a cache change on the next request, and stops serving a removed bundle", async () => {
    const before = await fetchRelay("/federation/partner-a.test");
    const next = storedOf([partnerACa, partnerACa2], { sequence: 8n, refreshHintSeconds: 60 }, 2);
    expect(cache.put(PARTNER_A, next)).toBe(true);

    const after = await fetchRelay("/federation/partner-a.test", {
      headers: { "if-none-match": before.headers.etag! },
    });
    expect(after.status).toBe(200);
    expect(after.body.toString("utf8")).toBe(next.json);
    expect(after.headers.etag).toBe(`"${next.digest}"`);
    expect(after.headers["cache-control"]).toBe("public, max-age=60");
    expect(bundleDigest(parseSpiffeBundle(after.body).bundle)).toBe(next.digest);

    cache.delete(PARTNER_A);
    expect((await fetchRelay("/federation/partner-a.test")).status).toBe(404);
  });

  it("follows isServed per request: a suspended relationship is 404 at once", async () => {
    served.delete(PARTNER_B);
    expect((await fetchRelay("/federation/partner-b.test")).status).toBe(404);
    served.add(PARTNER_B);
    expect((await fetchRelay("/federation/partner-b.test")).status).toBe(200);
  });

  it("presents reloaded credentials on new connections and keeps the old ones when TLS refuses the new", async () => {
    credentials.set(loadTlsCredentials(gatewaySvid2.pem, gatewaySvid2.keyPem));
    expect((await fetchRelay("/federation/partner-a.test")).peer).toBe(fingerprintOf(gatewaySvid2.der));

    const current = credentials.current();
    // Passes the type but not OpenSSL: the key belongs to another certificate.
    credentials.set({ ...current, keyPem: gatewaySvid.keyPem, fingerprint: "broken" });
    const reply = await fetchRelay("/federation/partner-a.test");
    expect(reply.status).toBe(200);
    expect(reply.peer).toBe(fingerprintOf(gatewaySvid2.der));
  });
});

describe("relay handler", () => {
  it("prepares responses per cache change, not per request", async () => {
    let reads = 0;
    const base = createBundleCache();
    base.put(PARTNER_A, storedOf([partnerACa], { sequence: 1n }));
    const entry = base.get(PARTNER_A)!;
    const counting = {
      ...entry,
      stored: Object.defineProperty({ ...entry.stored }, "json", {
        get() {
          reads++;
          return entry.stored.json;
        },
      }),
    };
    const fake: BundleCache = { ...base, entries: () => [counting][Symbol.iterator](), subscribe: base.subscribe };
    const h = createRelayHandler({ cache: fake, isServed: () => true });
    for (let i = 0; i < 3; i++) {
      const res = await invoke(h, "GET", "/federation/partner-a.test");
      expect(res.status).toBe(200);
    }
    expect(reads).toBe(1);
    h.dispose();
  });

  it("answers 500 without crashing when isServed throws, and stops following the cache on dispose", async () => {
    const h = createRelayHandler({
      cache,
      isServed: () => {
        throw new Error("boom");
      },
    });
    expect((await invoke(h, "GET", "/federation/partner-a.test")).status).toBe(500);
    h.dispose();
    const h2 = createRelayHandler({ cache, isServed: () => true, pathPrefix: "/relay/" });
    expect((await invoke(h2, "GET", "/relay/partner-a.test")).status).toBe(200);
    expect((await invoke(h2, "GET", "/federation/partner-a.test")).status).toBe(404);
    h2.dispose();
    const before = cache.get(PARTNER_A)!.stored.json;
    cache.put(PARTNER_A, storedOf([partnerACa2], { sequence: 9n }, 5));
    // Disposed: keeps what it last prepared.
    const stale = await invoke(h2, "GET", "/relay/partner-a.test");
    expect(stale.body).toBe(before);
    expect(stale.body).not.toBe(cache.get(PARTNER_A)!.stored.json);
  });

  it("reads the trust domain from origin-form and absolute-form targets", () => {
    expect(trustDomainOf("/federation/partner-a.test", "/federation/")).toBe("partner-a.test");
    expect(trustDomainOf("/federation/partner-a.test?x=/y", "/federation/")).toBe("partner-a.test");
    expect(trustDomainOf("https://gw.example.org/federation/partner-a.test", "/federation/")).toBe("partner-a.test");
    expect(trustDomainOf("https://gw.example.org", "/federation/")).toBeUndefined();
    expect(trustDomainOf("*", "/federation/")).toBeUndefined();
    expect(trustDomainOf(undefined, "/federation/")).toBeUndefined();
  });

  it("refuses a path prefix that does not start and end with /", () => {
    expect(() => createRelayHandler({ cache, isServed: () => true, pathPrefix: "/federation" })).toThrow(TypeError);
  });
});

/** Calls a handler with a minimal request and a response recording what `writeHead` and `end` got. */
function invoke(
  h: (req: IncomingMessage, res: ServerResponse) => void,
  method: string,
  url: string,
  rawHeaders: string[] = [],
): Promise<{ status: number; headers: string[]; body: string }> {
  return new Promise((resolve) => {
    let status = 0;
    let headers: string[] = [];
    const res = {
      writeHead(code: number, list: string[]) {
        status = code;
        headers = list;
        return res;
      },
      end(body?: Buffer) {
        resolve({ status, headers, body: body?.toString("utf8") ?? "" });
        return res;
      },
    };
    h({ method, url, rawHeaders } as unknown as IncomingMessage, res as unknown as ServerResponse);
  });
}
