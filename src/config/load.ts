/**
 * Assembles the config: YAML text, then environment overrides on top, then one validation pass
 * (schema.ts) that reports every problem at once.
 *
 * Environment overrides: `BUNDLEGATE_` followed by the field's snake_case path, upper-cased, with `__`
 * between levels (`endpoint.https_web.listen.port` is `BUNDLEGATE_ENDPOINT__HTTPS_WEB__LISTEN__PORT`).
 * They are applied before validation so a bad value is reported against its field, named by the variable
 * it came from. An override may create sections the file lacks. String fields take the variable's text
 * verbatim (a trust domain "123" stays a string); other fields read it as a YAML scalar ("9443" is a
 * number). A `BUNDLEGATE_` variable that names no field is an error: a typo must not be silently ignored.
 *
 * Relative file paths, from the file or the environment alike, resolve against the config file's directory,
 * so a config means the same whatever the working directory of the process.
 *
 * Lists and mappings live in the file only (`FILE_ONLY_FIELDS`: relationships, distribution.audience, tokens
 * and allow, relay.trust_domains): a variable holds one value, and a list entry has no variable name. A
 * boolean field (distribution.client_certificates) reads the variable as a YAML scalar, like a number.
 * Relationships' bootstrap bundle and CA files are read here, after the environment is applied and before
 * validation, so a bad file is reported with every other issue, at the field that names it.
 *
 * The environment also supplies HTTPS_PROXY / https_proxy and NO_PROXY / no_proxy (see schema.ts).
 * Nothing here reads `process.env`; callers pass the environment in.
 */
import { readFileSync } from "node:fs";
import { readFile as readFileFromDisk } from "node:fs/promises";
import path from "node:path";
import { LineCounter, parseDocument, type YAMLError } from "yaml";
import {
  type ConfigIssue,
  invalidConfigError,
  unreadableConfigError,
  type YamlProblem,
  yamlConfigError,
} from "./errors.js";
import {
  CONFIG_FIELDS,
  type ConfigFieldKind,
  checkConfigDocument,
  FILE_ONLY_FIELDS,
  type FileRead,
  nearestField,
  type ReferencedFile,
  referencedFiles,
  toBundlegateConfig,
} from "./schema.js";
import type { BundlegateConfig } from "./types.js";

export const ENV_PREFIX = "BUNDLEGATE_";

/**
 * Variables of the admin CLI (`bundlegate relationships ...`), not of the gateway's config: an operator who
 * exported them for the CLI can still run `serve` or `validate-config` in the same shell. No config field
 * can be spelt this way (there is no `api` section), so skipping them hides no typo.
 */
export const CLI_ENV_VARIABLES: ReadonlySet<string> = new Set([
  "BUNDLEGATE_API_URL",
  "BUNDLEGATE_API_TOKEN",
  "BUNDLEGATE_API_CA_FILE",
]);

/**
 * Aliases are legitimate (one `&listen` reused twice), but each expansion copies the anchored value, so a
 * handful of nested aliases can grow a tiny file into gigabytes; this bounds the expansion well below that.
 */
export const MAX_YAML_ALIAS_COUNT = 20;

export type ConfigEnv = Readonly<Record<string, string | undefined>>;

export interface ParseConfigOptions {
  /** Environment overrides; typically `process.env`, passed by the caller. */
  readonly env?: ConfigEnv;
  /** Relative file paths in the config resolve against this directory: the config file's own. */
  readonly baseDir: string;
  /** Names the text in error messages, e.g. the config file's path. */
  readonly source?: string;
  /**
   * Reads the files relationships name (bootstrap bundles, CA files), by absolute path. Defaults to the
   * disk; never called for a config without such files (`bundlegate dev`, most tests).
   */
  readonly readFile?: (path: string) => Uint8Array | string;
}

export interface LoadConfigOptions {
  /** Defaults to reading from disk; the CLI passes its injected reader. Reads the config and the files it names. */
  readonly readFile?: (path: string) => Promise<Uint8Array | string>;
}

