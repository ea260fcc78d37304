/**
 * The single-node happy path on the embedded store (no Redis): first sync of an https_web partner, then a
 * rotation accepted, polled on schedule; the store, its history and the cache follow the partner.
 */
import { afterAll, afterEach, beforeAll, expect, it } from "vitest";
import { parseTrustDomain } from "../../../src/spiffe/id.js";
import { createCa, createWebCert, type Issued } from "../../support/pki.js";
import {
  bundleOf,
  createCleanup,
  openTestEmbeddedStore,
  type PartnerServer,
  partnerCa,
  startEngine,
  startPartner,
  waitForCachedDigest,
  waitForStatus,
  waitForSynced,
  webRelationship,
} from "./support.js";

const HINT = 2; // polled every 0.5 s

let webCa: Issued;
let partner: PartnerServer;
const cleanup = createCleanup();

beforeAll(async () => {
  webCa = await createCa({ trustDomain: "web-pki.test", withSpiffeUri: false });
  const cert = await createWebCert({ issuer: webCa, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  partner = await startPartner([cert]);
});
afterEach(() => cleanup.run());
afterAll(() => partner?.close());

it("syncs a partner and follows its rotation on a single node with the embedded store", async () => {
  const td = parseTrustDomain("single-node.partner.test");
  const [ca1, ca2] = await Promise.all([partnerCa(td), partnerCa(td)]);
  const v1 = bundleOf([ca1], 1, HINT);
  const v2 = bundleOf([ca1, ca2], 2, HINT);
  partner.serve("/bundle", v1);

  const store = await openTestEmbeddedStore();
  cleanup.add(() => store.close());
  const node = await startEngine({ store, relationships: [webRelationship(td, partner.url("/bundle"), webCa.pem)] });
  cleanup.add(() => node.stop());

  await waitForSynced(node, td, v1.digest);
  expect((await store.getBundle(td))?.digest).toBe(v1.digest);
  const first = await waitForStatus(store, td, (s) => s.lastResult === "unchanged");
  expect(first).toMatchObject({ consecutiveFailures: 0, writtenBy: node.replicaId });
  expect(first.nextRefreshAt).toBeGreaterThan(first.lastAttemptAt ?? 0);
  // Freshness and the expiry window as the engine reports them per relationship.
  const health = node.engine.view(td).health;
  expect(health?.staleness.state).toBe("fresh");
  expect(health?.earliestNotAfter).toBeDefined();
  expect(health?.x509Authorities).toBe(1);

  partner.serve("/bundle", v2);
  await waitForCachedDigest(node.cache, td, v2.digest);
  const rotated = await waitForStatus(
    store,
    td,
    (s) => (s.lastChangeAt ?? 0) > (first.lastChangeAt ?? 0) && s.lastResult === "unchanged",
  );
  expect(rotated.consecutiveFailures).toBe(0);
  expect((await store.getBundle(td))?.digest).toBe(v2.digest);
  const history = await store.getHistory(td, 5);
  expect(history.map((entry) => [entry.event, entry.digest])).toEqual([
    ["accepted", v2.digest],
    ["accepted", v1.digest],
  ]);
  expect(node.fetches.filter((fetch) => fetch.result.startsWith("ERR_"))).toEqual([]);
  // A single node holds a lease only while it refreshes.
  await node.stop();
  expect(node.engine.leasesHeld()).toBe(0);
});
