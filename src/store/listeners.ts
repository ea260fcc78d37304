import type { Logger } from "../logging.js";

/** The subscribers of one kind of store event. */
export interface Listeners<T> {
  /** Returns the unsubscribe function; subscribing the same function twice calls it twice. */
  subscribe(listener: (event: T) => void): () => void;
  /** Calls every listener in turn: one that throws is logged, and the others still run. */
  emit(event: T): void;
  clear(): void;
}

/** `what` names the event in the log line, e.g. "bundle change" for "bundle change listener failed". */
export function createListeners<T>(logger: Logger, what: string): Listeners<T> {
  // Each subscription is its own entry, so unsubscribing removes that one even if the function is in twice.
  const entries = new Set<{ listener: (event: T) => void }>();
  return {
    subscribe(listener) {
      const entry = { listener };
      entries.add(entry);
      return () => {
        entries.delete(entry);
      };
    },
    emit(event) {
      for (const { listener } of entries) {
        try {
          listener(event);
        } catch (error) {
          logger.error({ err: (error as Error).message }, `${what} listener failed`);
        }
      }
    },
    clear() {
      entries.clear();
    },
  };
}
