/**
 * The config document as written in YAML (snake_case), every default, the rules that span fields, and the
 * mapping onto `BundlegateConfig` (camelCase). Pure: no file or environment access here, so the same rules
 * apply whatever the document was assembled from (file, environment overrides, a test's literal).
 *
 * Objects are strict: a misspelt key is an error naming it, never a silently ignored setting. Validation
 * collects every issue rather than stopping at the first, so one run of `validate-config` lists them all.
 * Issue paths are written as in the YAML: "endpoint.https_web.cert_file", "relationships[2].endpoint_url".
 *
 * Files: most named files (certificates, keys, the local bundle) are read by the components that use them,
 * at start. A relationship's bootstrap bundle and CA file are trust decisions made in the config, so their
 * content is checked with the config: the loader reads the files `referencedFiles` lists and passes the
 * content in, and a bad one is an issue at the field that names it.
 */
import { BlockList, isIP } from "node:net";
import path from "node:path";
import { validate as isValidCron, validateDetailed as validateCronDetailed } from "node-cron";
import { z } from "zod";
import { isBundlegateError } from "../errors.js";
import { parseAddress } from "../federation/fetcher/ssrf-guard.js";
import type { Relationship } from "../federation/relationship.js";
import { nextCronFire } from "../federation/schedule.js";
import type { LogLevel } from "../logging.js";
import { resolvePolicy } from "../policy/merge.js";
import type { TrustPolicy } from "../policy/types.js";
import { createTrustBundle, type TrustBundle } from "../spiffe/bundle.js";
import {
  isMemberOf,
  isSpiffeId,
  isTrustDomain,
  parseSpiffeId,
  parseTrustDomain,
  type TrustDomain,
} from "../spiffe/id.js";
import { parsePemBundle, serializePem } from "../spiffe/pem.js";
import { parseBundle } from "../spiffe/read.js";
import type { ConfigIssue } from "./errors.js";
import {
  ADMIN_SCOPES,
  type AdminConfig,
  type BundlegateConfig,
  type DistributionConfig,
  type FederationConfig,
  type InternalConfig,
  type ListenConfig,
  type MetricsConfig,
  type RelayConfig,
  type StoreConfig,
} from "./types.js";

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
  // 9464: the port commonly used by Prometheus exporters of OpenTelemetry SDKs; loopback unless opened up.
  metrics: { listen: { host: "127.0.0.1", port: 9464 } },
  // key_prefix and command_timeout_ms apply to kind "redis" only.
  store: { kind: "embedded", key_prefix: "bundlegate", command_timeout_ms: 2000 },
  federation: {
    max_bundle_bytes: 65_536,
    max_bundle_keys: 1000,
    connect_timeout_ms: 5000,
    headers_timeout_ms: 10_000,
    total_timeout_ms: 30_000,
    max_redirects: 3,
    lease_ms: 15_000,
    history_limit: 20,
    min_refresh_hint_seconds: 60,
    max_refresh_hint_seconds: 86_400,
    default_refresh_hint_seconds: 300,
    jitter_ratio: 0.1,
    backoff_initial_seconds: 10,
  },
  relationship: { state: "active" },
  // The relay is enabled by its section; only its listener has defaults.
  relay: { listen: { host: "0.0.0.0", port: 8446 } },
  // The distribution API is enabled by its section; these fill in what the section leaves out.
  distribution: { audience: ["bundlegate"], tokens: [], allow: {}, client_certificates: false },
  // The admin API is enabled by its section.
  admin: {
    tokens: [],
    jwt: { scope_claim: "scope" },
    rate_limit: { window_seconds: 60, max_requests: 300 },
    invitations: { ttl_seconds: 3600, max_ttl_seconds: 86_400 },
    expiry_check_interval_ms: 5000,
    audit_limit: 100_000,
  },
} as const);

/** Node turns a longer setTimeout delay into 1 ms, so a huge timeout would silently become an immediate one. */
export const MAX_TIMER_MS = 2_147_483_647;
/** Far above any real bundle; only stops a typo (an extra few zeros) from disabling the size cap. */
export const MAX_LOCAL_BUNDLE_BYTES = 16 * 1024 * 1024;
/** The same kind of typo guard for the key-count cap. */
export const MAX_BUNDLE_KEYS_LIMIT = 100_000;
/** DESIGN.md section 6 allows 3 redirects by default; more than 10 is a loop, not a deployment. */
export const MAX_REDIRECTS = 10;
export const MAX_HISTORY_LIMIT = 1000;
export const MAX_JITTER_RATIO = 0.5;
export const MAX_BACKOFF_INITIAL_SECONDS = 3600;
/**
 * 30 days. With the interval a quarter of the hint and at most +50 % jitter, every scheduling delay stays
 * below MAX_TIMER_MS.
 */
export const MAX_REFRESH_HINT_SECONDS = 30 * 86_400;
/** A fixed interval below this polls a partner faster than any refresh hint could ask for. */
export const MIN_REFRESH_INTERVAL_SECONDS = 10;
/** 7 days, so the jittered delay stays below MAX_TIMER_MS. */
export const MAX_REFRESH_INTERVAL_SECONDS = 7 * 86_400;
/** CA files may be a whole system trust store (a few hundred kilobytes). */
export const MAX_CA_FILE_BYTES = 4 * 1024 * 1024;
export const MAX_CA_FILE_CERTIFICATES = 10_000;
/** Kubernetes label limits: name and value at most 63 characters, prefix a DNS subdomain of at most 253. */
export const MAX_LABEL_NAME_LENGTH = 63;
export const MAX_LABEL_PREFIX_LENGTH = 253;

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
/** In distribution.allow (every trust domain, every authenticated caller) and relay.trust_domains (every relationship). */
const WILDCARD = "*";
/** A static token without a spiffe_id authenticates as `token:<name>` (src/api/auth/consumer-auth.ts). */
const TOKEN_CALLER_PREFIX = "token:";

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

const refreshHintSeconds = z
  .number()
  .int()
  .positive()
  .max(MAX_REFRESH_HINT_SECONDS, `must be at most ${MAX_REFRESH_HINT_SECONDS} (30 days)`);

const bundleBytesLimit = z.number().int().positive().max(MAX_LOCAL_BUNDLE_BYTES);
const bundleKeysLimit = z.number().int().positive().max(MAX_BUNDLE_KEYS_LIMIT);

const federation = z
  .strictObject({
    max_bundle_bytes: bundleBytesLimit.default(D.federation.max_bundle_bytes),
    max_bundle_keys: bundleKeysLimit.default(D.federation.max_bundle_keys),
    connect_timeout_ms: millis.default(D.federation.connect_timeout_ms),
    headers_timeout_ms: millis.default(D.federation.headers_timeout_ms),
    total_timeout_ms: millis.default(D.federation.total_timeout_ms),
    max_redirects: z.number().int().min(0).max(MAX_REDIRECTS).default(D.federation.max_redirects),
    lease_ms: millis.default(D.federation.lease_ms),
    history_limit: z.number().int().min(1).max(MAX_HISTORY_LIMIT).default(D.federation.history_limit),
    min_refresh_hint_seconds: refreshHintSeconds.default(D.federation.min_refresh_hint_seconds),
    max_refresh_hint_seconds: refreshHintSeconds.default(D.federation.max_refresh_hint_seconds),
    default_refresh_hint_seconds: refreshHintSeconds.default(D.federation.default_refresh_hint_seconds),
    jitter_ratio: z.number().min(0).max(MAX_JITTER_RATIO).default(D.federation.jitter_ratio),
    backoff_initial_seconds: z
      .number()
      .int()
      .positive()
      .max(MAX_BACKOFF_INITIAL_SECONDS)
      .default(D.federation.backoff_initial_seconds),
  })
  .prefault({});

function refinedString(problem: (value: string) => string | undefined) {
  return z.string().superRefine((value, ctx) => {
    const message = problem(value);
    if (message !== undefined) ctx.addIssue({ code: "custom", message });
  });
}

const nonEmptyText = z.string().trim().min(1, "must not be empty");

