/**
 * A strict RFC 8259 reader for untrusted bundle documents.
 *
 * JSON.parse cannot serve here: it keeps the last of duplicate member names silently (SPIFFE's
 * security considerations call duplicate detection out) and turns every number into a double, so a
 * `spiffe_sequence` past 2^53 would be rounded. This reader keeps each number's source text and
 * refuses a duplicate name at any depth, comparing names after unescaping ("a" and "\u0061" clash).
 */
import { InvalidBundleError } from "./errors.js";

export type JsonNode =
  | { readonly type: "object"; readonly members: ReadonlyMap<string, JsonNode> }
  | { readonly type: "array"; readonly items: readonly JsonNode[] }
  | { readonly type: "string"; readonly value: string }
  | { readonly type: "number"; readonly text: string }
  | { readonly type: "boolean"; readonly value: boolean }
  | { readonly type: "null" };

export type JsonObjectNode = Extract<JsonNode, { type: "object" }>;

/** A JSON value as plain data: integers past 2^53 kept exact as decimal strings, so JSON.stringify works. */
export type ReadableJson = string | number | boolean | null | ReadableJson[] | { [name: string]: ReadableJson };

/** Nesting this deep is never a bundle; the limit keeps recursion far from the stack's end. */
export const MAX_JSON_DEPTH = 32;

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const ESCAPES: Readonly<Record<string, string>> = {
  '"': '"',
  "\\": "\\",
  "/": "/",
  b: "\b",
  f: "\f",
  n: "\n",
  r: "\r",
  t: "\t",
};

export function parseStrictJson(text: string): JsonNode {
  const reader = new Reader(text);
  reader.skipWhitespace();
  const node = reader.value(0, "$");
  reader.skipWhitespace();
  if (!reader.atEnd()) reader.fail("unexpected data after the JSON value");
  return node;
}

class Reader {
  private pos = 0;

  constructor(private readonly text: string) {}

  atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  fail(reason: string): never {
    throw new InvalidBundleError("ERR_BUNDLE_NOT_JSON", `not valid JSON at offset ${this.pos}: ${reason}`, {
      details: { offset: this.pos },
    });
  }

  skipWhitespace(): void {
    for (;;) {
      const c = this.text.charCodeAt(this.pos);
      if (c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) this.pos++;
      else return;
    }
  }

  value(depth: number, path: string): JsonNode {
    const c = this.text[this.pos];
    // `depth` counts the containers around this value, so a container here is nesting level depth + 1.
    if ((c === "{" || c === "[") && depth >= MAX_JSON_DEPTH) {
      throw new InvalidBundleError("ERR_BUNDLE_TOO_DEEP", `JSON nesting deeper than ${MAX_JSON_DEPTH} at ${path}`, {
        details: { path, limit: MAX_JSON_DEPTH },
      });
    }
    switch (c) {
      case "{":
        return this.object(depth, path);
      case "[":
        return this.array(depth, path);
      case '"':
        return { type: "string", value: this.string() };
      case "t":
        return this.literal("true", { type: "boolean", value: true });
      case "f":
        return this.literal("false", { type: "boolean", value: false });
      case "n":
        return this.literal("null", { type: "null" });
      case undefined:
        return this.fail("unexpected end of input");
      default:
        return this.number();
    }
  }

  private literal(word: string, node: JsonNode): JsonNode {
    if (!this.text.startsWith(word, this.pos)) this.fail(`unexpected character ${JSON.stringify(this.text[this.pos])}`);
    this.pos += word.length;
    return node;
  }

  private number(): JsonNode {
    NUMBER.lastIndex = this.pos;
    const match = NUMBER.exec(this.text);
    if (!match) this.fail(`unexpected character ${JSON.stringify(this.text[this.pos])}`);
    this.pos += match[0].length;
    return { type: "number", text: match[0] };
  }

