/**
 * The admin part of the embedded store (admin-state.ts): relationship records, saved preflights and the
 * audit trail in memory, saved with the rest of the embedded store's snapshot.
 *
 * As in the rest of the embedded store, each write changes memory synchronously (the record and its
 * audit entry together, so a conflict leaves neither), tells the listeners in the same tick, and then
 * waits for the snapshot. The audit trail is capped at `auditMaxEntries` (oldest dropped first): the whole
 * snapshot is rewritten on every write, so the cap is also what bounds the cost of each write.
 */
import type { Logger } from "../../logging.js";
import { isTrustDomain, type TrustDomain } from "../../spiffe/id.js";
import {
  byTrustDomain,
  checkAuditEntry,
  checkAuditQuery,
  checkDocument,
  checkRecordWrite,
  checkTrustDomain,
  compareAuditIds,
  isJsonObject,
  matchesAudit,
  readStoredAuditEntry,
  readStoredRecord,
  type StoredRecord,
} from "../admin-records.js";
import type {
  AdminStore,
  AuditEntry,
  NewAuditEntry,
  RelationshipRecord,
  RelationshipRecordEvent,
} from "../admin-state.js";
import { checkWholeNumber } from "../errors.js";
import { createListeners } from "../listeners.js";

/** Members of the snapshot file (version 2); all absent when there is no admin state. */
export interface AdminSnapshot {
  relationshipRecords?: Record<string, StoredRecord>;
  preflights?: Record<string, string>;
  /** Newest first. */
  audit?: AuditEntry[];
}

export interface RestoredAdminState {
  readonly records: Map<TrustDomain, RelationshipRecord>;
  readonly preflights: Map<TrustDomain, string>;
  /** Newest first. */
  readonly audit: AuditEntry[];
}

export interface EmbeddedAdmin {
  readonly store: AdminStore;
  /** What to save, or undefined when there is nothing (so a store never used this way keeps writing version 1). */
  snapshot(): AdminSnapshot | undefined;
  close(): void;
}

export interface EmbeddedAdminOptions {
  readonly restored?: RestoredAdminState | undefined;
  /** Saves the whole store's snapshot; called after each write. */
  readonly persist: () => Promise<void>;
  /** Source of the ms part of audit ids. */
  readonly now: () => number;
  readonly logger: Logger;
  readonly auditMaxEntries: number;
}

export const DEFAULT_EMBEDDED_AUDIT_MAX_ENTRIES = 1000;

