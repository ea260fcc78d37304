/**
 * problem+json (RFC 9457) answers of the distribution API. Every error a caller sees has `type`, `title`,
 * `status`, `detail` and the stable `code` extension that clients and tests match on.
 *
 * Kept under distribution/ for now; the consumer authentication step (401/403) and the other APIs should
 * share it once it moves to `src/api/problem.ts`.
 */
import type { Response } from "express";
import { BundlegateError, isBundlegateError } from "../../errors.js";
import { parseTrustDomain, type TrustDomain } from "../../spiffe/id.js";

export const PROBLEM_CONTENT_TYPE = "application/problem+json";

export interface Problem {
  readonly status: number;
  readonly code: string;
  readonly title: string;
  readonly detail: string;
  /** Validation problems, one per bad field (RFC 9457 extension member "errors"). */
  readonly errors?: readonly { readonly path: string; readonly message: string }[];
}

/** A BundlegateError the API answers as it is: its status, code and message (when `expose`). */
export class ApiError extends BundlegateError {
  readonly title: string;

  constructor(
    status: number,
    code: string,
    title: string,
    detail: string,
    options: { cause?: unknown; details?: Readonly<Record<string, unknown>> } = {},
  ) {
    super(code, detail, {
      status,
      expose: true,
      ...(options.cause === undefined ? {} : { cause: options.cause }),
      ...(options.details === undefined ? {} : { details: options.details }),
    });
    this.title = title;
  }
}

const TITLES: Readonly<Record<number, string>> = {
  400: "Bad Request",
  401: "Unauthorized",
  403: "Forbidden",
  404: "Not Found",
  409: "Conflict",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  429: "Too Many Requests",
  500: "Internal Server Error",
  503: "Service Unavailable",
};

/** The problem a thrown value stands for; internals are hidden behind a generic text unless `expose`. */
export function problemOf(error: unknown): Problem {
  if (isBundlegateError(error)) {
    const status = error.status >= 400 && error.status <= 599 ? error.status : 500;
    const title = error instanceof ApiError ? error.title : (TITLES[status] ?? "Error");
    const detail = error.expose ? error.message : "the request could not be completed";
    const issues = error.expose ? error.details.issues : undefined;
    const errors = Array.isArray(issues)
      ? issues.map((issue: { path?: unknown; message?: unknown }) => ({
          path: String(issue.path ?? ""),
          message: String(issue.message ?? ""),
        }))
      : undefined;
    return { status, code: error.code, title, detail, ...(errors === undefined ? {} : { errors }) };
  }
  return {
    status: 500,
    code: "ERR_API_INTERNAL",
    title: TITLES[500]!,
    detail: "the request could not be completed",
  };
}

export function sendProblem(res: Response, problem: Problem): void {
  const body = Buffer.from(
    JSON.stringify({
      type: `urn:bundlegate:problem:${problem.code}`,
      title: problem.title,
      status: problem.status,
      detail: problem.detail,
      code: problem.code,
      ...(problem.errors === undefined ? {} : { errors: problem.errors }),
    }),
    "utf8",
  );
  res.status(problem.status);
  res.setHeader("Content-Type", PROBLEM_CONTENT_TYPE);
  res.setHeader("Content-Length", body.length);
  res.setHeader("Cache-Control", "no-store");
  res.setHeader("X-Content-Type-Options", "nosniff");
  res.end(body);
}

/** A trust domain named in a request path: 400 with the parser's code when it is not one. */
export function trustDomainParam(value: unknown): TrustDomain {
  try {
    return parseTrustDomain(typeof value === "string" ? value : "");
  } catch (error) {
    const code = isBundlegateError(error) ? error.code : "ERR_API_BAD_TRUST_DOMAIN";
    const detail = error instanceof Error ? error.message : "invalid trust domain name";
    throw new ApiError(400, code, "Invalid trust domain", detail, { cause: error });
  }
}
