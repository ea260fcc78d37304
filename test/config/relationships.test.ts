/**
 * The federation section, the relationships list and the proxy environment of the config document.
 * Files are passed in as `checkConfigDocument` expects them from the loader (keyed by issue path), so no
 * test here touches the disk.
 */
import path from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import type { ConfigIssue } from "../../src/config/errors.js";
import {
  type CheckContext,
  type ConfigDocument,
  checkConfigDocument,
  type FileRead,
  formatPath,
  type ProxyEnv,
  type ResolvedInputs,
  referencedFiles,
  toBundlegateConfig,
} from "../../src/config/schema.js";
import { DEFAULT_TRUST_POLICY } from "../../src/policy/types.js";
import { bundleDoc } from "../support/bundle-docs.js";
import { jwtEntry, x509Entry } from "../support/jwk-entries.js";
import { createCa, createJwtKey, createNonCaCert } from "../support/pki.js";

type Doc = Record<string, unknown>;

const BASE: Doc = {
  trust_domain: "example.org",
  local_bundle: { file: "bundle.json" },
  endpoint: { https_web: { cert_file: "web.crt", key_file: "web.key" } },
};

const WEB: Doc = {
  trust_domain: "web-partner.org",
  endpoint_url: "https://bundle.web-partner.org/",
  profile: "https_web",
  owner: "team-web",
};

const SPIFFE: Doc = {
  trust_domain: "spiffe-partner.org",
  endpoint_url: "https://spire.spiffe-partner.org:8443/bundle",
  profile: "https_spiffe",
  endpoint_spiffe_id: "spiffe://spiffe-partner.org/spire/server",
  bootstrap_bundle_file: "bootstrap.json",
  owner: "team-spiffe",
};

/** File contents by name; a name not here reads as ENOENT. */
const FILES = new Map<string, Uint8Array | string>();

beforeAll(async () => {
  const partnerCa = await createCa({ trustDomain: "spiffe-partner.org" });
  const webCa = await createCa({ trustDomain: "web-partner.org", withSpiffeUri: false });
  const leaf = await createNonCaCert();
  const jwt = await createJwtKey();
  FILES.set("bootstrap.json", bundleDoc([x509Entry(partnerCa)], { spiffe_refresh_hint: 300 }));
  FILES.set("bootstrap.pem", partnerCa.pem);
  FILES.set("bootstrap-bytes.json", new TextEncoder().encode(bundleDoc([x509Entry(partnerCa)])));
  FILES.set("jwt-only.json", bundleDoc([jwtEntry("k1", jwt.publicJwk)]));
  FILES.set("empty.json", bundleDoc([]));
  FILES.set("duplicate.json", '{"keys": [], "keys": []}');
  FILES.set("not-a-bundle.txt", "hello");
  FILES.set("ca.pem", webCa.pem);
  FILES.set("leaf.pem", leaf.pem);
  FILES.set("key.pem", partnerCa.keyPem);
  FILES.set("ca-and-leaf.pem", webCa.pem + leaf.pem);
});

function filesFor(doc: unknown): Map<string, FileRead> {
  const files = new Map<string, FileRead>();
  for (const ref of referencedFiles(doc)) {
    const content = FILES.get(ref.file);
    files.set(ref.path, content === undefined ? { error: "ENOENT" } : { content });
  }
  return files;
}

function check(doc: unknown, env: ProxyEnv = {}) {
  const context: CheckContext = { files: filesFor(doc), env };
  return checkConfigDocument(doc, context);
}

function withRelationships(...relationships: unknown[]): Doc {
  return { ...BASE, relationships };
}

function rel(base: Doc, changes: Doc): Doc {
  const copy: Doc = { ...base };
  for (const [key, value] of Object.entries(changes)) {
    if (value === undefined) delete copy[key];
    else copy[key] = value;
  }
  return copy;
}

function issuesOf(doc: unknown, env: ProxyEnv = {}): ConfigIssue[] {
  const result = check(doc, env);
  if (result.ok) throw new Error("expected the document to be refused");
  return result.issues;
}

function accepted(doc: unknown, env: ProxyEnv = {}): { document: ConfigDocument; resolved: ResolvedInputs } {
  const result = check(doc, env);
  if (!result.ok) throw new Error(`expected a valid document, got ${JSON.stringify(result.issues)}`);
  return result;
}

function configOf(doc: unknown, env: ProxyEnv = {}, baseDir = "/etc/bundlegate") {
  const { document, resolved } = accepted(doc, env);
  return toBundlegateConfig(document, { baseDir, resolved });
}

