/** The store health check a scrape waits on: bounded in time, one in flight, failures read as down. */
import { describe, expect, it } from "vitest";
import { boundedHealthCheck } from "../../src/metrics/store-probe.js";

describe("bounded store health check", () => {
  it("answers the store's verdict", async () => {
    let ok = true;
    const check = boundedHealthCheck(async () => ({ ok }), 1000);
    expect(await check()).toBe(true);
    ok = false;
    expect(await check()).toBe(false);
  });

  it("reads a failing check as down", async () => {
    const check = boundedHealthCheck(() => Promise.reject(new Error("connection refused")), 1000);
    expect(await check()).toBe(false);
  });

  it("reads a check that does not answer within the bound as down, and runs one check at a time", async () => {
    let calls = 0;
    let answer: ((health: { ok: boolean }) => void) | undefined;
    const check = boundedHealthCheck(() => {
      calls++;
      return new Promise((resolve) => {
        answer = resolve;
      });
    }, 20);
    expect(await check()).toBe(false);
    expect(await check()).toBe(false);
    expect(calls).toBe(1);
    answer?.({ ok: true });
    // The hung check is over: the next scrape asks again.
    await new Promise((resolve) => setImmediate(resolve));
    const next = check();
    expect(calls).toBe(2);
    answer?.({ ok: true });
    expect(await next).toBe(true);
  });
});
