import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type StalenessInput, staleness, stalenessThresholds } from "../../src/federation/staleness.js";

const FEDERATION = { minRefreshHintSeconds: 60, maxRefreshHintSeconds: 86_400, defaultRefreshHintSeconds: 300 };
const NOW = new Date("2025-01-01T12:00:00.000Z");

function ago(seconds: number): Date {
  return new Date(NOW.getTime() - seconds * 1000);
}

function stalenessOf(input: Omit<StalenessInput, "federation" | "now">) {
  return staleness({ federation: FEDERATION, now: NOW, ...input });
}

describe("staleness: thresholds", () => {
  it.each<[string, Omit<StalenessInput, "federation" | "now" | "lastSuccessAt">, number, number]>([
    ["no hint: 300 s default, 3x and 5x", {}, 900, 1500],
    ["hint 600 s", { hintSeconds: 600 }, 1800, 3000],
    ["hint below 60 s is clamped to 60 s", { hintSeconds: 10 }, 180, 300],
    ["hint 0 is clamped to 60 s", { hintSeconds: 0 }, 180, 300],
    ["hint above 24 h is clamped to 24 h", { hintSeconds: 200_000 }, 259_200, 432_000],
    [
      "max_staleness_seconds replaces 3x hint, critical at 5/3 of it",
      { hintSeconds: 600, maxStalenessSeconds: 600 },
      600,
      1000,
    ],
    ["max_staleness_seconds without a hint", { maxStalenessSeconds: 90 }, 90, 150],
  ])("%s", (_name, input, staleAfter, criticalAfter) => {
    expect(stalenessThresholds({ federation: FEDERATION, ...input })).toEqual({
      staleAfterSeconds: staleAfter,
      criticalAfterSeconds: criticalAfter,
    });
    expect(stalenessOf(input)).toMatchObject({ staleAfterSeconds: staleAfter, criticalAfterSeconds: criticalAfter });
  });
});

describe("staleness: state", () => {
  it.each<[string, Omit<StalenessInput, "federation" | "now">, string, number | undefined]>([
    ["never synced", {}, "never_synced", undefined],
    ["never synced, with a hint", { hintSeconds: 60 }, "never_synced", undefined],
    ["just fetched", { lastSuccessAt: NOW }, "fresh", 0],
    ["one hint ago", { lastSuccessAt: ago(300) }, "fresh", 300],
    ["exactly 3 hints ago: not yet older than 3 hints", { lastSuccessAt: ago(900) }, "fresh", 900],
    ["just over 3 hints ago", { lastSuccessAt: ago(900.001) }, "stale", 900.001],
    ["4 hints ago", { lastSuccessAt: ago(1200) }, "stale", 1200],
    ["exactly 5 hints ago", { lastSuccessAt: ago(1500) }, "stale", 1500],
    ["just over 5 hints ago", { lastSuccessAt: ago(1501) }, "critical", 1501],
    ["a day ago", { lastSuccessAt: ago(86_400) }, "critical", 86_400],
    ["a clamped hint: 200 s ago with hint 10 s (60 s)", { lastSuccessAt: ago(200), hintSeconds: 10 }, "stale", 200],
    ["a large hint: a day ago with hint 1 h", { lastSuccessAt: ago(86_400), hintSeconds: 3600 }, "critical", 86_400],
    ["within max_staleness_seconds", { lastSuccessAt: ago(3000), maxStalenessSeconds: 3600 }, "fresh", 3000],
    ["past max_staleness_seconds", { lastSuccessAt: ago(3601), maxStalenessSeconds: 3600 }, "stale", 3601],
    ["past 5/3 of max_staleness_seconds", { lastSuccessAt: ago(6001), maxStalenessSeconds: 3600 }, "critical", 6001],
    ["a success in the future (clock skew) counts as now", { lastSuccessAt: ago(-30) }, "fresh", 0],
  ])("%s", (_name, input, state, ageSeconds) => {
    const result = stalenessOf(input);
    expect(result.state).toBe(state);
    if (ageSeconds === undefined) expect(result).not.toHaveProperty("ageSeconds");
    else expect(result.ageSeconds).toBeCloseTo(ageSeconds, 6);
  });

  it("only ever gets worse as the last success recedes", () => {
    const rank = { fresh: 0, stale: 1, critical: 2, never_synced: 3 } as const;
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.integer({ min: 0, max: 10_000_000 }),
        fc.option(fc.integer({ min: 0, max: 200_000 }), { nil: undefined }),
        fc.option(fc.integer({ min: 1, max: 1_000_000 }), { nil: undefined }),
        (a, b, hintSeconds, maxStalenessSeconds) => {
          const [younger, older] = a <= b ? [a, b] : [b, a];
          const young = stalenessOf({ lastSuccessAt: ago(younger), hintSeconds, maxStalenessSeconds });
          const old = stalenessOf({ lastSuccessAt: ago(older), hintSeconds, maxStalenessSeconds });
          expect(rank[old.state]).toBeGreaterThanOrEqual(rank[young.state]);
          expect(young.staleAfterSeconds).toBeLessThan(young.criticalAfterSeconds);
        },
      ),
    );
  });
});
