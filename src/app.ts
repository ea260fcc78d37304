/**
 * The composition root: builds every part from the validated config, starts them in order
 * (store, local bundle, certificates, public endpoints, internal listener) and stops them in reverse.
 * A part that fails to start stops the ones already started, so a failed start leaves nothing behind.
 */
import { randomBytes } from "node:crypto";
import { createServer, type Server } from "node:http";
import { createServer as createHttpsServer, Server as HttpsServer } from "node:https";
import type { AddressInfo } from "node:net";
import { hostname } from "node:os";
import { createAdminApi } from "./api/admin/assemble.js";
import { createConsumerAuth } from "./api/auth/consumer-auth.js";
import { createDistributionRouter } from "./api/distribution/router.js";
import { createInternalApp } from "./api/internal-app.js";
import { VERSION } from "./cli/version.js";
import type { Clock } from "./clock.js";
import type { BundlegateConfig, ListenConfig } from "./config/types.js";
import { createBundleEndpoint } from "./endpoint/server.js";
import { BundlegateError } from "./errors.js";
import { type BundleCache, createBundleCache } from "./federation/bundle-cache.js";
import { createExpiryEnforcer } from "./federation/expiry.js";
import { createBundleFetcher } from "./federation/fetcher/index.js";
import { createManagedRegistry, type ManagedRegistry } from "./federation/managed-registry.js";
import { createSyncEngine, type SyncEngine } from "./federation/manager.js";
import { createLivePartnerIndex } from "./federation/partner-authorities.js";
import type { RelationshipRegistry } from "./federation/registry.js";
import type { Relationship } from "./federation/relationship.js";
import type { Logger } from "./logging.js";
import { createMetrics, type EndpointProfile, type Metrics } from "./metrics/metrics.js";
import { createQuarantineIndex } from "./metrics/quarantine-index.js";
import { createMetricsServer } from "./metrics/server.js";
import { boundedHealthCheck } from "./metrics/store-probe.js";
import { buildAuthorityIndex } from "./policy/authority-index.js";
import { createRelayHandler } from "./relay/handler.js";
import { createRelayServer } from "./relay/server.js";
import { createLocalBundleSource, type LocalBundleSource } from "./sources/local-bundle.js";
import { checkSvidCredentials, checkWebCredentials, createFileCredentialSource } from "./sources/tls-credentials.js";
import type { TlsCredentials, Watched } from "./sources/types.js";
import { parseSpiffeId } from "./spiffe/id.js";
import { openStore } from "./store/open-store.js";
import type { Store } from "./store/types.js";

export interface AppDependencies {
  readonly logger: Logger;
  readonly clock: Clock;
  /** Replaces the registry altogether (tests): no API-made relationships, no expiry enforcement, no admin API. */
  readonly registry?: RelationshipRegistry;
  /** Relationships made in code (`bundlegate dev`'s demo partner), read-only through the API like config ones. */
  readonly relationships?: readonly Relationship[];
  /** Names this replica in leases and status; defaults to the host name and a random suffix. */
  readonly replicaId?: string;
}

export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface RunningApp {
  readonly addresses: {
    readonly httpsWeb?: ListenAddress;
    readonly httpsSpiffe?: ListenAddress;
    readonly relay?: ListenAddress;
    readonly internal: ListenAddress;
    /** The Prometheus scrape listener (GET /metrics). */
    readonly metrics: ListenAddress;
  };
  readonly localBundle: LocalBundleSource;
  /** Every partner's last-known-good, in memory. */
  readonly cache: BundleCache;
  readonly engine: SyncEngine;
  readonly credentials: Partial<Record<EndpointProfile, Watched<TlsCredentials>>>;
  readonly metrics: Metrics;
  readonly store: Store;
  stop(): Promise<void>;
}

