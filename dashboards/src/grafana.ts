/**
 * A small typed model of the Grafana dashboard JSON (schemaVersion 39, Grafana 11 and later) and builders for
 * the few panel kinds the bundlegate dashboards use. Only what those dashboards set is modelled; Grafana
 * fills in the rest with its defaults when it loads a dashboard.
 *
 * Panels are placed by a flow layout (left to right, wrapping at 24 columns), so no two panels can overlap
 * and ids are assigned in order: a dashboard is described by what it shows, not by coordinates.
 */

export const SCHEMA_VERSION = 39;
export const GRID_COLUMNS = 24;

/** Every query goes to the data source the `datasource` variable selects. */
// biome-ignore lint/suspicious/noTemplateCurlyInString: a Grafana variable, interpolated by Grafana
export const PROMETHEUS = { type: "prometheus", uid: "${datasource}" } as const;
export type DataSourceRef = typeof PROMETHEUS;

export interface GridPos {
  readonly h: number;
  readonly w: number;
  readonly x: number;
  readonly y: number;
}

export interface Target {
  readonly refId: string;
  readonly datasource: DataSourceRef;
  readonly expr: string;
  readonly legendFormat: string;
  readonly range: boolean;
  readonly instant: boolean;
  readonly format: "time_series" | "table";
}

export interface ThresholdStep {
  readonly color: string;
  /** null for the base step, which applies below the first value. */
  readonly value: number | null;
}

export interface FieldOverride {
  readonly matcher: { readonly id: "byName" | "byRegexp"; readonly options: string };
  readonly properties: readonly { readonly id: string; readonly value: unknown }[];
}

export interface FieldConfig {
  readonly defaults: Record<string, unknown>;
  readonly overrides: readonly FieldOverride[];
}

export interface Transformation {
  readonly id: string;
  readonly options: Record<string, unknown>;
}

export type PanelType = "stat" | "table" | "timeseries" | "bargauge";

export interface Panel {
  readonly id: number;
  readonly type: PanelType;
  readonly title: string;
  readonly description: string;
  readonly gridPos: GridPos;
  readonly datasource: DataSourceRef;
  readonly targets: readonly Target[];
  readonly fieldConfig: FieldConfig;
  readonly options: Record<string, unknown>;
  readonly transformations?: readonly Transformation[];
}

export interface VariableQuery {
  readonly qryType: number;
  readonly query: string;
  readonly refId: string;
}

export interface Variable {
  readonly name: string;
  readonly label: string;
  readonly type: "datasource" | "query";
  /** The data source type for a datasource variable; a label_values() query for a query variable. */
  readonly query: string | VariableQuery;
  readonly definition?: string;
  readonly datasource?: DataSourceRef;
  readonly current: Record<string, never>;
  readonly options: readonly never[];
  readonly hide: 0;
  readonly includeAll: boolean;
  readonly multi: boolean;
  readonly allValue?: string;
  readonly refresh: 1 | 2;
  readonly regex: string;
  readonly sort?: number;
  readonly description: string;
}

export interface DashboardLink {
  readonly title: string;
  readonly type: "dashboards";
  readonly tags: readonly string[];
  readonly asDropdown: boolean;
  readonly includeVars: boolean;
  readonly keepTime: boolean;
  readonly icon: "external link";
  readonly targetBlank: boolean;
  readonly tooltip: string;
  readonly url: string;
}

export interface Dashboard {
  readonly uid: string;
  readonly title: string;
  readonly description: string;
  readonly tags: readonly string[];
  readonly id: null;
  readonly version: 1;
  readonly schemaVersion: number;
  readonly editable: boolean;
  readonly graphTooltip: 1;
  readonly liveNow: false;
  readonly fiscalYearStartMonth: 0;
  readonly weekStart: "";
  readonly timezone: "browser";
  readonly refresh: string;
  readonly time: { readonly from: string; readonly to: string };
  readonly timepicker: Record<string, never>;
  readonly annotations: { readonly list: readonly Record<string, unknown>[] };
  readonly links: readonly DashboardLink[];
  readonly templating: { readonly list: readonly Variable[] };
  readonly panels: readonly Panel[];
}

