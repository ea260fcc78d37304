/**
 * Issue 4, acceptance: three engine instances on one Redis poll 50 relationships. Each relationship is
 * fetched once per interval, counted at the partner servers, and when one instance is stopped its
 * relationships are fetched again within two lease periods of their due time.
 *
 * Three createSyncEngine instances with distinct replica IDs, each on its own Redis connections under one
 * key prefix, all knowing the same 50 relationships; the partners are 5 https servers with 10 paths each.
 */
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import type { Relationship } from "../../../src/federation/relationship.js";
import type { ServedBundle } from "../../../src/sources/types.js";
import { parseTrustDomain, type TrustDomain } from "../../../src/spiffe/id.js";
import { createCa, createWebCert, type Issued } from "../../support/pki.js";
import { type RedisServerHandle, startRedisServer } from "../../support/redis-server.js";
import {
  bundleOf,
  createCleanup,
  federationConfig,
  openTestRedisStore,
  type PartnerServer,
  partnerCa,
  sleep,
  startEngine,
  startPartner,
  type TestEngine,
  waitUntil,
  webRelationship,
} from "./support.js";

const SERVERS = 5;
const PATHS_PER_SERVER = 10;
const HINT = 4; // polled every 1 s (jitter ±10 %)
const INTERVAL_MS = (HINT / 4) * 1000;
const FEDERATION = federationConfig({ leaseMs: 1000 });
const WINDOW_INTERVALS = 6;

let redis: RedisServerHandle;
let webCa: Issued;
const cleanup = createCleanup();

interface Target {
  readonly td: TrustDomain;
  readonly server: PartnerServer;
  readonly path: string;
  readonly bundle: ServedBundle;
  readonly relationship: Relationship;
}

beforeAll(async () => {
  redis = await startRedisServer();
  webCa = await createCa({ trustDomain: "web-pki.test", withSpiffeUri: false });
});
afterEach(() => cleanup.run());
afterAll(async () => {
  if (redis.controllable) await redis.stop();
});

/** Request times at the partner within [from, to). */
function requestsIn(target: Target, from: number, to: number): number[] {
  return target.server.requests(target.path).filter((at) => at >= from && at < to);
}

