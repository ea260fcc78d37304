/** Small builders for bundle documents in tests. */
import { InvalidBundleError } from "../../src/spiffe/errors.js";

export function bundleDoc(keys: unknown, extra: Record<string, unknown> = {}): string {
  return JSON.stringify({ keys, ...extra });
}

/** Runs `fn` and returns the InvalidBundleError it throws; fails the test if it throws anything else or nothing. */
export function rejection(fn: () => unknown): InvalidBundleError {
  try {
    fn();
  } catch (error) {
    if (error instanceof InvalidBundleError) return error;
    throw new Error(`expected an InvalidBundleError, got ${String(error)}`, { cause: error });
  }
  throw new Error("expected the input to be rejected, but it was accepted");
}
