/**
 * `bundlegate probe`: run in-process through runCli with a fake CliIo (files from a Map) against real
 * node:https servers on loopback, one presenting a Web PKI certificate and one an X509-SVID.
 */
import { X509Certificate } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer as createHttpsServer } from "node:https";
import { type AddressInfo, createServer as createTcpServer, type Server, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ProbeReport } from "../../src/federation/probe.js";
import { createTrustBundle, type TrustBundle, x509AuthorityFromCertificate } from "../../src/spiffe/bundle.js";
import { serializeSpiffeBundle } from "../../src/spiffe/codec.js";
import { serializePem } from "../../src/spiffe/pem.js";
import { createCa, createSvid, createWebCert, type Issued } from "../support/pki.js";
import { type CliRun, memoryFiles, runCapturing } from "./support/run-cli.js";

const TD = "example.org";
const ENDPOINT_ID = "spiffe://example.org/bundle-server";
const ALLOW_LOOPBACK = ["--allow-cidr", "127.0.0.0/8", "--allow-cidr", "::1/128"];

let webCa: Issued;
let domainCa: Issued;
let nextCa: Issued;
let otherCa: Issued;
let webPort: number;
let svidPort: number;
const files = new Map<string, string>();
const servers: Server[] = [];
const sockets = new Set<Socket>();

function bundleOf(cas: readonly Issued[], metadata: { sequence?: bigint; refreshHintSeconds?: number } = {}) {
  return createTrustBundle({
    x509Authorities: cas.map((ca) => x509AuthorityFromCertificate(new X509Certificate(ca.der))),
    sequence: metadata.sequence,
    refreshHintSeconds: metadata.refreshHintSeconds,
  });
}

