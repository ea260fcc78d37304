/**
 * decideBundle (DESIGN.md section 2): one case per rule and per combination of rules, asserting the kind
 * and the reason codes in order (deciding reason first), never the messages; then property tests over
 * bundles drawn from a pool of pre-generated authorities.
 */
// Must come before @peculiar/x509: tsyringe (its dependency) needs Reflect metadata at import time.
import "reflect-metadata";
import { webcrypto, X509Certificate } from "node:crypto";
import * as x509 from "@peculiar/x509";
import fc from "fast-check";
import { beforeAll, describe, expect, it } from "vitest";
import {
  type Authority,
  type AuthorityIndex,
  authorityIdentities,
  buildAuthorityIndex,
  EMPTY_AUTHORITY_INDEX,
  isX509Authority,
} from "../../src/policy/authority-index.js";
import { decideBundle } from "../../src/policy/decide.js";
import { resolvePolicy } from "../../src/policy/merge.js";
import {
  DEFAULT_TRUST_POLICY,
  type Decision,
  type DecisionKind,
  type DecisionReasonCode,
  type SuspiciousChangeAction,
  type TrustPolicy,
} from "../../src/policy/types.js";
import {
  createTrustBundle,
  type JwtAuthority,
  jwtAuthority,
  MAX_SEQUENCE,
  type TrustBundle,
  type X509Authority,
  x509AuthorityFromCertificate,
} from "../../src/spiffe/bundle.js";
import { importPublicJwk, jwkThumbprint, type PublicJwk } from "../../src/spiffe/public-key.js";
import { createCa, createJwtKey, type Issued, type JsonWebKey } from "../support/pki.js";

const NOW = new Date("2030-06-01T12:00:00.000Z");
const SECOND = 1000;
const DAY = 24 * 60 * 60 * SECOND;
const at = (offsetMs: number) => new Date(NOW.getTime() + offsetMs);
const valid = { notBefore: at(-DAY), notAfter: at(30 * DAY) };
const expired = { notBefore: at(-30 * DAY), notAfter: at(-DAY) };

const OWN = "example.org";

type Name =
  | "pA"
  | "pB"
  | "pC"
  | "pExp1"
  | "pExp2"
  | "pEndsNow"
  | "j1"
  | "j2"
  | "j1Renamed"
  | "ownCa"
  | "ownExpired"
  | "ownCaReissued"
  | "ownJwt"
  | "ownJwtRenamed"
  | "ownCaKeyAsJwt"
  | "otherCa"
  | "otherJwt";

const A = {} as Record<Name, Authority>;
let ownIndex: AuthorityIndex;
let otherIndex: AuthorityIndex;

function x509Of(issued: Issued): X509Authority {
  return x509AuthorityFromCertificate(new X509Certificate(issued.der));
}

function imported(jwk: JsonWebKey): PublicJwk {
  const result = importPublicJwk(jwk as Record<string, unknown>);
  if (!result.ok) throw new Error(result.message);
  return result.jwk;
}

/** A second self-signed certificate around an existing CA's key pair: another certificate, the same anchor. */
async function reissue(ca: Issued): Promise<X509Authority> {
  const cert = await x509.X509CertificateGenerator.createSelfSigned(
    {
      serialNumber: "7e01",
      name: ca.cert.subject,
      notBefore: at(-DAY),
      notAfter: at(90 * DAY),
      keys: ca.keys,
      signingAlgorithm: { name: "ECDSA", hash: "SHA-256" },
      extensions: [new x509.BasicConstraintsExtension(true, undefined, true)],
    },
    webcrypto,
  );
  return x509AuthorityFromCertificate(new X509Certificate(new Uint8Array(cert.rawData)));
}

function makeBundle(authorities: readonly Authority[], meta: { seq?: bigint; hint?: number } = {}): TrustBundle {
  return createTrustBundle({
    x509Authorities: authorities.filter(isX509Authority),
    jwtAuthorities: authorities.filter((a): a is JwtAuthority => !isX509Authority(a)),
    sequence: meta.seq,
    refreshHintSeconds: meta.hint,
  });
}

