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

/** TLS of the internal listener (admin, onboarding, distribution API). */
export interface InternalTlsConfig {
  /** PEM: leaf certificate first, then intermediates. */
  readonly certFile: string;
  readonly keyFile: string;
  /** PEM CA certificates sent to clients as acceptable issuers when client certificates are requested. */
  readonly clientCaFile?: string;
}

export interface InternalConfig {
  readonly listen: ListenConfig;
  /** Without it the internal listener speaks plain HTTP. */
  readonly tls?: InternalTlsConfig;
}

/** The Prometheus scrape listener: plain HTTP, GET /metrics only. */
export interface MetricsConfig {
  readonly listen: ListenConfig;
}

/** A static bearer token of the distribution API; the same shape as consumer-auth's `StaticToken`. */
export interface DistributionToken {
  /** Unique; the caller is `token:<name>` when `spiffeId` is absent. */
  readonly name: string;
  /** Lowercase hex SHA-256 of the token's UTF-8 bytes; the token itself is never configured. */
  readonly sha256: string;
  /** The caller this token stands for: a SPIFFE ID of this trust domain. */
  readonly spiffeId?: string;
}

/** The distribution API (`/v1/bundles*` on the internal listener) and its consumer authentication. */
export interface DistributionConfig {
  /** A JWT-SVID's `aud` must name at least one of these; never empty. */
  readonly audience: readonly string[];
  readonly tokens: readonly DistributionToken[];
  /**
   * Partner trust domain (a configured relationship's) or "*" → callers allowed to read it: SPIFFE IDs of this
   * trust domain, `token:<name>` of a configured token, or "*" (every authenticated caller).
   */
  readonly allow: Readonly<Record<string, readonly string[]>>;
  /** Whether X509-SVID client certificates are requested; the internal listener then has `tls`. */
  readonly clientCertificates: boolean;
}

/** The relay: partners' bundles served as SPIFFE bundle endpoints (`GET /federation/{trustDomain}`). */
export interface RelayConfig {
  readonly listen: ListenConfig;
  /** PEM: the gateway's X509-SVID first, then intermediates. */
  readonly svidFile: string;
  readonly svidKeyFile: string;
  /** The SPIFFE ID that X509-SVID carries, in this trust domain (what SPIRE's https_spiffe profile expects). */
  readonly endpointSpiffeId: string;
  /** The relationships' trust domains relayed, or "all" (written ["*"]). */
  readonly trustDomains: readonly string[] | "all";
}

/** The admin API's scopes: read, write (what removes trust or asks for it), approve (what adds trust), audit. */
export const ADMIN_SCOPES = [
  "relationships:read",
  "relationships:write",
  "relationships:approve",
  "audit:read",
] as const;
export type AdminScope = (typeof ADMIN_SCOPES)[number];

/** A static bearer token of the admin API; only its SHA-256 is configured. */
export interface AdminToken {
  /** Unique; the caller (and audit actor) is `token:<name>`. */
  readonly name: string;
  readonly sha256: string;
  readonly scopes: readonly AdminScope[];
}

/** Bearer JWTs of the admin API, verified against a JWKS. */
export interface AdminJwtConfig {
  readonly issuer: string;
  readonly audience: readonly string[];
  /** Exactly one of the two. */
  readonly jwksFile?: string;
  readonly jwksUrl?: string;
  /** Claim holding the scopes: a space-separated string or an array ("scope" by default; "scp" is also read). */
  readonly scopeClaim: string;
}

/** The admin API (`/v1/relationships*`, `/v1/audit`, `/v1/invitations*`, `/v1/openapi.json` on the internal listener). */
export interface AdminConfig {
  readonly tokens: readonly AdminToken[];
  readonly jwt?: AdminJwtConfig;
  /** Requests per caller (or per address before authentication) per window. */
  readonly rateLimit: { readonly windowSeconds: number; readonly maxRequests: number };
  /** Lifetime of the invitations this gateway signs, and the longest it accepts. */
  readonly invitations: {
    readonly ttlSeconds: number;
    readonly maxTtlSeconds: number;
    /** The bundle endpoint URL partners use (https_spiffe profile); default: its listener's address. */
    readonly endpointUrl?: string;
  };
  /** How often each replica checks for relationships past `expires_at`. */
  readonly expiryCheckIntervalMs: number;
  /** Audit entries kept in the store's stream (older ones are trimmed). */
  readonly auditLimit: number;
}

export interface BundlegateConfig {
  readonly trustDomain: TrustDomain;
  readonly logLevel: LogLevel;
  readonly localBundle: LocalBundleConfig;
  readonly endpoint: EndpointConfig;
  readonly internal: InternalConfig;
  readonly metrics: MetricsConfig;
  readonly store: StoreConfig;
  /** How often watched files are also re-read, in case a change event was missed (network filesystems). */
  readonly filePollIntervalMs: number;
  readonly federation: FederationConfig;
  /** Relationships declared in the config file (read-only through the API). */
  readonly relationships: readonly Relationship[];
  /** Absent: the distribution API is disabled. */
  readonly distribution?: DistributionConfig;
  /** Absent: the relay is disabled. */
  readonly relay?: RelayConfig;
  /** Absent: the admin API is not mounted (no route is open by default). */
  readonly admin?: AdminConfig;
}
