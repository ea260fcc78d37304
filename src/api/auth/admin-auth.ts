/**
 * Caller authentication of the admin API: who is calling, and does it hold the scope a route needs.
 * No route is open by default: a route is reachable only through `requireScope`.
 *
 * Credentials, from `Authorization: Bearer <token>` only:
 * - a configured static token: the SHA-256 of the presented token is compared with every `tokens[].sha256`
 *   in constant time (static-tokens.ts). Checked first, so a static token that looks like a JWT is still
 *   one. The caller is `token:<name>` with the configured scopes.
 * - otherwise, when `jwt` is configured, a JWT verified with jose: signature by a key of the JWKS (file or
 *   URL, admin-jwks.ts) whose kid and key type fit the header; `alg` in `allowedAlgorithms` (asymmetric only:
 *   never HS*, never none); `iss` equal to `issuer`; `aud` naming one of `audience`; `exp` required and
 *   `nbf` honoured on the injected clock with `clockToleranceSeconds` of leeway; `sub` a non-empty string.
 *   The caller is `jwt:<iss>#<sub>`; its scopes are read from `scopeClaim` ("scope" by default), or `scp`
 *   when that claim is absent, each a space-separated string or an array of strings. Names that are not
 *   admin scopes are ignored.
 *
 * Answers are problem+json, sent here so the WWW-Authenticate header always goes with them:
 * - 401 ERR_ADMIN_UNAUTHENTICATED  every credential failure; `WWW-Authenticate: Bearer realm="bundlegate-admin"`,
 *                                  with `error="invalid_token"` when a token was presented. The precise
 *                                  reason (`AdminAuthFailure`) is in the log line and the detail.
 * - 403 ERR_ADMIN_FORBIDDEN        authenticated without the route's scope; `error="insufficient_scope",
 *                                  scope="<scope>"`.
 * - 503 ERR_ADMIN_AUTH_UNAVAILABLE the JWKS could not be fetched or used: not the caller's fault, so not a 401.
 * Each refusal is one log line with the code, the reason and the caller ID when known (a JWT whose signature
 * verified but whose claims did not names its `iss`/`sub`); the token is never logged.
 *
 * On success `res.locals.adminCaller` is the `AdminCaller`; its `id` is the audit actor.
 */
import type { NextFunction, Request, RequestHandler, Response } from "express";
import {
  decodeProtectedHeader,
  type FetchImplementation,
  type JWTPayload,
  type JWTVerifyGetKey,
  errors as joseErrors,
  jwtVerify,
} from "jose";
import type { Clock } from "../../clock.js";
import { ADMIN_SCOPES, type AdminScope } from "../../config/types.js";
import type { Logger } from "../../logging.js";
import { type Problem, sendProblem } from "../distribution/problem.js";
import { AdminAuthConfigError, AdminJwksUnavailableError } from "./admin-errors.js";
import { createAdminJwks } from "./admin-jwks.js";
import { looksLikeJwt, readBearer } from "./bearer.js";
import { compileStaticTokens, matchStaticToken } from "./static-tokens.js";

export { ADMIN_SCOPES, type AdminScope };

export const ADMIN_REALM = "bundlegate-admin";

/** Asymmetric JWS algorithms an admin JWT may use; `allowedAlgorithms` picks from these. */
export const ADMIN_JWT_PERMITTED_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "PS256",
  "PS384",
  "PS512",
  "ES256",
  "ES384",
  "ES512",
  "EdDSA",
  "Ed25519",
] as const;
export const ADMIN_JWT_DEFAULT_ALGORITHMS = ["RS256", "PS256", "ES256", "ES384", "EdDSA"] as const;

export interface AdminTokenOptions {
  /** Unique; the caller is `token:<name>`. */
  readonly name: string;
  /** Lowercase hex SHA-256 of the token's UTF-8 bytes. */
  readonly sha256: string;
  readonly scopes: readonly AdminScope[];
}

