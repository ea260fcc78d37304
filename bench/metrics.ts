/**
 * The Prometheus scrape at scale: the metrics of an app-like setup with N relationships (default 10,000,
 * each with a bundle of two X.509 authorities), scraped with `registry.metrics()`, against the cheapest
 * registry that could expose the same series: plain prom-client gauges holding the same values, set in
 * advance (no collect()).
 *
 *   npx tsx bench/metrics.ts [--relationships N] [--scrapes N] [--churn FRACTION] [--cas N] [--status view|direct]
 *
 * Setup. A pool of --cas real CA certificates (test/support/pki.ts; an eighth of them expired) makes each
 * relationship's bundle (two of them, a JWT key on every fourth), put into a real bundle cache from its
 * canonical JSON, as the store's copy is, so every relationship holds its own parsed certificates. The
 * relationships mix profiles, states, owners, refresh overrides (interval, cron), review and expiry dates.
 * The metrics are wired as src/app.ts wires them: `trackRelationships` on the registry, fetch and decision
 * hooks already counted (two fetches and two decisions per relationship), and `observeFederation` over
 * fakes of the engine (statuses), the quarantine index and a manual clock. With --status direct (the
 * default) a status is read from a map, as app.ts reads it through engine.status(); --status view reads it
 * through an engine view that also computes the relationship's health, as scrapes did before.
 *
 * Measured per scrape: the wall time of `registry.metrics()`, the longest event-loop block while it ran
 * (perf_hooks monitorEventLoopDelay, 1 ms resolution: the longest a request to the bundle endpoint, which
 * shares the loop, could have waited), bytes and series. First the cold scrape (nothing computed yet),
 * then the baseline is built from that scrape's series, then --scrapes rounds alternate the two in ABBA
 * order; before each round a scrape interval passes (15 s on the clock) and --churn of the relationships
 * are refreshed (a new status object, one more fetch and decision counted), as 10k relationships polled
 * every 75 s would be between two scrapes 15 s apart. Each round then does the same again over HTTP:
 * both registries behind the metrics listener (src/metrics/server.ts), fetched from a worker thread so
 * that reading the response is not this loop's work. Last, one scrape after every status changed.
 * Ratios are candidate / baseline: 1 is as cheap as exposing the same series can be.
 */
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import os from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { Worker } from "node:worker_threads";
import { Gauge, Registry } from "prom-client";
import { VERSION } from "../src/cli/version.js";
import { manualClock } from "../src/clock.js";
import { CONFIG_DEFAULTS } from "../src/config/schema.js";
import type { FederationConfig } from "../src/config/types.js";
import { createBundleCache } from "../src/federation/bundle-cache.js";
import { createStaticRegistry } from "../src/federation/registry.js";
import type { Relationship } from "../src/federation/relationship.js";
import { relationshipHealth } from "../src/federation/relationship-health.js";
import { silentLogger } from "../src/logging.js";
import { createMetrics } from "../src/metrics/metrics.js";
import { createMetricsServer, METRICS_PATH } from "../src/metrics/server.js";
import { resolvePolicy } from "../src/policy/merge.js";
import type { Decision } from "../src/policy/types.js";
import { createTrustBundle, jwtAuthority, x509AuthorityFromCertificate } from "../src/spiffe/bundle.js";
import { serializeSpiffeBundle } from "../src/spiffe/codec.js";
import { diffBundles } from "../src/spiffe/diff.js";
import { bundleDigest } from "../src/spiffe/digest.js";
import type { TrustDomain } from "../src/spiffe/id.js";
import { exportPublicJwk } from "../src/spiffe/public-key.js";
import type { RelationshipStatus } from "../src/store/federation-state.js";
import { createCa, type Issued } from "../test/support/pki.js";
import { flagValue, numberFlag } from "./flags.js";

const SCRAPE_INTERVAL_MS = 15_000;
const START = new Date("2026-03-01T00:00:00Z");
const DAY_MS = 86_400_000;

