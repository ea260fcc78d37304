/**
 * An HTTPS listener that presents watched credentials and takes new ones without dropping connections:
 * each new pair becomes the secure context for new connections (`setSecureContext`), while connections
 * already open keep theirs. The public bundle endpoint and the relay are both this listener with their own
 * request handler.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { createServer, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import type { EndpointTimeouts, ListenConfig } from "../config/types.js";
import { BundlegateError } from "../errors.js";
import type { Logger } from "../logging.js";
import type { TlsCredentials, Watched } from "../sources/types.js";
import { createEndpointSecureContext, ENDPOINT_TLS_PARAMETERS, endpointSecureContextOptions } from "./tls.js";

export type ListenerHandler = ((req: IncomingMessage, res: ServerResponse) => void) & { dispose?: () => void };

export interface TlsListenerOptions {
  /** Names the listener in logs and errors ("bundle endpoint", "relay"). */
  readonly name: string;
  readonly listen: ListenConfig;
  /** Made when the listener starts; its `dispose`, when it has one, is called on close. */
  readonly createHandler: () => ListenerHandler;
  /** Already validated (key matches, SVID rules) by whoever produces the value. */
  readonly credentials: Watched<TlsCredentials>;
  readonly timeouts: EndpointTimeouts;
  readonly logger: Logger;
  readonly onTlsReload?: ((result: "ok" | "error") => void) | undefined;
  /** How long `close()` lets in-flight requests finish before cutting every connection. Default 5000. */
  readonly closeGraceMs?: number | undefined;
  /** Error codes for a failed listen and a start after close. */
  readonly codes: { readonly listen: string; readonly closed: string };
  /** Extra fields for the "listening" log line. */
  readonly describe?: Readonly<Record<string, unknown>>;
}

export interface TlsListener {
  /**
   * Listens; resolves with the bound address (port 0 picks a free one). Rejects with `ERR_TLS_CONTEXT` when
   * TLS refuses the current credentials, or the listen code when the address cannot be bound. A failed
   * start may be retried.
   */
  start(): Promise<{ host: string; port: number }>;
  /** Stops accepting, ends idle keep-alive connections, waits for in-flight ones up to the grace period. */
  close(): Promise<void>;
}

export const DEFAULT_CLOSE_GRACE_MS = 5000;

export function createTlsListener(options: TlsListenerOptions): TlsListener {
  const { timeouts, name } = options;
  const log = options.logger;
  const graceMs = options.closeGraceMs ?? DEFAULT_CLOSE_GRACE_MS;

  let server: Server | undefined;
  let handler: ListenerHandler | undefined;
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
      options.onTlsReload?.("error");
      return;
    }
    log.info({ fingerprint: next.fingerprint, notAfter: next.leaf.validTo }, "TLS credentials reloaded");
    options.onTlsReload?.("ok");
  };

  const cleanUp = (): void => {
    unsubscribeCredentials?.();
    unsubscribeCredentials = undefined;
    handler?.dispose?.();
  };

  const listen = async (): Promise<{ host: string; port: number }> => {
    const initial = options.credentials.current();
    createEndpointSecureContext(initial);
    handler = options.createHandler();

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
      throw new BundlegateError(options.codes.listen, `cannot listen on ${describe(options.listen)}`, {
        cause: error,
        details: { host: options.listen.host, port: options.listen.port },
      });
    }
    created.on("error", (error: NodeJS.ErrnoException) => {
      log.error({ err: error, code: error.code }, `${name} server error`);
    });

    const address = created.address() as AddressInfo;
    log.info({ host: address.address, port: address.port, ...options.describe }, `${name} listening`);
    return { host: address.address, port: address.port };
  };

  const shutDown = async (): Promise<void> => {
    await starting?.catch(() => undefined);
    cleanUp();
    const current = server;
    if (current === undefined || !current.listening) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        log.warn({ connections: sockets.size, graceMs }, `closing the ${name}: cutting remaining connections`);
        current.closeAllConnections();
        for (const socket of sockets) socket.destroy();
      }, graceMs);
      current.close(() => {
        clearTimeout(force);
        resolve();
      });
      current.closeIdleConnections();
    });
    log.info(`${name} closed`);
  };

  return {
    start() {
      if (closing !== undefined) {
        return Promise.reject(new BundlegateError(options.codes.closed, `the ${name} has been closed`));
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
