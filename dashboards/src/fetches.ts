/** What the pollers do: fetch results, trust decisions and how long fetches take. */
import { type Dashboard, dashboard, datasourceVariable, query, stat, timeseries } from "./grafana.js";
import { FETCH_ERROR, owned, ownerVariable, TRUST_DOMAIN, trustDomainVariable } from "./promql.js";

function rateOf(metric: string, extra = ""): string {
  return owned(`rate(${metric}{${TRUST_DOMAIN}${extra === "" ? "" : `, ${extra}`}}[$__rate_interval])`);
}

function durationQuantile(q: number, by: string): string {
  return `histogram_quantile(${q}, sum by (${by}) (rate(bundlegate_fetch_duration_seconds_bucket[$__rate_interval])))`;
}

export function fetchesDashboard(): Dashboard {
  return dashboard({
    uid: "bundlegate-fetches",
    title: "bundlegate / Fetch results and latency",
    description: "Partner bundle fetches: results, trust decisions, rejections and latency.",
    variables: [datasourceVariable(), ownerVariable, trustDomainVariable],
  })
    .add(
      stat({
        title: "Fetches per second",
        description: "All partner bundle fetches of the selected relationships.",
        w: 6,
        h: 4,
        unit: "reqps",
        decimals: 2,
        colorMode: "value",
        graph: true,
        queries: [query(`sum(${rateOf("bundlegate_fetch_attempts_total")})`)],
      }),
      stat({
        title: "Failed share",
        description: "Share of fetches that failed (an error code rather than a trust decision).",
        w: 6,
        h: 4,
        unit: "percentunit",
        decimals: 1,
        noValue: "0",
        thresholds: [
          { color: "green", value: null },
          { color: "orange", value: 0.05 },
          { color: "red", value: 0.25 },
        ],
        graph: true,
        queries: [
          query(
            `sum(${rateOf("bundlegate_fetch_attempts_total", FETCH_ERROR)}) / sum(${rateOf("bundlegate_fetch_attempts_total")})`,
          ),
        ],
      }),
      stat({
        title: "Fetch p99",
        description: "99th percentile of fetch time, connect to decision, over all relationships.",
        w: 6,
        h: 4,
        unit: "s",
        decimals: 2,
        colorMode: "value",
        graph: true,
        queries: [query(durationQuantile(0.99, "le"))],
      }),
      stat({
        title: "Bundle updates per hour",
        description: "Accepted bundles that changed a partner's last-known-good.",
        w: 6,
        h: 4,
        decimals: 1,
        colorMode: "value",
        graph: true,
        queries: [query(`3600 * sum(${rateOf("bundlegate_bundle_updates_total")})`)],
      }),
    )
    .add(
      timeseries({
        title: "Fetches by result",
        description:
          "Per second: the trust decision of each fetch (accepted, unchanged, quarantined, rejected) or its error code.",
        w: 12,
        h: 9,
        unit: "reqps",
        stack: true,
        queries: [query(`sum by (result) (${rateOf("bundlegate_fetch_attempts_total")})`, { legend: "{{result}}" })],
      }),
      timeseries({
        title: "Failed fetches by trust domain (top 10)",
        description: "Per second, the relationships failing most.",
        w: 12,
        h: 9,
        unit: "reqps",
        queries: [
          query(`topk(10, sum by (trust_domain, result) (${rateOf("bundlegate_fetch_attempts_total", FETCH_ERROR)}))`, {
            legend: "{{trust_domain}} {{result}}",
          }),
        ],
      }),
    )
    .add(
      timeseries({
        title: "Fetch duration",
        description:
          "Quantiles of fetch time (connect to decision) over every relationship; the histogram has no trust_domain label, to keep series few.",
        w: 12,
        h: 9,
        unit: "s",
        min: 0,
        queries: [
          query(durationQuantile(0.5, "le"), { legend: "p50" }),
          query(durationQuantile(0.9, "le"), { legend: "p90" }),
          query(durationQuantile(0.99, "le"), { legend: "p99" }),
        ],
      }),
      timeseries({
        title: "Fetch duration p99 by outcome",
        description: "ok: a bundle was read and decided on; error: the fetch failed (timeouts show here).",
        w: 12,
        h: 9,
        unit: "s",
        min: 0,
        queries: [query(durationQuantile(0.99, "le, outcome"), { legend: "{{outcome}}" })],
      }),
    )
    .add(
      timeseries({
        title: "Trust decisions",
        description: "Per second, by decision and deciding reason (DESIGN.md section 2).",
        w: 12,
        h: 9,
        unit: "reqps",
        stack: true,
        queries: [
          query(`sum by (decision, reason) (${rateOf("bundlegate_bundle_decisions_total")})`, {
            legend: "{{decision}} {{reason}}",
          }),
        ],
      }),
      timeseries({
        title: "Rejected bundles by reason",
        description: "Per second: bundles rejected (a rollback, a bad document, a policy rule set to reject).",
        w: 12,
        h: 9,
        unit: "reqps",
        stack: true,
        queries: [query(`sum by (reason) (${rateOf("bundlegate_bundle_rejections_total")})`, { legend: "{{reason}}" })],
      }),
    )
    .build();
}