beforeAll(async () => {
  const [pA, pB, pC, pExp1, pExp2, pEndsNow, ownCa, ownExpired, otherCa] = await Promise.all([
    createCa({ trustDomain: "partner.org", ...valid }),
    createCa({ trustDomain: "partner.org", ...valid }),
    createCa({ trustDomain: "partner.org", ...valid }),
    createCa({ trustDomain: "partner.org", ...expired }),
    createCa({ trustDomain: "partner.org", notBefore: at(-60 * DAY), notAfter: at(-10 * DAY) }),
    createCa({ trustDomain: "partner.org", notBefore: at(-DAY), notAfter: NOW }),
    createCa({ trustDomain: OWN, ...valid }),
    createCa({ trustDomain: OWN, ...expired }),
    createCa({ trustDomain: "other.org", ...valid }),
  ]);
  const [k1, k2, kOwn, kOther] = await Promise.all([createJwtKey(), createJwtKey(), createJwtKey(), createJwtKey()]);
  const ownCaAuthority = x509Of(ownCa);
  Object.assign(A, {
    pA: x509Of(pA),
    pB: x509Of(pB),
    pC: x509Of(pC),
    pExp1: x509Of(pExp1),
    pExp2: x509Of(pExp2),
    pEndsNow: x509Of(pEndsNow),
    j1: jwtAuthority("j1", imported(k1.publicJwk)),
    j2: jwtAuthority("j2", imported(k2.publicJwk)),
    j1Renamed: jwtAuthority("j1-renamed", imported(k1.publicJwk)),
    ownCa: ownCaAuthority,
    ownExpired: x509Of(ownExpired),
    ownCaReissued: await reissue(ownCa),
    ownJwt: jwtAuthority("own-1", imported(kOwn.publicJwk)),
    ownJwtRenamed: jwtAuthority("partner-kid", imported(kOwn.publicJwk), "wit-svid"),
    ownCaKeyAsJwt: jwtAuthority("looks-innocent", ownCaAuthority.publicKey),
    otherCa: x509Of(otherCa),
    otherJwt: jwtAuthority("other-1", imported(kOther.publicJwk)),
  } satisfies Record<Name, Authority>);

  ownIndex = buildAuthorityIndex([{ owner: OWN, bundle: makeBundle([A.ownCa, A.ownExpired, A.ownJwt]) }]);
  otherIndex = buildAuthorityIndex([
    { owner: "third.org", bundle: makeBundle([A.otherCa]) },
    { owner: "other.org", bundle: makeBundle([A.otherCa, A.otherJwt]) },
    // The partner being decided is in the index too, as it is when one index serves every relationship.
    { owner: "partner.org", bundle: makeBundle([A.pA, A.pB, A.j1]) },
  ]);
});

interface BundleSpec {
  readonly auth: readonly Name[];
  readonly seq?: bigint;
  readonly hint?: number;
}

interface Case {
  readonly lkg?: BundleSpec;
  readonly candidate: BundleSpec;
  readonly policy?: Partial<TrustPolicy>;
  readonly now?: Date;
  /** The partner's name in the shared index; null leaves it out. Default "partner.org". */
  readonly partner?: string | null;
  readonly kind: DecisionKind;
  readonly codes: readonly DecisionReasonCode[];
}

const build = (spec: BundleSpec) =>
  makeBundle(
    spec.auth.map((name) => A[name]),
    spec,
  );

function decide(c: Case): Decision {
  return decideBundle({
    candidate: build(c.candidate),
    lastKnownGood: c.lkg === undefined ? undefined : build(c.lkg),
    ownAuthorities: ownIndex,
    otherPartnerAuthorities: otherIndex,
    policy: resolvePolicy(c.policy),
    now: c.now ?? NOW,
    partner: c.partner === null ? undefined : (c.partner ?? "partner.org"),
  });
}

const LKG: BundleSpec = { auth: ["pA", "pB", "j1"], seq: 10n, hint: 300 };
/** `null` leaves the sequence out (undefined would pick the default). */
const next = (auth: readonly Name[], seq: bigint | null = 11n, hint = 300): BundleSpec =>
  seq === null ? { auth, hint } : { auth, seq, hint };

const ALL_ACCEPT: Partial<TrustPolicy> = {
  fullReplacement: "accept",
  sharedWithOwnDomain: "accept",
  sharedWithOtherPartner: "accept",
  sequenceReused: "accept",
  sequenceRollback: "accept",
};

