/**
 * One listener of the public bundle endpoint, for one profile. `https_web` and `https_spiffe` differ only in
 * the certificate they present (a Web PKI certificate, an X509-SVID), so both are this same server; an app
 * serving both profiles starts two of them on two listeners over the same watched bundle.
 *
 * Certificates change while the server runs: each new pair becomes the server's secure context for new
 * connections (`setSecureContext`), while connections already open keep the context they were made with.
 */
import { createServer, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { EndpointTimeouts, ListenConfig } from "../config/types.js";
import { BundlegateError } from "../errors.js";
import type { Logger } from "../logging.js";
import type { ServedBundle, TlsCredentials, Watched } from "../sources/types.js";
import { type BundleRequestHandler, createBundleRequestHandler } from "./handler.js";
import { createEndpointSecureContext, ENDPOINT_TLS_PARAMETERS, endpointSecureContextOptions } from "./tls.js";

export type EndpointProfile = "https_web" | "https_spiffe";

export interface BundleEndpointOptions {
  readonly profile: EndpointProfile;
  readonly listen: ListenConfig;
  /** Origin-form path the bundle is served at. */
  readonly path: string;
  readonly bundle: Watched<ServedBundle>;
  /** Already validated for the profile (key matches, SVID rules) by whoever produces the value. */
  readonly credentials: Watched<TlsCredentials>;
  readonly timeouts: EndpointTimeouts;
  /** Cache-Control max-age; never more than the refresh hint. */
  readonly cacheMaxAgeSeconds?: number | undefined;
  readonly logger: Logger;
  readonly onRequest?: ((profile: EndpointProfile, statusCode: number, seconds: number) => void) | undefined;
  readonly onTlsReload?: ((profile: EndpointProfile, result: "ok" | "error") => void) | undefined;
  /** How long `close()` lets in-flight requests finish before cutting every connection. Default 5000. */
  readonly closeGraceMs?: number | undefined;
}

export interface BundleEndpoint {
  readonly profile: EndpointProfile;
  /**
   * Listens; resolves with the bound address (port 0 in the config picks a free one). Rejects with
   * `ERR_TLS_CONTEXT` when TLS refuses the current credentials, `ERR_ENDPOINT_LISTEN` when the address
   * cannot be bound.
   */
  start(): Promise<{ host: string; port: number }>;
  /** Stops accepting, ends idle keep-alive connections, waits for in-flight ones up to the grace period. */
  close(): Promise<void>;
}

export const DEFAULT_CLOSE_GRACE_MS = 5000;

export function createBundleEndpoint(options: BundleEndpointOptions): BundleEndpoint {
  const { profile, timeouts } = options;
  const log = options.logger.child({ component: "bundle-endpoint", profile });
  const graceMs = options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS;

  let server: Server | undefined;
  let handler: BundleRequestHandler | undefined;
  let unsubscribeCredentials: (() => void) | undefined;
  let starting: Promise<{ host: string; port: number }> | undefined;
  let closing: Promise<void> | undefined;
  // Sockets still in the TLS handshake are not yet HTTP connections, so closeAllConnections() misses them.
  const sockets = new Set<Socket>();

  const reload = (next: TlsCredentials): void => {
    const current = server;
    if (current === undefined) return;
    try {
      // Built first on its own: setSecureContext overwrites the server's options before it builds.
      createEndpointSecureContext(next);
      current.setSecureContext(endpointSecureContextOptions(next));
    } catch (error) {
      const failure =
        error instanceof BundlegateError
          ? error
          : new BundlegateError("ERR_TLS_CONTEXT", "setting the new TLS credentials failed", { cause: error });
      log.error(
        { err: failure, code: failure.code, fingerprint: next.fingerprint },
        "new TLS credentials refused; new connections keep getting the previous certificate",
      );
      options.onTlsReload?.(profile, "error");
      return;
    }
    log.info({ fingerprint: next.fingerprint, notAfter: next.leaf.validTo }, "TLS credentials reloaded");
    options.onTlsReload?.(profile, "ok");
  };

  const cleanUp = (): void => {
    unsubscribeCredentials?.();
    unsubscribeCredentials = undefined;
    handler?.dispose();
  };

  const listen = async (): Promise<{ host: string; port: number }> => {
    const initial = options.credentials.current();
    createEndpointSecureContext(initial);

    const onRequest = options.onRequest;
    handler = createBundleRequestHandler({
      path: options.path,
      bundle: options.bundle,
      cacheMaxAgeSeconds: options.cacheMaxAgeSeconds,
      onResponse:
        onRequest === undefined
          ? undefined
          : (statusCode, startedAtNs) =>
              onRequest(profile, statusCode, Number(process.hrtime.bigint() - startedAtNs) / 1e9),
    });

    const created = createServer(
      {
        ...endpointSecureContextOptions(initial),
        requestCert: ENDPOINT_TLS_PARAMETERS.requestCert,
        // A stalled handshake holds a socket like a stalled request does.
        handshakeTimeout: timeouts.headersMs,
        connectionsCheckingInterval: checkingIntervalMs(timeouts),
      },
      handler,
    );
    created.headersTimeout = timeouts.headersMs;
    created.requestTimeout = timeouts.requestMs;
    created.keepAliveTimeout = timeouts.keepAliveMs;
    created.on("connection", (socket: Socket) => {
      sockets.add(socket);
      socket.once("close", () => sockets.delete(socket));
    });
    created.on("tlsClientError", (error: NodeJS.ErrnoException) => {
      // Scanners and old clients fail handshakes all day: worth a debug line, never an error.
      log.debug({ code: error.code, reason: error.message }, "TLS handshake failed");
    });
    server = created;
    unsubscribeCredentials = options.credentials.subscribe(reload);

    try {
      await new Promise<void>((resolve, reject) => {
        const onError = (error: Error): void => {
          created.off("listening", onListening);
          reject(error);
        };
        const onListening = (): void => {
          created.off("error", onError);
          resolve();
        };
        created.once("error", onError);
        created.once("listening", onListening);
        created.listen(options.listen.port, options.listen.host);
      });
    } catch (error) {
      cleanUp();
      server = undefined;
      throw new BundlegateError("ERR_ENDPOINT_LISTEN", `cannot listen on ${describe(options.listen)}`, {
        cause: error,
        details: { host: options.listen.host, port: options.listen.port },
      });
    }
    created.on("error", (error: NodeJS.ErrnoException) => {
      log.error({ err: error, code: error.code }, "bundle endpoint server error");
    });

    const address = created.address() as AddressInfo;
    log.info({ host: address.address, port: address.port, path: options.path }, "bundle endpoint listening");
    return { host: address.address, port: address.port };
  };

  const shutDown = async (): Promise<void> => {
    await starting?.catch(() => undefined);
    cleanUp();
    const current = server;
    if (current === undefined || !current.listening) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        log.warn({ connections: sockets.size, graceMs }, "closing the bundle endpoint: cutting remaining connections");
        current.closeAllConnections();
        for (const socket of sockets) socket.destroy();
      }, graceMs);
      current.close(() => {
        clearTimeout(force);
        resolve();
      });
      current.closeIdleConnections();
    });
    log.info("bundle endpoint closed");
  };

  return {
    profile,
    start() {
      if (closing !== undefined) {
        return Promise.reject(new BundlegateError("ERR_ENDPOINT_CLOSED", "the bundle endpoint has been closed"));
      }
      if (starting === undefined) {
        starting = listen();
        // A failed start may be retried (a port still held by the process being replaced, say).
        starting.catch(() => {
          if (closing === undefined) starting = undefined;
        });
      }
      return starting;
    },
    close() {
      closing ??= shutDown();
      return closing;
    },
  };
}

/**
 * Node checks header and request timeouts on a timer (30 s by default), so a timeout can run late by up to
 * that period; checking at a quarter of the shortest timeout keeps them close to what is configured.
 */
function checkingIntervalMs(timeouts: EndpointTimeouts): number {
  const shortest = Math.min(
    ...[timeouts.headersMs, timeouts.requestMs].filter((ms) => Number.isFinite(ms) && ms > 0),
    120_000,
  );
  return Math.min(30_000, Math.max(50, Math.floor(shortest / 4)));
}

function describe(listen: ListenConfig): string {
  return listen.host.includes(":") ? `[${listen.host}]:${listen.port}` : `${listen.host}:${listen.port}`;
}
