/**
 * The per-relationship gauges against a small fake source: every metric of the contract with its labels
 * and values, absent series where a value never existed, and series of deleted relationships gone.
 */
import { X509Certificate } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import type { CachedBundle } from "../../src/federation/bundle-cache.js";
import type { Relationship } from "../../src/federation/relationship.js";
import { createMetrics, type FederationObservation, type Metrics } from "../../src/metrics/metrics.js";
import { createTrustBundle, jwtAuthority } from "../../src/spiffe/bundle.js";
import { exportPublicJwk } from "../../src/spiffe/public-key.js";
import type { RelationshipStatus } from "../../src/store/federation-state.js";
import { createCa, type Issued } from "../support/pki.js";
import {
  authorityOf,
  cachedOf,
  type MutableRegistry,
  mutableRegistry,
  relationshipOf,
  series,
  seriesValue,
} from "./support.js";

const NOW = new Date("2026-03-01T00:00:00Z");
const FEDERATION = { minRefreshHintSeconds: 60, maxRefreshHintSeconds: 86_400, defaultRefreshHintSeconds: 300 };

let validCa: Issued;
let expiredCa: Issued;
let alphaBundle: CachedBundle;
let gammaBundle: CachedBundle;

const alpha = () =>
  relationshipOf("alpha.test", {
    owner: "team-a",
    refresh: { kind: "interval", seconds: 120 },
    reviewBy: new Date("2030-01-01T00:00:00Z"),
    expiresAt: new Date("2031-01-01T00:00:00Z"),
  });
const beta = () =>
  relationshipOf("beta.test", {
    owner: "team-b",
    state: "suspended",
    origin: "api",
    profile: {
      kind: "https_spiffe",
      endpointSpiffeId: "spiffe://beta.test/server",
      bootstrapBundle: createTrustBundle(),
    },
    refresh: { kind: "cron", expression: "0 */2 * * *" },
  });
const gamma = () => relationshipOf("gamma.test", { owner: "team-c", state: "pending", maxStalenessSeconds: 900 });

const STATUSES: Record<string, RelationshipStatus> = {
  "alpha.test": {
    lastAttemptAt: 1_772_323_200_500,
    lastSuccessAt: 1_772_323_200_000,
    lastChangeAt: 1_772_300_000_000,
    consecutiveFailures: 0,
  },
  "gamma.test": { lastAttemptAt: 1_772_323_100_000, consecutiveFailures: 3, lastErrorCode: "ERR_FETCH_TIMEOUT" },
};

interface Fixture {
  readonly metrics: Metrics;
  readonly registry: MutableRegistry;
  readonly quarantined: Set<string>;
}

function fixture(): Fixture {
  const metrics = createMetrics({ version: "test", defaultMetrics: false });
  const registry = mutableRegistry([alpha(), beta(), gamma()]);
  const bundles: Record<string, CachedBundle> = { "alpha.test": alphaBundle, "gamma.test": gammaBundle };
  const quarantined = new Set(["alpha.test"]);
  const observation: FederationObservation = {
    relationships: () => registry.list(),
    status: (trustDomain) => STATUSES[trustDomain],
    bundle: (trustDomain) => bundles[trustDomain],
    quarantined: (trustDomain) => quarantined.has(trustDomain),
    federation: FEDERATION,
    now: () => NOW,
    leasesHeld: () => 2,
    degraded: () => false,
    storeUp: async () => true,
  };
  metrics.observeFederation(observation);
  return { metrics, registry, quarantined };
}

beforeAll(async () => {
  validCa = await createCa({
    trustDomain: "alpha.test",
    notBefore: new Date("2026-01-01"),
    notAfter: new Date("2027-01-01"),
  });
  expiredCa = await createCa({
    trustDomain: "alpha.test",
    notBefore: new Date("2025-01-01"),
    notAfter: new Date("2026-01-01"),
  });
  const jwtPublic = exportPublicJwk(new X509Certificate(validCa.der).publicKey);
  const witPublic = exportPublicJwk(new X509Certificate(expiredCa.der).publicKey);
  alphaBundle = cachedOf(
    "alpha.test",
    createTrustBundle({
      x509Authorities: [authorityOf(validCa), authorityOf(expiredCa)],
      jwtAuthorities: [jwtAuthority("jwt-1", jwtPublic), jwtAuthority("wit-1", witPublic, "wit-svid")],
      sequence: 7n,
      refreshHintSeconds: 600,
    }),
  );
  gammaBundle = cachedOf("gamma.test", createTrustBundle({ x509Authorities: [authorityOf(validCa)] }));
});

