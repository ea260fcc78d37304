/**
 * PEM bundles: what parsePemBundle accepts, ignores (with which warning) and refuses (with which code);
 * serializePem and derToPem; and format detection and dispatch in read.ts.
 */
import "reflect-metadata";
import { createHash, generateKeyPairSync, webcrypto, X509Certificate } from "node:crypto";
import * as x509 from "@peculiar/x509";
import { beforeAll, describe, expect, it } from "vitest";
import { createTrustBundle, type TrustBundle, x509AuthorityFromCertificate } from "../../src/spiffe/bundle.js";
import { parseSpiffeBundle, serializeSpiffeBundle } from "../../src/spiffe/codec.js";
import { derToPem, parsePemBundle, serializePem } from "../../src/spiffe/pem.js";
import { detectBundleFormat, parseBundle } from "../../src/spiffe/read.js";
import { rejection } from "../support/bundle-docs.js";
import { createCa, createNonCaCert, type Issued } from "../support/pki.js";

x509.cryptoProvider.set(webcrypto);

let ca: Issued;
let rsaCa: Issued;
let edCa: Issued;
let intermediate: Issued;
let nonCa: Issued;
let nonCaExplicit: Issued;

beforeAll(async () => {
  [ca, rsaCa, edCa, nonCa, nonCaExplicit] = await Promise.all([
    createCa({ trustDomain: "example.org" }),
    createCa({ trustDomain: "example.org", keyAlg: "RSA-2048" }),
    createCa({ trustDomain: "example.org", keyAlg: "Ed25519" }),
    createNonCaCert({ uris: ["spiffe://example.org"] }),
    createNonCaCert({ explicitCaFalse: true }),
  ]);
  intermediate = await createCa({ trustDomain: "example.org", issuer: ca });
});

const sha256 = (der: Uint8Array) => createHash("sha256").update(der).digest("hex");
const fingerprints = (bundle: TrustBundle) => bundle.x509Authorities.map((a) => a.fingerprint);
const sorted = (...certs: Issued[]) => certs.map((c) => sha256(c.der)).sort();
const warningsOf = (parsed: ReturnType<typeof parsePemBundle>) => parsed.warnings.map((w) => [w.code, w.index]);
const wrap = (der: Uint8Array, width: number) =>
  (
    Buffer.from(der)
      .toString("base64")
      .match(new RegExp(`.{1,${width}}`, "g")) ?? []
  ).join("\n");
const block = (label: string, body = "MIIBAAAA") => `-----BEGIN ${label}-----\n${body}\n-----END ${label}-----\n`;

/** A CA certificate carrying a key on `namedCurve`, which WebCrypto cannot make; signed by `issuer`. */
async function caWithCurve(namedCurve: string, issuer: Issued): Promise<Uint8Array> {
  const { publicKey } = generateKeyPairSync("ec", { namedCurve });
  const cert = await x509.X509CertificateGenerator.create({
    serialNumber: "01",
    subject: `CN=${namedCurve} CA, O=example.org`,
    issuer: issuer.cert.subjectName,
    notBefore: new Date(Date.now() - 3_600_000),
    notAfter: new Date(Date.now() + 3_600_000),
    publicKey: new Uint8Array(publicKey.export({ format: "der", type: "spki" })),
    signingKey: issuer.keys.privateKey,
    signingAlgorithm: { name: "ECDSA", hash: "SHA-256" } as webcrypto.EcdsaParams,
    extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
  });
  return new Uint8Array(cert.rawData);
}