export interface AdminJwtOptions {
  readonly issuer: string;
  /** The JWT's `aud` must name one of these. */
  readonly audience: string | readonly string[];
  /** Exactly one of `jwksFile` and `jwksUrl`. */
  readonly jwksFile?: string;
  readonly jwksUrl?: string;
  /** PEM CA certificates for an https `jwksUrl` (default: the system roots). */
  readonly jwksCa?: string | Buffer;
  /** Claim holding the scopes (default "scope"); `scp` is read when it is absent. */
  readonly scopeClaim?: string;
  /** Leeway for `exp` and `nbf`; default 0, at most 300. */
  readonly clockToleranceSeconds?: number;
  /** Default `ADMIN_JWT_DEFAULT_ALGORITHMS`; each must be in `ADMIN_JWT_PERMITTED_ALGORITHMS`. */
  readonly allowedAlgorithms?: readonly string[];
  /** Re-read (file) or refetch (URL) the JWKS when the loaded copy is this old; default 300. */
  readonly jwksMaxAgeSeconds?: number;
  /** Least time between re-reads/refetches caused by an unknown kid; default 30. */
  readonly jwksCooldownSeconds?: number;
  /** Timeout of one JWKS fetch; default 5000. */
  readonly jwksTimeoutMs?: number;
}

export interface AdminAuthOptions {
  readonly tokens: readonly AdminTokenOptions[];
  readonly jwt?: AdminJwtOptions;
  readonly clock: Clock;
  readonly logger: Logger;
  /** Replaces the node:https fetch of `jwt.jwksUrl` (tests, or a proxy-aware fetch). */
  readonly fetchJwks?: FetchImplementation;
}

export interface AdminCaller {
  /** `token:<name>` or `jwt:<iss>#<sub>`; the audit actor. */
  readonly id: string;
  readonly kind: "token" | "jwt";
  readonly scopes: ReadonlySet<AdminScope>;
}

/** Why a request was refused: in the log line, never a separate answer code. */
export type AdminAuthFailure =
  | "no_credentials"
  | "not_bearer"
  | "malformed_token"
  | "unknown_static_token"
  | "jwt_not_configured"
  | "malformed_jwt"
  | "alg_not_allowed"
  | "unknown_kid"
  | "ambiguous_kid"
  | "bad_signature"
  | "expired"
  | "not_yet_valid"
  | "wrong_issuer"
  | "wrong_audience"
  | "missing_claim"
  | "invalid_claim"
  | "unverifiable"
  | "jwks_unavailable"
  | "insufficient_scope";

export interface AdminAuth {
  /** Authenticates (401/503 otherwise) and sets `res.locals.adminCaller`; grants nothing by itself. */
  readonly authenticate: RequestHandler;
  /** Authenticates unless `authenticate` already did, then demands `scope` (403 otherwise). */
  requireScope(scope: AdminScope): RequestHandler;
}

/** The authenticated admin caller, once `authenticate` or `requireScope` has let the request through. */
export function adminCallerOf(res: Response): AdminCaller | undefined {
  return res.locals.adminCaller as AdminCaller | undefined;
}

export function isAdminScope(value: unknown): value is AdminScope {
  return typeof value === "string" && (ADMIN_SCOPES as readonly string[]).includes(value);
}

const DETAILS: Readonly<Record<Exclude<AdminAuthFailure, "insufficient_scope" | "jwks_unavailable">, string>> = {
  no_credentials: "a bearer token is required",
  not_bearer: "only the Bearer authorization scheme is accepted",
  malformed_token: "the bearer token is empty or malformed",
  unknown_static_token: "the bearer token is not a configured token",
  jwt_not_configured: "the bearer token is not a configured token",
  malformed_jwt: "the bearer JWT is malformed",
  alg_not_allowed: "the bearer JWT's alg is not allowed",
  unknown_kid: "no key of the JWKS matches the bearer JWT's kid and alg",
  ambiguous_kid: "more than one key of the JWKS matches the bearer JWT, which names no kid",
  bad_signature: "the bearer JWT's signature does not verify",
  expired: "the bearer JWT has expired",
  not_yet_valid: "the bearer JWT is not valid yet",
  wrong_issuer: "the bearer JWT's issuer is not the configured one",
  wrong_audience: "the bearer JWT's audience does not name this API",
  missing_claim: "the bearer JWT lacks a required claim",
  invalid_claim: "a claim of the bearer JWT is not valid",
  unverifiable: "the bearer JWT could not be verified",
};