// ---------------------------------------------------------------------------------------------------
// Flags (bench/flags.ts).
// ---------------------------------------------------------------------------------------------------

// Given as a maximum so this bench's errors keep their "must be in min..max" form.
const UNBOUNDED = Number.POSITIVE_INFINITY;

interface Flags {
  readonly relationships: number;
  readonly scrapes: number;
  readonly churn: number;
  readonly cas: number;
  readonly status: "view" | "direct";
}

function readFlags(): Flags {
  const status = flagValue("status") ?? "direct";
  if (status !== "view" && status !== "direct") throw new Error("--status must be view or direct");
  return {
    relationships: Math.floor(numberFlag("relationships", 10_000, { min: 1, max: UNBOUNDED })),
    scrapes: Math.floor(numberFlag("scrapes", 6, { min: 2, max: UNBOUNDED })),
    churn: numberFlag("churn", 0.2, { min: 0, max: 1 }),
    // Even, so a relationship's two authorities are always two different certificates.
    cas: Math.max(2, Math.floor(numberFlag("cas", 256, { min: 2, max: UNBOUNDED }) / 2) * 2),
    status,
  };
}

// ---------------------------------------------------------------------------------------------------
// The app-like setup.
// ---------------------------------------------------------------------------------------------------

const trustDomainOf = (n: number) => `p${n}.bench.test` as TrustDomain;

function relationshipOf(n: number): Relationship {
  const trustDomain = trustDomainOf(n);
  const spiffe = n % 10 === 3;
  return {
    trustDomain,
    endpointUrl: `https://${trustDomain}/bundle`,
    profile: spiffe
      ? {
          kind: "https_spiffe",
          endpointSpiffeId: `spiffe://${trustDomain}/server`,
          bootstrapBundle: createTrustBundle(),
        }
      : { kind: "https_web" },
    owner: `team-${n % 40}`,
    labels: {},
    allowedCidrs: [],
    policy: resolvePolicy(),
    state: n % 25 === 7 ? "suspended" : n % 50 === 11 ? "pending" : "active",
    origin: n % 3 === 0 ? "api" : "config",
    ...(n % 2 === 0 ? { reviewBy: new Date(START.getTime() + (n % 365) * DAY_MS) } : {}),
    ...(n % 4 === 1 ? { expiresAt: new Date(START.getTime() + (400 + (n % 365)) * DAY_MS) } : {}),
    ...(n % 20 === 5
      ? { refresh: { kind: "interval" as const, seconds: 120 } }
      : n % 50 === 9
        ? { refresh: { kind: "cron" as const, expression: `*/${5 + (n % 4)} * * * *` } }
        : {}),
    ...(n % 10 === 6 ? { maxStalenessSeconds: 1800 } : {}),
  };
}

async function caPool(size: number): Promise<X509Certificate[]> {
  const pool: Issued[] = [];
  for (let first = 0; first < size; first += 32) {
    pool.push(
      ...(await Promise.all(
        Array.from({ length: Math.min(32, size - first) }, (_, i) => {
          const n = first + i;
          // An eighth expired, so usable-authority counts are not just the authority counts.
          return n % 8 === 7
            ? createCa({
                trustDomain: `ca${n}.bench.test`,
                notBefore: new Date(START.getTime() - 60 * DAY_MS),
                notAfter: new Date(START.getTime() - DAY_MS),
              })
            : createCa({ trustDomain: `ca${n}.bench.test`, now: START });
        }),
      )),
    );
  }
  return pool.map((ca) => new X509Certificate(ca.der));
}

function statusOf(n: number, nowMs: number): RelationshipStatus {
  const failing = n % 97 === 13;
  return {
    lastAttemptAt: nowMs - (n % 75) * 1000,
    ...(failing ? {} : { lastSuccessAt: nowMs - (n % 75) * 1000 }),
    lastChangeAt: START.getTime() - DAY_MS,
    lastResult: failing ? "ERR_FETCH_TIMEOUT" : "unchanged",
    consecutiveFailures: failing ? 3 : 0,
    nextRefreshAt: nowMs + 75_000,
    writtenBy: "bench",
  };
}

