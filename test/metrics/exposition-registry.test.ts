/**
 * The app registry's own scrape against prom-client's: the same bytes for every kind of metric (counters,
 * labelless gauges, histograms, the per-relationship gauges that keep their text between scrapes), at the
 * first scrape and after each kind of change; one read of the source per scrape; no rewrite of what did not
 * change; turns for the event loop during a scrape; prom-client's own scrape where this one does not apply.
 */
import { X509Certificate } from "node:crypto";
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { beforeAll, describe, expect, it } from "vitest";
import { manualClock } from "../../src/clock.js";
import type { CachedBundle } from "../../src/federation/bundle-cache.js";
import type { Relationship } from "../../src/federation/relationship.js";
import { ExpositionRegistry } from "../../src/metrics/exposition-registry.js";
import { createMetrics, type FederationObservation } from "../../src/metrics/metrics.js";
import { type RelationshipSource, registerRelationshipMetrics } from "../../src/metrics/relationship-metrics.js";
import { createTrustBundle, jwtAuthority } from "../../src/spiffe/bundle.js";
import { diffBundles } from "../../src/spiffe/diff.js";
import { exportPublicJwk } from "../../src/spiffe/public-key.js";
import type { RelationshipStatus } from "../../src/store/federation-state.js";
import { createCa, type Issued } from "../support/pki.js";
import { authorityOf, cachedOf, mutableRegistry, relationshipOf, seriesValue } from "./support.js";

const NOW = new Date("2026-03-01T00:00:00Z");
const FEDERATION = { minRefreshHintSeconds: 60, maxRefreshHintSeconds: 86_400, defaultRefreshHintSeconds: 300 };

let validCa: Issued;
let soonExpiringCa: Issued;
let alphaBundle: CachedBundle;
let gammaBundle: CachedBundle;

beforeAll(async () => {
  [validCa, soonExpiringCa] = await Promise.all([
    createCa({ trustDomain: "alpha.test", notBefore: new Date("2026-01-01"), notAfter: new Date("2027-01-01") }),
    createCa({
      trustDomain: "alpha.test",
      notBefore: new Date("2026-01-01"),
      notAfter: new Date(NOW.getTime() + 3600_000),
    }),
  ]);
  const jwtPublic = exportPublicJwk(new X509Certificate(validCa.der).publicKey);
  alphaBundle = cachedOf(
    "alpha.test",
    createTrustBundle({
      x509Authorities: [authorityOf(validCa), authorityOf(soonExpiringCa)],
      jwtAuthorities: [jwtAuthority("jwt-1", jwtPublic), jwtAuthority("wit-1", jwtPublic, "wit-svid")],
      sequence: 7n,
      refreshHintSeconds: 600,
    }),
  );
  gammaBundle = cachedOf("gamma.test", createTrustBundle({ x509Authorities: [authorityOf(validCa)] }));
});

/** Three relationships, an owner with every character the text format escapes, and all inputs changeable. */
function fixture() {
  const clock = manualClock(NOW);
  const metrics = createMetrics({ version: 'v"1\\2', defaultMetrics: false });
  const registry = mutableRegistry([
    relationshipOf("alpha.test", {
      owner: 'team "a" \\ b\nc',
      refresh: { kind: "interval", seconds: 120 },
      reviewBy: new Date("2030-01-01T00:00:00Z"),
    }),
    relationshipOf("beta.test", {
      state: "suspended",
      origin: "api",
      refresh: { kind: "cron", expression: "0 */2 * * *" },
    }),
    relationshipOf("gamma.test", { owner: "team-c", state: "pending", maxStalenessSeconds: 900 }),
  ]);
  const statuses = new Map<string, RelationshipStatus>([
    ["alpha.test", { lastAttemptAt: 1_772_323_200_500, lastSuccessAt: 1_772_323_200_000, consecutiveFailures: 0 }],
    ["gamma.test", { lastAttemptAt: 1_772_323_100_000, consecutiveFailures: 3 }],
  ]);
  const bundles = new Map<string, CachedBundle>([
    ["alpha.test", alphaBundle],
    ["gamma.test", gammaBundle],
  ]);
  const quarantined = new Set(["alpha.test"]);
  const observation: FederationObservation = {
    relationships: () => registry.list(),
    status: (trustDomain) => statuses.get(trustDomain),
    bundle: (trustDomain) => bundles.get(trustDomain),
    quarantined: (trustDomain) => quarantined.has(trustDomain),
    federation: FEDERATION,
    now: () => clock.now(),
    leasesHeld: () => 2,
    degraded: () => false,
    storeUp: async () => true,
  };
  metrics.observeFederation(observation);
  const stop = metrics.trackRelationships(registry);
  return { metrics, registry, statuses, bundles, quarantined, clock, stop };
}

