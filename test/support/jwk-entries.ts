/**
 * Builders for raw SPIFFE bundle JSON entries, shaped the way other implementations
 * (go-spiffe / go-jose, SPIRE) write them. Independent of bundlegate's own codec.
 *
 * Member order follows go-jose's JSONWebKey marshalling:
 * use, kty, kid, crv, x, y, n, e, x5c.
 */
import type { Issued, JsonWebKey } from "./pki.js";

export type JwtUse = "jwt-svid" | "wit-svid";

/** Standard (padded, non-URL) base64 of DER, as used by the JWK "x5c" member (RFC 7517 section 4.7). */
export function derToBase64(der: Uint8Array): string {
  return Buffer.from(der.buffer, der.byteOffset, der.byteLength).toString("base64");
}

function publicMembers(jwk: JsonWebKey): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const member of ["crv", "x", "y", "n", "e"] as const) {
    const value = jwk[member];
    if (value !== undefined) {
      out[member] = value;
    }
  }
  return out;
}

/** An `x509-svid` entry for a CA: public key members plus `x5c` ([CA DER, ...extraX5c]). */
export function x509Entry(ca: Issued, opts: { extraX5c?: Uint8Array[]; kid?: string } = {}): Record<string, unknown> {
  const entry: Record<string, unknown> = { use: "x509-svid", kty: ca.publicJwk.kty };
  if (opts.kid !== undefined) {
    entry.kid = opts.kid;
  }
  Object.assign(entry, publicMembers(ca.publicJwk));
  entry.x5c = [ca.der, ...(opts.extraX5c ?? [])].map(derToBase64);
  return entry;
}

/** A `jwt-svid` (default) or `wit-svid` entry: use, kty, kid, then the public key members. */
export function jwtEntry(kid: string, publicJwk: JsonWebKey, use: JwtUse = "jwt-svid"): Record<string, unknown> {
  return { use, kty: publicJwk.kty, kid, ...publicMembers(publicJwk) };
}
