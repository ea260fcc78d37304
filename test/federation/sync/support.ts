/**
 * The harness of the sync engine's integration tests: partner bundle endpoints (plain node:https servers
 * with per-path bundles, per-path request logs, and a certificate that can be swapped), relationships built
 * directly, engines wired as src/app.ts wires them, stores, and wait helpers.
 *
 * Times recorded here are `Date.now()`, the same clock the engines use (systemClock), so request times at
 * a partner can be compared with the `nextRefreshAt` and `lastAttemptAt` the engines write.
 */
import type * as dns from "node:dns";
import type { LookupAddress, LookupOptions } from "node:dns";
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import { type AddressInfo, isIP, type Socket } from "node:net";
import { systemClock } from "../../../src/clock.js";
import type { FederationConfig } from "../../../src/config/types.js";
import { type BundleCache, createBundleCache } from "../../../src/federation/bundle-cache.js";
import { type BundleFetcher, createBundleFetcher, type FetcherOptions } from "../../../src/federation/fetcher/index.js";
import { createSyncEngine, type SyncEngine } from "../../../src/federation/manager.js";
import { createLivePartnerIndex } from "../../../src/federation/partner-authorities.js";
import { createStaticRegistry, type RelationshipRegistry } from "../../../src/federation/registry.js";
import type { EndpointProfileConfig, Relationship } from "../../../src/federation/relationship.js";
import type { BundleFetcherLike } from "../../../src/federation/updater.js";
import { createLogger, type Logger, silentLogger } from "../../../src/logging.js";
import { buildAuthorityIndex } from "../../../src/policy/authority-index.js";
import { resolvePolicy } from "../../../src/policy/merge.js";
import type { TrustPolicy } from "../../../src/policy/types.js";
import type { ServedBundle } from "../../../src/sources/types.js";
import type { TrustBundle } from "../../../src/spiffe/bundle.js";
import { parseTrustDomain, type TrustDomain } from "../../../src/spiffe/id.js";
import { openEmbeddedStore } from "../../../src/store/embedded/embedded-store.js";
import type { RelationshipStatus } from "../../../src/store/federation-state.js";
import { openRedisStore } from "../../../src/store/redis/redis-store.js";
import type { Store } from "../../../src/store/types.js";
import { eventually } from "../../support/eventually.js";
import { createCa, type Issued, pemChain } from "../../support/pki.js";
import { servedBundleOf } from "../../support/served-bundle.js";

/** The trust domain the gateway under test belongs to. */
export const OWN_TD = parseTrustDomain("gateway.test");

/** Partners live on loopback; the SSRF guard refuses it unless a relationship allows it. */
export const LOOPBACK_CIDRS = ["127.0.0.0/8"] as const;

