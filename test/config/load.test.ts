import { mkdir, mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ConfigError, type ConfigIssue } from "../../src/config/errors.js";
import { type ConfigEnv, envVarName, loadConfigFile, parseConfig } from "../../src/config/load.js";
import { CONFIG_FIELDS, configDocumentSchema } from "../../src/config/schema.js";

const relationshipSchema = configDocumentSchema.shape.relationships.unwrap().element;
const refreshSchema = relationshipSchema.shape.refresh.unwrap();
const policySchema = relationshipSchema.shape.policy.unwrap();

const EXAMPLE = fileURLToPath(new URL("../../config/bundlegate.example.yaml", import.meta.url));
const BASE = path.resolve("/etc/bundlegate");

const MINIMAL = `
trust_domain: example.org
local_bundle:
  file: bundle.json
endpoint:
  https_web:
    cert_file: web.crt
    key_file: web.key
`;

function parse(text: string, env: ConfigEnv = {}) {
  return parseConfig(text, { env, baseDir: BASE });
}

function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return error as ConfigError;
  }
  throw new Error("expected a ConfigError, got a result");
}

async function rejected(promise: Promise<unknown>): Promise<ConfigError> {
  const error = await promise.then(
    () => {
      throw new Error("expected a ConfigError, got a result");
    },
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ConfigError);
  return error as ConfigError;
}

function issuesOf(fn: () => unknown): readonly ConfigIssue[] {
  const error = configError(fn);
  expect(error.code).toBe("ERR_CONFIG_INVALID");
  expect(error.details.issues).toEqual(error.issues);
  return error.issues;
}

describe("parseConfig: YAML", () => {
  it("reads a minimal file and fills in defaults", () => {
    const config = parse(MINIMAL);
    expect(config.trustDomain).toBe("example.org");
    expect(config.logLevel).toBe("info");
    expect(config.endpoint.httpsWeb?.listen).toEqual({ host: "0.0.0.0", port: 8443 });
    expect(config.internal.listen).toEqual({ host: "127.0.0.1", port: 8080 });
    expect(config.store).toEqual({ kind: "embedded" });
  });

  it("resolves relative paths against baseDir and keeps absolute ones", () => {
    const config = parse(MINIMAL.replace("file: bundle.json", "file: /var/lib/bundle.json"));
    expect(config.localBundle.file).toBe("/var/lib/bundle.json");
    expect(config.endpoint.httpsWeb?.certFile).toBe(path.join(BASE, "web.crt"));
    expect(config.endpoint.httpsWeb?.keyFile).toBe(path.join(BASE, "web.key"));
  });

  it.each<[string, string, number, number]>([
    ["a duplicate key", `${MINIMAL}trust_domain: other.org\n`, 9, 1],
    ["a duplicate nested key", "endpoint:\n  path: /a\n  path: /b\n", 3, 3],
    ["a syntax error", "trust_domain: [unclosed\n", 2, 1],
    ["a bad indentation", "local_bundle:\n  file: a\n file: b\n", 3, 1],
    ["an unknown tag", "trust_domain: !custom example.org\n", 1, 15],
    ["two documents", `${MINIMAL}---\n${MINIMAL}`, 9, 1],
  ])("refuses %s with ERR_CONFIG_YAML and its position", (_name, text, line, column) => {
    const error = configError(() => parse(text));
    expect(error.code).toBe("ERR_CONFIG_YAML");
    expect(error.details).toMatchObject({ line, column });
  });

  it("refuses an alias bomb", () => {
    const bomb = [
      "a: &a [x, x, x, x, x, x, x, x, x, x]",
      "b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]",
      "c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]",
      "d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]",
      "e: [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]",
    ].join("\n");
    expect(configError(() => parse(bomb)).code).toBe("ERR_CONFIG_YAML");
  });

  it("allows a few plain aliases", () => {
    const text = `
trust_domain: example.org
local_bundle: { file: bundle.json }
endpoint:
  https_web: { listen: &listen { host: 127.0.0.1, port: 0 }, cert_file: a, key_file: b }
  https_spiffe:
    listen: *listen
    endpoint_spiffe_id: spiffe://example.org/bg
    svid_file: c
    svid_key_file: d
internal: { listen: *listen }
`;
    expect(parse(text).internal.listen).toEqual({ host: "127.0.0.1", port: 0 });
  });

  it("reads YAML 1.2: yes/no and 0777 are not booleans and octals", () => {
    const error = configError(() => parse(`${MINIMAL}log_level: no\n`));
    expect(error.issues).toContainEqual(expect.objectContaining({ path: "log_level" }));
    expect(parse(`${MINIMAL}file_poll_interval_ms: 0777\n`).filePollIntervalMs).toBe(777);
  });

  it("treats an empty file as an empty mapping and names the required fields", () => {
    expect(issuesOf(() => parse("")).map((issue) => issue.path)).toEqual(
      expect.arrayContaining(["trust_domain", "local_bundle", "endpoint"]),
    );
  });

  it("names the document when it is not a mapping", () => {
    expect(issuesOf(() => parse("- a\n- b\n")).map((issue) => issue.path)).toEqual([""]);
  });

  it("lists every issue in the message, one per line, each starting with its path", () => {
    const text = MINIMAL.replace("example.org", "Example.org").replace("cert_file: web.crt", "cert_fil: web.crt");
    const error = configError(() => parseConfig(text, { baseDir: BASE, source: "bg.yaml" }));
    expect(error.code).toBe("ERR_CONFIG_INVALID");
    const lines = error.message.split("\n").slice(1);
    expect(lines).toHaveLength(error.issues.length);
    expect(error.issues.map((issue) => issue.path)).toEqual(
      expect.arrayContaining(["trust_domain", "endpoint.https_web.cert_fil", "endpoint.https_web.cert_file"]),
    );
    for (const [i, issue] of error.issues.entries()) expect(lines[i]?.startsWith(`${issue.path}: `)).toBe(true);
    expect(error.details.file).toBe("bg.yaml");
  });
});

