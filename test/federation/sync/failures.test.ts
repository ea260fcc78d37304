/**
 * Issue 4, acceptance: timeouts, 500s, garbage, an oversize body, a slow drip, redirects to http and to a
 * private address, a wrong SVID, a wrong hostname, and a DNS name resolving to 127.0.0.1 or
 * 169.254.169.254 each fail with their own code and leave the last-known-good in place.
 *
 * Each case: a partner is synced once (the last-known-good), then starts failing. The engine must record
 * the case's code as the status' lastErrorCode, count the failures up, keep the cached and the stored
 * bundle as they were, and never fetch with another result while the failure lasts.
 * Names are resolved by a table the test controls (the fetcher's injectable lookup).
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Relationship } from "../../../src/federation/relationship.js";
import type { ServedBundle } from "../../../src/sources/types.js";
import { parseTrustDomain, type TrustDomain } from "../../../src/spiffe/id.js";
import type { RelationshipStatus } from "../../../src/store/federation-state.js";
import { createCa, createSvid, createWebCert, type Issued } from "../../support/pki.js";
import { type RedisServerHandle, startRedisServer } from "../../support/redis-server.js";
import {
  bundleOf,
  type Cleanup,
  federationConfig,
  openTestRedisStore,
  type PartnerServer,
  partnerCa,
  spiffeRelationship,
  startEngine,
  startPartner,
  tableLookup,
  testFetcher,
  useCleanup,
  waitForSynced,
  waitUntil,
  watchCache,
  webRelationship,
} from "./support.js";

const HINT = 2; // polled every 0.5 s; failures retry after 0.2 s, 0.4 s, then every 0.5 s
const FEDERATION = federationConfig({ headersTimeoutMs: 400, totalTimeoutMs: 900 });
const names = new Map<string, string>();
const FETCHER = testFetcher(FEDERATION, { lookup: tableLookup(names) });

let redis: RedisServerHandle;
let webCa: Issued;
let partner: PartnerServer;
let caseNumber = 0;

beforeAll(async () => {
  redis = await startRedisServer();
  webCa = await createCa({ trustDomain: "web-pki.test", withSpiffeUri: false });
  partner = await startPartner([await webCert(["localhost"])]);
});
afterAll(async () => {
  await partner?.close();
  if (redis.controllable) await redis.stop();
});

function webCert(dnsNames: string[]): Promise<Issued> {
  return createWebCert({ issuer: webCa, dnsNames, ipAddresses: ["127.0.0.1"] });
}

interface FailureCase {
  readonly td: TrustDomain;
  readonly lkg: ServedBundle;
}

function nextDomain(): TrustDomain {
  return parseTrustDomain(`failing-${++caseNumber}.partner.test`);
}

/**
 * Syncs `relationship` once, runs `breakIt`, then checks that the engine fails with `code`: the status
 * names it, consecutive failures grow with every attempt, and the cached and stored bundle stay the LKG.
 */
async function expectFailure(
  cleanup: Cleanup,
  c: FailureCase,
  relationship: Relationship,
  breakIt: () => void | Promise<void>,
  code: string,
): Promise<void> {
  const store = await openTestRedisStore(redis.url, `failures-${c.td}`);
  cleanup.add(() => store.close());
  const node = await startEngine({ store, relationships: [relationship], federation: FEDERATION, fetcher: FETCHER });
  cleanup.add(() => node.stop());
  await waitForSynced(node, c.td, c.lkg.digest);
  const synced = await store.getStatus(c.td);
  expect(synced).toMatchObject({ consecutiveFailures: 0 });
  const watch = watchCache(node.cache, c.td);
  cleanup.add(() => watch.stop());

  const brokenAt = Date.now();
  await breakIt();
  // Failure counts as seen at successive attempts, 1, 2, 3 (the LKG's sync left no error code).
  const counts: number[] = [];
  const status = await waitUntil(
    () => store.getStatus(c.td),
    (s: RelationshipStatus | undefined) => {
      if (s && s.lastErrorCode === code) {
        if (counts.at(-1) !== s.consecutiveFailures) counts.push(s.consecutiveFailures);
      }
      return counts.length >= 3;
    },
    15_000,
  );
  expect(status?.lastErrorCode).toBe(code);
  expect(status?.lastResult).toBe(code);
  // Sampled, so a step may fall between two reads; what matters is that the count only ever grows.
  expect(counts[0]).toBeLessThanOrEqual(2);
  expect(counts).toEqual([...counts].sort((x, y) => x - y));
  expect(new Set(counts).size).toBe(counts.length);
  // No success since the break (a poll already under way when it came may still have succeeded).
  expect(status?.lastSuccessAt).toBeLessThanOrEqual(brokenAt);

  // Every attempt from the first failure on failed with this code, and nothing moved the last-known-good.
  const afterBreak = node.fetches.slice(node.fetches.findIndex((fetch) => fetch.result === code));
  expect(afterBreak.length).toBeGreaterThanOrEqual(3);
  expect(new Set(afterBreak.map((fetch) => fetch.result))).toEqual(new Set([code]));
  expect(node.cache.get(c.td)?.stored.digest).toBe(c.lkg.digest);
  expect((await store.getBundle(c.td))?.digest).toBe(c.lkg.digest);
  expect(await store.getQuarantine(c.td)).toBeUndefined();
  expect(node.engine.view(c.td).status?.lastErrorCode).toBe(code);
  watch.stop();
  expect(watch.misses).toBe(0);
  expect(watch.seen).toEqual([c.lkg.digest]);
}

