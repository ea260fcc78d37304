/**
 * inspectBundle: what an operator sees for each authority and for the bundle as a whole, against a
 * fixed clock, and the warnings that depend on the clock or the trust domain.
 */
import { createHash, X509Certificate } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import {
  createTrustBundle,
  jwtAuthority,
  type TrustBundle,
  type X509Authority,
  x509AuthorityFromCertificate,
} from "../../src/spiffe/bundle.js";
import { parseSpiffeBundle } from "../../src/spiffe/codec.js";
import { bundleDigest } from "../../src/spiffe/digest.js";
import { parseTrustDomain } from "../../src/spiffe/id.js";
import { type AuthorityInspection, inspectBundle } from "../../src/spiffe/inspect.js";
import { importPublicJwk, jwkThumbprint, type PublicJwk } from "../../src/spiffe/public-key.js";
import type { BundleWarning } from "../../src/spiffe/warnings.js";
import { bundleDoc } from "../support/bundle-docs.js";
import { jwtEntry, x509Entry } from "../support/jwk-entries.js";
import { createCa, createJwtKey, type Issued, type JsonWebKey } from "../support/pki.js";

const NOW = new Date("2030-06-01T12:00:00.000Z");
const DAY = 24 * 60 * 60 * 1000;
const at = (offsetMs: number) => new Date(NOW.getTime() + offsetMs);
const iso = (offsetMs: number) => at(offsetMs).toISOString();

let root: Issued;
let p384: Issued;
let rsa: Issued;
let ed: Issued;
let intermediate: Issued;
let expired: Issued;
let expiredLongAgo: Issued;
let notYetValid: Issued;
let endsNow: Issued;
let startsNow: Issued;
let otherDomain: Issued;
let noUri: Issued;
let jwtJwk: JsonWebKey;
let witJwk: JsonWebKey;

beforeAll(async () => {
  const valid = { notBefore: at(-DAY), notAfter: at(30 * DAY) };
  [root, p384, rsa, ed, expired, expiredLongAgo, notYetValid, endsNow, startsNow, otherDomain, noUri] =
    await Promise.all([
      createCa({ trustDomain: "example.org", subject: "CN=Root CA, O=example.org", ...valid }),
      createCa({ trustDomain: "example.org", keyAlg: "EC-P384", notBefore: at(-2 * DAY), notAfter: at(60 * DAY) }),
      createCa({ trustDomain: "example.org", keyAlg: "RSA-2048", notBefore: at(-3 * DAY), notAfter: at(10 * DAY) }),
      createCa({ trustDomain: "example.org", keyAlg: "Ed25519", ...valid }),
      createCa({ trustDomain: "example.org", notBefore: at(-30 * DAY), notAfter: at(-1000) }),
      createCa({ trustDomain: "example.org", notBefore: at(-400 * DAY), notAfter: at(-300 * DAY) }),
      createCa({ trustDomain: "example.org", notBefore: at(DAY), notAfter: at(90 * DAY) }),
      createCa({ trustDomain: "example.org", notBefore: at(-DAY), notAfter: at(0) }),
      createCa({ trustDomain: "example.org", notBefore: at(0), notAfter: at(DAY) }),
      createCa({ trustDomain: "other.org", ...valid }),
      createCa({ trustDomain: "example.org", withSpiffeUri: false, subject: "O=no uri", ...valid }),
    ]);
  intermediate = await createCa({ trustDomain: "example.org", issuer: root, ...valid });
  jwtJwk = (await createJwtKey()).publicJwk;
  witJwk = (await createJwtKey("Ed25519")).publicJwk;
});

const authority = (ca: Issued): X509Authority => x509AuthorityFromCertificate(new X509Certificate(ca.der));
const x509Bundle = (...cas: Issued[]) => createTrustBundle({ x509Authorities: cas.map(authority) });
const imported = (jwk: JsonWebKey): PublicJwk => {
  const result = importPublicJwk(jwk as Record<string, unknown>);
  if (!result.ok) throw new Error(result.message);
  return result.jwk;
};
const inspect = (bundle: TrustBundle, extra: { trustDomain?: string; warnings?: BundleWarning[] } = {}) =>
  inspectBundle(bundle, {
    now: NOW,
    ...(extra.trustDomain === undefined ? {} : { trustDomain: parseTrustDomain(extra.trustDomain) }),
    ...(extra.warnings === undefined ? {} : { warnings: extra.warnings }),
  });
