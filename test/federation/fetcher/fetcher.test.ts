/**
 * The bundle fetcher against real TLS servers on loopback: node:https (and raw node:tls / node:net servers
 * where a well-behaved HTTP server cannot misbehave the way a test needs), certificates made in the test,
 * and a real HTTP CONNECT proxy from the `proxy` package. Names are resolved by an injected lookup so the
 * tests never depend on the machine's resolver, except the one test that uses the default lookup.
 */
import { createHash, X509Certificate } from "node:crypto";
import type * as dns from "node:dns";
import type { LookupAddress, LookupOptions } from "node:dns";
import { createServer as createHttpServer, type IncomingMessage, type ServerResponse } from "node:http";
import { createServer as createHttpsServer, type Server as HttpsServer } from "node:https";
import { type AddressInfo, createServer as createTcpServer, isIP, type Server, type Socket } from "node:net";
import { createServer as createTlsServer, type TLSSocket } from "node:tls";
import { createProxy } from "proxy";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { isBundlegateError } from "../../../src/errors.js";
import {
  createBundleFetcher,
  type FetcherOptions,
  type FetchProfile,
  type FetchRequest,
  type FetchResult,
} from "../../../src/federation/fetcher/index.js";
import { createTrustBundle, type TrustBundle, x509AuthorityFromCertificate } from "../../../src/spiffe/bundle.js";
import { createCa, createSvid, createWebCert, type Issued, pemChain } from "../../support/pki.js";

const TD = "example.org";
const ENDPOINT_ID = "spiffe://example.org/spiffe-bundle-server";
const LOOPBACK = ["127.0.0.0/8", "::1/128"] as const;
const BUNDLE = Buffer.from('{"keys":[]}');
const DAY_MS = 24 * 60 * 60 * 1000;

const BASE_OPTIONS: FetcherOptions = {
  maxBytes: 64 * 1024,
  connectTimeoutMs: 5_000,
  headersTimeoutMs: 5_000,
  totalTimeoutMs: 10_000,
  maxRedirects: 3,
};

// ---------------------------------------------------------------------------------------------------------
// PKI

let webCa: Issued;
let otherWebCa: Issued;
let webCert: Issued;
let wrongNameCert: Issued;
let expiredWebCert: Issued;
let domainCa: Issued;
let intermediate: Issued;
let svid: Issued;
let wrongIdSvid: Issued;
let otherCa: Issued;
let foreignSvid: Issued;
let caAsLeaf: Issued;
let twoUriSvid: Issued;
let expiredSvid: Issued;
let authorities: TrustBundle;

beforeAll(async () => {
  [webCa, otherWebCa, domainCa, otherCa] = await Promise.all([
    createCa({ trustDomain: "web.test", withSpiffeUri: false }),
    createCa({ trustDomain: "other-web.test", withSpiffeUri: false }),
    createCa({ trustDomain: TD }),
    createCa({ trustDomain: TD }),
  ]);
  intermediate = await createCa({ trustDomain: TD, issuer: domainCa });
  const past = new Date(Date.now() - 10 * DAY_MS);
  const expired = { notBefore: new Date(past.getTime() - DAY_MS), notAfter: past };
  [webCert, wrongNameCert, expiredWebCert, svid, wrongIdSvid, foreignSvid, caAsLeaf, twoUriSvid, expiredSvid] =
    await Promise.all([
      createWebCert({ issuer: webCa, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] }),
      createWebCert({ issuer: webCa, dnsNames: ["other.test"] }),
      createWebCert({ issuer: webCa, dnsNames: ["localhost"], ...expired }),
      createSvid({ issuer: intermediate, spiffeId: ENDPOINT_ID }),
      createSvid({ issuer: intermediate, spiffeId: "spiffe://example.org/someone-else" }),
      createSvid({ issuer: otherCa, spiffeId: ENDPOINT_ID }),
      createCa({ trustDomain: TD, issuer: domainCa }),
      createSvid({ issuer: intermediate, spiffeId: [ENDPOINT_ID, "spiffe://example.org/second"] }),
      createSvid({ issuer: intermediate, spiffeId: ENDPOINT_ID, ...expired }),
    ]);
  authorities = bundleOf(domainCa);
});

function bundleOf(...cas: Issued[]): TrustBundle {
  return createTrustBundle({
    x509Authorities: cas.map((ca) => x509AuthorityFromCertificate(new X509Certificate(ca.der))),
  });
}

const web = (caPem: string = webCa.pem): FetchProfile => ({ kind: "https_web", caPem });
const SYSTEM_ROOTS: FetchProfile = { kind: "https_web" };
const spiffe = (bundle: TrustBundle = authorities, endpointSpiffeId = ENDPOINT_ID): FetchProfile => ({
  kind: "https_spiffe",
  endpointSpiffeId,
  authorities: bundle,
});

// ---------------------------------------------------------------------------------------------------------
// Servers

interface TestServer {
  port: number;
  /** Requests that reached the HTTP layer (so: after TLS) of an https server. */
  requests: IncomingMessage[];
  /** TCP connections accepted. */
  connections: number;
  url(path?: string, host?: string): string;
}

const cleanups: (() => Promise<void> | void)[] = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function track(server: Server, sockets: Set<Socket>): void {
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return (server.address() as AddressInfo).port;
}

function describeServer(port: number, requests: IncomingMessage[], counter: { connections: number }): TestServer {
  return {
    port,
    requests,
    get connections() {
      return counter.connections;
    },
    url: (path = "/bundle", host = "localhost") => `https://${host}:${port}${path}`,
  };
}

