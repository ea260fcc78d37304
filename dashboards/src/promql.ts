/**
 * PromQL shared by the dashboards: the variables every relationship query filters on, and the counts the
 * overview and the freshness dashboard both show, so the two can never disagree.
 *
 * Every replica exports the same relationship gauges (each keeps all last-known-good bundles in memory), so
 * per-relationship values are folded with `max by (trust_domain)` before they are counted or shown.
 * `trust_domain` is the join label (DESIGN.md section 7): owner lives only on bundlegate_relationship_info,
 * and the owner filter is an `and on (trust_domain)` against it.
 */
import { labelVariable, type Variable } from "./grafana.js";

export const TRUST_DOMAIN = 'trust_domain=~"$trust_domain"';
const INFO = `bundlegate_relationship_info{owner=~"$owner", ${TRUST_DOMAIN}}`;

export const ownerVariable: Variable = labelVariable({
  name: "owner",
  label: "Owner",
  definition: "label_values(bundlegate_relationship_info, owner)",
  description: "Who answers for the relationship (the owner field of its config or onboarding).",
});

export const trustDomainVariable: Variable = labelVariable({
  name: "trust_domain",
  label: "Trust domain",
  definition: 'label_values(bundlegate_relationship_info{owner=~"$owner"}, trust_domain)',
  description: "The partner trust domains; the list follows the owner filter.",
});

/** `metric` of the selected trust domains, one series per trust domain. */
export function perDomain(metric: string, aggregation: "max" | "min" | "sum" = "max", extra = ""): string {
  return `${aggregation} by (trust_domain) (${metric}{${TRUST_DOMAIN}${extra === "" ? "" : `, ${extra}`}})`;
}

/**
 * Keeps the series of `expr` whose trust_domain belongs to a selected owner. Parenthesised whole, since
 * `and` binds more loosely than any operator a caller may put after it.
 */
export function owned(expr: string): string {
  return `((${expr}) and on (trust_domain) ${INFO})`;
}

/** A count that shows 0, not "no data", when nothing matches. */
export function countOf(expr: string): string {
  return `count(${expr}) or vector(0)`;
}

const lastSuccess = `(${perDomain("bundlegate_relationship_last_success_timestamp_seconds")} > 0)`;

/** Seconds since the last successful fetch; relationships that never synced have no series. */
export const ageSeconds = owned(`time() - ${lastSuccess}`);

/** Age as a fraction of the stale threshold (3 x the refresh hint): 1 is stale, 5/3 critical. */
export const ageRatio = owned(
  `(time() - ${lastSuccess}) / ${perDomain("bundlegate_relationship_stale_after_seconds")}`,
);

export const CRITICAL_RATIO = 5 / 3;

export const staleCount = countOf(
  owned(`time() - ${lastSuccess} > ${perDomain("bundlegate_relationship_stale_after_seconds")}`),
);

export const criticalCount = countOf(
  owned(`time() - ${lastSuccess} > ${perDomain("bundlegate_relationship_critical_after_seconds")}`),
);

/**
 * Active and pending relationships without a successful fetch yet: the ones BundleNeverSynced alerts about
 * (pending ones are polled too; suspended ones were taken out of service on purpose).
 */
export const neverSyncedCount = countOf(
  `max by (trust_domain) (bundlegate_relationship_info{owner=~"$owner", ${TRUST_DOMAIN}, state!="suspended"}) unless on (trust_domain) ${lastSuccess}`,
);

export const failingCount = countOf(owned(`${perDomain("bundlegate_relationship_consecutive_failures")} > 0`));

export const quarantinedCount = countOf(owned(`${perDomain("bundlegate_relationship_quarantined")} > 0`));

/** Trust domains whose bundle digest differs between replicas. */
export const driftCount = countOf(
  owned(`count by (trust_domain) (count by (trust_domain, digest) (bundlegate_bundle_info{${TRUST_DOMAIN}})) > 1`),
);

export const noUsableAuthorityCount = countOf(owned(`${perDomain("bundlegate_bundle_usable_authorities")} == 0`));

/** Days until the newest X.509 authority of each partner bundle expires. */
export const newestAuthorityDaysLeft = owned(
  `(${perDomain("bundlegate_bundle_authority_not_after_timestamp_seconds")} - time()) / 86400`,
);

export function expiringWithinDays(days: number): string {
  return countOf(`${newestAuthorityDaysLeft} < ${days}`);
}

/** Fetch attempts whose result is an error code (the other results are trust decisions). */
export const FETCH_ERROR = 'result=~"ERR_.*"';
