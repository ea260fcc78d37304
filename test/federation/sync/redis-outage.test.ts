/**
 * Issue 4, acceptance: Redis is stopped for a while and started again during polling. No read of the
 * bundle cache fails (it keeps serving, and serves the bundle accepted during the outage), the engine
 * reports degraded() during the outage and recovers after, and the state in Redis afterwards is the newest.
 * The test's redis-server keeps nothing on disk, so it comes back empty: the engine must write back what it
 * holds, the bundle accepted during the outage included.
 *
 * A second test cuts the network to a Redis that keeps running (a TCP relay the test closes and reopens):
 * Redis still holds the old bundle when the engine reaches it again, and must end up with the new one.
 */
import { once } from "node:events";
import { type AddressInfo, connect, createServer, type Server, type Socket } from "node:net";
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import type { Relationship } from "../../../src/federation/relationship.js";
import { parseTrustDomain } from "../../../src/spiffe/id.js";
import { createCa, createWebCert, type Issued } from "../../support/pki.js";
import { freePort, type RedisServerHandle, startRedisServer } from "../../support/redis-server.js";
import {
  bundleOf,
  createCleanup,
  openTestRedisStore,
  type PartnerServer,
  partnerCa,
  sleep,
  startEngine,
  startPartner,
  waitForCachedDigest,
  waitForSynced,
  waitUntil,
  watchCache,
  webRelationship,
} from "./support.js";

const HINT = 2; // polled every 0.5 s

let redis: RedisServerHandle;
let webCa: Issued;
let partner: PartnerServer;
const cleanup = createCleanup();

