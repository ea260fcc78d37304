/**
 * The admin commands' client of the internal admin API: one request, one answer, with a deadline.
 *
 * node:http and node:https rather than fetch: Node 20's fetch takes no CA without undici's Agent, which is
 * not a dependency of bundlegate. No keep-alive (a CLI makes a request or two and exits) and no redirects
 * (the Authorization header must not follow one). Every failure is a BundlegateError with a stable code:
 * the API's problem+json code as it is, or one of the ERR_CLI_API_* codes below. The token is sent and
 * never put in an error.
 */
import type { IncomingMessage } from "node:http";
import { request as httpRequest } from "node:http";
import { request as httpsRequest } from "node:https";
import { BundlegateError } from "../errors.js";
import { type JsonValue, parseJsonExact, writeJsonExact } from "./json-text.js";

export type ApiMethod = "GET" | "POST" | "PATCH" | "DELETE";

/** Largest answer read; an admin answer is a few KiB, a full audit page well under this. */
export const MAX_API_RESPONSE_BYTES = 16 * 1024 * 1024;

export interface AdminApiOptions {
  /** http or https URL of the internal listener, optionally with a base path. */
  readonly baseUrl: URL;
  /** Sent as `Authorization: Bearer`. */
  readonly token?: string;
  /** PEM CA certificates to trust for an https API instead of the system roots. */
  readonly caPem?: string;
  readonly timeoutMs: number;
  readonly userAgent: string;
}

export interface ApiRequest {
  readonly method: ApiMethod;
  /** Path below the base URL, e.g. "/v1/relationships"; callers encode path segments. */
  readonly path: string;
  /** Repeated names are kept (label=a=b&label=c=d). */
  readonly query?: readonly (readonly [string, string])[];
  readonly body?: unknown;
  readonly headers?: Readonly<Record<string, string>>;
}

export interface ApiResponse {
  readonly status: number;
  /** The answer's JSON read exactly; undefined for an empty answer (204). */
  readonly body: JsonValue | undefined;
}

export interface AdminApiClient {
  /** What error messages name: the base URL without userinfo, query or fragment. */
  readonly displayUrl: string;
  request(request: ApiRequest): Promise<ApiResponse>;
}

/** One entry of a problem's `errors`: which field of the request, and what is wrong with it. */
export interface ProblemFieldError {
  readonly path: string;
  readonly message: string;
}

/** The API answered with an error status: its problem's code and detail, or ERR_CLI_API_STATUS without one. */
export class AdminApiError extends BundlegateError {
  constructor(
    code: string,
    message: string,
    readonly httpStatus: number,
    readonly fieldErrors: readonly ProblemFieldError[],
    /** The problem+json document as the API wrote it, when there was one. */
    readonly problem?: JsonValue,
  ) {
    super(code, message, { status: httpStatus, details: { status: httpStatus } });
  }
}

export function isAdminApiError(value: unknown): value is AdminApiError {
  return value instanceof AdminApiError;
}

/**
 * The base URL from --api: http or https, no userinfo (a password there would be sent as Basic auth and
 * echoed in messages: the token belongs in --token), no query or fragment.
 */
export function parseApiBaseUrl(raw: string): URL {
  let url: URL;
  try {
    url = new URL(raw);
  } catch (cause) {
    throw new BundlegateError("ERR_CLI_API_URL", "is not a URL (e.g. http://127.0.0.1:8080)", { cause });
  }
  if (url.protocol !== "http:" && url.protocol !== "https:") {
    throw new BundlegateError("ERR_CLI_API_URL", `must be an http or https URL, not ${url.protocol}`);
  }
  if (url.username !== "" || url.password !== "") {
    throw new BundlegateError(
      "ERR_CLI_API_URL",
      "must not hold a user name or password; pass the token with --token or BUNDLEGATE_API_TOKEN",
    );
  }
  if (url.search !== "" || url.hash !== "") {
    throw new BundlegateError("ERR_CLI_API_URL", "must not have a query or fragment");
  }
  return url;
}

export function createAdminApiClient(options: AdminApiOptions): AdminApiClient {
  const base = new URL(options.baseUrl.href);
  const basePath = base.pathname.replace(/\/+$/, "");
  const displayUrl = `${base.origin}${basePath}`;

  async function request(req: ApiRequest): Promise<ApiResponse> {
    const target = new URL(base.href);
    target.pathname = `${basePath}${req.path}`;
    for (const [name, value] of req.query ?? []) target.searchParams.append(name, value);
    const where = `${target.origin}${target.pathname}`;
    const body = req.body === undefined ? undefined : Buffer.from(writeJsonExact(req.body), "utf8");
    const headers: Record<string, string> = {
      accept: "application/json, application/problem+json",
      "user-agent": options.userAgent,
      ...(options.token === undefined ? {} : { authorization: `Bearer ${options.token}` }),
      ...(body === undefined ? {} : { "content-type": "application/json", "content-length": String(body.length) }),
      ...req.headers,
    };
    const answer = await exchange(target, req.method, headers, body, options, where);
    return interpret(answer, req.method, where);
  }

  return { displayUrl, request };
}

interface RawAnswer {
  readonly status: number;
  readonly statusText: string;
  readonly contentType: string;
  readonly text: string;
}

