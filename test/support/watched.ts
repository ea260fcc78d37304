/** A `Watched` value tests set by hand; listeners hear of each new value synchronously, in subscription order. */
import type { Watched } from "../../src/sources/types.js";

export interface WatchedValue<T> extends Watched<T> {
  set(value: T): void;
  /** How many listeners are subscribed: lets a test see that a component unsubscribed when it stopped. */
  readonly listenerCount: number;
}

export function createWatchedValue<T>(initial: T): WatchedValue<T> {
  let value = initial;
  const listeners = new Set<(value: T) => void>();
  return {
    current: () => value,
    subscribe(listener) {
      // Wrapped so the same function subscribed twice gets two independent subscriptions.
      const entry = (next: T) => listener(next);
      listeners.add(entry);
      return () => {
        listeners.delete(entry);
      };
    },
    set(next) {
      value = next;
      for (const listener of [...listeners]) listener(next);
    },
    get listenerCount() {
      return listeners.size;
    },
  };
}
