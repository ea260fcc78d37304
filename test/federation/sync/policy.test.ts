/**
 * Issue 4, acceptance: a rollback, the same sequence with other content, a full replacement, an empty
 * bundle, an all-expired bundle, and a bundle naming this domain's own authority each get the decision of
 * DESIGN.md section 2 end to end (fetched over https_web from a real server, decided, written to a real
 * Redis), and the last-known-good is served throughout.
 *
 * Each case starts from its own partner trust domain whose last-known-good is [CA1, CA2] at sequence 10,
 * then the partner publishes the case's bundle.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ServedBundle } from "../../../src/sources/types.js";
import { parseTrustDomain, type TrustDomain } from "../../../src/spiffe/id.js";
import { createCa, createWebCert, type Issued } from "../../support/pki.js";
import { type RedisServerHandle, startRedisServer } from "../../support/redis-server.js";
import {
  bundleOf,
  type Cleanup,
  OWN_TD,
  openTestRedisStore,
  type PartnerServer,
  partnerCa,
  startEngine,
  startPartner,
  type TestEngine,
  useCleanup,
  waitForCachedDigest,
  waitForStatus,
  waitForSynced,
  waitUntil,
  watchCache,
  webRelationship,
} from "./support.js";

const HINT = 2; // polled every 0.5 s
const DAY_MS = 24 * 60 * 60 * 1000;

let redis: RedisServerHandle;
let webCa: Issued;
let partner: PartnerServer;
let ownCa: Issued;
let caseNumber = 0;

beforeAll(async () => {
  redis = await startRedisServer();
  [webCa, ownCa] = await Promise.all([
    createCa({ trustDomain: "web-pki.test", withSpiffeUri: false }),
    createCa({ trustDomain: OWN_TD }),
  ]);
  const cert = await createWebCert({ issuer: webCa, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  partner = await startPartner([cert]);
});
afterAll(async () => {
  await partner?.close();
  if (redis.controllable) await redis.stop();
});

interface PolicyCase {
  readonly td: TrustDomain;
  readonly path: string;
  readonly ca1: Issued;
  readonly ca2: Issued;
  readonly lkg: ServedBundle;
  readonly node: TestEngine;
}

/** A partner serving [CA1, CA2] at sequence 10, synced once by an engine on Redis. */
async function syncedPartner(cleanup: Cleanup): Promise<PolicyCase> {
  const n = ++caseNumber;
  const td = parseTrustDomain(`policy-${n}.partner.test`);
  const path = `/${td}/bundle`;
  const [ca1, ca2] = await Promise.all([partnerCa(td), partnerCa(td)]);
  const lkg = bundleOf([ca1, ca2], 10, HINT);
  partner.serve(path, lkg);
  const store = await openTestRedisStore(redis.url, `policy-${n}`);
  cleanup.add(() => store.close());
  const node = await startEngine({
    store,
    relationships: [webRelationship(td, partner.url(path), webCa.pem)],
    ownBundle: bundleOf([ownCa], 1, 300).bundle,
  });
  cleanup.add(() => node.stop());
  await waitForSynced(node, td, lkg.digest);
  expect((await store.getBundle(td))?.digest).toBe(lkg.digest);
  return { td, path, ca1, ca2, lkg, node };
}

/** Publishes `next` and waits for the first decision on it: a fetch that started after the change. */
async function publish(c: PolicyCase, next: ServedBundle, result: string) {
  const changed = Date.now();
  partner.serve(c.path, next);
  return waitForStatus(c.node.store, c.td, (s) => (s.lastAttemptAt ?? 0) >= changed && s.lastResult === result);
}

/** Waits for `n` more fetches after `since`, so a decision is seen to hold on later polls too. */
async function morePolls(c: PolicyCase, since: number, n = 2) {
  await waitUntil(
    () => c.node.fetches.filter((fetch) => fetch.at > since).length,
    (count) => count >= n,
  );
}

