/**
 * The per-relationship gauges: what each replica knows of every relationship in its registry (config,
 * status, last-known-good), computed at scrape from in-memory state only, so a scrape of 10k relationships
 * costs no store round trip. `trust_domain` is the join label; owner, profile, state and origin appear on
 * `bundlegate_relationship_info` only. A deleted relationship's series vanish at the next scrape, since
 * every scrape walks the registry afresh.
 *
 * Cost at scale (bench/metrics.ts): each relationship's lines are kept between scrapes with the inputs
 * they were made from (the relationship, its status and cached bundle objects, its quarantine flag) and
 * the moment they go out of date (an authority expiring, a cron interval moving on). Config, statuses and
 * bundles are replaced, never changed in place, so a relationship whose inputs are the same objects as at
 * the last scrape costs a few comparisons; only the relationships polled since are written again. The
 * walk gives the event loop a turn every few milliseconds. The gauges are `TextMetric`s of the
 * ExpositionRegistry (exposition-registry.ts); their `get()` computes the same values afresh, for
 * `getMetricsAsJSON()` and tests.
 */
import type { Metric, Registry } from "prom-client";
import type { CachedBundle } from "../federation/bundle-cache.js";
import type { Relationship } from "../federation/relationship.js";
import { nextCronFire, type RefreshHintBounds, refreshIntervalSeconds } from "../federation/schedule.js";
import { stalenessThresholds } from "../federation/staleness.js";
import type { TrustDomain } from "../spiffe/id.js";
import { notAfterSeconds } from "../spiffe/not-after.js";
import type { RelationshipStatus } from "../store/federation-state.js";
import type { Scrape, TextMetric } from "./exposition-registry.js";
import { familyHeader, labelsText, seriesLine } from "./exposition-text.js";
import type { TimeSlicer } from "./time-slice.js";

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

/** The short forms of X.509 fingerprints in label values (as for the local bundle's authorities). */
export const FINGERPRINT_LABEL_LENGTH = 16;

/** In registration order, which is the order of the scrape. */
const FAMILIES = {
  info: {
    name: "bundlegate_relationship_info",
    help: "Federation relationships this replica knows, with their owner, fetch profile, lifecycle state and origin; always 1.",
    labelNames: ["trust_domain", "owner", "profile", "state", "origin"],
  },
  lastAttempt: {
    name: "bundlegate_relationship_last_attempt_timestamp_seconds",
    help: "When the partner's bundle endpoint was last fetched, successfully or not.",
  },
  lastSuccess: {
    name: "bundlegate_relationship_last_success_timestamp_seconds",
    help: "When the partner's bundle was last fetched successfully (accepted, unchanged or quarantined).",
  },
  lastChange: {
    name: "bundlegate_relationship_last_change_timestamp_seconds",
    help: "When a fetched bundle last changed the relationship's last-known-good.",
  },
  refreshInterval: {
    name: "bundlegate_relationship_refresh_interval_seconds",
    help: "Normal polling interval of the relationship: its configured interval, the gap between its cron times, or a quarter of the clamped refresh hint.",
  },
  staleAfter: {
    name: "bundlegate_relationship_stale_after_seconds",
    help: "Age of the last success past which the relationship is stale (3 refresh hints, or its max_staleness_seconds).",
  },
  criticalAfter: {
    name: "bundlegate_relationship_critical_after_seconds",
    help: "Age of the last success past which the relationship is critically stale (5 refresh hints, or 5/3 of max_staleness_seconds).",
  },
  consecutiveFailures: {
    name: "bundlegate_relationship_consecutive_failures",
    help: "Failed fetches (errors and rejected bundles) since the last success.",
  },
  quarantined: {
    name: "bundlegate_relationship_quarantined",
    help: "1 while a fetched bundle is held in quarantine for a person to accept or discard.",
  },
  reviewBy: {
    name: "bundlegate_relationship_review_by_timestamp_seconds",
    help: "When the relationship is due for review.",
  },
  expiresAt: {
    name: "bundlegate_relationship_expires_at_timestamp_seconds",
    help: "When the relationship ends.",
  },
  sequence: {
    name: "bundlegate_bundle_sequence",
    help: "spiffe_sequence of the partner bundle this replica serves (absent when it has none).",
  },
  sizeBytes: {
    name: "bundlegate_bundle_size_bytes",
    help: "Size of the canonical JSON of the partner bundle this replica serves.",
  },
  refreshHint: {
    name: "bundlegate_bundle_refresh_hint_seconds",
    help: "spiffe_refresh_hint of the partner bundle this replica serves, as published (absent when it has none).",
  },
  authorities: {
    name: "bundlegate_bundle_authorities",
    help: "Authorities in the partner bundle this replica serves, by use (x509-svid, jwt-svid, wit-svid).",
    labelNames: ["trust_domain", "use"],
  },
  usableAuthorities: {
    name: "bundlegate_bundle_usable_authorities",
    help: "Authorities of the partner bundle this replica serves that can verify an SVID now: unexpired X.509 authorities plus JWT keys.",
  },
  authorityNotAfter: {
    name: "bundlegate_bundle_authority_not_after_timestamp_seconds",
    help: "Expiry of each X.509 authority of the partner bundle this replica serves, by shortened SHA-256 fingerprint.",
    labelNames: ["trust_domain", "fingerprint"],
  },
  bundleInfo: {
    name: "bundlegate_bundle_info",
    help: "Digest (SHA-256 of the canonical JSON) of the partner bundle this replica serves; always 1. Replicas serving different digests have drifted.",
    labelNames: ["trust_domain", "digest"],
  },
} as const satisfies Record<string, { name: string; help: string; labelNames?: readonly string[] }>;

