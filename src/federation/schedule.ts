/**
 * When a relationship is polled next (DESIGN.md section 6). Pure: the caller passes the clock reading and
 * the random source, so every delay can be reproduced in a test.
 *
 * - Normal interval: the partner's `spiffe_refresh_hint` clamped to [min, max] (the default when the
 *   bundle has none), divided by 4. Polling four times per hint means a partner that publishes new keys
 *   3 to 5 hints before using them (what the spec asks) is seen in time even after a few failed fetches.
 * - Jitter is symmetric: a delay `d` becomes `d × (1 + jitterRatio × (2r − 1))` for `r = random()` in
 *   [0, 1), i.e. anywhere in [d × (1 − ratio), d × (1 + ratio)). Symmetric keeps the average rate at the
 *   one the hint asks for, while relationships (and gateways) configured alike drift apart instead of
 *   polling a partner in lock step.
 * - After a failure: `backoffInitialSeconds × 2^(failures − 1)`, capped at the normal interval, then
 *   jittered. A partner that is down is not hammered, and one that comes back is seen within an interval.
 * - A per-relationship `refresh.interval_seconds` replaces the hint-derived interval (still jittered).
 * - A per-relationship `refresh.cron` fires exactly at the expression's times, in UTC, without jitter:
 *   the operator chose the moment (a maintenance window, an agreed time). Failures back off as above,
 *   but never past the next fire time.
 *
 * Delays are whole milliseconds, never above Node's timer limit (2^31 − 1 ms, about 24.8 days), because
 * `setTimeout` turns a longer delay into 1 ms: a scheduler fed a monthly cron's delay would poll in a busy
 * loop. Only a cron gap can be that long (hint and interval bounds keep the rest well below); such a
 * relationship is then polled once early, and the next call returns the rest of the way to its fire time.
 */
import { parse as parseCronFields } from "node-cron";
import type { FederationConfig } from "../config/types.js";
import { BundlegateError } from "../errors.js";
import type { Relationship } from "./relationship.js";

export type RefreshHintBounds = Pick<
  FederationConfig,
  "minRefreshHintSeconds" | "maxRefreshHintSeconds" | "defaultRefreshHintSeconds"
>;

export type ScheduleConfig = RefreshHintBounds & Pick<FederationConfig, "jitterRatio" | "backoffInitialSeconds">;

export const MAX_DELAY_MS = 2_147_483_647;

/** The hint the schedule and the staleness rules work with: clamped, the default when absent or unusable. */
export function effectiveRefreshHintSeconds(hintSeconds: number | undefined, federation: RefreshHintBounds): number {
  // A NaN would pass through Math.min/max and turn every delay into NaN, which setTimeout reads as 1 ms.
  const hint = hintSeconds !== undefined && Number.isFinite(hintSeconds) ? hintSeconds : undefined;
  const value = hint ?? federation.defaultRefreshHintSeconds;
  return Math.min(Math.max(value, federation.minRefreshHintSeconds), federation.maxRefreshHintSeconds);
}

/** The normal polling interval for a partner's refresh hint: a quarter of the clamped hint. */
export function refreshIntervalSeconds(hintSeconds: number | undefined, federation: RefreshHintBounds): number {
  return effectiveRefreshHintSeconds(hintSeconds, federation) / 4;
}

export interface NextRefreshInput {
  readonly relationship: Pick<Relationship, "refresh">;
  /** The `spiffe_refresh_hint` of the partner's latest bundle; absent before the first one or when it has none. */
  readonly hintSeconds?: number | undefined;
  readonly federation: ScheduleConfig;
  /** 0 after a success; n after the n-th failure in a row. */
  readonly consecutiveFailures: number;
  /** Uniform in [0, 1), like Math.random. */
  readonly random: () => number;
  readonly now: Date;
}