describe("parseConfig: environment overrides", () => {
  it("overrides a file value, reading numbers as numbers", () => {
    const config = parse(MINIMAL, {
      BUNDLEGATE_ENDPOINT__HTTPS_WEB__LISTEN__PORT: "9443",
      BUNDLEGATE_LOG_LEVEL: "debug",
      BUNDLEGATE_LOCAL_BUNDLE__REFRESH_HINT_SECONDS: "600",
    });
    expect(config.endpoint.httpsWeb?.listen).toEqual({ host: "0.0.0.0", port: 9443 });
    expect(config.logLevel).toBe("debug");
    expect(config.localBundle.refreshHintSeconds).toBe(600);
  });

  it("overrides the trust domain, keeping string fields verbatim", () => {
    expect(parse(MINIMAL, { BUNDLEGATE_TRUST_DOMAIN: "other.org" }).trustDomain).toBe("other.org");
    expect(parse(MINIMAL, { BUNDLEGATE_TRUST_DOMAIN: "123" }).trustDomain).toBe("123");
    expect(parse(MINIMAL, { BUNDLEGATE_ENDPOINT__PATH: "/0x10" }).endpoint.path).toBe("/0x10");
  });

  it("creates the sections the file lacks", () => {
    const config = parse(MINIMAL, {
      BUNDLEGATE_STORE__KIND: "redis",
      BUNDLEGATE_STORE__URL: "redis://redis:6379",
      BUNDLEGATE_STORE__COMMAND_TIMEOUT_MS: "750",
      BUNDLEGATE_ENDPOINT__TIMEOUTS__KEEP_ALIVE_MS: "1000",
    });
    expect(config.store).toEqual({
      kind: "redis",
      url: "redis://redis:6379",
      keyPrefix: "bundlegate",
      commandTimeoutMs: 750,
    });
    expect(config.endpoint.timeouts.keepAliveMs).toBe(1000);
  });

  it("can supply the whole config on its own", () => {
    const config = parse("", {
      BUNDLEGATE_TRUST_DOMAIN: "example.org",
      BUNDLEGATE_LOCAL_BUNDLE__FILE: "b.json",
      BUNDLEGATE_ENDPOINT__HTTPS_SPIFFE__ENDPOINT_SPIFFE_ID: "spiffe://example.org/bg",
      BUNDLEGATE_ENDPOINT__HTTPS_SPIFFE__SVID_FILE: "svid.pem",
      BUNDLEGATE_ENDPOINT__HTTPS_SPIFFE__SVID_KEY_FILE: "svid.key",
    });
    expect(config.localBundle.file).toBe(path.join(BASE, "b.json"));
    expect(config.endpoint.httpsSpiffe).toMatchObject({
      listen: { host: "0.0.0.0", port: 8444 },
      endpointSpiffeId: "spiffe://example.org/bg",
    });
  });

  it("ignores other variables and unset ones", () => {
    expect(() =>
      parse(MINIMAL, { PATH: "/bin", bundlegate_foo: "x", BUNDLEGATEX: "1", BUNDLEGATE_NOPE: undefined }),
    ).not.toThrow();
  });

  it("ignores the admin CLI's variables, so serve runs in a shell set up for the CLI", () => {
    expect(() =>
      parse(MINIMAL, {
        BUNDLEGATE_API_URL: "http://127.0.0.1:8080",
        BUNDLEGATE_API_TOKEN: "t",
        BUNDLEGATE_API_CA_FILE: "/ca.pem",
      }),
    ).not.toThrow();
    // A near miss is still an error.
    expect(() => parse(MINIMAL, { BUNDLEGATE_API_URLS: "x" })).toThrow();
  });

  it("changes only the field it names, even through a shared YAML alias", () => {
    const text = `
trust_domain: example.org
local_bundle: { file: bundle.json }
endpoint:
  https_web: { listen: &listen { host: 127.0.0.1, port: 0 }, cert_file: a, key_file: b }
internal: { listen: *listen }
`;
    const config = parse(text, { BUNDLEGATE_INTERNAL__LISTEN__PORT: "9090" });
    expect(config.internal.listen.port).toBe(9090);
    expect(config.endpoint.httpsWeb?.listen.port).toBe(0);
  });

  it.each<[string, ConfigEnv, string, string]>([
    [
      "an unknown field",
      { BUNDLEGATE_ENDPOINT__HTTPS_WEB__PROT: "1" },
      "BUNDLEGATE_ENDPOINT__HTTPS_WEB__PROT",
      "endpoint.https_web.prot",
    ],
    ["an unknown top-level name", { BUNDLEGATE_COLOUR: "blue" }, "BUNDLEGATE_COLOUR", "colour"],
    ["a section", { BUNDLEGATE_ENDPOINT__HTTPS_WEB: "x" }, "BUNDLEGATE_ENDPOINT__HTTPS_WEB", "endpoint.https_web"],
    ["a single underscore between levels", { BUNDLEGATE_STORE_KIND: "redis" }, "BUNDLEGATE_STORE_KIND", "store_kind"],
    ["a lower-case spelling", { BUNDLEGATE_trust_domain: "x.org" }, "BUNDLEGATE_trust_domain", "trust_domain"],
    ["an empty name", { BUNDLEGATE_: "x" }, "BUNDLEGATE_", ""],
    [
      "a bad port",
      { BUNDLEGATE_ENDPOINT__HTTPS_WEB__LISTEN__PORT: "99999" },
      "BUNDLEGATE_ENDPOINT__HTTPS_WEB__LISTEN__PORT",
      "endpoint.https_web.listen.port",
    ],
    [
      "a non-number port",
      { BUNDLEGATE_INTERNAL__LISTEN__PORT: "http" },
      "BUNDLEGATE_INTERNAL__LISTEN__PORT",
      "internal.listen.port",
    ],
    [
      "an empty number",
      { BUNDLEGATE_FILE_POLL_INTERVAL_MS: "" },
      "BUNDLEGATE_FILE_POLL_INTERVAL_MS",
      "file_poll_interval_ms",
    ],
    [
      "a list for a number",
      { BUNDLEGATE_INTERNAL__LISTEN__PORT: "[1, 2]" },
      "BUNDLEGATE_INTERNAL__LISTEN__PORT",
      "internal.listen.port",
    ],
    [
      "a mapping for a number",
      { BUNDLEGATE_INTERNAL__LISTEN__PORT: "{a: 1}" },
      "BUNDLEGATE_INTERNAL__LISTEN__PORT",
      "internal.listen.port",
    ],
    [
      "broken YAML for a number",
      { BUNDLEGATE_INTERNAL__LISTEN__PORT: "[1" },
      "BUNDLEGATE_INTERNAL__LISTEN__PORT",
      "internal.listen.port",
    ],
    ["a bad trust domain", { BUNDLEGATE_TRUST_DOMAIN: "Example.org" }, "BUNDLEGATE_TRUST_DOMAIN", "trust_domain"],
    ["a bad store kind", { BUNDLEGATE_STORE__KIND: "memcached" }, "BUNDLEGATE_STORE__KIND", "store.kind"],
    [
      "a bad redis URL",
      { BUNDLEGATE_STORE__KIND: "redis", BUNDLEGATE_STORE__URL: "http://r" },
      "BUNDLEGATE_STORE__URL",
      "store.url",
    ],
    [
      "a redis field on the embedded store",
      { BUNDLEGATE_STORE__URL: "redis://r" },
      "BUNDLEGATE_STORE__URL",
      "store.url",
    ],
    [
      "a listener collision",
      { BUNDLEGATE_INTERNAL__LISTEN__PORT: "8443" },
      "BUNDLEGATE_INTERNAL__LISTEN__PORT",
      "internal.listen.port",
    ],
    [
      "a cache age over the hint",
      { BUNDLEGATE_ENDPOINT__CACHE_MAX_AGE_SECONDS: "301" },
      "BUNDLEGATE_ENDPOINT__CACHE_MAX_AGE_SECONDS",
      "endpoint.cache_max_age_seconds",
    ],
  ])("names the variable for %s", (_name, env, variable, dotted) => {
    const error = configError(() => parse(MINIMAL, env));
    expect(error.code).toBe("ERR_CONFIG_INVALID");
    expect(error.issues).toContainEqual(expect.objectContaining({ path: dotted, env: variable }));
    const lines = error.message.split("\n");
    expect(lines.some((line) => line.startsWith(`${variable} `))).toBe(true);
  });

  it("suggests the variable meant by a near miss", () => {
    const [issue] = issuesOf(() => parse(MINIMAL, { BUNDLEGATE_STORE__KEY_PREFX: "bg" }));
    expect(issue?.message).toContain("BUNDLEGATE_STORE__KEY_PREFIX");
  });

  it("names the YAML path, not a variable, for values from the file", () => {
    const error = configError(() =>
      parse(MINIMAL.replace("example.org", "Example.org"), { BUNDLEGATE_LOG_LEVEL: "info" }),
    );
    expect(error.issues).toEqual([expect.objectContaining({ path: "trust_domain" })]);
    expect(error.issues[0]).not.toHaveProperty("env");
  });

  it("refuses to override inside a value that is not a mapping", () => {
    const text = MINIMAL.replace("endpoint:\n", "store: redis\nendpoint:\n");
    const issues = issuesOf(() => parse(text, { BUNDLEGATE_STORE__KIND: "redis" }));
    expect(issues).toContainEqual(expect.objectContaining({ path: "store.kind", env: "BUNDLEGATE_STORE__KIND" }));
  });

  it("reports environment and file issues together", () => {
    const issues = issuesOf(() =>
      parse(MINIMAL.replace("example.org", "Bad"), { BUNDLEGATE_NOPE: "1", BUNDLEGATE_LOG_LEVEL: "loud" }),
    );
    expect(issues.map((issue) => issue.env ?? issue.path)).toEqual(
      expect.arrayContaining(["BUNDLEGATE_NOPE", "BUNDLEGATE_LOG_LEVEL", "trust_domain"]),
    );
  });

  it("spells variable names as documented", () => {
    expect(envVarName("endpoint.https_web.listen.port")).toBe("BUNDLEGATE_ENDPOINT__HTTPS_WEB__LISTEN__PORT");
    expect(envVarName("trust_domain")).toBe("BUNDLEGATE_TRUST_DOMAIN");
  });
});

