/**
 * Consumer authentication of the distribution API (`/v1/bundles*`): who is calling, and may it read the
 * trust domain it asks for. An express middleware factory; the router runs it first on every route.
 *
 * The caller is identified by the first credential it presents, in this order, and an invalid credential
 * is refused, never skipped over in favour of the next kind:
 *   1. a TLS client certificate: an X509-SVID of this trust domain (exactly one URI SAN, a SPIFFE ID with a
 *      path in `trustDomain`, a leaf, valid now, chained to the local bundle's X.509 authorities). The check
 *      is `checkSvidCredentials`, the one the bundle endpoint and the https_spiffe fetcher use, with the SVID's
 *      own ID as the expected one. The listener must request a certificate (`requestCert: true`) and leave
 *      the verdict to this middleware (`rejectUnauthorized: false`): Node's verification knows nothing of
 *      SPIFFE IDs, and the local bundle changes while the listener runs.
 *   2. `Authorization: Bearer <token>`:
 *      - a configured static token: its SHA-256 is compared with every `tokens[].sha256` in constant time,
 *        all entries every time. The caller is the token's `spiffeId`, or `token:<name>`. Checked first, so a
 *        static token that happens to look like a JWT still works.
 *      - otherwise a JWT (three base64url parts) is a JWT-SVID (JWT-SVID.md): verified with jose against the
 *        local bundle's `jwt-svid` authorities; `kid` is required (as go-spiffe does) and `typ`, when present,
 *        is JWT or JOSE; `alg` is one of JWT-SVID.md section 3's RS/ES/PS algorithms (never `none`, never
 *        HMAC: no secret key can be confused with a bundle's public key); `exp`, `aud` and `sub` are required,
 *        `aud` must name one of `audience`, `sub` must be a SPIFFE ID with a path in `trustDomain`. Time is
 *        the injected clock's, with no leeway.
 *      - anything else is an invalid credential.
 *
 * Answers (problem+json through the router's error handler, via `next(ApiError)`):
 * - 401 ERR_AUTH_REQUIRED   no credential (an Authorization scheme other than Bearer counts as none);
 *                           `WWW-Authenticate: Bearer`
 * - 401 ERR_AUTH_INVALID    a credential that does not authenticate; the detail says why and never echoes
 *                           the token; `WWW-Authenticate: Bearer error="invalid_token"`
 * - 403 ERR_AUTH_FORBIDDEN  authenticated, but not allowed to read the requested trust domain
 *
 * Authorization (`allow`): keys are partner trust domains or "*" (every trust domain); values list the
 * caller IDs allowed (SPIFFE IDs, `token:<name>`, or "*" for every authenticated caller). A caller may read
 * trust domain T when `allow[T]` or `allow["*"]` names it.
 * - A route with `:trustDomain` is decided here: allowed, or 403. Nothing else of the request is read
 *   first, so a caller that is not allowed learns nothing about the name it asked for.
 * - The all-bundles routes (`/v1/bundles`, `/v1/bundles/watch`) let through any caller allowed on at least
 *   one trust domain (403 otherwise); the router must show it only what `allowedTrustDomainsOf(res)` accepts.
 *
 * On success `res.locals.caller` is `{ kind: "x509" | "jwt" | "token", id }` (for logs) and
 * `res.locals.allowedTrustDomains` the predicate; read them with `callerOf` / `allowedTrustDomainsOf`.
 */
import { X509Certificate } from "node:crypto";
import { TLSSocket } from "node:tls";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { createLocalJWKSet, decodeProtectedHeader, type JWK, errors as joseErrors, jwtVerify } from "jose";
import type { Clock } from "../../clock.js";
import { BundlegateError, isBundlegateError } from "../../errors.js";
import { parseSubjectAltName, readPeerChain } from "../../federation/fetcher/peer.js";
import type { Logger } from "../../logging.js";
import { checkSvidChain } from "../../sources/tls-credentials.js";
import type { TrustBundle } from "../../spiffe/bundle.js";
import { parseSpiffeId, parseTrustDomain } from "../../spiffe/id.js";
import { ApiError } from "../distribution/problem.js";
import { looksLikeJwt, readBearer } from "./bearer.js";
import { type CompiledStaticToken, compileStaticTokens, matchStaticToken } from "./static-tokens.js";

export type ConsumerAuthErrorCode = "ERR_AUTH_REQUIRED" | "ERR_AUTH_INVALID" | "ERR_AUTH_FORBIDDEN";

