/**
 * The SPIFFE bundle codec: a JWK Set per SPIFFE_Trust_Domain_and_Bundle.md section 4,
 * X509-SVID.md section 6 and JWT-SVID.md section 6.
 *
 * Reading is lenient exactly where the spec says to ignore (unknown `use` or `kty`, an x509-svid entry
 * without `x5c`, ...) and strict where safety needs it (duplicate names, private key material, DER
 * trailing bytes, caps, sequence range). Everything ignored becomes a warning. Writing always produces
 * the canonical form, never a partner's bytes.
 */
import {
  createTrustBundle,
  type JwtAuthority,
  type JwtKeyUse,
  jwtAuthority,
  MAX_SEQUENCE,
  parseX509Der,
  type TrustBundle,
  type X509Authority,
  x509AuthorityFromCertificate,
} from "./bundle.js";
import { InvalidBundleError } from "./errors.js";
import { type JsonNode, type JsonObjectNode, parseStrictJson } from "./json.js";
import { type JsonWritable, writeJson } from "./json-writer.js";
import { importPublicJwk, PRIVATE_KEY_MEMBERS, type PublicJwk, SUPPORTED_KTY, samePublicJwk } from "./public-key.js";
import { type BundleWarning, warning } from "./warnings.js";

export const DEFAULT_MAX_BUNDLE_BYTES = 64 * 1024;
export const DEFAULT_MAX_BUNDLE_KEYS = 1000;

export interface BundleReadLimits {
  /** Largest accepted document, in bytes. */
  readonly maxBytes?: number;
  /** Most entries accepted in `keys`, counting the ones that end up ignored. */
  readonly maxKeys?: number;
}

export interface ParsedBundle {
  readonly bundle: TrustBundle;
  readonly warnings: readonly BundleWarning[];
}

const X509_USE = "x509-svid";
const JWT_USES: ReadonlySet<string> = new Set<JwtKeyUse>(["jwt-svid", "wit-svid"]);
const UNSIGNED_INTEGER = /^(?:0|[1-9]\d*)$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

export function parseSpiffeBundle(input: Uint8Array | string, limits: BundleReadLimits = {}): ParsedBundle {
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BUNDLE_BYTES;
  const maxKeys = limits.maxKeys ?? DEFAULT_MAX_BUNDLE_KEYS;
  const size = typeof input === "string" ? Buffer.byteLength(input, "utf8") : input.byteLength;
  if (size > maxBytes) {
    throw new InvalidBundleError("ERR_BUNDLE_TOO_LARGE", `bundle is ${size} bytes, over the ${maxBytes}-byte cap`, {
      details: { size, limit: maxBytes },
    });
  }
  const root = parseStrictJson(typeof input === "string" ? input : decodeUtf8(input));
  if (root.type !== "object") {
    throw new InvalidBundleError("ERR_BUNDLE_NOT_OBJECT", `a bundle is a JSON object, got ${describe(root)}`);
  }

  const warnings: BundleWarning[] = [];
  const keys = readKeys(root, maxKeys, warnings);
  const reader = new EntryReader(warnings);
  keys.forEach((entry, index) => {
    reader.read(entry, index);
  });

  return {
    bundle: createTrustBundle({
      x509Authorities: reader.x509,
      jwtAuthorities: reader.jwt.values(),
      refreshHintSeconds: readRefreshHint(root.members.get("spiffe_refresh_hint")),
      sequence: readSequence(root.members.get("spiffe_sequence")),
    }),
    warnings,
  };
}

