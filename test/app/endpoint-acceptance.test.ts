/**
 * Acceptance of issue 3 (the bundle endpoint), against the whole app: `startApp` with a config read by the
 * real loader, both profiles on two listeners, the embedded store with a snapshot file, certificates and
 * the bundle in watched files of a temporary directory, and real TLS clients for each profile.
 */
import { X509Certificate } from "node:crypto";
import { mkdtemp, rename, rm, writeFile } from "node:fs/promises";
import { Agent } from "node:https";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { performance } from "node:perf_hooks";
import type { TLSSocket } from "node:tls";
import { afterAll, afterEach, beforeAll, describe, expect, it, type TestContext } from "vitest";
import { type RunningApp, startApp } from "../../src/app.js";
import { systemClock } from "../../src/clock.js";
import { parseConfig } from "../../src/config/load.js";
import type { BundlegateConfig } from "../../src/config/types.js";
import { createLogger } from "../../src/logging.js";
import { createTrustBundle, type TrustBundle, x509AuthorityFromCertificate } from "../../src/spiffe/bundle.js";
import { parseSpiffeBundle, serializeSpiffeBundle } from "../../src/spiffe/codec.js";
import { eventually } from "../support/eventually.js";
import {
  fingerprintOf,
  type HttpsReply,
  requestOver,
  type SendOptions,
  spiffeConnect,
  spiffeRequest,
  webRequest,
} from "../support/https-client.js";
import { createCa, createSvid, createWebCert, type Issued } from "../support/pki.js";

const TRUST_DOMAIN = "example.org";
const ENDPOINT_ID = `spiffe://${TRUST_DOMAIN}/bundlegate`;
/** The acceptance bound for a replaced file to be served. */
const SEEN_WITHIN_MS = 2000;
const DAY_MS = 24 * 60 * 60 * 1000;

type LogLine = Record<string, unknown> & { level: number; msg: string; code?: string };

interface Fixture {
  readonly dir: string;
  readonly config: BundlegateConfig;
  readonly app: RunningApp;
  readonly logs: LogLine[];
  readonly file: (name: "bundle.json" | "web.pem" | "web.key" | "svid.pem" | "svid.key") => string;
  /** What a partner holds: the trust bundle it verifies the `https_spiffe` endpoint's SVID against. */
  readonly trustBundle: TrustBundle;
}

let webCa: Issued;
let domainCa: Issued;
let domainCa2: Issued;
let otherDomainCa: Issued;
let webCert: Issued;
let svid: Issued;

const dirs: string[] = [];
const apps: RunningApp[] = [];
const agents: Agent[] = [];
const sockets: TLSSocket[] = [];

beforeAll(async () => {
  [webCa, domainCa, domainCa2, otherDomainCa] = await Promise.all([
    createCa({ trustDomain: "web.test", withSpiffeUri: false }),
    createCa({ trustDomain: TRUST_DOMAIN }),
    createCa({ trustDomain: TRUST_DOMAIN }),
    createCa({ trustDomain: "other.test" }),
  ]);
  [webCert, svid] = await Promise.all([newWebCert(), newSvid()]);
});

afterEach(async () => {
  for (const agent of agents.splice(0)) agent.destroy();
  for (const socket of sockets.splice(0)) socket.destroy();
  await Promise.all(apps.splice(0).map((app) => app.stop()));
});

