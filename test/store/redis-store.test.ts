import { Redis } from "ioredis";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createLogger, silentLogger } from "../../src/logging.js";
import { isTrustDomain, type TrustDomain } from "../../src/spiffe/id.js";
import type { NewAuditEntry, RecordWriteOptions, RelationshipRecordEvent } from "../../src/store/admin-state.js";
import type { BundleChangeEvent, FetchOutcome, StatusUpdate } from "../../src/store/federation-state.js";
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

async function openFresh(
  overrides: {
    trustDomain?: string;
    prefix?: string;
    logger?: ReturnType<typeof silentLogger>;
    auditMaxEntries?: number;
  } = {},
): Promise<Store> {
  const store = await openRedisStore({
    url: redis.url,
    keyPrefix: overrides.prefix ?? `test${++prefixCounter}`,
    commandTimeoutMs: 1000,
    trustDomain: (overrides.trustDomain ?? "example.org") as TrustDomain,
    logger: overrides.logger ?? silentLogger(),
    ...(overrides.auditMaxEntries === undefined ? {} : { auditMaxEntries: overrides.auditMaxEntries }),
  });
  opened.push(store);
  return store;
}

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

storeContract("redis", {
  // Real time: long enough that scheduling noise cannot expire a lease early, short enough to wait out.
  leaseTtlMs: 300,
  replicas: true,
  durable: true,
  async open() {
    const prefix = `test${++prefixCounter}`;
    const store = await openFresh({ prefix });
    return {
      store,
      elapse: sleep,
      replica: () => openFresh({ prefix }),
      reopen: async () => {
        await store.close();
        return openFresh({ prefix });
      },
    };
  },
});

const partner = "partner.example" as TrustDomain;
const hex = (c: string) => c.repeat(64);
const at = 1_700_000_000_000;
const status: StatusUpdate = { at, success: true, result: "accepted", nextRefreshAt: at + 1000 };
const options = { historyLimit: 5, origin: "test" };

function accepted(digest: string, previousDigest = ""): FetchOutcome {
  return {
    kind: "accepted",
    bundle: { json: "{}", digest },
    previousDigest,
    history: { digest, event: "accepted", reasons: [], added: [], removed: [] },
  };
}

const auditEntry = (action: string): NewAuditEntry => ({ at, actor: "token:ops", action, trustDomain: partner });
const recordWrite = (expectedRevision?: number): RecordWriteOptions => ({
  at,
  ...(expectedRevision === undefined ? {} : { expectedRevision }),
  audit: auditEntry("relationship.update"),
  origin: "test",
});

/** A plain connection for looking at what the store wrote. */
async function inspect<T>(look: (client: Redis) => Promise<T>): Promise<T> {
  const client = new Redis(redis.url);
  try {
    return await look(client);
  } finally {
    client.disconnect();
  }
}