function decodeUtf8(bytes: Uint8Array): string {
  try {
    // A byte-order mark is kept, so it fails JSON parsing as it does in Go's encoding/json.
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (cause) {
    throw new InvalidBundleError("ERR_BUNDLE_NOT_UTF8", "bundle is not valid UTF-8", { cause });
  }
}

function readKeys(root: JsonObjectNode, maxKeys: number, warnings: BundleWarning[]): readonly JsonNode[] {
  const keys = root.members.get("keys");
  if (keys === undefined) {
    throw new InvalidBundleError("ERR_BUNDLE_KEYS_MISSING", 'the "keys" member is missing');
  }
  if (keys.type === "null") {
    // go-spiffe's Marshal writes null for a bundle with no authorities. Refusing it would keep a
    // partner's revoked keys trusted, so it reads as the empty set the publisher meant.
    warnings.push(warning("WARN_KEYS_NULL", '"keys" is null; read as an empty key set'));
    return [];
  }
  if (keys.type !== "array") {
    throw new InvalidBundleError("ERR_BUNDLE_KEYS_NOT_ARRAY", `"keys" must be an array, got ${describe(keys)}`);
  }
  if (keys.items.length > maxKeys) {
    throw new InvalidBundleError(
      "ERR_BUNDLE_TOO_MANY_KEYS",
      `bundle has ${keys.items.length} keys, over the cap of ${maxKeys}`,
      { details: { count: keys.items.length, limit: maxKeys } },
    );
  }
  return keys.items;
}

function readSequence(node: JsonNode | undefined): bigint | undefined {
  if (node === undefined) return undefined;
  if (node.type !== "number" || !UNSIGNED_INTEGER.test(node.text) || BigInt(node.text) > MAX_SEQUENCE) {
    throw new InvalidBundleError(
      "ERR_BUNDLE_BAD_SEQUENCE",
      `spiffe_sequence must be an integer in 0..2^64-1, got ${describeValue(node)}`,
    );
  }
  return BigInt(node.text);
}

function readRefreshHint(node: JsonNode | undefined): number | undefined {
  if (node === undefined) return undefined;
  const seconds = node.type === "number" && UNSIGNED_INTEGER.test(node.text) ? Number(node.text) : Number.NaN;
  if (!Number.isSafeInteger(seconds)) {
    throw new InvalidBundleError(
      "ERR_BUNDLE_BAD_REFRESH_HINT",
      `spiffe_refresh_hint must be a whole, non-negative number of seconds, got ${describeValue(node)}`,
    );
  }
  return seconds;
}

/** Turns `keys` entries into authorities, collecting what it ignores. */
class EntryReader {
  readonly x509: X509Authority[] = [];
  readonly jwt = new Map<string, JwtAuthority>();
  private readonly seenFingerprints = new Set<string>();

  constructor(private readonly warnings: BundleWarning[]) {}

  read(entry: JsonNode, index: number): undefined {
    if (entry.type !== "object") {
      throw new InvalidBundleError(
        "ERR_BUNDLE_KEY_NOT_OBJECT",
        `keys[${index}] must be an object, got ${describe(entry)}`,
        {
          details: { index },
        },
      );
    }
    const members = entry.members;
    for (const name of PRIVATE_KEY_MEMBERS) {
      if (members.has(name)) {
        throw new InvalidBundleError(
          "ERR_BUNDLE_PRIVATE_KEY",
          `keys[${index}] has the private key member "${name}"; a bundle carries public keys only`,
          { details: { index, member: name } },
        );
      }
    }
    const use = members.get("use");
    if (use === undefined) return this.ignore("WARN_KEY_USE_MISSING", 'no "use" member', index);
    if (use.type !== "string" || (use.value !== X509_USE && !JWT_USES.has(use.value))) {
      return this.ignore("WARN_KEY_USE_UNKNOWN", `unknown use ${describeValue(use)}`, index);
    }
    const kty = members.get("kty");
    if (kty === undefined) return this.ignore("WARN_KEY_KTY_MISSING", 'no "kty" member', index);
    if (kty.type !== "string" || !(SUPPORTED_KTY as readonly string[]).includes(kty.value)) {
      return this.ignore("WARN_KEY_KTY_UNKNOWN", `unknown key type ${describeValue(kty)}`, index);
    }
    if (use.value === X509_USE) this.readX509(entry, index);
    else this.readJwt(entry, use.value as JwtKeyUse, index);
  }

  private readX509(entry: JsonObjectNode, index: number): undefined {
    if (entry.members.has("kid")) {
      this.warn("WARN_X509_KID_SET", 'x509-svid entries must not set "kid"; kept, kid dropped', index);
    }
    const x5c = entry.members.get("x5c");
    if (x5c === undefined || (x5c.type === "array" && x5c.items.length === 0)) {
      return this.ignore("WARN_X5C_MISSING", "x509-svid entry without a certificate in x5c", index);
    }
    const first = x5c.type === "array" ? x5c.items[0] : undefined;
    if (first?.type !== "string" || !BASE64.test(first.value)) {
      return this.ignore("WARN_X5C_INVALID", "x5c must be an array of base64 DER certificates", index);
    }
    if (x5c.type === "array" && x5c.items.length > 1) {
      this.warn(
        "WARN_X5C_EXTRA_CERTIFICATES",
        `x5c has ${x5c.items.length} certificates; only the first is used`,
        index,
      );
    }
    const certificate = parseX509Der(Buffer.from(first.value, "base64"), `keys[${index}].x5c[0]`);
    if (!certificate) return this.ignore("WARN_CERT_INVALID", "x5c[0] is not a readable X.509 certificate", index);
    if (!certificate.ca) return this.ignore("WARN_CERT_NOT_CA", "x5c[0] is not a CA certificate", index);

    let authority: X509Authority;
    try {
      authority = x509AuthorityFromCertificate(certificate);
    } catch {
      return this.ignore("WARN_KEY_UNSUPPORTED", "the certificate's key type is not supported", index);
    }
    const declared = this.importKey(entry, index);
    if (!declared) return;
    if (!samePublicJwk(declared, authority.publicKey)) {
      return this.ignore("WARN_X5C_KEY_MISMATCH", "the JWK's key differs from the key of its x5c certificate", index);
    }
    if (this.seenFingerprints.has(authority.fingerprint)) {
      return this.warn(
        "WARN_DUPLICATE_AUTHORITY",
        `certificate ${authority.fingerprint} appears more than once`,
        index,
      );
    }
    this.seenFingerprints.add(authority.fingerprint);
    this.x509.push(authority);
  }

  private readJwt(entry: JsonObjectNode, use: JwtKeyUse, index: number): undefined {
    const kid = entry.members.get("kid");
    if (kid?.type !== "string" || kid.value === "") {
      return this.ignore("WARN_KID_MISSING", `${use} entry without a key ID`, index);
    }
    const publicKey = this.importKey(entry, index);
    if (!publicKey) return;
    const authority = jwtAuthority(kid.value, publicKey, use);
    const existing = this.jwt.get(kid.value);
    if (existing) {
      if (existing.use === use && samePublicJwk(existing.publicKey, publicKey)) {
        return this.warn(
          "WARN_DUPLICATE_AUTHORITY",
          `key ID ${JSON.stringify(kid.value)} appears more than once`,
          index,
        );
      }
      // Two keys under one key ID: a verifier could pick either, so neither can be trusted.
      throw new InvalidBundleError(
        "ERR_BUNDLE_DUPLICATE_KID",
        `keys[${index}] reuses key ID ${JSON.stringify(kid.value)} for a different key`,
        { details: { index, keyId: kid.value } },
      );
    }
    this.jwt.set(kid.value, authority);
  }

  private importKey(entry: JsonObjectNode, index: number): PublicJwk | undefined {
    const raw: Record<string, unknown> = {};
    for (const [name, node] of entry.members) if (node.type === "string") raw[name] = node.value;
    const imported = importPublicJwk(raw);
    if (imported.ok) return imported.jwk;
    this.ignore(
      imported.reason === "unsupported" ? "WARN_KEY_UNSUPPORTED" : "WARN_KEY_INVALID",
      imported.message,
      index,
    );
    return undefined;
  }

  private warn(code: BundleWarning["code"], message: string, index: number): undefined {
    this.warnings.push(warning(code, `keys[${index}]: ${message}`, index));
  }

  private ignore(code: BundleWarning["code"], message: string, index: number): undefined {
    return this.warn(code, `${message}; entry ignored`, index);
  }
}

export interface SerializeOptions {
  /** Spaces per level for people to read; the canonical form (no option) has no whitespace. */
  readonly indent?: number;
}

/**
 * The canonical SPIFFE JSON form: x509-svid entries sorted by certificate fingerprint, then
 * jwt-svid/wit-svid entries sorted by key ID; fixed member order; `"keys": []` when empty (never null,
 * which go-spiffe's own reader refuses); sequence written exactly.
 */
export function serializeSpiffeBundle(bundle: TrustBundle, options: SerializeOptions = {}): string {
  const keys: JsonWritable[] = [];
  for (const authority of bundle.x509Authorities) {
    keys.push({
      use: X509_USE,
      ...publicMembers(authority.publicKey),
      x5c: [Buffer.from(authority.der).toString("base64")],
    });
  }
  for (const authority of bundle.jwtAuthorities.values()) {
    const { kty, ...rest } = publicMembers(authority.publicKey);
    keys.push({ use: authority.use, kty, kid: authority.keyId, ...rest });
  }
  const document: Record<string, JsonWritable> = { keys };
  if (bundle.sequence !== undefined) document.spiffe_sequence = bundle.sequence;
  if (bundle.refreshHintSeconds !== undefined) document.spiffe_refresh_hint = bundle.refreshHintSeconds;
  return writeJson(document, options.indent ?? 0);
}

export function canonicalBundleBytes(bundle: TrustBundle): Buffer {
  return Buffer.from(serializeSpiffeBundle(bundle), "utf8");
}

function publicMembers(jwk: PublicJwk): { kty: string } & Record<string, string> {
  switch (jwk.kty) {
    case "EC":
      return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
    case "RSA":
      return { kty: jwk.kty, n: jwk.n, e: jwk.e };
    case "OKP":
      return { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
  }
}

function describe(node: JsonNode): string {
  return node.type === "null" ? "null" : `a JSON ${node.type}`;
}

/** A short rendering of an offending value for error text; never long, never key material. */
function describeValue(node: JsonNode): string {
  switch (node.type) {
    case "number":
      return node.text.length > 40 ? `${node.text.slice(0, 40)}…` : node.text;
    case "string":
      return JSON.stringify(node.value.length > 40 ? `${node.value.slice(0, 40)}…` : node.value);
    default:
      return describe(node);
  }
}