// ---------------------------------------------------------------------------------------------------------
// Queries

export interface QueryOptions {
  /** Legend of each series, e.g. "{{trust_domain}}". Default: the series' labels. */
  readonly legend?: string;
  /** One value per series at the end of the range (stat, table, bar gauge); default for those panels. */
  readonly instant?: boolean;
  readonly format?: "time_series" | "table";
}

/** A query before it gets its refId (A, B, ... in the order the panel lists them). */
export interface Query {
  readonly expr: string;
  readonly options: QueryOptions;
}

export function query(expr: string, options: QueryOptions = {}): Query {
  return { expr: expr.trim().replace(/\s+/g, " "), options };
}

function targets(queries: readonly Query[], defaults: { instant: boolean; format: Target["format"] }): Target[] {
  return queries.map((q, i) => {
    const instant = q.options.instant ?? defaults.instant;
    return {
      refId: String.fromCharCode(65 + i),
      datasource: PROMETHEUS,
      expr: q.expr,
      legendFormat: q.options.legend ?? "__auto",
      range: !instant,
      instant,
      format: q.options.format ?? defaults.format,
    };
  });
}

// ---------------------------------------------------------------------------------------------------------
// Panels

/** A panel without its place: the layout gives it an id and a gridPos. */
export interface PanelSpec extends Omit<Panel, "id" | "gridPos"> {
  readonly size: { readonly w: number; readonly h: number };
}

interface CommonOptions {
  readonly title: string;
  readonly description: string;
  readonly w: number;
  readonly h: number;
  /** Grafana unit id: "s", "bytes", "percentunit", "reqps", "none", ... */
  readonly unit?: string;
  readonly decimals?: number;
  readonly min?: number;
  readonly max?: number;
  readonly thresholds?: readonly ThresholdStep[];
  /** Shown when the queries return nothing, e.g. "0" for a count of problems. */
  readonly noValue?: string;
  readonly mappings?: readonly ValueMapping[];
  readonly overrides?: readonly FieldOverride[];
}

export interface ValueMapping {
  readonly type: "value";
  readonly options: Readonly<Record<string, { readonly text: string; readonly color: string; readonly index: number }>>;
}

/** Shows 1 as `one` (green) and 0 as `zero` (red), e.g. for an "is up" gauge. */
export function booleanMapping(one: string, zero: string): ValueMapping {
  return {
    type: "value",
    options: { "0": { text: zero, color: "red", index: 0 }, "1": { text: one, color: "green", index: 1 } },
  };
}

/** Green below `value`, then red: the usual "anything at all is a problem" scale. */
export function redFrom(value: number): ThresholdStep[] {
  return [
    { color: "green", value: null },
    { color: "red", value },
  ];
}

/** Red below `red`, orange below `orange`, green above: for "time left" values. */
export function lowIsBad(red: number, orange: number): ThresholdStep[] {
  return [
    { color: "red", value: null },
    { color: "orange", value: red },
    { color: "green", value: orange },
  ];
}

function fieldDefaults(o: CommonOptions, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    ...(o.unit === undefined ? {} : { unit: o.unit }),
    ...(o.decimals === undefined ? {} : { decimals: o.decimals }),
    ...(o.min === undefined ? {} : { min: o.min }),
    ...(o.max === undefined ? {} : { max: o.max }),
    ...(o.noValue === undefined ? {} : { noValue: o.noValue }),
    thresholds: { mode: "absolute", steps: o.thresholds ?? [{ color: "green", value: null }] },
    mappings: [...(o.mappings ?? [])],
    ...extra,
  };
}

