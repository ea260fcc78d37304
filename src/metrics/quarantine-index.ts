/**
 * Which relationships have a bundle held in quarantine, kept in memory for the scrape-time gauge.
 *
 * The quarantine lives in the store only (the engine keeps no copy), and reading it per relationship per
 * scrape would be 10k round trips. So it is read once per relationship at start and when one appears, again
 * for every change event of a relationship (events are rare: a bundle accepted, a quarantine held, accepted
 * or discarded), and all of it every `resyncMs` as a net under events lost while a Redis subscriber
 * reconnected. A failed read keeps what was known.
 */
import type { RelationshipRegistry } from "../federation/registry.js";
import type { Logger } from "../logging.js";
import type { TrustDomain } from "../spiffe/id.js";
import type { FederationStore } from "../store/federation-state.js";

export interface QuarantineIndex {
  has(trustDomain: string): boolean;
  /** Reads every relationship's quarantine now; resolves when done. */
  resync(): Promise<void>;
  close(): void;
}

export interface QuarantineIndexOptions {
  readonly store: Pick<FederationStore, "getQuarantine" | "subscribe">;
  readonly registry: RelationshipRegistry;
  readonly logger: Logger;
  /** Default 300 000 (5 minutes). */
  readonly resyncMs?: number;
  /** Reads in flight at once during a resync. Default 16. */
  readonly concurrency?: number;
}

export function createQuarantineIndex(options: QuarantineIndexOptions): QuarantineIndex {
  const { store, registry, logger } = options;
  const concurrency = options.concurrency ?? 16;
  const held = new Set<TrustDomain>();
  // The newest read asked for per relationship: an older read finishing late must not win.
  const generations = new Map<TrustDomain, number>();
  let known = new Set<TrustDomain>();
  let closed = false;
  let resyncing: Promise<void> | undefined;

  const read = async (trustDomain: TrustDomain): Promise<void> => {
    const generation = (generations.get(trustDomain) ?? 0) + 1;
    generations.set(trustDomain, generation);
    try {
      const quarantine = await store.getQuarantine(trustDomain);
      if (closed || generations.get(trustDomain) !== generation) return;
      if (quarantine && registry.get(trustDomain)) held.add(trustDomain);
      else held.delete(trustDomain);
    } catch (error) {
      logger.debug({ trust_domain: trustDomain, err: (error as Error).message }, "quarantine not read; kept as known");
    }
  };

  const forget = (trustDomain: TrustDomain) => {
    generations.set(trustDomain, (generations.get(trustDomain) ?? 0) + 1);
    held.delete(trustDomain);
  };

  const resync = (): Promise<void> => {
    resyncing ??= (async () => {
      const queue = registry.list().map((relationship) => relationship.trustDomain);
      const worker = async () => {
        for (let next = queue.shift(); next !== undefined && !closed; next = queue.shift()) await read(next);
      };
      await Promise.all(Array.from({ length: Math.min(concurrency, queue.length) }, worker));
    })().finally(() => {
      resyncing = undefined;
    });
    return resyncing;
  };

  const onRegistryChange = () => {
    const current = new Set(registry.list().map((relationship) => relationship.trustDomain));
    for (const trustDomain of known) if (!current.has(trustDomain)) forget(trustDomain);
    for (const trustDomain of current) if (!known.has(trustDomain)) void read(trustDomain);
    known = current;
  };

  const unsubscribeStore = store.subscribe((event) => {
    if (event.kind === "removed") forget(event.trustDomain);
    else if (registry.get(event.trustDomain)) void read(event.trustDomain);
  });
  const unsubscribeRegistry = registry.subscribe(onRegistryChange);
  known = new Set(registry.list().map((relationship) => relationship.trustDomain));
  void resync();
  const timer = setInterval(() => void resync(), options.resyncMs ?? 300_000);
  timer.unref?.();

  return {
    has: (trustDomain) => held.has(trustDomain as TrustDomain),
    resync,
    close() {
      closed = true;
      clearInterval(timer);
      unsubscribeStore();
      unsubscribeRegistry();
    },
  };
}
