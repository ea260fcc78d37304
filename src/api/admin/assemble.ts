/**
 * Builds the admin API from the running app's parts: authentication and rate limits from the config's
 * admin section, the preflight (the probe of `bundlegate probe`, with the engine's trust rules), and
 * invitations signed with the https_spiffe endpoint's X509-SVID.
 */
import { createPrivateKey } from "node:crypto";
import type { RequestHandler } from "express";
import type { Clock } from "../../clock.js";
import type { AdminConfig, BundlegateConfig } from "../../config/types.js";
import type { BundleCache } from "../../federation/bundle-cache.js";
import type { BundleFetcher } from "../../federation/fetcher/index.js";
import { createInvitation, verifyInvitation } from "../../federation/invitation.js";
import type { ManagedRegistry } from "../../federation/managed-registry.js";
import type { SyncEngine } from "../../federation/manager.js";
import { createPeerDiagnosis, probeEndpoint } from "../../federation/probe.js";
import type { Relationship } from "../../federation/relationship.js";
import { endpointAuthorities } from "../../federation/updater.js";
import type { Logger } from "../../logging.js";
import type { ServedBundle, TlsCredentials, Watched } from "../../sources/types.js";
import type { TrustBundle } from "../../spiffe/bundle.js";
import type { Store } from "../../store/types.js";
import { createAdminAuth } from "../auth/admin-auth.js";
import { createAdminRateLimit } from "../auth/admin-rate-limit.js";
import { createAdminRouter, type InvitationOperations } from "./router.js";
import { createAdminService } from "./service.js";

export interface AdminApiParts {
  readonly config: BundlegateConfig;
  readonly admin: AdminConfig;
  readonly store: Store;
  readonly registry: ManagedRegistry;
  readonly engine: SyncEngine;
  readonly cache: BundleCache;
  readonly fetcher: BundleFetcher;
  readonly localBundle: Watched<ServedBundle>;
  /** The https_spiffe endpoint's certificate source, when that profile is served: it signs invitations. */
  readonly svid?: Watched<TlsCredentials>;
  /** The https_spiffe bundle endpoint URL written into invitations. */
  readonly endpointUrl?: string;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly origin: string;
}

export function createAdminApi(parts: AdminApiParts): RequestHandler {
  const { config, admin, clock, logger, registry, cache } = parts;
  const auth = createAdminAuth({
    tokens: admin.tokens,
    ...(admin.jwt === undefined
      ? {}
      : {
          jwt: {
            issuer: admin.jwt.issuer,
            audience: admin.jwt.audience,
            ...(admin.jwt.jwksFile === undefined ? {} : { jwksFile: admin.jwt.jwksFile }),
            ...(admin.jwt.jwksUrl === undefined ? {} : { jwksUrl: admin.jwt.jwksUrl }),
            scopeClaim: admin.jwt.scopeClaim,
          },
        }),
    clock,
    logger,
  });
  const windowMs = admin.rateLimit.windowSeconds * 1000;
  const rateLimit = {
    beforeAuth: createAdminRateLimit({
      windowMs,
      max: admin.rateLimit.maxRequests,
      clock,
      logger,
      name: "admin-address",
    }),
    afterAuth: createAdminRateLimit({
      windowMs,
      max: admin.rateLimit.maxRequests,
      clock,
      logger,
      name: "admin-caller",
    }),
  };

  const diagnose = createPeerDiagnosis({
    connectTimeoutMs: config.federation.connectTimeoutMs,
    ...(config.federation.httpsProxy === undefined ? {} : { httpsProxy: config.federation.httpsProxy }),
    ...(config.federation.noProxy === undefined ? {} : { noProxy: config.federation.noProxy }),
  });
  const preflight = (relationship: Relationship) =>
    probeEndpoint(
      {
        url: relationship.endpointUrl,
        trustDomain: relationship.trustDomain,
        profile: relationship.profile.kind,
        ...(relationship.profile.kind === "https_spiffe"
          ? {
              endpointSpiffeId: relationship.profile.endpointSpiffeId,
              // As the engine chooses it; a domain with no bundle yet verifies nothing (the probe says so).
              bundle:
                endpointAuthorities(relationship, {
                  cache,
                  ownTrustDomain: config.trustDomain,
                  ownBundle: () => parts.localBundle.current().bundle,
                }) ?? relationship.profile.bootstrapBundle,
            }
          : relationship.profile.caPem === undefined
            ? {}
            : { caPem: relationship.profile.caPem }),
        ...previousOf(cache, relationship),
        ...(relationship.proxy === undefined ? {} : { proxy: relationship.proxy }),
        allowedCidrs: relationship.allowedCidrs,
        policy: relationship.policy,
        limits: { maxBytes: config.federation.maxBundleBytes, maxKeys: config.federation.maxBundleKeys },
      },
      { fetcher: parts.fetcher, now: clock.now(), diagnose },
    );

  const service = createAdminService({
    registry,
    store: parts.store,
    engine: parts.engine,
    cache,
    federation: config.federation,
    clock,
    logger,
    origin: parts.origin,
    preflight,
  });

  const spiffe = config.endpoint.httpsSpiffe;
  const svid = parts.svid;
  const endpointUrl = parts.endpointUrl ?? "";
  const invitations: InvitationOperations | undefined =
    spiffe && svid && parts.endpointUrl !== undefined
      ? {
          async create(ttlSeconds) {
            const credentials = svid.current();
            const made = await createInvitation({
              trustDomain: config.trustDomain,
              endpointUrl,
              profile: "https_spiffe",
              endpointSpiffeId: spiffe.endpointSpiffeId,
              bundle: parts.localBundle.current().bundle,
              signer: { privateKey: createPrivateKey(credentials.keyPem), chain: credentials.chain },
              clock,
              ttlSeconds: ttlSeconds ?? admin.invitations.ttlSeconds,
              maxTtlSeconds: admin.invitations.maxTtlSeconds,
            });
            return { token: made.token, expiresAt: made.expiresAt, payload: made.payload };
          },
          verify: (token) => verifyInvitation(token, { clock, maxTtlSeconds: admin.invitations.maxTtlSeconds }),
        }
      : undefined;

  return createAdminRouter({ service, auth, rateLimit, ...(invitations ? { invitations } : {}), logger });
}

function previousOf(cache: BundleCache, relationship: Relationship): { previous?: TrustBundle } {
  const cached = cache.get(relationship.trustDomain);
  return cached ? { previous: cached.bundle } : {};
}
