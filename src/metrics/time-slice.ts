/**
 * Cooperative time slicing for long synchronous work on the event loop the bundle endpoint shares: the
 * work asks `due()` now and then (cheap), and when its slice has run past the budget it awaits `pause()`,
 * which lets timers and I/O (a waiting request) run before it goes on.
 */
import { setImmediate as immediate } from "node:timers/promises";

/** Default slice: long enough that the pauses cost little, short enough that nobody notices the wait. */
export const SLICE_MS = 8;

export interface TimeSlicer {
  /** True once the current slice has used up its budget. */
  due(): boolean;
  /** Yields to the event loop (a setImmediate: after pending I/O) and starts a new slice. */
  pause(): Promise<void>;
}

export function createTimeSlicer(budgetMs = SLICE_MS): TimeSlicer {
  let sliceStart = performance.now();
  return {
    due: () => performance.now() - sliceStart >= budgetMs,
    async pause() {
      await immediate();
      sliceStart = performance.now();
    },
  };
}