afterAll(async () => {
  await Promise.all(dirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
});

function newWebCert(): Promise<Issued> {
  return createWebCert({ issuer: webCa, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
}

function newSvid(options: { spiffeId?: string; notBefore?: Date; notAfter?: Date } = {}): Promise<Issued> {
  return createSvid({ issuer: domainCa, spiffeId: ENDPOINT_ID, ...options });
}

function bundleOf(cas: readonly Issued[], sequence?: bigint): TrustBundle {
  return createTrustBundle({
    x509Authorities: cas.map((ca) => x509AuthorityFromCertificate(new X509Certificate(ca.der))),
    sequence,
  });
}

function bundleJson(cas: readonly Issued[], sequence?: bigint): string {
  return `${serializeSpiffeBundle(bundleOf(cas, sequence), { indent: 2 })}\n`;
}

/** Replaces a file the way deployment tools do: write a temporary file beside it, then rename it over. */
async function replaceFile(path: string, content: string): Promise<void> {
  const temporary = `${path}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  await writeFile(temporary, content, { mode: 0o600 });
  await rename(temporary, path);
}

async function startFixture(): Promise<Fixture> {
  const dir = await mkdtemp(join(tmpdir(), "bundlegate-acceptance-"));
  dirs.push(dir);
  const file: Fixture["file"] = (name) => join(dir, name);
  await Promise.all([
    writeFile(file("bundle.json"), bundleJson([domainCa])),
    writeFile(file("web.pem"), webCert.pem),
    writeFile(file("web.key"), webCert.keyPem, { mode: 0o600 }),
    writeFile(file("svid.pem"), svid.pem),
    writeFile(file("svid.key"), svid.keyPem, { mode: 0o600 }),
  ]);
  // JSON is YAML: the config goes through the same loader (defaults, validation, paths) as a config file.
  const config = parseConfig(
    JSON.stringify({
      trust_domain: TRUST_DOMAIN,
      file_poll_interval_ms: 500,
      local_bundle: { file: "bundle.json" },
      endpoint: {
        https_web: { listen: { host: "127.0.0.1", port: 0 }, cert_file: "web.pem", key_file: "web.key" },
        https_spiffe: {
          listen: { host: "127.0.0.1", port: 0 },
          endpoint_spiffe_id: ENDPOINT_ID,
          svid_file: "svid.pem",
          svid_key_file: "svid.key",
        },
      },
      internal: { listen: { host: "127.0.0.1", port: 0 } },
      metrics: { listen: { host: "127.0.0.1", port: 0 } },
      store: { kind: "embedded", snapshot_file: "state/snapshot.json" },
    }),
    { baseDir: dir, env: {}, source: "endpoint acceptance test" },
  );
  const { app, logs } = await startWithLogs(config);
  return { dir, config, app, logs, file, trustBundle: bundleOf([domainCa]) };
}

async function startWithLogs(config: BundlegateConfig): Promise<{ app: RunningApp; logs: LogLine[] }> {
  const logs: LogLine[] = [];
  const logger = createLogger({ level: "info", name: "acceptance" }, { write: (line) => logs.push(JSON.parse(line)) });
  const app = await startApp(config, { logger, clock: systemClock });
  apps.push(app);
  return { app, logs };
}

function webPort(app: RunningApp): number {
  return app.addresses.httpsWeb!.port;
}

function spiffePort(app: RunningApp): number {
  return app.addresses.httpsSpiffe!.port;
}

/** An `https_web` client: trusts the test web CA only and checks the host name "localhost". */
function webGet(fixture: Fixture, options: SendOptions = {}): Promise<HttpsReply> {
  return webRequest({ ca: webCa.pem, servername: "localhost", ...options, port: webPort(fixture.app) });
}

/** An `https_spiffe` client holding the trust domain's bundle and expecting the endpoint SPIFFE ID. */
function spiffeGet(fixture: Fixture, options: SendOptions = {}): Promise<HttpsReply> {
  return spiffeRequest(
    { port: spiffePort(fixture.app), bundle: fixture.trustBundle, endpointSpiffeId: ENDPOINT_ID },
    options,
  );
}

function keepAliveAgent(): Agent {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  agents.push(agent);
  return agent;
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** The sum of a metric's series whose labels include `labels`, read from the app's registry. */
async function metricValue(app: RunningApp, name: string, labels: Record<string, string>): Promise<number> {
  const metric = app.metrics.registry.getSingleMetric(name);
  if (metric === undefined) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values
    .filter((value) => Object.entries(labels).every(([key, expected]) => value.labels[key] === expected))
    .reduce((sum, value) => sum + value.value, 0);
}

function sequenceOf(reply: HttpsReply): bigint | undefined {
  return parseSpiffeBundle(reply.body).bundle.sequence;
}

describe("fetching the bundle over real TLS", () => {
  it("serves the local bundle in both profiles at once, each on its own listener", async () => {
    const fixture = await startFixture();
    const { app } = fixture;
    const { httpsWeb, httpsSpiffe, internal } = app.addresses;
    expect(httpsWeb?.port).toBeGreaterThan(0);
    expect(httpsSpiffe?.port).toBeGreaterThan(0);
    expect(new Set([httpsWeb?.port, httpsSpiffe?.port, internal.port]).size).toBe(3);
    const served = app.localBundle.current();

    // https_web: Web PKI against the test CA, host name verified.
    const web = await webGet(fixture);
    expect(web.status).toBe(200);
    expect(web.peer).toBe(fingerprintOf(webCert.der));
    expect(web.body.equals(served.bytes)).toBe(true);

    // https_spiffe: the SVID chains to the bundle and carries exactly the endpoint ID.
    const spiffe = await spiffeGet(fixture);
    expect(spiffe.status).toBe(200);
    expect(spiffe.peer).toBe(fingerprintOf(svid.der));
    expect(spiffe.body.equals(web.body)).toBe(true);

    for (const reply of [web, spiffe]) {
      const parsed = parseSpiffeBundle(reply.body);
      expect(parsed.warnings).toEqual([]);
      expect(parsed.bundle.x509Authorities.map((authority) => authority.fingerprint)).toEqual([
        fingerprintOf(domainCa.der),
      ]);
      expect(parsed.bundle.jwtAuthorities.size).toBe(0);
      // The file carries no sequence: the store numbered it; the refresh hint is the config default.
      expect(parsed.bundle.sequence).toBe(1n);
      expect(parsed.bundle.refreshHintSeconds).toBe(300);
    }
  });

  it("is refused by clients whose checks the server does not pass", async () => {
    const fixture = await startFixture();
    await expect(webGet(fixture, { servername: "wrong.example" })).rejects.toMatchObject({
      code: "ERR_TLS_CERT_ALTNAME_INVALID",
    });
    await expect(webGet(fixture, { ca: domainCa.pem })).rejects.toMatchObject({
      code: "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
    });
    const target = { port: spiffePort(fixture.app), bundle: fixture.trustBundle, endpointSpiffeId: ENDPOINT_ID };
    await expect(spiffeRequest({ ...target, endpointSpiffeId: `spiffe://${TRUST_DOMAIN}/other` })).rejects.toThrow(
      /SPIFFE ID/,
    );
    await expect(spiffeRequest({ ...target, bundle: bundleOf([otherDomainCa]) })).rejects.toThrow(/chain/);
  });
});

