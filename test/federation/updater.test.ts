/**
 * The updater's rules that need no network: what it sends, what it keeps and what it schedules, with a
 * scripted fetcher and the embedded store.
 */
import { X509Certificate } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { manualClock } from "../../src/clock.js";
import type { FederationConfig } from "../../src/config/types.js";
import { BundlegateError } from "../../src/errors.js";
import { createBundleCache } from "../../src/federation/bundle-cache.js";
import type { FetchResult } from "../../src/federation/fetcher/index.js";
import type { Relationship } from "../../src/federation/relationship.js";
import { refreshRelationship, type UpdaterDependencies } from "../../src/federation/updater.js";
import { silentLogger } from "../../src/logging.js";
import { EMPTY_AUTHORITY_INDEX } from "../../src/policy/authority-index.js";
import { resolvePolicy } from "../../src/policy/merge.js";
import { createTrustBundle, type TrustBundle, x509AuthorityFromCertificate } from "../../src/spiffe/bundle.js";
import { serializeSpiffeBundle } from "../../src/spiffe/codec.js";
import { bundleDigest } from "../../src/spiffe/digest.js";
import type { TrustDomain } from "../../src/spiffe/id.js";
import { openEmbeddedStore } from "../../src/store/embedded/embedded-store.js";
import { createCa } from "../support/pki.js";

const td = "partner.test" as TrustDomain;
const federation: FederationConfig = {
  maxBundleBytes: 65536,
  maxBundleKeys: 1000,
  connectTimeoutMs: 1000,
  headersTimeoutMs: 1000,
  totalTimeoutMs: 2000,
  maxRedirects: 3,
  leaseMs: 1000,
  historyLimit: 10,
  minRefreshHintSeconds: 60,
  maxRefreshHintSeconds: 86400,
  defaultRefreshHintSeconds: 300,
  jitterRatio: 0,
  backoffInitialSeconds: 10,
};
const relationship: Relationship = {
  trustDomain: td,
  endpointUrl: "https://partner.test/bundle?X-Amz-Signature=secret",
  profile: { kind: "https_web" },
  owner: "team",
  labels: {},
  allowedCidrs: [],
  policy: resolvePolicy(),
  state: "active",
  origin: "config",
};

let a: TrustBundle;
let b: TrustBundle;

beforeAll(async () => {
  const [caA, caB] = await Promise.all([createCa({ trustDomain: td }), createCa({ trustDomain: td })]);
  const x509 = (der: Uint8Array) => x509AuthorityFromCertificate(new X509Certificate(der));
  a = createTrustBundle({ x509Authorities: [x509(caA.der)], sequence: 1n, refreshHintSeconds: 300 });
  b = createTrustBundle({ x509Authorities: [x509(caB.der)], sequence: 2n, refreshHintSeconds: 86400 });
});

async function setup(answers: Array<(request: { ifNoneMatch?: string }) => FetchResult>) {
  const clock = manualClock(new Date("2026-11-22T00:00:00Z"));
  const store = await openEmbeddedStore({ logger: silentLogger() });
  const cache = createBundleCache();
  const requests: Array<{ ifNoneMatch?: string }> = [];
  const deps: UpdaterDependencies = {
    fetcher: {
      fetch: async (request) => {
        requests.push(request);
        const answer = answers.shift();
        if (!answer) throw new Error("no more scripted answers");
        return answer(request);
      },
    },
    store,
    cache,
    ownTrustDomain: "example.org" as TrustDomain,
    ownBundle: () => createTrustBundle(),
    ownAuthorities: () => EMPTY_AUTHORITY_INDEX,
    partnerAuthorities: () => EMPTY_AUTHORITY_INDEX,
    federation,
    clock,
    logger: silentLogger(),
    replicaId: "r1",
    random: () => 0.5,
  };
  return { clock, store, cache, deps, requests };
}

