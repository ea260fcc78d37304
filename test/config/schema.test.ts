import path from "node:path";
import { describe, expect, it } from "vitest";
import type { ConfigIssue } from "../../src/config/errors.js";
import {
  CONFIG_DEFAULTS,
  CONFIG_FIELDS,
  type ConfigDocument,
  checkConfigDocument,
  toBundlegateConfig,
} from "../../src/config/schema.js";

type Doc = Record<string, unknown>;

const MINIMAL: Doc = {
  trust_domain: "example.org",
  local_bundle: { file: "bundle.json" },
  endpoint: { https_web: { cert_file: "web.crt", key_file: "web.key" } },
};

const FULL: Doc = {
  trust_domain: "example.org",
  log_level: "debug",
  file_poll_interval_ms: 1000,
  local_bundle: { file: "/etc/bundlegate/bundle.pem", format: "pem", refresh_hint_seconds: 600, max_bytes: 4096 },
  endpoint: {
    path: "/bundle",
    cache_max_age_seconds: 600,
    timeouts: { headers_ms: 1000, request_ms: 2000, keep_alive_ms: 3000 },
    https_web: { listen: { host: "10.0.0.1", port: 443 }, cert_file: "web.crt", key_file: "web.key" },
    https_spiffe: {
      listen: { host: "10.0.0.1", port: 8444 },
      endpoint_spiffe_id: "spiffe://example.org/bundlegate",
      svid_file: "svid.pem",
      svid_key_file: "svid.key",
    },
  },
  internal: { listen: { host: "127.0.0.1", port: 9090 } },
  store: {
    kind: "redis",
    url: "rediss://user:secret@redis.internal:6380/0",
    key_prefix: "{bg}",
    command_timeout_ms: 500,
  },
};

/** A deep copy of `doc` with the value at `dotted` replaced (`undefined` deletes it), creating sections as needed. */
function patch(doc: Doc, dotted: string, value: unknown): Doc {
  const copy = structuredClone(doc);
  const keys = dotted.split(".");
  let node: Doc = copy;
  for (const key of keys.slice(0, -1)) {
    if (typeof node[key] !== "object" || node[key] === null) node[key] = {};
    node = node[key] as Doc;
  }
  const last = keys.at(-1)!;
  if (value === undefined) delete node[last];
  else node[last] = value;
  return copy;
}

function patches(doc: Doc, changes: Record<string, unknown>): Doc {
  return Object.entries(changes).reduce((acc, [dotted, value]) => patch(acc, dotted, value), doc);
}

function issuesOf(doc: unknown): ConfigIssue[] {
  const result = checkConfigDocument(doc);
  if (result.ok) throw new Error("expected the document to be refused");
  return result.issues;
}

function documentOf(doc: unknown): ConfigDocument {
  const result = checkConfigDocument(doc);
  if (!result.ok) throw new Error(`expected a valid document, got ${JSON.stringify(result.issues)}`);
  return result.document;
}

describe("checkConfigDocument: accepted documents", () => {
  it("accepts the minimal and the full document", () => {
    expect(checkConfigDocument(MINIMAL).ok).toBe(true);
    expect(checkConfigDocument(FULL).ok).toBe(true);
  });

  it.each<[string, Doc]>([
    ["only https_spiffe", patches(FULL, { "endpoint.https_web": undefined })],
    ["only https_web", patches(FULL, { "endpoint.https_spiffe": undefined })],
    [
      "every listener on port 0",
      patches(FULL, {
        "endpoint.https_web.listen.port": 0,
        "endpoint.https_spiffe.listen.port": 0,
        "internal.listen.port": 0,
      }),
    ],
    [
      "the same port on two distinct specific hosts",
      patches(FULL, { "endpoint.https_web.listen.host": "10.0.0.2", "endpoint.https_web.listen.port": 8444 }),
    ],
    ["cache_max_age_seconds equal to the refresh hint", patch(FULL, "endpoint.cache_max_age_seconds", 600)],
    ["cache_max_age_seconds 0", patch(FULL, "endpoint.cache_max_age_seconds", 0)],
    ["headers_ms equal to request_ms", patch(FULL, "endpoint.timeouts.headers_ms", 2000)],
    ["a store section without kind (embedded)", patch(MINIMAL, "store", { snapshot_file: "state.json" })],
    [
      "ports at both ends",
      patches(FULL, { "endpoint.https_web.listen.port": 1, "endpoint.https_spiffe.listen.port": 65_535 }),
    ],
    ["an IPv6 wildcard host", patch(MINIMAL, "endpoint.https_web.listen.host", "::")],
    ["a redis URL without credentials", patch(FULL, "store.url", "redis://localhost")],
  ])("accepts %s", (_name, doc) => {
    expect(checkConfigDocument(doc).ok).toBe(true);
  });
});

