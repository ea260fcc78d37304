/**
 * The managed registry: config relationships plus stored ones, following record events, reading expired
 * relationships as suspended, and never letting an older read undo a newer one.
 */
import { afterEach, describe, expect, it } from "vitest";
import { manualClock } from "../../src/clock.js";
import { createManagedRegistry, type ManagedRegistry } from "../../src/federation/managed-registry.js";
import type { Relationship } from "../../src/federation/relationship.js";
import {
  RELATIONSHIP_DOCUMENT_VERSION,
  type RelationshipDocument,
  serializeRelationshipDocument,
} from "../../src/federation/relationship-document.js";
import { silentLogger } from "../../src/logging.js";
import { DEFAULT_TRUST_POLICY } from "../../src/policy/types.js";
import type { TrustDomain } from "../../src/spiffe/id.js";
import type { RelationshipRecord } from "../../src/store/admin-state.js";
import { openEmbeddedStore } from "../../src/store/embedded/embedded-store.js";
import type { Store } from "../../src/store/types.js";

const NOW = new Date("2026-06-01T00:00:00Z");
const td = (name: string) => name as TrustDomain;

const configRelationship: Relationship = {
  trustDomain: td("config.test"),
  endpointUrl: "https://config.test/",
  profile: { kind: "https_web" },
  owner: "config-team",
  labels: {},
  allowedCidrs: [],
  policy: DEFAULT_TRUST_POLICY,
  state: "active",
  origin: "config",
};

function document(trustDomain: string, overrides: Partial<RelationshipDocument> = {}, spec: object = {}) {
  const doc: RelationshipDocument = {
    version: RELATIONSHIP_DOCUMENT_VERSION,
    spec: {
      trust_domain: trustDomain,
      endpoint_url: `https://${trustDomain}/`,
      profile: "https_web",
      owner: "team",
      ...spec,
    },
    state: "active",
    lifecycle: { created_by: "token:t", created_at: NOW.toISOString(), source: "api" },
    ...overrides,
  };
  return serializeRelationshipDocument(doc);
}

let store: Store;
let registry: ManagedRegistry;
const clock = manualClock(NOW);

async function setup(wrap?: (store: Store) => Store) {
  store = await openEmbeddedStore({ logger: silentLogger() });
  const used = wrap ? wrap(store) : store;
  registry = createManagedRegistry({
    config: [configRelationship],
    store: used,
    ownTrustDomain: "example.org",
    maxBundleBytes: 65_536,
    clock,
    logger: silentLogger(),
    resyncIntervalMs: 60_000,
  });
  return used;
}

const put = (name: string, text: string, expectedRevision?: number) =>
  store.putRelationshipRecord(td(name), text, {
    at: NOW.getTime(),
    ...(expectedRevision === undefined ? {} : { expectedRevision }),
    origin: "test",
    audit: { at: NOW.getTime(), actor: "test", action: "test" },
  });

afterEach(async () => {
  registry?.close();
  await store?.close();
  clock.set(NOW);
});

describe("createManagedRegistry", () => {
  it("lists config relationships first, then stored ones by name; skips unusable and shadowed records", async () => {
    await setup();
    await put("b.test", document("b.test"));
    await put("a.test", document("a.test", { state: "pending" }));
    await put("broken.test", "{not json");
    await put("config.test", document("config.test", {}, { owner: "intruder" }));
    await registry.start();
    expect(registry.list().map((r) => [r.trustDomain, r.state, r.origin])).toEqual([
      ["config.test", "active", "config"],
      ["a.test", "pending", "api"],
      ["b.test", "active", "api"],
    ]);
    expect(registry.get("config.test")?.owner).toBe("config-team");
    expect(registry.entry("a.test")?.record?.revision).toBe(1);
  });

  it("follows record events and tells its listeners", async () => {
    await setup();
    await registry.start();
    let told = 0;
    registry.subscribe(() => {
      told += 1;
    });
    await put("c.test", document("c.test"));
    await expect.poll(() => registry.get("c.test")?.state).toBe("active");
    await put("c.test", document("c.test", { state: "suspended" }), 1);
    await expect.poll(() => registry.get("c.test")?.state).toBe("suspended");
    await store.deleteRelationshipRecord(td("c.test"), {
      at: NOW.getTime(),
      origin: "test",
      audit: { at: NOW.getTime(), actor: "test", action: "test" },
    });
    await expect.poll(() => registry.get("c.test")).toBeUndefined();
    expect(told).toBeGreaterThanOrEqual(3);
  });

  it("sees a relationship deleted and made again with the same revision number", async () => {
    // Events are lost (pub/sub is at most once): the registry only learns by reading, and reads revision 1 again.
    await setup((inner) => ({ ...inner, subscribeRelationshipRecords: () => () => {} }));
    await put("d.test", document("d.test", {}, { owner: "first" }));
    await registry.start();
    expect(registry.get("d.test")?.owner).toBe("first");
    await store.deleteRelationshipRecord(td("d.test"), {
      at: NOW.getTime(),
      origin: "test",
      audit: { at: NOW.getTime(), actor: "test", action: "test" },
    });
    await put("d.test", document("d.test", {}, { owner: "second" }), 0);
    await registry.reload(td("d.test"));
    expect(registry.get("d.test")?.owner).toBe("second");
    expect(registry.entry("d.test")?.record?.revision).toBe(1);
  });

  it("reads a relationship past expires_at as suspended, and checkExpiry tells listeners once", async () => {
    await setup();
    await put("e.test", document("e.test", {}, { expires_at: "2026-06-02" }));
    await registry.start();
    let told = 0;
    registry.subscribe(() => {
      told += 1;
    });
    expect(registry.get("e.test")?.state).toBe("active");
    expect(registry.checkExpiry()).toEqual([]);
    clock.set(new Date("2026-06-02T00:00:00Z"));
    expect(registry.get("e.test")?.state).toBe("suspended");
    expect(registry.list().find((r) => r.trustDomain === "e.test")?.state).toBe("suspended");
    expect(registry.checkExpiry().map((r) => r.trustDomain)).toEqual(["e.test"]);
    expect(registry.checkExpiry().map((r) => r.trustDomain)).toEqual(["e.test"]);
    expect(told).toBe(1);
    // The stored state is untouched: the expiry enforcer writes it down.
    expect(registry.entry("e.test")?.document?.state).toBe("active");
  });

  it("does not let a full listing read before a change undo that change", async () => {
    let hold: { read: Promise<readonly RelationshipRecord[]>; release: () => void } | undefined;
    await setup((inner) => ({
      ...inner,
      listRelationshipRecords: () => {
        if (!hold) return inner.listRelationshipRecords();
        // Read now, delivered when the test releases it: a slow listing.
        const { read } = hold;
        return new Promise((resolve) => {
          hold!.release = () => resolve(read);
        });
      },
    }));
    await put("f.test", document("f.test"));
    await registry.start();
    expect(registry.get("f.test")?.state).toBe("active");

    hold = { read: store.listRelationshipRecords(), release: () => {} };
    const resync = registry.resync();
    await put("f.test", document("f.test", { state: "suspended" }), 1);
    await registry.reload(td("f.test"));
    expect(registry.get("f.test")?.state).toBe("suspended");
    hold.release();
    await resync;
    expect(registry.get("f.test")?.state).toBe("suspended");
  });
});