/** A refused credential: the reason, and what is known of the caller (never the token). */
class Refusal {
  constructor(
    readonly reason: Exclude<AdminAuthFailure, "insufficient_scope">,
    readonly facts: { readonly caller?: string; readonly claim?: string; readonly kid?: string } = {},
  ) {}
}

interface CompiledJwt {
  readonly keys: JWTVerifyGetKey;
  readonly issuer: string;
  readonly audience: string[];
  readonly algorithms: string[];
  readonly scopeClaim: string;
  readonly clockTolerance: number;
}

export function createAdminAuth(options: AdminAuthOptions): AdminAuth {
  const { clock, logger } = options;
  const tokens = compileStaticTokens(options.tokens, (message) => new AdminAuthConfigError(message));
  options.tokens.forEach((token, index) => {
    for (const scope of token.scopes) {
      if (!isAdminScope(scope)) {
        throw new AdminAuthConfigError(
          `tokens[${index}] (${token.name}): ${JSON.stringify(scope)} is not an admin scope`,
        );
      }
    }
  });
  const tokenScopes = new Map(options.tokens.map((token) => [token.name, new Set(token.scopes)]));
  const jwt = options.jwt === undefined ? undefined : compileJwt(options.jwt, options);

  const verify = async (token: string): Promise<AdminCaller> => {
    const match = matchStaticToken(tokens, token);
    if (match !== undefined) {
      return { id: `token:${match.name}`, kind: "token", scopes: tokenScopes.get(match.name)! };
    }
    if (!looksLikeJwt(token)) throw new Refusal("unknown_static_token");
    if (jwt === undefined) throw new Refusal("jwt_not_configured");
    return verifyJwt(token, jwt, clock.now());
  };

  const refuse = (req: Request, res: Response, refusal: Refusal) => {
    const { reason, facts } = refusal;
    if (reason === "jwks_unavailable") {
      logger.warn(
        { code: "ERR_ADMIN_AUTH_UNAVAILABLE", reason, ...facts, method: req.method, path: req.path },
        "admin request refused",
      );
      sendProblem(res, {
        status: 503,
        code: "ERR_ADMIN_AUTH_UNAVAILABLE",
        title: "Service Unavailable",
        detail: "the keys to verify the bearer JWT could not be fetched; try again later",
      });
      return;
    }
    logger.info(
      { code: "ERR_ADMIN_UNAUTHENTICATED", reason, ...facts, method: req.method, path: req.path },
      "admin request refused",
    );
    const presented = reason !== "no_credentials" && reason !== "not_bearer";
    res.setHeader("WWW-Authenticate", `Bearer realm="${ADMIN_REALM}"${presented ? ', error="invalid_token"' : ""}`);
    sendProblem(res, {
      status: 401,
      code: "ERR_ADMIN_UNAUTHENTICATED",
      title: "Unauthorized",
      detail: DETAILS[reason],
    });
  };

  /** The caller, or undefined once a refusal has been sent. */
  const authenticated = async (req: Request, res: Response): Promise<AdminCaller | undefined> => {
    const known = adminCallerOf(res);
    if (known !== undefined) return known;
    const bearer = readBearer(req.headers.authorization);
    try {
      if (bearer.kind === "none") throw new Refusal("no_credentials");
      if (bearer.kind === "other-scheme") throw new Refusal("not_bearer");
      if (bearer.kind === "malformed") throw new Refusal("malformed_token");
      const caller = await verify(bearer.token);
      res.locals.adminCaller = caller;
      return caller;
    } catch (error) {
      if (!(error instanceof Refusal)) throw error;
      refuse(req, res, error);
      return undefined;
    }
  };

  const authenticate: RequestHandler = async (req: Request, res: Response, next: NextFunction) => {
    try {
      if ((await authenticated(req, res)) !== undefined) next();
    } catch (error) {
      next(error);
    }
  };

  const requireScope = (scope: AdminScope): RequestHandler => {
    if (!isAdminScope(scope)) throw new AdminAuthConfigError(`${JSON.stringify(scope)} is not an admin scope`);
    return async (req: Request, res: Response, next: NextFunction) => {
      let caller: AdminCaller | undefined;
      try {
        caller = await authenticated(req, res);
      } catch (error) {
        next(error);
        return;
      }
      if (caller === undefined) return;
      if (caller.scopes.has(scope)) {
        next();
        return;
      }
      logger.info(
        {
          code: "ERR_ADMIN_FORBIDDEN",
          reason: "insufficient_scope",
          caller: caller.id,
          scope,
          method: req.method,
          path: req.path,
        },
        "admin request refused",
      );
      res.setHeader("WWW-Authenticate", `Bearer realm="${ADMIN_REALM}", error="insufficient_scope", scope="${scope}"`);
      const problem: Problem = {
        status: 403,
        code: "ERR_ADMIN_FORBIDDEN",
        title: "Forbidden",
        detail: `${caller.id} lacks the scope ${scope}`,
      };
      sendProblem(res, problem);
    };
  };

  return { authenticate, requireScope };
}

