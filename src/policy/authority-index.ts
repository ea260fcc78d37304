/**
 * Who else holds an authority: the lookup the trust policy consults to notice a partner bundle that
 * carries this domain's own authorities, or another partner's (DESIGN.md section 2).
 *
 * Identities are strings so that one Map answers every lookup, which keeps an index over 10,000
 * relationships cheap to build and to query:
 * - `x509:<certificate SHA-256>` for an X.509 authority;
 * - `key:<RFC 7638 thumbprint>` for the public key of any authority, X.509 or JWT.
 *
 * An X.509 authority is indexed under its public key as well as its certificate, because a trust anchor
 * is its key: a certificate re-issued around the same key (new validity, same subject) anchors exactly
 * the same chains, so it must match too. Likewise a JWT authority is its key, whatever its `kid` or `use`.
 */
import { compare, type JwtAuthority, type TrustBundle, type X509Authority } from "../spiffe/bundle.js";
import { jwkThumbprint } from "../spiffe/public-key.js";

export type Authority = X509Authority | JwtAuthority;

export interface AuthorityIndexEntry {
  /** Whose authorities these are: this domain's name, or a partner's trust domain. */
  readonly owner: string;
  readonly bundle: TrustBundle;
}

export interface AuthorityIndex {
  /** Number of distinct identities held. */
  readonly size: number;
  /** The owners holding this identity (as made by `authorityIdentities`), sorted; empty when none. */
  owners(identity: string): readonly string[];
  has(identity: string): boolean;
}

const NO_OWNERS: readonly string[] = Object.freeze([]);

export function isX509Authority(authority: Authority): authority is X509Authority {
  return "der" in authority;
}

/**
 * Remembers the key thumbprint of each X.509 authority object: hashing it is most of the cost of building
 * an index, and the same frozen authority objects are re-indexed on every rebuild. Weak, so it holds nothing alive.
 */
const x509KeyIdentity = new WeakMap<X509Authority, string>();

/** Every identity an authority is known by; the first is the most specific. */
export function authorityIdentities(authority: Authority): readonly string[] {
  if (!isX509Authority(authority)) return [`key:${authority.thumbprint}`];
  let key = x509KeyIdentity.get(authority);
  if (key === undefined) {
    key = `key:${jwkThumbprint(authority.publicKey)}`;
    x509KeyIdentity.set(authority, key);
  }
  return [`x509:${authority.fingerprint}`, key];
}

export function buildAuthorityIndex(entries: Iterable<AuthorityIndexEntry>): AuthorityIndex {
  const byIdentity = new Map<string, string[]>();
  const add = (identity: string, owner: string) => {
    const owners = byIdentity.get(identity);
    if (owners === undefined) byIdentity.set(identity, [owner]);
    // Owner lists are almost always of length one, so a linear check beats a Set per identity.
    else if (!owners.includes(owner)) owners.push(owner);
  };
  for (const { owner, bundle } of entries) {
    for (const authority of bundle.x509Authorities) {
      for (const identity of authorityIdentities(authority)) add(identity, owner);
    }
    for (const authority of bundle.jwtAuthorities.values()) add(`key:${authority.thumbprint}`, owner);
  }
  // Sorted once here so that a decision never depends on the order relationships were listed in.
  for (const owners of byIdentity.values()) {
    if (owners.length > 1) owners.sort(compare);
    Object.freeze(owners);
  }
  return Object.freeze({
    size: byIdentity.size,
    owners: (identity: string) => byIdentity.get(identity) ?? NO_OWNERS,
    has: (identity: string) => byIdentity.has(identity),
  });
}

export const EMPTY_AUTHORITY_INDEX: AuthorityIndex = buildAuthorityIndex([]);