describe("certificates that are read", () => {
  const cases: Array<[string, () => string, () => Issued[]]> = [
    ["one certificate", () => ca.pem, () => [ca]],
    ["several certificates", () => ca.pem + rsaCa.pem + edCa.pem, () => [ca, rsaCa, edCa]],
    ["a root and its intermediate", () => intermediate.pem + ca.pem, () => [ca, intermediate]],
    ["no trailing newline", () => ca.pem.trimEnd(), () => [ca]],
    ["CRLF line endings", () => (ca.pem + rsaCa.pem).replace(/\n/g, "\r\n"), () => [ca, rsaCa]],
    [
      "explanatory text before, between and after blocks",
      () => `Subject: O=example.org\nIssuer: O=example.org\n${ca.pem}\n# second\n${edCa.pem}trailing words\n`,
      () => [ca, edCa],
    ],
    [
      "openssl -text style output with colons and indentation before the block",
      () =>
        `Certificate:\n    Data:\n        Version: 3 (0x2)\n        Serial Number:\n            0a:1b:2c\n${ca.pem}`,
      () => [ca],
    ],
    [
      "base64 wrapped at 76 columns",
      () => `-----BEGIN CERTIFICATE-----\n${wrap(ca.der, 76)}\n-----END CERTIFICATE-----\n`,
      () => [ca],
    ],
    [
      "base64 on one long line",
      () => `-----BEGIN CERTIFICATE-----\n${wrap(rsaCa.der, 100_000)}\n-----END CERTIFICATE-----\n`,
      () => [rsaCa],
    ],
    ["body with blank lines and spaces", () => derToPem(rsaCa.der).replace(/\n(?!-----)/g, "\n  \n"), () => [rsaCa]],
  ];
  it.each(cases)("%s", (_name, pem, expected) => {
    const parsed = parsePemBundle(pem());
    expect(fingerprints(parsed.bundle)).toEqual(sorted(...expected()));
    expect(parsed.warnings).toEqual([]);
    expect(parsed.bundle.jwtAuthorities.size).toBe(0);
    expect(parsed.bundle.sequence).toBeUndefined();
    expect(parsed.bundle.refreshHintSeconds).toBeUndefined();
  });

  it("reads bytes as well as a string", () => {
    const parsed = parsePemBundle(new TextEncoder().encode(ca.pem + rsaCa.pem));
    expect(fingerprints(parsed.bundle)).toEqual(sorted(ca, rsaCa));
  });

  it("keeps each authority's DER and public key", () => {
    const [authority] = parsePemBundle(edCa.pem).bundle.x509Authorities;
    expect(authority?.der).toEqual(edCa.der);
    expect(authority?.publicKey).toEqual({ kty: "OKP", crv: "Ed25519", x: edCa.publicJwk.x });
  });
});

describe("blocks ignored with a warning", () => {
  const cases: Array<[string, () => string, () => Issued[], Array<[string, number]>]> = [
    ["a non-CA certificate", () => ca.pem + nonCa.pem, () => [ca], [["WARN_CERT_NOT_CA", 1]]],
    ["a certificate with CA:false", () => nonCaExplicit.pem + ca.pem, () => [ca], [["WARN_CERT_NOT_CA", 0]]],
    ["only a non-CA certificate", () => nonCa.pem, () => [], [["WARN_CERT_NOT_CA", 0]]],
    ["a PUBLIC KEY block", () => block("PUBLIC KEY") + ca.pem, () => [ca], [["WARN_PEM_BLOCK_IGNORED", 0]]],
    ["an X509 CRL block", () => ca.pem + block("X509 CRL"), () => [ca], [["WARN_PEM_BLOCK_IGNORED", 1]]],
    [
      "a TRUSTED CERTIFICATE block",
      () => ca.pem + block("TRUSTED CERTIFICATE"),
      () => [ca],
      [["WARN_PEM_BLOCK_IGNORED", 1]],
    ],
    [
      "the same certificate twice",
      () => ca.pem + rsaCa.pem + ca.pem,
      () => [ca, rsaCa],
      [["WARN_DUPLICATE_AUTHORITY", 2]],
    ],
    [
      "the same certificate twice, wrapped differently",
      () => ca.pem + derToPem(ca.der).replace(/\n(?!-----)/g, "\r\n"),
      () => [ca],
      [["WARN_DUPLICATE_AUTHORITY", 1]],
    ],
    [
      "several at once, each with its block index",
      () => block("PUBLIC KEY") + nonCa.pem + ca.pem + ca.pem,
      () => [ca],
      [
        ["WARN_PEM_BLOCK_IGNORED", 0],
        ["WARN_CERT_NOT_CA", 1],
        ["WARN_DUPLICATE_AUTHORITY", 3],
      ],
    ],
  ];
  it.each(cases)("%s", (_name, pem, expected, warnings) => {
    const parsed = parsePemBundle(pem());
    expect(fingerprints(parsed.bundle)).toEqual(sorted(...expected()));
    expect(warningsOf(parsed)).toEqual(warnings);
  });

  it.each(["brainpoolP256r1", "secp256k1"])(
    "a CA whose key is on %s (no SPIFFE bundle can carry it) is ignored with WARN_KEY_UNSUPPORTED",
    async (curve) => {
      const der = await caWithCurve(curve, ca);
      const parsed = parsePemBundle(ca.pem + derToPem(der));
      expect(fingerprints(parsed.bundle)).toEqual(sorted(ca));
      expect(warningsOf(parsed)).toEqual([["WARN_KEY_UNSUPPORTED", 1]]);
      // What is kept re-serializes to a SPIFFE bundle bundlegate reads back whole.
      const reread = parseSpiffeBundle(serializeSpiffeBundle(parsed.bundle));
      expect(fingerprints(reread.bundle)).toEqual(sorted(ca));
      expect(reread.warnings).toEqual([]);
    },
  );
});

