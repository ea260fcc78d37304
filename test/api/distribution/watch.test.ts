/**
 * The two ways to wait for a change: the long-poll on /v1/bundles/:trustDomain (?wait with If-None-Match)
 * and the Server-Sent Events stream /v1/bundles/watch.
 */
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import type { TrustDomain } from "../../../src/spiffe/id.js";
import {
  ACTIVE,
  eventually,
  get,
  type Harness,
  type Material,
  makeBundle,
  makeMaterial,
  mutableRegistry,
  openSse,
  PENDING,
  put,
  relationship,
  SECOND,
  type SseStream,
  startHarness,
} from "./support.js";

let material: Material;
const harnesses: Harness[] = [];
const streams: SseStream[] = [];

beforeAll(async () => {
  material = await makeMaterial();
});

afterEach(async () => {
  for (const stream of streams.splice(0)) stream.close();
  await Promise.all(harnesses.splice(0).map((harness) => harness.close()));
});

let nextSequence = 1n;
const bundleFor = (ca: number) => makeBundle(material, { ca: [ca], jwt: [0], sequence: nextSequence++ });

async function start(options: { heartbeatMs?: number; eventCapacity?: number } = {}): Promise<Harness> {
  const harness = await startHarness({
    relationships: [relationship(ACTIVE, "active"), relationship(SECOND, "active"), relationship(PENDING, "pending")],
    fill: (cache) => {
      put(cache, ACTIVE, bundleFor(0));
      put(cache, SECOND, bundleFor(2));
      put(cache, PENDING, bundleFor(1));
    },
    ...options,
  });
  harnesses.push(harness);
  return harness;
}

async function sse(harness: Harness, headers: Record<string, string> = {}): Promise<SseStream> {
  const stream = await openSse(`${harness.url}/v1/bundles/watch`, headers);
  streams.push(stream);
  // The subscription is in place once the server counts the stream.
  await eventually(() => harness.router.activity().streams > 0);
  return stream;
}

describe("long-poll watch", () => {
  it("holds a matching request and answers as soon as the bundle changes", async () => {
    const harness = await start();
    for (const format of ["spiffe", "jwks", "pem"]) {
      const url = `${harness.url}/v1/bundles/${ACTIVE}?format=${format}&wait=30s`;
      const first = await get(url);
      const started = Date.now();
      const pending = get(url, { "if-none-match": first.headers.etag! });
      await eventually(() => harness.router.activity().longPolls === 1);
      // A change of another trust domain does not release it.
      put(harness.cache, SECOND, bundleFor(2));
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(harness.router.activity().longPolls).toBe(1);

      const changed = put(harness.cache, ACTIVE, bundleFor(format === "pem" ? 1 : 0));
      const reply = await pending;
      expect(Date.now() - started).toBeLessThan(5000);
      expect(reply.status).toBe(200);
      expect(reply.headers.etag).not.toBe(first.headers.etag);
      expect(reply.headers.etag).toContain(changed.digest);
      if (format === "spiffe") expect(reply.text).toBe(changed.json);
      expect(harness.router.activity().longPolls).toBe(0);
    }
  });

  it("answers 304 when the wait ends without a change", async () => {
    const harness = await start();
    const first = await get(`${harness.url}/v1/bundles/${ACTIVE}`);
    const started = Date.now();
    const reply = await get(`${harness.url}/v1/bundles/${ACTIVE}?wait=300ms`, { "if-none-match": first.headers.etag! });
    expect(reply.status).toBe(304);
    expect(reply.headers.etag).toBe(first.headers.etag);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(harness.router.activity().longPolls).toBe(0);
  });

  it("answers 404 when the bundle stops being served during the wait", async () => {
    const harness = await start();
    const first = await get(`${harness.url}/v1/bundles/${ACTIVE}`);
    const pending = get(`${harness.url}/v1/bundles/${ACTIVE}?wait=30s`, { "if-none-match": first.headers.etag! });
    await eventually(() => harness.router.activity().longPolls === 1);
    harness.cache.delete(ACTIVE);
    const reply = await pending;
    expect(reply.status).toBe(404);
    expect(JSON.parse(reply.text)).toMatchObject({ code: "ERR_API_BUNDLE_NOT_FOUND" });
  });

  it("releases its listener when the client disconnects", async () => {
    const harness = await start();
    const first = await get(`${harness.url}/v1/bundles/${ACTIVE}`);
    const abort = new AbortController();
    const pending = get(
      `${harness.url}/v1/bundles/${ACTIVE}?wait=60s`,
      { "if-none-match": first.headers.etag! },
      { signal: abort.signal },
    ).catch((error: unknown) => error);
    await eventually(() => harness.router.activity().longPolls === 1);
    abort.abort();
    await pending;
    await eventually(() => harness.router.activity().longPolls === 0);
    // A later change finds no listener to answer a closed request.
    put(harness.cache, ACTIVE, bundleFor(1));
  });
});

