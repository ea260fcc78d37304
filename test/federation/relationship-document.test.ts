/**
 * checkRelationshipSpec: an API spec is checked with the config file's rules, and every issue names the
 * field as the caller wrote it (bootstrap_bundle and ca_pem, never the config's file fields).
 */
import { X509Certificate } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import {
  checkRelationshipSpec,
  parseRelationshipDocument,
  type SpecContext,
} from "../../src/federation/relationship-document.js";
import { createTrustBundle, x509AuthorityFromCertificate } from "../../src/spiffe/bundle.js";
import { serializeSpiffeBundle } from "../../src/spiffe/codec.js";
import { createCa, type Issued } from "../support/pki.js";

let ca: Issued;
let bundleJson: string;
const context: SpecContext = {
  ownTrustDomain: "example.org",
  others: [{ trust_domain: "other.test", profile: "https_web" }],
  maxBundleBytes: 65_536,
};

beforeAll(async () => {
  ca = await createCa({ trustDomain: "partner.test" });
  bundleJson = serializeSpiffeBundle(
    createTrustBundle({ x509Authorities: [x509AuthorityFromCertificate(new X509Certificate(ca.der))] }),
  );
});

const spiffe = (overrides: Record<string, unknown> = {}) => ({
  trust_domain: "partner.test",
  endpoint_url: "https://partner.test/bundle",
  profile: "https_spiffe",
  endpoint_spiffe_id: "spiffe://partner.test/bundlegate",
  bootstrap_bundle: JSON.parse(bundleJson),
  owner: "team",
  ...overrides,
});

describe("checkRelationshipSpec", () => {
  it("accepts a spec with the bundle inline, as an object or as text, and stores it canonical", () => {
    for (const bootstrap of [JSON.parse(bundleJson), bundleJson, ca.pem]) {
      const checked = checkRelationshipSpec(spiffe({ bootstrap_bundle: bootstrap }), context);
      expect(checked.ok).toBe(true);
      if (!checked.ok) return;
      expect(checked.spec.bootstrap_bundle).toBe(bundleJson);
      expect(checked.relationship).toMatchObject({ state: "pending", origin: "api", trustDomain: "partner.test" });
      expect(checked.relationship.profile.kind).toBe("https_spiffe");
    }
  });

  it("keeps an https_web CA inline and never the placeholder file name", () => {
    const checked = checkRelationshipSpec(
      { trust_domain: "web.test", endpoint_url: "https://web.test/", profile: "https_web", owner: "t", ca_pem: ca.pem },
      context,
    );
    expect(checked.ok).toBe(true);
    if (checked.ok) expect(checked.relationship.profile).toEqual({ kind: "https_web", caPem: `${ca.pem.trim()}\n` });
  });

  it.each([
    ["unknown field", { colour: "blue" }, "colour"],
    ["state is not written", { state: "active" }, "state"],
    ["file fields are config-only", { bootstrap_bundle_file: "x.json" }, "bootstrap_bundle_file"],
    ["wrong type", { owner: 5 }, "owner"],
    ["bad trust domain", { trust_domain: "Partner.Test" }, "trust_domain"],
    ["http URL", { endpoint_url: "http://partner.test/" }, "endpoint_url"],
    ["own trust domain", { trust_domain: "example.org", endpoint_spiffe_id: "spiffe://example.org/x" }, "trust_domain"],
    [
      "duplicate of another relationship",
      { trust_domain: "other.test", endpoint_spiffe_id: "spiffe://other.test/x" },
      "trust_domain",
    ],
    ["self-serving endpoint without a bundle", { bootstrap_bundle: undefined }, "bootstrap_bundle"],
    ["bundle without keys", { bootstrap_bundle: { spiffe_sequence: 1 } }, "bootstrap_bundle"],
    [
      "bundle with no X.509 authority (as the config file refuses)",
      { bootstrap_bundle: { keys: [] } },
      "bootstrap_bundle",
    ],
    ["bundle of the wrong type", { bootstrap_bundle: 42 }, "bootstrap_bundle"],
    ["CA on https_spiffe", { ca_pem: "x" }, "ca_pem"],
    ["bad label", { labels: { "bad key!": "v" } }, 'labels["bad key!"]'],
    ["review after expiry", { review_by: "2030-01-02", expires_at: "2030-01-01" }, "review_by"],
  ])("refuses %s, naming the field", (_name, overrides, path) => {
    const input = spiffe(overrides);
    for (const [key, value] of Object.entries(overrides))
      if (value === undefined) delete (input as Record<string, unknown>)[key];
    const checked = checkRelationshipSpec(input, context);
    expect(checked.ok).toBe(false);
    if (!checked.ok) {
      expect(checked.issues.map((issue) => issue.path)).toContain(path);
      for (const issue of checked.issues) {
        if (!(issue.path in overrides)) expect(issue.path).not.toMatch(/_file$|^relationships/);
        expect(issue.message).not.toContain("inline");
      }
    }
  });

  it("refuses a body that is not an object", () => {
    for (const input of [null, [], "x", 5]) expect(checkRelationshipSpec(input, context).ok).toBe(false);
  });

  it("refuses stored documents of another shape with a code", () => {
    for (const text of ["{", "{}", '{"version":2,"spec":{},"state":"active","lifecycle":{}}']) {
      expect(() => parseRelationshipDocument(text)).toThrow(
        expect.objectContaining({ code: "ERR_RELATIONSHIP_DOCUMENT_INVALID" }),
      );
    }
  });
});
