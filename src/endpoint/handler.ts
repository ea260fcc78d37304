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

import {
  ALLOWED_METHODS,
  absoluteFormPath,
  answerPrepared,
  ifNoneMatchMatches,
  NOT_FOUND,
  type PreparedBundle,
  prepareBundleResponse,
  timedHandler,
} from "./prepared-response.js";

// Re-exported: other modules (the distribution API, tests) read these from here.
export { ALLOWED_METHODS, ifNoneMatchMatches };

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

/** `min(cacheMaxAgeSeconds ?? hint, hint)`, in whole non-negative seconds. */
export function cacheMaxAge(refreshHintSeconds: number, cacheMaxAgeSeconds: number | undefined): number {
  const hint = wholeSeconds(refreshHintSeconds);
  return cacheMaxAgeSeconds === undefined ? hint : Math.min(wholeSeconds(cacheMaxAgeSeconds), hint);
}

function wholeSeconds(value: number): number {
  return Number.isFinite(value) && value > 0 ? Math.floor(value) : 0;
}

function prepare(served: ServedBundle, cacheMaxAgeSeconds: number | undefined): PreparedBundle {
  return prepareBundleResponse(served.bytes, served.etag, cacheMaxAge(served.refreshHintSeconds, cacheMaxAgeSeconds));
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
    // One read, so a bundle change during this request cannot mix two bundles' headers and body.
    return answerPrepared(req, res, prepared);
  };

  const handler = timedHandler(respond, onResponse);
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
