/**
 * Diffs and digests of bundles (DESIGN.md section 3): a diff names the authorities added and removed;
 * the digest is SHA-256 over the canonical form, so equal content gives an equal digest.
 */
import { createHash, X509Certificate } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import {
  createTrustBundle,
  type JwtAuthority,
  jwtAuthority,
  type TrustBundle,
  type TrustBundleInput,
  withMetadata,
  type X509Authority,
  x509AuthorityFromCertificate,
} from "../../src/spiffe/bundle.js";
import { canonicalBundleBytes, parseSpiffeBundle } from "../../src/spiffe/codec.js";
import { diffBundles } from "../../src/spiffe/diff.js";
import { bundleDigest } from "../../src/spiffe/digest.js";
import { importPublicJwk, type PublicJwk } from "../../src/spiffe/public-key.js";
import { bundleDoc } from "../support/bundle-docs.js";
import { jwtEntry, x509Entry } from "../support/jwk-entries.js";
import { createCa, createJwtKey, type Issued, type JsonWebKey } from "../support/pki.js";

let caA: Issued;
let caB: Issued;
let caC: Issued;
let x1: X509Authority;
let x2: X509Authority;
let x3: X509Authority;
let rawKey1: JsonWebKey;
let rawKey2: JsonWebKey;
let key1: PublicJwk;
let key2: PublicJwk;
let key3: PublicJwk;

function imported(jwk: JsonWebKey): PublicJwk {
  const result = importPublicJwk(jwk as Record<string, unknown>);
  if (!result.ok) throw new Error(result.message);
  return result.jwk;
}

beforeAll(async () => {
  [caA, caB, caC] = await Promise.all([
    createCa({ trustDomain: "example.org" }),
    createCa({ trustDomain: "example.org", keyAlg: "EC-P384" }),
    createCa({ trustDomain: "example.org", keyAlg: "Ed25519" }),
  ]);
  [x1, x2, x3] = [caA, caB, caC].map((ca) => x509AuthorityFromCertificate(new X509Certificate(ca.der))) as [
    X509Authority,
    X509Authority,
    X509Authority,
  ];
  const keys = await Promise.all([createJwtKey(), createJwtKey("EC-P384"), createJwtKey("Ed25519")]);
  [rawKey1, rawKey2] = [keys[0].publicJwk, keys[1].publicJwk];
  [key1, key2, key3] = keys.map((k) => imported(k.publicJwk)) as [PublicJwk, PublicJwk, PublicJwk];
});

const bundle = (input: TrustBundleInput) => createTrustBundle(input);
const fps = (authorities: readonly X509Authority[]) => authorities.map((a) => a.fingerprint).sort();
const kids = (authorities: readonly JwtAuthority[]) => authorities.map((a) => `${a.use}:${a.keyId}`).sort();

