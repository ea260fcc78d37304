/**
 * The sync engine: one timer per relationship, and a lease per refresh so that any number of replicas
 * poll each relationship once per interval.
 *
 * A refresh runs only under the relationship's lease, and only when the stored `nextRefreshAt` is due,
 * re-read after the lease is taken; so replicas that wake at the same moment fetch once between them.
 * The lease is held for one refresh (renewed while it runs) and released after the outcome is written,
 * so a replica that dies is simply absent at the next due time, and one that dies mid-fetch loses its
 * lease within one lease period. The fencing token keeps a paused former holder from writing over newer state.
 *
 * When the store is unreachable, the engine keeps polling every relationship, keeps deciding against the
 * in-memory last-known-good, serves from memory, and writes the newest outcome of each relationship
 * once the store answers again (restoring bundles a restarted, empty Redis has lost).
 */
import { randomBytes } from "node:crypto";
import type { FederationConfig } from "../config/types.js";
import { isBundlegateError } from "../errors.js";
import type { Logger } from "../logging.js";
import type { TrustDomain } from "../spiffe/id.js";
import type { BundleChangeEvent, FederationStore, Lease, RelationshipStatus } from "../store/federation-state.js";
import type { BundleCache } from "./bundle-cache.js";
import type { RelationshipRegistry } from "./registry.js";
import { type RelationshipHealth, relationshipHealth } from "./relationship-health.js";
import {
  type PendingCommit,
  type RefreshOutcome,
  refreshRelationship,
  type UpdaterDependencies,
  type Validator,
} from "./updater.js";

export interface SyncEngineOptions extends Omit<UpdaterDependencies, "random" | "logger"> {
  readonly registry: RelationshipRegistry;
  readonly store: FederationStore & { health(): Promise<{ ok: boolean }> };
  readonly cache: BundleCache;
  readonly federation: FederationConfig;
  readonly logger: Logger;
  readonly random?: () => number;
  /** Most refreshes in flight at once (TLS handshakes are CPU). */
  readonly concurrency?: number;
  /** How often a degraded engine checks whether the store is back. */
  readonly storeRetryMs?: number;
}

export interface EngineRelationshipView {
  readonly status?: RelationshipStatus;
  /** Freshness and authority expiry as this replica sees them now; absent for an unknown relationship. */
  readonly health?: RelationshipHealth;
  /** True while this replica runs a refresh of it. */
  readonly refreshing: boolean;
  /** An outcome waiting for the store to come back. */
  readonly pendingWrite: boolean;
}

export interface SyncEngine {
  start(): Promise<void>;
  stop(): Promise<void>;
  /** Refreshes now (under the lease), whatever the schedule says; resolves with the outcome. */
  refreshNow(trustDomain: TrustDomain): Promise<RefreshOutcome | undefined>;
  view(trustDomain: TrustDomain): EngineRelationshipView;
  /** The status as this replica last read or wrote it; no health computed (cheap, for every scrape). */
  status(trustDomain: TrustDomain): RelationshipStatus | undefined;
  /** True while the store cannot be reached and outcomes wait in memory. */
  degraded(): boolean;
  /** Leases this replica holds right now. */
  leasesHeld(): number;
}

interface Loop {
  timer?: NodeJS.Timeout | undefined;
  refreshing?: Promise<RefreshOutcome | undefined> | undefined;
  status?: RelationshipStatus | undefined;
  lastFence: number;
  pending?: PendingCommit | undefined;
  /** Digest of a bundle this replica accepted while the store was unreachable, until the store holds it. */
  unwritten?: string | undefined;
  /** ETag and the content it belongs to, for a conditional next fetch (kept per replica, with its cache). */
  validator?: Validator | undefined;
}

