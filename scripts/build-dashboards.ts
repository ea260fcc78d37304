/**
 * Writes dashboards/*.json from dashboards/src (npm run dashboards). With --check it writes nothing and
 * exits 1 when a committed file differs from what the code produces, or when dashboards/ holds a JSON file
 * the code no longer produces.
 */
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { DASHBOARD_FILES } from "../dashboards/src/index.js";
import { renderDashboard } from "../dashboards/src/render.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const dir = path.join(root, "dashboards");
const check = process.argv.includes("--check");

const problems: string[] = [];
for (const { file, build } of DASHBOARD_FILES) {
  const target = path.join(dir, file);
  const text = renderDashboard(build(), path.join("dashboards", file), root);
  let current: string | undefined;
  try {
    current = readFileSync(target, "utf8");
  } catch {
    current = undefined;
  }
  if (current === text) continue;
  if (check) problems.push(`dashboards/${file} is out of date`);
  else {
    writeFileSync(target, text);
    console.log(`wrote dashboards/${file}`);
  }
}
const produced = new Set(DASHBOARD_FILES.map((d) => d.file));
for (const name of readdirSync(dir)) {
  if (name.endsWith(".json") && !produced.has(name))
    problems.push(`dashboards/${name} is not produced by dashboards/src`);
}
for (const problem of problems) console.error(problem);
if (problems.length > 0) {
  console.error("run: npm run dashboards");
  process.exitCode = 1;
}
