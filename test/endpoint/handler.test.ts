import { Agent, createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  ALLOWED_METHODS,
  type BundleRequestHandlerOptions,
  cacheMaxAge,
  createBundleRequestHandler,
  ifNoneMatchMatches,
  isPath,
} from "../../src/endpoint/handler.js";
import type { ServedBundle } from "../../src/sources/types.js";
import { type HttpsReply, type SendOptions, webRequest } from "../support/https-client.js";
import { createCa, createWebCert, type Issued } from "../support/pki.js";
import { servedBundleOf } from "../support/served-bundle.js";
import { createWatchedValue, type WatchedValue } from "../support/watched.js";

let ca: Issued;
let serverCert: Issued;
let bundleCa: Issued;
let otherCa: Issued;
const servers: Server[] = [];
const agents: Agent[] = [];

beforeAll(async () => {
  [ca, bundleCa, otherCa] = await Promise.all([
    createCa({ trustDomain: "tls.test" }),
    createCa({ trustDomain: "example.org" }),
    createCa({ trustDomain: "example.org" }),
  ]);
  serverCert = await createWebCert({ issuer: ca, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
});

afterEach(() => {
  for (const agent of agents.splice(0)) agent.destroy();
});

afterAll(async () => {
  await Promise.all(
    servers.map(
      (server) =>
        new Promise<void>((resolve) => {
          server.closeAllConnections();
          server.close(() => resolve());
        }),
    ),
  );
});

/** Serves `handler` over real TLS on a free port. */
async function serve(options: Partial<BundleRequestHandlerOptions> & { bundle: WatchedValue<ServedBundle> }) {
  const handler = createBundleRequestHandler({ path: "/", ...options });
  const server = createServer({ cert: serverCert.pem, key: serverCert.keyPem }, handler);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return { port: (server.address() as AddressInfo).port, handler };
}

function keepAliveAgent(): Agent {
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: ca.pem });
  agents.push(agent);
  return agent;
}

/** An `https_web` request to the test server, trusting the test CA and checking the name "localhost". */
function send(port: number, options: SendOptions = {}): Promise<HttpsReply> {
  return webRequest({ ...options, port, ca: ca.pem });
}

