/**
 * The one place Redis key names are made. Every key of a trust domain carries the domain as its hash
 * tag (`{example.org}`), so multi-key scripts stay on one Redis Cluster slot. Trust domain names cannot
 * contain braces, so the tag is exact.
 */
import type { TrustDomain } from "../../spiffe/id.js";

export interface RedisKeys {
  /** This domain's own bundle: the digest and sequence its content was given. */
  localBundleState(ownTrustDomain: TrustDomain): string;
}

export function createRedisKeys(prefix: string): RedisKeys {
  const domain = (trustDomain: TrustDomain) => `${prefix}:{${trustDomain}}`;
  return {
    localBundleState: (ownTrustDomain) => `${domain(ownTrustDomain)}:local`,
  };
}
