import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/logging.js";
import type { TrustDomain } from "../../src/spiffe/id.js";
import { compareAuditIds } from "../../src/store/admin-records.js";
import type { RelationshipRecordEvent } from "../../src/store/admin-state.js";
import { openEmbeddedStore } from "../../src/store/embedded/embedded-store.js";
import type { BundleChangeEvent } from "../../src/store/federation-state.js";
import { type OpenedStore, storeContract } from "./contract.js";

/** Lease time is the injected clock, so the contract's lease tests move it instead of waiting. */
function testClock() {
  let now = 1_700_000_000_000;
  return {
    now: () => now,
    elapse: async (ms: number) => {
      now += ms;
    },
  };
}

const tempFile = async () => join(await mkdtemp(join(tmpdir(), "bg-store-")), "nested", "state.json");

storeContract("embedded (memory)", {
  leaseTtlMs: 1000,
  replicas: false,
  durable: false,
  async open(): Promise<OpenedStore> {
    const clock = testClock();
    return { store: await openEmbeddedStore({ logger: silentLogger(), now: clock.now }), elapse: clock.elapse };
  },
});

storeContract("embedded (snapshot file)", {
  leaseTtlMs: 1000,
  replicas: false,
  durable: true,
  async open(): Promise<OpenedStore> {
    const clock = testClock();
    const snapshotFile = await tempFile();
    const open = () => openEmbeddedStore({ snapshotFile, logger: silentLogger(), now: clock.now });
    const store = await open();
    return {
      store,
      elapse: clock.elapse,
      reopen: async () => {
        await store.close();
        return open();
      },
    };
  },
});

const partner = "partner.example" as TrustDomain;
const hex = (c: string) => c.repeat(64);