const codes = (warnings: readonly BundleWarning[]) => warnings.map((w) => w.code);
const only = (bundle: TrustBundle): AuthorityInspection => {
  const { authorities } = inspect(bundle);
  expect(authorities).toHaveLength(1);
  return authorities[0]!;
};
const sha256 = (der: Uint8Array) => createHash("sha256").update(der).digest("hex");

describe("each X.509 authority", () => {
  it("a root: every field", () => {
    expect(only(x509Bundle(root))).toEqual({
      use: "x509-svid",
      keyType: "EC P-256",
      fingerprint: sha256(root.der),
      subject: "CN=Root CA, O=example.org",
      issuer: "CN=Root CA, O=example.org",
      serialNumber: root.cert.serialNumber.toLowerCase(),
      notBefore: iso(-DAY),
      notAfter: iso(30 * DAY),
      ca: true,
      selfSigned: true,
      spiffeIds: ["spiffe://example.org"],
      status: "valid",
    });
  });

  const keyTypes: Array<[string, () => Issued]> = [
    ["EC P-256", () => root],
    ["EC P-384", () => p384],
    ["RSA 2048", () => rsa],
    ["OKP Ed25519", () => ed],
  ];
  it.each(keyTypes)("key type %s", (keyType, ca) => {
    const inspection = only(x509Bundle(ca()));
    expect(inspection.keyType).toBe(keyType);
    expect(inspection.fingerprint).toBe(sha256(ca().der));
    expect(inspection.selfSigned).toBe(true);
  });

  it("validity as ISO timestamps", () => {
    expect(only(x509Bundle(p384))).toMatchObject({ notBefore: iso(-2 * DAY), notAfter: iso(60 * DAY) });
    expect(only(x509Bundle(rsa))).toMatchObject({ notBefore: iso(-3 * DAY), notAfter: iso(10 * DAY) });
  });

  it("an intermediate is a CA but not self-signed, and says so", () => {
    const inspection = inspect(x509Bundle(intermediate));
    expect(inspection.authorities[0]).toMatchObject({
      ca: true,
      selfSigned: false,
      issuer: "CN=Root CA, O=example.org",
      status: "valid",
    });
    expect(codes(inspection.warnings)).toEqual(["WARN_AUTHORITY_NOT_SELF_SIGNED"]);
    expect(inspection.usable).toBe(true);
  });

  it("a root raises no warning", () => {
    expect(inspect(x509Bundle(root, p384, rsa, ed)).warnings).toEqual([]);
  });

  it("a CA without a URI SAN has no SPIFFE IDs", () => {
    expect(only(x509Bundle(noUri))).toMatchObject({ subject: "O=no uri", spiffeIds: [] });
  });

  const statuses: Array<[string, () => Issued, string, string[]]> = [
    ["valid", () => root, "valid", []],
    ["expired a second ago", () => expired, "expired", ["WARN_AUTHORITY_EXPIRED"]],
    ["expired long ago", () => expiredLongAgo, "expired", ["WARN_AUTHORITY_EXPIRED"]],
    ["valid from tomorrow", () => notYetValid, "not-yet-valid", ["WARN_AUTHORITY_NOT_YET_VALID"]],
    ["notAfter exactly now (inclusive)", () => endsNow, "valid", []],
    ["notBefore exactly now (inclusive)", () => startsNow, "valid", []],
  ];
  it.each(statuses)("status: %s", (_name, ca, status, warnings) => {
    const inspection = inspect(x509Bundle(ca()));
    expect(inspection.authorities[0]?.status).toBe(status);
    expect(codes(inspection.warnings)).toEqual([
      ...warnings,
      ...(status === "valid" ? [] : ["WARN_NO_USABLE_AUTHORITIES"]),
    ]);
    expect(inspection.usable).toBe(status === "valid");
  });

  it("the status follows the clock it is given, not the machine's", () => {
    const bundle = x509Bundle(expiredLongAgo);
    expect(inspectBundle(bundle, { now: at(-350 * DAY) }).authorities[0]?.status).toBe("valid");
    expect(inspectBundle(bundle, { now: at(-500 * DAY) }).authorities[0]?.status).toBe("not-yet-valid");
    expect(inspectBundle(bundle, { now: NOW }).authorities[0]?.status).toBe("expired");
  });
});

