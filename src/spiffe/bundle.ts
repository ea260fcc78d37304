/**
 * The TrustBundle value: the authorities one trust domain publishes, its refresh hint and sequence.
 *
 * A bundle carries no trust domain name: the relationship that fetched it says whose it is, so two
 * domains' bundles can never be merged by accident. Values are immutable and normalised when built
 * (authorities deduplicated and sorted), so equal content is equal data and serialises to equal bytes.
 */
import { createHash, X509Certificate } from "node:crypto";
import { checkSingleDerSequence } from "./der.js";
import { InvalidBundleError } from "./errors.js";
import { exportPublicJwk, jwkThumbprint, type PublicJwk, samePublicJwk } from "./public-key.js";

export const MAX_SEQUENCE = 2n ** 64n - 1n;

export type JwtKeyUse = "jwt-svid" | "wit-svid";

export interface X509Authority {
  /** The certificate's DER encoding, exactly one certificate. */
  readonly der: Uint8Array;
  /** Lowercase hex SHA-256 of the DER: the authority's identity in sorting, diffs and logs. */
  readonly fingerprint: string;
  readonly publicKey: PublicJwk;
}

export interface JwtAuthority {
  readonly keyId: string;
  /** `wit-svid` keys are kept and re-served exactly like `jwt-svid` ones. */
  readonly use: JwtKeyUse;
  readonly publicKey: PublicJwk;
  /** RFC 7638 thumbprint of the public key. */
  readonly thumbprint: string;
}

export interface TrustBundle {
  /** Sorted by fingerprint, no duplicates. */
  readonly x509Authorities: readonly X509Authority[];
  /** Keyed by key ID, in key ID order; key IDs are unique across jwt-svid and wit-svid. */
  readonly jwtAuthorities: ReadonlyMap<string, JwtAuthority>;
  /** Whole seconds. */
  readonly refreshHintSeconds?: number;
  readonly sequence?: bigint;
}

export interface TrustBundleInput {
  readonly x509Authorities?: readonly X509Authority[];
  readonly jwtAuthorities?: Iterable<JwtAuthority>;
  readonly refreshHintSeconds?: number | undefined;
  readonly sequence?: bigint | undefined;
}

/** Builds a normalised bundle; refuses values the wire format could not carry. */
export function createTrustBundle(input: TrustBundleInput = {}): TrustBundle {
  const byFingerprint = new Map<string, X509Authority>();
  for (const authority of input.x509Authorities ?? []) byFingerprint.set(authority.fingerprint, authority);
  const x509Authorities = [...byFingerprint.values()].sort((a, b) => compare(a.fingerprint, b.fingerprint));

  const byKeyId = new Map<string, JwtAuthority>();
  for (const authority of input.jwtAuthorities ?? []) {
    const existing = byKeyId.get(authority.keyId);
    if (existing && !(existing.use === authority.use && samePublicJwk(existing.publicKey, authority.publicKey))) {
      throw new InvalidBundleError(
        "ERR_BUNDLE_DUPLICATE_KID",
        `key ID ${JSON.stringify(authority.keyId)} names two different keys`,
        { details: { keyId: authority.keyId } },
      );
    }
    byKeyId.set(authority.keyId, authority);
  }
  const jwtAuthorities = new Map([...byKeyId.entries()].sort(([a], [b]) => compare(a, b)));

  const bundle: { -readonly [K in keyof TrustBundle]: TrustBundle[K] } = { x509Authorities, jwtAuthorities };
  if (input.refreshHintSeconds !== undefined) {
    if (!Number.isSafeInteger(input.refreshHintSeconds) || input.refreshHintSeconds < 0) {
      throw new InvalidBundleError(
        "ERR_BUNDLE_BAD_REFRESH_HINT",
        `refresh hint must be a whole number of seconds, got ${input.refreshHintSeconds}`,
      );
    }
    bundle.refreshHintSeconds = input.refreshHintSeconds;
  }
  if (input.sequence !== undefined) {
    if (input.sequence < 0n || input.sequence > MAX_SEQUENCE) {
      throw new InvalidBundleError(
        "ERR_BUNDLE_BAD_SEQUENCE",
        `sequence must be within 0..2^64-1, got ${input.sequence}`,
      );
    }
    bundle.sequence = input.sequence;
  }
  return Object.freeze(bundle);
}

/** Returns a copy with another sequence or refresh hint (undefined removes it). */
export function withMetadata(
  bundle: TrustBundle,
  changes: { sequence?: bigint | undefined; refreshHintSeconds?: number | undefined },
): TrustBundle {
  return createTrustBundle({
    x509Authorities: bundle.x509Authorities,
    jwtAuthorities: bundle.jwtAuthorities.values(),
    refreshHintSeconds: "refreshHintSeconds" in changes ? changes.refreshHintSeconds : bundle.refreshHintSeconds,
    sequence: "sequence" in changes ? changes.sequence : bundle.sequence,
  });
}

export function x509AuthorityFromCertificate(certificate: X509Certificate): X509Authority {
  const der = new Uint8Array(certificate.raw);
  return Object.freeze({
    der,
    fingerprint: createHash("sha256").update(der).digest("hex"),
    publicKey: exportPublicJwk(certificate.publicKey),
  });
}

/**
 * Reads one DER certificate as an authority. Throws ERR_BUNDLE_DER_TRAILING_DATA for trailing bytes;
 * returns undefined for bytes that are not a certificate at all, which the caller reports as it sees fit.
 */
export function parseX509Der(der: Uint8Array, where: string): X509Certificate | undefined {
  const exact = checkSingleDerSequence(der, where);
  if (!exact) return undefined;
  try {
    return new X509Certificate(exact);
  } catch {
    return undefined;
  }
}

export function jwtAuthority(keyId: string, publicKey: PublicJwk, use: JwtKeyUse = "jwt-svid"): JwtAuthority {
  return Object.freeze({ keyId, use, publicKey, thumbprint: jwkThumbprint(publicKey) });
}

export function authorityCount(bundle: TrustBundle): number {
  return bundle.x509Authorities.length + bundle.jwtAuthorities.size;
}

/** Code-unit order, never locale order: the same input must sort the same way on every machine. */
export function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