const isoDate = z.string().transform((raw, ctx) => {
  const date = parseIsoDate(raw);
  if (date === undefined) {
    ctx.addIssue({
      code: "custom",
      message: "must be a date, YYYY-MM-DD, or a time, YYYY-MM-DDTHH:MM:SSZ (or +HH:MM)",
    });
    return z.NEVER;
  }
  return date;
});

// The Kubernetes rules for keys and values are in relationshipIssues: zod skips a record's refinement once
// one value has the wrong type, and every bad label should be reported.
const labels = z.record(z.string(), z.string()).default({});

const suspiciousChangeAction = z.enum(["quarantine", "reject", "accept"]);

const relationship = z.strictObject({
  trust_domain: trustDomain,
  endpoint_url: refinedString(endpointUrlProblem),
  profile: z.enum(["https_web", "https_spiffe"]),
  endpoint_spiffe_id: endpointSpiffeId.optional(),
  bootstrap_bundle_file: filePath.optional(),
  ca_file: filePath.optional(),
  proxy: refinedString((value) => (value === "direct" ? undefined : proxyUrlProblem(value))).optional(),
  owner: nonEmptyText,
  contact: nonEmptyText.optional(),
  description: z.string().optional(),
  labels,
  review_by: isoDate.optional(),
  expires_at: isoDate.optional(),
  refresh: z
    .strictObject({
      interval_seconds: z.number().int().min(MIN_REFRESH_INTERVAL_SECONDS).max(MAX_REFRESH_INTERVAL_SECONDS).optional(),
      cron: refinedString(cronProblem).optional(),
    })
    .optional(),
  max_staleness_seconds: z.number().int().positive().optional(),
  allowed_cidrs: z.array(refinedString(cidrProblem)).default([]),
  policy: z
    .strictObject({
      full_replacement: suspiciousChangeAction.optional(),
      shared_with_own_domain: suspiciousChangeAction.optional(),
      shared_with_other_partner: suspiciousChangeAction.optional(),
      sequence_reused: suspiciousChangeAction.optional(),
      sequence_rollback: z.enum(["reject", "accept"]).optional(),
    })
    .prefault({}),
  // "pending" belongs to API onboarding (awaiting approval); a config relationship is approved by being written.
  state: z.enum(["active", "suspended"]).default(D.relationship.state),
});

// Never echoes the value: a token pasted here by mistake must not reach a log.
const tokenSha256 = z
  .string()
  .regex(
    /^[0-9a-f]{64}$/,
    'must be the SHA-256 of the token as 64 lowercase hex digits (printf %s "$TOKEN" | sha256sum), never the token itself',
  );

const distributionToken = z.strictObject({
  // Part of the caller ID `token:<name>` and of log lines, so plain characters only.
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be letters, digits, ".", "_" or "-", starting with a letter or digit'),
  sha256: tokenSha256,
  // A caller's ID names a workload, so it has a path, like an SVID's; its trust domain is checked in distributionIssues.
  spiffe_id: endpointSpiffeId.optional(),
});

const distribution = z.strictObject({
  audience: z
    .array(z.string().min(1, "must not be empty"))
    .min(1, "must name at least one audience")
    .default(() => [...D.distribution.audience]),
  tokens: z.array(distributionToken).default(() => [...D.distribution.tokens]),
  // Keys and values are checked in distributionIssues, against trust_domain, relationships and tokens.
  allow: z.record(z.string(), z.array(z.string())).default(() => ({ ...D.distribution.allow })),
  client_certificates: z.boolean().default(D.distribution.client_certificates),
});

const relay = z.strictObject({
  listen: listenSchema(D.relay.listen),
  svid_file: filePath,
  svid_key_file: filePath,
  endpoint_spiffe_id: endpointSpiffeId,
  // ["*"] or configured relationships' trust domains; checked in relayIssues.
  trust_domains: z.array(z.string()).min(1, 'must name at least one relationship\'s trust domain, or be ["*"]'),
});

const adminToken = z.strictObject({
  name: z
    .string()
    .regex(/^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'must be letters, digits, ".", "_" or "-", starting with a letter or digit'),
  sha256: tokenSha256,
  scopes: z.array(z.enum(ADMIN_SCOPES)).min(1, "must grant at least one scope"),
});

const adminJwt = z
  .strictObject({
    issuer: z.string().min(1, "must not be empty"),
    audience: z.union([z.string().min(1), z.array(z.string().min(1)).min(1)]),
    jwks_file: filePath.optional(),
    jwks_url: refinedString(jwksUrlProblem).optional(),
    scope_claim: z.string().min(1).default(D.admin.jwt.scope_claim),
  })
  .superRefine((jwt, ctx) => {
    if ((jwt.jwks_file === undefined) === (jwt.jwks_url === undefined)) {
      ctx.addIssue({ code: "custom", path: ["jwks_file"], message: "set exactly one of jwks_file and jwks_url" });
    }
  });

const admin = z.strictObject({
  tokens: z.array(adminToken).default(() => []),
  jwt: adminJwt.optional(),
  rate_limit: z
    .strictObject({
      window_seconds: z.number().int().positive().max(86_400).default(D.admin.rate_limit.window_seconds),
      max_requests: z.number().int().positive().default(D.admin.rate_limit.max_requests),
    })
    .prefault({}),
  invitations: z
    .strictObject({
      ttl_seconds: z.number().int().min(60).max(604_800).default(D.admin.invitations.ttl_seconds),
      max_ttl_seconds: z.number().int().min(60).max(604_800).default(D.admin.invitations.max_ttl_seconds),
      endpoint_url: refinedString(endpointUrlProblem).optional(),
    })
    .prefault({}),
  expiry_check_interval_ms: millis.default(D.admin.expiry_check_interval_ms),
  audit_limit: z.number().int().min(100).max(10_000_000).default(D.admin.audit_limit),
});

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
  internal: z
    .strictObject({
      listen: listenSchema(D.internal.listen),
      tls: z.strictObject({ cert_file: filePath, key_file: filePath, client_ca_file: filePath.optional() }).optional(),
    })
    .prefault({}),
  metrics: z.strictObject({ listen: listenSchema(D.metrics.listen) }).prefault({}),
  store,
  federation,
  relationships: z.array(relationship).default([]),
  distribution: distribution.optional(),
  relay: relay.optional(),
  admin: admin.optional(),
});

export type ConfigDocument = z.output<typeof configDocumentSchema>;
type RelationshipDocument = ConfigDocument["relationships"][number];

/** How an environment override's text becomes a value: verbatim for strings, as a YAML scalar otherwise. */
export type ConfigFieldKind = "string" | "number" | "boolean";

/** Every key path of the document, list entries written "[]" (e.g. "relationships[].owner"): for suggestions. */
const DOCUMENT_KEYS: ReadonlyMap<string, ConfigFieldKind | "other"> = collectFields(configDocumentSchema);

/**
 * Every settable leaf of the document by dotted path, derived from the schema so the two cannot drift apart.
 * List entries (relationships) are not in it: an environment variable cannot name one entry of a list.
 */
export const CONFIG_FIELDS: ReadonlyMap<string, ConfigFieldKind> = new Map(
  [...DOCUMENT_KEYS].filter(
    (entry): entry is [string, ConfigFieldKind] => !entry[0].includes("[]") && entry[1] !== "other",
  ),
);

/**
 * The lists and mappings of the document by dotted path ("relationships", "distribution.tokens",
 * "distribution.allow", ...): written in the config file only, since a variable holds a single value.
 */
export const FILE_ONLY_FIELDS: readonly string[] = [
  ...new Set(
    [...DOCUMENT_KEYS]
      .map(([field, kind]) =>
        field.includes("[]") ? field.slice(0, field.indexOf("[]")) : kind === "other" ? field : "",
      )
      .filter((field) => field !== ""),
  ),
];

/** The environment, as far as the config reads it beyond BUNDLEGATE_ overrides: the proxy variables. */
export type ProxyEnv = Readonly<Record<string, string | undefined>>;

/** What reading a referenced file gave: its bytes, or why it could not be read (e.g. "ENOENT"). */
export type FileRead = { readonly content: Uint8Array | string } | { readonly error: string };