it("three instances on one Redis fetch each of 50 relationships once per interval, and take over a stopped instance's relationships within two lease periods", async () => {
  const cert = await createWebCert({ issuer: webCa, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  const servers = await Promise.all(Array.from({ length: SERVERS }, () => startPartner([cert])));
  for (const server of servers) cleanup.add(() => server.close());
  const targets: Target[] = await Promise.all(
    Array.from({ length: SERVERS * PATHS_PER_SERVER }, async (_, index) => {
      const td = parseTrustDomain(`replicated-${index}.partner.test`);
      const server = servers[index % SERVERS]!;
      const path = `/${td}/bundle`;
      // Every partner its own CA: shared authorities would be quarantined (SHARED_WITH_OTHER_PARTNER).
      const bundle = bundleOf([await partnerCa(td)], 1, HINT);
      server.serve(path, bundle);
      return { td, server, path, bundle, relationship: webRelationship(td, server.url(path), webCa.pem) };
    }),
  );
  const relationships = targets.map((target) => target.relationship);

  const nodes: TestEngine[] = [];
  for (const replicaId of ["replica-a", "replica-b", "replica-c"]) {
    const store = await openTestRedisStore(redis.url, "replicas");
    cleanup.add(() => store.close());
    const node = await startEngine({ store, relationships, federation: FEDERATION, replicaId });
    cleanup.add(() => node.stop());
    nodes.push(node);
  }
  const [a, b, c] = nodes as [TestEngine, TestEngine, TestEngine];

  // Every relationship synced, and every instance's cache holds every bundle (pub/sub events).
  await waitUntil(
    () => nodes.every((node) => targets.every((t) => node.cache.get(t.td)?.stored.digest === t.bundle.digest)),
    (done) => done,
    15_000,
  );

  // --- Once per interval, whoever polls. -------------------------------------------------------------
  const windowStart = Date.now();
  await sleep(WINDOW_INTERVALS * INTERVAL_MS);
  const windowEnd = Date.now();
  const counts = targets.map((t) => requestsIn(t, windowStart, windowEnd).length);
  // Gaps between consecutive fetches of one path, from the window on (the first fetches, 50 TLS handshakes
  // at once on three engines, arrive late and say nothing about the schedule).
  const minGaps = targets.map((t) => {
    const times = t.server.requests(t.path).filter((at) => at >= windowStart);
    let gap = Number.POSITIVE_INFINITY;
    for (let i = 1; i < times.length; i++) gap = Math.min(gap, times[i]! - times[i - 1]!);
    return gap;
  });
  const writers = new Map<string, number>();
  for (const t of targets) {
    const status = await a.store.getStatus(t.td);
    writers.set(status?.writtenBy ?? "?", (writers.get(status?.writtenBy ?? "?") ?? 0) + 1);
  }
  const fetchesBy = nodes.map((node) => node.fetches.filter((f) => f.at >= windowStart && f.at < windowEnd).length);
  console.log(
    `[sync replicas] ${WINDOW_INTERVALS} intervals of ${INTERVAL_MS} ms: requests per path min ${Math.min(...counts)} ` +
      `max ${Math.max(...counts)} mean ${(counts.reduce((x, y) => x + y, 0) / counts.length).toFixed(2)}; ` +
      `closest two fetches of one path ${Math.min(...minGaps)} ms; fetches per instance ${fetchesBy.join("/")}; ` +
      `last writer per relationship ${JSON.stringify(Object.fromEntries(writers))}`,
  );
  const offCount = targets.flatMap((t, i) =>
    counts[i]! < WINDOW_INTERVALS - 1 || counts[i]! > WINDOW_INTERVALS + 1 ? [`${t.td}: ${counts[i]} requests`] : [],
  );
  expect(offCount).toEqual([]);
  const tooClose = targets.flatMap((t, i) => (minGaps[i]! < INTERVAL_MS / 2 ? [`${t.td}: ${minGaps[i]} ms`] : []));
  expect(tooClose).toEqual([]);
  // The work is shared: every instance polled.
  for (const fetched of fetchesBy) expect(fetched).toBeGreaterThan(0);
  // And nothing failed anywhere.
  expect(nodes.flatMap((node) => node.fetches).filter((f) => f.result.startsWith("ERR_"))).toEqual([]);

  // --- Instance A stops: its relationships are fetched again within two lease periods of their due time. ---
  await a.stop();
  const stoppedAt = Date.now();
  const orphaned: { target: Target; due: number }[] = [];
  for (const t of targets) {
    const status = await b.store.getStatus(t.td);
    if (status?.writtenBy === a.replicaId) orphaned.push({ target: t, due: status.nextRefreshAt ?? stoppedAt });
  }
  expect(orphaned.length).toBeGreaterThan(0);
  const takeovers = await waitUntil(
    () =>
      orphaned.map(({ target, due }) => {
        const next = target.server.requests(target.path).find((at) => at > stoppedAt);
        return next === undefined ? undefined : next - due;
      }),
    (delays) => delays.every((delay) => delay !== undefined),
    5 * FEDERATION.leaseMs + 2 * INTERVAL_MS,
  );
  const delays = takeovers as number[];
  console.log(
    `[sync replicas] ${orphaned.length} relationships last written by ${a.replicaId}; fetched again ` +
      `${Math.min(...delays)}..${Math.max(...delays)} ms after their due time (limit ${2 * FEDERATION.leaseMs} ms)`,
  );
  for (const delay of delays) expect(delay).toBeLessThanOrEqual(2 * FEDERATION.leaseMs);

  // Now only B and C write, and they keep every relationship fresh.
  await waitUntil(
    async () => Promise.all(orphaned.map(({ target }) => b.store.getStatus(target.td))),
    (statuses) => statuses.every((s) => s?.writtenBy === b.replicaId || s?.writtenBy === c.replicaId),
    5000,
  );
  expect(a.engine.leasesHeld()).toBe(0);
});
