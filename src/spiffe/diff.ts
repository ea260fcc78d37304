/** What changed between two bundles of one trust domain, authority by authority. */
import type { JwtAuthority, TrustBundle, X509Authority } from "./bundle.js";

export interface BundleDiff {
  readonly x509Added: readonly X509Authority[];
  readonly x509Removed: readonly X509Authority[];
  readonly jwtAdded: readonly JwtAuthority[];
  readonly jwtRemoved: readonly JwtAuthority[];
  /** Authorities present in both: zero means a full replacement. */
  readonly unchangedCount: number;
  readonly refreshHintChanged: boolean;
  readonly sequenceChanged: boolean;
  readonly authoritiesChanged: boolean;
}

/** A JWT authority is the same only with the same key ID, use and key; a re-keyed ID is a removal plus an addition. */
function jwtIdentity(authority: JwtAuthority): string {
  return `${authority.use}\u0000${authority.keyId}\u0000${authority.thumbprint}`;
}

export function diffBundles(before: TrustBundle, after: TrustBundle): BundleDiff {
  const x509 = diffBy(before.x509Authorities, after.x509Authorities, (a) => a.fingerprint);
  const jwt = diffBy([...before.jwtAuthorities.values()], [...after.jwtAuthorities.values()], jwtIdentity);
  return {
    x509Added: x509.added,
    x509Removed: x509.removed,
    jwtAdded: jwt.added,
    jwtRemoved: jwt.removed,
    unchangedCount: x509.unchanged + jwt.unchanged,
    refreshHintChanged: before.refreshHintSeconds !== after.refreshHintSeconds,
    sequenceChanged: before.sequence !== after.sequence,
    authoritiesChanged: x509.added.length + x509.removed.length + jwt.added.length + jwt.removed.length > 0,
  };
}

function diffBy<T>(before: readonly T[], after: readonly T[], identity: (item: T) => string) {
  const beforeIds = new Set(before.map(identity));
  const afterIds = new Set(after.map(identity));
  return {
    added: after.filter((item) => !beforeIds.has(identity(item))),
    removed: before.filter((item) => !afterIds.has(identity(item))),
    unchanged: after.filter((item) => beforeIds.has(identity(item))).length,
  };
}
