/**
 * Issue 5's acceptance at the app level: two replicas on one real Redis, their internal listeners on TLS; a
 * partner change accepted by one is visible on the other's /v1/bundles/{td}, long-poll and event stream
 * within one second; and the relay
 * serves the partner's bundle to a client that verifies the gateway's SVID like go-spiffe.
 */
import { createHash, X509Certificate } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import type { IncomingMessage } from "node:http";
import { createServer, request, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type RunningApp, startApp } from "../../src/app.js";
import { systemClock } from "../../src/clock.js";
import { parseConfig } from "../../src/config/load.js";
import { silentLogger } from "../../src/logging.js";
import { createTrustBundle, type TrustBundle, x509AuthorityFromCertificate } from "../../src/spiffe/bundle.js";
import { serializeSpiffeBundle } from "../../src/spiffe/codec.js";
import { bundleDigest } from "../../src/spiffe/digest.js";
import type { TrustDomain } from "../../src/spiffe/id.js";
import { spiffeRequest } from "../support/https-client.js";
import { createCa, createSvid, createWebCert, type Issued } from "../support/pki.js";
import { type RedisServerHandle, startRedisServer } from "../support/redis-server.js";

const OWN = "example.org";
const PARTNER = "partner.test" as TrustDomain;
const TOKEN = "reader-token-for-tests";

let redis: RedisServerHandle;
let partner: Server;
let serving: Buffer;
let v1: TrustBundle;
let v2: TrustBundle;
let ownBundle: TrustBundle;
let internalCa: Issued;
let a: RunningApp;
let b: RunningApp;

const bundleOf = (cas: Issued[], sequence: bigint) =>
  createTrustBundle({
    x509Authorities: cas.map((ca) => x509AuthorityFromCertificate(new X509Certificate(ca.der))),
    sequence,
    refreshHintSeconds: 4,
  });

async function replica(name: string, files: Record<string, string>, port: number, withRelay: boolean) {
  const dir = await mkdtemp(join(tmpdir(), `bg-dist-${name}-`));
  for (const [file, content] of Object.entries(files)) await writeFile(join(dir, file), content);
  const config = parseConfig(
    JSON.stringify({
      trust_domain: OWN,
      file_poll_interval_ms: 1000,
      local_bundle: { file: "bundle.json" },
      endpoint: {
        https_spiffe: {
          listen: { host: "127.0.0.1", port: 0 },
          endpoint_spiffe_id: `spiffe://${OWN}/bundlegate`,
          svid_file: "svid.pem",
          svid_key_file: "svid.key",
        },
      },
      internal: {
        listen: { host: "127.0.0.1", port: 0 },
        tls: { cert_file: "internal.pem", key_file: "internal.key" },
      },
      metrics: { listen: { host: "127.0.0.1", port: 0 } },
      store: { kind: "redis", url: redis.url, key_prefix: "dist-acceptance" },
      federation: {
        min_refresh_hint_seconds: 1,
        default_refresh_hint_seconds: 4,
        lease_ms: 1000,
        backoff_initial_seconds: 1,
      },
      relationships: [
        {
          trust_domain: PARTNER,
          endpoint_url: `https://localhost:${port}/bundle`,
          profile: "https_web",
          ca_file: "partner-ca.pem",
          owner: "team",
          allowed_cidrs: ["127.0.0.0/8", "::1/128"],
        },
      ],
      distribution: {
        tokens: [{ name: "reader", sha256: createHash("sha256").update(TOKEN).digest("hex") }],
        allow: { "*": ["token:reader"] },
      },
      ...(withRelay
        ? {
            relay: {
              listen: { host: "127.0.0.1", port: 0 },
              svid_file: "relay.pem",
              svid_key_file: "relay.key",
              endpoint_spiffe_id: `spiffe://${OWN}/relay`,
              trust_domains: [PARTNER],
            },
          }
        : {}),
    }),
    { baseDir: dir, env: {}, source: `replica ${name}` },
  );
  return startApp(config, { logger: silentLogger(), clock: systemClock, replicaId: name });
}

