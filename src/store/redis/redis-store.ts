/** The Store on Redis: shared by every replica; every atomic operation is one Lua script (see lua/). */
import { randomUUID } from "node:crypto";
import type { Redis } from "ioredis";
import type { Logger } from "../../logging.js";
import { isTrustDomain, type TrustDomain } from "../../spiffe/id.js";
import { checkCommit, checkWholeNumber, isDigest, isSequence, isWholeNumber, StoreError, wholeMs } from "../errors.js";
import type {
  BundleChangeEvent,
  CommitResult,
  FetchOutcome,
  HistoryEntry,
  QuarantinedBundle,
  RelationshipStatus,
  StatusUpdate,
  StoredBundle,
} from "../federation-state.js";
import { copyHistoryEntry } from "../history.js";
import { createListeners } from "../listeners.js";
import type { LocalBundleState, RecordSequenceResult } from "../local-bundle-state.js";
import type { Store, StoreHealth } from "../types.js";
import { attempt, connectRedis, createRedisClient, createSubscriberClient, wrapRedisError } from "./connection.js";
import { createRedisKeys } from "./keys.js";
import { corrupt, parseWholeNumber } from "./read-back.js";
import { createRedisAdmin, DEFAULT_REDIS_AUDIT_MAX_ENTRIES } from "./redis-admin.js";
import { registerScripts } from "./scripts.js";

export interface RedisStoreOptions {
  readonly url: string;
  readonly keyPrefix: string;
  readonly commandTimeoutMs: number;
  readonly trustDomain: TrustDomain;
  readonly logger: Logger;
  /** The audit stream's approximate cap; default 100000. */
  readonly auditMaxEntries?: number;
}

