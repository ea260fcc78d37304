/**
 * The bundle endpoint against the fastest thing that could stand in its place: a bare `node:https` server
 * answering every request with the same bytes and content type. Both run on this process's main thread
 * with the same certificate and bundle; autocannon drives them from a worker thread, so load generation
 * does not share the servers' event loop. Rounds alternate baseline/endpoint (ABBA) to cancel drift.
 *
 *   npx tsx bench/endpoint.ts [--duration=SECONDS] [--rounds=N]
 *
 * Prints, per server, requests/s and p99 latency (autocannon) and, on Linux, the main thread's CPU time per
 * request, then the endpoint/baseline ratios. Requests/s swings with whatever else the machine runs; CPU
 * per request hardly does, so it is the check on a surprising requests/s ratio. Exits 1 only when a run
 * saw errors or non-2xx answers, because then the numbers measure something else.
 */
import { createServer } from "node:https";
import { createBundleEndpoint } from "../src/endpoint/server.js";
import { silentLogger } from "../src/logging.js";
import { loadTlsCredentials } from "../src/sources/tls-credentials.js";
import { createCa, createWebCert } from "../test/support/pki.js";
import { servedBundleOf } from "../test/support/served-bundle.js";
import { createWatchedValue } from "../test/support/watched.js";
import { compareServers, listen } from "./compare.js";

async function main(): Promise<void> {
  const [ca, authority, previousAuthority] = await Promise.all([
    createCa({ trustDomain: "bench.test", withSpiffeUri: false }),
    createCa({ trustDomain: "example.org" }),
    createCa({ trustDomain: "example.org" }),
  ]);
  const cert = await createWebCert({ issuer: ca, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  // Two authorities, as during a rotation: a realistic body size (a couple of KiB).
  const served = servedBundleOf([authority, previousAuthority], { refreshHintSeconds: 300, sequence: 42n });
  const credentials = loadTlsCredentials(cert.pem, cert.keyPem);

  // Content-Length given up front: without it writeHead commits to chunked encoding, and the baseline
  // would pay for framing the endpoint does not do.
  const baselineHeaders = ["Content-Type", "application/json", "Content-Length", String(served.bytes.length)];
  const baseline = createServer({ cert: cert.pem, key: cert.keyPem }, (_req, res) => {
    res.writeHead(200, baselineHeaders);
    res.end(served.bytes);
  });
  const baselinePort = await listen(baseline);

  let counted = 0;
  const endpoint = createBundleEndpoint({
    profile: "https_web",
    listen: { host: "127.0.0.1", port: 0 },
    path: "/",
    bundle: createWatchedValue(served),
    credentials: createWatchedValue(credentials),
    timeouts: { headersMs: 10_000, requestMs: 30_000, keepAliveMs: 5000 },
    logger: silentLogger(),
    // What the metrics hook will cost in the app, measured with the rest.
    onRequest: () => {
      counted++;
    },
  });
  const endpointPort = (await endpoint.start()).port;

  const { bad } = await compareServers(`bundle endpoint benchmark: ${served.bytes.length}-byte bundle`, [
    { name: "baseline", port: baselinePort },
    { name: "endpoint", port: endpointPort },
  ]);
  console.log(`target: ratio endpoint/baseline, req/s best of rounds >= 0.9; endpoint onRequest calls: ${counted}`);

  await endpoint.close();
  await new Promise<void>((resolve) => {
    baseline.closeAllConnections();
    baseline.close(() => resolve());
  });
  if (bad) process.exitCode = 1;
}

await main();
