import fc from "fast-check";
import { parse as parseCron } from "node-cron";
import { describe, expect, it } from "vitest";
import type { FederationConfig } from "../../src/config/types.js";
import type { RefreshOverride } from "../../src/federation/relationship.js";
import {
  effectiveRefreshHintSeconds,
  MAX_DELAY_MS,
  type NextRefreshInput,
  nextCronFire,
  nextRefreshDelayMs,
  refreshIntervalSeconds,
} from "../../src/federation/schedule.js";

const FEDERATION: FederationConfig = {
  maxBundleBytes: 65_536,
  maxBundleKeys: 1000,
  connectTimeoutMs: 5000,
  headersTimeoutMs: 10_000,
  totalTimeoutMs: 30_000,
  maxRedirects: 3,
  leaseMs: 15_000,
  historyLimit: 20,
  minRefreshHintSeconds: 60,
  maxRefreshHintSeconds: 86_400,
  defaultRefreshHintSeconds: 300,
  jitterRatio: 0.1,
  backoffInitialSeconds: 10,
};

const NOW = new Date("2025-01-01T10:07:30.000Z");
/** The midpoint of [0, 1): symmetric jitter adds nothing. */
const NO_JITTER = () => 0.5;

function delay(input: Partial<NextRefreshInput> & { refresh?: RefreshOverride }): number {
  const { refresh, ...rest } = input;
  return nextRefreshDelayMs({
    relationship: refresh === undefined ? {} : { refresh },
    federation: FEDERATION,
    consecutiveFailures: 0,
    random: NO_JITTER,
    now: NOW,
    ...rest,
  });
}

describe("refreshIntervalSeconds", () => {
  it.each<[string, number | undefined, number]>([
    ["an absent hint uses the 300 s default", undefined, 75],
    ["the default hint itself", 300, 75],
    ["a hint in range", 1200, 300],
    ["a hint of 0 is clamped up to 60 s", 0, 15],
    ["a hint just under the minimum", 59, 15],
    ["the minimum", 60, 15],
    ["just over the minimum", 61, 15.25],
    ["the maximum (24 h)", 86_400, 21_600],
    ["just over the maximum", 86_401, 21_600],
    ["a huge hint", 1e12, 21_600],
    ["a NaN hint uses the default", Number.NaN, 75],
    ["an infinite hint uses the default", Number.POSITIVE_INFINITY, 75],
    ["a negative hint is clamped up", -5, 15],
  ])("%s", (_name, hint, expected) => {
    expect(refreshIntervalSeconds(hint, FEDERATION)).toBe(expected);
  });

  it("follows the configured bounds and default", () => {
    const bounds = { minRefreshHintSeconds: 10, maxRefreshHintSeconds: 100, defaultRefreshHintSeconds: 40 };
    expect(refreshIntervalSeconds(undefined, bounds)).toBe(10);
    expect(refreshIntervalSeconds(1, bounds)).toBe(2.5);
    expect(refreshIntervalSeconds(1000, bounds)).toBe(25);
    expect(effectiveRefreshHintSeconds(1000, bounds)).toBe(100);
  });
});

