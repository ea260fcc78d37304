/**
 * One case per MUST of the SPIFFE standards that concerns a bundle document:
 * SPIFFE_Trust_Domain_and_Bundle.md section 4, X509-SVID.md section 6, JWT-SVID.md section 6 and
 * WIT-SVID.md section 6. Each `describe` names the section, each `it` the requirement.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { parseSpiffeBundle, serializeSpiffeBundle } from "../../src/spiffe/codec.js";
import { inspectBundle } from "../../src/spiffe/inspect.js";
import { bundleDoc, rejection } from "../support/bundle-docs.js";
import { jwtEntry, x509Entry } from "../support/jwk-entries.js";
import { createCa, createJwtKey, type Issued, type JsonWebKey } from "../support/pki.js";

let ca: Issued;
let otherCa: Issued;
let jwtKey: JsonWebKey;
let witKey: JsonWebKey;
const now = new Date();

beforeAll(async () => {
  ca = await createCa({ trustDomain: "example.org" });
  otherCa = await createCa({ trustDomain: "example.org", keyAlg: "EC-P384" });
  jwtKey = (await createJwtKey()).publicJwk;
  witKey = (await createJwtKey("Ed25519")).publicJwk;
});

const codes = (doc: string) => parseSpiffeBundle(doc).warnings.map((w) => w.code);

describe("Trust Domain and Bundle 4.1: the JWK Set", () => {
  it("accepts parameters the spec does not define, and does not require them", () => {
    const parsed = parseSpiffeBundle(bundleDoc([x509Entry(ca)], { vendor_extension: { a: 1 }, note: "x" }));
    expect(parsed.bundle.x509Authorities).toHaveLength(1);
    expect(parsed.warnings).toEqual([]);
  });

  it("4.1.1: reads spiffe_sequence with at least 64 bits of precision", () => {
    const parsed = parseSpiffeBundle('{"keys":[],"spiffe_sequence":18446744073709551615}');
    expect(parsed.bundle.sequence).toBe(18446744073709551615n);
  });

  it("4.1.1: refuses a spiffe_sequence that is not an integer", () => {
    expect(rejection(() => parseSpiffeBundle('{"keys":[],"spiffe_sequence":1.5}')).code).toBe(
      "ERR_BUNDLE_BAD_SEQUENCE",
    );
  });

  it("4.1.1: the sequence is optional (SHOULD, not MUST)", () => {
    expect(parseSpiffeBundle('{"keys":[]}').bundle.sequence).toBeUndefined();
  });

  it("4.1.2: reads spiffe_refresh_hint as an integer number of seconds", () => {
    expect(parseSpiffeBundle('{"keys":[],"spiffe_refresh_hint":2419200}').bundle.refreshHintSeconds).toBe(2419200);
  });

  it("4.1.2: refuses a refresh hint that is not an integer number of seconds", () => {
    expect(rejection(() => parseSpiffeBundle('{"keys":[],"spiffe_refresh_hint":"300"}')).code).toBe(
      "ERR_BUNDLE_BAD_REFRESH_HINT",
    );
  });

  it("4.1.3: the keys parameter MUST be present", () => {
    expect(rejection(() => parseSpiffeBundle('{"spiffe_sequence":1}')).code).toBe("ERR_BUNDLE_KEYS_MISSING");
  });

  it("4.1.3: keys may be an empty array, meaning every key is revoked: nothing is trusted", () => {
    const { bundle, warnings } = parseSpiffeBundle('{"keys":[]}');
    expect(bundle.x509Authorities).toEqual([]);
    expect(bundle.jwtAuthorities.size).toBe(0);
    const inspection = inspectBundle(bundle, { now, warnings });
    expect(inspection.usable).toBe(false);
    expect(inspection.warnings.map((w) => w.code)).toContain("WARN_NO_USABLE_AUTHORITIES");
  });

  it("4.1.3: a bundle whose keys are all unusable is effectively empty and trusts nothing", () => {
    const { bundle, warnings } = parseSpiffeBundle(bundleDoc([{ use: "future-svid", kty: "EC" }]));
    expect(inspectBundle(bundle, { now, warnings }).usable).toBe(false);
  });
});

describe("Trust Domain and Bundle 4.2: each JWK", () => {
  it("4.2.1: a JWK without kty is ignored entirely", () => {
    const { kty: _kty, ...entry } = x509Entry(ca);
    const parsed = parseSpiffeBundle(bundleDoc([entry, x509Entry(otherCa)]));
    expect(parsed.bundle.x509Authorities).toHaveLength(1);
    expect(codes(bundleDoc([entry]))).toEqual(["WARN_KEY_KTY_MISSING"]);
  });

  it("4.2.1: a JWK with an unknown key type is ignored entirely", () => {
    const parsed = parseSpiffeBundle(bundleDoc([{ ...jwtEntry("k1", jwtKey), kty: "PQC" }, x509Entry(ca)]));
    expect(parsed.bundle.jwtAuthorities.size).toBe(0);
    expect(parsed.bundle.x509Authorities).toHaveLength(1);
    expect(parsed.warnings.map((w) => w.code)).toEqual(["WARN_KEY_KTY_UNKNOWN"]);
  });

  it("4.2.2: a JWK without use is ignored entirely", () => {
    const { use: _use, ...entry } = jwtEntry("k1", jwtKey);
    const parsed = parseSpiffeBundle(bundleDoc([entry]));
    expect(parsed.bundle.jwtAuthorities.size).toBe(0);
    expect(parsed.warnings.map((w) => w.code)).toEqual(["WARN_KEY_USE_MISSING"]);
  });

  it("4.2.2: a JWK with an unknown use is ignored entirely", () => {
    expect(codes(bundleDoc([{ ...jwtEntry("k1", jwtKey), use: "sig" }]))).toEqual(["WARN_KEY_USE_UNKNOWN"]);
  });

  it("4.2.2: use values are case sensitive", () => {
    const parsed = parseSpiffeBundle(bundleDoc([{ ...x509Entry(ca), use: "X509-SVID" }]));
    expect(parsed.bundle.x509Authorities).toHaveLength(0);
    expect(parsed.warnings.map((w) => w.code)).toEqual(["WARN_KEY_USE_UNKNOWN"]);
  });
});

describe("Trust Domain and Bundle 6.3: JSON key duplication", () => {
  it("refuses a document with duplicate member names", () => {
    expect(rejection(() => parseSpiffeBundle('{"keys":[],"keys":[]}')).code).toBe("ERR_BUNDLE_DUPLICATE_MEMBER");
  });
});

describe("X509-SVID 6.1: publishing", () => {
  it("writes use x509-svid, no kid, and exactly one certificate in x5c", () => {
    const { bundle } = parseSpiffeBundle(bundleDoc([x509Entry(ca, { kid: "should-not-be-here" })]));
    const written = JSON.parse(serializeSpiffeBundle(bundle)) as { keys: Record<string, unknown>[] };
    expect(written.keys).toHaveLength(1);
    expect(written.keys[0]!.use).toBe("x509-svid");
    expect(written.keys[0]).not.toHaveProperty("kid");
    expect(written.keys[0]!.x5c).toEqual([Buffer.from(ca.der).toString("base64")]);
  });

  it("a consumer keeps an x509-svid entry that wrongly sets kid, and warns", () => {
    expect(codes(bundleDoc([x509Entry(ca, { kid: "abc" })]))).toEqual(["WARN_X509_KID_SET"]);
  });
});

describe("X509-SVID 6.2: consuming", () => {
  it("ignores an x509-svid entry without x5c", () => {
    const { x5c: _x5c, ...entry } = x509Entry(ca);
    const parsed = parseSpiffeBundle(bundleDoc([entry]));
    expect(parsed.bundle.x509Authorities).toHaveLength(0);
    expect(parsed.warnings.map((w) => w.code)).toEqual(["WARN_X5C_MISSING"]);
  });

  it("ignores an x509-svid entry with an empty x5c", () => {
    expect(codes(bundleDoc([{ ...x509Entry(ca), x5c: [] }]))).toEqual(["WARN_X5C_MISSING"]);
  });

  it("uses the first x5c certificate and ignores the rest", () => {
    const parsed = parseSpiffeBundle(bundleDoc([x509Entry(ca, { extraX5c: [otherCa.der] })]));
    expect(parsed.bundle.x509Authorities.map((a) => Buffer.from(a.der))).toEqual([Buffer.from(ca.der)]);
    expect(parsed.warnings.map((w) => w.code)).toEqual(["WARN_X5C_EXTRA_CERTIFICATES"]);
  });

  it("the X.509 authorities are the union of all x509-svid entries", () => {
    const parsed = parseSpiffeBundle(bundleDoc([x509Entry(ca), jwtEntry("k", jwtKey), x509Entry(otherCa)]));
    expect(parsed.bundle.x509Authorities).toHaveLength(2);
  });

  it("no x509-svid entries means the trust domain does not support X509-SVID", () => {
    const parsed = parseSpiffeBundle(bundleDoc([jwtEntry("k", jwtKey)]));
    expect(parsed.bundle.x509Authorities).toEqual([]);
    expect(parsed.bundle.jwtAuthorities.size).toBe(1);
  });
});

describe("JWT-SVID 6.1 and 6.2", () => {
  it("writes jwt-svid entries with use jwt-svid and their kid", () => {
    const { bundle } = parseSpiffeBundle(bundleDoc([jwtEntry("key-1", jwtKey)]));
    const written = JSON.parse(serializeSpiffeBundle(bundle)) as { keys: Record<string, unknown>[] };
    expect(written.keys[0]).toMatchObject({ use: "jwt-svid", kid: "key-1", kty: "EC", crv: "P-256" });
  });

  it("ignores a jwt-svid entry without kid", () => {
    const { kid: _kid, ...entry } = jwtEntry("k", jwtKey);
    const parsed = parseSpiffeBundle(bundleDoc([entry]));
    expect(parsed.bundle.jwtAuthorities.size).toBe(0);
    expect(parsed.warnings.map((w) => w.code)).toEqual(["WARN_KID_MISSING"]);
  });

  it("extracts only jwt-svid keys as JWT authorities", () => {
    const parsed = parseSpiffeBundle(bundleDoc([x509Entry(ca), jwtEntry("k", jwtKey)]));
    expect([...parsed.bundle.jwtAuthorities.keys()]).toEqual(["k"]);
  });
});

describe("WIT-SVID 6.1 and 6.2", () => {
  it("keeps wit-svid keys and writes them back with use wit-svid", () => {
    const { bundle } = parseSpiffeBundle(bundleDoc([jwtEntry("wit-1", witKey, "wit-svid")]));
    expect(bundle.jwtAuthorities.get("wit-1")?.use).toBe("wit-svid");
    expect(serializeSpiffeBundle(bundle)).toContain('"use":"wit-svid"');
  });

  it("a kid must be unique across jwt-svid and wit-svid entries", () => {
    const doc = bundleDoc([jwtEntry("same", jwtKey), jwtEntry("same", witKey, "wit-svid")]);
    expect(rejection(() => parseSpiffeBundle(doc)).code).toBe("ERR_BUNDLE_DUPLICATE_KID");
  });
});
