/**
 * What the distribution API serves, and its changes, as consumers see them.
 *
 * A trust domain is *served* when its relationship is active and the cache holds a bundle for it. The feed
 * keeps the served view of every trust domain (digest and sequence, or nothing) and records an event each
 * time that view changes, whether the cache changed (an accepted bundle, a removal) or the registry did
 * (a relationship suspended or activated). So a bundle change of a pending or suspended relationship is
 * never told, and a suspension is told as an event with `digest: null` (stop trusting it).
 *
 * Events carry a per-process increasing id and the last `capacity` of them are kept, so an SSE client can
 * resume with `Last-Event-ID`. Ids restart with the process: an id newer than any this process gave, or
 * older than the oldest one kept, cannot be resumed from (`resume` answers "reset").
 */
import type { BundleCache, CachedBundle } from "../../federation/bundle-cache.js";
import type { RelationshipRegistry } from "../../federation/registry.js";
import type { Logger } from "../../logging.js";
import type { TrustDomain } from "../../spiffe/id.js";

export interface ChangeEvent {
  readonly id: number;
  readonly trustDomain: TrustDomain;
  /** Absent when the trust domain stopped being served. */
  readonly digest?: string;
  readonly sequence?: string;
}

export type ResumeResult =
  | { readonly kind: "events"; readonly events: readonly ChangeEvent[] }
  | { readonly kind: "reset"; readonly lastId: number };

export interface ChangeFeed {
  /** The cached bundle of a served trust domain; undefined when it is unknown, not active or has no bundle. */
  served(trustDomain: string): CachedBundle | undefined;
  /** Every served bundle. */
  allServed(): CachedBundle[];
  /** Called after each recorded event; returns the unsubscribe function. */
  subscribe(listener: (event: ChangeEvent) => void): () => void;
  /** The events after `lastId`, or "reset" when they are no longer (or never were) all kept. */
  resume(lastId: number): ResumeResult;
  /** The id of the newest event (0 before the first). */
  readonly lastId: number;
  close(): void;
}

interface View {
  readonly digest: string;
  readonly sequence: string | undefined;
}

export function createChangeFeed(options: {
  readonly cache: BundleCache;
  readonly registry: RelationshipRegistry;
  readonly capacity: number;
  readonly logger: Logger;
}): ChangeFeed {
  const { cache, registry, capacity, logger } = options;
  const views = new Map<TrustDomain, View>();
  const events: ChangeEvent[] = [];
  const listeners = new Set<(event: ChangeEvent) => void>();
  let lastId = 0;

  const served = (trustDomain: string): CachedBundle | undefined => {
    if (registry.get(trustDomain)?.state !== "active") return undefined;
    return cache.get(trustDomain as TrustDomain);
  };

  const refresh = (trustDomain: TrustDomain) => {
    const entry = served(trustDomain);
    const before = views.get(trustDomain);
    const after: View | undefined = entry
      ? { digest: entry.stored.digest, sequence: entry.stored.sequence }
      : undefined;
    if (before?.digest === after?.digest && before?.sequence === after?.sequence) return;
    if (after) views.set(trustDomain, after);
    else views.delete(trustDomain);
    lastId += 1;
    const event: ChangeEvent = {
      id: lastId,
      trustDomain,
      ...(after ? { digest: after.digest } : {}),
      ...(after?.sequence === undefined ? {} : { sequence: after.sequence }),
    };
    events.push(event);
    if (events.length > capacity) events.splice(0, events.length - capacity);
    for (const listener of [...listeners]) {
      // The feed runs inside the cache's and registry's notifications: a failing consumer must not fail
      // the sync engine's cache.put, nor keep the other consumers from hearing of the change.
      try {
        listener(event);
      } catch (error) {
        logger.error({ err: error instanceof Error ? error.message : String(error) }, "change listener failed");
      }
    }
  };

  // The view at start is the baseline, not a change.
  for (const entry of cache.entries()) {
    if (served(entry.trustDomain)) {
      views.set(entry.trustDomain, { digest: entry.stored.digest, sequence: entry.stored.sequence });
    }
  }

  const stopCache = cache.subscribe((change) => refresh(change.trustDomain));
  const stopRegistry = registry.subscribe(() => {
    const trustDomains = new Set<TrustDomain>(views.keys());
    for (const relationship of registry.list()) trustDomains.add(relationship.trustDomain);
    for (const trustDomain of trustDomains) refresh(trustDomain);
  });

  return {
    served,
    allServed: () => [...cache.entries()].filter((entry) => served(entry.trustDomain) !== undefined),
    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    resume(from) {
      if (from === lastId) return { kind: "events", events: [] };
      const oldest = events[0]?.id;
      if (from > lastId || from < 0 || oldest === undefined || from < oldest - 1) return { kind: "reset", lastId };
      return { kind: "events", events: events.filter((event) => event.id > from) };
    },
    get lastId() {
      return lastId;
    },
    close() {
      stopCache();
      stopRegistry();
      listeners.clear();
    },
  };
}