const EMPTY_DIFF = diffBundles(createTrustBundle(), createTrustBundle());
const decisionOf = (kind: Decision["kind"], code: Decision["reasons"][number]["code"]): Decision => ({
  kind,
  reasons: [{ code, message: code }],
  diff: EMPTY_DIFF,
});
const ACCEPTED = decisionOf("accept", "FIRST_BUNDLE");
const UNCHANGED = decisionOf("unchanged", "UNCHANGED");

// ---------------------------------------------------------------------------------------------------
// Measurements.
// ---------------------------------------------------------------------------------------------------

interface Scrape {
  readonly ms: number;
  /** Longest event-loop delay seen while the scrape ran (ms). */
  readonly blockMs: number;
  readonly bytes: number;
  readonly series: number;
  readonly text: string;
}

async function scrape(registry: Registry): Promise<Scrape> {
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  // No reset() after this wait: the first sample after a reset is dropped, and it would be the scrape's.
  await sleep(5);
  const started = performance.now();
  const text = await registry.metrics();
  const ms = performance.now() - started;
  // A block is recorded when the histogram's timer finally runs, after it.
  await sleep(5);
  delay.disable();
  let series = 0;
  for (let at = 0; at < text.length; ) {
    const end = text.indexOf("\n", at);
    const next = end === -1 ? text.length : end + 1;
    if (text[at] !== "#" && next - at > 1) series++;
    at = next;
  }
  return { ms, blockMs: delay.max / 1e6, bytes: Buffer.byteLength(text), series, text };
}

/**
 * GET /metrics from a worker thread (so reading 20+ MB of response is not this loop's work): the
 * metrics listener's whole answer, as the loop the bundle endpoint shares sees it.
 */
function createHttpScraper(): { scrape(url: string): Promise<Scrape>; close(): Promise<number> } {
  const worker = new Worker(
    `const { parentPort } = require("node:worker_threads");
     const http = require("node:http");
     const agent = new http.Agent({ keepAlive: true });
     parentPort.on("message", (url) => {
       http.get(url, { agent }, (res) => {
         let bytes = 0;
         res.on("data", (chunk) => { bytes += chunk.length; });
         res.on("end", () => parentPort.postMessage({ status: res.statusCode, bytes }));
       }).on("error", (error) => parentPort.postMessage({ status: 0, bytes: 0, error: error.message }));
     });`,
    { eval: true },
  );
  return {
    async scrape(url) {
      const delay = monitorEventLoopDelay({ resolution: 1 });
      delay.enable();
      await sleep(5);
      const started = performance.now();
      const reply = once(worker, "message") as Promise<[{ status: number; bytes: number; error?: string }]>;
      worker.postMessage(url);
      const [{ status, bytes, error }] = await reply;
      const ms = performance.now() - started;
      await sleep(5);
      delay.disable();
      if (status !== 200) throw new Error(`GET ${url}: ${error ?? status}`);
      return { ms, blockMs: delay.max / 1e6, bytes, series: Number.NaN, text: "" };
    },
    close: () => worker.terminate(),
  };
}

