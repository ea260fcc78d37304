/**
 * The trust policy as one pure function: what to do with a fetched bundle, given the last-known-good,
 * who else holds which authority, the relationship's policy and the time (DESIGN.md section 2).
 *
 * "Trust is removed at once; a suspicious addition of trust waits for a person." How the rules combine:
 * 1. Identical content (same canonical digest, sequence and hint included) is "unchanged"; nothing else is looked at.
 * 2. A sequence lower than the last-known-good's is decided by `policy.sequenceRollback` (default reject), before
 *    anything else. The spec has the sequence grow with every change, so a lower one is by definition not the
 *    publisher's current state: its "removals" are not revocations but an old bundle replayed (a stale cache,
 *    a restored backup, an attacker), and taking it could drop keys the partner has just started to use.
 * 3. A bundle that only removes trust (empty, all X.509 authorities expired and no JWT authority, or authorities
 *    removed and none added) is accept_alert, whatever the addition rules and the sequence-reuse rule say:
 *    holding or rejecting it would keep serving trust the partner has withdrawn.
 * 4. Otherwise every suspicious rule that applies (shared with this domain, shared with another partner, full
 *    replacement, sequence reused) contributes its configured action, and the most severe wins:
 *    reject > quarantine > accept. A rule set to "accept" is still listed as a reason.
 * 5. Otherwise it is a plain accept: first bundle, authorities added (rotation), or metadata changed.
 * Every reason that applied is returned, the deciding one first, the rest in the order of the list above, and
 * purely descriptive ones (authorities removed beside additions, sequence missing) last.
 */

import { authorityCount, compare, createTrustBundle, type TrustBundle, type X509Authority } from "../spiffe/bundle.js";
import { type BundleDiff, diffBundles } from "../spiffe/diff.js";
import { bundleDigest } from "../spiffe/digest.js";
import { notAfterSeconds } from "../spiffe/not-after.js";
import { type Authority, type AuthorityIndex, authorityIdentities, isX509Authority } from "./authority-index.js";
import type { Decision, DecisionKind, DecisionReason, DecisionReasonCode, TrustPolicy } from "./types.js";

export interface DecideBundleInput {
  readonly candidate: TrustBundle;
  /** Absent for a relationship that has never accepted a bundle. */
  readonly lastKnownGood?: TrustBundle | undefined;
  /** This trust domain's own authorities. */
  readonly ownAuthorities: AuthorityIndex;
  /** Every other partner's authorities; entries under `partner` are ignored. */
  readonly otherPartnerAuthorities: AuthorityIndex;
  /**
   * The trust domain being decided, as `otherPartnerAuthorities` names it, so that one index built over
   * every relationship can serve each of them. Without it, that partner's entries still never count once
   * they are in its last-known-good (those are not additions), but they would flag its first bundle.
   */
  readonly partner?: string | undefined;
  readonly policy: TrustPolicy;
  /** Expiry is judged at this moment, never at the system time. */
  readonly now: Date;
}

/** What one reason asks for; "info" reasons describe the change but never decide it. */
type Outcome = "reject" | "quarantine" | "accept_alert" | "accept" | "info";

interface Finding {
  readonly reason: DecisionReason;
  readonly outcome: Outcome;
}

/** The order reasons are listed in, and in which the deciding reason is looked for. */
const PRECEDENCE: readonly DecisionReasonCode[] = [
  "SEQUENCE_ROLLBACK",
  "EMPTY_BUNDLE",
  "ALL_AUTHORITIES_EXPIRED",
  "AUTHORITIES_REMOVED",
  "SHARED_WITH_OWN_DOMAIN",
  "SHARED_WITH_OTHER_PARTNER",
  "FULL_REPLACEMENT",
  "SEQUENCE_REUSED",
  "FIRST_BUNDLE",
  "AUTHORITIES_ADDED",
  "METADATA_CHANGED",
  "SEQUENCE_MISSING",
];

const EMPTY_BUNDLE = createTrustBundle();

