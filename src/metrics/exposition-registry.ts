/**
 * The app's prom-client Registry, with a scrape (`metrics()`) built for hundreds of thousands of series
 * on the event loop the bundle endpoint shares:
 *
 * - A metric that writes its own text (a `TextMetric`: the per-relationship gauges, which keep each
 *   relationship's lines between scrapes) is taken as it is, not rebuilt from values.
 * - Every other metric is written as prom-client writes it (exposition-text.ts), except that the text of
 *   a label set is kept per labels object: prom-client holds one object per counter series for its whole
 *   life, so the per-relationship counters cost one string concatenation a series after the first scrape.
 * - Metrics are written one after another, and the event loop gets a turn whenever a slice has run past
 *   its budget (time-slice.ts), so one scrape never holds a bundle request for long.
 *
 * - `chunks()` gives the scrape metric by metric, for the metrics listener to encode and send piecewise.
 *
 * OpenMetrics and default labels, which bundlegate uses neither of, go to prom-client's own scrape; so do
 * `getMetricsAsJSON()` and `getSingleMetricAsString()`, for which a TextMetric is a metric like another.
 */
import { Registry } from "prom-client";
import { escapeText, familyHeader, formatValue, labelPairs, labelsText } from "./exposition-text.js";
import { createTimeSlicer, SLICE_MS, type TimeSlicer } from "./time-slice.js";

/** One scrape in progress: the same object for every metric of it. */
export interface Scrape {
  /** Shared by the whole scrape: long work inside a metric pauses on it too. */
  readonly slicer: TimeSlicer;
}

export interface TextMetric {
  /**
   * The metric's whole block (help, type and series lines, no final newline), as prom-client would write
   * it from the metric's `get()`. Values computed once per scrape can be kept by `scrape` identity and
   * shared by the metrics that read them.
   */
  exposition(scrape: Scrape): Promise<string>;
}

export function isTextMetric(metric: unknown): metric is TextMetric {
  return typeof (metric as Partial<TextMetric> | undefined)?.exposition === "function";
}

interface Value {
  readonly value: number;
  readonly labels?: Readonly<Record<string, unknown>>;
  readonly metricName?: string;
  /** Histograms' labels, shared by a series' buckets, sum and count. */
  readonly sharedLabels?: Readonly<Record<string, unknown>>;
}

interface Collected {
  readonly name: string;
  readonly help: string;
  readonly type: string;
  readonly values?: readonly Value[];
}

interface Collectable {
  get(): Promise<Collected>;
  getForPromString?(): Promise<Collected>;
}

export interface ExpositionRegistryOptions {
  /** Longest run of scrape work between two turns of the event loop, in ms. Default SLICE_MS. */
  readonly sliceMs?: number;
}

export class ExpositionRegistry extends Registry {
  readonly #sliceMs: number;
  #defaultLabels = false;
  /**
   * The line prefix of a counter's or gauge's series, by its labels object: prom-client keeps one object
   * per counter series for the series' life (a gauge set anew gets a new one, and a new entry here).
   * Labels objects are never changed once passed to prom-client, which hashes them when they are.
   */
  readonly #prefixes = new WeakMap<object, { readonly name: string; readonly prefix: string }>();
  /** The pairs of a histogram's shared labels, as prom-client keeps them. */
  readonly #sharedPairs = new WeakMap<object, string>();

  constructor(options: ExpositionRegistryOptions = {}) {
    super();
    this.#sliceMs = options.sliceMs ?? SLICE_MS;
  }

  override setDefaultLabels(labels: object): void {
    this.#defaultLabels = Object.keys(labels).length > 0;
    super.setDefaultLabels(labels);
  }

  override async metrics(): Promise<string> {
    return (await this.chunks()).join("");
  }

  /**
   * The scrape in pieces whose concatenation is exactly `metrics()`, one per metric: a writer can encode
   * and send them one by one, never holding the loop for the whole text (tens of MB at 10k relationships).
   */
  async chunks(): Promise<string[]> {
    if (this.contentType !== Registry.PROMETHEUS_CONTENT_TYPE || this.#defaultLabels) return [await super.metrics()];
    const slicer = createTimeSlicer(this.#sliceMs);
    const scrape: Scrape = { slicer };
    const blocks: string[] = [];
    for (const metric of this.getMetricsAsArray()) {
      blocks.push(
        isTextMetric(metric)
          ? await metric.exposition(scrape)
          : await this.#write(metric as unknown as Collectable, slicer),
      );
      if (slicer.due()) await slicer.pause();
    }
    // prom-client's layout: a blank line between metrics, a newline at the end.
    return blocks.map((block, index) => `${block}${index === blocks.length - 1 ? "\n" : "\n\n"}`);
  }

  async #write(metric: Collectable, slicer: TimeSlicer): Promise<string> {
    const collected =
      typeof metric.getForPromString === "function" ? await metric.getForPromString() : await metric.get();
    const name = escapeText(collected.name);
    const lines = [familyHeader(collected.name, collected.help, collected.type)];
    for (const [index, value] of (collected.values ?? []).entries()) {
      // A counter of every relationship has tens of thousands of series.
      if (index % 1024 === 1023 && slicer.due()) await slicer.pause();
      // A short piece after a flat prefix: cheap for the final join to copy.
      lines.push(
        `${this.#prefix(value.metricName === undefined ? name : value.metricName, value)}${formatValue(value.value)}`,
      );
    }
    return lines.join("\n");
  }

  /** `name{labels} ` of one series, a flat string (exposition-text.ts). */
  #prefix(name: string, value: Value): string {
    const { labels, sharedLabels } = value;
    if (labels !== undefined && sharedLabels === undefined) {
      const known = this.#prefixes.get(labels);
      if (known?.name === name) return known.prefix;
      const prefix = [name, labelsText(labels), " "].join("");
      this.#prefixes.set(labels, { name, prefix });
      return prefix;
    }
    // prom-client's rule: the series' own labels not also shared, then the shared ones.
    const shared = sharedLabels ?? {};
    let sharedPairs = this.#sharedPairs.get(shared);
    if (sharedPairs === undefined) {
      sharedPairs = labelPairs(shared);
      this.#sharedPairs.set(shared, sharedPairs);
    }
    const own = labelPairs(labels ?? {}, shared);
    const pairs = own !== "" && sharedPairs !== "" ? `${own},${sharedPairs}` : own || sharedPairs;
    return [name, pairs === "" ? "" : `{${pairs}}`, " "].join("");
  }
}
