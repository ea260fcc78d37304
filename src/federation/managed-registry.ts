/**
 * The relationships of the config file and those made through the admin API, as one registry.
 *
 * Config relationships are fixed for the life of the process and read-only through the API. API-made
 * ones live in the store: every replica loads them at start, follows the store's record events, and
 * re-reads the whole set every `resyncIntervalMs` in case an event was lost (pub/sub is at most once).
 *
 * A relationship whose `expires_at` has passed reads as "suspended" from the moment it passes, whatever
 * its stored state, so it leaves distribution at once on every replica; the expiry enforcer then writes
 * the suspension down and audits it. `checkExpiry()` tells listeners when such a moment has passed.
 */
import type { Clock } from "../clock.js";
import type { KnownRelationship } from "../config/schema.js";
import { isBundlegateError } from "../errors.js";
import type { Logger } from "../logging.js";
import type { TrustDomain } from "../spiffe/id.js";
import type { AdminStore, RelationshipRecord } from "../store/admin-state.js";
import type { RelationshipRegistry } from "./registry.js";
import type { Relationship } from "./relationship.js";
import {
  knownOf,
  parseRelationshipDocument,
  type RelationshipDocument,
  relationshipOfDocument,
  type SpecContext,
} from "./relationship-document.js";

export interface ManagedEntry {
  readonly relationship: Relationship;
  /** For API-made relationships: the stored record and its document. */
  readonly record?: RelationshipRecord;
  readonly document?: RelationshipDocument;
}

export interface ManagedRegistry extends RelationshipRegistry {
  /** Loads the stored relationships and starts following changes. */
  start(): Promise<void>;
  close(): void;
  /** The entry behind a relationship (config or API), with its expiry not applied. */
  entry(trustDomain: string): ManagedEntry | undefined;
  /** Re-reads one stored relationship (after this replica wrote it, so the caller sees its own write at once). */
  reload(trustDomain: TrustDomain): Promise<void>;
  /** Re-reads every stored relationship (what the resync timer does). */
  resync(): Promise<void>;
  /** The facts the spec rules need about every relationship but `except`. */
  specContext(except?: string): SpecContext;
  /** Tells listeners if a relationship's expires_at has passed since the last check; returns those that expired. */
  checkExpiry(): readonly Relationship[];
}

export interface ManagedRegistryOptions {
  readonly config: readonly Relationship[];
  readonly store: AdminStore;
  readonly ownTrustDomain: string;
  readonly maxBundleBytes: number;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Default 30 s. */
  readonly resyncIntervalMs?: number;
}

/** The cross-relationship facts of a stored record, read from its spec without checking the rest. */
function knownOfRecord(record: RelationshipRecord): KnownRelationship | undefined {
  try {
    const spec = (JSON.parse(record.document) as { spec?: Record<string, unknown> }).spec;
    if (typeof spec?.trust_domain !== "string" || typeof spec.profile !== "string") return undefined;
    return {
      trust_domain: spec.trust_domain,
      profile: spec.profile,
      ...(typeof spec.endpoint_spiffe_id === "string" ? { endpoint_spiffe_id: spec.endpoint_spiffe_id } : {}),
    };
  } catch {
    return undefined;
  }
}

