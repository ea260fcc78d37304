/** The gateway's own health, per replica: store, leases, the bundle endpoint, certificates and the process. */
import {
  bargauge,
  booleanMapping,
  type Dashboard,
  dashboard,
  datasourceVariable,
  labelVariable,
  lowIsBad,
  query,
  redFrom,
  stat,
  table,
  timeseries,
} from "./grafana.js";

const INSTANCE = 'instance=~"$instance"';

const instanceVariable = labelVariable({
  name: "instance",
  label: "Replica",
  definition: "label_values(bundlegate_build_info, instance)",
  description: "The gateway replicas (Prometheus instance label).",
});

function m(metric: string, extra = ""): string {
  return `${metric}{${INSTANCE}${extra === "" ? "" : `, ${extra}`}}`;
}

export function gatewayDashboard(): Dashboard {
  return dashboard({
    uid: "bundlegate-gateway",
    title: "bundlegate / Gateway health",
    description: "Each replica: Redis, leases, degraded serving, the bundle endpoint, certificates, memory and CPU.",
    variables: [datasourceVariable(), instanceVariable],
  })
    .add(
      stat({
        title: "Replicas",
        description: "Gateway processes reporting metrics.",
        w: 4,
        h: 4,
        decimals: 0,
        colorMode: "value",
        queries: [query(`count(${m("bundlegate_build_info")})`)],
      }),
      stat({
        title: "Redis",
        description: "Whether every selected replica reaches Redis (lowest over replicas).",
        w: 4,
        h: 4,
        noValue: "no Redis store",
        mappings: [booleanMapping("up", "down")],
        thresholds: [
          { color: "red", value: null },
          { color: "green", value: 1 },
        ],
        queries: [query(`min(${m("bundlegate_redis_up")})`)],
      }),
      stat({
        title: "Serving last-known-good",
        description: "Replicas that cannot write to their store and serve from memory; /readyz reports sync degraded.",
        w: 4,
        h: 4,
        decimals: 0,
        noValue: "0",
        thresholds: redFrom(1),
        queries: [query(`sum(${m("bundlegate_serving_last_known_good")})`)],
      }),
      stat({
        title: "Leases held",
        description: "Relationships being polled, over all replicas (each lease is held by one replica).",
        w: 4,
        h: 4,
        decimals: 0,
        colorMode: "value",
        queries: [query(`sum(${m("bundlegate_leases_held")})`)],
      }),
      stat({
        title: "Own bundle sequence spread",
        description:
          "Highest minus lowest spiffe_sequence of the local bundle over replicas; above 0 means they serve different versions.",
        w: 4,
        h: 4,
        decimals: 0,
        thresholds: redFrom(1),
        queries: [
          query(`max(${m("bundlegate_local_bundle_sequence")}) - min(${m("bundlegate_local_bundle_sequence")})`),
        ],
      }),
      stat({
        title: "Serving certificate",
        description: "Days until the first serving certificate (https_web, https_spiffe) of any replica expires.",
        w: 4,
        h: 4,
        unit: "none",
        decimals: 1,
        thresholds: lowIsBad(7, 21),
        queries: [query(`min(${m("bundlegate_serving_certificate_not_after_timestamp_seconds")} - time()) / 86400`)],
      }),
    )
    .add(
      timeseries({
        title: "Leases held by replica",
        description: "How the relationships' polling is spread over the replicas.",
        w: 12,
        h: 8,
        decimals: 0,
        min: 0,
        stack: true,
        queries: [query(`sum by (instance) (${m("bundlegate_leases_held")})`, { legend: "{{instance}}" })],
      }),
      timeseries({
        title: "Redis and degraded serving by replica",
        description: "redis up: 1 when the replica reaches Redis. last-known-good: 1 while it serves from memory only.",
        w: 12,
        h: 8,
        decimals: 0,
        min: 0,
        max: 1,
        queries: [
          query(m("bundlegate_redis_up"), { legend: "{{instance}} redis up" }),
          query(m("bundlegate_serving_last_known_good"), { legend: "{{instance}} last-known-good" }),
        ],
      }),
    )
    .add(
      timeseries({
        title: "Bundle endpoint requests",
        description: "Requests per second answered by the public bundle endpoint, by profile and status code.",
        w: 12,
        h: 8,
        unit: "reqps",
        stack: true,
        queries: [
          query(`sum by (profile, code) (rate(${m("bundlegate_endpoint_requests_total")}[$__rate_interval]))`, {
            legend: "{{profile}} {{code}}",
          }),
        ],
      }),
      timeseries({
        title: "Bundle endpoint latency",
        description: "Time to answer a request, by profile (served from memory: this should stay in milliseconds).",
        w: 12,
        h: 8,
        unit: "s",
        min: 0,
        queries: [
          query(
            `histogram_quantile(0.5, sum by (le, profile) (rate(${m("bundlegate_endpoint_request_duration_seconds_bucket")}[$__rate_interval])))`,
            { legend: "{{profile}} p50" },
          ),
          query(
            `histogram_quantile(0.99, sum by (le, profile) (rate(${m("bundlegate_endpoint_request_duration_seconds_bucket")}[$__rate_interval])))`,
            { legend: "{{profile}} p99" },
          ),
        ],
      }),
    )
    .add(
      bargauge({
        title: "Serving certificates: days left",
        description: "Per replica and profile, days until the certificate the bundle endpoint presents expires.",
        w: 12,
        h: 8,
        unit: "none",
        decimals: 1,
        min: 0,
        thresholds: lowIsBad(7, 21),
        queries: [
          query(
            `min by (instance, profile) (${m("bundlegate_serving_certificate_not_after_timestamp_seconds")} - time()) / 86400`,
            { legend: "{{instance}} {{profile}}" },
          ),
        ],
      }),
      timeseries({
        title: "Certificate and local bundle reloads",
        description: "Reloads of the watched files; an error keeps the previous certificate or bundle serving.",
        w: 12,
        h: 8,
        decimals: 0,
        min: 0,
        drawStyle: "bars",
        queries: [
          query(`sum by (profile, result) (increase(${m("bundlegate_tls_reloads_total")}[$__rate_interval]))`, {
            legend: "tls {{profile}} {{result}}",
          }),
          query(`sum by (result) (increase(${m("bundlegate_local_bundle_reloads_total")}[$__rate_interval]))`, {
            legend: "local bundle {{result}}",
          }),
        ],
      }),
    )
    .add(
      timeseries({
        title: "Memory",
        description: "Resident set size and V8 heap used, per replica.",
        w: 8,
        h: 8,
        unit: "bytes",
        min: 0,
        queries: [
          query(m("bundlegate_process_resident_memory_bytes"), { legend: "{{instance}} rss" }),
          query(m("bundlegate_nodejs_heap_size_used_bytes"), { legend: "{{instance}} heap used" }),
        ],
      }),
      timeseries({
        title: "CPU",
        description: "CPU time per second of wall time, per replica (1 = one core busy).",
        w: 8,
        h: 8,
        unit: "percentunit",
        min: 0,
        queries: [
          query(`rate(${m("bundlegate_process_cpu_seconds_total")}[$__rate_interval])`, { legend: "{{instance}}" }),
        ],
      }),
      timeseries({
        title: "Event loop lag p99",
        description: "How late the event loop runs timers: fetches, leases and requests all wait on it.",
        w: 8,
        h: 8,
        unit: "s",
        min: 0,
        queries: [query(m("bundlegate_nodejs_eventloop_lag_p99_seconds"), { legend: "{{instance}}" })],
      }),
    )
    .add(
      table({
        title: "Replicas",
        description: "Version and Node.js version of each replica.",
        w: 24,
        h: 6,
        joinOn: "instance",
        joinTitle: "Replica",
        columns: [
          {
            query: query(`max by (instance, version, node_version) (${m("bundlegate_build_info")})`),
            labels: { version: "Version", node_version: "Node.js" },
          },
          {
            query: query(`time() - max by (instance) (${m("bundlegate_process_start_time_seconds")})`),
            title: "Up for",
            unit: "s",
            decimals: 0,
          },
        ],
      }),
    )
    .build();
}
