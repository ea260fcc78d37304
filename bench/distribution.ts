/**
 * `GET /v1/bundles/{td}` of the distribution API (express, consumer authentication with a static bearer
 * token, served from the in-memory cache) against the same minimal `node:https` baseline as
 * bench/endpoint.ts: a bare server answering every request with the same bundle bytes. One process run,
 * the same certificate, bundle and load for both.
 *
 *   npx tsx bench/distribution.ts [--duration=SECONDS] [--rounds=N]
 */
import { createHash, X509Certificate } from "node:crypto";
import { createServer } from "node:https";
import express from "express";
import { createConsumerAuth } from "../src/api/auth/consumer-auth.js";
import { createDistributionRouter } from "../src/api/distribution/router.js";
import { systemClock } from "../src/clock.js";
import { createBundleCache } from "../src/federation/bundle-cache.js";
import { createStaticRegistry } from "../src/federation/registry.js";
import { silentLogger } from "../src/logging.js";
import { resolvePolicy } from "../src/policy/merge.js";
import { createTrustBundle, x509AuthorityFromCertificate } from "../src/spiffe/bundle.js";
import { serializeSpiffeBundle } from "../src/spiffe/codec.js";
import { bundleDigest } from "../src/spiffe/digest.js";
import type { TrustDomain } from "../src/spiffe/id.js";
import { openEmbeddedStore } from "../src/store/embedded/embedded-store.js";
import { createCa, createWebCert } from "../test/support/pki.js";
import { compareServers, listen } from "./compare.js";

const PARTNER = "partner.test" as TrustDomain;
const TOKEN = "bench-reader-token";

async function main(): Promise<void> {
  const [ca, authority, previousAuthority] = await Promise.all([
    createCa({ trustDomain: "bench.test", withSpiffeUri: false }),
    createCa({ trustDomain: PARTNER }),
    createCa({ trustDomain: PARTNER }),
  ]);
  const cert = await createWebCert({ issuer: ca, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  const bundle = createTrustBundle({
    x509Authorities: [authority, previousAuthority].map((c) =>
      x509AuthorityFromCertificate(new X509Certificate(c.der)),
    ),
    sequence: 42n,
    refreshHintSeconds: 300,
  });
  const json = serializeSpiffeBundle(bundle);
  const bytes = Buffer.from(json);

  const baselineHeaders = ["Content-Type", "application/json", "Content-Length", String(bytes.length)];
  const baseline = createServer({ cert: cert.pem, key: cert.keyPem }, (_req, res) => {
    res.writeHead(200, baselineHeaders);
    res.end(bytes);
  });

  const cache = createBundleCache();
  cache.put(PARTNER, {
    json,
    digest: bundleDigest(bundle),
    sequence: "42",
    refreshHintSeconds: 300,
    acceptedAt: Date.now(),
  });
  const registry = createStaticRegistry([
    {
      trustDomain: PARTNER,
      endpointUrl: "https://partner.test/",
      profile: { kind: "https_web" },
      owner: "bench",
      labels: {},
      allowedCidrs: [],
      policy: resolvePolicy(),
      state: "active",
      origin: "config",
    },
  ]);
  const router = createDistributionRouter({
    cache,
    registry,
    store: await openEmbeddedStore({ logger: silentLogger() }),
    clock: systemClock,
    authorize: createConsumerAuth({
      trustDomain: "example.org",
      localBundle: () => createTrustBundle(),
      audience: ["bundlegate"],
      tokens: [{ name: "reader", sha256: createHash("sha256").update(TOKEN).digest("hex") }],
      allow: { "*": ["token:reader"] },
      clock: systemClock,
    }),
  });
  const app = express();
  app.disable("x-powered-by");
  app.use(router);
  const api = createServer({ cert: cert.pem, key: cert.keyPem }, app);

  const { bad } = await compareServers(
    `distribution API benchmark: GET /v1/bundles/${PARTNER}, ${bytes.length}-byte bundle`,
    [
      { name: "baseline", port: await listen(baseline) },
      {
        name: "distribution",
        port: await listen(api),
        path: `/v1/bundles/${PARTNER}`,
        headers: { authorization: `Bearer ${TOKEN}` },
      },
    ],
  );
  router.close();
  for (const server of [baseline, api]) {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }
  if (bad) process.exitCode = 1;
}

await main();
