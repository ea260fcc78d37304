/**
 * The Grafana dashboards: the committed JSON is exactly what dashboards/src produces, every panel has its
 * own id and a place on the 24-column grid, every query is PromQL that promtool parses and names only
 * metrics bundlegate exports, and every variable a query or link uses is defined.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import { DASHBOARD_FILES } from "../../dashboards/src/index.js";
import * as promql from "../../dashboards/src/promql.js";
import { exportedMetricNames } from "./metric-names.js";
import { needsPromtool, PROMTOOL, ROOT } from "./prometheus-tools.js";

const DIR = path.join(ROOT, "dashboards");

// biome-ignore lint/suspicious/noTemplateCurlyInString: the Grafana variable every query is sent to
const DATASOURCE = { type: "prometheus", uid: "${datasource}" };

/** Grafana's own variables, which need no definition. */
const BUILT_IN_VARIABLES = new Set([
  "__rate_interval",
  "__interval",
  "__interval_ms",
  "__range",
  "__range_s",
  "__range_ms",
  "__value",
  "__url_time_range",
  "__dashboard",
  "__from",
  "__to",
]);

const PANEL_TYPES = new Set(["stat", "table", "timeseries", "bargauge"]);
const VARIABLE_TYPES = new Set(["datasource", "query", "custom", "constant", "interval", "textbox"]);

/** PromQL with its string literals blanked, so a label value never reads as a name or a bracket. */
function withoutStrings(expr: string): string {
  return expr.replace(/"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|`[^`]*`/g, '""');
}

function bracketProblem(expr: string): string | undefined {
  const pairs: Record<string, string> = { ")": "(", "}": "{", "]": "[" };
  const stack: string[] = [];
  for (const char of withoutStrings(expr)) {
    if (char === "(" || char === "{" || char === "[") stack.push(char);
    else if (char in pairs) {
      if (stack.pop() !== pairs[char]) return `unbalanced ${char}`;
    }
  }
  return stack.length === 0 ? undefined : `unclosed ${stack.join("")}`;
}

function metricNames(expr: string): string[] {
  return [...withoutStrings(expr).matchAll(/\bbundlegate_[A-Za-z0-9_:]*/g)].map((m) => m[0]);
}

/** `$name`, `${name}` and `${name:format}` / `${name.path}` references. */
function variableRefs(text: string): string[] {
  return [...text.matchAll(/\$\{([A-Za-z0-9_]+)[^}]*\}|\$([A-Za-z0-9_]+)/g)].map((m) => m[1] ?? m[2] ?? "");
}

interface Rect {
  readonly x: number;
  readonly y: number;
  readonly w: number;
  readonly h: number;
}

function overlaps(a: Rect, b: Rect): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

// The dashboards as JSON, read from the committed files: what Grafana imports.
type Json = Record<string, unknown>;
interface LoadedDashboard {
  readonly file: string;
  readonly json: Json;
}

function panelsOf(d: Json): Json[] {
  return (d.panels as Json[] | undefined) ?? [];
}

function targetsOf(p: Json): Json[] {
  return (p.targets as Json[] | undefined) ?? [];
}

function variablesOf(d: Json): Json[] {
  return ((d.templating as Json | undefined)?.list as Json[] | undefined) ?? [];
}

function variableQuery(v: Json): string {
  const q = v.query;
  return typeof q === "string" ? q : String((q as Json | undefined)?.query ?? "");
}

