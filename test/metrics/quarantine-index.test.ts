/**
 * The in-memory quarantine index behind bundlegate_relationship_quarantined, against the embedded store:
 * read at start, kept current by change events, and forgetful of deleted relationships.
 */
import { afterEach, describe, expect, it, vi } from "vitest";
import { silentLogger } from "../../src/logging.js";
import { createQuarantineIndex, type QuarantineIndex } from "../../src/metrics/quarantine-index.js";
import { openEmbeddedStore } from "../../src/store/embedded/embedded-store.js";
import type { FederationStore } from "../../src/store/federation-state.js";
import type { Store } from "../../src/store/types.js";
import { mutableRegistry, relationshipOf, td } from "./support.js";

const ALPHA = td("alpha.test");
const OPTIONS = { historyLimit: 5, origin: "test" };

async function hold(store: Store, digest: string): Promise<void> {
  const lease = await store.acquireLease(ALPHA, "test", 10_000);
  if (!lease) throw new Error("no lease");
  const result = await store.commitFetch(
    ALPHA,
    lease.fence,
    {
      kind: "quarantined",
      previousDigest: "",
      quarantine: { json: '{"keys":[]}', digest, reasons: ["FULL_REPLACEMENT"] },
    },
    { at: Date.now(), success: true, result: "quarantined", nextRefreshAt: Date.now() + 60_000 },
    OPTIONS,
  );
  await store.releaseLease(ALPHA, lease);
  expect(result.ok).toBe(true);
}

const indexes: QuarantineIndex[] = [];
afterEach(() => {
  for (const index of indexes.splice(0)) index.close();
});

describe("quarantine index", () => {
  it("reads held quarantines at start and follows holds, discards and removals", async () => {
    const store = await openEmbeddedStore({ logger: silentLogger() });
    await hold(store, "a".repeat(64));
    const registry = mutableRegistry([relationshipOf("alpha.test"), relationshipOf("beta.test")]);
    const index = createQuarantineIndex({ store, registry, logger: silentLogger() });
    indexes.push(index);
    await vi.waitFor(() => expect(index.has(ALPHA)).toBe(true));
    expect(index.has("beta.test")).toBe(false);

    await store.discardQuarantine(ALPHA, "a".repeat(64), { origin: "test" });
    await vi.waitFor(() => expect(index.has(ALPHA)).toBe(false));

    await hold(store, "b".repeat(64));
    await vi.waitFor(() => expect(index.has(ALPHA)).toBe(true));

    await store.removeRelationship(ALPHA, { origin: "test" });
    await vi.waitFor(() => expect(index.has(ALPHA)).toBe(false));
    await store.close();
  });

  it("forgets a relationship deleted from the registry, and reads one added to it", async () => {
    const store = await openEmbeddedStore({ logger: silentLogger() });
    await hold(store, "c".repeat(64));
    const registry = mutableRegistry([relationshipOf("alpha.test")]);
    const index = createQuarantineIndex({ store, registry, logger: silentLogger() });
    indexes.push(index);
    await vi.waitFor(() => expect(index.has(ALPHA)).toBe(true));
    registry.remove("alpha.test");
    expect(index.has(ALPHA)).toBe(false);
    registry.set(relationshipOf("alpha.test"));
    await vi.waitFor(() => expect(index.has(ALPHA)).toBe(true));
    await store.close();
  });

  it("keeps what it knew when the store cannot be read, and catches up at the next resync", async () => {
    let failing = false;
    let held = true;
    const store: Pick<FederationStore, "getQuarantine" | "subscribe"> = {
      getQuarantine: async () => {
        if (failing) throw new Error("store down");
        return held
          ? { json: "{}", digest: "d".repeat(64), reasons: ["FULL_REPLACEMENT"], quarantinedAt: 1 }
          : undefined;
      },
      subscribe: () => () => {},
    };
    const registry = mutableRegistry([relationshipOf("alpha.test")]);
    const index = createQuarantineIndex({ store, registry, logger: silentLogger() });
    indexes.push(index);
    await index.resync();
    expect(index.has(ALPHA)).toBe(true);
    failing = true;
    held = false;
    await index.resync();
    expect(index.has(ALPHA)).toBe(true);
    failing = false;
    await index.resync();
    expect(index.has(ALPHA)).toBe(false);
  });
});