describe("checkConfigDocument: every bad field is named", () => {
  const spiffeOnly = patch(FULL, "endpoint.https_web", undefined);
  it.each<[string, Doc, string]>([
    ["trust_domain missing", patch(MINIMAL, "trust_domain", undefined), "trust_domain"],
    ["trust_domain upper case", patch(MINIMAL, "trust_domain", "Example.org"), "trust_domain"],
    ["trust_domain as a SPIFFE ID", patch(MINIMAL, "trust_domain", "spiffe://example.org"), "trust_domain"],
    ["trust_domain with a port", patch(MINIMAL, "trust_domain", "example.org:443"), "trust_domain"],
    ["trust_domain a number", patch(MINIMAL, "trust_domain", 42), "trust_domain"],
    ["trust_domain empty", patch(MINIMAL, "trust_domain", ""), "trust_domain"],
    ["log_level unknown", patch(MINIMAL, "log_level", "verbose"), "log_level"],
    ["file_poll_interval_ms 0", patch(MINIMAL, "file_poll_interval_ms", 0), "file_poll_interval_ms"],
    ["file_poll_interval_ms negative", patch(MINIMAL, "file_poll_interval_ms", -1), "file_poll_interval_ms"],
    ["file_poll_interval_ms fractional", patch(MINIMAL, "file_poll_interval_ms", 1.5), "file_poll_interval_ms"],
    ["file_poll_interval_ms a string", patch(MINIMAL, "file_poll_interval_ms", "2000"), "file_poll_interval_ms"],
    [
      "file_poll_interval_ms past Node's timer limit",
      patch(MINIMAL, "file_poll_interval_ms", 2 ** 31),
      "file_poll_interval_ms",
    ],
    ["local_bundle missing", patch(MINIMAL, "local_bundle", undefined), "local_bundle"],
    ["local_bundle a string", patch(MINIMAL, "local_bundle", "bundle.json"), "local_bundle"],
    ["local_bundle.file missing", patch(MINIMAL, "local_bundle.file", undefined), "local_bundle.file"],
    ["local_bundle.file empty", patch(MINIMAL, "local_bundle.file", ""), "local_bundle.file"],
    ["local_bundle.format unknown", patch(MINIMAL, "local_bundle.format", "jwks"), "local_bundle.format"],
    [
      "local_bundle.refresh_hint_seconds 0",
      patch(MINIMAL, "local_bundle.refresh_hint_seconds", 0),
      "local_bundle.refresh_hint_seconds",
    ],
    ["local_bundle.max_bytes 0", patch(MINIMAL, "local_bundle.max_bytes", 0), "local_bundle.max_bytes"],
    ["local_bundle.max_bytes huge", patch(MINIMAL, "local_bundle.max_bytes", 2 ** 40), "local_bundle.max_bytes"],
    ["endpoint a list", patch(MINIMAL, "endpoint", []), "endpoint"],
    ["endpoint.path relative", patch(MINIMAL, "endpoint.path", "bundle"), "endpoint.path"],
    ["endpoint.path with a space", patch(MINIMAL, "endpoint.path", "/a b"), "endpoint.path"],
    ["endpoint.path with a query", patch(MINIMAL, "endpoint.path", "/x?y=1"), "endpoint.path"],
    [
      "endpoint.cache_max_age_seconds negative",
      patch(MINIMAL, "endpoint.cache_max_age_seconds", -1),
      "endpoint.cache_max_age_seconds",
    ],
    [
      "endpoint.cache_max_age_seconds over the default hint",
      patch(MINIMAL, "endpoint.cache_max_age_seconds", 301),
      "endpoint.cache_max_age_seconds",
    ],
    [
      "endpoint.cache_max_age_seconds over the set hint",
      patch(FULL, "endpoint.cache_max_age_seconds", 601),
      "endpoint.cache_max_age_seconds",
    ],
    [
      "endpoint.timeouts.headers_ms 0",
      patch(MINIMAL, "endpoint.timeouts.headers_ms", 0),
      "endpoint.timeouts.headers_ms",
    ],
    [
      "endpoint.timeouts.request_ms negative",
      patch(MINIMAL, "endpoint.timeouts.request_ms", -5),
      "endpoint.timeouts.request_ms",
    ],
    [
      "endpoint.timeouts.keep_alive_ms a string",
      patch(MINIMAL, "endpoint.timeouts.keep_alive_ms", "5s"),
      "endpoint.timeouts.keep_alive_ms",
    ],
    [
      "endpoint.timeouts.headers_ms over request_ms",
      patch(FULL, "endpoint.timeouts.headers_ms", 2001),
      "endpoint.timeouts.headers_ms",
    ],
    ["no profile at all", patch(MINIMAL, "endpoint.https_web", undefined), "endpoint"],
    ["no endpoint section", patch(MINIMAL, "endpoint", undefined), "endpoint"],
    [
      "https_web port too big",
      patch(MINIMAL, "endpoint.https_web.listen.port", 65_536),
      "endpoint.https_web.listen.port",
    ],
    ["https_web port negative", patch(MINIMAL, "endpoint.https_web.listen.port", -1), "endpoint.https_web.listen.port"],
    [
      "https_web port fractional",
      patch(MINIMAL, "endpoint.https_web.listen.port", 80.5),
      "endpoint.https_web.listen.port",
    ],
    ["https_web host empty", patch(MINIMAL, "endpoint.https_web.listen.host", ""), "endpoint.https_web.listen.host"],
    [
      "https_web host a URL",
      patch(MINIMAL, "endpoint.https_web.listen.host", "https://x"),
      "endpoint.https_web.listen.host",
    ],
    [
      "https_web.cert_file missing",
      patch(MINIMAL, "endpoint.https_web.cert_file", undefined),
      "endpoint.https_web.cert_file",
    ],
    ["https_web.key_file empty", patch(MINIMAL, "endpoint.https_web.key_file", ""), "endpoint.https_web.key_file"],
    ["https_web null", patch(MINIMAL, "endpoint.https_web", null), "endpoint.https_web"],
    [
      "https_spiffe ID in another trust domain",
      patch(FULL, "endpoint.https_spiffe.endpoint_spiffe_id", "spiffe://other.org/bundlegate"),
      "endpoint.https_spiffe.endpoint_spiffe_id",
    ],
    [
      "https_spiffe ID without a path",
      patch(FULL, "endpoint.https_spiffe.endpoint_spiffe_id", "spiffe://example.org"),
      "endpoint.https_spiffe.endpoint_spiffe_id",
    ],
    [
      "https_spiffe ID with a wrong scheme",
      patch(FULL, "endpoint.https_spiffe.endpoint_spiffe_id", "https://example.org/x"),
      "endpoint.https_spiffe.endpoint_spiffe_id",
    ],
    [
      "https_spiffe ID missing",
      patch(FULL, "endpoint.https_spiffe.endpoint_spiffe_id", undefined),
      "endpoint.https_spiffe.endpoint_spiffe_id",
    ],
    [
      "https_spiffe.svid_file missing",
      patch(FULL, "endpoint.https_spiffe.svid_file", undefined),
      "endpoint.https_spiffe.svid_file",
    ],
    [
      "https_spiffe.svid_key_file missing",
      patch(FULL, "endpoint.https_spiffe.svid_key_file", undefined),
      "endpoint.https_spiffe.svid_key_file",
    ],
    [
      "https_spiffe port too big",
      patch(FULL, "endpoint.https_spiffe.listen.port", 70_000),
      "endpoint.https_spiffe.listen.port",
    ],
    [
      "https_spiffe on https_web's address",
      patch(FULL, "endpoint.https_spiffe.listen.port", 443),
      "endpoint.https_spiffe.listen.port",
    ],
    [
      "internal on https_web's address",
      patches(FULL, { "internal.listen.host": "10.0.0.1", "internal.listen.port": 443 }),
      "internal.listen.port",
    ],
    [
      "internal on a port https_web holds on every address",
      patch(MINIMAL, "internal.listen.port", 8443),
      "internal.listen.port",
    ],
    [
      "internal on a port https_spiffe holds on every address",
      patches(spiffeOnly, { "endpoint.https_spiffe.listen.host": "0.0.0.0", "internal.listen.port": 8444 }),
      "internal.listen.port",
    ],
    ["internal host with a space", patch(MINIMAL, "internal.listen.host", "local host"), "internal.listen.host"],
    ["store a string", patch(MINIMAL, "store", "redis"), "store"],
    ["store.kind unknown", patch(MINIMAL, "store", { kind: "memcached" }), "store.kind"],
    [
      "store.snapshot_file empty",
      patch(MINIMAL, "store", { kind: "embedded", snapshot_file: "" }),
      "store.snapshot_file",
    ],
    ["store.url missing for redis", patch(MINIMAL, "store", { kind: "redis" }), "store.url"],
    ["store.url with an http scheme", patch(FULL, "store.url", "http://redis:6379"), "store.url"],
    ["store.url not a URL", patch(FULL, "store.url", "redis host"), "store.url"],
    ["store.url without a host", patch(FULL, "store.url", "redis://"), "store.url"],
    ["store.key_prefix empty", patch(FULL, "store.key_prefix", ""), "store.key_prefix"],
    ["store.key_prefix with a space", patch(FULL, "store.key_prefix", "bundle gate"), "store.key_prefix"],
    ["store.command_timeout_ms 0", patch(FULL, "store.command_timeout_ms", 0), "store.command_timeout_ms"],
    ["store.url on an embedded store", patch(MINIMAL, "store", { kind: "embedded", url: "redis://x" }), "store.url"],
    ["store.snapshot_file on a redis store", patch(FULL, "store.snapshot_file", "state.json"), "store.snapshot_file"],
  ])("%s", (_name, doc, expectedPath) => {
    expect(issuesOf(doc).map((issue) => issue.path)).toContain(expectedPath);
  });

  it.each<[string, string]>([
    ["Example.org", "ERR_TRUST_DOMAIN_UPPERCASE"],
    ["spiffe://example.org", "ERR_TRUST_DOMAIN_IS_SPIFFE_ID"],
    ["example.org:8443", "ERR_TRUST_DOMAIN_PORT"],
    ["", "ERR_TRUST_DOMAIN_EMPTY"],
  ])("trust_domain %j carries the SPIFFE ID code %s", (value, code) => {
    expect(issuesOf(patch(MINIMAL, "trust_domain", value))).toContainEqual(
      expect.objectContaining({ path: "trust_domain", code }),
    );
  });

  it("endpoint_spiffe_id carries the SPIFFE ID code of its syntax error", () => {
    const doc = patch(FULL, "endpoint.https_spiffe.endpoint_spiffe_id", "spiffe://example.org/a//b");
    expect(issuesOf(doc)).toContainEqual(
      expect.objectContaining({
        path: "endpoint.https_spiffe.endpoint_spiffe_id",
        code: "ERR_SPIFFEID_PATH_EMPTY_SEGMENT",
      }),
    );
  });

  it("reports every problem in one pass, cross-field rules included", () => {
    const doc = patches(FULL, {
      trust_domain: "Bad",
      "local_bundle.format": "xml",
      "endpoint.cache_max_age_seconds": 9999,
      "endpoint.https_web.cert_file": undefined,
      "internal.listen": { host: "10.0.0.1", port: 8444 },
      "store.url": "ftp://x",
    });
    expect(issuesOf(doc).map((issue) => issue.path)).toEqual(
      expect.arrayContaining([
        "trust_domain",
        "local_bundle.format",
        "endpoint.cache_max_age_seconds",
        "endpoint.https_web.cert_file",
        "internal.listen.port",
        "store.url",
      ]),
    );
  });

  it("applies the cross-field rules even after a failed integer check", () => {
    // zod skips refinements once an integer check has failed; the cross-field rules must not depend on that.
    const doc = patches(FULL, {
      file_poll_interval_ms: 1.5,
      "store.command_timeout_ms": 2.5,
      "endpoint.https_spiffe.endpoint_spiffe_id": "spiffe://other.org/bg",
      "endpoint.cache_max_age_seconds": 601,
      "endpoint.timeouts.headers_ms": 2001,
      "internal.listen": { host: "0.0.0.0", port: 443 },
    });
    expect(issuesOf(doc).map((issue) => issue.path)).toEqual([
      "file_poll_interval_ms",
      "store.command_timeout_ms",
      "endpoint.https_spiffe.endpoint_spiffe_id",
      "endpoint.cache_max_age_seconds",
      "endpoint.timeouts.headers_ms",
      "internal.listen.port",
    ]);
  });

  it("skips a cross-field rule whose own fields are invalid", () => {
    const doc = patches(FULL, { "endpoint.cache_max_age_seconds": 900, "local_bundle.refresh_hint_seconds": "soon" });
    expect(issuesOf(doc).map((issue) => issue.path)).toEqual(["local_bundle.refresh_hint_seconds"]);
  });

  it("names the document itself with an empty path", () => {
    for (const doc of [null, "text", 42, ["a"]]) {
      expect(issuesOf(doc).map((issue) => issue.path)).toEqual([""]);
    }
  });

  it("never echoes a Redis URL, which may carry a password", () => {
    for (const url of ["http://user:hunter2@redis", "hunter2 is not a url"]) {
      const text = JSON.stringify(issuesOf(patch(FULL, "store.url", url)));
      expect(text).not.toContain("hunter2");
    }
  });
});

