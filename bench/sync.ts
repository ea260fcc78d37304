/**
 * The sync engine at scale: 10,000 relationships polled by one instance against local partner endpoints,
 * with a real Redis, measured against the fastest thing that could do the same fetches: a bare
 * `fetcher.fetch` loop over the same endpoints.
 *
 *   npx tsx bench/sync.ts [--relationships N] [--duration SECONDS] [--concurrency N] [--hint SECONDS]
 *                         [--servers N] [--baseline-fetches N] [--log-level LEVEL]
 *
 * Layout. A private redis-server (test/support/redis-server.ts; REDIS_URL to use another). The partner
 * endpoints run in a child process (this file with --partner-process), so the CPU this process uses is the
 * engine's alone: `--servers` node:https servers (https_web, a test CA) where each path /p/<n> serves a
 * different small canonical bundle (one X.509 authority of its own, `spiffe_refresh_hint` = --hint,
 * `spiffe_sequence` 1), precomputed, with a strong ETag and 304 on If-None-Match, as bundlegate's own
 * endpoint answers. This process runs one sync engine wired as src/app.ts wires it (Redis store, fetcher,
 * bundle cache, live partner index, the app's metric hooks, a pino logger at --log-level into /dev/null),
 * the hint bounds lowered so the refresh interval (hint / 4) is short enough for several refreshes per
 * relationship during the run.
 *
 * Phases. (1) The bare fetcher flat out (same options, same concurrency, conditional GETs answered 304,
 * over the same URLs): what one process can fetch at most, and at what CPU per fetch. (2) The engine starts
 * with an empty Redis: the initial sync accepts every bundle. (3) The steady window runs from the moment
 * every relationship has been accepted once to the end of --duration; almost every refresh there is
 * "unchanged" (304). Over it: CPU seconds per 1,000 fetches (process.cpuUsage, all threads), Redis commands
 * per unchanged refresh (INFO deltas, with a per-command breakdown), how late refreshes start against their
 * due time, and the longest gap between two successes of one relationship. At the end, every relationship's
 * staleness (src/federation/staleness.ts) from the engine's view and its bundle's hint. (4) The baseline
 * proper: the bare fetcher again, paced at the engine's steady rate (CPU per operation falls as a process
 * nears saturation, so a flat-out loop is no fair comparison); engine / baseline is what policy, store and
 * scheduling add per fetch. Peak RSS is sampled every 250 ms over the whole run.
 *
 * Tuning: --concurrency 32 (the engine's default). On a 2-vCPU machine, fetching 2,000 relationships every
 * 5 s, 8 / 16 / 32 / 64 / 128 gave 230 / 279 / 332 / 340 / 339 fetches/s with event loop delay p99 29 / 31 /
 * 39 / 98 / 166 ms: past 32 the loop (which also serves the bundle endpoint) only gets slower.
 *
 * Exit status 0, or 1 when something broke: a relationship not fresh at the end (never synced included),
 * a failed fetch, or no steady window (the initial sync did not finish within --duration).
 */
import { type ChildProcess, fork } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import { once } from "node:events";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import os from "node:os";
import { monitorEventLoopDelay } from "node:perf_hooks";
import { fileURLToPath } from "node:url";
import { Redis } from "ioredis";
import { pino } from "pino";
import { VERSION } from "../src/cli/version.js";
import { systemClock } from "../src/clock.js";
import { CONFIG_DEFAULTS } from "../src/config/schema.js";
import type { FederationConfig } from "../src/config/types.js";
import { createBundleCache } from "../src/federation/bundle-cache.js";
import { type BundleFetcher, createBundleFetcher } from "../src/federation/fetcher/index.js";
import { createSyncEngine, type SyncEngine } from "../src/federation/manager.js";
import { createLivePartnerIndex } from "../src/federation/partner-authorities.js";
import { createStaticRegistry } from "../src/federation/registry.js";
import type { Relationship } from "../src/federation/relationship.js";
import { refreshIntervalSeconds } from "../src/federation/schedule.js";
import { type StalenessState, staleness } from "../src/federation/staleness.js";
import { createLogger, type LogLevel } from "../src/logging.js";
import { createMetrics } from "../src/metrics/metrics.js";
import { buildAuthorityIndex } from "../src/policy/authority-index.js";
import { resolvePolicy } from "../src/policy/merge.js";
import { createTrustBundle, x509AuthorityFromCertificate } from "../src/spiffe/bundle.js";
import { serializeSpiffeBundle } from "../src/spiffe/codec.js";
import type { TrustDomain } from "../src/spiffe/id.js";
import { openRedisStore } from "../src/store/redis/redis-store.js";
import { createCa, createWebCert } from "../test/support/pki.js";
import { startRedisServer } from "../test/support/redis-server.js";
import { flagValue, numberFlag } from "./flags.js";

