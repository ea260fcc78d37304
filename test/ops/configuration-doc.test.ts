/**
 * docs/configuration.md names every field of the config schema, so a field added to src/config/schema.ts
 * without a line in the reference fails here, and the reference names no field the schema lacks.
 */
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { z } from "zod";
import { configDocumentSchema } from "../../src/config/schema.js";

const DOC = readFileSync(fileURLToPath(new URL("../../docs/configuration.md", import.meta.url)), "utf8");

/** Every field path of the schema, list entries written "[]"; a list or mapping of scalars is one field. */
function fieldPaths(schema: z.core.$ZodType, at = "", out = new Set<string>()): Set<string> {
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault) {
    fieldPaths(schema.unwrap() as z.core.$ZodType, at, out);
  } else if (schema instanceof z.ZodPipe) {
    // z.preprocess is a pipe whose first half is a bare transform; the shape lives in the second half.
    fieldPaths((schema.in instanceof z.ZodTransform ? schema.out : schema.in) as z.core.$ZodType, at, out);
  } else if (schema instanceof z.ZodObject) {
    for (const [key, child] of Object.entries(schema.shape)) {
      fieldPaths(child as z.core.$ZodType, at === "" ? key : `${at}.${key}`, out);
    }
  } else if (schema instanceof z.ZodUnion) {
    for (const option of schema.options) fieldPaths(option as z.core.$ZodType, at, out);
  } else if (schema instanceof z.ZodArray && unwrapped(schema.element) instanceof z.ZodObject) {
    fieldPaths(schema.element as z.core.$ZodType, `${at}[]`, out);
  } else {
    out.add(at);
  }
  return out;
}

function unwrapped(schema: unknown): unknown {
  let current = schema;
  while (current instanceof z.ZodOptional || current instanceof z.ZodDefault || current instanceof z.ZodPrefault) {
    current = current.unwrap();
  }
  return current;
}

/** The field paths the reference's tables name in their first column. */
function documentedPaths(doc: string): Set<string> {
  const paths = new Set<string>();
  for (const line of doc.split("\n")) {
    const first = /^\| `([a-z0-9_[\].]+)` \|/.exec(line)?.[1];
    if (first !== undefined) paths.add(first);
  }
  return paths;
}

describe("docs/configuration.md", () => {
  const fields = fieldPaths(configDocumentSchema);
  const documented = documentedPaths(DOC);

  it("documents every field of the config schema", () => {
    expect(fields.size).toBeGreaterThan(80);
    const missing = [...fields].filter((field) => !documented.has(field));
    expect(missing, "add a row for each to docs/configuration.md").toEqual([]);
  });

  it("documents no field the schema lacks", () => {
    // A section's own row ("endpoint.https_web") introduces its fields; every other row is a field.
    const prefixes = (f: string): string[] => f.split(".").map((_, i, parts) => parts.slice(0, i).join("."));
    // "distribution.tokens" introduces the list whose entries are "distribution.tokens[].name", ...
    const sections = new Set([...fields].flatMap((f) => [...prefixes(f), ...prefixes(f.replaceAll("[]", ""))]));
    const unknown = [...documented].filter((path) => !fields.has(path) && !sections.has(path));
    expect(unknown).toEqual([]);
  });

  it("reads field paths the way the checks above rely on", () => {
    expect(fields.has("relationships[].policy.full_replacement")).toBe(true);
    expect(fields.has("store.url")).toBe(true);
    expect(fields.has("store.snapshot_file")).toBe(true);
    expect(fields.has("relationships[].allowed_cidrs")).toBe(true);
    expect(documentedPaths("| `a.b` | x |\n| a.c | y |\n")).toEqual(new Set(["a.b"]));
  });
});
