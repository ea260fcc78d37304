import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { ConfigError, type ConfigIssue } from "../../src/config/errors.js";
import { type ConfigEnv, parseConfig } from "../../src/config/load.js";
import {
  CONFIG_DEFAULTS,
  CONFIG_FIELDS,
  checkConfigDocument,
  FILE_ONLY_FIELDS,
  toBundlegateConfig,
} from "../../src/config/schema.js";

type Doc = Record<string, unknown>;

const EXAMPLE = fileURLToPath(new URL("../../config/bundlegate.example.yaml", import.meta.url));
const BASE = path.resolve("/etc/bundlegate");
const DIGEST_A = "a".repeat(64);
const DIGEST_B = "0123456789abcdef".repeat(4);

const PARTNER = {
  trust_domain: "partner.example",
  endpoint_url: "https://bundle.partner.example/",
  profile: "https_web",
  owner: "platform",
};

const BASE_DOC: Doc = {
  trust_domain: "example.org",
  local_bundle: { file: "bundle.json" },
  endpoint: { https_web: { cert_file: "web.crt", key_file: "web.key" } },
  relationships: [PARTNER, { ...PARTNER, trust_domain: "second.example", endpoint_url: "https://second.example/" }],
};

const RELAY = {
  svid_file: "svid/relay.pem",
  svid_key_file: "svid/relay.key",
  endpoint_spiffe_id: "spiffe://example.org/bundlegate/relay",
  trust_domains: ["*"],
};

function withSections(sections: Doc): Doc {
  return { ...structuredClone(BASE_DOC), ...structuredClone(sections) };
}

function issuesOf(doc: unknown): ConfigIssue[] {
  const result = checkConfigDocument(doc);
  if (result.ok) throw new Error("expected the document to be refused");
  return result.issues;
}

function configOf(doc: unknown) {
  const result = checkConfigDocument(doc);
  if (!result.ok) throw new Error(`expected a valid document, got ${JSON.stringify(result.issues)}`);
  return toBundlegateConfig(result.document, { baseDir: BASE, resolved: result.resolved });
}

/** The single issue of `doc`, which must be at `at`. */
function onlyIssue(doc: unknown, at: string): ConfigIssue {
  const issues = issuesOf(doc);
  expect(issues.map((issue) => issue.path)).toEqual([at]);
  return issues[0]!;
}

describe("distribution and relay: defaults", () => {
  it("are in CONFIG_DEFAULTS, frozen", () => {
    expect(CONFIG_DEFAULTS.distribution).toEqual({
      audience: ["bundlegate"],
      tokens: [],
      allow: {},
      client_certificates: false,
    });
    expect(CONFIG_DEFAULTS.relay).toEqual({ listen: { host: "0.0.0.0", port: 8446 } });
    expect(Object.isFrozen(CONFIG_DEFAULTS.distribution.audience)).toBe(true);
    expect(Object.isFrozen(CONFIG_DEFAULTS.relay.listen)).toBe(true);
  });

  it("leave the distribution API, the relay and internal TLS disabled when their sections are absent", () => {
    const config = configOf(BASE_DOC);
    expect(config).not.toHaveProperty("distribution");
    expect(config).not.toHaveProperty("relay");
    expect(config.internal).toEqual({ listen: CONFIG_DEFAULTS.internal.listen });
  });

  it("fill in an empty distribution section", () => {
    const D = CONFIG_DEFAULTS.distribution;
    expect(configOf(withSections({ distribution: {} })).distribution).toEqual({
      audience: D.audience,
      tokens: [],
      allow: {},
      clientCertificates: D.client_certificates,
    });
  });

  it("fill in the relay listener, field by field", () => {
    expect(configOf(withSections({ relay: RELAY })).relay?.listen).toEqual(CONFIG_DEFAULTS.relay.listen);
    expect(configOf(withSections({ relay: { ...RELAY, listen: { port: 9446 } } })).relay?.listen).toEqual({
      host: "0.0.0.0",
      port: 9446,
    });
  });

  it("never share the default array between configs", () => {
    const first = configOf(withSections({ distribution: {} }));
    const second = configOf(withSections({ distribution: {} }));
    expect(first.distribution?.audience).not.toBe(CONFIG_DEFAULTS.distribution.audience);
    expect(first.distribution?.audience).not.toBe(second.distribution?.audience);
  });
});

