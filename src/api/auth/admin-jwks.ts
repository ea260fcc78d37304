/**
 * Where the admin API's JWT verification keys come from: a JWKS file or a JWKS URL (exactly one).
 *
 * - File: read (synchronously, so a bad file stops the start) when created; then re-read when the loaded copy
 *   is older than `maxAgeSeconds`, so a removed key stops working within that time, and on a JWT whose kid
 *   no loaded key matches, at most once per `cooldownSeconds`, so a newly added key works without a restart
 *   and a stream of made-up kids cannot turn into a stream of file reads. Ages are measured on the injected
 *   clock. A re-read that fails (unreadable, not a JWKS) keeps the keys loaded before and logs a warning.
 * - URL: jose's remote JWKS set (its own cache of `maxAgeSeconds`, refetch on an unknown kid at most once per
 *   `cooldownSeconds`, `timeoutMs` per fetch, on the system time), fetched with `createJwksFetch` (CA, byte
 *   cap, no redirects). https only; plain http only to localhost, 127.0.0.1 or [::1], for tests and sidecars.
 *
 * A key set never holds private or symmetric keys: a file with any is refused, and jose refuses such
 * members of a fetched set.
 */
import { readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  type FetchImplementation,
  type JSONWebKeySet,
  type JWTVerifyGetKey,
  errors as joseErrors,
} from "jose";
import type { Clock } from "../../clock.js";
import { jwksUrlProblem } from "../../config/schema.js";
import type { Logger } from "../../logging.js";
import { PRIVATE_KEY_MEMBERS } from "../../spiffe/public-key.js";
import { AdminAuthConfigError, AdminJwksUnavailableError } from "./admin-errors.js";
import { createJwksFetch } from "./jwks-fetch.js";

export interface AdminJwksOptions {
  readonly jwksFile?: string;
  readonly jwksUrl?: string;
  /** PEM CA certificates for an https `jwksUrl` (default: the system roots). */
  readonly jwksCa?: string | Buffer;
  /** Default 300. */
  readonly maxAgeSeconds?: number;
  /** Default 30. */
  readonly cooldownSeconds?: number;
  /** Per fetch of `jwksUrl`; default 5000. */
  readonly timeoutMs?: number;
  /** Replaces the node:https fetch of `jwksUrl` (then `jwksCa` is unused). */
  readonly fetchJwks?: FetchImplementation;
  readonly clock: Clock;
  readonly logger: Logger;
}

/** Largest JWKS accepted, from a file or a URL. */
export const MAX_JWKS_BYTES = 1024 * 1024;

/**
 * A jose key resolver for `jwtVerify`. It throws jose's JWKSNoMatchingKey / JWKSMultipleMatchingKeys when
 * no key, or more than one, fits the JWT's kid and alg, and AdminJwksUnavailableError for anything else.
 */
export function createAdminJwks(options: AdminJwksOptions): JWTVerifyGetKey {
  const maxAgeMs = seconds(options.maxAgeSeconds ?? 300, "jwt.jwksMaxAgeSeconds");
  const cooldownMs = seconds(options.cooldownSeconds ?? 30, "jwt.jwksCooldownSeconds");
  if ((options.jwksFile === undefined) === (options.jwksUrl === undefined)) {
    throw new AdminAuthConfigError("jwt: set exactly one of jwksFile and jwksUrl");
  }
  const resolver =
    options.jwksFile !== undefined
      ? fileJwks(options.jwksFile, maxAgeMs, cooldownMs, options)
      : urlJwks(options.jwksUrl!, maxAgeMs, cooldownMs, options);
  return async (header, token) => {
    try {
      return await resolver(header, token);
    } catch (error) {
      if (error instanceof joseErrors.JWKSNoMatchingKey || error instanceof joseErrors.JWKSMultipleMatchingKeys) {
        throw error;
      }
      throw new AdminJwksUnavailableError(
        `the admin JWKS could not be used: ${error instanceof Error ? error.message : String(error)}`,
        { cause: error },
      );
    }
  };
}