describe("embedded store snapshot", () => {
  it("keeps the local sequence across a restart, so it never goes backwards", async () => {
    const file = await tempFile();
    const first = await openEmbeddedStore({ snapshotFile: file, logger: silentLogger() });
    await first.assignLocalSequence("a".repeat(64));
    await first.recordLocalSequence("b".repeat(64), 18446744073709551615n);
    await first.close();
    const second = await openEmbeddedStore({ snapshotFile: file, logger: silentLogger() });
    expect(await second.getLocalBundleState()).toEqual({
      contentDigest: "b".repeat(64),
      sequence: 18446744073709551615n,
    });
    expect(JSON.parse(await readFile(file, "utf8"))).toMatchObject({ version: 1 });
  });

  it("forgets leases across a restart but keeps the fence, so the next lease is still newer", async () => {
    const file = await tempFile();
    const first = await openEmbeddedStore({ snapshotFile: file, logger: silentLogger() });
    const held = (await first.acquireLease(partner, "a", 60_000))!;
    await first.close();
    const second = await openEmbeddedStore({ snapshotFile: file, logger: silentLogger() });
    const next = await second.acquireLease(partner, "b", 60_000);
    expect(next!.fence).toBeGreaterThan(held.fence);
    expect(await second.renewLease(partner, held, 60_000)).toBe(false);
    const saved = JSON.parse(await readFile(file, "utf8"));
    expect(saved.relationships[partner]).toEqual({ history: [], fence: next!.fence });
  });

  it("tells subscribers synchronously, before the write's promise settles", async () => {
    const store = await openEmbeddedStore({ snapshotFile: await tempFile(), logger: silentLogger() });
    const events: BundleChangeEvent[] = [];
    store.subscribe((event) => events.push(event));
    const removing = store.removeRelationship(partner, { origin: "a" });
    expect(events).toEqual([{ trustDomain: partner, kind: "removed", origin: "a" }]);
    await removing;
  });

  const localOk = `"localBundle":{"contentDigest":"${hex("a")}","sequence":"1"}`;
  const relationship = (entry: string, name: string = partner) =>
    `{"version":1,${localOk},"relationships":{"${name}":${entry}}}`;
  const bundle = (members: string) => `{"json":"{}","digest":"${hex("b")}","acceptedAt":1${members}}`;
  // Later members of a JSON object win, so `members` overrides the well-formed ones.
  const admin = (members: string) => `{"version":2,${localOk},${members}}`;
  const record = (members: string) => `{"document":"{}","revision":1,"createdAt":1,"updatedAt":1${members}}`;
  const audit = (id: string, members = "") => `{"id":"${id}","at":1,"actor":"a","action":"b"${members}}`;

  it.each([
    ["not JSON", "{"],
    ["not an object", "[1]"],
    ["another version", '{"version":3}'],
    ["a malformed digest", '{"version":1,"localBundle":{"contentDigest":"zz","sequence":"1"}}'],
    ["a malformed sequence", `{"version":1,"localBundle":{"contentDigest":"${hex("a")}","sequence":"-1"}}`],
    [
      "a local sequence past 2^64-1",
      `{"version":1,"localBundle":{"contentDigest":"${hex("a")}","sequence":"18446744073709551616"}}`,
    ],
    ["relationships that are a list", `{"version":1,"relationships":[]}`],
    ["a relationship keyed by no trust domain", relationship('{"history":[],"fence":1}', "Not A Domain")],
    ["a relationship without a fence", relationship('{"history":[]}')],
    ["a negative fence", relationship('{"history":[],"fence":-1}')],
    ["a relationship without history", relationship('{"fence":1}')],
    [
      "a bundle without JSON",
      relationship(`{"history":[],"fence":1,"bundle":{"digest":"${hex("b")}","acceptedAt":1}}`),
    ],
    [
      "a bundle with a rounded sequence",
      relationship(`{"history":[],"fence":1,"bundle":${bundle(',"sequence":1e19')}}`),
    ],
    [
      "a bundle sequence past 2^64-1",
      relationship(`{"history":[],"fence":1,"bundle":${bundle(',"sequence":"18446744073709551616"')}}`),
    ],
    [
      "a fractional refresh hint",
      relationship(`{"history":[],"fence":1,"bundle":${bundle(',"refreshHintSeconds":1.5')}}`),
    ],
    ["a status without its failure count", relationship('{"history":[],"fence":1,"status":{"lastAttemptAt":1}}')],
    [
      "a status time that is text",
      relationship('{"history":[],"fence":1,"status":{"consecutiveFailures":0,"lastAttemptAt":"1"}}'),
    ],
    [
      "a quarantine without reasons",
      relationship(`{"history":[],"fence":1,"quarantine":{"json":"{}","digest":"${hex("c")}","quarantinedAt":1}}`),
    ],
    [
      "a history entry without lists",
      relationship(`{"history":[{"at":1,"digest":"${hex("d")}","event":"accepted"}],"fence":1}`),
    ],
    ["relationship records that are a list", admin('"relationshipRecords":[]')],
    ["a record keyed by no trust domain", admin(`"relationshipRecords":{"Not A Domain":${record("")}}`)],
    ["a record at revision 0", admin(`"relationshipRecords":{"${partner}":${record(',"revision":0')}}`)],
    ["a record whose document is not text", admin(`"relationshipRecords":{"${partner}":${record(',"document":{}')}}`)],
    [
      "a record without its creation time",
      admin(`"relationshipRecords":{"${partner}":${record(',"createdAt":null')}}`),
    ],
    ["a preflight that is not text", admin(`"preflights":{"${partner}":{}}`)],
    ["an audit trail that is no list", admin('"audit":{}')],
    ["an audit entry without an actor", admin(`"audit":[${audit("1-0", ',"actor":null')}]`)],
    ["an audit entry with a malformed id", admin(`"audit":[${audit("1")}]`)],
    ["audit entries oldest first", admin(`"audit":[${audit("1-0")},${audit("2-0")}]`)],
    ["audit details that are not an object", admin(`"audit":[${audit("1-0", ',"details":[1]')}]`)],
  ])("refuses to start on a snapshot with %s", async (_name, content) => {
    const file = await tempFile();
    const first = await openEmbeddedStore({ snapshotFile: file, logger: silentLogger() });
    await first.assignLocalSequence("a".repeat(64));
    await first.close();
    await writeFile(file, content);
    await expect(openEmbeddedStore({ snapshotFile: file, logger: silentLogger() })).rejects.toMatchObject({
      code: "ERR_STORE_CORRUPT",
    });
    // The bad file is left for a person to look at, not overwritten.
    expect(await readFile(file, "utf8")).toBe(content);
  });

  it("starts from a well-formed snapshot written by hand", async () => {
    const file = join(await mkdtemp(join(tmpdir(), "bg-store-")), "state.json");
    await writeFile(
      file,
      relationship(
        `{"history":[{"at":5,"digest":"${hex("d")}","event":"accepted","reasons":[],"added":["x"],"removed":[]}],` +
          `"fence":4,"bundle":${bundle(',"sequence":"18446744073709551615","refreshHintSeconds":60')},` +
          `"status":{"consecutiveFailures":2,"lastResult":"ERR_X"}}`,
      ),
    );
    const store = await openEmbeddedStore({ snapshotFile: file, logger: silentLogger() });
    expect(await store.getBundle(partner)).toEqual({
      json: "{}",
      digest: hex("b"),
      sequence: "18446744073709551615",
      refreshHintSeconds: 60,
      acceptedAt: 1,
    });
    expect(await store.getStatus(partner)).toEqual({ consecutiveFailures: 2, lastResult: "ERR_X" });
    expect(await store.getHistory(partner, 5)).toHaveLength(1);
    expect((await store.acquireLease(partner, "a", 1000))!.fence).toBe(5);
  });
});

