/**
 * A small in-memory stand-in for the admin API, enough of the contract for the CLI tests: it records every
 * request (method, path, query, headers, body) and answers like the API does, with problem+json errors and
 * the API's own codes (src/api/admin/errors.ts, service.ts).
 *
 * The server and the handler are separate: `serveAdminApi` takes any node request listener (an express app
 * is one), so an end-to-end test can serve the real admin router the same way and keep the CLI assertions.
 */
import {
  createServer as createHttpServer,
  type IncomingMessage,
  type RequestListener,
  type ServerResponse,
} from "node:http";
import { createServer as createHttpsServer } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { parseJsonExact, writeJsonExact } from "../../../src/cli/json-text.js";

export interface RecordedRequest {
  readonly method: string;
  readonly path: string;
  readonly query: readonly (readonly [string, string])[];
  readonly authorization?: string;
  readonly ifMatch?: string;
  readonly contentType?: string;
  /** The JSON body read exactly; undefined when there was none. */
  readonly body: unknown;
}

export type View = Record<string, unknown>;

export interface FakeAdminApi {
  readonly handler: RequestListener;
  readonly requests: RecordedRequest[];
  /** Relationship views by trust domain; the list answers with their summary fields. */
  readonly relationships: Map<string, View>;
  readonly audit: Record<string, unknown>[];
  /** The next request gets this answer instead of the API's (it is still recorded). */
  respondOnce(status: number, body: string, contentType?: string): void;
  /** The next request gets no answer at all. */
  hangOnce(): void;
}

export interface FakeAdminApiOptions {
  readonly token: string;
  readonly now: Date;
  /** What POST /v1/invitations answers with. */
  readonly invitation?: { readonly token: string; readonly expiresAt: string; readonly payload: unknown };
}

/** Fields of a view that the list's summaries also carry. */
const SUMMARY_FIELDS = [
  "trust_domain",
  "state",
  "origin",
  "read_only",
  "owner",
  "profile",
  "endpoint_url",
  "labels",
  "staleness",
  "sequence",
  "last_success_at",
  "last_error_code",
  "quarantined",
  "review_by",
  "expires_at",
  "review_due",
  "expiring",
];

export function sampleView(trustDomain: string, overrides: View = {}): View {
  return {
    trust_domain: trustDomain,
    state: "active",
    origin: "api",
    read_only: false,
    owner: "team-a",
    profile: "https_spiffe",
    endpoint_url: `https://${trustDomain}/bundle`,
    labels: {},
    staleness: { state: "fresh", age_seconds: 125, stale_after_seconds: 900, critical_after_seconds: 1500 },
    sequence: "12",
    last_success_at: "2025-05-31T23:57:55.000Z",
    quarantined: false,
    review_due: false,
    expiring: false,
    revision: 1,
    created_at: "2025-05-01T00:00:00.000Z",
    updated_at: "2025-05-01T00:00:00.000Z",
    endpoint_spiffe_id: `spiffe://${trustDomain}/bundle-server`,
    allowed_cidrs: [],
    status: { last_result: "unchanged", consecutive_failures: 0 },
    bundle: {
      digest: "a".repeat(64),
      sequence: "12",
      refresh_hint_seconds: 300,
      accepted_at: "2025-05-30T00:00:00.000Z",
      usable: true,
      authorities: [
        { use: "x509-svid", id: "b".repeat(64), not_after: "2026-06-01T00:00:00.000Z", status: "valid" },
        { use: "jwt-svid", id: "kid-1", status: "valid" },
      ],
    },
    warnings: [],
    ...overrides,
  };
}

