/**
 * The Prometheus alert rules as shipped: what every alert must carry (severity, summary, description,
 * runbook_url and its runbook page), that promtool accepts them and their unit tests pass, and that each alert
 * has a unit test showing it firing and one showing it silent.
 */
import { spawnSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { describe, expect, it } from "vitest";
import { parse } from "yaml";
import { exportedMetricNames } from "./metric-names.js";
import { needsPromtool, PROMTOOL, ROOT, RULES_FILE } from "./prometheus-tools.js";

const TESTS_DIR = path.join(ROOT, "config/prometheus/tests");
const RUNBOOKS_DIR = path.join(ROOT, "docs/runbooks");

/** DESIGN.md section 7's list, in its order, with every replica down, then the relationship lifecycle reminders. */
const REQUIRED_ALERTS = [
  "BundleStale",
  "BundleStaleCritical",
  "BundleNeverSynced",
  "BundleFetchErrors",
  "BundleRollbackRejected",
  "BundleQuarantined",
  "BundleRejected",
  "BundleNewestAuthorityExpiring",
  "BundleNoUsableAuthorities",
  "BundleReplicaDrift",
  "BundleNoPoller",
  "BundlegateDown",
  "BundlegateRedisUnavailable",
  "BundlegateOwnAuthorityExpiring",
  "BundlegateServingCertificateExpiring",
  "RelationshipExpiring",
  "RelationshipReviewDue",
];
const SEVERITIES = ["critical", "warning", "info"];

interface AlertRule {
  readonly alert: string;
  readonly expr: string;
  readonly for?: string;
  readonly labels?: Record<string, string>;
  readonly annotations?: Record<string, string>;
}

interface AlertRuleTest {
  readonly alertname: string;
  readonly eval_time: string;
  readonly exp_alerts?: readonly {
    readonly exp_labels?: Record<string, string>;
    readonly exp_annotations?: Record<string, string>;
  }[];
}

interface PromtoolTestFile {
  readonly rule_files: readonly string[];
  readonly tests: readonly { readonly name?: string; readonly alert_rule_test?: readonly AlertRuleTest[] }[];
}

const rulesFile = parse(readFileSync(RULES_FILE, "utf8")) as {
  groups: { name: string; rules: (AlertRule | { record: string; expr: string })[] }[];
};
const alerts = rulesFile.groups.flatMap((group) => group.rules).filter((rule): rule is AlertRule => "alert" in rule);
const testFiles = readdirSync(TESTS_DIR)
  .filter((name) => name.endsWith(".yml"))
  .sort()
  .map((name) => ({ name, content: parse(readFileSync(path.join(TESTS_DIR, name), "utf8")) as PromtoolTestFile }));
const alertTests = testFiles.flatMap(({ content }) => content.tests.flatMap((test) => test.alert_rule_test ?? []));
const runbookBase = (
  parse(readFileSync(path.join(ROOT, "config/prometheus/alert-thresholds.yml"), "utf8")) as {
    runbook_base_url: string;
  }
).runbook_base_url;

function kebab(name: string): string {
  return name.replace(/([a-z0-9])([A-Z])/g, "$1-$2").toLowerCase();
}

describe("alert rules", () => {
  it("define every alert DESIGN.md section 7 lists, each once", () => {
    const names = alerts.map((alert) => alert.alert);
    expect(names).toEqual(expect.arrayContaining(REQUIRED_ALERTS));
    expect(new Set(names).size).toBe(names.length);
  });

  describe.each(alerts.map((alert) => [alert.alert, alert] as const))("%s", (name, alert) => {
    it("has a severity, a summary, a description with its values, and a runbook_url", () => {
      expect(SEVERITIES).toContain(alert.labels?.severity);
      expect(alert.annotations?.summary?.trim()).toBeTruthy();
      const description = alert.annotations?.description ?? "";
      // Its value, or values looked up for it (most frequent error, reason of a decision, authorities held).
      expect(description).toMatch(/\$value|\| query \}\}/);
      // Per-relationship alerts name the trust domain, and its owner when the rule joins it.
      if (alert.expr.includes("trust_domain")) expect(description).toContain("$labels.trust_domain");
      if (alert.expr.includes("group_left (owner)")) expect(description).toContain("$labels.owner");
      expect(alert.annotations?.runbook_url).toBe(`${runbookBase}/${kebab(name)}.md`);
    });

    it("has a runbook page, listed in the runbooks index", () => {
      const file = path.join(RUNBOOKS_DIR, `${kebab(name)}.md`);
      expect(existsSync(file), `${file} is missing`).toBe(true);
      expect(readFileSync(file, "utf8")).toMatch(new RegExp(`^# ${name}\\n`));
      expect(readFileSync(path.join(RUNBOOKS_DIR, "README.md"), "utf8")).toContain(`](${kebab(name)}.md)`);
    });

    it("has a promtool test where it fires, with its labels and annotations checked", () => {
      const firing = alertTests.filter((test) => test.alertname === name && (test.exp_alerts?.length ?? 0) > 0);
      expect(firing.length, `no promtool test expects ${name} to fire`).toBeGreaterThan(0);
      for (const test of firing) {
        for (const expected of test.exp_alerts ?? []) {
          expect(expected.exp_labels?.severity).toBe(alert.labels?.severity);
          expect(Object.keys(expected.exp_annotations ?? {}).sort()).toEqual(["description", "runbook_url", "summary"]);
        }
      }
    });

    it("has a promtool test where it does not fire", () => {
      const silent = alertTests.filter((test) => test.alertname === name && (test.exp_alerts?.length ?? 0) === 0);
      expect(silent.length, `no promtool test expects ${name} to stay silent`).toBeGreaterThan(0);
    });
  });

  it("has no runbook page without its alert", () => {
    const pages = readdirSync(RUNBOOKS_DIR).filter((name) => name.endsWith(".md") && name !== "README.md");
    expect(pages.sort()).toEqual(alerts.map((alert) => `${kebab(alert.alert)}.md`).sort());
  });

  it("has promtool tests only for alerts that exist, all loading the shipped rules", () => {
    const names = new Set(alerts.map((alert) => alert.alert));
    for (const test of alertTests) expect(names, test.alertname).toContain(test.alertname);
    for (const { name, content } of testFiles) expect(content.rule_files, name).toEqual(["../bundlegate-rules.yml"]);
  });

  it("aggregates and joins per-relationship series by job and trust domain, descriptions' queries too", () => {
    // One Prometheus may scrape several deployments federating with one partner: each is its own relationship.
    for (const alert of alerts) {
      const text = `${alert.expr}\n${alert.annotations?.description ?? ""}`;
      for (const [clause, labels = ""] of text.matchAll(/\b(?:by|on) \(([^)]*)\)/g)) {
        if (labels.includes("trust_domain")) expect(labels.split(/,\s*/), `${alert.alert}: ${clause}`).toContain("job");
      }
      for (const [selector] of text.matchAll(/\{[^{}]*trust_domain=%q[^{}]*\}/g)) {
        expect(selector, alert.alert).toContain("job=%q");
      }
    }
  });

  it("reads only metrics the app's registry exports", () => {
    const exported = exportedMetricNames();
    const names = [
      ...new Set(
        alerts.flatMap((alert) =>
          [...`${alert.expr}\n${alert.annotations?.description ?? ""}`.matchAll(/\bbundlegate_[a-z_]+/g)].map(
            (match) => match[0],
          ),
        ),
      ),
    ];
    expect(names.length).toBeGreaterThan(10);
    for (const name of names) expect(exported.has(name), `${name} is not exported`).toBe(true);
  });
});

describe("promtool", () => {
  const run = (args: string[]) => spawnSync(PROMTOOL, args, { cwd: ROOT, encoding: "utf8" });

  it("check rules accepts the rules", (context) => {
    needsPromtool(context);
    const result = run(["check", "rules", RULES_FILE]);
    expect(result.stdout + result.stderr).toContain(`SUCCESS: ${alerts.length} rules found`);
    expect(result.status).toBe(0);
  });

  it("test rules passes every unit test", (context) => {
    needsPromtool(context);
    const result = run(["test", "rules", ...testFiles.map(({ name }) => path.join(TESTS_DIR, name))]);
    expect(result.stdout + result.stderr).not.toContain("FAILED");
    expect(result.status, result.stdout + result.stderr).toBe(0);
  });
});
