/**
 * The reading and writing rules of DESIGN.md section 3, each as its own case: what rejects the whole
 * document (with its code), what is ignored with a warning, and what the writer guarantees.
 */

import { X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  createTrustBundle,
  jwtAuthority,
  type TrustBundle,
  x509AuthorityFromCertificate,
} from "../../src/spiffe/bundle.js";
import { parseSpiffeBundle, serializeSpiffeBundle } from "../../src/spiffe/codec.js";
import { bundleDigest } from "../../src/spiffe/digest.js";
import { importPublicJwk, type PublicJwk } from "../../src/spiffe/public-key.js";
import { bundleDoc, rejection } from "../support/bundle-docs.js";
import { derToBase64, jwtEntry, x509Entry } from "../support/jwk-entries.js";
import { createCa, createJwtKey, createNonCaCert, type Issued, type JsonWebKey } from "../support/pki.js";

let ca: Issued;
let rsaCa: Issued;
let edCa: Issued;
let nonCa: Issued;
let jwtKey: JsonWebKey;
let otherJwtKey: JsonWebKey;

beforeAll(async () => {
  [ca, rsaCa, edCa, nonCa] = await Promise.all([
    createCa({ trustDomain: "example.org" }),
    createCa({ trustDomain: "example.org", keyAlg: "RSA-2048" }),
    createCa({ trustDomain: "example.org", keyAlg: "Ed25519" }),
    createNonCaCert({ uris: ["spiffe://example.org"] }),
  ]);
  jwtKey = (await createJwtKey()).publicJwk;
  otherJwtKey = (await createJwtKey("EC-P384")).publicJwk;
});