  private object(depth: number, path: string): JsonNode {
    const members = new Map<string, JsonNode>();
    this.pos++;
    this.skipWhitespace();
    if (this.text[this.pos] === "}") {
      this.pos++;
      return { type: "object", members };
    }
    for (;;) {
      if (this.text[this.pos] !== '"') this.fail("expected a member name");
      const name = this.string();
      const memberPath = `${path}.${name}`;
      if (members.has(name)) {
        throw new InvalidBundleError("ERR_BUNDLE_DUPLICATE_MEMBER", `duplicate member name at ${memberPath}`, {
          details: { path: memberPath },
        });
      }
      this.skipWhitespace();
      if (this.text[this.pos] !== ":") this.fail("expected ':'");
      this.pos++;
      this.skipWhitespace();
      members.set(name, this.value(depth + 1, memberPath));
      this.skipWhitespace();
      const next = this.text[this.pos++];
      if (next === "}") return { type: "object", members };
      if (next !== ",") {
        this.pos--;
        this.fail("expected ',' or '}'");
      }
      this.skipWhitespace();
    }
  }

  private array(depth: number, path: string): JsonNode {
    const items: JsonNode[] = [];
    this.pos++;
    this.skipWhitespace();
    if (this.text[this.pos] === "]") {
      this.pos++;
      return { type: "array", items };
    }
    for (;;) {
      items.push(this.value(depth + 1, `${path}[${items.length}]`));
      this.skipWhitespace();
      const next = this.text[this.pos++];
      if (next === "]") return { type: "array", items };
      if (next !== ",") {
        this.pos--;
        this.fail("expected ',' or ']'");
      }
      this.skipWhitespace();
    }
  }

  private string(): string {
    this.pos++;
    let out = "";
    let runStart = this.pos;
    for (;;) {
      const c = this.text.charCodeAt(this.pos);
      if (Number.isNaN(c)) this.fail("unterminated string");
      if (c === 0x22) {
        out += this.text.slice(runStart, this.pos);
        this.pos++;
        return out;
      }
      if (c < 0x20) this.fail("control character in string");
      if (c !== 0x5c) {
        this.pos++;
        continue;
      }
      out += this.text.slice(runStart, this.pos);
      const escapeChar = this.text[this.pos + 1];
      if (escapeChar === "u") {
        const hex = this.text.slice(this.pos + 2, this.pos + 6);
        if (!/^[0-9a-fA-F]{4}$/.test(hex)) this.fail("bad \\u escape");
        out += String.fromCharCode(Number.parseInt(hex, 16));
        this.pos += 6;
      } else {
        const decoded = escapeChar === undefined ? undefined : ESCAPES[escapeChar];
        if (decoded === undefined) this.fail("bad escape");
        out += decoded;
        this.pos += 2;
      }
      runStart = this.pos;
    }
  }
}

/** The readable view of a JSON value: exact, and safe for JSON.stringify (no bigint). */
export function readableJson(node: JsonNode): ReadableJson {
  switch (node.type) {
    case "object": {
      const out: { [name: string]: ReadableJson } = {};
      for (const [name, member] of node.members) {
        // defineProperty, not assignment: a member named "__proto__" stays data.
        Object.defineProperty(out, name, { value: readableJson(member), enumerable: true, writable: true });
      }
      return out;
    }
    case "array":
      return node.items.map(readableJson);
    case "number": {
      const value = Number(node.text);
      return /^-?\d+$/.test(node.text) && !Number.isSafeInteger(value) ? node.text : value;
    }
    case "null":
      return null;
    default:
      return node.value;
  }
}

/** JSON text of a parsed node, numbers exactly as they were written: what the bundle codec reads. */
export function jsonText(node: JsonNode): string {
  switch (node.type) {
    case "object":
      return `{${[...node.members].map(([name, member]) => `${JSON.stringify(name)}:${jsonText(member)}`).join(",")}}`;
    case "array":
      return `[${node.items.map(jsonText).join(",")}]`;
    case "number":
      return node.text;
    case "null":
      return "null";
    default:
      return JSON.stringify(node.value);
  }
}