describe("checkConfigDocument: unknown keys", () => {
  it.each<[string, string]>([
    ["colour", "colour"],
    ["local_bundle.fmt", "local_bundle.fmt"],
    ["endpoint.https_web.certfile", "endpoint.https_web.certfile"],
    ["endpoint.https_web.listen.address", "endpoint.https_web.listen.address"],
    ["endpoint.timeouts.idle_ms", "endpoint.timeouts.idle_ms"],
    ["endpoint.https_spiffe.listen.tls", "endpoint.https_spiffe.listen.tls"],
    ["internal.auth", "internal.auth"],
    ["store.password", "store.password"],
  ])("%s is an error naming it", (dotted, expectedPath) => {
    const issues = issuesOf(patch(FULL, dotted, "x"));
    expect(issues).toContainEqual(expect.objectContaining({ path: expectedPath }));
  });

  it("names each unknown key of one mapping separately", () => {
    const issues = issuesOf(patches(MINIMAL, { "local_bundle.a": 1, "local_bundle.b": 2 }));
    expect(issues.map((issue) => issue.path)).toEqual(["local_bundle.a", "local_bundle.b"]);
  });

  it("suggests the nearest field for a near miss", () => {
    const [issue] = issuesOf(patch(MINIMAL, "endpoint.https_web.cert_fil", "x"));
    expect(issue?.message).toContain("cert_file");
  });
});