describe("loadConfigFile", () => {
  let dir: string;
  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bundlegate-config-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("resolves relative paths against the file's directory, not the working directory", async () => {
    const confDir = path.join(dir, "conf");
    await mkdir(confDir, { recursive: true });
    const file = path.join(confDir, "bundlegate.yaml");
    await writeFile(file, `${MINIMAL}store: { snapshot_file: ../state/snap.json }\n`);
    const config = await loadConfigFile(path.relative(process.cwd(), file), {});
    expect(config.localBundle.file).toBe(path.join(confDir, "bundle.json"));
    expect(config.endpoint.httpsWeb?.certFile).toBe(path.join(confDir, "web.crt"));
    expect(config.store).toEqual({ kind: "embedded", snapshotFile: path.join(dir, "state", "snap.json") });
  });

  it("applies the environment it is given", async () => {
    const file = path.join(dir, "env.yaml");
    await writeFile(file, MINIMAL);
    const config = await loadConfigFile(file, { BUNDLEGATE_ENDPOINT__HTTPS_WEB__KEY_FILE: "keys/web.key" });
    expect(config.endpoint.httpsWeb?.keyFile).toBe(path.join(dir, "keys", "web.key"));
  });

  it("reads through an injected reader", async () => {
    const seen: string[] = [];
    const readFile = async (p: string) => {
      seen.push(p);
      return new TextEncoder().encode(MINIMAL);
    };
    const config = await loadConfigFile("/virtual/conf/bg.yaml", {}, { readFile });
    expect(seen).toEqual([path.resolve("/virtual/conf/bg.yaml")]);
    expect(config.localBundle.file).toBe(path.resolve("/virtual/conf/bundle.json"));
  });

  it("accepts a UTF-8 byte order mark", async () => {
    const file = path.join(dir, "bom.yaml");
    await writeFile(file, `\uFEFF${MINIMAL}`);
    expect((await loadConfigFile(file, {})).trustDomain).toBe("example.org");
  });

  it.each<[string, () => string]>([
    ["a missing file", () => path.join(dir, "missing.yaml")],
    ["a directory", () => dir],
  ])("refuses %s with ERR_CONFIG_UNREADABLE", async (_name, file) => {
    const error = await rejected(loadConfigFile(file(), {}));
    expect(error.code).toBe("ERR_CONFIG_UNREADABLE");
    expect(error.details.file).toBe(file());
  });

  it("refuses bytes that are not UTF-8 with ERR_CONFIG_YAML", async () => {
    const file = path.join(dir, "latin1.yaml");
    await writeFile(file, Buffer.from([0x61, 0x3a, 0x20, 0xe9, 0x0a]));
    expect((await rejected(loadConfigFile(file, {}))).code).toBe("ERR_CONFIG_YAML");
  });

  it("refuses a duplicate key with ERR_CONFIG_YAML naming the file and line", async () => {
    const file = path.join(dir, "dup.yaml");
    await writeFile(file, "trust_domain: a.org\ntrust_domain: b.org\n");
    const error = await rejected(loadConfigFile(file, {}));
    expect(error.code).toBe("ERR_CONFIG_YAML");
    expect(error.details).toMatchObject({ file, line: 2, column: 1 });
    expect(error.message.startsWith(`${file}:2:1: `)).toBe(true);
  });
});

