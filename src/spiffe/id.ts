/**
 * Trust domain names and SPIFFE IDs, validated against SPIFFE-ID.md section 2.
 *
 * Decisions where the spec leaves room (or contradicts itself):
 * - Section 2.4 calls the scheme and trust domain case-insensitive, but 2.1 says the host MUST be
 *   lowercase. Like go-spiffe we refuse uppercase in both rather than fold it, so every ID has exactly
 *   one spelling and plain string equality is identity; that is what makes these safe Map keys.
 *   "SPIFFE://example.org" is therefore ERR_SPIFFEID_WRONG_SCHEME.
 * - Input is never trimmed or decoded: what is validated is exactly what gets compared later.
 * - Lengths are UTF-8 bytes (section 2.3). A too-long input is refused before anything else is
 *   examined, so hostile input costs at most one bounded scan.
 * - Dotted quads are plain names; nothing here knows about IP addresses or DNS (section 2.1).
 * - A port is ":" plus digits only, percent-encoding is "%" plus two hex digits (RFC 3986 grammar);
 *   a stray ":" or "%" is just a bad character.
 */
import { InvalidSpiffeIdError, type SpiffeIdErrorCode } from "./errors.js";

/** A validated trust domain name, e.g. "example.org". Branded string so it can key Maps. */
export type TrustDomain = string & { readonly __trustDomain: unique symbol };

export const MAX_TRUST_DOMAIN_LENGTH = 255;
export const MAX_SPIFFE_ID_LENGTH = 2048;

export interface SpiffeId {
  readonly trustDomain: TrustDomain;
  /** "" or "/seg/seg"; case-sensitive. */
  readonly path: string;
  /** "spiffe://td/path" */
  readonly uri: string;
}

const SCHEME_PREFIX = "spiffe://";
const TRUST_DOMAIN_NAME = /^[a-z0-9._-]+$/;
const PATH_SEGMENT = /^[a-zA-Z0-9._-]+$/;
const PERCENT_ENCODED = /%[0-9a-fA-F]{2}/;
const PORT_SUFFIX = /:[0-9]*$/;
const ECHO_LIMIT = 100;