describe("defaults", () => {
  it("fills in every default, from CONFIG_DEFAULTS", () => {
    const config = toBundlegateConfig(documentOf(MINIMAL), { baseDir: "/etc/bundlegate" });
    const D = CONFIG_DEFAULTS;
    expect(config).toEqual({
      trustDomain: "example.org",
      logLevel: D.log_level,
      localBundle: {
        file: "/etc/bundlegate/bundle.json",
        format: D.local_bundle.format,
        refreshHintSeconds: D.local_bundle.refresh_hint_seconds,
        maxBytes: D.local_bundle.max_bytes,
      },
      endpoint: {
        path: D.endpoint.path,
        timeouts: {
          headersMs: D.endpoint.timeouts.headers_ms,
          requestMs: D.endpoint.timeouts.request_ms,
          keepAliveMs: D.endpoint.timeouts.keep_alive_ms,
        },
        httpsWeb: {
          listen: D.endpoint.https_web.listen,
          certFile: "/etc/bundlegate/web.crt",
          keyFile: "/etc/bundlegate/web.key",
        },
      },
      internal: { listen: D.internal.listen },
      metrics: { listen: D.metrics.listen },
      store: { kind: "embedded" },
      filePollIntervalMs: D.file_poll_interval_ms,
      federation: {
        maxBundleBytes: D.federation.max_bundle_bytes,
        maxBundleKeys: D.federation.max_bundle_keys,
        connectTimeoutMs: D.federation.connect_timeout_ms,
        headersTimeoutMs: D.federation.headers_timeout_ms,
        totalTimeoutMs: D.federation.total_timeout_ms,
        maxRedirects: D.federation.max_redirects,
        leaseMs: D.federation.lease_ms,
        historyLimit: D.federation.history_limit,
        minRefreshHintSeconds: D.federation.min_refresh_hint_seconds,
        maxRefreshHintSeconds: D.federation.max_refresh_hint_seconds,
        defaultRefreshHintSeconds: D.federation.default_refresh_hint_seconds,
        jitterRatio: D.federation.jitter_ratio,
        backoffInitialSeconds: D.federation.backoff_initial_seconds,
      },
      relationships: [],
    });
    expect(config.federation).not.toHaveProperty("httpsProxy");
    expect(config.federation).not.toHaveProperty("noProxy");
    expect(config.endpoint).not.toHaveProperty("cacheMaxAgeSeconds");
    expect(config.endpoint).not.toHaveProperty("httpsSpiffe");
  });

  it("has the documented values", () => {
    expect(CONFIG_DEFAULTS).toEqual({
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
      metrics: { listen: { host: "127.0.0.1", port: 9464 } },
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
      relay: { listen: { host: "0.0.0.0", port: 8446 } },
      distribution: { audience: ["bundlegate"], tokens: [], allow: {}, client_certificates: false },
      admin: {
        tokens: [],
        jwt: { scope_claim: "scope" },
        rate_limit: { window_seconds: 60, max_requests: 300 },
        invitations: { ttl_seconds: 3600, max_ttl_seconds: 86_400 },
        expiry_check_interval_ms: 5000,
        audit_limit: 100_000,
      },
    });
    expect(Object.isFrozen(CONFIG_DEFAULTS.endpoint.https_web.listen)).toBe(true);
    expect(Object.isFrozen(CONFIG_DEFAULTS.federation)).toBe(true);
  });

  it("defaults each listen field on its own", () => {
    const doc = documentOf(patch(MINIMAL, "endpoint.https_web.listen", { port: 9443 }));
    expect(doc.endpoint.https_web?.listen).toEqual({ host: "0.0.0.0", port: 9443 });
    const spiffe = documentOf(patch(FULL, "endpoint.https_spiffe.listen", { host: "::1" }));
    expect(spiffe.endpoint.https_spiffe?.listen).toEqual({ host: "::1", port: 8444 });
  });

  it("fills in the redis defaults", () => {
    const config = toBundlegateConfig(documentOf(patch(MINIMAL, "store", { kind: "redis", url: "redis://r" })), {
      baseDir: "/",
    });
    expect(config.store).toEqual({ kind: "redis", url: "redis://r", keyPrefix: "bundlegate", commandTimeoutMs: 2000 });
  });
});