const cases: Record<string, Case> = {
  // First bundle.
  "first bundle is accepted": { candidate: LKG, kind: "accept", codes: ["FIRST_BUNDLE"] },
  "first bundle, empty": { candidate: next([]), kind: "accept_alert", codes: ["EMPTY_BUNDLE", "FIRST_BUNDLE"] },
  "first bundle, all authorities expired": {
    candidate: next(["pExp1", "pExp2"]),
    kind: "accept_alert",
    codes: ["ALL_AUTHORITIES_EXPIRED", "FIRST_BUNDLE"],
  },
  "first bundle, expired X.509 but a JWT authority is not all expired": {
    candidate: next(["pExp1", "j1"]),
    kind: "accept",
    codes: ["FIRST_BUNDLE"],
  },
  "first bundle holding an own-domain authority": {
    candidate: next(["pA", "ownCa"]),
    kind: "quarantine",
    codes: ["SHARED_WITH_OWN_DOMAIN", "FIRST_BUNDLE"],
  },
  "first bundle holding another partner's authority": {
    candidate: next(["pA", "otherJwt"]),
    kind: "quarantine",
    codes: ["SHARED_WITH_OTHER_PARTNER", "FIRST_BUNDLE"],
  },
  "first bundle shared with own domain, policy reject": {
    candidate: next(["pA", "ownJwt"]),
    policy: { sharedWithOwnDomain: "reject" },
    kind: "reject",
    codes: ["SHARED_WITH_OWN_DOMAIN", "FIRST_BUNDLE"],
  },
  "first bundle shared with own domain, policy accept": {
    candidate: next(["pA", "ownJwt"]),
    policy: { sharedWithOwnDomain: "accept" },
    kind: "accept",
    codes: ["SHARED_WITH_OWN_DOMAIN", "FIRST_BUNDLE"],
  },
  "first bundle, all expired and shared: expired authorities grant no trust": {
    candidate: next(["pExp1", "ownExpired"]),
    kind: "accept_alert",
    codes: ["ALL_AUTHORITIES_EXPIRED", "SHARED_WITH_OWN_DOMAIN", "FIRST_BUNDLE"],
  },
  "an authority expiring exactly now is still valid": {
    candidate: next(["pEndsNow"]),
    kind: "accept",
    codes: ["FIRST_BUNDLE"],
  },
  "an authority one second past its notAfter is expired": {
    candidate: next(["pEndsNow"]),
    now: at(SECOND),
    kind: "accept_alert",
    codes: ["ALL_AUTHORITIES_EXPIRED", "FIRST_BUNDLE"],
  },

  // Unchanged.
  "identical content is unchanged": {
    lkg: LKG,
    candidate: { auth: ["j1", "pB", "pA"], seq: 10n, hint: 300 },
    kind: "unchanged",
    codes: ["UNCHANGED"],
  },
  "identical content holding an approved shared authority is unchanged, not re-quarantined": {
    lkg: next(["pA", "ownCa"]),
    candidate: next(["pA", "ownCa"]),
    kind: "unchanged",
    codes: ["UNCHANGED"],
  },
  "identical, all-expired content is unchanged": {
    lkg: next(["pExp1"]),
    candidate: next(["pExp1"]),
    kind: "unchanged",
    codes: ["UNCHANGED"],
  },

  // Plain changes.
  "rotation: one added, the rest kept": {
    lkg: LKG,
    candidate: next(["pA", "pB", "pC", "j1"]),
    kind: "accept",
    codes: ["AUTHORITIES_ADDED"],
  },
  "rotation: one added, one removed": {
    lkg: LKG,
    candidate: next(["pB", "pC", "j1"]),
    kind: "accept",
    codes: ["AUTHORITIES_ADDED", "AUTHORITIES_REMOVED"],
  },
  "metadata only: sequence and hint changed": {
    lkg: LKG,
    candidate: next(["pA", "pB", "j1"], 11n, 600),
    kind: "accept",
    codes: ["METADATA_CHANGED"],
  },
  "metadata only: sequence up to the largest allowed": {
    lkg: LKG,
    candidate: next(["pA", "pB", "j1"], MAX_SEQUENCE),
    kind: "accept",
    codes: ["METADATA_CHANGED"],
  },
  // Revoking everything is accepted at once; keys arriving after that must not be, or serving an
  // empty bundle would be a way to swap a partner's keys with no person involved.
  "after an empty last-known-good, new authorities are a full replacement": {
    lkg: next([], 5n),
    candidate: next(["pA"], 6n),
    kind: "quarantine",
    codes: ["FULL_REPLACEMENT", "AUTHORITIES_ADDED"],
  },

  // Trust removal.
  "removal only": {
    lkg: LKG,
    candidate: next(["pA", "j1"]),
    kind: "accept_alert",
    codes: ["AUTHORITIES_REMOVED"],
  },
  "empty bundle: all keys revoked": {
    lkg: LKG,
    candidate: next([]),
    kind: "accept_alert",
    codes: ["EMPTY_BUNDLE", "AUTHORITIES_REMOVED"],
  },
  "empty after empty, new sequence": {
    lkg: next([], 5n),
    candidate: next([], 6n),
    kind: "accept_alert",
    codes: ["EMPTY_BUNDLE", "METADATA_CHANGED"],
  },
  // The two-step path around the replacement rule: an expired certificate is accepted at once (it only
  // removes trust), and must not then vouch for valid keys added beside it.
  "step 1 of a replacement via an expired certificate: accepted, it only removes trust": {
    lkg: next(["pA"], 10n),
    candidate: next(["pExp1"], 11n),
    kind: "accept_alert",
    codes: ["ALL_AUTHORITIES_EXPIRED", "FULL_REPLACEMENT", "AUTHORITIES_ADDED", "AUTHORITIES_REMOVED"],
  },
  "step 2: valid keys beside the expired certificate are a full replacement": {
    lkg: next(["pExp1"], 11n),
    candidate: next(["pExp1", "pB"], 12n),
    kind: "quarantine",
    codes: ["FULL_REPLACEMENT", "AUTHORITIES_ADDED"],
  },
  "all remaining authorities expired": {
    lkg: next(["pA", "pExp1"], 10n),
    candidate: next(["pExp1"]),
    kind: "accept_alert",
    codes: ["ALL_AUTHORITIES_EXPIRED", "AUTHORITIES_REMOVED"],
  },
  "all expired, same authorities with a new sequence": {
    lkg: next(["pExp1"], 10n),
    candidate: next(["pExp1"], 11n),
    kind: "accept_alert",
    codes: ["ALL_AUTHORITIES_EXPIRED", "METADATA_CHANGED"],
  },
  "all expired beats full replacement": {
    lkg: LKG,
    candidate: next(["pExp1", "pExp2"]),
    kind: "accept_alert",
    codes: ["ALL_AUTHORITIES_EXPIRED", "FULL_REPLACEMENT", "AUTHORITIES_ADDED", "AUTHORITIES_REMOVED"],
  },
  "all expired beats full replacement even when the policy rejects replacements": {
    lkg: LKG,
    candidate: next(["pExp1", "pExp2"]),
    policy: { fullReplacement: "reject" },
    kind: "accept_alert",
    codes: ["ALL_AUTHORITIES_EXPIRED", "FULL_REPLACEMENT", "AUTHORITIES_ADDED", "AUTHORITIES_REMOVED"],
  },
  "removing and adding is not removal only": {
    lkg: LKG,
    candidate: next(["pA", "j2"]),
    kind: "accept",
    codes: ["AUTHORITIES_ADDED", "AUTHORITIES_REMOVED"],
  },

  // Sequence rollback: rejected before anything else, even a removal (see decide.ts).
  "rollback with an addition": {
    lkg: LKG,
    candidate: next(["pA", "pB", "pC", "j1"], 9n),
    kind: "reject",
    codes: ["SEQUENCE_ROLLBACK", "AUTHORITIES_ADDED"],
  },
  "rollback, metadata only": {
    lkg: LKG,
    candidate: next(["pA", "pB", "j1"], 0n),
    kind: "reject",
    codes: ["SEQUENCE_ROLLBACK", "METADATA_CHANGED"],
  },
  "rollback with removal only is rejected: an old bundle is no revocation": {
    lkg: LKG,
    candidate: next(["pA"], 9n),
    kind: "reject",
    codes: ["SEQUENCE_ROLLBACK", "AUTHORITIES_REMOVED"],
  },
  "rollback to an empty bundle is rejected": {
    lkg: LKG,
    candidate: next([], 9n),
    kind: "reject",
    codes: ["SEQUENCE_ROLLBACK", "EMPTY_BUNDLE", "AUTHORITIES_REMOVED"],
  },
  "rollback to an all-expired bundle is rejected": {
    lkg: LKG,
    candidate: next(["pExp1"], 9n),
    kind: "reject",
    codes: [
      "SEQUENCE_ROLLBACK",
      "ALL_AUTHORITIES_EXPIRED",
      "FULL_REPLACEMENT",
      "AUTHORITIES_ADDED",
      "AUTHORITIES_REMOVED",
    ],
  },
  "rollback with a full replacement": {
    lkg: LKG,
    candidate: next(["pC"], 1n),
    kind: "reject",
    codes: ["SEQUENCE_ROLLBACK", "FULL_REPLACEMENT", "AUTHORITIES_ADDED", "AUTHORITIES_REMOVED"],
  },
  "rollback allowed by policy, with an addition": {
    lkg: LKG,
    candidate: next(["pA", "pB", "pC", "j1"], 0n),
    policy: { sequenceRollback: "accept" },
    kind: "accept",
    codes: ["SEQUENCE_ROLLBACK", "AUTHORITIES_ADDED"],
  },
  "rollback allowed by policy, with removal only": {
    lkg: LKG,
    candidate: next(["pA"], 0n),
    policy: { sequenceRollback: "accept" },
    kind: "accept_alert",
    codes: ["AUTHORITIES_REMOVED", "SEQUENCE_ROLLBACK"],
  },
  "rollback allowed by policy does not lift a quarantine": {
    lkg: LKG,
    candidate: next(["pC"], 0n),
    policy: { sequenceRollback: "accept" },
    kind: "quarantine",
    codes: ["FULL_REPLACEMENT", "SEQUENCE_ROLLBACK", "AUTHORITIES_ADDED", "AUTHORITIES_REMOVED"],
  },

  // Sequence reused.
  "same sequence, an authority added": {
    lkg: LKG,
    candidate: next(["pA", "pB", "pC", "j1"], 10n),
    kind: "quarantine",
    codes: ["SEQUENCE_REUSED", "AUTHORITIES_ADDED"],
  },
  "same sequence, only the hint changed": {
    lkg: LKG,
    candidate: next(["pA", "pB", "j1"], 10n, 900),
    kind: "quarantine",
    codes: ["SEQUENCE_REUSED", "METADATA_CHANGED"],
  },
  "same sequence, policy reject": {
    lkg: LKG,
    candidate: next(["pA", "pB", "pC", "j1"], 10n),
    policy: { sequenceReused: "reject" },
    kind: "reject",
    codes: ["SEQUENCE_REUSED", "AUTHORITIES_ADDED"],
  },
  "same sequence, policy accept": {
    lkg: LKG,
    candidate: next(["pA", "pB", "pC", "j1"], 10n),
    policy: { sequenceReused: "accept" },
    kind: "accept",
    codes: ["SEQUENCE_REUSED", "AUTHORITIES_ADDED"],
  },
  "same sequence, removal only: trust removal is never held": {
    lkg: LKG,
    candidate: next(["pA"], 10n),
    kind: "accept_alert",
    codes: ["AUTHORITIES_REMOVED", "SEQUENCE_REUSED"],
  },
  "same sequence, empty, even when the policy rejects reuse": {
    lkg: LKG,
    candidate: next([], 10n),
    policy: { sequenceReused: "reject" },
    kind: "accept_alert",
    codes: ["EMPTY_BUNDLE", "AUTHORITIES_REMOVED", "SEQUENCE_REUSED"],
  },
  "same sequence, all expired": {
    lkg: next(["pA", "pExp1"], 10n),
    candidate: next(["pExp1"], 10n),
    kind: "accept_alert",
    codes: ["ALL_AUTHORITIES_EXPIRED", "AUTHORITIES_REMOVED", "SEQUENCE_REUSED"],
  },

  // Missing sequences are not compared.
  "sequence dropped by the partner, with an addition": {
    lkg: LKG,
    candidate: next(["pA", "pB", "pC", "j1"], null),
    kind: "accept",
    codes: ["AUTHORITIES_ADDED", "SEQUENCE_MISSING"],
  },
  "sequence dropped, with removal only": {
    lkg: LKG,
    candidate: next(["pA"], null),
    kind: "accept_alert",
    codes: ["AUTHORITIES_REMOVED", "SEQUENCE_MISSING"],
  },
  "sequence dropped, nothing else changed": {
    lkg: LKG,
    candidate: next(["pA", "pB", "j1"], null),
    kind: "accept",
    codes: ["METADATA_CHANGED", "SEQUENCE_MISSING"],
  },
  "no sequence before, a sequence now: not compared, not missing": {
    lkg: next(["pA"], null),
    candidate: next(["pA"], 0n),
    kind: "accept",
    codes: ["METADATA_CHANGED"],
  },
  "no sequence on either side: content changes are never a reuse": {
    lkg: next(["pA"], null),
    candidate: next(["pA", "pB"], null),
    kind: "accept",
    codes: ["AUTHORITIES_ADDED"],
  },

  // Shared authorities.
  "adds an own-domain X.509 authority": {
    lkg: LKG,
    candidate: next(["pA", "pB", "j1", "ownCa"]),
    kind: "quarantine",
    codes: ["SHARED_WITH_OWN_DOMAIN", "AUTHORITIES_ADDED"],
  },
  "adds an own-domain JWT key under its own kid": {
    lkg: LKG,
    candidate: next(["pA", "pB", "j1", "ownJwt"]),
    kind: "quarantine",
    codes: ["SHARED_WITH_OWN_DOMAIN", "AUTHORITIES_ADDED"],
  },
  "adds an own-domain JWT key under another kid and use": {
    lkg: LKG,
    candidate: next(["pA", "pB", "j1", "ownJwtRenamed"]),
    kind: "quarantine",
    codes: ["SHARED_WITH_OWN_DOMAIN", "AUTHORITIES_ADDED"],
  },
  "adds a JWT authority carrying the own CA's key": {
    lkg: LKG,
    candidate: next(["pA", "pB", "j1", "ownCaKeyAsJwt"]),
    kind: "quarantine",
    codes: ["SHARED_WITH_OWN_DOMAIN", "AUTHORITIES_ADDED"],
  },
  "adds a certificate re-issued around the own CA's key": {
    lkg: LKG,
    candidate: next(["pA", "pB", "j1", "ownCaReissued"]),
    kind: "quarantine",
    codes: ["SHARED_WITH_OWN_DOMAIN", "AUTHORITIES_ADDED"],
  },
  "adds an expired own-domain authority beside valid ones": {
    lkg: LKG,
    candidate: next(["pA", "pB", "j1", "ownExpired"]),
    kind: "quarantine",
    codes: ["SHARED_WITH_OWN_DOMAIN", "AUTHORITIES_ADDED"],
  },
  "adds another partner's authority": {
    lkg: LKG,
    candidate: next(["pA", "pB", "j1", "otherCa"]),
    kind: "quarantine",
    codes: ["SHARED_WITH_OTHER_PARTNER", "AUTHORITIES_ADDED"],
  },
  "adds another partner's authority, policy reject": {
    lkg: LKG,
    candidate: next(["pA", "pB", "j1", "otherJwt"]),
    policy: { sharedWithOtherPartner: "reject" },
    kind: "reject",
    codes: ["SHARED_WITH_OTHER_PARTNER", "AUTHORITIES_ADDED"],
  },
  "adds another partner's authority, policy accept": {
    lkg: LKG,
    candidate: next(["pA", "pB", "j1", "otherJwt"]),
    policy: { sharedWithOtherPartner: "accept" },
    kind: "accept",
    codes: ["SHARED_WITH_OTHER_PARTNER", "AUTHORITIES_ADDED"],
  },
  "adds authorities shared with both": {
    lkg: LKG,
    candidate: next(["pA", "pB", "j1", "ownCa", "otherCa"]),
    kind: "quarantine",
    codes: ["SHARED_WITH_OWN_DOMAIN", "SHARED_WITH_OTHER_PARTNER", "AUTHORITIES_ADDED"],
  },
  "a shared authority already in the last-known-good is not added again": {
    lkg: next(["pA", "ownCa", "otherJwt"], 10n),
    candidate: next(["pA", "ownCa", "otherJwt", "pB"]),
    kind: "accept",
    codes: ["AUTHORITIES_ADDED"],
  },
  "a shared JWT key already trusted, renamed: no new trust": {
    lkg: next(["pA", "ownJwt"], 10n),
    candidate: next(["pA", "ownJwtRenamed"]),
    kind: "accept",
    codes: ["AUTHORITIES_ADDED", "AUTHORITIES_REMOVED"],
  },
  "without the partner's name, its entries in the shared index still never count once in its last-known-good": {
    lkg: LKG,
    candidate: next(["pA", "pB", "pC", "j1"]),
    partner: null,
    kind: "accept",
    codes: ["AUTHORITIES_ADDED"],
  },
  "without the partner's name, its entries in the shared index would flag its first bundle": {
    candidate: LKG,
    partner: null,
    kind: "quarantine",
    codes: ["SHARED_WITH_OTHER_PARTNER", "FIRST_BUNDLE"],
  },
  "the partner's own entries in the shared index never count against it": {
    lkg: next(["pA"], 10n),
    candidate: next(["pA", "pB", "j1"]),
    kind: "accept",
    codes: ["AUTHORITIES_ADDED"],
  },

  // Full replacement.
  "full replacement": {
    lkg: LKG,
    candidate: next(["pC", "j2"]),
    kind: "quarantine",
    codes: ["FULL_REPLACEMENT", "AUTHORITIES_ADDED", "AUTHORITIES_REMOVED"],
  },
  "full replacement, policy reject": {
    lkg: LKG,
    candidate: next(["pC"]),
    policy: { fullReplacement: "reject" },
    kind: "reject",
    codes: ["FULL_REPLACEMENT", "AUTHORITIES_ADDED", "AUTHORITIES_REMOVED"],
  },
  "full replacement, policy accept": {
    lkg: LKG,
    candidate: next(["pC"]),
    policy: { fullReplacement: "accept" },
    kind: "accept",
    codes: ["FULL_REPLACEMENT", "AUTHORITIES_ADDED", "AUTHORITIES_REMOVED"],
  },
  "a JWT kid renamed is a new authority by the diff, so renaming the only one is a full replacement": {
    lkg: next(["j1"], 10n),
    candidate: next(["j1Renamed"]),
    kind: "quarantine",
    codes: ["FULL_REPLACEMENT", "AUTHORITIES_ADDED", "AUTHORITIES_REMOVED"],
  },

  // Several suspicious rules at once: the most severe action decides and is listed first.
  "full replacement by own-domain authorities": {
    lkg: LKG,
    candidate: next(["ownCa", "ownJwt"]),
    kind: "quarantine",
    codes: ["SHARED_WITH_OWN_DOMAIN", "FULL_REPLACEMENT", "AUTHORITIES_ADDED", "AUTHORITIES_REMOVED"],
  },
  "rejecting full replacement outranks quarantining a shared authority": {
    lkg: LKG,
    candidate: next(["ownCa", "ownJwt"]),
    policy: { fullReplacement: "reject" },
    kind: "reject",
    codes: ["FULL_REPLACEMENT", "SHARED_WITH_OWN_DOMAIN", "AUTHORITIES_ADDED", "AUTHORITIES_REMOVED"],
  },
  "reuse, shared and replacement, reuse rejected": {
    lkg: LKG,
    candidate: next(["otherCa"], 10n),
    policy: { sequenceReused: "reject" },
    kind: "reject",
    codes: [
      "SEQUENCE_REUSED",
      "SHARED_WITH_OTHER_PARTNER",
      "FULL_REPLACEMENT",
      "AUTHORITIES_ADDED",
      "AUTHORITIES_REMOVED",
    ],
  },
  "one suspicious rule accepted by policy, another still quarantines": {
    lkg: LKG,
    candidate: next(["pC", "ownJwt"]),
    policy: { fullReplacement: "accept" },
    kind: "quarantine",
    codes: ["SHARED_WITH_OWN_DOMAIN", "FULL_REPLACEMENT", "AUTHORITIES_ADDED", "AUTHORITIES_REMOVED"],
  },
  "every suspicious rule accepted by policy: accepted, every reason listed": {
    lkg: LKG,
    candidate: next(["ownCa", "otherJwt"], 10n),
    policy: ALL_ACCEPT,
    kind: "accept",
    codes: [
      "SHARED_WITH_OWN_DOMAIN",
      "SHARED_WITH_OTHER_PARTNER",
      "FULL_REPLACEMENT",
      "SEQUENCE_REUSED",
      "AUTHORITIES_ADDED",
      "AUTHORITIES_REMOVED",
    ],
  },
  "rollback outranks every other rule": {
    lkg: LKG,
    candidate: next(["ownCa", "otherJwt"], 3n),
    policy: { fullReplacement: "reject", sharedWithOwnDomain: "reject" },
    kind: "reject",
    codes: [
      "SEQUENCE_ROLLBACK",
      "SHARED_WITH_OWN_DOMAIN",
      "SHARED_WITH_OTHER_PARTNER",
      "FULL_REPLACEMENT",
      "AUTHORITIES_ADDED",
      "AUTHORITIES_REMOVED",
    ],
  },
};

