/**
 * One refresh of one relationship: fetch over the right profile, read the bundle, decide against the
 * last-known-good (DESIGN.md section 2), and write the outcome with the lease's fencing token. It keeps
 * no state of its own; the manager (manager.ts) owns the loops, leases and retries.
 */
import { performance } from "node:perf_hooks";
import type { Clock } from "../clock.js";
import type { FederationConfig } from "../config/types.js";
import { BundlegateError, isBundlegateError } from "../errors.js";
import type { Logger } from "../logging.js";
import type { AuthorityIndex } from "../policy/authority-index.js";
import { decideBundle } from "../policy/decide.js";
import type { Decision } from "../policy/types.js";
import type { TrustBundle } from "../spiffe/bundle.js";
import { parseSpiffeBundle, serializeSpiffeBundle } from "../spiffe/codec.js";
import type { BundleDiff } from "../spiffe/diff.js";
import { bundleDigest } from "../spiffe/digest.js";
import { parseSpiffeId, type TrustDomain } from "../spiffe/id.js";
import type {
  CommitResult,
  FederationStore,
  FetchOutcome,
  RelationshipStatus,
  StatusUpdate,
} from "../store/federation-state.js";
import type { BundleCache } from "./bundle-cache.js";
import type { FetchProfile, FetchResult } from "./fetcher/index.js";
import type { Relationship } from "./relationship.js";
import { nextRefreshDelayMs } from "./schedule.js";

export interface BundleFetcherLike {
  fetch(request: {
    url: string;
    profile: FetchProfile;
    proxy?: string;
    allowedCidrs?: readonly string[];
    ifNoneMatch?: string;
  }): Promise<FetchResult>;
}

export interface UpdaterDependencies {
  readonly fetcher: BundleFetcherLike;
  readonly store: FederationStore;
  readonly cache: BundleCache;
  readonly ownTrustDomain: TrustDomain;
  /** This domain's own bundle (verifies endpoints whose SPIFFE ID lies in this domain). */
  readonly ownBundle: () => TrustBundle;
  readonly ownAuthorities: () => AuthorityIndex;
  readonly partnerAuthorities: () => AuthorityIndex;
  readonly federation: FederationConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly replicaId: string;
  readonly random: () => number;
  readonly hooks?: SyncHooks;
}

/** Observers the app wires to metrics; the engine works without them. */
export interface SyncHooks {
  onFetch?(trustDomain: TrustDomain, result: string, seconds: number): void;
  onDecision?(trustDomain: TrustDomain, decision: Decision): void;
}

export interface RefreshOutcome {
  /** The validator for the next conditional fetch, when this one left the cache on known content. */
  readonly validator?: Validator;
  /** "accepted", "accept_alert", "unchanged", "quarantined", "rejected", or the error code of a failure. */
  readonly result: string;
  readonly nextRefreshAt: number;
  /** The status as written (or as it will be written once the store is reachable). */
  readonly status: RelationshipStatus;
  /** Set when the store could not be written: the manager keeps it and writes it later. */
  readonly pending?: PendingCommit;
  readonly commit?: CommitResult;
}

export interface PendingCommit {
  readonly fence: number;
  readonly outcome: FetchOutcome;
  readonly status: StatusUpdate;
}

export type SyncErrorCode = "ERR_SYNC_ENDPOINT_TRUST_UNKNOWN" | "ERR_SYNC_INTERNAL";

export class SyncError extends BundlegateError<SyncErrorCode> {}

/** An ETag and the digest of the content it was answered with: a 304 means "still that content". */
export interface Validator {
  readonly etag: string;
  readonly digest: string;
}