describe("nextRefreshDelayMs: after a success", () => {
  it.each<[string, number | undefined, number]>([
    ["no hint: 300 s / 4", undefined, 75_000],
    ["hint 60 s", 60, 15_000],
    ["hint below 60 s, clamped", 10, 15_000],
    ["hint 24 h", 86_400, 21_600_000],
    ["hint above 24 h, clamped", 172_800, 21_600_000],
  ])("%s", (_name, hintSeconds, expected) => {
    expect(delay({ hintSeconds })).toBe(expected);
  });

  it.each<[string, number, number]>([
    ["random 0 gives the shortest delay", 0, 67_500],
    ["random 0.25", 0.25, 71_250],
    ["random 0.5 gives the interval itself", 0.5, 75_000],
    ["random 0.75", 0.75, 78_750],
    ["random just under 1 approaches the longest", 0.999_999, 82_500],
  ])("jitters symmetrically: %s", (_name, r, expected) => {
    expect(delay({ random: () => r })).toBe(expected);
  });

  it("stays within interval × (1 ± jitter_ratio) for every random value, hint and ratio", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.option(fc.integer({ min: 0, max: 200_000 }), { nil: undefined }),
        fc.double({ min: 0, max: 0.5, noNaN: true }),
        (r, hintSeconds, jitterRatio) => {
          const federation = { ...FEDERATION, jitterRatio };
          const base = refreshIntervalSeconds(hintSeconds, federation) * 1000;
          const ms = nextRefreshDelayMs({
            relationship: {},
            hintSeconds,
            federation,
            consecutiveFailures: 0,
            random: () => r,
            now: NOW,
          });
          expect(Number.isInteger(ms)).toBe(true);
          expect(ms).toBeGreaterThanOrEqual(Math.floor(base * (1 - jitterRatio)));
          expect(ms).toBeLessThanOrEqual(Math.ceil(base * (1 + jitterRatio)));
        },
      ),
    );
  });

  it("never lets a broken random source produce a negative, NaN or out-of-bounds delay", () => {
    for (const r of [-1, 2, Number.NaN, Number.POSITIVE_INFINITY]) {
      const ms = delay({ random: () => r });
      expect(ms).toBeGreaterThanOrEqual(67_500);
      expect(ms).toBeLessThanOrEqual(82_500);
    }
  });

  it("uses a fixed interval override instead of the hint, jittered", () => {
    const refresh: RefreshOverride = { kind: "interval", seconds: 120 };
    expect(delay({ refresh, hintSeconds: 60 })).toBe(120_000);
    expect(delay({ refresh, random: () => 0 })).toBe(108_000);
  });
});

describe("nextRefreshDelayMs: after failures", () => {
  it("backs off from 10 s, doubling, capped at the interval (hint 3600 s: 900 s)", () => {
    const delays = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10].map((failures) =>
      delay({ hintSeconds: 3600, consecutiveFailures: failures }),
    );
    expect(delays).toEqual([10, 20, 40, 80, 160, 320, 640, 900, 900, 900].map((s) => s * 1000));
  });

  it("caps at the default interval when there is no hint (75 s)", () => {
    const delays = [1, 2, 3, 4, 5].map((failures) => delay({ consecutiveFailures: failures }));
    expect(delays).toEqual([10_000, 20_000, 40_000, 75_000, 75_000]);
  });

  it("caps at a fixed interval override", () => {
    const refresh: RefreshOverride = { kind: "interval", seconds: 30 };
    expect([1, 2, 3].map((failures) => delay({ refresh, consecutiveFailures: failures }))).toEqual([
      10_000, 20_000, 30_000,
    ]);
  });

  it("follows backoff_initial_seconds", () => {
    const federation = { ...FEDERATION, backoffInitialSeconds: 3 };
    expect([1, 2, 3].map((failures) => delay({ federation, consecutiveFailures: failures }))).toEqual([
      3000, 6000, 12_000,
    ]);
  });

  it("stays finite after any number of failures", () => {
    expect(delay({ consecutiveFailures: 5000 })).toBe(75_000);
  });

  it("jitters the backoff within its bounds", () => {
    fc.assert(
      fc.property(
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        fc.integer({ min: 1, max: 64 }),
        fc.option(fc.integer({ min: 0, max: 200_000 }), { nil: undefined }),
        (r, failures, hintSeconds) => {
          const interval = refreshIntervalSeconds(hintSeconds, FEDERATION);
          const base = Math.min(10 * 2 ** (failures - 1), interval) * 1000;
          const ms = delay({ random: () => r, consecutiveFailures: failures, hintSeconds });
          expect(ms).toBeGreaterThanOrEqual(Math.floor(base * 0.9));
          expect(ms).toBeLessThanOrEqual(Math.ceil(base * 1.1));
        },
      ),
    );
  });
});

