/**
 * The distribution API: partners' federated bundles for the agents and SPIRE servers of this trust domain,
 * served from the in-memory bundle cache (never the store, except for history).
 *
 *   GET /v1/bundles                               SPIFFE Bundle Map of every served trust domain
 *   GET /v1/bundles/watch                         Server-Sent Events of changes, resumable with Last-Event-ID
 *   GET /v1/bundles/:trustDomain?format=&wait=    one bundle as spiffe (default), jwks or pem; long-poll watch
 *   GET /v1/bundles/:trustDomain/history?limit=   the stored history, newest first
 *
 * Decisions:
 * - Only relationships in state "active" with a cached bundle are served; unknown, pending, suspended and
 *   not-yet-fetched trust domains all get the same 404, so the answer does not tell which one it is.
 * - `authorize` runs first on every route (HEAD included), before any parameter is read, so a caller that
 *   is not allowed learns nothing, not even whether its trust domain name is valid.
 * - ETags are strong. `If-None-Match` uses the weak comparison of RFC 9110 13.1.2 (as the bundle endpoint).
 *   Responses are written with `res.end`, never `res.send`, so express adds no ETag or 304 of its own.
 * - Long-poll: with `wait` and an `If-None-Match` that matches, the request is held until the served
 *   representation's tag differs from the one matched (a change that leaves this representation's bytes
 *   the same does not release it), the trust domain stops being served (404), or the wait ends (304).
 * - `/v1/bundles/watch` is routed before `/:trustDomain`, so a trust domain named "watch" (a valid name)
 *   has no single-bundle route; its bundle is in the map and its changes in the stream.
 * - SSE events: `event: change`, `id` a per-process counter, data `{"trust_domain","sequence","digest"}`
 *   (sequence a decimal string, both null when the trust domain stopped being served). A `Last-Event-ID`
 *   that cannot be resumed from gets `event: reset` (refetch `/v1/bundles`) carrying the current id.
 *   A client that does not read its stream is disconnected once 1 MiB is buffered for it; it reconnects
 *   with its Last-Event-ID and resumes.
 * - Per-caller view of the all-bundles routes: when `authorize` leaves a trust domain predicate in
 *   `res.locals.allowedTrustDomains` (what the consumer authentication does; see `allowedTrustDomainsOf`),
 *   `/v1/bundles` holds only the trust domains it accepts (so the ETag, a digest of the bytes, is that of the
 *   caller's map) and `/v1/bundles/watch` sends only their change events, live and replayed; event ids stay
 *   the global ones (a caller sees gaps) and a reset is sent as to anyone. Without a predicate nothing is
 *   shown: an authorize that forgets to say what a caller may read must expose nothing rather than every
 *   partner (an allow-all authorize sets `() => true`). The single-bundle routes need no filter:
 *   `authorize` has already refused a trust domain the caller may not read.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from "express";
import type { Clock } from "../../clock.js";
import { ifNoneMatchMatches } from "../../endpoint/handler.js";
import type { BundleCache } from "../../federation/bundle-cache.js";
import type { RelationshipRegistry } from "../../federation/registry.js";
import { type Logger, silentLogger } from "../../logging.js";
import type { FederationStore, HistoryEntry } from "../../store/federation-state.js";
import { allowedTrustDomainsOf } from "../auth/consumer-auth.js";
import { type ChangeEvent, createChangeFeed } from "./change-feed.js";
import { ApiError, problemOf, sendProblem, trustDomainParam } from "./problem.js";
import {
  type BundleFormat,
  bundleMap,
  isBundleFormat,
  type Representation,
  representation,
} from "./representations.js";

export const DISTRIBUTION_ROUTES = [
  ["GET", "/v1/bundles"],
  ["GET", "/v1/bundles/watch"],
  ["GET", "/v1/bundles/:trustDomain"],
  ["GET", "/v1/bundles/:trustDomain/history"],
] as const satisfies ReadonlyArray<readonly [string, string]>;

export const DEFAULT_HISTORY_LIMIT = 20;
export const MAX_HISTORY_LIMIT = 100;
export const MAX_WAIT_MS = 60_000;
export const DEFAULT_HEARTBEAT_MS = 15_000;
export const DEFAULT_EVENT_CAPACITY = 1000;
const MAX_STREAM_BUFFER_BYTES = 1024 * 1024;

export interface DistributionRouterOptions {
  readonly cache: BundleCache;
  readonly registry: RelationshipRegistry;
  readonly store: Pick<FederationStore, "getHistory">;
  /** Runs first on every route; the consumer authentication plugs in here. */
  readonly authorize: RequestHandler;
  readonly clock: Clock;
  readonly logger?: Logger;
  /** SSE heartbeat comment interval (default 15 s). */
  readonly heartbeatMs?: number;
  /** How many change events are kept for Last-Event-ID resumption (default 1000). */
  readonly eventCapacity?: number;
}

export interface DistributionActivity {
  readonly longPolls: number;
  readonly streams: number;
}

export interface DistributionRouter extends Router {
  /** Requests held open now (long-polls and SSE streams). */
  activity(): DistributionActivity;
  /** Answers every held long-poll (304), ends every stream and stops listening to the cache and registry. */
  close(): void;
}

