/**
 * The wire form of an invitation: a compact JWS whose protected header is `{alg, typ, x5c}` and whose
 * payload is readable JSON (the SPIFFE bundle inside is a JSON object, not a string), so a partner without
 * bundlegate can read it with `base64 -d`.
 *
 * Reading is strict before anything is trusted: a size cap before decoding, canonical base64url (so one
 * token has exactly one spelling), UTF-8 and the strict JSON reader (duplicate member names refused, numbers
 * kept as written so a 64-bit `spiffe_sequence` is never rounded), and a closed set of header members.
 */
import { type KeyObject, X509Certificate } from "node:crypto";
import { MAX_CHAIN_CERTIFICATES } from "../../sources/tls-credentials.js";
import { checkSingleDerSequence } from "../../spiffe/der.js";
import { type JsonNode, parseStrictJson } from "../../spiffe/json.js";
import { InvitationError } from "./errors.js";

/** Longest accepted token. Checked before decoding; a bundle of a few dozen authorities fits many times over. */
export const MAX_INVITATION_TOKEN_BYTES = 128 * 1024;
export const INVITATION_TYP = "bundlegate-invitation+jwt";
export const INVITATION_VERSION = 1;
/** The payload member that holds everything bundlegate-specific; standard JWT claims sit beside it. */
export const INVITATION_CLAIM = "bundlegate_invitation";

export type InvitationProfile = "https_spiffe" | "https_web";
export const INVITATION_PROFILES: readonly InvitationProfile[] = ["https_spiffe", "https_web"];

/** Signature algorithms an invitation may use: asymmetric only, never `none` or HMAC. */
export type InvitationAlgorithm = "ES256" | "ES384" | "RS256" | "PS256" | "EdDSA";
export const INVITATION_ALGORITHMS: readonly InvitationAlgorithm[] = ["ES256", "ES384", "RS256", "PS256", "EdDSA"];

/** A JSON value as the readable views show it: integers past 2^53 become decimal strings instead of being rounded. */
export { jsonText, type ReadableJson, readableJson } from "../../spiffe/json.js";

import type { ReadableJson } from "../../spiffe/json.js";

export interface InvitationHeader {
  readonly alg: string;
  readonly typ: string;
  /** Standard base64 DER, leaf first (RFC 7515 section 4.1.6). */
  readonly x5c: readonly string[];
}

/** The payload as written. Readable views (decodeInvitation, createInvitation's result) have this shape. */
export interface InvitationPayload {
  /** The signer's SPIFFE ID: the URI SAN of the x5c leaf. */
  readonly iss: string;
  readonly iat: number;
  readonly exp: number;
  readonly jti: string;
  readonly aud?: string | readonly string[];
  readonly [INVITATION_CLAIM]: {
    readonly version: number;
    readonly trust_domain: string;
    readonly endpoint_url: string;
    readonly profile: InvitationProfile;
    readonly endpoint_spiffe_id?: string;
    readonly note?: string;
    /** The SPIFFE bundle document, as serializeSpiffeBundle writes it. */
    readonly bundle: { readonly [name: string]: ReadableJson };
  };
}

/** A token split into its parts, each decoded but none trusted. */
export interface TokenParts {
  readonly headerJson: string;
  readonly header: JsonNode;
  readonly payloadJson: string;
  readonly signature: Uint8Array;
}

const BASE64URL = /^[A-Za-z0-9_-]+$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;
const HEADER_MEMBERS: ReadonlySet<string> = new Set(["alg", "typ", "x5c"]);

