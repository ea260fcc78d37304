/**
 * How fresh each partner bundle is against the line that matters: 3 x its refresh hint (DESIGN.md
 * section 6; the spec asks publishers to add keys 3 to 5 hints before using them).
 */
import { bargauge, type Dashboard, dashboard, datasourceVariable, query, stat, timeseries } from "./grafana.js";
import {
  ageRatio,
  ageSeconds,
  CRITICAL_RATIO,
  criticalCount,
  neverSyncedCount,
  owned,
  ownerVariable,
  perDomain,
  staleCount,
  trustDomainVariable,
} from "./promql.js";

const RATIO_THRESHOLDS = [
  { color: "green", value: null },
  { color: "orange", value: 1 },
  { color: "red", value: CRITICAL_RATIO },
];

export function freshnessDashboard(): Dashboard {
  return dashboard({
    uid: "bundlegate-freshness",
    title: "bundlegate / Freshness",
    description: "Age of each partner bundle against its stale line (3 x the refresh hint) and its polling.",
    variables: [datasourceVariable(), ownerVariable, trustDomainVariable],
  })
    .add(
      stat({
        title: "Stale",
        description: "Older than 3 x the refresh hint (or max_staleness_seconds).",
        w: 8,
        h: 4,
        decimals: 0,
        noValue: "0",
        thresholds: RATIO_THRESHOLDS.slice(0, 2),
        queries: [query(staleCount)],
      }),
      stat({
        title: "Critical",
        description: "Older than 5 x the refresh hint.",
        w: 8,
        h: 4,
        decimals: 0,
        noValue: "0",
        thresholds: [
          { color: "green", value: null },
          { color: "red", value: 1 },
        ],
        queries: [query(criticalCount)],
      }),
      stat({
        title: "Never synced",
        description:
          "Active and pending relationships without a successful fetch yet (suspended ones are left out, as in BundleNeverSynced).",
        w: 8,
        h: 4,
        decimals: 0,
        noValue: "0",
        thresholds: RATIO_THRESHOLDS.slice(0, 2),
        queries: [query(neverSyncedCount)],
      }),
    )
    .add(
      timeseries({
        title: "Age since last success vs the stale line",
        description:
          "Solid: seconds since the last successful fetch. Dashed: the stale threshold, 3 x the partner's refresh hint. A solid line above its dashed line is a stale bundle.",
        w: 24,
        h: 10,
        unit: "s",
        min: 0,
        legend: "table",
        legendCalcs: ["lastNotNull", "max"],
        queries: [
          query(ageSeconds, { legend: "{{trust_domain}} age" }),
          query(owned(perDomain("bundlegate_relationship_stale_after_seconds")), {
            legend: "{{trust_domain}} stale after",
          }),
        ],
        overrides: [
          {
            matcher: { id: "byRegexp", options: ".* stale after$" },
            properties: [
              { id: "custom.lineStyle", value: { fill: "dash", dash: [10, 10] } },
              { id: "custom.lineWidth", value: 2 },
            ],
          },
        ],
      }),
    )
    .add(
      timeseries({
        title: "Age as a share of the stale line",
        description:
          "Every relationship on one scale: 100 % is the stale line (3 x hint), 167 % the critical one (5 x hint).",
        w: 16,
        h: 9,
        unit: "percentunit",
        min: 0,
        thresholds: RATIO_THRESHOLDS,
        thresholdLines: true,
        queries: [query(ageRatio, { legend: "{{trust_domain}}" })],
      }),
      bargauge({
        title: "Stalest relationships",
        description: "The 15 relationships closest to (or past) their stale line, now.",
        w: 8,
        h: 9,
        unit: "percentunit",
        min: 0,
        max: 2,
        thresholds: RATIO_THRESHOLDS,
        queries: [query(`topk(15, ${ageRatio})`, { legend: "{{trust_domain}}" })],
      }),
    )
    .add(
      timeseries({
        title: "Time since last attempt vs refresh interval",
        description:
          "Solid: seconds since the last fetch attempt, successful or not. Dashed: the polling interval (refresh hint / 4, or the relationship's fixed interval).",
        w: 12,
        h: 8,
        unit: "s",
        min: 0,
        queries: [
          query(owned(`time() - ${perDomain("bundlegate_relationship_last_attempt_timestamp_seconds")}`), {
            legend: "{{trust_domain}} since attempt",
          }),
          query(owned(perDomain("bundlegate_relationship_refresh_interval_seconds")), {
            legend: "{{trust_domain}} interval",
          }),
        ],
        overrides: [
          {
            matcher: { id: "byRegexp", options: ".* interval$" },
            properties: [{ id: "custom.lineStyle", value: { fill: "dash", dash: [10, 10] } }],
          },
        ],
      }),
      timeseries({
        title: "Refresh hint published by each partner",
        description: "The spiffe_refresh_hint of each partner's current bundle.",
        w: 12,
        h: 8,
        unit: "s",
        min: 0,
        queries: [query(owned(perDomain("bundlegate_bundle_refresh_hint_seconds")), { legend: "{{trust_domain}}" })],
      }),
    )
    .build();
}
