/**
 * The app-level metrics: counters fed by the sync engine's hooks (started at 0 for each relationship,
 * dropped with it), the engine and store gauges, and the series initialised before anything happened.
 */
import { describe, expect, it, vi } from "vitest";
import {
  createMetrics,
  type FederationObservation,
  INITIAL_REJECTION_REASONS,
  INITIAL_TRUST_REMOVAL_REASONS,
  type Metrics,
} from "../../src/metrics/metrics.js";
import type { Decision } from "../../src/policy/types.js";
import type { TlsCredentials } from "../../src/sources/types.js";
import { createTrustBundle } from "../../src/spiffe/bundle.js";
import { diffBundles } from "../../src/spiffe/diff.js";
import { createWatchedValue } from "../support/watched.js";
import { mutableRegistry, relationshipOf, series, seriesValue } from "./support.js";

const EMPTY_DIFF = diffBundles(createTrustBundle(), createTrustBundle());

function decision(kind: Decision["kind"], code: Decision["reasons"][number]["code"]): Decision {
  return { kind, reasons: [{ code, message: code }], diff: EMPTY_DIFF };
}

function observe(metrics: Metrics, overrides: Partial<FederationObservation> = {}): void {
  metrics.observeFederation({
    relationships: () => [],
    status: () => undefined,
    bundle: () => undefined,
    quarantined: () => false,
    federation: { minRefreshHintSeconds: 60, maxRefreshHintSeconds: 86_400, defaultRefreshHintSeconds: 300 },
    now: () => new Date(),
    leasesHeld: () => 0,
    degraded: () => false,
    storeUp: async () => true,
    ...overrides,
  });
}

describe("relationship counters", () => {
  it("start at 0 for every relationship: each policy rejection and each trust removal the alerts count", async () => {
    const metrics = createMetrics({ version: "test", defaultMetrics: false });
    const registry = mutableRegistry([relationshipOf("alpha.test"), relationshipOf("beta.test")]);
    const stop = metrics.trackRelationships(registry);
    expect(await series(metrics.registry, "bundlegate_bundle_rejections_total")).toEqual(
      ["alpha.test", "beta.test"].flatMap((trust_domain) =>
        INITIAL_REJECTION_REASONS.map((reason) => ({ labels: { trust_domain, reason }, value: 0 })),
      ),
    );
    expect(await series(metrics.registry, "bundlegate_bundle_decisions_total")).toEqual(
      ["alpha.test", "beta.test"].flatMap((trust_domain) =>
        INITIAL_TRUST_REMOVAL_REASONS.map((reason) => ({
          labels: { trust_domain, decision: "accept_alert", reason },
          value: 0,
        })),
      ),
    );
    expect(await series(metrics.registry, "bundlegate_bundle_updates_total")).toEqual([
      { labels: { trust_domain: "alpha.test" }, value: 0 },
      { labels: { trust_domain: "beta.test" }, value: 0 },
    ]);
    // A relationship added later starts at 0 too.
    registry.set(relationshipOf("gamma.test"));
    expect(
      await seriesValue(metrics.registry, "bundlegate_bundle_rejections_total", {
        trust_domain: "gamma.test",
        reason: "ERR_POLICY_SEQUENCE_ROLLBACK",
      }),
    ).toBe(0);
    stop();
  });

  it("count accepted changes, rejections by the status's error code, and every decision", async () => {
    const metrics = createMetrics({ version: "test", defaultMetrics: false });
    const stop = metrics.trackRelationships(mutableRegistry([relationshipOf("alpha.test")]));
    metrics.recordDecision("alpha.test", decision("accept", "FIRST_BUNDLE"));
    metrics.recordDecision("alpha.test", decision("accept_alert", "AUTHORITIES_REMOVED"));
    metrics.recordDecision("alpha.test", decision("unchanged", "UNCHANGED"));
    metrics.recordDecision("alpha.test", decision("quarantine", "FULL_REPLACEMENT"));
    metrics.recordDecision("alpha.test", decision("reject", "SEQUENCE_ROLLBACK"));
    metrics.recordDecision("alpha.test", decision("reject", "SEQUENCE_ROLLBACK"));
    metrics.recordFetch("alpha.test", "rejected", 0.02);
    metrics.recordFetch("alpha.test", "ERR_FETCH_TIMEOUT", 5);

    const { registry } = metrics;
    expect(await seriesValue(registry, "bundlegate_bundle_updates_total", { trust_domain: "alpha.test" })).toBe(2);
    expect(
      await seriesValue(registry, "bundlegate_bundle_rejections_total", {
        trust_domain: "alpha.test",
        reason: "ERR_POLICY_SEQUENCE_ROLLBACK",
      }),
    ).toBe(2);
    expect(
      await seriesValue(registry, "bundlegate_bundle_rejections_total", {
        trust_domain: "alpha.test",
        reason: "ERR_POLICY_FULL_REPLACEMENT",
      }),
    ).toBe(0);
    expect(
      await seriesValue(registry, "bundlegate_bundle_decisions_total", {
        trust_domain: "alpha.test",
        decision: "quarantine",
        reason: "FULL_REPLACEMENT",
      }),
    ).toBe(1);
    expect(
      await seriesValue(registry, "bundlegate_fetch_attempts_total", {
        trust_domain: "alpha.test",
        result: "rejected",
      }),
    ).toBe(1);
    const durations = await series(registry, "bundlegate_fetch_duration_seconds");
    const count = (outcome: string) =>
      durations.find((s) => s.labels.outcome === outcome && s.labels.le === "+Inf")?.value;
    expect(count("ok")).toBe(1);
    expect(count("error")).toBe(1);
    stop();
  });

  it("drop every series of a deleted relationship, and keep the others", async () => {
    const metrics = createMetrics({ version: "test", defaultMetrics: false });
    const registry = mutableRegistry([relationshipOf("alpha.test"), relationshipOf("beta.test")]);
    const stop = metrics.trackRelationships(registry);
    for (const td of ["alpha.test", "beta.test"]) {
      metrics.recordFetch(td, "accepted", 0.1);
      metrics.recordDecision(td, decision("accept", "FIRST_BUNDLE"));
      metrics.recordDecision(td, decision("reject", "SEQUENCE_ROLLBACK"));
    }
    registry.remove("alpha.test");
    await vi.waitFor(async () => expect(await metrics.registry.metrics()).not.toContain('trust_domain="alpha.test"'));
    const text = await metrics.registry.metrics();
    for (const name of [
      "bundlegate_fetch_attempts_total",
      "bundlegate_bundle_decisions_total",
      "bundlegate_bundle_updates_total",
      "bundlegate_bundle_rejections_total",
    ]) {
      expect(text).toMatch(new RegExp(`^${name}\\{trust_domain="beta\\.test"[^}]*\\} 1$`, "m"));
    }
    stop();
  });

  it("sweeps again later, for a fetch that counted after its relationship was deleted", async () => {
    const metrics = createMetrics({ version: "test", defaultMetrics: false, lateSweepMs: 50 });
    const registry = mutableRegistry([relationshipOf("alpha.test")]);
    const stop = metrics.trackRelationships(registry);
    registry.remove("alpha.test");
    metrics.recordFetch("alpha.test", "accepted", 0.1);
    expect(await metrics.registry.metrics()).toContain('trust_domain="alpha.test"');
    await vi.waitFor(async () => expect(await metrics.registry.metrics()).not.toContain('trust_domain="alpha.test"'));
    stop();
  });
});

