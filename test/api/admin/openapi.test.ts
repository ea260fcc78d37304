/**
 * /v1/openapi.json is kept true: it is a valid OpenAPI 3.1 document, it lists exactly the router's routes
 * with their scopes, and real answers of every operation (success and problem) match its schemas.
 */
import { validate } from "@readme/openapi-parser";
import Ajv2020 from "ajv/dist/2020.js";
import addFormats from "ajv-formats";
import type { NextFunction, Request, RequestHandler, Response } from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildOpenApiDocument, responseSchemaOf } from "../../../src/api/admin/openapi.js";
import { createAdminRouter } from "../../../src/api/admin/router.js";
import { ADMIN_ROUTES, openApiPath } from "../../../src/api/admin/routes.js";
import type { AdminService } from "../../../src/api/admin/service.js";
import { silentLogger } from "../../../src/logging.js";
import { type ApiReply, type Gateway, startGateway } from "./support.js";

let partner: Gateway;
let gateway: Gateway;
const document = buildOpenApiDocument() as {
  paths: Record<string, Record<string, { "x-required-scope": string; responses: Record<string, unknown> }>>;
  components: { schemas: Record<string, unknown> };
};

const ajv = new Ajv2020.default({ strict: false, allErrors: true });
addFormats.default(ajv);

function check(operationId: string, reply: ApiReply, status: number) {
  expect(reply.status, `${operationId}: ${reply.text}`).toBe(status);
  const schema =
    status >= 400 ? { $ref: "#/components/schemas/Problem" } : (responseSchemaOf(operationId) as object | undefined);
  if (schema === undefined) {
    expect(reply.text).toBe("");
    return;
  }
  const validator = ajv.compile({ ...schema, components: document.components });
  const ok = validator(reply.json);
  expect(ok, `${operationId} ${status}: ${JSON.stringify(validator.errors)}`).toBe(true);
  // Every status a route answers with is in its documented responses.
  const route = ADMIN_ROUTES.find((r) => r.operationId === operationId)!;
  expect(Object.keys(document.paths[openApiPath(route.path)]![route.method.toLowerCase()]!.responses)).toContain(
    String(status),
  );
}

beforeAll(async () => {
  partner = await startGateway({ trustDomain: "partner.test" });
  gateway = await startGateway({ trustDomain: "example.org" });
}, 30_000);

afterAll(async () => {
  await gateway?.stop();
  await partner?.stop();
});

describe("the OpenAPI document", () => {
  it("is a valid OpenAPI 3.1 document", async () => {
    const result = await validate(structuredClone(document) as never);
    expect(result.valid, JSON.stringify(result)).toBe(true);
  });

  it("lists exactly the routes the router serves, each with the scope the router demands", () => {
    const documented = Object.entries(document.paths).flatMap(([path, methods]) =>
      Object.entries(methods).map(([method, op]) => `${method.toUpperCase()} ${path} ${op["x-required-scope"]}`),
    );
    // The real router, with an auth stub that marks each handler with the scope it was made for.
    const pass: RequestHandler = (_req, _res, next) => next();
    const router = createAdminRouter({
      service: {} as AdminService,
      auth: {
        authenticate: pass,
        requireScope: (scope) =>
          Object.assign((_req: Request, _res: Response, next: NextFunction) => next(), { scope }),
      },
      rateLimit: { beforeAuth: pass, afterAuth: pass },
      logger: silentLogger(),
    });
    interface Layer {
      readonly route?: { path: string; methods: Record<string, boolean>; stack: { handle: { scope?: string } }[] };
    }
    const routed = (router as unknown as { stack: Layer[] }).stack.flatMap((layer) => {
      if (!layer.route) return [];
      const scope = layer.route.stack.map((entry) => entry.handle.scope).find((value) => value !== undefined);
      return Object.keys(layer.route.methods).map(
        (method) => `${method.toUpperCase()} ${openApiPath(layer.route!.path)} ${scope}`,
      );
    });
    expect(routed.length).toBeGreaterThan(10);
    expect(documented.sort()).toEqual(routed.sort());
  });

  it("is what GET /v1/openapi.json serves", async () => {
    const reply = await gateway.api("GET", "/v1/openapi.json", { token: "reader" });
    check("getOpenApi", reply, 200);
    expect(reply.json).toEqual(JSON.parse(JSON.stringify(document)));
  });
});

describe("real answers match the documented schemas", () => {
  it("for every operation", async () => {
    const td = "/v1/relationships/partner.test";
    const seen = new Set<string>();
    const run = async (operationId: string, status: number, method: string, path: string, body?: unknown) => {
      const reply = await gateway.api(method, path, body === undefined ? {} : { body });
      check(operationId, reply, status);
      seen.add(operationId);
      return reply;
    };
    const bundle = JSON.parse(partner.app.localBundle.current().bytes.toString("utf8"));
    const spec = {
      trust_domain: "partner.test",
      endpoint_url: partner.endpointUrl,
      profile: "https_spiffe",
      endpoint_spiffe_id: partner.endpointSpiffeId,
      bootstrap_bundle: bundle,
      owner: "team",
      allowed_cidrs: ["127.0.0.0/8"],
    };
    await run("createRelationship", 400, "POST", "/v1/relationships", { ...spec, colour: 1 });
    await run("createRelationship", 201, "POST", "/v1/relationships", spec);
    await run("listRelationships", 200, "GET", "/v1/relationships?state=pending");
    await run("getRelationship", 200, "GET", td);
    await run("getRelationship", 404, "GET", "/v1/relationships/nobody.test");
    await run("updateRelationship", 200, "PATCH", td, { description: "payments" });
    await run("approveRelationship", 200, "POST", `${td}/approve`);
    await run("approveRelationship", 409, "POST", `${td}/approve`);
    await run("refreshRelationship", 200, "POST", `${td}/refresh`);
    await run("preflightRelationship", 200, "POST", `${td}/preflight`);
    await run("acceptQuarantine", 409, "POST", `${td}/quarantine/accept`, { digest: "0".repeat(64) });
    await run("discardQuarantine", 409, "POST", `${td}/quarantine/discard`, { digest: "0".repeat(64) });
    await run("resetSequence", 200, "POST", `${td}/sequence/reset`);
    await run("suspendRelationship", 200, "POST", `${td}/suspend`, { reason: "test" });
    await run("resumeRelationship", 200, "POST", `${td}/resume`);
    await run("queryAudit", 200, "GET", "/v1/audit?limit=2");
    await run("queryAudit", 400, "GET", "/v1/audit?before=nope");
    const invitation = await run("createInvitation", 201, "POST", "/v1/invitations", {});
    await run("acceptInvitation", 400, "POST", "/v1/invitations/accept", { token: invitation.json.token, owner: "x" });
    const other = await partner.api("POST", "/v1/invitations", { body: {} });
    await run("deleteRelationship", 204, "DELETE", td);
    await run("acceptInvitation", 201, "POST", "/v1/invitations/accept", {
      token: other.json.token,
      owner: "team",
      allowed_cidrs: ["127.0.0.0/8"],
    });
    seen.add("getOpenApi");
    expect([...seen].sort()).toEqual(ADMIN_ROUTES.map((r) => r.operationId).sort());
  }, 30_000);
});
