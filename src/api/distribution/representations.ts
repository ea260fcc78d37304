/**
 * The bytes the distribution API serves for one cached bundle, built once per cache entry (entries are
 * immutable and replaced on change, so a WeakMap keyed by the entry is an exact cache) and never per request.
 *
 * - `spiffe`: the stored canonical JSON, byte for byte (`stored.json`).
 * - `jwks`: the `jwt-svid` authorities only, as an RFC 7517 JWK Set. Each key carries `kid` and `use: "sig"`
 *   (generic JWT libraries such as jose skip keys whose `use` is not `sig`, so `jwt-svid` would hide them);
 *   `wit-svid` keys are left out: they do not verify JWT-SVIDs.
 * - `pem`: the X.509 authorities, in canonical order.
 *
 * ETags are strong and derived from the stored digest (the SHA-256 of the canonical JSON) and the format,
 * so each representation has its own tag and the tag changes whenever the stored content does.
 */
import { createHash } from "node:crypto";
import type { CachedBundle } from "../../federation/bundle-cache.js";
import { type TrustBundle, withMetadata } from "../../spiffe/bundle.js";
import { serializeSpiffeBundle } from "../../spiffe/codec.js";
import { writeJson } from "../../spiffe/json-writer.js";
import { serializePem } from "../../spiffe/pem.js";
import type { PublicJwk } from "../../spiffe/public-key.js";

export const BUNDLE_FORMATS = ["spiffe", "jwks", "pem"] as const;
export type BundleFormat = (typeof BUNDLE_FORMATS)[number];

export const CONTENT_TYPES: Readonly<Record<BundleFormat, string>> = {
  spiffe: "application/json",
  jwks: "application/jwk-set+json",
  pem: "application/x-pem-file",
};

export interface Representation {
  readonly body: Buffer;
  readonly contentType: string;
  /** Quoted strong entity tag. */
  readonly etag: string;
}

interface Rendered {
  readonly spiffe?: Representation;
  readonly jwks?: Representation;
  readonly pem?: Representation;
  /** The bundle as a Bundle Map entry (no refresh hint). */
  mapEntry?: string;
}

const rendered = new WeakMap<CachedBundle, { -readonly [K in keyof Rendered]: Rendered[K] }>();

function renderedOf(entry: CachedBundle) {
  let value = rendered.get(entry);
  if (!value) {
    value = {};
    rendered.set(entry, value);
  }
  return value;
}

export function isBundleFormat(value: string): value is BundleFormat {
  return (BUNDLE_FORMATS as readonly string[]).includes(value);
}

/** The tag of one representation of a stored bundle. */
export function representationEtag(digest: string, format: BundleFormat): string {
  return `"${format}-${digest}"`;
}

export function representation(entry: CachedBundle, format: BundleFormat): Representation {
  const cache = renderedOf(entry);
  const existing = cache[format];
  if (existing) return existing;
  const text =
    format === "spiffe" ? entry.stored.json : format === "jwks" ? jwksJson(entry.bundle) : serializePem(entry.bundle);
  const made: Representation = Object.freeze({
    body: Buffer.from(text, "utf8"),
    contentType: CONTENT_TYPES[format],
    etag: representationEtag(entry.stored.digest, format),
  });
  cache[format] = made;
  return made;
}

/** The JWT-SVID authorities as a JWK Set. */
export function jwksJson(bundle: TrustBundle): string {
  const keys = [];
  for (const authority of bundle.jwtAuthorities.values()) {
    if (authority.use !== "jwt-svid") continue;
    keys.push({ ...jwkMembers(authority.publicKey), kid: authority.keyId, use: "sig" });
  }
  return writeJson({ keys });
}

function jwkMembers(jwk: PublicJwk): Record<string, string> {
  switch (jwk.kty) {
    case "EC":
      return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y };
    case "RSA":
      return { kty: jwk.kty, n: jwk.n, e: jwk.e };
    case "OKP":
      return { kty: jwk.kty, crv: jwk.crv, x: jwk.x };
  }
}

/**
 * One bundle as a SPIFFE Bundle Map entry: the canonical form without `spiffe_refresh_hint`, which the
 * spec recommends leaving out of map entries (the map is not fetched from the partner's endpoint).
 */
export function mapEntryJson(entry: CachedBundle): string {
  const cache = renderedOf(entry);
  cache.mapEntry ??= serializeSpiffeBundle(withMetadata(entry.bundle, { refreshHintSeconds: undefined }));
  return cache.mapEntry;
}

/**
 * The SPIFFE Bundle Map of the given entries, trust domains in code-unit order so the same set of bundles
 * always gives the same bytes (and the same ETag).
 */
export function bundleMap(entries: readonly CachedBundle[]): Representation {
  const sorted = [...entries].sort((a, b) =>
    a.trustDomain < b.trustDomain ? -1 : a.trustDomain > b.trustDomain ? 1 : 0,
  );
  const members = sorted.map((entry) => `${JSON.stringify(entry.trustDomain)}:${mapEntryJson(entry)}`);
  const body = Buffer.from(`{"trust_domains":{${members.join(",")}}}`, "utf8");
  return {
    body,
    contentType: "application/json",
    etag: `"map-${createHash("sha256").update(body).digest("hex")}"`,
  };
}
