/**
 * What the store keeps per federation relationship, and the operations on it. Every write that follows
 * a fetch is fenced: it carries the fencing token of the lease under which the fetch ran, and the
 * store refuses a token older than the newest one it has seen, so a replica that paused while holding a
 * lease cannot overwrite what a newer holder wrote.
 *
 * Fences are non-negative integers; 0 is older than any fence a lease was given. Sequences are decimal
 * strings in 0..2^64-1, digests lowercase hex SHA-256, times ms since the epoch from the caller's clock
 * (stored as whole ms).
 */
import type { TrustDomain } from "../spiffe/id.js";

/** The last-known-good bundle of a partner, as served. */
export interface StoredBundle {
  /** Canonical SPIFFE JSON (what bundlegate serves; never the partner's bytes). */
  readonly json: string;
  /** Hex SHA-256 of `json`. */
  readonly digest: string;
  /** Decimal string; absent when the partner sets no sequence. */
  readonly sequence?: string;
  readonly refreshHintSeconds?: number;
  /** When this content was first accepted (ms since the epoch). */
  readonly acceptedAt: number;
}

/** A bundle held for a person to accept or discard (DESIGN.md section 2). */
export interface QuarantinedBundle {
  readonly json: string;
  readonly digest: string;
  readonly sequence?: string;
  /** Carried into the stored bundle when a person accepts it. */
  readonly refreshHintSeconds?: number;
  /** Decision reason codes, deciding one first. */
  readonly reasons: readonly string[];
  /**
   * Authorities added and removed against the last-known-good it was held against (still the served one:
   * any accepted bundle clears the quarantine); the history entry of its acceptance carries them.
   */
  readonly added?: readonly string[];
  readonly removed?: readonly string[];
  /** When this content was first held (ms since the epoch). */
  readonly quarantinedAt: number;
}

/** Freshness and outcome bookkeeping of one relationship (times in ms since the epoch). */
export interface RelationshipStatus {
  readonly lastAttemptAt?: number;
  readonly lastSuccessAt?: number;
  readonly lastChangeAt?: number;
  /** Result of the last attempt: "accepted", "unchanged", "quarantined", "rejected" or a fetch/parse error code. */
  readonly lastResult?: string;
  readonly lastErrorCode?: string;
  readonly lastErrorAt?: number;
  readonly consecutiveFailures: number;
  readonly nextRefreshAt?: number;
  /** ETag of the last 200 answer, for a conditional next fetch. */
  readonly etag?: string;
  /** Which replica wrote this status last. */
  readonly writtenBy?: string;
}

export interface HistoryEntry {
  readonly at: number;
  readonly digest: string;
  readonly sequence?: string;
  /** "accepted", "accept_alert", "quarantine_accepted", "sequence_reset", ... */
  readonly event: string;
  readonly reasons: readonly string[];
  /** Fingerprints / key IDs of authorities added and removed against the previous bundle. */
  readonly added: readonly string[];
  readonly removed: readonly string[];
}

/**
 * Told to every replica (pub/sub for Redis) when a relationship's stored state changes. Status-only
 * writes are not told: they change no served bytes.
 */
export interface BundleChangeEvent {
  readonly trustDomain: TrustDomain;
  /**
   * "bundle": the stored bundle changed (accepted, promoted from quarantine, or its sequence reset; a
   * quarantine may have been cleared with it). "quarantine": only the quarantine changed (held or
   * discarded). "removed": the relationship's bundle, quarantine and status are gone.
   */
  readonly kind: "bundle" | "quarantine" | "removed";
  /** Of the new bundle or quarantine; absent when the quarantine was discarded, and for "removed". */
  readonly digest?: string;
  /** Absent as above, and when the bundle has no sequence (or it was reset). */
  readonly sequence?: string;
  /** Replica that made the change. */
  readonly origin: string;
}

export interface Lease {
  /** Random per acquisition; renew and release compare it. */
  readonly token: string;
  /** Strictly increasing per trust domain across all holders. */
  readonly fence: number;
}