describe("relationships: accepted", () => {
  it.each<[string, Doc]>([
    ["none (the default)", BASE],
    ["an empty list", withRelationships()],
    ["a web and a self-serving spiffe relationship", withRelationships(WEB, SPIFFE)],
    ["a web relationship with a CA file", withRelationships(rel(WEB, { ca_file: "ca.pem" }))],
    ["a CA file with a non-CA certificate beside the CA", withRelationships(rel(WEB, { ca_file: "ca-and-leaf.pem" }))],
    ["a PEM bootstrap bundle", withRelationships(rel(SPIFFE, { bootstrap_bundle_file: "bootstrap.pem" }))],
    [
      "a bootstrap bundle read as bytes",
      withRelationships(rel(SPIFFE, { bootstrap_bundle_file: "bootstrap-bytes.json" })),
    ],
    [
      "an endpoint ID in this gateway's trust domain, without bootstrap",
      withRelationships(
        rel(SPIFFE, { endpoint_spiffe_id: "spiffe://example.org/bundlegate", bootstrap_bundle_file: undefined }),
      ),
    ],
    [
      "an endpoint ID in another partner's trust domain, without bootstrap",
      withRelationships(
        WEB,
        rel(SPIFFE, { endpoint_spiffe_id: "spiffe://web-partner.org/hub", bootstrap_bundle_file: undefined }),
      ),
    ],
    [
      "a chain of endpoints that ends at a self-serving one",
      withRelationships(
        SPIFFE,
        rel(SPIFFE, {
          trust_domain: "c.org",
          endpoint_spiffe_id: "spiffe://spiffe-partner.org/hub",
          bootstrap_bundle_file: undefined,
        }),
        rel(SPIFFE, {
          trust_domain: "d.org",
          endpoint_spiffe_id: "spiffe://c.org/hub",
          bootstrap_bundle_file: undefined,
        }),
      ),
    ],
    ["proxy direct", withRelationships(rel(WEB, { proxy: "direct" }))],
    ["an http proxy with credentials", withRelationships(rel(WEB, { proxy: "http://user:pw@proxy.internal:3128" }))],
    ["an https proxy", withRelationships(rel(WEB, { proxy: "https://proxy.internal/" }))],
    ["contact and description", withRelationships(rel(WEB, { contact: "a@b.c", description: "" }))],
    [
      "Kubernetes-style labels",
      withRelationships(
        rel(WEB, { labels: { team: "x", "example.org/tier": "critical", empty: "", "a.b_c-d": "A.b_c-9" } }),
      ),
    ],
    ["dates", withRelationships(rel(WEB, { review_by: "2025-06-30", expires_at: "2025-06-30T12:00:00+02:00" }))],
    [
      "review_by equal to expires_at",
      withRelationships(rel(WEB, { review_by: "2025-06-30", expires_at: "2025-06-30" })),
    ],
    ["a time with milliseconds", withRelationships(rel(WEB, { expires_at: "2025-06-30T12:00:00.250Z" }))],
    ["refresh every 10 s", withRelationships(rel(WEB, { refresh: { interval_seconds: 10 } }))],
    ["refresh every 7 days", withRelationships(rel(WEB, { refresh: { interval_seconds: 604_800 } }))],
    ["a 5-field cron", withRelationships(rel(WEB, { refresh: { cron: "*/15 * * * *" } }))],
    ["a 6-field cron with one second", withRelationships(rel(WEB, { refresh: { cron: "30 0 3 * * mon-fri" } }))],
    ["a cron nickname", withRelationships(rel(WEB, { refresh: { cron: "@hourly" } }))],
    ["a cron on leap days only", withRelationships(rel(WEB, { refresh: { cron: "0 0 29 2 *" } }))],
    [
      "max staleness above the interval",
      withRelationships(rel(WEB, { refresh: { interval_seconds: 60 }, max_staleness_seconds: 61 })),
    ],
    [
      "CIDRs of both families",
      withRelationships(
        rel(WEB, { allowed_cidrs: ["10.20.0.0/16", "192.168.1.7/32", "fd00:20::/32", "::ffff:10.0.0.0/104"] }),
      ),
    ],
    [
      "every policy override",
      withRelationships(
        rel(WEB, {
          policy: {
            full_replacement: "accept",
            shared_with_own_domain: "reject",
            shared_with_other_partner: "quarantine",
            sequence_reused: "reject",
            sequence_rollback: "accept",
          },
        }),
      ),
    ],
    ["state suspended", withRelationships(rel(WEB, { state: "suspended" }))],
  ])("accepts %s", (_name, doc) => {
    expect(check(doc).ok).toBe(true);
  });
});