describe("HTTP semantics on the running app", () => {
  it.each(["https_web", "https_spiffe"] as const)(
    "%s: 200, 304 with the ETag, HEAD, 405 with Allow, 404",
    async (profile) => {
      const fixture = await startFixture();
      const send = (options: SendOptions = {}) => (profile === "https_web" ? webGet : spiffeGet)(fixture, options);
      const served = fixture.app.localBundle.current();

      const get = await send();
      expect(get.status).toBe(200);
      expect(get.headers["content-type"]).toBe("application/json");
      expect(get.headers.etag).toBe(served.etag);
      expect(get.headers["cache-control"]).toBe("public, max-age=300");
      expect(get.headers["content-length"]).toBe(String(served.bytes.length));

      const notModified = await send({ headers: { "if-none-match": served.etag } });
      expect(notModified.status).toBe(304);
      expect(notModified.body.length).toBe(0);
      expect(notModified.headers.etag).toBe(served.etag);

      const head = await send({ method: "HEAD" });
      expect(head.status).toBe(200);
      expect(head.body.length).toBe(0);
      expect(head.headers.etag).toBe(served.etag);
      expect(head.headers["content-length"]).toBe(String(served.bytes.length));

      const post = await send({ method: "POST" });
      expect(post.status).toBe(405);
      expect(post.headers.allow).toBe("GET, HEAD");

      expect((await send({ path: "/other" })).status).toBe(404);
      expect((await send({ path: "/healthz" })).status).toBe(404);
    },
  );
});