/** A file whose content is validated with the config (see the header comment). */
export interface ReferencedFile {
  /** The issue path of the field naming it, e.g. "relationships[0].bootstrap_bundle_file". */
  readonly path: string;
  /** As written: relative paths are relative to the config file's directory. */
  readonly file: string;
  readonly kind: "bootstrap_bundle" | "ca_file";
  /** The relationship's index. */
  readonly index: number;
}

export interface CheckContext {
  /** The content of each referenced file, by its issue path (ReferencedFile.path). */
  readonly files?: ReadonlyMap<string, FileRead>;
  /** HTTPS_PROXY, https_proxy, NO_PROXY and no_proxy are read from it. */
  readonly env?: ProxyEnv;
}

/** What validation derived from outside the document itself: parsed files and the proxy environment. */
export interface ResolvedInputs {
  /** By relationship index; only self-serving https_spiffe relationships have one. */
  readonly bootstrapBundles: ReadonlyMap<number, TrustBundle>;
  /** By relationship index: the CA certificates of an https_web relationship's ca_file, re-encoded as PEM. */
  readonly caPems: ReadonlyMap<number, string>;
  readonly httpsProxy?: string;
  readonly noProxy?: string;
}

export type DocumentCheck =
  | { ok: true; document: ConfigDocument; resolved: ResolvedInputs }
  | { ok: false; issues: ConfigIssue[] };

/**
 * Validates a plain document (YAML already parsed, environment already applied) and fills in every default.
 * Files the document references must be in `context.files` (an issue otherwise).
 */
export function checkConfigDocument(input: unknown, context: CheckContext = {}): DocumentCheck {
  const result = configDocumentSchema.safeParse(input, { error: issueMessage });
  const proxy = proxyEnvironment(context.env ?? {});
  const files = fileIssues(input, context.files ?? new Map());
  const issues = [
    ...(result.success ? [] : result.error.issues.flatMap(toConfigIssues)),
    ...crossFieldIssues(input),
    ...relationshipIssues(input),
    ...distributionIssues(input),
    ...relayIssues(input),
    ...adminIssues(input),
    ...files.issues,
    ...proxy.issues,
  ];
  if (!result.success || issues.length > 0) return { ok: false, issues };
  const resolved: ResolvedInputs = {
    bootstrapBundles: files.bootstrapBundles,
    caPems: files.caPems,
    ...(proxy.httpsProxy === undefined ? {} : { httpsProxy: proxy.httpsProxy }),
    ...(proxy.noProxy === undefined ? {} : { noProxy: proxy.noProxy }),
  };
  return { ok: true, document: result.data, resolved };
}

/**
 * The files the loader must read before `checkConfigDocument`. Read from the raw document, so a file is
 * checked even while some other field is invalid; a field not allowed for its profile is not read.
 */
export function referencedFiles(input: unknown): ReferencedFile[] {
  const refs: ReferencedFile[] = [];
  const list = isRecord(input) && Array.isArray(input.relationships) ? input.relationships : [];
  list.forEach((entry: unknown, index) => {
    const rel = asRecord(entry);
    const add = (key: "bootstrap_bundle_file" | "ca_file", kind: ReferencedFile["kind"]): void => {
      const file = rel?.[key];
      if (typeof file === "string" && file !== "") {
        refs.push({ path: `relationships[${index}].${key}`, file, kind, index });
      }
    };
    if (rel?.profile === "https_spiffe") add("bootstrap_bundle_file", "bootstrap_bundle");
    if (rel?.profile === "https_web") add("ca_file", "ca_file");
  });
  return refs;
}

/** `baseDir` anchors relative file paths: the directory of the config file. */
export function toBundlegateConfig(
  doc: ConfigDocument,
  options: { baseDir: string; resolved?: ResolvedInputs },
): BundlegateConfig {
  const file = (p: string): string => path.resolve(options.baseDir, p);
  const resolved = options.resolved ?? { bootstrapBundles: new Map(), caPems: new Map() };
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
    internal: internalOf(doc.internal, file),
    metrics: metricsOf(doc.metrics),
    store: storeOf(doc.store, file),
    filePollIntervalMs: doc.file_poll_interval_ms,
    federation: federationOf(doc.federation, resolved),
    relationships: doc.relationships.map((rel, index) => relationshipOf(rel, index, resolved, file)),
    ...(doc.distribution === undefined ? {} : { distribution: distributionOf(doc.distribution) }),
    ...(doc.relay === undefined ? {} : { relay: relayOf(doc.relay, file) }),
    ...(doc.admin === undefined ? {} : { admin: adminOf(doc.admin, file) }),
  };
  return deepFreeze(config);
}

function listenOf(listen: { host: string; port: number }): ListenConfig {
  return { host: listen.host, port: listen.port };
}

function metricsOf(metrics: ConfigDocument["metrics"]): MetricsConfig {
  return { listen: listenOf(metrics.listen) };
}

function internalOf(internal: ConfigDocument["internal"], file: (p: string) => string): InternalConfig {
  const { tls } = internal;
  return {
    listen: listenOf(internal.listen),
    ...(tls === undefined
      ? {}
      : {
          tls: {
            certFile: file(tls.cert_file),
            keyFile: file(tls.key_file),
            ...(tls.client_ca_file === undefined ? {} : { clientCaFile: file(tls.client_ca_file) }),
          },
        }),
  };
}

function adminOf(a: NonNullable<ConfigDocument["admin"]>, file: (p: string) => string): AdminConfig {
  const { jwt } = a;
  return {
    tokens: a.tokens.map((token) => ({ name: token.name, sha256: token.sha256, scopes: [...token.scopes] })),
    ...(jwt === undefined
      ? {}
      : {
          jwt: {
            issuer: jwt.issuer,
            audience: typeof jwt.audience === "string" ? [jwt.audience] : [...jwt.audience],
            ...(jwt.jwks_file === undefined ? {} : { jwksFile: file(jwt.jwks_file) }),
            ...(jwt.jwks_url === undefined ? {} : { jwksUrl: jwt.jwks_url }),
            scopeClaim: jwt.scope_claim,
          },
        }),
    rateLimit: { windowSeconds: a.rate_limit.window_seconds, maxRequests: a.rate_limit.max_requests },
    invitations: {
      ttlSeconds: a.invitations.ttl_seconds,
      maxTtlSeconds: a.invitations.max_ttl_seconds,
      ...(a.invitations.endpoint_url === undefined ? {} : { endpointUrl: a.invitations.endpoint_url }),
    },
    expiryCheckIntervalMs: a.expiry_check_interval_ms,
    auditLimit: a.audit_limit,
  };
}

/** The admin section against itself: token names and digests unique, the invitation lifetime within its cap. */
function adminIssues(input: unknown): ConfigIssue[] {
  const section = isRecord(input) ? asRecord(input.admin) : undefined;
  if (!section) return [];
  const issues: ConfigIssue[] = [];
  const names = new Map<unknown, number>();
  const digests = new Map<unknown, number>();
  (Array.isArray(section.tokens) ? section.tokens : []).forEach((entry: unknown, index) => {
    const token = asRecord(entry);
    for (const [key, seen] of [
      ["name", names],
      ["sha256", digests],
    ] as const) {
      const value = token?.[key];
      if (typeof value !== "string") continue;
      const first = seen.get(value);
      if (first === undefined) seen.set(value, index);
      else {
        issues.push({
          path: `admin.tokens[${index}].${key}`,
          message: `duplicate: admin.tokens[${first}] has the same ${key}`,
        });
      }
    }
  });
  const invitations = asRecord(section.invitations);
  const ttl = invitations?.ttl_seconds;
  const max = invitations?.max_ttl_seconds ?? CONFIG_DEFAULTS.admin.invitations.max_ttl_seconds;
  if (typeof ttl === "number" && typeof max === "number" && ttl > max) {
    issues.push({ path: "admin.invitations.ttl_seconds", message: `must not exceed max_ttl_seconds (${max})` });
  }
  return issues;
}

/** Why a JWKS URL is refused: https only, except plain http to this machine (a local identity provider, tests). */
export function jwksUrlProblem(raw: string): string | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "is not a URL";
  }
  if (url.username !== "" || url.password !== "") return "must not carry a user name or password";
  if (url.protocol === "https:") return undefined;
  const loopback = url.hostname === "localhost" || url.hostname === "127.0.0.1" || url.hostname === "[::1]";
  if (url.protocol === "http:" && loopback) return undefined;
  return "must be an https URL (plain http only to localhost)";
}

