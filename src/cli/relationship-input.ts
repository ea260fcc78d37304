/**
 * The relationship document `relationships create` and `update` send: from a YAML or JSON file (--file), from
 * flags, or both (flags win, labels and CIDRs add up). The document is the API's input as the config file
 * writes a relationship, in snake_case; the API validates it and names each bad field.
 *
 * Files are read here, not by the API: `bootstrap_bundle_file` becomes `bootstrap_bundle` (read with the same
 * reader as the gateway, PEM or SPIFFE JSON, sent as the canonical SPIFFE JSON object) and `ca_file` becomes
 * `ca_pem`, so a config file's relationship entry can be sent as it is. Integers are kept exact (a YAML
 * `spiffe_sequence` past 2^53 is not rounded).
 */
import path from "node:path";
import { parseDocument } from "yaml";
import { MAX_YAML_ALIAS_COUNT } from "../config/load.js";
import { isBundlegateError } from "../errors.js";
import { serializeSpiffeBundle } from "../spiffe/codec.js";
import { parseBundle } from "../spiffe/read.js";
import { parseLabels, readBytes, readText, usageError } from "./admin-context.js";
import type { CliIo } from "./io.js";
import { parseJsonExact } from "./json-text.js";
import { isRecord } from "./render-text.js";

export type RelationshipProfile = "https_web" | "https_spiffe";

export interface RelationshipFlags {
  readonly file?: string;
  readonly trustDomain?: string;
  readonly endpointUrl?: string;
  readonly profile?: RelationshipProfile;
  readonly endpointSpiffeId?: string;
  readonly bootstrapBundle?: string;
  readonly caFile?: string;
  readonly owner?: string;
  readonly contact?: string;
  readonly description?: string;
  readonly label: readonly string[];
  readonly reviewBy?: string;
  readonly expiresAt?: string;
  readonly proxy?: string;
  readonly allowCidr: readonly string[];
  /** update only: fields to remove (sent as null, the merge-patch way). */
  readonly unset?: readonly string[];
}

type Document = Record<string, unknown>;

/** The flags each required field of a new relationship can come from. */
const REQUIRED_FOR_CREATE: readonly (readonly [string, string])[] = [
  ["trust_domain", "--trust-domain"],
  ["endpoint_url", "--endpoint-url"],
  ["profile", "--profile"],
  ["owner", "--owner"],
];

export async function relationshipDocument(
  flags: RelationshipFlags,
  io: CliIo,
  mode: "create" | "update",
): Promise<Document> {
  const doc: Document = flags.file === undefined ? {} : await readDocumentFile(flags.file, io);
  const set = (name: string, value: unknown) => {
    if (value !== undefined) doc[name] = value;
  };
  set("trust_domain", flags.trustDomain);
  set("endpoint_url", flags.endpointUrl);
  set("profile", flags.profile);
  set("endpoint_spiffe_id", flags.endpointSpiffeId);
  set("owner", flags.owner);
  set("contact", flags.contact);
  set("description", flags.description);
  set("review_by", flags.reviewBy);
  set("expires_at", flags.expiresAt);
  set("proxy", flags.proxy);
  if (flags.bootstrapBundle !== undefined) {
    delete doc.bootstrap_bundle_file;
    doc.bootstrap_bundle = await readBundleObject("--bootstrap-bundle", flags.bootstrapBundle, io);
  }
  if (flags.caFile !== undefined) {
    delete doc.ca_file;
    doc.ca_pem = await readText("--ca-file", flags.caFile, io);
  }
  if (flags.label.length > 0) {
    const fromFile = isRecord(doc.labels) ? doc.labels : {};
    doc.labels = { ...fromFile, ...parseLabels(flags.label, io) };
  }
  if (flags.allowCidr.length > 0) {
    const fromFile = Array.isArray(doc.allowed_cidrs) ? doc.allowed_cidrs : [];
    doc.allowed_cidrs = [...fromFile, ...flags.allowCidr];
  }

  for (const name of flags.unset ?? []) {
    if (doc[name] !== undefined) usageError(io, "--unset", "ERR_CLI_USAGE", `${name} is both set and unset`);
    doc[name] = null;
  }

  if (mode === "create") {
    const missing = REQUIRED_FOR_CREATE.filter(([name]) => doc[name] === undefined).map(([, flag]) => flag);
    if (missing.length > 0) {
      usageError(io, missing[0]!, "ERR_CLI_USAGE", `required: ${missing.join(", ")} (or the fields of --file)`);
    }
  } else if (Object.keys(doc).length === 0) {
    usageError(io, "--file", "ERR_CLI_USAGE", "nothing to change: give --file, a field flag or --unset");
  }
  return doc;
}

async function readDocumentFile(file: string, io: CliIo): Promise<Document> {
  const text = await readText("--file", file, io);
  const parsed = parseDocument(text, {
    intAsBigInt: true,
    prettyErrors: false,
    strict: true,
    uniqueKeys: true,
    version: "1.2",
    schema: "core",
  });
  const problem = parsed.errors[0] ?? parsed.warnings[0];
  if (problem !== undefined) usageError(io, "--file", "ERR_CLI_DOCUMENT_INVALID", `${file}: ${problem.message}`);
  let value: unknown;
  try {
    // The config loader's alias cap: a document is small, and a billion-laughs one is refused.
    value = parsed.toJS({ maxAliasCount: MAX_YAML_ALIAS_COUNT });
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    return usageError(io, "--file", "ERR_CLI_DOCUMENT_INVALID", `${file}: ${message}`);
  }
  if (!isRecord(value)) {
    return usageError(io, "--file", "ERR_CLI_DOCUMENT_INVALID", `${file}: must be a mapping of relationship fields`);
  }
  const doc: Document = { ...value };
  // File names inside the document are relative to it, as in the config file.
  const near = (name: string) => (file === "-" ? name : path.resolve(path.dirname(file), name));
  if (doc.bootstrap_bundle_file !== undefined) {
    const name = doc.bootstrap_bundle_file;
    if (typeof name !== "string") {
      usageError(io, "--file", "ERR_CLI_DOCUMENT_INVALID", `${file}: bootstrap_bundle_file must be a file name`);
    }
    delete doc.bootstrap_bundle_file;
    doc.bootstrap_bundle = await readBundleObject("bootstrap_bundle_file", near(name), io);
  } else if (typeof doc.bootstrap_bundle === "string") {
    // A PEM block (or SPIFFE JSON text) pasted into YAML: read it as the gateway would.
    doc.bootstrap_bundle = bundleObject("bootstrap_bundle", `${file}: bootstrap_bundle`, doc.bootstrap_bundle, io);
  }
  if (doc.ca_file !== undefined) {
    const name = doc.ca_file;
    if (typeof name !== "string") {
      usageError(io, "--file", "ERR_CLI_DOCUMENT_INVALID", `${file}: ca_file must be a file name`);
    }
    delete doc.ca_file;
    doc.ca_pem = await readText("ca_file", near(name), io);
  }
  return doc;
}

async function readBundleObject(flag: string, file: string, io: CliIo): Promise<unknown> {
  return bundleObject(flag, file, await readBytes(flag, file, io), io);
}

/** Any bundle the gateway would read, as the canonical SPIFFE JSON object the API takes. */
function bundleObject(flag: string, what: string, input: Uint8Array | string, io: CliIo): unknown {
  try {
    return parseJsonExact(serializeSpiffeBundle(parseBundle(input).bundle));
  } catch (error) {
    if (!isBundlegateError(error)) throw error;
    return usageError(io, flag, error.code, `${what}: ${error.message}`);
  }
}
