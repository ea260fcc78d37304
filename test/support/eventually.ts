/**
 * The one way tests wait for what they cannot await: poll a probe until it answers. The deadline only turns
 * a wait that will never end into a failure naming what was awaited; no assertion depends on how long it took.
 */

export interface EventuallyOptions {
  /** What is awaited, named in the failure. */
  readonly what?: string;
  /** Default 10 000 ms. */
  readonly timeoutMs?: number;
  /** Pause between probes; default 25 ms. */
  readonly intervalMs?: number;
  /** What was last seen, added to the failure. */
  readonly explain?: () => Promise<string> | string;
}

type Pending = undefined | false;

/**
 * Polls `probe` until it returns something other than `undefined` or `false`, and returns that. A probe
 * that throws fails the wait at once.
 */
export async function eventually<T>(
  probe: () => T | Promise<T>,
  options: EventuallyOptions = {},
): Promise<Exclude<T, Pending>> {
  const { what = "the condition", timeoutMs = 10_000, intervalMs = 25, explain } = options;
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value as Exclude<T, Pending>;
    if (Date.now() > deadline) {
      const seen = explain === undefined ? "" : `\n${await explain()}`;
      throw new Error(`${what} did not happen within ${timeoutMs} ms${seen}`);
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