export function decideBundle(input: DecideBundleInput): Decision {
  const { candidate, lastKnownGood, policy } = input;
  const diff = diffBundles(lastKnownGood ?? EMPTY_BUNDLE, candidate);

  if (lastKnownGood !== undefined && bundleDigest(lastKnownGood) === bundleDigest(candidate)) {
    return decision("unchanged", [reason("UNCHANGED", "same content as the last-known-good")], diff);
  }

  const findings: Finding[] = [];
  const add = (outcome: Outcome, code: DecisionReasonCode, message: string, details?: Record<string, unknown>) =>
    findings.push({ reason: reason(code, message, details), outcome });

  const added = [...diff.x509Added, ...diff.jwtAdded];
  const removed = [...diff.x509Removed, ...diff.jwtRemoved];
  const candidateCount = authorityCount(candidate);

  // A sequence missing on either side cannot be compared: a partner may not publish one at all.
  let rollback = false;
  if (lastKnownGood?.sequence !== undefined) {
    const before = lastKnownGood.sequence;
    const after = candidate.sequence;
    const sequences = { lastKnownGood: before.toString(), candidate: after?.toString() ?? null };
    if (after === undefined) {
      add("info", "SEQUENCE_MISSING", "the bundle has no spiffe_sequence; the last-known-good had one", sequences);
    } else if (after < before) {
      rollback = true;
      add(
        policy.sequenceRollback,
        "SEQUENCE_ROLLBACK",
        `spiffe_sequence went backwards from ${before} to ${after}`,
        sequences,
      );
    } else if (after === before) {
      add(policy.sequenceReused, "SEQUENCE_REUSED", `spiffe_sequence ${after} was reused for other content`, sequences);
    }
  }

  let removesTrust = false;
  if (candidateCount === 0) {
    removesTrust = true;
    add("accept_alert", "EMPTY_BUNDLE", "the bundle has no authorities: all trust in this domain is revoked");
  } else if (candidate.jwtAuthorities.size === 0) {
    const expiry = latestNotAfter(candidate.x509Authorities);
    if (expiry !== undefined && expiry < input.now.getTime()) {
      removesTrust = true;
      add("accept_alert", "ALL_AUTHORITIES_EXPIRED", "every authority of the bundle has expired", {
        latestNotAfter: new Date(expiry).toISOString(),
      });
    }
  }
  if (removed.length > 0) {
    const removalOnly = added.length === 0;
    removesTrust ||= removalOnly;
    add(
      removalOnly ? "accept_alert" : "info",
      "AUTHORITIES_REMOVED",
      `${removed.length} ${plural(removed.length, "authority", "authorities")} removed`,
      describeAuthorities(removed),
    );
  }

  const shared = sharedAuthorities(added, lastKnownGood, input);
  if (shared.own.length > 0) {
    add(
      policy.sharedWithOwnDomain,
      "SHARED_WITH_OWN_DOMAIN",
      `${shared.own.length} added ${plural(shared.own.length, "authority", "authorities")} also belong to this trust domain`,
      { authorities: shared.own },
    );
  }
  if (shared.other.length > 0) {
    const trustDomains = [...new Set(shared.other.flatMap((entry) => entry.owners))].sort(compare);
    add(
      policy.sharedWithOtherPartner,
      "SHARED_WITH_OTHER_PARTNER",
      `${shared.other.length} added ${plural(shared.other.length, "authority", "authorities")} also belong to ${trustDomains.join(", ")}`,
      { trustDomains, authorities: shared.other },
    );
  }
  // An empty (revoked) last-known-good counts too: revoking everything is accepted at once, so if new
  // keys after it were accepted at once as well, serving an empty bundle would open a path to replacing
  // a partner's keys with no person involved. Only a first bundle ever is taken without continuity.
  // Continuity is judged against the authorities that still vouch for the partner: an expired one in
  // common proves nothing, or a bundle of one expired attacker certificate (accepted at once, it only
  // removes trust) would make the attacker's next, valid keys look like an ordinary rotation.
  const replacing = lastKnownGood !== undefined && added.length > 0;
  if (replacing && diffBundles(vouching(lastKnownGood, input.now), candidate).unchangedCount === 0) {
    add(
      policy.fullReplacement,
      "FULL_REPLACEMENT",
      "no authority in common with the last-known-good",
      describeAuthorities(added),
    );
  }

  // What the change is, when nothing above decides it.
  if (lastKnownGood === undefined) {
    add(
      "accept",
      "FIRST_BUNDLE",
      `first bundle, ${candidateCount} ${plural(candidateCount, "authority", "authorities")}`,
    );
  } else if (added.length > 0) {
    add(
      "accept",
      "AUTHORITIES_ADDED",
      `${added.length} ${plural(added.length, "authority", "authorities")} added`,
      describeAuthorities(added),
    );
  } else if (!diff.authoritiesChanged) {
    add("accept", "METADATA_CHANGED", "only the refresh hint or the sequence changed", {
      refreshHintChanged: diff.refreshHintChanged,
      sequenceChanged: diff.sequenceChanged,
    });
  }

  const kind: DecisionKind =
    rollback && policy.sequenceRollback === "reject"
      ? "reject"
      : removesTrust
        ? "accept_alert"
        : findings.some((f) => f.outcome === "reject")
          ? "reject"
          : findings.some((f) => f.outcome === "quarantine")
            ? "quarantine"
            : "accept";

  const ordered = [...findings].sort((a, b) => rank(a) - rank(b));
  const deciding = ordered.find((f) => f.outcome === kind) ?? ordered[0];
  // Unreachable: a changed bundle always yields at least one finding of the decided kind.
  if (deciding === undefined) throw new Error("trust policy reached a decision without a reason");
  const reasons = [deciding, ...ordered.filter((f) => f !== deciding)].map((f) => f.reason);
  return decision(kind, reasons, diff);
}

