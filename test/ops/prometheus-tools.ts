/**
 * Where the operations tests find the repository, the shipped alert rules and Prometheus' own tools. It
 * imports nothing of the app, so a test that only reads files or runs promtool loads no gateway code.
 *
 * One policy for a missing tool: each test that needs it is skipped with a reason naming the tool (CI
 * installs both: .ci/run). `needsPromtool(context)` / `needsPrometheus(context)` apply it.
 */
import { statSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import type { TestContext } from "vitest";

export const ROOT = fileURLToPath(new URL("../../", import.meta.url));
export const RULES_FILE = path.join(ROOT, "config/prometheus/bundlegate-rules.yml");

/** The first executable file called `name` in the folders of `searchPath`, as a shell would find it. */
export function onPath(name: string, searchPath: string): string | undefined {
  for (const dir of searchPath.split(path.delimiter)) {
    if (dir === "") continue;
    const candidate = path.join(dir, name);
    const stats = statSync(candidate, { throwIfNoEntry: false });
    if (stats?.isFile() && (stats.mode & 0o111) !== 0) return candidate;
  }
  return undefined;
}

const promtool = onPath("promtool", process.env.PATH ?? "");
const prometheus = onPath("prometheus", process.env.PATH ?? "");

export const hasPromtool = promtool !== undefined;
export const hasPrometheus = prometheus !== undefined;
/** Absolute paths when found; the bare names otherwise, for messages (every test that runs them is skipped). */
export const PROMTOOL = promtool ?? "promtool";
export const PROMETHEUS = prometheus ?? "prometheus";

const missing = (tool: string) => `${tool} is not on PATH (Debian: apt-get install prometheus; CI installs it)`;

/** Skips the running test, saying why, when promtool is missing. */
export function needsPromtool(context: TestContext): void {
  context.skip(!hasPromtool, missing("promtool"));
}

/** Skips the running test, saying why, when prometheus is missing. */
export function needsPrometheus(context: TestContext): void {
  context.skip(!hasPrometheus, missing("prometheus"));
}
