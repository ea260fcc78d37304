/**
 * The Prometheus text format (0.0.4) exactly as prom-client 15's Registry writes it, for the series
 * bundlegate writes itself: a scrape mixes both, so one series must read the same whoever wrote it.
 * test/metrics/exposition-registry.test.ts holds the two writers side by side.
 */

/** prom-client escapes backslash and newline in names and help text. */
export function escapeText(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

/** ...and the double quote too in label values. */
export function escapeLabelValue(value: string): string {
  return escapeText(value).replace(/"/g, '\\"');
}

/** A sample value: `Nan` (sic, as prom-client writes it), `+Inf`, `-Inf`, or JavaScript's own number text. */
export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "Nan";
  if (!Number.isFinite(value)) return value < 0 ? "-Inf" : "+Inf";
  return `${value}`;
}

/**
 * `a="1",b="2"` in the object's own key order, leaving out names `exclude` has; numbers written as they
 * are. Built by `join`, which gives a flat string: one built by `+` is a tree of pieces that every later
 * `join` of a scrape would walk again, several times slower once it sits among 200k others.
 */
export function labelPairs(
  labels: Readonly<Record<string, unknown>>,
  exclude?: Readonly<Record<string, unknown>>,
): string {
  const pairs: string[] = [];
  for (const name of Object.keys(labels)) {
    if (exclude && Object.hasOwn(exclude, name)) continue;
    const value = labels[name];
    pairs.push(`${name}="${typeof value === "string" ? escapeLabelValue(value) : value}"`);
  }
  return pairs.join(",");
}

/** `{a="1",b="2"}`, or "" for no labels; a flat string (see labelPairs). */
export function labelsText(labels: Readonly<Record<string, unknown>>): string {
  const pairs = labelPairs(labels);
  return pairs === "" ? "" : ["{", pairs, "}"].join("");
}

/** One series line, as a flat string (see labelPairs). */
export function seriesLine(name: string, labels: string, value: number): string {
  return [name, labels, " ", formatValue(value)].join("");
}

/** The `# HELP` and `# TYPE` lines that open a metric's block. */
export function familyHeader(name: string, help: string, type: string): string {
  const escaped = escapeText(name);
  return `# HELP ${escaped} ${escapeText(help)}\n# TYPE ${escaped} ${type}`;
}
