/**
 * The trust policy: what happens to a fetched bundle compared with the last-known-good (DESIGN.md
 * section 2). Trust is removed at once; a suspicious addition of trust waits for a person.
 */
import type { BundleDiff } from "../spiffe/diff.js";

/** What may be done with a suspicious change; each rule of the policy picks one. */
export type SuspiciousChangeAction = "quarantine" | "reject" | "accept";

export interface TrustPolicy {
  /** No authority in common with the last-known-good. Default quarantine. */
  readonly fullReplacement: SuspiciousChangeAction;
  /** An added authority also belongs to this trust domain. Default quarantine. */
  readonly sharedWithOwnDomain: SuspiciousChangeAction;
  /** An added authority also belongs to another partner's bundle. Default quarantine. */
  readonly sharedWithOtherPartner: SuspiciousChangeAction;
  /** Same spiffe_sequence as the last-known-good, other content. Default quarantine. */
  readonly sequenceReused: SuspiciousChangeAction;
  /** spiffe_sequence lower than the last-known-good's. Default reject ("accept" for partners known to reset). */
  readonly sequenceRollback: "reject" | "accept";
}

export const DEFAULT_TRUST_POLICY: TrustPolicy = Object.freeze({
  fullReplacement: "quarantine",
  sharedWithOwnDomain: "quarantine",
  sharedWithOtherPartner: "quarantine",
  sequenceReused: "quarantine",
  sequenceRollback: "reject",
});

export type DecisionKind =
  /** Same content as the last-known-good: nothing to store but the freshness. */
  | "unchanged"
  /** Store and serve it. */
  | "accept"
  /** Store and serve it, and alert: trust was removed (removal only, empty, all expired). */
  | "accept_alert"
  /** Keep it beside the last-known-good until someone with the approve scope accepts or discards it. */
  | "quarantine"
  /** Drop it; the last-known-good stays. */
  | "reject";

export type DecisionReasonCode =
  | "FIRST_BUNDLE"
  | "UNCHANGED"
  | "AUTHORITIES_ADDED"
  | "AUTHORITIES_REMOVED"
  | "METADATA_CHANGED"
  | "EMPTY_BUNDLE"
  | "ALL_AUTHORITIES_EXPIRED"
  | "FULL_REPLACEMENT"
  | "SHARED_WITH_OWN_DOMAIN"
  | "SHARED_WITH_OTHER_PARTNER"
  | "SEQUENCE_REUSED"
  | "SEQUENCE_ROLLBACK"
  | "SEQUENCE_MISSING";

export interface DecisionReason {
  readonly code: DecisionReasonCode;
  readonly message: string;
  /** For shared authorities: which fingerprints, and whose (own domain or the partner's trust domain). */
  readonly details?: Readonly<Record<string, unknown>>;
}

export interface Decision {
  readonly kind: DecisionKind;
  /** Every reason that applied, the deciding one first. */
  readonly reasons: readonly DecisionReason[];
  /** The diff against the last-known-good (against an empty bundle for the first one). */
  readonly diff: BundleDiff;
}