describe("bundle request handler over TLS", () => {
  let bundle: WatchedValue<ServedBundle>;
  let port: number;

  beforeAll(async () => {
    bundle = createWatchedValue(servedBundleOf([bundleCa], { refreshHintSeconds: 300, sequence: 7n }));
    ({ port } = await serve({ bundle }));
  });

  it("answers GET with the canonical bytes and their metadata", async () => {
    const served = bundle.current();
    const reply = await send(port);
    expect(reply.status).toBe(200);
    expect(reply.body.equals(served.bytes)).toBe(true);
    expect(reply.headers["content-type"]).toBe("application/json");
    expect(reply.headers["content-length"]).toBe(String(served.bytes.length));
    expect(reply.headers.etag).toBe(served.etag);
    expect(reply.headers["cache-control"]).toBe("public, max-age=300");
    expect(reply.headers["x-content-type-options"]).toBe("nosniff");
    expect(JSON.parse(reply.body.toString("utf8"))).toMatchObject({ spiffe_sequence: 7, spiffe_refresh_hint: 300 });
  });

  it("answers HEAD with the same headers and no body", async () => {
    const served = bundle.current();
    const [get, head] = await Promise.all([send(port), send(port, { method: "HEAD" })]);
    expect(head.status).toBe(200);
    expect(head.body.length).toBe(0);
    for (const name of ["content-type", "content-length", "etag", "cache-control", "x-content-type-options"]) {
      expect(head.headers[name], name).toBe(get.headers[name]);
    }
    expect(head.headers["content-length"]).toBe(String(served.bytes.length));
  });

  it("ignores the query string", async () => {
    for (const path of ["/?x=1", "/?", "/?a=b&c=%2F"]) {
      const reply = await send(port, { path });
      expect(reply.status, path).toBe(200);
      expect(reply.body.equals(bundle.current().bytes), path).toBe(true);
    }
  });

  it("reads the path of an absolute-form request target", async () => {
    expect((await send(port, { path: "https://localhost/?x=1" })).status).toBe(200);
    expect((await send(port, { path: "https://localhost/other" })).status).toBe(404);
  });

  it("answers 404 for other paths, whatever the method", async () => {
    for (const [method, path] of [
      ["GET", "/other"],
      ["GET", "/other?x=1"],
      ["HEAD", "/other"],
      ["GET", "//"],
      ["POST", "/other"],
    ] as const) {
      const reply = await send(port, { method, path });
      expect(reply.status, `${method} ${path}`).toBe(404);
      expect(reply.body.length).toBe(0);
      expect(reply.headers.allow).toBeUndefined();
    }
  });

  it("answers 405 with Allow for other methods, OPTIONS included", async () => {
    for (const method of ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"]) {
      const reply = await send(port, { method, path: "/?q" });
      expect(reply.status, method).toBe(405);
      expect(reply.headers.allow, method).toBe(ALLOWED_METHODS);
      expect(ALLOWED_METHODS).toBe("GET, HEAD");
      expect(reply.body.length).toBe(0);
    }
  });

  it("answers 405 to a POST with a body and keeps the connection usable", async () => {
    const agent = keepAliveAgent();
    const post = await send(port, { method: "POST", agent, headers: { "content-type": "application/json" } });
    const get = await send(port, { agent });
    expect(post.status).toBe(405);
    expect(get.status).toBe(200);
    expect(get.localPort).toBe(post.localPort);
  });

  describe("If-None-Match", () => {
    it.each([
      ["the exact ETag", (etag: string) => etag],
      ["a list holding the ETag", (etag: string) => `"nope", ${etag}, "other"`],
      ["a list without spaces", (etag: string) => `"nope",${etag}`],
      ["*", () => "*"],
      ["the weak form of the ETag", (etag: string) => `W/${etag}`],
      ["a list with the weak form", (etag: string) => `W/"nope" , W/${etag}`],
    ])("answers 304 to %s", async (_name, field) => {
      const served = bundle.current();
      const reply = await send(port, { headers: { "if-none-match": field(served.etag) } });
      expect(reply.status).toBe(304);
      expect(reply.body.length).toBe(0);
      expect(reply.headers.etag).toBe(served.etag);
      expect(reply.headers["cache-control"]).toBe("public, max-age=300");
      expect(reply.headers["content-type"]).toBeUndefined();
      expect(reply.headers["content-length"]).toBeUndefined();
      expect(reply.headers["x-content-type-options"]).toBe("nosniff");
    });

    it("answers 304 to HEAD too", async () => {
      const reply = await send(port, { method: "HEAD", headers: { "if-none-match": bundle.current().etag } });
      expect(reply.status).toBe(304);
    });

    it("combines repeated If-None-Match fields", async () => {
      const reply = await send(port, { headers: { "if-none-match": ['"nope"', bundle.current().etag] } });
      expect(reply.status).toBe(304);
    });

    it.each([
      ["another ETag", () => '"0123"'],
      ["a list of other ETags", () => '"a", W/"b"'],
      ["the ETag without quotes", (etag: string) => etag.slice(1, -1)],
      ["a lowercase weak prefix", (etag: string) => `w/${etag}`],
      ["the ETag followed by invalid syntax", (etag: string) => `${etag}, nonsense`],
      ["* inside a list", (etag: string) => `*, ${etag}`],
    ])("answers 200 with the body to %s", async (_name, field) => {
      const served = bundle.current();
      const reply = await send(port, { headers: { "if-none-match": field(served.etag) } });
      expect(reply.status).toBe(200);
      expect(reply.body.equals(served.bytes)).toBe(true);
    });
  });

  it("keeps one connection alive across 200, 304, 404 and 405 answers", async () => {
    const agent = keepAliveAgent();
    const replies = [];
    replies.push(await send(port, { agent }));
    replies.push(await send(port, { agent, headers: { "if-none-match": bundle.current().etag } }));
    replies.push(await send(port, { agent, path: "/other" }));
    replies.push(await send(port, { agent, method: "DELETE" }));
    replies.push(await send(port, { agent, method: "HEAD" }));
    expect(replies.map((reply) => reply.status)).toEqual([200, 304, 404, 405, 200]);
    expect(new Set(replies.map((reply) => reply.localPort)).size).toBe(1);
    for (const reply of replies) expect(reply.headers.connection).not.toBe("close");
  });
});

describe("bundle changes", () => {
  it("serves a new bundle, with its new ETag, from the next request", async () => {
    const bundle = createWatchedValue(servedBundleOf([bundleCa], { sequence: 1n }));
    const { port } = await serve({ bundle });
    const agent = keepAliveAgent();
    const before = await send(port, { agent });

    const next = servedBundleOf([bundleCa, otherCa], { sequence: 2n, refreshHintSeconds: 60 });
    bundle.set(next);
    const after = await send(port, { agent, headers: { "if-none-match": String(before.headers.etag) } });

    expect(after.localPort).toBe(before.localPort);
    expect(after.status).toBe(200);
    expect(after.headers.etag).toBe(next.etag);
    expect(after.headers.etag).not.toBe(before.headers.etag);
    expect(after.headers["cache-control"]).toBe("public, max-age=60");
    expect(after.headers["content-length"]).toBe(String(next.bytes.length));
    expect(after.body.equals(next.bytes)).toBe(true);
    expect((await send(port, { agent, headers: { "if-none-match": next.etag } })).status).toBe(304);
  });

  it("stops following the bundle once disposed", async () => {
    const bundle = createWatchedValue(servedBundleOf([bundleCa]));
    const handler = createBundleRequestHandler({ path: "/", bundle });
    expect(bundle.listenerCount).toBe(1);
    handler.dispose();
    expect(bundle.listenerCount).toBe(0);
  });
});

