/**
 * The admin part of the Redis store (admin-state.ts). Records and preflights are hashes keyed by trust
 * domain, the audit trail a capped stream whose ids are the audit ids, all under one hash tag (keys.ts).
 * A record write and its audit entry are one script; record events go out on their own channel from
 * inside that script.
 */
import type { Redis } from "ioredis";
import type { Logger } from "../../logging.js";
import { isTrustDomain, type TrustDomain } from "../../spiffe/id.js";
import {
  byTrustDomain,
  type CheckedAuditQuery,
  checkAuditEntry,
  checkAuditQuery,
  checkDocument,
  checkRecordWrite,
  checkTrustDomain,
  compareAuditIds,
  isJsonObject,
  readStoredAuditEntry,
  readStoredRecord,
} from "../admin-records.js";
import type {
  AdminStore,
  AuditEntry,
  NewAuditEntry,
  RecordDeleteResult,
  RecordWriteResult,
  RelationshipRecord,
  RelationshipRecordEvent,
} from "../admin-state.js";
import { checkWholeNumber, isWholeNumber, StoreError } from "../errors.js";
import { createListeners } from "../listeners.js";
import { attempt } from "./connection.js";
import type { RedisKeys } from "./keys.js";
import { corrupt, parseWholeNumber } from "./read-back.js";
import type { ScriptCommands } from "./scripts.js";

export const DEFAULT_REDIS_AUDIT_MAX_ENTRIES = 100_000;

/** Entries one query-audit call reads at most, so no call holds Redis for long. */
const AUDIT_SCAN_BUDGET = 1000;

export interface RedisAdminOptions {
  readonly client: Redis & ScriptCommands;
  readonly keys: RedisKeys;
  /** The audit stream's approximate cap (XADD MAXLEN ~). */
  readonly auditMaxEntries: number;
  readonly logger: Logger;
}

export interface RedisAdmin {
  readonly store: AdminStore;
  /** Hands a message of the record event channel to the listeners. */
  deliver(message: string): void;
  close(): void;
}

export function createRedisAdmin(options: RedisAdminOptions): RedisAdmin {
  checkWholeNumber("auditMaxEntries", options.auditMaxEntries, 1);
  const { client, keys, logger } = options;
  const cap = options.auditMaxEntries;
  const listeners = createListeners<RelationshipRecordEvent>(logger, "relationship record");

  const record = (trustDomain: TrustDomain, raw: string) => parseRecord(keys.relationshipRecords, trustDomain, raw);

  const conflict = (trustDomain: TrustDomain, current: string | null | undefined) =>
    ({
      ok: false,
      reason: "conflict",
      ...(current ? { current: record(trustDomain, current) } : {}),
    }) as const;

  const store: AdminStore = {
    async listRelationshipRecords() {
      const key = keys.relationshipRecords;
      const all = await attempt("list relationship records", () => client.hgetall(key));
      return Object.entries(all)
        .map(([name, raw]) => {
          if (!isTrustDomain(name)) throw corrupt(key, `field ${JSON.stringify(name)} is not a trust domain`);
          return record(name, raw);
        })
        .sort(byTrustDomain);
    },

    async getRelationshipRecord(trustDomain) {
      const raw = await attempt("read relationship record", () => client.hget(keys.relationshipRecords, trustDomain));
      return raw === null ? undefined : record(trustDomain, raw);
    },

    async putRelationshipRecord(trustDomain, document, writeOptions): Promise<RecordWriteResult> {
      checkDocument("document", document);
      const write = checkRecordWrite(trustDomain, writeOptions);
      const [result, stored] = await attempt("put relationship record", () =>
        client.putRelationshipRecord(
          keys.relationshipRecords,
          keys.audit,
          trustDomain,
          document,
          write.at,
          write.expectedRevision ?? "",
          cap,
          write.origin,
          keys.recordEvents,
          ...auditFields(write.audit),
        ),
      );
      if (result === "ok" && typeof stored === "string") return { ok: true, record: record(trustDomain, stored) };
      if (result === "conflict") return conflict(trustDomain, stored);
      throw scriptAnswer("put-relationship-record", keys.relationshipRecords, trustDomain, result);
    },

    async deleteRelationshipRecord(trustDomain, writeOptions): Promise<RecordDeleteResult> {
      const write = checkRecordWrite(trustDomain, writeOptions);
      const [result, current] = await attempt("delete relationship record", () =>
        client.deleteRelationshipRecord(
          keys.relationshipRecords,
          keys.preflights,
          keys.audit,
          trustDomain,
          write.expectedRevision ?? "",
          cap,
          write.origin,
          keys.recordEvents,
          ...auditFields(write.audit),
        ),
      );
      if (result === "ok") return { ok: true };
      if (result === "conflict") return conflict(trustDomain, current);
      throw scriptAnswer("delete-relationship-record", keys.relationshipRecords, trustDomain, result);
    },

    subscribeRelationshipRecords: listeners.subscribe,

    async getPreflight(trustDomain) {
      const report = await attempt("read preflight", () => client.hget(keys.preflights, trustDomain));
      return report ?? undefined;
    },

    async setPreflight(trustDomain, report) {
      checkTrustDomain("trustDomain", trustDomain);
      checkDocument("report", report);
      await attempt("save preflight", () => client.hset(keys.preflights, trustDomain, report));
    },

    async appendAudit(entry) {
      const checked = checkAuditEntry(entry);
      const id = await attempt("append audit entry", () =>
        client.xadd(keys.audit, "MAXLEN", "~", cap, "*", ...auditFields(checked)),
      );
      if (id === null) throw new StoreError("ERR_STORE_SCRIPT", "XADD gave no id");
      return { id, ...checked };
    },

    async queryAudit(query) {
      const checked = checkAuditQuery(query);
      const found: AuditEntry[] = [];
      // Nothing is older than the lowest id, and Redis refuses "(0-0" as a range start.
      if (checked.before !== undefined && compareAuditIds(checked.before, "0-0") === 0) return found;
      let start = checked.before === undefined ? "+" : `(${checked.before}`;
      while (found.length < checked.limit) {
        const [cursor, entries] = await attempt("query audit", () =>
          client.queryAudit(keys.audit, start, checked.limit - found.length, AUDIT_SCAN_BUDGET, ...filters(checked)),
        );
        for (const [id, fields] of entries) found.push(parseAuditEntry(keys.audit, id, fields));
        if (cursor === "") break;
        start = `(${cursor}`;
      }
      return found;
    },
  };

  return {
    store,
    deliver(message) {
      const event = parseRecordEvent(message);
      if (!event) {
        logger.warn({ channel: keys.recordEvents, length: message.length }, "dropped a malformed record event");
        return;
      }
      listeners.emit(event);
    },
    close() {
      listeners.clear();
    },
  };
}