describe("decideBundle", () => {
  it.each(Object.entries(cases))("%s", (_name, c) => {
    const decision = decide(c);
    expect({ kind: decision.kind, codes: decision.reasons.map((r) => r.code) }).toEqual({
      kind: c.kind,
      codes: c.codes,
    });
  });

  it("diffs a first bundle against an empty one", () => {
    const decision = decide({ candidate: LKG, kind: "accept", codes: [] });
    expect(decision.diff.x509Added.map((a) => a.fingerprint).sort()).toEqual(
      [A.pA, A.pB].map((a) => (a as X509Authority).fingerprint).sort(),
    );
    expect(decision.diff.jwtAdded.map((a) => a.keyId)).toEqual(["j1"]);
    expect(decision.diff.unchangedCount).toBe(0);
  });

  it("names the other trust domains and the fingerprints of shared authorities", () => {
    const decision = decide({
      lkg: LKG,
      candidate: next(["pA", "pB", "j1", "otherCa", "otherJwt"]),
      kind: "quarantine",
      codes: [],
    });
    const shared = decision.reasons.find((r) => r.code === "SHARED_WITH_OTHER_PARTNER");
    expect(shared?.details).toEqual({
      trustDomains: ["other.org", "third.org"],
      authorities: expect.arrayContaining([
        { type: "x509", fingerprint: (A.otherCa as X509Authority).fingerprint, owners: ["other.org", "third.org"] },
        {
          type: "jwt",
          fingerprint: (A.otherJwt as JwtAuthority).thumbprint,
          keyId: "other-1",
          owners: ["other.org"],
        },
      ]),
    });
  });

  it("names the own-domain authority a re-issued certificate matched by its key", () => {
    const decision = decide({
      lkg: LKG,
      candidate: next(["pA", "pB", "j1", "ownCaReissued"]),
      kind: "quarantine",
      codes: [],
    });
    const shared = decision.reasons.find((r) => r.code === "SHARED_WITH_OWN_DOMAIN");
    expect(shared?.details).toEqual({
      authorities: [{ type: "x509", fingerprint: (A.ownCaReissued as X509Authority).fingerprint, owners: [OWN] }],
    });
  });

  it("reports sequences as decimal strings, so every reason serialises to JSON", () => {
    const decision = decide({
      lkg: { ...LKG, seq: MAX_SEQUENCE },
      candidate: next(["pA"], 0n),
      kind: "reject",
      codes: [],
    });
    expect(decision.reasons[0]?.details).toEqual({ lastKnownGood: MAX_SEQUENCE.toString(), candidate: "0" });
    expect(() => JSON.stringify(decision.reasons)).not.toThrow();
  });

  it("judges expiry at the time it is given, not the system time", () => {
    const c: Case = { candidate: next(["pA"]), kind: "accept", codes: [] };
    expect(decide(c).kind).toBe("accept");
    expect(decide({ ...c, now: at(31 * DAY) }).kind).toBe("accept_alert");
  });
});