/** Milliseconds from `now` until the relationship should be polled again. */
export function nextRefreshDelayMs(input: NextRefreshInput): number {
  const { relationship, federation, consecutiveFailures, now } = input;
  const refresh = relationship.refresh;
  const failing = consecutiveFailures > 0;

  if (refresh?.kind === "cron") {
    const next = nextCronFire(refresh.expression, now);
    // Config validation refuses expressions that never fire, so this is a relationship built elsewhere
    // without the same check; polling it never is the safe reading, but the caller must hear of it.
    if (next === undefined) {
      throw new BundlegateError(
        "ERR_SCHEDULE_CRON_NEVER_FIRES",
        `cron expression ${JSON.stringify(refresh.expression)} never fires`,
        {
          details: { expression: refresh.expression },
        },
      );
    }
    const untilFire = Math.min(next.getTime() - now.getTime(), MAX_DELAY_MS);
    if (!failing) return untilFire;
    const retry = jittered(backoffSeconds(consecutiveFailures, federation, Number.POSITIVE_INFINITY), input);
    return Math.min(retry, untilFire);
  }

  const interval =
    refresh?.kind === "interval" ? refresh.seconds : refreshIntervalSeconds(input.hintSeconds, federation);
  const seconds = failing ? backoffSeconds(consecutiveFailures, federation, interval) : interval;
  return jittered(seconds, input);
}

/** initial × 2^(failures − 1), capped; 2^n overflows to Infinity for huge n, which the cap absorbs. */
function backoffSeconds(failures: number, federation: ScheduleConfig, cap: number): number {
  return Math.min(federation.backoffInitialSeconds * 2 ** (failures - 1), cap);
}

function jittered(seconds: number, input: Pick<NextRefreshInput, "random" | "federation">): number {
  const drawn = input.random();
  // A broken random source must not produce a negative or NaN delay; the midpoint means "no jitter".
  const r = Number.isFinite(drawn) ? Math.min(Math.max(drawn, 0), 1) : 0.5;
  const factor = 1 + input.federation.jitterRatio * (2 * r - 1);
  return Math.min(Math.max(0, Math.round(seconds * 1000 * factor)), MAX_DELAY_MS);
}

// ---------------------------------------------------------------------------------------------------
// Cron: the next fire time of an expression node-cron accepts, computed without node-cron's timers.
// node-cron parses the expression (names, ranges, steps, nicknames, L, W, #), we walk the calendar.
// Semantics follow node-cron: day of month AND day of week must both match (not the POSIX "or").
// ---------------------------------------------------------------------------------------------------

/**
 * Far enough to find any date the Gregorian calendar can produce (its weekday pattern repeats every 400
 * years), so "undefined" really means "never", e.g. "0 0 1 * 1#5" (a fifth Monday on the 1st).
 */
const CRON_SEARCH_YEARS = 400;

interface CronFields {
  readonly seconds: readonly number[];
  readonly minutes: readonly number[];
  readonly hours: readonly number[];
  readonly months: ReadonlySet<number>;
  readonly daysOfMonth: readonly (number | string)[];
  readonly daysOfWeek: readonly (number | string)[];
}

/**
 * The first time strictly after `after` (whole seconds, UTC) at which `expression` fires; undefined when it
 * never does. Throws node-cron's error for an expression it does not accept.
 */
export function nextCronFire(expression: string, after: Date): Date | undefined {
  const fields = cronFieldsOf(expression);
  const startMs = Math.floor(after.getTime() / 1000) * 1000 + 1000;
  const start = new Date(startMs);
  let year = start.getUTCFullYear();
  let month = start.getUTCMonth() + 1;
  let day = start.getUTCDate();
  let lowerBound: number | undefined = start.getUTCHours() * 3600 + start.getUTCMinutes() * 60 + start.getUTCSeconds();
  const lastYear = year + CRON_SEARCH_YEARS;

  while (year <= lastYear) {
    if (!fields.months.has(month)) {
      ({ year, month } = month === 12 ? { year: year + 1, month: 1 } : { year, month: month + 1 });
      day = 1;
      lowerBound = undefined;
      continue;
    }
    if (matchesDay(fields, year, month, day)) {
      const second = firstSecondOfDay(fields, lowerBound ?? 0);
      if (second !== undefined) return new Date(Date.UTC(year, month - 1, day) + second * 1000);
    }
    lowerBound = undefined;
    const next = new Date(Date.UTC(year, month - 1, day + 1));
    year = next.getUTCFullYear();
    month = next.getUTCMonth() + 1;
    day = next.getUTCDate();
  }
  return undefined;
}

