/**
 * The admin API's OpenAPI 3.1 document, built from the route table (routes.ts) so it lists exactly the
 * routes the router serves. test/api/admin/openapi.test.ts validates the document and checks real answers
 * of every route against the schemas here, so the document stays true.
 */
import { VERSION } from "../../cli/version.js";
import { ADMIN_ROUTES, type AdminRoute, openApiPath } from "./routes.js";

type Schema = Record<string, unknown>;

const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const str: Schema = { type: "string" };
const time: Schema = { type: "string", format: "date-time" };
const strings: Schema = { type: "array", items: str };
const sha256: Schema = { type: "string", pattern: "^[0-9a-f]{64}$" };

const suspiciousAction: Schema = { type: "string", enum: ["quarantine", "reject", "accept"] };

const schemas: Record<string, Schema> = {
  Problem: {
    type: "object",
    required: ["type", "title", "status", "detail", "code"],
    properties: {
      type: str,
      title: str,
      status: { type: "integer" },
      detail: str,
      code: { type: "string", pattern: "^ERR_[A-Z0-9_]+$" },
      errors: {
        type: "array",
        items: { type: "object", required: ["path", "message"], properties: { path: str, message: str } },
      },
    },
  },
  RelationshipSpec: {
    type: "object",
    description:
      "A relationship as the config file writes one, with the bootstrap bundle and CA certificates inline. Unknown fields are refused.",
    additionalProperties: false,
    required: ["trust_domain", "endpoint_url", "profile", "owner"],
    properties: {
      trust_domain: { type: "string", examples: ["partner.example"] },
      endpoint_url: {
        type: "string",
        description: "https URL, no user info",
        examples: ["https://bundle.partner.example/"],
      },
      profile: { type: "string", enum: ["https_web", "https_spiffe"] },
      endpoint_spiffe_id: {
        type: "string",
        description: "https_spiffe: the SPIFFE ID the endpoint's X509-SVID carries",
      },
      bootstrap_bundle: {
        description:
          "https_spiffe with an endpoint ID in the partner's own trust domain: its SPIFFE bundle (object) or PEM",
        oneOf: [{ type: "object" }, { type: "string" }],
      },
      ca_pem: { type: "string", description: "https_web: CA certificates to trust instead of the system roots" },
      proxy: { type: "string", description: 'proxy URL, or "direct"' },
      owner: str,
      contact: str,
      description: str,
      labels: { type: "object", additionalProperties: str },
      review_by: { type: "string", description: "YYYY-MM-DD or an RFC 3339 time" },
      expires_at: {
        type: "string",
        description: "YYYY-MM-DD or an RFC 3339 time; the relationship suspends itself then",
      },
      refresh: {
        type: "object",
        additionalProperties: false,
        properties: { interval_seconds: { type: "integer" }, cron: str },
      },
      max_staleness_seconds: { type: "integer", minimum: 1 },
      allowed_cidrs: strings,
      policy: {
        type: "object",
        additionalProperties: false,
        properties: {
          full_replacement: suspiciousAction,
          shared_with_own_domain: suspiciousAction,
          shared_with_other_partner: suspiciousAction,
          sequence_reused: suspiciousAction,
          sequence_rollback: { type: "string", enum: ["reject", "accept"] },
        },
      },
    },
  },
  RelationshipPatch: {
    type: "object",
    description: "Fields of RelationshipSpec to change; null removes an optional field (JSON Merge Patch).",
  },
  Staleness: {
    type: "object",
    required: ["state", "stale_after_seconds", "critical_after_seconds"],
    properties: {
      state: { type: "string", enum: ["fresh", "stale", "critical", "never_synced"] },
      age_seconds: { type: "integer" },
      stale_after_seconds: { type: "number" },
      critical_after_seconds: { type: "number" },
    },
  },
  RelationshipSummary: {
    type: "object",
    required: [
      "trust_domain",
      "state",
      "origin",
      "read_only",
      "owner",
      "profile",
      "endpoint_url",
      "labels",
      "staleness",
      "quarantined",
    ],
    properties: {
      trust_domain: str,
      state: { type: "string", enum: ["pending", "active", "suspended"] },
      origin: { type: "string", enum: ["config", "api"] },
      read_only: { type: "boolean" },
      owner: str,
      profile: { type: "string", enum: ["https_web", "https_spiffe"] },
      endpoint_url: str,
      labels: { type: "object", additionalProperties: str },
      staleness: ref("Staleness"),
      sequence: { type: "string", pattern: "^[0-9]+$" },
      last_success_at: time,
      last_error_code: str,
      quarantined: { type: "boolean" },
      review_by: time,
      expires_at: time,
      review_due: { type: "boolean" },
      expiring: { type: "boolean" },
    },
  },
  Relationship: {
    allOf: [
      ref("RelationshipSummary"),
      {
        type: "object",
        required: ["allowed_cidrs", "policy", "status", "warnings"],
        properties: {
          revision: { type: "integer", minimum: 1 },
          created_at: time,
          updated_at: time,
          contact: str,
          description: str,
          endpoint_spiffe_id: str,
          bootstrap_bundle: { type: "object", properties: { authorities: { type: "integer" } } },
          ca_pem: { type: "boolean" },
          refresh: { type: "object" },
          max_staleness_seconds: { type: "integer" },
          proxy: str,
          allowed_cidrs: strings,
          policy: { type: "object" },
          lifecycle: {
            type: "object",
            required: ["created_by", "created_at", "source"],
            properties: {
              created_by: str,
              created_at: time,
              approved_by: str,
              approved_at: time,
              suspended_by: str,
              suspended_at: time,
              suspended_reason: str,
              source: { type: "string", enum: ["api", "invitation"] },
              invitation_id: str,
              invited_by: str,
              invitation_bundle_digest: str,
              invitation_signer_fingerprint: str,
            },
          },
          spec_fields: strings,
          status: {
            type: "object",
            required: ["consecutive_failures"],
            properties: {
              last_attempt_at: time,
              last_success_at: time,
              last_change_at: time,
              last_result: str,
              last_error_code: str,
              last_error_at: time,
              consecutive_failures: { type: "integer", minimum: 0 },
              next_refresh_at: time,
            },
          },
          bundle: {
            type: "object",
            required: ["digest", "accepted_at", "usable", "authorities"],
            properties: {
              digest: { type: "string", pattern: "^[0-9a-f]{64}$" },
              sequence: { type: "string", pattern: "^[0-9]+$" },
              refresh_hint_seconds: { type: "integer" },
              accepted_at: time,
              usable: { type: "boolean" },
              earliest_not_after: time,
              latest_not_after: time,
              authorities: {
                type: "array",
                items: {
                  type: "object",
                  required: ["use", "id", "status"],
                  properties: {
                    use: { type: "string", enum: ["x509-svid", "jwt-svid", "wit-svid"] },
                    id: str,
                    key_type: str,
                    subject: str,
                    not_after: time,
                    status: { type: "string", enum: ["valid", "expired", "not-yet-valid"] },
                  },
                },
              },
            },
          },
          quarantine: {
            type: "object",
            required: ["digest", "reasons", "added", "removed", "quarantined_at"],
            properties: {
              digest: { type: "string", pattern: "^[0-9a-f]{64}$" },
              sequence: { type: "string" },
              reasons: strings,
              added: strings,
              removed: strings,
              quarantined_at: time,
            },
          },
          preflight: ref("Preflight"),
          warnings: strings,
        },
      },
    ],
  },
  Preflight: {
    type: "object",
    required: ["verdict", "checked_at"],
    properties: {
      verdict: { type: "string", enum: ["ok", "warning", "fail"] },
      checked_at: time,
      code: str,
      message: str,
      hint: str,
      report: { type: "object", description: "The probe's full report (as `bundlegate probe --json` prints it)" },
    },
  },
  AuditEntry: {
    type: "object",
    required: ["id", "at", "actor", "action"],
    properties: {
      id: str,
      at: time,
      actor: str,
      action: str,
      trust_domain: str,
      before: {},
      after: {},
      details: { type: "object" },
    },
  },
  Invitation: {
    type: "object",
    required: ["token", "expires_at", "invitation"],
    properties: {
      token: { type: "string", description: "Compact JWS; its payload is readable JSON" },
      expires_at: time,
      invitation: { type: "object" },
    },
  },
};

