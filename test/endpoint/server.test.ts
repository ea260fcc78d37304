import { X509Certificate } from "node:crypto";
import { Agent } from "node:https";
import { createServer as createTcpServer, type Socket, connect as tcpConnect } from "node:net";
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from "node:tls";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import {
  type BundleEndpoint,
  type BundleEndpointOptions,
  createBundleEndpoint,
  type EndpointProfile,
} from "../../src/endpoint/server.js";
import {
  createEndpointSecureContext,
  ECDH_CURVES,
  ENDPOINT_TLS_PARAMETERS,
  endpointSecureContextOptions,
  TLS12_CIPHERS,
  TLS13_CIPHER_SUITES,
} from "../../src/endpoint/tls.js";
import { isBundlegateError } from "../../src/errors.js";
import { createLogger } from "../../src/logging.js";
import type { ServedBundle, TlsCredentials } from "../../src/sources/types.js";
import {
  spiffeConnect as connectSpiffe,
  fingerprintOf,
  type HttpsReply,
  requestOver,
  type SendOptions,
  webRequest,
} from "../support/https-client.js";
import { createCa, createSvid, createWebCert, type Issued, pemChain } from "../support/pki.js";
import { servedBundleOf } from "../support/served-bundle.js";
import { createWatchedValue, type WatchedValue } from "../support/watched.js";

const ENDPOINT_ID = "spiffe://example.org/spiffe-bundle-server";
const TIMEOUTS = { headersMs: 5000, requestMs: 10_000, keepAliveMs: 5000 };

let webCa: Issued;
let webCert: Issued;
let webCert2: Issued;
let domainCa: Issued;
let otherDomainCa: Issued;
let svid: Issued;
let bundle: WatchedValue<ServedBundle>;

const endpoints: BundleEndpoint[] = [];
const agents: Agent[] = [];
const sockets: Socket[] = [];

beforeAll(async () => {
  [webCa, domainCa, otherDomainCa] = await Promise.all([
    createCa({ trustDomain: "web.test", withSpiffeUri: false }),
    createCa({ trustDomain: "example.org" }),
    createCa({ trustDomain: "example.org" }),
  ]);
  [webCert, webCert2, svid] = await Promise.all([
    createWebCert({ issuer: webCa, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] }),
    createWebCert({ issuer: webCa, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] }),
    createSvid({ issuer: domainCa, spiffeId: ENDPOINT_ID }),
  ]);
  bundle = createWatchedValue(servedBundleOf([domainCa], { refreshHintSeconds: 300, sequence: 1n }));
});

afterEach(async () => {
  for (const agent of agents.splice(0)) agent.destroy();
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(endpoints.splice(0).map((endpoint) => endpoint.close()));
});

function credentialsOf(leaf: Issued, ...chain: Issued[]): TlsCredentials {
  return {
    certPem: pemChain(leaf, ...chain),
    chain: [leaf.der, ...chain.map((certificate) => certificate.der)],
    keyPem: leaf.keyPem,
    leaf: new X509Certificate(leaf.der),
    fingerprint: fingerprintOf(leaf.der),
  };
}

function captureLogs() {
  const lines: Array<Record<string, unknown>> = [];
  const logger = createLogger({ level: "debug" }, { write: (line: string) => lines.push(JSON.parse(line)) });
  return { logger, lines };
}

async function startEndpoint(overrides: Partial<BundleEndpointOptions> = {}) {
  const credentials = createWatchedValue(credentialsOf(webCert));
  const options: BundleEndpointOptions = {
    profile: "https_web",
    listen: { host: "127.0.0.1", port: 0 },
    path: "/",
    bundle,
    credentials,
    timeouts: TIMEOUTS,
    logger: captureLogs().logger,
    ...overrides,
  };
  const endpoint = createBundleEndpoint(options);
  endpoints.push(endpoint);
  const address = await endpoint.start();
  return { endpoint, port: address.port, address, credentials: options.credentials as typeof credentials };
}

function keepAliveAgent(): Agent {
  const agent = new Agent({ keepAlive: true, maxSockets: 1, ca: webCa.pem });
  agents.push(agent);
  return agent;
}

/** An `https_web` client: Web PKI verification against the test CA, hostname checked against `servername`. */
function webGet(port: number, options: SendOptions = {}): Promise<HttpsReply> {
  return webRequest({ ca: webCa.pem, ...options, port });
}

