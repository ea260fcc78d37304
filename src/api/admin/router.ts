/**
 * The admin API router, built from ADMIN_ROUTES: for every route, in this order, a per-address rate
 * limit, authentication with the route's scope, a per-caller rate limit, the JSON body (when the route
 * takes one), then the operation. Unknown routes under the admin paths fall through to express's 404.
 *
 * Bodies are read as text and checked by the strict JSON reader before JSON.parse, so a duplicate member
 * name (which JSON.parse would silently resolve) is refused, as everywhere else in bundlegate.
 */
import express, { type NextFunction, type Request, type RequestHandler, type Response, type Router } from "express";
import { isBundlegateError } from "../../errors.js";
import type { VerifiedInvitation } from "../../federation/invitation.js";
import type { Logger } from "../../logging.js";
import { serializeSpiffeBundle } from "../../spiffe/codec.js";
import { parseTrustDomain } from "../../spiffe/id.js";
import { type JsonNode, jsonText, parseStrictJson, readableJson } from "../../spiffe/json.js";
import { isAuditId } from "../../store/admin-records.js";
import type { AuditQuery } from "../../store/admin-state.js";
import { type AdminAuth, adminCallerOf } from "../auth/admin-auth.js";
import { ApiError, problemOf, sendProblem } from "../distribution/problem.js";
import { validationError } from "./errors.js";
import { buildOpenApiDocument } from "./openapi.js";
import { ADMIN_ROUTES, type AdminRoute } from "./routes.js";
import type { AdminService, Caller } from "./service.js";

export const MAX_ADMIN_BODY_BYTES = 256 * 1024;

export interface InvitationOperations {
  /** Signs an invitation to this trust domain; undefined ttl takes the configured one. */
  create(ttlSeconds: number | undefined): Promise<{ token: string; expiresAt: Date; payload: unknown }>;
  verify(token: string): Promise<VerifiedInvitation>;
}

export interface AdminRouterOptions {
  readonly service: AdminService;
  readonly auth: AdminAuth;
  /** Before authentication (per address) and after it (per caller). */
  readonly rateLimit: { readonly beforeAuth: RequestHandler; readonly afterAuth: RequestHandler };
  readonly invitations?: InvitationOperations;
  readonly logger: Logger;
}

type Handler = (req: Request, res: Response, caller: Caller, body: unknown) => Promise<void>;

