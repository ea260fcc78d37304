/**
 * JSON as the admin commands exchange it. The API's numbers are read exactly (an integer past 2^53, such as a
 * 64-bit `spiffe_sequence`, becomes a bigint instead of being rounded) and written back exactly, so `--json`
 * prints what the API said and a request carries what the operator wrote.
 */
import { type JsonNode, parseStrictJson } from "../spiffe/json.js";
import { type JsonWritable, writeJson } from "../spiffe/json-writer.js";

export type JsonValue = JsonWritable;

/** Throws the strict reader's error (duplicate member names, bad syntax, nesting past its limit). */
export function parseJsonExact(text: string): JsonValue {
  return fromNode(parseStrictJson(text));
}

function fromNode(node: JsonNode): JsonValue {
  switch (node.type) {
    case "object": {
      const out: { [name: string]: JsonValue } = {};
      for (const [name, member] of node.members) {
        // defineProperty, not assignment: a member named "__proto__" stays data.
        Object.defineProperty(out, name, { value: fromNode(member), enumerable: true, writable: true });
      }
      return out;
    }
    case "array":
      return node.items.map(fromNode);
    case "number": {
      const value = Number(node.text);
      return /^-?\d+$/.test(node.text) && !Number.isSafeInteger(value) ? BigInt(node.text) : value;
    }
    case "null":
      return null;
    default:
      return node.value;
  }
}

/** JSON text with bigints as exact integers; members whose value is undefined are left out, as JSON.stringify does. */
export function writeJsonExact(value: unknown, indent = 0): string {
  return writeJson(toWritable(value) ?? null, indent);
}

function toWritable(value: unknown): JsonWritable | undefined {
  if (value === undefined || typeof value === "function" || typeof value === "symbol") return undefined;
  if (value === null || typeof value !== "object") return value as JsonWritable;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((item) => toWritable(item) ?? null);
  const out: { [name: string]: JsonWritable } = {};
  for (const [name, member] of Object.entries(value)) {
    const written = toWritable(member);
    if (written !== undefined) Object.defineProperty(out, name, { value: written, enumerable: true, writable: true });
  }
  return out;
}
