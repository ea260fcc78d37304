/**
 * The per-relationship gauges: what each replica knows of every relationship in its registry (config,
 * status, last-known-good), computed at scrape from in-memory state only, so a scrape of 10k relationships
 * costs no store round trip. `trust_domain` is the join label; owner, profile, state and origin appear on
 * `bundlegate_relationship_info` only. A deleted relationship's series vanish at the next scrape, since
 * every gauge is rebuilt from the registry each time.
 */
import { Gauge, type Registry } from "prom-client";
import type { CachedBundle } from "../federation/bundle-cache.js";
import type { Relationship } from "../federation/relationship.js";
import { nextCronFire, type RefreshHintBounds, refreshIntervalSeconds } from "../federation/schedule.js";
import { stalenessThresholds } from "../federation/staleness.js";
import type { TrustDomain } from "../spiffe/id.js";
import type { RelationshipStatus } from "../store/federation-state.js";
import { notAfterSeconds } from "./not-after.js";

/** Where the gauges read from; every call must be cheap (memory only). */
export interface RelationshipSource {
  relationships(): readonly Relationship[];
  /** The status as this replica last saw it (its own fetches, or the store's when another replica polls). */
  status(trustDomain: TrustDomain): RelationshipStatus | undefined;
  /** The last-known-good this replica serves. */
  bundle(trustDomain: TrustDomain): CachedBundle | undefined;
  quarantined(trustDomain: TrustDomain): boolean;
  readonly federation: RefreshHintBounds;
  now(): Date;
}

interface Row {
  readonly relationship: Relationship;
  readonly trustDomain: TrustDomain;
  readonly status: RelationshipStatus | undefined;
  readonly cached: CachedBundle | undefined;
}

interface Snapshot {
  readonly rows: readonly Row[];
  readonly source: RelationshipSource;
  readonly nowMs: number;
}

/** The short forms of X.509 fingerprints in label values (as for the local bundle's authorities). */
export const FINGERPRINT_LABEL_LENGTH = 16;

