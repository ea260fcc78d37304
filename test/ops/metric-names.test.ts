/**
 * The names the dashboards and alert tests check against are the app's: every promised metric is in the
 * registry, and what the registry leaves out (prom-client's defaults the app removes) is not.
 */
import { describe, expect, it } from "vitest";
import { exportedMetricNames, METRIC_CONTRACT } from "./metric-names.js";

describe("metric names", () => {
  const exported = exportedMetricNames();

  it("the app's registry exports every metric of the contract", () => {
    expect(METRIC_CONTRACT.filter((name) => !exported.has(name))).toEqual([]);
    expect(new Set(METRIC_CONTRACT).size).toBe(METRIC_CONTRACT.length);
  });

  it("are read off the app's registry: histogram series in, defaults the app removes out", () => {
    expect(exported.has("bundlegate_fetch_duration_seconds_bucket")).toBe(true);
    expect(exported.has("bundlegate_endpoint_request_duration_seconds_count")).toBe(true);
    expect(exported.has("bundlegate_relationship_info_bucket")).toBe(false);
    expect(exported.has("bundlegate_nodejs_active_handles")).toBe(true);
    expect(exported.has("bundlegate_nodejs_active_handles_total")).toBe(false);
  });
});