describe("health on the internal listener, metrics on their own", () => {
  it("answers /healthz and /readyz, and /metrics on the metrics listener only", async () => {
    const fixture = await startFixture();
    const { app } = fixture;
    expect((await webGet(fixture)).status).toBe(200);
    expect((await spiffeGet(fixture, { method: "DELETE" })).status).toBe(405);
    const base = `http://127.0.0.1:${app.addresses.internal.port}`;

    const health = await fetch(`${base}/healthz`);
    expect(health.status).toBe(200);
    expect(await health.json()).toEqual({ status: "ok" });

    const ready = await fetch(`${base}/readyz`);
    expect(ready.status).toBe(200);
    expect(await ready.json()).toEqual({
      status: "ready",
      checks: [
        { name: "store", ok: true },
        { name: "sync", ok: true },
      ],
    });

    expect((await fetch(`${base}/metrics`)).status).toBe(404);
    const metrics = await fetch(`http://127.0.0.1:${app.addresses.metrics.port}/metrics`);
    expect(metrics.status).toBe(200);
    const text = await metrics.text();
    expect(text).toMatch(/^bundlegate_local_bundle_sequence 1$/m);
    expect(text).toMatch(/^bundlegate_endpoint_requests_total\{profile="https_web",code="200"\} 1$/m);
    expect(text).toMatch(/^bundlegate_endpoint_requests_total\{profile="https_spiffe",code="405"\} 1$/m);
    expect(text).toMatch(/^bundlegate_endpoint_request_duration_seconds_count\{profile="https_web"\} 1$/m);
    expect(text).toMatch(/^bundlegate_serving_certificate_not_after_timestamp_seconds\{profile="https_web"\} /m);
    expect(text).toMatch(/^bundlegate_serving_certificate_not_after_timestamp_seconds\{profile="https_spiffe"\} /m);
    expect(text).toMatch(/^bundlegate_process_cpu_user_seconds_total /m);
  });
});

interface Sample {
  readonly loop: string;
  readonly startedAt: number;
  readonly endedAt: number;
  readonly status?: number;
  readonly error?: string;
  readonly peer?: string | undefined;
  readonly etag?: string | undefined;
  readonly sequence?: bigint | undefined;
  readonly localPort?: number | undefined;
}

/** Fetches in a loop, one request after the other, until `stop.done`; every outcome becomes a sample. */
async function fetchLoop(loop: string, fetchOnce: () => Promise<HttpsReply>, stop: { done: boolean }, out: Sample[]) {
  while (!stop.done) {
    const startedAt = performance.now();
    try {
      const reply = await fetchOnce();
      out.push({
        loop,
        startedAt,
        endedAt: performance.now(),
        status: reply.status,
        peer: reply.peer,
        etag: reply.headers.etag,
        sequence: reply.status === 200 ? sequenceOf(reply) : undefined,
        localPort: reply.localPort,
      });
    } catch (error) {
      const failure = error as NodeJS.ErrnoException;
      out.push({ loop, startedAt, endedAt: performance.now(), error: failure.code ?? failure.message });
    }
  }
}

/** The values a loop saw, in order, with runs of the same value collapsed: [old, new] means one clean switch. */
function transitions<T>(samples: readonly Sample[], pick: (sample: Sample) => T): T[] {
  const seen: T[] = [];
  for (const sample of samples) {
    const value = pick(sample);
    if (seen.at(-1) !== value) seen.push(value);
  }
  return seen;
}

