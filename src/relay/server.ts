/**
 * The relay's listener: presents the gateway's own X509-SVID, so an internal SPIRE server can fetch
 * relayed bundles with the `https_spiffe` profile and the gateway's SPIFFE ID (whose trust domain, this
 * one, SPIRE already trusts). An `https_web` certificate works the same way: it presents what
 * `credentials` holds. TLS, reloads and closing are the public endpoint's (src/endpoint/tls-listener.ts):
 * no client certificate is requested (the federation spec forbids client authentication at bundle endpoints).
 *
 * Error codes: ERR_TLS_CONTEXT (start: TLS refuses the current credentials), ERR_RELAY_LISTEN (start: the
 * address cannot be bound), ERR_RELAY_CLOSED (start after close).
 */
import type { EndpointTimeouts, ListenConfig } from "../config/types.js";
import { createTlsListener, type ListenerHandler, type TlsListener } from "../endpoint/tls-listener.js";
import type { Logger } from "../logging.js";
import type { TlsCredentials, Watched } from "../sources/types.js";

export interface RelayServerOptions {
  readonly listen: ListenConfig;
  /** Usually `createRelayHandler(...)`; its `dispose`, when it has one, is called on close. */
  readonly handler: ListenerHandler;
  /** The gateway's X509-SVID (or web certificate), already validated by whoever produces the value. */
  readonly credentials: Watched<TlsCredentials>;
  readonly timeouts: EndpointTimeouts;
  readonly logger: Logger;
  readonly onTlsReload?: ((result: "ok" | "error") => void) | undefined;
  /** How long `close()` lets in-flight requests finish before cutting every connection. Default 5000. */
  readonly closeGraceMs?: number | undefined;
}

export type RelayServer = TlsListener;

export function createRelayServer(options: RelayServerOptions): RelayServer {
  return createTlsListener({
    name: "relay",
    listen: options.listen,
    createHandler: () => options.handler,
    credentials: options.credentials,
    timeouts: options.timeouts,
    logger: options.logger.child({ component: "relay" }),
    onTlsReload: options.onTlsReload,
    closeGraceMs: options.closeGraceMs,
    codes: { listen: "ERR_RELAY_LISTEN", closed: "ERR_RELAY_CLOSED" },
  });
}
