/**
 * The behaviour every Store must have. Each backend's test file runs this suite against fresh stores.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { TrustDomain } from "../../src/spiffe/id.js";
import type {
  BundleChangeEvent,
  FetchOutcome,
  Lease,
  StatusUpdate,
  StoredBundle,
} from "../../src/store/federation-state.js";
import type { Store } from "../../src/store/types.js";
import { adminStoreContract } from "./admin-contract.js";

const digest = (n: number) => n.toString(16).padStart(64, "0");

/** A store under test, with what the backend can do to it. */
export interface OpenedStore {
  readonly store: Store;
  /** Lets lease time pass: the injected clock for the embedded store, a real wait for Redis. */
  elapse(ms: number): Promise<void>;
  /** Another replica on the same state; given by backends that replicas share (StoreBackend.replicas). */
  readonly replica?: () => Promise<Store>;
  /** Closes `store` and opens its state again; given by backends whose state outlives the store (durable). */
  readonly reopen?: () => Promise<Store>;
}

export interface StoreBackend {
  /** A fresh store with empty state. */
  open(): Promise<OpenedStore>;
  /**
   * The lease TTL the lease tests use. Steps of 0.6 x this must stay well apart from expiry on a busy
   * machine: a few hundred ms where time is real, anything where it is injected.
   */
  readonly leaseTtlMs: number;
  readonly replicas: boolean;
  readonly durable: boolean;
}

const T0 = 1_700_000_000_000;
const partner = "partner.example" as TrustDomain;
const other = "other.example" as TrustDomain;
const MAX_SEQUENCE = "18446744073709551615";

function content(n: number, sequence?: string): Omit<StoredBundle, "acceptedAt"> {
  return {
    json: JSON.stringify({ keys: [], n }),
    digest: digest(n),
    ...(sequence === undefined ? {} : { sequence }),
    refreshHintSeconds: 300 + n,
  };
}

function accepted(n: number, previousDigest: string, sequence?: string): FetchOutcome {
  return {
    kind: "accepted",
    bundle: content(n, sequence),
    previousDigest,
    history: {
      digest: digest(n),
      ...(sequence === undefined ? {} : { sequence }),
      event: "accepted",
      reasons: ["AUTHORITIES_ADDED"],
      added: [`fp-${n}`],
      removed: [],
    },
  };
}

function quarantined(n: number, previousDigest: string, sequence?: string): FetchOutcome {
  const { json, digest: held, refreshHintSeconds } = content(n);
  return {
    kind: "quarantined",
    quarantine: {
      json,
      digest: held,
      ...(sequence === undefined ? {} : { sequence }),
      ...(refreshHintSeconds === undefined ? {} : { refreshHintSeconds }),
      reasons: ["FULL_REPLACEMENT", "AUTHORITIES_ADDED"],
      added: [`fp-${n}`],
      removed: ["fp-old"],
    },
    previousDigest,
  };
}

const statusOnly: FetchOutcome = { kind: "status_only" };

function fetched(at: number, overrides: Partial<StatusUpdate> = {}): StatusUpdate {
  return { at, success: true, result: "accepted", nextRefreshAt: at + 60_000, ...overrides };
}

const by = (origin: string) => ({ historyLimit: 10, origin });
const A = by("replica-a");

/** Every event the store tells, in order; Redis delivers them asynchronously, so tests wait for a count. */
function recordEvents(store: Store) {
  const events: BundleChangeEvent[] = [];
  const unsubscribe = store.subscribe((event) => events.push(event));
  return {
    events,
    unsubscribe,
    async waitFor(count: number): Promise<BundleChangeEvent[]> {
      await expect.poll(() => events.length, { timeout: 5000 }).toBeGreaterThanOrEqual(count);
      return events;
    },
  };
}

