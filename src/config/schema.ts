/**
 * The config document as written in YAML (snake_case), every default, the rules that span fields, and the
 * mapping onto `BundlegateConfig` (camelCase). Pure: no file or environment access here, so the same rules
 * apply whatever the document was assembled from (file, environment overrides, a test's literal).
 *
 * Objects are strict: a misspelt key is an error naming it, never a silently ignored setting. Validation
 * collects every issue rather than stopping at the first, so one run of `validate-config` lists them all.
 * Whether the named files exist is not checked here: that is for the components that read them, at start.
 */
import path from "node:path";
import { z } from "zod";
import { isBundlegateError } from "../errors.js";
import type { LogLevel } from "../logging.js";
import { isMemberOf, isSpiffeId, isTrustDomain, parseSpiffeId, parseTrustDomain } from "../spiffe/id.js";
import type { ConfigIssue } from "./errors.js";
import type { BundlegateConfig, ListenConfig, StoreConfig } from "./types.js";

/** Every default of the config, in YAML (snake_case) terms; the schema below reads them from here and nowhere else. */
export const CONFIG_DEFAULTS = deepFreeze({
  log_level: "info",
  file_poll_interval_ms: 2000,
  local_bundle: { format: "auto", refresh_hint_seconds: 300, max_bytes: 65_536 },
  endpoint: {
    path: "/",
    timeouts: { headers_ms: 10_000, request_ms: 30_000, keep_alive_ms: 5000 },
    https_web: { listen: { host: "0.0.0.0", port: 8443 } },
    https_spiffe: { listen: { host: "0.0.0.0", port: 8444 } },
  },
  internal: { listen: { host: "127.0.0.1", port: 8080 } },
  // key_prefix and command_timeout_ms apply to kind "redis" only.
  store: { kind: "embedded", key_prefix: "bundlegate", command_timeout_ms: 2000 },
} as const);

/** Node turns a longer setTimeout delay into 1 ms, so a huge timeout would silently become an immediate one. */
export const MAX_TIMER_MS = 2_147_483_647;
/** Far above any real bundle; only stops a typo (an extra few zeros) from disabling the size cap. */
export const MAX_LOCAL_BUNDLE_BYTES = 16 * 1024 * 1024;

// `satisfies Record<LogLevel, true>` fails to compile if logging.ts gains or loses a level.
const LOG_LEVEL_SET = {
  fatal: true,
  error: true,
  warn: true,
  info: true,
  debug: true,
  trace: true,
  silent: true,
} satisfies Record<LogLevel, true>;
const LOG_LEVELS = Object.keys(LOG_LEVEL_SET) as [LogLevel, ...LogLevel[]];

const WILDCARD_HOSTS = new Set(["0.0.0.0", "::", "[::]"]);

const millis = z
  .number()
  .int()
  .positive()
  .max(MAX_TIMER_MS, `must be at most ${MAX_TIMER_MS} (Node timers overflow beyond it)`);
const port = z.number().int().min(0).max(65_535);
const host = z
  .string()
  .min(1, "must not be empty")
  .regex(/^[^\s/]+$/, "must be a host name or IP address, with no spaces, scheme or path");
const filePath = z.string().min(1, "must not be empty");

function listenSchema(defaults: { readonly host: string; readonly port: number }) {
  return z.strictObject({ host: host.default(defaults.host), port: port.default(defaults.port) }).prefault({});
}

const trustDomain = z.string().transform((name, ctx) => {
  try {
    return parseTrustDomain(name);
  } catch (error) {
    addErrorIssue(ctx, error);
    return z.NEVER;
  }
});

const endpointSpiffeId = z.string().superRefine((uri, ctx) => {
  try {
    // X509-SVID.md section 3.1: a leaf SVID's SPIFFE ID must have a non-root path.
    if (parseSpiffeId(uri).path === "") {
      ctx.addIssue({ code: "custom", message: `${uri} names the trust domain itself; a leaf SVID's ID needs a path` });
    }
  } catch (error) {
    addErrorIssue(ctx, error);
  }
});

