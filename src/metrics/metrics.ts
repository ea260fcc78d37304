/**
 * Every metric, on one prom-client Registry built per app (never the global one, so two apps in one
 * process, as in tests, never share series). Gauges that describe state are computed at scrape time
 * from the values they describe, so they can never drift from them. The registry is an
 * ExpositionRegistry, whose scrape stays cheap and short with thousands of relationships.
 */
import { Counter, collectDefaultMetrics, Gauge, Histogram, type Registry } from "prom-client";
import type { RelationshipRegistry } from "../federation/registry.js";
import type { Decision } from "../policy/types.js";
import type { ServedBundle, TlsCredentials, Watched } from "../sources/types.js";
import { notAfterSeconds } from "../spiffe/not-after.js";
import { ExpositionRegistry } from "./exposition-registry.js";
import {
  FINGERPRINT_LABEL_LENGTH,
  type RelationshipSource,
  registerRelationshipMetrics,
} from "./relationship-metrics.js";

export type EndpointProfile = "https_web" | "https_spiffe";

/** The status codes the bundle endpoint answers with, each initialised to 0 per configured profile. */
export const ENDPOINT_CODES = ["200", "304", "404", "405"] as const;

/**
 * The label sets alerts count increases of, started at 0 for every relationship: a series that first
 * appears at 1 has no increase to see, so without them an alert would miss the first event after a restart.
 * Only these: every extra label set is 10,000 more series on a large gateway.
 */
export const INITIAL_REJECTION_REASONS = [
  "ERR_POLICY_SEQUENCE_ROLLBACK",
  "ERR_POLICY_FULL_REPLACEMENT",
  "ERR_POLICY_SHARED_WITH_OWN_DOMAIN",
  "ERR_POLICY_SHARED_WITH_OTHER_PARTNER",
  "ERR_POLICY_SEQUENCE_REUSED",
] as const;
export const INITIAL_TRUST_REMOVAL_REASONS = [
  "EMPTY_BUNDLE",
  "ALL_AUTHORITIES_EXPIRED",
  "AUTHORITIES_REMOVED",
] as const;

/** What the federation gauges read at scrape: relationships, statuses and bundles, and the engine's health. */
export interface FederationObservation extends RelationshipSource {
  leasesHeld(): number;
  /** True while the store is unreachable and this replica serves its last-known-good from memory. */
  degraded(): boolean;
  /** Store health, answered within a bounded time (see store-probe.ts). */
  storeUp(): Promise<boolean>;
}

export interface Metrics {
  readonly registry: Registry;
  readonly endpointRequests: Counter<"profile" | "code">;
  readonly endpointRequestSeconds: Histogram<"profile">;
  readonly tlsReloads: Counter<"profile" | "result" | "code">;
  readonly localBundleReloads: Counter<"result" | "code">;
  readonly fetchAttempts: Counter<"trust_domain" | "result">;
  readonly fetchSeconds: Histogram<"outcome">;
  readonly decisions: Counter<"trust_domain" | "decision" | "reason">;
  readonly bundleUpdates: Counter<"trust_domain">;
  readonly bundleRejections: Counter<"trust_domain" | "reason">;
  /** Registers the live values the scrape-time gauges read. */
  observeLocalBundle(bundle: Watched<ServedBundle>): void;
  /** Also initialises the profile's request series, so a profile that served nothing yet still shows 0. */
  observeServingCertificate(profile: EndpointProfile, credentials: Watched<TlsCredentials>): void;
  observeFederation(observation: FederationObservation): void;
  /**
   * Starts each relationship's counters at 0 when it appears, and drops every counter series of one that
   * is deleted (counters are not rebuilt at scrape like the gauges). Returns the function that stops it.
   */
  trackRelationships(relationships: Pick<RelationshipRegistry, "list" | "subscribe">): () => void;
  /** The sync engine's hooks. */
  recordFetch(trustDomain: string, result: string, seconds: number): void;
  recordDecision(trustDomain: string, decision: Decision): void;
}