describe("documents rejected whole", () => {
  const cases: Array<[string, () => string, string]> = [
    ["a PRIVATE KEY block", () => ca.pem + ca.keyPem, "ERR_PEM_PRIVATE_KEY"],
    ["a PRIVATE KEY block before the certificate", () => ca.keyPem + ca.pem, "ERR_PEM_PRIVATE_KEY"],
    ["an EC PRIVATE KEY block", () => ca.pem + block("EC PRIVATE KEY"), "ERR_PEM_PRIVATE_KEY"],
    ["an RSA PRIVATE KEY block", () => block("RSA PRIVATE KEY") + rsaCa.pem, "ERR_PEM_PRIVATE_KEY"],
    ["an ENCRYPTED PRIVATE KEY block", () => ca.pem + block("ENCRYPTED PRIVATE KEY"), "ERR_PEM_PRIVATE_KEY"],
    ["an OPENSSH PRIVATE KEY block", () => ca.pem + block("OPENSSH PRIVATE KEY"), "ERR_PEM_PRIVATE_KEY"],
    ["only a private key", () => ca.keyPem, "ERR_PEM_PRIVATE_KEY"],
    ["empty input", () => "", "ERR_PEM_NO_CERTIFICATES"],
    ["text without any block", () => "just some words\n", "ERR_PEM_NO_CERTIFICATES"],
    ["only a PUBLIC KEY block", () => block("PUBLIC KEY"), "ERR_PEM_NO_CERTIFICATES"],
    ["only an X509 CRL block", () => block("X509 CRL"), "ERR_PEM_NO_CERTIFICATES"],
    ["a SPIFFE JSON document", () => '{"keys":[]}', "ERR_PEM_NO_CERTIFICATES"],
    ["BEGIN without END", () => "-----BEGIN CERTIFICATE-----\nMIIBAAAA\n", "ERR_PEM_INVALID"],
    ["a good block then BEGIN without END", () => `${ca.pem}-----BEGIN CERTIFICATE-----\nMIIB\n`, "ERR_PEM_INVALID"],
    ["BEGIN without END, then a good block", () => `-----BEGIN CERTIFICATE-----\nMIIB\n${ca.pem}`, "ERR_PEM_INVALID"],
    ["mismatched labels", () => ca.pem.replace("END CERTIFICATE", "END PUBLIC KEY"), "ERR_PEM_INVALID"],
    ["mismatched labels, BEGIN side", () => ca.pem.replace("BEGIN CERTIFICATE", "BEGIN X509 CRL"), "ERR_PEM_INVALID"],
    ["body that is not base64", () => block("CERTIFICATE", "this is not base64!"), "ERR_PEM_INVALID"],
    ["body with a base64url character", () => block("CERTIFICATE", "MIIB_-AA"), "ERR_PEM_INVALID"],
    ["body of a later block not base64", () => ca.pem + block("CERTIFICATE", "@@@@"), "ERR_PEM_INVALID"],
    [
      "DER that is not a certificate",
      () => derToPem(Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x01])),
      "ERR_PEM_INVALID_CERTIFICATE",
    ],
    ["bytes that are not DER", () => derToPem(new TextEncoder().encode("hello world")), "ERR_PEM_INVALID_CERTIFICATE"],
    ["a truncated certificate", () => derToPem(ca.der.subarray(0, ca.der.length - 10)), "ERR_PEM_INVALID_CERTIFICATE"],
    ["an empty body", () => "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", "ERR_PEM_INVALID_CERTIFICATE"],
    [
      "DER with one trailing byte",
      () => derToPem(Buffer.concat([ca.der, Uint8Array.from([0])])),
      "ERR_BUNDLE_DER_TRAILING_DATA",
    ],
    [
      "DER followed by a second certificate in the same block",
      () => ca.pem + derToPem(Buffer.concat([rsaCa.der, edCa.der])),
      "ERR_BUNDLE_DER_TRAILING_DATA",
    ],
  ];
  it.each(cases)("%s", (_name, pem, code) => {
    expect(rejection(() => parsePemBundle(pem())).code).toBe(code);
  });

  it("size cap: maxBytes, counted in bytes", () => {
    const pem = ca.pem;
    const size = Buffer.byteLength(pem);
    expect(rejection(() => parsePemBundle(pem, { maxBytes: size - 1 })).code).toBe("ERR_BUNDLE_TOO_LARGE");
    expect(rejection(() => parsePemBundle(Buffer.from(pem), { maxBytes: size - 1 })).code).toBe("ERR_BUNDLE_TOO_LARGE");
    expect(fingerprints(parsePemBundle(pem, { maxBytes: size }).bundle)).toEqual(sorted(ca));
    // Multi-byte explanatory text counts by its UTF-8 length, not its string length.
    const text = `é\n${pem}`;
    expect(rejection(() => parsePemBundle(text, { maxBytes: text.length })).code).toBe("ERR_BUNDLE_TOO_LARGE");
  });

  it("size cap: 64 KiB by default", () => {
    const padding = `${"x".repeat(100)}\n`.repeat(660);
    expect(rejection(() => parsePemBundle(padding + ca.pem)).code).toBe("ERR_BUNDLE_TOO_LARGE");
  });

  it("key-count cap: maxKeys counts every block, ignored ones included", () => {
    const pem = ca.pem + block("PUBLIC KEY") + nonCa.pem;
    expect(rejection(() => parsePemBundle(pem, { maxKeys: 2 })).code).toBe("ERR_BUNDLE_TOO_MANY_KEYS");
    const parsed = parsePemBundle(pem, { maxKeys: 3 });
    expect(fingerprints(parsed.bundle)).toEqual(sorted(ca));
    expect(parsed.warnings).toHaveLength(2);
  });

  it("key-count cap: 1000 blocks by default", () => {
    const many = block("PUBLIC KEY", "AAAA").repeat(999);
    expect(parsePemBundle(many + ca.pem, { maxBytes: 1 << 20 }).bundle.x509Authorities).toHaveLength(1);
    expect(rejection(() => parsePemBundle(many + ca.pem + ca.pem, { maxBytes: 1 << 20 })).code).toBe(
      "ERR_BUNDLE_TOO_MANY_KEYS",
    );
  });
});