const endpointPath = z
  .string()
  .regex(/^\/[^\s?#]*$/, 'must start with "/" and contain no spaces, "?" or "#"')
  .default(CONFIG_DEFAULTS.endpoint.path);

// The URL may carry a password, so no message here echoes it.
const redisUrl = z.string().superRefine((raw, ctx) => {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    ctx.addIssue({ code: "custom", message: "is not a URL; expected redis://host:port or rediss://host:port" });
    return;
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    ctx.addIssue({ code: "custom", message: "must start with redis:// or rediss://" });
  } else if (url.hostname === "") {
    ctx.addIssue({ code: "custom", message: "must name a host" });
  }
});

const embeddedStore = z.strictObject({
  kind: z.literal("embedded"),
  snapshot_file: filePath.optional(),
});

const redisStore = z.strictObject({
  kind: z.literal("redis"),
  url: redisUrl,
  // Braces are allowed on purpose: a "{hash tag}" keeps every key in one Redis Cluster slot.
  key_prefix: z
    .string()
    .regex(/^\S+$/, "must be non-empty and contain no whitespace")
    .default(CONFIG_DEFAULTS.store.key_prefix),
  command_timeout_ms: millis.default(CONFIG_DEFAULTS.store.command_timeout_ms),
});

// A store section without `kind` means the default kind, so `store: { snapshot_file: ... }` works.
const store = z
  .preprocess(
    (value) => (isRecord(value) && value.kind === undefined ? { ...value, kind: CONFIG_DEFAULTS.store.kind } : value),
    z.discriminatedUnion("kind", [embeddedStore, redisStore]),
  )
  .prefault({});

const D = CONFIG_DEFAULTS;

export const configDocumentSchema = z.strictObject({
  trust_domain: trustDomain,
  log_level: z.enum(LOG_LEVELS).default(D.log_level),
  file_poll_interval_ms: millis.default(D.file_poll_interval_ms),
  local_bundle: z.strictObject({
    file: filePath,
    format: z.enum(["spiffe", "pem", "auto"]).default(D.local_bundle.format),
    refresh_hint_seconds: z.number().int().positive().default(D.local_bundle.refresh_hint_seconds),
    max_bytes: z.number().int().positive().max(MAX_LOCAL_BUNDLE_BYTES).default(D.local_bundle.max_bytes),
  }),
  endpoint: z
    .strictObject({
      path: endpointPath,
      cache_max_age_seconds: z.number().int().min(0).optional(),
      timeouts: z
        .strictObject({
          headers_ms: millis.default(D.endpoint.timeouts.headers_ms),
          request_ms: millis.default(D.endpoint.timeouts.request_ms),
          keep_alive_ms: millis.default(D.endpoint.timeouts.keep_alive_ms),
        })
        .prefault({}),
      https_web: z
        .strictObject({
          listen: listenSchema(D.endpoint.https_web.listen),
          cert_file: filePath,
          key_file: filePath,
        })
        .optional(),
      https_spiffe: z
        .strictObject({
          listen: listenSchema(D.endpoint.https_spiffe.listen),
          endpoint_spiffe_id: endpointSpiffeId,
          svid_file: filePath,
          svid_key_file: filePath,
        })
        .optional(),
    })
    .prefault({}),
  internal: z.strictObject({ listen: listenSchema(D.internal.listen) }).prefault({}),
  store,
});

export type ConfigDocument = z.output<typeof configDocumentSchema>;

/** How an environment override's text becomes a value: verbatim for strings, as a YAML scalar otherwise. */
export type ConfigFieldKind = "string" | "number";

/** Every settable leaf of the document by dotted path, derived from the schema so the two cannot drift apart. */
export const CONFIG_FIELDS: ReadonlyMap<string, ConfigFieldKind> = collectFields(configDocumentSchema);

export type DocumentCheck = { ok: true; document: ConfigDocument } | { ok: false; issues: ConfigIssue[] };

/** Validates a plain document (YAML already parsed, environment already applied) and fills in every default. */
export function checkConfigDocument(input: unknown): DocumentCheck {
  const result = configDocumentSchema.safeParse(input, { error: issueMessage });
  const issues = [...(result.success ? [] : result.error.issues.flatMap(toConfigIssues)), ...crossFieldIssues(input)];
  if (result.success && issues.length === 0) return { ok: true, document: result.data };
  return { ok: false, issues };
}

/** `baseDir` anchors relative file paths: the directory of the config file. */
export function toBundlegateConfig(doc: ConfigDocument, options: { baseDir: string }): BundlegateConfig {
  const file = (p: string): string => path.resolve(options.baseDir, p);
  const { endpoint, local_bundle: bundle } = doc;
  const config: BundlegateConfig = {
    trustDomain: doc.trust_domain,
    logLevel: doc.log_level,
    localBundle: {
      file: file(bundle.file),
      format: bundle.format,
      refreshHintSeconds: bundle.refresh_hint_seconds,
      maxBytes: bundle.max_bytes,
    },
    endpoint: {
      path: endpoint.path,
      ...(endpoint.cache_max_age_seconds === undefined ? {} : { cacheMaxAgeSeconds: endpoint.cache_max_age_seconds }),
      timeouts: {
        headersMs: endpoint.timeouts.headers_ms,
        requestMs: endpoint.timeouts.request_ms,
        keepAliveMs: endpoint.timeouts.keep_alive_ms,
      },
      ...(endpoint.https_web === undefined
        ? {}
        : {
            httpsWeb: {
              listen: listenOf(endpoint.https_web.listen),
              certFile: file(endpoint.https_web.cert_file),
              keyFile: file(endpoint.https_web.key_file),
            },
          }),
      ...(endpoint.https_spiffe === undefined
        ? {}
        : {
            httpsSpiffe: {
              listen: listenOf(endpoint.https_spiffe.listen),
              endpointSpiffeId: endpoint.https_spiffe.endpoint_spiffe_id,
              svidFile: file(endpoint.https_spiffe.svid_file),
              svidKeyFile: file(endpoint.https_spiffe.svid_key_file),
            },
          }),
    },
    internal: { listen: listenOf(doc.internal.listen) },
    store: storeOf(doc.store, file),
    filePollIntervalMs: doc.file_poll_interval_ms,
  };
  return deepFreeze(config);
}

function listenOf(listen: { host: string; port: number }): ListenConfig {
  return { host: listen.host, port: listen.port };
}

function storeOf(store: ConfigDocument["store"], file: (p: string) => string): StoreConfig {
  if (store.kind === "redis") {
    return { kind: "redis", url: store.url, keyPrefix: store.key_prefix, commandTimeoutMs: store.command_timeout_ms };
  }
  return {
    kind: "embedded",
    ...(store.snapshot_file === undefined ? {} : { snapshotFile: file(store.snapshot_file) }),
  };
}

/**
 * Rules spanning several fields. They read the raw input rather than zod's output so that they still run
 * when some unrelated field is invalid (zod skips refinements after certain failures); a rule whose inputs
 * are themselves invalid is skipped, since those fields already have their own issue.
 */
function crossFieldIssues(input: unknown): ConfigIssue[] {
  if (!isRecord(input)) return [];
  const issues: ConfigIssue[] = [];
  const endpoint = input.endpoint === undefined ? {} : asRecord(input.endpoint);
  const web = asRecord(endpoint?.https_web);
  const spiffe = asRecord(endpoint?.https_spiffe);

  if (endpoint && endpoint.https_web === undefined && endpoint.https_spiffe === undefined) {
    issues.push({
      path: "endpoint",
      message: "enable at least one profile: endpoint.https_web or endpoint.https_spiffe",
    });
  }

  const td = input.trust_domain;
  const uri = spiffe?.endpoint_spiffe_id;
  if (typeof td === "string" && isTrustDomain(td) && typeof uri === "string" && isSpiffeId(uri)) {
    if (!isMemberOf(parseSpiffeId(uri), td)) {
      issues.push({ path: "endpoint.https_spiffe.endpoint_spiffe_id", message: `${uri} is not in trust_domain ${td}` });
    }
  }

  const seconds = z.number().int().min(0);
  const maxAge = validOr(seconds, endpoint?.cache_max_age_seconds);
  const hint = validOr(
    seconds,
    asRecord(input.local_bundle)?.refresh_hint_seconds,
    CONFIG_DEFAULTS.local_bundle.refresh_hint_seconds,
  );
  if (maxAge !== undefined && hint !== undefined && maxAge > hint) {
    // A cache holding the bundle past the refresh hint would make relying parties refresh into stale bytes.
    issues.push({
      path: "endpoint.cache_max_age_seconds",
      message: `must not exceed local_bundle.refresh_hint_seconds (${hint})`,
    });
  }

  const timeouts = endpoint?.timeouts === undefined ? {} : asRecord(endpoint.timeouts);
  const headers = validOr(millis, timeouts?.headers_ms, CONFIG_DEFAULTS.endpoint.timeouts.headers_ms);
  const request = validOr(millis, timeouts?.request_ms, CONFIG_DEFAULTS.endpoint.timeouts.request_ms);
  if (headers !== undefined && request !== undefined && headers > request) {
    // node:http refuses to start a server whose headers timeout exceeds its request timeout.
    issues.push({
      path: "endpoint.timeouts.headers_ms",
      message: `must not exceed endpoint.timeouts.request_ms (${request})`,
    });
  }

  const internal = input.internal === undefined ? {} : asRecord(input.internal);
  const listeners: [string, unknown, { readonly host: string; readonly port: number }][] = [];
  if (web) listeners.push(["endpoint.https_web", web.listen, CONFIG_DEFAULTS.endpoint.https_web.listen]);
  if (spiffe) listeners.push(["endpoint.https_spiffe", spiffe.listen, CONFIG_DEFAULTS.endpoint.https_spiffe.listen]);
  if (internal) listeners.push(["internal", internal.listen, CONFIG_DEFAULTS.internal.listen]);
  const taken: { name: string; host: string; port: number }[] = [];
  for (const [name, value, defaults] of listeners) {
    const listen = value === undefined ? {} : asRecord(value);
    const h = validOr(host, listen?.host, defaults.host);
    const p = validOr(port, listen?.port, defaults.port);
    // Port 0 asks the OS for a free port, so two of them never collide.
    if (h === undefined || p === undefined || p === 0) continue;
    const clash = taken.find(
      (t) => t.port === p && (t.host === h || WILDCARD_HOSTS.has(t.host) || WILDCARD_HOSTS.has(h)),
    );
    if (clash) {
      issues.push({
        path: `${name}.listen.port`,
        message: `${h}:${p} collides with ${clash.name}.listen (${clash.host}:${clash.port})`,
      });
    }
    taken.push({ name, host: h, port: p });
  }
  return issues;
}

/** The value if the schema accepts it (`fallback` standing in for a missing one), else undefined. */
function validOr<T>(schema: z.ZodType<T>, value: unknown, fallback?: T): T | undefined {
  const result = schema.safeParse(value === undefined ? fallback : value);
  return result.success ? result.data : undefined;
}

function addErrorIssue(ctx: z.RefinementCtx, error: unknown): void {
  if (!isBundlegateError(error)) throw error;
  ctx.addIssue({ code: "custom", message: `${error.code}: ${error.message}`, params: { code: error.code } });
}

/** Messages in the operator's terms (YAML, not JavaScript types); checks with their own message keep it. */
function issueMessage(issue: z.core.$ZodRawIssue): string | undefined {
  switch (issue.code) {
    case "invalid_type":
      if (issue.input === undefined) return "required";
      if (issue.expected === "object") return "must be a mapping";
      if (issue.expected === "int") return "must be a whole number";
      return `must be a ${issue.expected}`;
    case "too_small":
      return issue.inclusive ? `must be at least ${issue.minimum}` : `must be greater than ${issue.minimum}`;
    case "too_big":
      return issue.inclusive ? `must be at most ${issue.maximum}` : `must be less than ${issue.maximum}`;
    case "invalid_value":
      return `must be one of: ${issue.values.map(String).join(", ")}`;
    default:
      return undefined;
  }
}

function toConfigIssues(issue: z.core.$ZodIssue): ConfigIssue[] {
  const at = issue.path.map(String);
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => ({ path: [...at, key].join("."), message: unknownFieldMessage(at, key) }));
  }
  if (issue.code === "invalid_union" && issue.discriminator !== undefined && "options" in issue) {
    return [{ path: at.join("."), message: `must be one of: ${(issue.options ?? []).join(", ")}` }];
  }
  const code = issue.code === "custom" ? (issue.params as { code?: unknown } | undefined)?.code : undefined;
  return [{ path: at.join("."), message: issue.message, ...(typeof code === "string" ? { code } : {}) }];
}

