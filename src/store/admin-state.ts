/**
 * What the store keeps for the admin API: relationships made through the API (config-file ones live in
 * the config and are never stored here), the saved preflight of each relationship, and the audit stream.
 *
 * A relationship record holds the relationship as a JSON document whose schema belongs to the admin API
 * (src/federation/relationship-document.ts); the store neither parses nor validates it. Every write is
 * optimistic: it may name the revision it read, and is refused when the record moved on since, so two
 * operators cannot silently overwrite each other. A write carries its audit entry, and both land in one
 * atomic step: a change is never stored without its audit entry, nor audited without being stored.
 *
 * Times are ms since the epoch from the caller's clock.
 */
import type { TrustDomain } from "../spiffe/id.js";

export interface RelationshipRecord {
  readonly trustDomain: TrustDomain;
  /** The relationship document, JSON text, as the admin API wrote it. */
  readonly document: string;
  /** 1 for a new record, +1 per write. */
  readonly revision: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** One audited change: who did what, when, to which relationship, with the state before and after. */
export interface AuditEntry {
  /** Assigned by the store, increasing with time; the cursor of `queryAudit`. */
  readonly id: string;
  readonly at: number;
  /** Who: "token:<name>", "jwt:<sub>", "system:expiry", ... */
  readonly actor: string;
  /** What: "relationship.create", "relationship.approve", "quarantine.accept", ... */
  readonly action: string;
  readonly trustDomain?: string;
  /** Plain JSON values (the documents, or the part of the state the action changed). */
  readonly before?: unknown;
  readonly after?: unknown;
  /** Anything else worth keeping: a reason, the request ID, the digest acted on. */
  readonly details?: Readonly<Record<string, unknown>>;
}

export type NewAuditEntry = Omit<AuditEntry, "id">;

export interface AuditQuery {
  readonly trustDomain?: string;
  readonly actor?: string;
  readonly action?: string;
  /** Inclusive bounds on `at`. */
  readonly since?: number;
  readonly until?: number;
  /**
   * Only entries older than this id (the previous page's last id). Ids look like Redis stream ids,
   * "<ms>-<n>"; anything else is refused (ERR_STORE_BAD_ARGUMENT): check with `isAuditId` (admin-records.ts).
   */
  readonly before?: string;
  /** 1..1000. */
  readonly limit: number;
}

/** Told to every replica (this one included) when a relationship record is written or deleted. */
export interface RelationshipRecordEvent {
  readonly trustDomain: TrustDomain;
  readonly kind: "put" | "deleted";
  /** Of the record written; absent for "deleted". */
  readonly revision?: number;
  /** Replica that made the change. */
  readonly origin: string;
}

export interface RecordWriteOptions {
  readonly at: number;
  /** The revision the write is based on: 0 means "must not exist yet"; absent writes unconditionally. */
  readonly expectedRevision?: number;
  /** Appended to the audit stream in the same atomic step (its `at` is used as given). */
  readonly audit: NewAuditEntry;
  readonly origin: string;
}

export type RecordWriteResult =
  | { readonly ok: true; readonly record: RelationshipRecord }
  /** The record's revision is not `expectedRevision` (current is absent when there is no record): nothing was written. */
  | { readonly ok: false; readonly reason: "conflict"; readonly current?: RelationshipRecord };

export type RecordDeleteResult =
  | { readonly ok: true }
  | { readonly ok: false; readonly reason: "conflict"; readonly current?: RelationshipRecord };

export interface AdminStore {
  /** Every stored relationship record, ordered by trust domain. */
  listRelationshipRecords(): Promise<readonly RelationshipRecord[]>;
  getRelationshipRecord(trustDomain: TrustDomain): Promise<RelationshipRecord | undefined>;
  putRelationshipRecord(
    trustDomain: TrustDomain,
    document: string,
    options: RecordWriteOptions,
  ): Promise<RecordWriteResult>;
  /**
   * Deletes the record (and its saved preflight); a missing record with no expectedRevision is ok (idempotent),
   * and is still audited and told as "deleted".
   */
  deleteRelationshipRecord(
    trustDomain: TrustDomain,
    options: Omit<RecordWriteOptions, "at"> & { readonly at: number },
  ): Promise<RecordDeleteResult>;
  /** Record changes from every replica, this one included. Returns the unsubscribe function. */
  subscribeRelationshipRecords(listener: (event: RelationshipRecordEvent) => void): () => void;

  /** The last preflight of a relationship (config or API made), JSON text; kept until the record is deleted. */
  getPreflight(trustDomain: TrustDomain): Promise<string | undefined>;
  setPreflight(trustDomain: TrustDomain, report: string): Promise<void>;

  /** Appends an audit entry that goes with no record write (actions on bundles, lifecycle by the system). */
  appendAudit(entry: NewAuditEntry): Promise<AuditEntry>;
  /** Newest first; `limit` entries when that many match. Bad bounds are ERR_STORE_BAD_ARGUMENT. */
  queryAudit(query: AuditQuery): Promise<readonly AuditEntry[]>;
}
