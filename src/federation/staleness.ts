/**
 * How fresh a relationship's bundle is (DESIGN.md section 6). Pure.
 *
 * The spec asks publishers to add new keys 3 to 5 refresh hints before using them: a bundle older than
 * 3 hints may already lack keys in use (stale), one older than 5 hints almost surely does (critical).
 * `max_staleness_seconds` replaces the 3-hint threshold for a relationship, and the critical one keeps the
 * same 3 : 5 proportion (5/3 of it). Thresholds are "older than": an age equal to a threshold is still on
 * the better side of it, like a Prometheus `age > threshold` alert.
 */
import { effectiveRefreshHintSeconds, type RefreshHintBounds } from "./schedule.js";

export type StalenessState = "fresh" | "stale" | "critical" | "never_synced";

export const STALE_AFTER_HINTS = 3;
export const CRITICAL_AFTER_HINTS = 5;

export interface StalenessInput {
  /** When the partner's bundle was last fetched successfully; absent if it never was. */
  readonly lastSuccessAt?: Date | undefined;
  /** The refresh hint of the latest bundle; clamped as for scheduling, the default when absent. */
  readonly hintSeconds?: number | undefined;
  /** The relationship's override of the stale threshold. */
  readonly maxStalenessSeconds?: number | undefined;
  readonly federation: RefreshHintBounds;
  readonly now: Date;
}

export interface Staleness {
  readonly state: StalenessState;
  /** Seconds since the last success (0 when that lies in the future: clock skew); absent when never synced. */
  readonly ageSeconds?: number;
  readonly staleAfterSeconds: number;
  readonly criticalAfterSeconds: number;
}

export function staleness(input: StalenessInput): Staleness {
  const { staleAfterSeconds, criticalAfterSeconds } = stalenessThresholds(input);
  if (input.lastSuccessAt === undefined) return { state: "never_synced", staleAfterSeconds, criticalAfterSeconds };
  const ageSeconds = Math.max(0, (input.now.getTime() - input.lastSuccessAt.getTime()) / 1000);
  const state = ageSeconds > criticalAfterSeconds ? "critical" : ageSeconds > staleAfterSeconds ? "stale" : "fresh";
  return { state, ageSeconds, staleAfterSeconds, criticalAfterSeconds };
}

/** The two thresholds alone, e.g. for a metric or an alert rule's expected value. */
export function stalenessThresholds(
  input: Pick<StalenessInput, "hintSeconds" | "maxStalenessSeconds" | "federation">,
): { readonly staleAfterSeconds: number; readonly criticalAfterSeconds: number } {
  if (input.maxStalenessSeconds !== undefined) {
    return {
      staleAfterSeconds: input.maxStalenessSeconds,
      criticalAfterSeconds: (input.maxStalenessSeconds * CRITICAL_AFTER_HINTS) / STALE_AFTER_HINTS,
    };
  }
  const hint = effectiveRefreshHintSeconds(input.hintSeconds, input.federation);
  return { staleAfterSeconds: STALE_AFTER_HINTS * hint, criticalAfterSeconds: CRITICAL_AFTER_HINTS * hint };
}