describe("each JWT authority", () => {
  it.each(["jwt-svid", "wit-svid"] as const)("%s: use, key type, thumbprint, key ID, always valid", (use) => {
    const key = imported(use === "jwt-svid" ? jwtJwk : witJwk);
    const inspection = inspect(createTrustBundle({ jwtAuthorities: [jwtAuthority("kid-1", key, use)] }));
    expect(inspection.authorities).toEqual([
      {
        use,
        keyType: use === "jwt-svid" ? "EC P-256" : "OKP Ed25519",
        fingerprint: jwkThumbprint(key),
        keyId: "kid-1",
        status: "valid",
      },
    ]);
    expect(inspection.usable).toBe(true);
    expect(inspection.warnings).toEqual([]);
    expect(inspection.earliestNotAfter).toBeUndefined();
    expect(inspection.latestNotAfter).toBeUndefined();
  });

  it("X.509 authorities come first, then JWT authorities in key ID order", () => {
    const inspection = inspect(
      createTrustBundle({
        x509Authorities: [authority(root)],
        jwtAuthorities: [jwtAuthority("b", imported(jwtJwk)), jwtAuthority("a", imported(witJwk), "wit-svid")],
      }),
    );
    expect(inspection.authorities.map((a) => [a.use, a.keyId])).toEqual([
      ["x509-svid", undefined],
      ["wit-svid", "a"],
      ["jwt-svid", "b"],
    ]);
    expect(inspection.x509AuthorityCount).toBe(1);
    expect(inspection.jwtAuthorityCount).toBe(2);
  });
});

describe("the bundle as a whole", () => {
  it("earliest and latest notAfter across X.509 authorities, expired ones included", () => {
    const inspection = inspect(x509Bundle(p384, root, rsa, expired));
    expect(inspection.earliestNotAfter).toBe(iso(-1000));
    expect(inspection.latestNotAfter).toBe(iso(60 * DAY));
  });

  it("one authority: earliest equals latest", () => {
    const inspection = inspect(x509Bundle(rsa));
    expect(inspection.earliestNotAfter).toBe(iso(10 * DAY));
    expect(inspection.latestNotAfter).toBe(iso(10 * DAY));
  });

  const usability: Array<[string, () => TrustBundle, boolean]> = [
    ["empty", () => createTrustBundle(), false],
    ["all expired", () => x509Bundle(expired, expiredLongAgo), false],
    ["expired and not yet valid", () => x509Bundle(expired, notYetValid), false],
    ["one valid among expired", () => x509Bundle(expired, root), true],
    ["a JWT key only", () => createTrustBundle({ jwtAuthorities: [jwtAuthority("k", imported(jwtJwk))] }), true],
    [
      "expired X.509 authority and a JWT key",
      () =>
        createTrustBundle({
          x509Authorities: [authority(expired)],
          jwtAuthorities: [jwtAuthority("k", imported(jwtJwk))],
        }),
      true,
    ],
  ];
  it.each(usability)("usable: %s → %s", (_name, bundle, usable) => {
    const inspection = inspect(bundle());
    expect(inspection.usable).toBe(usable);
    expect(codes(inspection.warnings).includes("WARN_NO_USABLE_AUTHORITIES")).toBe(!usable);
  });

  it("an empty bundle: no authorities, no expiry, one warning", () => {
    const inspection = inspect(createTrustBundle());
    expect(inspection).toMatchObject({ x509AuthorityCount: 0, jwtAuthorityCount: 0, authorities: [], usable: false });
    expect(inspection.earliestNotAfter).toBeUndefined();
    expect(codes(inspection.warnings)).toEqual(["WARN_NO_USABLE_AUTHORITIES"]);
  });

  it("an all-expired bundle: one expiry warning per authority, then the unusable warning", () => {
    expect(codes(inspect(x509Bundle(expired, expiredLongAgo)).warnings)).toEqual([
      "WARN_AUTHORITY_EXPIRED",
      "WARN_AUTHORITY_EXPIRED",
      "WARN_NO_USABLE_AUTHORITIES",
    ]);
  });

  it("digest is the bundle's digest", () => {
    const bundle = x509Bundle(root, rsa);
    expect(inspect(bundle).digest).toBe(bundleDigest(bundle));
    expect(inspect(createTrustBundle()).digest).toBe(bundleDigest(createTrustBundle()));
  });

  const sequences: Array<[bigint, string]> = [
    [0n, "0"],
    [42n, "42"],
    [2n ** 53n + 1n, "9007199254740993"],
    [2n ** 64n - 1n, "18446744073709551615"],
  ];
  it.each(sequences)("sequence %s as the decimal string %s", (sequence, text) => {
    const inspection = inspect(createTrustBundle({ x509Authorities: [authority(root)], sequence }));
    expect(inspection.sequence).toBe(text);
    expect(JSON.parse(JSON.stringify(inspection)).sequence).toBe(text);
  });

  it("sequence and refresh hint are absent when the bundle has none, present when it has", () => {
    const none = inspect(x509Bundle(root));
    expect(none.sequence).toBeUndefined();
    expect(none.refreshHintSeconds).toBeUndefined();
    expect("trustDomain" in none).toBe(false);
    const some = inspect(
      createTrustBundle({ x509Authorities: [authority(root)], refreshHintSeconds: 300, sequence: 1n }),
    );
    expect(some.refreshHintSeconds).toBe(300);
    expect(some.sequence).toBe("1");
  });
});