export function parseTrustDomain(name: string): TrustDomain {
  if (name === "") throw invalid("ERR_TRUST_DOMAIN_EMPTY", "trust domain name is empty");
  if (name.slice(0, SCHEME_PREFIX.length).toLowerCase() === SCHEME_PREFIX) {
    const bare = name.slice(SCHEME_PREFIX.length).split(/[/?#]/)[0] ?? "";
    throw invalid(
      "ERR_TRUST_DOMAIN_IS_SPIFFE_ID",
      `${quote(name)} is a SPIFFE ID, not a trust domain name; pass the name only (e.g. ${quote(bare || "example.org")})`,
    );
  }
  checkTrustDomainName(name);
  return name as TrustDomain;
}

export function isTrustDomain(name: string): name is TrustDomain {
  return typeof name === "string" && succeeds(() => parseTrustDomain(name));
}

export function parseSpiffeId(uri: string): SpiffeId {
  if (uri === "") throw invalid("ERR_SPIFFEID_EMPTY", "SPIFFE ID is empty");
  checkIdLength(uri);
  if (!uri.startsWith(SCHEME_PREFIX)) {
    const hint = uri.slice(0, SCHEME_PREFIX.length).toLowerCase() === SCHEME_PREFIX ? " (lowercase only)" : "";
    throw invalid("ERR_SPIFFEID_WRONG_SCHEME", `SPIFFE ID ${quote(uri)} must start with "spiffe://"${hint}`);
  }
  // RFC 3986: the authority runs until the first "/", "?" or "#".
  const rest = uri.slice(SCHEME_PREFIX.length);
  const authorityEnd = rest.search(/[/?#]/);
  const name = authorityEnd < 0 ? rest : rest.slice(0, authorityEnd);
  if (name === "") {
    throw invalid("ERR_SPIFFEID_MISSING_TRUST_DOMAIN", `SPIFFE ID ${quote(uri)} has no trust domain name`);
  }
  checkTrustDomainName(name);
  const path = authorityEnd < 0 ? "" : rest.slice(authorityEnd);
  checkPath(path);
  return freezeId(name as TrustDomain, path, uri);
}

export function isSpiffeId(uri: string): boolean {
  return typeof uri === "string" && succeeds(() => parseSpiffeId(uri));
}

/** `path` is "" (the trust domain's own ID) or absolute, e.g. "/ns/prod/sa/web". */
export function spiffeIdFromPath(trustDomain: TrustDomain, path: string): SpiffeId {
  // The brand is only a compile-time promise; a cast string must not smuggle "/" or "@" into the URI.
  parseTrustDomain(trustDomain);
  if (path !== "" && !path.startsWith("/")) {
    // Without the slash the first segment would merge into the trust domain.
    throw invalid("ERR_SPIFFEID_PATH_NO_LEADING_SLASH", `path ${quote(path)} must be empty or start with "/"`);
  }
  const uri = SCHEME_PREFIX + trustDomain + path;
  checkIdLength(uri);
  checkPath(path);
  return freezeId(trustDomain, path, uri);
}

/** The ID naming the trust domain itself, "spiffe://td" (empty path). */
export function trustDomainSpiffeId(trustDomain: TrustDomain): SpiffeId {
  return spiffeIdFromPath(trustDomain, "");
}

export function isMemberOf(id: SpiffeId, trustDomain: TrustDomain): boolean {
  // Both sides are lowercase-only by construction, so no case folding is needed.
  return id.trustDomain === trustDomain;
}

function checkTrustDomainName(name: string): void {
  if (exceedsBytes(name, MAX_TRUST_DOMAIN_LENGTH)) {
    throw invalid(
      "ERR_TRUST_DOMAIN_TOO_LONG",
      `trust domain name ${quote(name)} is longer than ${MAX_TRUST_DOMAIN_LENGTH} bytes`,
      { limit: MAX_TRUST_DOMAIN_LENGTH },
    );
  }
  if (TRUST_DOMAIN_NAME.test(name)) return;
  // Structural mistakes first: they explain the input better than its first odd character would.
  if (name.includes("@")) {
    throw invalid("ERR_TRUST_DOMAIN_USERINFO", `trust domain name ${quote(name)} must not contain userinfo ("...@")`);
  }
  if (/[[\]]/.test(name)) {
    throw invalid(
      "ERR_TRUST_DOMAIN_BAD_CHAR",
      `trust domain name ${quote(name)} contains "[" or "]"; IPv6 literals are not allowed`,
    );
  }
  if (PORT_SUFFIX.test(name)) {
    throw invalid("ERR_TRUST_DOMAIN_PORT", `trust domain name ${quote(name)} must not contain a port`);
  }
  if (PERCENT_ENCODED.test(name)) {
    throw invalid("ERR_TRUST_DOMAIN_PERCENT_ENCODED", `trust domain name ${quote(name)} must not be percent-encoded`);
  }
  const [ch, index] = firstMismatch(name, /[a-z0-9._-]/);
  if (/[A-Z]/.test(ch)) {
    throw invalid("ERR_TRUST_DOMAIN_UPPERCASE", `trust domain name ${quote(name)} must be lowercase`, { index });
  }
  throw invalid(
    "ERR_TRUST_DOMAIN_BAD_CHAR",
    `trust domain name ${quote(name)} contains ${describeChar(ch)}; only [a-z0-9._-] are allowed`,
    { index },
  );
}

/** `path` is "" or starts with "/", possibly followed by a query or fragment. */
function checkPath(path: string): void {
  const extra = path.search(/[?#]/);
  if (extra >= 0) {
    const tail = quote(path.slice(extra));
    throw path[extra] === "?"
      ? invalid("ERR_SPIFFEID_QUERY", `SPIFFE ID must not have a query (${tail})`)
      : invalid("ERR_SPIFFEID_FRAGMENT", `SPIFFE ID must not have a fragment (${tail})`);
  }
  const segments = path.split("/").slice(1);
  for (const [i, segment] of segments.entries()) {
    if (segment === "") {
      throw i === segments.length - 1
        ? invalid("ERR_SPIFFEID_PATH_TRAILING_SLASH", `path ${quote(path)} must not end with "/"`)
        : invalid("ERR_SPIFFEID_PATH_EMPTY_SEGMENT", `path ${quote(path)} contains an empty segment ("//")`);
    }
    if (segment === "." || segment === "..") {
      throw invalid("ERR_SPIFFEID_PATH_DOT_SEGMENT", `path ${quote(path)} contains the relative segment "${segment}"`);
    }
    if (PATH_SEGMENT.test(segment)) continue;
    if (PERCENT_ENCODED.test(segment)) {
      throw invalid("ERR_SPIFFEID_PATH_PERCENT_ENCODED", `path segment ${quote(segment)} must not be percent-encoded`);
    }
    const [ch] = firstMismatch(segment, /[a-zA-Z0-9._-]/);
    throw invalid(
      "ERR_SPIFFEID_PATH_BAD_CHAR",
      `path segment ${quote(segment)} contains ${describeChar(ch)}; only [a-zA-Z0-9._-] are allowed`,
    );
  }
}

function checkIdLength(uri: string): void {
  if (exceedsBytes(uri, MAX_SPIFFE_ID_LENGTH)) {
    throw invalid("ERR_SPIFFEID_TOO_LONG", `SPIFFE ID ${quote(uri)} is longer than ${MAX_SPIFFE_ID_LENGTH} bytes`, {
      limit: MAX_SPIFFE_ID_LENGTH,
    });
  }
}

function freezeId(trustDomain: TrustDomain, path: string, uri: string): SpiffeId {
  return Object.freeze({ trustDomain, path, uri });
}

const encoder = new TextEncoder();

/** A UTF-16 code unit never encodes to fewer than one byte, so long strings are refused without encoding them. */
function exceedsBytes(s: string, limit: number): boolean {
  return s.length > limit || encoder.encode(s).length > limit;
}

/** The first code point (whole, even if astral) not matching `allowed`, and its index. */
function firstMismatch(s: string, allowed: RegExp): [string, number] {
  let index = 0;
  for (const ch of s) {
    if (!allowed.test(ch)) return [ch, index];
    index += ch.length;
  }
  return ["", -1];
}

function describeChar(ch: string): string {
  const codePoint = (ch.codePointAt(0) ?? 0).toString(16).toUpperCase().padStart(4, "0");
  return `${JSON.stringify(ch)} (U+${codePoint})`;
}

/** Echoed input stays a one-liner even for megabyte-sized garbage. */
function quote(s: string): string {
  return JSON.stringify(s.length > ECHO_LIMIT ? `${s.slice(0, ECHO_LIMIT)}…` : s);
}

function invalid(
  code: SpiffeIdErrorCode,
  message: string,
  details: Record<string, unknown> = {},
): InvalidSpiffeIdError {
  return new InvalidSpiffeIdError(code, message, { details });
}

function succeeds(parse: () => unknown): boolean {
  try {
    parse();
    return true;
  } catch (error) {
    if (error instanceof InvalidSpiffeIdError) return false;
    throw error;
  }
}