function compileJwt(jwt: AdminJwtOptions, options: AdminAuthOptions): CompiledJwt {
  if (jwt.issuer === "") throw new AdminAuthConfigError("jwt.issuer must not be empty");
  const audience = typeof jwt.audience === "string" ? [jwt.audience] : [...jwt.audience];
  if (audience.length === 0 || audience.includes("")) {
    throw new AdminAuthConfigError("jwt.audience must name at least one non-empty value");
  }
  const algorithms = [...(jwt.allowedAlgorithms ?? ADMIN_JWT_DEFAULT_ALGORITHMS)];
  if (algorithms.length === 0) throw new AdminAuthConfigError("jwt.allowedAlgorithms must not be empty");
  for (const alg of algorithms) {
    if (!(ADMIN_JWT_PERMITTED_ALGORITHMS as readonly string[]).includes(alg)) {
      throw new AdminAuthConfigError(
        `jwt.allowedAlgorithms: ${JSON.stringify(alg)} is not one of ${ADMIN_JWT_PERMITTED_ALGORITHMS.join(", ")}`,
      );
    }
  }
  const clockTolerance = jwt.clockToleranceSeconds ?? 0;
  if (!Number.isFinite(clockTolerance) || clockTolerance < 0 || clockTolerance > 300) {
    throw new AdminAuthConfigError("jwt.clockToleranceSeconds must be between 0 and 300");
  }
  const scopeClaim = jwt.scopeClaim ?? "scope";
  if (scopeClaim === "") throw new AdminAuthConfigError("jwt.scopeClaim must not be empty");
  const keys = createAdminJwks({
    ...(jwt.jwksFile === undefined ? {} : { jwksFile: jwt.jwksFile }),
    ...(jwt.jwksUrl === undefined ? {} : { jwksUrl: jwt.jwksUrl }),
    ...(jwt.jwksCa === undefined ? {} : { jwksCa: jwt.jwksCa }),
    ...(jwt.jwksMaxAgeSeconds === undefined ? {} : { maxAgeSeconds: jwt.jwksMaxAgeSeconds }),
    ...(jwt.jwksCooldownSeconds === undefined ? {} : { cooldownSeconds: jwt.jwksCooldownSeconds }),
    ...(jwt.jwksTimeoutMs === undefined ? {} : { timeoutMs: jwt.jwksTimeoutMs }),
    ...(options.fetchJwks === undefined ? {} : { fetchJwks: options.fetchJwks }),
    clock: options.clock,
    logger: options.logger,
  });
  return { keys, issuer: jwt.issuer, audience, algorithms, scopeClaim, clockTolerance };
}

