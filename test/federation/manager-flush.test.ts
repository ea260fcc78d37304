/**
 * What the engine writes back when the store returns: never a bundle older than the one another
 * replica stored meanwhile.
 */
import { X509Certificate } from "node:crypto";
import { describe, expect, it, vi } from "vitest";
import { systemClock } from "../../src/clock.js";
import type { FederationConfig } from "../../src/config/types.js";
import { createBundleCache } from "../../src/federation/bundle-cache.js";
import type { FetchResult } from "../../src/federation/fetcher/index.js";
import { createSyncEngine, sequenceBehind } from "../../src/federation/manager.js";
import { createStaticRegistry } from "../../src/federation/registry.js";
import type { Relationship } from "../../src/federation/relationship.js";
import { silentLogger } from "../../src/logging.js";
import { EMPTY_AUTHORITY_INDEX } from "../../src/policy/authority-index.js";
import { resolvePolicy } from "../../src/policy/merge.js";
import { createTrustBundle, x509AuthorityFromCertificate } from "../../src/spiffe/bundle.js";
import { serializeSpiffeBundle } from "../../src/spiffe/codec.js";
import { bundleDigest } from "../../src/spiffe/digest.js";
import type { TrustDomain } from "../../src/spiffe/id.js";
import { openEmbeddedStore } from "../../src/store/embedded/embedded-store.js";
import { StoreError } from "../../src/store/errors.js";
import type { Store } from "../../src/store/types.js";
import { createCa } from "../support/pki.js";

const td = "partner.test" as TrustDomain;

describe("sequenceBehind", () => {
  it.each([
    ["9", "10", true],
    ["10", "9", false],
    ["18446744073709551614", "18446744073709551615", true],
    [undefined, "1", false],
    ["1", undefined, false],
  ])("%s behind %s: %s", (candidate, stored, behind) => {
    expect(sequenceBehind(candidate, stored)).toBe(behind);
  });
});

describe("writing back after a store outage", () => {
  it("does not overwrite a newer bundle another replica stored meanwhile", async () => {
    const ca = await createCa({ trustDomain: td });
    const authority = x509AuthorityFromCertificate(new X509Certificate(ca.der));
    const version = (sequence: bigint, hint: number) =>
      createTrustBundle({ x509Authorities: [authority], sequence, refreshHintSeconds: hint });
    const v5 = version(5n, 4);
    const v6 = version(6n, 8);
    const v7 = version(7n, 12);

    // The store the engine talks to; swapped for an empty one to model Redis restarting without its data
    // (the fence counter included), where another replica has already written a newer bundle.
    let real = await openEmbeddedStore({ logger: silentLogger() });
    let down = false;
    const guard = <T>(call: () => Promise<T>) =>
      down ? Promise.reject(new StoreError("ERR_STORE_UNAVAILABLE", "down")) : call();
    const store = new Proxy({} as Store, {
      get(_target, key: keyof Store) {
        const target = real;
        const value = target[key];
        if (key === "health") return async () => ({ ok: !down });
        if (typeof value !== "function" || key === "subscribe" || key === "kind") return value;
        return (...args: unknown[]) =>
          guard(() => (value as (...a: unknown[]) => Promise<unknown>).apply(target, args));
      },
    }) as Store;

    let serving = v5;
    const fetched = (): FetchResult => ({
      kind: "bundle",
      body: Buffer.from(serializeSpiffeBundle(serving)),
      url: "https://partner.test/",
      redirects: [],
      peer: {
        address: "192.0.2.1",
        port: 443,
        subject: "",
        uriSans: [],
        dnsSans: [],
        notAfter: "",
        fingerprint: "",
        chain: [],
      },
      durationMs: 1,
    });
    const relationship: Relationship = {
      trustDomain: td,
      endpointUrl: "https://partner.test/",
      profile: { kind: "https_web" },
      owner: "team",
      labels: {},
      allowedCidrs: [],
      policy: resolvePolicy(),
      state: "active",
      origin: "config",
    };
    const federation: FederationConfig = {
      maxBundleBytes: 65536,
      maxBundleKeys: 1000,
      connectTimeoutMs: 1000,
      headersTimeoutMs: 1000,
      totalTimeoutMs: 1000,
      maxRedirects: 3,
      leaseMs: 500,
      historyLimit: 10,
      minRefreshHintSeconds: 1,
      maxRefreshHintSeconds: 60,
      defaultRefreshHintSeconds: 1,
      jitterRatio: 0,
      backoffInitialSeconds: 1,
    };
    const cache = createBundleCache();
    const engine = createSyncEngine({
      registry: createStaticRegistry([relationship]),
      store,
      fetcher: { fetch: async () => fetched() },
      cache,
      ownTrustDomain: "example.org" as TrustDomain,
      ownBundle: () => createTrustBundle(),
      ownAuthorities: () => EMPTY_AUTHORITY_INDEX,
      partnerAuthorities: () => EMPTY_AUTHORITY_INDEX,
      federation,
      clock: systemClock,
      logger: silentLogger(),
      replicaId: "a",
      storeRetryMs: 100,
    });
    await engine.start();
    try {
      await vi.waitFor(() => expect(cache.get(td)?.stored.digest).toBe(bundleDigest(v5)), { timeout: 5000 });

      down = true;
      serving = v6;
      await engine.refreshNow(td);
      expect(cache.get(td)?.stored.digest).toBe(bundleDigest(v6));
      expect(engine.degraded()).toBe(true);

      // Redis comes back empty; another replica reaches it first and stores v7 under a fresh, low fence,
      // which this replica's remembered fence does not fall below.
      real = await openEmbeddedStore({ logger: silentLogger() });
      const fence = (await real.acquireLease(td, "b", 500))!.fence;
      const json = serializeSpiffeBundle(v7);
      const at = Date.now();
      await real.commitFetch(
        td,
        fence,
        {
          kind: "accepted",
          previousDigest: "",
          bundle: { json, digest: bundleDigest(v7), sequence: "7", refreshHintSeconds: 12 },
          history: { digest: bundleDigest(v7), event: "accepted", reasons: [], added: [], removed: [] },
        },
        { at, success: true, result: "accepted", nextRefreshAt: at + 60_000 },
        { historyLimit: 10, origin: "b" },
      );

      down = false;
      await vi.waitFor(() => expect(engine.degraded()).toBe(false), { timeout: 5000 });
      await vi.waitFor(() => expect(cache.get(td)?.stored.digest).toBe(bundleDigest(v7)), { timeout: 5000 });
      expect((await real.getBundle(td))?.digest).toBe(bundleDigest(v7));
    } finally {
      await engine.stop();
    }
  });
});