export function malformed(message: string, details: Record<string, unknown> = {}, cause?: unknown): InvitationError {
  return new InvitationError("ERR_INVITATION_MALFORMED", `invitation is malformed: ${message}`, {
    details,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** Size, the three parts, base64url, UTF-8 and JSON syntax of the header. The payload's JSON is read later. */
export function splitToken(token: unknown): TokenParts {
  if (typeof token !== "string") throw malformed("the token is not a string");
  if (token.length > MAX_INVITATION_TOKEN_BYTES) {
    throw new InvitationError(
      "ERR_INVITATION_TOO_LARGE",
      `invitation is ${token.length} characters, over the ${MAX_INVITATION_TOKEN_BYTES}-byte limit`,
      { details: { size: token.length, limit: MAX_INVITATION_TOKEN_BYTES } },
    );
  }
  const parts = token.split(".");
  if (parts.length !== 3) {
    throw malformed(`a compact JWS has 3 parts separated by ".", this has ${parts.length}`, { parts: parts.length });
  }
  const [header, payload, signature] = parts.map((part, index) => decodeBase64url(part, PART_NAMES[index]!));
  const headerJson = decodeUtf8(header!, "header");
  return {
    headerJson,
    header: readJson(headerJson, "header"),
    payloadJson: decodeUtf8(payload!, "payload"),
    signature: signature!,
  };
}

const PART_NAMES = ["header", "payload", "signature"] as const;

function decodeBase64url(text: string, part: string): Buffer {
  // An empty signature is left to the algorithm check: it is what `alg: none` looks like, and says so.
  if (text === "" && part === "signature") return Buffer.alloc(0);
  if (!BASE64URL.test(text)) throw malformed(`the ${part} is empty or not base64url`, { part });
  const bytes = Buffer.from(text, "base64url");
  // Node ignores stray bits in the last character; re-encoding shows them, so a token has one spelling only.
  if (bytes.toString("base64url") !== text) throw malformed(`the ${part} is not canonical base64url`, { part });
  return bytes;
}

function decodeUtf8(bytes: Uint8Array, part: string): string {
  try {
    return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch (cause) {
    throw malformed(`the ${part} is not UTF-8`, { part }, cause);
  }
}

export function readJson(text: string, part: string): JsonNode {
  try {
    return parseStrictJson(text);
  } catch (cause) {
    const reason = cause instanceof Error ? cause.message : String(cause);
    throw malformed(`the ${part} is not valid JSON (${reason})`, { part }, cause);
  }
}

export interface ReadHeader {
  readonly alg: string;
  /** DER, leaf first, each exactly one certificate. */
  readonly chain: readonly Buffer[];
  readonly leaf: X509Certificate;
  /** The leaf's key: what the signature must verify with. */
  readonly publicKey: KeyObject;
}

/** The protected header: exactly alg, typ and x5c, with the certificates parsed. `alg` is checked by the caller. */
export function readHeader(node: JsonNode): ReadHeader {
  if (node.type !== "object") throw malformed("the header is not a JSON object");
  for (const name of node.members.keys()) {
    // jku, jwk, x5u, kid would name other keys; crit, b64, zip would change how the token is read.
    if (!HEADER_MEMBERS.has(name)) throw malformed(`header member ${JSON.stringify(name)} is not allowed`, { name });
  }
  const alg = node.members.get("alg");
  if (alg?.type !== "string") throw malformed('the header has no "alg" string');
  const typ = node.members.get("typ");
  if (typ?.type !== "string" || !isInvitationTyp(typ.value)) {
    throw malformed(`the header "typ" must be ${JSON.stringify(INVITATION_TYP)}`, {
      typ: typ?.type === "string" ? typ.value : null,
    });
  }
  return { alg: alg.value, ...readX5c(node.members.get("x5c")) };
}

/** RFC 7515 4.1.9: media type names are case-insensitive and "application/" may be left out. */
function isInvitationTyp(value: string): boolean {
  const lower = value.toLowerCase();
  return lower === INVITATION_TYP || lower === `application/${INVITATION_TYP}`;
}

function readX5c(node: JsonNode | undefined): { chain: Buffer[]; leaf: X509Certificate; publicKey: KeyObject } {
  if (node === undefined) throw malformed('the header has no "x5c": the signer is unknown');
  if (node.type !== "array" || node.items.length === 0) throw malformed('"x5c" must be a non-empty array');
  if (node.items.length > MAX_CHAIN_CERTIFICATES) {
    throw malformed(`"x5c" has ${node.items.length} certificates, over the limit of ${MAX_CHAIN_CERTIFICATES}`, {
      count: node.items.length,
      limit: MAX_CHAIN_CERTIFICATES,
    });
  }
  const chain = node.items.map((item, index) => {
    const where = `x5c[${index}]`;
    if (item.type !== "string" || !BASE64.test(item.value)) throw malformed(`${where} is not base64`, { index });
    let der: Uint8Array | undefined;
    try {
      der = checkSingleDerSequence(Buffer.from(item.value, "base64"), where);
    } catch (cause) {
      throw malformed(`${where} has bytes after the certificate`, { index }, cause);
    }
    if (!der) throw malformed(`${where} is not a DER certificate`, { index });
    return Buffer.from(der);
  });
  const certificates = chain.map((der, index) => {
    try {
      return new X509Certificate(der);
    } catch (cause) {
      throw malformed(`x5c[${index}] is not a readable certificate`, { index }, cause);
    }
  });
  const leaf = certificates[0]!;
  let publicKey: KeyObject;
  try {
    // Node parses the key lazily: a damaged SubjectPublicKeyInfo only fails here.
    publicKey = leaf.publicKey;
  } catch (cause) {
    throw malformed("x5c[0] has an unreadable public key", { index: 0 }, cause);
  }
  return { chain, leaf, publicKey };
}
