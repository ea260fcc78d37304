/**
 * The Store in process memory, with an optional snapshot file so a single node keeps its state across
 * restarts. For development, tests and single nodes; replicas must share Redis instead.
 *
 * Each operation changes memory synchronously (so it is atomic within the process) and then writes
 * the snapshot: to a temporary file, flushed, then renamed over the old one, so a crash leaves either
 * the old or the new snapshot, never half of one. Leases live in memory only: after a restart nobody
 * holds one, and the persisted fences keep the next lease newer than anything written before.
 *
 * Change events are delivered synchronously, in the same tick as the memory change and before the
 * snapshot is written: a listener reading the store sees the new state, and by the time the write's
 * promise settles every listener has run. A listener that throws is logged and the others still run.
 * If the snapshot write then fails, the operation rejects with ERR_STORE_SNAPSHOT_WRITE, but memory
 * (what this process serves) and the event already reflect the change.
 *
 * Snapshot versions: 1 holds the local bundle and the relationships' state; 2 adds the admin state
 * (embedded-admin.ts). A snapshot is written as version 1 while there is no admin state, so an older
 * bundlegate can still start from it; once there is, version 2 makes an older one refuse to start
 * rather than start without the records and then overwrite them. Both versions are read.
 */
import { randomUUID } from "node:crypto";
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "../../logging.js";
import { MAX_SEQUENCE } from "../../spiffe/bundle.js";
import { isTrustDomain, type TrustDomain } from "../../spiffe/id.js";
import { isJsonObject, type JsonObject } from "../admin-records.js";
import { checkCommit, checkWholeNumber, isDigest, isSequence, isWholeNumber, StoreError, wholeMs } from "../errors.js";
import type {
  BundleChangeEvent,
  CommitResult,
  HistoryEntry,
  Lease,
  QuarantinedBundle,
  RelationshipStatus,
  StoredBundle,
} from "../federation-state.js";
import { copyHistoryEntry } from "../history.js";
import { createListeners } from "../listeners.js";
import type { LocalBundleState, RecordSequenceResult } from "../local-bundle-state.js";
import type { Store, StoreHealth } from "../types.js";
import {
  type AdminSnapshot,
  createEmbeddedAdmin,
  DEFAULT_EMBEDDED_AUDIT_MAX_ENTRIES,
  type RestoredAdminState,
  readAdminSnapshot,
} from "./embedded-admin.js";

const SNAPSHOT_VERSION = 1;
const ADMIN_SNAPSHOT_VERSION = 2;

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

interface Snapshot extends AdminSnapshot {
  version: number;
  localBundle?: { contentDigest: string; sequence: string };
  /** Keyed by trust domain. */
  relationships?: Record<string, RelationshipSnapshot>;
}

interface RelationshipSnapshot {
  bundle?: StoredBundle;
  status?: RelationshipStatus;
  quarantine?: QuarantinedBundle;
  history: HistoryEntry[];
  fence: number;
}

interface RelationshipState {
  bundle?: StoredBundle | undefined;
  status?: RelationshipStatus | undefined;
  quarantine?: QuarantinedBundle | undefined;
  /** Newest first. */
  history: HistoryEntry[];
  fence: number;
  lease?: { token: string; expiresAt: number } | undefined;
}

export interface EmbeddedStoreOptions {
  readonly snapshotFile?: string;
  readonly logger: Logger;
  /** Lease time in ms since the epoch; tests pass a clock they move to expire leases. Default Date.now. */
  readonly now?: () => number;
  /** Audit entries kept, oldest dropped first; default 1000 (each write saves them all). */
  readonly auditMaxEntries?: number;
}