/** The same series as `source` exposes, as plain gauges set once (histogram lines become gauges too). */
async function baselineOf(source: Registry): Promise<Registry> {
  const registry = new Registry();
  for (const metric of await source.getMetricsAsJSON()) {
    const families = new Map<string, Array<{ labels: Record<string, string | number>; value: number }>>();
    for (const value of metric.values as Array<{
      labels: Record<string, string | number>;
      value: number;
      metricName?: string;
    }>) {
      const name = value.metricName ?? metric.name;
      const family = families.get(name);
      if (family) family.push(value);
      else families.set(name, [value]);
    }
    for (const [name, values] of families) {
      const labelNames = [...new Set(values.flatMap((value) => Object.keys(value.labels)))];
      const gauge = new Gauge({ name, help: metric.help, labelNames, registers: [registry] });
      for (const { labels, value } of values) {
        if (labelNames.length === 0) gauge.set(value);
        else gauge.set(labels, value);
      }
    }
  }
  return registry;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

// ---------------------------------------------------------------------------------------------------
// The run.
// ---------------------------------------------------------------------------------------------------

async function main(flags: Flags): Promise<void> {
  const N = flags.relationships;
  const setupStarted = performance.now();
  const pool = await caPool(flags.cas);
  const clock = manualClock(START);

  const relationships = Array.from({ length: N }, (_, n) => relationshipOf(n));
  const registry = createStaticRegistry(relationships);
  const cache = createBundleCache();
  for (let n = 0; n < N; n++) {
    const first = pool[(2 * n) % pool.length]!;
    const second = pool[(2 * n + 1) % pool.length]!;
    const bundle = createTrustBundle({
      x509Authorities: [x509AuthorityFromCertificate(first), x509AuthorityFromCertificate(second)],
      jwtAuthorities: n % 4 === 0 ? [jwtAuthority(`k${n}`, exportPublicJwk(first.publicKey))] : [],
      refreshHintSeconds: 300,
      sequence: BigInt(n + 1),
    });
    const json = serializeSpiffeBundle(bundle);
    // From the JSON, as the cache is filled from the store: each relationship parses its own certificates.
    cache.put(trustDomainOf(n), {
      json,
      digest: bundleDigest(bundle),
      sequence: String(n + 1),
      refreshHintSeconds: 300,
      acceptedAt: START.getTime() - DAY_MS,
    });
  }
  const statuses = new Map<TrustDomain, RelationshipStatus>();
  for (let n = 0; n < N; n++) statuses.set(trustDomainOf(n), statusOf(n, clock.now().getTime()));
  const quarantined = new Set<string>();
  for (let n = 17; n < N; n += 200) quarantined.add(trustDomainOf(n));

  const F = CONFIG_DEFAULTS.federation;
  const federation: FederationConfig = {
    maxBundleBytes: F.max_bundle_bytes,
    maxBundleKeys: F.max_bundle_keys,
    connectTimeoutMs: F.connect_timeout_ms,
    headersTimeoutMs: F.headers_timeout_ms,
    totalTimeoutMs: F.total_timeout_ms,
    maxRedirects: F.max_redirects,
    leaseMs: F.lease_ms,
    historyLimit: F.history_limit,
    minRefreshHintSeconds: F.min_refresh_hint_seconds,
    maxRefreshHintSeconds: F.max_refresh_hint_seconds,
    defaultRefreshHintSeconds: F.default_refresh_hint_seconds,
    jitterRatio: F.jitter_ratio,
    backoffInitialSeconds: F.backoff_initial_seconds,
  };
  // What src/federation/manager.ts's view() does for each call: the status, and the health beside it.
  const engine = {
    view(trustDomain: TrustDomain) {
      const status = statuses.get(trustDomain);
      const relationship = registry.get(trustDomain);
      const health = relationship
        ? relationshipHealth({
            relationship,
            status,
            lastKnownGood: cache.get(trustDomain)?.bundle,
            federation,
            now: clock.now(),
          })
        : undefined;
      return { ...(status ? { status } : {}), ...(health ? { health } : {}) };
    },
  };

  const metrics = createMetrics({ version: VERSION });
  const stopTracking = metrics.trackRelationships(registry);
  for (const { trustDomain } of relationships) {
    metrics.recordFetch(trustDomain, "accepted", 0.05);
    metrics.recordDecision(trustDomain, ACCEPTED);
    metrics.recordFetch(trustDomain, "unchanged", 0.02);
    metrics.recordDecision(trustDomain, UNCHANGED);
  }
  metrics.observeFederation({
    relationships: () => registry.list(),
    status:
      flags.status === "view"
        ? (trustDomain) => engine.view(trustDomain).status
        : (trustDomain) => statuses.get(trustDomain),
    bundle: (trustDomain) => cache.get(trustDomain),
    quarantined: (trustDomain) => quarantined.has(trustDomain),
    federation,
    now: () => clock.now(),
    leasesHeld: () => Math.ceil(N / 3),
    degraded: () => false,
    storeUp: async () => true,
  });
  const setupSeconds = (performance.now() - setupStarted) / 1000;

  let cursor = 0;
  const churn = (count: number) => {
    const nowMs = clock.now().getTime();
    for (let i = 0; i < count; i++) {
      const n = cursor++ % N;
      const trustDomain = trustDomainOf(n);
      statuses.set(trustDomain, { ...statusOf(n, nowMs), lastAttemptAt: nowMs, lastSuccessAt: nowMs });
      metrics.recordFetch(trustDomain, "unchanged", 0.02);
      metrics.recordDecision(trustDomain, UNCHANGED);
    }
  };

  // The cold scrape: nothing computed or parsed by the metrics yet.
  const cold = await scrape(metrics.registry);
  const baseline = await baselineOf(metrics.registry);
  const baselineFirst = await scrape(baseline);

  // The same registries behind the metrics listener, scraped over HTTP.
  const listeners = await Promise.all(
    [metrics.registry, baseline].map(async (registry) => {
      const server = createMetricsServer({ registry, listen: { host: "127.0.0.1", port: 0 }, logger: silentLogger() });
      const { port } = await server.start();
      return { server, url: `http://127.0.0.1:${port}${METRICS_PATH}` };
    }),
  );
  const http = createHttpScraper();
  const [candidateUrl, baselineUrl] = listeners.map((listener) => listener.url) as [string, string];

  type Round = { candidate: Scrape; baseline: Scrape };
  /** A scrape interval passes, then both are scraped, in ABBA order over the rounds. */
  const pair = async (round: number, candidate: () => Promise<Scrape>, base: () => Promise<Scrape>): Promise<Round> => {
    clock.advance(SCRAPE_INTERVAL_MS);
    churn(Math.round(N * flags.churn));
    if (round % 2 === 0) {
      const first = await candidate();
      return { candidate: first, baseline: await base() };
    }
    const first = await base();
    return { candidate: await candidate(), baseline: first };
  };
  const rounds: Round[] = [];
  const httpRounds: Round[] = [];
  for (let round = 0; round < flags.scrapes; round++) {
    rounds.push(
      await pair(
        round,
        () => scrape(metrics.registry),
        () => scrape(baseline),
      ),
    );
    httpRounds.push(
      await pair(
        round,
        () => http.scrape(candidateUrl),
        () => http.scrape(baselineUrl),
      ),
    );
  }
  await http.close();
  for (const { server } of listeners) await server.close();
  clock.advance(SCRAPE_INTERVAL_MS);
  churn(N);
  const everyChanged = await scrape(metrics.registry);

  // What the app's status reads cost alone: one engine view per relationship (steady, health parsed).
  let viewMs: number | undefined;
  if (flags.status === "view") {
    const started = performance.now();
    for (const relationship of relationships) engine.view(relationship.trustDomain);
    viewMs = performance.now() - started;
  }
  stopTracking();

  // ---------------------------------------------------------------------------------------------------
  // Report.
  // ---------------------------------------------------------------------------------------------------
  const rows: Array<[string, string]> = [];
  const row = (name: string, value: string) => rows.push([name, value]);
  const f = (value: number, digits = 1) => (Number.isFinite(value) ? value.toFixed(digits) : "-");
  const mb = (bytes: number) => `${f(bytes / 1e6, 1)} MB`;
  const candidateMs = rounds.map((r) => r.candidate.ms);
  const baselineMs = rounds.map((r) => r.baseline.ms);
  const candidateBlock = rounds.map((r) => r.candidate.blockMs);
  const baselineBlock = rounds.map((r) => r.baseline.blockMs);
  const last = rounds.at(-1)!;

  row(
    "setup",
    `${N} relationships, bundles of 2 X.509 authorities (${flags.cas} distinct CAs, 1/8 expired; a JWT key on 1/4), ` +
      `status read ${flags.status === "view" ? "through an engine view (health computed)" : "from a map (as app.ts, engine.status)"}; ` +
      `${f(setupSeconds)} s; ${os.availableParallelism()} CPUs, Node ${process.version}`,
  );
  row(
    "series",
    `${last.candidate.series} candidate, ${last.baseline.series} baseline; ` +
      `${mb(last.candidate.bytes)} candidate, ${mb(last.baseline.bytes)} baseline per scrape`,
  );
  row(
    "cold scrape",
    `${f(cold.ms)} ms, longest block ${f(cold.blockMs)} ms (baseline's first: ${f(baselineFirst.ms)} ms, block ${f(baselineFirst.blockMs)} ms)`,
  );
  row(
    "steady scrape ms",
    `candidate median ${f(median(candidateMs))} (min ${f(Math.min(...candidateMs))}, max ${f(Math.max(...candidateMs))}); ` +
      `baseline median ${f(median(baselineMs))} (min ${f(Math.min(...baselineMs))}, max ${f(Math.max(...baselineMs))}); ` +
      `${rounds.length} rounds, ${f(flags.churn * 100, 0)} % of statuses new before each`,
  );
  row(
    "steady longest block ms",
    `candidate median ${f(median(candidateBlock))} (max ${f(Math.max(...candidateBlock))}); ` +
      `baseline median ${f(median(baselineBlock))} (max ${f(Math.max(...baselineBlock))})`,
  );
  const httpCandidate = httpRounds.map((r) => r.candidate);
  const httpBaseline = httpRounds.map((r) => r.baseline);
  row(
    "over HTTP (listener)",
    `GET ms candidate median ${f(median(httpCandidate.map((s) => s.ms)))}, baseline ${f(median(httpBaseline.map((s) => s.ms)))}; ` +
      `longest block candidate median ${f(median(httpCandidate.map((s) => s.blockMs)))} (max ${f(Math.max(...httpCandidate.map((s) => s.blockMs)))}), ` +
      `baseline ${f(median(httpBaseline.map((s) => s.blockMs)))} (max ${f(Math.max(...httpBaseline.map((s) => s.blockMs)))}); ` +
      `${mb(httpCandidate.at(-1)!.bytes)} / ${mb(httpBaseline.at(-1)!.bytes)}`,
  );
  row("every status changed", `${f(everyChanged.ms)} ms, longest block ${f(everyChanged.blockMs)} ms`);
  if (viewMs !== undefined)
    row("  of which engine views", `${f(viewMs)} ms for ${N} engine.view() calls alone (outside a scrape)`);
  row(
    "ratio candidate/baseline",
    `scrape ms ${f(median(candidateMs) / median(baselineMs), 2)}, longest block ${f(median(candidateBlock) / median(baselineBlock), 2)}, ` +
      `cold scrape ${f(cold.ms / median(baselineMs), 2)} (medians of rounds); over HTTP: GET ms ` +
      `${f(median(httpCandidate.map((s) => s.ms)) / median(httpBaseline.map((s) => s.ms)), 2)}, longest block ` +
      `${f(median(httpCandidate.map((s) => s.blockMs)) / median(httpBaseline.map((s) => s.blockMs)), 2)}`,
  );
  row("heap used at the end", mb(process.memoryUsage().heapUsed));

  const width = Math.max(...rows.map(([name]) => name.length));
  process.stdout.write(`\nbench/metrics (${VERSION})\n\n`);
  for (const [name, value] of rows) process.stdout.write(`  ${name.padEnd(width)}  ${value}\n`);
  process.stdout.write("\n");
}

try {
  await main(readFlags());
} catch (error) {
  process.stderr.write(`bench/metrics failed: ${(error as Error).stack ?? String(error)}\n`);
  process.exit(1);
}