export async function refreshRelationship(
  relationship: Relationship,
  fence: number,
  previous: RelationshipStatus | undefined,
  deps: UpdaterDependencies,
  validator?: Validator,
): Promise<RefreshOutcome> {
  const trustDomain = relationship.trustDomain;
  const logger = deps.logger;
  const started = performance.now();
  const now = deps.clock.now();
  const lastKnownGood = deps.cache.get(trustDomain);

  let outcome: FetchOutcome = { kind: "status_only" };
  let result: string;
  let success = false;
  let errorCode: string | undefined;
  let etag: string | undefined;
  let fetched: FetchResult | undefined;
  let decision: Decision | undefined;
  let hint = lastKnownGood?.bundle.refreshHintSeconds;
  let parsedBundle: TrustBundle | undefined;

  try {
    fetched = await deps.fetcher.fetch({
      url: relationship.endpointUrl,
      profile: fetchProfile(relationship, deps),
      ...(relationship.proxy === undefined ? {} : { proxy: relationship.proxy }),
      allowedCidrs: relationship.allowedCidrs,
      // Conditional only when the ETag was answered with exactly what this replica holds: a 304 then
      // means "still that", and can never pin a bundle this cache has not got (or no longer has).
      ...(lastKnownGood && validator?.digest === lastKnownGood.stored.digest ? { ifNoneMatch: validator.etag } : {}),
    });
    if (fetched.kind === "not_modified") {
      result = "unchanged";
      success = true;
      etag = fetched.etag ?? validator?.etag;
    } else {
      const candidate = parseSpiffeBundle(fetched.body, {
        maxBytes: deps.federation.maxBundleBytes,
        maxKeys: deps.federation.maxBundleKeys,
      });
      for (const warning of candidate.warnings) logger.warn({ code: warning.code }, warning.message);
      const decided = decideBundle({
        candidate: candidate.bundle,
        ...(lastKnownGood ? { lastKnownGood: lastKnownGood.bundle } : {}),
        ownAuthorities: deps.ownAuthorities(),
        otherPartnerAuthorities: deps.partnerAuthorities(),
        // One index of every partner serves all relationships; this one's own entries are skipped.
        partner: trustDomain,
        policy: relationship.policy,
        now,
      });
      decision = decided;
      deps.hooks?.onDecision?.(trustDomain, decided);
      ({ outcome, result, success, errorCode } = outcomeOf(decided, candidate.bundle, lastKnownGood?.stored.digest));
      // The ETag is kept only for content bundlegate now holds: a 304 must never stand for a bundle that
      // was rejected or quarantined, or a partner serving it would look fresh.
      // The schedule follows only a bundle that is served: a refused one's hint (say 24 h) must not slow
      // down noticing the partner's real next change.
      if (decided.kind === "accept" || decided.kind === "accept_alert" || decided.kind === "unchanged") {
        etag = fetched.etag;
        hint = candidate.bundle.refreshHintSeconds;
        parsedBundle = candidate.bundle;
      }
      if (outcome.kind === "quarantined") {
        const held = await deps.store.getQuarantine(trustDomain).catch(() => undefined);
        if (held?.digest === outcome.quarantine.digest) outcome = { kind: "status_only" };
      }
    }
  } catch (error) {
    if (!isBundlegateError(error)) throw error;
    result = error.code;
    errorCode = error.code;
    success = false;
  }

  const consecutiveFailures = success ? 0 : (previous?.consecutiveFailures ?? 0) + 1;
  const delay = nextRefreshDelayMs({
    relationship,
    hintSeconds: hint,
    federation: deps.federation,
    consecutiveFailures,
    random: deps.random,
    now,
  });
  const at = now.getTime();
  // Counted from the end of the attempt, so a slow failure (a timeout) does not use up its own backoff.
  const finishedAt = Math.max(at, deps.clock.now().getTime());
  const status: StatusUpdate = {
    at,
    success,
    result,
    nextRefreshAt: finishedAt + delay,
    ...(errorCode === undefined ? {} : { errorCode }),
    ...(etag === undefined ? {} : { etag }),
  };
  const seconds = (performance.now() - started) / 1000;
  deps.hooks?.onFetch?.(trustDomain, result, seconds);

  // Accepted trust is served from memory at once, even when the store cannot be written now; if the
  // store refuses the write (a newer writer), the manager puts back what the store holds.
  if (outcome.kind === "accepted") {
    deps.cache.put(trustDomain, { ...outcome.bundle, acceptedAt: at }, parsedBundle ? { bundle: parsedBundle } : {});
  }

  const written = nextStatus(previous, status, outcome, deps.replicaId);
  let commit: CommitResult | undefined;
  let pending: PendingCommit | undefined;
  try {
    commit = await deps.store.commitFetch(trustDomain, fence, outcome, status, {
      historyLimit: deps.federation.historyLimit,
      origin: deps.replicaId,
    });
    if (!commit.ok) logger.warn({ reason: commit.reason }, "fetch outcome not written: another writer was newer");
  } catch (error) {
    pending = { fence, outcome, status };
    logger.warn(
      { code: isBundlegateError(error) ? error.code : "ERR_STORE_UNAVAILABLE" },
      "store unavailable: outcome kept in memory and written when it returns",
    );
  }

  logger.info(
    {
      url: loggableUrl(relationship.endpointUrl),
      status: fetched ? (fetched.kind === "bundle" ? 200 : 304) : undefined,
      sequence: outcome.kind === "accepted" ? outcome.bundle.sequence : lastKnownGood?.stored.sequence,
      durationMs: Math.round(seconds * 1000),
      decision: decision?.kind ?? result,
      reasons: decision?.reasons.map((reason) => reason.code),
      ...(errorCode === undefined ? {} : { code: errorCode }),
    },
    "fetch",
  );
  const nextValidator =
    etag !== undefined && (outcome.kind === "accepted" || result === "unchanged")
      ? { etag, digest: outcome.kind === "accepted" ? outcome.bundle.digest : (lastKnownGood?.stored.digest ?? "") }
      : undefined;
  return {
    result,
    nextRefreshAt: status.nextRefreshAt,
    status: written,
    ...(nextValidator ? { validator: nextValidator } : {}),
    ...(pending ? { pending } : {}),
    ...(commit ? { commit } : {}),
  };
}