describe("serializePem and derToPem", () => {
  it("parsePemBundle(serializePem(b)) has the same authorities", () => {
    const bundle = createTrustBundle({
      x509Authorities: [rsaCa, ca, edCa, intermediate].map((c) =>
        x509AuthorityFromCertificate(new X509Certificate(c.der)),
      ),
    });
    const parsed = parsePemBundle(serializePem(bundle));
    expect(parsed.bundle.x509Authorities).toEqual(bundle.x509Authorities);
    expect(parsed.warnings).toEqual([]);
  });

  it("writes the authorities in canonical (fingerprint) order, whatever the input order", () => {
    const a = parsePemBundle(ca.pem + rsaCa.pem + edCa.pem).bundle;
    const b = parsePemBundle(edCa.pem + ca.pem + rsaCa.pem).bundle;
    expect(serializePem(a)).toBe(serializePem(b));
    const blocks = serializePem(a).match(/-----BEGIN CERTIFICATE-----\n[\s\S]*?-----END CERTIFICATE-----\n/g) ?? [];
    expect(blocks.map((text) => sha256(Buffer.from(text.split("\n").slice(1, -2).join(""), "base64")))).toEqual(
      sorted(ca, rsaCa, edCa),
    );
  });

  it("an empty bundle is the empty string", () => {
    expect(serializePem(createTrustBundle())).toBe("");
  });

  it("writes base64 in 64-column lines, LF endings, the last line possibly shorter", () => {
    const pem = derToPem(rsaCa.der);
    const lines = pem.split("\n");
    expect(lines[0]).toBe("-----BEGIN CERTIFICATE-----");
    expect(lines.at(-2)).toBe("-----END CERTIFICATE-----");
    expect(lines.at(-1)).toBe("");
    const body = lines.slice(1, -2);
    expect(body.length).toBeGreaterThan(2);
    for (const line of body.slice(0, -1)) expect(line).toHaveLength(64);
    expect(body.at(-1)!.length).toBeGreaterThan(0);
    expect(body.at(-1)!.length).toBeLessThanOrEqual(64);
    expect(pem).not.toContain("\r");
    expect(Buffer.from(body.join(""), "base64")).toEqual(Buffer.from(rsaCa.der));
  });

  it.each([
    [1, "AA=="],
    [48, "A".repeat(64)],
    [49, `${"A".repeat(64)}\nAA==`],
  ])("a %i-byte body wraps as expected", (length, base64) => {
    expect(derToPem(new Uint8Array(length))).toBe(
      `-----BEGIN CERTIFICATE-----\n${base64}\n-----END CERTIFICATE-----\n`,
    );
  });

  it("takes another label", () => {
    expect(derToPem(Uint8Array.from([1, 2, 3]), "PUBLIC KEY")).toBe(
      "-----BEGIN PUBLIC KEY-----\nAQID\n-----END PUBLIC KEY-----\n",
    );
  });

  it("matches what @peculiar/x509 writes for the same certificate", () => {
    expect(derToPem(ca.der)).toBe(ca.pem);
  });
});