function distributionOf(d: NonNullable<ConfigDocument["distribution"]>): DistributionConfig {
  return {
    audience: [...d.audience],
    tokens: d.tokens.map((token) => ({
      name: token.name,
      sha256: token.sha256,
      ...(token.spiffe_id === undefined ? {} : { spiffeId: token.spiffe_id }),
    })),
    allow: Object.fromEntries(Object.entries(d.allow).map(([td, ids]) => [td, [...ids]])),
    clientCertificates: d.client_certificates,
  };
}

function relayOf(r: NonNullable<ConfigDocument["relay"]>, file: (p: string) => string): RelayConfig {
  return {
    listen: listenOf(r.listen),
    svidFile: file(r.svid_file),
    svidKeyFile: file(r.svid_key_file),
    endpointSpiffeId: r.endpoint_spiffe_id,
    // relayIssues allows "*" only on its own.
    trustDomains: r.trust_domains.includes(WILDCARD) ? "all" : [...r.trust_domains],
  };
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

function federationOf(f: ConfigDocument["federation"], resolved: ResolvedInputs): FederationConfig {
  return {
    maxBundleBytes: f.max_bundle_bytes,
    maxBundleKeys: f.max_bundle_keys,
    connectTimeoutMs: f.connect_timeout_ms,
    headersTimeoutMs: f.headers_timeout_ms,
    totalTimeoutMs: f.total_timeout_ms,
    maxRedirects: f.max_redirects,
    ...(resolved.httpsProxy === undefined ? {} : { httpsProxy: resolved.httpsProxy }),
    ...(resolved.noProxy === undefined ? {} : { noProxy: resolved.noProxy }),
    leaseMs: f.lease_ms,
    historyLimit: f.history_limit,
    minRefreshHintSeconds: f.min_refresh_hint_seconds,
    maxRefreshHintSeconds: f.max_refresh_hint_seconds,
    defaultRefreshHintSeconds: f.default_refresh_hint_seconds,
    jitterRatio: f.jitter_ratio,
    backoffInitialSeconds: f.backoff_initial_seconds,
  };
}

/** A relationship already known, as far as the cross-relationship rules need it. */
export interface KnownRelationship {
  readonly trust_domain: string;
  readonly profile: string;
  readonly endpoint_spiffe_id?: string;
}

export type RelationshipEntryCheck =
  | { readonly ok: true; readonly relationship: Relationship }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

/**
 * One relationship entry checked with exactly the config file's rules (schema, profile fields, labels, dates,
 * refresh, endpoint trust against `others`), for the admin API. Files are not read here: the caller passes
 * the bootstrap bundle and CA certificates it already parsed, and names them in the entry as
 * `bootstrap_bundle_file` / `ca_file` placeholders so the profile rules see them. Issue paths are relative
 * to the entry ("endpoint_url", "labels.team").
 */
export function checkRelationshipEntry(
  input: unknown,
  context: {
    readonly ownTrustDomain: string;
    readonly others: readonly KnownRelationship[];
    readonly bootstrapBundle?: TrustBundle;
    readonly caPem?: string;
  },
): RelationshipEntryCheck {
  const result = relationship.safeParse(input, { error: issueMessage });
  const index = context.others.length;
  const prefix = `relationships[${index}]`;
  const crossIssues = relationshipIssues({
    trust_domain: context.ownTrustDomain,
    relationships: [...context.others, input],
  })
    .filter((issue) => issue.path.startsWith(prefix))
    .map((issue) => ({ ...issue, path: issue.path.slice(prefix.length).replace(/^\./, "") }));
  const issues = [...(result.success ? [] : result.error.issues.flatMap(toConfigIssues)), ...crossIssues];
  if (!result.success || issues.length > 0) return { ok: false, issues };
  const resolved: ResolvedInputs = {
    bootstrapBundles: new Map(context.bootstrapBundle === undefined ? [] : [[index, context.bootstrapBundle]]),
    caPems: new Map(context.caPem === undefined ? [] : [[index, context.caPem]]),
  };
  return { ok: true, relationship: relationshipOf(result.data, index, resolved, (p) => p) };
}

function relationshipOf(
  rel: RelationshipDocument,
  index: number,
  resolved: ResolvedInputs,
  file: (p: string) => string,
): Relationship {
  return {
    trustDomain: rel.trust_domain,
    endpointUrl: rel.endpoint_url,
    profile: profileOf(rel, index, resolved, file),
    owner: rel.owner,
    ...(rel.contact === undefined ? {} : { contact: rel.contact }),
    ...(rel.description === undefined ? {} : { description: rel.description }),
    labels: { ...rel.labels },
    ...(rel.review_by === undefined ? {} : { reviewBy: rel.review_by }),
    ...(rel.expires_at === undefined ? {} : { expiresAt: rel.expires_at }),
    ...(rel.refresh === undefined ? {} : { refresh: refreshOf(rel.refresh) }),
    ...(rel.max_staleness_seconds === undefined ? {} : { maxStalenessSeconds: rel.max_staleness_seconds }),
    ...(rel.proxy === undefined ? {} : { proxy: rel.proxy }),
    allowedCidrs: [...rel.allowed_cidrs],
    policy: policyOf(rel.policy),
    state: rel.state,
    origin: "config",
  };
}

function profileOf(
  rel: RelationshipDocument,
  index: number,
  resolved: ResolvedInputs,
  file: (p: string) => string,
): Relationship["profile"] {
  if (rel.profile === "https_web") {
    if (rel.ca_file === undefined) return { kind: "https_web" };
    const caPem = resolved.caPems.get(index);
    if (caPem === undefined) {
      throw new Error(`relationships[${index}]: CA file not loaded; pass checkConfigDocument's resolved inputs`);
    }
    return { kind: "https_web", caFile: file(rel.ca_file), caPem };
  }
  // checkConfigDocument guarantees both; a document that skipped it must not become a half-built relationship.
  if (rel.endpoint_spiffe_id === undefined) throw new Error(`relationships[${index}]: no endpoint_spiffe_id`);
  const bootstrap = resolved.bootstrapBundles.get(index);
  if (rel.bootstrap_bundle_file !== undefined && bootstrap === undefined) {
    throw new Error(`relationships[${index}]: bootstrap bundle not loaded; pass checkConfigDocument's resolved inputs`);
  }
  return {
    kind: "https_spiffe",
    endpointSpiffeId: rel.endpoint_spiffe_id,
    // An endpoint ID in another trust domain is verified with that domain's bundle, never with a bootstrap
    // (validation refuses one there); the empty bundle keeps the type total and trusts nothing.
    bootstrapBundle: bootstrap ?? EMPTY_BUNDLE,
  };
}

const EMPTY_BUNDLE = createTrustBundle();

function refreshOf(refresh: NonNullable<RelationshipDocument["refresh"]>): NonNullable<Relationship["refresh"]> {
  if (refresh.interval_seconds !== undefined) return { kind: "interval", seconds: refresh.interval_seconds };
  if (refresh.cron !== undefined) return { kind: "cron", expression: refresh.cron };
  throw new Error("refresh with neither interval_seconds nor cron passed validation");
}

/** DEFAULT_TRUST_POLICY with the relationship's overrides; a rule left out keeps its default. */
function policyOf(policy: RelationshipDocument["policy"]): TrustPolicy {
  const overrides = Object.fromEntries(
    Object.entries({
      fullReplacement: policy.full_replacement,
      sharedWithOwnDomain: policy.shared_with_own_domain,
      sharedWithOtherPartner: policy.shared_with_other_partner,
      sequenceReused: policy.sequence_reused,
      sequenceRollback: policy.sequence_rollback,
    }).filter(([, value]) => value !== undefined),
  ) as Partial<TrustPolicy>;
  return resolvePolicy(overrides);
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
  const relaySection = asRecord(input.relay);
  const listeners: [string, unknown, { readonly host: string; readonly port: number }][] = [];
  if (web) listeners.push(["endpoint.https_web", web.listen, CONFIG_DEFAULTS.endpoint.https_web.listen]);
  if (spiffe) listeners.push(["endpoint.https_spiffe", spiffe.listen, CONFIG_DEFAULTS.endpoint.https_spiffe.listen]);
  if (internal) listeners.push(["internal", internal.listen, CONFIG_DEFAULTS.internal.listen]);
  const metricsSection = input.metrics === undefined ? {} : asRecord(input.metrics);
  if (metricsSection) listeners.push(["metrics", metricsSection.listen, CONFIG_DEFAULTS.metrics.listen]);
  if (relaySection) listeners.push(["relay", relaySection.listen, CONFIG_DEFAULTS.relay.listen]);
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

  const fed = input.federation === undefined ? {} : asRecord(input.federation);
  if (fed) {
    const F = CONFIG_DEFAULTS.federation;
    const total = validOr(millis, fed.total_timeout_ms, F.total_timeout_ms);
    for (const key of ["connect_timeout_ms", "headers_timeout_ms"] as const) {
      const value = validOr(millis, fed[key], F[key]);
      // The whole-fetch timeout would always fire first, so the smaller one would never mean anything.
      if (value !== undefined && total !== undefined && value > total) {
        issues.push({ path: `federation.${key}`, message: `must not exceed federation.total_timeout_ms (${total})` });
      }
    }
    const min = validOr(refreshHintSeconds, fed.min_refresh_hint_seconds, F.min_refresh_hint_seconds);
    const max = validOr(refreshHintSeconds, fed.max_refresh_hint_seconds, F.max_refresh_hint_seconds);
    const fallback = validOr(refreshHintSeconds, fed.default_refresh_hint_seconds, F.default_refresh_hint_seconds);
    if (min !== undefined && max !== undefined && min > max) {
      issues.push({
        path: "federation.min_refresh_hint_seconds",
        message: `must not exceed federation.max_refresh_hint_seconds (${max})`,
      });
    } else if (min !== undefined && max !== undefined && fallback !== undefined && (fallback < min || fallback > max)) {
      issues.push({
        path: "federation.default_refresh_hint_seconds",
        message: `must be within federation.min_refresh_hint_seconds (${min}) and federation.max_refresh_hint_seconds (${max})`,
      });
    }
  }
  return issues;
}

/** Rules over the relationships list: each against the others and against this gateway's trust domain. */
function relationshipIssues(input: unknown): ConfigIssue[] {
  if (!isRecord(input) || !Array.isArray(input.relationships)) return [];
  const own = validOr(trustDomain, input.trust_domain);
  const entries = input.relationships.map((entry: unknown, index) => {
    const rel = asRecord(entry);
    const td = validOr(trustDomain, rel?.trust_domain);
    const id = rel?.endpoint_spiffe_id;
    const endpointDomain = typeof id === "string" && isSpiffeId(id) ? parseSpiffeId(id).trustDomain : undefined;
    const spiffe = rel?.profile === "https_spiffe";
    return {
      index,
      rel,
      td: td === own ? undefined : td,
      ownRefused: td !== undefined && td === own,
      endpointDomain,
      spiffe,
    };
  });

  // Which trust domain's bundle verifies each partner's endpoint, for partners verified by another one.
  const known = new Set<string>();
  const verifiedBy = new Map<string, string>();
  for (const e of entries) {
    if (e.td === undefined || known.has(e.td)) continue;
    known.add(e.td);
    if (e.spiffe && e.endpointDomain !== undefined && e.endpointDomain !== e.td) verifiedBy.set(e.td, e.endpointDomain);
  }

  const issues: ConfigIssue[] = [];
  const firstIndex = new Map<string, number>();
  for (const { index, rel, td, ownRefused, endpointDomain, spiffe } of entries) {
    if (!rel) continue;
    const at = (key: string): string => `relationships[${index}].${key}`;
    const has = (key: string): boolean => rel[key] !== undefined;

    if (ownRefused) {
      issues.push({
        path: at("trust_domain"),
        message: `own trust domain refused: ${own} is this gateway's trust_domain; a relationship names a partner`,
      });
    }
    if (td !== undefined) {
      const first = firstIndex.get(td);
      if (first === undefined) firstIndex.set(td, index);
      else {
        issues.push({
          path: at("trust_domain"),
          message: `duplicate: relationships[${first}] and relationships[${index}] both name ${td}; one relationship per trust domain`,
        });
      }
    }

    if (rel.profile === "https_web") {
      for (const key of ["endpoint_spiffe_id", "bootstrap_bundle_file"]) {
        if (has(key)) issues.push({ path: at(key), message: "only for profile https_spiffe" });
      }
    } else if (spiffe) {
      if (has("ca_file")) issues.push({ path: at("ca_file"), message: "only for profile https_web" });
      if (!has("endpoint_spiffe_id")) {
        issues.push({ path: at("endpoint_spiffe_id"), message: "required for profile https_spiffe" });
      }
      if (td !== undefined && endpointDomain !== undefined) {
        issues.push(...endpointTrustIssues({ td, endpointDomain, own, known, verifiedBy, has, at }));
      }
    }

    for (const [key, value] of Object.entries(asRecord(rel.labels) ?? {})) {
      const problem = labelKeyProblem(key) ?? (typeof value === "string" ? labelValueProblem(value) : undefined);
      if (problem !== undefined) {
        issues.push({ path: formatPath(["relationships", index, "labels", key]), message: problem });
      }
    }

    const review = typeof rel.review_by === "string" ? parseIsoDate(rel.review_by) : undefined;
    const expires = typeof rel.expires_at === "string" ? parseIsoDate(rel.expires_at) : undefined;
    if (review !== undefined && expires !== undefined && review.getTime() > expires.getTime()) {
      issues.push({ path: at("review_by"), message: "must not be after expires_at" });
    }

    const refresh = asRecord(rel.refresh);
    if (refresh) {
      const hasInterval = refresh.interval_seconds !== undefined;
      const hasCron = refresh.cron !== undefined;
      if (hasInterval && hasCron) {
        issues.push({ path: at("refresh"), message: "set interval_seconds or cron, not both" });
      }
      if (!hasInterval && !hasCron) issues.push({ path: at("refresh"), message: "set interval_seconds or cron" });
      const seconds = z.number().int().positive();
      const interval = validOr(seconds, refresh.interval_seconds);
      const maxStaleness = validOr(seconds, rel.max_staleness_seconds);
      if (interval !== undefined && maxStaleness !== undefined && interval >= maxStaleness) {
        issues.push({
          path: at("refresh.interval_seconds"),
          message: `must be less than max_staleness_seconds (${maxStaleness}), or the bundle turns stale before every refresh`,
        });
      }
    }
  }
  return issues;
}

/** The trust domains of the relationships in the raw document (valid names, not this gateway's own). */
function configuredPartners(input: Record<string, unknown>): Set<string> {
  const own = validOr(trustDomain, input.trust_domain);
  const partners = new Set<string>();
  for (const entry of Array.isArray(input.relationships) ? input.relationships : []) {
    const td = validOr(trustDomain, asRecord(entry)?.trust_domain);
    if (td !== undefined && td !== own) partners.add(td);
  }
  return partners;
}

/** Why `id` cannot name a caller of this trust domain, if it cannot; syntax errors are the schema's to report. */
function foreignIdProblem(id: string, own: TrustDomain | undefined): string | undefined {
  if (own === undefined || !isSpiffeId(id) || isMemberOf(parseSpiffeId(id), own)) return undefined;
  return `${id} is not in trust_domain ${own}; only callers of this trust domain are authenticated`;
}

/** Why `id` in a distribution.allow list names no caller that could ever be authenticated, if so. */
function allowedCallerProblem(
  id: string,
  own: TrustDomain | undefined,
  tokenNames: ReadonlySet<string>,
): string | undefined {
  if (id === WILDCARD) return undefined;
  if (id.startsWith(TOKEN_CALLER_PREFIX)) {
    return tokenNames.has(id.slice(TOKEN_CALLER_PREFIX.length))
      ? undefined
      : `${JSON.stringify(id)} names no configured token (distribution.tokens[].name)`;
  }
  let parsed: ReturnType<typeof parseSpiffeId>;
  try {
    parsed = parseSpiffeId(id);
  } catch (error) {
    if (!isBundlegateError(error)) throw error;
    return `${JSON.stringify(id)} is neither a SPIFFE ID, "*" nor token:<name> of a configured token: ${error.code}: ${error.message}`;
  }
  if (parsed.path === "") return `${id} names the trust domain itself; a caller's ID has a path`;
  return foreignIdProblem(id, own);
}

/**
 * The distribution section against the rest: token names and digests unique, token IDs in this trust domain,
 * allow keys naming configured relationships and values naming callers that can exist, and TLS on the
 * internal listener when client certificates are asked for.
 */
function distributionIssues(input: unknown): ConfigIssue[] {
  if (!isRecord(input)) return [];
  const section = asRecord(input.distribution);
  if (!section) return [];
  const issues: ConfigIssue[] = [];
  const own = validOr(trustDomain, input.trust_domain);

  const tokenNames = new Set<string>();
  const names = new Map<string, number>();
  const digests = new Map<string, number>();
  (Array.isArray(section.tokens) ? section.tokens : []).forEach((entry: unknown, index) => {
    const token = asRecord(entry);
    const at = (key: string): string => `distribution.tokens[${index}].${key}`;
    if (typeof token?.name === "string") {
      tokenNames.add(token.name);
      const first = names.get(token.name);
      if (first === undefined) names.set(token.name, index);
      else {
        issues.push({
          path: at("name"),
          message: `duplicate: distribution.tokens[${first}] is also named ${JSON.stringify(token.name)}; names identify callers`,
        });
      }
    }
    if (typeof token?.sha256 === "string") {
      const first = digests.get(token.sha256);
      if (first === undefined) digests.set(token.sha256, index);
      // The value is only a digest, but the message need not repeat it.
      else issues.push({ path: at("sha256"), message: `duplicate: distribution.tokens[${first}] has the same sha256` });
    }
    if (typeof token?.spiffe_id === "string") {
      const problem = foreignIdProblem(token.spiffe_id, own);
      if (problem !== undefined) issues.push({ path: at("spiffe_id"), message: problem });
    }
  });

  const partners = configuredPartners(input);
  for (const [key, value] of Object.entries(asRecord(section.allow) ?? {})) {
    if (key !== WILDCARD && !partners.has(key)) {
      issues.push({
        path: formatPath(["distribution", "allow", key]),
        message:
          own !== undefined && key === own
            ? `${key} is this gateway's own trust domain; the distribution API serves partners' bundles`
            : `${JSON.stringify(key)} is not the trust_domain of a configured relationship, nor "*"`,
      });
    }
    if (!Array.isArray(value)) continue;
    value.forEach((id: unknown, index) => {
      if (typeof id !== "string") return;
      const problem = allowedCallerProblem(id, own, tokenNames);
      if (problem !== undefined) {
        issues.push({ path: formatPath(["distribution", "allow", key, index]), message: problem });
      }
    });
  }

  const internal = asRecord(input.internal);
  if (section.client_certificates === true && internal?.tls === undefined) {
    issues.push({
      path: "internal.tls",
      message: "required when distribution.client_certificates is true: client certificates need a TLS listener",
    });
  }
  return issues;
}

/** The relay section against the rest: its endpoint ID in this trust domain, its trust domains configured. */
function relayIssues(input: unknown): ConfigIssue[] {
  if (!isRecord(input)) return [];
  const section = asRecord(input.relay);
  if (!section) return [];
  const issues: ConfigIssue[] = [];
  const own = validOr(trustDomain, input.trust_domain);

  const uri = section.endpoint_spiffe_id;
  if (own !== undefined && typeof uri === "string" && isSpiffeId(uri) && !isMemberOf(parseSpiffeId(uri), own)) {
    issues.push({
      path: "relay.endpoint_spiffe_id",
      message: `${uri} is not in trust_domain ${own}; SPIRE verifies the relay with this trust domain's bundle`,
    });
  }

  const list: unknown[] = Array.isArray(section.trust_domains) ? section.trust_domains : [];
  const partners = configuredPartners(input);
  const seen = new Set<string>();
  list.forEach((td, index) => {
    if (typeof td !== "string") return;
    const at = `relay.trust_domains[${index}]`;
    let problem: string | undefined;
    if (td === WILDCARD) {
      if (list.length > 1) problem = '"*" relays every relationship; write it on its own: ["*"]';
    } else if (seen.has(td)) {
      problem = `duplicate: ${td} is listed twice`;
    } else if (!isTrustDomain(td)) {
      problem = `${JSON.stringify(td)} is not a trust domain name`;
    } else if (td === own) {
      problem = `${td} is this gateway's own trust domain; the relay serves partners' bundles`;
    } else if (!partners.has(td)) {
      problem = `${td} is not the trust_domain of a configured relationship`;
    }
    seen.add(td);
    if (problem !== undefined) issues.push({ path: at, message: problem });
  });
  return issues;
}

/**
 * DESIGN.md section 6: an https_spiffe endpoint's SVID is checked against the bundle of its ID's trust
 * domain. A self-serving endpoint (ID in the partner's own domain) can only be trusted through a bootstrap
 * bundle until the first fetch; any other ID needs a bundle the gateway already has: its own, or another
 * partner's, whose chain of such dependencies must end somewhere (not loop back).
 */
function endpointTrustIssues(e: {
  td: string;
  endpointDomain: string;
  own: string | undefined;
  known: ReadonlySet<string>;
  verifiedBy: ReadonlyMap<string, string>;
  has: (key: string) => boolean;
  at: (key: string) => string;
}): ConfigIssue[] {
  if (e.endpointDomain === e.td) {
    if (e.has("bootstrap_bundle_file")) return [];
    return [
      {
        path: e.at("bootstrap_bundle_file"),
        message: `required: endpoint_spiffe_id is in ${e.td} itself (a self-serving endpoint), and nothing else can verify it before the first fetch`,
      },
    ];
  }
  const issues: ConfigIssue[] = [];
  if (e.has("bootstrap_bundle_file")) {
    issues.push({
      path: e.at("bootstrap_bundle_file"),
      message: `would never be used: the endpoint is verified with the bundle of ${e.endpointDomain}, the trust domain of endpoint_spiffe_id; a bootstrap bundle is for an endpoint_spiffe_id in ${e.td}`,
    });
  }
  if (e.endpointDomain !== e.own && !e.known.has(e.endpointDomain)) {
    issues.push({
      path: e.at("endpoint_spiffe_id"),
      message: `is in ${e.endpointDomain}, which is neither trust_domain nor the trust domain of a configured relationship, so no bundle could verify the endpoint`,
    });
    return issues;
  }
  const chain = [e.td];
  for (let next = e.verifiedBy.get(e.td); next !== undefined; next = e.verifiedBy.get(next)) {
    if (chain.includes(next)) {
      issues.push({
        path: e.at("endpoint_spiffe_id"),
        message: `can never be verified: each endpoint waits for the next one's bundle, in a loop (${[...chain, next].join(" -> ")})`,
      });
      break;
    }
    chain.push(next);
  }
  return issues;
}

/** Parses each referenced file; the bootstrap bundles come out for toBundlegateConfig. */
function fileIssues(
  input: unknown,
  files: ReadonlyMap<string, FileRead>,
): { issues: ConfigIssue[]; bootstrapBundles: Map<number, TrustBundle>; caPems: Map<number, string> } {
  const issues: ConfigIssue[] = [];
  const bootstrapBundles = new Map<number, TrustBundle>();
  const caPems = new Map<number, string>();
  const refs = referencedFiles(input);
  if (refs.length === 0) return { issues, bootstrapBundles, caPems };

  // A bootstrap bundle is read under the same caps as a fetched one.
  const F = CONFIG_DEFAULTS.federation;
  const fed = isRecord(input) && input.federation !== undefined ? asRecord(input.federation) : undefined;
  const limits = {
    maxBytes: validOr(bundleBytesLimit, fed?.max_bundle_bytes) ?? F.max_bundle_bytes,
    maxKeys: validOr(bundleKeysLimit, fed?.max_bundle_keys) ?? F.max_bundle_keys,
  };

  for (const ref of refs) {
    const read = files.get(ref.path);
    if (read === undefined) {
      issues.push({
        path: ref.path,
        message: `${ref.file} was not read (the config loader reads it before validation)`,
      });
      continue;
    }
    if ("error" in read) {
      issues.push({ path: ref.path, message: `cannot read ${ref.file}: ${read.error}` });
      continue;
    }
    if (ref.kind === "bootstrap_bundle") {
      const checked = checkBootstrapBundleContent(read.content, limits);
      if ("problem" in checked) issues.push({ path: ref.path, ...prefixed(ref.file, checked.problem) });
      else bootstrapBundles.set(ref.index, checked.bundle);
    } else {
      const checked = checkCaContent(read.content);
      if ("problem" in checked) issues.push({ path: ref.path, ...prefixed(ref.file, checked.problem) });
      else caPems.set(ref.index, checked.pem);
    }
  }
  return { issues, bootstrapBundles, caPems };
}

type ContentCheck<T> = T | { readonly problem: { readonly message: string; readonly code?: string } };

function prefixed(file: string, problem: { message: string; code?: string }): { message: string; code?: string } {
  return { ...problem, message: `${file}${problem.code === undefined ? " " : ": "}${problem.message}` };
}

/**
 * A bootstrap bundle's content (SPIFFE JSON or PEM), read under the fetch caps; it must hold an X.509
 * authority to verify anything. The config file and the admin API both check it here.
 */
export function checkBootstrapBundleContent(
  content: Uint8Array | string,
  limits: { readonly maxBytes: number; readonly maxKeys?: number },
): ContentCheck<{ readonly bundle: TrustBundle }> {
  try {
    const { bundle } = parseBundle(content, "auto", limits);
    if (bundle.x509Authorities.length > 0) return { bundle };
    return { problem: { message: "holds no X.509 authority, so it cannot verify the endpoint's X509-SVID" } };
  } catch (error) {
    if (!isBundlegateError(error)) throw error;
    return { problem: { message: `${error.code}: ${error.message}`, code: error.code } };
  }
}

/**
 * CA certificates for an https_web relationship (PEM, up to a whole system trust store). Only the
 * certificates that passed the checks are kept, re-encoded, not whatever else the text holds.
 */
export function checkCaContent(content: Uint8Array | string): ContentCheck<{ readonly pem: string }> {
  try {
    const { bundle } = parsePemBundle(content, { maxBytes: MAX_CA_FILE_BYTES, maxKeys: MAX_CA_FILE_CERTIFICATES });
    if (bundle.x509Authorities.length > 0) return { pem: serializePem(bundle) };
    return { problem: { message: "holds no PEM CA certificate" } };
  } catch (error) {
    if (!isBundlegateError(error)) throw error;
    return { problem: { message: `${error.code}: ${error.message}`, code: error.code } };
  }
}

/**
 * The proxy environment, read here (and only here) so the fetcher never looks at process.env. Upper case
 * wins when only it is set, as in Go's net/http; both set to different values is refused rather than
 * guessed at. Messages never echo a proxy URL: it may carry credentials.
 */
function proxyEnvironment(env: ProxyEnv): { issues: ConfigIssue[]; httpsProxy?: string; noProxy?: string } {
  const issues: ConfigIssue[] = [];
  const https = pickEnv(env, "HTTPS_PROXY", "https_proxy", "federation.https_proxy", issues);
  let httpsProxy: string | undefined;
  if (https) {
    const problem = proxyUrlProblem(https.value);
    if (problem === undefined) httpsProxy = https.value;
    else issues.push({ path: "federation.https_proxy", env: https.name, message: problem });
  }
  const no = pickEnv(env, "NO_PROXY", "no_proxy", "federation.no_proxy", issues);
  let noProxy: string | undefined;
  if (no) {
    const bad = no.value
      .split(",")
      .map((entry) => entry.trim())
      .filter((entry) => entry !== "" && !NO_PROXY_ENTRY.test(entry));
    if (bad.length === 0) noProxy = no.value;
    else {
      issues.push({
        path: "federation.no_proxy",
        env: no.name,
        message: `not a host, domain, IP address or CIDR: ${bad.map((entry) => JSON.stringify(entry)).join(", ")}`,
      });
    }
  }
  return { issues, ...(httpsProxy === undefined ? {} : { httpsProxy }), ...(noProxy === undefined ? {} : { noProxy }) };
}

/** "*", "example.org", ".example.org", "host:8443", "10.0.0.0/8", "[::1]:443" */
const NO_PROXY_ENTRY = /^(?:\*|[A-Za-z0-9._-]+(?::\d{1,5})?|\[?[0-9A-Fa-f:.]+\]?(?::\d{1,5})?(?:\/\d{1,3})?)$/;

function pickEnv(
  env: ProxyEnv,
  upper: string,
  lower: string,
  path: string,
  issues: ConfigIssue[],
): { name: string; value: string } | undefined {
  // An empty variable is how shells unset a proxy for one command (HTTPS_PROXY= cmd).
  const u = env[upper]?.trim() || undefined;
  const l = env[lower]?.trim() || undefined;
  if (u !== undefined && l !== undefined && u !== l) {
    issues.push({
      path,
      env: upper,
      message: `differs from ${lower}; unset one of them, or set both to the same value`,
    });
    return undefined;
  }
  if (u !== undefined) return { name: upper, value: u };
  if (l !== undefined) return { name: lower, value: l };
  return undefined;
}

/** The authority as written, between "scheme://" and the path; undefined without "//". */
function authorityOf(raw: string): string | undefined {
  return /^[A-Za-z][A-Za-z0-9+.-]*:\/\/([^/?#]*)/.exec(raw)?.[1];
}

// The URL checks never echo the URL: a mistyped one may carry a password.
function endpointUrlProblem(raw: string): string | undefined {
  // WHATWG URL parsing strips surrounding whitespace and reads "\" as "/", so what would be fetched could
  // differ from what was reviewed.
  if (/[\s\\]/.test(raw)) return "must not contain whitespace or backslashes";
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return "is not a URL; expected https://host[:port]/path";
  }
  if (url.protocol !== "https:") return "must be an https:// URL";
  const authority = authorityOf(raw);
  if (authority === undefined) return "must start with https://";
  if (authority.includes("@")) return "must not carry userinfo (user:password@)";
  if (authority === "" || url.hostname === "") return "must name a host";
  if (raw.includes("#")) return "must not have a fragment (#...)";
  return undefined;
}

function proxyUrlProblem(raw: string): string | undefined {
  if (/[\s\\]/.test(raw)) return "must not contain whitespace or backslashes";
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    return 'is not a URL; expected http://host:port or https://host:port (or "direct" for a relationship)';
  }
  const authority = authorityOf(raw);
  if ((url.protocol !== "http:" && url.protocol !== "https:") || authority === undefined) {
    return "must be an http:// or https:// proxy URL";
  }
  if (url.hostname === "") return "must name a host";
  if (url.pathname !== "/" || url.search !== "" || raw.includes("#")) return "must not have a path, query or fragment";
  return undefined;
}

function cidrProblem(raw: string): string | undefined {
  const match = /^([^/]+)\/(0|[1-9]\d{0,2})$/.exec(raw);
  const address = match?.[1];
  const prefixText = match?.[2];
  if (address === undefined || prefixText === undefined) {
    return "must be an address range in CIDR notation, e.g. 10.20.0.0/16 or fd00:1::/48";
  }
  const family = address.includes("%") ? 0 : isIP(address);
  if (family === 0) return `${JSON.stringify(address)} is not an IPv4 or IPv6 address`;
  const prefix = Number(prefixText);
  const bits = family === 4 ? 32 : 128;
  if (prefix > bits) return `the prefix /${prefix} is longer than an IPv${family} address (${bits} bits)`;
  if (prefix === 0) return "a /0 range lets the relationship reach every address, which turns the SSRF guard off";
  const bytes = parseAddress(address);
  if (bytes === undefined) return `${JSON.stringify(address)} is not an IPv4 or IPv6 address`;
  // A typo such as 10.1.2.3/8 for 10.1.2.3/32 would open a whole /8; the network address must be written.
  for (let bit = prefix; bit < bits; bit++) {
    if (((bytes[bit >> 3] ?? 0) >> (7 - (bit & 7))) & 1) {
      return `has bits set after the /${prefix} prefix; write the range's first address${family === 4 ? ` (${networkOf(bytes, prefix)}/${prefix})` : ""}`;
    }
  }
  try {
    new BlockList().addSubnet(address, prefix, family === 4 ? "ipv4" : "ipv6");
  } catch {
    return "is not a range node:net accepts";
  }
  return undefined;
}

function networkOf(bytes: Uint8Array, prefix: number): string {
  return bytes
    .map((byte, i) => {
      const keep = Math.min(Math.max(prefix - i * 8, 0), 8);
      return byte & ((0xff << (8 - keep)) & 0xff);
    })
    .join(".");
}

const LABEL_NAME = /^[A-Za-z0-9](?:[A-Za-z0-9_.-]*[A-Za-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$/;

/** Kubernetes label keys, so labels can be copied to and from Kubernetes objects and Prometheus labels as they are. */
function labelKeyProblem(key: string): string | undefined {
  const slash = key.indexOf("/");
  const prefix = slash < 0 ? undefined : key.slice(0, slash);
  const name = slash < 0 ? key : key.slice(slash + 1);
  if (prefix !== undefined && (prefix.length > MAX_LABEL_PREFIX_LENGTH || !DNS_SUBDOMAIN.test(prefix))) {
    return `label key prefix must be a lowercase DNS subdomain of at most ${MAX_LABEL_PREFIX_LENGTH} characters`;
  }
  if (name.length > MAX_LABEL_NAME_LENGTH || !LABEL_NAME.test(name)) {
    return `label key must be at most ${MAX_LABEL_NAME_LENGTH} characters of A-Z a-z 0-9 - _ . beginning and ending with a letter or digit, optionally after a "prefix/"`;
  }
  return undefined;
}

function labelValueProblem(value: string): string | undefined {
  if (value === "" || (value.length <= MAX_LABEL_NAME_LENGTH && LABEL_NAME.test(value))) return undefined;
  return `label value must be empty or at most ${MAX_LABEL_NAME_LENGTH} characters of A-Z a-z 0-9 - _ . beginning and ending with a letter or digit`;
}

const ISO_DATE = /^(\d{4})-(\d{2})-(\d{2})(?:T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,3})?(Z|[+-](\d{2}):(\d{2})))?$/;

/** "2025-06-30" (midnight UTC) or "2025-06-30T12:00:00Z" / "+02:00"; a time without an offset is refused as ambiguous. */
function parseIsoDate(raw: string): Date | undefined {
  const m = ISO_DATE.exec(raw);
  if (!m) return undefined;
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const calendar = new Date(Date.UTC(year, month - 1, day));
  // Date.UTC rolls 2025-02-30 over into March; a date that does not round-trip does not exist.
  if (calendar.getUTCFullYear() !== year || calendar.getUTCMonth() !== month - 1 || calendar.getUTCDate() !== day) {
    return undefined;
  }
  if (m[4] === undefined) return calendar;
  const [hour, minute, second] = [Number(m[4]), Number(m[5]), Number(m[6])];
  if (hour > 23 || minute > 59 || second > 59) return undefined;
  if (m[8] !== undefined && (Number(m[8]) > 23 || Number(m[9]) > 59)) return undefined;
  const time = Date.parse(raw);
  return Number.isNaN(time) ? undefined : new Date(time);
}

/** Any instant works: nextCronFire searches a whole 400-year calendar cycle. */
const CRON_REFERENCE = new Date(Date.UTC(2000, 0, 1));

function cronProblem(expression: string): string | undefined {
  const detailed = validateCronDetailed(expression);
  if (!isValidCron(expression) || !detailed.valid || detailed.fields === undefined) {
    const detail = detailed.errors.map((error) => error.message).join("; ");
    return `is not a cron expression node-cron accepts${detail === "" ? "" : `: ${detail}`}`;
  }
  // Six fields allow one fetch a second; nothing a bundle does changes that often.
  if (detailed.fields.second.length > 1) {
    return "fires more than once a minute: give the seconds field a single value, or use five fields";
  }
  if (nextCronFire(expression, CRON_REFERENCE) === undefined) {
    return "never fires: no date matches both its day of month and its day of week";
  }
  return undefined;
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
  const at = issue.path;
  if (issue.code === "unrecognized_keys") {
    return issue.keys.map((key) => ({ path: formatPath([...at, key]), message: unknownFieldMessage(at, key) }));
  }
  if (issue.code === "invalid_union" && issue.discriminator !== undefined && "options" in issue) {
    return [{ path: formatPath(at), message: `must be one of: ${(issue.options ?? []).join(", ")}` }];
  }
  const code = issue.code === "custom" ? (issue.params as { code?: unknown } | undefined)?.code : undefined;
  return [{ path: formatPath(at), message: issue.message, ...(typeof code === "string" ? { code } : {}) }];
}

const PLAIN_KEY = /^[A-Za-z0-9_-]+$/;

/** As an operator would point into the YAML: "relationships[2].labels.team", `labels["app.kubernetes.io/name"]`. */
export function formatPath(segments: readonly PropertyKey[]): string {
  let out = "";
  for (const segment of segments) {
    if (typeof segment === "number") out += `[${segment}]`;
    else {
      const key = String(segment);
      // A key with dots or slashes (a label key) would read as several levels if joined with ".".
      out += PLAIN_KEY.test(key) ? (out === "" ? key : `.${key}`) : `[${JSON.stringify(key)}]`;
    }
  }
  return out;
}

/** The path with list indexes as "[]", the form DOCUMENT_KEYS uses. */
function genericPath(segments: readonly PropertyKey[]): string {
  return segments
    .map((segment, i) => (typeof segment === "number" ? "[]" : `${i === 0 ? "" : "."}${String(segment)}`))
    .join("");
}

function unknownFieldMessage(parent: readonly PropertyKey[], key: string): string {
  if (CONFIG_FIELDS.has(genericPath([...parent, key]))) return "unknown field for this store.kind";
  const prefix = parent.length === 0 ? "" : `${genericPath(parent)}.`;
  const siblings = new Set<string>();
  for (const field of DOCUMENT_KEYS.keys()) {
    if (field.startsWith(prefix)) siblings.add(field.slice(prefix.length).split(/[.[]/)[0] ?? "");
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

function collectFields(
  schema: z.core.$ZodType,
  at = "",
  out = new Map<string, ConfigFieldKind | "other">(),
): Map<string, ConfigFieldKind | "other"> {
  if (schema instanceof z.ZodOptional || schema instanceof z.ZodDefault || schema instanceof z.ZodPrefault) {
    collectFields(schema.unwrap() as z.core.$ZodType, at, out);
  } else if (schema instanceof z.ZodPipe) {
    // z.preprocess is a pipe whose first half is a bare transform; the shape lives in the second half.
    collectFields((schema.in instanceof z.ZodTransform ? schema.out : schema.in) as z.core.$ZodType, at, out);
  } else if (schema instanceof z.ZodObject) {
    for (const [key, child] of Object.entries(schema.shape)) {
      collectFields(child as z.core.$ZodType, at === "" ? key : `${at}.${key}`, out);
    }
  } else if (schema instanceof z.ZodUnion) {
    for (const option of schema.options) collectFields(option as z.core.$ZodType, at, out);
  } else if (schema instanceof z.ZodArray) {
    collectFields(schema.element as z.core.$ZodType, `${at}[]`, out);
  } else if (schema instanceof z.ZodRecord) {
    out.set(at, "other");
  } else if (schema instanceof z.ZodString || schema instanceof z.ZodEnum || schema instanceof z.ZodLiteral) {
    out.set(at, "string");
  } else if (schema instanceof z.ZodNumber) {
    out.set(at, "number");
  } else if (schema instanceof z.ZodBoolean) {
    out.set(at, "boolean");
  } else {
    throw new Error(`config schema: no environment mapping for ${schema._zod.def.type} at ${at}`);
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