describe("relationships and federation through the loader", () => {
  const EXAMPLES = path.join(path.dirname(EXAMPLE), "examples");
  const WITH_RELATIONSHIPS = `${MINIMAL}
relationships:
  - trust_domain: partner-spiffe.example
    endpoint_url: https://spire.partner-spiffe.example/
    profile: https_spiffe
    endpoint_spiffe_id: spiffe://partner-spiffe.example/spire/server
    bootstrap_bundle_file: partner.json
    owner: team-a
  - trust_domain: second.example
    endpoint_url: https://second.example/
    profile: https_spiffe
    endpoint_spiffe_id: spiffe://second.example/spire/server
    bootstrap_bundle_file: ./partner.json
    owner: team-b
  - trust_domain: web.example
    endpoint_url: https://web.example/
    profile: https_web
    ca_file: /pki/ca.pem
    owner: team-c
`;
  let bootstrap: Buffer;
  let ca: Buffer;
  beforeAll(async () => {
    bootstrap = await readFile(path.join(EXAMPLES, "partner-spiffe-bootstrap.json"));
    ca = await readFile(path.join(EXAMPLES, "partner-web-ca.pem"));
  });
  const fakeDisk = (seen: string[]) => (p: string) => {
    seen.push(p);
    if (p === path.join(BASE, "partner.json")) return bootstrap;
    if (p === "/pki/ca.pem") return ca.toString("utf8");
    throw Object.assign(new Error(`no such file ${p}`), { code: "ENOENT" });
  };

  it("parseConfig reads each referenced file once, relative to baseDir, through its reader", () => {
    const seen: string[] = [];
    const config = parseConfig(WITH_RELATIONSHIPS, { baseDir: BASE, readFile: fakeDisk(seen) });
    expect(seen).toEqual([path.join(BASE, "partner.json"), "/pki/ca.pem"]);
    expect(config.relationships.map((r) => r.profile.kind)).toEqual(["https_spiffe", "https_spiffe", "https_web"]);
    const [first] = config.relationships;
    expect(first?.profile.kind === "https_spiffe" && first.profile.bootstrapBundle.x509Authorities).toHaveLength(1);
  });

  it("loadConfigFile reads them through its async reader, beside the config file", async () => {
    const seen: string[] = [];
    const disk = fakeDisk(seen);
    const readFile = async (p: string) => (p === path.join(BASE, "bg.yaml") ? WITH_RELATIONSHIPS : disk(p));
    const config = await loadConfigFile(path.join(BASE, "bg.yaml"), {}, { readFile });
    expect(seen).toEqual([path.join(BASE, "partner.json"), "/pki/ca.pem"]);
    expect(config.relationships).toHaveLength(3);
  });

  it("reports a file that cannot be read at the field naming it, beside the other issues", async () => {
    const text = WITH_RELATIONSHIPS.replace(
      "bootstrap_bundle_file: ./partner.json",
      "bootstrap_bundle_file: gone.json",
    );
    const issues = issuesOf(() =>
      parseConfig(text.replace("owner: team-c", "owner: ''"), { baseDir: BASE, readFile: fakeDisk([]) }),
    );
    expect(issues).toEqual([
      expect.objectContaining({ path: "relationships[2].owner" }),
      expect.objectContaining({
        path: "relationships[1].bootstrap_bundle_file",
        message: expect.stringContaining("ENOENT"),
      }),
    ]);
  });

  it("reports a missing file on disk as an invalid config, not an unreadable one", async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), "bundlegate-rel-"));
    try {
      const file = path.join(dir, "bg.yaml");
      await writeFile(file, WITH_RELATIONSHIPS);
      await writeFile(path.join(dir, "partner.json"), bootstrap);
      const error = await rejected(loadConfigFile(file, {}));
      expect(error.code).toBe("ERR_CONFIG_INVALID");
      expect(error.issues).toEqual([expect.objectContaining({ path: "relationships[2].ca_file" })]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it("never reads a file for a config without relationships", () => {
    const readFile = () => {
      throw new Error("must not be called");
    };
    expect(parseConfig(MINIMAL, { baseDir: BASE, readFile }).relationships).toEqual([]);
  });

  it("accepts the JSON text bundlegate dev builds, with no reader", () => {
    const text = JSON.stringify({
      trust_domain: "example.org",
      local_bundle: { file: "bundle.json" },
      endpoint: { https_web: { cert_file: "web.pem", key_file: "web.key" } },
    });
    const config = parseConfig(text, { baseDir: BASE, env: {}, source: "bundlegate dev" });
    expect(config.relationships).toEqual([]);
    expect(config.federation.defaultRefreshHintSeconds).toBe(300);
  });

  it("overrides federation fields from the environment", () => {
    const config = parse(MINIMAL, {
      BUNDLEGATE_FEDERATION__JITTER_RATIO: "0.25",
      BUNDLEGATE_FEDERATION__MAX_REDIRECTS: "5",
    });
    expect(config.federation.jitterRatio).toBe(0.25);
    expect(config.federation.maxRedirects).toBe(5);
  });

  it("names the variable of a bad federation override, including a cross-field one", () => {
    const issues = issuesOf(() =>
      parse(MINIMAL, {
        BUNDLEGATE_FEDERATION__JITTER_RATIO: "0.9",
        BUNDLEGATE_FEDERATION__CONNECT_TIMEOUT_MS: "60000",
      }),
    );
    expect(issues).toEqual([
      expect.objectContaining({ path: "federation.jitter_ratio", env: "BUNDLEGATE_FEDERATION__JITTER_RATIO" }),
      expect.objectContaining({
        path: "federation.connect_timeout_ms",
        env: "BUNDLEGATE_FEDERATION__CONNECT_TIMEOUT_MS",
      }),
    ]);
  });

  it("explains that relationships cannot come from the environment", () => {
    for (const name of ["BUNDLEGATE_RELATIONSHIPS", "BUNDLEGATE_RELATIONSHIPS__0__OWNER"]) {
      const [issue] = issuesOf(() => parse(MINIMAL, { [name]: "x" }));
      expect(issue).toMatchObject({ env: name, message: expect.stringContaining("config file only") });
    }
  });

  it("reads the proxy variables from the environment it is given", () => {
    const config = parse(MINIMAL, { HTTPS_PROXY: "http://proxy.internal:3128", no_proxy: ".internal" });
    expect(config.federation).toMatchObject({ httpsProxy: "http://proxy.internal:3128", noProxy: ".internal" });
    const [issue] = issuesOf(() => parse(MINIMAL, { HTTPS_PROXY: "proxy.internal:3128" }));
    expect(issue).toMatchObject({ path: "federation.https_proxy", env: "HTTPS_PROXY" });
    expect(configError(() => parse(MINIMAL, { HTTPS_PROXY: "x" })).message).toContain(
      "HTTPS_PROXY (federation.https_proxy): ",
    );
  });
});

