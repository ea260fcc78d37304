/**
 * Issue 4, acceptance: an https_spiffe partner rotates its CA (new authority published, then the endpoint
 * SVID re-issued by it, then the old authority removed) and sync keeps working with no operator action.
 * The partner is bundlegate's own bundle endpoint (src/endpoint/server.ts) serving watched values; the
 * state lives in a real Redis.
 */
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { createBundleEndpoint } from "../../../src/endpoint/server.js";
import { isBundlegateError } from "../../../src/errors.js";
import { silentLogger } from "../../../src/logging.js";
import { loadTlsCredentials } from "../../../src/sources/tls-credentials.js";
import { parseTrustDomain } from "../../../src/spiffe/id.js";
import { createCa, createSvid, type Issued } from "../../support/pki.js";
import { type RedisServerHandle, startRedisServer } from "../../support/redis-server.js";
import { createWatchedValue } from "../../support/watched.js";
import {
  bundleOf,
  createCleanup,
  federationConfig,
  openTestRedisStore,
  spiffeRelationship,
  startEngine,
  testFetcher,
  waitForCachedDigest,
  waitForStatus,
  waitForSynced,
  watchCache,
} from "./support.js";

let redis: RedisServerHandle;
const cleanup = createCleanup();

beforeAll(async () => {
  redis = await startRedisServer();
});
afterEach(() => cleanup.run());
afterAll(async () => {
  if (redis.controllable) await redis.stop();
});

const TD = parseTrustDomain("rotating.partner.test");
const ENDPOINT_ID = `spiffe://${TD}/bundle-endpoint`;
const HINT = 2; // polled every 0.5 s

function credentialsOf(svid: Issued) {
  return loadTlsCredentials(svid.pem, svid.keyPem);
}

it("follows an https_spiffe partner's CA rotation (add CA2, re-issue the SVID from CA2, drop CA1) with no operator action", async () => {
  const [ca1, ca2] = await Promise.all([createCa({ trustDomain: TD }), createCa({ trustDomain: TD })]);
  const [svid1, svid2] = await Promise.all([
    createSvid({ issuer: ca1, spiffeId: ENDPOINT_ID }),
    createSvid({ issuer: ca2, spiffeId: ENDPOINT_ID }),
  ]);
  const v1 = bundleOf([ca1], 1, HINT);
  const v2 = bundleOf([ca1, ca2], 2, HINT);
  const v3 = bundleOf([ca2], 3, HINT);

  // The partner: bundlegate's own https_spiffe endpoint.
  const served = createWatchedValue(v1);
  const credentials = createWatchedValue(credentialsOf(svid1));
  const endpoint = createBundleEndpoint({
    profile: "https_spiffe",
    listen: { host: "127.0.0.1", port: 0 },
    path: "/bundle",
    bundle: served,
    credentials,
    timeouts: { headersMs: 5000, requestMs: 10_000, keepAliveMs: 1000 },
    logger: silentLogger(),
    closeGraceMs: 100,
  });
  const { port } = await endpoint.start();
  cleanup.add(() => endpoint.close());
  const url = `https://127.0.0.1:${port}/bundle`;

  // The bootstrap bundle is the one the operator configured once: CA1 only.
  const relationship = spiffeRelationship(TD, url, ENDPOINT_ID, v1.bundle);
  const store = await openTestRedisStore(redis.url, "rotation");
  cleanup.add(() => store.close());
  const node = await startEngine({ store, relationships: [relationship] });
  cleanup.add(() => node.stop());

  // 1. First sync, verified against the bootstrap bundle.
  await waitForSynced(node, TD, v1.digest);
  const watch = watchCache(node.cache, TD);
  cleanup.add(() => watch.stop());
  expect((await store.getBundle(TD))?.digest).toBe(v1.digest);

  // 2. The partner publishes CA2 beside CA1: a rotation, accepted at once.
  served.set(v2);
  const afterAdd = await waitForStatus(store, TD, (s) => s.lastResult === "accepted" && s.lastChangeAt !== undefined);
  expect(afterAdd.consecutiveFailures).toBe(0);
  await waitForCachedDigest(node.cache, TD, v2.digest);
  expect((await store.getBundle(TD))?.digest).toBe(v2.digest);

  // 3. The partner re-issues its endpoint SVID from CA2. Verified against the bootstrap bundle (CA1 only),
  //    as a client that never learnt the partner's new bundle would, it is refused:
  const withBootstrapOnly = () =>
    testFetcher(federationConfig())
      .fetch({
        url,
        profile: { kind: "https_spiffe", endpointSpiffeId: ENDPOINT_ID, authorities: v1.bundle },
        allowedCidrs: ["127.0.0.0/8"],
      })
      .then(
        () => "fetched",
        (error: unknown) => (isBundlegateError(error) ? error.code : String(error)),
      );
  expect(await withBootstrapOnly()).toBe("fetched");
  credentials.set(credentialsOf(svid2));
  const switched = Date.now();
  expect(await withBootstrapOnly()).toBe("ERR_FETCH_SVID_UNTRUSTED");
  // ...but the engine verifies it against the latest stored bundle (CA1 + CA2): two successful polls later
  // (each a new TLS connection, so each saw the CA2 SVID), nothing failed.
  const afterReissue = await waitForStatus(
    store,
    TD,
    (s) => (s.lastSuccessAt ?? 0) > switched + 600 && s.lastAttemptAt === s.lastSuccessAt,
  );
  expect(afterReissue.consecutiveFailures).toBe(0);
  expect(afterReissue.lastResult).toBe("unchanged");

  // 4. The partner removes CA1: trust removed, accepted at once with an alert.
  served.set(v3);
  const afterRemove = await waitForStatus(store, TD, (s) => s.lastResult === "accept_alert");
  expect(afterRemove.consecutiveFailures).toBe(0);
  await waitForCachedDigest(node.cache, TD, v3.digest);
  expect((await store.getBundle(TD))?.digest).toBe(v3.digest);

  // 5. And polling goes on against CA2 alone.
  const removedAt = afterRemove.lastAttemptAt ?? 0;
  const later = await waitForStatus(
    store,
    TD,
    (s) => (s.lastSuccessAt ?? 0) > removedAt + 600 && s.lastAttemptAt === s.lastSuccessAt,
  );
  expect(later).toMatchObject({ consecutiveFailures: 0, lastResult: "unchanged" });
  expect(later.lastErrorCode).toBeUndefined();

  // Throughout: no fetch failed, the cache never went empty and followed v1 -> v2 -> v3, the history says why.
  expect(node.fetches.filter((fetch) => fetch.result.startsWith("ERR_"))).toEqual([]);
  expect(node.fetches.length).toBeGreaterThanOrEqual(6);
  watch.stop();
  expect(watch.misses).toBe(0);
  expect(watch.seen).toEqual([v1.digest, v2.digest, v3.digest]);
  const history = await store.getHistory(TD, 10);
  expect(history.map((entry) => [entry.event, entry.digest, entry.reasons[0]])).toEqual([
    ["accept_alert", v3.digest, "AUTHORITIES_REMOVED"],
    ["accepted", v2.digest, "AUTHORITIES_ADDED"],
    ["accepted", v1.digest, "FIRST_BUNDLE"],
  ]);
});