export function createEmbeddedAdmin(options: EmbeddedAdminOptions): EmbeddedAdmin {
  checkWholeNumber("auditMaxEntries", options.auditMaxEntries, 1);
  const records = options.restored?.records ?? new Map<TrustDomain, RelationshipRecord>();
  const preflights = options.restored?.preflights ?? new Map<TrustDomain, string>();
  const audit = options.restored?.audit ?? [];
  audit.length = Math.min(audit.length, options.auditMaxEntries);
  const listeners = createListeners<RelationshipRecordEvent>(options.logger, "relationship record");

  // Ids go on from the newest kept entry, so they keep increasing across restarts and clock steps back.
  let lastMs = 0;
  let lastSeq = -1;
  const newest = audit[0];
  if (newest) [lastMs, lastSeq] = newest.id.split("-").map(Number) as [number, number];

  const append = (entry: NewAuditEntry): AuditEntry => {
    const ms = Math.max(Math.floor(options.now()), lastMs);
    lastSeq = ms === lastMs ? lastSeq + 1 : 0;
    lastMs = ms;
    const stored: AuditEntry = { id: `${ms}-${lastSeq}`, ...entry };
    audit.unshift(stored);
    audit.length = Math.min(audit.length, options.auditMaxEntries);
    return stored;
  };

  const store: AdminStore = {
    async listRelationshipRecords() {
      return [...records.values()].map((record) => ({ ...record })).sort(byTrustDomain);
    },

    async getRelationshipRecord(trustDomain) {
      const record = records.get(trustDomain);
      return record ? { ...record } : undefined;
    },

    async putRelationshipRecord(trustDomain, document, writeOptions) {
      checkDocument("document", document);
      const write = checkRecordWrite(trustDomain, writeOptions);
      const current = records.get(trustDomain);
      if (write.expectedRevision !== undefined && (current?.revision ?? 0) !== write.expectedRevision) {
        return { ok: false, reason: "conflict", ...(current ? { current: { ...current } } : {}) };
      }
      const record: RelationshipRecord = {
        trustDomain,
        document,
        revision: (current?.revision ?? 0) + 1,
        createdAt: current?.createdAt ?? write.at,
        updatedAt: write.at,
      };
      records.set(trustDomain, record);
      append(write.audit);
      listeners.emit({ trustDomain, kind: "put", revision: record.revision, origin: write.origin });
      await options.persist();
      return { ok: true, record: { ...record } };
    },

    async deleteRelationshipRecord(trustDomain, writeOptions) {
      const write = checkRecordWrite(trustDomain, writeOptions);
      const current = records.get(trustDomain);
      if (write.expectedRevision !== undefined && (current?.revision ?? 0) !== write.expectedRevision) {
        return { ok: false, reason: "conflict", ...(current ? { current: { ...current } } : {}) };
      }
      records.delete(trustDomain);
      preflights.delete(trustDomain);
      append(write.audit);
      listeners.emit({ trustDomain, kind: "deleted", origin: write.origin });
      await options.persist();
      return { ok: true };
    },

    subscribeRelationshipRecords: listeners.subscribe,

    async getPreflight(trustDomain) {
      return preflights.get(trustDomain);
    },

    async setPreflight(trustDomain, report) {
      checkTrustDomain("trustDomain", trustDomain);
      checkDocument("report", report);
      preflights.set(trustDomain, report);
      await options.persist();
    },

    async appendAudit(entry) {
      const stored = append(checkAuditEntry(entry));
      await options.persist();
      return structuredClone(stored);
    },

    async queryAudit(query) {
      const checked = checkAuditQuery(query);
      const found: AuditEntry[] = [];
      for (const entry of audit) {
        if (found.length >= checked.limit) break;
        if (checked.before !== undefined && compareAuditIds(entry.id, checked.before) >= 0) continue;
        if (matchesAudit(entry, checked)) found.push(structuredClone(entry));
      }
      return found;
    },
  };

  return {
    store,
    snapshot() {
      if (records.size === 0 && preflights.size === 0 && audit.length === 0) return undefined;
      const saved: AdminSnapshot = {};
      if (records.size > 0) {
        // fromEntries, not assignment: "__proto__" is a valid trust domain name.
        saved.relationshipRecords = Object.fromEntries(
          [...records.values()].map(({ trustDomain, document, revision, createdAt, updatedAt }) => [
            trustDomain,
            { document, revision, createdAt, updatedAt },
          ]),
        );
      }
      if (preflights.size > 0) saved.preflights = Object.fromEntries(preflights);
      if (audit.length > 0) saved.audit = audit;
      return saved;
    },
    close() {
      listeners.clear();
    },
  };
}

/** Reads the admin members of a snapshot; throws a plain Error naming what is malformed. */
export function readAdminSnapshot(snapshot: Record<string, unknown>): RestoredAdminState {
  const records = new Map<TrustDomain, RelationshipRecord>();
  for (const [name, value] of entriesOf(snapshot.relationshipRecords, "relationshipRecords")) {
    const record = readStoredRecord(name, value);
    if (!record) throw new Error(`malformed relationship record ${name}`);
    records.set(name, record);
  }
  const preflights = new Map<TrustDomain, string>();
  for (const [name, value] of entriesOf(snapshot.preflights, "preflights")) {
    if (typeof value !== "string") throw new Error(`malformed preflight ${name}`);
    preflights.set(name, value);
  }
  const audit: AuditEntry[] = [];
  if (snapshot.audit !== undefined) {
    if (!Array.isArray(snapshot.audit)) throw new Error("malformed audit");
    for (const [index, value] of snapshot.audit.entries()) {
      const entry = readStoredAuditEntry(value);
      if (!entry) throw new Error(`malformed audit[${index}]`);
      // Cursors rely on the order: newest first, ids strictly decreasing.
      const previous = audit[audit.length - 1];
      if (previous && compareAuditIds(entry.id, previous.id) >= 0) throw new Error(`audit[${index}] is out of order`);
      audit.push(entry);
    }
  }
  return { records, preflights, audit };
}

function entriesOf(value: unknown, member: string): [TrustDomain, unknown][] {
  if (value === undefined) return [];
  if (!isJsonObject(value)) throw new Error(`malformed ${member}`);
  return Object.entries(value).map(([name, entry]) => {
    if (!isTrustDomain(name)) throw new Error(`malformed ${member}: ${JSON.stringify(name)} is not a trust domain`);
    return [name, entry];
  });
}