describe("detectBundleFormat", () => {
  const pemWithPreamble = () => `${"Certificate:\n    Data: 00:11:22:33\n".repeat(200)}${ca.pem}`;
  const cases: Array<[string, () => string, "spiffe" | "pem" | undefined]> = [
    ["a JSON object", () => '{"keys":[]}', "spiffe"],
    ["a JSON object after spaces, tabs and newlines", () => ' \t\r\n {"keys":[]}', "spiffe"],
    ["a JSON object holding a BEGIN line in a string", () => '{"x":"-----BEGIN CERTIFICATE-----"}', "spiffe"],
    ["a PEM block", () => ca.pem, "pem"],
    ["a PEM block after explanatory text", () => `Subject: O=example.org\n${ca.pem}`, "pem"],
    ["a PEM block after more than 4 KiB of text", pemWithPreamble, "pem"],
    ["a private key block (refused later, but PEM)", () => ca.keyPem, "pem"],
    ["empty input", () => "", undefined],
    ["whitespace only", () => " \n", undefined],
    ["a JSON array", () => "[]", undefined],
    ["plain text", () => "hello", undefined],
    ["an END line alone", () => "-----END CERTIFICATE-----\n", undefined],
  ];
  it.each(cases)("%s → %s", (_name, text, expected) => {
    expect(detectBundleFormat(text())).toBe(expected);
    expect(detectBundleFormat(new TextEncoder().encode(text()))).toBe(expected);
  });

  it("the preamble case really is past 4 KiB", () => {
    expect(pemWithPreamble().indexOf("-----BEGIN ")).toBeGreaterThan(4096);
  });
});