/** `SYNC_TEST_LOG=debug npx vitest run test/federation/sync` shows the engines' log lines. */
export function testLogger(): Logger {
  const level = process.env.SYNC_TEST_LOG;
  return level ? createLogger({ level: level as "debug", name: "sync-test" }) : silentLogger();
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------------------------------------
// Config

/**
 * Short everything: a partner hint of H seconds polls every H/4 s (min hint 1 s, so 0.25 s at the least),
 * failures retry after 0.2 s doubling up to the interval, a lease lapses after 1 s.
 */
export function federationConfig(overrides: Partial<FederationConfig> = {}): FederationConfig {
  return {
    maxBundleBytes: 64 * 1024,
    maxBundleKeys: 1000,
    connectTimeoutMs: 3000,
    headersTimeoutMs: 3000,
    totalTimeoutMs: 6000,
    maxRedirects: 3,
    leaseMs: 1000,
    historyLimit: 20,
    minRefreshHintSeconds: 1,
    maxRefreshHintSeconds: 3600,
    defaultRefreshHintSeconds: 2,
    jitterRatio: 0.1,
    backoffInitialSeconds: 0.2,
    ...overrides,
  };
}

/** The fetcher app.ts builds from the federation config, with optional overrides (an injected lookup). */
export function testFetcher(federation: FederationConfig, overrides: Partial<FetcherOptions> = {}): BundleFetcher {
  return createBundleFetcher({
    maxBytes: federation.maxBundleBytes,
    connectTimeoutMs: federation.connectTimeoutMs,
    headersTimeoutMs: federation.headersTimeoutMs,
    totalTimeoutMs: federation.totalTimeoutMs,
    maxRedirects: federation.maxRedirects,
    now: () => systemClock.now(),
    userAgent: "bundlegate-sync-test",
    ...overrides,
  });
}

/** A DNS lookup answering from a table the test may change at any time; unknown names fail like getaddrinfo. */
export function tableLookup(table: Map<string, string>): typeof dns.lookup {
  const lookup = (hostname: string, options: unknown, callback?: unknown) => {
    const done = (typeof options === "function" ? options : callback) as (
      error: NodeJS.ErrnoException | null,
      address: string | LookupAddress[],
      family?: number,
    ) => void;
    const all = typeof options === "object" && options !== null && (options as LookupOptions).all === true;
    setImmediate(() => {
      const address = table.get(hostname);
      if (address === undefined) {
        const error: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
        error.code = "ENOTFOUND";
        done(error, all ? [] : "");
        return;
      }
      if (all) done(null, [{ address, family: isIP(address) }]);
      else done(null, address, isIP(address));
    });
  };
  return lookup as unknown as typeof dns.lookup;
}

// ---------------------------------------------------------------------------------------------------------
// Bundles

/** A partner CA of trust domain `td`. */
export function partnerCa(td: string, validity: { notBefore?: Date; notAfter?: Date } = {}): Promise<Issued> {
  return createCa({ trustDomain: td, ...validity });
}

/** What a partner serves: the CAs as X.509 authorities, with a sequence and a refresh hint. */
export function bundleOf(cas: readonly Issued[], sequence: number, refreshHintSeconds: number): ServedBundle {
  return servedBundleOf(cas, { sequence: BigInt(sequence), refreshHintSeconds });
}

// ---------------------------------------------------------------------------------------------------------
// Partner endpoints

export type RouteHandler = (req: IncomingMessage, res: ServerResponse) => void;

export interface PartnerServer {
  readonly host: string;
  readonly port: number;
  /** `https://<host>:<port><path>`; `host` defaults to the address the server listens on. */
  url(path: string, host?: string): string;
  /** Serves `bundle` at `path`: 200 with its ETag, 304 to an If-None-Match holding it. */
  serve(path: string, bundle: ServedBundle): void;
  /** Answers requests to `path` with `handler` instead (failure modes). */
  handle(path: string, handler: RouteHandler): void;
  /** Arrival times (Date.now()) of the requests to `path`, in order. */
  requests(path: string): readonly number[];
  /** New connections present `certs` (leaf first) from now on. */
  setCertificate(certs: readonly Issued[]): void;
  close(): Promise<void>;
}

/** An https server on `host` (default 127.0.0.1) presenting `certs` (leaf first); 404 for unknown paths. */
export async function startPartner(certs: readonly Issued[], host = "127.0.0.1"): Promise<PartnerServer> {
  const routes = new Map<string, { bundle: ServedBundle } | { handler: RouteHandler }>();
  const hits = new Map<string, number[]>();
  const sockets = new Set<Socket>();
  const credentials = (chain: readonly Issued[]) => ({ cert: pemChain(...chain), key: chain[0]!.keyPem });

  const server: Server = createServer(credentials(certs), (req, res) => {
    const path = (req.url ?? "/").split("?")[0] ?? "/";
    const list = hits.get(path) ?? [];
    list.push(Date.now());
    hits.set(path, list);
    const route = routes.get(path);
    if (route === undefined) {
      res.writeHead(404, { "content-length": "0" });
      res.end();
      return;
    }
    if ("handler" in route) {
      route.handler(req, res);
      return;
    }
    const { bytes, etag } = route.bundle;
    if (req.headers["if-none-match"] === etag) {
      res.writeHead(304, { etag });
      res.end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json", "content-length": String(bytes.length), etag });
    res.end(bytes);
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  // Clients that refuse the certificate (the point of some tests) end handshakes abruptly.
  server.on("tlsClientError", () => undefined);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, host, () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    host,
    port,
    url: (path, name = host) => `https://${name}:${port}${path}`,
    serve: (path, bundle) => routes.set(path, { bundle }),
    handle: (path, handler) => routes.set(path, { handler }),
    requests: (path) => hits.get(path) ?? [],
    setCertificate: (chain) => server.setSecureContext(credentials(chain)),
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
        for (const socket of sockets) socket.destroy();
      }),
  };
}

// ---------------------------------------------------------------------------------------------------------
// Relationships

export interface RelationshipOptions {
  readonly allowedCidrs?: readonly string[];
  readonly policy?: Partial<TrustPolicy>;
}

function relationship(
  trustDomain: string,
  endpointUrl: string,
  profile: EndpointProfileConfig,
  options: RelationshipOptions,
): Relationship {
  return {
    trustDomain: parseTrustDomain(trustDomain),
    endpointUrl,
    profile,
    owner: "sync-tests",
    labels: {},
    allowedCidrs: options.allowedCidrs ?? LOOPBACK_CIDRS,
    policy: resolvePolicy(options.policy),
    state: "active",
    origin: "config",
  };
}

/** An https_web relationship trusting `caPem` instead of the system roots. */
export function webRelationship(
  trustDomain: string,
  endpointUrl: string,
  caPem: string,
  options: RelationshipOptions = {},
): Relationship {
  return relationship(trustDomain, endpointUrl, { kind: "https_web", caPem }, options);
}

/** An https_spiffe relationship whose endpoint is verified against `bootstrap` until the first success. */
export function spiffeRelationship(
  trustDomain: string,
  endpointUrl: string,
  endpointSpiffeId: string,
  bootstrap: TrustBundle,
  options: RelationshipOptions = {},
): Relationship {
  return relationship(
    trustDomain,
    endpointUrl,
    { kind: "https_spiffe", endpointSpiffeId, bootstrapBundle: bootstrap },
    options,
  );
}

// ---------------------------------------------------------------------------------------------------------
// Stores and engines

export function openTestRedisStore(url: string, keyPrefix: string, commandTimeoutMs = 1000): Promise<Store> {
  return openRedisStore({ url, keyPrefix, commandTimeoutMs, trustDomain: OWN_TD, logger: testLogger() });
}

export function openTestEmbeddedStore(): Promise<Store> {
  return openEmbeddedStore({ logger: testLogger() });
}

export interface FetchRecord {
  readonly trustDomain: TrustDomain;
  readonly result: string;
  readonly at: number;
}

export interface TestEngine {
  readonly engine: SyncEngine;
  readonly cache: BundleCache;
  readonly store: Store;
  readonly replicaId: string;
  /** Every fetch this engine made, in order (the onFetch hook app.ts feeds the metrics with). */
  readonly fetches: FetchRecord[];
  stop(): Promise<void>;
}

export interface EngineOptions {
  readonly store: Store;
  readonly relationships: readonly Relationship[] | RelationshipRegistry;
  readonly federation?: FederationConfig;
  readonly fetcher?: BundleFetcherLike;
  readonly replicaId?: string;
  /** This domain's own bundle; a fresh CA of OWN_TD when absent. */
  readonly ownBundle?: TrustBundle;
  readonly storeRetryMs?: number;
}

/** A started sync engine wired the way src/app.ts wires it (cache, live partner index, own authorities). */
export async function startEngine(options: EngineOptions): Promise<TestEngine> {
  const federation = options.federation ?? federationConfig();
  const registry =
    "list" in options.relationships ? options.relationships : createStaticRegistry(options.relationships);
  const ownBundle = options.ownBundle ?? bundleOf([await createCa({ trustDomain: OWN_TD })], 1, 300).bundle;
  const ownAuthorities = buildAuthorityIndex([{ owner: OWN_TD, bundle: ownBundle }]);
  const cache = createBundleCache();
  const partnerAuthorities = createLivePartnerIndex(cache);
  const replicaId = options.replicaId ?? `replica-${Math.random().toString(16).slice(2, 8)}`;
  const fetches: FetchRecord[] = [];
  const engine = createSyncEngine({
    registry,
    store: options.store,
    fetcher: options.fetcher ?? testFetcher(federation),
    cache,
    ownTrustDomain: OWN_TD,
    ownBundle: () => ownBundle,
    ownAuthorities: () => ownAuthorities,
    partnerAuthorities: () => partnerAuthorities,
    federation,
    clock: systemClock,
    logger: testLogger(),
    replicaId,
    ...(options.storeRetryMs === undefined ? {} : { storeRetryMs: options.storeRetryMs }),
    hooks: {
      onFetch: (trustDomain, result) => fetches.push({ trustDomain, result, at: Date.now() }),
    },
  });
  await engine.start();
  let stopped: Promise<void> | undefined;
  return {
    engine,
    cache,
    store: options.store,
    replicaId,
    fetches,
    stop: () => {
      stopped ??= engine.stop().finally(() => partnerAuthorities.close());
      return stopped;
    },
  };
}

// ---------------------------------------------------------------------------------------------------------
// Cleanup and waiting

/** Things to close after each test, closed last-in first-out; errors do not stop the rest. */
export function createCleanup() {
  const stack: Array<() => Promise<unknown> | unknown> = [];
  return {
    add<T extends () => Promise<unknown> | unknown>(fn: T): void {
      stack.push(fn);
    },
    async run(): Promise<void> {
      for (const fn of stack.splice(0).reverse()) {
        try {
          await fn();
        } catch {
          // Closing is best effort: a test that failed may leave things half-started.
        }
      }
    },
  };
}

export type Cleanup = ReturnType<typeof createCleanup>;

/** A cleanup stack run when the current test finishes: for tests that run concurrently within a file. */
export function useCleanup(onTestFinished: (fn: () => Promise<void>) => void): Cleanup {
  const cleanup = createCleanup();
  onTestFinished(() => cleanup.run());
  return cleanup;
}

/**
 * Polls `read` until `accept` holds; returns the accepted value. A read that throws (a store in an outage)
 * is tried again; the failure names the last value or error seen.
 */
export async function waitUntil<T>(
  read: () => Promise<T> | T,
  accept: (value: T) => boolean,
  timeoutMs = 10_000,
): Promise<T> {
  let last = "nothing read";
  const accepted = await eventually(
    async () => {
      try {
        const value = await read();
        // Boxed: an accepted value may itself be undefined.
        if (accept(value)) return { value };
        last = `last value: ${describeValue(value)}`;
      } catch (error) {
        last = `last error: ${error instanceof Error ? error.message : String(error)}`;
      }
      return undefined;
    },
    { timeoutMs, explain: () => last },
  );
  return accepted.value;
}

function describeValue(value: unknown): string {
  try {
    return JSON.stringify(value, (_key, v: unknown) => (typeof v === "bigint" ? v.toString() : v));
  } catch {
    return String(value);
  }
}

/** The stored status once `accept` holds. */
export function waitForStatus(
  store: Store,
  trustDomain: TrustDomain,
  accept: (status: RelationshipStatus) => boolean,
  timeoutMs = 10_000,
): Promise<RelationshipStatus> {
  return waitUntil(
    () => store.getStatus(trustDomain),
    (status) => status !== undefined && accept(status),
    timeoutMs,
  ) as Promise<RelationshipStatus>;
}

/** Resolves once the engine's cache serves `digest` for the trust domain. */
export function waitForCachedDigest(
  cache: BundleCache,
  trustDomain: TrustDomain,
  digest: string,
  timeoutMs = 10_000,
): Promise<unknown> {
  return waitUntil(
    () => cache.get(trustDomain)?.stored.digest,
    (current) => current === digest,
    timeoutMs,
  );
}

/**
 * Resolves once a relationship is synced to `digest`: served from the engine's cache and held by the store
 * with a status. The cache is filled before the store write is made, so waiting for the cache alone races.
 */
export function waitForSynced(node: TestEngine, trustDomain: TrustDomain, digest: string, timeoutMs = 10_000) {
  return waitUntil(
    async () => ({
      cached: node.cache.get(trustDomain)?.stored.digest,
      stored: (await node.store.getBundle(trustDomain))?.digest,
      status: await node.store.getStatus(trustDomain),
    }),
    ({ cached, stored, status }) => cached === digest && stored === digest && status !== undefined,
    timeoutMs,
  );
}

export interface CacheWatch {
  /** Every digest the cache served, in the order first seen. */
  readonly seen: string[];
  /** Reads that found no bundle at all. */
  readonly misses: number;
  readonly reads: number;
  stop(): void;
}

/** Reads the cache every few ms, as the endpoint and the distribution API would, and records what it serves. */
export function watchCache(cache: BundleCache, trustDomain: TrustDomain, everyMs = 10): CacheWatch {
  const seen: string[] = [];
  let misses = 0;
  let reads = 0;
  const read = () => {
    reads++;
    const entry = cache.get(trustDomain);
    if (entry === undefined) {
      misses++;
      return;
    }
    if (!seen.includes(entry.stored.digest)) seen.push(entry.stored.digest);
  };
  read();
  const timer = setInterval(read, everyMs);
  return {
    seen,
    get misses() {
      return misses;
    },
    get reads() {
      return reads;
    },
    // One last read, so what the cache serves at the end is recorded whatever the timer's phase.
    stop: () => {
      clearInterval(timer);
      read();
    },
  };
}
