/**
 * The change feed on its own, without a server: what a failing consumer can and cannot do to the cache
 * notification it runs inside.
 */
import { beforeAll, describe, expect, it } from "vitest";
import { type ChangeEvent, createChangeFeed } from "../../../src/api/distribution/change-feed.js";
import { createBundleCache } from "../../../src/federation/bundle-cache.js";
import { createStaticRegistry } from "../../../src/federation/registry.js";
import { silentLogger } from "../../../src/logging.js";
import { ACTIVE, type Material, makeBundle, makeMaterial, put, relationship } from "./support.js";

let material: Material;

beforeAll(async () => {
  material = await makeMaterial();
});

describe("a change listener that throws", () => {
  it("fails neither cache.put nor the listeners after it", () => {
    const cache = createBundleCache();
    const feed = createChangeFeed({
      cache,
      registry: createStaticRegistry([relationship(ACTIVE, "active")]),
      capacity: 10,
      logger: silentLogger(),
    });
    const heard: ChangeEvent[] = [];
    feed.subscribe(() => {
      throw new Error("a consumer's socket is gone");
    });
    feed.subscribe((event) => heard.push(event));

    let stored: ReturnType<typeof put> | undefined;
    expect(() => {
      stored = put(cache, ACTIVE, makeBundle(material, { ca: [0], jwt: [0], sequence: 1n }));
    }).not.toThrow();
    expect(heard).toEqual([{ id: 1, trustDomain: ACTIVE, digest: stored!.digest, sequence: "1" }]);
    expect(cache.get(ACTIVE)?.stored.digest).toBe(stored!.digest);
    feed.close();
  });
});