describe("parseBundle", () => {
  const spiffe = () => serializeSpiffeBundle(parsePemBundle(ca.pem).bundle);
  const cases: Array<[string, () => string, "spiffe" | "pem" | "auto", "spiffe" | "pem"]> = [
    ["auto, SPIFFE JSON", spiffe, "auto", "spiffe"],
    ["auto, SPIFFE JSON after whitespace", () => `\n  ${spiffe()}`, "auto", "spiffe"],
    ["auto, PEM", () => ca.pem, "auto", "pem"],
    ["auto, PEM after text", () => `# our root\n${ca.pem}`, "auto", "pem"],
    ["explicit spiffe", spiffe, "spiffe", "spiffe"],
    ["explicit pem", () => ca.pem, "pem", "pem"],
  ];
  it.each(cases)("%s", (_name, text, format, chosen) => {
    for (const input of [text(), new TextEncoder().encode(text())]) {
      const parsed = parseBundle(input, format);
      expect(parsed.format).toBe(chosen);
      expect(fingerprints(parsed.bundle)).toEqual(sorted(ca));
    }
  });

  it("defaults to auto", () => {
    expect(parseBundle(ca.pem).format).toBe("pem");
    expect(parseBundle('{"keys":[]}').format).toBe("spiffe");
  });

  const rejected: Array<[string, () => string, "spiffe" | "pem" | "auto", string]> = [
    ["PEM read as SPIFFE", () => ca.pem, "spiffe", "ERR_BUNDLE_NOT_JSON"],
    ["SPIFFE read as PEM", spiffe, "pem", "ERR_PEM_NO_CERTIFICATES"],
    ["auto, plain text goes to the JSON reader", () => "hello", "auto", "ERR_BUNDLE_NOT_JSON"],
    ["auto, empty input goes to the JSON reader", () => "", "auto", "ERR_BUNDLE_NOT_JSON"],
    ["auto, a JSON array", () => "[]", "auto", "ERR_BUNDLE_NOT_OBJECT"],
    ["auto, a PEM private key", () => ca.keyPem, "auto", "ERR_PEM_PRIVATE_KEY"],
    ["auto, a broken SPIFFE bundle", () => '{"keys":[],"keys":[]}', "auto", "ERR_BUNDLE_DUPLICATE_MEMBER"],
  ];
  it.each(rejected)("%s → %s", (_name, text, format, code) => {
    expect(rejection(() => parseBundle(text(), format)).code).toBe(code);
  });

  it("passes the limits on to either reader", () => {
    expect(rejection(() => parseBundle(ca.pem, "auto", { maxBytes: 100 })).code).toBe("ERR_BUNDLE_TOO_LARGE");
    expect(rejection(() => parseBundle(spiffe(), "auto", { maxBytes: 100 })).code).toBe("ERR_BUNDLE_TOO_LARGE");
    expect(rejection(() => parseBundle(ca.pem + rsaCa.pem, "pem", { maxKeys: 1 })).code).toBe(
      "ERR_BUNDLE_TOO_MANY_KEYS",
    );
  });

  it("carries the reader's warnings", () => {
    expect(parseBundle(ca.pem + nonCa.pem).warnings.map((w) => w.code)).toEqual(["WARN_CERT_NOT_CA"]);
  });
});