async function verifyJwt(token: string, jwt: CompiledJwt, now: Date): Promise<AdminCaller> {
  let kid: string | undefined;
  try {
    const header = decodeProtectedHeader(token);
    kid = typeof header.kid === "string" ? header.kid : undefined;
    // Refused before any key lookup, so a disallowed alg never causes a JWKS fetch.
    if (typeof header.alg !== "string" || !jwt.algorithms.includes(header.alg)) {
      throw new Refusal("alg_not_allowed", kid === undefined ? {} : { kid });
    }
  } catch (error) {
    if (error instanceof Refusal) throw error;
    throw new Refusal("malformed_jwt");
  }
  let payload: JWTPayload;
  try {
    ({ payload } = await jwtVerify(token, jwt.keys, {
      algorithms: jwt.algorithms,
      issuer: jwt.issuer,
      audience: jwt.audience,
      currentDate: now,
      clockTolerance: jwt.clockTolerance,
      requiredClaims: ["exp", "sub"],
    }));
  } catch (error) {
    throw refusalOf(error, kid);
  }
  const { iss, sub } = payload;
  if (typeof sub !== "string" || sub === "") throw new Refusal("invalid_claim", { claim: "sub" });
  const id = `jwt:${iss}#${sub}`;
  const scopes = scopesOf(payload, jwt.scopeClaim);
  if (scopes === undefined) throw new Refusal("invalid_claim", { caller: id, claim: jwt.scopeClaim });
  return { id, kind: "jwt", scopes };
}

/** The admin scopes a JWT grants, or undefined when its scope claim is neither a string nor strings. */
function scopesOf(payload: JWTPayload, claim: string): Set<AdminScope> | undefined {
  const value = payload[claim] ?? payload.scp;
  const scopes = new Set<AdminScope>();
  if (value === undefined) return scopes;
  let names: unknown[];
  if (typeof value === "string") names = value.split(" ");
  else if (Array.isArray(value)) names = value;
  else return undefined;
  for (const name of names) {
    if (typeof name !== "string") return undefined;
    if (isAdminScope(name)) scopes.add(name);
  }
  return scopes;
}

function refusalOf(error: unknown, kid: string | undefined): Refusal {
  const withKid = kid === undefined ? {} : { kid };
  if (error instanceof AdminJwksUnavailableError) return new Refusal("jwks_unavailable", withKid);
  if (error instanceof joseErrors.JWTClaimValidationFailed || error instanceof joseErrors.JWTExpired) {
    // jose checks claims only after the signature verified, so iss and sub are the key holder's word.
    const { iss, sub } = error.payload;
    const facts = {
      ...withKid,
      ...(typeof iss === "string" && typeof sub === "string" ? { caller: `jwt:${iss}#${sub}` } : {}),
      claim: error.claim,
    };
    if (error.reason === "missing") return new Refusal("missing_claim", facts);
    if (error instanceof joseErrors.JWTExpired) return new Refusal("expired", facts);
    if (error.reason === "check_failed") {
      if (error.claim === "nbf") return new Refusal("not_yet_valid", facts);
      if (error.claim === "iss") return new Refusal("wrong_issuer", facts);
      if (error.claim === "aud") return new Refusal("wrong_audience", facts);
    }
    return new Refusal("invalid_claim", facts);
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed) return new Refusal("alg_not_allowed", withKid);
  if (error instanceof joseErrors.JWKSNoMatchingKey) return new Refusal("unknown_kid", withKid);
  if (error instanceof joseErrors.JWKSMultipleMatchingKeys) return new Refusal("ambiguous_kid", withKid);
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return new Refusal("bad_signature", withKid);
  if (error instanceof joseErrors.JWTInvalid || error instanceof joseErrors.JWSInvalid) {
    return new Refusal("malformed_jwt", withKid);
  }
  return new Refusal("unverifiable", withKid);
}