export async function openEmbeddedStore(options: EmbeddedStoreOptions): Promise<Store> {
  const restored = options.snapshotFile ? await readSnapshot(options.snapshotFile) : undefined;
  let localBundle = restored?.localBundle;
  const relationships = restored?.relationships ?? new Map<TrustDomain, RelationshipState>();
  const now = options.now ?? Date.now;
  const listeners = createListeners<BundleChangeEvent>(options.logger, "bundle change");
  let writes: Promise<void> = Promise.resolve();

  const persist = (): Promise<void> => {
    const file = options.snapshotFile;
    if (!file) return Promise.resolve();
    const adminState = admin.snapshot();
    const snapshot: Snapshot = { version: adminState ? ADMIN_SNAPSHOT_VERSION : SNAPSHOT_VERSION };
    if (localBundle) {
      snapshot.localBundle = { contentDigest: localBundle.contentDigest, sequence: localBundle.sequence.toString() };
    }
    // fromEntries, not assignment: "__proto__" is a valid trust domain name.
    const saved: Record<string, RelationshipSnapshot> = Object.fromEntries(
      [...relationships].map(([trustDomain, state]) => {
        const entry: RelationshipSnapshot = { history: state.history, fence: state.fence };
        if (state.bundle) entry.bundle = state.bundle;
        if (state.status) entry.status = state.status;
        if (state.quarantine) entry.quarantine = state.quarantine;
        return [trustDomain, entry];
      }),
    );
    if (relationships.size > 0) snapshot.relationships = saved;
    if (adminState) Object.assign(snapshot, adminState);
    // Serialized now, not when the write gets its turn: the history arrays change in place, and a
    // snapshot must hold one moment's state, not this write's bundle with a later write's history.
    const text = `${JSON.stringify(snapshot, null, 2)}\n`;
    // Writes run one after another so an older snapshot never lands after a newer one.
    writes = writes.catch(() => undefined).then(() => writeSnapshot(file, text));
    return writes;
  };

  const admin = createEmbeddedAdmin({
    restored: restored?.admin,
    persist,
    now,
    logger: options.logger,
    // Every write saves the whole snapshot, audit included, on the loop the endpoint shares: the embedded
    // store keeps at most its own default whatever a larger admin.audit_limit asks (Redis keeps that many).
    auditMaxEntries: Math.min(
      options.auditMaxEntries ?? DEFAULT_EMBEDDED_AUDIT_MAX_ENTRIES,
      DEFAULT_EMBEDDED_AUDIT_MAX_ENTRIES,
    ),
  });

  const stateOf = (trustDomain: TrustDomain): RelationshipState => {
    let state = relationships.get(trustDomain);
    if (!state) {
      state = { history: [], fence: 0 };
      relationships.set(trustDomain, state);
    }
    return state;
  };

  const pushHistory = (state: RelationshipState, entry: HistoryEntry, limit: number) => {
    state.history.unshift(entry);
    state.history.length = Math.min(state.history.length, limit);
  };

  /** The lease when someone holds it now; a lapsed one is forgotten on the way. */
  const liveLease = (state: RelationshipState | undefined) => {
    if (state?.lease && state.lease.expiresAt <= now()) state.lease = undefined;
    return state?.lease;
  };

  return {
    kind: "embedded",
    ...admin.store,

    async assignLocalSequence(contentDigest: string): Promise<LocalBundleState> {
      if (localBundle?.contentDigest === contentDigest) return localBundle;
      const previous = localBundle?.sequence ?? 0n;
      if (previous >= MAX_SEQUENCE) throw new StoreError("ERR_SEQUENCE_EXHAUSTED", "the local sequence reached 2^64-1");
      localBundle = { contentDigest, sequence: previous + 1n };
      const assigned = localBundle;
      await persist();
      return assigned;
    },

    async recordLocalSequence(contentDigest: string, sequence: bigint): Promise<RecordSequenceResult> {
      const stored = localBundle;
      if (
        stored &&
        (sequence < stored.sequence || (sequence === stored.sequence && contentDigest !== stored.contentDigest))
      ) {
        return { ok: false, stored };
      }
      localBundle = { contentDigest, sequence };
      const state = localBundle;
      await persist();
      return { ok: true, state };
    },

    async getLocalBundleState(): Promise<LocalBundleState | undefined> {
      return localBundle;
    },

    async getBundle(trustDomain) {
      return relationships.get(trustDomain)?.bundle;
    },

    async getStatus(trustDomain) {
      return relationships.get(trustDomain)?.status;
    },

    async getQuarantine(trustDomain) {
      return relationships.get(trustDomain)?.quarantine;
    },

    async getHistory(trustDomain, limit) {
      if (!(limit >= 1)) return [];
      return (relationships.get(trustDomain)?.history ?? []).slice(0, Math.floor(limit));
    },

    async acquireLease(trustDomain, holder, ttlMs): Promise<Lease | undefined> {
      checkWholeNumber("ttlMs", ttlMs, 1);
      if (liveLease(relationships.get(trustDomain))) return undefined;
      const state = stateOf(trustDomain);
      state.fence += 1;
      const lease = { token: `${holder}/${randomUUID()}`, fence: state.fence };
      state.lease = { token: lease.token, expiresAt: now() + ttlMs };
      // The fence must survive a restart, or a new lease could repeat a fence that already wrote.
      await persist();
      return lease;
    },

    async renewLease(trustDomain, lease, ttlMs) {
      checkWholeNumber("ttlMs", ttlMs, 1);
      const state = relationships.get(trustDomain);
      const held = liveLease(state);
      if (!held || held.token !== lease.token) return false;
      held.expiresAt = now() + ttlMs;
      return true;
    },

    async releaseLease(trustDomain, lease) {
      const state = relationships.get(trustDomain);
      if (state && liveLease(state)?.token === lease.token) state.lease = undefined;
    },

    async commitFetch(trustDomain, fence, outcome, status, commitOptions): Promise<CommitResult> {
      const update = checkCommit(fence, outcome, status, commitOptions.historyLimit);
      const existing = relationships.get(trustDomain);
      if (fence < (existing?.fence ?? 0)) return { ok: false, reason: "stale_fence" };
      if (outcome.kind !== "status_only") {
        const current = existing?.bundle?.digest ?? "";
        if (current !== outcome.previousDigest) return { ok: false, reason: "digest_conflict", currentDigest: current };
      }
      const state = stateOf(trustDomain);
      // A fence newer than any given out becomes the floor, so the next lease is newer than this write.
      state.fence = Math.max(state.fence, fence);
      const at = update.at;
      let event: BundleChangeEvent | undefined;

      if (outcome.kind === "accepted") {
        const { bundle } = outcome;
        state.bundle = {
          json: bundle.json,
          digest: bundle.digest,
          ...(bundle.sequence === undefined ? {} : { sequence: bundle.sequence }),
          ...(bundle.refreshHintSeconds === undefined ? {} : { refreshHintSeconds: bundle.refreshHintSeconds }),
          acceptedAt: state.bundle?.digest === bundle.digest ? state.bundle.acceptedAt : at,
        };
        state.quarantine = undefined;
        pushHistory(state, copyHistoryEntry({ ...outcome.history, at }), commitOptions.historyLimit);
        event = changeEvent(trustDomain, "bundle", commitOptions.origin, bundle);
      } else if (outcome.kind === "quarantined") {
        const { quarantine } = outcome;
        state.quarantine = {
          json: quarantine.json,
          digest: quarantine.digest,
          ...(quarantine.sequence === undefined ? {} : { sequence: quarantine.sequence }),
          ...(quarantine.refreshHintSeconds === undefined ? {} : { refreshHintSeconds: quarantine.refreshHintSeconds }),
          reasons: [...quarantine.reasons],
          ...(quarantine.added === undefined ? {} : { added: [...quarantine.added] }),
          ...(quarantine.removed === undefined ? {} : { removed: [...quarantine.removed] }),
          quarantinedAt: state.quarantine?.digest === quarantine.digest ? state.quarantine.quarantinedAt : at,
        };
        event = changeEvent(trustDomain, "quarantine", commitOptions.origin, quarantine);
      }

      const next: Mutable<RelationshipStatus> = { ...(state.status ?? { consecutiveFailures: 0 }) };
      next.lastAttemptAt = at;
      next.lastResult = update.result;
      next.nextRefreshAt = update.nextRefreshAt;
      next.writtenBy = commitOptions.origin;
      if (update.success) {
        next.lastSuccessAt = at;
        next.consecutiveFailures = 0;
      } else {
        next.consecutiveFailures += 1;
      }
      if (update.errorCode !== undefined) {
        next.lastErrorCode = update.errorCode;
        next.lastErrorAt = at;
      }
      if (update.etag !== undefined) next.etag = update.etag;
      if (outcome.kind === "accepted") next.lastChangeAt = at;
      state.status = next;

      if (event) listeners.emit(event);
      await persist();
      return { ok: true };
    },

    async acceptQuarantine(trustDomain, digest, acceptOptions) {
      checkWholeNumber("historyLimit", acceptOptions.historyLimit, 1);
      const at = wholeMs("at", acceptOptions.at);
      const state = relationships.get(trustDomain);
      const held = state?.quarantine;
      if (!state || !held || held.digest !== digest) return false;
      state.bundle = {
        json: held.json,
        digest: held.digest,
        ...(held.sequence === undefined ? {} : { sequence: held.sequence }),
        ...(held.refreshHintSeconds === undefined ? {} : { refreshHintSeconds: held.refreshHintSeconds }),
        acceptedAt: at,
      };
      state.quarantine = undefined;
      pushHistory(
        state,
        {
          at,
          digest: held.digest,
          ...(held.sequence === undefined ? {} : { sequence: held.sequence }),
          event: "quarantine_accepted",
          reasons: held.reasons,
          added: held.added ?? [],
          removed: held.removed ?? [],
        },
        acceptOptions.historyLimit,
      );
      state.status = {
        ...(state.status ?? { consecutiveFailures: 0 }),
        lastChangeAt: at,
        writtenBy: acceptOptions.origin,
      };
      listeners.emit(changeEvent(trustDomain, "bundle", acceptOptions.origin, held));
      await persist();
      return true;
    },

    async discardQuarantine(trustDomain, digest, discardOptions) {
      const state = relationships.get(trustDomain);
      if (!state?.quarantine || state.quarantine.digest !== digest) return false;
      state.quarantine = undefined;
      listeners.emit(changeEvent(trustDomain, "quarantine", discardOptions.origin));
      await persist();
      return true;
    },

    async resetSequence(trustDomain, resetOptions) {
      checkWholeNumber("historyLimit", resetOptions.historyLimit, 1);
      const at = wholeMs("at", resetOptions.at);
      const state = relationships.get(trustDomain);
      const bundle = state?.bundle;
      if (!state || !bundle) return;
      const { sequence, ...rest } = bundle;
      state.bundle = rest;
      pushHistory(
        state,
        {
          at,
          digest: bundle.digest,
          ...(sequence === undefined ? {} : { sequence }),
          event: "sequence_reset",
          reasons: [],
          added: [],
          removed: [],
        },
        resetOptions.historyLimit,
      );
      listeners.emit(changeEvent(trustDomain, "bundle", resetOptions.origin, rest));
      await persist();
    },

    async removeRelationship(trustDomain, removeOptions) {
      const state = stateOf(trustDomain);
      state.bundle = undefined;
      state.quarantine = undefined;
      state.status = undefined;
      state.lease = undefined;
      state.fence += 1;
      listeners.emit(changeEvent(trustDomain, "removed", removeOptions.origin));
      await persist();
    },

    subscribe: listeners.subscribe,

    async health(): Promise<StoreHealth> {
      return { ok: true };
    },

    async close(): Promise<void> {
      listeners.clear();
      admin.close();
      await writes.catch(() => undefined);
    },
  };
}