describe("toBundlegateConfig", () => {
  it("maps every field to camelCase and resolves relative paths against baseDir", () => {
    const baseDir = path.resolve("/srv/bg/conf");
    const config = toBundlegateConfig(
      documentOf(patch(FULL, "store", { kind: "embedded", snapshot_file: "s/state.json" })),
      {
        baseDir,
      },
    );
    expect(config).toEqual({
      trustDomain: "example.org",
      logLevel: "debug",
      localBundle: { file: "/etc/bundlegate/bundle.pem", format: "pem", refreshHintSeconds: 600, maxBytes: 4096 },
      endpoint: {
        path: "/bundle",
        cacheMaxAgeSeconds: 600,
        timeouts: { headersMs: 1000, requestMs: 2000, keepAliveMs: 3000 },
        httpsWeb: {
          listen: { host: "10.0.0.1", port: 443 },
          certFile: path.join(baseDir, "web.crt"),
          keyFile: path.join(baseDir, "web.key"),
        },
        httpsSpiffe: {
          listen: { host: "10.0.0.1", port: 8444 },
          endpointSpiffeId: "spiffe://example.org/bundlegate",
          svidFile: path.join(baseDir, "svid.pem"),
          svidKeyFile: path.join(baseDir, "svid.key"),
        },
      },
      internal: { listen: { host: "127.0.0.1", port: 9090 } },
      metrics: { listen: { host: "127.0.0.1", port: 9464 } },
      store: { kind: "embedded", snapshotFile: path.join(baseDir, "s/state.json") },
      filePollIntervalMs: 1000,
      federation: expect.objectContaining({ maxBundleBytes: 65_536, jitterRatio: 0.1 }),
      relationships: [],
    });
  });

  it("maps a redis store", () => {
    const config = toBundlegateConfig(documentOf(FULL), { baseDir: "/" });
    expect(config.store).toEqual({
      kind: "redis",
      url: "rediss://user:secret@redis.internal:6380/0",
      keyPrefix: "{bg}",
      commandTimeoutMs: 500,
    });
  });

  it("returns a deeply frozen config", () => {
    const config = toBundlegateConfig(documentOf(FULL), { baseDir: "/" });
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.endpoint.httpsWeb?.listen)).toBe(true);
    expect(Object.isFrozen(config.store)).toBe(true);
  });
});

