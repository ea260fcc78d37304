/**
 * The metrics listener: plain node:http serving one registry at GET /metrics, apart from the internal
 * API so Prometheus can reach it without reaching the admin and distribution routes (and their TLS and
 * authentication). 404 for any other path, 405 for any other method on /metrics.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import type { Registry } from "prom-client";
import type { ListenConfig } from "../config/types.js";
import { BundlegateError } from "../errors.js";
import type { Logger } from "../logging.js";
import { ExpositionRegistry } from "./exposition-registry.js";
import { createTimeSlicer } from "./time-slice.js";

export const METRICS_PATH = "/metrics";

export interface MetricsServerOptions {
  readonly registry: Registry;
  readonly listen: ListenConfig;
  readonly logger: Logger;
}

export interface MetricsServer {
  /** Resolves with the bound address (the real port when the config asked for 0). */
  start(): Promise<{ readonly host: string; readonly port: number }>;
  close(): Promise<void>;
}

export function createMetricsServer(options: MetricsServerOptions): MetricsServer {
  const { registry, listen, logger } = options;
  const server = createServer((req, res) => void answer(req, res));
  // A scrape is small and quick; a client that holds a request open this long is not Prometheus.
  server.headersTimeout = 10_000;
  server.requestTimeout = 30_000;

  const answer = async (req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? "/").split("?", 1)[0];
    if (path !== METRICS_PATH) {
      res.writeHead(404, { "content-type": "text/plain; charset=utf-8" }).end("not found\n");
      return;
    }
    if (req.method !== "GET" && req.method !== "HEAD") {
      res
        .writeHead(405, { allow: "GET, HEAD", "content-type": "text/plain; charset=utf-8" })
        .end("method not allowed\n");
      return;
    }
    try {
      // Encoded once (measuring the text's length and then writing it would encode it twice), and piece
      // by piece with turns for the event loop: at 10k relationships a scrape is over 20 MB.
      const pieces = registry instanceof ExpositionRegistry ? await registry.chunks() : [await registry.metrics()];
      const slicer = createTimeSlicer();
      const body: Buffer[] = [];
      for (const piece of pieces) {
        body.push(Buffer.from(piece));
        if (slicer.due()) await slicer.pause();
      }
      res.writeHead(200, {
        "content-type": registry.contentType,
        "content-length": body.reduce((sum, buffer) => sum + buffer.length, 0),
      });
      if (req.method !== "HEAD") for (const buffer of body) res.write(buffer);
      res.end();
    } catch (error) {
      logger.error({ err: (error as Error).message }, "metrics could not be collected");
      if (!res.headersSent) res.writeHead(500, { "content-type": "text/plain; charset=utf-8" });
      res.end("metrics could not be collected\n");
    }
  };

  return {
    async start() {
      await new Promise<void>((resolve, reject) => {
        const onError = (cause: Error) => {
          server.off("listening", onListening);
          reject(
            new BundlegateError("ERR_METRICS_LISTEN", `cannot listen on ${listen.host}:${listen.port}`, { cause }),
          );
        };
        const onListening = () => {
          server.off("error", onError);
          resolve();
        };
        server.once("error", onError);
        server.once("listening", onListening);
        server.listen(listen.port, listen.host);
      });
      return { host: listen.host, port: (server.address() as AddressInfo).port };
    },
    async close() {
      if (!server.listening) return;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      // Keep-alive connections between scrapes would hold close() open until they time out.
      server.closeIdleConnections();
      await closed;
    },
  };
}
