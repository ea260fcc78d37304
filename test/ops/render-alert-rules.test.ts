/**
 * scripts/render-alert-rules.mjs: the shipped rules are what the template and the default thresholds give,
 * and an overrides file changes exactly what it names, or is refused with the bad key named.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { needsPromtool, PROMTOOL, ROOT, RULES_FILE } from "./prometheus-tools.js";

const SCRIPT = path.join(ROOT, "scripts/render-alert-rules.mjs");

interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for: string;
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
}

const dir = mkdtempSync(path.join(os.tmpdir(), "bundlegate-render-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function render(args: string[]) {
  return spawnSync(process.execPath, [SCRIPT, ...args], { cwd: ROOT, encoding: "utf8" });
}

function withOverrides(yaml: string, name: string) {
  const file = path.join(dir, `${name}.yml`);
  writeFileSync(file, yaml);
  const out = path.join(dir, `${name}-rules.yml`);
  return { result: render(["--thresholds", file, "--out", out]), out };
}

function alertsOf(text: string): Map<string, AlertRule> {
  const doc = parse(text) as { groups: { rules: AlertRule[] }[] };
  return new Map(doc.groups.flatMap((group) => group.rules).map((rule) => [rule.alert, rule]));
}

describe("render-alert-rules", () => {
  it("renders the defaults to stdout, identical to the shipped file", () => {
    const result = render(["--out", "-"]);
    expect(result.status).toBe(0);
    expect(result.stdout).toBe(readFileSync(RULES_FILE, "utf8"));
    expect(result.stdout).not.toMatch(/\$\{/);
  });

  it("applies overrides: thresholds, durations in seconds, for, severity, runbook base; nothing else changes", () => {
    const { result, out } = withOverrides(
      [
        "runbook_base_url: https://runbooks.example.org/bundlegate",
        "alerts:",
        "  BundleFetchErrors:",
        "    consecutive_failures: 5",
        "    for: 30m",
        "    severity: critical",
        "  BundleNewestAuthorityExpiring:",
        "    within_seconds: 14d",
        "  BundleNoPoller:",
        "    min_seconds: 300",
        "  BundleRollbackRejected:",
        "    rejections_window: 30m",
        "  BundlegateDown:",
        '    job_regex: "gateway-(prod|staging)"',
        "    min_replicas_up: 2",
      ].join("\n"),
      "overrides",
    );
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
    const rendered = alertsOf(readFileSync(out, "utf8"));
    const shipped = alertsOf(readFileSync(RULES_FILE, "utf8"));

    const fetchErrors = rendered.get("BundleFetchErrors")!;
    expect(fetchErrors.expr).toMatch(/>= 5\n/);
    expect(fetchErrors.for).toBe("30m");
    expect(fetchErrors.labels.severity).toBe("critical");
    expect(rendered.get("BundleNewestAuthorityExpiring")!.expr).toContain("time() + 1209600");
    expect(rendered.get("BundleNoPoller")!.expr).toMatch(/,\s+300\s+\)/);
    // A window is used as a range and, in seconds, against the replica's start time.
    const rollback = rendered.get("BundleRollbackRejected")!;
    expect(rollback.expr).toContain("[30m]");
    expect(rollback.expr).toContain("time() - bundlegate_process_start_time_seconds < 1800)");
    expect(rollback.expr).not.toMatch(/\b600\b|\[10m\]/);
    expect(rollback.annotations.description).toContain("in the last 30m");
    const down = rendered.get("BundlegateDown")!;
    expect(down.expr).toContain('sum by (job) (up{job=~"gateway-(prod|staging)"}) < 2');
    expect(down.expr).toContain('absent(up{job=~"gateway-(prod|staging)"})');
    for (const alert of rendered.values()) {
      expect(alert.annotations.runbook_url).toMatch(/^https:\/\/runbooks\.example\.org\/bundlegate\/[a-z-]+\.md$/);
    }

    const changed = new Set([
      "BundleFetchErrors",
      "BundleNewestAuthorityExpiring",
      "BundleNoPoller",
      "BundleRollbackRejected",
      "BundlegateDown",
    ]);
    expect([...rendered.keys()]).toEqual([...shipped.keys()]);
    for (const [name, alert] of rendered) {
      if (changed.has(name)) continue;
      expect({ ...alert, annotations: { ...alert.annotations, runbook_url: "" } }, name).toEqual({
        ...shipped.get(name),
        annotations: { ...shipped.get(name)!.annotations, runbook_url: "" },
      });
    }
  });

  it("renders overridden rules promtool accepts, a job pattern with escapes included", (context) => {
    needsPromtool(context);
    const { out } = withOverrides(
      'alerts:\n  BundleReplicaDrift:\n    for: 1h\n  BundlegateDown:\n    job_regex: "bundlegate\\\\.(prod|edge)"\n',
      "promtool",
    );
    expect(readFileSync(out, "utf8")).toContain('up{job=~"bundlegate\\\\.(prod|edge)"}');
    const check = spawnSync(PROMTOOL, ["check", "rules", out], { encoding: "utf8" });
    expect(check.stdout + check.stderr).toContain("SUCCESS");
    expect(check.status).toBe(0);
  });

  it.each([
    ["an unknown alert", "alerts:\n  BundleStail:\n    for: 5m\n", 'unknown alert "BundleStail"'],
    [
      "an unknown key",
      "alerts:\n  BundleStale:\n    within_seconds: 60\n",
      'alerts.BundleStale: unknown key "within_seconds"',
    ],
    ["an unknown top-level key", "thresholds: {}\n", 'unknown key "thresholds"'],
    [
      "a bad duration",
      "alerts:\n  BundleStale:\n    for: soon\n",
      "alerts.BundleStale.for: must be a Prometheus duration",
    ],
    ["a bad severity", "alerts:\n  BundleStale:\n    severity: page\n", "alerts.BundleStale.severity: must be one of"],
    [
      "a negative count",
      "alerts:\n  BundleFetchErrors:\n    consecutive_failures: -1\n",
      "consecutive_failures: must be",
    ],
    [
      "a bad seconds value",
      "alerts:\n  RelationshipExpiring:\n    within_seconds: two weeks\n",
      "within_seconds: must be",
    ],
    [
      "a job pattern that is no regular expression",
      'alerts:\n  BundlegateDown:\n    job_regex: "bundlegate-("\n',
      "alerts.BundlegateDown.job_regex: must be a non-empty regular expression",
    ],
    [
      "an empty job pattern",
      'alerts:\n  BundlegateDown:\n    job_regex: ""\n',
      "alerts.BundlegateDown.job_regex: must be a non-empty regular expression",
    ],
    ["a runbook base with a trailing slash", "runbook_base_url: https://x.example/\n", "runbook_base_url: must be"],
    ["alerts that is not a mapping", "alerts: [BundleStale]\n", "alerts: must be a mapping"],
  ])("refuses %s, naming it, and writes nothing", (_, yaml, message) => {
    const name = `bad-${Math.random().toString(36).slice(2)}`;
    const { result, out } = withOverrides(yaml, name);
    expect(result.status).toBe(2);
    expect(result.stderr).toContain(message);
    expect(existsSync(out)).toBe(false);
  });
});