type Handler = (req: IncomingMessage, res: ServerResponse) => void;

const sendBundle: Handler = (_req, res) => {
  res.writeHead(200, { "content-type": "application/json", etag: '"v1"' });
  res.end(BUNDLE);
};

/** An https server presenting `leaf` (and `chain` after it). */
async function serveHttps(certs: Issued[], handler: Handler = sendBundle): Promise<TestServer> {
  const [leaf] = certs;
  const requests: IncomingMessage[] = [];
  const counter = { connections: 0 };
  const server: HttpsServer = createHttpsServer({ cert: pemChain(...certs), key: leaf!.keyPem }, (req, res) => {
    requests.push(req);
    handler(req, res);
  });
  server.on("connection", () => counter.connections++);
  // Handshakes the client aborts on purpose are not test failures.
  server.on("tlsClientError", () => undefined);
  track(server, new Set());
  return describeServer(await listen(server), requests, counter);
}

/** A TLS server that speaks whatever `onSocket` writes: for broken HTTP no real server would send. */
async function serveRawTls(leaf: Issued, onSocket: (socket: TLSSocket) => void): Promise<TestServer> {
  const counter = { connections: 0 };
  const server = createTlsServer({ cert: leaf.pem, key: leaf.keyPem }, (socket) => {
    socket.on("error", () => undefined);
    onSocket(socket);
  });
  server.on("connection", () => counter.connections++);
  server.on("tlsClientError", () => undefined);
  track(server, new Set());
  return describeServer(await listen(server), [], counter);
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createTcpServer();
  const port = await listen(server);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

interface TestProxy {
  url: string;
  port: number;
  connects: string[];
}

async function startProxy(options: { refuse?: boolean } = {}): Promise<TestProxy> {
  const server = createProxy(createHttpServer());
  if (options.refuse) server.authenticate = () => false;
  const connects: string[] = [];
  server.on("connect", (req: IncomingMessage) => connects.push(req.url ?? ""));
  track(server, new Set());
  const port = await listen(server);
  return { url: `http://127.0.0.1:${port}`, port, connects };
}

// ---------------------------------------------------------------------------------------------------------
// Fetching

/** A lookup answering from a table; names not in it fail like getaddrinfo does. */
function staticLookup(table: Record<string, string[]>): typeof dns.lookup {
  const lookup = (hostname: string, options: unknown, callback?: unknown) => {
    const done = (typeof options === "function" ? options : callback) as (
      error: NodeJS.ErrnoException | null,
      address: string | LookupAddress[],
      family?: number,
    ) => void;
    const all = typeof options === "object" && options !== null && (options as LookupOptions).all === true;
    setImmediate(() => {
      const addresses = table[hostname];
      if (!addresses) {
        const error: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
        error.code = "ENOTFOUND";
        done(error, all ? [] : "");
        return;
      }
      const entries = addresses.map((address) => ({ address, family: isIP(address) }));
      if (all) done(null, entries);
      else done(null, entries[0]!.address, entries[0]!.family);
    });
  };
  return lookup as unknown as typeof dns.lookup;
}

const LOOKUP = staticLookup({
  localhost: ["127.0.0.1"],
  "bundle.partner.test": ["127.0.0.1"],
  "metadata.partner.test": ["169.254.169.254"],
  "private.partner.test": ["10.1.2.3"],
  "mixed.partner.test": ["10.1.2.3", "127.0.0.1"],
});

function fetcher(options: Partial<FetcherOptions> = {}) {
  return createBundleFetcher({ ...BASE_OPTIONS, lookup: LOOKUP, ...options });
}

function request(url: string, profile: FetchProfile, extra: Partial<FetchRequest> = {}): FetchRequest {
  return { url, profile, allowedCidrs: LOOPBACK, ...extra };
}

async function failure(promise: Promise<unknown>): Promise<{ code: string; details: Record<string, unknown> }> {
  try {
    await promise;
  } catch (error) {
    if (isBundlegateError(error)) return { code: error.code, details: { ...error.details } };
    throw error;
  }
  throw new Error("expected the fetch to fail");
}

function bundleOfResult(result: FetchResult): Buffer {
  if (result.kind !== "bundle") throw new Error(`expected a bundle, got ${result.kind}`);
  return result.body;
}

const sha256 = (der: Uint8Array) => createHash("sha256").update(der).digest("hex");

// ---------------------------------------------------------------------------------------------------------

describe("https_web", () => {
  it("fetches the body from a server trusted through caPem, hostname checked", async () => {
    const server = await serveHttps([webCert]);
    const result = await fetcher({ userAgent: "bundlegate-test" }).fetch(request(server.url(), web()));
    expect(result.kind).toBe("bundle");
    expect(bundleOfResult(result).equals(BUNDLE)).toBe(true);
    expect(result).toMatchObject({ etag: '"v1"', url: server.url(), redirects: [] });
    expect(result.peer).toMatchObject({
      address: "127.0.0.1",
      port: server.port,
      dnsSans: ["localhost"],
      uriSans: [],
      fingerprint: sha256(webCert.der),
      subject: "CN=localhost",
    });
    expect(result.peer.proxy).toBeUndefined();
    expect(Date.parse(result.peer.notAfter)).toBeGreaterThan(Date.now());
    expect(result.durationMs).toBeGreaterThanOrEqual(0);
    const [seen] = server.requests;
    expect(seen?.method).toBe("GET");
    expect(seen?.url).toBe("/bundle");
    expect(seen?.headers).toMatchObject({
      host: `localhost:${server.port}`,
      "accept-encoding": "identity",
      "user-agent": "bundlegate-test",
    });
    expect(seen?.headers["if-none-match"]).toBeUndefined();
  });

  it("keeps the query string and accepts an IP-literal URL matching an IP SAN", async () => {
    const server = await serveHttps([webCert]);
    const url = server.url("/bundle?td=example.org", "127.0.0.1");
    const result = await fetcher().fetch(request(url, web()));
    expect(bundleOfResult(result).equals(BUNDLE)).toBe(true);
    expect(server.requests[0]?.url).toBe("/bundle?td=example.org");
  });

  it("resolves names with the default lookup when none is injected", async () => {
    const server = await serveHttps([webCert]);
    const result = await createBundleFetcher(BASE_OPTIONS).fetch(request(server.url(), web()));
    expect(result.kind).toBe("bundle");
  });

  it("reports a name mismatch as ERR_FETCH_TLS_HOSTNAME", async () => {
    const server = await serveHttps([wrongNameCert]);
    const { code, details } = await failure(fetcher().fetch(request(server.url(), web())));
    expect(code).toBe("ERR_FETCH_TLS_HOSTNAME");
    expect(details.tlsError).toBe("ERR_TLS_CERT_ALTNAME_INVALID");
    expect(server.requests).toHaveLength(0);
  });

  it("reports a chain to another CA as ERR_FETCH_TLS_UNTRUSTED", async () => {
    const server = await serveHttps([webCert]);
    const { code } = await failure(fetcher().fetch(request(server.url(), web(otherWebCa.pem))));
    expect(code).toBe("ERR_FETCH_TLS_UNTRUSTED");
    expect(server.requests).toHaveLength(0);
  });

  it("uses the system roots without caPem, which do not hold a test CA", async () => {
    const server = await serveHttps([webCert]);
    const { code } = await failure(fetcher().fetch(request(server.url(), SYSTEM_ROOTS)));
    expect(code).toBe("ERR_FETCH_TLS_UNTRUSTED");
  });

  it("reports an expired certificate as ERR_FETCH_TLS_EXPIRED", async () => {
    const server = await serveHttps([expiredWebCert]);
    const { code, details } = await failure(fetcher().fetch(request(server.url(), web())));
    expect(code).toBe("ERR_FETCH_TLS_EXPIRED");
    expect(details.tlsError).toBe("CERT_HAS_EXPIRED");
  });

  it("refuses a CA PEM without a readable certificate as ERR_FETCH_CONFIG", async () => {
    const { code } = await failure(fetcher().fetch(request("https://localhost:1/", web("not a pem"))));
    expect(code).toBe("ERR_FETCH_CONFIG");
  });
});

describe("https_spiffe", () => {
  it("accepts the endpoint's X509-SVID chained through the intermediate it sends", async () => {
    const server = await serveHttps([svid, intermediate]);
    const result = await fetcher().fetch(request(server.url("/bundle", "bundle.partner.test"), spiffe()));
    expect(bundleOfResult(result).equals(BUNDLE)).toBe(true);
    expect(result.peer.uriSans).toEqual([ENDPOINT_ID]);
    expect(result.peer.fingerprint).toBe(sha256(svid.der));
    expect(result.peer.chain).toHaveLength(2);
    expect(result.peer.chain[1]?.subject).toContain("Intermediate CA");
  });

  it("does not check the host name: the SVID carries no DNS name at all", async () => {
    const server = await serveHttps([svid, intermediate]);
    const result = await fetcher().fetch(request(server.url("/bundle", "127.0.0.1"), spiffe()));
    expect(result.peer.dnsSans).toEqual([]);
  });

  it.each([
    ["another SPIFFE ID", () => [wrongIdSvid, intermediate], "ERR_FETCH_SVID_WRONG_ID"],
    ["an SVID from another CA", () => [foreignSvid], "ERR_FETCH_SVID_UNTRUSTED"],
    ["no intermediate sent", () => [svid], "ERR_FETCH_SVID_UNTRUSTED"],
    ["a CA certificate as the leaf", () => [caAsLeaf], "ERR_FETCH_SVID_INVALID"],
    ["two URI SANs", () => [twoUriSvid, intermediate], "ERR_FETCH_SVID_INVALID"],
    ["an expired SVID", () => [expiredSvid, intermediate], "ERR_FETCH_SVID_EXPIRED"],
    ["a Web PKI certificate", () => [webCert], "ERR_FETCH_SVID_INVALID"],
  ])("refuses %s before sending the request", async (_name, certs, expected) => {
    const server = await serveHttps(certs());
    const { code, details } = await failure(fetcher().fetch(request(server.url(), spiffe())));
    expect(code).toBe(expected);
    expect(details.expectedSpiffeId).toBe(ENDPOINT_ID);
    expect(server.connections).toBe(1);
    expect(server.requests).toHaveLength(0);
  });

  it("trusts nothing with an empty bundle", async () => {
    const server = await serveHttps([svid, intermediate]);
    const { code } = await failure(fetcher().fetch(request(server.url(), spiffe(createTrustBundle()))));
    expect(code).toBe("ERR_FETCH_SVID_UNTRUSTED");
  });

  it("judges validity at the injected now()", async () => {
    const server = await serveHttps([svid, intermediate]);
    const later = () => new Date(Date.now() + 365 * DAY_MS);
    const { code } = await failure(fetcher({ now: later }).fetch(request(server.url(), spiffe())));
    expect(code).toBe("ERR_FETCH_SVID_EXPIRED");
  });

  it("verifies against whichever authorities the caller passes (bootstrap or latest stored)", async () => {
    const server = await serveHttps([foreignSvid]);
    const result = await fetcher().fetch(request(server.url(), spiffe(bundleOf(domainCa, otherCa))));
    expect(result.kind).toBe("bundle");
  });

  it("refuses an endpoint SPIFFE ID that is not one as ERR_FETCH_CONFIG", async () => {
    const { code } = await failure(
      fetcher().fetch(request("https://localhost:1/", spiffe(authorities, "https://example.org/x"))),
    );
    expect(code).toBe("ERR_FETCH_CONFIG");
  });
});

describe("status, conditional requests and bodies", () => {
  it("sends If-None-Match and reports 304 as not_modified", async () => {
    const server = await serveHttps([webCert], (req, res) => {
      if (req.headers["if-none-match"] === '"v1"') {
        res.writeHead(304, { etag: '"v1"' });
        res.end();
      } else sendBundle(req, res);
    });
    const result = await fetcher().fetch(request(server.url(), web(), { ifNoneMatch: '"v1"' }));
    expect(result).toMatchObject({ kind: "not_modified", etag: '"v1"', url: server.url(), redirects: [] });
    expect(result.peer.fingerprint).toBe(sha256(webCert.der));
  });

  it("treats 304 without If-None-Match as an unexpected status", async () => {
    const server = await serveHttps([webCert], (_req, res) => {
      res.writeHead(304);
      res.end();
    });
    const { code, details } = await failure(fetcher().fetch(request(server.url(), web())));
    expect(code).toBe("ERR_FETCH_STATUS");
    expect(details.status).toBe(304);
  });

  it.each([500, 404, 201, 204, 206])("refuses status %i as ERR_FETCH_STATUS", async (status) => {
    const server = await serveHttps([webCert], (_req, res) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(status === 204 ? undefined : BUNDLE);
    });
    const { code, details } = await failure(fetcher().fetch(request(server.url(), web())));
    expect(code).toBe("ERR_FETCH_STATUS");
    expect(details.status).toBe(status);
  });

  it("returns a body that is not a bundle as it came: parsing is the codec's job", async () => {
    const garbage = Buffer.from([0xff, 0xfe, 0x00, 0x7b, 0x6e, 0x6f]);
    const server = await serveHttps([webCert], (_req, res) => {
      res.writeHead(200, { "content-type": "text/plain" });
      res.end(garbage);
    });
    const result = await fetcher().fetch(request(server.url(), web()));
    expect(bundleOfResult(result).equals(garbage)).toBe(true);
    expect(result.etag).toBeUndefined();
  });

  it("returns an empty 200 body as an empty buffer", async () => {
    const server = await serveHttps([webCert], (_req, res) => {
      res.writeHead(200);
      res.end();
    });
    expect(bundleOfResult(await fetcher().fetch(request(server.url(), web())))).toHaveLength(0);
  });

  it("accepts a body of exactly maxBytes", async () => {
    const body = Buffer.alloc(1024, 0x61);
    const server = await serveHttps([webCert], (_req, res) => {
      res.writeHead(200);
      res.end(body);
    });
    expect(bundleOfResult(await fetcher({ maxBytes: 1024 }).fetch(request(server.url(), web())))).toHaveLength(1024);
  });

  it("refuses an announced Content-Length over the cap before reading the body", async () => {
    const server = await serveHttps([webCert], (_req, res) => {
      res.writeHead(200, { "content-length": String(10 * 1024 * 1024) });
      res.write(Buffer.alloc(1024));
      // The rest never comes: the cap must not wait for it.
    });
    const { code, details } = await failure(fetcher({ maxBytes: 4096 }).fetch(request(server.url(), web())));
    expect(code).toBe("ERR_FETCH_TOO_LARGE");
    expect(details).toMatchObject({ contentLength: 10 * 1024 * 1024, limit: 4096 });
  });

  it("counts a chunked body without Content-Length on the stream", async () => {
    const server = await serveHttps([webCert], (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      const timer = setInterval(() => res.write(Buffer.alloc(1024, 0x20)), 5);
      res.on("close", () => clearInterval(timer));
    });
    const { code, details } = await failure(fetcher({ maxBytes: 4096 }).fetch(request(server.url(), web())));
    expect(code).toBe("ERR_FETCH_TOO_LARGE");
    expect(details.contentLength).toBeUndefined();
    expect(details.received).toBeGreaterThan(4096);
  });

  it("reads no further than a Content-Length that understates the body", async () => {
    const server = await serveRawTls(webCert, (socket) => {
      socket.once("data", () => {
        socket.write("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\naaaaa");
        // Sent apart from the response, so the client has finished reading it when the excess arrives.
        setTimeout(() => socket.end(Buffer.alloc(100 * 1024, 0x62)), 100);
      });
    });
    const body = bundleOfResult(await fetcher({ maxBytes: 4096 }).fetch(request(server.url(), web())));
    expect(body.toString()).toBe("aaaaa");
  });

  it("refuses a compressed body as ERR_FETCH_ENCODING", async () => {
    const server = await serveHttps([webCert], (_req, res) => {
      res.writeHead(200, { "content-encoding": "gzip" });
      res.end(Buffer.from([0x1f, 0x8b]));
    });
    const { code, details } = await failure(fetcher().fetch(request(server.url(), web())));
    expect(code).toBe("ERR_FETCH_ENCODING");
    expect(details.encoding).toBe("gzip");
  });

  it("accepts an explicit identity encoding", async () => {
    const server = await serveHttps([webCert], (_req, res) => {
      res.writeHead(200, { "content-encoding": "identity" });
      res.end(BUNDLE);
    });
    expect(bundleOfResult(await fetcher().fetch(request(server.url(), web()))).equals(BUNDLE)).toBe(true);
  });

  it("reports a connection cut mid-body as ERR_FETCH_TRUNCATED", async () => {
    const server = await serveRawTls(webCert, (socket) => {
      socket.once("data", () => {
        socket.write("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
        socket.write(Buffer.alloc(10, 0x61), () => setTimeout(() => socket.destroy(), 20));
      });
    });
    const { code } = await failure(fetcher().fetch(request(server.url(), web())));
    expect(code).toBe("ERR_FETCH_TRUNCATED");
  });

  it("reports an answer that is not HTTP as ERR_FETCH_PROTOCOL", async () => {
    const server = await serveRawTls(webCert, (socket) => {
      socket.once("data", () => socket.end("SSH-2.0-OpenSSH_9.6\r\n\r\n"));
    });
    const { code } = await failure(fetcher().fetch(request(server.url(), web())));
    expect(code).toBe("ERR_FETCH_PROTOCOL");
  });

  it("refuses an If-None-Match that would split the header as ERR_FETCH_CONFIG", async () => {
    const server = await serveHttps([webCert]);
    const { code } = await failure(fetcher().fetch(request(server.url(), web(), { ifNoneMatch: '"a"\r\nx: y' })));
    expect(code).toBe("ERR_FETCH_CONFIG");
  });
});

describe("timeouts and aborts", () => {
  it("ends a slow-drip body with the total timeout", async () => {
    const server = await serveHttps([webCert], (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      const timer = setInterval(() => res.write(" "), 200);
      res.on("close", () => clearInterval(timer));
    });
    const { code, details } = await failure(fetcher({ totalTimeoutMs: 1_000 }).fetch(request(server.url(), web())));
    expect(code).toBe("ERR_FETCH_TIMEOUT");
    expect(details.timeoutMs).toBe(1_000);
  });

  it("gives up on a server that never answers with ERR_FETCH_HEADERS_TIMEOUT", async () => {
    const server = await serveHttps([webCert], () => undefined);
    const { code } = await failure(fetcher({ headersTimeoutMs: 300 }).fetch(request(server.url(), web())));
    expect(code).toBe("ERR_FETCH_HEADERS_TIMEOUT");
    expect(server.requests).toHaveLength(1);
  });

  it("gives up on a handshake that never completes with ERR_FETCH_CONNECT_TIMEOUT", async () => {
    const server = createTcpServer(() => undefined);
    track(server, new Set());
    const port = await listen(server);
    const { code, details } = await failure(
      fetcher({ connectTimeoutMs: 300 }).fetch(request(`https://localhost:${port}/`, web())),
    );
    expect(code).toBe("ERR_FETCH_CONNECT_TIMEOUT");
    expect(details.phase).toBe("tls");
  });

  it("counts a resolver that never answers against the connect timeout", async () => {
    const silent = (() => undefined) as unknown as typeof dns.lookup;
    const { code, details } = await failure(
      fetcher({ lookup: silent, connectTimeoutMs: 300 }).fetch(request("https://bundle.partner.test/", web())),
    );
    expect(code).toBe("ERR_FETCH_CONNECT_TIMEOUT");
    expect(details.phase).toBe("dns");
  });

  it("stops when the caller aborts, with ERR_FETCH_ABORTED", async () => {
    const server = await serveHttps([webCert], () => undefined);
    const controller = new AbortController();
    const pending = fetcher().fetch(request(server.url(), web(), { signal: controller.signal }));
    setTimeout(() => controller.abort(), 100);
    expect((await failure(pending)).code).toBe("ERR_FETCH_ABORTED");
  });

  it("does not start when the caller's signal is already aborted", async () => {
    const server = await serveHttps([webCert]);
    const { code } = await failure(fetcher().fetch(request(server.url(), web(), { signal: AbortSignal.abort() })));
    expect(code).toBe("ERR_FETCH_ABORTED");
    expect(server.connections).toBe(0);
  });
});

describe("redirects", () => {
  const redirectTo =
    (location: string, status = 302): Handler =>
    (_req, res) => {
      res.writeHead(status, { location });
      res.end();
    };

  it.each([301, 302, 303, 307, 308])("follows %i to another https endpoint and reports it", async (status) => {
    const target = await serveHttps([webCert]);
    const origin = await serveHttps([webCert], redirectTo(target.url("/moved"), status));
    const result = await fetcher().fetch(request(origin.url(), web()));
    expect(bundleOfResult(result).equals(BUNDLE)).toBe(true);
    expect(result.url).toBe(target.url("/moved"));
    expect(result.redirects).toEqual([target.url("/moved")]);
    expect(target.requests[0]?.url).toBe("/moved");
  });

  it("resolves a relative Location against the current URL", async () => {
    const server = await serveHttps([webCert], (req, res) =>
      req.url === "/dir/old" ? redirectTo("new?x=1")(req, res) : sendBundle(req, res),
    );
    const result = await fetcher().fetch(request(server.url("/dir/old"), web()));
    expect(result.redirects).toEqual([server.url("/dir/new?x=1")]);
  });

  it("keeps If-None-Match across a redirect", async () => {
    const target = await serveHttps([webCert], (_req, res) => {
      res.writeHead(304, { etag: '"v1"' });
      res.end();
    });
    const origin = await serveHttps([webCert], redirectTo(target.url()));
    const result = await fetcher().fetch(request(origin.url(), web(), { ifNoneMatch: '"v1"' }));
    expect(result.kind).toBe("not_modified");
    expect(target.requests[0]?.headers["if-none-match"]).toBe('"v1"');
  });

  it("follows three redirects and refuses a fourth", async () => {
    const chain = async (hops: number) => {
      let next = await serveHttps([webCert]);
      for (let i = 0; i < hops; i++) next = await serveHttps([webCert], redirectTo(next.url()));
      return next;
    };
    const three = await chain(3);
    const ok = await fetcher().fetch(request(three.url(), web()));
    expect(ok.redirects).toHaveLength(3);

    const four = await chain(4);
    const { code, details } = await failure(fetcher().fetch(request(four.url(), web())));
    expect(code).toBe("ERR_FETCH_TOO_MANY_REDIRECTS");
    expect(details.limit).toBe(3);
  });

  it("refuses a redirect to plain http", async () => {
    const origin = await serveHttps([webCert], redirectTo("http://localhost/bundle"));
    const { code, details } = await failure(fetcher().fetch(request(origin.url(), web())));
    expect(code).toBe("ERR_FETCH_REDIRECT_INSECURE");
    expect(details.target).toBe("http://localhost/bundle");
  });

  it.each([
    ["userinfo", "https://user:pw@localhost/bundle"],
    ["an empty userinfo", "https://@localhost/bundle"],
    ["a fragment", "https://localhost/bundle#frag"],
    ["another scheme", "ftp://localhost/bundle"],
  ])("refuses a redirect target with %s as ERR_FETCH_URL_INVALID", async (_name, location) => {
    const origin = await serveHttps([webCert], redirectTo(location));
    const { code } = await failure(fetcher().fetch(request(origin.url(), web())));
    expect(code).toBe("ERR_FETCH_URL_INVALID");
  });

  it("refuses a redirect without Location as ERR_FETCH_STATUS", async () => {
    const origin = await serveHttps([webCert], (_req, res) => {
      res.writeHead(302);
      res.end();
    });
    const { code, details } = await failure(fetcher().fetch(request(origin.url(), web())));
    expect(code).toBe("ERR_FETCH_STATUS");
    expect(details.status).toBe(302);
  });

  it("keeps allowed CIDRs to the configured host: a redirect to another host in the range is refused", async () => {
    // allowedCidrs let the operator reach this partner; the partner must not use them to point
    // bundlegate at other hosts in that range.
    const target = await serveHttps([webCert]);
    const origin = await serveHttps([webCert], redirectTo(target.url("/moved", "127.0.0.1")));
    const { code, details } = await failure(fetcher().fetch(request(origin.url(), web())));
    expect(code).toBe("ERR_FETCH_SSRF_BLOCKED");
    expect(details).toMatchObject({ address: "127.0.0.1" });
    expect(target.requests).toHaveLength(0);
  });

  it("refuses a redirect to a private address literal", async () => {
    const origin = await serveHttps([webCert], redirectTo("https://10.0.0.1/bundle"));
    const { code, details } = await failure(fetcher().fetch(request(origin.url(), web())));
    expect(code).toBe("ERR_FETCH_SSRF_BLOCKED");
    expect(details).toMatchObject({ address: "10.0.0.1", range: "private", cidr: "10.0.0.0/8" });
  });

  it("refuses a redirect to a name that resolves to the metadata address", async () => {
    const origin = await serveHttps([webCert], redirectTo("https://metadata.partner.test/latest"));
    const { code, details } = await failure(fetcher().fetch(request(origin.url(), web())));
    expect(code).toBe("ERR_FETCH_SSRF_BLOCKED");
    expect(details).toMatchObject({ address: "169.254.169.254", range: "metadata", host: "metadata.partner.test" });
  });

  it("holds an https_spiffe redirect target to the same SPIFFE ID", async () => {
    const target = await serveHttps([wrongIdSvid, intermediate]);
    const origin = await serveHttps([svid, intermediate], redirectTo(target.url()));
    const { code } = await failure(fetcher().fetch(request(origin.url(), spiffe())));
    expect(code).toBe("ERR_FETCH_SVID_WRONG_ID");
    expect(target.requests).toHaveLength(0);
  });

  it("holds an https_web redirect target to the same CA", async () => {
    const otherCert = await createWebCert({ issuer: otherWebCa, dnsNames: ["localhost"] });
    const target = await serveHttps([otherCert]);
    const origin = await serveHttps([webCert], redirectTo(target.url()));
    const { code } = await failure(fetcher().fetch(request(origin.url(), web())));
    expect(code).toBe("ERR_FETCH_TLS_UNTRUSTED");
  });
});

describe("addresses, DNS and connections", () => {
  it.each([
    ["an http URL", "http://localhost/bundle"],
    ["userinfo", "https://user@localhost/bundle"],
    ["a fragment", "https://localhost/bundle#x"],
    ["an empty fragment", "https://localhost/bundle#"],
    ["no URL at all", "localhost/bundle"],
  ])("refuses a configured URL with %s as ERR_FETCH_URL_INVALID", async (_name, url) => {
    const { code } = await failure(fetcher().fetch(request(url, web())));
    expect(code).toBe("ERR_FETCH_URL_INVALID");
  });

  it("refuses a name resolving to loopback unless loopback is allowed", async () => {
    const server = await serveHttps([svid, intermediate]);
    const url = server.url("/bundle", "bundle.partner.test");
    const { code, details } = await failure(fetcher().fetch(request(url, spiffe(), { allowedCidrs: [] })));
    expect(code).toBe("ERR_FETCH_SSRF_BLOCKED");
    expect(details).toMatchObject({ address: "127.0.0.1", range: "loopback", resolved: ["127.0.0.1"] });
    expect(server.connections).toBe(0);
  });

  it("refuses a name resolving to the metadata address even when loopback is allowed", async () => {
    const { code, details } = await failure(fetcher().fetch(request("https://metadata.partner.test/bundle", web())));
    expect(code).toBe("ERR_FETCH_SSRF_BLOCKED");
    expect(details.range).toBe("metadata");
  });

  it("refuses a literal loopback address without touching it", async () => {
    const server = await serveHttps([webCert]);
    const { code } = await failure(fetcher().fetch({ url: server.url("/bundle", "127.0.0.1"), profile: web() }));
    expect(code).toBe("ERR_FETCH_SSRF_BLOCKED");
    expect(server.connections).toBe(0);
  });

  it("refuses an IPv4-mapped IPv6 literal of loopback", async () => {
    const { code, details } = await failure(
      fetcher().fetch(request("https://[::ffff:127.0.0.1]:1/bundle", web(), { allowedCidrs: [] })),
    );
    expect(code).toBe("ERR_FETCH_SSRF_BLOCKED");
    expect(details).toMatchObject({ range: "loopback", embedded: "127.0.0.1" });
  });

  it("connects only to the allowed addresses of a name with mixed answers", async () => {
    const certForName = await createWebCert({ issuer: webCa, dnsNames: ["mixed.partner.test"] });
    const server = await serveHttps([certForName]);
    const result = await fetcher().fetch(request(server.url("/bundle", "mixed.partner.test"), web()));
    expect(result.peer.address).toBe("127.0.0.1");
  });

  it("lets allowedCidrs open exactly the ranges listed", async () => {
    const server = await serveHttps([webCert]);
    const narrow = await fetcher().fetch(request(server.url(), web(), { allowedCidrs: ["127.0.0.1/32"] }));
    expect(narrow.kind).toBe("bundle");
    const { code } = await failure(fetcher().fetch(request(server.url(), web(), { allowedCidrs: ["127.0.0.2/32"] })));
    expect(code).toBe("ERR_FETCH_SSRF_BLOCKED");
  });

  it("refuses an allowedCidrs entry that is not a CIDR as ERR_FETCH_CONFIG", async () => {
    const { code } = await failure(
      fetcher().fetch(request("https://localhost/bundle", web(), { allowedCidrs: ["10.0.0.0/33"] })),
    );
    expect(code).toBe("ERR_FETCH_CONFIG");
  });

  it("reports a name that does not resolve as ERR_FETCH_DNS", async () => {
    const { code, details } = await failure(fetcher().fetch(request("https://nowhere.partner.test/", web())));
    expect(code).toBe("ERR_FETCH_DNS");
    expect(details).toMatchObject({ host: "nowhere.partner.test", errno: "ENOTFOUND" });
  });

  it("reports a refused connection as ERR_FETCH_CONNECT", async () => {
    const port = await closedPort();
    const { code, details } = await failure(fetcher().fetch(request(`https://localhost:${port}/`, web())));
    expect(code).toBe("ERR_FETCH_CONNECT");
    expect(details.errno).toBe("ECONNREFUSED");
  });

  it("reports a server that closes during the handshake as ERR_FETCH_TLS", async () => {
    const server = createTcpServer((socket) => socket.destroy());
    track(server, new Set());
    const port = await listen(server);
    const { code } = await failure(fetcher().fetch(request(`https://localhost:${port}/`, web())));
    expect(code).toBe("ERR_FETCH_TLS");
  });
});

describe("proxies", () => {
  it("tunnels through HTTPS_PROXY with CONNECT", async () => {
    const proxy = await startProxy();
    const server = await serveHttps([webCert]);
    const result = await fetcher({ httpsProxy: proxy.url }).fetch(request(server.url(), web()));
    expect(bundleOfResult(result).equals(BUNDLE)).toBe(true);
    expect(proxy.connects).toEqual([`localhost:${server.port}`]);
    expect(result.peer).toMatchObject({ address: "127.0.0.1", port: proxy.port, proxy: proxy.url });
    expect(result.peer.fingerprint).toBe(sha256(webCert.der));
  });

  it("checks an IP-literal target's certificate against the target, not the proxy's host", async () => {
    // https-proxy-agent leaves `host` out of the TLS options, so without an explicit check Node would compare
    // the certificate with the proxy's host name ("localhost" here) instead of the target's address.
    const proxy = await startProxy();
    const viaName = `http://localhost:${proxy.port}`;
    const [ipOnly, nameOnly] = await Promise.all([
      createWebCert({ issuer: webCa, dnsNames: [], ipAddresses: ["127.0.0.1"] }),
      createWebCert({ issuer: webCa, dnsNames: ["localhost"] }),
    ]);
    const good = await serveHttps([ipOnly]);
    const result = await fetcher({ httpsProxy: viaName }).fetch(request(good.url("/bundle", "127.0.0.1"), web()));
    expect(result.kind).toBe("bundle");
    const wrong = await serveHttps([nameOnly]);
    const { code } = await failure(
      fetcher({ httpsProxy: viaName }).fetch(request(wrong.url("/bundle", "127.0.0.1"), web())),
    );
    expect(code).toBe("ERR_FETCH_TLS_HOSTNAME");
    expect(wrong.requests).toHaveLength(0);
  });

  it("verifies the X509-SVID inside the tunnel before sending the request", async () => {
    const proxy = await startProxy();
    const good = await serveHttps([svid, intermediate]);
    expect((await fetcher({ httpsProxy: proxy.url }).fetch(request(good.url(), spiffe()))).kind).toBe("bundle");
    const bad = await serveHttps([wrongIdSvid, intermediate]);
    const { code, details } = await failure(fetcher({ httpsProxy: proxy.url }).fetch(request(bad.url(), spiffe())));
    expect(code).toBe("ERR_FETCH_SVID_WRONG_ID");
    expect(details.proxy).toBe(proxy.url);
    expect(bad.requests).toHaveLength(0);
  });

  it.each([
    ["the host", "localhost"],
    ["the host and port", "example.com, localhost:PORT"],
    ["a wildcard", "*"],
  ])("goes direct when NO_PROXY names %s", async (_name, noProxy) => {
    const proxy = await startProxy();
    const server = await serveHttps([webCert]);
    const result = await fetcher({
      httpsProxy: proxy.url,
      noProxy: noProxy.replace("PORT", String(server.port)),
    }).fetch(request(server.url(), web()));
    expect(result.peer.proxy).toBeUndefined();
    expect(proxy.connects).toEqual([]);
  });

  it('goes direct when the relationship says "direct"', async () => {
    const proxy = await startProxy();
    const server = await serveHttps([webCert]);
    await fetcher({ httpsProxy: proxy.url }).fetch(request(server.url(), web(), { proxy: "direct" }));
    expect(proxy.connects).toEqual([]);
  });

  it("uses the relationship's own proxy even when NO_PROXY matches", async () => {
    const proxy = await startProxy();
    const server = await serveHttps([webCert]);
    await fetcher({ noProxy: "*" }).fetch(request(server.url(), web(), { proxy: proxy.url }));
    expect(proxy.connects).toHaveLength(1);
  });

  it("reports a proxy refusing CONNECT as ERR_FETCH_PROXY", async () => {
    const proxy = await startProxy({ refuse: true });
    const server = await serveHttps([webCert]);
    const { code, details } = await failure(fetcher({ httpsProxy: proxy.url }).fetch(request(server.url(), web())));
    expect(code).toBe("ERR_FETCH_PROXY");
    expect(details.proxyStatus).toBe(407);
    expect(server.connections).toBe(0);
  });

  it("reports an unreachable proxy as ERR_FETCH_PROXY", async () => {
    const port = await closedPort();
    const server = await serveHttps([webCert]);
    const { code, details } = await failure(
      fetcher({ httpsProxy: `http://user:secret@127.0.0.1:${port}` }).fetch(request(server.url(), web())),
    );
    expect(code).toBe("ERR_FETCH_PROXY");
    expect(details.proxy).toBe(`http://redacted@127.0.0.1:${port}`);
    expect(JSON.stringify(details)).not.toContain("secret");
  });

  it("still refuses a literal blocked target without asking the proxy", async () => {
    const proxy = await startProxy();
    const { code } = await failure(
      fetcher({ httpsProxy: proxy.url }).fetch(request("https://169.254.169.254/latest", web())),
    );
    expect(code).toBe("ERR_FETCH_SSRF_BLOCKED");
    expect(proxy.connects).toEqual([]);
  });

  it("refuses a name that resolves here only to blocked addresses, without asking the proxy", async () => {
    const proxy = await startProxy();
    const { code, details } = await failure(
      fetcher({
        httpsProxy: proxy.url,
        lookup: staticLookup({ "metadata.partner.test": ["169.254.169.254"] }),
      }).fetch(request("https://metadata.partner.test/latest", web())),
    );
    expect(code).toBe("ERR_FETCH_SSRF_BLOCKED");
    expect(details.resolved).toEqual(["169.254.169.254"]);
    expect(proxy.connects).toEqual([]);
  });

  it("leaves a name that does not resolve here to the proxy", async () => {
    const proxy = await startProxy();
    await failure(
      fetcher({ httpsProxy: proxy.url, lookup: staticLookup({}), connectTimeoutMs: 2000 }).fetch(
        request("https://only-the-proxy-knows.invalid/bundle", web()),
      ),
    );
    expect(proxy.connects).toEqual(["only-the-proxy-knows.invalid:443"]);
  });

  it("times out a proxy that never answers CONNECT", async () => {
    const silent = createTcpServer(() => undefined);
    track(silent, new Set());
    const port = await listen(silent);
    const { code, details } = await failure(
      fetcher({ httpsProxy: `http://127.0.0.1:${port}`, connectTimeoutMs: 300 }).fetch(
        request("https://localhost:1/bundle", web()),
      ),
    );
    expect(code).toBe("ERR_FETCH_CONNECT_TIMEOUT");
    expect(details.phase).toBe("proxy");
  });
});