export async function openRedisStore(options: RedisStoreOptions): Promise<Store> {
  const logger = options.logger;
  const client = registerScripts(createRedisClient(options));
  await connectRedis(client, options.url);
  await warnOnEvictionPolicy(client, logger);
  const keys = createRedisKeys(options.keyPrefix);
  const localKey = keys.localBundleState(options.trustDomain);

  const admin = createRedisAdmin({
    client,
    keys,
    auditMaxEntries: options.auditMaxEntries ?? DEFAULT_REDIS_AUDIT_MAX_ENTRIES,
    logger,
  });

  const listeners = createListeners<BundleChangeEvent>(logger, "bundle change");
  const channels = [keys.events, keys.recordEvents];
  const subscriber = await openSubscriber(client, options.url, channels, logger).catch((error: unknown) => {
    client.disconnect();
    throw error;
  });
  subscriber.on("message", (channel: string, message: string) => {
    if (channel === keys.recordEvents) {
      admin.deliver(message);
      return;
    }
    if (channel !== keys.events) return;
    const event = parseChangeEvent(message);
    if (!event) {
      logger.warn({ channel, length: message.length }, "dropped a malformed bundle change event");
      return;
    }
    listeners.emit(event);
  });

  return {
    kind: "redis",
    ...admin.store,

    async assignLocalSequence(contentDigest: string): Promise<LocalBundleState> {
      return attempt("assign local sequence", async () => {
        const [digest, sequence] = await client.assignLocalSequence(localKey, contentDigest);
        return { contentDigest: digest, sequence: BigInt(sequence) };
      });
    },

    async recordLocalSequence(contentDigest: string, sequence: bigint): Promise<RecordSequenceResult> {
      return attempt("record local sequence", async () => {
        const [recorded, digest, stored] = await client.recordLocalSequence(
          localKey,
          contentDigest,
          sequence.toString(),
        );
        const state = { contentDigest: digest, sequence: BigInt(stored) };
        return recorded === 1 ? { ok: true, state } : { ok: false, stored: state };
      });
    },

    async getLocalBundleState(): Promise<LocalBundleState | undefined> {
      return attempt("read local bundle state", async () => {
        const [digest, sequence] = await client.hmget(localKey, "digest", "sequence");
        return digest && sequence ? { contentDigest: digest, sequence: BigInt(sequence) } : undefined;
      });
    },

    async getBundle(trustDomain) {
      const key = keys.bundle(trustDomain);
      return attempt("read bundle", async () => parseBundle(key, await client.hgetall(key)));
    },

    async getStatus(trustDomain) {
      const key = keys.status(trustDomain);
      return attempt("read status", async () => parseStatus(key, await client.hgetall(key)));
    },

    async getQuarantine(trustDomain) {
      const key = keys.quarantine(trustDomain);
      return attempt("read quarantine", async () => parseQuarantine(key, await client.hgetall(key)));
    },

    async getHistory(trustDomain, limit) {
      if (!(limit >= 1)) return [];
      const key = keys.history(trustDomain);
      return attempt("read history", async () => {
        const entries = await client.lrange(key, 0, Math.floor(Math.min(limit, 2 ** 31)) - 1);
        return entries.map((entry) => parseHistoryEntry(key, entry));
      });
    },

    async acquireLease(trustDomain, holder, ttlMs) {
      checkWholeNumber("ttlMs", ttlMs, 1);
      // The holder in the token lets an operator reading the key see who polls the relationship.
      const token = `${holder}/${randomUUID()}`;
      return attempt("acquire lease", async () => {
        const fence = await client.acquireLease(keys.lease(trustDomain), keys.fence(trustDomain), token, ttlMs);
        return fence === null ? undefined : { token, fence };
      });
    },

    async renewLease(trustDomain, lease, ttlMs) {
      checkWholeNumber("ttlMs", ttlMs, 1);
      return attempt(
        "renew lease",
        async () => (await client.renewLease(keys.lease(trustDomain), lease.token, ttlMs)) === 1,
      );
    },

    async releaseLease(trustDomain, lease) {
      await attempt("release lease", () => client.releaseLease(keys.lease(trustDomain), lease.token));
    },

    async commitFetch(trustDomain, fence, outcome, status, commitOptions) {
      const update = checkCommit(fence, outcome, status, commitOptions.historyLimit);
      const reply = await attempt("commit fetch", () =>
        client.commitFetch(
          keys.bundle(trustDomain),
          keys.status(trustDomain),
          keys.quarantine(trustDomain),
          keys.history(trustDomain),
          keys.fence(trustDomain),
          ...commitArguments(fence, outcome, update, commitOptions.historyLimit),
          commitOptions.origin,
          trustDomain,
          keys.events,
        ),
      );
      return commitResult(reply);
    },

    async acceptQuarantine(trustDomain, digest, acceptOptions) {
      checkWholeNumber("historyLimit", acceptOptions.historyLimit, 1);
      const at = wholeMs("at", acceptOptions.at);
      const accepted = await attempt("accept quarantine", () =>
        client.acceptQuarantine(
          keys.bundle(trustDomain),
          keys.status(trustDomain),
          keys.quarantine(trustDomain),
          keys.history(trustDomain),
          digest,
          at,
          acceptOptions.historyLimit,
          acceptOptions.origin,
          trustDomain,
          keys.events,
        ),
      );
      return accepted === 1;
    },

    async discardQuarantine(trustDomain, digest, discardOptions) {
      const discarded = await attempt("discard quarantine", () =>
        client.discardQuarantine(keys.quarantine(trustDomain), digest, discardOptions.origin, trustDomain, keys.events),
      );
      return discarded === 1;
    },

    async resetSequence(trustDomain, resetOptions) {
      checkWholeNumber("historyLimit", resetOptions.historyLimit, 1);
      const at = wholeMs("at", resetOptions.at);
      await attempt("reset sequence", () =>
        client.resetSequence(
          keys.bundle(trustDomain),
          keys.history(trustDomain),
          at,
          resetOptions.historyLimit,
          resetOptions.origin,
          trustDomain,
          keys.events,
        ),
      );
    },

    async removeRelationship(trustDomain, removeOptions) {
      await attempt("remove relationship", () =>
        client.removeRelationship(
          keys.bundle(trustDomain),
          keys.status(trustDomain),
          keys.quarantine(trustDomain),
          keys.lease(trustDomain),
          keys.fence(trustDomain),
          removeOptions.origin,
          trustDomain,
          keys.events,
        ),
      );
    },

    subscribe: listeners.subscribe,

    async health(): Promise<StoreHealth> {
      // Without the subscriber this replica would miss other replicas' changes: that is degraded too.
      if (client.status !== "ready" || subscriber.status !== "ready")
        return { ok: false, code: "ERR_STORE_UNAVAILABLE" };
      try {
        await client.ping();
        return { ok: true };
      } catch (error) {
        return { ok: false, code: wrapRedisError(error, "ping").code };
      }
    },

    async close(): Promise<void> {
      listeners.clear();
      admin.close();
      await Promise.all([quit(subscriber), quit(client)]);
    },
  };
}

