/**
 * A federation relationship: whose bundle bundlegate fetches, from where, over which profile, who owns
 * the relationship, and the per-relationship rules. Nothing here is inferred: trust domain, URL and
 * profile are all stated.
 */
import type { TrustPolicy } from "../policy/types.js";
import type { TrustBundle } from "../spiffe/bundle.js";
import type { TrustDomain } from "../spiffe/id.js";

export type EndpointProfileConfig =
  | {
      readonly kind: "https_web";
      /** PEM CA certificates to trust instead of the system roots: the file named in the config... */
      readonly caFile?: string;
      /** ...and its content, read when the config is loaded so no refresh does file I/O. */
      readonly caPem?: string;
    }
  | {
      readonly kind: "https_spiffe";
      /** The SPIFFE ID the endpoint's X509-SVID must carry. */
      readonly endpointSpiffeId: string;
      /**
       * Trusted to verify the endpoint only until the first successful fetch; after that the latest
       * stored bundle of the endpoint ID's trust domain is used, so partner rotations need no operator.
       */
      readonly bootstrapBundle: TrustBundle;
    };

export type RefreshOverride =
  | { readonly kind: "interval"; readonly seconds: number }
  | { readonly kind: "cron"; readonly expression: string };

export type RelationshipState = "pending" | "active" | "suspended";

export type RelationshipOrigin = "config" | "api";

export interface Relationship {
  readonly trustDomain: TrustDomain;
  /** https URL, no userinfo. */
  readonly endpointUrl: string;
  readonly profile: EndpointProfileConfig;
  readonly owner: string;
  readonly contact?: string;
  readonly description?: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly reviewBy?: Date;
  readonly expiresAt?: Date;
  readonly refresh?: RefreshOverride;
  /** Overrides the stale threshold (3 x refresh hint) when set. */
  readonly maxStalenessSeconds?: number;
  /** Proxy URL for this relationship; "direct" ignores HTTPS_PROXY; absent follows the environment. */
  readonly proxy?: string;
  /** Address ranges the SSRF guard lets this relationship reach (e.g. a partner on a private network). */
  readonly allowedCidrs: readonly string[];
  readonly policy: TrustPolicy;
  readonly state: RelationshipState;
  readonly origin: RelationshipOrigin;
}
