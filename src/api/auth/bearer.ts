/**
 * Reading `Authorization: Bearer <token>` (RFC 6750 section 2.1), shared by the consumer and admin
 * authentication. The token itself is only ever handed back to the caller, never described or logged.
 */

export type BearerCredential =
  /** No Authorization header, or an empty one. */
  | { readonly kind: "none" }
  /** An Authorization scheme other than Bearer: counts as no bearer credential. */
  | { readonly kind: "other-scheme" }
  /** `Bearer` with no token, or a token that is not an RFC 6750 b64token. */
  | { readonly kind: "malformed" }
  | { readonly kind: "token"; readonly token: string };

const BEARER = /^Bearer(?: +(.*))?$/is;
/** RFC 6750 b64token. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;
/** A compact JWS; an empty signature part (alg "none") is still a JWT, to be refused as one. */
const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

export function readBearer(header: string | undefined): BearerCredential {
  if (header === undefined || header === "") return { kind: "none" };
  const bearer = BEARER.exec(header);
  if (bearer === null) return { kind: "other-scheme" };
  const token = (bearer[1] ?? "").trim();
  if (token === "" || !B64TOKEN.test(token)) return { kind: "malformed" };
  return { kind: "token", token };
}

/** Whether a bearer token has the shape of a compact JWS (three base64url parts). */
export function looksLikeJwt(token: string): boolean {
  return JWT_SHAPE.test(token);
}