function cronFieldsOf(expression: string): CronFields {
  const parsed = parseCronFields(expression);
  const numbers = (values: readonly (number | string)[]): number[] =>
    values.filter((v): v is number => typeof v === "number").sort((a, b) => a - b);
  return {
    seconds: numbers(parsed.second),
    minutes: numbers(parsed.minute),
    hours: numbers(parsed.hour),
    months: new Set(parsed.month),
    daysOfMonth: parsed.dayOfMonth,
    daysOfWeek: parsed.dayOfWeek,
  };
}

/** Seconds since midnight of the first matching time at or after `lowerBound`, if any. */
function firstSecondOfDay(fields: CronFields, lowerBound: number): number | undefined {
  for (const hour of fields.hours) {
    if ((hour + 1) * 3600 <= lowerBound) continue;
    for (const minute of fields.minutes) {
      const base = hour * 3600 + minute * 60;
      if (base + 60 <= lowerBound) continue;
      for (const second of fields.seconds) {
        if (base + second >= lowerBound) return base + second;
      }
    }
  }
  return undefined;
}

function matchesDay(fields: CronFields, year: number, month: number, day: number): boolean {
  return (
    matchesDayOfMonth(fields.daysOfMonth, year, month, day) && matchesDayOfWeek(fields.daysOfWeek, year, month, day)
  );
}

function daysInMonth(year: number, month: number): number {
  return new Date(Date.UTC(year, month, 0)).getUTCDate();
}

function weekdayOf(year: number, month: number, day: number): number {
  return new Date(Date.UTC(year, month - 1, day)).getUTCDay();
}

/** "15W": the weekday nearest the 15th without leaving the month; "LW": the last weekday of the month. */
function nearestWeekday(year: number, month: number, target: number): number | undefined {
  const last = daysInMonth(year, month);
  if (target < 1 || target > last) return undefined;
  const weekday = weekdayOf(year, month, target);
  if (weekday === 6) return target === 1 ? 3 : target - 1;
  if (weekday === 0) return target === last ? target - 2 : target + 1;
  return target;
}

function matchesDayOfMonth(values: readonly (number | string)[], year: number, month: number, day: number): boolean {
  const last = daysInMonth(year, month);
  for (const value of values) {
    if (value === day) return true;
    if (typeof value !== "string") continue;
    if (value === "L" && day === last) return true;
    const weekday = /^(\d{1,2}|L)W$/.exec(value);
    if (weekday?.[1] !== undefined) {
      const target = weekday[1] === "L" ? last : Number(weekday[1]);
      if (nearestWeekday(year, month, target) === day) return true;
    }
    const offset = /^L-(\d{1,2})$/.exec(value);
    if (offset?.[1] !== undefined && last - Number(offset[1]) === day) return true;
  }
  return false;
}

function matchesDayOfWeek(values: readonly (number | string)[], year: number, month: number, day: number): boolean {
  const weekday = weekdayOf(year, month, day);
  for (const value of values) {
    if (value === weekday) return true;
    if (typeof value !== "string") continue;
    // "1#2": the second Monday of the month.
    const nth = /^([0-7])#([1-5])$/.exec(value);
    if (nth?.[1] !== undefined && nth[2] !== undefined) {
      if (Number(nth[1]) % 7 === weekday && Math.floor((day - 1) / 7) + 1 === Number(nth[2])) return true;
      continue;
    }
    // "5L": the last Friday of the month.
    const lastOf = /^([0-7])L$/i.exec(value);
    if (lastOf?.[1] !== undefined && Number(lastOf[1]) % 7 === weekday && day + 7 > daysInMonth(year, month)) {
      return true;
    }
  }
  return false;
}