export async function loadConfigFile(
  file: string,
  env: ConfigEnv,
  options: LoadConfigOptions = {},
): Promise<BundlegateConfig> {
  const absolute = path.resolve(file);
  let content: Uint8Array | string;
  try {
    content = await (options.readFile ?? readFileFromDisk)(absolute);
  } catch (cause) {
    throw unreadableConfigError(file, cause);
  }
  let text: string;
  try {
    text = typeof content === "string" ? content : new TextDecoder("utf-8", { fatal: true }).decode(content);
  } catch (cause) {
    throw yamlConfigError([{ message: "not valid UTF-8" }], file, cause);
  }
  const parseOptions = { env, baseDir: path.dirname(absolute), source: file };
  const prepared = prepare(text, parseOptions);
  const reader = options.readFile ?? readFileFromDisk;
  const reads = await Promise.all(
    prepared.unique.map(
      async (absolutePath) => [absolutePath, await readReferenced(() => reader(absolutePath))] as const,
    ),
  );
  return finish(prepared, new Map(reads), parseOptions);
}

export function parseConfig(yamlText: string, options: ParseConfigOptions): BundlegateConfig {
  const prepared = prepare(yamlText, options);
  const reader = options.readFile ?? readFileSync;
  const reads = prepared.unique.map(
    (absolutePath) => [absolutePath, readReferencedSync(() => reader(absolutePath))] as const,
  );
  return finish(prepared, new Map(reads), options);
}

interface Prepared {
  readonly overridden: Overridden;
  readonly references: readonly (ReferencedFile & { readonly absolutePath: string })[];
  /** Each file once, however many relationships name it. */
  readonly unique: readonly string[];
}

function prepare(yamlText: string, options: ParseConfigOptions): Prepared {
  // An empty file is an empty mapping: the environment may supply everything, and if it does not, the
  // operator learns which fields are required rather than that "the document" is wrong.
  const parsed = parseYaml(yamlText, options.source) ?? {};
  const overridden = applyEnvOverrides(parsed, options.env ?? {});
  const references = referencedFiles(overridden.document).map((ref) => ({
    ...ref,
    absolutePath: path.resolve(options.baseDir, ref.file),
  }));
  return { overridden, references, unique: [...new Set(references.map((ref) => ref.absolutePath))] };
}

function finish(
  prepared: Prepared,
  reads: ReadonlyMap<string, FileRead>,
  options: ParseConfigOptions,
): BundlegateConfig {
  const { overridden } = prepared;
  const files = new Map<string, FileRead>();
  for (const ref of prepared.references) {
    const read = reads.get(ref.absolutePath);
    if (read !== undefined) files.set(ref.path, read);
  }
  const checked = checkConfigDocument(overridden.document, { files, env: options.env ?? {} });
  const issues = [...overridden.issues];
  if (!checked.ok) {
    for (const issue of checked.issues) {
      const env = overridden.origins.get(issue.path);
      issues.push(env === undefined || issue.env !== undefined ? issue : { ...issue, env });
    }
  }
  if (!checked.ok || issues.length > 0) throw invalidConfigError(issues, options.source);
  return toBundlegateConfig(checked.document, { baseDir: options.baseDir, resolved: checked.resolved });
}

async function readReferenced(read: () => Promise<Uint8Array | string>): Promise<FileRead> {
  try {
    return { content: await read() };
  } catch (cause) {
    return { error: readFailure(cause) };
  }
}

function readReferencedSync(read: () => Uint8Array | string): FileRead {
  try {
    return { content: read() };
  } catch (cause) {
    return { error: readFailure(cause) };
  }
}

function readFailure(cause: unknown): string {
  return (cause as NodeJS.ErrnoException | undefined)?.code ?? (cause instanceof Error ? cause.message : String(cause));
}

/** The variable that overrides the field at `dottedPath`, e.g. "store.url" gives "BUNDLEGATE_STORE__URL". */
export function envVarName(dottedPath: string): string {
  return ENV_PREFIX + dottedPath.split(".").join("__").toUpperCase();
}

function parseYaml(text: string, source: string | undefined): unknown {
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, {
    lineCounter,
    prettyErrors: false,
    strict: true,
    uniqueKeys: true,
    version: "1.2",
    schema: "core",
  });
  // Warnings (an unknown tag, say) mean the value read is not the value meant; a config must not guess.
  const problems = [...doc.errors, ...doc.warnings].map((error) => yamlProblem(error, lineCounter));
  if (problems.length > 0) throw yamlConfigError(problems, source);
  try {
    return doc.toJS({ maxAliasCount: MAX_YAML_ALIAS_COUNT });
  } catch (cause) {
    const message = cause instanceof Error ? cause.message : String(cause);
    throw yamlConfigError([{ message, yamlCode: "ALIAS_LIMIT" }], source, cause);
  }
}

