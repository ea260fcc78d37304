/**
 * probeEndpoint against real node:https servers on loopback, with certificates made in the test and the real
 * fetcher: what a probe reports when everything passes, and the code and hint of each way it fails.
 * Names resolve through an injected table, so "partner.test" reaches 127.0.0.1 without the machine's resolver.
 */
import { X509Certificate } from "node:crypto";
import type * as dns from "node:dns";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { type AddressInfo, createServer as createTcpServer, isIP, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createBundleFetcher } from "../../src/federation/fetcher/index.js";
import {
  createPeerDiagnosis,
  isProbeUsageError,
  type ProbeDependencies,
  type ProbeInput,
  type ProbeReport,
  probeEndpoint,
} from "../../src/federation/probe.js";
import { createTrustBundle, type TrustBundle, x509AuthorityFromCertificate } from "../../src/spiffe/bundle.js";
import { serializeSpiffeBundle } from "../../src/spiffe/codec.js";
import { createCa, createSvid, createWebCert, type Issued, pemChain } from "../support/pki.js";

const TD = "example.org";
const ENDPOINT_ID = "spiffe://example.org/bundle-server";
const LOOPBACK = ["127.0.0.0/8", "::1/128"];

let webCa: Issued;
let domainCa: Issued;
let nextCa: Issued;
let otherCa: Issued;
let foreignCa: Issued;
let authorities: TrustBundle;
let current: TrustBundle;

interface TestServer {
  readonly port: number;
  /** Requests that reached HTTP, i.e. passed TLS: a diagnostic handshake must never add one. */
  readonly requests: string[];
  url(path?: string, host?: string): string;
}

let webServer: TestServer;
let wrongNameServer: TestServer;
let svidServer: TestServer;
const servers: Server[] = [];
const sockets = new Set<Socket>();

function bundleOf(cas: readonly Issued[], metadata: { sequence?: bigint; refreshHintSeconds?: number } = {}) {
  return createTrustBundle({
    x509Authorities: cas.map((ca) => x509AuthorityFromCertificate(new X509Certificate(ca.der))),
    sequence: metadata.sequence,
    refreshHintSeconds: metadata.refreshHintSeconds,
  });
}

/** Every server answers the same paths, so each profile meets each kind of answer. */
function route(port: number, req: IncomingMessage, res: ServerResponse): void {
  const json = (bundle: TrustBundle) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(serializeSpiffeBundle(bundle));
  };
  switch (req.url) {
    case "/":
      json(current);
      return;
    case "/rotated":
      json(bundleOf([domainCa, nextCa], { sequence: 3n, refreshHintSeconds: 300 }));
      return;
    case "/foreign":
      json(bundleOf([domainCa, foreignCa], { sequence: 3n }));
      return;
    case "/empty":
      json(createTrustBundle({ sequence: 4n }));
      return;
    case "/garbage":
      res.writeHead(200, { "content-type": "text/html" });
      res.end("<html><body>Welcome to nginx!</body></html>");
      return;
    case "/to-http":
      res.writeHead(302, { location: `http://127.0.0.1:${port}/` });
      res.end();
      return;
    case "/forbidden":
      res.writeHead(403);
      res.end();
      return;
    case "/down":
      res.writeHead(503);
      res.end();
      return;
    default:
      res.writeHead(404);
      res.end("not found");
  }
}

async function listen(server: Server): Promise<number> {
  servers.push(server);
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  return (server.address() as AddressInfo).port;
}

async function serveHttps(certs: Issued[]): Promise<TestServer> {
  const requests: string[] = [];
  let port = 0;
  const server = createHttpsServer({ cert: pemChain(...certs), key: certs[0]!.keyPem }, (req, res) => {
    requests.push(req.url ?? "");
    route(port, req, res);
  });
  // Clients that refuse the certificate abort the handshake; that is what several tests are about.
  server.on("tlsClientError", () => undefined);
  port = await listen(server);
  return { port, requests, url: (path = "/", host = "127.0.0.1") => `https://${host}:${port}${path}` };
}

/** A lookup answering from a table; names not in it fail like getaddrinfo does. */
function staticLookup(table: Record<string, string>): typeof dns.lookup {
  const lookup = (hostname: string, options: unknown, callback?: unknown) => {
    const done = (typeof options === "function" ? options : callback) as (
      error: NodeJS.ErrnoException | null,
      address: string | dns.LookupAddress[],
      family?: number,
    ) => void;
    const all = typeof options === "object" && options !== null && (options as dns.LookupOptions).all === true;
    setImmediate(() => {
      const address = table[hostname];
      if (address === undefined) {
        done(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: "ENOTFOUND" }), all ? [] : "");
        return;
      }
      if (all) done(null, [{ address, family: isIP(address) }]);
      else done(null, address, isIP(address));
    });
  };
  return lookup as unknown as typeof dns.lookup;
}