export function createAdminRouter(options: AdminRouterOptions): Router {
  const { service } = options;
  const router = express.Router();
  const openApi = JSON.stringify(buildOpenApiDocument());

  const handlers: Record<string, Handler> = {
    getOpenApi: async (_req, res) => {
      res.type("application/json").send(openApi);
    },
    listRelationships: async (req, res) => {
      res.json({ relationships: await service.list(listFilter(req)) });
    },
    createRelationship: async (_req, res, caller, body) => {
      res.status(201).json({ relationship: await service.create(caller, body) });
    },
    getRelationship: async (req, res) => {
      res.json({ relationship: await service.view(param(req)) });
    },
    updateRelationship: async (req, res, caller, body) => {
      res.json({ relationship: await service.update(caller, param(req), body, ifMatch(req)) });
    },
    deleteRelationship: async (req, res, caller) => {
      await service.remove(caller, param(req));
      res.status(204).end();
    },
    approveRelationship: async (req, res, caller) => {
      res.json({ relationship: await service.approve(caller, param(req)) });
    },
    suspendRelationship: async (req, res, caller, body) => {
      const { reason } = fields(body, { reason: "string?" });
      res.json({ relationship: await service.suspend(caller, param(req), reason as string | undefined) });
    },
    resumeRelationship: async (req, res, caller) => {
      res.json({ relationship: await service.resume(caller, param(req)) });
    },
    refreshRelationship: async (req, res, caller) => {
      res.json(await service.refresh(caller, param(req)));
    },
    preflightRelationship: async (req, res, caller) => {
      res.json({ preflight: await service.preflight(caller, param(req)) });
    },
    acceptQuarantine: async (req, res, caller, body) => {
      const { digest } = fields(body, { digest: "digest" });
      res.json({ relationship: await service.acceptQuarantine(caller, param(req), digest as string) });
    },
    discardQuarantine: async (req, res, caller, body) => {
      const { digest } = fields(body, { digest: "digest" });
      res.json({ relationship: await service.discardQuarantine(caller, param(req), digest as string) });
    },
    resetSequence: async (req, res, caller) => {
      res.json({ relationship: await service.resetSequence(caller, param(req)) });
    },
    queryAudit: async (req, res) => {
      const query = auditQuery(req);
      const entries = await service.auditQuery(query);
      const last = entries.at(-1);
      res.json({
        entries: entries.map((entry) => ({
          id: entry.id,
          at: new Date(entry.at).toISOString(),
          actor: entry.actor,
          action: entry.action,
          ...(entry.trustDomain === undefined ? {} : { trust_domain: entry.trustDomain }),
          ...(entry.before === undefined ? {} : { before: entry.before }),
          ...(entry.after === undefined ? {} : { after: entry.after }),
          ...(entry.details === undefined ? {} : { details: entry.details }),
        })),
        ...(entries.length === query.limit && last ? { next: last.id } : {}),
      });
    },
    createInvitation: async (_req, res, caller, body) => {
      const invitations = requireInvitations(options.invitations);
      const { ttl_seconds: ttl } = fields(body, { ttl_seconds: "integer?" });
      const made = await invitations.create(ttl as number | undefined);
      await service.audit({
        actor: caller.id,
        action: "invitation.create",
        after: made.payload,
        details: { expires_at: made.expiresAt.toISOString() },
      });
      res.status(201).json({ token: made.token, expires_at: made.expiresAt.toISOString(), invitation: made.payload });
    },
    acceptInvitation: async (_req, res, caller, body) => {
      const invitations = requireInvitations(options.invitations);
      const { token, ...rest } = fields(body, {
        token: "string",
        owner: "string",
        contact: "string?",
        description: "string?",
        labels: "object?",
        review_by: "string?",
        expires_at: "string?",
        allowed_cidrs: "strings?",
      });
      let invitation: VerifiedInvitation;
      try {
        invitation = await invitations.verify(token as string);
      } catch (error) {
        if (!isBundlegateError(error)) throw error;
        throw validationError(
          [{ path: "token", message: `${error.code}: ${error.message}` }],
          "the invitation was refused",
        );
      }
      const spec: Record<string, unknown> = {
        trust_domain: invitation.trustDomain,
        endpoint_url: invitation.endpointUrl,
        profile: invitation.profile,
        ...(invitation.endpointSpiffeId === undefined ? {} : { endpoint_spiffe_id: invitation.endpointSpiffeId }),
        ...(invitation.profile === "https_spiffe"
          ? { bootstrap_bundle: serializeSpiffeBundle(invitation.bundle) }
          : {}),
        ...Object.fromEntries(Object.entries(rest).filter(([, value]) => value !== undefined)),
      };
      const relationship = await service.create(caller, spec, {
        source: "invitation",
        invitation_id: invitation.id,
        invited_by: invitation.issuer,
        invitation_bundle_digest: invitation.bundleDigest,
        invitation_signer_fingerprint: invitation.signerFingerprint,
      });
      res.status(201).json({ relationship });
    },
  };

  const readBody = express.text({ type: () => true, limit: MAX_ADMIN_BODY_BYTES });

  for (const route of ADMIN_ROUTES) {
    const handler = handlers[route.operationId];
    if (!handler) throw new Error(`no handler for admin route ${route.operationId}`);
    const method = route.method.toLowerCase() as "get" | "post" | "patch" | "delete";
    router[method](
      route.path,
      options.rateLimit.beforeAuth,
      options.auth.requireScope(route.scope),
      options.rateLimit.afterAuth,
      ...(route.method === "GET" ? [] : [readBody]),
      async (req: Request, res: Response, next: NextFunction) => {
        try {
          // requireScope only lets a request through once it has set the caller.
          const admin = adminCallerOf(res)!;
          const caller: Caller = { id: admin.id, canApprove: admin.scopes.has("relationships:approve") };
          if (!route.body && typeof req.body === "string" && req.body.trim() !== "") {
            // A field sent to a route that reads none would be silently ignored: say so instead.
            throw validationError([{ path: "", message: `${route.method} ${route.path} takes no body` }]);
          }
          if (route.query) refuseUnknownQuery(req, route.query);
          const body = route.body ? parseBody(req, route.body === "required") : undefined;
          await handler(req, res, caller, body);
        } catch (error) {
          next(error);
        }
      },
    );
  }

  // Only errors raised inside this router reach this handler (express skips routers when it carries an error).
  router.use((error: unknown, req: Request, res: Response, _next: NextFunction) => {
    const problem = bodyProblem(error) ?? requestProblem(error) ?? problemOf(error);
    if (problem.status >= 500)
      options.logger.error({ err: (error as Error)?.message, path: req.path }, "admin request failed");
    if (res.headersSent) {
      res.end();
      return;
    }
    sendProblem(res, problem);
  });
  return router;
}

