/**
 * The internal listener's express app: health and readiness, then the routers mounted on it (the
 * distribution and admin APIs). Readiness lists every check, so an operator sees which part is not ready.
 */
import express, { type Express, type RequestHandler } from "express";

export interface ReadinessCheck {
  readonly name: string;
  /** Resolves to undefined when ready, or to an error code saying why not. */
  check(): Promise<string | undefined>;
}

export interface InternalAppOptions {
  readonly readiness: readonly ReadinessCheck[];
  /** Mounted after health and metrics: the distribution API (and later the admin API). */
  readonly routers?: readonly RequestHandler[];
}

export function createInternalApp(options: InternalAppOptions): Express {
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);

  app.get("/healthz", (_req, res) => {
    res.type("application/json").send('{"status":"ok"}');
  });

  app.get("/readyz", async (_req, res) => {
    const results = await Promise.all(
      options.readiness.map(async ({ name, check }) => {
        try {
          const code = await check();
          return { name, ok: code === undefined, ...(code === undefined ? {} : { code }) };
        } catch {
          return { name, ok: false, code: "ERR_READINESS_CHECK" };
        }
      }),
    );
    const ready = results.every((result) => result.ok);
    res.status(ready ? 200 : 503).json({ status: ready ? "ready" : "not ready", checks: results });
  });

  for (const router of options.routers ?? []) app.use(router);
  return app;
}
