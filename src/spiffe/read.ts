/** Reading a bundle whose format is given or guessed: the entry point for files and the CLI. */
import { type BundleReadLimits, type ParsedBundle, parseSpiffeBundle } from "./codec.js";
import { parsePemBundle } from "./pem.js";

export type BundleFormat = "spiffe" | "pem";

/** "spiffe" when the document starts with `{`, "pem" when it holds a BEGIN line, else undefined. */
export function detectBundleFormat(input: Uint8Array | string): BundleFormat | undefined {
  const text = typeof input === "string" ? input : Buffer.from(input).toString("latin1");
  const start = text.trimStart();
  if (start.startsWith("{")) return "spiffe";
  if (text.includes("-----BEGIN ")) return "pem";
  return undefined;
}

export function parseBundle(
  input: Uint8Array | string,
  format: BundleFormat | "auto" = "auto",
  limits: BundleReadLimits = {},
): ParsedBundle & { format: BundleFormat } {
  // An undetectable document goes to the JSON reader, whose error says best what is wrong with it.
  const chosen = format === "auto" ? (detectBundleFormat(input) ?? "spiffe") : format;
  const parsed = chosen === "pem" ? parsePemBundle(input, limits) : parseSpiffeBundle(input, limits);
  return { ...parsed, format: chosen };
}
