/**
 * The admin part of the Store contract (src/store/admin-state.ts): relationship records, saved
 * preflights and the audit trail. Run by storeContract (contract.ts) for every backend.
 */
import { describe, expect, it } from "vitest";
import type { TrustDomain } from "../../src/spiffe/id.js";
import { compareAuditIds } from "../../src/store/admin-records.js";
import type {
  AuditEntry,
  NewAuditEntry,
  RecordWriteOptions,
  RelationshipRecordEvent,
} from "../../src/store/admin-state.js";
import type { BundleChangeEvent } from "../../src/store/federation-state.js";
import type { Store } from "../../src/store/types.js";
import type { OpenedStore, StoreBackend } from "./contract.js";

const T0 = 1_700_000_000_000;
const partner = "partner.example" as TrustDomain;
const other = "other.example" as TrustDomain;

/** JSON text a parse-and-print would change: the store must keep it byte for byte. */
const documentText = (n: number) =>
  `{"trustDomain":"partner.example", "owner":"Zoë \\u00e9/\\"", "n":${n}, "big":18446744073709551615}`;

function entry(action: string, overrides: Partial<NewAuditEntry> = {}): NewAuditEntry {
  return { at: T0, actor: "token:ops", action, trustDomain: partner, ...overrides };
}

function write(at: number, expectedRevision?: number, origin = "replica-a"): RecordWriteOptions {
  return {
    at,
    ...(expectedRevision === undefined ? {} : { expectedRevision }),
    audit: entry(expectedRevision === 0 ? "relationship.create" : "relationship.update", { at }),
    origin,
  };
}

/** Every record event the store tells, in order; Redis delivers them asynchronously. */
function recordEvents(store: Store) {
  const events: RelationshipRecordEvent[] = [];
  const unsubscribe = store.subscribeRelationshipRecords((event) => events.push(event));
  return {
    events,
    unsubscribe,
    async waitFor(count: number): Promise<RelationshipRecordEvent[]> {
      await expect.poll(() => events.length, { timeout: 5000 }).toBeGreaterThanOrEqual(count);
      return events;
    },
  };
}

async function allAudit(store: Store): Promise<readonly AuditEntry[]> {
  return store.queryAudit({ limit: 1000 });
}

