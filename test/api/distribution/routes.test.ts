/**
 * The route list and authorization: DISTRIBUTION_ROUTES is what the router defines (so the auth tests
 * generated from it cannot miss a route), and `authorize` guards every one of them.
 */
import type { RequestHandler } from "express";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ApiError } from "../../../src/api/distribution/problem.js";
import { createDistributionRouter, DISTRIBUTION_ROUTES } from "../../../src/api/distribution/router.js";
import { manualClock } from "../../../src/clock.js";
import { createBundleCache } from "../../../src/federation/bundle-cache.js";
import { createStaticRegistry } from "../../../src/federation/registry.js";
import {
  ACTIVE,
  allow,
  get,
  type Harness,
  makeBundle,
  makeMaterial,
  put,
  relationship,
  startHarness,
} from "./support.js";

interface StackLayer {
  readonly route?: { readonly path: string; readonly methods: Record<string, boolean>; readonly stack: StackLayer[] };
  readonly handle: unknown;
}

describe("DISTRIBUTION_ROUTES", () => {
  const authorize: RequestHandler = (_req, _res, next) => next();
  const router = createDistributionRouter({
    cache: createBundleCache(),
    registry: createStaticRegistry([]),
    store: { getHistory: async () => [] },
    authorize,
    clock: manualClock(),
  });
  afterAll(() => router.close());
  const layers = (router as unknown as { stack: StackLayer[] }).stack.filter((layer) => layer.route);

  it("is exactly the router's routes, in order", () => {
    const actual = layers.flatMap((layer) =>
      Object.keys(layer.route!.methods)
        .filter((method) => method !== "_all")
        .map((method) => [method.toUpperCase(), layer.route!.path]),
    );
    expect(actual).toEqual(DISTRIBUTION_ROUTES.map(([method, path]) => [method, path]));
  });

  it("routes /v1/bundles/watch before /v1/bundles/:trustDomain", () => {
    const paths = DISTRIBUTION_ROUTES.map(([, path]) => path as string);
    expect(paths.indexOf("/v1/bundles/watch")).toBeLessThan(paths.indexOf("/v1/bundles/:trustDomain"));
  });

  it("puts authorize first on every route", () => {
    for (const layer of layers) expect(layer.route!.stack[0]!.handle).toBe(authorize);
  });
});

describe("authorize", () => {
  let denied: Harness;
  let allowed: Harness;
  const calls: string[] = [];
  const deny: RequestHandler = (req, _res, next) => {
    calls.push(req.path);
    next(new ApiError(403, "ERR_AUTH_FORBIDDEN", "Forbidden", "caller is not allowed"));
  };

  beforeAll(async () => {
    const material = await makeMaterial();
    const relationships = [relationship(ACTIVE, "active")];
    const fill = (cache: Parameters<NonNullable<Parameters<typeof startHarness>[0]["fill"]>>[0]) =>
      put(cache, ACTIVE, makeBundle(material, { ca: [0], jwt: [0], sequence: 1n }));
    denied = await startHarness({ relationships, fill, authorize: deny });
    allowed = await startHarness({ relationships, fill, authorize: allow });
  });
  afterAll(async () => {
    await denied?.close();
    await allowed?.close();
  });

  const concrete = (path: string) => path.replace(":trustDomain", ACTIVE);

  it.each(DISTRIBUTION_ROUTES.map(([method, path]) => ({ method, path })))(
    "a denying authorize blocks $method $path",
    async ({ method, path }) => {
      calls.length = 0;
      // The route works when allowed (so the denial below is the authorize step, not a 404)...
      if (path !== "/v1/bundles/watch") {
        expect((await get(`${allowed.url}${concrete(path)}`, {}, { method })).status).toBe(200);
      }
      // ...and gives nothing but the problem when denied, even with parameters that would be refused.
      for (const suffix of ["", "?format=bogus&wait=1h&limit=0"]) {
        const reply = await get(`${denied.url}${concrete(path)}${suffix}`, { "last-event-id": "0" }, { method });
        expect(reply.status).toBe(403);
        expect(reply.headers["content-type"]).toBe("application/problem+json");
        expect(JSON.parse(reply.text)).toMatchObject({ status: 403, code: "ERR_AUTH_FORBIDDEN" });
        expect(reply.headers.etag).toBeUndefined();
      }
      expect(calls).toHaveLength(2);
      expect(denied.router.activity()).toEqual({ longPolls: 0, streams: 0 });
    },
  );

  it("also guards a route with an invalid trust domain before validating it", async () => {
    const reply = await get(`${denied.url}/v1/bundles/NOT..valid`);
    expect(reply.status).toBe(403);
  });
});