describe.concurrent("policy decisions end to end, the last-known-good served throughout", () => {
  it("rejects a sequence rollback (ERR_POLICY_SEQUENCE_ROLLBACK) and keeps the last-known-good", async ({
    onTestFinished,
  }) => {
    const cleanup = useCleanup(onTestFinished);
    const c = await syncedPartner(cleanup);
    const watch = watchCache(c.node.cache, c.td);
    const ca3 = await partnerCa(c.td);
    const status = await publish(c, bundleOf([c.ca1, c.ca2, ca3], 9, HINT), "rejected");
    expect(status.lastErrorCode).toBe("ERR_POLICY_SEQUENCE_ROLLBACK");
    expect(status.consecutiveFailures).toBeGreaterThanOrEqual(1);
    await morePolls(c, status.lastAttemptAt ?? 0);
    const after = await c.node.store.getStatus(c.td);
    expect(after?.consecutiveFailures).toBeGreaterThan(status.consecutiveFailures);
    expect(after?.lastErrorCode).toBe("ERR_POLICY_SEQUENCE_ROLLBACK");

    expect(c.node.cache.get(c.td)?.stored.digest).toBe(c.lkg.digest);
    expect((await c.node.store.getBundle(c.td))?.digest).toBe(c.lkg.digest);
    expect(await c.node.store.getQuarantine(c.td)).toBeUndefined();
    watch.stop();
    expect(watch.misses).toBe(0);
    expect(watch.seen).toEqual([c.lkg.digest]);
  });

  it("quarantines the same sequence with other content; the last-known-good stays", async ({ onTestFinished }) => {
    const cleanup = useCleanup(onTestFinished);
    const c = await syncedPartner(cleanup);
    const watch = watchCache(c.node.cache, c.td);
    const ca3 = await partnerCa(c.td);
    const reused = bundleOf([c.ca1, c.ca2, ca3], 10, HINT);
    const status = await publish(c, reused, "quarantined");
    expect(status.consecutiveFailures).toBe(0);
    const held = await c.node.store.getQuarantine(c.td);
    expect(held?.digest).toBe(reused.digest);
    expect(held?.reasons[0]).toBe("SEQUENCE_REUSED");

    // Later polls of the same content leave the quarantine as it is (same time held), the LKG served.
    await morePolls(c, status.lastAttemptAt ?? 0);
    expect(await c.node.store.getQuarantine(c.td)).toEqual(held);
    expect(c.node.cache.get(c.td)?.stored.digest).toBe(c.lkg.digest);
    expect((await c.node.store.getBundle(c.td))?.digest).toBe(c.lkg.digest);
    watch.stop();
    expect(watch.misses).toBe(0);
    expect(watch.seen).toEqual([c.lkg.digest]);
  });

  it("quarantines a full replacement (no authority in common); the last-known-good stays", async ({
    onTestFinished,
  }) => {
    const cleanup = useCleanup(onTestFinished);
    const c = await syncedPartner(cleanup);
    const watch = watchCache(c.node.cache, c.td);
    const [ca3, ca4] = await Promise.all([partnerCa(c.td), partnerCa(c.td)]);
    const replacement = bundleOf([ca3, ca4], 11, HINT);
    await publish(c, replacement, "quarantined");
    const held = await c.node.store.getQuarantine(c.td);
    expect(held?.digest).toBe(replacement.digest);
    expect(held?.reasons[0]).toBe("FULL_REPLACEMENT");
    expect(c.node.cache.get(c.td)?.stored.digest).toBe(c.lkg.digest);
    expect((await c.node.store.getBundle(c.td))?.digest).toBe(c.lkg.digest);
    watch.stop();
    expect(watch.misses).toBe(0);
    expect(watch.seen).toEqual([c.lkg.digest]);
  });

  it("quarantines a bundle carrying this domain's own authority; the last-known-good stays", async ({
    onTestFinished,
  }) => {
    const cleanup = useCleanup(onTestFinished);
    const c = await syncedPartner(cleanup);
    const watch = watchCache(c.node.cache, c.td);
    const withOwn = bundleOf([c.ca1, c.ca2, ownCa], 11, HINT);
    await publish(c, withOwn, "quarantined");
    const held = await c.node.store.getQuarantine(c.td);
    expect(held?.digest).toBe(withOwn.digest);
    expect(held?.reasons[0]).toBe("SHARED_WITH_OWN_DOMAIN");
    expect(c.node.cache.get(c.td)?.stored.digest).toBe(c.lkg.digest);
    expect((await c.node.store.getBundle(c.td))?.digest).toBe(c.lkg.digest);
    watch.stop();
    expect(watch.misses).toBe(0);
    expect(watch.seen).toEqual([c.lkg.digest]);
  });

  it("accepts an empty bundle at once (accept_alert: all keys revoked)", async ({ onTestFinished }) => {
    const cleanup = useCleanup(onTestFinished);
    const c = await syncedPartner(cleanup);
    const watch = watchCache(c.node.cache, c.td);
    const empty = bundleOf([], 11, HINT);
    const status = await publish(c, empty, "accept_alert");
    expect(status.consecutiveFailures).toBe(0);
    await waitForCachedDigest(c.node.cache, c.td, empty.digest);
    expect(c.node.cache.get(c.td)?.bundle.x509Authorities).toEqual([]);
    expect((await c.node.store.getBundle(c.td))?.digest).toBe(empty.digest);
    const [latest] = await c.node.store.getHistory(c.td, 1);
    expect(latest).toMatchObject({ event: "accept_alert", digest: empty.digest });
    expect(latest?.reasons[0]).toBe("EMPTY_BUNDLE");
    watch.stop();
    expect(watch.misses).toBe(0);
    expect(watch.seen).toEqual([c.lkg.digest, empty.digest]);
  });

  it("accepts a bundle whose authorities are all expired at once (accept_alert)", async ({ onTestFinished }) => {
    const cleanup = useCleanup(onTestFinished);
    const c = await syncedPartner(cleanup);
    const watch = watchCache(c.node.cache, c.td);
    const past = Date.now() - 10 * DAY_MS;
    const validity = { notBefore: new Date(past - DAY_MS), notAfter: new Date(past) };
    const [old1, old2] = await Promise.all([partnerCa(c.td, validity), partnerCa(c.td, validity)]);
    const expired = bundleOf([old1, old2], 11, HINT);
    const status = await publish(c, expired, "accept_alert");
    expect(status.consecutiveFailures).toBe(0);
    await waitForCachedDigest(c.node.cache, c.td, expired.digest);
    expect((await c.node.store.getBundle(c.td))?.digest).toBe(expired.digest);
    expect(await c.node.store.getQuarantine(c.td)).toBeUndefined();
    const [latest] = await c.node.store.getHistory(c.td, 1);
    expect(latest).toMatchObject({ event: "accept_alert", digest: expired.digest });
    expect(latest?.reasons[0]).toBe("ALL_AUTHORITIES_EXPIRED");
    watch.stop();
    expect(watch.misses).toBe(0);
    expect(watch.seen).toEqual([c.lkg.digest, expired.digest]);
  });
});