/** Opens a connection the `https_spiffe` way, trusting the bundle made of `anchors`; closed after the test. */
async function spiffeConnect(port: number, anchors: readonly Issued[], endpointId: string): Promise<TLSSocket> {
  const socket = await connectSpiffe({
    port,
    bundle: servedBundleOf(anchors).bundle,
    endpointSpiffeId: endpointId,
  });
  sockets.push(socket);
  return socket;
}

/** A bare TLS handshake with client-chosen parameters; resolves with the negotiated protocol or rejects. */
function handshake(port: number, options: ConnectionOptions): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = tlsConnect({ host: "127.0.0.1", port, servername: "localhost", ca: webCa.pem, ...options });
    sockets.push(socket);
    socket.once("secureConnect", () => resolve(socket));
    socket.once("error", reject);
  });
}

function closed(socket: Socket): Promise<string> {
  let received = "";
  socket.on("data", (chunk: Buffer) => {
    received += chunk.toString("latin1");
  });
  socket.on("error", () => undefined);
  return new Promise((resolve) => socket.once("close", () => resolve(received)));
}

async function expectCode(promise: Promise<unknown>, code: string): Promise<void> {
  const error = await promise.then(
    () => undefined,
    (failure: unknown) => failure,
  );
  expect(error, `expected ${code}`).toBeDefined();
  expect((error as { code?: string }).code).toBe(code);
}

describe("https_web profile", () => {
  it("serves the bundle to a client that verifies the certificate and the host name", async () => {
    const { port, address } = await startEndpoint();
    expect(address.host).toBe("127.0.0.1");
    expect(port).toBeGreaterThan(0);
    const reply = await webGet(port);
    expect(reply.status).toBe(200);
    expect(reply.body.equals(bundle.current().bytes)).toBe(true);
    expect(reply.headers["content-type"]).toBe("application/json");
    expect(reply.headers.etag).toBe(bundle.current().etag);
    expect(reply.peer).toBe(fingerprintOf(webCert.der));
  });

  it("fails hostname verification for a name the certificate does not carry", async () => {
    const { port } = await startEndpoint();
    await expectCode(webGet(port, { servername: "wrong.example" }), "ERR_TLS_CERT_ALTNAME_INVALID");
  });

  it("fails for a client that does not trust the issuing CA", async () => {
    const { port } = await startEndpoint();
    await expectCode(webGet(port, { ca: domainCa.pem }), "UNABLE_TO_VERIFY_LEAF_SIGNATURE");
  });
});

describe("https_spiffe profile", () => {
  it("serves the bundle over an X509-SVID that verifies against the trust domain's bundle", async () => {
    const { port } = await startEndpoint({
      profile: "https_spiffe",
      credentials: createWatchedValue(credentialsOf(svid)),
    });
    const socket = await spiffeConnect(port, [domainCa], ENDPOINT_ID);
    const reply = await requestOver(socket);
    expect(reply.status).toBe(200);
    expect(reply.body.equals(bundle.current().bytes)).toBe(true);
    expect(reply.peer).toBe(fingerprintOf(svid.der));
  });

  it("is refused by a client expecting another endpoint SPIFFE ID or another bundle", async () => {
    const { port } = await startEndpoint({
      profile: "https_spiffe",
      credentials: createWatchedValue(credentialsOf(svid)),
    });
    await expect(spiffeConnect(port, [domainCa], "spiffe://example.org/other")).rejects.toThrow(/SPIFFE ID/);
    await expect(spiffeConnect(port, [otherDomainCa], ENDPOINT_ID)).rejects.toThrow(/chain/);
  });

  it("runs beside an https_web listener, both serving the same bundle as it changes", async () => {
    const shared = createWatchedValue(servedBundleOf([domainCa], { sequence: 10n }));
    const requests: Array<[EndpointProfile, number]> = [];
    const onRequest = (profile: EndpointProfile, status: number) => requests.push([profile, status]);
    const web = await startEndpoint({ bundle: shared, onRequest });
    const spiffe = await startEndpoint({
      profile: "https_spiffe",
      bundle: shared,
      credentials: createWatchedValue(credentialsOf(svid)),
      onRequest,
    });
    expect(web.port).not.toBe(spiffe.port);
    expect(web.endpoint.profile).toBe("https_web");
    expect(spiffe.endpoint.profile).toBe("https_spiffe");

    const fromWeb = await webGet(web.port);
    const fromSpiffe = await requestOver(await spiffeConnect(spiffe.port, [domainCa], ENDPOINT_ID));
    expect(fromWeb.body.equals(fromSpiffe.body)).toBe(true);

    const next = servedBundleOf([domainCa, otherDomainCa], { sequence: 11n });
    shared.set(next);
    expect((await webGet(web.port)).headers.etag).toBe(next.etag);
    expect((await requestOver(await spiffeConnect(spiffe.port, [domainCa], ENDPOINT_ID))).headers.etag).toBe(next.etag);
    expect(requests).toEqual([
      ["https_web", 200],
      ["https_spiffe", 200],
      ["https_web", 200],
      ["https_spiffe", 200],
    ]);
  });
});