const LOOKUP = staticLookup({ "partner.test": "127.0.0.1", "metadata.test": "169.254.169.254" });

function deps(extra: Partial<ProbeDependencies> = {}): ProbeDependencies {
  const now = new Date();
  return {
    fetcher: createBundleFetcher({
      maxBytes: 64 * 1024,
      connectTimeoutMs: 5_000,
      headersTimeoutMs: 5_000,
      totalTimeoutMs: 10_000,
      maxRedirects: 3,
      lookup: LOOKUP,
      now: () => now,
    }),
    now,
    diagnose: createPeerDiagnosis({ connectTimeoutMs: 5_000, lookup: LOOKUP }),
    ...extra,
  };
}

const web = (url: string, extra: Partial<ProbeInput> = {}): ProbeInput => ({
  url,
  trustDomain: TD,
  profile: "https_web",
  caPem: webCa.pem,
  allowedCidrs: LOOPBACK,
  ...extra,
});

const spiffe = (url: string, extra: Partial<ProbeInput> = {}): ProbeInput => ({
  url,
  trustDomain: TD,
  profile: "https_spiffe",
  endpointSpiffeId: ENDPOINT_ID,
  bundle: authorities,
  allowedCidrs: LOOPBACK,
  ...extra,
});

beforeAll(async () => {
  [webCa, domainCa, nextCa, otherCa, foreignCa] = await Promise.all([
    createCa({ trustDomain: "web.test", withSpiffeUri: false }),
    createCa({ trustDomain: TD }),
    createCa({ trustDomain: TD }),
    createCa({ trustDomain: TD }),
    createCa({ trustDomain: "other.org" }),
  ]);
  authorities = bundleOf([domainCa]);
  current = bundleOf([domainCa], { sequence: 2n, refreshHintSeconds: 300 });
  const [webCert, wrongNameCert, svid] = await Promise.all([
    createWebCert({ issuer: webCa, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] }),
    createWebCert({ issuer: webCa, dnsNames: ["bundles.partner.example"] }),
    // Like bundlegate dev's SVID: DNS and IP names as well, so a Web PKI client checking it against the
    // bundle's CA gets past the host name and only the profile is wrong.
    createSvid({ issuer: domainCa, spiffeId: ENDPOINT_ID, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] }),
  ]);
  [webServer, wrongNameServer, svidServer] = await Promise.all([
    serveHttps([webCert]),
    serveHttps([wrongNameCert]),
    serveHttps([svid]),
  ]);
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
});

/** The report survives JSON unchanged: no bigint, Buffer, Map or undefined member in it. */
function expectPlainJson(report: ProbeReport): void {
  expect(JSON.parse(JSON.stringify(report))).toEqual(report);
}

describe("a probe that passes", () => {
  it("https_web: the peer, the bundle and a first-bundle decision", async () => {
    const report = await probeEndpoint(web(webServer.url()), deps());
    expect(report).toMatchObject({
      ok: true,
      url: webServer.url(),
      finalUrl: webServer.url(),
      trustDomain: TD,
      profile: "https_web",
      redirects: [],
      peer: {
        address: "127.0.0.1",
        port: webServer.port,
        dnsSans: ["localhost"],
        uriSans: [],
        subject: "CN=localhost",
      },
      inspection: { trustDomain: TD, sequence: "2", refreshHintSeconds: 300, x509AuthorityCount: 1, usable: true },
      decision: { kind: "accept", against: "none", reasons: [{ code: "FIRST_BUNDLE" }] },
    });
    expect(report.error).toBeUndefined();
    expect(report.presentedPeer).toBeUndefined();
    // Node links the trusted root to the chain it verified, so the root's expiry shows too.
    expect(report.peer?.chain.map((entry) => entry.subject)).toEqual(["CN=localhost", "O=web.test"]);
    expect(report.peer?.notAfter).toMatch(/^\d{4}-\d\d-\d\dT/);
    expect(report.durationMs).toBeGreaterThanOrEqual(0);
    expectPlainJson(report);
  });

  it("https_spiffe: the SVID's SPIFFE ID is the peer's URI SAN", async () => {
    const report = await probeEndpoint(spiffe(svidServer.url()), deps());
    expect(report).toMatchObject({
      ok: true,
      profile: "https_spiffe",
      endpointSpiffeId: ENDPOINT_ID,
      peer: { uriSans: [ENDPOINT_ID] },
      inspection: { usable: true, sequence: "2" },
      decision: { kind: "accept" },
    });
    expectPlainJson(report);
  });

  it("rotation against the previous bundle: accepted, authorities added", async () => {
    const report = await probeEndpoint(spiffe(svidServer.url("/rotated"), { previous: current }), deps());
    expect(report.ok).toBe(true);
    expect(report.decision).toMatchObject({ kind: "accept", against: "previous" });
    expect(report.decision?.reasons[0]?.code).toBe("AUTHORITIES_ADDED");
  });

  it("an authority naming another trust domain is a warning, not a failure", async () => {
    const report = await probeEndpoint(web(webServer.url("/foreign")), deps());
    expect(report.ok).toBe(true);
    const warning = report.inspection?.warnings.find((w) => w.code === "WARN_AUTHORITY_OTHER_TRUST_DOMAIN");
    expect(warning?.message).toContain("spiffe://other.org");
  });
});