export function registerRelationshipMetrics(registry: Registry, current: () => RelationshipSource | undefined): void {
  // One registry.metrics() calls every collect() in one synchronous pass; the snapshot is shared by that
  // pass and dropped in the next microtask, so each scrape reads the registry and statuses once.
  let memo: Snapshot | undefined;
  const snapshot = (): Snapshot | undefined => {
    if (memo) return memo;
    const source = current();
    if (!source) return undefined;
    const rows = source.relationships().map((relationship) => ({
      relationship,
      trustDomain: relationship.trustDomain,
      status: source.status(relationship.trustDomain),
      cached: source.bundle(relationship.trustDomain),
    }));
    memo = { rows, source, nowMs: source.now().getTime() };
    queueMicrotask(() => {
      memo = undefined;
    });
    return memo;
  };

  const gauge = <L extends string>(
    name: string,
    help: string,
    labelNames: readonly L[],
    fill: (gauge: Gauge<L>, snapshot: Snapshot) => void,
  ) =>
    new Gauge<L>({
      name,
      help,
      labelNames,
      registers: [registry],
      collect() {
        this.reset();
        const taken = snapshot();
        if (taken) fill(this, taken);
      },
    });

  /** One value per relationship, skipped where `value` is undefined. */
  const perRelationship = (name: string, help: string, value: (row: Row, snap: Snapshot) => number | undefined) =>
    gauge(name, help, ["trust_domain"], (g, snap) => {
      for (const row of snap.rows) {
        const v = value(row, snap);
        if (v !== undefined) g.set({ trust_domain: row.trustDomain }, v);
      }
    });

  gauge(
    "bundlegate_relationship_info",
    "Federation relationships this replica knows, with their owner, fetch profile, lifecycle state and origin; always 1.",
    ["trust_domain", "owner", "profile", "state", "origin"],
    (g, snap) => {
      for (const { relationship: r } of snap.rows) {
        g.set(
          { trust_domain: r.trustDomain, owner: r.owner, profile: r.profile.kind, state: r.state, origin: r.origin },
          1,
        );
      }
    },
  );
  perRelationship(
    "bundlegate_relationship_last_attempt_timestamp_seconds",
    "When the partner's bundle endpoint was last fetched, successfully or not.",
    (row) => seconds(row.status?.lastAttemptAt),
  );
  perRelationship(
    "bundlegate_relationship_last_success_timestamp_seconds",
    "When the partner's bundle was last fetched successfully (accepted, unchanged or quarantined).",
    (row) => seconds(row.status?.lastSuccessAt),
  );
  perRelationship(
    "bundlegate_relationship_last_change_timestamp_seconds",
    "When a fetched bundle last changed the relationship's last-known-good.",
    (row) => seconds(row.status?.lastChangeAt),
  );
  const cronIntervals = createCronIntervals();
  perRelationship(
    "bundlegate_relationship_refresh_interval_seconds",
    "Normal polling interval of the relationship: its configured interval, the gap between its cron times, or a quarter of the clamped refresh hint.",
    (row, snap) => {
      const refresh = row.relationship.refresh;
      if (refresh?.kind === "interval") return refresh.seconds;
      if (refresh?.kind === "cron") return cronIntervals(refresh.expression, snap.nowMs);
      return refreshIntervalSeconds(row.cached?.stored.refreshHintSeconds, snap.source.federation);
    },
  );
  const thresholds = (row: Row, snap: Snapshot) =>
    stalenessThresholds({
      hintSeconds: row.cached?.stored.refreshHintSeconds,
      maxStalenessSeconds: row.relationship.maxStalenessSeconds,
      federation: snap.source.federation,
    });
  perRelationship(
    "bundlegate_relationship_stale_after_seconds",
    "Age of the last success past which the relationship is stale (3 refresh hints, or its max_staleness_seconds).",
    (row, snap) => thresholds(row, snap).staleAfterSeconds,
  );
  perRelationship(
    "bundlegate_relationship_critical_after_seconds",
    "Age of the last success past which the relationship is critically stale (5 refresh hints, or 5/3 of max_staleness_seconds).",
    (row, snap) => thresholds(row, snap).criticalAfterSeconds,
  );
  perRelationship(
    "bundlegate_relationship_consecutive_failures",
    "Failed fetches (errors and rejected bundles) since the last success.",
    (row) => row.status?.consecutiveFailures ?? 0,
  );
  perRelationship(
    "bundlegate_relationship_quarantined",
    "1 while a fetched bundle is held in quarantine for a person to accept or discard.",
    (row, snap) => (snap.source.quarantined(row.trustDomain) ? 1 : 0),
  );
  perRelationship(
    "bundlegate_relationship_review_by_timestamp_seconds",
    "When the relationship is due for review.",
    (row) => seconds(row.relationship.reviewBy?.getTime()),
  );
  perRelationship("bundlegate_relationship_expires_at_timestamp_seconds", "When the relationship ends.", (row) =>
    seconds(row.relationship.expiresAt?.getTime()),
  );

  perRelationship(
    "bundlegate_bundle_sequence",
    "spiffe_sequence of the partner bundle this replica serves (absent when it has none).",
    // A double loses precision past 2^53; such sequences are still ordered, which is what alerts need.
    (row) => (row.cached?.stored.sequence === undefined ? undefined : Number(row.cached.stored.sequence)),
  );
  perRelationship(
    "bundlegate_bundle_size_bytes",
    "Size of the canonical JSON of the partner bundle this replica serves.",
    (row) => (row.cached ? byteLength(row.cached) : undefined),
  );
  perRelationship(
    "bundlegate_bundle_refresh_hint_seconds",
    "spiffe_refresh_hint of the partner bundle this replica serves, as published (absent when it has none).",
    (row) => row.cached?.stored.refreshHintSeconds,
  );
  gauge(
    "bundlegate_bundle_authorities",
    "Authorities in the partner bundle this replica serves, by use (x509-svid, jwt-svid, wit-svid).",
    ["trust_domain", "use"],
    (g, snap) => {
      for (const { trustDomain, cached } of snap.rows) {
        if (!cached) continue;
        const byUse = new Map<string, number>([
          ["x509-svid", cached.bundle.x509Authorities.length],
          ["jwt-svid", 0],
        ]);
        for (const key of cached.bundle.jwtAuthorities.values()) byUse.set(key.use, (byUse.get(key.use) ?? 0) + 1);
        for (const [use, count] of byUse) g.set({ trust_domain: trustDomain, use }, count);
      }
    },
  );
  perRelationship(
    "bundlegate_bundle_usable_authorities",
    "Authorities of the partner bundle this replica serves that can verify an SVID now: unexpired X.509 authorities plus JWT keys.",
    (row, snap) => {
      if (!row.cached) return undefined;
      const nowSeconds = snap.nowMs / 1000;
      let usable = row.cached.bundle.jwtAuthorities.size;
      for (const authority of row.cached.bundle.x509Authorities) {
        if (notAfterSeconds(authority.der) > nowSeconds) usable++;
      }
      return usable;
    },
  );
  gauge(
    "bundlegate_bundle_authority_not_after_timestamp_seconds",
    "Expiry of each X.509 authority of the partner bundle this replica serves, by shortened SHA-256 fingerprint.",
    ["trust_domain", "fingerprint"],
    (g, snap) => {
      for (const { trustDomain, cached } of snap.rows) {
        for (const authority of cached?.bundle.x509Authorities ?? []) {
          g.set(
            { trust_domain: trustDomain, fingerprint: authority.fingerprint.slice(0, FINGERPRINT_LABEL_LENGTH) },
            notAfterSeconds(authority.der),
          );
        }
      }
    },
  );
  gauge(
    "bundlegate_bundle_info",
    "Digest (SHA-256 of the canonical JSON) of the partner bundle this replica serves; always 1. Replicas serving different digests have drifted.",
    ["trust_domain", "digest"],
    (g, snap) => {
      for (const { trustDomain, cached } of snap.rows) {
        if (cached) g.set({ trust_domain: trustDomain, digest: cached.stored.digest }, 1);
      }
    },
  );
}

