/**
 * Issuing keys and X.509 certificates: the dev PKI of `bundlegate dev` and the tests' PKI share this one
 * implementation, so what the tests exercise is what the demo serves.
 *
 * Built on `@peculiar/x509` with Node's WebCrypto, passed explicitly to every call rather than set on the
 * library's global provider. Nothing is cached; every call generates fresh keys. RSA-2048 key generation
 * is slow (tens to hundreds of milliseconds), so EC-P256 is the default everywhere.
 *
 * Validity defaults are relative to `now`, which callers that own a clock pass in; without it the system
 * time is used (convenient in tests, never relied upon by `src/`).
 */
// Must come before @peculiar/x509: tsyringe (its dependency) needs Reflect metadata at import time.
import "reflect-metadata";
import { webcrypto } from "node:crypto";
import * as x509 from "@peculiar/x509";

export type CryptoKey = webcrypto.CryptoKey;
export type CryptoKeyPair = webcrypto.CryptoKeyPair;
export type JsonWebKey = webcrypto.JsonWebKey;
type Algorithm = webcrypto.Algorithm;
type EcdsaParams = webcrypto.EcdsaParams;
type RsaHashedImportParams = webcrypto.RsaHashedImportParams;
type RsaHashedKeyGenParams = webcrypto.RsaHashedKeyGenParams;
type EcKeyGenParams = webcrypto.EcKeyGenParams;

export type KeyAlg = "EC-P256" | "EC-P384" | "RSA-2048" | "Ed25519";

export interface Issued {
  cert: x509.X509Certificate;
  /** DER encoding of the certificate. */
  der: Uint8Array;
  /** PEM encoding of the certificate (trailing newline included). */
  pem: string;
  keys: CryptoKeyPair;
  /** PKCS#8 PEM of the private key. */
  keyPem: string;
  /** Public JWK members only (kty, crv, x, y, n, e). */
  publicJwk: JsonWebKey;
  /** Algorithm of `keys`. */
  keyAlg: KeyAlg;
}

interface ValidityOptions {
  notBefore?: Date;
  notAfter?: Date;
  /** What the default validity (now - 1 h .. now + 30 d) is relative to. Default: the system time. */
  now?: Date;
}

export interface CaOptions extends ValidityOptions {
  trustDomain: string;
  keyAlg?: KeyAlg;
  /** Signing CA; when given the result is an intermediate CA. Self-signed otherwise. */
  issuer?: Issued;
  /** Subject DN, e.g. "CN=Foo, O=example.org". Default "O=<td>" (intermediates: adds a unique CN). */
  subject?: string;
  /** Add URI SAN `spiffe://<td>`. Default true. */
  withSpiffeUri?: boolean;
  /** Optional basicConstraints pathLenConstraint. */
  pathLength?: number;
}

export interface SvidOptions extends ValidityOptions {
  issuer: Issued;
  /** URI SAN(s). A valid X509-SVID has exactly one. */
  spiffeId: string | string[];
  keyAlg?: KeyAlg;
  dnsNames?: string[];
  /** IP SANs; X509-SVID.md allows SAN types besides the one URI. */
  ipAddresses?: string[];
  subject?: string;
  /** Key usage flags (x509.KeyUsageFlags) instead of the leaf default, e.g. to build a broken SVID. */
  keyUsages?: number;
}

export interface WebCertOptions extends ValidityOptions {
  issuer: Issued;
  dnsNames: string[];
  ipAddresses?: string[];
  keyAlg?: KeyAlg;
  subject?: string;
  /** Extended key usage OIDs instead of the default [serverAuth]. */
  extendedKeyUsages?: string[];
}

export interface NonCaCertOptions extends ValidityOptions {
  keyAlg?: KeyAlg;
  /** Default "CN=not-a-ca". */
  subject?: string;
  /** URI SANs, e.g. ["spiffe://example.org"] to mimic a would-be bundle authority. */
  uris?: string[];
  /** Include an explicit basicConstraints CA:false extension instead of omitting it. Default false. */
  explicitCaFalse?: boolean;
}

const HOUR_MS = 60 * 60 * 1000;
const DAY_MS = 24 * HOUR_MS;

interface AlgParams {
  gen: RsaHashedKeyGenParams | EcKeyGenParams | Algorithm;
  sign: Algorithm | EcdsaParams | RsaHashedImportParams;
}