beforeAll(async () => {
  redis = await startRedisServer();
  webCa = await createCa({ trustDomain: "web-pki.test", withSpiffeUri: false });
  const cert = await createWebCert({ issuer: webCa, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  partner = await startPartner([cert]);
});
afterEach(() => cleanup.run());
afterAll(async () => {
  await partner?.close();
  if (redis.controllable) await redis.stop();
});

it.skipIf(process.env.REDIS_URL !== undefined)(
  "keeps polling and serving while Redis is down, reports degraded, and writes the newest state when it returns",
  async () => {
    const changing = parseTrustDomain("changing.partner.test");
    const steady = parseTrustDomain("steady.partner.test");
    const [ca1, ca2, steadyCa] = await Promise.all([partnerCa(changing), partnerCa(changing), partnerCa(steady)]);
    const v1 = bundleOf([ca1], 1, HINT);
    const v2 = bundleOf([ca1, ca2], 2, HINT);
    const steadyBundle = bundleOf([steadyCa], 7, HINT);
    partner.serve("/changing", v1);
    partner.serve("/steady", steadyBundle);
    const relationships: Relationship[] = [
      webRelationship(changing, partner.url("/changing"), webCa.pem),
      webRelationship(steady, partner.url("/steady"), webCa.pem),
    ];

    const store = await openTestRedisStore(redis.url, "outage", 300);
    cleanup.add(() => store.close());
    const node = await startEngine({ store, relationships, storeRetryMs: 200 });
    cleanup.add(() => node.stop());
    await waitForSynced(node, changing, v1.digest);
    await waitForSynced(node, steady, steadyBundle.digest);
    expect(node.engine.degraded()).toBe(false);

    // Readers of the cache, as the distribution API and the relay would read it, every 5 ms.
    const watches = [watchCache(node.cache, changing, 5), watchCache(node.cache, steady, 5)];
    for (const watch of watches) cleanup.add(() => watch.stop());

    // --- Redis goes away. ---
    await redis.stop();
    await waitUntil(
      () => node.engine.degraded(),
      (degraded) => degraded,
      5000,
    );

    // Polling goes on: the partner's new bundle is fetched, decided against the in-memory LKG and served.
    const outageFetches = node.fetches.length;
    partner.serve("/changing", v2);
    await waitForCachedDigest(node.cache, changing, v2.digest, 5000);
    // A few more intervals of "unchanged" polls on both relationships while Redis is still down.
    await sleep(4 * (HINT / 4) * 1000);
    expect(node.engine.degraded()).toBe(true);
    expect(node.engine.view(changing).pendingWrite).toBe(true);
    const duringOutage = node.fetches.slice(outageFetches);
    expect(duringOutage.filter((f) => f.trustDomain === changing).length).toBeGreaterThanOrEqual(3);
    expect(duringOutage.filter((f) => f.trustDomain === steady).length).toBeGreaterThanOrEqual(3);
    expect(duringOutage.filter((f) => f.result.startsWith("ERR_"))).toEqual([]);
    expect(duringOutage.find((f) => f.trustDomain === changing && f.result === "accepted")).toBeDefined();

    // --- Redis comes back, empty (no persistence). ---
    await redis.start();
    await waitUntil(
      () => node.engine.degraded(),
      (degraded) => !degraded,
      10_000,
    );

    // The newest state is in Redis: the bundle accepted during the outage, and the one that never changed.
    const restored = await waitUntil(
      async () => [await store.getBundle(changing), await store.getBundle(steady)] as const,
      ([c, s]) => c?.digest === v2.digest && s?.digest === steadyBundle.digest,
      10_000,
    );
    expect(restored[0]?.sequence).toBe("2");
    const statuses = await waitUntil(
      () => Promise.all([store.getStatus(changing), store.getStatus(steady)]),
      (all) => all.every((s) => s !== undefined && s.consecutiveFailures === 0),
      5000,
    );
    for (const status of statuses) expect(status?.lastSuccessAt).toBeDefined();
    expect(node.engine.view(changing).pendingWrite).toBe(false);

    // And it stays so: later polls (now under leases again) keep it, and it is not reverted.
    const back = Date.now();
    await waitUntil(
      () => store.getStatus(changing),
      (s) => (s?.lastAttemptAt ?? 0) > back + 100 && s?.consecutiveFailures === 0,
      5000,
    );
    expect((await store.getBundle(changing))?.digest).toBe(v2.digest);
    expect(node.cache.get(changing)?.stored.digest).toBe(v2.digest);

    // No cache read ever failed: the LKG throughout, the new bundle from the moment it was accepted.
    for (const watch of watches) watch.stop();
    const [changingWatch, steadyWatch] = watches as [ReturnType<typeof watchCache>, ReturnType<typeof watchCache>];
    expect(changingWatch.misses).toBe(0);
    expect(steadyWatch.misses).toBe(0);
    expect(changingWatch.seen).toEqual([v1.digest, v2.digest]);
    expect(steadyWatch.seen).toEqual([steadyBundle.digest]);
    expect(changingWatch.reads).toBeGreaterThan(100);
  },
);

/** A TCP relay to Redis that the test can cut (every connection dropped, new ones refused) and reopen. */
async function startRelay(target: URL): Promise<{ url: string; cut(): Promise<void>; reopen(): Promise<void> }> {
  const port = await freePort();
  const sockets = new Set<Socket>();
  let server: Server | undefined;
  const track = (socket: Socket) => {
    sockets.add(socket);
    socket.on("error", () => undefined);
    socket.once("close", () => sockets.delete(socket));
  };
  const open = async () => {
    server = createServer((client) => {
      const upstream = connect(Number(target.port), target.hostname);
      track(client);
      track(upstream);
      client.pipe(upstream).pipe(client);
      client.once("close", () => upstream.destroy());
      upstream.once("close", () => client.destroy());
    });
    server.listen(port, "127.0.0.1");
    await once(server, "listening");
  };
  await open();
  return {
    url: `redis://127.0.0.1:${(server!.address() as AddressInfo).port}`,
    async cut() {
      const closing = server;
      server = undefined;
      const closed = closing ? new Promise<void>((resolve) => closing.close(() => resolve())) : Promise.resolve();
      for (const socket of sockets) socket.destroy();
      await closed;
    },
    reopen: open,
  };
}

it("writes the bundle accepted while Redis was unreachable over the older one Redis still holds", async () => {
  const td = parseTrustDomain("partitioned.partner.test");
  const [ca1, ca2] = await Promise.all([partnerCa(td), partnerCa(td)]);
  const v1 = bundleOf([ca1], 1, HINT);
  const v2 = bundleOf([ca1, ca2], 2, HINT);
  partner.serve("/partitioned", v1);
  const relay = await startRelay(new URL(redis.url));
  cleanup.add(() => relay.cut());
  const store = await openTestRedisStore(relay.url, "partition", 300);
  cleanup.add(() => store.close());
  const direct = await openTestRedisStore(redis.url, "partition", 300);
  cleanup.add(() => direct.close());
  const node = await startEngine({
    store,
    relationships: [webRelationship(td, partner.url("/partitioned"), webCa.pem)],
    storeRetryMs: 200,
  });
  cleanup.add(() => node.stop());
  await waitForSynced(node, td, v1.digest);
  await waitUntil(
    () => direct.getBundle(td),
    (stored) => stored?.digest === v1.digest,
  );
  const watch = watchCache(node.cache, td, 5);
  cleanup.add(() => watch.stop());

  await relay.cut();
  await waitUntil(
    () => node.engine.degraded(),
    (degraded) => degraded,
    5000,
  );
  partner.serve("/partitioned", v2);
  await waitForCachedDigest(node.cache, td, v2.digest, 5000);
  // Later polls find the bundle unchanged: the outcome kept for the store is now only a status.
  await sleep(4 * (HINT / 4) * 1000);
  expect(node.engine.degraded()).toBe(true);
  expect((await direct.getBundle(td))?.digest).toBe(v1.digest);

  await relay.reopen();
  await waitUntil(
    () => node.engine.degraded(),
    (degraded) => !degraded,
    10_000,
  );
  await waitUntil(
    () => direct.getBundle(td),
    (stored) => stored?.digest === v2.digest,
    10_000,
  );
  const [latest] = await direct.getHistory(td, 1);
  expect(latest?.digest).toBe(v2.digest);
  // Not reverted by later polls, and the cache never served anything but v1 then v2.
  const back = Date.now();
  await waitUntil(
    () => direct.getStatus(td),
    (s) => (s?.lastAttemptAt ?? 0) > back + 100 && s?.consecutiveFailures === 0,
    5000,
  );
  expect((await direct.getBundle(td))?.digest).toBe(v2.digest);
  watch.stop();
  expect(watch.misses).toBe(0);
  expect(watch.seen).toEqual([v1.digest, v2.digest]);
});