export function createMetrics(options: {
  version: string;
  defaultMetrics?: boolean;
  /** After a relationship is deleted, its counters are swept once more after this (an in-flight fetch may count late). Default 60 000. */
  lateSweepMs?: number;
}): Metrics {
  const registry = new ExpositionRegistry();
  if (options.defaultMetrics ?? true) {
    collectDefaultMetrics({ register: registry, prefix: "bundlegate_" });
    // Gauges named like counters, which `promtool check metrics` refuses; each is the sum over `type`
    // of the same metric without the suffix, which stays.
    for (const kind of ["handles", "requests", "resources"]) {
      registry.removeSingleMetric(`bundlegate_nodejs_active_${kind}_total`);
    }
  }

  new Gauge({
    name: "bundlegate_build_info",
    help: "Build information; always 1.",
    labelNames: ["version", "node_version"],
    registers: [registry],
  }).set({ version: options.version, node_version: process.version }, 1);

  const endpointRequests = new Counter({
    name: "bundlegate_endpoint_requests_total",
    help: "Requests answered by the public bundle endpoint, by profile and status code.",
    labelNames: ["profile", "code"] as const,
    registers: [registry],
  });
  const endpointRequestSeconds = new Histogram({
    name: "bundlegate_endpoint_request_duration_seconds",
    help: "Time to answer a bundle endpoint request.",
    labelNames: ["profile"] as const,
    buckets: [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25],
    registers: [registry],
  });
  const tlsReloads = new Counter({
    name: "bundlegate_tls_reloads_total",
    help: "Reloads of serving certificates, by profile (https_web, https_spiffe, or internal for the internal listener) and result; failed ones keep the previous certificate.",
    labelNames: ["profile", "result", "code"] as const,
    registers: [registry],
  });
  const localBundleReloads = new Counter({
    name: "bundlegate_local_bundle_reloads_total",
    help: "Reads of the local bundle file after start, by result; failed ones keep the previous bundle.",
    labelNames: ["result", "code"] as const,
    registers: [registry],
  });
  const fetchAttempts = new Counter({
    name: "bundlegate_fetch_attempts_total",
    help: "Fetches of partner bundle endpoints, by trust domain and result (a decision, or the error code of a failure).",
    labelNames: ["trust_domain", "result"] as const,
    registers: [registry],
  });
  // No trust_domain label: with thousands of relationships a per-domain histogram would be most of the series.
  const fetchSeconds = new Histogram({
    name: "bundlegate_fetch_duration_seconds",
    help: "Time of one partner bundle fetch, from connect to decision, by outcome (ok or error).",
    labelNames: ["outcome"] as const,
    buckets: [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [registry],
  });
  const decisions = new Counter({
    name: "bundlegate_bundle_decisions_total",
    help: "Trust decisions on fetched bundles, by trust domain, decision and deciding reason.",
    labelNames: ["trust_domain", "decision", "reason"] as const,
    registers: [registry],
  });

  const bundleUpdates = new Counter({
    name: "bundlegate_bundle_updates_total",
    help: "Fetched partner bundles this replica accepted as the new last-known-good, by trust domain.",
    labelNames: ["trust_domain"] as const,
    registers: [registry],
  });
  const bundleRejections = new Counter({
    name: "bundlegate_bundle_rejections_total",
    help: "Fetched partner bundles this replica rejected by policy (the last-known-good stays), by trust domain and reason code.",
    labelNames: ["trust_domain", "reason"] as const,
    registers: [registry],
  });

  for (const profile of ["https_web", "https_spiffe"] as const) {
    for (const result of ["ok", "error"]) tlsReloads.inc({ profile, result, code: "" }, 0);
  }
  for (const result of ["changed", "unchanged", "error"]) localBundleReloads.inc({ result, code: "" }, 0);
  for (const outcome of ["ok", "error"]) fetchSeconds.zero({ outcome });

  let federation: FederationObservation | undefined;
  registerRelationshipMetrics(registry, () => federation);
  new Gauge({
    name: "bundlegate_leases_held",
    help: "Relationship polling leases this replica holds now.",
    registers: [registry],
    collect() {
      if (federation) this.set(federation.leasesHeld());
    },
  });
  new Gauge({
    name: "bundlegate_redis_up",
    help: "1 when the store (Redis, or the embedded store) answers its health check within a second, else 0.",
    registers: [registry],
    async collect() {
      if (federation) this.set((await federation.storeUp()) ? 1 : 0);
    },
  });
  new Gauge({
    name: "bundlegate_serving_last_known_good",
    help: "1 while the store is unreachable: partners are still polled, bundles served from memory, and outcomes wait to be written.",
    registers: [registry],
    collect() {
      if (federation) this.set(federation.degraded() ? 1 : 0);
    },
  });

  let localBundle: Watched<ServedBundle> | undefined;
  const certificates = new Map<EndpointProfile, Watched<TlsCredentials>>();

  new Gauge({
    name: "bundlegate_local_bundle_sequence",
    help: "spiffe_sequence of the bundle this domain serves.",
    registers: [registry],
    collect() {
      // A double loses precision past 2^53; sequences that large are still ordered, which is what alerts need.
      if (localBundle) this.set(Number(localBundle.current().sequence));
    },
  });
  new Gauge({
    name: "bundlegate_local_authority_not_after_timestamp_seconds",
    help: "Expiry of each X.509 authority in the bundle this domain serves.",
    labelNames: ["fingerprint"] as const,
    registers: [registry],
    collect() {
      this.reset();
      if (!localBundle) return;
      for (const authority of localBundle.current().bundle.x509Authorities) {
        this.set(
          { fingerprint: authority.fingerprint.slice(0, FINGERPRINT_LABEL_LENGTH) },
          notAfterSeconds(authority.der),
        );
      }
    },
  });
  new Gauge({
    name: "bundlegate_serving_certificate_not_after_timestamp_seconds",
    help: "Expiry of the certificate each bundle endpoint profile presents.",
    labelNames: ["profile"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [profile, credentials] of certificates) {
        this.set({ profile }, Date.parse(credentials.current().leaf.validTo) / 1000);
      }
    },
  });

  return {
    registry,
    endpointRequests,
    endpointRequestSeconds,
    tlsReloads,
    localBundleReloads,
    fetchAttempts,
    fetchSeconds,
    decisions,
    bundleUpdates,
    bundleRejections,
    observeLocalBundle(bundle) {
      localBundle = bundle;
    },
    observeServingCertificate(profile, credentials) {
      certificates.set(profile, credentials);
      for (const code of ENDPOINT_CODES) endpointRequests.inc({ profile, code }, 0);
      endpointRequestSeconds.zero({ profile });
    },
    observeFederation(observation) {
      federation = observation;
    },
    trackRelationships(relationships) {
      const perRelationship = [fetchAttempts, decisions, bundleUpdates, bundleRejections] as const;
      let known = new Set<string>();
      const timers = new Set<NodeJS.Timeout>();
      // Removes every series of a trust domain no longer in the registry, not just the ones deleted now:
      // a fetch in flight when its relationship was deleted may count after the first sweep.
      const sweep = async () => {
        const current = new Set<string>(relationships.list().map((relationship) => relationship.trustDomain));
        for (const counter of perRelationship) {
          const { values } = await counter.get();
          for (const { labels } of values) {
            const trustDomain = labels.trust_domain;
            if (typeof trustDomain === "string" && !current.has(trustDomain)) {
              (counter as Counter<string>).remove(labels as Record<string, string>);
            }
          }
        }
      };
      const sync = () => {
        const current = new Set<string>(relationships.list().map((relationship) => relationship.trustDomain));
        for (const trustDomain of current) {
          if (known.has(trustDomain)) continue;
          bundleUpdates.inc({ trust_domain: trustDomain }, 0);
          for (const reason of INITIAL_REJECTION_REASONS) {
            bundleRejections.inc({ trust_domain: trustDomain, reason }, 0);
          }
          for (const reason of INITIAL_TRUST_REMOVAL_REASONS) {
            decisions.inc({ trust_domain: trustDomain, decision: "accept_alert", reason }, 0);
          }
        }
        const removed = [...known].some((trustDomain) => !current.has(trustDomain));
        known = current;
        if (!removed) return;
        void sweep();
        const timer = setTimeout(() => {
          timers.delete(timer);
          void sweep();
        }, options.lateSweepMs ?? 60_000);
        timer.unref?.();
        timers.add(timer);
      };
      sync();
      const unsubscribe = relationships.subscribe(sync);
      return () => {
        unsubscribe();
        for (const timer of timers) clearTimeout(timer);
        timers.clear();
      };
    },
    recordFetch(trustDomain, result, seconds) {
      fetchAttempts.inc({ trust_domain: trustDomain, result });
      fetchSeconds.observe({ outcome: result.startsWith("ERR_") ? "error" : "ok" }, seconds);
    },
    recordDecision(trustDomain, decision) {
      const reason = decision.reasons[0]?.code ?? "";
      decisions.inc({ trust_domain: trustDomain, decision: decision.kind, reason });
      if (decision.kind === "accept" || decision.kind === "accept_alert")
        bundleUpdates.inc({ trust_domain: trustDomain });
      // The same code the relationship's status carries as lastErrorCode (updater.ts).
      if (decision.kind === "reject") {
        bundleRejections.inc({ trust_domain: trustDomain, reason: `ERR_POLICY_${reason || "REJECTED"}` });
      }
    },
  };
}