export function storeContract(name: string, backend: StoreBackend): void {
  const opened: Store[] = [];
  afterEach(async () => {
    await Promise.all(opened.splice(0).map((store) => store.close().catch(() => undefined)));
  });
  const openFresh = async (): Promise<OpenedStore> => {
    const fresh = await backend.open();
    opened.push(fresh.store);
    return fresh;
  };
  const ttl = backend.leaseTtlMs;
  const lease = async (store: Store, trustDomain = partner): Promise<Lease> => {
    const taken = await store.acquireLease(trustDomain, "poller", 60_000);
    if (!taken) throw new Error("lease not free");
    return taken;
  };

  describe(`${name}: local bundle sequence`, () => {
    it("numbers new content from 1 and keeps the number for the same content", async () => {
      const { store } = await openFresh();
      expect(await store.getLocalBundleState()).toBeUndefined();
      expect(await store.assignLocalSequence(digest(1))).toEqual({ contentDigest: digest(1), sequence: 1n });
      expect(await store.assignLocalSequence(digest(1))).toEqual({ contentDigest: digest(1), sequence: 1n });
      expect(await store.assignLocalSequence(digest(2))).toEqual({ contentDigest: digest(2), sequence: 2n });
      // Returning to earlier content is still a change, so it gets a new number.
      expect(await store.assignLocalSequence(digest(1))).toEqual({ contentDigest: digest(1), sequence: 3n });
      expect(await store.getLocalBundleState()).toEqual({ contentDigest: digest(1), sequence: 3n });
    });

    it("gives concurrent callers with the same content the same number", async () => {
      const { store } = await openFresh();
      const results = await Promise.all(Array.from({ length: 10 }, () => store.assignLocalSequence(digest(7))));
      expect(new Set(results.map((r) => r.sequence))).toEqual(new Set([1n]));
    });

    it("records a source's own sequence unless it goes backwards or repeats for other content", async () => {
      const { store } = await openFresh();
      expect(await store.recordLocalSequence(digest(1), 10n)).toEqual({
        ok: true,
        state: { contentDigest: digest(1), sequence: 10n },
      });
      expect(await store.recordLocalSequence(digest(1), 10n)).toMatchObject({ ok: true });
      expect(await store.recordLocalSequence(digest(2), 9n)).toEqual({
        ok: false,
        stored: { contentDigest: digest(1), sequence: 10n },
      });
      expect(await store.recordLocalSequence(digest(2), 10n)).toMatchObject({ ok: false });
      expect(await store.getLocalBundleState()).toEqual({ contentDigest: digest(1), sequence: 10n });
      expect(await store.recordLocalSequence(digest(2), 11n)).toMatchObject({ ok: true });
      // A later file without a sequence continues from the recorded one.
      expect(await store.assignLocalSequence(digest(3))).toEqual({ contentDigest: digest(3), sequence: 12n });
    });

    it("keeps sequences exact up to 2^64-1 and refuses to pass it", async () => {
      const { store } = await openFresh();
      await store.recordLocalSequence(digest(1), 18446744073709551614n);
      expect((await store.assignLocalSequence(digest(2))).sequence).toBe(18446744073709551615n);
      await expect(store.assignLocalSequence(digest(3))).rejects.toMatchObject({ code: "ERR_SEQUENCE_EXHAUSTED" });
      expect(await store.getLocalBundleState()).toEqual({ contentDigest: digest(2), sequence: 18446744073709551615n });
    });

    it("compares sequences as numbers, not as text", async () => {
      const { store } = await openFresh();
      await store.recordLocalSequence(digest(1), 9n);
      expect(await store.recordLocalSequence(digest(2), 10n)).toMatchObject({ ok: true });
      expect(await store.recordLocalSequence(digest(3), 9n)).toMatchObject({ ok: false });
      await store.recordLocalSequence(digest(4), 99n);
      expect((await store.assignLocalSequence(digest(5))).sequence).toBe(100n);
    });

    it("reports itself healthy", async () => {
      const { store } = await openFresh();
      expect(await store.health()).toEqual({ ok: true });
    });
  });

  describe(`${name}: leases`, () => {
    it("gives a free lease to one holder at a time, with a larger fence each time", async () => {
      const { store } = await openFresh();
      const first = await store.acquireLease(partner, "a", ttl);
      expect(first).toMatchObject({ token: expect.any(String), fence: expect.any(Number) });
      expect(await store.acquireLease(partner, "b", ttl)).toBeUndefined();
      expect(await store.acquireLease(partner, "a", ttl)).toBeUndefined();
      // Leases are per relationship.
      expect(await store.acquireLease(other, "b", ttl)).toBeDefined();
      await store.releaseLease(partner, first!);
      const second = await store.acquireLease(partner, "b", ttl);
      expect(second!.fence).toBeGreaterThan(first!.fence);
      expect(second!.token).not.toBe(first!.token);
    });

    it("lets exactly one of many concurrent callers take the lease", async () => {
      const { store } = await openFresh();
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, i) => store.acquireLease(partner, `replica-${i}`, ttl)),
      );
      expect(results.filter((result) => result !== undefined)).toHaveLength(1);
    });

    it("renews the holder's lease so it outlives its first TTL, and lets it lapse without renewal", async () => {
      const { store, elapse } = await openFresh();
      const held = (await store.acquireLease(partner, "a", ttl))!;
      await elapse(ttl * 0.6);
      expect(await store.renewLease(partner, held, ttl)).toBe(true);
      await elapse(ttl * 0.6);
      // 1.2 TTL since it was taken: only the renewal keeps it.
      expect(await store.acquireLease(partner, "b", ttl)).toBeUndefined();
      await elapse(ttl * 0.6);
      const taken = await store.acquireLease(partner, "b", ttl);
      expect(taken!.fence).toBeGreaterThan(held.fence);
      // The lapsed holder can neither extend nor release the new holder's lease.
      expect(await store.renewLease(partner, held, ttl)).toBe(false);
      await store.releaseLease(partner, held);
      expect(await store.acquireLease(partner, "c", ttl)).toBeUndefined();
      expect(await store.renewLease(partner, taken!, ttl)).toBe(true);
    });

    it("does not renew a lapsed lease nobody took", async () => {
      const { store, elapse } = await openFresh();
      const held = (await store.acquireLease(partner, "a", ttl))!;
      await elapse(ttl * 1.2);
      expect(await store.renewLease(partner, held, ttl)).toBe(false);
      expect(await store.acquireLease(partner, "a", ttl)).toBeDefined();
    });

    it("releases only for the token that holds it", async () => {
      const { store } = await openFresh();
      const held = (await store.acquireLease(partner, "a", ttl))!;
      await store.releaseLease(partner, { token: "someone-else", fence: held.fence });
      expect(await store.renewLease(partner, { token: "someone-else", fence: held.fence }, ttl)).toBe(false);
      expect(await store.acquireLease(partner, "b", ttl)).toBeUndefined();
      await store.releaseLease(partner, held);
      expect(await store.acquireLease(partner, "b", ttl)).toBeDefined();
    });

    it("refuses a TTL that is not a positive whole number of ms", async () => {
      const { store } = await openFresh();
      for (const bad of [0, -5, 1.5, Number.NaN]) {
        await expect(store.acquireLease(partner, "a", bad)).rejects.toMatchObject({ code: "ERR_STORE_BAD_ARGUMENT" });
      }
      expect(await store.acquireLease(partner, "a", ttl)).toBeDefined();
    });
  });

  describe(`${name}: commitFetch`, () => {
    it("writes an accepted bundle with its status and history, and tells subscribers", async () => {
      const { store } = await openFresh();
      const recorder = recordEvents(store);
      const { fence } = await lease(store);
      expect(await store.getBundle(partner)).toBeUndefined();
      expect(await store.getStatus(partner)).toBeUndefined();
      expect(await store.getHistory(partner, 10)).toEqual([]);

      const status = fetched(T0, { etag: '"v1"' });
      expect(await store.commitFetch(partner, fence, accepted(1, "", "7"), status, A)).toEqual({ ok: true });
      expect(await store.getBundle(partner)).toEqual({ ...content(1, "7"), acceptedAt: T0 });
      expect(await store.getStatus(partner)).toEqual({
        lastAttemptAt: T0,
        lastSuccessAt: T0,
        lastChangeAt: T0,
        lastResult: "accepted",
        consecutiveFailures: 0,
        nextRefreshAt: T0 + 60_000,
        etag: '"v1"',
        writtenBy: "replica-a",
      });
      expect(await store.getHistory(partner, 10)).toEqual([
        {
          at: T0,
          digest: digest(1),
          sequence: "7",
          event: "accepted",
          reasons: ["AUTHORITIES_ADDED"],
          added: ["fp-1"],
          removed: [],
        },
      ]);
      expect(await recorder.waitFor(1)).toEqual([
        { trustDomain: partner, kind: "bundle", digest: digest(1), sequence: "7", origin: "replica-a" },
      ]);
      // Other relationships are untouched.
      expect(await store.getBundle(other)).toBeUndefined();
    });

    it("keeps acceptedAt when the same content is accepted again", async () => {
      const { store } = await openFresh();
      const { fence } = await lease(store);
      await store.commitFetch(partner, fence, accepted(1, ""), fetched(T0), A);
      await store.commitFetch(partner, fence, accepted(1, digest(1)), fetched(T0 + 5), A);
      expect((await store.getBundle(partner))?.acceptedAt).toBe(T0);
      await store.commitFetch(partner, fence, accepted(2, digest(1)), fetched(T0 + 9), A);
      expect((await store.getBundle(partner))?.acceptedAt).toBe(T0 + 9);
    });

    it("refuses a paused holder's stale fence and changes nothing", async () => {
      const { store } = await openFresh();
      const recorder = recordEvents(store);
      const paused = await lease(store);
      await store.releaseLease(partner, paused);
      const newer = await lease(store);
      expect(await store.commitFetch(partner, newer.fence, accepted(1, ""), fetched(T0), by("new"))).toEqual({
        ok: true,
      });
      const before = {
        bundle: await store.getBundle(partner),
        status: await store.getStatus(partner),
        history: await store.getHistory(partner, 10),
      };

      for (const outcome of [accepted(2, digest(1)), quarantined(3, digest(1)), statusOnly]) {
        expect(
          await store.commitFetch(partner, paused.fence, outcome, fetched(T0 + 1, { success: false }), by("old")),
        ).toEqual({ ok: false, reason: "stale_fence" });
      }
      expect(await store.getBundle(partner)).toEqual(before.bundle);
      expect(await store.getStatus(partner)).toEqual(before.status);
      expect(await store.getQuarantine(partner)).toBeUndefined();
      expect(await store.getHistory(partner, 10)).toEqual(before.history);
      // The next event told is a later write's: the refused ones told nothing.
      await store.commitFetch(partner, newer.fence, quarantined(4, digest(1)), fetched(T0 + 2), by("new"));
      const events = await recorder.waitFor(2);
      expect(events.map((event) => [event.kind, event.origin])).toEqual([
        ["bundle", "new"],
        ["quarantine", "new"],
      ]);
    });

    it("accepts a fence newer than any given out and gives the next lease a newer one", async () => {
      const { store } = await openFresh();
      // Fence 0 is what a replica that never got a lease writes with; an empty store takes it.
      expect(await store.commitFetch(partner, 0, statusOnly, fetched(T0), A)).toEqual({ ok: true });
      expect(await store.commitFetch(partner, 41, accepted(1, ""), fetched(T0), A)).toEqual({ ok: true });
      expect(await store.commitFetch(partner, 40, statusOnly, fetched(T0), A)).toEqual({
        ok: false,
        reason: "stale_fence",
      });
      expect((await lease(store)).fence).toBeGreaterThan(41);
    });

    it("refuses an outcome decided against another last-known-good and changes nothing", async () => {
      const { store } = await openFresh();
      const { fence } = await lease(store);
      await store.commitFetch(partner, fence, accepted(1, ""), fetched(T0), A);
      const status = await store.getStatus(partner);

      expect(await store.commitFetch(partner, fence, accepted(2, ""), fetched(T0 + 1), A)).toEqual({
        ok: false,
        reason: "digest_conflict",
        currentDigest: digest(1),
      });
      expect(await store.commitFetch(partner, fence, quarantined(3, digest(9)), fetched(T0 + 1), A)).toEqual({
        ok: false,
        reason: "digest_conflict",
        currentDigest: digest(1),
      });
      expect(await store.getBundle(partner)).toMatchObject({ digest: digest(1) });
      expect(await store.getQuarantine(partner)).toBeUndefined();
      expect(await store.getStatus(partner)).toEqual(status);
      expect(await store.getHistory(partner, 10)).toHaveLength(1);

      const otherLease = await lease(store, other);
      // An empty relationship's current digest is "": a decision made against some bundle conflicts with it.
      expect(await store.commitFetch(other, otherLease.fence, accepted(5, digest(1)), fetched(T0), A)).toEqual({
        ok: false,
        reason: "digest_conflict",
        currentDigest: "",
      });
    });

    it("keeps the history newest first and capped at the limit", async () => {
      const { store } = await openFresh();
      const { fence } = await lease(store);
      let previous = "";
      for (let n = 1; n <= 5; n++) {
        await store.commitFetch(partner, fence, accepted(n, previous), fetched(T0 + n), { ...A, historyLimit: 3 });
        previous = digest(n);
      }
      const history = await store.getHistory(partner, 10);
      expect(history.map((entry) => [entry.digest, entry.at])).toEqual([
        [digest(5), T0 + 5],
        [digest(4), T0 + 4],
        [digest(3), T0 + 3],
      ]);
      expect(await store.getHistory(partner, 2)).toEqual(history.slice(0, 2));
      expect(await store.getHistory(partner, 0)).toEqual([]);
    });

    it("holds a quarantined bundle beside the last-known-good, which keeps being served", async () => {
      const { store } = await openFresh();
      const recorder = recordEvents(store);
      const { fence } = await lease(store);
      await store.commitFetch(partner, fence, accepted(1, "", "5"), fetched(T0), A);
      const served = await store.getBundle(partner);

      const status = fetched(T0 + 10, { result: "quarantined" });
      expect(await store.commitFetch(partner, fence, quarantined(2, digest(1), "6"), status, A)).toEqual({ ok: true });
      expect(await store.getBundle(partner)).toEqual(served);
      expect(await store.getQuarantine(partner)).toEqual({
        json: content(2).json,
        digest: digest(2),
        sequence: "6",
        refreshHintSeconds: 302,
        reasons: ["FULL_REPLACEMENT", "AUTHORITIES_ADDED"],
        added: ["fp-2"],
        removed: ["fp-old"],
        quarantinedAt: T0 + 10,
      });
      expect(await store.getStatus(partner)).toMatchObject({
        lastResult: "quarantined",
        lastSuccessAt: T0 + 10,
        lastChangeAt: T0,
        consecutiveFailures: 0,
      });
      expect(await store.getHistory(partner, 10)).toHaveLength(1);
      const events = await recorder.waitFor(2);
      expect(events[1]).toEqual({
        trustDomain: partner,
        kind: "quarantine",
        digest: digest(2),
        sequence: "6",
        origin: "replica-a",
      });

      // Held again, it keeps the time it was first held; another one replaces it.
      await store.commitFetch(partner, fence, quarantined(2, digest(1), "6"), fetched(T0 + 20), A);
      expect((await store.getQuarantine(partner))?.quarantinedAt).toBe(T0 + 10);
      await store.commitFetch(partner, fence, quarantined(3, digest(1)), fetched(T0 + 30), A);
      expect(await store.getQuarantine(partner)).toMatchObject({ digest: digest(3), quarantinedAt: T0 + 30 });
      expect(await store.getQuarantine(partner)).not.toHaveProperty("sequence");
    });

    it("clears the quarantine when a bundle is accepted", async () => {
      const { store } = await openFresh();
      const { fence } = await lease(store);
      await store.commitFetch(partner, fence, accepted(1, ""), fetched(T0), A);
      await store.commitFetch(partner, fence, quarantined(2, digest(1)), fetched(T0 + 1), A);
      await store.commitFetch(partner, fence, accepted(3, digest(1)), fetched(T0 + 2), A);
      expect(await store.getQuarantine(partner)).toBeUndefined();
      expect(await store.getBundle(partner)).toMatchObject({ digest: digest(3) });
    });

    it("keeps the failure and success bookkeeping of status-only outcomes", async () => {
      const { store } = await openFresh();
      const { fence } = await lease(store);
      await store.commitFetch(partner, fence, accepted(1, ""), fetched(T0, { etag: '"v1"' }), A);

      const fail = (at: number, errorCode: string) =>
        fetched(at, { success: false, result: errorCode, errorCode, nextRefreshAt: at + 10_000 });
      await store.commitFetch(partner, fence, statusOnly, fail(T0 + 100, "ERR_FETCH_TIMEOUT"), by("replica-b"));
      await store.commitFetch(partner, fence, statusOnly, fail(T0 + 200, "ERR_FETCH_STATUS"), by("replica-b"));
      expect(await store.getStatus(partner)).toEqual({
        lastAttemptAt: T0 + 200,
        lastSuccessAt: T0,
        lastChangeAt: T0,
        lastResult: "ERR_FETCH_STATUS",
        lastErrorCode: "ERR_FETCH_STATUS",
        lastErrorAt: T0 + 200,
        consecutiveFailures: 2,
        nextRefreshAt: T0 + 10_200,
        etag: '"v1"',
        writtenBy: "replica-b",
      });

      // A refused bundle counts as a failure without being an error code of the fetch.
      await store.commitFetch(partner, fence, statusOnly, fetched(T0 + 250, { success: false, result: "rejected" }), A);
      expect(await store.getStatus(partner)).toMatchObject({
        lastResult: "rejected",
        lastErrorCode: "ERR_FETCH_STATUS",
        consecutiveFailures: 3,
      });

      await store.commitFetch(partner, fence, statusOnly, fetched(T0 + 300, { result: "unchanged", etag: '"v2"' }), A);
      expect(await store.getStatus(partner)).toEqual({
        lastAttemptAt: T0 + 300,
        lastSuccessAt: T0 + 300,
        lastChangeAt: T0,
        lastResult: "unchanged",
        // The last error stays on record after the recovery.
        lastErrorCode: "ERR_FETCH_STATUS",
        lastErrorAt: T0 + 200,
        consecutiveFailures: 0,
        nextRefreshAt: T0 + 60_300,
        etag: '"v2"',
        writtenBy: "replica-a",
      });
      expect(await store.getBundle(partner)).toMatchObject({ digest: digest(1), acceptedAt: T0 });
      expect(await store.getHistory(partner, 10)).toHaveLength(1);
    });

    it("starts the status of a relationship that never succeeded", async () => {
      const { store } = await openFresh();
      const { fence } = await lease(store);
      await store.commitFetch(
        partner,
        fence,
        statusOnly,
        fetched(T0, { success: false, result: "ERR_FETCH_DNS", errorCode: "ERR_FETCH_DNS" }),
        A,
      );
      expect(await store.getStatus(partner)).toEqual({
        lastAttemptAt: T0,
        lastResult: "ERR_FETCH_DNS",
        lastErrorCode: "ERR_FETCH_DNS",
        lastErrorAt: T0,
        consecutiveFailures: 1,
        nextRefreshAt: T0 + 60_000,
        writtenBy: "replica-a",
      });
      expect(await store.getBundle(partner)).toBeUndefined();
    });

    it("stores times as whole ms", async () => {
      const { store } = await openFresh();
      await store.commitFetch(partner, 0, statusOnly, fetched(T0 + 0.4, { nextRefreshAt: T0 + 1234.9 }), A);
      expect(await store.getStatus(partner)).toMatchObject({ lastAttemptAt: T0, nextRefreshAt: T0 + 1234 });
    });

    it.each([
      ["a negative fence", -1, accepted(1, ""), {}],
      ["a fractional fence", 1.5, accepted(1, ""), {}],
      ["a sequence with a leading zero", 0, accepted(1, "", "07"), {}],
      ["a sequence past 2^64-1", 0, accepted(1, "", "18446744073709551616"), {}],
      ["a digest that is not hex SHA-256", 0, { ...accepted(1, ""), bundle: { json: "{}", digest: "ABC" } }, {}],
      ["a quarantine sequence that is not decimal", 0, quarantined(1, "", "1e3"), {}],
      ["a history limit of 0", 0, accepted(1, ""), { historyLimit: 0 }],
      ["a time that is not a number", 0, statusOnly, { at: Number.NaN }],
      ["a negative time", 0, statusOnly, { nextRefreshAt: -1 }],
    ] as const)("refuses %s and writes nothing", async (_name, fence, outcome, overrides) => {
      const { store } = await openFresh();
      const { historyLimit, ...statusOverrides } = { historyLimit: 10, ...overrides };
      await expect(
        store.commitFetch(partner, fence, outcome as FetchOutcome, fetched(T0, statusOverrides), {
          historyLimit,
          origin: "a",
        }),
      ).rejects.toMatchObject({ code: "ERR_STORE_BAD_ARGUMENT" });
      expect(await store.getBundle(partner)).toBeUndefined();
      expect(await store.getStatus(partner)).toBeUndefined();
    });
  });

  describe(`${name}: quarantine decisions, sequence reset, removal`, () => {
    /** A bundle and a quarantine beside it; the recorder holds only what happens after. */
    const withQuarantine = async () => {
      const fresh = await openFresh();
      const { store } = fresh;
      const recorder = recordEvents(store);
      const { fence } = await lease(store);
      await store.commitFetch(partner, fence, accepted(1, "", "5"), fetched(T0), A);
      await store.commitFetch(partner, fence, quarantined(2, digest(1), "9"), fetched(T0 + 1), A);
      // Redis tells asynchronously: the setup's own events must be in before the test's are counted.
      await recorder.waitFor(2);
      recorder.events.length = 0;
      return { ...fresh, fence, recorder };
    };

    it("promotes the quarantined bundle a person accepted, recording why", async () => {
      const { store, recorder } = await withQuarantine();
      const options = { at: T0 + 50, historyLimit: 10, origin: "api" };
      expect(await store.acceptQuarantine(partner, digest(7), options)).toBe(false);
      expect(await store.getBundle(partner)).toMatchObject({ digest: digest(1) });

      expect(await store.acceptQuarantine(partner, digest(2), options)).toBe(true);
      expect(await store.getBundle(partner)).toEqual({
        json: content(2).json,
        digest: digest(2),
        sequence: "9",
        refreshHintSeconds: 302,
        acceptedAt: T0 + 50,
      });
      expect(await store.getQuarantine(partner)).toBeUndefined();
      expect((await store.getHistory(partner, 10))[0]).toEqual({
        at: T0 + 50,
        digest: digest(2),
        sequence: "9",
        event: "quarantine_accepted",
        reasons: ["FULL_REPLACEMENT", "AUTHORITIES_ADDED"],
        added: ["fp-2"],
        removed: ["fp-old"],
      });
      expect(await store.getStatus(partner)).toMatchObject({ lastChangeAt: T0 + 50, lastAttemptAt: T0 + 1 });
      expect(await recorder.waitFor(1)).toEqual([
        { trustDomain: partner, kind: "bundle", digest: digest(2), sequence: "9", origin: "api" },
      ]);
      expect(await store.acceptQuarantine(partner, digest(2), options)).toBe(false);
    });

    it("promotes a quarantine recorded without its diff", async () => {
      const { store } = await openFresh();
      const { fence } = await lease(store);
      const bare: FetchOutcome = {
        kind: "quarantined",
        quarantine: { json: "{}", digest: digest(3), reasons: ["SEQUENCE_REUSED"] },
        previousDigest: "",
      };
      await store.commitFetch(partner, fence, bare, fetched(T0), A);
      expect(await store.getQuarantine(partner)).toEqual({ ...bare.quarantine, quarantinedAt: T0 });
      expect(await store.acceptQuarantine(partner, digest(3), { at: T0 + 1, historyLimit: 10, origin: "api" })).toBe(
        true,
      );
      expect(await store.getBundle(partner)).toEqual({ json: "{}", digest: digest(3), acceptedAt: T0 + 1 });
      expect(await store.getHistory(partner, 10)).toEqual([
        {
          at: T0 + 1,
          digest: digest(3),
          event: "quarantine_accepted",
          reasons: ["SEQUENCE_REUSED"],
          added: [],
          removed: [],
        },
      ]);
    });

    it("discards the quarantined bundle a person refused, keeping the last-known-good", async () => {
      const { store, recorder } = await withQuarantine();
      expect(await store.discardQuarantine(partner, digest(7), { origin: "api" })).toBe(false);
      expect(await store.getQuarantine(partner)).toMatchObject({ digest: digest(2) });
      expect(await store.discardQuarantine(partner, digest(2), { origin: "api" })).toBe(true);
      expect(await store.getQuarantine(partner)).toBeUndefined();
      expect(await store.getBundle(partner)).toMatchObject({ digest: digest(1), sequence: "5" });
      expect(await store.discardQuarantine(partner, digest(2), { origin: "api" })).toBe(false);
      expect(await store.acceptQuarantine(partner, digest(2), { at: T0, historyLimit: 10, origin: "api" })).toBe(false);
      expect(await recorder.waitFor(1)).toEqual([{ trustDomain: partner, kind: "quarantine", origin: "api" }]);
    });

    it("resets the stored sequence, keeping the JSON as served and recording the old sequence", async () => {
      const { store, fence, recorder } = await withQuarantine();
      const served = (await store.getBundle(partner))!;
      await store.resetSequence(partner, { at: T0 + 70, historyLimit: 10, origin: "api" });
      const { sequence: _forgotten, ...rest } = served;
      expect(await store.getBundle(partner)).toEqual(rest);
      expect((await store.getHistory(partner, 10))[0]).toEqual({
        at: T0 + 70,
        digest: digest(1),
        sequence: "5",
        event: "sequence_reset",
        reasons: [],
        added: [],
        removed: [],
      });
      expect(await store.getQuarantine(partner)).toMatchObject({ digest: digest(2) });
      expect(await recorder.waitFor(1)).toEqual([
        { trustDomain: partner, kind: "bundle", digest: digest(1), origin: "api" },
      ]);
      // The next accepted bundle is decided against the same digest and may carry any sequence.
      expect(await store.commitFetch(partner, fence, accepted(3, digest(1), "1"), fetched(T0 + 80), A)).toEqual({
        ok: true,
      });
    });

    it("does nothing when resetting the sequence of a relationship with no bundle", async () => {
      const { store } = await openFresh();
      const recorder = recordEvents(store);
      await store.resetSequence(partner, { at: T0, historyLimit: 10, origin: "api" });
      expect(await store.getBundle(partner)).toBeUndefined();
      expect(await store.getHistory(partner, 10)).toEqual([]);
      await store.discardQuarantine(partner, digest(1), { origin: "api" });
      await store.removeRelationship(other, { origin: "marker" });
      expect((await recorder.waitFor(1)).map((event) => event.origin)).toEqual(["marker"]);
    });

    it("removes a relationship but keeps its history, and fences out a fetch still running", async () => {
      const { store, fence, recorder } = await withQuarantine();
      const history = await store.getHistory(partner, 10);
      await store.removeRelationship(partner, { origin: "api" });
      expect(await store.getBundle(partner)).toBeUndefined();
      expect(await store.getQuarantine(partner)).toBeUndefined();
      expect(await store.getStatus(partner)).toBeUndefined();
      expect(await store.getHistory(partner, 10)).toEqual(history);
      expect(await recorder.waitFor(1)).toEqual([{ trustDomain: partner, kind: "removed", origin: "api" }]);

      // The lease went with it, and the fetch that ran under it cannot write the relationship back.
      expect(await store.commitFetch(partner, fence, statusOnly, fetched(T0 + 5), A)).toEqual({
        ok: false,
        reason: "stale_fence",
      });
      expect(await store.getStatus(partner)).toBeUndefined();
      const next = await store.acquireLease(partner, "poller", ttl);
      expect(next!.fence).toBeGreaterThan(fence);
      expect(await store.commitFetch(partner, next!.fence, accepted(4, ""), fetched(T0 + 6), A)).toEqual({ ok: true });
      expect(await store.getHistory(partner, 10)).toHaveLength(history.length + 1);
    });
  });

  describe(`${name}: change events`, () => {
    it("tells every subscriber each change in order, nothing for status-only writes, nothing after unsubscribe", async () => {
      const { store } = await openFresh();
      const first = recordEvents(store);
      const second = recordEvents(store);
      const { fence } = await lease(store);
      await store.commitFetch(partner, fence, accepted(1, ""), fetched(T0), A);
      await store.commitFetch(partner, fence, statusOnly, fetched(T0 + 1, { result: "unchanged" }), A);
      await store.commitFetch(partner, fence, quarantined(2, digest(1)), fetched(T0 + 2), A);
      await store.discardQuarantine(partner, digest(2), A);
      await store.resetSequence(partner, { ...A, at: T0 + 3 });
      await store.removeRelationship(partner, A);
      const kinds = ["bundle", "quarantine", "quarantine", "bundle", "removed"];
      expect((await first.waitFor(5)).map((event) => event.kind)).toEqual(kinds);
      expect((await second.waitFor(5)).map((event) => event.kind)).toEqual(kinds);

      second.unsubscribe();
      await store.removeRelationship(other, A);
      await first.waitFor(6);
      await store.removeRelationship(other, A);
      await first.waitFor(7);
      expect(second.events).toHaveLength(5);
    });

    it("keeps telling the other subscribers when one throws", async () => {
      const { store } = await openFresh();
      store.subscribe(() => {
        throw new Error("listener bug");
      });
      const recorder = recordEvents(store);
      await store.removeRelationship(partner, A);
      await store.removeRelationship(other, A);
      expect((await recorder.waitFor(2)).map((event) => event.trustDomain)).toEqual([partner, other]);
    });
  });

  describe(`${name}: sequences`, () => {
    it("keeps sequences up to 2^64-1 exact in bundles, quarantines, history and events", async () => {
      const { store } = await openFresh();
      const recorder = recordEvents(store);
      const { fence } = await lease(store);
      await store.commitFetch(partner, fence, accepted(1, "", "18446744073709551614"), fetched(T0), A);
      await store.commitFetch(partner, fence, quarantined(2, digest(1), MAX_SEQUENCE), fetched(T0), A);
      expect((await store.getBundle(partner))?.sequence).toBe("18446744073709551614");
      expect((await store.getQuarantine(partner))?.sequence).toBe(MAX_SEQUENCE);
      await store.acceptQuarantine(partner, digest(2), { ...A, at: T0 + 1 });
      expect((await store.getBundle(partner))?.sequence).toBe(MAX_SEQUENCE);
      expect((await store.getHistory(partner, 2)).map((entry) => entry.sequence)).toEqual([
        MAX_SEQUENCE,
        "18446744073709551614",
      ]);
      expect((await recorder.waitFor(3)).map((event) => event.sequence)).toEqual([
        "18446744073709551614",
        MAX_SEQUENCE,
        MAX_SEQUENCE,
      ]);
      await store.commitFetch(partner, fence, accepted(3, digest(2), "0"), fetched(T0 + 2), A);
      expect((await store.getBundle(partner))?.sequence).toBe("0");
    });
  });

  describe.runIf(backend.replicas)(`${name}: replicas`, () => {
    it("shares state, leases and change events between replicas", async () => {
      const { store: a, replica } = await openFresh();
      const b = await replica!();
      opened.push(b);
      const seenByA = recordEvents(a);
      const seenByB = recordEvents(b);

      const held = (await a.acquireLease(partner, "a", 60_000))!;
      expect(await b.acquireLease(partner, "b", 60_000)).toBeUndefined();
      await a.commitFetch(partner, held.fence, accepted(1, ""), fetched(T0), by("a"));
      expect(await b.getBundle(partner)).toMatchObject({ digest: digest(1) });
      await a.releaseLease(partner, held);

      const next = (await b.acquireLease(partner, "b", 60_000))!;
      expect(next.fence).toBeGreaterThan(held.fence);
      await b.commitFetch(partner, next.fence, quarantined(2, digest(1)), fetched(T0 + 1), by("b"));
      expect(await a.commitFetch(partner, held.fence, accepted(3, digest(1)), fetched(T0 + 2), by("a"))).toEqual({
        ok: false,
        reason: "stale_fence",
      });

      const told = [
        ["bundle", "a"],
        ["quarantine", "b"],
      ];
      expect((await seenByA.waitFor(2)).map((event) => [event.kind, event.origin])).toEqual(told);
      expect((await seenByB.waitFor(2)).map((event) => [event.kind, event.origin])).toEqual(told);
    });
  });

  adminStoreContract(name, backend, openFresh, (store) => opened.push(store));

  describe.runIf(backend.durable)(`${name}: durability`, () => {
    it("keeps bundles, quarantines, statuses, history and fences across a reopen", async () => {
      const { store, reopen } = await openFresh();
      const { fence } = await lease(store);
      await store.commitFetch(partner, fence, accepted(1, "", MAX_SEQUENCE), fetched(T0, { etag: '"x"' }), A);
      await store.commitFetch(partner, fence, quarantined(2, digest(1), "3"), fetched(T0 + 1), A);
      await store.commitFetch(
        other,
        0,
        statusOnly,
        fetched(T0, { success: false, result: "ERR_X", errorCode: "ERR_X" }),
        A,
      );
      const before = {
        bundle: await store.getBundle(partner),
        quarantine: await store.getQuarantine(partner),
        status: await store.getStatus(partner),
        otherStatus: await store.getStatus(other),
        history: await store.getHistory(partner, 10),
      };

      const again = await reopen!();
      opened.push(again);
      expect({
        bundle: await again.getBundle(partner),
        quarantine: await again.getQuarantine(partner),
        status: await again.getStatus(partner),
        otherStatus: await again.getStatus(other),
        history: await again.getHistory(partner, 10),
      }).toEqual(before);
      expect(before.bundle?.sequence).toBe(MAX_SEQUENCE);
      // The fence outlives the reopen: the old fence still writes, a new lease gets a newer one.
      expect(await again.commitFetch(partner, fence - 1, statusOnly, fetched(T0 + 2), A)).toMatchObject({ ok: false });
      expect(await again.commitFetch(partner, fence, statusOnly, fetched(T0 + 2), A)).toEqual({ ok: true });
    });

    it('keeps a relationship whose trust domain is named "__proto__"', async () => {
      const { store, reopen } = await openFresh();
      const proto = "__proto__" as TrustDomain;
      const held = await store.acquireLease(proto, "replica-a", 60_000);
      await store.commitFetch(proto, held!.fence, accepted(1, "", "4"), fetched(T0), A);
      const again = await reopen!();
      opened.push(again);
      expect((await again.getBundle(proto))?.sequence).toBe("4");
      expect(await again.commitFetch(proto, held!.fence - 1, statusOnly, fetched(T0 + 1), A)).toMatchObject({
        ok: false,
      });
    });
  });
}
