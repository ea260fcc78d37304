/**
 * Metric names for the operations tests, from one place each: what the app exports, read off a registry
 * built as the app builds it, and what DESIGN.md section 7 and the metrics issue promise.
 */
import { createMetrics } from "../../src/metrics/metrics.js";

/** The series a histogram family is queried by. */
const HISTOGRAM_SERIES = ["_bucket", "_sum", "_count"] as const;

/**
 * Every metric family of the app's registry (prom-client's process and Node.js metrics as the app keeps
 * them, and the per-relationship families, which are registered before any relationship exists), with the
 * series names of each histogram. No app is started: `createMetrics` alone builds the registry.
 */
export function exportedMetricNames(): Set<string> {
  const names = new Set<string>();
  for (const { name, type } of createMetrics({ version: "test" }).registry.getMetricsAsArray()) {
    names.add(name);
    if (String(type) === "histogram") for (const suffix of HISTOGRAM_SERIES) names.add(`${name}${suffix}`);
  }
  return names;
}

/** The metrics bundlegate promises (DESIGN.md section 7 and the metrics issue), by family name. */
export const METRIC_CONTRACT: readonly string[] = [
  // Per relationship, computed at scrape.
  "bundlegate_relationship_info",
  "bundlegate_relationship_last_attempt_timestamp_seconds",
  "bundlegate_relationship_last_success_timestamp_seconds",
  "bundlegate_relationship_last_change_timestamp_seconds",
  "bundlegate_relationship_refresh_interval_seconds",
  "bundlegate_relationship_stale_after_seconds",
  "bundlegate_relationship_critical_after_seconds",
  "bundlegate_relationship_consecutive_failures",
  "bundlegate_relationship_quarantined",
  "bundlegate_relationship_review_by_timestamp_seconds",
  "bundlegate_relationship_expires_at_timestamp_seconds",
  "bundlegate_bundle_sequence",
  "bundlegate_bundle_size_bytes",
  "bundlegate_bundle_refresh_hint_seconds",
  "bundlegate_bundle_authorities",
  "bundlegate_bundle_usable_authorities",
  "bundlegate_bundle_authority_not_after_timestamp_seconds",
  "bundlegate_bundle_info",
  // Fetches and trust decisions.
  "bundlegate_fetch_attempts_total",
  "bundlegate_fetch_duration_seconds",
  "bundlegate_bundle_updates_total",
  "bundlegate_bundle_rejections_total",
  "bundlegate_bundle_decisions_total",
  // This replica and its store.
  "bundlegate_leases_held",
  "bundlegate_redis_up",
  "bundlegate_serving_last_known_good",
  // This domain's own bundle and the bundle endpoint.
  "bundlegate_local_bundle_sequence",
  "bundlegate_local_authority_not_after_timestamp_seconds",
  "bundlegate_endpoint_requests_total",
  "bundlegate_endpoint_request_duration_seconds",
  "bundlegate_serving_certificate_not_after_timestamp_seconds",
  "bundlegate_tls_reloads_total",
  "bundlegate_local_bundle_reloads_total",
  "bundlegate_build_info",
];