describe("redis store", () => {
  it("keeps each trust domain's keys under its hash tag and the configured prefix", async () => {
    const store = await openFresh({ prefix: "tagcheck", trustDomain: "td.example" });
    await store.assignLocalSequence("c".repeat(64));
    const lease = await store.acquireLease(partner, "a", 5000);
    await store.commitFetch(partner, lease!.fence, accepted(hex("1")), status, options);
    await store.commitFetch(
      partner,
      lease!.fence,
      { kind: "quarantined", quarantine: { json: "{}", digest: hex("2"), reasons: [] }, previousDigest: hex("1") },
      status,
      options,
    );
    const keys = await inspect((client) => client.keys("tagcheck:*"));
    expect(keys.sort()).toEqual(
      [
        "tagcheck:{td.example}:local",
        "tagcheck:{partner.example}:bundle",
        "tagcheck:{partner.example}:fence",
        "tagcheck:{partner.example}:history",
        "tagcheck:{partner.example}:lease",
        "tagcheck:{partner.example}:quarantine",
        "tagcheck:{partner.example}:status",
      ].sort(),
    );
    const [ttl, fence, bundle] = await inspect((client) =>
      Promise.all([
        client.pttl("tagcheck:{partner.example}:lease"),
        client.get("tagcheck:{partner.example}:fence"),
        client.hgetall("tagcheck:{partner.example}:bundle"),
      ]),
    );
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(5000);
    expect(fence).toBe(String(lease!.fence));
    expect(bundle).toEqual({ json: "{}", digest: hex("1"), accepted_at: String(at) });
  });

  it("keeps prefixes apart, so two gateways can share one Redis", async () => {
    const a = await openFresh({ prefix: "gw-a" });
    const b = await openFresh({ prefix: "gw-b" });
    await a.assignLocalSequence("a".repeat(64));
    await a.assignLocalSequence("b".repeat(64));
    expect((await b.assignLocalSequence("a".repeat(64))).sequence).toBe(1n);

    const toldB: BundleChangeEvent[] = [];
    b.subscribe((event) => toldB.push(event));
    const toldA: BundleChangeEvent[] = [];
    a.subscribe((event) => toldA.push(event));
    const lease = await a.acquireLease(partner, "a", 5000);
    expect(await b.acquireLease(partner, "b", 5000)).toBeDefined();
    await a.commitFetch(partner, lease!.fence, accepted(hex("1")), status, options);
    expect(await b.getBundle(partner)).toBeUndefined();
    expect(await b.getStatus(partner)).toBeUndefined();
    await b.removeRelationship(partner, { origin: "b" });
    await expect.poll(() => toldB.length).toBe(1);
    await expect.poll(() => toldA.length).toBe(1);
    expect(toldA[0]?.origin).toBe("test");
    expect(toldB[0]?.origin).toBe("b");
  });

  it("keeps a lease across a restart of its holder's store: only its TTL ends it", async () => {
    const prefix = `test${++prefixCounter}`;
    const first = await openFresh({ prefix });
    await first.acquireLease(partner, "a", 60_000);
    await first.close();
    const second = await openFresh({ prefix });
    expect(await second.acquireLease(partner, "b", 60_000)).toBeUndefined();
  });

  it("drops malformed change events with a warning and keeps delivering good ones", async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: "warn" }, { write: (line: string) => lines.push(line) });
    const prefix = `test${++prefixCounter}`;
    const store = await openFresh({ prefix, logger });
    const told: BundleChangeEvent[] = [];
    store.subscribe((event) => told.push(event));
    await inspect(async (client) => {
      for (const message of [
        "not json",
        "[]",
        '{"kind":"bundle","origin":"x"}',
        '{"trustDomain":"Bad Domain","kind":"bundle","origin":"x"}',
        '{"trustDomain":"ok.example","kind":"renamed","origin":"x"}',
        '{"trustDomain":"ok.example","kind":"bundle","origin":"x","sequence":1}',
      ]) {
        await client.publish(`${prefix}:events`, message);
      }
    });
    await store.removeRelationship(partner, { origin: "real" });
    await expect.poll(() => told.length).toBe(1);
    expect(told).toEqual([{ trustDomain: partner, kind: "removed", origin: "real" }]);
    expect(lines.filter((line) => line.includes("malformed bundle change event"))).toHaveLength(6);
  });

  it("refuses to read state these scripts could not have written", async () => {
    const prefix = `test${++prefixCounter}`;
    const store = await openFresh({ prefix });
    await inspect(async (client) => {
      await client.hset(`${prefix}:{${partner}}:bundle`, { json: "{}", digest: "nope", accepted_at: "1" });
      await client.hset(`${prefix}:{${partner}}:status`, { consecutive_failures: "many" });
      await client.hset(`${prefix}:{${partner}}:quarantine`, { json: "{}", digest: hex("2"), quarantined_at: "1" });
      await client.lpush(`${prefix}:{${partner}}:history`, "{");
    });
    for (const read of [
      store.getBundle(partner),
      store.getStatus(partner),
      store.getQuarantine(partner),
      store.getHistory(partner, 5),
    ]) {
      await expect(read).rejects.toMatchObject({ code: "ERR_STORE_CORRUPT" });
    }
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

  it("fails every federation command with ERR_STORE_UNAVAILABLE while Redis is down", async () => {
    if (!redis.controllable) return;
    const store = await openFresh();
    const lease = (await store.acquireLease(partner, "a", 5000))!;
    await redis.stop();
    try {
      // Once the client has seen the connection go, nothing waits for the command timeout: the no-offline-
      // queue setting refuses at once, which is why the code is UNAVAILABLE and never TIMEOUT.
      const code = () =>
        store.getStatus(partner).then(
          () => "answered",
          (error: { code: string }) => error.code,
        );
      await expect.poll(code, { timeout: 5000 }).toBe("ERR_STORE_UNAVAILABLE");
      const calls: Array<() => Promise<unknown>> = [
        () => store.getBundle(partner),
        () => store.getQuarantine(partner),
        () => store.getHistory(partner, 5),
        () => store.acquireLease(partner, "b", 5000),
        () => store.renewLease(partner, lease, 5000),
        () => store.releaseLease(partner, lease),
        () => store.commitFetch(partner, lease.fence, accepted(hex("1")), status, options),
        () => store.acceptQuarantine(partner, hex("1"), { at, historyLimit: 5, origin: "a" }),
        () => store.discardQuarantine(partner, hex("1"), { origin: "a" }),
        () => store.resetSequence(partner, { at, historyLimit: 5, origin: "a" }),
        () => store.removeRelationship(partner, { origin: "a" }),
        () => store.listRelationshipRecords(),
        () => store.getRelationshipRecord(partner),
        () => store.putRelationshipRecord(partner, "{}", recordWrite()),
        () => store.deleteRelationshipRecord(partner, recordWrite()),
        () => store.getPreflight(partner),
        () => store.setPreflight(partner, "{}"),
        () => store.appendAudit(auditEntry("x")),
        () => store.queryAudit({ limit: 10 }),
      ];
      for (const call of calls) {
        await expect(call()).rejects.toMatchObject({ code: "ERR_STORE_UNAVAILABLE" });
      }
      expect(await store.health()).toEqual({ ok: false, code: "ERR_STORE_UNAVAILABLE" });
    } finally {
      await redis.start();
    }
    await expect.poll(async () => (await store.health()).ok, { timeout: 10_000 }).toBe(true);
  });

  it("receives change events again after its subscriber reconnects", async () => {
    if (!redis.controllable) return;
    const prefix = `test${++prefixCounter}`;
    const store = await openFresh({ prefix });
    const told: BundleChangeEvent[] = [];
    store.subscribe((event) => told.push(event));
    await redis.stop();
    try {
      await expect.poll(async () => (await store.health()).ok, { timeout: 5000 }).toBe(false);
    } finally {
      await redis.start();
    }
    await expect.poll(async () => (await store.health()).ok, { timeout: 10_000 }).toBe(true);
    // ioredis subscribes again right after the reconnect; wait until the server counts the subscription.
    await expect
      .poll(() => inspect((client) => client.pubsub("NUMSUB", `${prefix}:events`)), { timeout: 10_000 })
      .toEqual([`${prefix}:events`, 1]);
    // The restarted server is empty, so fence 0 is not stale.
    expect(await store.commitFetch(partner, 0, accepted(hex("3")), status, options)).toEqual({ ok: true });
    await expect
      .poll(() => told, { timeout: 5000 })
      .toEqual([{ trustDomain: partner, kind: "bundle", digest: hex("3"), origin: "test" }]);
  });
});