describe("nextRefreshDelayMs: cron override", () => {
  const every15: RefreshOverride = { kind: "cron", expression: "*/15 * * * *" };

  it("waits until the next fire time, without jitter", () => {
    const random = () => 0;
    expect(delay({ refresh: every15, random })).toBe(7.5 * 60_000);
    expect(delay({ refresh: every15, now: new Date("2025-01-01T10:14:59.500Z"), random })).toBe(500);
  });

  it("never fires at now itself: the next fire is strictly later", () => {
    expect(delay({ refresh: every15, now: new Date("2025-01-01T10:15:00.000Z") })).toBe(15 * 60_000);
  });

  it("ignores the refresh hint", () => {
    expect(delay({ refresh: every15, hintSeconds: 60 })).toBe(7.5 * 60_000);
  });

  it("backs off after a failure, but never past the next fire time", () => {
    const hourly: RefreshOverride = { kind: "cron", expression: "0 * * * *" };
    // 52.5 minutes to the next fire: the backoff wins while it is shorter.
    expect([1, 2, 3, 4].map((failures) => delay({ refresh: hourly, consecutiveFailures: failures }))).toEqual([
      10_000, 20_000, 40_000, 80_000,
    ]);
    expect(delay({ refresh: hourly, consecutiveFailures: 12 })).toBe(52.5 * 60_000);
    // 500 ms to the next fire: it comes before even the first retry.
    const now = new Date("2025-01-01T10:59:59.500Z");
    expect(delay({ refresh: hourly, consecutiveFailures: 1, now })).toBe(500);
  });

  it("never returns more than Node's timer limit, even for a yearly expression", () => {
    const yearly: RefreshOverride = { kind: "cron", expression: "0 0 1 1 *" };
    expect(delay({ refresh: yearly })).toBe(MAX_DELAY_MS);
    expect(delay({ refresh: yearly, now: new Date("2025-12-31T23:00:00Z") })).toBe(3_600_000);
  });

  it("throws for an expression that never fires (config validation refuses it)", () => {
    expect(() => delay({ refresh: { kind: "cron", expression: "0 0 1 * 1#5" } })).toThrow(
      expect.objectContaining({ code: "ERR_SCHEDULE_CRON_NEVER_FIRES" }),
    );
  });
});