/** JWT-SVID.md section 3: RFC 7518 sections 3.3 (RS), 3.4 (ES) and 3.5 (PS). */
export const JWT_SVID_ALGORITHMS = [
  "RS256",
  "RS384",
  "RS512",
  "ES256",
  "ES384",
  "ES512",
  "PS256",
  "PS384",
  "PS512",
] as const;

export interface StaticToken {
  /** Names the token in logs and, without `spiffeId`, as the caller `token:<name>`. */
  readonly name: string;
  /** Lowercase hex SHA-256 of the token's UTF-8 bytes; the token itself is never configured. */
  readonly sha256: string;
  /** The caller this token stands for. */
  readonly spiffeId?: string;
}

export interface ConsumerAuthOptions {
  /** This trust domain: X509-SVIDs and JWT-SVIDs of callers must belong to it. */
  readonly trustDomain: string;
  /** This trust domain's bundle now; read on every request, so rotations apply at once. */
  readonly localBundle: () => TrustBundle;
  /** A JWT-SVID's `aud` must name at least one of these. */
  readonly audience: readonly string[];
  readonly tokens: readonly StaticToken[];
  /** Partner trust domain (or "*") → caller IDs allowed to read it (SPIFFE IDs, `token:<name>`, or "*"). */
  readonly allow: Readonly<Record<string, readonly string[]>>;
  /** A `Clock` or a plain function returning now. */
  readonly clock: Clock | (() => Date);
  /** Refusals are logged at debug level with their code and reason, never with a credential. */
  readonly logger?: Logger;
}

export type CallerKind = "x509" | "jwt" | "token";

export interface Caller {
  readonly kind: CallerKind;
  /** A SPIFFE ID, or `token:<name>` for a static token without one. */
  readonly id: string;
}

export type TrustDomainPredicate = (trustDomain: string) => boolean;

/** The caller a request was authenticated as, once the middleware has let it through. */
export function callerOf(res: Response): Caller | undefined {
  return res.locals.caller as Caller | undefined;
}

/** Which trust domains the authenticated caller may read; `() => false` before authentication. */
export function allowedTrustDomainsOf(res: Response): TrustDomainPredicate {
  const predicate = res.locals.allowedTrustDomains as TrustDomainPredicate | undefined;
  return predicate ?? (() => false);
}

/** A configuration that cannot work (status 500: a bug or a config the loader should have refused). */
export class ConsumerAuthConfigError extends BundlegateError<"ERR_AUTH_CONFIG_INVALID"> {
  constructor(message: string) {
    super("ERR_AUTH_CONFIG_INVALID", message, { status: 500, expose: false });
  }
}

const WILDCARD = "*";

type Verifier = ReturnType<typeof createLocalJWKSet>;

interface Allowed {
  readonly all: boolean;
  readonly ids: ReadonlySet<string>;
}