function seconds(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : ms / 1000;
}

const sizes = new WeakMap<CachedBundle, number>();

function byteLength(cached: CachedBundle): number {
  let size = sizes.get(cached);
  if (size === undefined) {
    size = Buffer.byteLength(cached.stored.json);
    sizes.set(cached, size);
  }
  return size;
}

/**
 * Seconds between the next two fire times of a cron expression, recomputed only once the first of them
 * has passed (walking the calendar on every scrape would be most of its cost).
 */
function createCronIntervals(): (expression: string, nowMs: number) => number | undefined {
  const known = new Map<string, { readonly validUntil: number; readonly seconds: number | undefined }>();
  return (expression, nowMs) => {
    const hit = known.get(expression);
    if (hit && nowMs < hit.validUntil) return hit.seconds;
    let entry: { validUntil: number; seconds: number | undefined };
    try {
      const first = nextCronFire(expression, new Date(nowMs));
      const second = first && nextCronFire(expression, first);
      entry =
        first && second
          ? { validUntil: first.getTime(), seconds: (second.getTime() - first.getTime()) / 1000 }
          : { validUntil: Number.POSITIVE_INFINITY, seconds: undefined };
    } catch {
      // An expression the config would have refused; the schedule reports it, the gauge just leaves it out.
      entry = { validUntil: Number.POSITIVE_INFINITY, seconds: undefined };
    }
    known.set(expression, entry);
    return entry.seconds;
  };
}