export function createDistributionRouter(options: DistributionRouterOptions): DistributionRouter {
  const { cache, registry, store, authorize, clock } = options;
  const logger = options.logger ?? silentLogger();
  const heartbeatMs = options.heartbeatMs ?? DEFAULT_HEARTBEAT_MS;
  const feed = createChangeFeed({ cache, registry, capacity: options.eventCapacity ?? DEFAULT_EVENT_CAPACITY, logger });
  /** Each held request's "finish now" function. */
  const longPolls = new Set<() => void>();
  const streams = new Set<() => void>();

  const router = express.Router({ caseSensitive: true, strict: false });

  router.get("/v1/bundles", authorize, (req, res) => {
    const visible = allowedTrustDomainsOf(res);
    const served = feed.allServed();
    const map = bundleMap(served.filter((entry) => visible(entry.trustDomain)));
    sendRepresentation(req, res, map);
  });

  router.get("/v1/bundles/watch", authorize, (req, res) => {
    const header = req.headers["last-event-id"];
    const resumeFrom = typeof header === "string" ? header.trim() : undefined;
    const visible = allowedTrustDomainsOf(res);
    const shown = (event: ChangeEvent) => visible(event.trustDomain);
    res.status(200);
    res.setHeader("Content-Type", "text/event-stream; charset=utf-8");
    res.setHeader("Cache-Control", "no-cache");
    res.setHeader("X-Accel-Buffering", "no");
    res.setHeader("X-Content-Type-Options", "nosniff");
    if (req.method === "HEAD") {
      res.end();
      return;
    }
    res.flushHeaders();
    req.socket.setNoDelay(true);

    let ended = false;
    const write = (text: string) => {
      if (ended || res.destroyed || res.writableEnded) return;
      res.write(text);
      if (res.writableLength > MAX_STREAM_BUFFER_BYTES) {
        logger.warn({ buffered: res.writableLength }, "SSE client not reading; disconnecting it");
        finish();
      }
    };
    const finish = () => {
      if (ended) return;
      ended = true;
      clearInterval(heartbeat);
      unsubscribe();
      streams.delete(finish);
      res.end();
    };

    if (resumeFrom !== undefined) {
      // An id this process cannot have given (not a number) can only be answered with a reset.
      const from = /^\d{1,15}$/.test(resumeFrom) ? Number(resumeFrom) : -1;
      const resumed = feed.resume(from);
      if (resumed.kind === "reset") write(resetEvent(resumed.lastId));
      else for (const event of resumed.events) if (shown(event)) write(changeEvent(event));
    } else {
      write(": connected\n\n");
    }
    const unsubscribe = feed.subscribe((event) => {
      if (shown(event)) write(changeEvent(event));
    });
    const heartbeat = setInterval(() => write(": heartbeat\n\n"), heartbeatMs);
    streams.add(finish);
    res.on("close", finish);
    logger.debug({ resumeFrom }, "SSE watch opened");
  });

  router.get("/v1/bundles/:trustDomain", authorize, (req, res) => {
    const trustDomain = trustDomainParam(req.params.trustDomain);
    const format = formatParam(req);
    const waitMs = waitParam(req);
    const entry = feed.served(trustDomain);
    if (!entry) throw notServed(trustDomain);
    const current = representation(entry, format);
    const ifNoneMatch = req.headers["if-none-match"];
    if (ifNoneMatch === undefined || !ifNoneMatchMatches(ifNoneMatch, current.etag)) {
      sendRepresentation(req, res, current);
      return;
    }
    if (waitMs === 0) {
      sendNotModified(res, current.etag);
      return;
    }

    const started = clock.now().getTime();
    let done = false;
    const finish = (answer: () => void) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      unsubscribe();
      longPolls.delete(release);
      logger.debug({ trustDomain, waitedMs: clock.now().getTime() - started }, "long-poll released");
      if (!res.writableEnded && !res.destroyed) answer();
    };
    const release = () => finish(() => sendNotModified(res, current.etag));
    const unsubscribe = feed.subscribe((event) => {
      if (event.trustDomain !== trustDomain) return;
      const now = feed.served(trustDomain);
      if (!now) {
        finish(() => sendProblem(res, problemOf(notServed(trustDomain))));
        return;
      }
      const next = representation(now, format);
      if (next.etag === current.etag) return;
      finish(() => sendRepresentation(req, res, next));
    });
    const timer = setTimeout(release, waitMs);
    longPolls.add(release);
    res.on("close", () => finish(() => {}));
  });

  router.get("/v1/bundles/:trustDomain/history", authorize, async (req, res) => {
    const trustDomain = trustDomainParam(req.params.trustDomain);
    const limit = limitParam(req);
    // History is told for active relationships only, bundle or not (a new one may not have one yet).
    if (registry.get(trustDomain)?.state !== "active") throw notServed(trustDomain);
    const history = await store.getHistory(trustDomain, limit);
    const body = Buffer.from(JSON.stringify(history.map(historyJson)), "utf8");
    res.status(200);
    res.setHeader("Content-Type", "application/json");
    res.setHeader("Content-Length", body.length);
    res.setHeader("Cache-Control", "no-cache");
    res.setHeader("X-Content-Type-Options", "nosniff");
    res.end(body);
  });

  router.use((error: unknown, _req: Request, res: Response, next: NextFunction) => {
    if (res.headersSent) {
      next(error);
      return;
    }
    const problem = problemOf(error);
    if (problem.status >= 500) {
      logger.error(
        { err: error instanceof Error ? error.message : String(error), code: problem.code },
        "request failed",
      );
    }
    sendProblem(res, problem);
  });

  return Object.assign(router, {
    activity: (): DistributionActivity => ({ longPolls: longPolls.size, streams: streams.size }),
    close() {
      for (const release of [...longPolls]) release();
      for (const finish of [...streams]) finish();
      feed.close();
    },
  });
}

