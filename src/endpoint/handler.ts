/**
 * The request handler of the public bundle endpoint: this domain's canonical bundle bytes, from memory.
 *
 * Everything a response needs (body, ETag, header list) is prepared once per bundle change, so a request
 * costs a path compare, a method compare and one `writeHead` + `end`. No URL parsing, no header object
 * built per request, no framework.
 *
 * Decisions:
 * - The path is compared exactly, up to the first `?`; the query string never changes what is served.
 * - Methods other than GET and HEAD, OPTIONS included, get 405 with `Allow: GET, HEAD`. Bundle fetchers
 *   are servers, not browsers, so there is no CORS preflight to answer, and a 204 to OPTIONS would have to
 *   list OPTIONS in Allow, which no other response could then truthfully leave out.
 * - A wrong path is 404 whatever the method: the resource does not exist, so no method is allowed on it.
 * - `If-None-Match` uses the weak comparison (RFC 9110 13.1.2): `W/"x"` matches our `"x"`. A list matches
 *   if any member does, `*` matches (the bundle always exists), and a field that is not valid syntax is
 *   ignored (full 200), which is always a safe answer to a conditional request.
 * - 304 carries ETag and Cache-Control, the fields a cache updates (RFC 9110 15.4.5), and nosniff; no
 *   Content-Type or Content-Length, which that section asks servers not to repeat.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { ServedBundle, Watched } from "../sources/types.js";

export const ALLOWED_METHODS = "GET, HEAD";

export interface BundleRequestHandlerOptions {
  /** Origin-form path the bundle is served at, e.g. `/` or `/bundle.json`. */
  readonly path: string;
  readonly bundle: Watched<ServedBundle>;
  /** Cache-Control max-age; capped at the bundle's refresh hint, which is also the default. */
  readonly cacheMaxAgeSeconds?: number | undefined;
  /** Called after each response is handed to the socket, with the `process.hrtime.bigint()` of its arrival. */
  readonly onResponse?: ((statusCode: number, startedAtNs: bigint) => void) | undefined;
}

export interface BundleRequestHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /** Stops following bundle changes; the handler keeps serving the last bundle it saw. */
  dispose(): void;
}

/** A flat `[name, value, name, value, ...]` list: the form `writeHead` writes without copying into a map. */
type HeaderList = string[];

interface Prepared {
  readonly bytes: Buffer;
  readonly etag: string;
  readonly ok: HeaderList;
  readonly notModified: HeaderList;
}

const NOSNIFF = ["X-Content-Type-Options", "nosniff"];
const NOT_FOUND: HeaderList = ["Content-Length", "0", ...NOSNIFF];
const METHOD_NOT_ALLOWED: HeaderList = ["Allow", ALLOWED_METHODS, "Content-Length", "0", ...NOSNIFF];

/** `min(cacheMaxAgeSeconds ?? hint, hint)`, in whole non-negative seconds. */
export function cacheMaxAge(refreshHintSeconds: number, cacheMaxAgeSeconds: number | undefined): number {
  const hint = wholeSeconds(refreshHintSeconds);
  return cacheMaxAgeSeconds === undefined ? hint : Math.min(wholeSeconds(cacheMaxAgeSeconds), hint);
}

function wholeSeconds(value: number): number {
  return Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}

function prepare(served: ServedBundle, cacheMaxAgeSeconds: number | undefined): Prepared {
  const cacheControl = `public, max-age=${cacheMaxAge(served.refreshHintSeconds, cacheMaxAgeSeconds)}`;
  const length = String(served.bytes.length);
  return {
    bytes: served.bytes,
    etag: served.etag,
    ok: [
      "Content-Type",
      "application/json",
      "Content-Length",
      length,
      "ETag",
      served.etag,
      "Cache-Control",
      cacheControl,
      ...NOSNIFF,
    ],
    notModified: ["ETag", served.etag, "Cache-Control", cacheControl, ...NOSNIFF],
  };
}

export function createBundleRequestHandler(options: BundleRequestHandlerOptions): BundleRequestHandler {
  const { path, bundle, cacheMaxAgeSeconds, onResponse } = options;
  let prepared = prepare(bundle.current(), cacheMaxAgeSeconds);
  const unsubscribe = bundle.subscribe((served) => {
    prepared = prepare(served, cacheMaxAgeSeconds);
  });

  const respond = (req: IncomingMessage, res: ServerResponse): number => {
    if (!isPath(req.url, path)) {
      res.writeHead(404, NOT_FOUND).end();
      return 404;
    }
    const method = req.method;
    if (method !== "GET" && method !== "HEAD") {
      res.writeHead(405, METHOD_NOT_ALLOWED).end();
      return 405;
    }
    // One read, so a bundle change during this request cannot mix two bundles' headers and body.
    const current = prepared;
    const ifNoneMatch = rawHeader(req.rawHeaders, "if-none-match");
    if (ifNoneMatch !== undefined && ifNoneMatchMatches(ifNoneMatch, current.etag)) {
      res.writeHead(304, current.notModified).end();
      return 304;
    }
    res.writeHead(200, current.ok);
    if (method === "GET") res.end(current.bytes);
    else res.end();
    return 200;
  };

  const handler =
    onResponse === undefined
      ? (req: IncomingMessage, res: ServerResponse): void => {
          respond(req, res);
        }
      : (req: IncomingMessage, res: ServerResponse): void => {
          const startedAtNs = process.hrtime.bigint();
          onResponse(respond(req, res), startedAtNs);
        };
  return Object.assign(handler, { dispose: unsubscribe });
}

/**
 * Whether a request target names the bundle: exactly `path`, optionally followed by a query. The
 * absolute form (`https://host/path`), which RFC 9112 3.2.2 says servers must accept, is read by its path.
 */
export function isPath(url: string | undefined, path: string): boolean {
  if (url === undefined) return false;
  if (url === path) return true;
  if (url.charCodeAt(0) !== SLASH) return isPath(absoluteFormPath(url), path);
  return url.length > path.length && url.charCodeAt(path.length) === QUESTION_MARK && url.startsWith(path);
}

const SLASH = 0x2f;
const QUESTION_MARK = 0x3f;

function absoluteFormPath(url: string): string | undefined {
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
function rawHeader(raw: string[], lowerName: string): string | undefined {
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
