/**
 * The operations tests' harness: a real gateway (startApp with a config read by the loader, every listener
 * on port 0) federating with a real HTTPS partner that can be stopped and restarted on the same port, the
 * gateway's metrics scraped over HTTP, and helpers to run Prometheus' own tools (found by prometheus-tools.ts).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { once } from "node:events";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { createServer, type Server } from "node:https";
import type { AddressInfo, Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningApp, startApp } from "../../src/app.js";
import { systemClock } from "../../src/clock.js";
import { parseConfig } from "../../src/config/load.js";
import { silentLogger } from "../../src/logging.js";
import { createTrustBundle, type TrustBundle, x509AuthorityFromCertificate } from "../../src/spiffe/bundle.js";
import { serializeSpiffeBundle } from "../../src/spiffe/codec.js";
import { createCa, createWebCert, type Issued } from "../support/pki.js";
import { freePort } from "../support/redis-server.js";
import { PROMETHEUS } from "./prometheus-tools.js";

export { eventually } from "../support/eventually.js";

export const OWN_TD = "gateway.test";

export function bundleOf(cas: readonly Issued[], sequence: bigint, refreshHintSeconds: number): TrustBundle {
  return createTrustBundle({
    x509Authorities: cas.map((ca) => x509AuthorityFromCertificate(new X509Certificate(ca.der))),
    sequence,
    refreshHintSeconds,
  });
}

// ---------------------------------------------------------------------------------------------------------
// The partner

export interface Partner {
  readonly trustDomain: string;
  /** The CA the partner's web certificate chains to (what the relationship's ca_file holds). */
  readonly webCaPem: string;
  readonly port: number;
  readonly url: string;
  serve(bundle: TrustBundle): void;
  /** Stops listening and cuts every connection: fetches fail with a connection error. */
  stop(): Promise<void>;
  /** Listens again on the same port. */
  restart(): Promise<void>;
}