describe("TLS parameters", () => {
  it("are Mozilla intermediate with no client authentication", () => {
    expect(ENDPOINT_TLS_PARAMETERS).toMatchObject({
      minVersion: "TLSv1.2",
      honorCipherOrder: false,
      requestCert: false,
      ecdhCurve: "X25519:prime256v1:secp384r1",
    });
    expect(ECDH_CURVES).toBe("X25519:prime256v1:secp384r1");
    expect(ENDPOINT_TLS_PARAMETERS.ciphers.split(":")).toEqual([...TLS13_CIPHER_SUITES, ...TLS12_CIPHERS]);
    for (const cipher of TLS12_CIPHERS)
      expect(cipher).toMatch(/^ECDHE-(ECDSA|RSA)-(AES(128|256)-GCM-SHA(256|384)|CHACHA20-POLY1305)$/);
    const options = endpointSecureContextOptions(credentialsOf(webCert));
    expect(options).toMatchObject({ minVersion: "TLSv1.2", honorCipherOrder: false, cert: webCert.pem });
  });

  it("negotiates TLS 1.3 with X25519 by default", async () => {
    const { port } = await startEndpoint();
    const socket = await handshake(port, {});
    expect(socket.getProtocol()).toBe("TLSv1.3");
    expect(socket.getEphemeralKeyInfo()).toMatchObject({ name: "X25519" });
    expect(socket.alpnProtocol).toBe(false);
  });

  it("accepts TLS 1.2 with an intermediate AEAD suite", async () => {
    const { port } = await startEndpoint();
    for (const cipher of ["ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-ECDSA-CHACHA20-POLY1305"]) {
      const socket = await handshake(port, { maxVersion: "TLSv1.2", ciphers: cipher });
      expect(socket.getProtocol()).toBe("TLSv1.2");
      expect(socket.getCipher().standardName).toBe(
        cipher === "ECDHE-ECDSA-AES128-GCM-SHA256"
          ? "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
          : "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
      );
    }
    const rsa = await startEndpoint({ credentials: createWatchedValue(credentialsOf(await rsaWebCert())) });
    const socket = await handshake(rsa.port, { maxVersion: "TLSv1.2", ciphers: "ECDHE-RSA-AES256-GCM-SHA384" });
    expect(socket.getCipher().name).toBe("ECDHE-RSA-AES256-GCM-SHA384");
  });

  it("refuses TLS 1.1, CBC suites and curves outside the list", async () => {
    const { port } = await startEndpoint();
    const old = handshake(port, {
      minVersion: "TLSv1.1",
      maxVersion: "TLSv1.1",
      // Lets this client's OpenSSL offer TLS 1.1 at all, so the refusal is the server's.
      ciphers: "DEFAULT@SECLEVEL=0",
    });
    await expect(old).rejects.toMatchObject({ code: expect.stringMatching(/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL/) });
    await expect(
      handshake(port, { maxVersion: "TLSv1.2", ciphers: "ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA" }),
    ).rejects.toMatchObject({ code: expect.stringMatching(/HANDSHAKE_FAILURE/) });
    await expect(handshake(port, { ecdhCurve: "secp521r1" })).rejects.toMatchObject({
      code: expect.stringMatching(/HANDSHAKE_FAILURE/),
    });
  });

  it("wraps a pair OpenSSL refuses as ERR_TLS_CONTEXT", () => {
    const broken = { ...credentialsOf(webCert2), keyPem: webCert.keyPem };
    let thrown: unknown;
    try {
      createEndpointSecureContext(broken);
    } catch (error) {
      thrown = error;
    }
    expect(isBundlegateError(thrown) && thrown.code).toBe("ERR_TLS_CONTEXT");
    expect((thrown as Error).cause).toBeInstanceOf(Error);
  });
});