function base(o: CommonOptions, type: PanelType): Omit<PanelSpec, "targets" | "fieldConfig" | "options"> {
  return { type, title: o.title, description: o.description, datasource: PROMETHEUS, size: { w: o.w, h: o.h } };
}

export interface StatOptions extends CommonOptions {
  readonly queries: readonly Query[];
  /** "background" colours the whole panel by the thresholds; "value" only the number. */
  readonly colorMode?: "background" | "value" | "none";
  readonly graph?: boolean;
}

export function stat(o: StatOptions): PanelSpec {
  return {
    ...base(o, "stat"),
    targets: targets(o.queries, { instant: true, format: "time_series" }),
    fieldConfig: { defaults: fieldDefaults(o, { color: { mode: "thresholds" } }), overrides: o.overrides ?? [] },
    options: {
      reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false },
      colorMode: o.colorMode ?? "background",
      graphMode: o.graph ? "area" : "none",
      justifyMode: "auto",
      orientation: "auto",
      textMode: "auto",
      wideLayout: true,
      showPercentChange: false,
    },
  };
}

export interface TimeseriesOptions extends CommonOptions {
  readonly queries: readonly Query[];
  readonly stack?: boolean;
  readonly fillOpacity?: number;
  /** Draw the thresholds as lines (e.g. a ratio's 1.0 line). */
  readonly thresholdLines?: boolean;
  readonly legend?: "list" | "table";
  readonly legendCalcs?: readonly string[];
  readonly drawStyle?: "line" | "bars";
}

export function timeseries(o: TimeseriesOptions): PanelSpec {
  return {
    ...base(o, "timeseries"),
    targets: targets(o.queries, { instant: false, format: "time_series" }),
    fieldConfig: {
      defaults: fieldDefaults(o, {
        color: { mode: "palette-classic" },
        custom: {
          drawStyle: o.drawStyle ?? "line",
          lineInterpolation: "linear",
          lineWidth: 1,
          fillOpacity: o.fillOpacity ?? (o.stack ? 30 : 0),
          gradientMode: "none",
          showPoints: "never",
          pointSize: 4,
          spanNulls: false,
          axisPlacement: "auto",
          axisLabel: "",
          scaleDistribution: { type: "linear" },
          stacking: { mode: o.stack ? "normal" : "none", group: "A" },
          thresholdsStyle: { mode: o.thresholdLines ? "dashed" : "off" },
          hideFrom: { legend: false, tooltip: false, viz: false },
        },
      }),
      overrides: o.overrides ?? [],
    },
    options: {
      legend: {
        showLegend: true,
        displayMode: o.legend ?? "list",
        placement: "bottom",
        calcs: [...(o.legendCalcs ?? [])],
      },
      tooltip: { mode: "multi", sort: "desc" },
    },
  };
}

export interface BarGaugeOptions extends CommonOptions {
  readonly queries: readonly Query[];
}

export function bargauge(o: BarGaugeOptions): PanelSpec {
  return {
    ...base(o, "bargauge"),
    targets: targets(o.queries, { instant: true, format: "time_series" }),
    fieldConfig: {
      defaults: fieldDefaults(o, { color: { mode: "thresholds" } }),
      overrides: o.overrides ?? [],
    },
    options: {
      reduceOptions: { calcs: ["lastNotNull"], fields: "", values: false },
      displayMode: "gradient",
      orientation: "horizontal",
      showUnfilled: true,
      valueMode: "color",
      namePlacement: "auto",
      sizing: "auto",
      minVizHeight: 16,
      minVizWidth: 8,
      maxVizHeight: 300,
    },
  };
}

/** One column of a table built from several instant queries joined on a label. */
export interface Column {
  readonly query: Query;
  /** The header of the query's value; omit to hide the value (a query read for its labels only). */
  readonly title?: string;
  /** Labels of the query's series to show, each with its header. */
  readonly labels?: Readonly<Record<string, string>>;
  readonly unit?: string;
  readonly decimals?: number;
  readonly thresholds?: readonly ThresholdStep[];
  /** Colour the cell background by the thresholds. */
  readonly colored?: boolean;
  readonly links?: readonly { readonly title: string; readonly url: string }[];
}

