/**
 * Checks and copies both backends apply to the admin state (admin-state.ts) before writing and when
 * reading back, so a bad value fails the same way on each, and both hand out the same shapes.
 */
import { compare } from "../spiffe/bundle.js";
import { isTrustDomain, type TrustDomain } from "../spiffe/id.js";
import type { AuditEntry, AuditQuery, NewAuditEntry, RecordWriteOptions, RelationshipRecord } from "./admin-state.js";
import { badArgument, isWholeNumber, wholeMs } from "./errors.js";

export const MAX_AUDIT_QUERY_LIMIT = 1000;

export type JsonObject = Record<string, unknown>;

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/*
 * Audit ids have the shape of Redis stream ids, "<ms>-<n>", both parts unsigned 64-bit: the Redis store
 * uses the stream's own ids, and the embedded store makes ids of the same shape so a cursor means the
 * same on both.
 */

const AUDIT_ID = /^([0-9]{1,20})-([0-9]{1,20})$/;
const U64_MAX = 2n ** 64n - 1n;

export function isAuditId(value: unknown): value is string {
  if (typeof value !== "string") return false;
  const match = AUDIT_ID.exec(value);
  return match !== null && BigInt(match[1]!) <= U64_MAX && BigInt(match[2]!) <= U64_MAX;
}

/** Negative when `a` is older. Both must be audit ids. */
export function compareAuditIds(a: string, b: string): number {
  const [aMs, aSeq] = a.split("-").map(BigInt) as [bigint, bigint];
  const [bMs, bSeq] = b.split("-").map(BigInt) as [bigint, bigint];
  if (aMs !== bMs) return aMs < bMs ? -1 : 1;
  return aSeq === bSeq ? 0 : aSeq < bSeq ? -1 : 1;
}

/** Trust domain order of `listRelationshipRecords`: code units, the same on every machine. */
export function byTrustDomain(a: RelationshipRecord, b: RelationshipRecord): number {
  return compare(a.trustDomain, b.trustDomain);
}

export function checkTrustDomain(what: string, value: string): void {
  if (!isTrustDomain(value)) throw badArgument(what, "a trust domain name");
}

export interface CheckedRecordWrite {
  readonly at: number;
  readonly expectedRevision?: number;
  readonly audit: NewAuditEntry;
  readonly origin: string;
}

/** A relationship document or a preflight report: JSON text the store keeps as given. */
export function checkDocument(what: string, value: string): void {
  if (typeof value !== "string") throw badArgument(what, "JSON text");
}

/** Checks a put or delete; returns the options with whole-ms times and a plain-JSON audit entry. */
export function checkRecordWrite(trustDomain: string, options: RecordWriteOptions): CheckedRecordWrite {
  checkTrustDomain("trustDomain", trustDomain);
  const expected = options.expectedRevision;
  if (expected !== undefined && !isWholeNumber(expected)) throw badArgument("expectedRevision", "an integer >= 0");
  if (typeof options.origin !== "string") throw badArgument("origin", "a string");
  return {
    at: wholeMs("at", options.at),
    ...(expected === undefined ? {} : { expectedRevision: expected }),
    audit: checkAuditEntry(options.audit),
    origin: options.origin,
  };
}

/**
 * A copy of the entry with only its own members, each value passed through JSON: what the Redis store
 * gives back after a round trip, so the embedded store gives back the same, and nobody can change a
 * stored entry through an object they still hold.
 */
export function checkAuditEntry(entry: NewAuditEntry): NewAuditEntry {
  if (!isJsonObject(entry)) throw badArgument("audit", "an object");
  const at = wholeMs("audit.at", entry.at);
  if (typeof entry.actor !== "string" || entry.actor === "") throw badArgument("audit.actor", "a non-empty string");
  if (typeof entry.action !== "string" || entry.action === "") throw badArgument("audit.action", "a non-empty string");
  if (entry.trustDomain !== undefined && typeof entry.trustDomain !== "string") {
    throw badArgument("audit.trustDomain", "a string");
  }
  const before = plainJson("audit.before", entry.before);
  const after = plainJson("audit.after", entry.after);
  const details = plainJson("audit.details", entry.details);
  if (details !== undefined && !isJsonObject(details)) throw badArgument("audit.details", "an object");
  return {
    at,
    actor: entry.actor,
    action: entry.action,
    ...(entry.trustDomain === undefined ? {} : { trustDomain: entry.trustDomain }),
    ...(before === undefined ? {} : { before }),
    ...(after === undefined ? {} : { after }),
    ...(details === undefined ? {} : { details: details as JsonObject }),
  };
}

