/** The metrics listener: GET (and HEAD) /metrics in the registry's format, 404 elsewhere, 405 otherwise. */

import { Counter, Gauge, Registry } from "prom-client";
import { afterEach, describe, expect, it } from "vitest";
import { isBundlegateError } from "../../src/errors.js";
import { silentLogger } from "../../src/logging.js";
import { ExpositionRegistry } from "../../src/metrics/exposition-registry.js";
import { createMetricsServer, type MetricsServer } from "../../src/metrics/server.js";

const servers: MetricsServer[] = [];
afterEach(async () => {
  for (const server of servers.splice(0)) await server.close();
});

async function started(registry = new Registry()) {
  new Gauge({ name: "test_value", help: "A value.", registers: [registry] }).set(42);
  const server = createMetricsServer({ registry, listen: { host: "127.0.0.1", port: 0 }, logger: silentLogger() });
  servers.push(server);
  const address = await server.start();
  return { server, base: `http://127.0.0.1:${address.port}`, port: address.port };
}

describe("metrics listener", () => {
  it("serves the registry at GET /metrics, with or without a query", async () => {
    const { base } = await started();
    for (const path of ["/metrics", "/metrics?name[]=test_value"]) {
      const reply = await fetch(`${base}${path}`);
      expect(reply.status).toBe(200);
      expect(reply.headers.get("content-type")).toBe("text/plain; version=0.0.4; charset=utf-8");
      expect(await reply.text()).toMatch(/^test_value 42$/m);
    }
    const head = await fetch(`${base}/metrics`, { method: "HEAD" });
    expect(head.status).toBe(200);
    expect(await head.text()).toBe("");
  });

  it("answers 404 for other paths and 405 for other methods", async () => {
    const { base } = await started();
    expect((await fetch(`${base}/`)).status).toBe(404);
    expect((await fetch(`${base}/metrics/extra`)).status).toBe(404);
    expect((await fetch(`${base}/healthz`)).status).toBe(404);
    const post = await fetch(`${base}/metrics`, { method: "POST", body: "x" });
    expect(post.status).toBe(405);
    expect(post.headers.get("allow")).toBe("GET, HEAD");
  });

  it("sends the app registry's scrape piece by piece: the same bytes as metrics(), and their length", async () => {
    const registry = new ExpositionRegistry();
    new Counter({ name: "test_total", help: "Non-ASCII labels: é, 雪.", labelNames: ["k"], registers: [registry] }).inc(
      { k: "ümlaut ☃" },
      3,
    );
    const { base } = await started(registry);
    const reply = await fetch(`${base}/metrics`);
    const body = Buffer.from(await reply.arrayBuffer());
    const expected = Buffer.from(await registry.metrics());
    expect(body.equals(expected)).toBe(true);
    expect(Number(reply.headers.get("content-length"))).toBe(expected.length);
    expect(body.toString()).toMatch(/^test_total\{k="ümlaut ☃"\} 3$/m);
    const head = await fetch(`${base}/metrics`, { method: "HEAD" });
    expect(Number(head.headers.get("content-length"))).toBe(expected.length);
  });

  it("answers 500 when a collector fails, and keeps serving", async () => {
    const registry = new Registry();
    let fail = true;
    new Gauge({
      name: "test_flaky",
      help: "Fails on demand.",
      registers: [registry],
      collect() {
        if (fail) throw new Error("collector broke");
        this.set(1);
      },
    });
    const { base } = await started(registry);
    expect((await fetch(`${base}/metrics`)).status).toBe(500);
    fail = false;
    expect((await fetch(`${base}/metrics`)).status).toBe(200);
  });

  it("refuses a port already taken with ERR_METRICS_LISTEN, and stops listening on close", async () => {
    const { server, port, base } = await started();
    const second = createMetricsServer({
      registry: new Registry(),
      listen: { host: "127.0.0.1", port },
      logger: silentLogger(),
    });
    const error = await second.start().catch((caught: unknown) => caught);
    expect(isBundlegateError(error) && error.code).toBe("ERR_METRICS_LISTEN");
    await second.close();
    await server.close();
    await expect(fetch(`${base}/metrics`)).rejects.toThrow();
  });
});