describe("configuration", () => {
  it.each([
    [undefined, 300, "public, max-age=300"],
    [60, 300, "public, max-age=60"],
    [600, 300, "public, max-age=300"],
    [0, 300, "public, max-age=0"],
    [60, 0, "public, max-age=0"],
  ])("cacheMaxAgeSeconds %s with refresh hint %s gives %s", async (cacheMaxAgeSeconds, hint, expected) => {
    const bundle = createWatchedValue(servedBundleOf([bundleCa], { refreshHintSeconds: hint }));
    const { port } = await serve({ bundle, cacheMaxAgeSeconds });
    expect((await send(port)).headers["cache-control"]).toBe(expected);
  });

  it("serves only at its configured path", async () => {
    const bundle = createWatchedValue(servedBundleOf([bundleCa]));
    const { port } = await serve({ bundle, path: "/bundle.json" });
    expect((await send(port, { path: "/bundle.json" })).status).toBe(200);
    expect((await send(port, { path: "/bundle.json?x=1" })).status).toBe(200);
    for (const path of ["/", "/bundle.jsonx", "/bundle.json/", "/bundle"]) {
      expect((await send(port, { path })).status, path).toBe(404);
    }
  });

  it("reports each response's status and arrival time", async () => {
    const bundle = createWatchedValue(servedBundleOf([bundleCa]));
    const seen: Array<[number, bigint]> = [];
    const { port } = await serve({ bundle, onResponse: (status, startedAtNs) => seen.push([status, startedAtNs]) });
    const before = process.hrtime.bigint();
    await send(port);
    await send(port, { method: "PUT" });
    await send(port, { path: "/x" });
    await send(port, { headers: { "if-none-match": "*" } });
    expect(seen.map(([status]) => status)).toEqual([200, 405, 404, 304]);
    for (const [, startedAtNs] of seen) {
      expect(typeof startedAtNs).toBe("bigint");
      expect(startedAtNs >= before && startedAtNs <= process.hrtime.bigint()).toBe(true);
    }
  });
});

describe("ifNoneMatchMatches", () => {
  const etag = '"abc123"';
  it.each([
    ['"abc123"', true],
    ['W/"abc123"', true],
    ['"x", "abc123"', true],
    ['  "x" ,W/"abc123" ', true],
    ['"x",,"abc123",', true],
    ["*", true],
    [" * ", true],
    ['"abc1234"', false],
    ['"abc12"', false],
    ['"x"', false],
    ["", false],
    ["abc123", false],
    ['w/"abc123"', false],
    ['"abc123" "x"', false],
    ['"abc123", "unterminated', false],
    ['"ab c123"', false],
    ['"abc123", *', false],
    ["**", false],
  ])("%j -> %s", (field, expected) => {
    expect(ifNoneMatchMatches(field, etag)).toBe(expected);
  });
});

describe("isPath", () => {
  it.each([
    ["/", "/", true],
    ["/?", "/", true],
    ["/?a=1", "/", true],
    ["/a", "/", false],
    ["/bundle.json", "/bundle.json", true],
    ["/bundle.json?x", "/bundle.json", true],
    ["/bundle.jsonx", "/bundle.json", false],
    ["/bundle.jso", "/bundle.json", false],
    ["https://example.org", "/", true],
    ["https://example.org/?x", "/", true],
    ["https://example.org?x", "/", true],
    ["https://example.org:8443/bundle.json", "/bundle.json", true],
    ["https://example.org/other", "/", false],
    ["*", "/", false],
    ["", "/", false],
    [undefined, "/", false],
  ])("%j at %j -> %s", (url, path, expected) => {
    expect(isPath(url, path)).toBe(expected);
  });
});

describe("cacheMaxAge", () => {
  it("never exceeds the refresh hint and is a whole non-negative number", () => {
    expect(cacheMaxAge(300, undefined)).toBe(300);
    expect(cacheMaxAge(300, 30)).toBe(30);
    expect(cacheMaxAge(300, 3000)).toBe(300);
    expect(cacheMaxAge(300, 12.9)).toBe(12);
    expect(cacheMaxAge(300, -5)).toBe(0);
    expect(cacheMaxAge(-1, undefined)).toBe(0);
  });
});