export function createSyncEngine(options: SyncEngineOptions): SyncEngine {
  const replicaId = options.replicaId || randomBytes(6).toString("hex");
  const logger = options.logger.child({ component: "sync", replica: replicaId });
  const random = options.random ?? Math.random;
  const { store, cache, registry, clock } = options;
  const leaseMs = options.federation.leaseMs;
  const loops = new Map<TrustDomain, Loop>();
  const limiter = createLimiter(options.concurrency ?? 32);
  let running = false;
  let storeDown = false;
  let storeTimer: NodeJS.Timeout | undefined;
  let held = 0;
  const unsubscribes: Array<() => void> = [];

  const updaterDeps = (trustDomain: TrustDomain): UpdaterDependencies => ({
    ...options,
    replicaId,
    random,
    logger: logger.child({ trust_domain: trustDomain }),
  });

  const schedule = (trustDomain: TrustDomain, delayMs: number) => {
    const loop = loops.get(trustDomain);
    if (!loop || !running) return;
    clearTimeout(loop.timer);
    loop.timer = setTimeout(() => void tick(trustDomain, false), Math.max(0, delayMs));
    loop.timer.unref?.();
  };

  const markStoreDown = (error: unknown) => {
    if (!storeDown) {
      logger.error(
        { code: isBundlegateError(error) ? error.code : "ERR_STORE_UNAVAILABLE" },
        "store unreachable: polling continues, outcomes are kept in memory",
      );
    }
    storeDown = true;
    if (!storeTimer && !checking && running) {
      storeTimer = setTimeout(() => void checkStore(), options.storeRetryMs ?? 1000);
      storeTimer.unref?.();
    }
  };

  // One check at a time: two flushes running together would write the same kept outcome twice.
  let checking = false;
  const checkStore = async () => {
    if (checking || !running) return;
    checking = true;
    try {
      const health = await store.health().catch(() => ({ ok: false }));
      if (!health.ok) return;
      storeDown = false;
      logger.info("store reachable again: writing the outcomes kept in memory");
      await flushPending();
    } finally {
      checking = false;
      storeTimer = undefined;
      if (storeDown && running) markStoreDown(undefined);
    }
  };

  /** Writes what waited for the store, and restores bundles the store lost (a restarted Redis without persistence). */
  const flushPending = async () => {
    for (const [trustDomain, loop] of loops) {
      try {
        let stored = await store.getBundle(trustDomain);
        const pending = loop.pending;
        if (pending) {
          // Never write back a bundle older than what the store holds now (another replica may have
          // accepted a newer one, with a fence this replica no longer outranks after Redis lost its data).
          const outcome =
            pending.outcome.kind === "accepted" && sequenceBehind(pending.outcome.bundle.sequence, stored?.sequence)
              ? ({ kind: "status_only" } as const)
              : pending.outcome.kind === "accepted" && stored?.digest !== pending.outcome.previousDigest
                ? { ...pending.outcome, previousDigest: stored?.digest ?? "" }
                : pending.outcome;
          const result = await store.commitFetch(trustDomain, pending.fence, outcome, pending.status, {
            historyLimit: options.federation.historyLimit,
            origin: replicaId,
          });
          loop.pending = undefined;
          if (!result.ok)
            logger.warn({ trust_domain: trustDomain, reason: result.reason }, "kept outcome was superseded");
          stored = await store.getBundle(trustDomain);
        }
        // The kept outcome is only the latest one: a bundle accepted during the outage and followed by an
        // "unchanged" poll is in memory only, and a restarted store may have lost the bundle altogether.
        const cached = cache.get(trustDomain);
        const restore =
          cached !== undefined &&
          (stored === undefined ||
            (loop.unwritten === cached.stored.digest &&
              stored.digest !== cached.stored.digest &&
              !sequenceBehind(cached.stored.sequence, stored.sequence)));
        let restored = false;
        if (restore) {
          const result = await store.commitFetch(
            trustDomain,
            loop.lastFence,
            {
              kind: "accepted",
              previousDigest: stored?.digest ?? "",
              bundle: cached.stored,
              history: { digest: cached.stored.digest, event: "restored", reasons: [], added: [], removed: [] },
            },
            {
              at: clock.now().getTime(),
              success: true,
              result: "restored",
              nextRefreshAt: loop.status?.nextRefreshAt ?? clock.now().getTime(),
            },
            { historyLimit: options.federation.historyLimit, origin: replicaId },
          );
          restored = result.ok;
          if (restored) logger.info({ trust_domain: trustDomain }, "bundle restored to the store from memory");
          else stored = await store.getBundle(trustDomain);
        }
        if (restored || stored?.digest === cached?.stored.digest) {
          loop.unwritten = undefined;
        } else if (stored) {
          // Changes other replicas made while this one could not hear their events (or wrote with a newer lease).
          loop.unwritten = undefined;
          cache.put(trustDomain, stored);
        }
      } catch (error) {
        markStoreDown(error);
        return;
      }
    }
  };

  const tick = (trustDomain: TrustDomain, force: boolean): Promise<RefreshOutcome | undefined> => {
    const loop = loops.get(trustDomain);
    if (!loop || !running) return Promise.resolve(undefined);
    if (loop.refreshing) {
      if (!force) return loop.refreshing;
      // The running tick may have found the relationship not due and fetched nothing; a forced
      // request must still fetch, so it runs once more after that tick.
      return loop.refreshing.then(() => tick(trustDomain, true));
    }
    loop.refreshing = limiter(() => runTick(trustDomain, loop, force)).finally(() => {
      loop.refreshing = undefined;
    });
    return loop.refreshing;
  };

  const runTick = async (trustDomain: TrustDomain, loop: Loop, force: boolean): Promise<RefreshOutcome | undefined> => {
    const relationship = registry.get(trustDomain);
    if (!relationship || !running) return undefined;
    const now = clock.now().getTime();

    // Node timers fire up to a millisecond before the wall clock reads their due time (libuv keeps its own
    // loop clock in whole milliseconds). Not due by what this replica last saw: wait out the rest here
    // rather than take the lease, read the status and release it for nothing (3 Redis round trips, for a
    // quarter of all refreshes of an engine with time to spare). The store's due time is never earlier than
    // the one last seen here, so this skips nothing the check under the lease would have run.
    const knownDue = loop.status?.nextRefreshAt;
    if (!force && knownDue !== undefined && knownDue > now) {
      schedule(trustDomain, knownDue - now);
      return undefined;
    }

    let lease: Lease | undefined;
    if (!storeDown) {
      try {
        lease = await store.acquireLease(trustDomain, replicaId, leaseMs);
        if (!lease) {
          // Another replica is refreshing it (or just did): look again when it is due, or when its lease lapses.
          const status = await store.getStatus(trustDomain);
          if (status) loop.status = status;
          const due = status?.nextRefreshAt ?? 0;
          schedule(trustDomain, due > now ? due - now : leaseMs / 2 + random() * (leaseMs / 4));
          return undefined;
        }
        held++;
        loop.lastFence = lease.fence;
        const status = await store.getStatus(trustDomain);
        if (status) loop.status = status;
        // A change this replica did not hear of (an event lost while its subscriber reconnected):
        // decide against what the store holds, not against an older cached bundle.
        const cached = cache.get(trustDomain);
        if (status?.lastChangeAt !== undefined && (!cached || status.lastChangeAt > cached.stored.acceptedAt)) {
          const stored = await store.getBundle(trustDomain);
          if (stored) cache.put(trustDomain, stored, { force: true });
        }
        if (!force && status?.nextRefreshAt !== undefined && status.nextRefreshAt > now) {
          await releaseLease(trustDomain, lease);
          lease = undefined;
          schedule(trustDomain, status.nextRefreshAt - now);
          return undefined;
        }
      } catch (error) {
        if (lease) held--;
        lease = undefined;
        markStoreDown(error);
      }
    }

    // Renewed while the refresh runs: a fetch may take longer than a lease period.
    const renewer = lease
      ? setInterval(() => {
          if (lease) void store.renewLease(trustDomain, lease, leaseMs).catch(() => undefined);
        }, leaseMs / 3)
      : undefined;
    renewer?.unref?.();
    // When to look again (ms since the epoch), scheduled only once the lease is released: a timer set
    // before that can fire while this refresh still runs, find it running, and be dropped for good.
    let nextAt: number | undefined;
    try {
      const outcome = await refreshRelationship(
        relationship,
        lease?.fence ?? loop.lastFence,
        loop.status,
        updaterDeps(trustDomain),
        loop.validator,
      );
      loop.status = outcome.status;
      loop.validator = outcome.validator;
      if (outcome.pending) {
        if (outcome.pending.outcome.kind === "accepted") loop.unwritten = outcome.pending.outcome.bundle.digest;
        loop.pending = outcome.pending;
        markStoreDown(undefined);
      } else {
        loop.pending = undefined;
      }
      if (outcome.commit && !outcome.commit.ok) {
        // The store refused this write (a newer lease holder, or another bundle under the decision):
        // the cache took the candidate already, so it goes back to what the store holds.
        loop.validator = undefined;
        const stored = await store.getBundle(trustDomain).catch(() => undefined);
        if (stored) cache.put(trustDomain, stored, { force: true });
        else cache.delete(trustDomain);
      }
      nextAt = outcome.nextRefreshAt;
      return outcome;
    } catch (error) {
      logger.error({ trust_domain: trustDomain, err: (error as Error).message }, "refresh failed unexpectedly");
      nextAt = clock.now().getTime() + options.federation.backoffInitialSeconds * 1000;
      return undefined;
    } finally {
      clearInterval(renewer);
      if (lease) await releaseLease(trustDomain, lease);
      if (nextAt !== undefined) schedule(trustDomain, nextAt - clock.now().getTime());
    }
  };

  const releaseLease = async (trustDomain: TrustDomain, lease: Lease) => {
    held--;
    await store.releaseLease(trustDomain, lease).catch(() => undefined);
  };

  const onStoreEvent = (event: BundleChangeEvent) => {
    if (event.kind === "removed") {
      cache.delete(event.trustDomain);
      return;
    }
    // Own events too: a quarantine accepted or a sequence reset through this replica's API must reach its
    // cache. When the cache already holds that digest and sequence (this replica's own fetches), the put
    // would be a no-op: the store is not read for it.
    if (event.kind === "bundle") {
      const held = cache.get(event.trustDomain)?.stored;
      if (held && held.digest === event.digest && held.sequence === event.sequence) return;
      void store
        .getBundle(event.trustDomain)
        .then((stored) => {
          if (stored) cache.put(event.trustDomain, stored);
        })
        .catch((error: unknown) => markStoreDown(error));
    }
  };

  const sync = () => {
    const wanted = new Set(registry.list().map((relationship) => relationship.trustDomain));
    for (const [trustDomain, loop] of loops) {
      if (!wanted.has(trustDomain)) {
        clearTimeout(loop.timer);
        loops.delete(trustDomain);
      }
    }
    for (const trustDomain of wanted) {
      if (loops.has(trustDomain)) continue;
      loops.set(trustDomain, { lastFence: 0 });
      void startLoop(trustDomain);
    }
  };

  /** Loads what the store knows, then waits until the relationship is due (a new one is due at once, spread out). */
  const startLoop = async (trustDomain: TrustDomain) => {
    const loop = loops.get(trustDomain);
    if (!loop) return;
    let due = 0;
    try {
      const [stored, status] = await Promise.all([store.getBundle(trustDomain), store.getStatus(trustDomain)]);
      if (stored) cache.put(trustDomain, stored);
      if (status) loop.status = status;
      due = status?.nextRefreshAt ?? 0;
    } catch (error) {
      markStoreDown(error);
    }
    const now = clock.now().getTime();
    const spread = random() * Math.min(5000, leaseMs);
    schedule(trustDomain, (due > now ? due - now : 0) + spread);
  };

  return {
    async start() {
      running = true;
      unsubscribes.push(store.subscribe(onStoreEvent));
      unsubscribes.push(registry.subscribe(sync));
      sync();
      logger.info({ relationships: loops.size }, "sync engine started");
    },
    async stop() {
      running = false;
      clearTimeout(storeTimer);
      for (const unsubscribe of unsubscribes.splice(0)) unsubscribe();
      const inFlight: Promise<unknown>[] = [];
      for (const loop of loops.values()) {
        clearTimeout(loop.timer);
        if (loop.refreshing) inFlight.push(loop.refreshing.catch(() => undefined));
      }
      await Promise.all(inFlight);
      loops.clear();
    },
    refreshNow: (trustDomain) => tick(trustDomain, true),
    view(trustDomain) {
      const loop = loops.get(trustDomain);
      const relationship = registry.get(trustDomain);
      const health = relationship
        ? relationshipHealth({
            relationship,
            status: loop?.status,
            lastKnownGood: cache.get(trustDomain)?.bundle,
            federation: options.federation,
            now: clock.now(),
          })
        : undefined;
      return {
        ...(loop?.status ? { status: loop.status } : {}),
        ...(health ? { health } : {}),
        refreshing: loop?.refreshing !== undefined,
        pendingWrite: loop?.pending !== undefined || loop?.unwritten !== undefined,
      };
    },
    status: (trustDomain) => loops.get(trustDomain)?.status,
    degraded: () => storeDown,
    leasesHeld: () => held,
  };
}

/** True when both sequences are known and `candidate` is lower (decimal strings, up to 2^64-1). */
export function sequenceBehind(candidate: string | undefined, stored: string | undefined): boolean {
  return candidate !== undefined && stored !== undefined && BigInt(candidate) < BigInt(stored);
}

/** At most `limit` tasks at once, the rest queued in order. */
function createLimiter(limit: number) {
  let active = 0;
  const queue: Array<() => void> = [];
  return <T>(task: () => Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const run = () => {
        active++;
        task()
          .then(resolve, reject)
          .finally(() => {
            active--;
            queue.shift()?.();
          });
      };
      if (active < limit) run();
      else queue.push(run);
    });
}