describe("trust domain", () => {
  const cases: Array<[string, () => Issued[], string | undefined, string[]]> = [
    ["a CA of the given domain", () => [root], "example.org", []],
    ["a CA naming another domain", () => [otherDomain], "example.org", ["WARN_AUTHORITY_OTHER_TRUST_DOMAIN"]],
    [
      "one of two CAs naming another domain",
      () => [root, otherDomain],
      "example.org",
      ["WARN_AUTHORITY_OTHER_TRUST_DOMAIN"],
    ],
    ["the other domain's own view", () => [otherDomain], "other.org", []],
    ["the other domain's view of ours", () => [root], "other.org", ["WARN_AUTHORITY_OTHER_TRUST_DOMAIN"]],
    ["a subdomain is another domain", () => [root], "sub.example.org", ["WARN_AUTHORITY_OTHER_TRUST_DOMAIN"]],
    ["a CA without a SPIFFE ID", () => [noUri], "example.org", []],
    ["no trust domain given: nothing checked", () => [otherDomain], undefined, []],
  ];
  it.each(cases)("%s", (_name, cas, trustDomain, warnings) => {
    const inspection = inspect(x509Bundle(...cas()), trustDomain === undefined ? {} : { trustDomain });
    expect(codes(inspection.warnings)).toEqual(warnings);
    expect(inspection.trustDomain).toBe(trustDomain);
    expect(inspection.usable).toBe(true);
  });

  it("the foreign authority still lists its SPIFFE ID", () => {
    const inspection = inspect(x509Bundle(otherDomain), { trustDomain: "example.org" });
    expect(inspection.authorities[0]?.spiffeIds).toEqual(["spiffe://other.org"]);
  });
});

describe("warnings from the reader", () => {
  it("are carried through first, unchanged, before inspection's own", () => {
    const { bundle, warnings } = parseSpiffeBundle(
      bundleDoc([{ use: "enc", kty: "EC" }, x509Entry(expired), jwtEntry("", jwtJwk)]),
    );
    expect(codes(warnings)).toEqual(["WARN_KEY_USE_UNKNOWN", "WARN_KID_MISSING"]);
    const inspection = inspectBundle(bundle, { now: NOW, warnings });
    expect(inspection.warnings.slice(0, 2)).toEqual(warnings);
    expect(codes(inspection.warnings)).toEqual([
      "WARN_KEY_USE_UNKNOWN",
      "WARN_KID_MISSING",
      "WARN_AUTHORITY_EXPIRED",
      "WARN_NO_USABLE_AUTHORITIES",
    ]);
  });

  it("the caller's warnings array is not modified", () => {
    const warnings: BundleWarning[] = [{ code: "WARN_KEYS_NULL", message: "x" }];
    inspectBundle(createTrustBundle(), { now: NOW, warnings });
    expect(warnings).toEqual([{ code: "WARN_KEYS_NULL", message: "x" }]);
  });
});