function plainJson(what: string, value: unknown): unknown {
  if (value === undefined) return undefined;
  let text: string | undefined;
  try {
    text = JSON.stringify(value);
  } catch {
    text = undefined;
  }
  if (text === undefined) throw badArgument(what, "a plain JSON value");
  return JSON.parse(text);
}

export interface CheckedAuditQuery {
  readonly trustDomain?: string;
  readonly actor?: string;
  readonly action?: string;
  readonly since?: number;
  readonly until?: number;
  readonly before?: string;
  readonly limit: number;
}

export function checkAuditQuery(query: AuditQuery): CheckedAuditQuery {
  if (!isJsonObject(query)) throw badArgument("query", "an object");
  const { limit, before } = query;
  if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_AUDIT_QUERY_LIMIT) {
    throw badArgument("query.limit", `an integer in 1..${MAX_AUDIT_QUERY_LIMIT}`);
  }
  if (before !== undefined && !isAuditId(before)) throw badArgument("query.before", "an audit id");
  for (const member of ["trustDomain", "actor", "action"] as const) {
    if (query[member] !== undefined && typeof query[member] !== "string") {
      throw badArgument(`query.${member}`, "a string");
    }
  }
  return {
    limit,
    ...(before === undefined ? {} : { before }),
    ...(query.trustDomain === undefined ? {} : { trustDomain: query.trustDomain }),
    ...(query.actor === undefined ? {} : { actor: query.actor }),
    ...(query.action === undefined ? {} : { action: query.action }),
    ...(query.since === undefined ? {} : { since: wholeMs("query.since", query.since) }),
    ...(query.until === undefined ? {} : { until: wholeMs("query.until", query.until) }),
  };
}

/** Whether an entry passes the query's filters (not its cursor or limit). */
export function matchesAudit(entry: AuditEntry, query: CheckedAuditQuery): boolean {
  return (
    (query.trustDomain === undefined || entry.trustDomain === query.trustDomain) &&
    (query.actor === undefined || entry.actor === query.actor) &&
    (query.action === undefined || entry.action === query.action) &&
    (query.since === undefined || entry.at >= query.since) &&
    (query.until === undefined || entry.at <= query.until)
  );
}

/** The stored form of a record, JSON text, for the Redis hash and the snapshot alike. */
export interface StoredRecord {
  readonly document: string;
  readonly revision: number;
  readonly createdAt: number;
  readonly updatedAt: number;
}

/** Undefined when `value` is not a stored record. */
export function readStoredRecord(trustDomain: TrustDomain, value: unknown): RelationshipRecord | undefined {
  if (!isJsonObject(value)) return undefined;
  const { document, revision, createdAt, updatedAt } = value;
  if (
    typeof document !== "string" ||
    !isWholeNumber(revision) ||
    revision < 1 ||
    !isWholeNumber(createdAt) ||
    !isWholeNumber(updatedAt)
  ) {
    return undefined;
  }
  return { trustDomain, document, revision, createdAt, updatedAt };
}

/** Undefined when `value` is not a stored audit entry. */
export function readStoredAuditEntry(value: unknown): AuditEntry | undefined {
  if (!isJsonObject(value)) return undefined;
  const { id, at, actor, action, trustDomain, before, after, details } = value;
  if (
    !isAuditId(id) ||
    !isWholeNumber(at) ||
    typeof actor !== "string" ||
    typeof action !== "string" ||
    (trustDomain !== undefined && typeof trustDomain !== "string") ||
    (details !== undefined && !isJsonObject(details))
  ) {
    return undefined;
  }
  return {
    id,
    at,
    actor,
    action,
    ...(trustDomain === undefined ? {} : { trustDomain }),
    ...(before === undefined ? {} : { before }),
    ...(after === undefined ? {} : { after }),
    ...(details === undefined ? {} : { details }),
  };
}