export function adminStoreContract(
  name: string,
  backend: StoreBackend,
  openFresh: () => Promise<OpenedStore>,
  keepOpen: (store: Store) => void,
): void {
  describe(`${name}: relationship records`, () => {
    it("creates a record at revision 1 and counts up from there, keeping createdAt and the exact text", async () => {
      const { store } = await openFresh();
      expect(await store.getRelationshipRecord(partner)).toBeUndefined();
      const created = await store.putRelationshipRecord(partner, documentText(1), write(T0, 0));
      const first = { trustDomain: partner, document: documentText(1), revision: 1, createdAt: T0, updatedAt: T0 };
      expect(created).toEqual({ ok: true, record: first });
      expect(await store.getRelationshipRecord(partner)).toEqual(first);

      expect(await store.putRelationshipRecord(partner, documentText(2), write(T0 + 5, 1))).toEqual({
        ok: true,
        record: { ...first, document: documentText(2), revision: 2, updatedAt: T0 + 5 },
      });
      // No expected revision: written whatever the revision is.
      expect(await store.putRelationshipRecord(partner, documentText(3), write(T0 + 9))).toEqual({
        ok: true,
        record: { ...first, document: documentText(3), revision: 3, updatedAt: T0 + 9 },
      });
      expect(await store.getRelationshipRecord(partner)).toMatchObject({ revision: 3, createdAt: T0 });
      expect(await store.getRelationshipRecord(other)).toBeUndefined();
    });

    it("refuses a create over an existing record and an update from a stale revision, changing nothing", async () => {
      const { store } = await openFresh();
      await store.putRelationshipRecord(partner, documentText(1), write(T0, 0));
      const current = (await store.putRelationshipRecord(partner, documentText(2), write(T0 + 1, 1))) as {
        record: unknown;
      };

      expect(await store.putRelationshipRecord(partner, documentText(9), write(T0 + 2, 0))).toEqual({
        ok: false,
        reason: "conflict",
        current: current.record,
      });
      expect(await store.putRelationshipRecord(partner, documentText(9), write(T0 + 2, 1))).toEqual({
        ok: false,
        reason: "conflict",
        current: current.record,
      });
      expect(await store.putRelationshipRecord(partner, documentText(9), write(T0 + 2, 3))).toMatchObject({
        ok: false,
      });
      // An update of a record that does not exist names no current one.
      expect(await store.putRelationshipRecord(other, documentText(9), write(T0 + 2, 1))).toEqual({
        ok: false,
        reason: "conflict",
      });
      expect(await store.getRelationshipRecord(partner)).toEqual(current.record);
      expect(await store.getRelationshipRecord(other)).toBeUndefined();
    });

    it("lets exactly one of many concurrent creates win", async () => {
      const { store } = await openFresh();
      const results = await Promise.all(
        Array.from({ length: 8 }, (_, n) => store.putRelationshipRecord(partner, documentText(n), write(T0, 0))),
      );
      expect(results.filter((result) => result.ok)).toHaveLength(1);
      expect(await store.getRelationshipRecord(partner)).toMatchObject({ revision: 1 });
    });

    it("deletes with or without a revision, refusing a stale one", async () => {
      const { store } = await openFresh();
      await store.putRelationshipRecord(partner, documentText(1), write(T0, 0));
      const { record } = (await store.putRelationshipRecord(partner, documentText(2), write(T0 + 1, 1))) as {
        record: unknown;
      };
      const deleting = (expectedRevision?: number) => ({
        at: T0 + 2,
        ...(expectedRevision === undefined ? {} : { expectedRevision }),
        audit: entry("relationship.delete", { at: T0 + 2 }),
        origin: "replica-a",
      });

      expect(await store.deleteRelationshipRecord(partner, deleting(1))).toEqual({
        ok: false,
        reason: "conflict",
        current: record,
      });
      expect(await store.deleteRelationshipRecord(partner, deleting(0))).toEqual({
        ok: false,
        reason: "conflict",
        current: record,
      });
      expect(await store.getRelationshipRecord(partner)).toEqual(record);
      expect(await store.deleteRelationshipRecord(partner, deleting(2))).toEqual({ ok: true });
      expect(await store.getRelationshipRecord(partner)).toBeUndefined();

      // Gone: deleting again is fine without a revision, a conflict with one.
      expect(await store.deleteRelationshipRecord(partner, deleting())).toEqual({ ok: true });
      expect(await store.deleteRelationshipRecord(partner, deleting(2))).toEqual({ ok: false, reason: "conflict" });

      await store.putRelationshipRecord(partner, documentText(3), write(T0 + 3, 0));
      expect(await store.deleteRelationshipRecord(partner, deleting())).toEqual({ ok: true });
      // A record made again after a delete starts over.
      expect(await store.putRelationshipRecord(partner, documentText(4), write(T0 + 4, 0))).toMatchObject({
        ok: true,
        record: { revision: 1, createdAt: T0 + 4 },
      });
    });

    it("lists every record ordered by trust domain, by code unit", async () => {
      const { store } = await openFresh();
      expect(await store.listRelationshipRecords()).toEqual([]);
      const names = ["c.example", "a.example", "b.example", "a-z.example", "a0.example"] as TrustDomain[];
      for (const [n, name] of names.entries()) {
        await store.putRelationshipRecord(name, documentText(n), write(T0 + n, 0));
      }
      const listed = await store.listRelationshipRecords();
      expect(listed.map((record) => record.trustDomain)).toEqual([
        "a-z.example",
        "a.example",
        "a0.example",
        "b.example",
        "c.example",
      ]);
      expect(listed[3]).toEqual({
        trustDomain: "b.example",
        document: documentText(2),
        revision: 1,
        createdAt: T0 + 2,
        updatedAt: T0 + 2,
      });
    });

    it("refuses a trust domain that is no trust domain name and a query outside its bounds", async () => {
      const { store } = await openFresh();
      const bad = { code: "ERR_STORE_BAD_ARGUMENT" };
      await expect(store.putRelationshipRecord("Not A Domain" as TrustDomain, "{}", write(T0))).rejects.toMatchObject(
        bad,
      );
      await expect(store.putRelationshipRecord(partner, "{}", write(Number.NaN))).rejects.toMatchObject(bad);
      await expect(
        store.putRelationshipRecord(partner, "{}", { ...write(T0), audit: entry("x", { actor: "" }) }),
      ).rejects.toMatchObject(bad);
      await expect(
        store.appendAudit(entry("x", { details: { n: 1n } as unknown as Record<string, unknown> })),
      ).rejects.toMatchObject(bad);
      for (const query of [{ limit: 0 }, { limit: 1001 }, { limit: 1.5 }, { limit: 10, before: "nope" }]) {
        await expect(store.queryAudit(query)).rejects.toMatchObject(bad);
      }
      expect(await store.listRelationshipRecords()).toEqual([]);
      expect(await allAudit(store)).toEqual([]);
    });
  });

  describe(`${name}: preflights`, () => {
    it("keeps the last preflight of each relationship until its record is deleted", async () => {
      const { store } = await openFresh();
      expect(await store.getPreflight(partner)).toBeUndefined();
      await store.putRelationshipRecord(partner, documentText(1), write(T0, 0));
      await store.setPreflight(partner, '{"ok":false}');
      await store.setPreflight(partner, '{"ok":true, "n":18446744073709551615}');
      // A config relationship has no record, and keeps a preflight all the same.
      await store.setPreflight(other, '{"ok":true}');
      expect(await store.getPreflight(partner)).toBe('{"ok":true, "n":18446744073709551615}');
      expect(await store.getPreflight(other)).toBe('{"ok":true}');

      await store.deleteRelationshipRecord(partner, { ...write(T0 + 1), audit: entry("relationship.delete") });
      expect(await store.getPreflight(partner)).toBeUndefined();
      expect(await store.getPreflight(other)).toBe('{"ok":true}');
    });

    it("keeps the preflight when a delete is refused", async () => {
      const { store } = await openFresh();
      await store.putRelationshipRecord(partner, documentText(1), write(T0, 0));
      await store.setPreflight(partner, "{}");
      expect(
        await store.deleteRelationshipRecord(partner, { ...write(T0 + 1, 7), audit: entry("relationship.delete") }),
      ).toMatchObject({ ok: false });
      expect(await store.getPreflight(partner)).toBe("{}");
    });
  });

  describe(`${name}: audit`, () => {
    it("appends entries with increasing ids and gives them back newest first, as written", async () => {
      const { store } = await openFresh();
      const written = {
        at: T0,
        actor: "jwt:alice",
        action: "quarantine.accept",
        trustDomain: partner,
        before: { digest: "a".repeat(64), list: [], nothing: null },
        after: "text",
        details: { reason: "rotation", requestId: "r-1", nested: { n: 1.5 } },
      };
      const first = await store.appendAudit(written);
      expect(first).toEqual({ id: expect.any(String), ...written });
      const second = await store.appendAudit({ at: T0 + 1, actor: "system:expiry", action: "relationship.expire" });
      expect(second).toEqual({
        id: expect.any(String),
        at: T0 + 1,
        actor: "system:expiry",
        action: "relationship.expire",
      });
      expect(compareAuditIds(second.id, first.id)).toBeGreaterThan(0);
      expect(await allAudit(store)).toEqual([second, first]);
    });

    it("keeps an entry as it was when the caller changes its object later", async () => {
      const { store } = await openFresh();
      const details = { reason: "first" };
      const appended = await store.appendAudit(entry("x", { details }));
      details.reason = "changed";
      const [stored] = await allAudit(store);
      expect(stored?.details).toEqual({ reason: "first" });
      (stored?.details as { reason: string }).reason = "changed too";
      expect((await allAudit(store))[0]).toEqual(appended);
    });

    it("writes a record's audit entry with the record, and none for a refused write", async () => {
      const { store } = await openFresh();
      await store.putRelationshipRecord(partner, documentText(1), {
        at: T0 + 7,
        expectedRevision: 0,
        audit: { at: T0, actor: "token:ops", action: "relationship.create", trustDomain: partner, after: { a: 1 } },
        origin: "replica-a",
      });
      await store.putRelationshipRecord(partner, documentText(2), write(T0 + 8, 0));
      await store.putRelationshipRecord(partner, documentText(2), write(T0 + 8, 5));
      await store.deleteRelationshipRecord(partner, { ...write(T0 + 9, 4), audit: entry("relationship.delete") });
      await store.deleteRelationshipRecord(other, { ...write(T0 + 9, 1), audit: entry("relationship.delete") });
      const trail = await allAudit(store);
      // The entry's own time is kept as given, whatever the write's time.
      expect(trail).toEqual([
        {
          id: expect.any(String),
          at: T0,
          actor: "token:ops",
          action: "relationship.create",
          trustDomain: partner,
          after: { a: 1 },
        },
      ]);

      await store.deleteRelationshipRecord(partner, { ...write(T0 + 10, 1), audit: entry("relationship.delete") });
      // Deleting what is not there is still a decision someone made: it is audited.
      await store.deleteRelationshipRecord(other, { ...write(T0 + 11), audit: entry("relationship.delete") });
      expect((await allAudit(store)).map((audited) => audited.action)).toEqual([
        "relationship.delete",
        "relationship.delete",
        "relationship.create",
      ]);
    });

    it("filters by trust domain, actor, action and inclusive time bounds, together", async () => {
      const { store } = await openFresh();
      const appended: AuditEntry[] = [];
      const add = async (at: number, actor: string, action: string, trustDomain?: string) =>
        appended.push(
          await store.appendAudit({ at, actor, action, ...(trustDomain === undefined ? {} : { trustDomain }) }),
        );
      await add(T0, "token:a", "relationship.create", partner);
      await add(T0 + 10, "token:b", "relationship.create", other);
      await add(T0 + 20, "token:a", "quarantine.accept", partner);
      await add(T0 + 30, "system:expiry", "relationship.expire", other);
      await add(T0 + 40, "token:a", "relationship.create");
      const [a, b, c, d, e] = appended as [AuditEntry, AuditEntry, AuditEntry, AuditEntry, AuditEntry];

      expect(await store.queryAudit({ limit: 10 })).toEqual([e, d, c, b, a]);
      expect(await store.queryAudit({ limit: 10, trustDomain: partner })).toEqual([c, a]);
      expect(await store.queryAudit({ limit: 10, actor: "token:a" })).toEqual([e, c, a]);
      expect(await store.queryAudit({ limit: 10, action: "relationship.create" })).toEqual([e, b, a]);
      expect(await store.queryAudit({ limit: 10, since: T0 + 10, until: T0 + 30 })).toEqual([d, c, b]);
      expect(await store.queryAudit({ limit: 10, since: T0 + 31 })).toEqual([e]);
      expect(await store.queryAudit({ limit: 10, until: T0 })).toEqual([a]);
      expect(
        await store.queryAudit({ limit: 10, actor: "token:a", action: "relationship.create", since: T0 + 1 }),
      ).toEqual([e]);
      expect(await store.queryAudit({ limit: 10, trustDomain: partner, actor: "token:b" })).toEqual([]);
      expect(await store.queryAudit({ limit: 10, actor: "nobody" })).toEqual([]);
    });

    it("pages newest first with limit and before, each entry once", async () => {
      const { store } = await openFresh();
      const ids: string[] = [];
      for (let n = 0; n < 7; n++) ids.push((await store.appendAudit(entry(`a${n}`, { at: T0 + n }))).id);
      const newestFirst = [...ids].reverse();

      expect((await store.queryAudit({ limit: 3 })).map((audited) => audited.id)).toEqual(newestFirst.slice(0, 3));
      const paged: string[] = [];
      let before: string | undefined;
      for (;;) {
        const page = await store.queryAudit({ limit: 3, ...(before === undefined ? {} : { before }) });
        paged.push(...page.map((audited) => audited.id));
        if (page.length < 3) break;
        before = page[page.length - 1]!.id;
      }
      expect(paged).toEqual(newestFirst);
      expect(await store.queryAudit({ limit: 3, before: ids[0]! })).toEqual([]);
      expect(await store.queryAudit({ limit: 3, before: "0-0" })).toEqual([]);
      expect(await store.queryAudit({ limit: 3, before: "18446744073709551615-18446744073709551615" })).toHaveLength(3);
      // A cursor is a position, not an entry: one from a filtered page works for any filter.
      expect((await store.queryAudit({ limit: 10, before: ids[4]!, action: "a1" })).map((a) => a.action)).toEqual([
        "a1",
      ]);
    });

    it("finds `limit` matching entries among others", async () => {
      const { store } = await openFresh();
      const oldest = await store.appendAudit(entry("needle"));
      for (let n = 0; n < 20; n++) await store.appendAudit(entry("hay"));
      const newest = await store.appendAudit(entry("needle"));
      for (let n = 0; n < 20; n++) await store.appendAudit(entry("hay"));

      expect(await store.queryAudit({ limit: 2, action: "needle" })).toEqual([newest, oldest]);
      expect(await store.queryAudit({ limit: 5, action: "needle" })).toEqual([newest, oldest]);
      expect(await store.queryAudit({ limit: 1, action: "needle" })).toEqual([newest]);
      expect(await store.queryAudit({ limit: 1, action: "needle", before: newest.id })).toEqual([oldest]);
      expect(await store.queryAudit({ limit: 15, action: "hay" })).toHaveLength(15);
      expect(await store.queryAudit({ limit: 1000, action: "hay" })).toHaveLength(40);
    });
  });

  describe(`${name}: record events`, () => {
    it("tells each put and delete, nothing for a refused write, nothing after unsubscribe", async () => {
      const { store } = await openFresh();
      const told = recordEvents(store);
      const second = recordEvents(store);
      await store.putRelationshipRecord(partner, documentText(1), write(T0, 0));
      await store.putRelationshipRecord(partner, documentText(2), write(T0 + 1, 0));
      await store.putRelationshipRecord(partner, documentText(2), write(T0 + 1, 1));
      await store.deleteRelationshipRecord(partner, { ...write(T0 + 2, 1), audit: entry("relationship.delete") });
      await store.deleteRelationshipRecord(partner, { ...write(T0 + 3), audit: entry("relationship.delete") });
      const expected = [
        { trustDomain: partner, kind: "put", revision: 1, origin: "replica-a" },
        { trustDomain: partner, kind: "put", revision: 2, origin: "replica-a" },
        { trustDomain: partner, kind: "deleted", origin: "replica-a" },
      ];
      expect(await told.waitFor(3)).toEqual(expected);
      expect(await second.waitFor(3)).toEqual(expected);

      second.unsubscribe();
      await store.putRelationshipRecord(other, documentText(1), write(T0 + 4));
      await store.putRelationshipRecord(other, documentText(1), write(T0 + 5));
      expect((await told.waitFor(5)).slice(3).map((event) => event.revision)).toEqual([1, 2]);
      expect(second.events).toHaveLength(3);
    });

    it("keeps record events and bundle change events apart", async () => {
      const { store } = await openFresh();
      const records = recordEvents(store);
      const bundles: BundleChangeEvent[] = [];
      store.subscribe((event) => bundles.push(event));
      store.subscribeRelationshipRecords(() => {
        throw new Error("listener bug");
      });

      await store.putRelationshipRecord(partner, documentText(1), write(T0, 0));
      await store.removeRelationship(partner, { origin: "replica-a" });
      await store.deleteRelationshipRecord(partner, { ...write(T0 + 1), audit: entry("relationship.delete") });
      await store.removeRelationship(other, { origin: "replica-a" });

      // Each kind arrives in order on its own channel; once the last of each is in, nothing else came.
      await expect.poll(() => bundles.length, { timeout: 5000 }).toBe(2);
      expect(bundles.map((event) => [event.kind, event.trustDomain])).toEqual([
        ["removed", partner],
        ["removed", other],
      ]);
      expect((await records.waitFor(2)).map((event) => event.kind)).toEqual(["put", "deleted"]);
      await store.putRelationshipRecord(other, documentText(1), write(T0 + 2));
      await records.waitFor(3);
      expect(bundles).toHaveLength(2);
      expect(records.events).toHaveLength(3);
    });
  });

  describe.runIf(backend.replicas)(`${name}: admin state on replicas`, () => {
    it("shares records, preflights and audit, and tells every replica of puts and deletes", async () => {
      const { store: a, replica } = await openFresh();
      const b = await replica!();
      keepOpen(b);
      const seenByA = recordEvents(a);
      const seenByB = recordEvents(b);

      await a.putRelationshipRecord(partner, documentText(1), write(T0, 0, "a"));
      await a.setPreflight(partner, "{}");
      expect(await b.getRelationshipRecord(partner)).toMatchObject({ revision: 1 });
      expect(await b.getPreflight(partner)).toBe("{}");
      expect(await b.putRelationshipRecord(partner, documentText(2), write(T0 + 1, 0, "b"))).toMatchObject({
        ok: false,
        reason: "conflict",
      });
      await b.putRelationshipRecord(partner, documentText(2), write(T0 + 1, 1, "b"));
      await a.deleteRelationshipRecord(partner, { ...write(T0 + 2, 2, "a"), audit: entry("relationship.delete") });

      const told = [
        ["put", 1, "a"],
        ["put", 2, "b"],
        ["deleted", undefined, "a"],
      ];
      const summary = (events: RelationshipRecordEvent[]) =>
        events.map((event) => [event.kind, event.revision, event.origin]);
      expect(summary(await seenByA.waitFor(3))).toEqual(told);
      expect(summary(await seenByB.waitFor(3))).toEqual(told);
      expect(await allAudit(b)).toEqual(await allAudit(a));
      expect(await allAudit(a)).toHaveLength(3);
    });
  });

  describe.runIf(backend.durable)(`${name}: admin state durability`, () => {
    it("keeps records, preflights and the audit trail across a reopen, and audit ids keep increasing", async () => {
      const { store, reopen } = await openFresh();
      await store.putRelationshipRecord(partner, documentText(1), write(T0, 0));
      await store.putRelationshipRecord(partner, documentText(2), write(T0 + 1, 1));
      await store.putRelationshipRecord(other, documentText(3), write(T0 + 2, 0));
      // A valid trust domain name that a careless object assignment would lose.
      await store.putRelationshipRecord("__proto__" as TrustDomain, documentText(4), write(T0 + 2, 0));
      await store.setPreflight("__proto__" as TrustDomain, "{}");
      await store.setPreflight(partner, '{"ok":true}');
      await store.appendAudit(entry("quarantine.accept", { before: { a: [1, "x"] }, details: { why: "ok" } }));
      const before = {
        records: await store.listRelationshipRecords(),
        preflight: await store.getPreflight(partner),
        audit: await allAudit(store),
      };
      expect(before.records).toHaveLength(3);

      const again = await reopen!();
      keepOpen(again);
      expect(await again.getPreflight("__proto__" as TrustDomain)).toBe("{}");
      expect({
        records: await again.listRelationshipRecords(),
        preflight: await again.getPreflight(partner),
        audit: await allAudit(again),
      }).toEqual(before);
      expect(await again.putRelationshipRecord(partner, documentText(4), write(T0 + 3, 2))).toMatchObject({
        ok: true,
        record: { revision: 3, createdAt: T0 },
      });
      const newer = await again.appendAudit(entry("x"));
      const trail = await allAudit(again);
      expect(trail[0]).toEqual(newer);
      expect(trail.slice(2)).toEqual(before.audit);
    });
  });
}