function algParams(alg: KeyAlg): AlgParams {
  switch (alg) {
    case "EC-P256":
      return { gen: { name: "ECDSA", namedCurve: "P-256" }, sign: { name: "ECDSA", hash: "SHA-256" } as EcdsaParams };
    case "EC-P384":
      return { gen: { name: "ECDSA", namedCurve: "P-384" }, sign: { name: "ECDSA", hash: "SHA-384" } as EcdsaParams };
    case "RSA-2048":
      return {
        gen: {
          name: "RSASSA-PKCS1-v1_5",
          modulusLength: 2048,
          publicExponent: new Uint8Array([1, 0, 1]),
          hash: "SHA-256",
        },
        sign: { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" } as RsaHashedImportParams,
      };
    case "Ed25519":
      return { gen: { name: "Ed25519" }, sign: { name: "Ed25519" } };
  }
}

/** Generates an extractable key pair for `alg`. */
export async function generateKeys(alg: KeyAlg = "EC-P256"): Promise<CryptoKeyPair> {
  const keys = await webcrypto.subtle.generateKey(algParams(alg).gen, true, ["sign", "verify"]);
  return keys as CryptoKeyPair;
}

const PUBLIC_JWK_MEMBERS = ["kty", "crv", "x", "y", "n", "e"] as const;

/** Exports the public key as a JWK with only the public members (kty, crv, x, y, n, e). */
export async function exportPublicKeyJwk(publicKey: CryptoKey): Promise<JsonWebKey> {
  const full = (await webcrypto.subtle.exportKey("jwk", publicKey)) as JsonWebKey;
  const out: JsonWebKey = {};
  for (const member of PUBLIC_JWK_MEMBERS) {
    const value = full[member];
    if (value !== undefined) {
      out[member] = value;
    }
  }
  return out;
}

/** PKCS#8 PEM of a private key. */
export async function exportPkcs8Pem(privateKey: CryptoKey): Promise<string> {
  const pkcs8 = await webcrypto.subtle.exportKey("pkcs8", privateKey);
  return `${x509.PemConverter.encode(pkcs8, "PRIVATE KEY")}\n`;
}

/** Random positive serial: 16 bytes, first byte in 0x01..0x7f so the DER INTEGER is minimal and positive. */
function randomSerial(): string {
  const bytes = webcrypto.getRandomValues(new Uint8Array(16));
  bytes[0] = ((bytes[0] ?? 0) & 0x7f) | 0x01;
  return Buffer.from(bytes).toString("hex");
}

function validity(options: ValidityOptions): { notBefore: Date; notAfter: Date } {
  const now = (options.now ?? new Date()).getTime();
  return {
    notBefore: options.notBefore ?? new Date(now - HOUR_MS),
    notAfter: options.notAfter ?? new Date(now + 30 * DAY_MS),
  };
}

interface BuildParams {
  keyAlg: KeyAlg;
  subject: string;
  validity: ValidityOptions;
  issuer?: Issued | undefined;
  extensions: x509.Extension[];
}

async function build(params: BuildParams): Promise<Issued> {
  const keys = await generateKeys(params.keyAlg);
  const { notBefore, notAfter } = validity(params.validity);
  const extensions = [
    ...params.extensions,
    await x509.SubjectKeyIdentifierExtension.create(keys.publicKey, false, webcrypto),
  ];
  const serialNumber = randomSerial();

  let cert: x509.X509Certificate;
  if (params.issuer) {
    const issuer = params.issuer;
    extensions.push(await x509.AuthorityKeyIdentifierExtension.create(issuer.keys.publicKey, false, webcrypto));
    cert = await x509.X509CertificateGenerator.create(
      {
        serialNumber,
        subject: params.subject,
        issuer: issuer.cert.subjectName,
        notBefore,
        notAfter,
        publicKey: keys.publicKey,
        signingKey: issuer.keys.privateKey,
        signingAlgorithm: algParams(issuer.keyAlg).sign,
        extensions,
      },
      webcrypto,
    );
  } else {
    cert = await x509.X509CertificateGenerator.createSelfSigned(
      {
        serialNumber,
        name: params.subject,
        notBefore,
        notAfter,
        keys,
        signingAlgorithm: algParams(params.keyAlg).sign,
        extensions,
      },
      webcrypto,
    );
  }

  return {
    cert,
    der: new Uint8Array(cert.rawData),
    pem: `${cert.toString("pem")}\n`,
    keys,
    keyPem: await exportPkcs8Pem(keys.privateKey),
    publicJwk: await exportPublicKeyJwk(keys.publicKey),
    keyAlg: params.keyAlg,
  };
}

function sanExtension(names: x509.JsonGeneralName[]): x509.Extension[] {
  return names.length > 0 ? [new x509.SubjectAlternativeNameExtension(names, false)] : [];
}

function names(type: x509.JsonGeneralName["type"], values: readonly string[] | undefined): x509.JsonGeneralName[] {
  return (values ?? []).map((value): x509.JsonGeneralName => ({ type, value }));
}

function leafKeyUsage(alg: KeyAlg): x509.KeyUsageFlags {
  // RSA TLS server keys traditionally also carry keyEncipherment.
  return alg === "RSA-2048"
    ? x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.keyEncipherment
    : x509.KeyUsageFlags.digitalSignature;
}

/**
 * Creates a CA certificate: basicConstraints CA:true (critical), keyUsage keyCertSign|cRLSign (critical),
 * URI SAN `spiffe://<td>` unless `withSpiffeUri: false`. Self-signed unless `issuer` is given.
 */
export async function createCa(opts: CaOptions): Promise<Issued> {
  const keyAlg = opts.keyAlg ?? "EC-P256";
  const defaultSubject = opts.issuer
    ? `CN=Intermediate CA ${randomSerial().slice(0, 8)}, O=${opts.trustDomain}`
    : `O=${opts.trustDomain}`;
  const withUri = opts.withSpiffeUri ?? true;
  return build({
    keyAlg,
    subject: opts.subject ?? defaultSubject,
    validity: opts,
    issuer: opts.issuer,
    extensions: [
      new x509.BasicConstraintsExtension(true, opts.pathLength, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
      ...sanExtension(withUri ? names("url", [`spiffe://${opts.trustDomain}`]) : []),
    ],
  });
}

/** Creates an X509-SVID leaf: CA:false, digitalSignature, EKU serverAuth+clientAuth, URI SAN(s). */
export async function createSvid(opts: SvidOptions): Promise<Issued> {
  const keyAlg = opts.keyAlg ?? "EC-P256";
  const ids = typeof opts.spiffeId === "string" ? [opts.spiffeId] : opts.spiffeId;
  return build({
    keyAlg,
    subject: opts.subject ?? "O=SPIFFE",
    validity: opts,
    issuer: opts.issuer,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(opts.keyUsages ?? leafKeyUsage(keyAlg), true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
      ...sanExtension([...names("url", ids), ...names("dns", opts.dnsNames), ...names("ip", opts.ipAddresses)]),
    ],
  });
}

/** Creates a Web PKI style TLS server certificate (DNS/IP SANs, EKU serverAuth). */
export async function createWebCert(opts: WebCertOptions): Promise<Issued> {
  const keyAlg = opts.keyAlg ?? "EC-P256";
  return build({
    keyAlg,
    subject: opts.subject ?? `CN=${opts.dnsNames[0] ?? opts.ipAddresses?.[0] ?? "localhost"}`,
    validity: opts,
    issuer: opts.issuer,
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.KeyUsagesExtension(leafKeyUsage(keyAlg), true),
      new x509.ExtendedKeyUsageExtension(opts.extendedKeyUsages ?? [x509.ExtendedKeyUsage.serverAuth]),
      ...sanExtension([...names("dns", opts.dnsNames), ...names("ip", opts.ipAddresses)]),
    ],
  });
}

/** Self-signed certificate that is not a CA: no basicConstraints (or CA:false with `explicitCaFalse`). */
export async function createNonCaCert(opts: NonCaCertOptions = {}): Promise<Issued> {
  const keyAlg = opts.keyAlg ?? "EC-P256";
  const extensions: x509.Extension[] = [new x509.KeyUsagesExtension(x509.KeyUsageFlags.digitalSignature, true)];
  if (opts.explicitCaFalse) {
    extensions.unshift(new x509.BasicConstraintsExtension(false, undefined, true));
  }
  extensions.push(...sanExtension(names("url", opts.uris)));
  return build({
    keyAlg,
    subject: opts.subject ?? "CN=not-a-ca",
    validity: opts,
    extensions,
  });
}

/** Key pair for JWT-SVID / WIT-SVID authorities, with its public JWK (public members only). */
export async function createJwtKey(
  keyAlg: KeyAlg = "EC-P256",
): Promise<{ keys: CryptoKeyPair; publicJwk: JsonWebKey }> {
  const keys = await generateKeys(keyAlg);
  return { keys, publicJwk: await exportPublicKeyJwk(keys.publicKey) };
}

/** Concatenated PEM of several certificates (e.g. leaf + intermediates). */
export function pemChain(...certs: Issued[]): string {
  return certs.map((c) => c.pem).join("");
}