describe("documents rejected whole", () => {
  const cases: Array<[string, () => string, string]> = [
    ["not JSON", () => "keys: []", "ERR_BUNDLE_NOT_JSON"],
    ["truncated JSON", () => '{"keys":[', "ERR_BUNDLE_NOT_JSON"],
    ["trailing garbage after the object", () => '{"keys":[]} x', "ERR_BUNDLE_NOT_JSON"],
    ["a byte-order mark", () => '\uFEFF{"keys":[]}', "ERR_BUNDLE_NOT_JSON"],
    ["a JSON array", () => "[]", "ERR_BUNDLE_NOT_OBJECT"],
    ["a JSON string", () => '"keys"', "ERR_BUNDLE_NOT_OBJECT"],
    ["JSON null", () => "null", "ERR_BUNDLE_NOT_OBJECT"],
    [
      "duplicate top-level member",
      () => '{"keys":[],"spiffe_sequence":1,"spiffe_sequence":2}',
      "ERR_BUNDLE_DUPLICATE_MEMBER",
    ],
    [
      "duplicate member inside a key",
      () => `{"keys":[{"use":"jwt-svid","use":"x509-svid"}]}`,
      "ERR_BUNDLE_DUPLICATE_MEMBER",
    ],
    ["duplicate member nested deep", () => '{"keys":[],"x":{"y":[{"z":1,"z":2}]}}', "ERR_BUNDLE_DUPLICATE_MEMBER"],
    ["duplicate member spelled with an escape", () => '{"keys":[],"k\\u0065ys":[]}', "ERR_BUNDLE_DUPLICATE_MEMBER"],
    ["nesting deeper than the cap", () => `{"keys":[],"x":${"[".repeat(40)}${"]".repeat(40)}}`, "ERR_BUNDLE_TOO_DEEP"],
    ["missing keys", () => '{"spiffe_refresh_hint":300}', "ERR_BUNDLE_KEYS_MISSING"],
    ["keys as an object", () => '{"keys":{}}', "ERR_BUNDLE_KEYS_NOT_ARRAY"],
    ["keys as a string", () => '{"keys":"[]"}', "ERR_BUNDLE_KEYS_NOT_ARRAY"],
    ["a key that is not an object", () => '{"keys":["x509-svid"]}', "ERR_BUNDLE_KEY_NOT_OBJECT"],
    ...(["d", "p", "q", "dp", "dq", "qi", "oth", "k"] as const).map((member): [string, () => string, string] => [
      `private key member "${member}"`,
      () => bundleDoc([{ ...jwtEntry("k", jwtKey), [member]: "AAAA" }]),
      "ERR_BUNDLE_PRIVATE_KEY",
    ]),
    [
      "private member on an entry that would be ignored",
      () => bundleDoc([{ use: "unknown", kty: "oct", k: "c2VjcmV0" }]),
      "ERR_BUNDLE_PRIVATE_KEY",
    ],
    [
      "DER with trailing bytes",
      () => bundleDoc([{ ...x509Entry(ca), x5c: [derToBase64(Buffer.concat([ca.der, Buffer.from([0])]))] }]),
      "ERR_BUNDLE_DER_TRAILING_DATA",
    ],
    ["sequence 2^64", () => '{"keys":[],"spiffe_sequence":18446744073709551616}', "ERR_BUNDLE_BAD_SEQUENCE"],
    ["sequence -1", () => '{"keys":[],"spiffe_sequence":-1}', "ERR_BUNDLE_BAD_SEQUENCE"],
    ["sequence 1.5", () => '{"keys":[],"spiffe_sequence":1.5}', "ERR_BUNDLE_BAD_SEQUENCE"],
    ['sequence as the string "5"', () => '{"keys":[],"spiffe_sequence":"5"}', "ERR_BUNDLE_BAD_SEQUENCE"],
    ["sequence 1e3", () => '{"keys":[],"spiffe_sequence":1e3}', "ERR_BUNDLE_BAD_SEQUENCE"],
    ["sequence 1.0", () => '{"keys":[],"spiffe_sequence":1.0}', "ERR_BUNDLE_BAD_SEQUENCE"],
    ["sequence null", () => '{"keys":[],"spiffe_sequence":null}', "ERR_BUNDLE_BAD_SEQUENCE"],
    ["refresh hint 1.5", () => '{"keys":[],"spiffe_refresh_hint":1.5}', "ERR_BUNDLE_BAD_REFRESH_HINT"],
    ["refresh hint -300", () => '{"keys":[],"spiffe_refresh_hint":-300}', "ERR_BUNDLE_BAD_REFRESH_HINT"],
    ["refresh hint as a string", () => '{"keys":[],"spiffe_refresh_hint":"300"}', "ERR_BUNDLE_BAD_REFRESH_HINT"],
    ["refresh hint 3e2", () => '{"keys":[],"spiffe_refresh_hint":3e2}', "ERR_BUNDLE_BAD_REFRESH_HINT"],
    [
      "refresh hint past 2^53",
      () => '{"keys":[],"spiffe_refresh_hint":9007199254740993}',
      "ERR_BUNDLE_BAD_REFRESH_HINT",
    ],
    [
      "two different keys under one kid",
      () => bundleDoc([jwtEntry("k", jwtKey), jwtEntry("k", otherJwtKey)]),
      "ERR_BUNDLE_DUPLICATE_KID",
    ],
  ];

  it.each(cases)("%s", (_name, doc, code) => {
    const error = rejection(() => parseSpiffeBundle(doc()));
    expect(error.code).toBe(code);
    expect(error.status).toBe(422);
  });

  it("a body over the size cap (64 KiB by default)", () => {
    const padding = "x".repeat(64 * 1024);
    expect(rejection(() => parseSpiffeBundle(bundleDoc([], { padding }))).code).toBe("ERR_BUNDLE_TOO_LARGE");
    expect(rejection(() => parseSpiffeBundle('{"keys":[]}', { maxBytes: 10 })).code).toBe("ERR_BUNDLE_TOO_LARGE");
    expect(parseSpiffeBundle('{"keys":[]}', { maxBytes: 11 }).bundle.x509Authorities).toEqual([]);
  });

  it("more keys than the key-count cap, counting ignored entries", () => {
    const keys = Array.from({ length: 4 }, () => ({ use: "unknown" }));
    expect(rejection(() => parseSpiffeBundle(bundleDoc(keys), { maxKeys: 3 })).code).toBe("ERR_BUNDLE_TOO_MANY_KEYS");
    expect(parseSpiffeBundle(bundleDoc(keys), { maxKeys: 4 }).warnings).toHaveLength(4);
  });

  it("bytes that are not UTF-8", () => {
    const bytes = Buffer.concat([Buffer.from('{"keys":[],"x":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    expect(rejection(() => parseSpiffeBundle(bytes)).code).toBe("ERR_BUNDLE_NOT_UTF8");
  });
});

describe("entries ignored with a warning", () => {
  const cases: Array<[string, () => unknown, string]> = [
    ["unknown use", () => ({ ...jwtEntry("k", jwtKey), use: "enc" }), "WARN_KEY_USE_UNKNOWN"],
    ["use that is not a string", () => ({ ...jwtEntry("k", jwtKey), use: 1 }), "WARN_KEY_USE_UNKNOWN"],
    ["unknown kty", () => ({ ...jwtEntry("k", jwtKey), kty: "oct" }), "WARN_KEY_KTY_UNKNOWN"],
    ["unsupported EC curve", () => ({ ...jwtEntry("k", jwtKey), crv: "secp256k1" }), "WARN_KEY_UNSUPPORTED"],
    ["JWK point not on the curve", () => ({ ...jwtEntry("k", jwtKey), x: otherJwtKey.x }), "WARN_KEY_INVALID"],
    [
      "JWK missing a coordinate",
      () => ({ use: "jwt-svid", kty: "EC", kid: "k", crv: "P-256", x: jwtKey.x }),
      "WARN_KEY_INVALID",
    ],
    [
      "x509-svid entry with no x5c",
      () => ({ use: "x509-svid", kty: "EC", crv: "P-256", x: jwtKey.x, y: jwtKey.y }),
      "WARN_X5C_MISSING",
    ],
    ["x5c that is not an array", () => ({ ...x509Entry(ca), x5c: derToBase64(ca.der) }), "WARN_X5C_INVALID"],
    ["x5c that is not base64", () => ({ ...x509Entry(ca), x5c: ["not base64!"] }), "WARN_X5C_INVALID"],
    [
      "x5c in base64url instead of base64",
      () => ({ ...x509Entry(ca), x5c: [Buffer.from(ca.der).toString("base64url")] }),
      "WARN_X5C_INVALID",
    ],
    [
      "x5c that is not a certificate",
      () => ({ ...x509Entry(ca), x5c: [Buffer.from("hello").toString("base64")] }),
      "WARN_CERT_INVALID",
    ],
    ["a non-CA certificate", () => x509Entry(nonCa), "WARN_CERT_NOT_CA"],
    [
      "x5c whose key differs from the JWK's",
      () => ({ ...x509Entry(ca), x: otherJwtKey.x, y: otherJwtKey.y, crv: "P-384" }),
      "WARN_X5C_KEY_MISMATCH",
    ],
    [
      "x5c of an RSA CA under an EC JWK",
      () => ({ ...x509Entry(rsaCa), kty: "EC", crv: "P-256", x: jwtKey.x, y: jwtKey.y }),
      "WARN_X5C_KEY_MISMATCH",
    ],
    ["jwt-svid entry with no kid", () => ({ ...jwtEntry("k", jwtKey), kid: undefined }), "WARN_KID_MISSING"],
    ["jwt-svid entry with an empty kid", () => jwtEntry("", jwtKey), "WARN_KID_MISSING"],
  ];

  it.each(cases)("%s", (_name, entry, code) => {
    const doc = bundleDoc([entry(), x509Entry(edCa)]);
    const { bundle, warnings } = parseSpiffeBundle(doc);
    expect(warnings.map((w) => w.code)).toEqual([code]);
    expect(warnings[0]!.index).toBe(0);
    // Nothing else is lost: the valid entry beside it is still there, and the ignored one is not.
    expect(bundle.x509Authorities).toHaveLength(1);
    expect(bundle.jwtAuthorities.size).toBe(0);
  });

  it("an identical authority listed twice is kept once", () => {
    const { bundle, warnings } = parseSpiffeBundle(
      bundleDoc([x509Entry(ca), x509Entry(ca), jwtEntry("k", jwtKey), jwtEntry("k", jwtKey)]),
    );
    expect(bundle.x509Authorities).toHaveLength(1);
    expect(bundle.jwtAuthorities.size).toBe(1);
    expect(warnings.map((w) => w.code)).toEqual(["WARN_DUPLICATE_AUTHORITY", "WARN_DUPLICATE_AUTHORITY"]);
  });

  it('"keys": null (what go-spiffe writes for an empty bundle) reads as empty, with a warning', () => {
    const { bundle, warnings } = parseSpiffeBundle('{"keys":null,"spiffe_sequence":7}');
    expect(bundle.x509Authorities).toEqual([]);
    expect(bundle.sequence).toBe(7n);
    expect(warnings.map((w) => w.code)).toEqual(["WARN_KEYS_NULL"]);
  });
});

describe("spiffe_sequence", () => {
  it.each([
    ["0", 0n],
    ["1", 1n],
    ["9007199254740993", 9007199254740993n],
    ["18446744073709551615", 18446744073709551615n],
  ])("%s round-trips exactly", (text, value) => {
    const { bundle } = parseSpiffeBundle(`{"keys":[],"spiffe_sequence":${text}}`);
    expect(bundle.sequence).toBe(value);
    expect(serializeSpiffeBundle(bundle)).toBe(`{"keys":[],"spiffe_sequence":${text}}`);
  });
});

describe("writing", () => {
  it('writes "keys": [] for an empty bundle, never null', () => {
    expect(serializeSpiffeBundle(createTrustBundle())).toBe('{"keys":[]}');
  });

  it("writes x509 entries then JWT entries, each in a stable order, whatever the input order", () => {
    const entries = [
      jwtEntry("b", jwtKey),
      x509Entry(rsaCa),
      jwtEntry("a", otherJwtKey),
      x509Entry(ca),
      x509Entry(edCa),
    ];
    const forward = serializeSpiffeBundle(parseSpiffeBundle(bundleDoc(entries, { spiffe_sequence: 3 })).bundle);
    const backward = serializeSpiffeBundle(
      parseSpiffeBundle(bundleDoc([...entries].reverse(), { spiffe_sequence: 3 })).bundle,
    );
    expect(forward).toBe(backward);
    const uses = (JSON.parse(forward) as { keys: { use: string; kid?: string }[] }).keys.map((k) => k.kid ?? k.use);
    expect(uses).toEqual(["x509-svid", "x509-svid", "x509-svid", "a", "b"]);
  });

  it("never re-serves a partner's bytes: extra members and whitespace are dropped", () => {
    const doc = JSON.stringify(
      { keys: [{ ...jwtEntry("k", jwtKey), alg: "ES256", extra: true }], note: "hi" },
      null,
      4,
    );
    expect(serializeSpiffeBundle(parseSpiffeBundle(doc).bundle)).toBe(
      `{"keys":[{"use":"jwt-svid","kty":"EC","kid":"k","crv":"P-256","x":"${jwtKey.x}","y":"${jwtKey.y}"}]}`,
    );
  });

  it("writes the refresh hint in whole seconds", () => {
    const bundle = createTrustBundle({ refreshHintSeconds: 300 });
    expect(serializeSpiffeBundle(bundle)).toBe('{"keys":[],"spiffe_refresh_hint":300}');
    expect(() => createTrustBundle({ refreshHintSeconds: 1.5 })).toThrow(
      expect.objectContaining({ code: "ERR_BUNDLE_BAD_REFRESH_HINT" }),
    );
    expect(() => createTrustBundle({ sequence: 2n ** 64n })).toThrow(
      expect.objectContaining({ code: "ERR_BUNDLE_BAD_SEQUENCE" }),
    );
  });
});

describe("interop fixtures", () => {
  const fixture = (name: string) => readFileSync(new URL(`../fixtures/interop/${name}`, import.meta.url));

  it("reads what `spire-server bundle show -format spiffe` prints", () => {
    const { bundle, warnings } = parseSpiffeBundle(fixture("spire-bundle-show.json"));
    expect(warnings).toEqual([]);
    expect(bundle.x509Authorities).toHaveLength(1);
    expect(bundle.jwtAuthorities.size).toBe(1);
    expect(bundle.sequence).toBeDefined();
    expect(bundle.refreshHintSeconds).toBeDefined();
  });

  it("reads what go-spiffe's Marshal writes, including wit-svid keys", () => {
    const { bundle, warnings } = parseSpiffeBundle(fixture("go-spiffe-marshal.json"));
    expect(warnings).toEqual([]);
    expect(bundle.x509Authorities).toHaveLength(2);
    expect([...bundle.jwtAuthorities.values()].map((a) => a.use).sort()).toEqual(["jwt-svid", "wit-svid"]);
  });

  it("reads go-spiffe's empty bundle", () => {
    const { bundle } = parseSpiffeBundle(fixture("go-spiffe-marshal-empty.json"));
    expect(bundle.x509Authorities).toEqual([]);
    expect(bundle.sequence).toBe(7n);
  });

  it.each(["spire-bundle-show.json", "go-spiffe-marshal.json", "go-spiffe-marshal-empty.json"])(
    "what bundlegate writes from %s reads back under the same rules to the same bundle",
    (name) => {
      const { bundle } = parseSpiffeBundle(fixture(name));
      const written = serializeSpiffeBundle(bundle);
      const reread = parseSpiffeBundle(written);
      expect(reread.warnings).toEqual([]);
      expect(serializeSpiffeBundle(reread.bundle)).toBe(written);
      expect(written).toContain('"keys":[');
    },
  );
});

describe("properties", () => {
  let pool: { certificates: X509Certificate[]; jwks: PublicJwk[] };

  beforeAll(async () => {
    const cas = await Promise.all([ca, rsaCa, edCa, createCa({ trustDomain: "a.test", keyAlg: "EC-P384" })]);
    const keys = await Promise.all([createJwtKey(), createJwtKey("EC-P384"), createJwtKey("Ed25519")]);
    pool = {
      certificates: (await cas).map((c) => new X509Certificate(c.der)),
      jwks: keys.map((k) => {
        const imported = importPublicJwk(k.publicJwk as Record<string, unknown>);
        if (!imported.ok) throw new Error(imported.message);
        return imported.jwk;
      }),
    };
  });

  const bundleArbitrary = () =>
    fc
      .record({
        x509: fc.subarray([0, 1, 2, 3]),
        jwt: fc.uniqueArray(fc.tuple(fc.string({ minLength: 1, maxLength: 20 }), fc.nat(2), fc.boolean()), {
          selector: ([kid]) => kid,
          maxLength: 4,
        }),
        refreshHintSeconds: fc.option(fc.nat({ max: Number.MAX_SAFE_INTEGER }), { nil: undefined }),
        sequence: fc.option(fc.bigInt({ min: 0n, max: 2n ** 64n - 1n }), { nil: undefined }),
      })
      .map(
        ({ x509, jwt, refreshHintSeconds, sequence }): TrustBundle =>
          createTrustBundle({
            x509Authorities: x509.map((i) => x509AuthorityFromCertificate(pool.certificates[i]!)),
            jwtAuthorities: jwt.map(([kid, key, wit]) =>
              jwtAuthority(kid, pool.jwks[key]!, wit ? "wit-svid" : "jwt-svid"),
            ),
            refreshHintSeconds,
            sequence,
          }),
      );

  it("a written bundle reads back to an equal value, and writes to the same bytes", () => {
    fc.assert(
      fc.property(bundleArbitrary(), (bundle) => {
        const written = serializeSpiffeBundle(bundle);
        const { bundle: reread, warnings } = parseSpiffeBundle(written);
        expect(warnings).toEqual([]);
        expect(reread).toEqual(bundle);
        expect(serializeSpiffeBundle(reread)).toBe(written);
        expect(bundleDigest(reread)).toBe(bundleDigest(bundle));
      }),
      { numRuns: 150 },
    );
  });

  it("the indented form reads back to the same bundle as the canonical one", () => {
    fc.assert(
      fc.property(bundleArbitrary(), fc.integer({ min: 1, max: 8 }), (bundle, indent) => {
        const reread = parseSpiffeBundle(serializeSpiffeBundle(bundle, { indent })).bundle;
        expect(serializeSpiffeBundle(reread)).toBe(serializeSpiffeBundle(bundle));
      }),
      { numRuns: 50 },
    );
  });

  it("any input either reads or is refused with an InvalidBundleError, never anything else", () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.json(),
          fc.jsonValue().map((v) => JSON.stringify({ keys: [v] })),
        ),
        (text) => {
          try {
            parseSpiffeBundle(text);
          } catch (error) {
            expect(error).toMatchObject({ name: "InvalidBundleError", code: expect.stringMatching(/^ERR_/) });
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
