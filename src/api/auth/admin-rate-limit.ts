/**
 * Rate limiting of the admin API with express-rate-limit: a fixed window of `windowMs` per key, `max`
 * requests in it, then 429 problem+json ERR_ADMIN_RATE_LIMITED with `Retry-After` (seconds to the end of the
 * window) and the IETF draft-8 `RateLimit` / `RateLimit-Policy` headers (no legacy X-RateLimit-*).
 *
 * The key is the authenticated admin caller (`res.locals.adminCaller.id`) when authentication has run before
 * the limiter, else the client address (`req.ip`, so the app's `trust proxy` setting decides it; IPv6
 * grouped by /56 as express-rate-limit advises). The two kinds of key are prefixed apart, so no address can
 * share a bucket with a caller. Mount one limiter before authentication (per address: bounds guessing and
 * JWKS lookups by callers with no valid token) and another after it (per caller: one busy caller cannot use
 * up a shared address's budget); each limiter has its own counters.
 *
 * Counters live in this process, in a store that reads the injected clock and keeps no timers (expired
 * windows are dropped as it goes), so nothing needs stopping.
 */
import type { Request, Response } from "express";
import {
  type ClientRateLimitInfo,
  ipKeyGenerator,
  type RateLimitRequestHandler,
  rateLimit,
  type Store,
} from "express-rate-limit";
import { type Clock, systemClock } from "../../clock.js";
import type { Logger } from "../../logging.js";
import { sendProblem } from "../distribution/problem.js";
import { AdminAuthConfigError } from "./admin-errors.js";

export interface AdminRateLimitOptions {
  readonly windowMs: number;
  /** Requests allowed per key per window; the next one is answered 429. */
  readonly max: number;
  readonly clock?: Clock;
  /** Names the limit in the RateLimit headers; default "admin". */
  readonly name?: string;
  /** One line per key and window that goes over the limit; express-rate-limit's own warnings too. */
  readonly logger?: Logger;
}

/** The bucket a request counts against: `caller:<id>` after authentication, `ip:<address>` before. */
export function adminRateLimitKey(req: Request, res: Response): string {
  const caller = (res.locals.adminCaller as { id?: unknown } | undefined)?.id;
  if (typeof caller === "string") return `caller:${caller}`;
  return `ip:${req.ip === undefined ? "unknown" : ipKeyGenerator(req.ip)}`;
}

export function createAdminRateLimit(options: AdminRateLimitOptions): RateLimitRequestHandler {
  const { windowMs, max, logger } = options;
  if (!Number.isInteger(windowMs) || windowMs < 1000) {
    throw new AdminAuthConfigError("rate limit windowMs must be an integer of at least 1000");
  }
  if (!Number.isInteger(max) || max < 1) throw new AdminAuthConfigError("rate limit max must be a positive integer");
  const name = options.name ?? "admin";
  return rateLimit({
    windowMs,
    limit: max,
    standardHeaders: "draft-8",
    legacyHeaders: false,
    identifier: name,
    store: new ClockWindowStore(options.clock ?? systemClock, windowMs),
    keyGenerator: adminRateLimitKey,
    handler: (req, res) => {
      const info = (req as Request & { rateLimit?: { used: number; key: string } }).rateLimit;
      // Once per key and window, so a flood does not flood the log too.
      if (info !== undefined && info.used === max + 1) {
        logger?.info(
          { code: "ERR_ADMIN_RATE_LIMITED", key: info.key, limit: name, method: req.method, path: req.path },
          "admin rate limit reached",
        );
      }
      sendProblem(res, {
        status: 429,
        code: "ERR_ADMIN_RATE_LIMITED",
        title: "Too Many Requests",
        detail: "too many admin API requests; retry after the number of seconds in Retry-After",
      });
    },
    ...(logger === undefined
      ? {}
      : {
          logger: {
            error: (error: unknown, message?: string) => logger.error({ err: error }, message ?? "rate limit error"),
            warn: (error: unknown, message?: string) => logger.warn({ err: error }, message ?? "rate limit warning"),
          },
        }),
  });
}

interface Window {
  hits: number;
  /** On the injected clock. */
  resetAt: number;
}

/** Fixed windows per key on the injected clock. */
class ClockWindowStore implements Store {
  readonly localKeys = true;
  private readonly windows = new Map<string, Window>();
  private nextSweep = 0;

  constructor(
    private readonly clock: Clock,
    private readonly windowMs: number,
  ) {}

  get(key: string): ClientRateLimitInfo | undefined {
    const now = this.clock.now().getTime();
    const window = this.windows.get(key);
    if (window === undefined || window.resetAt <= now) return undefined;
    return { totalHits: window.hits, resetTime: this.resetTime(window, now) };
  }

  increment(key: string): ClientRateLimitInfo {
    const now = this.clock.now().getTime();
    this.sweep(now);
    let window = this.windows.get(key);
    if (window === undefined || window.resetAt <= now) {
      window = { hits: 0, resetAt: now + this.windowMs };
      this.windows.set(key, window);
    }
    window.hits += 1;
    return { totalHits: window.hits, resetTime: this.resetTime(window, now) };
  }

  decrement(key: string): void {
    const window = this.windows.get(key);
    if (window !== undefined && window.hits > 0) window.hits -= 1;
  }

  resetKey(key: string): void {
    this.windows.delete(key);
  }

  resetAll(): void {
    this.windows.clear();
  }

  /**
   * express-rate-limit turns `resetTime` into Retry-After and the RateLimit reset by subtracting
   * `Date.now()`, so the end of the window is handed over on the system timeline: the same moment
   * whenever the injected clock is the system clock, the right number of seconds whatever it is.
   */
  private resetTime(window: Window, now: number): Date {
    return new Date(Date.now() + (window.resetAt - now));
  }

  /** Drops ended windows, at most once per window length, so idle keys do not accumulate. */
  private sweep(now: number): void {
    if (now < this.nextSweep) return;
    for (const [key, window] of this.windows) if (window.resetAt <= now) this.windows.delete(key);
    this.nextSweep = now + this.windowMs;
  }
}