describe("the decision and the bundle's usability", () => {
  it("a rollback against the previous bundle is rejected, with a hint about a stale replica", async () => {
    const newer = bundleOf([domainCa], { sequence: 7n });
    const report = await probeEndpoint(web(webServer.url(), { previous: newer }), deps());
    expect(report.ok).toBe(false);
    expect(report.decision?.kind).toBe("reject");
    expect(report.decision?.reasons[0]?.code).toBe("SEQUENCE_ROLLBACK");
    expect(report.error?.code).toBe("ERR_PROBE_REJECTED");
    expect(report.error?.hint).toContain("spiffe_sequence 2, older than the previous bundle's 7");
    expect(report.inspection?.usable).toBe(true);
    expectPlainJson(report);
  });

  it("an empty bundle is read and decided, but unusable", async () => {
    const report = await probeEndpoint(web(webServer.url("/empty")), deps());
    expect(report.ok).toBe(false);
    expect(report.error?.code).toBe("ERR_PROBE_UNUSABLE");
    expect(report.decision?.reasons[0]?.code).toBe("EMPTY_BUNDLE");
    expect(report.error?.hint).toContain("revokes all its keys");
  });
});

describe("the wrong profile or identity: hints from what the server presents", () => {
  it("https_web against an SVID: did you mean https_spiffe, with the ID", async () => {
    const before = svidServer.requests.length;
    const report = await probeEndpoint(web(svidServer.url()), deps());
    expect(report.ok).toBe(false);
    expect(report.error?.code).toBe("ERR_FETCH_TLS_UNTRUSTED");
    expect(report.error?.hint).toBe(
      `the endpoint presents a SPIFFE ID (${ENDPOINT_ID}): did you mean --profile https_spiffe --endpoint-id ` +
        `${ENDPOINT_ID} --bundle FILE (with FILE the bundle of ${TD})?`,
    );
    expect(report.peer).toBeUndefined();
    expect(report.presentedPeer?.uriSans).toEqual([ENDPOINT_ID]);
    // Neither the refused fetch nor the diagnostic handshake sent a request.
    expect(svidServer.requests.length).toBe(before);
    expectPlainJson(report);
  });

  it("https_web trusting the SPIFFE CA, by a host name the SVID lacks: still the https_spiffe hint", async () => {
    const report = await probeEndpoint(web(svidServer.url("/", "partner.test"), { caPem: domainCa.pem }), deps());
    expect(report.error?.code).toBe("ERR_FETCH_TLS_HOSTNAME");
    expect(report.error?.hint).toContain(`did you mean --profile https_spiffe --endpoint-id ${ENDPOINT_ID}`);
  });

  it("a Web PKI certificate for another name: the names it carries", async () => {
    const report = await probeEndpoint(web(wrongNameServer.url()), deps());
    expect(report.error?.code).toBe("ERR_FETCH_TLS_HOSTNAME");
    expect(report.error?.hint).toContain("names bundles.partner.example, not 127.0.0.1");
  });

  it("https_web with a CA that did not issue the certificate: asks about --ca", async () => {
    const report = await probeEndpoint(web(webServer.url(), { caPem: domainCa.pem }), deps());
    expect(report.error?.code).toBe("ERR_FETCH_TLS_UNTRUSTED");
    expect(report.error?.hint).toContain("does not lead to a CA of --ca");
    expect(report.error?.hint).toContain('"CN=localhost"');
  });

  it("without a diagnosis the hint is the generic one", async () => {
    const { diagnose: _unused, ...plain } = deps();
    const report = await probeEndpoint(web(svidServer.url()), plain);
    expect(report.error?.code).toBe("ERR_FETCH_TLS_UNTRUSTED");
    expect(report.presentedPeer).toBeUndefined();
    expect(report.error?.hint).toContain("does not lead to a CA of --ca");
  });

  it("https_spiffe with the wrong endpoint ID: names the ID presented", async () => {
    const wanted = "spiffe://example.org/someone-else";
    const report = await probeEndpoint(spiffe(svidServer.url(), { endpointSpiffeId: wanted }), deps());
    expect(report.error?.code).toBe("ERR_FETCH_SVID_WRONG_ID");
    expect(report.error?.hint).toBe(
      `the endpoint presents ${ENDPOINT_ID}, not ${wanted}: if ${ENDPOINT_ID} is the partner's bundle endpoint, ` +
        `pass --endpoint-id ${ENDPOINT_ID}`,
    );
  });

  it("https_spiffe with a bundle the SVID does not chain to", async () => {
    const report = await probeEndpoint(spiffe(svidServer.url(), { bundle: bundleOf([otherCa]) }), deps());
    expect(report.error?.code).toBe("ERR_FETCH_SVID_UNTRUSTED");
    expect(report.error?.hint).toMatch(
      /^the SVID does not chain to the bundle given with --bundle: is it the partner's current bundle\?/,
    );
  });

  it("https_spiffe against a Web PKI certificate: did you mean https_web", async () => {
    const report = await probeEndpoint(spiffe(webServer.url()), deps());
    expect(report.error?.code).toBe("ERR_FETCH_SVID_INVALID");
    expect(report.error?.hint).toContain("carries no SPIFFE ID (it names localhost)");
    expect(report.error?.hint).toContain("did you mean --profile https_web?");
  });
});