describe("replacing certificates and the bundle while clients keep fetching", () => {
  it("serves the new certificates and bundle within 2 s with no failed request", async (context: TestContext) => {
    const fixture = await startFixture();
    const { app, file } = fixture;
    const [webCert2, svid2] = await Promise.all([newWebCert(), newSvid()]);
    const before = app.localBundle.current();

    const samples: Sample[] = [];
    const stop = { done: false };
    const webAgent = keepAliveAgent();
    const spiffeTarget = { port: spiffePort(app), bundle: fixture.trustBundle, endpointSpiffeId: ENDPOINT_ID };
    const openSpiffe = await spiffeConnect(spiffeTarget);
    sockets.push(openSpiffe);
    const loops = [
      fetchLoop("web keep-alive", () => webGet(fixture, { agent: webAgent }), stop, samples),
      fetchLoop("web new connections", () => webGet(fixture), stop, samples),
      fetchLoop("spiffe keep-alive", () => requestOver(openSpiffe), stop, samples),
      fetchLoop("spiffe new connections", () => spiffeRequest(spiffeTarget), stop, samples),
    ];
    const of = (loop: string) => samples.filter((sample) => sample.loop === loop);
    const loopNames = ["web keep-alive", "web new connections", "spiffe keep-alive", "spiffe new connections"];
    const firstEnd = (loop: string, test: (sample: Sample) => boolean) => of(loop).find(test)?.endedAt;
    const newWeb = fingerprintOf(webCert2.der);
    const newSvidPrint = fingerprintOf(svid2.der);
    let webReplacedAt = 0;
    let svidReplacedAt = 0;
    let bundleReplacedAt = 0;
    let newEtag: string;
    try {
      await eventually(() => (loopNames.every((loop) => of(loop).length >= 5) ? true : undefined), {
        what: "every loop to have fetched a few times",
      });

      // Certificate before key: the source waits for the burst to end and re-reads a pair caught half-written.
      await replaceFile(file("web.pem"), webCert2.pem);
      await replaceFile(file("web.key"), webCert2.keyPem);
      webReplacedAt = performance.now();
      await replaceFile(file("svid.pem"), svid2.pem);
      await replaceFile(file("svid.key"), svid2.keyPem);
      svidReplacedAt = performance.now();
      await replaceFile(file("bundle.json"), bundleJson([domainCa, domainCa2]));
      bundleReplacedAt = performance.now();

      newEtag = await eventually(
        () => {
          const etag = app.localBundle.current().etag;
          if (etag === before.etag) return undefined;
          const done =
            loopNames.every((loop) => firstEnd(loop, (sample) => sample.etag === etag) !== undefined) &&
            firstEnd("web new connections", (sample) => sample.peer === newWeb) !== undefined &&
            firstEnd("spiffe new connections", (sample) => sample.peer === newSvidPrint) !== undefined;
          return done ? etag : undefined;
        },
        { what: "every loop to see the new bundle, and new connections the new certificates", timeoutMs: 10_000 },
      );
      // A little more traffic on the new state, then stop.
      const settledAt = samples.length;
      await eventually(() => (samples.length >= settledAt + 20 ? true : undefined), {
        what: "more requests after the switch",
      });
    } finally {
      stop.done = true;
      await Promise.all(loops);
    }

    // No request failed, in any loop, at any time.
    expect(samples.filter((sample) => sample.error !== undefined || sample.status !== 200)).toEqual([]);

    // Each loop switched once from the old bundle to the new one, and the sequence went up by exactly one.
    const after = app.localBundle.current();
    expect(after.sequence).toBe(before.sequence + 1n);
    expect(after.etag).toBe(newEtag);
    for (const loop of loopNames) {
      expect(
        transitions(of(loop), (sample) => sample.etag),
        loop,
      ).toEqual([before.etag, after.etag]);
      expect(
        transitions(of(loop), (sample) => sample.sequence),
        loop,
      ).toEqual([before.sequence, after.sequence]);
    }
    expect(parseSpiffeBundle(after.bytes).bundle.x509Authorities).toHaveLength(2);

    // New connections switched once to the new certificate; open connections kept theirs and were never dropped.
    expect(transitions(of("web new connections"), (sample) => sample.peer)).toEqual([
      fingerprintOf(webCert.der),
      newWeb,
    ]);
    expect(transitions(of("spiffe new connections"), (sample) => sample.peer)).toEqual([
      fingerprintOf(svid.der),
      newSvidPrint,
    ]);
    expect(transitions(of("web keep-alive"), (sample) => sample.peer)).toEqual([fingerprintOf(webCert.der)]);
    expect(transitions(of("spiffe keep-alive"), (sample) => sample.peer)).toEqual([fingerprintOf(svid.der)]);
    expect(new Set(of("web keep-alive").map((sample) => sample.localPort)).size).toBe(1);
    expect(new Set(of("spiffe keep-alive").map((sample) => sample.localPort)).size).toBe(1);

    // Within 2 seconds of the replacement.
    const webCertSeenMs = firstEnd("web new connections", (sample) => sample.peer === newWeb)! - webReplacedAt;
    const svidSeenMs = firstEnd("spiffe new connections", (sample) => sample.peer === newSvidPrint)! - svidReplacedAt;
    const bundleSeenMs = loopNames.map(
      (loop) => firstEnd(loop, (sample) => sample.etag === after.etag)! - bundleReplacedAt,
    );
    expect(webCertSeenMs).toBeLessThan(SEEN_WITHIN_MS);
    expect(svidSeenMs).toBeLessThan(SEEN_WITHIN_MS);
    for (const ms of bundleSeenMs) expect(ms).toBeLessThan(SEEN_WITHIN_MS);
    await context.annotate(
      `${samples.length} requests, 0 failed; new web certificate seen after ${webCertSeenMs.toFixed(0)} ms, ` +
        `new SVID after ${svidSeenMs.toFixed(0)} ms, new bundle after ` +
        `${Math.max(...bundleSeenMs).toFixed(0)} ms (slowest of ${loopNames.length} loops)`,
    );

    // One reload per profile, no refused pair (the half-written pair was waited out), one bundle change.
    for (const profile of ["https_web", "https_spiffe"]) {
      expect(await metricValue(app, "bundlegate_tls_reloads_total", { profile, result: "ok" }), profile).toBe(1);
      expect(await metricValue(app, "bundlegate_tls_reloads_total", { profile, result: "error" }), profile).toBe(0);
    }
    expect(await metricValue(app, "bundlegate_local_bundle_reloads_total", { result: "changed" })).toBe(1);
    expect(await metricValue(app, "bundlegate_local_bundle_reloads_total", { result: "error" })).toBe(0);
  });
});