interface SharedAuthority {
  readonly type: "x509" | "jwt";
  /** X.509: certificate SHA-256; JWT: key thumbprint. */
  readonly fingerprint: string;
  readonly keyId?: string;
  readonly owners: readonly string[];
}

/**
 * Added authorities that someone else also holds. An identity the last-known-good already carried is
 * skipped: that trust was already granted (or approved), and re-quarantining it on every refresh, or
 * when only its `kid` changed, would hold nothing new.
 */
function sharedAuthorities(
  added: readonly Authority[],
  lastKnownGood: TrustBundle | undefined,
  input: DecideBundleInput,
): { own: SharedAuthority[]; other: SharedAuthority[] } {
  const own: SharedAuthority[] = [];
  const other: SharedAuthority[] = [];
  if (added.length === 0) return { own, other };
  const known = new Set<string>();
  if (lastKnownGood !== undefined) {
    const stillValid = vouching(lastKnownGood, input.now);
    for (const authority of [...stillValid.x509Authorities, ...stillValid.jwtAuthorities.values()]) {
      for (const id of authorityIdentities(authority)) known.add(id);
    }
  }
  for (const authority of added) {
    const fresh = authorityIdentities(authority).filter((id) => !known.has(id));
    const ownOwners = owners(input.ownAuthorities, fresh);
    const otherOwners = owners(input.otherPartnerAuthorities, fresh).filter((owner) => owner !== input.partner);
    if (ownOwners.length > 0) own.push(sharedAuthority(authority, ownOwners));
    if (otherOwners.length > 0) other.push(sharedAuthority(authority, otherOwners));
  }
  return { own, other };
}

function owners(index: AuthorityIndex, identities: readonly string[]): readonly string[] {
  const found = identities.flatMap((id) => index.owners(id));
  return found.length <= 1 ? found : [...new Set(found)].sort(compare);
}

function sharedAuthority(authority: Authority, holders: readonly string[]): SharedAuthority {
  return isX509Authority(authority)
    ? { type: "x509", fingerprint: authority.fingerprint, owners: holders }
    : { type: "jwt", fingerprint: authority.thumbprint, keyId: authority.keyId, owners: holders };
}

function describeAuthorities(authorities: readonly Authority[]): Record<string, unknown> {
  const x509: string[] = [];
  const jwt: string[] = [];
  for (const authority of authorities) {
    if (isX509Authority(authority)) x509.push(authority.fingerprint);
    else jwt.push(authority.keyId);
  }
  return { x509: x509.sort(compare), jwt: jwt.sort(compare) };
}

/** The last-known-good without its expired X.509 authorities (JWT keys carry no expiry in a bundle). */
function vouching(bundle: TrustBundle, now: Date): TrustBundle {
  const x509Authorities = bundle.x509Authorities.filter((authority) => !(notAfterOf(authority) < now.getTime()));
  if (x509Authorities.length === bundle.x509Authorities.length) return bundle;
  return createTrustBundle({ x509Authorities, jwtAuthorities: bundle.jwtAuthorities.values() });
}

/**
 * Milliseconds; NaN when the expiry cannot be read, which never compares as expired. Read once per
 * certificate (spiffe/not-after.ts caches it): every poll decides against the same last-known-good.
 */
function notAfterOf(authority: X509Authority): number {
  try {
    return notAfterSeconds(authority.der) * 1000;
  } catch {
    return Number.NaN;
  }
}

/** Milliseconds; undefined when any certificate's expiry cannot be read, so an unreadable one never counts as expired. */
function latestNotAfter(authorities: readonly X509Authority[]): number | undefined {
  let latest = Number.NEGATIVE_INFINITY;
  for (const authority of authorities) {
    const notAfter = notAfterOf(authority);
    if (Number.isNaN(notAfter)) return undefined;
    latest = Math.max(latest, notAfter);
  }
  return authorities.length > 0 ? latest : undefined;
}

function reason(code: DecisionReasonCode, message: string, details?: Record<string, unknown>): DecisionReason {
  return Object.freeze(details === undefined ? { code, message } : { code, message, details: Object.freeze(details) });
}

function decision(kind: DecisionKind, reasons: readonly DecisionReason[], diff: BundleDiff): Decision {
  return Object.freeze({ kind, reasons: Object.freeze([...reasons]), diff });
}

/** Reasons that only describe the change come after every reason that asks for an outcome. */
function rank(finding: Finding): number {
  return PRECEDENCE.indexOf(finding.reason.code) + (finding.outcome === "info" ? PRECEDENCE.length : 0);
}

function plural(count: number, one: string, many: string): string {
  return count === 1 ? one : many;
}
