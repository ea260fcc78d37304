/**
 * Public keys as canonical JWKs.
 *
 * Every key is imported through node:crypto and exported again, so a partner's encoding quirks
 * (leading zero bytes, extra members, odd member order) never reach what bundlegate serves, and a
 * point that is not on its curve is refused at import.
 */
import { createHash, createPublicKey, type KeyObject } from "node:crypto";

export type PublicJwk =
  | { readonly kty: "EC"; readonly crv: "P-256" | "P-384" | "P-521"; readonly x: string; readonly y: string }
  | { readonly kty: "RSA"; readonly n: string; readonly e: string }
  | { readonly kty: "OKP"; readonly crv: "Ed25519" | "Ed448"; readonly x: string };

export const SUPPORTED_KTY = ["EC", "RSA", "OKP"] as const;
const EC_CURVES = new Set(["P-256", "P-384", "P-521"]);
const OKP_CURVES = new Set(["Ed25519", "Ed448"]);

/** Members that only a private or symmetric key has; their presence anywhere refuses a bundle. */
export const PRIVATE_KEY_MEMBERS = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] as const;

export type PublicKeyImport =
  | { readonly ok: true; readonly jwk: PublicJwk }
  | { readonly ok: false; readonly reason: "unsupported" | "invalid"; readonly message: string };

/** Imports the public part of a JWK (only kty/crv/x/y/n/e are read). */
export function importPublicJwk(raw: Readonly<Record<string, unknown>>): PublicKeyImport {
  const kty = raw.kty;
  const crv = raw.crv;
  if (kty === "EC" && !EC_CURVES.has(String(crv))) {
    return { ok: false, reason: "unsupported", message: `unsupported EC curve ${JSON.stringify(crv)}` };
  }
  if (kty === "OKP" && !OKP_CURVES.has(String(crv))) {
    return { ok: false, reason: "unsupported", message: `unsupported OKP curve ${JSON.stringify(crv)}` };
  }
  const members = kty === "RSA" ? ["kty", "n", "e"] : kty === "EC" ? ["kty", "crv", "x", "y"] : ["kty", "crv", "x"];
  const input: Record<string, string> = {};
  for (const name of members) {
    const value = raw[name];
    if (typeof value !== "string" || !/^[A-Za-z0-9_-]+$/.test(value)) {
      return { ok: false, reason: "invalid", message: `member "${name}" is missing or not base64url` };
    }
    input[name] = value;
  }
  try {
    return { ok: true, jwk: exportPublicJwk(createPublicKey({ key: input, format: "jwk" })) };
  } catch (error) {
    return { ok: false, reason: "invalid", message: `key does not import: ${(error as Error).message}` };
  }
}

export function exportPublicJwk(key: KeyObject): PublicJwk {
  const jwk = key.export({ format: "jwk" });
  // Node exports curves a bundle may not carry (secp256k1, X25519, ...); refuse them here, not downstream.
  if (
    (jwk.kty === "EC" && !EC_CURVES.has(String(jwk.crv))) ||
    (jwk.kty === "OKP" && !OKP_CURVES.has(String(jwk.crv)))
  ) {
    throw new Error(`unsupported ${jwk.kty} curve ${String(jwk.crv)}`);
  }
  switch (jwk.kty) {
    case "EC":
      return { kty: "EC", crv: jwk.crv as "P-256", x: jwk.x!, y: jwk.y! };
    case "RSA":
      return { kty: "RSA", n: jwk.n!, e: jwk.e! };
    case "OKP":
      return { kty: "OKP", crv: jwk.crv as "Ed25519", x: jwk.x! };
    default:
      throw new Error(`unsupported key type ${String(jwk.kty)}`);
  }
}

export function samePublicJwk(a: PublicJwk, b: PublicJwk): boolean {
  return jwkThumbprint(a) === jwkThumbprint(b);
}

/** RFC 7638 thumbprint (SHA-256, base64url): the required members in lexicographic order, no spaces. */
export function jwkThumbprint(jwk: PublicJwk): string {
  const required =
    jwk.kty === "EC"
      ? { crv: jwk.crv, kty: jwk.kty, x: jwk.x, y: jwk.y }
      : jwk.kty === "RSA"
        ? { e: jwk.e, kty: jwk.kty, n: jwk.n }
        : { crv: jwk.crv, kty: jwk.kty, x: jwk.x };
  return createHash("sha256").update(JSON.stringify(required)).digest("base64url");
}

/** "EC P-256", "RSA 2048", "OKP Ed25519": what an operator reads in an inspection. */
export function describePublicJwk(jwk: PublicJwk): string {
  if (jwk.kty === "RSA") return `RSA ${Buffer.from(jwk.n, "base64url").length * 8}`;
  return `${jwk.kty} ${jwk.crv}`;
}