export interface TableOptions extends Omit<CommonOptions, "unit" | "thresholds"> {
  /** The label every query is grouped by and the table is joined on; it is the first column. */
  readonly joinOn: string;
  readonly joinTitle: string;
  readonly joinLinks?: readonly { readonly title: string; readonly url: string }[];
  readonly columns: readonly Column[];
  readonly sortBy?: { readonly column: string; readonly desc: boolean };
}

/**
 * A table whose rows are the values of one label (`joinOn`) and whose columns come from separate instant
 * queries, joined with Grafana's "join by field" transformation and tidied with "organize": the raw frames'
 * Time fields and unused values are hidden, values renamed, columns put in the order given.
 */
export function table(o: TableOptions): PanelSpec {
  const queries = o.columns.map((c) => ({ ...c.query, options: { ...c.query.options, format: "table" as const } }));
  const built = targets(queries, { instant: true, format: "table" });
  const exclude: Record<string, boolean> = { Time: true };
  const rename: Record<string, string> = { [o.joinOn]: o.joinTitle };
  const order: string[] = [o.joinOn];
  const overrides: FieldOverride[] = [];
  // Joined frames each bring a Time field; the join names them "Time 1", "Time 2", ...
  built.forEach((_, i) => {
    exclude[`Time ${i + 1}`] = true;
  });
  o.columns.forEach((column, i) => {
    // Grafana's Prometheus data source names a table's value "Value" when the panel has one query, and
    // "Value #<refId>" when it has several.
    const valueField = built.length === 1 ? "Value" : `Value #${built[i]?.refId}`;
    for (const [label, title] of Object.entries(column.labels ?? {})) {
      rename[label] = title;
      order.push(label);
    }
    if (column.title === undefined) {
      exclude[valueField] = true;
      return;
    }
    rename[valueField] = column.title;
    order.push(valueField);
    const properties: { id: string; value: unknown }[] = [];
    if (column.unit !== undefined) properties.push({ id: "unit", value: column.unit });
    if (column.decimals !== undefined) properties.push({ id: "decimals", value: column.decimals });
    if (column.thresholds !== undefined) {
      properties.push({ id: "thresholds", value: { mode: "absolute", steps: column.thresholds } });
    }
    if (column.colored) properties.push({ id: "custom.cellOptions", value: { type: "color-background" } });
    if (column.links !== undefined) properties.push({ id: "links", value: column.links });
    if (properties.length > 0) overrides.push({ matcher: { id: "byName", options: column.title }, properties });
  });
  if (o.joinLinks !== undefined) {
    overrides.unshift({
      matcher: { id: "byName", options: o.joinTitle },
      properties: [{ id: "links", value: o.joinLinks }],
    });
  }
  return {
    ...base({ ...o }, "table"),
    targets: built,
    fieldConfig: {
      defaults: fieldDefaults(o, {
        color: { mode: "thresholds" },
        custom: { align: "auto", cellOptions: { type: "auto" }, filterable: true, inspect: false },
      }),
      overrides: [...overrides, ...(o.overrides ?? [])],
    },
    options: {
      showHeader: true,
      cellHeight: "sm",
      footer: { show: false, reducer: ["sum"], countRows: false, fields: "" },
      ...(o.sortBy === undefined ? {} : { sortBy: [{ displayName: o.sortBy.column, desc: o.sortBy.desc }] }),
    },
    transformations: [
      { id: "joinByField", options: { byField: o.joinOn, mode: "outer" } },
      {
        id: "organize",
        options: {
          excludeByName: exclude,
          renameByName: rename,
          indexByName: Object.fromEntries(order.map((name, i) => [name, i])),
          includeByName: {},
        },
      },
    ],
  };
}

