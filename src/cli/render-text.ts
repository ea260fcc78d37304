/** Plain-text building blocks of the admin commands' readable output: aligned tables, durations, moments. */
import { writeJsonExact } from "./json-text.js";

/** Columns padded to their widest cell, two spaces apart; no trailing blanks. */
export function renderTable(headers: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = headers.map((header, column) =>
    Math.max(header.length, ...rows.map((row) => (row[column] ?? "").length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, column) => (column === cells.length - 1 ? cell : cell.padEnd(widths[column] ?? 0)))
      .join("  ")
      .trimEnd();
  return `${[line(headers), ...rows.map(line)].join("\n")}\n`;
}

/** The two largest units: 45s, 5m20s, 2h13m, 3d4h. */
export function formatDuration(totalSeconds: number): string {
  const seconds = Math.max(0, Math.floor(totalSeconds));
  const units: [string, number][] = [
    ["d", 86_400],
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ];
  const index = units.findIndex(([, size]) => seconds >= size);
  if (index === -1) return "0s";
  const [unit, size] = units[index]!;
  const next = units[index + 1];
  const whole = Math.floor(seconds / size);
  const rest = next === undefined ? 0 : Math.floor((seconds % size) / next[1]);
  return `${whole}${unit}${rest > 0 && next !== undefined ? `${rest}${next[0]}` : ""}`;
}

const ISO_MOMENT = /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2}))?$/;

export function looksLikeMoment(value: unknown): value is string {
  return typeof value === "string" && ISO_MOMENT.test(value);
}

/** An ISO time as the API wrote it, with how far it is from now: "2025-06-01T00:00:00Z (in 3d4h)". */
export function formatMoment(value: string, now: Date): string {
  const at = Date.parse(value);
  if (Number.isNaN(at)) return value;
  const delta = (at - now.getTime()) / 1000;
  if (Math.abs(delta) < 1) return `${value} (now)`;
  return delta > 0 ? `${value} (in ${formatDuration(delta)})` : `${value} (${formatDuration(-delta)} ago)`;
}

/** "name:" padded to a 16-column field, with at least one blank before the value. */
export function fieldLabel(name: string): string {
  return `${`${name}:`.padEnd(15)} `;
}

/** A scalar of the API's JSON as text; "-" for what is absent. */
export function scalarText(value: unknown): string {
  if (value === undefined || value === null || value === "") return "-";
  if (typeof value === "string") return value;
  if (typeof value === "boolean") return value ? "yes" : "no";
  if (typeof value === "number" || typeof value === "bigint") return value.toString();
  return writeJsonExact(value);
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}