let rsaCert: Issued | undefined;
async function rsaWebCert(): Promise<Issued> {
  rsaCert ??= await createWebCert({ issuer: webCa, dnsNames: ["localhost"], keyAlg: "RSA-2048" });
  return rsaCert;
}

describe("changes while running", () => {
  it("serves a changed bundle from the next request", async () => {
    const local = createWatchedValue(servedBundleOf([domainCa], { sequence: 1n }));
    const { port } = await startEndpoint({ bundle: local });
    const agent = keepAliveAgent();
    const first = await webGet(port, { agent });
    const next = servedBundleOf([domainCa, otherDomainCa], { sequence: 2n });
    local.set(next);
    const second = await webGet(port, { agent });
    expect(second.localPort).toBe(first.localPort);
    expect(second.headers.etag).toBe(next.etag);
    expect(second.headers.etag).not.toBe(first.headers.etag);
    expect(second.body.equals(next.bytes)).toBe(true);
  });

  it("gives new connections a new certificate while open connections keep theirs", async () => {
    const reloads: Array<[EndpointProfile, string]> = [];
    const { port, credentials } = await startEndpoint({
      onTlsReload: (profile, result) => reloads.push([profile, result]),
    });
    const agent = keepAliveAgent();
    const before = await webGet(port, { agent });
    expect(before.peer).toBe(fingerprintOf(webCert.der));

    credentials.set(credentialsOf(webCert2));
    expect(reloads).toEqual([["https_web", "ok"]]);

    const sameConnection = await webGet(port, { agent });
    expect(sameConnection.status).toBe(200);
    expect(sameConnection.localPort).toBe(before.localPort);
    expect(sameConnection.peer).toBe(fingerprintOf(webCert.der));

    const newConnection = await webGet(port);
    expect(newConnection.status).toBe(200);
    expect(newConnection.peer).toBe(fingerprintOf(webCert2.der));
  });

  it("refuses a broken pair and keeps serving the previous certificate", async () => {
    const reloads: Array<[EndpointProfile, string]> = [];
    const { logger, lines } = captureLogs();
    const { port, credentials } = await startEndpoint({
      logger,
      onTlsReload: (profile, result) => reloads.push([profile, result]),
    });

    credentials.set({ ...credentialsOf(webCert2), keyPem: webCert.keyPem });
    expect(reloads).toEqual([["https_web", "error"]]);
    const logged = lines.find((line) => line.code === "ERR_TLS_CONTEXT");
    expect(logged).toMatchObject({ level: 50, profile: "https_web", fingerprint: fingerprintOf(webCert2.der) });
    expect(JSON.stringify(lines)).not.toContain("PRIVATE KEY");

    const reply = await webGet(port);
    expect(reply.status).toBe(200);
    expect(reply.peer).toBe(fingerprintOf(webCert.der));

    credentials.set(credentialsOf(webCert2));
    expect(reloads).toEqual([
      ["https_web", "error"],
      ["https_web", "ok"],
    ]);
    expect((await webGet(port)).peer).toBe(fingerprintOf(webCert2.der));
  });

  it("keeps an https_spiffe connection working across an SVID rotation", async () => {
    const next = await createSvid({ issuer: domainCa, spiffeId: ENDPOINT_ID });
    const { port, credentials } = await startEndpoint({
      profile: "https_spiffe",
      credentials: createWatchedValue(credentialsOf(svid)),
    });
    const open = await spiffeConnect(port, [domainCa], ENDPOINT_ID);
    expect((await requestOver(open)).peer).toBe(fingerprintOf(svid.der));
    credentials.set(credentialsOf(next));
    expect((await requestOver(open)).peer).toBe(fingerprintOf(svid.der));
    expect((await requestOver(await spiffeConnect(port, [domainCa], ENDPOINT_ID))).peer).toBe(fingerprintOf(next.der));
  });
});