export function createConsumerAuth(options: ConsumerAuthOptions): RequestHandler {
  const trustDomain = parseConfigTrustDomain(options.trustDomain);
  const now = typeof options.clock === "function" ? options.clock : () => (options.clock as Clock).now();
  const { localBundle, logger } = options;
  if (options.audience.length === 0) throw new ConsumerAuthConfigError("audience must name at least one value");
  const audience = [...options.audience];
  const tokens = compileTokens(options.tokens);
  const allow = compileAllow(options.allow, new Set(options.tokens.map((token) => `token:${token.name}`)));
  const wildcard = allow.get(WILDCARD);

  // Bundles are immutable values: one key set per bundle, rebuilt only when the bundle changes.
  const verifiers = new WeakMap<TrustBundle, Verifier>();
  const verifierFor = (bundle: TrustBundle): Verifier => {
    let verifier = verifiers.get(bundle);
    if (verifier === undefined) {
      const keys: JWK[] = [];
      for (const authority of bundle.jwtAuthorities.values()) {
        if (authority.use === "jwt-svid") keys.push({ ...authority.publicKey, kid: authority.keyId });
      }
      verifier = createLocalJWKSet({ keys });
      verifiers.set(bundle, verifier);
    }
    return verifier;
  };

  const permits = (entry: Allowed | undefined, id: string) => entry !== undefined && (entry.all || entry.ids.has(id));
  const allowedFor =
    (id: string): TrustDomainPredicate =>
    (td) =>
      permits(wildcard, id) || (td !== WILDCARD && permits(allow.get(td), id));
  const allowedAnywhere = (id: string) => [...allow.values()].some((entry) => permits(entry, id));

  const authenticate = async (req: Request): Promise<Caller> => {
    const socket = req.socket;
    if (socket instanceof TLSSocket) {
      const chain = peerChainOf(socket);
      if (chain.length > 0) return { kind: "x509", id: verifyX509Svid(chain, trustDomain, localBundle(), now()) };
    }
    const bearer = readBearer(req.headers.authorization);
    if (bearer.kind === "none") throw required("no client certificate or bearer token was presented");
    if (bearer.kind === "other-scheme") throw required("only the Bearer authorization scheme is accepted");
    if (bearer.kind === "malformed") throw invalid("the bearer token is empty or malformed");
    const token = bearer.token;

    const match = matchStaticToken(tokens, token);
    if (match !== undefined) return { kind: "token", id: match.spiffeId ?? `token:${match.name}` };
    if (!looksLikeJwt(token)) throw invalid("the bearer token is not a configured token");
    return { kind: "jwt", id: await verifyJwtSvid(token, verifierFor(localBundle()), trustDomain, audience, now()) };
  };

  return async (req: Request, res: Response, next: NextFunction) => {
    let caller: Caller;
    try {
      caller = await authenticate(req);
    } catch (error) {
      if (error instanceof ApiError) {
        res.setHeader(
          "WWW-Authenticate",
          error.code === "ERR_AUTH_REQUIRED" ? "Bearer" : 'Bearer error="invalid_token"',
        );
        logger?.debug({ code: error.code, reason: error.message, path: req.path }, "consumer authentication refused");
      }
      next(error);
      return;
    }
    const allowed = allowedFor(caller.id);
    const requested = req.params.trustDomain;
    const ok = typeof requested === "string" ? allowed(requested) : allowedAnywhere(caller.id);
    if (!ok) {
      logger?.debug({ code: "ERR_AUTH_FORBIDDEN", caller, path: req.path }, "consumer not allowed");
      next(
        new ApiError(
          403,
          "ERR_AUTH_FORBIDDEN",
          "Forbidden",
          typeof requested === "string"
            ? `${caller.id} is not allowed to read this trust domain's bundle`
            : `${caller.id} is not allowed to read any trust domain's bundle`,
        ),
      );
      return;
    }
    res.locals.caller = caller;
    res.locals.allowedTrustDomains = allowed;
    next();
  };
}

const peerChains = new WeakMap<TLSSocket, readonly Buffer[]>();

/**
 * The client's certificate chain (leaf first, DER), read once per connection and remembered: on Node 20.20
 * reading the peer certificate a second time returns nothing. Empty when the client sent no certificate.
 */
export function peerChainOf(socket: TLSSocket): readonly Buffer[] {
  let chain = peerChains.get(socket);
  if (chain === undefined) {
    chain = Object.freeze(readPeerChain(socket));
    peerChains.set(socket, chain);
  }
  return chain;
}

/** The SPIFFE ID of a client X509-SVID of `trustDomain` that chains to `bundle`, or ERR_AUTH_INVALID. */
function verifyX509Svid(chain: readonly Buffer[], trustDomain: string, bundle: TrustBundle, now: Date): string {
  const leafDer = chain[0]!;
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(leafDer);
  } catch (error) {
    throw invalid("the client certificate is not readable", error);
  }
  // Node's SAN text only picks the ID to expect; the checker re-reads the URI SANs from the DER.
  const uris = parseSubjectAltName(leaf.subjectAltName).filter((name) => name.type === "URI");
  if (uris.length !== 1) {
    throw invalid(`the client certificate has ${uris.length} URI SANs; an X509-SVID has exactly one`);
  }
  const uri = uris[0]!.value;
  let memberOfThisDomain = false;
  try {
    const id = parseSpiffeId(uri);
    memberOfThisDomain = id.trustDomain === trustDomain && id.path !== "";
  } catch {
    memberOfThisDomain = false;
  }
  if (!memberOfThisDomain) {
    throw invalid(`the client certificate is not an X509-SVID of trust domain ${trustDomain}`);
  }
  try {
    checkSvidChain(chain, { now, endpointSpiffeId: uri, bundle });
  } catch (error) {
    const reason = isBundlegateError(error) ? error.message : "the certificate could not be checked";
    throw invalid(`client X509-SVID refused: ${reason}`, error);
  }
  return uri;
}