function yamlProblem(error: YAMLError, lineCounter: LineCounter): YamlProblem {
  const { line, col } = lineCounter.linePos(error.pos[0]);
  return { message: error.message, yamlCode: error.code, line, column: col };
}

interface Overridden {
  readonly document: unknown;
  readonly issues: readonly ConfigIssue[];
  /** Dotted path to the variable that set it. */
  readonly origins: ReadonlyMap<string, string>;
}

function applyEnvOverrides(document: unknown, env: ConfigEnv): Overridden {
  const issues: ConfigIssue[] = [];
  const origins = new Map<string, string>();
  let current = document;
  // Sorted, so the issue list does not depend on the order the environment happens to be in.
  const names = Object.keys(env)
    .filter((name) => name.startsWith(ENV_PREFIX) && !CLI_ENV_VARIABLES.has(name))
    .sort();
  for (const name of names) {
    const raw = env[name];
    if (raw === undefined) continue;
    const keys = name.slice(ENV_PREFIX.length).split("__");
    const dotted = keys.join(".").toLowerCase();
    const kind = CONFIG_FIELDS.get(dotted);
    if (kind === undefined || envVarName(dotted) !== name) {
      issues.push({ path: dotted, env: name, message: unknownVariableMessage(dotted, kind) });
      continue;
    }
    const value = envValue(raw, kind);
    if (!value.ok) {
      issues.push({ path: dotted, env: name, message: value.message });
      continue;
    }
    // A document that is not a mapping is reported by the schema; there is nothing to override in it.
    if (!isRecord(current)) continue;
    const updated = setIn(current, dotted.split("."), value.value);
    if (!updated.ok) {
      issues.push({ path: dotted, env: name, message: `cannot override: ${updated.blocker} is not a mapping` });
      continue;
    }
    current = updated.value;
    origins.set(dotted, name);
  }
  return { document: current, issues, origins };
}

function unknownVariableMessage(dotted: string, kind: ConfigFieldKind | undefined): string {
  if (kind !== undefined) return `unknown field; environment overrides are upper case: ${envVarName(dotted)}`;
  if (dotted === "relationships" || dotted.startsWith("relationships.")) {
    return "relationships are set in the config file only: a variable cannot name one entry of a list";
  }
  const fileOnly = FILE_ONLY_FIELDS.find((field) => dotted === field || dotted.startsWith(`${field}.`));
  if (fileOnly !== undefined) {
    return `${fileOnly} is a list or mapping, set in the config file only: a variable holds a single value`;
  }
  const isSection = [...CONFIG_FIELDS.keys()].some((field) => field.startsWith(`${dotted}.`));
  if (isSection) return "names a section, not a field; override its fields one by one";
  const near = nearestField(dotted);
  return near === undefined ? "names no config field" : `names no config field (did you mean ${envVarName(near)}?)`;
}

type Result<T> = { ok: true; value: T } | { ok: false; message: string };

function envValue(raw: string, kind: ConfigFieldKind): Result<unknown> {
  if (kind === "string") return { ok: true, value: raw };
  const doc = parseDocument(raw, { version: "1.2", schema: "core", strict: true });
  if (doc.errors.length > 0 || doc.warnings.length > 0) return { ok: false, message: "is not a valid YAML scalar" };
  const value: unknown = doc.toJS({ maxAliasCount: 0 });
  if (typeof value === "object" && value !== null) {
    return { ok: false, message: "must be a single value, not a list or mapping" };
  }
  return { ok: true, value };
}

/** Copy-on-write: YAML aliases share objects, so mutating in place could change a field the variable does not name. */
function setIn(
  target: Record<string, unknown>,
  keys: readonly string[],
  value: unknown,
  at: readonly string[] = [],
): { ok: true; value: Record<string, unknown> } | { ok: false; blocker: string } {
  const [key, ...rest] = keys;
  if (key === undefined) return { ok: true, value: target };
  if (rest.length === 0) return { ok: true, value: { ...target, [key]: value } };
  const child = target[key];
  if (child !== undefined && child !== null && !isRecord(child)) return { ok: false, blocker: [...at, key].join(".") };
  const updated = setIn(isRecord(child) ? child : {}, rest, value, [...at, key]);
  return updated.ok ? { ok: true, value: { ...target, [key]: updated.value } } : updated;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}
