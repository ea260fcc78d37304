/**
 * Every admin route, with the scope it needs. The router is built from this table and nothing else, so
 * the OpenAPI document, the auth tests and the router cannot disagree about which routes exist.
 */
import type { AdminScope } from "../../config/types.js";

export interface AdminRoute {
  readonly method: "GET" | "POST" | "PATCH" | "DELETE";
  /** express syntax (":trustDomain"). */
  readonly path: string;
  readonly scope: AdminScope;
  readonly operationId: string;
  readonly summary: string;
  /**
   * The query parameters the route reads, with what each means (for the OpenAPI document); any other is
   * refused. Routes without the list take none of their own.
   */
  readonly query?: readonly (readonly [name: string, description: string])[];
  /** Whether the route reads a JSON body (required unless `optionalBody`). */
  readonly body?: "required" | "optional";
  /** The success status. */
  readonly status: 200 | 201 | 204;
}

const TD = "/v1/relationships/:trustDomain";

export const ADMIN_ROUTES: readonly AdminRoute[] = [
  {
    method: "GET",
    path: "/v1/openapi.json",
    scope: "relationships:read",
    operationId: "getOpenApi",
    summary: "This API's OpenAPI document",
    status: 200,
  },
  {
    method: "GET",
    path: "/v1/relationships",
    scope: "relationships:read",
    operationId: "listRelationships",
    summary: "List relationships, filtered by state, owner, label or staleness",
    query: [
      ["state", "pending, active or suspended"],
      ["owner", "exact owner"],
      ["label", "key=value; repeat for several (all must match)"],
      ["staleness", "fresh, stale, critical or never_synced"],
    ],
    status: 200,
  },
  {
    method: "POST",
    path: "/v1/relationships",
    scope: "relationships:write",
    operationId: "createRelationship",
    summary: "Create a relationship (pending until approved); runs the preflight",
    body: "required",
    status: 201,
  },
  {
    method: "GET",
    path: TD,
    scope: "relationships:read",
    operationId: "getRelationship",
    summary: "Show a relationship: config, status, staleness, authorities, quarantine, preflight",
    status: 200,
  },
  {
    method: "PATCH",
    path: TD,
    scope: "relationships:write",
    operationId: "updateRelationship",
    summary: "Change an API-made relationship (merge patch; null removes a field)",
    body: "required",
    status: 200,
  },
  {
    method: "DELETE",
    path: TD,
    scope: "relationships:write",
    operationId: "deleteRelationship",
    summary: "Delete an API-made relationship: polling stops, its bundle leaves distribution",
    status: 204,
  },
  {
    method: "POST",
    path: `${TD}/approve`,
    scope: "relationships:approve",
    operationId: "approveRelationship",
    summary: "pending -> active",
    status: 200,
  },
  {
    method: "POST",
    path: `${TD}/suspend`,
    scope: "relationships:write",
    operationId: "suspendRelationship",
    summary: "pending|active -> suspended (still polled, not distributed)",
    body: "optional",
    status: 200,
  },
  {
    method: "POST",
    path: `${TD}/resume`,
    scope: "relationships:approve",
    operationId: "resumeRelationship",
    summary: "suspended -> active",
    status: 200,
  },
  {
    method: "POST",
    path: `${TD}/refresh`,
    scope: "relationships:write",
    operationId: "refreshRelationship",
    summary: "Fetch the partner's bundle now",
    status: 200,
  },
  {
    method: "POST",
    path: `${TD}/preflight`,
    scope: "relationships:write",
    operationId: "preflightRelationship",
    summary: "Probe the partner's endpoint now and save the result",
    status: 200,
  },
  {
    method: "POST",
    path: `${TD}/quarantine/accept`,
    scope: "relationships:approve",
    operationId: "acceptQuarantine",
    summary: "Accept the quarantined bundle with this digest",
    body: "required",
    status: 200,
  },
  {
    method: "POST",
    path: `${TD}/quarantine/discard`,
    scope: "relationships:approve",
    operationId: "discardQuarantine",
    summary: "Discard the quarantined bundle with this digest",
    body: "required",
    status: 200,
  },
  {
    method: "POST",
    path: `${TD}/sequence/reset`,
    scope: "relationships:approve",
    operationId: "resetSequence",
    summary: "Forget the stored spiffe_sequence so a lower one is accepted next",
    status: 200,
  },
  {
    method: "GET",
    path: "/v1/audit",
    scope: "audit:read",
    operationId: "queryAudit",
    summary: "The audit log, newest first",
    query: [
      ["trust_domain", "entries about this relationship"],
      ["actor", "entries by this caller"],
      ["action", "e.g. relationship.approve"],
      ["since", "RFC 3339 time, inclusive"],
      ["until", "RFC 3339 time, inclusive"],
      ["limit", "1..1000, default 100"],
      ["before", "the previous page's `next`"],
    ],
    status: 200,
  },
  {
    method: "POST",
    path: "/v1/invitations",
    scope: "relationships:write",
    operationId: "createInvitation",
    summary: "Sign an invitation to federate with this trust domain",
    body: "optional",
    status: 201,
  },
  {
    method: "POST",
    path: "/v1/invitations/accept",
    scope: "relationships:write",
    operationId: "acceptInvitation",
    summary: "Check another gateway's invitation and create a pending relationship from it",
    body: "required",
    status: 201,
  },
];

/** "/v1/relationships/:trustDomain" -> "/v1/relationships/{trustDomain}". */
export function openApiPath(path: string): string {
  return path.replace(/:([A-Za-z]+)/g, "{$1}");
}