describe("lifecycle", () => {
  it("does not start with credentials TLS refuses", async () => {
    const credentials = createWatchedValue({ ...credentialsOf(webCert2), keyPem: webCert.keyPem });
    const local = createWatchedValue(bundle.current());
    const endpoint = createBundleEndpoint({
      profile: "https_web",
      listen: { host: "127.0.0.1", port: 0 },
      path: "/",
      bundle: local,
      credentials,
      timeouts: TIMEOUTS,
      logger: captureLogs().logger,
    });
    endpoints.push(endpoint);
    await expectCode(endpoint.start(), "ERR_TLS_CONTEXT");
    expect(credentials.listenerCount).toBe(0);
    expect(local.listenerCount).toBe(0);
  });

  it("reports an address it cannot bind as ERR_ENDPOINT_LISTEN", async () => {
    const blocker = createTcpServer();
    await new Promise<void>((resolve) => blocker.listen(0, "127.0.0.1", resolve));
    const port = (blocker.address() as { port: number }).port;
    try {
      await expectCode(startEndpoint({ listen: { host: "127.0.0.1", port } }), "ERR_ENDPOINT_LISTEN");
    } finally {
      await new Promise((resolve) => blocker.close(resolve));
    }
  });

  it("reports each request's profile, status and duration", async () => {
    const seen: Array<[EndpointProfile, number, number]> = [];
    const { port } = await startEndpoint({ onRequest: (...args) => seen.push(args) });
    await webGet(port);
    await webGet(port, { method: "POST" });
    expect(seen.map(([profile, status]) => [profile, status])).toEqual([
      ["https_web", 200],
      ["https_web", 405],
    ]);
    for (const [, , seconds] of seen) {
      expect(seconds).toBeGreaterThanOrEqual(0);
      expect(seconds).toBeLessThan(60);
    }
  });

  it("close() ends idle keep-alive connections, stops listening and unsubscribes", async () => {
    const local = createWatchedValue(bundle.current());
    const { endpoint, port, credentials } = await startEndpoint({ bundle: local });
    expect(local.listenerCount).toBe(1);
    expect(credentials.listenerCount).toBe(1);
    const agent = keepAliveAgent();
    const idle = (await webGet(port, { agent })).socket;
    const idleClosed = new Promise((resolve) => idle.once("close", resolve));
    expect(idle.destroyed).toBe(false);

    await endpoint.close();
    await idleClosed;
    expect(local.listenerCount).toBe(0);
    expect(credentials.listenerCount).toBe(0);
    await expect(webGet(port)).rejects.toMatchObject({ code: "ECONNREFUSED" });
    await expectCode(endpoint.start(), "ERR_ENDPOINT_CLOSED");
    await endpoint.close();
  });

  it("close() cuts connections still busy after the grace period", async () => {
    const { endpoint, port } = await startEndpoint({ closeGraceMs: 100 });
    // One stuck mid-request, one that never even starts its TLS handshake.
    const busy = await handshake(port, {});
    busy.write("GET / HTTP/1.1\r\nHost: localhost\r\n");
    const silent = tcpConnect(port, "127.0.0.1");
    sockets.push(silent);
    await new Promise((resolve) => silent.once("connect", resolve));
    const busyClosed = closed(busy);
    const silentClosed = closed(silent);

    await endpoint.close();
    await Promise.all([busyClosed, silentClosed]);
  });

  it("close() before start() resolves", async () => {
    const endpoint = createBundleEndpoint({
      profile: "https_web",
      listen: { host: "127.0.0.1", port: 0 },
      path: "/",
      bundle,
      credentials: createWatchedValue(credentialsOf(webCert)),
      timeouts: TIMEOUTS,
      logger: captureLogs().logger,
    });
    await endpoint.close();
    await expectCode(endpoint.start(), "ERR_ENDPOINT_CLOSED");
  });
});

describe("timeouts", () => {
  it("answers 408 and closes a connection whose headers do not arrive in time", async () => {
    const { port } = await startEndpoint({ timeouts: { headersMs: 300, requestMs: 600, keepAliveMs: 5000 } });
    const socket = await handshake(port, {});
    const received = closed(socket);
    socket.write("GET / HTTP/1.1\r\nHost: localhost\r\n");
    expect(await received).toMatch(/^HTTP\/1\.1 408 /);
  });

  it("closes an idle keep-alive connection after the keep-alive timeout", async () => {
    const { port } = await startEndpoint({ timeouts: { headersMs: 5000, requestMs: 10_000, keepAliveMs: 200 } });
    const socket = await handshake(port, {});
    const received = closed(socket);
    socket.write("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n");
    const response = await received;
    expect(response).toMatch(/^HTTP\/1\.1 200 /);
    expect(response).toMatch(/\r\nKeep-Alive: timeout=0\r\n|\r\nConnection: keep-alive\r\n/);
  });

  it("drops a connection that never completes its TLS handshake", async () => {
    const { port } = await startEndpoint({ timeouts: { headersMs: 300, requestMs: 600, keepAliveMs: 5000 } });
    const silent = tcpConnect(port, "127.0.0.1");
    sockets.push(silent);
    await closed(silent);
  });
});