describe("distribution and relay: mapping to camelCase", () => {
  it("maps a full distribution section and internal TLS", () => {
    const config = configOf(
      withSections({
        internal: {
          listen: { port: 9090 },
          tls: { cert_file: "tls/internal.crt", key_file: "/abs/internal.key", client_ca_file: "tls/ca.pem" },
        },
        distribution: {
          audience: ["bundlegate", "spire"],
          tokens: [
            { name: "eu", sha256: DIGEST_A, spiffe_id: "spiffe://example.org/spire/server-eu" },
            { name: "ci.reader_1", sha256: DIGEST_B },
          ],
          allow: {
            "partner.example": ["spiffe://example.org/spire/server-eu", "token:ci.reader_1"],
            "*": ["*"],
          },
          client_certificates: true,
        },
      }),
    );
    expect(config.internal).toEqual({
      listen: { host: "127.0.0.1", port: 9090 },
      tls: {
        certFile: path.join(BASE, "tls/internal.crt"),
        keyFile: path.resolve("/abs/internal.key"),
        clientCaFile: path.join(BASE, "tls/ca.pem"),
      },
    });
    expect(config.distribution).toEqual({
      audience: ["bundlegate", "spire"],
      tokens: [
        { name: "eu", sha256: DIGEST_A, spiffeId: "spiffe://example.org/spire/server-eu" },
        { name: "ci.reader_1", sha256: DIGEST_B },
      ],
      allow: {
        "partner.example": ["spiffe://example.org/spire/server-eu", "token:ci.reader_1"],
        "*": ["*"],
      },
      clientCertificates: true,
    });
    expect(config.distribution?.tokens[1]).not.toHaveProperty("spiffeId");
    expect(Object.isFrozen(config.distribution?.allow["partner.example"])).toBe(true);
  });

  it("maps internal TLS without a client CA", () => {
    const config = configOf(withSections({ internal: { tls: { cert_file: "a.crt", key_file: "a.key" } } }));
    expect(config.internal.tls).toEqual({ certFile: path.join(BASE, "a.crt"), keyFile: path.join(BASE, "a.key") });
  });

  it('maps a relay for every relationship (["*"]) to "all"', () => {
    expect(configOf(withSections({ relay: { ...RELAY, listen: { host: "10.0.0.1", port: 443 } } })).relay).toEqual({
      listen: { host: "10.0.0.1", port: 443 },
      svidFile: path.join(BASE, "svid/relay.pem"),
      svidKeyFile: path.join(BASE, "svid/relay.key"),
      endpointSpiffeId: "spiffe://example.org/bundlegate/relay",
      trustDomains: "all",
    });
  });

  it("maps a relay for some relationships to their list", () => {
    const config = configOf(withSections({ relay: { ...RELAY, trust_domains: ["second.example"] } }));
    expect(config.relay?.trustDomains).toEqual(["second.example"]);
  });

  it("lets the relay listener share a port with nothing only when hosts differ", () => {
    const relay = { ...RELAY, listen: { host: "127.0.0.2", port: 8080 } };
    expect(configOf(withSections({ relay })).relay?.listen).toEqual({ host: "127.0.0.2", port: 8080 });
  });
});

