/**
 * How a relationship stands at a moment: its freshness (DESIGN.md section 6) and the expiry window of
 * the authorities it is trusted through. Pure: the engine, the API and the metrics all read it the same way.
 */
import type { FederationConfig } from "../config/types.js";
import type { TrustBundle, X509Authority } from "../spiffe/bundle.js";
import { notAfterSeconds } from "../spiffe/not-after.js";
import type { RelationshipStatus } from "../store/federation-state.js";
import type { Relationship } from "./relationship.js";
import { type Staleness, staleness } from "./staleness.js";

export interface RelationshipHealth {
  readonly staleness: Staleness;
  /** ISO times; absent when the last-known-good has no X.509 authority. */
  readonly earliestNotAfter?: string;
  readonly latestNotAfter?: string;
  readonly x509Authorities: number;
  readonly jwtAuthorities: number;
}

export function relationshipHealth(input: {
  readonly relationship: Relationship;
  readonly status?: RelationshipStatus | undefined;
  readonly lastKnownGood?: TrustBundle | undefined;
  readonly federation: FederationConfig;
  readonly now: Date;
}): RelationshipHealth {
  const lastSuccess = input.status?.lastSuccessAt;
  const notAfters = (input.lastKnownGood?.x509Authorities ?? []).map(notAfter).sort((a, b) => a - b);
  const health: { -readonly [K in keyof RelationshipHealth]: RelationshipHealth[K] } = {
    staleness: staleness({
      lastSuccessAt: lastSuccess === undefined ? undefined : new Date(lastSuccess),
      hintSeconds: input.lastKnownGood?.refreshHintSeconds,
      maxStalenessSeconds: input.relationship.maxStalenessSeconds,
      federation: input.federation,
      now: input.now,
    }),
    x509Authorities: input.lastKnownGood?.x509Authorities.length ?? 0,
    jwtAuthorities: input.lastKnownGood?.jwtAuthorities.size ?? 0,
  };
  if (notAfters.length > 0) {
    health.earliestNotAfter = new Date(notAfters[0]!).toISOString();
    health.latestNotAfter = new Date(notAfters[notAfters.length - 1]!).toISOString();
  }
  return health;
}

function notAfter(authority: X509Authority): number {
  return notAfterSeconds(authority.der) * 1000;
}