describe("buildAuthorityIndex", () => {
  it("finds an X.509 authority by certificate and by key, and a JWT authority by key whatever its kid", () => {
    const index = buildAuthorityIndex([{ owner: OWN, bundle: makeBundle([A.ownCa, A.ownJwt]) }]);
    expect(authorityIdentities(A.ownCa).every((id) => index.has(id))).toBe(true);
    expect(authorityIdentities(A.ownJwtRenamed).every((id) => index.has(id))).toBe(true);
    expect(authorityIdentities(A.ownCaKeyAsJwt).every((id) => index.has(id))).toBe(true);
    const [certificate, key] = authorityIdentities(A.ownCaReissued);
    expect(index.has(certificate!)).toBe(false);
    expect(index.owners(key!)).toEqual([OWN]);
    expect(index.owners(authorityIdentities(A.pA)[0]!)).toEqual([]);
    // Certificate and key of ownCa, one key for ownJwt.
    expect(index.size).toBe(3);
  });

  it("lists every owner of an identity once, sorted, whatever the order of entries", () => {
    const entries = [
      { owner: "b.org", bundle: makeBundle([A.pA]) },
      { owner: "a.org", bundle: makeBundle([A.pA, A.j1]) },
      { owner: "b.org", bundle: makeBundle([A.pA]) },
    ];
    const forward = buildAuthorityIndex(entries);
    const backward = buildAuthorityIndex([...entries].reverse());
    const [certificate] = authorityIdentities(A.pA);
    expect(forward.owners(certificate!)).toEqual(["a.org", "b.org"]);
    expect(backward.owners(certificate!)).toEqual(["a.org", "b.org"]);
    expect(forward.owners(`key:${(A.j1 as JwtAuthority).thumbprint}`)).toEqual(["a.org"]);
  });

  it("keys a JWT authority by the RFC 7638 thumbprint of its key", () => {
    expect(authorityIdentities(A.j1)).toEqual([`key:${jwkThumbprint((A.j1 as JwtAuthority).publicKey)}`]);
  });

  it("has an empty index", () => {
    expect(EMPTY_AUTHORITY_INDEX.size).toBe(0);
    expect(EMPTY_AUTHORITY_INDEX.owners("x509:00")).toEqual([]);
  });
});