function exchange(
  target: URL,
  method: ApiMethod,
  headers: Record<string, string>,
  body: Buffer | undefined,
  options: AdminApiOptions,
  where: string,
): Promise<RawAnswer> {
  return new Promise<RawAnswer>((resolve, reject) => {
    let settled = false;
    const finish = (outcome: () => void) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      outcome();
    };
    const https = target.protocol === "https:";
    const send = https ? httpsRequest : httpRequest;
    const req = send(target, {
      method,
      headers,
      agent: false,
      ...(https && options.caPem !== undefined ? { ca: options.caPem } : {}),
    });
    // One deadline for the whole exchange: connecting, the answer's headers and its body.
    const timer = setTimeout(() => {
      const seconds = options.timeoutMs / 1000;
      finish(() =>
        reject(
          new BundlegateError("ERR_CLI_API_UNREACHABLE", `no answer from the admin API at ${where} within ${seconds}s`),
        ),
      );
      req.destroy();
    }, options.timeoutMs);
    req.on("error", (error: NodeJS.ErrnoException) => finish(() => reject(transportError(error, where, https))));
    req.on("response", (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      let size = 0;
      res.on("data", (chunk: Buffer) => {
        size += chunk.length;
        if (size > MAX_API_RESPONSE_BYTES) {
          finish(() =>
            reject(
              new BundlegateError(
                "ERR_CLI_API_BAD_RESPONSE",
                `the admin API at ${where} answered with more than ${MAX_API_RESPONSE_BYTES} bytes`,
              ),
            ),
          );
          res.destroy();
          return;
        }
        chunks.push(chunk);
      });
      res.on("error", (error: NodeJS.ErrnoException) => finish(() => reject(transportError(error, where, https))));
      res.on("end", () =>
        finish(() =>
          resolve({
            status: res.statusCode ?? 0,
            statusText: res.statusMessage ?? "",
            contentType: String(res.headers["content-type"] ?? ""),
            text: Buffer.concat(chunks).toString("utf8"),
          }),
        ),
      );
    });
    req.end(body);
  });
}

/** TLS failures are told apart: the fix there is --api-ca-file or the URL's host name, not the network. */
function transportError(error: NodeJS.ErrnoException, where: string, https: boolean): BundlegateError {
  const reason = error.code ?? error.message;
  if (https && isTlsFailure(error)) {
    return new BundlegateError(
      "ERR_CLI_API_TLS",
      `TLS with the admin API at ${where} failed: ${reason} (${error.message}); is the server's certificate ` +
        "issued for this host name, and does it chain to --api-ca-file (or BUNDLEGATE_API_CA_FILE)?",
      { cause: error },
    );
  }
  return new BundlegateError("ERR_CLI_API_UNREACHABLE", `cannot reach the admin API at ${where}: ${reason}`, {
    cause: error,
  });
}

function isTlsFailure(error: NodeJS.ErrnoException): boolean {
  const code = error.code ?? "";
  return (
    code === "EPROTO" ||
    code.startsWith("ERR_SSL_") ||
    code.startsWith("ERR_TLS_") ||
    code.startsWith("CERT_") ||
    code.includes("SELF_SIGNED") ||
    code.startsWith("UNABLE_TO_") ||
    code === "HOSTNAME_MISMATCH"
  );
}

function interpret(answer: RawAnswer, method: ApiMethod, where: string): ApiResponse {
  const { status } = answer;
  if (status >= 200 && status < 300) {
    if (answer.text.trim() === "") return { status, body: undefined };
    const body = readJson(answer.text);
    if (body === undefined) {
      throw new BundlegateError(
        "ERR_CLI_API_BAD_RESPONSE",
        `the admin API at ${where} answered ${status} with a body that is not JSON` +
          `${answer.contentType === "" ? "" : ` (${answer.contentType})`}; does --api name bundlegate's internal listener?`,
      );
    }
    return { status, body };
  }
  const problem = readProblem(answer.text);
  if (problem !== undefined) {
    throw new AdminApiError(problem.code, problem.detail, status, problem.errors, problem.body);
  }
  const text = answer.statusText === "" ? "" : ` ${answer.statusText}`;
  const redirect = status >= 300 && status < 400 ? "; redirects are not followed, give the final URL with --api" : "";
  throw new AdminApiError(
    "ERR_CLI_API_STATUS",
    `${method} ${where} answered HTTP ${status}${text}${redirect}`,
    status,
    [],
  );
}

function readJson(text: string): JsonValue | undefined {
  try {
    return parseJsonExact(text);
  } catch {
    return undefined;
  }
}

/** problem+json with at least a code; detail falls back to the title. Anything else is not a problem. */
function readProblem(
  text: string,
): { code: string; detail: string; errors: readonly ProblemFieldError[]; body: JsonValue } | undefined {
  const body = readJson(text);
  if (body === null || typeof body !== "object" || Array.isArray(body)) return undefined;
  const { code, detail, title, errors } = body as Record<string, unknown>;
  if (typeof code !== "string" || code === "") return undefined;
  const message = typeof detail === "string" && detail !== "" ? detail : typeof title === "string" ? title : code;
  const fieldErrors = Array.isArray(errors)
    ? errors.flatMap((entry): ProblemFieldError[] => {
        if (entry === null || typeof entry !== "object" || Array.isArray(entry)) return [];
        const { path, message: text } = entry as Record<string, unknown>;
        const where = Array.isArray(path) ? path.join(".") : String(path ?? "");
        return [{ path: where, message: String(text ?? "") }];
      })
    : [];
  return { code, detail: message, errors: fieldErrors, body };
}
