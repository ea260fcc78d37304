/**
 * The one error base class of bundlegate.
 *
 * Every error that crosses a module boundary carries a stable `code` (tests, logs, metrics and
 * API clients match on it, never on message text), the original error in `cause`, and the HTTP
 * `status` and `expose` flag the API needs to turn it into problem+json without guessing.
 * Foreign errors (undici, ioredis, x509 parsers) are wrapped into one of these at the module edge.
 *
 * This file imports nothing, so even the pure `spiffe/` and `policy/` layers may use it.
 */

export interface BundlegateErrorOptions {
  cause?: unknown;
  /** HTTP status the API answers with when this error reaches a request handler. */
  status?: number;
  /** Whether the message may be shown to an API caller (false hides internals behind a generic text). */
  expose?: boolean;
  /** Machine-readable facts about the failure (a field path, an index, a limit); never key material. */
  details?: Readonly<Record<string, unknown>>;
}

export class BundlegateError<Code extends string = string> extends Error {
  readonly code: Code;
  readonly status: number;
  readonly expose: boolean;
  readonly details: Readonly<Record<string, unknown>>;

  constructor(code: Code, message: string, options: BundlegateErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.status = options.status ?? 500;
    this.expose = options.expose ?? this.status < 500;
    this.details = Object.freeze({ ...(options.details ?? {}) });
  }
}

export function isBundlegateError(value: unknown): value is BundlegateError {
  return value instanceof BundlegateError;
}
