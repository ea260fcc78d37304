/** Errors of the admin API's authentication that are not answers to a caller (those are problem+json). */
import { BundlegateError } from "../../errors.js";

/** An admin auth configuration that cannot work; thrown by the factories, before anything listens. */
export class AdminAuthConfigError extends BundlegateError<"ERR_ADMIN_AUTH_CONFIG_INVALID"> {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("ERR_ADMIN_AUTH_CONFIG_INVALID", message, { status: 500, expose: false, ...options });
  }
}

/**
 * The JWKS a JWT must be checked against could not be had (URL unreachable, timed out, not a 200, not a
 * JWKS, or a key in it unusable). Not the caller's fault: answered with 503, never 401.
 */
export class AdminJwksUnavailableError extends BundlegateError<"ERR_ADMIN_JWKS_UNAVAILABLE"> {
  constructor(message: string, options: { cause?: unknown } = {}) {
    super("ERR_ADMIN_JWKS_UNAVAILABLE", message, { status: 503, expose: false, ...options });
  }
}