export function createFakeAdminApi(options: FakeAdminApiOptions): FakeAdminApi {
  const requests: RecordedRequest[] = [];
  const relationships = new Map<string, View>();
  const audit: Record<string, unknown>[] = [];
  const overrides: ({ kind: "respond"; status: number; body: string; contentType: string } | { kind: "hang" })[] = [];

  const handler: RequestListener = (req, res) => {
    void readBody(req).then((text) => {
      const url = new URL(req.url ?? "/", "http://fake");
      const body = text === "" ? undefined : parseJsonExact(text);
      requests.push({
        method: req.method ?? "",
        path: url.pathname,
        query: [...url.searchParams.entries()],
        ...(req.headers.authorization === undefined ? {} : { authorization: req.headers.authorization }),
        ...(req.headers["if-match"] === undefined ? {} : { ifMatch: req.headers["if-match"] }),
        ...(req.headers["content-type"] === undefined ? {} : { contentType: req.headers["content-type"] }),
        body,
      });
      const override = overrides.shift();
      if (override?.kind === "hang") return;
      if (override?.kind === "respond") {
        res.writeHead(override.status, { "content-type": override.contentType });
        res.end(override.body);
        return;
      }
      if (req.headers.authorization !== `Bearer ${options.token}`) {
        problem(res, 401, "ERR_ADMIN_UNAUTHENTICATED", "a valid bearer token is required");
        return;
      }
      route(req.method ?? "", url, body as Record<string, unknown> | undefined, req, res);
    });
  };

  function route(
    method: string,
    url: URL,
    body: Record<string, unknown> | undefined,
    req: IncomingMessage,
    res: ServerResponse,
  ) {
    const path = url.pathname;
    if (method === "GET" && path === "/v1/relationships") {
      const state = url.searchParams.get("state");
      const list = [...relationships.values()]
        .filter((view) => state === null || view.state === state)
        .map((view) => Object.fromEntries(SUMMARY_FIELDS.filter((f) => f in view).map((f) => [f, view[f]])));
      return json(res, 200, { relationships: list });
    }
    if (method === "POST" && path === "/v1/relationships") {
      const td = body?.trust_domain;
      if (
        typeof td !== "string" ||
        typeof body?.endpoint_url !== "string" ||
        !body.endpoint_url.startsWith("https://")
      ) {
        return problem(res, 400, "ERR_API_VALIDATION", "the request has invalid fields", [
          { path: "endpoint_url", message: "must be an https URL" },
        ]);
      }
      if (relationships.has(td)) {
        const duplicate = `duplicate: a relationship for ${td} already exists (made through the API)`;
        return problem(res, 400, "ERR_API_VALIDATION", `the request has invalid fields: trust_domain: ${duplicate}`, [
          { path: "trust_domain", message: duplicate },
        ]);
      }
      const view = sampleView(td, {
        state: "pending",
        owner: body.owner,
        profile: body.profile,
        endpoint_url: body.endpoint_url,
        labels: body.labels ?? {},
        staleness: { state: "never_synced" },
        sequence: undefined,
        last_success_at: undefined,
        bundle: undefined,
        preflight: { verdict: "ok", checked_at: options.now.toISOString() },
      });
      relationships.set(td, view);
      return json(res, 201, { relationship: view });
    }
    if (method === "GET" && path === "/v1/audit") {
      return json(res, 200, { entries: audit, ...(audit.length > 0 ? { next: "older-than-this" } : {}) });
    }
    if (method === "POST" && path === "/v1/invitations") {
      const made = options.invitation;
      if (made === undefined) return problem(res, 409, "ERR_INVITATION_UNAVAILABLE", "no https_spiffe endpoint");
      return json(res, 201, { token: made.token, expires_at: made.expiresAt, invitation: made.payload });
    }
    if (method === "POST" && path === "/v1/invitations/accept") {
      const view = sampleView("inviter.test", { state: "pending", owner: body?.owner, bundle: undefined });
      relationships.set("inviter.test", view);
      return json(res, 201, { relationship: view });
    }

    const match = /^\/v1\/relationships\/([^/]+)(\/.*)?$/.exec(path);
    if (!match) return notRouted(res, method, path);
    const td = decodeURIComponent(match[1]!);
    const action = match[2] ?? "";
    const view = relationships.get(td);
    if (view === undefined)
      return problem(res, 404, "ERR_RELATIONSHIP_NOT_FOUND", `no relationship for trust domain ${td}`);
    const save = (changes: View) => {
      const next = { ...view, ...changes, revision: Number(view.revision) + 1 };
      relationships.set(td, next);
      return next;
    };

    if (method === "GET" && action === "") return json(res, 200, { relationship: view });
    if (method === "DELETE" && action === "") {
      relationships.delete(td);
      res.writeHead(204).end();
      return;
    }
    if (method === "PATCH" && action === "") {
      const expected = req.headers["if-match"];
      if (expected !== undefined && expected !== `"${view.revision}"`) {
        return problem(res, 409, "ERR_RELATIONSHIP_CONFLICT", `the relationship for ${td} changed meanwhile`);
      }
      const changes = Object.fromEntries(Object.entries(body ?? {}).map(([k, v]) => [k, v === null ? undefined : v]));
      return json(res, 200, { relationship: save(changes) });
    }
    if (method !== "POST") return notRouted(res, method, path);
    switch (action) {
      case "/approve":
        if (view.state !== "pending") {
          return problem(res, 409, "ERR_RELATIONSHIP_STATE", `cannot approve ${td}: it is ${String(view.state)}`);
        }
        return json(res, 200, { relationship: save({ state: "active" }) });
      case "/suspend":
        return json(res, 200, { relationship: save({ state: "suspended" }) });
      case "/resume":
        return json(res, 200, { relationship: save({ state: "active" }) });
      case "/sequence/reset":
        return json(res, 200, { relationship: save({}) });
      case "/refresh":
        return json(res, 200, {
          outcome: { result: "accepted", sequence: "13", digest: "c".repeat(64) },
          relationship: save({ sequence: "13" }),
        });
      case "/preflight":
        return json(res, 200, {
          preflight: { verdict: "warning", checked_at: options.now.toISOString(), code: "WARN_X", hint: "look here" },
        });
      case "/quarantine/accept":
      case "/quarantine/discard": {
        const held = view.quarantine as { digest?: string; sequence?: string } | undefined;
        if (held === undefined) {
          return problem(res, 409, "ERR_QUARANTINE_MISMATCH", `no bundle of ${td} is quarantined`);
        }
        if (body?.digest !== held.digest) {
          return problem(
            res,
            409,
            "ERR_QUARANTINE_MISMATCH",
            `the quarantined bundle of ${td} is ${held.digest}, not ${String(body?.digest)}; look at it again before deciding`,
          );
        }
        const accepted =
          action === "/quarantine/accept"
            ? { bundle: { ...(view.bundle as View), digest: held.digest, sequence: held.sequence } }
            : {};
        return json(res, 200, {
          relationship: save({ ...accepted, quarantine: undefined, quarantined: false }),
        });
      }
      default:
        return notRouted(res, method, path);
    }
  }

  return {
    handler,
    requests,
    relationships,
    audit,
    respondOnce: (status, body, contentType = "application/json") =>
      overrides.push({ kind: "respond", status, body, contentType }),
    hangOnce: () => overrides.push({ kind: "hang" }),
  };
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => resolve(Buffer.concat(chunks).toString("utf8")));
  });
}

