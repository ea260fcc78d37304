/**
 * The one place Redis key names are made. Every key of a trust domain carries the domain as its hash
 * tag (`{example.org}`), so multi-key scripts stay on one Redis Cluster slot. Trust domain names cannot
 * contain braces, so the tag is exact.
 *
 * The admin state (records, preflights, audit) is not per trust domain: its keys share the tag `{@admin}`,
 * so the script that writes a record and its audit entry together stays on one slot too. A trust domain
 * name cannot contain "@", so no trust domain's keys can ever fall under that tag, whatever suffixes
 * they gain later.
 */
import type { TrustDomain } from "../../spiffe/id.js";

export interface RedisKeys {
  /** This domain's own bundle: the digest and sequence its content was given. */
  localBundleState(ownTrustDomain: TrustDomain): string;
  /** Hash: json, digest, sequence, refresh_hint, accepted_at. */
  bundle(trustDomain: TrustDomain): string;
  /** Hash of the RelationshipStatus fields, snake_case. */
  status(trustDomain: TrustDomain): string;
  /** Hash: json, digest, sequence, refresh_hint, reasons, added, removed (JSON arrays), quarantined_at. */
  quarantine(trustDomain: TrustDomain): string;
  /** List of JSON HistoryEntry values, newest first, trimmed to the history limit. */
  history(trustDomain: TrustDomain): string;
  /** String: the holder's lease token, with the lease's TTL. */
  lease(trustDomain: TrustDomain): string;
  /** Integer: the newest fence given out or written with; outlives the lease and the relationship. */
  fence(trustDomain: TrustDomain): string;
  /** Pub/sub channel of BundleChangeEvent JSON (a channel, not a key: it belongs to no slot). */
  readonly events: string;
  /** Hash: field = trust domain, value = JSON {document, revision, createdAt, updatedAt}. */
  readonly relationshipRecords: string;
  /** Hash: field = trust domain, value = the saved preflight report (JSON text). */
  readonly preflights: string;
  /** Stream of audit entries (fields: at, actor, action, trust_domain, before, after, details), capped. */
  readonly audit: string;
  /**
   * Pub/sub channel of RelationshipRecordEvent JSON: a channel of its own, so listeners of bundle change
   * events never see record events, nor the other way round.
   */
  readonly recordEvents: string;
}

export const ADMIN_HASH_TAG = "@admin";

export function createRedisKeys(prefix: string): RedisKeys {
  const domain = (trustDomain: TrustDomain) => `${prefix}:{${trustDomain}}`;
  return {
    localBundleState: (ownTrustDomain) => `${domain(ownTrustDomain)}:local`,
    bundle: (trustDomain) => `${domain(trustDomain)}:bundle`,
    status: (trustDomain) => `${domain(trustDomain)}:status`,
    quarantine: (trustDomain) => `${domain(trustDomain)}:quarantine`,
    history: (trustDomain) => `${domain(trustDomain)}:history`,
    lease: (trustDomain) => `${domain(trustDomain)}:lease`,
    fence: (trustDomain) => `${domain(trustDomain)}:fence`,
    events: `${prefix}:events`,
    relationshipRecords: `${prefix}:{${ADMIN_HASH_TAG}}:relationships`,
    preflights: `${prefix}:{${ADMIN_HASH_TAG}}:preflights`,
    audit: `${prefix}:{${ADMIN_HASH_TAG}}:audit`,
    recordEvents: `${prefix}:record-events`,
  };
}
