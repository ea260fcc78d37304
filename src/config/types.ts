/**
 * The validated configuration, as the rest of the code sees it (camelCase, every default filled in).
 * The YAML file and the environment use snake_case; `src/config/schema.ts` maps one onto the other.
 */
import type { Relationship } from "../federation/relationship.js";
import type { LogLevel } from "../logging.js";
import type { TrustDomain } from "../spiffe/id.js";

export interface ListenConfig {
  readonly host: string;
  /** 0 picks a free port (tests). */
  readonly port: number;
}

export interface EndpointTimeouts {
  /** Time allowed to receive a request's headers. */
  readonly headersMs: number;
  /** Time allowed for a whole request. */
  readonly requestMs: number;
  /** How long an idle keep-alive connection stays open. */
  readonly keepAliveMs: number;
}

export interface HttpsWebConfig {
  readonly listen: ListenConfig;
  /** PEM: leaf certificate first, then intermediates. */
  readonly certFile: string;
  readonly keyFile: string;
}

export interface HttpsSpiffeConfig {
  readonly listen: ListenConfig;
  /** The SPIFFE ID the endpoint's X509-SVID must carry, in this trust domain. */
  readonly endpointSpiffeId: string;
  /** PEM: the X509-SVID first, then intermediates. */
  readonly svidFile: string;
  readonly svidKeyFile: string;
}

export interface LocalBundleConfig {
  readonly file: string;
  readonly format: "spiffe" | "pem" | "auto";
  /** Served as spiffe_refresh_hint when the file carries none. */
  readonly refreshHintSeconds: number;
  readonly maxBytes: number;
}

export interface EndpointConfig {
  readonly path: string;
  /** Cache-Control max-age; never more than the refresh hint. */
  readonly cacheMaxAgeSeconds?: number;
  readonly timeouts: EndpointTimeouts;
  readonly httpsWeb?: HttpsWebConfig;
  readonly httpsSpiffe?: HttpsSpiffeConfig;
}

export type StoreConfig =
  | { readonly kind: "embedded"; readonly snapshotFile?: string }
  | { readonly kind: "redis"; readonly url: string; readonly keyPrefix: string; readonly commandTimeoutMs: number };

/** How partner bundles are fetched and scheduled (DESIGN.md section 6); the same for every relationship. */
export interface FederationConfig {
  readonly maxBundleBytes: number;
  readonly maxBundleKeys: number;
  readonly connectTimeoutMs: number;
  readonly headersTimeoutMs: number;
  /** The whole fetch, redirects included. */
  readonly totalTimeoutMs: number;
  readonly maxRedirects: number;
  /** From HTTPS_PROXY / https_proxy, read by the config loader (nothing else reads the environment). */
  readonly httpsProxy?: string;
  /** From NO_PROXY / no_proxy. */
  readonly noProxy?: string;
  /** A relationship is polled by whichever replica holds its lease; a dead holder's lease lapses after this. */
  readonly leaseMs: number;
  /** Past bundles kept per relationship. */
  readonly historyLimit: number;
  /** Refresh hint bounds and default (DESIGN.md section 6: [60 s, 24 h], 300 s when absent). */
  readonly minRefreshHintSeconds: number;
  readonly maxRefreshHintSeconds: number;
  readonly defaultRefreshHintSeconds: number;
  /** Random spread added to each interval, as a fraction of it. */
  readonly jitterRatio: number;
  /** First retry delay after a failure; doubles up to the normal interval. */
  readonly backoffInitialSeconds: number;
}

export interface BundlegateConfig {
  readonly trustDomain: TrustDomain;
  readonly logLevel: LogLevel;
  readonly localBundle: LocalBundleConfig;
  readonly endpoint: EndpointConfig;
  readonly internal: { readonly listen: ListenConfig };
  readonly store: StoreConfig;
  /** How often watched files are also re-read, in case a change event was missed (network filesystems). */
  readonly filePollIntervalMs: number;
  readonly federation: FederationConfig;
  /** Relationships declared in the config file (read-only through the API). */
  readonly relationships: readonly Relationship[];
}