describe("distribution: every bad field is named by its path", () => {
  const distribution = (section: Doc) => withSections({ distribution: section });

  it.each([
    ["uppercase hex", DIGEST_A.toUpperCase()],
    ["too short", "ab"],
    ["the token itself", "my-secret-token"],
  ])("refuses a sha256 that is %s, without echoing it", (_, sha256) => {
    const issue = onlyIssue(distribution({ tokens: [{ name: "a", sha256 }] }), "distribution.tokens[0].sha256");
    expect(issue.message).toContain("64 lowercase hex");
    expect(issue.message).not.toContain(sha256);
  });

  it("refuses duplicate token names", () => {
    const issue = onlyIssue(
      distribution({
        tokens: [
          { name: "eu", sha256: DIGEST_A },
          { name: "us", sha256: "b".repeat(64) },
          { name: "eu", sha256: DIGEST_B },
        ],
      }),
      "distribution.tokens[2].name",
    );
    expect(issue.message).toContain("distribution.tokens[0]");
  });

  it("refuses two tokens with the same digest", () => {
    const issue = onlyIssue(
      distribution({
        tokens: [
          { name: "a", sha256: DIGEST_A },
          { name: "b", sha256: DIGEST_A },
        ],
      }),
      "distribution.tokens[1].sha256",
    );
    expect(issue.message).toContain("duplicate");
  });

  it("refuses a token name that is empty or has odd characters", () => {
    onlyIssue(distribution({ tokens: [{ name: "", sha256: DIGEST_A }] }), "distribution.tokens[0].name");
    onlyIssue(distribution({ tokens: [{ name: "a b", sha256: DIGEST_A }] }), "distribution.tokens[0].name");
  });

  it("refuses a token spiffe_id of another trust domain", () => {
    const issue = onlyIssue(
      distribution({ tokens: [{ name: "a", sha256: DIGEST_A, spiffe_id: "spiffe://partner.example/spire/server" }] }),
      "distribution.tokens[0].spiffe_id",
    );
    expect(issue.message).toContain("not in trust_domain example.org");
  });

  it("refuses a token spiffe_id that is not a SPIFFE ID or has no path", () => {
    onlyIssue(
      distribution({ tokens: [{ name: "a", sha256: DIGEST_A, spiffe_id: "https://example.org/x" }] }),
      "distribution.tokens[0].spiffe_id",
    );
    onlyIssue(
      distribution({ tokens: [{ name: "a", sha256: DIGEST_A, spiffe_id: "spiffe://example.org" }] }),
      "distribution.tokens[0].spiffe_id",
    );
  });

  it("refuses unknown token fields", () => {
    onlyIssue(distribution({ tokens: [{ name: "a", sha256: DIGEST_A, token: "x" }] }), "distribution.tokens[0].token");
  });

  it("refuses an allow key that is not a configured relationship's trust domain", () => {
    const issue = onlyIssue(
      distribution({ allow: { "unknown.example": ["*"] } }),
      'distribution.allow["unknown.example"]',
    );
    expect(issue.message).toContain("not the trust_domain of a configured relationship");
  });

  it("refuses this gateway's own trust domain as an allow key", () => {
    const issue = onlyIssue(distribution({ allow: { "example.org": ["*"] } }), 'distribution.allow["example.org"]');
    expect(issue.message).toContain("own trust domain");
  });

  it.each([
    ["not a SPIFFE ID", "example.org/workload"],
    ["in another trust domain", "spiffe://partner.example/workload"],
    ["without a path", "spiffe://example.org"],
    ["an unknown token", "token:nobody"],
  ])("refuses an allow value %s", (_, id) => {
    onlyIssue(
      distribution({ allow: { "partner.example": ["spiffe://example.org/ok", id] } }),
      'distribution.allow["partner.example"][1]',
    );
  });

  it("refuses an allow value that is not a list of strings", () => {
    onlyIssue(distribution({ allow: { "*": "spiffe://example.org/x" } }), 'distribution.allow["*"]');
    onlyIssue(distribution({ allow: { "*": [42] } }), 'distribution.allow["*"][0]');
  });

  it("refuses an empty audience list and an empty audience", () => {
    onlyIssue(distribution({ audience: [] }), "distribution.audience");
    onlyIssue(distribution({ audience: ["bundlegate", ""] }), "distribution.audience[1]");
  });

  it("refuses a client_certificates that is not a boolean", () => {
    onlyIssue(distribution({ client_certificates: "yes" }), "distribution.client_certificates");
  });

  it("requires internal.tls when client_certificates is true", () => {
    const issue = onlyIssue(distribution({ client_certificates: true }), "internal.tls");
    expect(issue.message).toContain("distribution.client_certificates");
  });

  it("names each bad internal.tls field", () => {
    const issues = issuesOf(withSections({ internal: { tls: { cert_file: "", kee_file: "x" } } }));
    expect(issues.map((issue) => issue.path).sort()).toEqual([
      "internal.tls.cert_file",
      "internal.tls.kee_file",
      "internal.tls.key_file",
    ]);
  });

  it("refuses an unknown distribution field, suggesting the near one", () => {
    const issue = onlyIssue(distribution({ client_certificate: true }), "distribution.client_certificate");
    expect(issue.message).toContain("client_certificates");
  });

  it("reports every problem at once", () => {
    const issues = issuesOf(
      distribution({
        tokens: [
          { name: "a", sha256: "nope" },
          { name: "a", sha256: DIGEST_A },
        ],
        allow: { "x.example": ["token:b"] },
        client_certificates: true,
      }),
    );
    expect(issues.map((issue) => issue.path).sort()).toEqual([
      'distribution.allow["x.example"]',
      'distribution.allow["x.example"][0]',
      "distribution.tokens[0].sha256",
      "distribution.tokens[1].name",
      "internal.tls",
    ]);
  });
});

