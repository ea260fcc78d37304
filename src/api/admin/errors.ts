/**
 * The admin API's refusals, each a stable code. Validation failures carry one issue per bad field
 * (`errors` in the problem+json body), named as the caller wrote it.
 */
import type { ConfigIssue } from "../../config/errors.js";
import { ApiError } from "../distribution/problem.js";

export function validationError(issues: readonly ConfigIssue[], detail = "the request has invalid fields"): ApiError {
  const summary = issues
    .slice(0, 3)
    .map((issue) => `${issue.path || "(body)"}: ${issue.message}`)
    .join("; ");
  return new ApiError(400, "ERR_API_VALIDATION", "Invalid Request", `${detail}: ${summary}`, {
    details: { issues: issues.map((issue) => ({ path: issue.path, message: issue.message })) },
  });
}

export function notFound(trustDomain: string): ApiError {
  return new ApiError(
    404,
    "ERR_RELATIONSHIP_NOT_FOUND",
    "Not Found",
    `no relationship for trust domain ${trustDomain}`,
  );
}

export function readOnly(trustDomain: string): ApiError {
  return new ApiError(
    409,
    "ERR_RELATIONSHIP_READ_ONLY",
    "Conflict",
    `the relationship for ${trustDomain} is defined in the config file; change it there`,
  );
}

export function wrongState(trustDomain: string, state: string, action: string, hint: string): ApiError {
  return new ApiError(
    409,
    "ERR_RELATIONSHIP_STATE",
    "Conflict",
    `cannot ${action} ${trustDomain}: it is ${state}; ${hint}`,
  );
}

export function revisionConflict(trustDomain: string, current: number | undefined): ApiError {
  return new ApiError(
    409,
    "ERR_RELATIONSHIP_CONFLICT",
    "Conflict",
    current === undefined
      ? `the relationship for ${trustDomain} changed meanwhile (it no longer exists)`
      : `the relationship for ${trustDomain} changed meanwhile (now at revision ${current}); read it again and retry`,
  );
}
