/**
 * What the bundle endpoint and the relay both do per request, once the bundle is known: answer GET and
 * HEAD from headers and bytes prepared once per bundle change, 304 on a matching If-None-Match, 405
 * otherwise; and the request-target and header parsing they share. Nothing here allocates per request
 * beyond what Node needs to write the answer.
 */
import type { IncomingMessage, ServerResponse } from "node:http";

export const ALLOWED_METHODS = "GET, HEAD";

/** A flat `[name, value, name, value, ...]` list: the form `writeHead` writes without copying into a map. */
export type HeaderList = string[];

export interface PreparedBundle {
  readonly bytes: Buffer;
  readonly etag: string;
  readonly ok: HeaderList;
  readonly notModified: HeaderList;
}

export const NOSNIFF: HeaderList = ["X-Content-Type-Options", "nosniff"];
export const NOT_FOUND: HeaderList = ["Content-Length", "0", ...NOSNIFF];
export const METHOD_NOT_ALLOWED: HeaderList = ["Allow", ALLOWED_METHODS, "Content-Length", "0", ...NOSNIFF];

/** The headers of a bundle answer and of its 304, built once per bundle. `etag` is quoted. */
export function prepareBundleResponse(bytes: Buffer, etag: string, maxAgeSeconds: number): PreparedBundle {
  const cacheControl = `public, max-age=${maxAgeSeconds}`;
  return {
    bytes,
    etag,
    ok: [
      "Content-Type",
      "application/json",
      "Content-Length",
      String(bytes.length),
      "ETag",
      etag,
      "Cache-Control",
      cacheControl,
      ...NOSNIFF,
    ],
    notModified: ["ETag", etag, "Cache-Control", cacheControl, ...NOSNIFF],
  };
}

/** Answers a request for a prepared bundle and returns the status: 405, 304 or 200 (no body for HEAD). */
export function answerPrepared(req: IncomingMessage, res: ServerResponse, prepared: PreparedBundle): number {
  const method = req.method;
  if (method !== "GET" && method !== "HEAD") {
    res.writeHead(405, METHOD_NOT_ALLOWED).end();
    return 405;
  }
  const ifNoneMatch = rawHeader(req.rawHeaders, "if-none-match");
  if (ifNoneMatch !== undefined && ifNoneMatchMatches(ifNoneMatch, prepared.etag)) {
    res.writeHead(304, prepared.notModified).end();
    return 304;
  }
  res.writeHead(200, prepared.ok);
  if (method === "GET") res.end(prepared.bytes);
  else res.end();
  return 200;
}

/** The request handler around `respond`, timing it only when someone listens (checked once, not per request). */
export function timedHandler(
  respond: (req: IncomingMessage, res: ServerResponse) => number,
  onResponse: ((statusCode: number, startedAtNs: bigint) => void) | undefined,
): (req: IncomingMessage, res: ServerResponse) => void {
  if (onResponse === undefined) {
    return (req, res) => {
      respond(req, res);
    };
  }
  return (req, res) => {
    const startedAtNs = process.hrtime.bigint();
    onResponse(respond(req, res), startedAtNs);
  };
}

const SLASH = 0x2f;

export function absoluteFormPath(url: string): string | undefined {
  const scheme = url.indexOf("://");
  if (scheme <= 0) return undefined;
  const authorityEnd = url.slice(scheme + 3).search(/[/?#]/);
  if (authorityEnd < 0) return "/";
  const rest = url.slice(scheme + 3 + authorityEnd);
  return rest.charCodeAt(0) === SLASH ? rest : `/${rest}`;
}

/**
 * A request header from `rawHeaders`, repeated fields joined with ", " as RFC 9110 5.3 allows for lists.
 * Reading `req.headers` would make Node build a whole header object for every request.
 */
export function rawHeader(raw: string[], lowerName: string): string | undefined {
  let value: string | undefined;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i]!;
    if (name.length === lowerName.length && name.toLowerCase() === lowerName) {
      value = value === undefined ? raw[i + 1]! : `${value}, ${raw[i + 1]!}`;
    }
  }
  return value;
}

/**
 * RFC 9110 13.1.2 If-None-Match with the weak comparison: `*`, or a list of entity tags any of which has
 * the same opaque tag as `etag` (a quoted string, as ServedBundle holds it). Invalid syntax never matches.
 */
export function ifNoneMatchMatches(field: string, etag: string): boolean {
  // The common revalidation: the client sends back exactly the tag it was given.
  if (field === etag) return true;
  const length = field.length;
  let start = 0;
  let end = length;
  while (start < end && isOws(field.charCodeAt(start))) start++;
  while (end > start && isOws(field.charCodeAt(end - 1))) end--;
  if (end - start === 1 && field.charCodeAt(start) === ASTERISK) return true;

  let matched = false;
  let i = start;
  while (i < end) {
    const c = field.charCodeAt(i);
    // The list syntax (RFC 9110 5.6.1) tolerates empty elements and whitespace around commas.
    if (c === COMMA || isOws(c)) {
      i++;
      continue;
    }
    if (c === UPPER_W && field.charCodeAt(i + 1) === SLASH) i += 2;
    if (field.charCodeAt(i) !== DQUOTE) return false;
    let close = i + 1;
    while (close < end && isEtagc(field.charCodeAt(close))) close++;
    if (close >= end || field.charCodeAt(close) !== DQUOTE) return false;
    if (close + 1 - i === etag.length && field.startsWith(etag, i)) matched = true;
    i = close + 1;
    while (i < end && isOws(field.charCodeAt(i))) i++;
    if (i < end && field.charCodeAt(i) !== COMMA) return false;
  }
  return matched;
}

const ASTERISK = 0x2a;
const COMMA = 0x2c;
const DQUOTE = 0x22;
const UPPER_W = 0x57;

function isOws(c: number): boolean {
  return c === 0x20 || c === 0x09;
}

/** etagc = %x21 / %x23-7E / obs-text */
function isEtagc(c: number): boolean {
  return c === 0x21 || (c >= 0x23 && c <= 0x7e) || (c >= 0x80 && c <= 0xff);
}