type Family = keyof typeof FAMILIES;
const ORDER = Object.keys(FAMILIES) as Family[];

interface Sample {
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

/** What one relationship's series are made from, compared by identity between scrapes. */
interface Inputs {
  readonly relationship: Relationship;
  readonly status: RelationshipStatus | undefined;
  readonly cached: CachedBundle | undefined;
  readonly quarantined: boolean;
}

interface Described {
  readonly samples: Partial<Record<Family, Sample[]>>;
  /** The labels object most of the samples share: `{ trust_domain }`. */
  readonly labels: Readonly<Record<string, string>>;
  /** The bundle's facts, whose sample lists `samples` shares. */
  readonly bundle?: BundleFacts | undefined;
  /** The samples hold from `nowMs` until just before this (an authority expires, a cron gap moves on). */
  readonly validUntilMs: number;
}

interface Row extends Inputs {
  readonly computedAtMs: number;
  readonly validUntilMs: number;
  /** Per family (ORDER's index): this relationship's lines, "" when it has none there. */
  readonly lines: readonly string[];
}

/** What the bundle alone decides, worked out once per cached bundle. */
interface BundleFacts {
  readonly trustDomain: TrustDomain;
  readonly jwtAuthorities: number;
  readonly notAfterSeconds: readonly number[];
  /** The samples of the families that depend on the bundle only (not usableAuthorities, which moves with time). */
  readonly samples: Partial<Record<Family, Sample[]>>;
  /** Their text, made the first time a row needs it. */
  readonly lines: Partial<Record<Family, string>>;
}

export function registerRelationshipMetrics(registry: Registry, current: () => RelationshipSource | undefined): void {
  const cronIntervals = createCronIntervals();
  const facts = new WeakMap<CachedBundle, BundleFacts>();

  const factsOf = (cached: CachedBundle, trustDomain: TrustDomain): BundleFacts => {
    const known = facts.get(cached);
    if (known?.trustDomain === trustDomain) return known;
    const labels = { trust_domain: trustDomain };
    const samples: Partial<Record<Family, Sample[]>> = {};
    const { stored, bundle } = cached;
    // A double loses precision past 2^53; such sequences are still ordered, which is what alerts need.
    if (stored.sequence !== undefined) samples.sequence = [{ labels, value: Number(stored.sequence) }];
    samples.sizeBytes = [{ labels, value: Buffer.byteLength(stored.json) }];
    if (stored.refreshHintSeconds !== undefined) {
      samples.refreshHint = [{ labels, value: stored.refreshHintSeconds }];
    }
    const byUse = new Map<string, number>([
      ["x509-svid", bundle.x509Authorities.length],
      ["jwt-svid", 0],
    ]);
    for (const key of bundle.jwtAuthorities.values()) byUse.set(key.use, (byUse.get(key.use) ?? 0) + 1);
    samples.authorities = [...byUse].map(([use, value]) => ({ labels: { trust_domain: trustDomain, use }, value }));
    const notAfters = bundle.x509Authorities.map((authority) => notAfterSeconds(authority.der));
    samples.authorityNotAfter = bundle.x509Authorities.map((authority, index) => ({
      labels: { trust_domain: trustDomain, fingerprint: authority.fingerprint.slice(0, FINGERPRINT_LABEL_LENGTH) },
      value: notAfters[index]!,
    }));
    samples.bundleInfo = [{ labels: { trust_domain: trustDomain, digest: stored.digest }, value: 1 }];
    const made = {
      trustDomain,
      jwtAuthorities: bundle.jwtAuthorities.size,
      notAfterSeconds: notAfters,
      samples,
      lines: {},
    };
    // Kept for the bundle's trust domain only (a fake source could hand one bundle to two relationships).
    if (cached.trustDomain === trustDomain) facts.set(cached, made);
    return made;
  };

  const describe = (inputs: Inputs, source: RelationshipSource, nowMs: number): Described => {
    const { relationship: r, status, cached } = inputs;
    const trustDomain = r.trustDomain;
    const labels = { trust_domain: trustDomain };
    const samples: Partial<Record<Family, Sample[]>> = {
      info: [
        {
          labels: {
            trust_domain: trustDomain,
            owner: r.owner,
            profile: r.profile.kind,
            state: r.state,
            origin: r.origin,
          },
          value: 1,
        },
      ],
    };
    let validUntilMs = Number.POSITIVE_INFINITY;
    const one = (family: Family, value: number | undefined) => {
      if (value !== undefined) samples[family] = [{ labels, value }];
    };

    one("lastAttempt", seconds(status?.lastAttemptAt));
    one("lastSuccess", seconds(status?.lastSuccessAt));
    one("lastChange", seconds(status?.lastChangeAt));
    const hintSeconds = cached?.stored.refreshHintSeconds;
    if (r.refresh?.kind === "interval") one("refreshInterval", r.refresh.seconds);
    else if (r.refresh?.kind === "cron") {
      const interval = cronIntervals(r.refresh.expression, nowMs);
      validUntilMs = Math.min(validUntilMs, interval.validUntilMs);
      one("refreshInterval", interval.seconds);
    } else one("refreshInterval", refreshIntervalSeconds(hintSeconds, source.federation));
    const thresholds = stalenessThresholds({
      hintSeconds,
      maxStalenessSeconds: r.maxStalenessSeconds,
      federation: source.federation,
    });
    one("staleAfter", thresholds.staleAfterSeconds);
    one("criticalAfter", thresholds.criticalAfterSeconds);
    one("consecutiveFailures", status?.consecutiveFailures ?? 0);
    one("quarantined", inputs.quarantined ? 1 : 0);
    one("reviewBy", seconds(r.reviewBy?.getTime()));
    one("expiresAt", seconds(r.expiresAt?.getTime()));

    const bundle = cached && factsOf(cached, trustDomain);
    if (bundle) {
      // The bundle's own lists, shared (never added to): their text is made once (see render).
      Object.assign(samples, bundle.samples);
      const nowSeconds = nowMs / 1000;
      let usable = bundle.jwtAuthorities;
      for (const notAfter of bundle.notAfterSeconds) {
        if (notAfter > nowSeconds) {
          usable++;
          validUntilMs = Math.min(validUntilMs, notAfter * 1000);
        }
      }
      one("usableAuthorities", usable);
    }
    return { samples, validUntilMs, labels, bundle };
  };

  const inputsOf = (source: RelationshipSource, relationship: Relationship): Inputs => ({
    relationship,
    status: source.status(relationship.trustDomain),
    cached: source.bundle(relationship.trustDomain),
    quarantined: source.quarantined(relationship.trustDomain),
  });

  // Rows of the last scrape, by trust domain, and the source they were read from (another source may
  // bring other hint bounds, so its rows start afresh).
  let rows = new Map<TrustDomain, Row>();
  let rowsSource: RelationshipSource | undefined;

  const render = (inputs: Inputs, source: RelationshipSource, nowMs: number): Row => {
    const { samples, validUntilMs, bundle, labels } = describe(inputs, source, nowMs);
    const labelsOfRow = labelsText(labels);
    const lines = ORDER.map((family) => {
      const list = samples[family];
      if (!list) return "";
      const name = FAMILIES[family].name;
      const text = (sample: Sample) =>
        seriesLine(name, sample.labels === labels ? labelsOfRow : labelsText(sample.labels), sample.value);
      // The bundle's own lists: their text is made once per bundle.
      if (!bundle || list !== bundle.samples[family]) return linesOf(list.map(text));
      bundle.lines[family] ??= linesOf(list.map(text));
      return bundle.lines[family];
    });
    return { ...inputs, computedAtMs: nowMs, validUntilMs, lines };
  };

  /** Every relationship's row for one scrape, in registry order, kept ones reused. */
  const prepare = async (slicer: TimeSlicer): Promise<readonly Row[]> => {
    const source = current();
    if (!source) return [];
    if (source !== rowsSource) {
      rows = new Map();
      rowsSource = source;
    }
    const nowMs = source.now().getTime();
    const relationships = source.relationships();
    const previous = rows;
    const next = new Map<TrustDomain, Row>();
    const ordered: Row[] = [];
    for (const [index, relationship] of relationships.entries()) {
      // A status read may be costly (the engine's view); checked often, the pauses stay short.
      if (index % 8 === 0 && slicer.due()) await slicer.pause();
      const trustDomain = relationship.trustDomain;
      const status = source.status(trustDomain);
      const cached = source.bundle(trustDomain);
      const quarantined = source.quarantined(trustDomain);
      let row = previous.get(trustDomain);
      if (
        row === undefined ||
        row.relationship !== relationship ||
        row.status !== status ||
        row.cached !== cached ||
        row.quarantined !== quarantined ||
        nowMs < row.computedAtMs ||
        nowMs >= row.validUntilMs
      ) {
        row = render({ relationship, status, cached, quarantined }, source, nowMs);
      }
      next.set(trustDomain, row);
      ordered.push(row);
    }
    if (rowsSource === source) rows = next;
    return ordered;
  };

  // One prepared walk per scrape, shared by every family of it.
  let prepared: { readonly scrape: Scrape; readonly rows: Promise<readonly Row[]> } | undefined;
  const rowsFor = (scrape: Scrape): Promise<readonly Row[]> => {
    if (prepared?.scrape !== scrape) prepared = { scrape, rows: prepare(scrape.slicer) };
    return prepared.rows;
  };

  for (const [position, family] of ORDER.entries()) {
    const spec: { name: string; help: string; labelNames?: readonly string[] } = FAMILIES[family];
    const { name, help } = spec;
    const labelNames = spec.labelNames ?? ["trust_domain"];
    const header = familyHeader(name, help, "gauge");
    const metric: TextMetric & Record<string, unknown> = {
      name,
      help,
      type: "gauge",
      aggregator: "sum",
      labelNames,
      async get() {
        const source = current();
        const values: Sample[] = [];
        if (source) {
          const nowMs = source.now().getTime();
          for (const relationship of source.relationships()) {
            values.push(...(describe(inputsOf(source, relationship), source, nowMs).samples[family] ?? []));
          }
        }
        return { name, help, type: "gauge", aggregator: "sum", values };
      },
      // Nothing is held to reset: every scrape reads the source afresh.
      reset() {},
      async exposition(scrape) {
        const parts = [header];
        for (const row of await rowsFor(scrape)) {
          const lines = row.lines[position];
          if (lines) parts.push(lines);
        }
        return parts.join("\n");
      },
    };
    registry.registerMetric(metric as unknown as Metric);
  }
}

/** Lines of one family, as a flat string (see exposition-text.ts): joined again at every scrape. */
function linesOf(lines: readonly string[]): string {
  return lines.length === 1 ? lines[0]! : lines.join("\n");
}

function seconds(ms: number | undefined): number | undefined {
  return ms === undefined ? undefined : ms / 1000;
}

interface CronInterval {
  readonly seconds: number | undefined;
  readonly validUntilMs: number;
}

/**
 * Seconds between the next two fire times of a cron expression, recomputed only once the first of them
 * has passed (walking the calendar on every scrape would be most of its cost).
 */
function createCronIntervals(): (expression: string, nowMs: number) => CronInterval {
  const known = new Map<string, CronInterval>();
  return (expression, nowMs) => {
    const hit = known.get(expression);
    if (hit && nowMs < hit.validUntilMs) return hit;
    let entry: CronInterval;
    try {
      const first = nextCronFire(expression, new Date(nowMs));
      const second = first && nextCronFire(expression, first);
      entry =
        first && second
          ? { validUntilMs: first.getTime(), seconds: (second.getTime() - first.getTime()) / 1000 }
          : { validUntilMs: Number.POSITIVE_INFINITY, seconds: undefined };
    } catch {
      // An expression the config would have refused; the schedule reports it, the gauge just leaves it out.
      entry = { validUntilMs: Number.POSITIVE_INFINITY, seconds: undefined };
    }
    known.set(expression, entry);
    return entry;
  };
}