export function createManagedRegistry(options: ManagedRegistryOptions): ManagedRegistry {
  const { store, clock } = options;
  const logger = options.logger.child({ component: "registry" });
  const configured = new Map<string, ManagedEntry>();
  for (const relationship of options.config) configured.set(relationship.trustDomain, { relationship });
  let stored = new Map<string, ManagedEntry>();
  let ordered: readonly Relationship[] = [];
  const listeners = new Set<() => void>();
  let expired = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let unsubscribe: (() => void) | undefined;
  let closed = false;

  const isExpired = (relationship: Relationship, now: number): boolean =>
    relationship.expiresAt !== undefined && relationship.expiresAt.getTime() <= now;

  const effective = (relationship: Relationship, now: number): Relationship =>
    relationship.state !== "suspended" && isExpired(relationship, now)
      ? { ...relationship, state: "suspended" }
      : relationship;

  const rebuild = () => {
    const api = [...stored.values()]
      .map((entry) => entry.relationship)
      .sort((a, b) => (a.trustDomain < b.trustDomain ? -1 : a.trustDomain > b.trustDomain ? 1 : 0));
    ordered = [...[...configured.values()].map((entry) => entry.relationship), ...api];
  };

  const notify = () => {
    for (const listener of [...listeners]) {
      try {
        listener();
      } catch (error) {
        logger.error({ err: (error as Error).message }, "registry listener failed");
      }
    }
  };

  const context = (except?: string): SpecContext => ({
    ownTrustDomain: options.ownTrustDomain,
    others: ordered.filter((relationship) => relationship.trustDomain !== except).map(knownOf),
    maxBundleBytes: options.maxBundleBytes,
  });

  /** An entry for a stored record, or undefined when it cannot be used (logged: an operator must fix it). */
  const entryOf = (record: RelationshipRecord, others?: SpecContext): ManagedEntry | undefined => {
    if (configured.has(record.trustDomain)) {
      logger.warn({ trustDomain: record.trustDomain }, "stored relationship ignored: the config file defines it");
      return undefined;
    }
    try {
      const document = parseRelationshipDocument(record.document);
      return {
        relationship: relationshipOfDocument(document, others ?? context(record.trustDomain)),
        record,
        document,
      };
    } catch (error) {
      if (!isBundlegateError(error)) throw error;
      logger.error(
        { trustDomain: record.trustDomain, code: error.code, err: error.message },
        "stored relationship unusable",
      );
      return undefined;
    }
  };

  /** Bumped by every single-relationship reload, so a full listing read before it cannot undo it. */
  const generations = new Map<string, number>();
  const sameRecord = (a: RelationshipRecord | undefined, b: RelationshipRecord | undefined) =>
    a !== undefined && b !== undefined && a.revision === b.revision && a.document === b.document;

  const loadAll = async () => {
    const seen = new Map(generations);
    const records = await store.listRelationshipRecords();
    // Each record is checked against every other one listed, not only those loaded before: a relationship
    // whose endpoint is verified through another API-made one must load on a fresh start too.
    const listed = records.flatMap((record) => {
      const known = knownOfRecord(record);
      return known === undefined ? [] : [known];
    });
    const fullContext = (except: string): SpecContext => ({
      ownTrustDomain: options.ownTrustDomain,
      others: [
        ...[...configured.values()].map((entry) => knownOf(entry.relationship)),
        ...listed.filter((known) => known.trust_domain !== except && !configured.has(known.trust_domain)),
      ],
      maxBundleBytes: options.maxBundleBytes,
    });
    const next = new Map<string, ManagedEntry>();
    const moved = (td: string) => (generations.get(td) ?? 0) !== (seen.get(td) ?? 0);
    for (const record of records) {
      if (moved(record.trustDomain)) continue;
      const current = stored.get(record.trustDomain);
      const entry = sameRecord(current?.record, record) ? current : entryOf(record, fullContext(record.trustDomain));
      if (entry) next.set(record.trustDomain, entry);
    }
    // What a reload applied while the listing was read is newer than the listing: keep it.
    for (const [td, entry] of stored) if (moved(td)) next.set(td, entry);
    const changed =
      next.size !== stored.size || [...next].some(([td, entry]) => !sameRecord(stored.get(td)?.record, entry.record));
    stored = next;
    rebuild();
    if (changed) notify();
  };

  // Reloads of one trust domain run one after another: each reads the record as it is then, so the last
  // one applied is the newest read, and an event's slow read cannot undo a later one's faster read.
  const chains = new Map<string, Promise<void>>();
  const reload = (trustDomain: TrustDomain): Promise<void> => {
    const previous = chains.get(trustDomain) ?? Promise.resolve();
    const next = previous.catch(() => {}).then(() => reloadNow(trustDomain));
    chains.set(trustDomain, next);
    void next
      .finally(() => {
        if (chains.get(trustDomain) === next) chains.delete(trustDomain);
      })
      .catch(() => {});
    return next;
  };

  const reloadNow = async (trustDomain: TrustDomain) => {
    const record = await store.getRelationshipRecord(trustDomain);
    generations.set(trustDomain, (generations.get(trustDomain) ?? 0) + 1);
    const before = stored.get(trustDomain);
    if (record === undefined) {
      if (!before) return;
      stored.delete(trustDomain);
    } else {
      // Revisions restart at 1 when a relationship is deleted and made again: compare the content too.
      if (sameRecord(before?.record, record)) return;
      const entry = entryOf(record);
      if (entry) stored.set(trustDomain, entry);
      else stored.delete(trustDomain);
    }
    rebuild();
    notify();
  };

  rebuild();

  return {
    list() {
      const now = clock.now().getTime();
      return ordered.map((relationship) => effective(relationship, now));
    },
    get(trustDomain) {
      const relationship = (configured.get(trustDomain) ?? stored.get(trustDomain))?.relationship;
      return relationship && effective(relationship, clock.now().getTime());
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    entry: (trustDomain) => configured.get(trustDomain) ?? stored.get(trustDomain),
    reload,
    resync: () => loadAll(),
    specContext: context,
    async start() {
      unsubscribe = store.subscribeRelationshipRecords((event) => {
        reload(event.trustDomain).catch((error: Error) =>
          logger.warn(
            { trustDomain: event.trustDomain, err: error.message },
            "reloading a relationship failed; the next resync retries",
          ),
        );
      });
      await loadAll();
      expired = new Set(ordered.filter((r) => isExpired(r, clock.now().getTime())).map((r) => r.trustDomain));
      const every = options.resyncIntervalMs ?? 30_000;
      const tick = () => {
        timer = setTimeout(() => {
          loadAll()
            .catch((error: Error) => logger.warn({ err: error.message }, "relationship resync failed"))
            .finally(() => {
              if (!closed) tick();
            });
        }, every);
        timer.unref();
      };
      tick();
    },
    close() {
      closed = true;
      if (timer) clearTimeout(timer);
      unsubscribe?.();
      listeners.clear();
    },
    checkExpiry() {
      const now = clock.now().getTime();
      const nowExpired = ordered.filter((relationship) => isExpired(relationship, now));
      const names = new Set(nowExpired.map((relationship) => relationship.trustDomain));
      const changed = names.size !== expired.size || [...names].some((td) => !expired.has(td));
      expired = names;
      if (changed) notify();
      return nowExpired;
    },
  };
}
