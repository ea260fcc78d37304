/**
 * A dashboard as the text of its committed file: JSON formatted by the repository's Biome, so `npm run lint`
 * accepts generated files as they are and a regenerated file differs from the committed one only where the
 * dashboard changed.
 */
import { spawnSync } from "node:child_process";
import path from "node:path";
import type { Dashboard } from "./grafana.js";

/** `file` is the path relative to `root` (Biome picks the JSON formatter and the project's settings from it). */
export function renderDashboard(dashboard: Dashboard, file: string, root: string): string {
  const biome = path.join(root, "node_modules", ".bin", "biome");
  const result = spawnSync(biome, ["format", `--stdin-file-path=${file}`], {
    cwd: root,
    input: `${JSON.stringify(dashboard, null, 2)}\n`,
    encoding: "utf8",
  });
  if (result.error !== undefined || result.status !== 0) {
    throw new Error(`biome format ${file} failed: ${result.error?.message ?? result.stderr}`);
  }
  return result.stdout;
}