describe("diffBundles", () => {
  interface Case {
    before: () => TrustBundle;
    after: () => TrustBundle;
    x509Added: () => X509Authority[];
    x509Removed: () => X509Authority[];
    jwtAdded: string[];
    jwtRemoved: string[];
    unchangedCount: number;
    authoritiesChanged: boolean;
  }
  const cases: Array<[string, Case]> = [
    [
      "identical bundles",
      {
        before: () => bundle({ x509Authorities: [x1, x2], jwtAuthorities: [jwtAuthority("a", key1)] }),
        after: () => bundle({ x509Authorities: [x2, x1], jwtAuthorities: [jwtAuthority("a", key1)] }),
        x509Added: () => [],
        x509Removed: () => [],
        jwtAdded: [],
        jwtRemoved: [],
        unchangedCount: 3,
        authoritiesChanged: false,
      },
    ],
    [
      "an x509 authority added",
      {
        before: () => bundle({ x509Authorities: [x1] }),
        after: () => bundle({ x509Authorities: [x1, x2] }),
        x509Added: () => [x2],
        x509Removed: () => [],
        jwtAdded: [],
        jwtRemoved: [],
        unchangedCount: 1,
        authoritiesChanged: true,
      },
    ],
    [
      "an x509 authority removed",
      {
        before: () => bundle({ x509Authorities: [x1, x2, x3] }),
        after: () => bundle({ x509Authorities: [x1, x3] }),
        x509Added: () => [],
        x509Removed: () => [x2],
        jwtAdded: [],
        jwtRemoved: [],
        unchangedCount: 2,
        authoritiesChanged: true,
      },
    ],
    [
      "a jwt authority added",
      {
        before: () => bundle({ jwtAuthorities: [jwtAuthority("a", key1)] }),
        after: () => bundle({ jwtAuthorities: [jwtAuthority("a", key1), jwtAuthority("b", key2)] }),
        x509Added: () => [],
        x509Removed: () => [],
        jwtAdded: ["jwt-svid:b"],
        jwtRemoved: [],
        unchangedCount: 1,
        authoritiesChanged: true,
      },
    ],
    [
      "a jwt authority removed",
      {
        before: () =>
          bundle({ x509Authorities: [x1], jwtAuthorities: [jwtAuthority("a", key1), jwtAuthority("b", key2)] }),
        after: () => bundle({ x509Authorities: [x1], jwtAuthorities: [jwtAuthority("b", key2)] }),
        x509Added: () => [],
        x509Removed: () => [],
        jwtAdded: [],
        jwtRemoved: ["jwt-svid:a"],
        unchangedCount: 2,
        authoritiesChanged: true,
      },
    ],
    [
      "a key ID re-keyed is a removal plus an addition",
      {
        before: () => bundle({ jwtAuthorities: [jwtAuthority("a", key1), jwtAuthority("b", key3)] }),
        after: () => bundle({ jwtAuthorities: [jwtAuthority("a", key2), jwtAuthority("b", key3)] }),
        x509Added: () => [],
        x509Removed: () => [],
        jwtAdded: ["jwt-svid:a"],
        jwtRemoved: ["jwt-svid:a"],
        unchangedCount: 1,
        authoritiesChanged: true,
      },
    ],
    [
      "a key ID moved from jwt-svid to wit-svid is a removal plus an addition",
      {
        before: () => bundle({ jwtAuthorities: [jwtAuthority("a", key1)] }),
        after: () => bundle({ jwtAuthorities: [jwtAuthority("a", key1, "wit-svid")] }),
        x509Added: () => [],
        x509Removed: () => [],
        jwtAdded: ["wit-svid:a"],
        jwtRemoved: ["jwt-svid:a"],
        unchangedCount: 0,
        authoritiesChanged: true,
      },
    ],
    [
      "the same key under a new key ID is a removal plus an addition",
      {
        before: () => bundle({ jwtAuthorities: [jwtAuthority("old", key1)] }),
        after: () => bundle({ jwtAuthorities: [jwtAuthority("new", key1)] }),
        x509Added: () => [],
        x509Removed: () => [],
        jwtAdded: ["jwt-svid:new"],
        jwtRemoved: ["jwt-svid:old"],
        unchangedCount: 0,
        authoritiesChanged: true,
      },
    ],
    [
      "a full replacement: nothing in common",
      {
        before: () => bundle({ x509Authorities: [x1], jwtAuthorities: [jwtAuthority("a", key1)] }),
        after: () => bundle({ x509Authorities: [x2, x3], jwtAuthorities: [jwtAuthority("b", key2)] }),
        x509Added: () => [x2, x3],
        x509Removed: () => [x1],
        jwtAdded: ["jwt-svid:b"],
        jwtRemoved: ["jwt-svid:a"],
        unchangedCount: 0,
        authoritiesChanged: true,
      },
    ],
    [
      "from empty",
      {
        before: () => bundle({}),
        after: () => bundle({ x509Authorities: [x1], jwtAuthorities: [jwtAuthority("a", key1)] }),
        x509Added: () => [x1],
        x509Removed: () => [],
        jwtAdded: ["jwt-svid:a"],
        jwtRemoved: [],
        unchangedCount: 0,
        authoritiesChanged: true,
      },
    ],
    [
      "to empty (every key revoked)",
      {
        before: () => bundle({ x509Authorities: [x1, x2], jwtAuthorities: [jwtAuthority("a", key1)] }),
        after: () => bundle({}),
        x509Added: () => [],
        x509Removed: () => [x1, x2],
        jwtAdded: [],
        jwtRemoved: ["jwt-svid:a"],
        unchangedCount: 0,
        authoritiesChanged: true,
      },
    ],
    [
      "both empty",
      {
        before: () => bundle({}),
        after: () => bundle({}),
        x509Added: () => [],
        x509Removed: () => [],
        jwtAdded: [],
        jwtRemoved: [],
        unchangedCount: 0,
        authoritiesChanged: false,
      },
    ],
  ];
  it.each(cases)("%s", (_name, c) => {
    const diff = diffBundles(c.before(), c.after());
    expect(fps(diff.x509Added)).toEqual(fps(c.x509Added()));
    expect(fps(diff.x509Removed)).toEqual(fps(c.x509Removed()));
    expect(kids(diff.jwtAdded)).toEqual(c.jwtAdded);
    expect(kids(diff.jwtRemoved)).toEqual(c.jwtRemoved);
    expect(diff.unchangedCount).toBe(c.unchangedCount);
    expect(diff.authoritiesChanged).toBe(c.authoritiesChanged);
    expect(diff.refreshHintChanged).toBe(false);
    expect(diff.sequenceChanged).toBe(false);
  });

  it("a re-keyed key ID names the old key as removed and the new one as added", () => {
    const diff = diffBundles(
      bundle({ jwtAuthorities: [jwtAuthority("a", key1)] }),
      bundle({ jwtAuthorities: [jwtAuthority("a", key2)] }),
    );
    expect(diff.jwtRemoved.map((a) => a.publicKey)).toEqual([key1]);
    expect(diff.jwtAdded.map((a) => a.publicKey)).toEqual([key2]);
  });

  it("is symmetric: swapping the bundles swaps added and removed", () => {
    const before = bundle({ x509Authorities: [x1, x2], jwtAuthorities: [jwtAuthority("a", key1)] });
    const after = bundle({ x509Authorities: [x2, x3], jwtAuthorities: [jwtAuthority("b", key2)] });
    const forward = diffBundles(before, after);
    const backward = diffBundles(after, before);
    expect(fps(backward.x509Added)).toEqual(fps(forward.x509Removed));
    expect(fps(backward.x509Removed)).toEqual(fps(forward.x509Added));
    expect(kids(backward.jwtAdded)).toEqual(kids(forward.jwtRemoved));
    expect(backward.unchangedCount).toBe(forward.unchangedCount);
    expect(forward.unchangedCount).toBe(1);
  });

  const metadata: Array<[string, TrustBundleInput, TrustBundleInput, boolean, boolean]> = [
    [
      "same hint and sequence",
      { refreshHintSeconds: 300, sequence: 5n },
      { refreshHintSeconds: 300, sequence: 5n },
      false,
      false,
    ],
    ["hint changed", { refreshHintSeconds: 300 }, { refreshHintSeconds: 600 }, true, false],
    ["hint added", {}, { refreshHintSeconds: 300 }, true, false],
    ["hint removed", { refreshHintSeconds: 300 }, {}, true, false],
    ["sequence changed", { sequence: 1n }, { sequence: 2n }, false, true],
    ["sequence added", {}, { sequence: 0n }, false, true],
    ["sequence removed", { sequence: 7n }, {}, false, true],
    ["large equal sequences", { sequence: 2n ** 64n - 1n }, { sequence: 2n ** 64n - 1n }, false, false],
    ["large sequences one apart", { sequence: 2n ** 64n - 2n }, { sequence: 2n ** 64n - 1n }, false, true],
    ["both changed", { refreshHintSeconds: 1, sequence: 1n }, { refreshHintSeconds: 2, sequence: 2n }, true, true],
  ];
  it.each(metadata)("%s", (_name, before, after, hintChanged, sequenceChanged) => {
    const diff = diffBundles(bundle({ ...before, x509Authorities: [x1] }), bundle({ ...after, x509Authorities: [x1] }));
    expect(diff.refreshHintChanged).toBe(hintChanged);
    expect(diff.sequenceChanged).toBe(sequenceChanged);
    expect(diff.authoritiesChanged).toBe(false);
    expect(diff.unchangedCount).toBe(1);
  });
});