describe("nextCronFire", () => {
  it.each<[string, string, string, string]>([
    ["every 15 minutes", "*/15 * * * *", "2025-01-01T10:07:30Z", "2025-01-01T10:15:00Z"],
    ["strictly after a fire time", "*/15 * * * *", "2025-01-01T10:15:00Z", "2025-01-01T10:30:00Z"],
    ["within the same second", "*/15 * * * *", "2025-01-01T10:14:59.999Z", "2025-01-01T10:15:00Z"],
    ["across midnight", "0 0 * * *", "2025-01-01T23:59:59Z", "2025-01-02T00:00:00Z"],
    ["across a year", "0 0 1 1 *", "2025-06-01T00:00:00Z", "2026-01-01T00:00:00Z"],
    ["six fields", "30 * * * * *", "2025-01-01T10:00:30Z", "2025-01-01T10:01:30Z"],
    ["a nickname", "@daily", "2025-01-01T00:00:00Z", "2025-01-02T00:00:00Z"],
    ["month names", "0 0 1 jan,jul *", "2025-02-01T00:00:00Z", "2025-07-01T00:00:00Z"],
    ["weekday names", "0 9 * * mon", "2025-01-01T00:00:00Z", "2025-01-06T09:00:00Z"],
    ["day 7 is Sunday", "0 9 * * 7", "2025-01-01T00:00:00Z", "2025-01-05T09:00:00Z"],
    ["ranges with steps", "0 9-17/4 * * *", "2025-01-01T13:30:00Z", "2025-01-01T17:00:00Z"],
    ["day of month AND day of week (Friday the 13th)", "0 0 13 * 5", "2025-01-01T00:00:00Z", "2025-06-13T00:00:00Z"],
    ["the last day of a month", "0 0 L * *", "2025-02-10T00:00:00Z", "2025-02-28T00:00:00Z"],
    ["the last day of a leap February", "0 0 L * *", "2024-02-10T00:00:00Z", "2024-02-29T00:00:00Z"],
    ["two days before the last", "0 9 L-2 * *", "2025-02-01T00:00:00Z", "2025-02-26T09:00:00Z"],
    ["the weekday nearest a Saturday 15th", "0 9 15W * *", "2025-03-01T00:00:00Z", "2025-03-14T09:00:00Z"],
    [
      "the weekday nearest a Saturday 1st stays in the month",
      "0 9 1W * *",
      "2025-01-31T00:00:00Z",
      "2025-02-03T09:00:00Z",
    ],
    ["the last weekday of a month", "0 9 LW * *", "2025-05-01T00:00:00Z", "2025-05-30T09:00:00Z"],
    ["the second Monday", "0 9 * * 1#2", "2025-01-01T00:00:00Z", "2025-01-13T09:00:00Z"],
    ["the last Friday", "0 9 * * 5L", "2025-01-01T00:00:00Z", "2025-01-31T09:00:00Z"],
    ["a leap day", "0 0 29 2 *", "2025-03-01T00:00:00Z", "2028-02-29T00:00:00Z"],
    ["a leap day that is a Monday", "0 0 29 2 1", "2025-01-01T00:00:00Z", "2044-02-29T00:00:00Z"],
  ])("%s: %s after %s is %s", (_name, expression, after, expected) => {
    expect(nextCronFire(expression, new Date(after))?.toISOString()).toBe(new Date(expected).toISOString());
  });

  it("is undefined for an expression that never fires", () => {
    expect(nextCronFire("0 0 1 * 1#5", new Date("2025-01-01T00:00:00Z"))).toBeUndefined();
  });

  it("throws for an expression node-cron refuses", () => {
    expect(() => nextCronFire("not cron", NOW)).toThrow();
  });

  it("agrees with a minute-by-minute scan for numeric 5-field expressions", () => {
    const list = (min: number, max: number) =>
      fc.uniqueArray(fc.integer({ min, max }), { minLength: 1, maxLength: 3 }).map((values) => values.join(","));
    fc.assert(
      fc.property(
        list(0, 59),
        list(0, 23),
        fc.oneof(fc.constant("*"), list(1, 28)),
        fc.oneof(fc.constant("*"), list(1, 12)),
        fc.oneof(fc.constant("*"), list(0, 6)),
        fc.date({ min: new Date("2020-01-01T00:00:00Z"), max: new Date("2030-01-01T00:00:00Z"), noInvalidDate: true }),
        (minute, hour, dom, month, dow, after) => {
          const expression = `${minute} ${hour} ${dom} ${month} ${dow}`;
          const expected = scanForFire(expression, after, 800);
          const actual = nextCronFire(expression, after);
          if (expected === undefined) expect(actual === undefined || actual.getTime() > after.getTime()).toBe(true);
          else expect(actual?.toISOString()).toBe(expected.toISOString());
        },
      ),
      { numRuns: 200 },
    );
  });
});

/** The oracle: tries every whole minute after `after`, up to `days` days, with node-cron's parsed fields. */
function scanForFire(expression: string, after: Date, days: number): Date | undefined {
  const f = parseCron(expression);
  const end = after.getTime() + days * 86_400_000;
  for (let t = Math.floor(after.getTime() / 60_000) * 60_000 + 60_000; t <= end; t += 60_000) {
    const d = new Date(t);
    const dayMatches =
      f.dayOfMonth.includes(d.getUTCDate()) &&
      f.month.includes(d.getUTCMonth() + 1) &&
      f.dayOfWeek.includes(d.getUTCDay());
    if (!dayMatches) {
      // Nothing fires on this day: go on from its last minute (cheaper, and still every minute of matching days).
      t = Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate() + 1) - 60_000;
      continue;
    }
    if (f.minute.includes(d.getUTCMinutes()) && f.hour.includes(d.getUTCHours())) return d;
  }
  return undefined;
}
