import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { silentLogger } from "../../src/logging.js";
import type { TrustDomain } from "../../src/spiffe/id.js";
import { openRedisStore } from "../../src/store/redis/redis-store.js";
import type { Store } from "../../src/store/types.js";
import { type RedisServerHandle, startRedisServer } from "../support/redis-server.js";
import { storeContract } from "./contract.js";

let redis: RedisServerHandle;
let prefixCounter = 0;
const opened: Store[] = [];

beforeAll(async () => {
  redis = await startRedisServer();
});
afterAll(async () => {
  await Promise.all(opened.map((store) => store.close().catch(() => undefined)));
  if (redis.controllable) await redis.stop();
});

async function openFresh(overrides: { trustDomain?: string; prefix?: string } = {}): Promise<Store> {
  const store = await openRedisStore({
    url: redis.url,
    keyPrefix: overrides.prefix ?? `test${++prefixCounter}`,
    commandTimeoutMs: 1000,
    trustDomain: (overrides.trustDomain ?? "example.org") as TrustDomain,
    logger: silentLogger(),
  });
  opened.push(store);
  return store;
}

storeContract("redis", () => openFresh());

describe("redis store", () => {
  it("keeps each trust domain's keys under its hash tag and the configured prefix", async () => {
    const store = await openFresh({ prefix: "tagcheck", trustDomain: "td.example" });
    await store.assignLocalSequence("c".repeat(64));
    const client = new Redis(redis.url);
    expect(await client.keys("tagcheck:*")).toEqual(["tagcheck:{td.example}:local"]);
    client.disconnect();
  });

  it("keeps prefixes apart, so two gateways can share one Redis", async () => {
    const a = await openFresh({ prefix: "gw-a" });
    const b = await openFresh({ prefix: "gw-b" });
    await a.assignLocalSequence("a".repeat(64));
    await a.assignLocalSequence("b".repeat(64));
    expect((await b.assignLocalSequence("a".repeat(64))).sequence).toBe(1n);
  });

  it("refuses to open when Redis cannot be reached, naming no password", async () => {
    await expect(
      openRedisStore({
        url: "redis://:secret@127.0.0.1:1",
        keyPrefix: "x",
        commandTimeoutMs: 200,
        trustDomain: "example.org" as TrustDomain,
        logger: silentLogger(),
      }),
    ).rejects.toSatisfy(
      (error: Error & { code: string }) => error.code === "ERR_STORE_UNAVAILABLE" && !error.message.includes("secret"),
    );
  });

  it("fails fast while Redis is down, reports unhealthy, and recovers when it returns", async () => {
    if (!redis.controllable) return;
    const store = await openFresh();
    await store.assignLocalSequence("1".repeat(64));
    await redis.stop();
    try {
      await expect(store.assignLocalSequence("2".repeat(64))).rejects.toMatchObject({
        code: expect.stringMatching(/^ERR_STORE_(UNAVAILABLE|TIMEOUT)$/),
      });
      expect((await store.health()).ok).toBe(false);
    } finally {
      await redis.start();
    }
    await expect.poll(async () => (await store.health()).ok, { timeout: 10_000 }).toBe(true);
    // Redis here keeps nothing on disk, so the restarted server is empty: numbering starts again.
    expect((await store.assignLocalSequence("2".repeat(64))).sequence).toBe(1n);
  });
});