describe("embedded store admin state", () => {
  const at = 1_700_000_000_000;
  const writing = (expectedRevision?: number) => ({
    at,
    ...(expectedRevision === undefined ? {} : { expectedRevision }),
    audit: { at, actor: "token:ops", action: "relationship.create", trustDomain: partner },
    origin: "a",
  });
  const saved = async (file: string) => JSON.parse(await readFile(file, "utf8"));

  it("writes version 1 until there is admin state, then version 2 with it, and reads both", async () => {
    const file = await tempFile();
    const first = await openEmbeddedStore({ snapshotFile: file, logger: silentLogger() });
    await first.assignLocalSequence(hex("a"));
    await first.acquireLease(partner, "a", 1000);
    expect(await saved(file)).toEqual({
      version: 1,
      localBundle: { contentDigest: hex("a"), sequence: "1" },
      relationships: { [partner]: { history: [], fence: 1 } },
    });
    await first.close();

    const second = await openEmbeddedStore({ snapshotFile: file, logger: silentLogger() });
    expect(await second.listRelationshipRecords()).toEqual([]);
    expect(await second.queryAudit({ limit: 10 })).toEqual([]);
    await second.putRelationshipRecord(partner, '{"a":1}', writing(0));
    await second.setPreflight(partner, "{}");
    const file2 = await saved(file);
    expect(file2).toEqual({
      version: 2,
      localBundle: { contentDigest: hex("a"), sequence: "1" },
      relationships: { [partner]: { history: [], fence: 1 } },
      relationshipRecords: { [partner]: { document: '{"a":1}', revision: 1, createdAt: at, updatedAt: at } },
      preflights: { [partner]: "{}" },
      audit: [
        {
          id: expect.stringMatching(/^[0-9]+-0$/),
          at,
          actor: "token:ops",
          action: "relationship.create",
          trustDomain: partner,
        },
      ],
    });
    await second.close();

    const third = await openEmbeddedStore({ snapshotFile: file, logger: silentLogger() });
    expect(await third.getRelationshipRecord(partner)).toMatchObject({ revision: 1, document: '{"a":1}' });
    expect(await third.getPreflight(partner)).toBe("{}");
    expect(await third.queryAudit({ limit: 10 })).toEqual(file2.audit);
    expect(await third.getLocalBundleState()).toEqual({ contentDigest: hex("a"), sequence: 1n });
    // The delete leaves its audit entry, so the file stays at version 2.
    await third.deleteRelationshipRecord(partner, writing());
    expect((await saved(file)).version).toBe(2);
    await third.close();
  });

  it("keeps the newest entries up to the audit cap, in memory and in the snapshot", async () => {
    const file = await tempFile();
    const store = await openEmbeddedStore({ snapshotFile: file, logger: silentLogger(), auditMaxEntries: 3 });
    for (let n = 0; n < 5; n++) await store.appendAudit({ at: at + n, actor: "a", action: `a${n}` });
    const kept = (await store.queryAudit({ limit: 10 })).map((entry) => entry.action);
    expect(kept).toEqual(["a4", "a3", "a2"]);
    expect((await saved(file)).audit.map((entry: { action: string }) => entry.action)).toEqual(kept);
    await store.close();
    const smaller = await openEmbeddedStore({ snapshotFile: file, logger: silentLogger(), auditMaxEntries: 2 });
    expect((await smaller.queryAudit({ limit: 10 })).map((entry) => entry.action)).toEqual(["a4", "a3"]);
  });

  it("keeps audit ids increasing across a restart with a clock that went back", async () => {
    const file = await tempFile();
    const first = await openEmbeddedStore({ snapshotFile: file, logger: silentLogger(), now: () => 2_000_000 });
    const older = await first.appendAudit({ at, actor: "a", action: "x" });
    await first.close();
    const second = await openEmbeddedStore({ snapshotFile: file, logger: silentLogger(), now: () => 1_000_000 });
    const newer = await second.appendAudit({ at, actor: "a", action: "y" });
    expect(compareAuditIds(newer.id, older.id)).toBeGreaterThan(0);
    expect((await second.queryAudit({ limit: 1, before: newer.id }))[0]?.id).toBe(older.id);
  });

  it("tells record listeners synchronously, before the write's promise settles", async () => {
    const store = await openEmbeddedStore({ snapshotFile: await tempFile(), logger: silentLogger() });
    const events: RelationshipRecordEvent[] = [];
    store.subscribeRelationshipRecords((event) => events.push(event));
    const putting = store.putRelationshipRecord(partner, "{}", writing(0));
    expect(events).toEqual([{ trustDomain: partner, kind: "put", revision: 1, origin: "a" }]);
    await putting;
  });
});