function fileJwks(path: string, maxAgeMs: number, cooldownMs: number, options: AdminJwksOptions): JWTVerifyGetKey {
  const { clock, logger } = options;
  let current: { text: string; keys: JWTVerifyGetKey };
  try {
    const text = readFileSync(path, "utf8");
    current = { text, keys: parseJwks(text) };
  } catch (error) {
    throw new AdminAuthConfigError(`jwt.jwksFile ${path}: ${error instanceof Error ? error.message : String(error)}`, {
      cause: error,
    });
  }
  let readAt = clock.now().getTime();
  let pending: Promise<void> | undefined;

  const reread = async (): Promise<void> => {
    try {
      const text = await readFile(path, "utf8");
      if (text !== current.text) {
        current = { text, keys: parseJwks(text) };
        logger.info({ file: path }, "admin JWKS file reloaded");
      }
    } catch (error) {
      logger.warn(
        { code: "ERR_ADMIN_JWKS_INVALID", file: path, reason: error instanceof Error ? error.message : String(error) },
        "admin JWKS file could not be re-read; keeping the keys loaded before",
      );
    } finally {
      readAt = clock.now().getTime();
    }
  };
  // Concurrent requests share one read.
  const refresh = (): Promise<void> => {
    pending ??= reread().finally(() => {
      pending = undefined;
    });
    return pending;
  };
  const age = () => clock.now().getTime() - readAt;

  return async (header, token) => {
    if (age() >= maxAgeMs) await refresh();
    try {
      return await current.keys(header, token);
    } catch (error) {
      if (!(error instanceof joseErrors.JWKSNoMatchingKey) || age() < cooldownMs) throw error;
      await refresh();
      return current.keys(header, token);
    }
  };
}

function urlJwks(raw: string, maxAgeMs: number, cooldownMs: number, options: AdminJwksOptions): JWTVerifyGetKey {
  const url = checkJwksUrl(raw);
  const timeoutMs = options.timeoutMs ?? 5000;
  if (!Number.isInteger(timeoutMs) || timeoutMs <= 0) {
    throw new AdminAuthConfigError("jwt.jwksTimeoutMs must be a positive integer");
  }
  const fetchImpl =
    options.fetchJwks ??
    createJwksFetch({ maxBytes: MAX_JWKS_BYTES, ...(options.jwksCa === undefined ? {} : { ca: options.jwksCa }) });
  return createRemoteJWKSet(url, {
    timeoutDuration: timeoutMs,
    cooldownDuration: cooldownMs,
    cacheMaxAge: maxAgeMs,
    [customFetch]: fetchImpl,
  });
}

/** https, or plain http to the loopback host only; no user name or password. */
export function checkJwksUrl(raw: string): URL {
  // The config's rule, so a URL the config accepts is one this accepts.
  const problem = jwksUrlProblem(raw);
  if (problem !== undefined) throw new AdminAuthConfigError(`jwt.jwksUrl ${problem}`);
  return new URL(raw);
}

/** A JWKS document as a jose key resolver; throws (a plain Error) naming what is wrong. */
function parseJwks(text: string): JWTVerifyGetKey {
  if (Buffer.byteLength(text, "utf8") > MAX_JWKS_BYTES) throw new Error(`larger than ${MAX_JWKS_BYTES} bytes`);
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch {
    throw new Error("not JSON");
  }
  if (typeof doc !== "object" || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) {
    throw new Error('not a JWKS (a JSON object with a "keys" array)');
  }
  const keys = (doc as { keys: unknown[] }).keys;
  keys.forEach((key, index) => {
    if (typeof key !== "object" || key === null) throw new Error(`keys[${index}] is not an object`);
    const member = PRIVATE_KEY_MEMBERS.find((name) => name in key);
    if (member !== undefined) throw new Error(`keys[${index}] has private or symmetric key member "${member}"`);
  });
  return createLocalJWKSet(doc as JSONWebKeySet);
}

function seconds(value: number, name: string): number {
  if (!Number.isFinite(value) || value < 0) throw new AdminAuthConfigError(`${name} must be a non-negative number`);
  return value * 1000;
}