function changeEvent(
  trustDomain: TrustDomain,
  kind: BundleChangeEvent["kind"],
  origin: string,
  content?: { readonly digest: string; readonly sequence?: string },
): BundleChangeEvent {
  return {
    trustDomain,
    kind,
    origin,
    ...(content ? { digest: content.digest } : {}),
    ...(content?.sequence === undefined ? {} : { sequence: content.sequence }),
  };
}

interface RestoredState {
  localBundle?: LocalBundleState;
  relationships: Map<TrustDomain, RelationshipState>;
  admin: RestoredAdminState;
}

async function readSnapshot(file: string): Promise<RestoredState | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new StoreError("ERR_STORE_SNAPSHOT_UNREADABLE", `cannot read snapshot ${file}`, { cause });
  }
  try {
    const snapshot = JSON.parse(text) as Snapshot;
    if (!isJsonObject(snapshot)) throw new Error("not a JSON object");
    if (snapshot.version !== SNAPSHOT_VERSION && snapshot.version !== ADMIN_SNAPSHOT_VERSION) {
      throw new Error(`unknown snapshot version ${String(snapshot.version)}`);
    }
    const restored: RestoredState = {
      relationships: readRelationships(snapshot.relationships),
      admin: readAdminSnapshot(snapshot as unknown as Record<string, unknown>),
    };
    const local = snapshot.localBundle;
    if (local) {
      if (!isDigest(local.contentDigest) || !isSequence(local.sequence)) {
        throw new Error("malformed localBundle entry");
      }
      restored.localBundle = { contentDigest: local.contentDigest, sequence: BigInt(local.sequence) };
    }
    return restored;
  } catch (cause) {
    // Refusing to start beats silently restarting the sequence at 1, which partners would reject as a
    // rollback, or forgetting a fence, which would let a stale writer through.
    throw new StoreError(
      "ERR_STORE_CORRUPT",
      `snapshot ${file} is not a bundlegate snapshot: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
}

/*
 * Snapshot entries are checked member by member: the file may have been edited by hand, and a value
 * taken on trust here would surface later as a wrong answer rather than a refusal to start.
 */

function malformed(where: string, member: string): Error {
  return new Error(`malformed ${where}: ${member}`);
}

function requireText(value: JsonObject, member: string, where: string): string {
  const text = value[member];
  if (typeof text !== "string") throw malformed(where, member);
  return text;
}

function optionalText(value: JsonObject, member: string, where: string): string | undefined {
  if (value[member] === undefined) return undefined;
  return requireText(value, member, where);
}

function requireNumber(value: JsonObject, member: string, where: string): number {
  const number = value[member];
  if (!isWholeNumber(number)) throw malformed(where, member);
  return number;
}

function optionalNumber(value: JsonObject, member: string, where: string): number | undefined {
  if (value[member] === undefined) return undefined;
  return requireNumber(value, member, where);
}

function requireDigest(value: JsonObject, where: string): string {
  const digest = value.digest;
  if (!isDigest(digest)) throw malformed(where, "digest");
  return digest;
}

function optionalSequence(value: JsonObject, where: string): { sequence?: string } {
  const sequence = value.sequence;
  if (sequence === undefined) return {};
  if (!isSequence(sequence)) throw malformed(where, "sequence");
  return { sequence };
}

function requireList(value: JsonObject, member: string, where: string): string[] {
  const list = value[member];
  if (!Array.isArray(list) || !list.every((item) => typeof item === "string")) throw malformed(where, member);
  return list as string[];
}

function optionalMember<K extends string, V>(member: K, read: V | undefined): { [P in K]?: V } {
  return (read === undefined ? {} : { [member]: read }) as { [P in K]?: V };
}

function readRelationships(value: unknown): Map<TrustDomain, RelationshipState> {
  const relationships = new Map<TrustDomain, RelationshipState>();
  if (value === undefined) return relationships;
  if (!isJsonObject(value)) throw new Error("malformed relationships");
  for (const [name, entry] of Object.entries(value)) {
    if (!isTrustDomain(name)) throw new Error(`malformed relationships: ${JSON.stringify(name)} is not a trust domain`);
    const where = `relationship ${name}`;
    if (!isJsonObject(entry)) throw malformed(where, "entry");
    if (!Array.isArray(entry.history)) throw malformed(where, "history");
    const state: RelationshipState = {
      history: entry.history.map((item, index) => readHistoryEntry(item, `${where} history[${index}]`)),
      fence: requireNumber(entry, "fence", where),
    };
    if (entry.bundle !== undefined) state.bundle = readBundle(entry.bundle, `${where} bundle`);
    if (entry.status !== undefined) state.status = readStatus(entry.status, `${where} status`);
    if (entry.quarantine !== undefined) state.quarantine = readQuarantine(entry.quarantine, `${where} quarantine`);
    relationships.set(name, state);
  }
  return relationships;
}

function readBundle(value: unknown, where: string): StoredBundle {
  if (!isJsonObject(value)) throw malformed(where, "entry");
  return {
    json: requireText(value, "json", where),
    digest: requireDigest(value, where),
    ...optionalSequence(value, where),
    ...optionalMember("refreshHintSeconds", optionalNumber(value, "refreshHintSeconds", where)),
    acceptedAt: requireNumber(value, "acceptedAt", where),
  };
}

function readQuarantine(value: unknown, where: string): QuarantinedBundle {
  if (!isJsonObject(value)) throw malformed(where, "entry");
  return {
    json: requireText(value, "json", where),
    digest: requireDigest(value, where),
    ...optionalSequence(value, where),
    ...optionalMember("refreshHintSeconds", optionalNumber(value, "refreshHintSeconds", where)),
    reasons: requireList(value, "reasons", where),
    ...optionalMember("added", value.added === undefined ? undefined : requireList(value, "added", where)),
    ...optionalMember("removed", value.removed === undefined ? undefined : requireList(value, "removed", where)),
    quarantinedAt: requireNumber(value, "quarantinedAt", where),
  };
}

const STATUS_TIMES = ["lastAttemptAt", "lastSuccessAt", "lastChangeAt", "lastErrorAt", "nextRefreshAt"] as const;
const STATUS_TEXTS = ["lastResult", "lastErrorCode", "etag", "writtenBy"] as const;

function readStatus(value: unknown, where: string): RelationshipStatus {
  if (!isJsonObject(value)) throw malformed(where, "entry");
  const status: Mutable<RelationshipStatus> = {
    consecutiveFailures: requireNumber(value, "consecutiveFailures", where),
  };
  for (const member of STATUS_TIMES) {
    const time = optionalNumber(value, member, where);
    if (time !== undefined) status[member] = time;
  }
  for (const member of STATUS_TEXTS) {
    const text = optionalText(value, member, where);
    if (text !== undefined) status[member] = text;
  }
  return status;
}

function readHistoryEntry(value: unknown, where: string): HistoryEntry {
  if (!isJsonObject(value)) throw malformed(where, "entry");
  return {
    at: requireNumber(value, "at", where),
    digest: requireDigest(value, where),
    ...optionalSequence(value, where),
    event: requireText(value, "event", where),
    reasons: requireList(value, "reasons", where),
    added: requireList(value, "added", where),
    removed: requireList(value, "removed", where),
  };
}

async function writeSnapshot(file: string, text: string): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    await mkdir(dirname(file), { recursive: true });
    const handle = await open(temporary, "w", 0o600);
    try {
      await handle.writeFile(text);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
  } catch (cause) {
    throw new StoreError("ERR_STORE_SNAPSHOT_WRITE", `cannot write snapshot ${file}`, { cause });
  }
}