interface BrokenCase {
  readonly name: string;
  readonly code: string;
  /** Which served state the broken file must leave alone. */
  readonly kind: "https_web" | "https_spiffe" | "bundle";
  /** Writes the broken file(s). */
  readonly break: (fixture: Fixture) => Promise<void>;
  /** Writes a good replacement; resolves with what must then be served (a fingerprint or an ETag change). */
  readonly repair: (fixture: Fixture) => Promise<string | undefined>;
}

const brokenCases: BrokenCase[] = [
  {
    name: "a replaced pair with a mismatched key",
    code: "ERR_TLS_KEY_MISMATCH",
    kind: "https_web",
    async break({ file }) {
      const [next, unrelated] = await Promise.all([newWebCert(), newWebCert()]);
      brokenState.set(file("web.pem"), next);
      await replaceFile(file("web.pem"), next.pem);
      await replaceFile(file("web.key"), unrelated.keyPem);
    },
    async repair({ file }) {
      const next = brokenState.get(file("web.pem"))!;
      await replaceFile(file("web.key"), next.keyPem);
      return fingerprintOf(next.der);
    },
  },
  {
    name: "an expired SVID",
    code: "ERR_TLS_CERT_EXPIRED",
    kind: "https_spiffe",
    async break({ file }) {
      const now = Date.now();
      const expired = await newSvid({ notBefore: new Date(now - 2 * DAY_MS), notAfter: new Date(now - DAY_MS) });
      await replaceFile(file("svid.pem"), expired.pem);
      await replaceFile(file("svid.key"), expired.keyPem);
    },
    repair: repairSvid,
  },
  {
    name: "an SVID with another SPIFFE ID",
    code: "ERR_SVID_WRONG_ID",
    kind: "https_spiffe",
    async break({ file }) {
      const other = await newSvid({ spiffeId: `spiffe://${TRUST_DOMAIN}/not-the-endpoint` });
      await replaceFile(file("svid.pem"), other.pem);
      await replaceFile(file("svid.key"), other.keyPem);
    },
    repair: repairSvid,
  },
  {
    name: "an unparsable bundle file",
    code: "ERR_BUNDLE_NOT_JSON",
    kind: "bundle",
    async break({ file }) {
      await replaceFile(file("bundle.json"), '{ "keys": [ {"use": "x509-svid", ');
    },
    async repair({ file }) {
      await replaceFile(file("bundle.json"), bundleJson([domainCa, domainCa2]));
      return undefined;
    },
  },
];

/** The good certificate a broken case wrote, for its repair. */
const brokenState = new Map<string, Issued>();

async function repairSvid({ file }: Fixture): Promise<string> {
  const good = await newSvid();
  await replaceFile(file("svid.pem"), good.pem);
  await replaceFile(file("svid.key"), good.keyPem);
  return fingerprintOf(good.der);
}