const OWN_TRUST_DOMAIN = "bench.bundlegate.test" as TrustDomain;
const LOOPBACK_CIDRS = ["127.0.0.0/8", "::1/128"] as const;
const RSS_SAMPLE_MS = 250;
const BASELINE_WARMUP_FETCHES = 500;
const BASELINE_PACED_MAX_SECONDS = 20;

// ---------------------------------------------------------------------------------------------------
// Flags (bench/flags.ts).
// ---------------------------------------------------------------------------------------------------

const AT_LEAST_ONE = { min: 1 } as const;

interface Flags {
  readonly relationships: number;
  readonly durationSeconds: number;
  readonly concurrency: number;
  readonly hintSeconds: number;
  readonly servers: number;
  readonly baselineFetches: number;
  readonly logLevel: LogLevel;
}

function readFlags(): Flags {
  const logLevel = (flagValue("log-level") ?? "info") as LogLevel;
  if (!["fatal", "error", "warn", "info", "debug", "trace", "silent"].includes(logLevel)) {
    throw new Error("--log-level must be a pino level");
  }
  return {
    relationships: Math.floor(numberFlag("relationships", 10_000, AT_LEAST_ONE)),
    durationSeconds: numberFlag("duration", 120, AT_LEAST_ONE),
    concurrency: Math.floor(numberFlag("concurrency", 32, AT_LEAST_ONE)),
    // 100 s: refreshed every 25 s (± 10 % jitter), so each relationship is refreshed several times a run.
    hintSeconds: Math.floor(numberFlag("hint", 100, AT_LEAST_ONE)),
    servers: Math.floor(numberFlag("servers", 4, AT_LEAST_ONE)),
    baselineFetches: Math.floor(numberFlag("baseline-fetches", 5000, AT_LEAST_ONE)),
    logLevel,
  };
}

const trustDomainOf = (n: number) => `p${n}.bench.test` as TrustDomain;

// ---------------------------------------------------------------------------------------------------
// The partner process: every partner endpoint, so its CPU is not counted as the engine's.
// ---------------------------------------------------------------------------------------------------

type ToParent =
  | { type: "ready"; ports: number[]; caPem: string; etags: string[]; generateSeconds: number; bodyBytes: number }
  | { type: "stats"; ok: number; notModified: number; other: number; cpuSeconds: number };
type ToPartners = { type: "stats" } | { type: "stop" };

