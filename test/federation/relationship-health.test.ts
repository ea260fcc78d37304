import { X509Certificate } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import type { FederationConfig } from "../../src/config/types.js";
import type { Relationship } from "../../src/federation/relationship.js";
import { relationshipHealth } from "../../src/federation/relationship-health.js";
import { resolvePolicy } from "../../src/policy/merge.js";
import { createTrustBundle, type TrustBundle, x509AuthorityFromCertificate } from "../../src/spiffe/bundle.js";
import type { TrustDomain } from "../../src/spiffe/id.js";
import { createCa } from "../support/pki.js";

const now = new Date("2026-11-22T12:00:00Z");
const federation = {
  minRefreshHintSeconds: 60,
  maxRefreshHintSeconds: 86400,
  defaultRefreshHintSeconds: 300,
} as FederationConfig;
const relationship: Relationship = {
  trustDomain: "partner.test" as TrustDomain,
  endpointUrl: "https://partner.test/",
  profile: { kind: "https_web" },
  owner: "team",
  labels: {},
  allowedCidrs: [],
  policy: resolvePolicy(),
  state: "active",
  origin: "config",
};
let bundle: TrustBundle;

beforeAll(async () => {
  const cas = await Promise.all([
    createCa({ trustDomain: "partner.test", notAfter: new Date("2027-01-01T00:00:00Z") }),
    createCa({ trustDomain: "partner.test", notAfter: new Date("2027-06-01T00:00:00Z") }),
  ]);
  bundle = createTrustBundle({
    x509Authorities: cas.map((ca) => x509AuthorityFromCertificate(new X509Certificate(ca.der))),
    refreshHintSeconds: 600,
  });
});

const ago = (seconds: number) => now.getTime() - seconds * 1000;

describe("relationshipHealth", () => {
  it.each([
    ["never synced", undefined, undefined, "never_synced"],
    ["fresh within 3 hints", ago(1799), undefined, "fresh"],
    ["stale past 3 hints", ago(1801), undefined, "stale"],
    ["critical past 5 hints", ago(3001), undefined, "critical"],
    ["stale past max_staleness_seconds", ago(121), 120, "stale"],
  ])("%s", (_name, lastSuccessAt, maxStalenessSeconds, state) => {
    const health = relationshipHealth({
      relationship: maxStalenessSeconds === undefined ? relationship : { ...relationship, maxStalenessSeconds },
      status: lastSuccessAt === undefined ? undefined : { consecutiveFailures: 0, lastSuccessAt },
      lastKnownGood: bundle,
      federation,
      now,
    });
    expect(health.staleness.state).toBe(state);
  });

  it("reports the earliest and latest authority expiry of the last-known-good", () => {
    const health = relationshipHealth({ relationship, lastKnownGood: bundle, federation, now });
    expect(health.earliestNotAfter).toBe("2027-01-01T00:00:00.000Z");
    expect(health.latestNotAfter).toBe("2027-06-01T00:00:00.000Z");
    expect(health.x509Authorities).toBe(2);
  });

  it("has no expiry window without X.509 authorities", () => {
    const health = relationshipHealth({ relationship, lastKnownGood: createTrustBundle(), federation, now });
    expect(health.earliestNotAfter).toBeUndefined();
    expect(health.staleness.staleAfterSeconds).toBe(900);
  });
});