/** An https_web partner path on the shared server, serving the LKG until the case breaks it. */
async function webCase(): Promise<FailureCase & { path: string; relationship: Relationship }> {
  const td = nextDomain();
  const path = `/${td}/bundle`;
  const lkg = bundleOf([await partnerCa(td)], 1, HINT);
  partner.serve(path, lkg);
  return { td, lkg, path, relationship: webRelationship(td, partner.url(path), webCa.pem) };
}

const neverAnswer = (_req: IncomingMessage, _res: ServerResponse) => undefined;

describe.concurrent("fetch failures: each its own code, the last-known-good kept", () => {
  it("response headers never arriving: ERR_FETCH_HEADERS_TIMEOUT", async ({ onTestFinished }) => {
    const cleanup = useCleanup(onTestFinished);
    const c = await webCase();
    await expectFailure(
      cleanup,
      c,
      c.relationship,
      () => partner.handle(c.path, neverAnswer),
      "ERR_FETCH_HEADERS_TIMEOUT",
    );
  });

  it("a 500 answer: ERR_FETCH_STATUS", async ({ onTestFinished }) => {
    const cleanup = useCleanup(onTestFinished);
    const c = await webCase();
    const fail = (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(500, { "content-type": "text/plain" });
      res.end("internal error");
    };
    await expectFailure(cleanup, c, c.relationship, () => partner.handle(c.path, fail), "ERR_FETCH_STATUS");
  });

  it("a garbage body: ERR_BUNDLE_NOT_JSON", async ({ onTestFinished }) => {
    const cleanup = useCleanup(onTestFinished);
    const c = await webCase();
    const garbage = (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end("<html>this is not a bundle</html>");
    };
    await expectFailure(cleanup, c, c.relationship, () => partner.handle(c.path, garbage), "ERR_BUNDLE_NOT_JSON");
  });

  it("a body over the size cap, sent without a Content-Length: ERR_FETCH_TOO_LARGE", async ({ onTestFinished }) => {
    const cleanup = useCleanup(onTestFinished);
    const c = await webCase();
    const chunk = Buffer.alloc(16 * 1024, 0x20);
    const huge = (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write("{");
      for (let i = 0; i < 8; i++) res.write(chunk);
      res.end('"keys":[]}');
    };
    await expectFailure(cleanup, c, c.relationship, () => partner.handle(c.path, huge), "ERR_FETCH_TOO_LARGE");
  });

  it("a body dripping a byte at a time: ERR_FETCH_TIMEOUT", async ({ onTestFinished }) => {
    const cleanup = useCleanup(onTestFinished);
    const c = await webCase();
    const drip = (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write("{");
      const timer = setInterval(() => res.write(" "), 100);
      res.on("close", () => clearInterval(timer));
    };
    await expectFailure(cleanup, c, c.relationship, () => partner.handle(c.path, drip), "ERR_FETCH_TIMEOUT");
  });

  it("a redirect to plain http: ERR_FETCH_REDIRECT_INSECURE", async ({ onTestFinished }) => {
    const cleanup = useCleanup(onTestFinished);
    const c = await webCase();
    const redirect = (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(302, { location: `http://127.0.0.1:${partner.port}${c.path}` });
      res.end();
    };
    await expectFailure(
      cleanup,
      c,
      c.relationship,
      () => partner.handle(c.path, redirect),
      "ERR_FETCH_REDIRECT_INSECURE",
    );
  });

  it("a redirect to a private address: ERR_FETCH_SSRF_BLOCKED", async ({ onTestFinished }) => {
    const cleanup = useCleanup(onTestFinished);
    const c = await webCase();
    const redirect = (_req: IncomingMessage, res: ServerResponse) => {
      res.writeHead(307, { location: "https://10.20.30.40/bundle" });
      res.end();
    };
    await expectFailure(cleanup, c, c.relationship, () => partner.handle(c.path, redirect), "ERR_FETCH_SSRF_BLOCKED");
  });

  it("an https_spiffe endpoint presenting an SVID for another SPIFFE ID: ERR_FETCH_SVID_WRONG_ID", async ({
    onTestFinished,
  }) => {
    const cleanup = useCleanup(onTestFinished);
    const td = nextDomain();
    const endpointId = `spiffe://${td}/bundle-endpoint`;
    const ca = await partnerCa(td);
    const [svid, wrongSvid] = await Promise.all([
      createSvid({ issuer: ca, spiffeId: endpointId }),
      createSvid({ issuer: ca, spiffeId: `spiffe://${td}/someone-else` }),
    ]);
    const server = await startPartner([svid]);
    cleanup.add(() => server.close());
    const lkg = bundleOf([ca], 1, HINT);
    server.serve("/bundle", lkg);
    const relationship = spiffeRelationship(td, server.url("/bundle"), endpointId, lkg.bundle);
    await expectFailure(
      cleanup,
      { td, lkg },
      relationship,
      () => server.setCertificate([wrongSvid]),
      "ERR_FETCH_SVID_WRONG_ID",
    );
  });

  it("an https_web endpoint presenting a certificate for another host name: ERR_FETCH_TLS_HOSTNAME", async ({
    onTestFinished,
  }) => {
    const cleanup = useCleanup(onTestFinished);
    const td = nextDomain();
    const host = `bundle.${td}`;
    names.set(host, "127.0.0.1");
    const [right, wrong] = await Promise.all([webCert([host]), webCert(["elsewhere.test"])]);
    const server = await startPartner([right]);
    cleanup.add(() => server.close());
    const lkg = bundleOf([await partnerCa(td)], 1, HINT);
    server.serve("/bundle", lkg);
    const relationship = webRelationship(td, server.url("/bundle", host), webCa.pem);
    await expectFailure(
      cleanup,
      { td, lkg },
      relationship,
      () => server.setCertificate([wrong]),
      "ERR_FETCH_TLS_HOSTNAME",
    );
  });

  it("a name that starts resolving to 127.0.0.1 (not in the allowed CIDRs): ERR_FETCH_SSRF_BLOCKED", async ({
    onTestFinished,
  }) => {
    const cleanup = useCleanup(onTestFinished);
    // The relationship may reach 127.0.0.2 only, where its partner lives; then DNS points the name at 127.0.0.1.
    const td = nextDomain();
    const host = `bundle.${td}`;
    names.set(host, "127.0.0.2");
    const server = await startPartner([await webCert([host])], "127.0.0.2");
    cleanup.add(() => server.close());
    const lkg = bundleOf([await partnerCa(td)], 1, HINT);
    server.serve("/bundle", lkg);
    const relationship = webRelationship(td, server.url("/bundle", host), webCa.pem, {
      allowedCidrs: ["127.0.0.2/32"],
    });
    await expectFailure(
      cleanup,
      { td, lkg },
      relationship,
      () => void names.set(host, "127.0.0.1"),
      "ERR_FETCH_SSRF_BLOCKED",
    );
  });

  it("a name that starts resolving to 169.254.169.254 (cloud metadata): ERR_FETCH_SSRF_BLOCKED", async ({
    onTestFinished,
  }) => {
    const cleanup = useCleanup(onTestFinished);
    const td = nextDomain();
    const host = `bundle.${td}`;
    names.set(host, "127.0.0.1");
    const server = await startPartner([await webCert([host])]);
    cleanup.add(() => server.close());
    const lkg = bundleOf([await partnerCa(td)], 1, HINT);
    server.serve("/bundle", lkg);
    const relationship = webRelationship(td, server.url("/bundle", host), webCa.pem);
    await expectFailure(
      cleanup,
      { td, lkg },
      relationship,
      () => void names.set(host, "169.254.169.254"),
      "ERR_FETCH_SSRF_BLOCKED",
    );
  });
});