/** What one fetch led to, written in one atomic step with the status. */
export type FetchOutcome =
  | {
      readonly kind: "accepted";
      readonly bundle: Omit<StoredBundle, "acceptedAt">;
      /** Digest of the last-known-good the decision was made against ("" when there was none). */
      readonly previousDigest: string;
      readonly history: Omit<HistoryEntry, "at">;
    }
  | {
      readonly kind: "quarantined";
      readonly quarantine: Omit<QuarantinedBundle, "quarantinedAt">;
      readonly previousDigest: string;
    }
  /** Fetched and unchanged, or rejected by policy, or failed: only the status moves. */
  | { readonly kind: "status_only" };

export interface StatusUpdate {
  readonly at: number;
  /** Set on success (accepted, unchanged, quarantined count as a successful fetch). */
  readonly success: boolean;
  readonly result: string;
  /** When set, becomes lastErrorCode with lastErrorAt = at. */
  readonly errorCode?: string;
  readonly nextRefreshAt: number;
  /** When set, replaces the stored ETag; absent keeps it. */
  readonly etag?: string;
}

export type CommitResult =
  | { readonly ok: true }
  /** A newer lease holder wrote since this fetch's lease was taken: nothing was written. */
  | { readonly ok: false; readonly reason: "stale_fence" }
  /** The last-known-good changed under the decision (another writer): nothing was written. */
  | { readonly ok: false; readonly reason: "digest_conflict"; readonly currentDigest: string };

export interface FederationStore {
  getBundle(trustDomain: TrustDomain): Promise<StoredBundle | undefined>;
  getStatus(trustDomain: TrustDomain): Promise<RelationshipStatus | undefined>;
  getQuarantine(trustDomain: TrustDomain): Promise<QuarantinedBundle | undefined>;
  /** Newest first. */
  getHistory(trustDomain: TrustDomain, limit: number): Promise<readonly HistoryEntry[]>;

  /** Takes the relationship's polling lease when free; undefined when another holder has it. */
  acquireLease(trustDomain: TrustDomain, holder: string, ttlMs: number): Promise<Lease | undefined>;
  /** Extends a lease this holder still has; false when it lapsed or was taken. */
  renewLease(trustDomain: TrustDomain, lease: Lease, ttlMs: number): Promise<boolean>;
  releaseLease(trustDomain: TrustDomain, lease: Lease): Promise<void>;

  /**
   * Writes a fetch's outcome and status atomically, if `fence` is not older than the newest fence that
   * a lease was given or that wrote. History is capped at `historyLimit` entries. Publishes a change event
   * when the bundle or the quarantine changed. Content equal to the stored one keeps its acceptedAt
   * (quarantinedAt).
   */
  commitFetch(
    trustDomain: TrustDomain,
    fence: number,
    outcome: FetchOutcome,
    status: StatusUpdate,
    options: { readonly historyLimit: number; readonly origin: string },
  ): Promise<CommitResult>;

  /** Promotes the quarantined bundle if its digest is `digest`; false when there is none or another one. */
  acceptQuarantine(
    trustDomain: TrustDomain,
    digest: string,
    options: { readonly at: number; readonly historyLimit: number; readonly origin: string },
  ): Promise<boolean>;
  discardQuarantine(trustDomain: TrustDomain, digest: string, options: { readonly origin: string }): Promise<boolean>;
  /**
   * Forgets the last-known-good's sequence so the next bundle is not refused as a rollback; recorded in
   * the history ("sequence_reset", with the forgotten sequence). Nothing happens when no bundle is stored.
   */
  resetSequence(
    trustDomain: TrustDomain,
    options: { readonly at: number; readonly historyLimit: number; readonly origin: string },
  ): Promise<void>;
  /**
   * Removes the stored bundle, quarantine, status and lease (history stays) and tells every replica.
   * The fence moves on, so a fetch still running under the old lease cannot write the relationship back.
   */
  removeRelationship(trustDomain: TrustDomain, options: { readonly origin: string }): Promise<void>;

  /** Change events from every replica, this one included. Returns the unsubscribe function. */
  subscribe(listener: (event: BundleChangeEvent) => void): () => void;
}