/** What prom-client's own Registry writes for the same metrics (it reads a TextMetric through get()). */
const promClientText = (registry: Registry) => Registry.prototype.metrics.call(registry);

describe("the app registry's scrape", () => {
  it("writes every series exactly as prom-client does, at the first scrape and after every kind of change", async () => {
    const { metrics, registry, statuses, bundles, quarantined, clock, stop } = fixture();
    const counter = new Counter({
      name: "test_escapes_total",
      help: 'Help with a \\ backslash,\na newline and "quotes".',
      labelNames: ["value"],
      registers: [metrics.registry],
    });
    counter.inc({ value: 'a "quoted" \\ value\nover two lines' }, 2);
    const gauge = new Gauge({ name: "test_plain", help: "No labels.", registers: [metrics.registry] });
    gauge.set(Number.NaN);
    const numeric = new Gauge({
      name: "test_numeric_labels",
      help: "A label given as a number.",
      labelNames: ["n"],
      registers: [metrics.registry],
    });
    numeric.set({ n: 3 }, Number.POSITIVE_INFINITY);
    numeric.set({ n: 4 }, Number.NEGATIVE_INFINITY);
    const histogram = new Histogram({
      name: "test_histogram_seconds",
      help: "A histogram with labels.",
      labelNames: ["kind"],
      buckets: [0.1, 1],
      registers: [metrics.registry],
    });
    histogram.observe({ kind: "x" }, 0.5);
    metrics.recordFetch("alpha.test", "accepted", 0.2);

    const same = async (step: string) => {
      const ours = await metrics.registry.metrics();
      expect(ours, step).toBe(await promClientText(metrics.registry));
      return ours;
    };
    const first = await same("first scrape");
    expect(first).toContain('owner="team \\"a\\" \\\\ b\\nc"');
    expect(first).toMatch(/^bundlegate_relationship_last_attempt_timestamp_seconds\{trust_domain="alpha\.test"\} /m);
    await same("nothing changed");

    statuses.set("alpha.test", { lastAttemptAt: 1_772_323_300_000, consecutiveFailures: 1 });
    quarantined.delete("alpha.test");
    quarantined.add("gamma.test");
    await same("a status replaced, quarantines moved");

    registry.set(relationshipOf("beta.test", { owner: "team-b2", state: "active" }));
    registry.remove("gamma.test");
    bundles.set("beta.test", gammaBundle);
    await same("a relationship changed, one removed, a bundle appeared");

    const usable = () =>
      seriesValue(metrics.registry, "bundlegate_bundle_usable_authorities", { trust_domain: "alpha.test" });
    expect(await usable()).toBe(4);
    clock.advance(2 * 3600_000);
    expect(await usable()).toBe(3);
    await same("an authority expired, nothing else changed");

    clock.advance(4 * 3600_000);
    await same("a cron interval moved on");

    counter.inc({ value: 'a "quoted" \\ value\nover two lines' });
    counter.inc({ value: "new" });
    gauge.set(1.5);
    histogram.observe({ kind: "y" }, 2);
    metrics.recordFetch("alpha.test", "unchanged", 0.1);
    metrics.recordDecision("beta.test", {
      kind: "reject",
      reasons: [{ code: "SEQUENCE_ROLLBACK", message: "" }],
      diff: diffBundles(createTrustBundle(), createTrustBundle()),
    });
    await same("counters, gauges and histograms moved");
    stop();
  });

  it("reads each relationship's state once per scrape, and writes again only the relationships that changed", async () => {
    const reads = new Map<string, number>();
    const counted = (relationship: Relationship): Relationship => {
      const copy = { ...relationship };
      Object.defineProperty(copy, "owner", {
        enumerable: true,
        get: () => {
          reads.set(relationship.trustDomain, (reads.get(relationship.trustDomain) ?? 0) + 1);
          return relationship.owner;
        },
      });
      return copy;
    };
    const relationships = ["alpha.test", "beta.test", "gamma.test"].map((name) => counted(relationshipOf(name)));
    const statuses = new Map<string, RelationshipStatus>(
      relationships.map((r) => [r.trustDomain, { lastAttemptAt: 1_772_323_200_000, consecutiveFailures: 0 }]),
    );
    let statusReads = 0;
    const source: RelationshipSource = {
      relationships: () => relationships,
      status: (trustDomain) => {
        statusReads++;
        return statuses.get(trustDomain);
      },
      bundle: () => undefined,
      quarantined: () => false,
      federation: FEDERATION,
      now: () => NOW,
    };
    const registry = new ExpositionRegistry();
    registerRelationshipMetrics(registry, () => source);

    await registry.metrics();
    expect(statusReads).toBe(3);
    expect([...reads.values()].every((count) => count > 0)).toBe(true);

    reads.clear();
    statusReads = 0;
    const unchanged = await registry.metrics();
    expect(statusReads).toBe(3);
    expect(reads.size).toBe(0);

    statuses.set("beta.test", { lastAttemptAt: 1_772_323_300_000, consecutiveFailures: 0 });
    const changed = await registry.metrics();
    expect([...reads.keys()]).toEqual(["beta.test"]);
    expect(changed).not.toBe(unchanged);
    expect(changed).toMatch(
      /^bundlegate_relationship_last_attempt_timestamp_seconds\{trust_domain="beta\.test"\} 1772323300$/m,
    );
  });

  it("gives the event loop a turn while it walks the relationships", async () => {
    const relationships = Array.from({ length: 40 }, (_, n) => relationshipOf(`p${n}.test`));
    const events: string[] = [];
    const source: RelationshipSource = {
      relationships: () => relationships,
      status: (trustDomain) => {
        events.push(trustDomain);
        return undefined;
      },
      bundle: () => undefined,
      quarantined: () => false,
      federation: FEDERATION,
      now: () => NOW,
    };
    // A zero budget: every chance to pause is taken.
    const registry = new ExpositionRegistry({ sliceMs: 0 });
    registerRelationshipMetrics(registry, () => source);
    const scrape = registry.metrics().then(() => events.push("scrape done"));
    setImmediate(() => events.push("immediate"));
    await scrape;
    const turn = events.indexOf("immediate");
    expect(turn).toBeGreaterThanOrEqual(0);
    expect(turn).toBeLessThan(relationships.length);
    expect(events.at(-1)).toBe("scrape done");
  });

  it("leaves OpenMetrics and default labels to prom-client, relationship series included", async () => {
    const { metrics, stop } = fixture();
    metrics.registry.setDefaultLabels({ replica: "r1" });
    const labelled = await metrics.registry.metrics();
    expect(labelled).toMatch(/^bundlegate_relationship_info\{trust_domain="alpha\.test",[^}]*,replica="r1"\} 1$/m);
    metrics.registry.setDefaultLabels({});
    metrics.registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE as never);
    const open = await metrics.registry.metrics();
    expect(open.endsWith("# EOF\n")).toBe(true);
    expect(open).toMatch(/^bundlegate_bundle_info\{trust_domain="gamma\.test",digest="[0-9a-f]{64}"\} 1$/m);
    stop();
  });
});