describe("CONFIG_FIELDS", () => {
  it("lists every settable field with how the environment spells its value", () => {
    expect(Object.fromEntries(CONFIG_FIELDS)).toEqual({
      trust_domain: "string",
      log_level: "string",
      file_poll_interval_ms: "number",
      "local_bundle.file": "string",
      "local_bundle.format": "string",
      "local_bundle.refresh_hint_seconds": "number",
      "local_bundle.max_bytes": "number",
      "endpoint.path": "string",
      "endpoint.cache_max_age_seconds": "number",
      "endpoint.timeouts.headers_ms": "number",
      "endpoint.timeouts.request_ms": "number",
      "endpoint.timeouts.keep_alive_ms": "number",
      "endpoint.https_web.listen.host": "string",
      "endpoint.https_web.listen.port": "number",
      "endpoint.https_web.cert_file": "string",
      "endpoint.https_web.key_file": "string",
      "endpoint.https_spiffe.listen.host": "string",
      "endpoint.https_spiffe.listen.port": "number",
      "endpoint.https_spiffe.endpoint_spiffe_id": "string",
      "endpoint.https_spiffe.svid_file": "string",
      "endpoint.https_spiffe.svid_key_file": "string",
      "internal.listen.host": "string",
      "internal.listen.port": "number",
      "internal.tls.cert_file": "string",
      "internal.tls.key_file": "string",
      "internal.tls.client_ca_file": "string",
      "metrics.listen.host": "string",
      "metrics.listen.port": "number",
      "store.kind": "string",
      "store.snapshot_file": "string",
      "store.url": "string",
      "store.key_prefix": "string",
      "store.command_timeout_ms": "number",
      "federation.max_bundle_bytes": "number",
      "federation.max_bundle_keys": "number",
      "federation.connect_timeout_ms": "number",
      "federation.headers_timeout_ms": "number",
      "federation.total_timeout_ms": "number",
      "federation.max_redirects": "number",
      "federation.lease_ms": "number",
      "federation.history_limit": "number",
      "federation.min_refresh_hint_seconds": "number",
      "federation.max_refresh_hint_seconds": "number",
      "federation.default_refresh_hint_seconds": "number",
      "federation.jitter_ratio": "number",
      "federation.backoff_initial_seconds": "number",
      "distribution.client_certificates": "boolean",
      "admin.jwt.issuer": "string",
      "admin.jwt.audience": "string",
      "admin.jwt.jwks_file": "string",
      "admin.jwt.jwks_url": "string",
      "admin.jwt.scope_claim": "string",
      "admin.rate_limit.window_seconds": "number",
      "admin.rate_limit.max_requests": "number",
      "admin.invitations.ttl_seconds": "number",
      "admin.invitations.max_ttl_seconds": "number",
      "admin.invitations.endpoint_url": "string",
      "admin.expiry_check_interval_ms": "number",
      "admin.audit_limit": "number",
      "relay.listen.host": "string",
      "relay.listen.port": "number",
      "relay.svid_file": "string",
      "relay.svid_key_file": "string",
      "relay.endpoint_spiffe_id": "string",
    });
  });
});
