/**
 * What the admin API shows of a relationship: its spec, lifecycle, status, freshness, the bundle served
 * with each authority's expiry, the quarantined bundle with what it would add and remove, and the last
 * preflight. Plain JSON, snake_case, times as ISO strings. Key material is never shown, only fingerprints.
 */
import type { FederationConfig } from "../../config/types.js";
import type { CachedBundle } from "../../federation/bundle-cache.js";
import type { ManagedEntry } from "../../federation/managed-registry.js";
import type { Relationship } from "../../federation/relationship.js";
import { relationshipHealth } from "../../federation/relationship-health.js";
import { inspectBundle } from "../../spiffe/inspect.js";
import type { QuarantinedBundle, RelationshipStatus } from "../../store/federation-state.js";

/** review_by and expires_at this close are reported (and exported as metrics). */
export const DUE_WINDOW_MS = 14 * 86_400_000;

const iso = (ms: number | undefined): string | undefined => (ms === undefined ? undefined : new Date(ms).toISOString());

/** The object without its undefined members, so JSON answers omit what is not known. */
export function compact<T extends Record<string, unknown>>(value: T): T {
  return Object.fromEntries(Object.entries(value).filter(([, v]) => v !== undefined)) as T;
}

export interface ViewInput {
  readonly entry: ManagedEntry;
  /** The relationship as the registry reads it now (expiry applied). */
  readonly relationship: Relationship;
  readonly status?: RelationshipStatus | undefined;
  readonly cached?: CachedBundle | undefined;
  readonly quarantine?: QuarantinedBundle | undefined;
  readonly preflight?: unknown;
  readonly federation: FederationConfig;
  readonly now: Date;
}

export function relationshipSummary(input: ViewInput): Record<string, unknown> {
  const { relationship: r, status, cached, now } = input;
  const health = relationshipHealth({
    relationship: r,
    status,
    lastKnownGood: cached?.bundle,
    federation: input.federation,
    now,
  });
  return compact({
    trust_domain: r.trustDomain,
    state: r.state,
    origin: r.origin,
    read_only: r.origin === "config",
    owner: r.owner,
    profile: r.profile.kind,
    endpoint_url: r.endpointUrl,
    labels: { ...r.labels },
    staleness: compact({
      state: health.staleness.state,
      age_seconds: health.staleness.ageSeconds === undefined ? undefined : Math.floor(health.staleness.ageSeconds),
      stale_after_seconds: health.staleness.staleAfterSeconds,
      critical_after_seconds: health.staleness.criticalAfterSeconds,
    }),
    sequence: cached?.stored.sequence,
    last_success_at: iso(status?.lastSuccessAt),
    last_error_code: status?.lastErrorCode,
    quarantined: input.quarantine !== undefined,
    review_by: r.reviewBy?.toISOString(),
    expires_at: r.expiresAt?.toISOString(),
    review_due: r.reviewBy !== undefined && r.reviewBy.getTime() - now.getTime() <= DUE_WINDOW_MS,
    expiring: r.expiresAt !== undefined && r.expiresAt.getTime() - now.getTime() <= DUE_WINDOW_MS,
  });
}

export function relationshipView(input: ViewInput): Record<string, unknown> {
  const { relationship: r, entry, status, cached, quarantine, now } = input;
  const spec = entry.document?.spec;
  const bootstrap = r.profile.kind === "https_spiffe" ? r.profile.bootstrapBundle : undefined;
  const inspection = cached ? inspectBundle(cached.bundle, { now }) : undefined;
  const warnings: string[] = [];
  if (r.expiresAt !== undefined && r.expiresAt.getTime() <= now.getTime())
    warnings.push("expired: expires_at has passed");
  else if (r.expiresAt !== undefined && r.expiresAt.getTime() - now.getTime() <= DUE_WINDOW_MS) {
    warnings.push("expiring: expires_at is within 14 days");
  }
  if (r.reviewBy !== undefined && r.reviewBy.getTime() - now.getTime() <= DUE_WINDOW_MS) {
    warnings.push(r.reviewBy.getTime() <= now.getTime() ? "review overdue" : "review due within 14 days");
  }
  if (quarantine) warnings.push("a fetched bundle is quarantined: accept or discard it");
  if (inspection && !inspection.usable) warnings.push("no authority of the served bundle is valid now");
  for (const w of inspection?.warnings ?? []) warnings.push(`${w.code}: ${w.message}`);

  return compact({
    ...relationshipSummary(input),
    revision: entry.record?.revision,
    created_at: iso(entry.record?.createdAt),
    updated_at: iso(entry.record?.updatedAt),
    contact: r.contact,
    description: r.description,
    endpoint_spiffe_id: r.profile.kind === "https_spiffe" ? r.profile.endpointSpiffeId : undefined,
    bootstrap_bundle:
      bootstrap && (bootstrap.x509Authorities.length > 0 || bootstrap.jwtAuthorities.size > 0)
        ? { authorities: bootstrap.x509Authorities.length + bootstrap.jwtAuthorities.size }
        : undefined,
    ca_pem: r.profile.kind === "https_web" && r.profile.caPem !== undefined ? true : undefined,
    refresh: r.refresh
      ? r.refresh.kind === "interval"
        ? { interval_seconds: r.refresh.seconds }
        : { cron: r.refresh.expression }
      : undefined,
    max_staleness_seconds: r.maxStalenessSeconds,
    proxy: r.proxy,
    allowed_cidrs: [...r.allowedCidrs],
    policy: {
      full_replacement: r.policy.fullReplacement,
      shared_with_own_domain: r.policy.sharedWithOwnDomain,
      shared_with_other_partner: r.policy.sharedWithOtherPartner,
      sequence_reused: r.policy.sequenceReused,
      sequence_rollback: r.policy.sequenceRollback,
    },
    lifecycle: entry.document?.lifecycle,
    spec_fields: spec ? Object.keys(spec).sort() : undefined,
    status: status
      ? compact({
          last_attempt_at: iso(status.lastAttemptAt),
          last_success_at: iso(status.lastSuccessAt),
          last_change_at: iso(status.lastChangeAt),
          last_result: status.lastResult,
          last_error_code: status.lastErrorCode,
          last_error_at: iso(status.lastErrorAt),
          consecutive_failures: status.consecutiveFailures,
          next_refresh_at: iso(status.nextRefreshAt),
        })
      : { consecutive_failures: 0 },
    bundle:
      cached && inspection
        ? compact({
            digest: cached.stored.digest,
            sequence: cached.stored.sequence,
            refresh_hint_seconds: cached.stored.refreshHintSeconds,
            accepted_at: iso(cached.stored.acceptedAt),
            usable: inspection.usable,
            earliest_not_after: inspection.earliestNotAfter,
            latest_not_after: inspection.latestNotAfter,
            authorities: inspection.authorities.map((a) =>
              compact({
                use: a.use,
                id: a.keyId ?? a.fingerprint,
                key_type: a.keyType,
                subject: a.subject,
                not_after: a.notAfter,
                status: a.status,
              }),
            ),
          })
        : undefined,
    quarantine: quarantine
      ? compact({
          digest: quarantine.digest,
          sequence: quarantine.sequence,
          reasons: [...quarantine.reasons],
          added: [...(quarantine.added ?? [])],
          removed: [...(quarantine.removed ?? [])],
          quarantined_at: iso(quarantine.quarantinedAt),
        })
      : undefined,
    preflight: input.preflight,
    warnings,
  });
}