export async function startPartner(trustDomain: string, bundle: TrustBundle): Promise<Partner> {
  const webCa = await createCa({ trustDomain: `ca.${trustDomain}`, withSpiffeUri: false });
  const cert = await createWebCert({ issuer: webCa, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  let body = Buffer.from(serializeSpiffeBundle(bundle));
  const sockets = new Set<Socket>();
  const server: Server = createServer({ cert: cert.pem, key: cert.keyPem }, (req, res) => {
    if (req.url !== "/bundle") {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "application/json", "content-length": body.length }).end(body);
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  server.on("tlsClientError", () => undefined);
  const listen = async (port: number) => {
    server.listen(port, "127.0.0.1");
    await once(server, "listening");
  };
  await listen(0);
  const port = (server.address() as AddressInfo).port;
  return {
    trustDomain,
    webCaPem: webCa.pem,
    port,
    url: `https://localhost:${port}/bundle`,
    serve(next) {
      body = Buffer.from(serializeSpiffeBundle(next));
    },
    async stop() {
      if (!server.listening) return;
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
    restart: () => listen(port),
  };
}

// ---------------------------------------------------------------------------------------------------------
// The gateway

export interface GatewayOptions {
  readonly partner: Partner;
  /** Default: the embedded store, in memory. */
  readonly redisUrl?: string;
  readonly keyPrefix?: string;
  readonly replicaId?: string;
  /** This domain's CA; replicas of one gateway share it (they share the local bundle's state too). */
  readonly ownCa?: Issued;
}

export interface Gateway {
  readonly app: RunningApp;
  readonly metricsUrl: string;
  stop(): Promise<void>;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const dir = await mkdtemp(join(tmpdir(), "bg-ops-"));
  const ownCa = options.ownCa ?? (await createCa({ trustDomain: OWN_TD }));
  const webCa = await createCa({ trustDomain: "web.gateway.test", withSpiffeUri: false });
  const web = await createWebCert({ issuer: webCa, dnsNames: ["localhost"] });
  const files: Record<string, string> = {
    "bundle.json": serializeSpiffeBundle(bundleOf([ownCa], 1n, 300)),
    "web.pem": web.pem,
    "web.key": web.keyPem,
    "partner-ca.pem": options.partner.webCaPem,
  };
  for (const [name, content] of Object.entries(files)) await writeFile(join(dir, name), content);
  const config = parseConfig(
    JSON.stringify({
      trust_domain: OWN_TD,
      file_poll_interval_ms: 1000,
      local_bundle: { file: "bundle.json" },
      endpoint: { https_web: { listen: { host: "127.0.0.1", port: 0 }, cert_file: "web.pem", key_file: "web.key" } },
      internal: { listen: { host: "127.0.0.1", port: 0 } },
      metrics: { listen: { host: "127.0.0.1", port: 0 } },
      store: options.redisUrl
        ? { kind: "redis", url: options.redisUrl, key_prefix: options.keyPrefix ?? "ops" }
        : { kind: "embedded" },
      // A partner hint of 1 s polls every 0.25 s and is stale after 3 s (the schema's minimum hint is 1 s).
      federation: {
        min_refresh_hint_seconds: 1,
        default_refresh_hint_seconds: 4,
        lease_ms: 1000,
        backoff_initial_seconds: 1,
        connect_timeout_ms: 1000,
        headers_timeout_ms: 1000,
        total_timeout_ms: 2000,
      },
      relationships: [
        {
          trust_domain: options.partner.trustDomain,
          endpoint_url: options.partner.url,
          profile: "https_web",
          ca_file: "partner-ca.pem",
          owner: "partner-team",
          allowed_cidrs: ["127.0.0.0/8", "::1/128"],
        },
      ],
    }),
    { baseDir: dir, env: {}, source: "ops test gateway" },
  );
  const app = await startApp(config, {
    logger: silentLogger(),
    clock: systemClock,
    ...(options.replicaId ? { replicaId: options.replicaId } : {}),
  });
  return {
    app,
    metricsUrl: `http://127.0.0.1:${app.addresses.metrics.port}/metrics`,
    async stop() {
      await app.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** GET of the metrics listener; throws unless 200. */
export async function scrape(gateway: Gateway): Promise<string> {
  const reply = await fetch(gateway.metricsUrl);
  const text = await reply.text();
  if (reply.status !== 200) throw new Error(`scrape answered ${reply.status}: ${text}`);
  return text;
}

// ---------------------------------------------------------------------------------------------------------
// Processes

export interface Finished {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a command to its end, `input` on its stdin. */
export async function run(command: string, args: readonly string[], input?: string): Promise<Finished> {
  const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
  let stdout = "";
  let stderr = "";
  child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
    stdout += chunk;
  });
  child.stderr.setEncoding("utf8").on("data", (chunk: string) => {
    stderr += chunk;
  });
  child.stdin.end(input ?? "");
  const [code] = (await once(child, "close")) as [number | null];
  return { code, stdout, stderr };
}

export interface PrometheusHandle {
  readonly url: string;
  /** Everything Prometheus logged, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

/** A real Prometheus scraping `targets` every second and evaluating `ruleFiles` every second. */
export async function startPrometheus(
  targets: readonly string[],
  ruleFiles: readonly string[],
): Promise<PrometheusHandle> {
  const dir = await mkdtemp(join(tmpdir(), "bg-prometheus-"));
  const config = [
    "global:",
    "  scrape_interval: 1s",
    "  scrape_timeout: 900ms",
    "  evaluation_interval: 1s",
    "rule_files:",
    ...ruleFiles.map((file) => `  - ${JSON.stringify(file)}`),
    "scrape_configs:",
    "  - job_name: bundlegate",
    "    static_configs:",
    `      - targets: [${targets.map((target) => JSON.stringify(target)).join(", ")}]`,
    "",
  ].join("\n");
  await writeFile(join(dir, "prometheus.yml"), config);
  const port = await freePort();
  let output = "";
  const child: ChildProcess = spawn(
    PROMETHEUS,
    [
      `--config.file=${join(dir, "prometheus.yml")}`,
      `--storage.tsdb.path=${join(dir, "data")}`,
      `--web.listen-address=127.0.0.1:${port}`,
      "--log.level=warn",
    ],
    { stdio: ["ignore", "pipe", "pipe"] },
  );
  child.stdout?.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk;
  });
  child.stderr?.setEncoding("utf8").on("data", (chunk: string) => {
    output += chunk;
  });
  const exited = once(child, "exit");
  const url = `http://127.0.0.1:${port}`;
  const handle: PrometheusHandle = {
    url,
    log: () => output,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGTERM");
        await exited;
      }
      await rm(dir, { recursive: true, force: true });
    },
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`prometheus exited with ${child.exitCode}:\n${output}`);
    const ready = await fetch(`${url}/-/ready`).then(
      (reply) => reply.status === 200,
      () => false,
    );
    if (ready) return handle;
    if (Date.now() > deadline) {
      await handle.stop();
      throw new Error(`prometheus did not become ready:\n${output}`);
    }
    await sleep(100);
  }
}

export interface AlertInfo {
  readonly labels: Record<string, string>;
  readonly annotations: Record<string, string>;
  readonly state: "pending" | "firing" | "inactive";
  readonly value: string;
}

export async function alerts(prometheus: PrometheusHandle): Promise<AlertInfo[]> {
  const reply = await fetch(`${prometheus.url}/api/v1/alerts`);
  const body = (await reply.json()) as { status: string; data: { alerts: AlertInfo[] } };
  if (body.status !== "success") throw new Error(`alerts API: ${JSON.stringify(body)}`);
  return body.data.alerts;
}

export interface Sample {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

/** An instant query. */
export async function query(prometheus: PrometheusHandle, expression: string): Promise<Sample[]> {
  const reply = await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(expression)}`);
  const body = (await reply.json()) as { status: string; data: { resultType: string; result: Sample[] } };
  if (body.status !== "success") throw new Error(`query ${expression}: ${JSON.stringify(body)}`);
  return body.data.result;
}

export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