function sendRepresentation(req: Request, res: Response, served: Representation): void {
  const ifNoneMatch = req.headers["if-none-match"];
  if (ifNoneMatch !== undefined && ifNoneMatchMatches(ifNoneMatch, served.etag)) {
    sendNotModified(res, served.etag);
    return;
  }
  res.status(200);
  res.setHeader("Content-Type", served.contentType);
  res.setHeader("Content-Length", served.body.length);
  res.setHeader("ETag", served.etag);
  res.setHeader("Cache-Control", "no-cache");
  res.setHeader("X-Content-Type-Options", "nosniff");
  res.end(served.body);
}

/** RFC 9110 15.4.5: a 304 repeats ETag and Cache-Control, and no content headers. */
function sendNotModified(res: Response, etag: string): void {
  res.status(304);
  res.setHeader("ETag", etag);
  res.setHeader("Cache-Control", "no-cache");
  res.end();
}

function changeEvent(event: ChangeEvent): string {
  const data = JSON.stringify({
    trust_domain: event.trustDomain,
    sequence: event.sequence ?? null,
    digest: event.digest ?? null,
  });
  return `id: ${event.id}\nevent: change\ndata: ${data}\n\n`;
}

function resetEvent(lastId: number): string {
  return `id: ${lastId}\nevent: reset\ndata: ${JSON.stringify({ last_event_id: lastId })}\n\n`;
}

function historyJson(entry: HistoryEntry) {
  return {
    at: new Date(entry.at).toISOString(),
    event: entry.event,
    digest: entry.digest,
    sequence: entry.sequence ?? null,
    reasons: entry.reasons,
    added: entry.added,
    removed: entry.removed,
  };
}

function notServed(trustDomain: string): ApiError {
  return new ApiError(
    404,
    "ERR_API_BUNDLE_NOT_FOUND",
    "Bundle not found",
    `no bundle is served for trust domain ${trustDomain}`,
  );
}

/** The one string value of a query parameter; repeating it is an error, not a choice. */
function queryParam(req: Request, name: string, code: string): string | undefined {
  const value = req.query[name];
  if (value === undefined) return undefined;
  if (typeof value !== "string") {
    throw new ApiError(400, code, "Invalid query parameter", `query parameter ${name} must be given once`);
  }
  return value;
}

function formatParam(req: Request): BundleFormat {
  const value = queryParam(req, "format", "ERR_API_BAD_FORMAT") ?? "spiffe";
  if (!isBundleFormat(value)) {
    throw new ApiError(
      400,
      "ERR_API_BAD_FORMAT",
      "Unknown bundle format",
      `format must be spiffe, jwks or pem, got ${JSON.stringify(value.slice(0, 40))}`,
    );
  }
  return value;
}

/** `wait` as ms: `Ns` or `Nms`, at most 60 s; 0 when absent. */
export function parseWait(value: string): number | undefined {
  const match = /^(\d{1,9})(ms|s)$/.exec(value);
  if (!match) return undefined;
  const ms = Number(match[1]) * (match[2] === "s" ? 1000 : 1);
  return ms <= MAX_WAIT_MS ? ms : undefined;
}

function waitParam(req: Request): number {
  const value = queryParam(req, "wait", "ERR_API_BAD_WAIT");
  if (value === undefined) return 0;
  const ms = parseWait(value);
  if (ms === undefined) {
    throw new ApiError(
      400,
      "ERR_API_BAD_WAIT",
      "Invalid wait",
      `wait must be a whole number of seconds or milliseconds ("30s", "500ms"), at most 60s; got ${JSON.stringify(value.slice(0, 40))}`,
    );
  }
  return ms;
}

function limitParam(req: Request): number {
  const value = queryParam(req, "limit", "ERR_API_BAD_LIMIT");
  if (value === undefined) return DEFAULT_HISTORY_LIMIT;
  const limit = /^\d{1,4}$/.test(value) ? Number(value) : Number.NaN;
  if (!(limit >= 1 && limit <= MAX_HISTORY_LIMIT)) {
    throw new ApiError(
      400,
      "ERR_API_BAD_LIMIT",
      "Invalid limit",
      `limit must be a whole number from 1 to ${MAX_HISTORY_LIMIT}; got ${JSON.stringify(value.slice(0, 40))}`,
    );
  }
  return limit;
}
