import { createPrivateKey, createPublicKey, type JsonWebKey as NodeJwk, X509Certificate } from "node:crypto";
import { readFile } from "node:fs/promises";
import { describe, expect, it } from "vitest";
import { goIndent, goMarshal } from "../fixtures/make-interop-fixtures.js";
import { jwtEntry, x509Entry } from "../support/jwk-entries.js";
import { createCa, createJwtKey, createNonCaCert, createSvid, createWebCert, type KeyAlg } from "../support/pki.js";

const nodeCert = (der: Uint8Array) => new X509Certificate(der);
const interop = (name: string) => readFile(new URL(`../fixtures/interop/${name}`, import.meta.url), "utf8");

describe("test/support/pki", () => {
  it("creates a self-signed CA with the CA flag and spiffe URI SAN", async () => {
    const ca = await createCa({ trustDomain: "example.org" });
    const cert = nodeCert(ca.der);
    expect(cert.ca).toBe(true);
    expect(cert.subject).toBe("O=example.org");
    expect(cert.subjectAltName).toBe("URI:spiffe://example.org");
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(ca.pem).toMatch(/^-----BEGIN CERTIFICATE-----\n[\s\S]+\n-----END CERTIFICATE-----\n$/);
    expect(new X509Certificate(ca.pem).fingerprint256).toBe(cert.fingerprint256);
    expect(createPrivateKey(ca.keyPem).asymmetricKeyType).toBe("ec");
    expect(Object.keys(ca.publicJwk).sort()).toEqual(["crv", "kty", "x", "y"]);
    // default validity: now-1h .. now+30d
    const now = Date.now();
    expect(Date.parse(cert.validFrom)).toBeLessThan(now - 50 * 60 * 1000);
    expect(Date.parse(cert.validTo)).toBeGreaterThan(now + 29 * 24 * 3600 * 1000);

    const noUri = await createCa({ trustDomain: "example.org", withSpiffeUri: false, subject: "CN=Custom, O=X" });
    expect(nodeCert(noUri.der).subjectAltName).toBeUndefined();
    expect(nodeCert(noUri.der).subject).toContain("CN=Custom");
  });

  it("issues an SVID that has the URI SAN and verifies against the CA", async () => {
    const ca = await createCa({ trustDomain: "example.org" });
    const svid = await createSvid({ issuer: ca, spiffeId: "spiffe://example.org/workload", dnsNames: ["w.local"] });
    const cert = nodeCert(svid.der);
    const caCert = nodeCert(ca.der);
    expect(cert.ca).toBe(false);
    expect(cert.subjectAltName).toBe("URI:spiffe://example.org/workload, DNS:w.local");
    expect(cert.checkIssued(caCert)).toBe(true);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(svid.cert.getExtension("2.5.29.37")).toBeTruthy(); // EKU present
    expect(cert.keyUsage).toEqual(expect.arrayContaining(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]));

    const other = await createCa({ trustDomain: "example.org" });
    expect(cert.verify(nodeCert(other.der).publicKey)).toBe(false);
  });

  it("chains through an intermediate CA", async () => {
    const root = await createCa({ trustDomain: "example.org" });
    const inter = await createCa({ trustDomain: "example.org", issuer: root });
    const leaf = await createSvid({ issuer: inter, spiffeId: ["spiffe://example.org/a", "spiffe://example.org/b"] });
    const [r, i, l] = [nodeCert(root.der), nodeCert(inter.der), nodeCert(leaf.der)];
    expect(i.ca).toBe(true);
    expect(i.subject).not.toBe(r.subject);
    expect(i.checkIssued(r)).toBe(true);
    expect(i.verify(r.publicKey)).toBe(true);
    expect(l.checkIssued(i)).toBe(true);
    expect(l.verify(i.publicKey)).toBe(true);
    expect(l.verify(r.publicKey)).toBe(false);
    expect(l.subjectAltName).toBe("URI:spiffe://example.org/a, URI:spiffe://example.org/b");
  });

  it.each<KeyAlg>(["Ed25519", "RSA-2048", "EC-P384"])("supports %s keys for CAs and leaves", async (keyAlg) => {
    const ca = await createCa({ trustDomain: "example.org", keyAlg });
    const svid = await createSvid({ issuer: ca, spiffeId: "spiffe://example.org/x", keyAlg });
    expect(nodeCert(ca.der).ca).toBe(true);
    expect(nodeCert(svid.der).verify(nodeCert(ca.der).publicKey)).toBe(true);
    const expectedType = { Ed25519: "ed25519", "RSA-2048": "rsa", "EC-P384": "ec", "EC-P256": "ec" }[keyAlg];
    expect(createPrivateKey(svid.keyPem).asymmetricKeyType).toBe(expectedType);
    expect(createPublicKey({ key: svid.publicJwk as NodeJwk, format: "jwk" }).asymmetricKeyType).toBe(expectedType);
    expect(svid.publicJwk).not.toHaveProperty("d");
    if (keyAlg === "RSA-2048") {
      expect(Object.keys(svid.publicJwk).sort()).toEqual(["e", "kty", "n"]);
    }
  });

  it("creates web certs, non-CA certs and custom validity", async () => {
    const ca = await createCa({ trustDomain: "example.org" });
    const web = await createWebCert({ issuer: ca, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
    const w = nodeCert(web.der);
    expect(w.ca).toBe(false);
    expect(w.checkHost("localhost")).toBe("localhost");
    expect(w.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(w.verify(nodeCert(ca.der).publicKey)).toBe(true);

    const nonCa = await createNonCaCert({ uris: ["spiffe://example.org"] });
    const n = nodeCert(nonCa.der);
    expect(n.ca).toBe(false);
    expect(nonCa.cert.getExtension("2.5.29.19")).toBeNull(); // no basicConstraints at all
    expect(n.verify(n.publicKey)).toBe(true);
    const explicit = await createNonCaCert({ explicitCaFalse: true });
    expect(explicit.cert.getExtension("2.5.29.19")).toBeTruthy();
    expect(nodeCert(explicit.der).ca).toBe(false);

    const expired = await createCa({
      trustDomain: "example.org",
      notBefore: new Date("2020-01-01T00:00:00Z"),
      notAfter: new Date("2021-01-01T00:00:00Z"),
    });
    expect(nodeCert(expired.der).validTo).toBe("Jan  1 00:00:00 2021 GMT");
  });

  it("builds raw bundle entries in go-jose member order", async () => {
    const ca = await createCa({ trustDomain: "example.org" });
    const inter = await createCa({ trustDomain: "example.org", issuer: ca });
    const entry = x509Entry(ca, { kid: "k1", extraX5c: [inter.der] });
    expect(Object.keys(entry)).toEqual(["use", "kty", "kid", "crv", "x", "y", "x5c"]);
    expect(entry.use).toBe("x509-svid");
    const x5c = entry.x5c as string[];
    expect(x5c).toHaveLength(2);
    expect(x5c[0]).toMatch(/^[A-Za-z0-9+/]+=*$/);
    expect(Buffer.from(x5c[0] ?? "", "base64")).toEqual(Buffer.from(ca.der));

    const rsa = await createJwtKey("RSA-2048");
    expect(Object.keys(jwtEntry("kid-1", rsa.publicJwk))).toEqual(["use", "kty", "kid", "n", "e"]);
    const ed = await createJwtKey("Ed25519");
    expect(jwtEntry("kid-2", ed.publicJwk, "wit-svid")).toEqual({
      use: "wit-svid",
      kty: "OKP",
      kid: "kid-2",
      crv: "Ed25519",
      x: ed.publicJwk.x,
    });
  });
});

describe("interop fixtures", () => {
  const certsOf = (doc: { keys: Array<Record<string, unknown>> }) =>
    doc.keys
      .filter((k) => k.use === "x509-svid")
      .map((k) => nodeCert(Buffer.from((k.x5c as string[])[0] ?? "", "base64")));

  it("spire-bundle-show.json has SPIRE's shape and valid certificates", async () => {
    const text = await interop("spire-bundle-show.json");
    const doc = JSON.parse(text);
    expect(text.endsWith("}\n")).toBe(true);
    expect(text.startsWith('{\n    "keys": [\n        {\n            "use": "x509-svid",')).toBe(true);
    expect(Object.keys(doc)).toEqual(["keys", "spiffe_sequence", "spiffe_refresh_hint"]);
    expect(doc.keys.map((k: { use: string }) => k.use)).toEqual(["x509-svid", "jwt-svid"]);
    expect(text).toBe(`${goIndent(goMarshal(doc), "    ")}\n`);
    const [ca] = certsOf(doc);
    expect(ca?.ca).toBe(true);
    expect(ca?.validTo).toBe("Dec 31 23:59:59 2099 GMT");
    expect(ca?.verify(ca.publicKey)).toBe(true);
  });

  it("go-spiffe-marshal.json is compact Go JSON with valid certificates", async () => {
    const text = await interop("go-spiffe-marshal.json");
    const doc = JSON.parse(text);
    expect(text).toBe(goMarshal(doc));
    expect(text.endsWith("}")).toBe(true);
    expect(Object.keys(doc)).toEqual(["keys", "spiffe_sequence", "spiffe_refresh_hint"]);
    expect(doc.keys.map((k: { use: string; kty: string }) => `${k.use}/${k.kty}`)).toEqual([
      "x509-svid/RSA",
      "x509-svid/EC",
      "jwt-svid/EC",
      "wit-svid/EC",
    ]);
    const certs = certsOf(doc);
    expect(certs).toHaveLength(2);
    for (const cert of certs) {
      expect(cert.ca).toBe(true);
      expect(cert.verify(cert.publicKey)).toBe(true);
      expect(cert.validTo).toBe("Dec 31 23:59:59 2099 GMT");
    }
  });

  it("go-spiffe-marshal-empty.json is the nil-keys document", async () => {
    expect(await interop("go-spiffe-marshal-empty.json")).toBe('{"keys":null,"spiffe_sequence":7}');
  });
});