describe("relationships: every bad field is named by its path", () => {
  const R0 = "relationships[0]";
  it.each<[string, unknown, string]>([
    ["relationships a mapping", { ...BASE, relationships: { a: 1 } }, "relationships"],
    ["an entry that is a string", withRelationships("web-partner.org"), R0],
    ["trust_domain missing", withRelationships(rel(WEB, { trust_domain: undefined })), `${R0}.trust_domain`],
    ["trust_domain upper case", withRelationships(rel(WEB, { trust_domain: "Partner.org" })), `${R0}.trust_domain`],
    ["trust_domain a SPIFFE ID", withRelationships(rel(WEB, { trust_domain: "spiffe://p.org" })), `${R0}.trust_domain`],
    [
      "trust_domain this domain's own",
      withRelationships(rel(WEB, { trust_domain: "example.org" })),
      `${R0}.trust_domain`,
    ],
    ["endpoint_url missing", withRelationships(rel(WEB, { endpoint_url: undefined })), `${R0}.endpoint_url`],
    ["endpoint_url http", withRelationships(rel(WEB, { endpoint_url: "http://p.org/" })), `${R0}.endpoint_url`],
    [
      "endpoint_url with userinfo",
      withRelationships(rel(WEB, { endpoint_url: "https://u:pw@p.org/" })),
      `${R0}.endpoint_url`,
    ],
    [
      "endpoint_url with an empty userinfo",
      withRelationships(rel(WEB, { endpoint_url: "https://@p.org/" })),
      `${R0}.endpoint_url`,
    ],
    [
      "endpoint_url with a fragment",
      withRelationships(rel(WEB, { endpoint_url: "https://p.org/#b" })),
      `${R0}.endpoint_url`,
    ],
    [
      "endpoint_url with an empty fragment",
      withRelationships(rel(WEB, { endpoint_url: "https://p.org/#" })),
      `${R0}.endpoint_url`,
    ],
    ["endpoint_url not a URL", withRelationships(rel(WEB, { endpoint_url: "p.org/bundle" })), `${R0}.endpoint_url`],
    ["endpoint_url without //", withRelationships(rel(WEB, { endpoint_url: "https:p.org" })), `${R0}.endpoint_url`],
    [
      "endpoint_url with a space",
      withRelationships(rel(WEB, { endpoint_url: " https://p.org/" })),
      `${R0}.endpoint_url`,
    ],
    [
      "endpoint_url with a backslash",
      withRelationships(rel(WEB, { endpoint_url: "https://a.org\\@b.org/" })),
      `${R0}.endpoint_url`,
    ],
    ["endpoint_url a number", withRelationships(rel(WEB, { endpoint_url: 443 })), `${R0}.endpoint_url`],
    ["profile missing", withRelationships(rel(WEB, { profile: undefined })), `${R0}.profile`],
    ["profile unknown", withRelationships(rel(WEB, { profile: "https" })), `${R0}.profile`],
    [
      "endpoint_spiffe_id on https_web",
      withRelationships(rel(WEB, { endpoint_spiffe_id: "spiffe://web-partner.org/x" })),
      `${R0}.endpoint_spiffe_id`,
    ],
    [
      "bootstrap_bundle_file on https_web",
      withRelationships(rel(WEB, { bootstrap_bundle_file: "bootstrap.json" })),
      `${R0}.bootstrap_bundle_file`,
    ],
    ["ca_file on https_spiffe", withRelationships(rel(SPIFFE, { ca_file: "ca.pem" })), `${R0}.ca_file`],
    ["ca_file empty", withRelationships(rel(WEB, { ca_file: "" })), `${R0}.ca_file`],
    [
      "endpoint_spiffe_id missing on https_spiffe",
      withRelationships(rel(SPIFFE, { endpoint_spiffe_id: undefined })),
      `${R0}.endpoint_spiffe_id`,
    ],
    [
      "endpoint_spiffe_id not a SPIFFE ID",
      withRelationships(rel(SPIFFE, { endpoint_spiffe_id: "https://spiffe-partner.org/x" })),
      `${R0}.endpoint_spiffe_id`,
    ],
    [
      "endpoint_spiffe_id without a path",
      withRelationships(rel(SPIFFE, { endpoint_spiffe_id: "spiffe://spiffe-partner.org" })),
      `${R0}.endpoint_spiffe_id`,
    ],
    [
      "a self-serving endpoint without bootstrap",
      withRelationships(rel(SPIFFE, { bootstrap_bundle_file: undefined })),
      `${R0}.bootstrap_bundle_file`,
    ],
    [
      "an endpoint ID in an unknown trust domain",
      withRelationships(
        rel(SPIFFE, { endpoint_spiffe_id: "spiffe://third.org/hub", bootstrap_bundle_file: undefined }),
      ),
      `${R0}.endpoint_spiffe_id`,
    ],
    [
      "a bootstrap bundle for an endpoint of another trust domain",
      withRelationships(rel(SPIFFE, { endpoint_spiffe_id: "spiffe://example.org/bundlegate" })),
      `${R0}.bootstrap_bundle_file`,
    ],
    [
      "endpoints verifying each other in a loop",
      withRelationships(
        rel(SPIFFE, {
          trust_domain: "a.org",
          endpoint_spiffe_id: "spiffe://b.org/x",
          bootstrap_bundle_file: undefined,
        }),
        rel(SPIFFE, {
          trust_domain: "b.org",
          endpoint_spiffe_id: "spiffe://a.org/x",
          bootstrap_bundle_file: undefined,
        }),
      ),
      `${R0}.endpoint_spiffe_id`,
    ],
    [
      "a bootstrap file that cannot be read",
      withRelationships(rel(SPIFFE, { bootstrap_bundle_file: "missing.json" })),
      `${R0}.bootstrap_bundle_file`,
    ],
    [
      "a bootstrap file that is no bundle",
      withRelationships(rel(SPIFFE, { bootstrap_bundle_file: "not-a-bundle.txt" })),
      `${R0}.bootstrap_bundle_file`,
    ],
    [
      "a bootstrap bundle with duplicate members",
      withRelationships(rel(SPIFFE, { bootstrap_bundle_file: "duplicate.json" })),
      `${R0}.bootstrap_bundle_file`,
    ],
    [
      "a bootstrap bundle with no authority",
      withRelationships(rel(SPIFFE, { bootstrap_bundle_file: "empty.json" })),
      `${R0}.bootstrap_bundle_file`,
    ],
    [
      "a bootstrap bundle with JWT keys only",
      withRelationships(rel(SPIFFE, { bootstrap_bundle_file: "jwt-only.json" })),
      `${R0}.bootstrap_bundle_file`,
    ],
    [
      "a bootstrap file that is a private key",
      withRelationships(rel(SPIFFE, { bootstrap_bundle_file: "key.pem" })),
      `${R0}.bootstrap_bundle_file`,
    ],
    [
      "a bootstrap_bundle_file empty",
      withRelationships(rel(SPIFFE, { bootstrap_bundle_file: "" })),
      `${R0}.bootstrap_bundle_file`,
    ],
    ["a CA file that cannot be read", withRelationships(rel(WEB, { ca_file: "missing.pem" })), `${R0}.ca_file`],
    ["a CA file with no CA certificate", withRelationships(rel(WEB, { ca_file: "leaf.pem" })), `${R0}.ca_file`],
    ["a CA file that is JSON", withRelationships(rel(WEB, { ca_file: "bootstrap.json" })), `${R0}.ca_file`],
    ["a CA file that is a private key", withRelationships(rel(WEB, { ca_file: "key.pem" })), `${R0}.ca_file`],
    ["proxy socks", withRelationships(rel(WEB, { proxy: "socks5://proxy:1080" })), `${R0}.proxy`],
    ["proxy with a path", withRelationships(rel(WEB, { proxy: "http://proxy:3128/x" })), `${R0}.proxy`],
    ["proxy not a URL", withRelationships(rel(WEB, { proxy: "proxy:3128" })), `${R0}.proxy`],
    ["proxy Direct", withRelationships(rel(WEB, { proxy: "Direct" })), `${R0}.proxy`],
    ["owner missing", withRelationships(rel(WEB, { owner: undefined })), `${R0}.owner`],
    ["owner empty", withRelationships(rel(WEB, { owner: "" })), `${R0}.owner`],
    ["owner blank", withRelationships(rel(WEB, { owner: "   " })), `${R0}.owner`],
    ["contact empty", withRelationships(rel(WEB, { contact: "" })), `${R0}.contact`],
    ["description a number", withRelationships(rel(WEB, { description: 1 })), `${R0}.description`],
    ["labels a list", withRelationships(rel(WEB, { labels: ["a"] })), `${R0}.labels`],
    ["a label value that is a number", withRelationships(rel(WEB, { labels: { tier: 1 } })), `${R0}.labels.tier`],
    [
      "a label key with a space",
      withRelationships(rel(WEB, { labels: { "my team": "x" } })),
      `${R0}.labels["my team"]`,
    ],
    [
      "a label key too long",
      withRelationships(rel(WEB, { labels: { ["k".repeat(64)]: "x" } })),
      `${R0}.labels.${"k".repeat(64)}`,
    ],
    ["a label key ending in a dash", withRelationships(rel(WEB, { labels: { "team-": "x" } })), `${R0}.labels.team-`],
    [
      "a label prefix in upper case",
      withRelationships(rel(WEB, { labels: { "Example.org/x": "y" } })),
      `${R0}.labels["Example.org/x"]`,
    ],
    [
      "a label key with two slashes",
      withRelationships(rel(WEB, { labels: { "a.org/b/c": "y" } })),
      `${R0}.labels["a.org/b/c"]`,
    ],
    ["a label value with a space", withRelationships(rel(WEB, { labels: { team: "a b" } })), `${R0}.labels.team`],
    ["a label value too long", withRelationships(rel(WEB, { labels: { team: "v".repeat(64) } })), `${R0}.labels.team`],
    ["review_by not a date", withRelationships(rel(WEB, { review_by: "next spring" })), `${R0}.review_by`],
    [
      "review_by on a day that does not exist",
      withRelationships(rel(WEB, { review_by: "2025-02-29" })),
      `${R0}.review_by`,
    ],
    [
      "review_by a time without offset",
      withRelationships(rel(WEB, { review_by: "2025-06-30T12:00:00" })),
      `${R0}.review_by`,
    ],
    ["review_by a number", withRelationships(rel(WEB, { review_by: 20_250_630 })), `${R0}.review_by`],
    ["expires_at at hour 24", withRelationships(rel(WEB, { expires_at: "2025-06-30T24:00:00Z" })), `${R0}.expires_at`],
    [
      "expires_at a bad offset",
      withRelationships(rel(WEB, { expires_at: "2025-06-30T12:00:00+25:00" })),
      `${R0}.expires_at`,
    ],
    [
      "review_by after expires_at",
      withRelationships(rel(WEB, { review_by: "2025-07-01", expires_at: "2025-06-30T23:59:59Z" })),
      `${R0}.review_by`,
    ],
    ["refresh empty", withRelationships(rel(WEB, { refresh: {} })), `${R0}.refresh`],
    [
      "refresh with both",
      withRelationships(rel(WEB, { refresh: { interval_seconds: 60, cron: "* * * * *" } })),
      `${R0}.refresh`,
    ],
    ["refresh a number", withRelationships(rel(WEB, { refresh: 60 })), `${R0}.refresh`],
    ["refresh with an unknown key", withRelationships(rel(WEB, { refresh: { every: 60 } })), `${R0}.refresh.every`],
    [
      "refresh.interval_seconds 9",
      withRelationships(rel(WEB, { refresh: { interval_seconds: 9 } })),
      `${R0}.refresh.interval_seconds`,
    ],
    [
      "refresh.interval_seconds over 7 days",
      withRelationships(rel(WEB, { refresh: { interval_seconds: 604_801 } })),
      `${R0}.refresh.interval_seconds`,
    ],
    [
      "refresh.interval_seconds fractional",
      withRelationships(rel(WEB, { refresh: { interval_seconds: 60.5 } })),
      `${R0}.refresh.interval_seconds`,
    ],
    [
      "refresh.interval_seconds not below max_staleness_seconds",
      withRelationships(rel(WEB, { refresh: { interval_seconds: 600 }, max_staleness_seconds: 600 })),
      `${R0}.refresh.interval_seconds`,
    ],
    ["refresh.cron not cron", withRelationships(rel(WEB, { refresh: { cron: "hourly" } })), `${R0}.refresh.cron`],
    [
      "refresh.cron out of range",
      withRelationships(rel(WEB, { refresh: { cron: "0 25 * * *" } })),
      `${R0}.refresh.cron`,
    ],
    [
      "refresh.cron every second",
      withRelationships(rel(WEB, { refresh: { cron: "* * * * * *" } })),
      `${R0}.refresh.cron`,
    ],
    [
      "refresh.cron twice a minute",
      withRelationships(rel(WEB, { refresh: { cron: "0,30 * * * * *" } })),
      `${R0}.refresh.cron`,
    ],
    [
      "refresh.cron never firing",
      withRelationships(rel(WEB, { refresh: { cron: "0 0 1 * 1#5" } })),
      `${R0}.refresh.cron`,
    ],
    [
      "refresh.cron on February 30",
      withRelationships(rel(WEB, { refresh: { cron: "0 0 30 2 *" } })),
      `${R0}.refresh.cron`,
    ],
    [
      "max_staleness_seconds 0",
      withRelationships(rel(WEB, { max_staleness_seconds: 0 })),
      `${R0}.max_staleness_seconds`,
    ],
    [
      "max_staleness_seconds fractional",
      withRelationships(rel(WEB, { max_staleness_seconds: 1.5 })),
      `${R0}.max_staleness_seconds`,
    ],
    ["allowed_cidrs a string", withRelationships(rel(WEB, { allowed_cidrs: "10.0.0.0/8" })), `${R0}.allowed_cidrs`],
    [
      "a CIDR without prefix",
      withRelationships(rel(WEB, { allowed_cidrs: ["10.0.0.0/8", "10.0.0.1"] })),
      `${R0}.allowed_cidrs[1]`,
    ],
    [
      "a CIDR with a host name",
      withRelationships(rel(WEB, { allowed_cidrs: ["partner.org/24"] })),
      `${R0}.allowed_cidrs[0]`,
    ],
    [
      "a CIDR with a bad address",
      withRelationships(rel(WEB, { allowed_cidrs: ["10.0.0.256/32"] })),
      `${R0}.allowed_cidrs[0]`,
    ],
    [
      "an IPv4 prefix over 32",
      withRelationships(rel(WEB, { allowed_cidrs: ["10.0.0.0/33"] })),
      `${R0}.allowed_cidrs[0]`,
    ],
    [
      "an IPv6 prefix over 128",
      withRelationships(rel(WEB, { allowed_cidrs: ["fd00::/129"] })),
      `${R0}.allowed_cidrs[0]`,
    ],
    [
      "a prefix with a leading zero",
      withRelationships(rel(WEB, { allowed_cidrs: ["10.0.0.0/08"] })),
      `${R0}.allowed_cidrs[0]`,
    ],
    ["an IPv4 /0", withRelationships(rel(WEB, { allowed_cidrs: ["0.0.0.0/0"] })), `${R0}.allowed_cidrs[0]`],
    ["an IPv6 /0", withRelationships(rel(WEB, { allowed_cidrs: ["::/0"] })), `${R0}.allowed_cidrs[0]`],
    ["IPv4 host bits", withRelationships(rel(WEB, { allowed_cidrs: ["10.1.2.3/8"] })), `${R0}.allowed_cidrs[0]`],
    ["IPv6 host bits", withRelationships(rel(WEB, { allowed_cidrs: ["fd00::1/64"] })), `${R0}.allowed_cidrs[0]`],
    ["an IPv6 zone", withRelationships(rel(WEB, { allowed_cidrs: ["fe80::%eth0/64"] })), `${R0}.allowed_cidrs[0]`],
    ["policy a string", withRelationships(rel(WEB, { policy: "strict" })), `${R0}.policy`],
    [
      "policy.full_replacement unknown",
      withRelationships(rel(WEB, { policy: { full_replacement: "ignore" } })),
      `${R0}.policy.full_replacement`,
    ],
    [
      "policy.shared_with_own_domain unknown",
      withRelationships(rel(WEB, { policy: { shared_with_own_domain: "warn" } })),
      `${R0}.policy.shared_with_own_domain`,
    ],
    [
      "policy.shared_with_other_partner unknown",
      withRelationships(rel(WEB, { policy: { shared_with_other_partner: 1 } })),
      `${R0}.policy.shared_with_other_partner`,
    ],
    [
      "policy.sequence_reused unknown",
      withRelationships(rel(WEB, { policy: { sequence_reused: "allow" } })),
      `${R0}.policy.sequence_reused`,
    ],
    [
      "policy.sequence_rollback quarantine",
      withRelationships(rel(WEB, { policy: { sequence_rollback: "quarantine" } })),
      `${R0}.policy.sequence_rollback`,
    ],
    ["an unknown policy rule", withRelationships(rel(WEB, { policy: { expired: "reject" } })), `${R0}.policy.expired`],
    ["state pending", withRelationships(rel(WEB, { state: "pending" })), `${R0}.state`],
    ["origin set", withRelationships(rel(WEB, { origin: "api" })), `${R0}.origin`],
  ])("%s", (_name, doc, expectedPath) => {
    expect(issuesOf(doc).map((issue) => issue.path)).toContain(expectedPath);
  });

  it("names the index of the entry at fault", () => {
    const doc = withRelationships(WEB, SPIFFE, rel(WEB, { trust_domain: "third.org", endpoint_url: "http://x/" }));
    expect(issuesOf(doc).map((issue) => issue.path)).toEqual(["relationships[2].endpoint_url"]);
  });

  it("refuses a duplicate trust domain naming both indexes", () => {
    const doc = withRelationships(WEB, SPIFFE, rel(WEB, { endpoint_url: "https://other.example/" }));
    const issues = issuesOf(doc);
    expect(issues).toEqual([expect.objectContaining({ path: "relationships[2].trust_domain" })]);
    expect(issues[0]?.message).toContain("relationships[0]");
    expect(issues[0]?.message).toContain("relationships[2]");
  });

  it("says why its own trust domain is refused", () => {
    const [issue] = issuesOf(withRelationships(rel(WEB, { trust_domain: "example.org" })));
    expect(issue?.message).toContain("own trust domain refused");
  });

  it("keeps the bundle reader's error code for a bad bootstrap bundle", () => {
    const issues = issuesOf(withRelationships(rel(SPIFFE, { bootstrap_bundle_file: "duplicate.json" })));
    expect(issues).toEqual([
      expect.objectContaining({ path: "relationships[0].bootstrap_bundle_file", code: "ERR_BUNDLE_DUPLICATE_MEMBER" }),
    ]);
  });

  it("reads a bootstrap bundle under federation.max_bundle_bytes", () => {
    const doc = { ...withRelationships(SPIFFE), federation: { max_bundle_bytes: 100 } };
    expect(issuesOf(doc)).toEqual([
      expect.objectContaining({ path: "relationships[0].bootstrap_bundle_file", code: "ERR_BUNDLE_TOO_LARGE" }),
    ]);
  });

  it("names the loop of endpoints that can never be verified", () => {
    const doc = withRelationships(
      rel(SPIFFE, { trust_domain: "a.org", endpoint_spiffe_id: "spiffe://b.org/x", bootstrap_bundle_file: undefined }),
      rel(SPIFFE, { trust_domain: "b.org", endpoint_spiffe_id: "spiffe://a.org/x", bootstrap_bundle_file: undefined }),
    );
    const issues = issuesOf(doc);
    expect(issues.map((issue) => issue.path)).toEqual([
      "relationships[0].endpoint_spiffe_id",
      "relationships[1].endpoint_spiffe_id",
    ]);
    expect(issues[0]?.message).toContain("a.org -> b.org -> a.org");
  });

  it("reports every bad label, even beside one of the wrong type", () => {
    const doc = withRelationships(rel(WEB, { labels: { n: 3, "bad key": "v", good: "bad value!" } }));
    expect(issuesOf(doc).map((issue) => issue.path)).toEqual([
      "relationships[0].labels.n",
      'relationships[0].labels["bad key"]',
      "relationships[0].labels.good",
    ]);
  });

  it("suggests the field meant by a misspelt relationship key", () => {
    const [issue] = issuesOf(withRelationships(rel(WEB, { ownr: "x" })));
    expect(issue).toMatchObject({ path: "relationships[0].ownr", message: expect.stringContaining("owner") });
  });

  it("never echoes an endpoint or proxy URL, which may carry a password", () => {
    const doc = withRelationships(
      rel(WEB, { endpoint_url: "https://user:hunter2@p.org/", proxy: "ftp://user:hunter2@proxy" }),
    );
    expect(JSON.stringify(issuesOf(doc))).not.toContain("hunter2");
  });

  it("reports relationship issues together with the rest of the document", () => {
    const doc = {
      ...withRelationships(rel(WEB, { owner: "" }), rel(SPIFFE, { bootstrap_bundle_file: "missing.json" })),
    };
    doc.trust_domain = "Bad";
    expect(issuesOf(doc).map((issue) => issue.path)).toEqual(
      expect.arrayContaining(["trust_domain", "relationships[0].owner", "relationships[1].bootstrap_bundle_file"]),
    );
  });

  it("asks for files the caller did not read", () => {
    const issues = checkConfigDocument(withRelationships(SPIFFE));
    expect(issues.ok).toBe(false);
    expect(!issues.ok && issues.issues.map((issue) => issue.path)).toEqual(["relationships[0].bootstrap_bundle_file"]);
  });
});