/** GET on the internal listener with the reader's token. */
function get(
  app: RunningApp,
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: string; headers: IncomingMessage["headers"] }> {
  const { host, port } = app.addresses.internal;
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port,
        path,
        ca: internalCa.pem,
        servername: "localhost",
        headers: { authorization: `Bearer ${TOKEN}`, ...headers },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () =>
          resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString(), headers: res.headers }),
        );
      },
    );
    req.on("error", reject);
    req.end();
  });
}

beforeAll(async () => {
  redis = await startRedisServer();
  const [ownCa, partnerCa1, partnerCa2, partnerWebCa] = await Promise.all([
    createCa({ trustDomain: OWN }),
    createCa({ trustDomain: PARTNER }),
    createCa({ trustDomain: PARTNER }),
    createCa({ trustDomain: "web.test", withSpiffeUri: false }),
  ]);
  internalCa = await createCa({ trustDomain: "internal.test", withSpiffeUri: false });
  const internalCert = await createWebCert({ issuer: internalCa, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  const [svid, relaySvid, partnerWeb] = await Promise.all([
    createSvid({ issuer: ownCa, spiffeId: `spiffe://${OWN}/bundlegate` }),
    createSvid({ issuer: ownCa, spiffeId: `spiffe://${OWN}/relay` }),
    createWebCert({ issuer: partnerWebCa, dnsNames: ["localhost"] }),
  ]);
  ownBundle = createTrustBundle({ x509Authorities: [x509AuthorityFromCertificate(new X509Certificate(ownCa.der))] });
  v1 = bundleOf([partnerCa1], 1n);
  v2 = bundleOf([partnerCa1, partnerCa2], 2n);
  serving = Buffer.from(serializeSpiffeBundle(v1));
  partner = createServer({ cert: partnerWeb.pem, key: partnerWeb.keyPem }, (_req, res) => {
    res.writeHead(200, { "content-type": "application/json", "content-length": serving.length });
    res.end(serving);
  });
  await new Promise<void>((resolve) => partner.listen(0, "127.0.0.1", resolve));
  const port = (partner.address() as AddressInfo).port;
  const files = {
    "bundle.json": serializeSpiffeBundle(ownBundle),
    "svid.pem": svid.pem,
    "svid.key": svid.keyPem,
    "relay.pem": relaySvid.pem,
    "relay.key": relaySvid.keyPem,
    "partner-ca.pem": partnerWebCa.pem,
    "internal.pem": internalCert.pem,
    "internal.key": internalCert.keyPem,
  };
  a = await replica("a", files, port, true);
  b = await replica("b", files, port, false);
}, 60_000);

afterAll(async () => {
  await a?.stop();
  await b?.stop();
  partner?.close();
  if (redis?.controllable) await redis.stop();
});

describe("distribution across replicas", () => {
  it("refuses a caller without a token", async () => {
    const { host, port } = b.addresses.internal;
    const status = await new Promise<number>((resolve, reject) => {
      request({ host, port, path: `/v1/bundles/${PARTNER}`, ca: internalCa.pem, servername: "localhost" }, (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      })
        .on("error", reject)
        .end();
    });
    expect(status).toBe(401);
  });

  it("shows a change accepted by one replica on the other's bundle, long-poll and stream within a second", async () => {
    await vi.waitFor(
      async () => {
        for (const app of [a, b]) {
          const reply = await get(app, `/v1/bundles/${PARTNER}`);
          expect(reply.status).toBe(200);
          expect(JSON.parse(reply.body)).toMatchObject({ spiffe_sequence: 1 });
        }
      },
      { timeout: 15_000, interval: 200 },
    );
    const before = await get(b, `/v1/bundles/${PARTNER}`);
    const etag = String(before.headers.etag);

    // B: a long-poll and an event stream, both waiting for the change.
    const longPoll = get(b, `/v1/bundles/${PARTNER}?wait=20s`, { "if-none-match": etag }).then((reply) => ({
      reply,
      at: Date.now(),
    }));
    const streamed = new Promise<number>((resolve, reject) => {
      const { host, port } = b.addresses.internal;
      const req = request(
        {
          host,
          port,
          path: "/v1/bundles/watch",
          ca: internalCa.pem,
          servername: "localhost",
          headers: { authorization: `Bearer ${TOKEN}` },
        },
        (res) => {
          res.setEncoding("utf8");
          res.on("data", (text: string) => {
            if (text.includes(bundleDigest(v2))) {
              resolve(Date.now());
              req.destroy();
            }
          });
        },
      );
      req.on("error", (error) => (String(error).includes("socket hang up") ? undefined : reject(error)));
      req.end();
    });
    await new Promise((resolve) => setTimeout(resolve, 200));

    // The partner rotates; replica A fetches and accepts it (refresh now, retried until A holds the lease).
    serving = Buffer.from(serializeSpiffeBundle(v2));
    let acceptedAt = 0;
    await vi.waitFor(
      async () => {
        const outcome = await a.engine.refreshNow(PARTNER);
        expect(outcome?.result).toBe("accepted");
        acceptedAt = Date.now();
      },
      { timeout: 10_000, interval: 100 },
    );

    const { reply, at } = await longPoll;
    expect(reply.status).toBe(200);
    expect(JSON.parse(reply.body)).toMatchObject({ spiffe_sequence: 2 });
    const streamedAt = await streamed;
    const after = await get(b, `/v1/bundles/${PARTNER}`);
    expect(JSON.parse(after.body)).toMatchObject({ spiffe_sequence: 2 });
    expect(b.cache.get(PARTNER)?.stored.digest).toBe(bundleDigest(v2));
    expect(at - acceptedAt).toBeLessThan(1000);
    expect(streamedAt - acceptedAt).toBeLessThan(1000);
  }, 40_000);

  it("relays the partner's bundle to a client that verifies the gateway's SVID, with the gateway's digest", async () => {
    const relay = a.addresses.relay!;
    const reply = await spiffeRequest(
      { port: relay.port, bundle: ownBundle, endpointSpiffeId: `spiffe://${OWN}/relay` },
      { path: `/federation/${PARTNER}` },
    );
    expect(reply.status).toBe(200);
    const digest = createHash("sha256").update(reply.body).digest("hex");
    expect(digest).toBe(a.cache.get(PARTNER)?.stored.digest);
    await expect(
      spiffeRequest(
        { port: relay.port, bundle: ownBundle, endpointSpiffeId: `spiffe://${OWN}/other` },
        { path: `/federation/${PARTNER}` },
      ),
    ).rejects.toThrow();
  });

  it("reports not ready, naming the store and sync checks, while Redis is down, and ready again after", async () => {
    if (!redis.controllable) return;
    await redis.stop();
    try {
      await vi.waitFor(
        async () => {
          const reply = await get(b, "/readyz");
          expect(reply.status).toBe(503);
          const checks = (JSON.parse(reply.body) as { checks: { name: string; ok: boolean; code?: string }[] }).checks;
          expect(checks).toContainEqual({ name: "store", ok: false, code: "ERR_STORE_UNAVAILABLE" });
          expect(checks).toContainEqual({ name: "sync", ok: false, code: "ERR_SYNC_DEGRADED" });
        },
        { timeout: 15_000, interval: 250 },
      );
      // Served from memory meanwhile.
      expect((await get(b, `/v1/bundles/${PARTNER}`)).status).toBe(200);
    } finally {
      await redis.start();
    }
    await vi.waitFor(async () => expect((await get(b, "/readyz")).status).toBe(200), {
      timeout: 20_000,
      interval: 250,
    });
  }, 45_000);
});
