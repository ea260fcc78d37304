/**
 * The relay's request handler: `GET /federation/{trustDomain}` answers with a partner's canonical bundle,
 * as a SPIFFE bundle endpoint would, so an internal SPIRE server can point `federates_with` at the gateway
 * (issue 5). The bytes are the stored canonical JSON (`stored.json`), never the partner's own bytes.
 *
 * Like the public bundle endpoint (src/endpoint/handler.ts), everything a response needs (body, ETag,
 * header list) is prepared once per cache change, never per request; a request costs a path split, a trust
 * domain check, a map lookup, the `isServed` call and one `writeHead` + `end`.
 *
 * Decisions:
 * - The target is `<pathPrefix><trustDomain>` exactly, optionally followed by a query, which never changes
 *   what is served. The absolute form (RFC 9112 3.2.2) is read by its path. The trust domain must be a valid
 *   SPIFFE trust domain name as written: no percent-decoding, no case folding, no trailing slash.
 * - Whether a bundle is served is asked per request (`isServed`: the relay is enabled for that trust domain
 *   and its relationship is active), because a relationship can be suspended without its bundle changing.
 * - A path that names no served bundle (wrong prefix, invalid or unknown trust domain, relay not enabled for
 *   it, relationship not active, no bundle cached) is 404 whatever the method: the resource does not exist,
 *   so no method is allowed on it. The same bodyless 404 for every case, so a caller cannot tell an
 *   unknown partner from one the relay is not enabled for.
 * - On a served bundle, methods other than GET and HEAD get 405 with `Allow: GET, HEAD`.
 * - Nothing from the request is ever written into a response header or a log line.
 * - ETag: the stored digest (hex SHA-256 of the canonical JSON), quoted: strong, and equal to the tag the
 *   public endpoint would give the same bytes. `If-None-Match` uses the weak comparison of RFC 9110 13.1.2
 *   (`ifNoneMatchMatches`, shared with the endpoint).
 * - `Cache-Control: public, max-age=min(refresh hint, 300)`; 300 s when the bundle carries no hint. A relay
 *   must not let a cache hold a bundle longer than the partner asked for, and 5 minutes bounds how long a
 *   revocation the gateway has accepted can go unseen by a consumer that honours the header.
 * - No client authentication: the federation spec forbids it on bundle endpoints.
 */
import { createHash } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { cacheMaxAge } from "../endpoint/handler.js";
import {
  absoluteFormPath,
  answerPrepared,
  type HeaderList,
  NOSNIFF,
  NOT_FOUND,
  type PreparedBundle,
  prepareBundleResponse,
  timedHandler,
} from "../endpoint/prepared-response.js";
import type { BundleCache, CachedBundle } from "../federation/bundle-cache.js";
import { isTrustDomain, MAX_TRUST_DOMAIN_LENGTH, type TrustDomain } from "../spiffe/id.js";

export const DEFAULT_RELAY_PATH_PREFIX = "/federation/";
/** The most a relayed bundle may be cached for, whatever its refresh hint (and the default when it has none). */
export const RELAY_MAX_AGE_CAP_SECONDS = 300;

export interface RelayHandlerOptions {
  readonly cache: BundleCache;
  /**
   * Whether the relay serves this trust domain now: enabled for it in the configuration and its relationship
   * active. Called per request with a validated trust domain; must be cheap and must not throw.
   */
  readonly isServed: (trustDomain: TrustDomain) => boolean;
  /** Origin-form prefix, starting and ending with "/". Default `/federation/`. */
  readonly pathPrefix?: string | undefined;
  /** Called after each response is handed to the socket, with the `process.hrtime.bigint()` of its arrival. */
  readonly onResponse?: ((statusCode: number, startedAtNs: bigint) => void) | undefined;
}

export interface RelayRequestHandler {
  (req: IncomingMessage, res: ServerResponse): void;
  /** Stops following cache changes; the handler keeps serving what it last prepared. */
  dispose(): void;
}

const INTERNAL_ERROR: HeaderList = ["Content-Length", "0", "Cache-Control", "no-store", ...NOSNIFF];
const HEX_SHA256 = /^[0-9a-f]{64}$/;

/** The max-age a relayed bundle is served with: its refresh hint, at most 300 s; 300 s without one. */
export function relayMaxAge(entry: CachedBundle): number {
  const hint = entry.bundle.refreshHintSeconds ?? entry.stored.refreshHintSeconds ?? RELAY_MAX_AGE_CAP_SECONDS;
  return cacheMaxAge(hint, RELAY_MAX_AGE_CAP_SECONDS);
}

function prepare(entry: CachedBundle): PreparedBundle {
  const bytes = Buffer.from(entry.stored.json, "utf8");
  // The store writes a hex digest; anything else is recomputed rather than written into a header.
  const digest = HEX_SHA256.test(entry.stored.digest)
    ? entry.stored.digest
    : createHash("sha256").update(bytes).digest("hex");
  return prepareBundleResponse(bytes, `"${digest}"`, relayMaxAge(entry));
}

export function createRelayHandler(options: RelayHandlerOptions): RelayRequestHandler {
  const { cache, isServed, onResponse } = options;
  const prefix = options.pathPrefix ?? DEFAULT_RELAY_PATH_PREFIX;
  if (!prefix.startsWith("/") || !prefix.endsWith("/")) {
    throw new TypeError(`relay path prefix must start and end with "/", got ${JSON.stringify(prefix)}`);
  }

  const prepared = new Map<TrustDomain, PreparedBundle>();
  for (const entry of cache.entries()) prepared.set(entry.trustDomain, prepare(entry));
  const unsubscribe = cache.subscribe((change) => {
    if (change.current === undefined) prepared.delete(change.trustDomain);
    else prepared.set(change.trustDomain, prepare(change.current));
  });

  const respond = (req: IncomingMessage, res: ServerResponse): number => {
    const trustDomain = trustDomainOf(req.url, prefix);
    // One read, so a cache change during this request cannot mix two bundles' headers and body.
    const current = trustDomain === undefined ? undefined : prepared.get(trustDomain);
    let served: boolean;
    try {
      served = current !== undefined && isServed(trustDomain!);
    } catch {
      // A broken predicate must neither crash the process nor serve a bundle it could not vouch for.
      res.writeHead(500, INTERNAL_ERROR).end();
      return 500;
    }
    if (!served || current === undefined) {
      res.writeHead(404, NOT_FOUND).end();
      return 404;
    }
    return answerPrepared(req, res, current);
  };

  const handler = timedHandler(respond, onResponse);
  return Object.assign(handler, { dispose: unsubscribe });
}

/**
 * The trust domain a request target names under `prefix`, or undefined when it names none: the segment
 * after the prefix, up to a `?`, if it is a valid trust domain name as written.
 */
export function trustDomainOf(url: string | undefined, prefix: string): TrustDomain | undefined {
  if (url === undefined) return undefined;
  const path = url.charCodeAt(0) === SLASH ? url : absoluteFormPath(url);
  if (path === undefined || !path.startsWith(prefix)) return undefined;
  const query = path.indexOf("?", prefix.length);
  const end = query < 0 ? path.length : query;
  // Bounded before validation: a long hostile target costs one length check.
  if (end - prefix.length > MAX_TRUST_DOMAIN_LENGTH) return undefined;
  const name = path.slice(prefix.length, end);
  return isTrustDomain(name) ? name : undefined;
}

const SLASH = 0x2f;
