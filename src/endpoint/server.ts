/**
 * One listener of the public bundle endpoint, for one profile. `https_web` and `https_spiffe` differ only in
 * the certificate they present (a Web PKI certificate, an X509-SVID), so both are this same server; an app
 * serving both profiles starts two of them on two listeners over the same watched bundle.
 *
 * Certificates change while the server runs: each new pair becomes the server's secure context for new
 * connections (`setSecureContext`), while connections already open keep the context they were made with.
 */
import type { EndpointTimeouts, ListenConfig } from "../config/types.js";
import type { Logger } from "../logging.js";
import type { ServedBundle, TlsCredentials, Watched } from "../sources/types.js";
import { createBundleRequestHandler } from "./handler.js";
import { createTlsListener } from "./tls-listener.js";

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

export function createBundleEndpoint(options: BundleEndpointOptions): BundleEndpoint {
  const { profile } = options;
  const onRequest = options.onRequest;
  const onTlsReload = options.onTlsReload;
  const listener = createTlsListener({
    name: "bundle endpoint",
    listen: options.listen,
    credentials: options.credentials,
    timeouts: options.timeouts,
    logger: options.logger.child({ component: "bundle-endpoint", profile }),
    closeGraceMs: options.closeGraceMs,
    codes: { listen: "ERR_ENDPOINT_LISTEN", closed: "ERR_ENDPOINT_CLOSED" },
    describe: { path: options.path },
    onTlsReload: onTlsReload === undefined ? undefined : (result) => onTlsReload(profile, result),
    createHandler: () =>
      createBundleRequestHandler({
        path: options.path,
        bundle: options.bundle,
        cacheMaxAgeSeconds: options.cacheMaxAgeSeconds,
        onResponse:
          onRequest === undefined
            ? undefined
            : (statusCode, startedAtNs) =>
                onRequest(profile, statusCode, Number(process.hrtime.bigint() - startedAtNs) / 1e9),
      }),
  });
  return { profile, start: listener.start, close: listener.close };
}