export async function startApp(config: BundlegateConfig, deps: AppDependencies): Promise<RunningApp> {
  const { logger, clock } = deps;
  const stops: Array<() => Promise<void> | void> = [];
  const stopAll = async () => {
    for (const stop of stops.reverse()) {
      try {
        await stop();
      } catch (error) {
        logger.warn({ err: (error as Error).message }, "error while stopping");
      }
    }
  };

  try {
    const metrics = createMetrics({ version: VERSION });
    const store = await openStore(config.store, {
      trustDomain: config.trustDomain,
      logger,
      auditMaxEntries: config.admin?.auditLimit,
    });
    stops.push(() => store.close());

    const localBundle = await createLocalBundleSource({
      file: config.localBundle.file,
      format: config.localBundle.format,
      defaultRefreshHintSeconds: config.localBundle.refreshHintSeconds,
      maxBytes: config.localBundle.maxBytes,
      store,
      logger,
      pollIntervalMs: config.filePollIntervalMs,
      onReload: (result, code) => metrics.localBundleReloads.inc({ result, code: code ?? "" }),
    });
    stops.push(() => localBundle.close());
    metrics.observeLocalBundle(localBundle);

    const credentials: Partial<Record<EndpointProfile, Watched<TlsCredentials>>> = {};
    const addresses: {
      httpsWeb?: ListenAddress;
      httpsSpiffe?: ListenAddress;
      relay?: ListenAddress;
      internal?: ListenAddress;
      metrics?: ListenAddress;
    } = {};
    // A reload is counted once: validation failures by the credential source (with their code), and
    // what the endpoint applied (ok) or Node refused (ERR_TLS_CONTEXT) by the endpoint.
    const onCredentialReload = (profile: EndpointProfile | "internal") => (result: "ok" | "error", code?: string) => {
      if (result === "error") metrics.tlsReloads.inc({ profile, result, code: code ?? "" });
    };
    const onTlsReload = (profile: EndpointProfile, result: "ok" | "error") =>
      metrics.tlsReloads.inc({ profile, result, code: result === "ok" ? "" : "ERR_TLS_CONTEXT" });

    const endpointShared = {
      path: config.endpoint.path,
      bundle: localBundle,
      timeouts: config.endpoint.timeouts,
      ...(config.endpoint.cacheMaxAgeSeconds === undefined
        ? {}
        : { cacheMaxAgeSeconds: config.endpoint.cacheMaxAgeSeconds }),
      onRequest: (profile: EndpointProfile, code: number, seconds: number) => {
        metrics.endpointRequests.inc({ profile, code: String(code) });
        metrics.endpointRequestSeconds.observe({ profile }, seconds);
      },
    };

    /** One profile: its watched certificate pair, checked as the profile requires, and its listener. */
    const startProfile = async (
      profile: EndpointProfile,
      listen: ListenConfig,
      files: { certFile: string; keyFile: string },
      check: (creds: TlsCredentials, now: Date) => void,
      revalidate?: Watched<unknown>,
    ): Promise<ListenAddress> => {
      const source = await createFileCredentialSource({
        ...files,
        check,
        clock,
        pollIntervalMs: config.filePollIntervalMs,
        logger: logger.child({ component: "tls", profile }),
        onReload: onCredentialReload(profile),
        ...(revalidate ? { revalidate } : {}),
      });
      stops.push(() => source.close());
      credentials[profile] = source;
      metrics.observeServingCertificate(profile, source);
      const endpoint = createBundleEndpoint({
        ...endpointShared,
        profile,
        listen,
        credentials: source,
        logger,
        onTlsReload,
      });
      const address = await endpoint.start();
      stops.push(() => endpoint.close());
      return address;
    };

    const web = config.endpoint.httpsWeb;
    if (web) {
      addresses.httpsWeb = await startProfile("https_web", web.listen, web, (creds, now) =>
        checkWebCredentials(creds, { now }),
      );
    }
    const spiffe = config.endpoint.httpsSpiffe;
    if (spiffe) {
      const endpointSpiffeId = parseSpiffeId(spiffe.endpointSpiffeId).uri;
      addresses.httpsSpiffe = await startProfile(
        "https_spiffe",
        spiffe.listen,
        { certFile: spiffe.svidFile, keyFile: spiffe.svidKeyFile },
        // The SVID must chain to the bundle this domain publishes, and is re-checked whenever that changes.
        (creds, now) => checkSvidCredentials(creds, { now, endpointSpiffeId, bundle: localBundle.current().bundle }),
        localBundle,
      );
    }

    const cache = createBundleCache();
    const partnerAuthorities = createLivePartnerIndex(cache);
    stops.push(() => partnerAuthorities.close());
    let ownAuthorities = buildAuthorityIndex([{ owner: config.trustDomain, bundle: localBundle.current().bundle }]);
    const unsubscribeOwn = localBundle.subscribe((served) => {
      ownAuthorities = buildAuthorityIndex([{ owner: config.trustDomain, bundle: served.bundle }]);
    });
    stops.push(unsubscribeOwn);
    const fed = config.federation;
    const fetcher = createBundleFetcher({
      maxBytes: fed.maxBundleBytes,
      connectTimeoutMs: fed.connectTimeoutMs,
      headersTimeoutMs: fed.headersTimeoutMs,
      totalTimeoutMs: fed.totalTimeoutMs,
      maxRedirects: fed.maxRedirects,
      ...(fed.httpsProxy === undefined ? {} : { httpsProxy: fed.httpsProxy }),
      ...(fed.noProxy === undefined ? {} : { noProxy: fed.noProxy }),
      now: () => clock.now(),
      userAgent: `bundlegate/${VERSION}`,
    });
    const replicaId = deps.replicaId ?? `${hostname()}-${randomBytes(3).toString("hex")}`;
    // Config relationships plus those made through the admin API (kept in the store, followed on every replica).
    const managed = deps.registry
      ? undefined
      : createManagedRegistry({
          config: [...config.relationships, ...(deps.relationships ?? [])],
          store,
          ownTrustDomain: config.trustDomain,
          maxBundleBytes: fed.maxBundleBytes,
          clock,
          logger,
        });
    if (managed) {
      await managed.start();
      stops.push(() => managed.close());
    }
    const registry: RelationshipRegistry = deps.registry ?? (managed as ManagedRegistry);
    const engine = createSyncEngine({
      registry,
      store,
      fetcher,
      cache,
      ownTrustDomain: config.trustDomain,
      ownBundle: () => localBundle.current().bundle,
      ownAuthorities: () => ownAuthorities,
      partnerAuthorities: () => partnerAuthorities,
      federation: fed,
      clock,
      logger,
      replicaId,
      hooks: {
        onFetch: (trustDomain, result, seconds) => metrics.recordFetch(trustDomain, result, seconds),
        onDecision: (trustDomain, decision) => metrics.recordDecision(trustDomain, decision),
      },
    });
    await engine.start();
    stops.push(() => engine.stop());

    if (managed) {
      const expiry = createExpiryEnforcer({
        registry: managed,
        store,
        clock,
        logger,
        intervalMs: config.admin?.expiryCheckIntervalMs ?? 5000,
        origin: replicaId,
      });
      await expiry.tick().catch((error: Error) => logger.warn({ err: error.message }, "expiry check failed"));
      expiry.start();
      stops.push(() => expiry.stop());
    }

    // Statuses come from the engine: it re-reads the store's status of a relationship another replica
    // polls whenever it finds that relationship's lease taken or not due (once per interval at least).
    const quarantines = createQuarantineIndex({ store, registry, logger: logger.child({ component: "metrics" }) });
    stops.push(() => quarantines.close());
    stops.push(metrics.trackRelationships(registry));
    metrics.observeFederation({
      relationships: () => registry.list(),
      status: (trustDomain) => engine.status(trustDomain),
      bundle: (trustDomain) => cache.get(trustDomain),
      quarantined: (trustDomain) => quarantines.has(trustDomain),
      federation: fed,
      now: () => clock.now(),
      leasesHeld: () => engine.leasesHeld(),
      degraded: () => engine.degraded(),
      storeUp: boundedHealthCheck(() => store.health(), 1000),
    });

    const routers = [];
    // Closed before the internal listener (held long-polls and watch streams would keep it open), or on a
    // failed start, whichever comes first; each runs once.
    const routerStops: Array<() => void> = [];
    const stopRouters = () => {
      for (const stop of routerStops.splice(0)) stop();
    };
    stops.push(stopRouters);
    if (config.admin && managed) {
      const spiffeAddress = addresses.httpsSpiffe;
      const endpointUrl =
        config.admin.invitations.endpointUrl ??
        (spiffeAddress && config.endpoint.httpsSpiffe
          ? `https://${advertisedHost(spiffeAddress.host)}:${spiffeAddress.port}${config.endpoint.path}`
          : undefined);
      const svid = credentials.https_spiffe;
      routers.push(
        createAdminApi({
          config,
          admin: config.admin,
          store,
          registry: managed,
          engine,
          cache,
          fetcher,
          localBundle,
          ...(svid ? { svid } : {}),
          ...(endpointUrl === undefined ? {} : { endpointUrl }),
          clock,
          logger,
          origin: replicaId,
        }),
      );
    }
    const distributionConfig = config.distribution;
    if (distributionConfig) {
      const distribution = createDistributionRouter({
        cache,
        registry,
        store,
        clock,
        logger,
        authorize: createConsumerAuth({
          trustDomain: config.trustDomain,
          localBundle: () => localBundle.current().bundle,
          audience: distributionConfig.audience,
          tokens: distributionConfig.tokens,
          allow: distributionConfig.allow,
          clock,
          logger,
        }),
      });
      routerStops.push(() => distribution.close());
      routers.push(distribution);
    }

    const relayConfig = config.relay;
    if (relayConfig) {
      const relayed = relayConfig.trustDomains;
      const endpointSpiffeId = parseSpiffeId(relayConfig.endpointSpiffeId).uri;
      const source = await createFileCredentialSource({
        certFile: relayConfig.svidFile,
        keyFile: relayConfig.svidKeyFile,
        check: (creds, now) =>
          checkSvidCredentials(creds, { now, endpointSpiffeId, bundle: localBundle.current().bundle }),
        clock,
        pollIntervalMs: config.filePollIntervalMs,
        logger: logger.child({ component: "tls", listener: "relay" }),
        revalidate: localBundle,
      });
      stops.push(() => source.close());
      const relay = createRelayServer({
        listen: relayConfig.listen,
        credentials: source,
        timeouts: config.endpoint.timeouts,
        logger,
        handler: createRelayHandler({
          cache,
          // Only active relationships, and only those the relay is enabled for, are relayed.
          isServed: (trustDomain) =>
            (relayed === "all" || relayed.includes(trustDomain)) && registry.get(trustDomain)?.state === "active",
        }),
      });
      addresses.relay = await relay.start();
      stops.push(() => relay.close());
    }

    // Metrics are served on their own listener only (metrics.listen): a scrape never shares the admin API's.
    const internalApp = createInternalApp({
      routers,
      readiness: [
        {
          name: "store",
          check: async () => {
            const health = await store.health();
            return health.ok ? undefined : (health.code ?? "ERR_STORE_UNAVAILABLE");
          },
        },
        {
          // Degraded: partners are still polled and served from memory, but outcomes wait to be written.
          name: "sync",
          check: async () => (engine.degraded() ? "ERR_SYNC_DEGRADED" : undefined),
        },
      ],
    });
    const internalTls = config.internal.tls;
    // With TLS the internal listener can take X509-SVID client certificates; the consumer authentication,
    // not Node, decides whether one is valid. Its certificate is watched like the endpoints': a replaced
    // pair that checks out is served to new connections, a broken one is logged and the old one kept.
    const internalCredentials = internalTls
      ? await createFileCredentialSource({
          certFile: internalTls.certFile,
          keyFile: internalTls.keyFile,
          check: (creds, now) => checkWebCredentials(creds, { now }),
          clock,
          pollIntervalMs: config.filePollIntervalMs,
          logger: logger.child({ component: "tls", listener: "internal" }),
          onReload: onCredentialReload("internal"),
        })
      : undefined;
    if (internalCredentials) stops.push(() => internalCredentials.close());
    const internal = internalCredentials
      ? createHttpsServer(
          {
            cert: internalCredentials.current().certPem,
            key: internalCredentials.current().keyPem,
            minVersion: "TLSv1.2",
            requestCert: config.distribution?.clientCertificates ?? false,
            rejectUnauthorized: false,
          },
          internalApp,
        )
      : createServer(internalApp);
    if (internalCredentials && internal instanceof HttpsServer) {
      const https = internal;
      stops.push(
        internalCredentials.subscribe((creds) => {
          try {
            https.setSecureContext({ cert: creds.certPem, key: creds.keyPem, minVersion: "TLSv1.2" });
            metrics.tlsReloads.inc({ profile: "internal", result: "ok", code: "" });
          } catch (error) {
            metrics.tlsReloads.inc({ profile: "internal", result: "error", code: "ERR_TLS_CONTEXT" });
            logger.error(
              { err: (error as Error).message },
              "internal listener certificate refused by TLS; the old one stays",
            );
          }
        }),
      );
    }
    addresses.internal = await listen(internal, config.internal.listen);
    stops.push(() => closeServer(internal));
    stops.push(stopRouters);

    const metricsServer = createMetricsServer({
      registry: metrics.registry,
      listen: config.metrics.listen,
      logger: logger.child({ component: "metrics" }),
    });
    addresses.metrics = await metricsServer.start();
    stops.push(() => metricsServer.close());

    logger.info({ addresses }, "bundlegate started");
    return {
      addresses: addresses as RunningApp["addresses"],
      cache,
      engine,
      localBundle,
      credentials,
      metrics,
      store,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** A wildcard bind address is no name a partner can reach; localhost stands in (set admin.invitations.endpoint_url). */
function advertisedHost(host: string): string {
  if (host === "0.0.0.0" || host === "::" || host === "[::]") return "localhost";
  return host.includes(":") ? `[${host}]` : host;
}

async function listen(server: Server, address: ListenConfig): Promise<ListenAddress> {
  // Listeners that remove each other: events.once("listening") would itself reject with the raw error.
  await new Promise<void>((resolve, reject) => {
    const onError = (cause: Error) => {
      server.off("listening", onListening);
      reject(new BundlegateError("ERR_INTERNAL_LISTEN", `cannot listen on ${address.host}:${address.port}`, { cause }));
    };
    const onListening = () => {
      server.off("error", onError);
      resolve();
    };
    server.once("error", onError);
    server.once("listening", onListening);
    server.listen(address.port, address.host);
  });
  const bound = server.address() as AddressInfo;
  return { host: address.host, port: bound.port };
}

/** Closes the listener; requests still running after the grace period are cut, so a stop never hangs. */
async function closeServer(server: Server, graceMs = 5000): Promise<void> {
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeIdleConnections();
  const force = setTimeout(() => server.closeAllConnections(), graceMs);
  await closed;
  clearTimeout(force);
}