const json = (schema: Schema) => ({ "application/json": { schema } });
const problem = (description: string) => ({
  description,
  content: { "application/problem+json": { schema: ref("Problem") } },
});

const REQUESTS: Readonly<Record<string, Schema>> = {
  createRelationship: ref("RelationshipSpec"),
  updateRelationship: ref("RelationshipPatch"),
  suspendRelationship: { type: "object", additionalProperties: false, properties: { reason: str } },
  acceptQuarantine: {
    type: "object",
    additionalProperties: false,
    required: ["digest"],
    properties: { digest: sha256 },
  },
  discardQuarantine: {
    type: "object",
    additionalProperties: false,
    required: ["digest"],
    properties: { digest: sha256 },
  },
  createInvitation: {
    type: "object",
    additionalProperties: false,
    properties: {
      ttl_seconds: {
        type: "integer",
        minimum: 1,
        description: "Default admin.invitations.ttl_seconds; at most max_ttl_seconds",
      },
    },
  },
  acceptInvitation: {
    type: "object",
    additionalProperties: false,
    required: ["token", "owner"],
    properties: {
      token: str,
      owner: str,
      contact: str,
      description: str,
      labels: { type: "object", additionalProperties: str },
      review_by: str,
      expires_at: str,
      allowed_cidrs: strings,
    },
  },
};