describe("relay: every bad field is named by its path", () => {
  const relay = (changes: Doc) => withSections({ relay: { ...RELAY, ...changes } });

  it("refuses an endpoint_spiffe_id in another trust domain", () => {
    const issue = onlyIssue(
      relay({ endpoint_spiffe_id: "spiffe://partner.example/relay" }),
      "relay.endpoint_spiffe_id",
    );
    expect(issue.message).toContain("not in trust_domain example.org");
  });

  it("refuses an endpoint_spiffe_id without a path", () => {
    onlyIssue(relay({ endpoint_spiffe_id: "spiffe://example.org" }), "relay.endpoint_spiffe_id");
  });

  it("refuses trust_domains naming an unknown relationship", () => {
    const issue = onlyIssue(relay({ trust_domains: ["partner.example", "unknown.example"] }), "relay.trust_domains[1]");
    expect(issue.message).toContain("not the trust_domain of a configured relationship");
  });

  it.each([
    ["this gateway's own trust domain", ["example.org"], "relay.trust_domains[0]"],
    ["an invalid name", ["Partner.Example"], "relay.trust_domains[0]"],
    ['"*" with others', ["partner.example", "*"], "relay.trust_domains[1]"],
    ["a duplicate", ["partner.example", "partner.example"], "relay.trust_domains[1]"],
    ["nothing", [], "relay.trust_domains"],
  ])("refuses trust_domains with %s", (_, trustDomains, at) => {
    onlyIssue(relay({ trust_domains: trustDomains }), at);
  });

  it("refuses a missing trust_domains, svid_file and svid_key_file", () => {
    const issues = issuesOf(withSections({ relay: { endpoint_spiffe_id: RELAY.endpoint_spiffe_id } }));
    expect(issues.map((issue) => issue.path).sort()).toEqual([
      "relay.svid_file",
      "relay.svid_key_file",
      "relay.trust_domains",
    ]);
  });

  it.each([
    ["the https_web listener", { port: 8443 }, "endpoint.https_web.listen"],
    ["the internal listener", { host: "127.0.0.1", port: 8080 }, "internal.listen"],
  ])("refuses a port colliding with %s", (_, listen, other) => {
    const issue = onlyIssue(relay({ listen }), "relay.listen.port");
    expect(issue.message).toContain(`collides with ${other}`);
  });

  it("refuses the default relay port when another listener takes it", () => {
    const doc = withSections({ relay: RELAY, internal: { listen: { host: "0.0.0.0", port: 8446 } } });
    onlyIssue(doc, "relay.listen.port");
  });

  it("lets port 0 (a free port) be used by several listeners", () => {
    const doc = withSections({ relay: { ...RELAY, listen: { port: 0 } }, internal: { listen: { port: 0 } } });
    expect(checkConfigDocument(doc).ok).toBe(true);
  });
});

describe("distribution and relay: environment overrides", () => {
  const MINIMAL = `
trust_domain: example.org
local_bundle:
  file: bundle.json
endpoint:
  https_web:
    cert_file: web.crt
    key_file: web.key
`;
  const parse = (env: ConfigEnv) => parseConfig(MINIMAL, { env, baseDir: BASE });

  it("lists the scalar fields, and no list or mapping", () => {
    expect(CONFIG_FIELDS.get("distribution.client_certificates")).toBe("boolean");
    expect(CONFIG_FIELDS.get("internal.tls.cert_file")).toBe("string");
    expect(CONFIG_FIELDS.get("internal.tls.client_ca_file")).toBe("string");
    expect(CONFIG_FIELDS.get("relay.listen.port")).toBe("number");
    expect(CONFIG_FIELDS.get("relay.endpoint_spiffe_id")).toBe("string");
    for (const field of ["distribution.audience", "distribution.tokens", "distribution.allow", "relay.trust_domains"]) {
      expect(CONFIG_FIELDS.has(field), field).toBe(false);
      expect(FILE_ONLY_FIELDS).toContain(field);
    }
    expect(FILE_ONLY_FIELDS).toContain("relationships");
  });

  it("sets scalar fields, reading booleans and numbers as YAML scalars", () => {
    const config = parse({
      BUNDLEGATE_INTERNAL__TLS__CERT_FILE: "tls/i.crt",
      BUNDLEGATE_INTERNAL__TLS__KEY_FILE: "tls/i.key",
      BUNDLEGATE_DISTRIBUTION__CLIENT_CERTIFICATES: "true",
    });
    expect(config.internal.tls).toEqual({
      certFile: path.join(BASE, "tls/i.crt"),
      keyFile: path.join(BASE, "tls/i.key"),
    });
    expect(config.distribution).toMatchObject({ clientCertificates: true, audience: ["bundlegate"] });
  });

  it("creates the relay section from variables, reporting what it still lacks", () => {
    const issues = catchIssues(() => parse({ BUNDLEGATE_RELAY__LISTEN__PORT: "9446" }));
    expect(issues.map((issue) => issue.path).sort()).toEqual([
      "relay.endpoint_spiffe_id",
      "relay.svid_file",
      "relay.svid_key_file",
      "relay.trust_domains",
    ]);
  });

  it("names the variable of a bad boolean", () => {
    const issues = catchIssues(() => parse({ BUNDLEGATE_DISTRIBUTION__CLIENT_CERTIFICATES: "yes" }));
    expect(issues).toEqual([
      expect.objectContaining({
        path: "distribution.client_certificates",
        env: "BUNDLEGATE_DISTRIBUTION__CLIENT_CERTIFICATES",
      }),
    ]);
  });

  it("explains that lists and mappings come from the config file only", () => {
    for (const [name, field] of [
      ["BUNDLEGATE_DISTRIBUTION__TOKENS", "distribution.tokens"],
      ["BUNDLEGATE_DISTRIBUTION__TOKENS__0__SHA256", "distribution.tokens"],
      ["BUNDLEGATE_DISTRIBUTION__ALLOW", "distribution.allow"],
      ["BUNDLEGATE_DISTRIBUTION__AUDIENCE", "distribution.audience"],
      ["BUNDLEGATE_RELAY__TRUST_DOMAINS", "relay.trust_domains"],
    ] as const) {
      const issues = catchIssues(() => parse({ [name]: "x" }));
      expect(issues, name).toEqual([
        expect.objectContaining({ env: name, message: expect.stringContaining(`${field} is a list or mapping`) }),
      ]);
      expect(issues[0]?.message).toContain("config file only");
    }
  });
});