describe("config/bundlegate.example.yaml", () => {
  it("loads with parseConfig", async () => {
    const text = await readFile(EXAMPLE, "utf8");
    const config = parseConfig(text, { baseDir: path.dirname(EXAMPLE) });
    expect(config.trustDomain).toBe("example.org");
    expect(config.endpoint.httpsWeb).toBeDefined();
    expect(config.endpoint.httpsSpiffe?.endpointSpiffeId).toBe("spiffe://example.org/bundlegate");
    expect(config.store.kind).toBe("embedded");
  });

  it("loads with loadConfigFile", async () => {
    const config = await loadConfigFile(EXAMPLE, {});
    expect(config.localBundle.file).toBe(path.join(path.dirname(EXAMPLE), "bundle.json"));
  });

  it("declares a web and a spiffe relationship, reading their files next to it", async () => {
    const config = await loadConfigFile(EXAMPLE, {});
    const [web, spiffe] = config.relationships;
    expect(config.relationships).toHaveLength(2);
    expect(web).toMatchObject({
      trustDomain: "partner-web.example",
      profile: { kind: "https_web", caFile: path.join(path.dirname(EXAMPLE), "examples/partner-web-ca.pem") },
      refresh: { kind: "interval", seconds: 120 },
      state: "active",
      origin: "config",
    });
    expect(web?.profile.kind === "https_web" && web.profile.caPem).toMatch(/^-----BEGIN CERTIFICATE-----/);
    expect(spiffe).toMatchObject({
      trustDomain: "partner-spiffe.example",
      profile: { kind: "https_spiffe", endpointSpiffeId: "spiffe://partner-spiffe.example/spire/server" },
      refresh: { kind: "cron", expression: "*/10 * * * *" },
    });
    expect(spiffe?.profile.kind === "https_spiffe" && spiffe.profile.bootstrapBundle.x509Authorities).toHaveLength(1);
  });

  it("mentions every field", async () => {
    const text = await readFile(EXAMPLE, "utf8");
    for (const field of CONFIG_FIELDS.keys()) {
      const key = field.split(".").at(-1)!;
      expect(text, field).toMatch(new RegExp(`^[ #]*${key}:`, "m"));
    }
  });

  it("mentions every relationship field", async () => {
    const text = await readFile(EXAMPLE, "utf8");
    const keys = [
      ...Object.keys(relationshipSchema.shape),
      ...Object.keys(refreshSchema.shape),
      ...Object.keys(policySchema.shape),
    ];
    expect(keys.length).toBeGreaterThan(20);
    for (const key of keys) expect(text, key).toMatch(new RegExp(`^[ #-]*${key}:`, "m"));
  });

  it("documents a redis store that loads once uncommented", async () => {
    const text = await readFile(EXAMPLE, "utf8");
    const lines = text.split("\n");
    const start = lines.indexOf("store:");
    const end = lines.findIndex((line, i) => i > start && /^[a-z]/.test(line));
    const redis = lines
      .slice(start + 1, end < 0 ? undefined : end)
      .filter((line) => /^ {2}# [a-z_]+: /.test(line))
      .map((line) => line.replace("# ", ""));
    const uncommented = [...lines.slice(0, start), "store:", ...redis, ...(end < 0 ? [] : lines.slice(end))].join("\n");
    const config = parseConfig(uncommented, { baseDir: path.dirname(EXAMPLE) });
    expect(config.store).toEqual({
      kind: "redis",
      url: "rediss://redis.internal:6380/0",
      keyPrefix: "bundlegate",
      commandTimeoutMs: 2000,
    });
  });
});