async function openSubscriber(client: Redis, url: string, channels: readonly string[], logger: Logger): Promise<Redis> {
  const subscriber = createSubscriberClient(client, logger);
  await connectRedis(subscriber, url);
  try {
    await subscriber.subscribe(...channels);
  } catch (error) {
    subscriber.disconnect();
    throw wrapRedisError(error, "subscribe to change events");
  }
  return subscriber;
}

async function quit(client: Redis): Promise<void> {
  try {
    await client.quit();
  } catch {
    client.disconnect();
  }
}

/** ARGV[1..17] of commit-fetch.lua (the last three, origin, trust domain and channel, are added by the caller). */
function commitArguments(
  fence: number,
  outcome: FetchOutcome,
  status: StatusUpdate,
  historyLimit: number,
): (string | number)[] {
  let content: { json: string; digest: string; sequence?: string; refreshHintSeconds?: number } | undefined;
  let previousDigest = "";
  let listArgument = "";
  let added = "";
  let removed = "";
  if (outcome.kind === "accepted") {
    content = outcome.bundle;
    previousDigest = outcome.previousDigest;
    listArgument = JSON.stringify(copyHistoryEntry({ ...outcome.history, at: status.at }));
  } else if (outcome.kind === "quarantined") {
    content = outcome.quarantine;
    previousDigest = outcome.previousDigest;
    listArgument = JSON.stringify(outcome.quarantine.reasons);
    if (outcome.quarantine.added) added = JSON.stringify(outcome.quarantine.added);
    if (outcome.quarantine.removed) removed = JSON.stringify(outcome.quarantine.removed);
  }
  return [
    fence,
    outcome.kind,
    previousDigest,
    content?.json ?? "",
    content?.digest ?? "",
    content?.sequence ?? "",
    content?.refreshHintSeconds ?? "",
    listArgument,
    added,
    removed,
    historyLimit,
    status.at,
    status.success ? "1" : "0",
    status.result,
    status.errorCode ?? "",
    status.nextRefreshAt,
    status.etag ?? "",
  ];
}

function commitResult(reply: [string, string?]): CommitResult {
  const [result, currentDigest] = reply;
  if (result === "ok") return { ok: true };
  if (result === "stale_fence") return { ok: false, reason: "stale_fence" };
  if (result === "digest_conflict") return { ok: false, reason: "digest_conflict", currentDigest: currentDigest ?? "" };
  throw new StoreError("ERR_STORE_SCRIPT", `commit-fetch answered ${String(result)}`);
}

/*
 * Reading back. A value Redis holds that these scripts could not have written (edited by hand, another
 * program sharing the prefix) is ERR_STORE_CORRUPT, never a guess.
 */

type Hash = Record<string, string>;

function text(key: string, hash: Hash, field: string): string {
  const value = hash[field];
  if (value === undefined) throw corrupt(key, `missing ${field}`);
  return value;
}

function wholeNumber(key: string, field: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const parsed = parseWholeNumber(value);
  if (parsed === undefined) throw corrupt(key, `${field} is not a whole number`);
  return parsed;
}

function digestField(key: string, hash: Hash): string {
  const digest = text(key, hash, "digest");
  if (!isDigest(digest)) throw corrupt(key, "digest is not a hex SHA-256");
  return digest;
}

function sequenceField(key: string, hash: Hash): { sequence?: string } {
  const sequence = hash.sequence;
  if (sequence === undefined) return {};
  if (!isSequence(sequence)) throw corrupt(key, "sequence is not in 0..2^64-1");
  return { sequence };
}

function refreshHintField(key: string, hash: Hash): { refreshHintSeconds?: number } {
  const hint = wholeNumber(key, "refresh_hint", hash.refresh_hint);
  return hint === undefined ? {} : { refreshHintSeconds: hint };
}

function stringList(key: string, field: string, value: unknown): string[] {
  if (!Array.isArray(value) || !value.every((item) => typeof item === "string")) {
    throw corrupt(key, `${field} is not a list of strings`);
  }
  return value as string[];
}

function jsonList(key: string, field: string, value: string): string[] {
  try {
    return stringList(key, field, JSON.parse(value));
  } catch (error) {
    throw error instanceof StoreError ? error : corrupt(key, `${field} is not JSON`);
  }
}

function parseBundle(key: string, hash: Hash): StoredBundle | undefined {
  if (Object.keys(hash).length === 0) return undefined;
  return {
    json: text(key, hash, "json"),
    digest: digestField(key, hash),
    ...sequenceField(key, hash),
    ...refreshHintField(key, hash),
    acceptedAt: wholeNumber(key, "accepted_at", text(key, hash, "accepted_at")) ?? 0,
  };
}