const relationshipBody: Schema = {
  type: "object",
  required: ["relationship"],
  properties: { relationship: ref("Relationship") },
};

const RESPONSES: Readonly<Record<string, Schema | undefined>> = {
  getOpenApi: { type: "object", required: ["openapi", "paths"] },
  listRelationships: {
    type: "object",
    required: ["relationships"],
    properties: { relationships: { type: "array", items: ref("RelationshipSummary") } },
  },
  createRelationship: relationshipBody,
  getRelationship: relationshipBody,
  updateRelationship: relationshipBody,
  deleteRelationship: undefined,
  approveRelationship: relationshipBody,
  suspendRelationship: relationshipBody,
  resumeRelationship: relationshipBody,
  refreshRelationship: {
    type: "object",
    required: ["outcome", "relationship"],
    properties: {
      outcome: {
        type: "object",
        required: ["result"],
        properties: { result: str, error_code: str, sequence: str, digest: str },
      },
      relationship: ref("Relationship"),
    },
  },
  preflightRelationship: { type: "object", required: ["preflight"], properties: { preflight: ref("Preflight") } },
  acceptQuarantine: relationshipBody,
  discardQuarantine: relationshipBody,
  resetSequence: relationshipBody,
  queryAudit: {
    type: "object",
    required: ["entries"],
    properties: { entries: { type: "array", items: ref("AuditEntry") }, next: str },
  },
  createInvitation: ref("Invitation"),
  acceptInvitation: relationshipBody,
};

function operation(route: AdminRoute): Schema {
  const responseSchema = RESPONSES[route.operationId];
  const parameters: Schema[] = [];
  if (route.path.includes(":trustDomain")) {
    parameters.push({ name: "trustDomain", in: "path", required: true, schema: str });
  }
  for (const [name, description] of route.query ?? []) {
    parameters.push({ name, in: "query", required: false, description, schema: str });
  }
  if (route.operationId === "updateRelationship") {
    parameters.push({
      name: "If-Match",
      in: "header",
      required: false,
      description: 'The revision read, as "<n>"',
      schema: str,
    });
  }
  const request = REQUESTS[route.operationId];
  return {
    operationId: route.operationId,
    summary: route.summary,
    security: [{ bearer: [route.scope] }],
    "x-required-scope": route.scope,
    ...(parameters.length > 0 ? { parameters } : {}),
    ...(request ? { requestBody: { required: route.body === "required", content: json(request) } } : {}),
    responses: {
      [String(route.status)]:
        responseSchema === undefined ? { description: "Done" } : { description: "OK", content: json(responseSchema) },
      "400": problem("Invalid request; `errors` names each bad field"),
      "401": problem("No valid bearer token"),
      "403": problem("The token lacks the route's scope"),
      ...(route.path.includes(":trustDomain") ? { "404": problem("No such relationship") } : {}),
      ...(route.method !== "GET" ? { "409": problem("Conflicts with the relationship's state or revision") } : {}),
      ...(route.body || route.method !== "GET" ? { "413": problem("Body too large"), "415": problem("Not JSON") } : {}),
      "429": problem("Rate limited; see Retry-After"),
      "503": problem("The store or the identity provider's JWKS cannot be reached"),
    },
  };
}

export function buildOpenApiDocument(): Record<string, unknown> {
  const paths: Record<string, Record<string, Schema>> = {};
  for (const route of ADMIN_ROUTES) {
    const path = openApiPath(route.path);
    paths[path] ??= {};
    paths[path][route.method.toLowerCase()] = operation(route);
  }
  return {
    openapi: "3.1.0",
    info: {
      title: "bundlegate admin API",
      version: VERSION,
      description:
        "Onboard, approve, suspend and retire SPIFFE federation relationships; act on quarantined bundles; read the audit log; sign and accept invitations.",
    },
    paths,
    components: {
      schemas,
      securitySchemes: {
        bearer: {
          type: "http",
          scheme: "bearer",
          description:
            "A static admin token, or a JWT from the configured issuer whose scope claim grants relationships:read, relationships:write, relationships:approve or audit:read",
        },
      },
    },
  };
}

/** The response schema of an operation (for tests), or undefined when it answers with no body. */
export function responseSchemaOf(operationId: string): Schema | undefined {
  return RESPONSES[operationId];
}