function unknownFieldMessage(parent: readonly string[], key: string): string {
  const dotted = [...parent, key].join(".");
  if (CONFIG_FIELDS.has(dotted)) return "unknown field for this store.kind";
  const prefix = parent.length === 0 ? "" : `${parent.join(".")}.`;
  const siblings = new Set<string>();
  for (const field of CONFIG_FIELDS.keys()) {
    if (field.startsWith(prefix)) siblings.add(field.slice(prefix.length).split(".")[0] ?? "");
  }
  const near = [...siblings].find((s) => editDistance(s, key) <= 2);
  return near === undefined ? "unknown field" : `unknown field (did you mean ${near}?)`;
}

/** The settable field whose dotted path is within two edits of `dotted`, if any: the likely intended one. */
export function nearestField(dotted: string): string | undefined {
  let best: { field: string; distance: number } | undefined;
  for (const field of CONFIG_FIELDS.keys()) {
    const distance = editDistance(field, dotted);
    if (distance <= 2 && (best === undefined || distance < best.distance)) best = { field, distance };
  }
  return best?.field;
}

/** Levenshtein distance; only ever run on short key names. */
function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const substitution = (previous[j - 1] ?? 0) + (a[i - 1] === b[j - 1] ? 0 : 1);
      current.push(Math.min((previous[j] ?? 0) + 1, (current[j - 1] ?? 0) + 1, substitution));
    }
    previous = current;
  }
  return previous[b.length] ?? 0;
}