describe("engine and store gauges", () => {
  it("read leases, degraded mode and store health at scrape", async () => {
    const metrics = createMetrics({ version: "test", defaultMetrics: false });
    let leases = 3;
    let degraded = false;
    let up = true;
    observe(metrics, { leasesHeld: () => leases, degraded: () => degraded, storeUp: async () => up });
    const read = async () => ({
      leases: await seriesValue(metrics.registry, "bundlegate_leases_held", {}),
      lkg: await seriesValue(metrics.registry, "bundlegate_serving_last_known_good", {}),
      redis: await seriesValue(metrics.registry, "bundlegate_redis_up", {}),
    });
    expect(await read()).toEqual({ leases: 3, lkg: 0, redis: 1 });
    leases = 0;
    degraded = true;
    up = false;
    expect(await read()).toEqual({ leases: 0, lkg: 1, redis: 0 });
  });
});

describe("series known in advance", () => {
  it("start the endpoint's request series of each configured profile at 0", async () => {
    const metrics = createMetrics({ version: "test", defaultMetrics: false });
    const credentials = createWatchedValue({
      leaf: { validTo: "Jan  1 00:00:00 2030 GMT" },
    } as unknown as TlsCredentials);
    metrics.observeServingCertificate("https_web", credentials);
    expect(await series(metrics.registry, "bundlegate_endpoint_requests_total")).toEqual(
      ["200", "304", "404", "405"].map((code) => ({ labels: { profile: "https_web", code }, value: 0 })),
    );
    const durations = await series(metrics.registry, "bundlegate_endpoint_request_duration_seconds");
    expect(durations.find((s) => s.labels.profile === "https_web" && s.labels.le === "+Inf")?.value).toBe(0);
    expect(durations.some((s) => s.labels.profile === "https_spiffe")).toBe(false);
  });

  it("start fetch durations of both outcomes at 0", async () => {
    const metrics = createMetrics({ version: "test", defaultMetrics: false });
    const durations = await series(metrics.registry, "bundlegate_fetch_duration_seconds");
    for (const outcome of ["ok", "error"]) {
      expect(durations.find((s) => s.labels.outcome === outcome && s.labels.le === "+Inf")?.value).toBe(0);
    }
  });
});