describe("network, HTTP and body failures", () => {
  it("a loopback address without an allowed CIDR: suggests --allow-cidr", async () => {
    const before = webServer.requests.length;
    const report = await probeEndpoint(web(webServer.url(), { allowedCidrs: [] }), deps());
    expect(report.ok).toBe(false);
    expect(report.error?.code).toBe("ERR_FETCH_SSRF_BLOCKED");
    expect(report.error?.hint).toBe(
      "127.0.0.1, a loopback address, which bundlegate refuses by default; pass --allow-cidr 127.0.0.1/32 if the " +
        "partner really lives there (allowed_cidrs on a relationship)",
    );
    expect(webServer.requests.length).toBe(before);
  });

  it("a name resolving to loopback says what it resolves to", async () => {
    const report = await probeEndpoint(web(webServer.url("/", "partner.test"), { allowedCidrs: [] }), deps());
    expect(report.error?.code).toBe("ERR_FETCH_SSRF_BLOCKED");
    expect(report.error?.hint).toContain("partner.test resolves to 127.0.0.1, a loopback address");
  });

  it("a metadata address is never suggested for allowing", async () => {
    const report = await probeEndpoint(web("https://metadata.test/"), deps());
    expect(report.error?.code).toBe("ERR_FETCH_SSRF_BLOCKED");
    expect(report.error?.hint).toContain("cloud metadata service address");
    expect(report.error?.hint).not.toContain("--allow-cidr");
  });

  it.each([
    ["/missing", "nothing is served at /missing (404)"],
    ["/forbidden", "refuses this client (403)"],
    ["/down", "a gateway or load balancer in front of the endpoint answered 503"],
  ])("status: %s", async (path, hint) => {
    const report = await probeEndpoint(web(webServer.url(path)), deps());
    expect(report.error?.code).toBe("ERR_FETCH_STATUS");
    expect(report.error?.hint).toContain(hint);
  });

  it("a redirect to plain http", async () => {
    const report = await probeEndpoint(web(webServer.url("/to-http")), deps());
    expect(report.error?.code).toBe("ERR_FETCH_REDIRECT_INSECURE");
    expect(report.error?.hint).toContain(`redirects to plain http (http://127.0.0.1:${webServer.port}/)`);
  });

  it("a body that is not a bundle: the verified peer and a bundle error", async () => {
    const report = await probeEndpoint(web(webServer.url("/garbage")), deps());
    expect(report.ok).toBe(false);
    expect(report.error?.code).toBe("ERR_BUNDLE_NOT_JSON");
    expect(report.error?.hint).toMatch(/^the server answered but not with a valid SPIFFE bundle: it looks like HTML/);
    expect(report.peer?.dnsSans).toEqual(["localhost"]);
    expect(report.inspection).toBeUndefined();
    expect(report.decision).toBeUndefined();
  });

  it("nothing listening: the port", async () => {
    const server = createTcpServer();
    const port = await listen(server);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const report = await probeEndpoint(web(`https://127.0.0.1:${port}/`), deps());
    expect(report.error?.code).toBe("ERR_FETCH_CONNECT");
    expect(report.error?.hint).toContain(`nothing accepts connections at 127.0.0.1:${port}`);
  });

  it("a name that does not resolve", async () => {
    const report = await probeEndpoint(web("https://nowhere.test/"), deps());
    expect(report.error?.code).toBe("ERR_FETCH_DNS");
    expect(report.error?.hint).toContain("nowhere.test does not resolve (ENOTFOUND)");
  });
});