describe("decideBundle properties", () => {
  const POOL: readonly Name[] = ["pA", "pB", "pC", "pExp1", "pExp2", "j1", "j2", "ownCa", "otherJwt", "ownJwt"];
  const action = fc.constantFrom<SuspiciousChangeAction>("quarantine", "reject", "accept");
  const policyArb: fc.Arbitrary<TrustPolicy> = fc.record({
    fullReplacement: action,
    sharedWithOwnDomain: action,
    sharedWithOtherPartner: action,
    sequenceReused: action,
    sequenceRollback: fc.constantFrom<"reject" | "accept">("reject", "accept"),
  });
  const seqArb = fc.option(fc.bigInt({ min: 0n, max: 20n }), { nil: undefined });
  const hintArb = fc.option(fc.constantFrom(60, 300, 3600), { nil: undefined });
  const subsetArb = fc.subarray([...POOL]);
  const indexArb = fc.array(fc.record({ owner: fc.constantFrom("a.org", "b.org", "c.org"), auth: subsetArb }), {
    maxLength: 3,
  });

  const bundleOf = (auth: readonly Name[], seq: bigint | undefined, hint: number | undefined) =>
    makeBundle(
      auth.map((name) => A[name]),
      { ...(seq === undefined ? {} : { seq }), ...(hint === undefined ? {} : { hint }) },
    );
  const indexOf = (entries: readonly { owner: string; auth: readonly Name[] }[]) =>
    buildAuthorityIndex(entries.map((e) => ({ owner: e.owner, bundle: bundleOf(e.auth, undefined, undefined) })));

  it("a candidate that only removes authorities is never held or rejected unless its sequence goes backwards", () => {
    fc.assert(
      fc.property(
        fc
          .subarray([...POOL], { minLength: 1 })
          .chain((lkg) => fc.tuple(fc.constant(lkg), fc.subarray(lkg, { maxLength: lkg.length - 1 }))),
        seqArb,
        seqArb,
        hintArb,
        indexArb,
        indexArb,
        policyArb,
        ([lkgAuth, candidateAuth], lkgSeq, candidateSeq, hint, own, others, policy) => {
          const decision = decideBundle({
            candidate: bundleOf(candidateAuth, candidateSeq, hint),
            lastKnownGood: bundleOf(lkgAuth, lkgSeq, 300),
            ownAuthorities: indexOf(own),
            otherPartnerAuthorities: indexOf(others),
            policy,
            now: NOW,
          });
          const rollback = lkgSeq !== undefined && candidateSeq !== undefined && candidateSeq < lkgSeq;
          if (rollback && policy.sequenceRollback === "reject") expect(decision.kind).toBe("reject");
          else expect(decision.kind).toBe("accept_alert");
        },
      ),
    );
  });

  it("never depends on the order authorities or index entries were given in", () => {
    const permutationOf = <T>(items: readonly T[]) =>
      fc.shuffledSubarray([...items], { minLength: items.length, maxLength: items.length });
    const scenario = fc.record({
      lkg: fc.option(subsetArb, { nil: undefined }),
      candidate: subsetArb,
      lkgSeq: seqArb,
      candidateSeq: seqArb,
      own: indexArb,
      others: indexArb,
      policy: policyArb,
    });
    fc.assert(
      fc.property(
        scenario.chain((s) =>
          fc.tuple(
            fc.constant(s),
            fc.record({
              lkg: permutationOf(s.lkg ?? []),
              candidate: permutationOf(s.candidate),
              others: permutationOf(s.others),
              own: permutationOf(s.own),
            }),
          ),
        ),
        ([s, shuffled]) => {
          const run = (order: {
            lkg: readonly Name[];
            candidate: readonly Name[];
            own: typeof s.own;
            others: typeof s.others;
          }) =>
            decideBundle({
              candidate: bundleOf(order.candidate, s.candidateSeq, 300),
              lastKnownGood: s.lkg === undefined ? undefined : bundleOf(order.lkg, s.lkgSeq, 300),
              ownAuthorities: indexOf(order.own),
              otherPartnerAuthorities: indexOf(order.others),
              policy: s.policy,
              now: NOW,
            });
          const given = run({ lkg: s.lkg ?? [], candidate: s.candidate, own: s.own, others: s.others });
          const reordered = run({
            lkg: shuffled.lkg,
            candidate: shuffled.candidate,
            own: shuffled.own.map((e) => ({ owner: e.owner, auth: [...e.auth].reverse() })),
            others: shuffled.others,
          });
          expect(reordered).toEqual(given);
        },
      ),
    );
  });

  it("adding an own-domain authority is never a plain accept under the default policy", () => {
    fc.assert(
      fc.property(
        fc.constantFrom<Name>(...POOL).chain((own) =>
          fc.tuple(
            fc.constant(own),
            fc.subarray(
              POOL.filter((name) => name !== own),
              { minLength: 1 },
            ),
            fc.subarray(POOL.filter((name) => name !== own)),
          ),
        ),
        seqArb,
        seqArb,
        indexArb,
        ([own, lkgAuth, kept], lkgSeq, candidateSeq, others) => {
          const decision = decideBundle({
            candidate: bundleOf([...kept, own], candidateSeq, 300),
            lastKnownGood: bundleOf(lkgAuth, lkgSeq, 300),
            ownAuthorities: indexOf([{ owner: OWN, auth: [own] }]),
            otherPartnerAuthorities: indexOf(others),
            policy: DEFAULT_TRUST_POLICY,
            now: NOW,
          });
          expect(decision.kind).not.toBe("accept");
          expect(decision.reasons.map((r) => r.code)).toContain("SHARED_WITH_OWN_DOMAIN");
        },
      ),
    );
  });
});