describe("relationship gauges", () => {
  it("labels every relationship with its owner, profile, state and origin on relationship_info only", async () => {
    const { metrics } = fixture();
    expect(await series(metrics.registry, "bundlegate_relationship_info")).toEqual([
      {
        labels: {
          trust_domain: "alpha.test",
          owner: "team-a",
          profile: "https_web",
          state: "active",
          origin: "config",
        },
        value: 1,
      },
      {
        labels: {
          trust_domain: "beta.test",
          owner: "team-b",
          profile: "https_spiffe",
          state: "suspended",
          origin: "api",
        },
        value: 1,
      },
      {
        labels: {
          trust_domain: "gamma.test",
          owner: "team-c",
          profile: "https_web",
          state: "pending",
          origin: "config",
        },
        value: 1,
      },
    ]);
    for (const metric of await metrics.registry.getMetricsAsJSON()) {
      if (metric.name === "bundlegate_relationship_info") continue;
      for (const value of metric.values) expect(Object.keys(value.labels), metric.name).not.toContain("owner");
    }
  });

  it("exports the status timestamps in seconds, and none that never happened", async () => {
    const { registry } = fixture().metrics;
    expect(await series(registry, "bundlegate_relationship_last_attempt_timestamp_seconds")).toEqual([
      { labels: { trust_domain: "alpha.test" }, value: 1_772_323_200.5 },
      { labels: { trust_domain: "gamma.test" }, value: 1_772_323_100 },
    ]);
    expect(await series(registry, "bundlegate_relationship_last_success_timestamp_seconds")).toEqual([
      { labels: { trust_domain: "alpha.test" }, value: 1_772_323_200 },
    ]);
    expect(await series(registry, "bundlegate_relationship_last_change_timestamp_seconds")).toEqual([
      { labels: { trust_domain: "alpha.test" }, value: 1_772_300_000 },
    ]);
    expect(await series(registry, "bundlegate_relationship_consecutive_failures")).toEqual([
      { labels: { trust_domain: "alpha.test" }, value: 0 },
      { labels: { trust_domain: "beta.test" }, value: 0 },
      { labels: { trust_domain: "gamma.test" }, value: 3 },
    ]);
  });

  it("exports the interval in use and the staleness thresholds of each relationship", async () => {
    const { registry } = fixture().metrics;
    // alpha: a fixed interval; beta: every two hours by cron; gamma: a quarter of the default hint.
    expect(await series(registry, "bundlegate_relationship_refresh_interval_seconds")).toEqual([
      { labels: { trust_domain: "alpha.test" }, value: 120 },
      { labels: { trust_domain: "beta.test" }, value: 7200 },
      { labels: { trust_domain: "gamma.test" }, value: 75 },
    ]);
    // alpha: 3 and 5 times its bundle's hint; beta: of the default hint; gamma: its max_staleness_seconds.
    expect(await series(registry, "bundlegate_relationship_stale_after_seconds")).toEqual([
      { labels: { trust_domain: "alpha.test" }, value: 1800 },
      { labels: { trust_domain: "beta.test" }, value: 900 },
      { labels: { trust_domain: "gamma.test" }, value: 900 },
    ]);
    expect(await series(registry, "bundlegate_relationship_critical_after_seconds")).toEqual([
      { labels: { trust_domain: "alpha.test" }, value: 3000 },
      { labels: { trust_domain: "beta.test" }, value: 1500 },
      { labels: { trust_domain: "gamma.test" }, value: 1500 },
    ]);
  });

  it("exports quarantine, review and expiry", async () => {
    const { metrics, quarantined } = fixture();
    expect(await series(metrics.registry, "bundlegate_relationship_quarantined")).toEqual([
      { labels: { trust_domain: "alpha.test" }, value: 1 },
      { labels: { trust_domain: "beta.test" }, value: 0 },
      { labels: { trust_domain: "gamma.test" }, value: 0 },
    ]);
    quarantined.delete("alpha.test");
    expect(
      await seriesValue(metrics.registry, "bundlegate_relationship_quarantined", { trust_domain: "alpha.test" }),
    ).toBe(0);
    expect(await series(metrics.registry, "bundlegate_relationship_review_by_timestamp_seconds")).toEqual([
      { labels: { trust_domain: "alpha.test" }, value: Date.parse("2030-01-01T00:00:00Z") / 1000 },
    ]);
    expect(await series(metrics.registry, "bundlegate_relationship_expires_at_timestamp_seconds")).toEqual([
      { labels: { trust_domain: "alpha.test" }, value: Date.parse("2031-01-01T00:00:00Z") / 1000 },
    ]);
  });

  it("describes the bundle each relationship is served with, and nothing for one without a bundle", async () => {
    const { registry } = fixture().metrics;
    expect(await series(registry, "bundlegate_bundle_sequence")).toEqual([
      { labels: { trust_domain: "alpha.test" }, value: 7 },
    ]);
    expect(await series(registry, "bundlegate_bundle_refresh_hint_seconds")).toEqual([
      { labels: { trust_domain: "alpha.test" }, value: 600 },
    ]);
    expect(await series(registry, "bundlegate_bundle_size_bytes")).toEqual([
      { labels: { trust_domain: "alpha.test" }, value: Buffer.byteLength(alphaBundle.stored.json) },
      { labels: { trust_domain: "gamma.test" }, value: Buffer.byteLength(gammaBundle.stored.json) },
    ]);
    expect(await series(registry, "bundlegate_bundle_info")).toEqual([
      { labels: { trust_domain: "alpha.test", digest: alphaBundle.stored.digest }, value: 1 },
      { labels: { trust_domain: "gamma.test", digest: gammaBundle.stored.digest }, value: 1 },
    ]);
    expect(alphaBundle.stored.digest).toMatch(/^[0-9a-f]{64}$/);
  });

  it("counts authorities by use, both uses present even at 0, and the usable ones", async () => {
    const { registry } = fixture().metrics;
    const authorities = await series(registry, "bundlegate_bundle_authorities");
    expect(authorities).toHaveLength(5);
    expect(authorities).toEqual(
      expect.arrayContaining([
        { labels: { trust_domain: "alpha.test", use: "x509-svid" }, value: 2 },
        { labels: { trust_domain: "alpha.test", use: "jwt-svid" }, value: 1 },
        { labels: { trust_domain: "alpha.test", use: "wit-svid" }, value: 1 },
        { labels: { trust_domain: "gamma.test", use: "x509-svid" }, value: 1 },
        { labels: { trust_domain: "gamma.test", use: "jwt-svid" }, value: 0 },
      ]),
    );
    // alpha: the unexpired CA and both JWT keys; the expired CA is not usable.
    expect(await series(registry, "bundlegate_bundle_usable_authorities")).toEqual([
      { labels: { trust_domain: "alpha.test" }, value: 3 },
      { labels: { trust_domain: "gamma.test" }, value: 1 },
    ]);
  });

  it("exports each X.509 authority's expiry under its shortened fingerprint", async () => {
    const { registry } = fixture().metrics;
    const short = (ca: Issued) => authorityOf(ca).fingerprint.slice(0, 16);
    const seconds = (ca: Issued) => Date.parse(new X509Certificate(ca.der).validTo) / 1000;
    const expiries = await series(registry, "bundlegate_bundle_authority_not_after_timestamp_seconds");
    expect(expiries).toHaveLength(3);
    expect(expiries).toEqual(
      expect.arrayContaining([
        { labels: { trust_domain: "alpha.test", fingerprint: short(validCa) }, value: seconds(validCa) },
        { labels: { trust_domain: "alpha.test", fingerprint: short(expiredCa) }, value: seconds(expiredCa) },
        { labels: { trust_domain: "gamma.test", fingerprint: short(validCa) }, value: seconds(validCa) },
      ]),
    );
    expect(seconds(validCa)).toBe(Date.parse("2027-01-01T00:00:00Z") / 1000);
  });

  it("follows state changes and drops every series of a deleted relationship at the next scrape", async () => {
    const { metrics, registry } = fixture();
    const before = await metrics.registry.metrics();
    expect(before).toContain('trust_domain="alpha.test"');
    registry.set({ ...gamma(), state: "active" } satisfies Relationship);
    registry.remove("alpha.test");
    const after = await metrics.registry.metrics();
    expect(after).not.toContain('trust_domain="alpha.test"');
    expect(after).toMatch(/^bundlegate_relationship_info\{trust_domain="gamma\.test",[^}]*state="active"[^}]*\} 1$/m);
    expect(after).toMatch(/^bundlegate_bundle_info\{trust_domain="gamma\.test",digest="[0-9a-f]{64}"\} 1$/m);
  });

  it("reports nothing about relationships before the federation is observed", async () => {
    const metrics = createMetrics({ version: "test", defaultMetrics: false });
    expect(await series(metrics.registry, "bundlegate_relationship_info")).toEqual([]);
    expect(await series(metrics.registry, "bundlegate_bundle_info")).toEqual([]);
  });
});