describe("a broken replacement leaves the old state serving", () => {
  it.for(brokenCases)("$name: $code logged and counted", async (brokenCase, context) => {
    const fixture = await startFixture();
    const { app, logs } = fixture;
    const web = await webGet(fixture);
    const spiffe = await spiffeGet(fixture);
    const served = app.localBundle.current();

    const brokenAt = performance.now();
    await brokenCase.break(fixture);
    const line = await eventually(() => logs.find((logged) => logged.code === brokenCase.code), {
      what: `a log line with code ${brokenCase.code}`,
    });
    const loggedMs = performance.now() - brokenAt;
    // Past the debounce and the one re-read of a half-written pair: nothing else is going to happen.
    await sleep(1000);

    expect(line.level).toBe(50);
    expect(line.msg).toMatch(/keep/);
    if (brokenCase.kind === "bundle") {
      expect(line).toMatchObject({ component: "local-bundle", file: fixture.file("bundle.json") });
      expect(
        await metricValue(app, "bundlegate_local_bundle_reloads_total", { result: "error", code: brokenCase.code }),
      ).toBe(1);
    } else {
      const certFile = brokenCase.kind === "https_web" ? fixture.file("web.pem") : fixture.file("svid.pem");
      expect(line).toMatchObject({ component: "tls", profile: brokenCase.kind, certFile });
      expect(
        await metricValue(app, "bundlegate_tls_reloads_total", {
          profile: brokenCase.kind,
          result: "error",
          code: brokenCase.code,
        }),
      ).toBe(1);
      expect(await metricValue(app, "bundlegate_tls_reloads_total", { result: "ok" })).toBe(0);
    }
    expect(logs.filter((logged) => logged.level >= 50).map((logged) => logged.code)).toEqual([brokenCase.code]);
    expect(JSON.stringify(logs)).not.toContain("PRIVATE KEY");

    // The old certificates and the old bundle are still what new connections get.
    const webAfter = await webGet(fixture);
    const spiffeAfter = await spiffeGet(fixture);
    expect(webAfter.peer).toBe(web.peer);
    expect(spiffeAfter.peer).toBe(spiffe.peer);
    expect(webAfter.body.equals(served.bytes)).toBe(true);
    expect(spiffeAfter.body.equals(served.bytes)).toBe(true);
    expect(app.localBundle.current()).toBe(served);

    // A good file afterwards is taken at once: the failure left nothing stuck, and used up no sequence number.
    const expected = await brokenCase.repair(fixture);
    if (brokenCase.kind === "bundle") {
      const next = await eventually(
        async () => {
          const reply = await webGet(fixture);
          return reply.headers.etag === served.etag ? undefined : reply;
        },
        { what: "the repaired bundle" },
      );
      expect(sequenceOf(next)).toBe(served.sequence + 1n);
    } else {
      const get = brokenCase.kind === "https_web" ? webGet : spiffeGet;
      await eventually(async () => ((await get(fixture)).peer === expected ? true : undefined), {
        what: "the repaired certificate",
      });
    }
    await context.annotate(`${brokenCase.code} logged ${loggedMs.toFixed(0)} ms after the broken write`);
  });
});

describe("the local bundle's sequence", () => {
  it("is kept across a restart (snapshot file) and never reused", async () => {
    const fixture = await startFixture();
    await replaceFile(fixture.file("bundle.json"), bundleJson([domainCa, domainCa2]));
    await eventually(() => (fixture.app.localBundle.current().sequence === 2n ? true : undefined), {
      what: "sequence 2",
    });
    const servedBefore = fixture.app.localBundle.current();
    await apps.splice(apps.indexOf(fixture.app), 1)[0]!.stop();

    const { app } = await startWithLogs(fixture.config);
    expect(app.localBundle.current().sequence).toBe(2n);
    expect(app.localBundle.current().etag).toBe(servedBefore.etag);

    // Going back to the first content is a change like any other: the next number, not the old one.
    await replaceFile(fixture.file("bundle.json"), bundleJson([domainCa]));
    await eventually(() => (app.localBundle.current().sequence === 3n ? true : undefined), { what: "sequence 3" });
  });

  it("uses the file's spiffe_sequence and refuses one that goes backwards", async () => {
    const fixture = await startFixture();
    const { app, logs } = fixture;
    await replaceFile(fixture.file("bundle.json"), bundleJson([domainCa, domainCa2], 10n));
    await eventually(() => (app.localBundle.current().sequence === 10n ? true : undefined), { what: "sequence 10" });
    expect(sequenceOf(await webGet(fixture))).toBe(10n);

    await replaceFile(fixture.file("bundle.json"), bundleJson([domainCa], 5n));
    await eventually(() => logs.find((line) => line.code === "ERR_LOCAL_SEQUENCE_BACKWARDS"), { what: "the refusal" });
    expect(app.localBundle.current().sequence).toBe(10n);
    expect(sequenceOf(await webGet(fixture))).toBe(10n);
  });
});