function parseQuarantine(key: string, hash: Hash): QuarantinedBundle | undefined {
  if (Object.keys(hash).length === 0) return undefined;
  return {
    json: text(key, hash, "json"),
    digest: digestField(key, hash),
    ...sequenceField(key, hash),
    ...refreshHintField(key, hash),
    reasons: jsonList(key, "reasons", text(key, hash, "reasons")),
    ...(hash.added === undefined ? {} : { added: jsonList(key, "added", hash.added) }),
    ...(hash.removed === undefined ? {} : { removed: jsonList(key, "removed", hash.removed) }),
    quarantinedAt: wholeNumber(key, "quarantined_at", text(key, hash, "quarantined_at")) ?? 0,
  };
}

const STATUS_TIMES = [
  ["lastAttemptAt", "last_attempt_at"],
  ["lastSuccessAt", "last_success_at"],
  ["lastChangeAt", "last_change_at"],
  ["lastErrorAt", "last_error_at"],
  ["nextRefreshAt", "next_refresh_at"],
] as const;

const STATUS_TEXTS = [
  ["lastResult", "last_result"],
  ["lastErrorCode", "last_error_code"],
  ["etag", "etag"],
  ["writtenBy", "written_by"],
] as const;

function parseStatus(key: string, hash: Hash): RelationshipStatus | undefined {
  if (Object.keys(hash).length === 0) return undefined;
  const status: { -readonly [K in keyof RelationshipStatus]: RelationshipStatus[K] } = {
    consecutiveFailures: wholeNumber(key, "consecutive_failures", hash.consecutive_failures) ?? 0,
  };
  for (const [name, field] of STATUS_TIMES) {
    const value = wholeNumber(key, field, hash[field]);
    if (value !== undefined) status[name] = value;
  }
  for (const [name, field] of STATUS_TEXTS) {
    const value = hash[field];
    if (value !== undefined) status[name] = value;
  }
  return status;
}

function parseHistoryEntry(key: string, entry: string): HistoryEntry {
  let value: unknown;
  try {
    value = JSON.parse(entry);
  } catch {
    throw corrupt(key, "a history entry is not JSON");
  }
  const record = value as Record<string, unknown> | null;
  if (
    typeof record !== "object" ||
    record === null ||
    !isWholeNumber(record.at) ||
    !isDigest(record.digest) ||
    (record.sequence !== undefined && !isSequence(record.sequence)) ||
    typeof record.event !== "string"
  ) {
    throw corrupt(key, "a history entry is malformed");
  }
  return {
    at: record.at,
    digest: record.digest,
    ...(record.sequence === undefined ? {} : { sequence: record.sequence }),
    event: record.event,
    reasons: stringList(key, "reasons", record.reasons),
    added: stringList(key, "added", record.added),
    removed: stringList(key, "removed", record.removed),
  };
}

const EVENT_KINDS: ReadonlySet<string> = new Set(["bundle", "quarantine", "removed"]);

/** Undefined for anything the scripts do not publish: another program may share the channel. */
export function parseChangeEvent(message: string): BundleChangeEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const { trustDomain, kind, digest, sequence, origin } = value as Record<string, unknown>;
  if (
    typeof trustDomain !== "string" ||
    !isTrustDomain(trustDomain) ||
    typeof kind !== "string" ||
    !EVENT_KINDS.has(kind) ||
    typeof origin !== "string" ||
    (digest !== undefined && !isDigest(digest)) ||
    (sequence !== undefined && !isSequence(sequence))
  ) {
    return undefined;
  }
  return {
    trustDomain,
    kind: kind as BundleChangeEvent["kind"],
    origin,
    ...(digest === undefined ? {} : { digest }),
    ...(sequence === undefined ? {} : { sequence }),
  };
}

/** Evicted bundle keys would be silent data loss; managed Redis may refuse CONFIG, which is fine. */
async function warnOnEvictionPolicy(client: Redis, logger: Logger) {
  try {
    const reply = (await client.config("GET", "maxmemory-policy")) as string[];
    const policy = reply[1];
    if (policy && policy !== "noeviction") {
      logger.warn(
        { policy },
        "redis maxmemory-policy is not noeviction: bundle state may be evicted under memory pressure",
      );
    }
  } catch {
    logger.debug("could not read redis maxmemory-policy");
  }
}
