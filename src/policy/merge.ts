/**
 * A relationship's trust policy: the defaults of DESIGN.md section 2 with the relationship's overrides.
 *
 * Overrides arrive from YAML and from the API, so they are checked at run time whatever their static type
 * says. An unknown field is refused rather than ignored: a misspelt `fullReplacment: accept` that was
 * silently dropped would leave an operator believing a rule is relaxed (or tightened) when it is not.
 */
import { BundlegateError } from "../errors.js";
import { DEFAULT_TRUST_POLICY, type TrustPolicy } from "./types.js";

export type PolicyErrorCode = "ERR_POLICY_INVALID";

const ALLOWED: { readonly [K in keyof TrustPolicy]: readonly TrustPolicy[K][] } = {
  fullReplacement: ["quarantine", "reject", "accept"],
  sharedWithOwnDomain: ["quarantine", "reject", "accept"],
  sharedWithOtherPartner: ["quarantine", "reject", "accept"],
  sequenceReused: ["quarantine", "reject", "accept"],
  // No quarantine: approving an old bundle would serve stale trust; a partner that really reset its
  // sequence is handled by "accept" or by an operator resetting the relationship's sequence.
  sequenceRollback: ["reject", "accept"],
};

const FIELDS = Object.keys(ALLOWED) as (keyof TrustPolicy)[];

/** The defaults with `overrides` applied; throws ERR_POLICY_INVALID naming the first bad field. */
export function resolvePolicy(overrides?: Partial<TrustPolicy>): TrustPolicy {
  if (overrides === undefined) return DEFAULT_TRUST_POLICY;
  const given: unknown = overrides;
  if (typeof given !== "object" || given === null || Array.isArray(given)) {
    throw invalid("", given, "a trust policy must be an object");
  }
  const record = given as Record<string, unknown>;
  for (const field of Object.keys(record)) {
    if (!Object.hasOwn(ALLOWED, field)) {
      throw invalid(field, record[field], `unknown trust policy field "${field}" (known: ${FIELDS.join(", ")})`);
    }
  }
  const resolved: { -readonly [K in keyof TrustPolicy]: TrustPolicy[K] } = { ...DEFAULT_TRUST_POLICY };
  for (const field of FIELDS) {
    const value = record[field];
    // An explicit undefined means "not set", as when a caller spreads an optional config value.
    if (value === undefined) continue;
    const allowed: readonly unknown[] = ALLOWED[field];
    if (!allowed.includes(value)) {
      throw invalid(field, value, `trust policy field "${field}" must be one of ${allowed.join(", ")}`);
    }
    (resolved as Record<string, unknown>)[field] = value;
  }
  return Object.freeze(resolved);
}

function invalid(field: string, value: unknown, message: string): BundlegateError<PolicyErrorCode> {
  return new BundlegateError("ERR_POLICY_INVALID", message, {
    status: 400,
    expose: true,
    details: { field, value: describe(value) },
  });
}

/** Enough to recognise the mistake in a log or a problem+json body, never an arbitrarily large value. */
function describe(value: unknown): string {
  if (typeof value === "string") return value.length > 64 ? `${value.slice(0, 64)}...` : value;
  if (value === null) return "null";
  if (Array.isArray(value)) return "array";
  return typeof value === "object" ? "object" : String(value);
}