const peer = {
  address: "192.0.2.1",
  port: 443,
  subject: "",
  uriSans: [],
  dnsSans: [],
  notAfter: "",
  fingerprint: "",
  chain: [],
};
const ok = (bundle: TrustBundle, etag?: string) => (): FetchResult => ({
  kind: "bundle",
  body: Buffer.from(serializeSpiffeBundle(bundle)),
  url: relationship.endpointUrl,
  redirects: [],
  peer,
  durationMs: 1,
  ...(etag ? { etag } : {}),
});
const notModified = (): FetchResult => ({
  kind: "not_modified",
  url: relationship.endpointUrl,
  redirects: [],
  peer,
  durationMs: 1,
});

describe("refreshRelationship", () => {
  it("sends If-None-Match only when the ETag was answered with the bundle this cache holds", async () => {
    const { deps, requests, cache } = await setup([ok(a, '"e1"'), notModified, ok(b, '"e2"')]);
    const first = await refreshRelationship(relationship, 1, undefined, deps);
    expect(first.validator).toEqual({ etag: '"e1"', digest: bundleDigest(a) });
    await refreshRelationship(relationship, 1, first.status, deps, first.validator);
    expect(requests[1]?.ifNoneMatch).toBe('"e1"');
    // A validator for content the cache does not hold (another replica's, or a stale one) is not sent.
    await refreshRelationship(relationship, 1, first.status, deps, { etag: '"e1"', digest: "0".repeat(64) });
    expect(requests[2]?.ifNoneMatch).toBeUndefined();
    // That full answer was a full replacement: quarantined, so the cache still serves the first bundle.
    expect(cache.get(td)?.stored.digest).toBe(bundleDigest(a));
  });

  it("takes the schedule from a served bundle only, never from a quarantined one", async () => {
    const { deps, clock } = await setup([ok(a), ok(b)]);
    const first = await refreshRelationship(relationship, 1, undefined, deps);
    // Full replacement with a 24 h hint: quarantined, so the 300 s hint keeps the 75 s interval.
    clock.advance(75_000);
    const second = await refreshRelationship(relationship, 1, first.status, deps);
    expect(second.result).toBe("quarantined");
    expect(second.nextRefreshAt - clock.now().getTime()).toBe(75_000);
  });

  it("counts the backoff from the end of a failed attempt", async () => {
    const { deps, clock } = await setup([]);
    deps.fetcher.fetch = async () => {
      clock.advance(30_000);
      throw new BundlegateError("ERR_FETCH_TIMEOUT", "timed out");
    };
    const started = clock.now().getTime();
    const outcome = await refreshRelationship(relationship, 1, undefined, deps);
    expect(outcome.result).toBe("ERR_FETCH_TIMEOUT");
    expect(outcome.nextRefreshAt).toBe(started + 30_000 + 10_000);
  });

  it("keeps a bundle larger than the default caps when the federation allows it", async () => {
    const { deps, cache } = await setup([]);
    const large = { ...federation, maxBundleBytes: 1024 * 1024 };
    const keys = await Promise.all(Array.from({ length: 110 }, () => createCa({ trustDomain: td })));
    const big = createTrustBundle({
      x509Authorities: keys.map((k) => x509AuthorityFromCertificate(new X509Certificate(k.der))),
      sequence: 1n,
    });
    expect(serializeSpiffeBundle(big).length).toBeGreaterThan(64 * 1024);
    deps.fetcher.fetch = async () => ok(big)();
    const outcome = await refreshRelationship(relationship, 1, undefined, { ...deps, federation: large });
    expect(outcome.result).toBe("accepted");
    expect(cache.get(td)?.bundle.x509Authorities).toHaveLength(110);
    // And from the store, as another replica reads it.
    const other = createBundleCache();
    const stored = await deps.store.getBundle(td);
    expect(other.put(td, stored!)).toBe(true);
  });

  it("never logs the query string of the endpoint URL", async () => {
    const lines: string[] = [];
    const { createLogger } = await import("../../src/logging.js");
    const logger = createLogger({ level: "info" }, { write: (line: string) => lines.push(line) });
    const { deps } = await setup([ok(a)]);
    await refreshRelationship(relationship, 1, undefined, { ...deps, logger });
    expect(lines.join("")).toContain("https://partner.test/bundle");
    expect(lines.join("")).not.toContain("X-Amz-Signature");
  });
});