describe("referencedFiles", () => {
  it("lists the files to read, only where the profile allows them", () => {
    const doc = withRelationships(
      rel(WEB, { ca_file: "ca.pem", bootstrap_bundle_file: "ignored.json" }),
      rel(SPIFFE, { ca_file: "ignored.pem" }),
      rel(WEB, { profile: "other", ca_file: "ignored.pem" }),
      "not a mapping",
    );
    expect(referencedFiles(doc)).toEqual([
      { path: "relationships[0].ca_file", file: "ca.pem", kind: "ca_file", index: 0 },
      { path: "relationships[1].bootstrap_bundle_file", file: "bootstrap.json", kind: "bootstrap_bundle", index: 1 },
    ]);
    expect(referencedFiles(BASE)).toEqual([]);
    expect(referencedFiles(null)).toEqual([]);
  });
});

describe("relationships: mapping", () => {
  it("maps a web relationship with every field", () => {
    const config = configOf(
      withRelationships(
        rel(WEB, {
          ca_file: "ca.pem",
          proxy: "direct",
          contact: "web@partner.org",
          description: "the web partner",
          labels: { team: "payments" },
          review_by: "2025-06-30",
          expires_at: "2026-01-01T12:00:00+01:00",
          refresh: { interval_seconds: 120 },
          max_staleness_seconds: 3600,
          allowed_cidrs: ["10.20.0.0/16"],
          policy: { shared_with_own_domain: "reject", sequence_rollback: "accept" },
          state: "suspended",
        }),
      ),
    );
    expect(config.relationships).toEqual([
      {
        trustDomain: "web-partner.org",
        endpointUrl: "https://bundle.web-partner.org/",
        profile: { kind: "https_web", caFile: path.resolve("/etc/bundlegate", "ca.pem"), caPem: expect.any(String) },
        owner: "team-web",
        contact: "web@partner.org",
        description: "the web partner",
        labels: { team: "payments" },
        reviewBy: new Date("2025-06-30T00:00:00Z"),
        expiresAt: new Date("2026-01-01T11:00:00Z"),
        refresh: { kind: "interval", seconds: 120 },
        maxStalenessSeconds: 3600,
        proxy: "direct",
        allowedCidrs: ["10.20.0.0/16"],
        policy: { ...DEFAULT_TRUST_POLICY, sharedWithOwnDomain: "reject", sequenceRollback: "accept" },
        state: "suspended",
        origin: "config",
      },
    ]);
  });

  it("fills in the defaults of a minimal relationship", () => {
    const [web] = configOf(withRelationships(WEB)).relationships;
    expect(web).toEqual({
      trustDomain: "web-partner.org",
      endpointUrl: "https://bundle.web-partner.org/",
      profile: { kind: "https_web" },
      owner: "team-web",
      labels: {},
      allowedCidrs: [],
      policy: DEFAULT_TRUST_POLICY,
      state: "active",
      origin: "config",
    });
  });

  it("trusts only the CA certificates of a CA file", () => {
    const [web] = configOf(withRelationships(rel(WEB, { ca_file: "ca-and-leaf.pem" }))).relationships;
    const caPem = web?.profile.kind === "https_web" ? web.profile.caPem : undefined;
    expect(caPem?.match(/-----BEGIN CERTIFICATE-----/g)).toHaveLength(1);
    expect(caPem).toBe(FILES.get("ca.pem"));
  });

  it("carries the parsed bootstrap bundle of a self-serving spiffe relationship", () => {
    const [spiffe] = configOf(withRelationships(SPIFFE)).relationships;
    expect(spiffe?.profile).toMatchObject({
      kind: "https_spiffe",
      endpointSpiffeId: "spiffe://spiffe-partner.org/spire/server",
    });
    const bundle = spiffe?.profile.kind === "https_spiffe" ? spiffe.profile.bootstrapBundle : undefined;
    expect(bundle?.x509Authorities).toHaveLength(1);
    expect(bundle?.refreshHintSeconds).toBe(300);
  });

  it("gives an endpoint of another trust domain an empty bootstrap bundle, which trusts nothing", () => {
    const doc = withRelationships(
      rel(SPIFFE, { endpoint_spiffe_id: "spiffe://example.org/bundlegate", bootstrap_bundle_file: undefined }),
    );
    const [spiffe] = configOf(doc).relationships;
    const bundle = spiffe?.profile.kind === "https_spiffe" ? spiffe.profile.bootstrapBundle : undefined;
    expect(bundle?.x509Authorities).toEqual([]);
    expect(bundle?.jwtAuthorities.size).toBe(0);
  });

  it("maps a cron refresh", () => {
    const [web] = configOf(withRelationships(rel(WEB, { refresh: { cron: "0 */6 * * *" } }))).relationships;
    expect(web?.refresh).toEqual({ kind: "cron", expression: "0 */6 * * *" });
  });

  it("keeps the config order and freezes every relationship", () => {
    const config = configOf(withRelationships(SPIFFE, WEB));
    expect(config.relationships.map((r) => r.trustDomain)).toEqual(["spiffe-partner.org", "web-partner.org"]);
    expect(Object.isFrozen(config.relationships)).toBe(true);
    expect(Object.isFrozen(config.relationships[1]?.policy)).toBe(true);
    expect(Object.isFrozen(config.relationships[1]?.labels)).toBe(true);
  });

  it("refuses to map a bootstrap file whose bundle it was not given", () => {
    const { document } = accepted(withRelationships(SPIFFE));
    expect(() => toBundlegateConfig(document, { baseDir: "/" })).toThrow(/bootstrap bundle not loaded/);
  });
});