function requireInvitations(invitations: InvitationOperations | undefined): InvitationOperations {
  if (!invitations) {
    throw new ApiError(
      409,
      "ERR_INVITATION_UNAVAILABLE",
      "Conflict",
      "invitations need the https_spiffe bundle endpoint: its X509-SVID signs them (configure endpoint.https_spiffe)",
    );
  }
  return invitations;
}

/** express.text's own refusals (too large, bad charset) as problems. */
function bodyProblem(error: unknown) {
  const type = (error as { type?: unknown } | null)?.type;
  if (type === "entity.too.large") {
    return problemOf(
      new ApiError(
        413,
        "ERR_API_BODY_TOO_LARGE",
        "Content Too Large",
        `bodies are limited to ${MAX_ADMIN_BODY_BYTES} bytes`,
      ),
    );
  }
  if ((typeof type === "string" && type.startsWith("encoding.")) || type === "charset.unsupported") {
    return problemOf(new ApiError(415, "ERR_API_UNSUPPORTED_MEDIA_TYPE", "Unsupported Media Type", "send UTF-8 JSON"));
  }
  return undefined;
}

/** Errors express raises for a request it cannot read (a path with bad percent-encoding) are the caller's. */
function requestProblem(error: unknown) {
  if (isBundlegateError(error)) return undefined;
  const status = (error as { status?: unknown; statusCode?: unknown } | null)?.status;
  if (status === 400 || error instanceof URIError) {
    return problemOf(
      new ApiError(400, "ERR_API_BAD_REQUEST", "Bad Request", "the request path or query cannot be read"),
    );
  }
  return undefined;
}

function parseBody(req: Request, required: boolean): unknown {
  const text = typeof req.body === "string" ? req.body : "";
  if (text.trim() === "") {
    if (!required) return {};
    throw validationError([{ path: "", message: "a JSON object body is required" }]);
  }
  const type = req.headers["content-type"] ?? "";
  if (!/^application\/(?:[\w.+-]+\+)?json\b/i.test(type)) {
    throw new ApiError(
      415,
      "ERR_API_UNSUPPORTED_MEDIA_TYPE",
      "Unsupported Media Type",
      "send Content-Type: application/json",
    );
  }
  let node: JsonNode;
  try {
    node = parseStrictJson(text);
  } catch (error) {
    const message = isBundlegateError(error) ? error.message : "not JSON";
    throw new ApiError(400, "ERR_API_BAD_JSON", "Bad Request", `the body is not acceptable JSON: ${message}`);
  }
  // Integers past 2^53 stay exact (as text), so no field silently takes a rounded number.
  const value = readableJson(node) as unknown;
  if (typeof value !== "object" || value === null || Array.isArray(value) || node.type !== "object") {
    throw validationError([{ path: "", message: "must be a JSON object" }]);
  }
  // JSON.parse rounds integers past 2^53; a bundle's spiffe_sequence runs to 2^64-1. The bundle goes on
  // as its exact text, which the strict bundle reader takes as well as an object.
  const bundle = node.members.get("bootstrap_bundle");
  if (bundle?.type === "object") (value as Record<string, unknown>).bootstrap_bundle = jsonText(bundle);
  return value;
}

type FieldKind = "string" | "string?" | "integer?" | "object?" | "strings?" | "digest";

/** A small body of known fields: unknown ones and wrong types are named. */
function fields(body: unknown, kinds: Record<string, FieldKind>): Record<string, unknown> {
  const value = (body ?? {}) as Record<string, unknown>;
  const issues: { path: string; message: string }[] = [];
  for (const key of Object.keys(value)) {
    if (!(key in kinds)) issues.push({ path: key, message: "unknown field" });
  }
  for (const [key, kind] of Object.entries(kinds)) {
    const field = value[key];
    const optional = kind.endsWith("?");
    if (field === undefined) {
      if (!optional) issues.push({ path: key, message: "required" });
      continue;
    }
    const base = kind.replace("?", "");
    const ok =
      base === "string"
        ? typeof field === "string" && field.trim() !== ""
        : base === "integer"
          ? Number.isInteger(field)
          : base === "object"
            ? typeof field === "object" && field !== null && !Array.isArray(field)
            : base === "strings"
              ? Array.isArray(field) && field.every((item) => typeof item === "string")
              : typeof field === "string" && /^[0-9a-f]{64}$/.test(field);
    if (!ok) {
      issues.push({
        path: key,
        message:
          base === "digest"
            ? "must be a SHA-256 digest, 64 lowercase hex digits"
            : `must be ${base === "integer" ? "an integer" : base === "strings" ? "a list of strings" : `a non-empty ${base}`}`,
      });
    }
  }
  if (issues.length > 0) throw validationError(issues);
  return value;
}