/** Origin and path only: query strings can carry signatures (presigned CDN URLs) that must not reach logs. */
export function loggableUrl(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.origin}${parsed.pathname}`;
  } catch {
    return "(unparsable url)";
  }
}

/**
 * The bundle that verifies an https_spiffe endpoint now: the latest bundle of the endpoint ID's trust
 * domain (this domain's own, a partner's from the cache, or the bootstrap bundle until a self-serving
 * partner's first success); undefined when no bundle of that domain is known yet. The sync engine and
 * the admin API's preflight both choose it here.
 */
export function endpointAuthorities(
  relationship: Relationship,
  deps: Pick<UpdaterDependencies, "cache" | "ownTrustDomain" | "ownBundle">,
): TrustBundle | undefined {
  const profile = relationship.profile;
  if (profile.kind !== "https_spiffe") return undefined;
  const endpointDomain = parseSpiffeId(profile.endpointSpiffeId).trustDomain;
  // The bootstrap bundle serves only until the first success; after that the partner's own latest
  // bundle verifies its endpoint, so partner CA rotations need no operator.
  if (endpointDomain === relationship.trustDomain)
    return deps.cache.get(endpointDomain)?.bundle ?? profile.bootstrapBundle;
  if (endpointDomain === deps.ownTrustDomain) return deps.ownBundle();
  return deps.cache.get(endpointDomain)?.bundle;
}

function fetchProfile(relationship: Relationship, deps: UpdaterDependencies): FetchProfile {
  const profile = relationship.profile;
  if (profile.kind === "https_web") {
    return profile.caPem === undefined ? { kind: "https_web" } : { kind: "https_web", caPem: profile.caPem };
  }
  const authorities = endpointAuthorities(relationship, deps);
  if (!authorities) {
    throw new SyncError(
      "ERR_SYNC_ENDPOINT_TRUST_UNKNOWN",
      `no bundle of ${parseSpiffeId(profile.endpointSpiffeId).trustDomain} is known yet to verify the endpoint ${profile.endpointSpiffeId}`,
    );
  }
  return { kind: "https_spiffe", endpointSpiffeId: profile.endpointSpiffeId, authorities };
}

function outcomeOf(
  decision: Decision,
  candidate: TrustBundle,
  previousDigest: string | undefined,
): { outcome: FetchOutcome; result: string; success: boolean; errorCode?: string } {
  const reasons = decision.reasons.map((reason) => reason.code);
  switch (decision.kind) {
    case "unchanged":
      return { outcome: { kind: "status_only" }, result: "unchanged", success: true };
    case "accept":
    case "accept_alert": {
      const json = serializeSpiffeBundle(candidate);
      const digest = bundleDigest(candidate);
      // The history speaks the store's vocabulary ("accepted", "accept_alert"), as the status result does.
      const result = decision.kind === "accept" ? "accepted" : "accept_alert";
      return {
        result,
        success: true,
        outcome: {
          kind: "accepted",
          previousDigest: previousDigest ?? "",
          bundle: {
            json,
            digest,
            ...(candidate.sequence === undefined ? {} : { sequence: candidate.sequence.toString() }),
            ...(candidate.refreshHintSeconds === undefined ? {} : { refreshHintSeconds: candidate.refreshHintSeconds }),
          },
          history: {
            digest,
            event: result,
            reasons,
            ...(candidate.sequence === undefined ? {} : { sequence: candidate.sequence.toString() }),
            ...diffNames(decision.diff),
          },
        },
      };
    }
    case "quarantine":
      return {
        result: "quarantined",
        success: true,
        outcome: {
          kind: "quarantined",
          previousDigest: previousDigest ?? "",
          quarantine: {
            json: serializeSpiffeBundle(candidate),
            digest: bundleDigest(candidate),
            ...(candidate.sequence === undefined ? {} : { sequence: candidate.sequence.toString() }),
            ...(candidate.refreshHintSeconds === undefined ? {} : { refreshHintSeconds: candidate.refreshHintSeconds }),
            reasons,
            ...diffNames(decision.diff),
          },
        },
      };
    case "reject":
      // A refused bundle is not a successful sync: if the partner keeps serving it, the relationship goes stale.
      return {
        outcome: { kind: "status_only" },
        result: "rejected",
        success: false,
        errorCode: `ERR_POLICY_${reasons[0] ?? "REJECTED"}`,
      };
  }
}

function diffNames(diff: BundleDiff): { added: string[]; removed: string[] } {
  return {
    added: [...diff.x509Added.map((a) => a.fingerprint), ...diff.jwtAdded.map((a) => `kid:${a.keyId}`)],
    removed: [...diff.x509Removed.map((a) => a.fingerprint), ...diff.jwtRemoved.map((a) => `kid:${a.keyId}`)],
  };
}

/** The status the store holds after this commit, computed the same way the store computes it. */
export function nextStatus(
  previous: RelationshipStatus | undefined,
  update: StatusUpdate,
  outcome: FetchOutcome,
  writtenBy: string,
): RelationshipStatus {
  const base: { -readonly [K in keyof RelationshipStatus]: RelationshipStatus[K] } = {
    ...(previous ?? { consecutiveFailures: 0 }),
  };
  base.lastAttemptAt = update.at;
  base.lastResult = update.result;
  base.nextRefreshAt = update.nextRefreshAt;
  base.writtenBy = writtenBy;
  if (update.etag !== undefined) base.etag = update.etag;
  if (update.success) {
    base.lastSuccessAt = update.at;
    base.consecutiveFailures = 0;
  } else {
    base.consecutiveFailures = (previous?.consecutiveFailures ?? 0) + 1;
  }
  if (update.errorCode !== undefined) {
    base.lastErrorCode = update.errorCode;
    base.lastErrorAt = update.at;
  }
  if (outcome.kind === "accepted") base.lastChangeAt = update.at;
  return base;
}