describe("federation", () => {
  const F = (changes: Doc): Doc => ({ ...BASE, federation: changes });

  it("maps every field", () => {
    const config = configOf(
      F({
        max_bundle_bytes: 1024,
        max_bundle_keys: 10,
        connect_timeout_ms: 1000,
        headers_timeout_ms: 2000,
        total_timeout_ms: 3000,
        max_redirects: 0,
        lease_ms: 4000,
        history_limit: 5,
        min_refresh_hint_seconds: 30,
        max_refresh_hint_seconds: 3600,
        default_refresh_hint_seconds: 30,
        jitter_ratio: 0,
        backoff_initial_seconds: 1,
      }),
    );
    expect(config.federation).toEqual({
      maxBundleBytes: 1024,
      maxBundleKeys: 10,
      connectTimeoutMs: 1000,
      headersTimeoutMs: 2000,
      totalTimeoutMs: 3000,
      maxRedirects: 0,
      leaseMs: 4000,
      historyLimit: 5,
      minRefreshHintSeconds: 30,
      maxRefreshHintSeconds: 3600,
      defaultRefreshHintSeconds: 30,
      jitterRatio: 0,
      backoffInitialSeconds: 1,
    });
  });

  it.each<[string, Doc]>([
    ["max_redirects 10", F({ max_redirects: 10 })],
    ["jitter_ratio 0.5", F({ jitter_ratio: 0.5 })],
    ["timeouts equal to the total", F({ connect_timeout_ms: 30_000, headers_timeout_ms: 30_000 })],
    [
      "min = default = max hint",
      F({ min_refresh_hint_seconds: 600, max_refresh_hint_seconds: 600, default_refresh_hint_seconds: 600 }),
    ],
    ["a 30-day max hint", F({ max_refresh_hint_seconds: 2_592_000 })],
  ])("accepts %s", (_name, doc) => {
    expect(check(doc).ok).toBe(true);
  });

  it.each<[string, Doc, string]>([
    ["federation a list", { ...BASE, federation: [] }, "federation"],
    ["an unknown key", F({ max_bytes: 1 }), "federation.max_bytes"],
    ["max_bundle_bytes 0", F({ max_bundle_bytes: 0 }), "federation.max_bundle_bytes"],
    ["max_bundle_bytes over 16 MiB", F({ max_bundle_bytes: 2 ** 24 + 1 }), "federation.max_bundle_bytes"],
    ["max_bundle_keys 0", F({ max_bundle_keys: 0 }), "federation.max_bundle_keys"],
    ["max_bundle_keys huge", F({ max_bundle_keys: 1e6 }), "federation.max_bundle_keys"],
    ["connect_timeout_ms 0", F({ connect_timeout_ms: 0 }), "federation.connect_timeout_ms"],
    ["headers_timeout_ms fractional", F({ headers_timeout_ms: 1.5 }), "federation.headers_timeout_ms"],
    ["total_timeout_ms past the timer limit", F({ total_timeout_ms: 2 ** 31 }), "federation.total_timeout_ms"],
    ["connect_timeout_ms over the total", F({ connect_timeout_ms: 30_001 }), "federation.connect_timeout_ms"],
    [
      "headers_timeout_ms over a set total",
      F({ total_timeout_ms: 5000, headers_timeout_ms: 6000 }),
      "federation.headers_timeout_ms",
    ],
    ["max_redirects 11", F({ max_redirects: 11 }), "federation.max_redirects"],
    ["max_redirects negative", F({ max_redirects: -1 }), "federation.max_redirects"],
    ["lease_ms 0", F({ lease_ms: 0 }), "federation.lease_ms"],
    ["history_limit 0", F({ history_limit: 0 }), "federation.history_limit"],
    ["history_limit 1001", F({ history_limit: 1001 }), "federation.history_limit"],
    ["min_refresh_hint_seconds 0", F({ min_refresh_hint_seconds: 0 }), "federation.min_refresh_hint_seconds"],
    [
      "max_refresh_hint_seconds over 30 days",
      F({ max_refresh_hint_seconds: 2_592_001 }),
      "federation.max_refresh_hint_seconds",
    ],
    [
      "default_refresh_hint_seconds a string",
      F({ default_refresh_hint_seconds: "300" }),
      "federation.default_refresh_hint_seconds",
    ],
    [
      "min hint over max hint",
      F({ min_refresh_hint_seconds: 600, max_refresh_hint_seconds: 300 }),
      "federation.min_refresh_hint_seconds",
    ],
    ["default hint under min", F({ min_refresh_hint_seconds: 600 }), "federation.default_refresh_hint_seconds"],
    ["default hint over max", F({ max_refresh_hint_seconds: 120 }), "federation.default_refresh_hint_seconds"],
    ["jitter_ratio over 0.5", F({ jitter_ratio: 0.6 }), "federation.jitter_ratio"],
    ["jitter_ratio negative", F({ jitter_ratio: -0.1 }), "federation.jitter_ratio"],
    ["backoff_initial_seconds 0", F({ backoff_initial_seconds: 0 }), "federation.backoff_initial_seconds"],
    [
      "backoff_initial_seconds over an hour",
      F({ backoff_initial_seconds: 3601 }),
      "federation.backoff_initial_seconds",
    ],
  ])("%s is named", (_name, doc, expectedPath) => {
    expect(issuesOf(doc).map((issue) => issue.path)).toContain(expectedPath);
  });
});