// ---------------------------------------------------------------------------------------------------------
// Variables

export function datasourceVariable(): Variable {
  return {
    name: "datasource",
    label: "Data source",
    type: "datasource",
    query: "prometheus",
    current: {},
    options: [],
    hide: 0,
    includeAll: false,
    multi: false,
    refresh: 1,
    regex: "",
    description: "The Prometheus that scrapes bundlegate.",
  };
}

/** A multi-value variable of one label's values, with "All" matching everything (allValue ".*"). */
export function labelVariable(o: { name: string; label: string; definition: string; description: string }): Variable {
  return {
    name: o.name,
    label: o.label,
    type: "query",
    datasource: PROMETHEUS,
    query: { qryType: 1, query: o.definition, refId: "PrometheusVariableQueryEditor-VariableQuery" },
    definition: o.definition,
    current: {},
    options: [],
    hide: 0,
    includeAll: true,
    multi: true,
    // A regex of every value would grow with the number of relationships; ".*" stays small.
    allValue: ".*",
    refresh: 2,
    regex: "",
    sort: 1,
    description: o.description,
  };
}

// ---------------------------------------------------------------------------------------------------------
// Dashboards

export interface DashboardOptions {
  readonly uid: string;
  readonly title: string;
  readonly description: string;
  readonly variables: readonly Variable[];
  readonly tags?: readonly string[];
  readonly refresh?: string;
  readonly from?: string;
}

export interface DashboardBuilder {
  /** Places the panel after the previous one, on a new line when it does not fit. */
  add(...panels: readonly PanelSpec[]): DashboardBuilder;
  /** Starts a new line even if the next panel would fit on this one. */
  newLine(): DashboardBuilder;
  build(): Dashboard;
}

export const SHARED_TAG = "bundlegate";

export function dashboard(o: DashboardOptions): DashboardBuilder {
  const panels: Panel[] = [];
  let x = 0;
  let y = 0;
  let lineHeight = 0;
  const builder: DashboardBuilder = {
    add(...specs) {
      for (const spec of specs) {
        const { size, ...rest } = spec;
        if (size.w < 1 || size.w > GRID_COLUMNS || size.h < 1) {
          throw new Error(`${o.uid}: panel "${spec.title}" has size ${size.w}x${size.h}`);
        }
        if (x + size.w > GRID_COLUMNS) builder.newLine();
        panels.push({ id: panels.length + 1, gridPos: { h: size.h, w: size.w, x, y }, ...rest });
        x += size.w;
        lineHeight = Math.max(lineHeight, size.h);
      }
      return builder;
    },
    newLine() {
      y += lineHeight;
      x = 0;
      lineHeight = 0;
      return builder;
    },
    build() {
      return {
        uid: o.uid,
        title: o.title,
        description: o.description,
        tags: [SHARED_TAG, ...(o.tags ?? [])],
        id: null,
        version: 1,
        schemaVersion: SCHEMA_VERSION,
        editable: true,
        graphTooltip: 1,
        liveNow: false,
        fiscalYearStartMonth: 0,
        weekStart: "",
        timezone: "browser",
        refresh: o.refresh ?? "1m",
        time: { from: o.from ?? "now-6h", to: "now" },
        timepicker: {},
        annotations: {
          list: [
            {
              builtIn: 1,
              datasource: { type: "grafana", uid: "-- Grafana --" },
              enable: true,
              hide: true,
              iconColor: "rgba(0, 211, 255, 1)",
              name: "Annotations & Alerts",
              type: "dashboard",
            },
          ],
        },
        links: [
          {
            title: "bundlegate dashboards",
            type: "dashboards",
            tags: [SHARED_TAG],
            asDropdown: true,
            includeVars: true,
            keepTime: true,
            icon: "external link",
            targetBlank: false,
            tooltip: "",
            url: "",
          },
        ],
        templating: { list: [...o.variables] },
        panels: [...panels],
      };
    },
  };
  return builder;
}