function json(res: ServerResponse, status: number, value: unknown): void {
  res.writeHead(status, { "content-type": "application/json" });
  res.end(writeJsonExact(value));
}

/** What express answers for a route nobody mounted: its own 404 page, not a problem document. */
function notRouted(res: ServerResponse, method: string, path: string): void {
  res.writeHead(404, { "content-type": "text/html; charset=utf-8" });
  res.end(
    `<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n<title>Error</title>\n</head>\n<body>\n<pre>Cannot ${method} ${path}</pre>\n</body>\n</html>\n`,
  );
}

function problem(
  res: ServerResponse,
  status: number,
  code: string,
  detail: string,
  errors?: readonly { path: string; message: string }[],
): void {
  res.writeHead(status, { "content-type": "application/problem+json" });
  res.end(
    JSON.stringify({
      type: `urn:bundlegate:problem:${code}`,
      title: "Error",
      status,
      detail,
      code,
      ...(errors === undefined ? {} : { errors }),
    }),
  );
}

export interface ServedApi {
  readonly url: string;
  close(): Promise<void>;
}

/** Serves any request listener on a free loopback port, over https when given a certificate. */
export async function serveAdminApi(
  handler: RequestListener,
  tls?: { readonly cert: string; readonly key: string },
): Promise<ServedApi> {
  const server = tls === undefined ? createHttpServer(handler) : createHttpsServer(tls, handler);
  if (tls !== undefined) server.on("tlsClientError", () => undefined);
  const sockets = new Set<Socket>();
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const { port } = server.address() as AddressInfo;
  return {
    url: `${tls === undefined ? "http" : "https"}://127.0.0.1:${port}`,
    close: async () => {
      // A hanging request keeps its socket open; close it so the server can stop.
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** An unsigned compact JWS shaped like an invitation, for `invite show` (which never verifies). */
export function invitationToken(
  payload: unknown,
  header: unknown = { alg: "ES256", typ: "bundlegate-invitation+jwt", x5c: ["MIIB"] },
): string {
  const part = (value: unknown) => Buffer.from(writeJsonExact(value), "utf8").toString("base64url");
  return `${part(header)}.${part(payload)}.${Buffer.from("not a signature").toString("base64url")}`;
}
