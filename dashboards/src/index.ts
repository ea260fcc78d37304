/**
 * The dashboards bundlegate ships, each with the file it is written to. `npm run dashboards` regenerates
 * dashboards/*.json from here; test/ops/dashboards.test.ts fails when a committed file differs.
 */
import { authoritiesDashboard } from "./authorities.js";
import { fetchesDashboard } from "./fetches.js";
import { freshnessDashboard } from "./freshness.js";
import { gatewayDashboard } from "./gateway.js";
import type { Dashboard } from "./grafana.js";
import { overviewDashboard } from "./overview.js";
import { relationshipsDashboard } from "./relationships.js";

export interface DashboardFile {
  /** File name in dashboards/. */
  readonly file: string;
  readonly build: () => Dashboard;
}

export const DASHBOARD_FILES: readonly DashboardFile[] = [
  { file: "bundlegate-overview.json", build: overviewDashboard },
  { file: "bundlegate-relationships.json", build: relationshipsDashboard },
  { file: "bundlegate-freshness.json", build: freshnessDashboard },
  { file: "bundlegate-authorities.json", build: authoritiesDashboard },
  { file: "bundlegate-fetches.json", build: fetchesDashboard },
  { file: "bundlegate-gateway.json", build: gatewayDashboard },
];
