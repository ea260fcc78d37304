/**
 * A small JSON writer that keeps insertion order and writes bigints as exact integers
 * (JSON.stringify refuses bigints, and a double would round a 64-bit sequence).
 */
export type JsonWritable =
  | string
  | number
  | bigint
  | boolean
  | null
  | readonly JsonWritable[]
  | { readonly [name: string]: JsonWritable };

export function writeJson(value: JsonWritable, indent = 0): string {
  return write(value, indent, "");
}

function write(value: JsonWritable, indent: number, pad: string): string {
  if (typeof value === "bigint") return value.toString();
  if (value === null || typeof value !== "object") return JSON.stringify(value);
  const inner = indent > 0 ? pad + " ".repeat(indent) : "";
  const newline = indent > 0 ? "\n" : "";
  const colon = indent > 0 ? ": " : ":";
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    const items = value.map((item: JsonWritable) => inner + write(item, indent, inner));
    return `[${newline}${items.join(`,${newline}`)}${newline}${pad}]`;
  }
  const entries = Object.entries(value as Record<string, JsonWritable>);
  if (entries.length === 0) return "{}";
  const members = entries.map(([name, item]) => `${inner}${JSON.stringify(name)}${colon}${write(item, indent, inner)}`);
  return `{${newline}${members.join(`,${newline}`)}${newline}${pad}}`;
}