describe("bundleDigest", () => {
  const sha256 = (bytes: Uint8Array) => createHash("sha256").update(bytes).digest("hex");

  it("equals the SHA-256 of canonicalBundleBytes, as lowercase hex", () => {
    for (const b of [
      bundle({}),
      bundle({ x509Authorities: [x1, x2], jwtAuthorities: [jwtAuthority("a", key1)], sequence: 3n }),
      bundle({ jwtAuthorities: [jwtAuthority("w", key3, "wit-svid")], refreshHintSeconds: 60 }),
    ]) {
      expect(bundleDigest(b)).toBe(sha256(canonicalBundleBytes(b)));
      expect(bundleDigest(b)).toMatch(/^[0-9a-f]{64}$/);
    }
  });

  it('of the empty bundle is the SHA-256 of {"keys":[]}', () => {
    expect(bundleDigest(bundle({}))).toBe(sha256(Buffer.from('{"keys":[]}')));
  });

  it("is stable across input orders", () => {
    const jwts = () => [jwtAuthority("b", key2), jwtAuthority("a", key1), jwtAuthority("c", key3, "wit-svid")];
    const a = bundle({ x509Authorities: [x1, x2, x3], jwtAuthorities: jwts(), sequence: 9n, refreshHintSeconds: 30 });
    const b = bundle({
      x509Authorities: [x3, x1, x2],
      jwtAuthorities: jwts().reverse(),
      refreshHintSeconds: 30,
      sequence: 9n,
    });
    expect(bundleDigest(b)).toBe(bundleDigest(a));
  });

  it("is stable across document orders and encodings of the same content", () => {
    const one = parseSpiffeBundle(
      bundleDoc([x509Entry(caA), jwtEntry("k1", rawKey1), x509Entry(caB), jwtEntry("k2", rawKey2)], {
        spiffe_sequence: 4,
        spiffe_refresh_hint: 120,
      }),
    ).bundle;
    const two = parseSpiffeBundle(
      `{ "spiffe_refresh_hint": 120, "spiffe_sequence": 4,\n "keys": ${JSON.stringify([
        jwtEntry("k2", rawKey2),
        x509Entry(caB),
        { ...jwtEntry("k1", rawKey1), alg: "ES256", extra: true },
        x509Entry(caA),
        x509Entry(caA),
      ])} }`,
    ).bundle;
    expect(bundleDigest(two)).toBe(bundleDigest(one));
  });

  const base = (): TrustBundleInput => ({
    x509Authorities: [x1],
    jwtAuthorities: [jwtAuthority("a", key1)],
    sequence: 1n,
    refreshHintSeconds: 300,
  });
  const changes: Array<[string, () => TrustBundleInput]> = [
    ["sequence", () => ({ ...base(), sequence: 2n })],
    ["sequence removed", () => ({ ...base(), sequence: undefined })],
    ["refresh hint", () => ({ ...base(), refreshHintSeconds: 301 })],
    ["refresh hint removed", () => ({ ...base(), refreshHintSeconds: undefined })],
    ["an x509 authority added", () => ({ ...base(), x509Authorities: [x1, x2] })],
    ["an x509 authority replaced", () => ({ ...base(), x509Authorities: [x2] })],
    ["an x509 authority removed", () => ({ ...base(), x509Authorities: [] })],
    [
      "a jwt authority added",
      () => ({ ...base(), jwtAuthorities: [jwtAuthority("a", key1), jwtAuthority("b", key2)] }),
    ],
    ["a jwt authority re-keyed", () => ({ ...base(), jwtAuthorities: [jwtAuthority("a", key2)] })],
    ["a jwt key ID renamed", () => ({ ...base(), jwtAuthorities: [jwtAuthority("b", key1)] })],
    ["a jwt authority's use", () => ({ ...base(), jwtAuthorities: [jwtAuthority("a", key1, "wit-svid")] })],
    ["a jwt authority removed", () => ({ ...base(), jwtAuthorities: [] })],
  ];
  it.each(changes)("differs when the %s differs", (_name, changed) => {
    expect(bundleDigest(bundle(changed()))).not.toBe(bundleDigest(bundle(base())));
  });

  it("sequences past 2^53 that a double would confuse give different digests", () => {
    const a = withMetadata(bundle(base()), { sequence: 2n ** 53n });
    const b = withMetadata(bundle(base()), { sequence: 2n ** 53n + 1n });
    expect(bundleDigest(a)).not.toBe(bundleDigest(b));
  });
});
