/**
 * Every partner's last-known-good bundle, in memory. The endpoint, the distribution API and the relay
 * read only this, never Redis, so they keep serving while Redis is down. It is filled from the store at
 * start, and kept current by this replica's own accepted fetches and by the store's change events.
 */
import { type TrustBundle, withMetadata } from "../spiffe/bundle.js";
import { parseSpiffeBundle } from "../spiffe/codec.js";
import type { TrustDomain } from "../spiffe/id.js";
import type { StoredBundle } from "../store/federation-state.js";

export interface CachedBundle {
  readonly trustDomain: TrustDomain;
  readonly stored: StoredBundle;
  readonly bundle: TrustBundle;
}

export interface BundleCacheChange {
  readonly trustDomain: TrustDomain;
  /** Undefined when the relationship's bundle was removed. */
  readonly current: CachedBundle | undefined;
}

export interface PutOptions {
  /** The bundle already parsed (saves reading the JSON again). */
  readonly bundle?: TrustBundle;
  readonly force?: boolean;
}

export interface BundleCache {
  get(trustDomain: TrustDomain): CachedBundle | undefined;
  entries(): IterableIterator<CachedBundle>;
  /**
   * Replaces the entry when the content (digest or stored sequence) differs and it is not older than
   * the cached one (a late store read must not undo a newer bundle); `force` skips the age check, for
   * putting back what the store holds after it refused this replica's write. Returns whether it replaced.
   */
  put(trustDomain: TrustDomain, stored: StoredBundle, options?: PutOptions): boolean;
  delete(trustDomain: TrustDomain): boolean;
  subscribe(listener: (change: BundleCacheChange) => void): () => void;
  readonly size: number;
}

export function createBundleCache(): BundleCache {
  const entries = new Map<TrustDomain, CachedBundle>();
  const listeners = new Set<(change: BundleCacheChange) => void>();
  const notify = (change: BundleCacheChange) => {
    for (const listener of listeners) listener(change);
  };

  return {
    get: (trustDomain) => entries.get(trustDomain),
    entries: () => entries.values(),
    get size() {
      return entries.size;
    },
    put(trustDomain, stored, options = {}) {
      const existing = entries.get(trustDomain);
      if (existing && existing.stored.digest === stored.digest && existing.stored.sequence === stored.sequence) {
        return false;
      }
      if (existing && !options.force && stored.acceptedAt < existing.stored.acceptedAt) return false;
      // What the store holds was written by bundlegate's own codec under the configured caps, so it is
      // read without caps (the defaults would refuse a partner allowed a larger bundle); a sequence reset
      // is carried by the stored field, which wins over the number inside the JSON.
      const parsed =
        options.bundle ??
        parseSpiffeBundle(stored.json, { maxBytes: Number.MAX_SAFE_INTEGER, maxKeys: Number.MAX_SAFE_INTEGER }).bundle;
      const bundle = stored.sequence === undefined ? withMetadata(parsed, { sequence: undefined }) : parsed;
      const entry: CachedBundle = { trustDomain, stored, bundle };
      entries.set(trustDomain, entry);
      notify({ trustDomain, current: entry });
      return true;
    },
    delete(trustDomain) {
      if (!entries.delete(trustDomain)) return false;
      notify({ trustDomain, current: undefined });
      return true;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
  };
}