describe("redis store admin state", () => {
  it("keeps the admin keys under one hash tag that no trust domain can have", async () => {
    const store = await openFresh({ prefix: "admintag" });
    await store.putRelationshipRecord(partner, "{}", recordWrite(0));
    await store.setPreflight(partner, "{}");
    await store.appendAudit(auditEntry("x"));
    await store.acquireLease(partner, "a", 5000);
    const keys = (await inspect((client) => client.keys("admintag:*"))).sort();
    expect(keys).toEqual([
      "admintag:{@admin}:audit",
      "admintag:{@admin}:preflights",
      "admintag:{@admin}:relationships",
      "admintag:{partner.example}:fence",
      "admintag:{partner.example}:lease",
    ]);
    // Redis Cluster hashes only the text of the first {...}: one tag, one slot.
    const tags = new Set(keys.filter((key) => key.includes("@")).map((key) => /\{([^}]*)\}/.exec(key)?.[1]));
    expect([...tags]).toEqual(["@admin"]);
    expect(isTrustDomain("@admin")).toBe(false);
    const stream = await inspect((client) => client.xrange("admintag:{@admin}:audit", "-", "+"));
    expect(stream.map(([, fields]) => fields)).toEqual([
      ["at", String(at), "actor", "token:ops", "action", "relationship.update", "trust_domain", partner],
      ["at", String(at), "actor", "token:ops", "action", "x", "trust_domain", partner],
    ]);
  });

  it("caps the audit stream near its configured length", async () => {
    const prefix = `test${++prefixCounter}`;
    const store = await openFresh({ prefix, auditMaxEntries: 100 });
    for (let n = 0; n < 600; n++) await store.appendAudit(auditEntry(`a${n}`));
    await store.putRelationshipRecord(partner, "{}", recordWrite());
    const [length, nodeSize] = await inspect(async (client) => [
      await client.xlen(`${prefix}:{@admin}:audit`),
      Number(((await client.config("GET", "stream-node-max-entries")) as string[])[1]),
    ]);
    // Approximate trimming drops whole stream nodes only, so up to one node more than the cap stays.
    expect(length).toBeGreaterThanOrEqual(100);
    expect(length).toBeLessThanOrEqual(100 + nodeSize);
    const kept = await store.queryAudit({ limit: 1000 });
    expect(kept).toHaveLength(length);
    expect(kept[0]?.action).toBe("relationship.update");
    expect(kept[1]?.action).toBe("a599");
  });

  it("finds matching entries with more than one script call's worth of others between them", async () => {
    const store = await openFresh();
    const oldest = await store.appendAudit(auditEntry("needle"));
    for (let n = 0; n < 2500; n++) await store.appendAudit(auditEntry("hay"));
    const newest = await store.appendAudit(auditEntry("needle"));
    for (let n = 0; n < 1500; n++) await store.appendAudit(auditEntry("hay"));
    expect(await store.queryAudit({ limit: 10, action: "needle" })).toEqual([newest, oldest]);
    expect(await store.queryAudit({ limit: 1, action: "needle", before: newest.id })).toEqual([oldest]);
    const hay = await store.queryAudit({ limit: 1000, action: "hay", before: newest.id });
    expect(hay).toHaveLength(1000);
    expect(new Set(hay.map((entry) => entry.id)).size).toBe(1000);
  });

  it("answers ERR_STORE_CORRUPT for a record it could not have written, and lets an unconditional delete clear it", async () => {
    const prefix = `test${++prefixCounter}`;
    const store = await openFresh({ prefix });
    const records = `${prefix}:{@admin}:relationships`;
    const other = "other.example" as TrustDomain;
    await store.putRelationshipRecord(other, "{}", recordWrite(0));
    for (const bad of [
      "{",
      "[]",
      '{"document":{},"revision":1,"createdAt":1,"updatedAt":1}',
      '{"document":"{}","revision":0,"createdAt":1,"updatedAt":1}',
      '{"document":"{}","revision":1.5,"createdAt":1,"updatedAt":1}',
      '{"document":"{}","revision":1,"updatedAt":1}',
    ]) {
      await inspect((client) => client.hset(records, partner, bad));
      const corrupt = { code: "ERR_STORE_CORRUPT" };
      await expect(store.getRelationshipRecord(partner)).rejects.toMatchObject(corrupt);
      await expect(store.listRelationshipRecords()).rejects.toMatchObject(corrupt);
      const audited = (await store.queryAudit({ limit: 1000 })).length;
      // The write scripts decode the record too; they refuse it rather than fail or guess its revision.
      await expect(store.putRelationshipRecord(partner, "{}", recordWrite())).rejects.toMatchObject(corrupt);
      await expect(store.putRelationshipRecord(partner, "{}", recordWrite(1))).rejects.toMatchObject(corrupt);
      await expect(store.deleteRelationshipRecord(partner, recordWrite(1))).rejects.toMatchObject(corrupt);
      expect(await store.queryAudit({ limit: 1000 })).toHaveLength(audited);
      expect(await store.getRelationshipRecord(other)).toMatchObject({ revision: 1 });
      expect(await store.deleteRelationshipRecord(partner, recordWrite())).toEqual({ ok: true });
      expect(await store.getRelationshipRecord(partner)).toBeUndefined();
    }
    await inspect((client) =>
      client.hset(records, "Not A Domain", '{"document":"{}","revision":1,"createdAt":1,"updatedAt":1}'),
    );
    await expect(store.listRelationshipRecords()).rejects.toMatchObject({ code: "ERR_STORE_CORRUPT" });
  });

  it("answers ERR_STORE_CORRUPT for an audit entry it could not have written", async () => {
    const prefix = `test${++prefixCounter}`;
    const store = await openFresh({ prefix });
    const stream = `${prefix}:{@admin}:audit`;
    for (const fields of [
      ["at", "soon", "actor", "a", "action", "b"],
      ["at", "1", "action", "b"],
      ["at", "1", "actor", "a", "action", "b", "before", "{"],
      ["at", "1", "actor", "a", "action", "b", "details", "[1]"],
    ]) {
      await inspect((client) => client.del(stream));
      await store.appendAudit(auditEntry("older"));
      await inspect((client) => client.xadd(stream, "*", ...fields));
      await expect(store.queryAudit({ limit: 10 })).rejects.toMatchObject({ code: "ERR_STORE_CORRUPT" });
    }
  });

  it("drops malformed record events with a warning and never hands them to bundle change listeners", async () => {
    const lines: string[] = [];
    const logger = createLogger({ level: "warn" }, { write: (line: string) => lines.push(line) });
    const prefix = `test${++prefixCounter}`;
    const store = await openFresh({ prefix, logger });
    const records: RelationshipRecordEvent[] = [];
    const bundles: BundleChangeEvent[] = [];
    store.subscribeRelationshipRecords((event) => records.push(event));
    store.subscribe((event) => bundles.push(event));
    await inspect(async (client) => {
      for (const message of [
        "not json",
        '{"trustDomain":"ok.example","kind":"bundle","origin":"x"}',
        '{"trustDomain":"Bad Domain","kind":"put","origin":"x"}',
        '{"trustDomain":"ok.example","kind":"put","origin":"x","revision":0}',
      ]) {
        await client.publish(`${prefix}:record-events`, message);
      }
    });
    await store.putRelationshipRecord(partner, "{}", recordWrite());
    await expect.poll(() => records.length).toBe(1);
    expect(records).toEqual([{ trustDomain: partner, kind: "put", revision: 1, origin: "test" }]);
    expect(lines.filter((line) => line.includes("malformed record event"))).toHaveLength(4);
    expect(bundles).toEqual([]);
  });
});