/** The `sub` of a JWT-SVID that verifies, or ERR_AUTH_INVALID saying why not. */
async function verifyJwtSvid(
  token: string,
  keys: Verifier,
  trustDomain: string,
  audience: string[],
  now: Date,
): Promise<string> {
  let header: ReturnType<typeof decodeProtectedHeader>;
  try {
    header = decodeProtectedHeader(token);
  } catch (error) {
    throw invalid("the bearer token is not a readable JWT", error);
  }
  if (typeof header.kid !== "string" || header.kid === "") throw invalid("the JWT-SVID header has no kid");
  if (header.typ !== undefined && header.typ !== "JWT" && header.typ !== "JOSE") {
    throw invalid('the JWT-SVID header typ must be "JWT" or "JOSE" when present');
  }
  let sub: unknown;
  try {
    const { payload } = await jwtVerify(token, keys, {
      algorithms: [...JWT_SVID_ALGORITHMS],
      audience,
      currentDate: now,
      clockTolerance: 0,
      requiredClaims: ["exp", "sub", "aud"],
    });
    sub = payload.sub;
  } catch (error) {
    throw invalid(`JWT-SVID refused: ${describeJoseError(error)}`, error);
  }
  let ok = false;
  if (typeof sub === "string") {
    try {
      const id = parseSpiffeId(sub);
      ok = id.trustDomain === trustDomain && id.path !== "";
    } catch {
      ok = false;
    }
  }
  if (!ok) throw invalid(`the JWT-SVID subject is not a SPIFFE ID of trust domain ${trustDomain}`);
  return sub as string;
}

function describeJoseError(error: unknown): string {
  if (error instanceof joseErrors.JWTExpired) return "it has expired";
  if (error instanceof joseErrors.JWTClaimValidationFailed) {
    if (error.claim === "aud") return "its audience names none of this gateway's audiences";
    return `claim "${error.claim}" ${error.reason === "missing" ? "is missing" : "is not valid now"}`;
  }
  if (error instanceof joseErrors.JOSEAlgNotAllowed || error instanceof joseErrors.JOSENotSupported) {
    return "its alg is not an asymmetric algorithm JWT-SVID allows";
  }
  if (error instanceof joseErrors.JWKSNoMatchingKey) {
    return "no JWT authority of the local bundle has its kid (and a key type matching its alg)";
  }
  if (error instanceof joseErrors.JWSSignatureVerificationFailed) return "its signature does not verify";
  if (error instanceof joseErrors.JWTInvalid || error instanceof joseErrors.JWSInvalid) return "it is malformed";
  return "it could not be verified";
}

type CompiledToken = CompiledStaticToken<StaticToken>;

function compileTokens(tokens: readonly StaticToken[]): CompiledToken[] {
  const compiled = compileStaticTokens(tokens, (message) => new ConsumerAuthConfigError(message));
  tokens.forEach((token, index) => {
    if (token.spiffeId !== undefined) checkConfigSpiffeId(token.spiffeId, `tokens[${index}].spiffeId`);
  });
  return compiled;
}

function compileAllow(
  allow: Readonly<Record<string, readonly string[]>>,
  tokenCallers: ReadonlySet<string>,
): Map<string, Allowed> {
  const compiled = new Map<string, Allowed>();
  for (const [td, ids] of Object.entries(allow)) {
    if (td !== WILDCARD) parseConfigTrustDomain(td);
    for (const id of ids) {
      if (id === WILDCARD || tokenCallers.has(id)) continue;
      checkConfigSpiffeId(id, `allow[${JSON.stringify(td)}]`);
    }
    compiled.set(td, { all: ids.includes(WILDCARD), ids: new Set(ids) });
  }
  return compiled;
}

function parseConfigTrustDomain(name: string): string {
  try {
    return parseTrustDomain(name);
  } catch (error) {
    throw new ConsumerAuthConfigError(
      `${JSON.stringify(name)} is not a trust domain name: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

function checkConfigSpiffeId(id: string, where: string): void {
  try {
    parseSpiffeId(id);
  } catch (error) {
    throw new ConsumerAuthConfigError(
      `${where}: ${JSON.stringify(id)} is neither a SPIFFE ID, "*" nor token:<name> of a configured token: ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
  }
}

function required(detail: string): ApiError {
  return new ApiError(401, "ERR_AUTH_REQUIRED", "Authentication required", detail);
}

function invalid(detail: string, cause?: unknown): ApiError {
  return new ApiError(401, "ERR_AUTH_INVALID", "Invalid credentials", detail, cause === undefined ? {} : { cause });
}
