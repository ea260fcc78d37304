/** resolvePolicy: the defaults of DESIGN.md section 2 with a relationship's overrides, checked at run time. */
import { describe, expect, it } from "vitest";
import { BundlegateError } from "../../src/errors.js";
import { resolvePolicy } from "../../src/policy/merge.js";
import { DEFAULT_TRUST_POLICY, type TrustPolicy } from "../../src/policy/types.js";

function failure(overrides: unknown): BundlegateError {
  try {
    resolvePolicy(overrides as Partial<TrustPolicy>);
  } catch (error) {
    if (error instanceof BundlegateError) return error;
    throw error;
  }
  throw new Error("resolvePolicy accepted an invalid policy");
}

describe("resolvePolicy", () => {
  it("gives the defaults without overrides", () => {
    expect(resolvePolicy()).toEqual({
      fullReplacement: "quarantine",
      sharedWithOwnDomain: "quarantine",
      sharedWithOtherPartner: "quarantine",
      sequenceReused: "quarantine",
      sequenceRollback: "reject",
    });
    expect(resolvePolicy({})).toEqual(DEFAULT_TRUST_POLICY);
  });

  it.each<[string, Partial<TrustPolicy>]>([
    ["fullReplacement", { fullReplacement: "accept" }],
    ["sharedWithOwnDomain", { sharedWithOwnDomain: "reject" }],
    ["sharedWithOtherPartner", { sharedWithOtherPartner: "accept" }],
    ["sequenceReused", { sequenceReused: "reject" }],
    ["sequenceRollback", { sequenceRollback: "accept" }],
  ])("overrides %s and keeps every other default", (_field, overrides) => {
    expect(resolvePolicy(overrides)).toEqual({ ...DEFAULT_TRUST_POLICY, ...overrides });
  });

  it("overrides several fields at once", () => {
    const overrides: Partial<TrustPolicy> = { fullReplacement: "reject", sequenceReused: "accept" };
    expect(resolvePolicy(overrides)).toEqual({ ...DEFAULT_TRUST_POLICY, ...overrides });
  });

  it("treats an explicit undefined as not set", () => {
    expect(resolvePolicy({ fullReplacement: undefined } as unknown as Partial<TrustPolicy>)).toEqual(
      DEFAULT_TRUST_POLICY,
    );
  });

  it("returns a frozen policy and never changes the defaults", () => {
    const policy = resolvePolicy({ fullReplacement: "accept" });
    expect(Object.isFrozen(policy)).toBe(true);
    expect(Object.isFrozen(DEFAULT_TRUST_POLICY)).toBe(true);
    expect(DEFAULT_TRUST_POLICY.fullReplacement).toBe("quarantine");
  });

  it.each<[string, unknown, string]>([
    ["an unknown action", { fullReplacement: "hold" }, "fullReplacement"],
    ["an action in the wrong case", { sharedWithOwnDomain: "Quarantine" }, "sharedWithOwnDomain"],
    ["a non-string action", { sharedWithOtherPartner: true }, "sharedWithOtherPartner"],
    ["null for an action", { sequenceReused: null }, "sequenceReused"],
    ["quarantine for a rollback", { sequenceRollback: "quarantine" }, "sequenceRollback"],
    ["a misspelt field", { fullReplacment: "accept" }, "fullReplacment"],
    ["an inherited-looking field", { toString: "accept" }, "toString"],
    [
      "a field that is valid next to a bad one",
      { fullReplacement: "accept", sequenceRollback: "no" },
      "sequenceRollback",
    ],
    ["null for the policy", null, ""],
    ["an array for the policy", ["accept"], ""],
    ["a string for the policy", "accept", ""],
  ])("refuses %s with ERR_POLICY_INVALID naming the field", (_name, overrides, field) => {
    const error = failure(overrides);
    expect(error.code).toBe("ERR_POLICY_INVALID");
    expect(error.status).toBe(400);
    expect(error.expose).toBe(true);
    expect(error.details.field).toBe(field);
  });

  it("cuts a long bad value short in the error details", () => {
    const error = failure({ fullReplacement: "x".repeat(10_000) });
    expect(String(error.details.value).length).toBeLessThan(100);
  });
});