/** The stream fields of an entry; the JSON values are encoded here so the scripts never touch them. */
function auditFields(entry: NewAuditEntry): string[] {
  const fields = ["at", String(entry.at), "actor", entry.actor, "action", entry.action];
  if (entry.trustDomain !== undefined) fields.push("trust_domain", entry.trustDomain);
  if (entry.before !== undefined) fields.push("before", JSON.stringify(entry.before));
  if (entry.after !== undefined) fields.push("after", JSON.stringify(entry.after));
  if (entry.details !== undefined) fields.push("details", JSON.stringify(entry.details));
  return fields;
}

/** ARGV[4..8] of query-audit.lua. */
function filters(query: CheckedAuditQuery): string[] {
  const exact = (value: string | undefined) => (value === undefined ? "" : `=${value}`);
  return [
    exact(query.trustDomain),
    exact(query.actor),
    exact(query.action),
    query.since === undefined ? "" : String(query.since),
    query.until === undefined ? "" : String(query.until),
  ];
}

/* Reading back: a value these scripts could not have written is ERR_STORE_CORRUPT (read-back.ts). */

function scriptAnswer(script: string, key: string, trustDomain: string, result: string | undefined): StoreError {
  if (result === "corrupt") return corrupt(key, `the record of ${trustDomain} is unreadable`);
  return new StoreError("ERR_STORE_SCRIPT", `${script} answered ${String(result)}`);
}

function parseJson(key: string, what: string, text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw corrupt(key, `${what} is not JSON`);
  }
}

function parseRecord(key: string, trustDomain: TrustDomain, raw: string): RelationshipRecord {
  const parsed = readStoredRecord(trustDomain, parseJson(key, `the record of ${trustDomain}`, raw));
  if (!parsed) throw corrupt(key, `the record of ${trustDomain} is malformed`);
  return parsed;
}

function parseAuditEntry(key: string, id: string, fields: string[]): AuditEntry {
  const hash: Record<string, string> = {};
  for (let i = 0; i + 1 < fields.length; i += 2) hash[fields[i]!] = fields[i + 1]!;
  const at = parseWholeNumber(hash.at);
  const json = (field: string) =>
    hash[field] === undefined ? undefined : parseJson(key, `${field} of entry ${id}`, hash[field]);
  const entry = readStoredAuditEntry({
    id,
    at,
    actor: hash.actor,
    action: hash.action,
    trustDomain: hash.trust_domain,
    before: json("before"),
    after: json("after"),
    details: json("details"),
  });
  if (!entry) throw corrupt(key, `audit entry ${id} is malformed`);
  return entry;
}

const RECORD_EVENT_KINDS: ReadonlySet<string> = new Set(["put", "deleted"]);

/** Undefined for anything the scripts do not publish: another program may share the channel. */
export function parseRecordEvent(message: string): RelationshipRecordEvent | undefined {
  let value: unknown;
  try {
    value = JSON.parse(message);
  } catch {
    return undefined;
  }
  if (!isJsonObject(value)) return undefined;
  const { trustDomain, kind, revision, origin } = value;
  if (
    typeof trustDomain !== "string" ||
    !isTrustDomain(trustDomain) ||
    typeof kind !== "string" ||
    !RECORD_EVENT_KINDS.has(kind) ||
    typeof origin !== "string" ||
    (revision !== undefined && (!isWholeNumber(revision) || revision < 1))
  ) {
    return undefined;
  }
  return {
    trustDomain,
    kind: kind as RelationshipRecordEvent["kind"],
    origin,
    ...(revision === undefined ? {} : { revision }),
  };
}