async function runPartners(flags: Flags): Promise<void> {
  const send = (message: ToParent) => process.send?.(message);
  const started = performance.now();
  const webCa = await createCa({ trustDomain: "bench-web-ca.test", withSpiffeUri: false, subject: "CN=bench web CA" });
  const cert = await createWebCert({ issuer: webCa, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });

  // One authority per partner: authorities shared between partners would be (rightly) quarantined.
  const bodies: Buffer[] = [];
  const etags: string[] = [];
  const BATCH = 64;
  for (let first = 0; first < flags.relationships; first += BATCH) {
    const cas = await Promise.all(
      Array.from({ length: Math.min(BATCH, flags.relationships - first) }, (_, i) =>
        createCa({ trustDomain: trustDomainOf(first + i) }),
      ),
    );
    for (const ca of cas) {
      const bundle = createTrustBundle({
        x509Authorities: [x509AuthorityFromCertificate(new X509Certificate(ca.der))],
        refreshHintSeconds: flags.hintSeconds,
        sequence: 1n,
      });
      const body = Buffer.from(serializeSpiffeBundle(bundle));
      bodies.push(body);
      etags.push(`"${createHash("sha256").update(body).digest("hex")}"`);
    }
  }
  const generateSeconds = (performance.now() - started) / 1000;

  let ok = 0;
  let notModified = 0;
  let other = 0;
  const cpuAtStart = process.cpuUsage();
  const servers: Server[] = [];
  for (let i = 0; i < flags.servers; i++) {
    const server = createServer({ cert: cert.pem, key: cert.keyPem }, (req, res) => {
      const match = /^\/p\/(\d+)$/.exec(req.url ?? "");
      const n = match ? Number(match[1]) : -1;
      const body = bodies[n];
      const etag = etags[n];
      if (req.method !== "GET" || body === undefined || etag === undefined) {
        other++;
        res.writeHead(404).end();
        return;
      }
      if (req.headers["if-none-match"] === etag) {
        notModified++;
        res.writeHead(304, { ETag: etag, "Cache-Control": `public, max-age=${flags.hintSeconds}` }).end();
        return;
      }
      ok++;
      res
        .writeHead(200, {
          "Content-Type": "application/json",
          "Content-Length": String(body.length),
          ETag: etag,
          "Cache-Control": `public, max-age=${flags.hintSeconds}`,
        })
        .end(body);
    });
    server.listen(0, "127.0.0.1");
    await once(server, "listening");
    servers.push(server);
  }

  process.on("message", (message: ToPartners) => {
    if (message.type === "stats") {
      const cpu = process.cpuUsage(cpuAtStart);
      send({ type: "stats", ok, notModified, other, cpuSeconds: (cpu.user + cpu.system) / 1e6 });
    } else if (message.type === "stop") {
      for (const server of servers) server.close();
      process.disconnect?.();
      process.exit(0);
    }
  });
  send({
    type: "ready",
    ports: servers.map((server) => (server.address() as AddressInfo).port),
    caPem: webCa.pem,
    etags,
    generateSeconds,
    bodyBytes: bodies.reduce((sum, body) => sum + body.length, 0) / Math.max(1, bodies.length),
  });
}

interface PartnerProcess {
  readonly ready: Extract<ToParent, { type: "ready" }>;
  stats(): Promise<Extract<ToParent, { type: "stats" }>>;
  stop(): Promise<void>;
  kill(): void;
}

async function startPartnerProcess(): Promise<PartnerProcess> {
  const child: ChildProcess = fork(fileURLToPath(import.meta.url), [...process.argv.slice(2), "--partner-process"], {
    // tsx's loader flags, without a --cpu-prof meant for this process.
    execArgv: process.execArgv.filter((arg) => !arg.startsWith("--cpu-prof")),
    stdio: ["ignore", "inherit", "inherit", "ipc"],
  });
  const exited = once(child, "exit");
  const next = <T extends ToParent["type"]>(type: T) =>
    new Promise<Extract<ToParent, { type: T }>>((resolve, reject) => {
      const onMessage = (message: ToParent) => {
        if (message.type !== type) return;
        child.off("message", onMessage);
        resolve(message as Extract<ToParent, { type: T }>);
      };
      child.on("message", onMessage);
      void exited.then(([code]) => reject(new Error(`the partner process exited (${String(code)})`)));
    });
  const ready = await next("ready");
  return {
    ready,
    stats: () => {
      const reply = next("stats");
      child.send({ type: "stats" } satisfies ToPartners);
      return reply;
    },
    stop: async () => {
      child.send({ type: "stop" } satisfies ToPartners);
      await exited;
    },
    kill: () => child.kill("SIGKILL"),
  };
}