describe("SSE /v1/bundles/watch", () => {
  it("streams change events of active relationships only", async () => {
    const harness = await start();
    const stream = await sse(harness);
    expect(stream.status).toBe(200);
    expect(stream.headers["content-type"]).toMatch(/^text\/event-stream/);
    expect(stream.headers["cache-control"]).toBe("no-cache");

    put(harness.cache, PENDING, bundleFor(0));
    const changed = put(harness.cache, ACTIVE, bundleFor(1));
    const [event] = await stream.waitForEvents(1);
    expect(event).toEqual({
      id: "1",
      event: "change",
      data: JSON.stringify({ trust_domain: ACTIVE, sequence: changed.sequence, digest: changed.digest }),
    });

    harness.cache.delete(ACTIVE);
    const events = await stream.waitForEvents(2);
    expect(JSON.parse(events[1]!.data!)).toEqual({ trust_domain: ACTIVE, sequence: null, digest: null });
    expect(events[1]!.id).toBe("2");
    expect(stream.events).toHaveLength(2);
  });

  it("resumes after Last-Event-ID with the events missed", async () => {
    const harness = await start();
    const stream = await sse(harness);
    put(harness.cache, ACTIVE, bundleFor(1));
    const [seen] = await stream.waitForEvents(1);
    stream.close();
    await eventually(() => harness.router.activity().streams === 0);

    const missed = [put(harness.cache, SECOND, bundleFor(0)), put(harness.cache, ACTIVE, bundleFor(0))];
    const resumed = await sse(harness, { "last-event-id": seen!.id! });
    const events = await resumed.waitForEvents(2);
    expect(events.map((event) => event.id)).toEqual(["2", "3"]);
    expect(events.map((event) => JSON.parse(event.data!).digest)).toEqual(missed.map((bundle) => bundle.digest));
    // And keeps streaming live changes after the replay.
    put(harness.cache, SECOND, bundleFor(1));
    expect((await resumed.waitForEvents(3))[2]!.id).toBe("4");

    // Up to date: nothing replayed.
    const current = await sse(harness, { "last-event-id": "4" });
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(current.events).toEqual([]);
  });

  it("sends a reset when the Last-Event-ID is too old, unknown or not a number", async () => {
    const harness = await start({ eventCapacity: 2 });
    for (const ca of [1, 0, 1, 0]) put(harness.cache, ACTIVE as TrustDomain, bundleFor(ca));
    for (const lastId of ["0", "1", "99", "abc"]) {
      const stream = await sse(harness, { "last-event-id": lastId });
      const [event] = await stream.waitForEvents(1);
      expect(event).toEqual({ id: "4", event: "reset", data: JSON.stringify({ last_event_id: 4 }) });
    }
    // The oldest kept events can still be resumed from.
    const stream = await sse(harness, { "last-event-id": "2" });
    expect((await stream.waitForEvents(2)).map((event) => event.id)).toEqual(["3", "4"]);
  });

  it("tells a suspension as digest null and an activation as the bundle", async () => {
    const registry = mutableRegistry([relationship(ACTIVE, "active"), relationship(PENDING, "pending")]);
    let pendingBundle: ReturnType<typeof put> | undefined;
    const harness = await startHarness({
      relationships: [],
      registry,
      fill: (cache) => {
        put(cache, ACTIVE, bundleFor(0));
        pendingBundle = put(cache, PENDING, bundleFor(1));
      },
    });
    harnesses.push(harness);
    const stream = await sse(harness);
    const first = await get(`${harness.url}/v1/bundles/${ACTIVE}`);
    const held = get(`${harness.url}/v1/bundles/${ACTIVE}?wait=30s`, { "if-none-match": first.headers.etag! });
    await eventually(() => harness.router.activity().longPolls === 1);

    registry.set(relationship(ACTIVE, "suspended"));
    expect((await held).status).toBe(404);
    registry.set(relationship(PENDING, "active"));
    const events = await stream.waitForEvents(2);
    expect(events.map((event) => JSON.parse(event.data!))).toEqual([
      { trust_domain: ACTIVE, sequence: null, digest: null },
      { trust_domain: PENDING, sequence: pendingBundle!.sequence, digest: pendingBundle!.digest },
    ]);
    expect((await get(`${harness.url}/v1/bundles/${ACTIVE}`)).status).toBe(404);
    expect((await get(`${harness.url}/v1/bundles/${PENDING}`)).status).toBe(200);
    expect(Object.keys(JSON.parse((await get(`${harness.url}/v1/bundles`)).text).trust_domains)).toEqual([PENDING]);
  });

  it("sends heartbeat comments and releases the stream when the client goes", async () => {
    const harness = await start({ heartbeatMs: 30 });
    const stream = await sse(harness);
    await stream.waitForComment("heartbeat");
    stream.close();
    await eventually(() => harness.router.activity().streams === 0);
  });
});