function param(req: Request): string {
  return String(req.params.trustDomain ?? "");
}

function ifMatch(req: Request): number | undefined {
  const header = req.headers["if-match"];
  if (header === undefined) return undefined;
  const match = /^"?(\d+)"?$/.exec(header.trim());
  if (!match) throw validationError([{ path: "If-Match", message: 'must be the revision read, as "<n>"' }]);
  return Number(match[1]);
}

const STATES = new Set(["pending", "active", "suspended"]);
const STALENESS = new Set(["fresh", "stale", "critical", "never_synced"]);

function queryValues(req: Request, name: string): string[] {
  const raw = req.query[name];
  if (raw === undefined) return [];
  return (Array.isArray(raw) ? raw : [raw]).map(String);
}

function listFilter(req: Request) {
  const issues: { path: string; message: string }[] = [];
  const state = queryValues(req, "state")[0];
  if (state !== undefined && !STATES.has(state))
    issues.push({ path: "state", message: "must be pending, active or suspended" });
  const staleness = queryValues(req, "staleness")[0];
  if (staleness !== undefined && !STALENESS.has(staleness)) {
    issues.push({ path: "staleness", message: "must be fresh, stale, critical or never_synced" });
  }
  const labels: Record<string, string> = {};
  for (const label of queryValues(req, "label")) {
    const at = label.indexOf("=");
    if (at <= 0) issues.push({ path: "label", message: "must be key=value" });
    else labels[label.slice(0, at)] = label.slice(at + 1);
  }
  if (issues.length > 0) throw validationError(issues);
  const owner = queryValues(req, "owner")[0];
  return {
    ...(state === undefined ? {} : { state }),
    ...(owner === undefined ? {} : { owner }),
    ...(Object.keys(labels).length === 0 ? {} : { labels }),
    ...(staleness === undefined ? {} : { staleness }),
  };
}

function refuseUnknownQuery(req: Request, known: NonNullable<AdminRoute["query"]>): void {
  const names = new Set(known.map(([name]) => name));
  const unknown = Object.keys(req.query).filter((key) => !names.has(key));
  if (unknown.length > 0)
    throw validationError(unknown.map((key) => ({ path: key, message: "unknown query parameter" })));
}

function sameCalendarDate(value: string, ms: number): boolean {
  // Only the plain date and UTC forms can be compared directly; an offset may move the day.
  if (!/^\d{4}-\d{2}-\d{2}(?:$|T[^+-]*Z$)/.test(value)) return true;
  return new Date(ms).toISOString().slice(0, 10) === value.slice(0, 10);
}

function auditQuery(req: Request): AuditQuery {
  const issues: { path: string; message: string }[] = [];
  const one = (name: string) => queryValues(req, name)[0];
  const time = (name: string): number | undefined => {
    const value = one(name);
    if (value === undefined) return undefined;
    const ms = Date.parse(value);
    // Date.parse rolls 2024-02-30 over to March: the date part must survive the round trip.
    const valid = /^\d{4}-\d{2}-\d{2}/.test(value) && !Number.isNaN(ms) && sameCalendarDate(value, ms);
    if (!valid) {
      issues.push({ path: name, message: "must be an RFC 3339 time or a date" });
      return undefined;
    }
    return ms;
  };
  const since = time("since");
  const until = time("until");
  const auditTd = one("trust_domain");
  if (auditTd !== undefined) {
    try {
      parseTrustDomain(auditTd);
    } catch (error) {
      issues.push({ path: "trust_domain", message: (error as Error).message });
    }
  }
  const before = one("before");
  if (before !== undefined && !isAuditId(before))
    issues.push({ path: "before", message: "must be the `next` of a previous page" });
  const limitText = one("limit");
  const limit = limitText === undefined ? 100 : Number(limitText);
  if (!Number.isInteger(limit) || limit < 1 || limit > 1000)
    issues.push({ path: "limit", message: "must be an integer in 1..1000" });
  if (issues.length > 0) throw validationError(issues);
  const text = (name: string) => one(name);
  return {
    limit,
    ...(text("trust_domain") === undefined ? {} : { trustDomain: text("trust_domain") as string }),
    ...(text("actor") === undefined ? {} : { actor: text("actor") as string }),
    ...(text("action") === undefined ? {} : { action: text("action") as string }),
    ...(since === undefined ? {} : { since }),
    ...(until === undefined ? {} : { until }),
    ...(text("before") === undefined ? {} : { before: text("before") as string }),
  };
}