/** Every string in the dashboard that Grafana interpolates: queries, variable queries, link URLs. */
function interpolatedTexts(d: Json): string[] {
  const texts: string[] = [];
  for (const v of variablesOf(d)) if (v.type === "query") texts.push(variableQuery(v));
  for (const p of panelsOf(d)) {
    for (const t of targetsOf(p)) texts.push(String(t.expr), String(t.legendFormat ?? ""));
    texts.push(JSON.stringify(p.datasource ?? ""));
    texts.push(...[...JSON.stringify(p.fieldConfig ?? {}).matchAll(/"url":"([^"]*)"/g)].map((m) => m[1] ?? ""));
  }
  return texts;
}

const loaded: LoadedDashboard[] = DASHBOARD_FILES.map(({ file }) => ({
  file,
  json: JSON.parse(readFileSync(path.join(DIR, file), "utf8")) as Json,
}));

describe("dashboards", () => {
  const known = exportedMetricNames();

  it("are committed exactly as dashboards/src produces them, and no other JSON is (build-dashboards --check)", () => {
    const result = spawnSync(process.execPath, ["--import", "tsx", "scripts/build-dashboards.ts", "--check"], {
      cwd: ROOT,
      encoding: "utf8",
    });
    // The script names each file that is out of date or stray.
    expect(result.stderr).toBe("");
    expect(result.status).toBe(0);
  });

  it("cover what DESIGN.md section 7 lists, each with a stable uid of its own", () => {
    const uids = loaded.map((d) => d.json.uid);
    expect(new Set(uids).size).toBe(uids.length);
    expect(uids).toEqual([
      "bundlegate-overview",
      "bundlegate-relationships",
      "bundlegate-freshness",
      "bundlegate-authorities",
      "bundlegate-fetches",
      "bundlegate-gateway",
    ]);
  });

  it.each(loaded)("$file has the fields and types Grafana's dashboard schema requires", ({ json }) => {
    expect(typeof json.title).toBe("string");
    expect(json.title).not.toBe("");
    // Grafana refuses uids longer than 40 characters or with other characters.
    expect(json.uid).toMatch(/^[A-Za-z0-9_-]{1,40}$/);
    expect(typeof json.schemaVersion).toBe("number");
    expect(json.schemaVersion as number).toBeGreaterThanOrEqual(39);
    expect(Array.isArray(json.tags)).toBe(true);
    expect(json.time).toEqual({ from: expect.any(String), to: expect.any(String) });
    expect(Array.isArray(json.panels)).toBe(true);
    expect(panelsOf(json).length).toBeGreaterThan(0);
    for (const panel of panelsOf(json)) {
      const where = `${json.uid} panel ${String(panel.title)}`;
      expect(PANEL_TYPES.has(String(panel.type)), where).toBe(true);
      expect(typeof panel.id, where).toBe("number");
      expect(typeof panel.title, where).toBe("string");
      const grid = panel.gridPos as Json;
      for (const key of ["x", "y", "w", "h"]) expect(Number.isInteger(grid[key]), `${where} gridPos.${key}`).toBe(true);
      expect(panel.datasource, where).toEqual(DATASOURCE);
      expect(targetsOf(panel).length, where).toBeGreaterThan(0);
      const refIds = targetsOf(panel).map((t) => t.refId);
      expect(new Set(refIds).size, `${where} refIds`).toBe(refIds.length);
      for (const target of targetsOf(panel)) {
        expect(typeof target.refId, where).toBe("string");
        expect(typeof target.expr, where).toBe("string");
        expect(target.datasource, where).toEqual(DATASOURCE);
      }
      const fieldConfig = panel.fieldConfig as Json;
      expect(typeof fieldConfig.defaults, where).toBe("object");
      expect(Array.isArray(fieldConfig.overrides), where).toBe(true);
    }
    expect(Array.isArray((json.templating as Json).list)).toBe(true);
    for (const v of variablesOf(json)) {
      expect(typeof v.name).toBe("string");
      expect(VARIABLE_TYPES.has(String(v.type)), String(v.name)).toBe(true);
      const q = v.query;
      expect(typeof q === "string" || typeof (q as Json | undefined)?.query === "string", String(v.name)).toBe(true);
    }
  });

  it.each(loaded)("$file: every panel has its own id and a place inside 24 columns, overlapping none", ({ json }) => {
    const panels = panelsOf(json);
    const ids = panels.map((p) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    const rects = panels.map((p) => p.gridPos as unknown as Rect);
    for (const [i, r] of rects.entries()) {
      expect(r.x >= 0 && r.y >= 0 && r.w >= 1 && r.h >= 1 && r.x + r.w <= 24, JSON.stringify(r)).toBe(true);
      for (const other of rects.slice(i + 1)) {
        expect(overlaps(r, other), `${JSON.stringify(r)} overlaps ${JSON.stringify(other)}`).toBe(false);
      }
    }
  });

  it.each(loaded)("$file: queries have balanced brackets and name only bundlegate's metrics", ({ json }) => {
    const exprs = [
      ...panelsOf(json).flatMap((p) => targetsOf(p).map((t) => String(t.expr))),
      ...variablesOf(json)
        .filter((v) => v.type === "query")
        .map(variableQuery),
    ];
    for (const expr of exprs) {
      expect(bracketProblem(expr), expr).toBeUndefined();
      for (const name of metricNames(expr)) expect(known.has(name), `${name} in ${expr}`).toBe(true);
    }
  });

  it.each(loaded)("$file: every variable used is defined, and every variable defined is used", ({ json }) => {
    const defined = new Set(variablesOf(json).map((v) => String(v.name)));
    const used = new Set(interpolatedTexts(json).flatMap(variableRefs));
    for (const name of used) expect(defined.has(name) || BUILT_IN_VARIABLES.has(name), `$${name}`).toBe(true);
    for (const name of defined) expect(used.has(name), `${name} defined but not used`).toBe(true);
  });

  it("filter relationship panels by owner and trust domain", () => {
    const relationshipDashboards = loaded.filter((d) => d.json.uid !== "bundlegate-gateway");
    for (const { json } of relationshipDashboards) {
      const names = variablesOf(json).map((v) => v.name);
      expect(names).toEqual(["datasource", "owner", "trust_domain"]);
      const owner = variablesOf(json).find((v) => v.name === "owner");
      expect(variableQuery(owner ?? {})).toBe("label_values(bundlegate_relationship_info, owner)");
      const td = variablesOf(json).find((v) => v.name === "trust_domain");
      expect(variableQuery(td ?? {})).toMatch(/^label_values\(bundlegate_relationship_info\{.*\}, trust_domain\)$/);
    }
  });

  describe("promtool", () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(path.join(os.tmpdir(), "bundlegate-dashboards-"));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("parses every dashboard query as PromQL (promtool check rules)", (context) => {
      needsPromtool(context);
      // Grafana substitutes its variables before Prometheus sees a query; do the same with stand-ins.
      const substitute = (expr: string): string =>
        expr.replace(/\$\{?([A-Za-z0-9_]+)(?::[A-Za-z]+)?\}?/g, (_, name: string) =>
          name.startsWith("__") ? "5m" : ".*",
        );
      const rules = loaded.flatMap(({ json }) =>
        panelsOf(json).flatMap((p) => targetsOf(p).map((t) => substitute(String(t.expr)))),
      );
      expect(rules.length).toBeGreaterThan(50);
      const file = path.join(dir, "dashboard-queries.yml");
      writeFileSync(
        file,
        stringify({
          groups: [{ name: "dashboards", rules: rules.map((expr, i) => ({ record: `dashboard:query_${i}`, expr })) }],
        }),
      );
      const result = spawnSync(PROMTOOL, ["check", "rules", "--lint=none", file], { encoding: "utf8" });
      expect(`${result.stdout}${result.stderr}`).toContain(`SUCCESS: ${rules.length} rules found`);
      expect(result.status).toBe(0);
    });

    it("the shared queries count and join what they should, on series of two replicas (promtool test rules)", (context) => {
      needsPromtool(context);
      // At 10m (time() = 600), two replicas export three relationships:
      //   a.example (team-a): synced 90 s ago (stale after 180 s), quarantined, replicas hold different digests,
      //                       newest authority expires in 10 days
      //   b.example (team-b): synced 500 s ago (critical after 300 s), failing
      //   c.example (team-a): active, never synced
      //   d.example (team-b): pending, never synced (polled, so counted as never synced, as the alert does)
      //   e.example (team-a): suspended, never synced (left out)
      const series: [string, string][] = [];
      for (const instance of ["r1", "r2"]) {
        const s = (name: string, labels: string, values: string) =>
          series.push([`${name}{instance="${instance}", ${labels}}`, values]);
        for (const [td, owner, state] of [
          ["a.example", "team-a", "active"],
          ["b.example", "team-b", "active"],
          ["c.example", "team-a", "active"],
          ["d.example", "team-b", "pending"],
          ["e.example", "team-a", "suspended"],
        ]) {
          s("bundlegate_relationship_info", `trust_domain="${td}", owner="${owner}", state="${state}"`, "1x10");
          s("bundlegate_relationship_stale_after_seconds", `trust_domain="${td}"`, "180x10");
          s("bundlegate_relationship_critical_after_seconds", `trust_domain="${td}"`, "300x10");
        }
        s("bundlegate_relationship_last_success_timestamp_seconds", 'trust_domain="a.example"', "510x10");
        s("bundlegate_relationship_last_success_timestamp_seconds", 'trust_domain="b.example"', "100x10");
        s("bundlegate_relationship_consecutive_failures", 'trust_domain="a.example"', "0x10");
        s("bundlegate_relationship_consecutive_failures", 'trust_domain="b.example"', "2x10");
        s("bundlegate_relationship_quarantined", 'trust_domain="a.example"', "1x10");
        s("bundlegate_relationship_quarantined", 'trust_domain="b.example"', "0x10");
        s("bundlegate_bundle_info", `trust_domain="a.example", digest="${instance}"`, "1x10");
        s("bundlegate_bundle_info", 'trust_domain="b.example", digest="same"', "1x10");
        s("bundlegate_bundle_usable_authorities", 'trust_domain="a.example"', "2x10");
        s("bundlegate_bundle_usable_authorities", 'trust_domain="b.example"', "0x10");
        s(
          "bundlegate_bundle_authority_not_after_timestamp_seconds",
          'trust_domain="a.example", fingerprint="f1"',
          `${600 + 3 * 86_400}x10`,
        );
        s(
          "bundlegate_bundle_authority_not_after_timestamp_seconds",
          'trust_domain="a.example", fingerprint="f2"',
          `${600 + 10 * 86_400}x10`,
        );
      }
      const withVariables = (expr: string, owner: string): string =>
        expr.replaceAll("$owner", owner).replaceAll("$trust_domain", ".*");
      const counts = (owner: string, expected: Record<string, number>) =>
        Object.entries(expected).map(([name, value]) => ({
          expr: withVariables((promql as unknown as Record<string, string>)[name] ?? "", owner),
          eval_time: "10m",
          exp_samples: [{ labels: "{}", value }],
        }));
      const tests = [
        ...counts(".*", {
          staleCount: 1,
          criticalCount: 1,
          neverSyncedCount: 2,
          failingCount: 1,
          quarantinedCount: 1,
          driftCount: 1,
          noUsableAuthorityCount: 1,
        }),
        ...counts("team-a", {
          staleCount: 0,
          criticalCount: 0,
          neverSyncedCount: 1,
          failingCount: 0,
          quarantinedCount: 1,
          driftCount: 1,
          noUsableAuthorityCount: 0,
        }),
        {
          expr: withVariables(promql.ageRatio, ".*"),
          eval_time: "10m",
          exp_samples: [
            { labels: '{trust_domain="a.example"}', value: 0.5 },
            { labels: '{trust_domain="b.example"}', value: 500 / 180 },
          ],
        },
        {
          expr: withVariables(promql.newestAuthorityDaysLeft, "team-a"),
          eval_time: "10m",
          exp_samples: [{ labels: '{trust_domain="a.example"}', value: 10 }],
        },
      ];
      writeFileSync(path.join(dir, "empty-rules.yml"), stringify({ groups: [] }));
      const file = path.join(dir, "dashboard-queries.test.yml");
      writeFileSync(
        file,
        stringify({
          rule_files: ["empty-rules.yml"],
          evaluation_interval: "1m",
          tests: [
            {
              interval: "1m",
              input_series: series.map(([name, values]) => ({ series: name, values })),
              promql_expr_test: tests,
            },
          ],
        }),
      );
      const result = spawnSync(PROMTOOL, ["test", "rules", file], { encoding: "utf8" });
      expect(`${result.stdout}${result.stderr}`).toContain("SUCCESS");
      expect(result.status).toBe(0);
    });
  });
});

describe("the dashboard checks themselves", () => {
  it("catch unbalanced brackets, outside string literals only", () => {
    expect(bracketProblem('sum(rate(x{a="("}[5m]))')).toBeUndefined();
    expect(bracketProblem("sum(rate(x[5m])")).toBe("unclosed (");
    expect(bracketProblem("x{a=b)")).toBe("unbalanced )");
  });

  it("find metric names, histogram series included, and not inside label values", () => {
    const known = exportedMetricNames();
    expect(metricNames('rate(bundlegate_fetch_duration_seconds_bucket{x="bundlegate_not_a_metric"}[5m])')).toEqual([
      "bundlegate_fetch_duration_seconds_bucket",
    ]);
    expect(known.has("bundlegate_fetch_duration_seconds_bucket")).toBe(true);
    expect(known.has("bundlegate_process_resident_memory_bytes")).toBe(true);
    expect(known.has("bundlegate_nodejs_gc_duration_seconds_bucket")).toBe(true);
    expect(known.has("bundlegate_relationship_stale_seconds")).toBe(false);
  });

  it("find variable references in every form Grafana accepts", () => {
    // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana variable references
    expect(variableRefs('x{a=~"$owner"} ${datasource} ${__value.raw} ${datasource:queryparam}')).toEqual([
      "owner",
      "datasource",
      "__value",
      "datasource",
    ]);
  });

  it("tell overlapping panels from adjacent ones", () => {
    expect(overlaps({ x: 0, y: 0, w: 12, h: 4 }, { x: 12, y: 0, w: 12, h: 4 })).toBe(false);
    expect(overlaps({ x: 0, y: 0, w: 12, h: 4 }, { x: 0, y: 4, w: 12, h: 4 })).toBe(false);
    expect(overlaps({ x: 0, y: 0, w: 13, h: 4 }, { x: 12, y: 3, w: 12, h: 4 })).toBe(true);
  });
});