// ---------------------------------------------------------------------------------------------------
// Measurements.
// ---------------------------------------------------------------------------------------------------

const cpuSeconds = () => {
  const usage = process.cpuUsage();
  return (usage.user + usage.system) / 1e6;
};

interface RedisCounters {
  readonly total: number;
  readonly byCommand: ReadonlyMap<string, number>;
}

/** One INFO call (itself counted by the next one: the caller subtracts it). */
async function redisCounters(client: Redis): Promise<RedisCounters> {
  const text = (await client.call("INFO", "stats", "commandstats")) as string;
  const total = Number(/^total_commands_processed:(\d+)/m.exec(text)?.[1] ?? Number.NaN);
  const byCommand = new Map<string, number>();
  for (const match of text.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) byCommand.set(match[1]!, Number(match[2]));
  return { total, byCommand };
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface BaselineResult {
  readonly cpuPerFetch: number;
  readonly fetchesPerSecond: number;
  readonly fetches: number;
  readonly errors: number;
}

/**
 * The bare fetcher: `count` conditional GETs (304) over the relationships' URLs, `concurrency` at a time,
 * as fast as they go or, with `ratePerSecond`, started at that pace (CPU per operation falls as a process
 * nears saturation, so the engine is compared with a baseline doing the same number of fetches a second).
 */
async function runBaseline(
  fetcher: BundleFetcher,
  relationships: readonly Relationship[],
  etags: readonly string[],
  caPem: string,
  options: { readonly concurrency: number; readonly count: number; readonly ratePerSecond?: number },
): Promise<BaselineResult> {
  let next = 0;
  let errors = 0;
  const run = async (total: number, ratePerSecond: number | undefined) => {
    next = 0;
    const startedAt = performance.now();
    const worker = async () => {
      for (;;) {
        const i = next++;
        if (i >= total) return;
        if (ratePerSecond !== undefined) {
          const wait = startedAt + (i / ratePerSecond) * 1000 - performance.now();
          if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
        }
        const n = i % relationships.length;
        const relationship = relationships[n]!;
        try {
          const result = await fetcher.fetch({
            url: relationship.endpointUrl,
            profile: { kind: "https_web", caPem },
            allowedCidrs: relationship.allowedCidrs,
            ifNoneMatch: etags[n]!,
          });
          if (result.kind !== "not_modified") errors++;
        } catch {
          errors++;
        }
      }
    };
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  };
  await run(BASELINE_WARMUP_FETCHES, undefined);
  errors = 0;
  const cpuBefore = cpuSeconds();
  const started = performance.now();
  await run(options.count, options.ratePerSecond);
  return {
    cpuPerFetch: (cpuSeconds() - cpuBefore) / options.count,
    fetchesPerSecond: options.count / ((performance.now() - started) / 1000),
    fetches: options.count,
    errors,
  };
}

// ---------------------------------------------------------------------------------------------------
// The run.
// ---------------------------------------------------------------------------------------------------

async function main(flags: Flags): Promise<number> {
  const N = flags.relationships;
  const rssPeak = { bytes: process.memoryUsage().rss };
  const rssTimer = setInterval(() => {
    rssPeak.bytes = Math.max(rssPeak.bytes, process.memoryUsage().rss);
  }, RSS_SAMPLE_MS);
  rssTimer.unref();

  const redis = await startRedisServer();
  onFailure.push(() => (redis.controllable ? redis.stop() : undefined));
  const partners = await startPartnerProcess();
  onFailure.push(() => partners.kill());
  const { ports, caPem, etags } = partners.ready;
  const stats = new Redis(redis.url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await stats.connect();

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
    // Lowered so a short hint is taken as given (the default floor is 60 s).
    minRefreshHintSeconds: Math.min(F.min_refresh_hint_seconds, flags.hintSeconds),
    maxRefreshHintSeconds: F.max_refresh_hint_seconds,
    defaultRefreshHintSeconds: F.default_refresh_hint_seconds,
    jitterRatio: F.jitter_ratio,
    backoffInitialSeconds: F.backoff_initial_seconds,
  };
  const intervalSeconds = refreshIntervalSeconds(flags.hintSeconds, federation);

  const relationships: Relationship[] = Array.from({ length: N }, (_, n) => ({
    trustDomain: trustDomainOf(n),
    endpointUrl: `https://localhost:${ports[n % ports.length]}/p/${n}`,
    profile: { kind: "https_web", caPem },
    owner: "bench",
    labels: {},
    allowedCidrs: LOOPBACK_CIDRS,
    policy: resolvePolicy(),
    state: "active",
    origin: "config",
  }));
  const indexOf = new Map<TrustDomain, number>(relationships.map((relationship, n) => [relationship.trustDomain, n]));

  const logger = createLogger(
    { level: flags.logLevel, name: "bench-sync" },
    pino.destination({ dest: "/dev/null", sync: true }),
  );
  const fetcher = createBundleFetcher({
    maxBytes: federation.maxBundleBytes,
    connectTimeoutMs: federation.connectTimeoutMs,
    headersTimeoutMs: federation.headersTimeoutMs,
    totalTimeoutMs: federation.totalTimeoutMs,
    maxRedirects: federation.maxRedirects,
    now: () => systemClock.now(),
    userAgent: `bundlegate/${VERSION}`,
  });

  // (1) The bare fetcher flat out.
  const capacity = await runBaseline(fetcher, relationships, etags, caPem, {
    concurrency: flags.concurrency,
    count: flags.baselineFetches,
  });

  // (2) and (3): the engine, wired as src/app.ts wires it.
  const store = await openRedisStore({
    url: redis.url,
    keyPrefix: "bundlegate",
    commandTimeoutMs: 2000,
    trustDomain: OWN_TRUST_DOMAIN,
    logger,
  });
  const ownCa = await createCa({ trustDomain: OWN_TRUST_DOMAIN });
  const ownBundle = createTrustBundle({
    x509Authorities: [x509AuthorityFromCertificate(new X509Certificate(ownCa.der))],
  });
  const ownAuthorities = buildAuthorityIndex([{ owner: OWN_TRUST_DOMAIN, bundle: ownBundle }]);
  const cache = createBundleCache();
  const partnerAuthorities = createLivePartnerIndex(cache);
  const metrics = createMetrics({ version: VERSION });

  const lastSuccess = new Float64Array(N).fill(Number.NaN);
  const maxGapMs = { steady: 0 };
  const lateness: number[] = [];
  const steadyResults = new Map<string, number>();
  const allResults = new Map<string, number>();
  let synced = 0;
  let steady: { at: number; cpu: number; redis: RedisCounters; fetches: number } | undefined;
  let fetches = 0;
  let windowClosed = false;
  let resolveSynced: () => void = () => {};
  const allSynced = new Promise<void>((resolve) => {
    resolveSynced = resolve;
  });

  // The hooks run only after start(), when `engine` is set.
  const engine: SyncEngine = createSyncEngine({
    registry: createStaticRegistry(relationships),
    store,
    fetcher,
    cache,
    ownTrustDomain: OWN_TRUST_DOMAIN,
    ownBundle: () => ownBundle,
    ownAuthorities: () => ownAuthorities,
    partnerAuthorities: () => partnerAuthorities,
    federation,
    clock: systemClock,
    logger,
    replicaId: "bench",
    concurrency: flags.concurrency,
    hooks: {
      onFetch: (trustDomain, result, seconds) => {
        metrics.recordFetch(trustDomain, result, seconds);
        fetches++;
        allResults.set(result, (allResults.get(result) ?? 0) + 1);
        const n = indexOf.get(trustDomain);
        if (n === undefined) return;
        const now = Date.now();
        if (steady && !windowClosed) {
          steadyResults.set(result, (steadyResults.get(result) ?? 0) + 1);
          // The status the engine still holds is the one this refresh was scheduled by.
          const due = engine.status(trustDomain)?.nextRefreshAt;
          if (due !== undefined) lateness.push(now - seconds * 1000 - due);
        }
        const success = !result.startsWith("ERR_") && result !== "rejected";
        if (!success) return;
        const previous = lastSuccess[n]!;
        if (Number.isNaN(previous)) {
          if (++synced === N) resolveSynced();
        } else if (steady && !windowClosed) {
          maxGapMs.steady = Math.max(maxGapMs.steady, now - previous);
        }
        lastSuccess[n] = now;
      },
      onDecision: (trustDomain, decision) => metrics.recordDecision(trustDomain, decision),
    },
  });

  const loopDelay = monitorEventLoopDelay({ resolution: 10 });
  const memory: Array<[string, NodeJS.MemoryUsage]> = [["before the engine", process.memoryUsage()]];
  /** Redis first: what the await lets happen is then on the window's side of the line, as the counters are. */
  const snapshot = async () => {
    const redisNow = await redisCounters(stats);
    return { at: performance.now(), cpu: cpuSeconds(), redis: redisNow, fetches };
  };
  const engineStarted = performance.now();
  const cpuAtStart = cpuSeconds();
  await engine.start();
  const deadline = new Promise<"deadline">((resolve) =>
    setTimeout(() => resolve("deadline"), flags.durationSeconds * 1000),
  );
  const first = await Promise.race([allSynced.then(() => "synced" as const), deadline]);
  const initialSeconds = (performance.now() - engineStarted) / 1000;
  const initialCpu = cpuSeconds() - cpuAtStart;
  const initialFetches = fetches;
  memory.push(["after the initial sync", process.memoryUsage()]);
  if (first === "synced") {
    steady = await snapshot();
    loopDelay.enable();
    await deadline;
  }
  const end = await snapshot();
  windowClosed = true;
  const windowResults = new Map(steadyResults);
  const windowLateness = [...lateness].sort((a, b) => a - b);
  loopDelay.disable();
  memory.push(["end of the steady window", process.memoryUsage()]);

  // Freshness as the spec defines it, from what the engine knows at the end.
  const now = systemClock.now();
  const states: Record<StalenessState, number> = { fresh: 0, stale: 0, critical: 0, never_synced: 0 };
  for (const relationship of relationships) {
    const status = engine.status(relationship.trustDomain);
    const state = staleness({
      lastSuccessAt: status?.lastSuccessAt === undefined ? undefined : new Date(status.lastSuccessAt),
      hintSeconds: cache.get(relationship.trustDomain)?.bundle.refreshHintSeconds ?? flags.hintSeconds,
      federation,
      now,
    }).state;
    states[state]++;
  }

  await engine.stop();
  // The baseline proper: the bare fetcher at the pace the engine fetched in its steady window.
  const engineRate = steady ? (end.fetches - steady.fetches) / ((end.at - steady.at) / 1000) : 0;
  const paced =
    engineRate > 0
      ? await runBaseline(fetcher, relationships, etags, caPem, {
          concurrency: flags.concurrency,
          count: Math.max(100, Math.min(flags.baselineFetches, Math.round(engineRate * BASELINE_PACED_MAX_SECONDS))),
          ratePerSecond: engineRate,
        })
      : undefined;
  await store.close();
  partnerAuthorities.close();
  const served = await partners.stats();
  await partners.stop();
  stats.disconnect();
  if (redis.controllable) await redis.stop();
  clearInterval(rssTimer);
  rssPeak.bytes = Math.max(rssPeak.bytes, process.memoryUsage().rss);

  // ---------------------------------------------------------------------------------------------------
  // Report.
  // ---------------------------------------------------------------------------------------------------
  const errors = [...allResults].filter(([result]) => result.startsWith("ERR_") || result === "rejected");
  const errorCount = errors.reduce((sum, [, count]) => sum + count, 0);
  const rows: Array<[string, string]> = [];
  const row = (name: string, value: string) => rows.push([name, value]);
  const f = (value: number, digits = 2) => (Number.isFinite(value) ? value.toFixed(digits) : "-");
  const mib = (bytes: number) => `${f(bytes / 2 ** 20, 0)} MiB`;
  const count = (map: ReadonlyMap<string, number>) =>
    [...map]
      .sort((a, b) => b[1] - a[1])
      .map(([name, value]) => `${name} ${value}`)
      .join(", ");
  const needed = N / intervalSeconds;

  row(
    "setup",
    `${N} relationships, ${ports.length} partner servers in a child process (https_web, test CA, 304 on If-None-Match), ` +
      `bundles of one X.509 authority (${Math.round(partners.ready.bodyBytes)} B), generated in ${f(partners.ready.generateSeconds, 1)} s`,
  );
  row(
    "schedule",
    `hint ${flags.hintSeconds} s -> every ${intervalSeconds} s ±${federation.jitterRatio * 100} % (needs ${f(needed, 0)} fetches/s); ` +
      `engine concurrency ${flags.concurrency}; log level ${flags.logLevel}; ${os.availableParallelism()} CPUs`,
  );
  row(
    "initial sync",
    first === "synced"
      ? `${N} accepted in ${f(initialSeconds, 1)} s (${f(initialFetches / initialSeconds, 0)} fetches/s, ` +
          `${f((initialCpu / Math.max(1, initialFetches)) * 1000)} CPU s per 1,000)`
      : `NOT DONE: ${synced} of ${N} synced within ${flags.durationSeconds} s`,
  );

  let exit = 0;
  if (steady) {
    const windowSeconds = (end.at - steady.at) / 1000;
    const windowFetches = end.fetches - steady.fetches;
    const rate = windowFetches / windowSeconds;
    const engineCpuPerFetch = (end.cpu - steady.cpu) / Math.max(1, windowFetches);
    const unchanged = windowResults.get("unchanged") ?? 0;
    // `end`'s INFO counts the one `steady` made.
    const commands = end.redis.total - steady.redis.total - 1;
    const byCommand = new Map<string, number>();
    for (const [name, calls] of end.redis.byCommand) {
      const delta = calls - (steady.redis.byCommand.get(name) ?? 0) - (name === "info" ? 1 : 0);
      if (delta > 0) byCommand.set(name, delta);
    }
    const perRefresh = [...byCommand]
      .sort((a, b) => b[1] - a[1])
      .map(([name, calls]) => `${name} ${f(calls / Math.max(1, unchanged))}`);
    row(
      "steady window",
      `${f(windowSeconds, 1)} s, ${windowFetches} fetches, ${f(rate, 0)}/s (needed ${f(needed, 0)}/s): ${count(windowResults)}`,
    );
    if (windowSeconds < intervalSeconds * 1.5) {
      row("  caution", "the window is shorter than 1.5 refresh intervals: figures below are rough");
    }
    row("CPU s per 1,000 fetches", `${f(engineCpuPerFetch * 1000, 3)} engine (whole process over the steady window)`);
    row(
      "  baseline",
      paced
        ? `${f(paced.cpuPerFetch * 1000, 3)} bare fetcher.fetch, the same conditional GETs (304) over the same URLs, ` +
            `paced at the engine's rate: ${f(paced.fetchesPerSecond, 0)}/s (${paced.fetches} fetches` +
            `${paced.errors > 0 ? `, ${paced.errors} errors` : ""})`
        : "-",
    );
    row(
      "  engine / baseline",
      paced ? `${f(engineCpuPerFetch / paced.cpuPerFetch)}x (what policy, store and scheduling add per fetch)` : "-",
    );
    row(
      "  bare fetcher flat out",
      `${f(capacity.cpuPerFetch * 1000, 3)} at ${f(capacity.fetchesPerSecond, 0)}/s with concurrency ${flags.concurrency} ` +
        `(${capacity.fetches} fetches before the engine started${capacity.errors > 0 ? `, ${capacity.errors} errors` : ""})`,
    );
    row(
      "Redis commands / unchanged refresh",
      `${f(commands / Math.max(1, unchanged))} (INFO total_commands_processed, commands inside Lua scripts included)`,
    );
    row("  by command", perRefresh.join(", "));
    row(
      "refresh start - due time",
      `p50 ${f(percentile(windowLateness, 50), 0)} ms, p99 ${f(percentile(windowLateness, 99), 0)} ms, max ${f(windowLateness.at(-1) ?? Number.NaN, 0)} ms`,
    );
    // Kept: the engine fetches as often as the hints ask, and the typical refresh starts on time (the
    // first wave after the initial sync is bunched, so the tail is judged by the rate, not by p99).
    const lateP50 = percentile(windowLateness, 50);
    const kept = rate >= 0.95 * needed && lateP50 <= intervalSeconds * 100;
    row(
      "schedule kept",
      kept
        ? `yes (${f(rate, 0)} fetches/s for ${f(needed, 0)} needed; median start ${f(lateP50, 0)} ms after due)`
        : `NO: ${f(rate, 0)} fetches/s for ${f(needed, 0)} needed; each relationship is refreshed about every ${f(N / rate, 1)} s, not ${intervalSeconds} s`,
    );
    row(
      "longest gap between successes",
      `${f(maxGapMs.steady / 1000, 1)} s (interval ${intervalSeconds} s ±${federation.jitterRatio * 100} %; stale after ${3 * flags.hintSeconds} s)`,
    );
    row(
      "event loop delay",
      `p50 ${f(loopDelay.percentile(50) / 1e6, 1)} ms, p99 ${f(loopDelay.percentile(99) / 1e6, 1)} ms, max ${f(loopDelay.max / 1e6, 1)} ms`,
    );
  } else {
    exit = 1;
  }
  row(
    "peak RSS",
    `${mib(rssPeak.bytes)} sampled every ${RSS_SAMPLE_MS} ms; maxRSS ${mib(process.resourceUsage().maxRSS * 1024)} (whole run, baselines included)`,
  );
  for (const [phase, usage] of memory) {
    row(
      `  ${phase}`,
      `rss ${mib(usage.rss)}, heap used ${mib(usage.heapUsed)} of ${mib(usage.heapTotal)}, external ${mib(usage.external)}`,
    );
  }
  row(
    "partner servers",
    `${served.ok} x 200, ${served.notModified} x 304, ${served.other} other; ` +
      `${f((served.cpuSeconds / Math.max(1, served.ok + served.notModified)) * 1000, 3)} CPU s per 1,000 requests (not counted above)`,
  );
  if (!redis.controllable) row("  caution", "REDIS_URL: Redis is shared, its command counts include others' traffic");
  row("fetch errors", errorCount === 0 ? "none" : count(new Map(errors)));
  const allFresh = states.fresh === N;
  row(
    "freshness at the end",
    `fresh ${states.fresh}, stale ${states.stale}, critical ${states.critical}, never_synced ${states.never_synced}`,
  );
  row("every relationship stayed fresh", allFresh && errorCount === 0 ? "yes" : "NO");
  if (!allFresh || errorCount > 0) exit = 1;

  const width = Math.max(...rows.map(([name]) => name.length));
  process.stdout.write(`\nbench/sync (${VERSION})\n\n`);
  for (const [name, value] of rows) process.stdout.write(`  ${name.padEnd(width)}  ${value}\n`);
  process.stdout.write("\n");
  return exit;
}

/** What to tear down if the run fails half-way, so no redis-server or partner process outlives it. */
const onFailure: Array<() => unknown> = [];

if (process.argv.includes("--partner-process")) {
  await runPartners(readFlags());
} else {
  try {
    process.exitCode = await main(readFlags());
  } catch (error) {
    process.stderr.write(`bench/sync failed: ${(error as Error).stack ?? String(error)}\n`);
    for (const cleanup of onFailure.reverse()) await Promise.resolve(cleanup()).catch(() => undefined);
    process.exit(1);
  }
}