function catchIssues(fn: () => unknown): readonly ConfigIssue[] {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues;
  }
  throw new Error("expected a ConfigError");
}

describe("config/bundlegate.example.yaml: distribution, relay and internal TLS", () => {
  /** The example with the commented-out block starting at the line `header` uncommented (one "# " removed). */
  function uncommented(text: string, header: string): string {
    const lines = text.split("\n");
    const start = lines.indexOf(header);
    expect(start, header).toBeGreaterThan(0);
    const indent = header.slice(0, header.indexOf("#"));
    let end = start + 1;
    while (end < lines.length && lines[end]!.startsWith(`${indent}#   `)) end++;
    const block = lines.slice(start, end).map((line) => indent + line.slice(indent.length + 2));
    return [...lines.slice(0, start), ...block, ...lines.slice(end)].join("\n");
  }

  it("loads with every section uncommented, and documents each field", async () => {
    let text = await readFile(EXAMPLE, "utf8");
    for (const header of ["  # tls:", "# distribution:", "# relay:"]) text = uncommented(text, header);
    const dir = path.dirname(EXAMPLE);
    const config = parseConfig(text, { baseDir: dir });
    expect(config.internal.tls).toEqual({
      certFile: path.join(dir, "tls/internal.crt"),
      keyFile: path.join(dir, "tls/internal.key"),
      clientCaFile: path.join(dir, "tls/internal-clients-ca.pem"),
    });
    expect(config.distribution).toMatchObject({
      audience: ["bundlegate"],
      tokens: [{ name: "spire-server-eu", spiffeId: "spiffe://example.org/spire/server-eu" }, { name: "ci-reader" }],
      allow: {
        "partner-web.example": ["spiffe://example.org/spire/server-eu", "token:ci-reader"],
        "*": ["spiffe://example.org/spire/agent/k8s/prod"],
      },
      clientCertificates: false,
    });
    expect(config.relay).toEqual({
      listen: { host: "0.0.0.0", port: 8446 },
      svidFile: path.join(dir, "svid/relay.pem"),
      svidKeyFile: path.join(dir, "svid/relay.key"),
      endpointSpiffeId: "spiffe://example.org/bundlegate/relay",
      trustDomains: ["partner-web.example", "partner-spiffe.example"],
    });
    for (const key of ["audience", "tokens", "name", "sha256", "spiffe_id", "allow", "trust_domains"]) {
      expect(text, key).toMatch(new RegExp(`^[ #-]*${key}:`, "m"));
    }
  });

  it("leaves them disabled as shipped", async () => {
    const config = parseConfig(await readFile(EXAMPLE, "utf8"), { baseDir: path.dirname(EXAMPLE) });
    expect(config).not.toHaveProperty("distribution");
    expect(config).not.toHaveProperty("relay");
    expect(config.internal).not.toHaveProperty("tls");
  });
});
