/**
 * Every metric, on one prom-client Registry built per app (never the global one, so two apps in one
 * process, as in tests, never share series). Gauges that describe state are computed at scrape time
 * from the values they describe, so they can never drift from them.
 */
import { X509Certificate } from "node:crypto";
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from "prom-client";
import type { ServedBundle, TlsCredentials, Watched } from "../sources/types.js";

export type EndpointProfile = "https_web" | "https_spiffe";

export interface Metrics {
  readonly registry: Registry;
  readonly endpointRequests: Counter<"profile" | "code">;
  readonly endpointRequestSeconds: Histogram<"profile">;
  readonly tlsReloads: Counter<"profile" | "result" | "code">;
  readonly localBundleReloads: Counter<"result" | "code">;
  readonly fetchAttempts: Counter<"trust_domain" | "result">;
  readonly fetchSeconds: Histogram<"outcome">;
  readonly decisions: Counter<"trust_domain" | "decision" | "reason">;
  /** Registers the live values the scrape-time gauges read. */
  observeLocalBundle(bundle: Watched<ServedBundle>): void;
  observeServingCertificate(profile: EndpointProfile, credentials: Watched<TlsCredentials>): void;
}

export function createMetrics(options: { version: string; defaultMetrics?: boolean }): Metrics {
  const registry = new Registry();
  if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: registry, prefix: "bundlegate_" });

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
    help: "Reloads of serving certificates, by profile and result; failed ones keep the previous certificate.",
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

  for (const profile of ["https_web", "https_spiffe"] as const) {
    for (const result of ["ok", "error"]) tlsReloads.inc({ profile, result, code: "" }, 0);
  }
  for (const result of ["changed", "unchanged", "error"]) localBundleReloads.inc({ result, code: "" }, 0);

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
        this.set({ fingerprint: authority.fingerprint.slice(0, 16) }, notAfterSeconds(authority.der));
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
    observeLocalBundle(bundle) {
      localBundle = bundle;
    },
    observeServingCertificate(profile, credentials) {
      certificates.set(profile, credentials);
    },
  };
}

const notAfterCache = new WeakMap<Uint8Array, number>();

function notAfterSeconds(der: Uint8Array): number {
  let seconds = notAfterCache.get(der);
  if (seconds === undefined) {
    seconds = Date.parse(new X509Certificate(der).validTo) / 1000;
    notAfterCache.set(der, seconds);
  }
  return seconds;
}
