import { BundlegateError, type BundlegateErrorOptions } from "../errors.js";
import { MAX_SEQUENCE } from "../spiffe/bundle.js";
import type { FetchOutcome, StatusUpdate } from "./federation-state.js";

export type StoreErrorCode =
  | "ERR_STORE_UNAVAILABLE"
  | "ERR_STORE_TIMEOUT"
  | "ERR_STORE_SCRIPT"
  | "ERR_STORE_SNAPSHOT_UNREADABLE"
  | "ERR_STORE_SNAPSHOT_WRITE"
  | "ERR_STORE_CORRUPT"
  | "ERR_STORE_BAD_ARGUMENT"
  | "ERR_SEQUENCE_EXHAUSTED";

export class StoreError extends BundlegateError<StoreErrorCode> {
  constructor(code: StoreErrorCode, message: string, options: BundlegateErrorOptions = {}) {
    super(code, message, { status: 503, expose: false, ...options });
  }
}

/*
 * Argument checks both backends run before writing, so a bad value fails the same way on each and is
 * never stored: Redis would keep it and fail every later read, and the embedded store would write a
 * snapshot it then refuses to start from.
 */

const DECIMAL = /^(0|[1-9][0-9]*)$/;
const HEX_SHA256 = /^[0-9a-f]{64}$/;

/** `got` is shown in the message; leave it out where the value would say nothing (an object) or be long. */
export function badArgument(what: string, expected: string, got?: { readonly value: unknown }): StoreError {
  const message = `${what} must be ${expected}${got ? `, got ${String(got.value)}` : ""}`;
  return new StoreError("ERR_STORE_BAD_ARGUMENT", message, { status: 500, details: { argument: what } });
}

export function isSequence(value: unknown): value is string {
  return typeof value === "string" && DECIMAL.test(value) && value.length <= 20 && BigInt(value) <= MAX_SEQUENCE;
}

export function isDigest(value: unknown): value is string {
  return typeof value === "string" && HEX_SHA256.test(value);
}

export function isWholeNumber(value: unknown): value is number {
  return typeof value === "number" && Number.isSafeInteger(value) && value >= 0;
}

export function checkSequence(what: string, value: string | undefined): void {
  if (value !== undefined && !isSequence(value)) throw badArgument(what, "a decimal integer in 0..2^64-1", { value });
}

export function checkDigest(what: string, value: string): void {
  if (!isDigest(value)) throw badArgument(what, "a lowercase hex SHA-256", { value });
}

/** `min` 1 for counts and TTLs, 0 for fences and refresh hints. */
export function checkWholeNumber(what: string, value: number, min = 0): void {
  if (!isWholeNumber(value) || value < min) throw badArgument(what, `an integer >= ${min}`, { value });
}

/** A moment in ms; a fraction (a jittered delay added to a time) is dropped rather than refused. */
export function wholeMs(what: string, value: number): number {
  if (typeof value !== "number" || !Number.isFinite(value) || value < 0 || value > Number.MAX_SAFE_INTEGER) {
    throw badArgument(what, "a time in ms since the epoch", { value });
  }
  return Math.floor(value);
}

/** Checks a commitFetch call; returns the status with whole-ms times. */
export function checkCommit(
  fence: number,
  outcome: FetchOutcome,
  status: StatusUpdate,
  historyLimit: number,
): StatusUpdate {
  checkWholeNumber("fence", fence);
  checkWholeNumber("historyLimit", historyLimit, 1);
  if (outcome.kind === "accepted") {
    checkDigest("bundle.digest", outcome.bundle.digest);
    checkSequence("bundle.sequence", outcome.bundle.sequence);
    if (outcome.bundle.refreshHintSeconds !== undefined) {
      checkWholeNumber("bundle.refreshHintSeconds", outcome.bundle.refreshHintSeconds);
    }
    checkDigest("history.digest", outcome.history.digest);
    checkSequence("history.sequence", outcome.history.sequence);
  } else if (outcome.kind === "quarantined") {
    checkDigest("quarantine.digest", outcome.quarantine.digest);
    checkSequence("quarantine.sequence", outcome.quarantine.sequence);
    if (outcome.quarantine.refreshHintSeconds !== undefined) {
      checkWholeNumber("quarantine.refreshHintSeconds", outcome.quarantine.refreshHintSeconds);
    }
  }
  return {
    ...status,
    at: wholeMs("status.at", status.at),
    nextRefreshAt: wholeMs("nextRefreshAt", status.nextRefreshAt),
  };
}
