/** The first screen: how many relationships there are and how many need someone now. */
import {
  booleanMapping,
  type Dashboard,
  dashboard,
  datasourceVariable,
  query,
  redFrom,
  stat,
  timeseries,
} from "./grafana.js";
import {
  criticalCount,
  driftCount,
  expiringWithinDays,
  FETCH_ERROR,
  failingCount,
  neverSyncedCount,
  noUsableAuthorityCount,
  owned,
  ownerVariable,
  quarantinedCount,
  staleCount,
  TRUST_DOMAIN,
  trustDomainVariable,
} from "./promql.js";

const problem = { w: 4, h: 4, thresholds: redFrom(1), noValue: "0", decimals: 0 } as const;

export function overviewDashboard(): Dashboard {
  return dashboard({
    uid: "bundlegate-overview",
    title: "bundlegate / Overview",
    description: "Federation relationships at a glance: how many, and how many are stale, failing or held.",
    variables: [datasourceVariable(), ownerVariable, trustDomainVariable],
  })
    .add(
      stat({
        title: "Relationships by state",
        description: "Relationships known to the gateway, by lifecycle state (pending, active, suspended).",
        w: 8,
        h: 4,
        decimals: 0,
        colorMode: "value",
        queries: [
          query(
            `count by (state) (max by (trust_domain, state) (bundlegate_relationship_info{owner=~"$owner", ${TRUST_DOMAIN}}))`,
            { legend: "{{state}}" },
          ),
        ],
      }),
      stat({
        ...problem,
        title: "Stale",
        description:
          "Relationships whose last successful fetch is older than 3 x the partner's refresh hint (or max_staleness_seconds).",
        thresholds: [
          { color: "green", value: null },
          { color: "orange", value: 1 },
        ],
        queries: [query(staleCount)],
      }),
      stat({
        ...problem,
        title: "Critical",
        description: "Relationships whose last successful fetch is older than 5 x the refresh hint.",
        queries: [query(criticalCount)],
      }),
      stat({
        ...problem,
        title: "Never synced",
        description:
          "Active and pending relationships without a successful fetch yet (suspended ones are left out, as in BundleNeverSynced).",
        thresholds: [
          { color: "green", value: null },
          { color: "orange", value: 1 },
        ],
        queries: [query(neverSyncedCount)],
      }),
    )
    .newLine()
    .add(
      stat({
        ...problem,
        title: "Failing",
        description: "Relationships whose latest fetches failed (consecutive failures above 0).",
        thresholds: [
          { color: "green", value: null },
          { color: "orange", value: 1 },
        ],
        queries: [query(failingCount)],
      }),
      stat({
        ...problem,
        title: "Quarantined",
        description:
          "Relationships with a fetched bundle held for review (a suspicious addition of trust); the last-known-good keeps being served.",
        queries: [query(quarantinedCount)],
      }),
      stat({
        ...problem,
        title: "Replica drift",
        description: "Trust domains whose bundle digest differs between replicas.",
        queries: [query(driftCount)],
      }),
      stat({
        ...problem,
        title: "No usable authority",
        description: "Partner bundles with no authority valid now.",
        queries: [query(noUsableAuthorityCount)],
      }),
      stat({
        ...problem,
        title: "Newest authority < 14 days",
        description: "Partner bundles whose newest X.509 authority expires within 14 days.",
        thresholds: [
          { color: "green", value: null },
          { color: "orange", value: 1 },
        ],
        queries: [query(expiringWithinDays(14))],
      }),
      stat({
        title: "Redis",
        description:
          "Whether every replica reaches Redis (the lowest value over replicas). Replicas serve from memory while it is down.",
        w: 4,
        h: 4,
        noValue: "no Redis store",
        mappings: [booleanMapping("up", "down")],
        thresholds: [
          { color: "red", value: null },
          { color: "green", value: 1 },
        ],
        queries: [query("min(bundlegate_redis_up)")],
      }),
    )
    .newLine()
    .add(
      timeseries({
        title: "Problems over time",
        description: "The counts above over the selected time range.",
        w: 12,
        h: 8,
        decimals: 0,
        min: 0,
        queries: [
          query(staleCount, { legend: "stale" }),
          query(criticalCount, { legend: "critical" }),
          query(failingCount, { legend: "failing" }),
          query(quarantinedCount, { legend: "quarantined" }),
          query(driftCount, { legend: "replica drift" }),
        ],
      }),
      timeseries({
        title: "Fetches by result",
        description: "Partner bundle fetches per second: trust decisions (accepted, unchanged, ...) and error codes.",
        w: 12,
        h: 8,
        unit: "reqps",
        stack: true,
        queries: [
          query(
            `sum by (result) (${owned(`rate(bundlegate_fetch_attempts_total{${TRUST_DOMAIN}}[$__rate_interval])`)})`,
            { legend: "{{result}}" },
          ),
        ],
      }),
    )
    .newLine()
    .add(
      stat({
        ...problem,
        w: 6,
        title: "Replicas serving last-known-good",
        description: "Replicas that cannot reach their store and serve from memory (readiness reports sync degraded).",
        queries: [query("sum(bundlegate_serving_last_known_good)")],
      }),
      stat({
        ...problem,
        w: 6,
        title: "Fetch errors in range",
        description: "Failed partner fetches over the selected time range.",
        thresholds: [
          { color: "green", value: null },
          { color: "orange", value: 1 },
        ],
        queries: [
          query(
            `round(sum(${owned(`increase(bundlegate_fetch_attempts_total{${TRUST_DOMAIN}, ${FETCH_ERROR}}[$__range])`)})) or vector(0)`,
          ),
        ],
      }),
      stat({
        ...problem,
        w: 6,
        title: "Rejected bundles in range",
        description: "Fetched bundles rejected over the selected time range (rollbacks, bad documents, policy).",
        thresholds: [
          { color: "green", value: null },
          { color: "orange", value: 1 },
        ],
        queries: [
          query(
            `round(sum(${owned(`increase(bundlegate_bundle_rejections_total{${TRUST_DOMAIN}}[$__range])`)})) or vector(0)`,
          ),
        ],
      }),
      stat({
        title: "Replicas",
        description: "Gateway processes reporting metrics.",
        w: 6,
        h: 4,
        decimals: 0,
        colorMode: "value",
        queries: [query("count(bundlegate_build_info)")],
      }),
    )
    .build();
}