describe("the diagnostic handshake", () => {
  it("describes the certificate without sending a request", async () => {
    const diagnose = createPeerDiagnosis({ connectTimeoutMs: 5_000 });
    const before = svidServer.requests.length;
    const peer = await diagnose({ url: svidServer.url(), allowedCidrs: LOOPBACK });
    expect(peer?.uriSans).toEqual([ENDPOINT_ID]);
    expect(svidServer.requests.length).toBe(before);
  });

  it("obeys the SSRF guard and never goes around a proxy", async () => {
    const direct = createPeerDiagnosis({ connectTimeoutMs: 5_000 });
    expect(await direct({ url: svidServer.url(), allowedCidrs: [] })).toBeUndefined();
    const proxied = createPeerDiagnosis({ connectTimeoutMs: 5_000, httpsProxy: "http://127.0.0.1:9" });
    expect(await proxied({ url: svidServer.url(), allowedCidrs: LOOPBACK })).toBeUndefined();
    expect(await proxied({ url: svidServer.url(), allowedCidrs: LOOPBACK, proxy: "direct" })).toBeDefined();
  });
});

describe("unusable input is refused before anything is fetched", () => {
  // Thunks: the certificates and bundles exist only once beforeAll has run.
  it.each<[string, () => { [K in keyof ProbeInput]?: ProbeInput[K] | undefined }, keyof ProbeInput]>([
    ["an invalid trust domain", () => ({ trustDomain: "Example.org" }), "trustDomain"],
    ["a SPIFFE ID as trust domain", () => ({ trustDomain: "spiffe://example.org" }), "trustDomain"],
    ["an http URL", () => ({ url: "http://127.0.0.1/" }), "url"],
    ["an unknown profile", () => ({ profile: "https" as ProbeInput["profile"] }), "profile"],
    [
      "https_spiffe without endpoint ID",
      () => ({ profile: "https_spiffe", caPem: undefined, bundle: current }),
      "endpointSpiffeId",
    ],
    [
      "https_spiffe without bundle",
      () => ({ profile: "https_spiffe", caPem: undefined, endpointSpiffeId: ENDPOINT_ID }),
      "bundle",
    ],
    [
      "https_spiffe with an endpoint ID without path",
      () => ({ profile: "https_spiffe", caPem: undefined, endpointSpiffeId: "spiffe://example.org", bundle: current }),
      "endpointSpiffeId",
    ],
    [
      "https_spiffe with an empty bundle",
      () => ({ profile: "https_spiffe", caPem: undefined, endpointSpiffeId: ENDPOINT_ID, bundle: createTrustBundle() }),
      "bundle",
    ],
    [
      "a CA file with https_spiffe",
      () => ({ profile: "https_spiffe", endpointSpiffeId: ENDPOINT_ID, bundle: current }),
      "caPem",
    ],
    ["an endpoint ID with https_web", () => ({ endpointSpiffeId: ENDPOINT_ID }), "endpointSpiffeId"],
    ["a bundle with https_web", () => ({ bundle: current }), "bundle"],
    ["a CA file without certificates", () => ({ caPem: "not a pem" }), "caPem"],
    ["a bad CIDR", () => ({ allowedCidrs: ["127.0.0.0/99"] }), "allowedCidrs"],
    ["a bad proxy", () => ({ proxy: "ftp://proxy.test" }), "proxy"],
  ])("%s", async (_name, change, field) => {
    const input = { ...web(webServer.url()), ...change() } as ProbeInput;
    const cleaned = Object.fromEntries(Object.entries(input).filter(([, value]) => value !== undefined)) as ProbeInput;
    const before = webServer.requests.length;
    const error = await probeEndpoint(cleaned, deps()).then(
      () => undefined,
      (caught: unknown) => caught,
    );
    expect(isProbeUsageError(error)).toBe(true);
    expect(error).toMatchObject({ code: "ERR_PROBE_USAGE", field });
    expect(webServer.requests.length).toBe(before);
  });
});