function collectFields(schema: z.core.$ZodType, at: readonly string[] = [], out = new Map<string, ConfigFieldKind>()) {
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault) {
    collectFields(schema.unwrap() as z.core.$ZodType, at, out);
  } else if (schema instanceof z.ZodPipe) {
    // z.preprocess is a pipe whose first half is a bare transform; the shape lives in the second half.
    collectFields((schema.in instanceof z.ZodTransform ? schema.out : schema.in) as z.core.$ZodType, at, out);
  } else if (schema instanceof z.ZodObject) {
    for (const [key, child] of Object.entries(schema.shape)) collectFields(child as z.core.$ZodType, [...at, key], out);
  } else if (schema instanceof z.ZodUnion) {
    for (const option of schema.options) collectFields(option as z.core.$ZodType, at, out);
  } else if (schema instanceof z.ZodString || schema instanceof z.ZodEnum || schema instanceof z.ZodLiteral) {
    out.set(at.join("."), "string");
  } else if (schema instanceof z.ZodNumber) {
    out.set(at.join("."), "number");
  } else {
    throw new Error(`config schema: no environment mapping for ${schema._zod.def.type} at ${at.join(".")}`);
  }
  return out;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

function asRecord(value: unknown): Record<string, unknown> | undefined {
  return isRecord(value) ? value : undefined;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === "object" && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}
