/**
 * The index of every partner's authorities, kept in step with the bundle cache one relationship at a
 * time. Rebuilding it per decision would cost O(relationships) per fetch, which is O(n^2) when 10,000
 * relationships first sync; updating it per cache change costs only the changed bundle.
 */
import { type AuthorityIndex, authorityIdentities } from "../policy/authority-index.js";
import type { TrustBundle } from "../spiffe/bundle.js";
import type { TrustDomain } from "../spiffe/id.js";
import type { BundleCache } from "./bundle-cache.js";

export interface LivePartnerIndex extends AuthorityIndex {
  close(): void;
}

export function createLivePartnerIndex(cache: BundleCache): LivePartnerIndex {
  const owners = new Map<string, Set<string>>();
  const identitiesOf = new Map<TrustDomain, readonly string[]>();

  const remove = (trustDomain: TrustDomain) => {
    for (const identity of identitiesOf.get(trustDomain) ?? []) {
      const set = owners.get(identity);
      set?.delete(trustDomain);
      if (set?.size === 0) owners.delete(identity);
    }
    identitiesOf.delete(trustDomain);
  };
  const add = (trustDomain: TrustDomain, bundle: TrustBundle) => {
    const identities = [...bundle.x509Authorities, ...bundle.jwtAuthorities.values()].flatMap(authorityIdentities);
    identitiesOf.set(trustDomain, identities);
    for (const identity of identities) {
      const set = owners.get(identity);
      if (set) set.add(trustDomain);
      else owners.set(identity, new Set([trustDomain]));
    }
  };

  for (const entry of cache.entries()) add(entry.trustDomain, entry.bundle);
  const unsubscribe = cache.subscribe(({ trustDomain, current }) => {
    remove(trustDomain);
    if (current) add(trustDomain, current.bundle);
  });

  return {
    get size() {
      return owners.size;
    },
    owners: (identity) => [...(owners.get(identity) ?? [])].sort(),
    has: (identity) => owners.has(identity),
    close: unsubscribe,
  };
}