describe("proxy environment", () => {
  it("takes HTTPS_PROXY and NO_PROXY", () => {
    const config = configOf(BASE, {
      HTTPS_PROXY: "http://proxy.internal:3128",
      NO_PROXY: "localhost,.internal,10.0.0.0/8",
    });
    expect(config.federation.httpsProxy).toBe("http://proxy.internal:3128");
    expect(config.federation.noProxy).toBe("localhost,.internal,10.0.0.0/8");
  });

  it("takes the lower-case spellings", () => {
    const config = configOf(BASE, { https_proxy: "https://user:pw@proxy:8443", no_proxy: "*" });
    expect(config.federation.httpsProxy).toBe("https://user:pw@proxy:8443");
    expect(config.federation.noProxy).toBe("*");
  });

  it("accepts both spellings when they agree, and ignores empty ones", () => {
    expect(configOf(BASE, { HTTPS_PROXY: "http://p:1", https_proxy: "http://p:1" }).federation.httpsProxy).toBe(
      "http://p:1",
    );
    expect(configOf(BASE, { HTTPS_PROXY: "", https_proxy: "http://p:2" }).federation.httpsProxy).toBe("http://p:2");
    expect(configOf(BASE, { HTTPS_PROXY: " ", NO_PROXY: "" }).federation).not.toHaveProperty("httpsProxy");
  });

  it("does not read other proxy variables", () => {
    const config = configOf(BASE, { HTTP_PROXY: "http://p:1", ALL_PROXY: "http://p:2" });
    expect(config.federation).not.toHaveProperty("httpsProxy");
  });

  it.each<[string, ProxyEnv, string, string]>([
    ["HTTPS_PROXY without scheme", { HTTPS_PROXY: "proxy:3128" }, "federation.https_proxy", "HTTPS_PROXY"],
    ["https_proxy socks", { https_proxy: "socks5://proxy:1080" }, "federation.https_proxy", "https_proxy"],
    ["HTTPS_PROXY with a path", { HTTPS_PROXY: "http://proxy:3128/pac" }, "federation.https_proxy", "HTTPS_PROXY"],
    [
      "the two spellings disagreeing",
      { HTTPS_PROXY: "http://a:1", https_proxy: "http://b:1" },
      "federation.https_proxy",
      "HTTPS_PROXY",
    ],
    ["NO_PROXY with a URL", { NO_PROXY: "localhost,https://x.org" }, "federation.no_proxy", "NO_PROXY"],
    ["no_proxy with a space inside an entry", { no_proxy: "a b" }, "federation.no_proxy", "no_proxy"],
    ["NO_PROXY and no_proxy disagreeing", { NO_PROXY: "a", no_proxy: "b" }, "federation.no_proxy", "NO_PROXY"],
  ])("names the variable for %s", (_name, env, expectedPath, variable) => {
    expect(issuesOf(BASE, env)).toContainEqual(expect.objectContaining({ path: expectedPath, env: variable }));
  });

  it("never echoes a proxy URL", () => {
    const issues = issuesOf(BASE, { HTTPS_PROXY: "ftp://u:hunter2@p", https_proxy: "http://u:hunter2@q" });
    expect(JSON.stringify(issues)).not.toContain("hunter2");
  });
});

describe("formatPath", () => {
  it.each<[PropertyKey[], string]>([
    [[], ""],
    [["trust_domain"], "trust_domain"],
    [["endpoint", "https_web", "cert_file"], "endpoint.https_web.cert_file"],
    [["relationships", 2, "endpoint_url"], "relationships[2].endpoint_url"],
    [["relationships", 0, "allowed_cidrs", 1], "relationships[0].allowed_cidrs[1]"],
    [["relationships", 0, "labels", "app.kubernetes.io/name"], 'relationships[0].labels["app.kubernetes.io/name"]'],
    [["relationships", 0, "labels", "team-a"], "relationships[0].labels.team-a"],
    [["a b"], '["a b"]'],
  ])("%j is %s", (segments, expected) => {
    expect(formatPath(segments)).toBe(expected);
  });
});