function handler(req: IncomingMessage, res: ServerResponse): void {
  const json = (bundle: TrustBundle) => {
    res.writeHead(200, { "content-type": "application/json" });
    res.end(serializeSpiffeBundle(bundle));
  };
  if (req.url === "/") {
    json(bundleOf([domainCa], { sequence: 2n, refreshHintSeconds: 300 }));
  } else if (req.url === "/rotated") {
    json(bundleOf([domainCa, nextCa], { sequence: 3n, refreshHintSeconds: 300 }));
  } else if (req.url === "/garbage") {
    res.writeHead(200, { "content-type": "text/html" });
    res.end("<html>hello</html>");
  } else {
    res.writeHead(404);
    res.end();
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

async function serve(leaf: Issued): Promise<number> {
  const server = createHttpsServer({ cert: leaf.pem, key: leaf.keyPem }, handler);
  server.on("tlsClientError", () => undefined);
  return listen(server);
}

beforeAll(async () => {
  [webCa, domainCa, nextCa, otherCa] = await Promise.all([
    createCa({ trustDomain: "web.test", withSpiffeUri: false }),
    createCa({ trustDomain: TD }),
    createCa({ trustDomain: TD }),
    createCa({ trustDomain: TD }),
  ]);
  const [webCert, svid] = await Promise.all([
    createWebCert({ issuer: webCa, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] }),
    createSvid({ issuer: domainCa, spiffeId: ENDPOINT_ID }),
  ]);
  [webPort, svidPort] = await Promise.all([serve(webCert), serve(svid)]);
  files.set("web-ca.pem", webCa.pem);
  files.set("bundle.json", serializeSpiffeBundle(bundleOf([domainCa])));
  files.set("bundle.pem", serializePem(bundleOf([domainCa])));
  files.set("other-bundle.json", serializeSpiffeBundle(bundleOf([otherCa])));
  files.set("previous-seq2.json", serializeSpiffeBundle(bundleOf([domainCa], { sequence: 2n })));
  files.set("previous-seq7.json", serializeSpiffeBundle(bundleOf([domainCa], { sequence: 7n })));
  files.set("broken.json", '{"keys": [], "keys": []}');
});

afterAll(async () => {
  for (const socket of sockets) socket.destroy();
  await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
});

function run(args: readonly string[], env: Record<string, string> = {}): Promise<CliRun> {
  return runCapturing(["probe", ...args], {
    readFile: memoryFiles(files),
    readStdin: async () => {
      throw new Error("stdin was not expected to be read");
    },
    // The servers' certificates are made around the real time, and Node checks Web PKI against it.
    now: () => new Date(),
    env,
  });
}

const webUrl = (path = "/") => `https://127.0.0.1:${webPort}${path}`;
const svidUrl = (path = "/") => `https://127.0.0.1:${svidPort}${path}`;
const webArgs = (path = "/") => [webUrl(path), "--trust-domain", TD, "--profile", "https_web", "--ca", "web-ca.pem"];
const spiffeArgs = (path = "/") => [
  svidUrl(path),
  "--trust-domain",
  TD,
  "--profile",
  "https_spiffe",
  "--endpoint-id",
  ENDPOINT_ID,
  "--bundle",
  "bundle.json",
];

describe("exit 0: fetched, usable, not rejected", () => {
  it("https_web prints the endpoint, bundle and decision sections", async () => {
    const { code, stdout, stderr } = await run([...webArgs(), ...ALLOW_LOOPBACK]);
    expect(stderr).toBe("");
    expect(code).toBe(0);
    expect(stdout).toMatch(/^endpoint$/m);
    expect(stdout).toMatch(/^ {2}final url: +https:\/\/127\.0\.0\.1:\d+\/$/m);
    expect(stdout).toMatch(/^ {2}redirects: +none$/m);
    expect(stdout).toMatch(new RegExp(`^ {2}peer address: +127\\.0\\.0\\.1:${webPort}$`, "m"));
    expect(stdout).toMatch(/^ {2}subject: +CN=localhost$/m);
    expect(stdout).toMatch(/^ {2}URI SANs: +\(none\)$/m);
    expect(stdout).toMatch(/^ {2}DNS SANs: +localhost$/m);
    expect(stdout).toMatch(/^ {2}leaf notAfter: +\d{4}-/m);
    expect(stdout).toMatch(/^ {2}chain: +\[1\] CN=localhost, notAfter \d{4}-/m);
    expect(stdout).toMatch(/^ {2}chain expiry: +\d{4}-/m);
    expect(stdout).toMatch(/^bundle$/m);
    expect(stdout).toMatch(/^ {2}sequence: +2$/m);
    expect(stdout).toMatch(/^ {2}refresh hint: +300s$/m);
    expect(stdout).toMatch(/^ {2}trust domain: +example\.org$/m);
    expect(stdout).toMatch(/^decision$/m);
    expect(stdout).toMatch(/^ {2}kind: +accept \(as a first bundle: no --previous\)$/m);
    expect(stdout).toMatch(/^ {4}FIRST_BUNDLE: first bundle, 1 authority$/m);
    expect(stdout).toMatch(/^result: ok$/m);
  });

  it("https_spiffe with a PEM --bundle", async () => {
    const args = spiffeArgs().map((arg) => (arg === "bundle.json" ? "bundle.pem" : arg));
    const { code, stdout } = await run([...args, ...ALLOW_LOOPBACK]);
    expect(code).toBe(0);
    expect(stdout).toMatch(new RegExp(`^ {2}URI SANs: +${ENDPOINT_ID}$`, "m"));
    expect(stdout).toContain(`https_spiffe (${ENDPOINT_ID})`);
  });

  it("--previous with a rotation: accepted", async () => {
    const { code, stdout } = await run([
      ...spiffeArgs("/rotated"),
      ...ALLOW_LOOPBACK,
      "--previous",
      "previous-seq2.json",
    ]);
    expect(code).toBe(0);
    expect(stdout).toMatch(/^ {2}kind: +accept \(against --previous\)$/m);
    expect(stdout).toMatch(/^ {4}AUTHORITIES_ADDED: 1 authority added$/m);
  });

  it("--json prints the report", async () => {
    const { code, stdout } = await run([...spiffeArgs(), ...ALLOW_LOOPBACK, "--json"]);
    expect(code).toBe(0);
    const report = JSON.parse(stdout) as ProbeReport;
    expect(Object.keys(report).sort()).toEqual(
      [
        "decision",
        "durationMs",
        "endpointSpiffeId",
        "finalUrl",
        "inspection",
        "ok",
        "peer",
        "profile",
        "redirects",
        "trustDomain",
        "url",
      ].sort(),
    );
    expect(report).toMatchObject({
      ok: true,
      url: svidUrl(),
      profile: "https_spiffe",
      endpointSpiffeId: ENDPOINT_ID,
      trustDomain: TD,
      redirects: [],
      peer: { address: "127.0.0.1", port: svidPort, uriSans: [ENDPOINT_ID] },
      inspection: { trustDomain: TD, sequence: "2", refreshHintSeconds: 300, usable: true },
      decision: { kind: "accept", against: "none", reasons: [{ code: "FIRST_BUNDLE" }] },
    });
  });
});

describe("exit 1: the probe failed, with the error code and a hint", () => {
  const failed = async (args: string[]) => {
    const result = await run(args);
    expect(result.code).toBe(1);
    expect(result.stdout).toMatch(/^result: FAILED$/m);
    const error = /^error: (\S+): (.*)$/m.exec(result.stderr);
    const hint = /^hint: (.*)$/m.exec(result.stderr);
    return { ...result, errorCode: error?.[1], hint: hint?.[1] };
  };

  it("https_web against an SVID: did you mean https_spiffe, with the ID", async () => {
    const { errorCode, hint, stdout } = await failed([
      svidUrl(),
      "--trust-domain",
      TD,
      "--profile",
      "https_web",
      ...ALLOW_LOOPBACK,
    ]);
    expect(errorCode).toBe("ERR_FETCH_TLS_UNTRUSTED");
    expect(hint).toBe(
      `the endpoint presents a SPIFFE ID (${ENDPOINT_ID}): did you mean --profile https_spiffe --endpoint-id ` +
        `${ENDPOINT_ID} --bundle FILE (with FILE the bundle of ${TD})?`,
    );
    expect(stdout).toContain("presented (unverified: read on a diagnostic handshake that sent no request)");
    expect(stdout).toMatch(new RegExp(`^ {2}URI SANs: +${ENDPOINT_ID}$`, "m"));
  });

  it("a wrong --endpoint-id: the hint names the ID presented", async () => {
    const args = spiffeArgs().map((arg) => (arg === ENDPOINT_ID ? "spiffe://example.org/other" : arg));
    const { errorCode, hint } = await failed([...args, ...ALLOW_LOOPBACK]);
    expect(errorCode).toBe("ERR_FETCH_SVID_WRONG_ID");
    expect(hint).toContain(`the endpoint presents ${ENDPOINT_ID}`);
    expect(hint).toContain(`pass --endpoint-id ${ENDPOINT_ID}`);
  });

  it("a --bundle the SVID does not chain to", async () => {
    const args = spiffeArgs().map((arg) => (arg === "bundle.json" ? "other-bundle.json" : arg));
    const { errorCode, hint } = await failed([...args, ...ALLOW_LOOPBACK]);
    expect(errorCode).toBe("ERR_FETCH_SVID_UNTRUSTED");
    expect(hint).toContain(
      "the SVID does not chain to the bundle given with --bundle: is it the partner's current bundle?",
    );
  });

  it("loopback without --allow-cidr", async () => {
    const { errorCode, hint } = await failed(webArgs());
    expect(errorCode).toBe("ERR_FETCH_SSRF_BLOCKED");
    expect(hint).toContain("a loopback address, which bundlegate refuses by default; pass --allow-cidr 127.0.0.1/32");
  });

  it("404: a status hint", async () => {
    const { errorCode, hint, stdout } = await failed([...webArgs("/nothing-here"), ...ALLOW_LOOPBACK]);
    expect(errorCode).toBe("ERR_FETCH_STATUS");
    expect(hint).toContain("nothing is served at /nothing-here (404)");
    expect(stdout).toMatch(/^ {2}failed at: +https:\/\/127\.0\.0\.1:\d+\/nothing-here$/m);
  });

  it("a body that is not a bundle", async () => {
    const { errorCode, hint } = await failed([...webArgs("/garbage"), ...ALLOW_LOOPBACK]);
    expect(errorCode).toBe("ERR_BUNDLE_NOT_JSON");
    expect(hint).toMatch(/^the server answered but not with a valid SPIFFE bundle/);
  });

  it("--previous with a higher sequence: a rollback, rejected", async () => {
    const { errorCode, hint, stdout } = await failed([
      ...webArgs(),
      ...ALLOW_LOOPBACK,
      "--previous",
      "previous-seq7.json",
    ]);
    expect(errorCode).toBe("ERR_PROBE_REJECTED");
    expect(stdout).toMatch(/^ {2}kind: +reject \(against --previous\)$/m);
    expect(stdout).toMatch(/^ {4}SEQUENCE_ROLLBACK: spiffe_sequence went backwards from 7 to 2$/m);
    expect(hint).toContain("older than the previous bundle's 7");
  });

  it("--json on failure: the report with its error, and the error line on stderr", async () => {
    const { code, stdout, stderr } = await run([...webArgs(), "--json"]);
    expect(code).toBe(1);
    const report = JSON.parse(stdout) as ProbeReport;
    expect(report).toMatchObject({ ok: false, redirects: [], error: { code: "ERR_FETCH_SSRF_BLOCKED" } });
    expect(report.error?.hint).toContain("--allow-cidr");
    expect(report.peer).toBeUndefined();
    expect(stderr).toMatch(/^error: ERR_FETCH_SSRF_BLOCKED: /m);
  });

  it("HTTPS_PROXY from the environment is used, and --proxy direct skips it", async () => {
    const server = createTcpServer();
    const port = await listen(server);
    await new Promise<void>((resolve) => server.close(() => resolve()));
    const env = { HTTPS_PROXY: `http://127.0.0.1:${port}` };
    const proxied = await run([...webArgs(), ...ALLOW_LOOPBACK], env);
    expect(proxied.code).toBe(1);
    expect(proxied.stderr).toMatch(/^error: ERR_FETCH_PROXY: /m);
    expect(proxied.stderr).toMatch(/^hint: .*--proxy direct/m);
    const direct = await run([...webArgs(), ...ALLOW_LOOPBACK, "--proxy", "direct"], env);
    expect(direct.code).toBe(0);
  });
});

describe("exit 2: usage errors", () => {
  // Fixed URLs: the table is built before the servers listen, and none of these fetch anything.
  const WEB_USAGE = ["https://127.0.0.1/", "--trust-domain", TD, "--profile", "https_web", "--ca", "web-ca.pem"];
  const SPIFFE_USAGE = [
    "https://127.0.0.1/",
    "--trust-domain",
    TD,
    "--profile",
    "https_spiffe",
    "--endpoint-id",
    ENDPOINT_ID,
    "--bundle",
    "bundle.json",
  ];
  it.each<[string, string[], RegExp]>([
    ["no --trust-domain", ["https://127.0.0.1/", "--profile", "https_web"], /--trust-domain/],
    ["no --profile", ["https://127.0.0.1/", "--trust-domain", TD], /--profile/],
    ["an unknown --profile", ["https://127.0.0.1/", "--trust-domain", TD, "--profile", "https"], /https_web/],
    [
      "a bad --trust-domain",
      ["https://127.0.0.1/", "--trust-domain", "Example.org", "--profile", "https_web"],
      /^--trust-domain: ERR_PROBE_USAGE: /m,
    ],
    ["an http URL", ["http://127.0.0.1/", "--trust-domain", TD, "--profile", "https_web"], /^URL: ERR_PROBE_USAGE: /m],
    [
      "https_spiffe without --endpoint-id",
      ["https://127.0.0.1/", "--trust-domain", TD, "--profile", "https_spiffe", "--bundle", "bundle.json"],
      /^--endpoint-id: ERR_PROBE_USAGE: /m,
    ],
    [
      "https_spiffe without --bundle",
      ["https://127.0.0.1/", "--trust-domain", TD, "--profile", "https_spiffe", "--endpoint-id", ENDPOINT_ID],
      /^--bundle: ERR_PROBE_USAGE: /m,
    ],
    [
      "--ca with https_spiffe",
      [...SPIFFE_USAGE, "--ca", "web-ca.pem"],
      /^--ca: ERR_PROBE_USAGE: a CA file is for https_web only/m,
    ],
    ["an unreadable --bundle", [...SPIFFE_USAGE.slice(0, -1), "missing.json"], /^--bundle: ERR_FILE_UNREADABLE: /m],
    [
      "an invalid --previous",
      [...WEB_USAGE, "--previous", "broken.json"],
      /^--previous: ERR_BUNDLE_DUPLICATE_MEMBER: /m,
    ],
    ["a bad --allow-cidr", [...WEB_USAGE, "--allow-cidr", "localhost"], /^--allow-cidr: ERR_PROBE_USAGE: /m],
    ["a bad --timeout-ms", [...WEB_USAGE, "--timeout-ms", "soon"], /--timeout-ms/],
    ["a bad --proxy", [...WEB_USAGE, "--proxy", "socks5://proxy.test"], /^--proxy: ERR_PROBE_USAGE: /m],
  ])("%s", async (_name, args, stderr) => {
    const result = await run(args);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe("");
    expect(result.stderr).toMatch(stderr);
  });

  it("HTTPS_PROXY and https_proxy set to different values", async () => {
    const result = await run(webArgs(), { HTTPS_PROXY: "http://a.test:3128", https_proxy: "http://b.test:3128" });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/^HTTPS_PROXY: ERR_PROBE_USAGE: differs from https_proxy/m);
  });
});
