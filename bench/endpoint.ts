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
import { execFileSync } from "node:child_process";
import { createHash, X509Certificate } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import autocannon from "autocannon";
import { createBundleEndpoint } from "../src/endpoint/server.js";
import { silentLogger } from "../src/logging.js";
import type { TlsCredentials } from "../src/sources/types.js";
import { createCa, createWebCert } from "../test/support/pki.js";
import { servedBundleOf } from "../test/support/served-bundle.js";
import { createWatchedValue } from "../test/support/watched.js";

const CONNECTIONS = 50;
const PIPELINING = 1;
const WARMUP_SECONDS = 3;

function flag(name: string, fallback: number): number {
  const prefix = `--${name}=`;
  const raw = process.argv.find((arg) => arg.startsWith(prefix));
  const value = raw === undefined ? fallback : Number(raw.slice(prefix.length));
  if (!Number.isFinite(value) || value <= 0) throw new Error(`--${name} must be a positive number`);
  return value;
}

// Five short rounds rather than two long ones: on a small machine shared with other work, a burst of
// foreign load can halve one long round; with more alternations, best-of-rounds finds a quiet window for both.
const durationSeconds = flag("duration", 4);
const rounds = Math.floor(flag("rounds", 5));

/** CPU time of the main thread (where both servers run) in ms, from /proc; undefined off Linux. */
const mainThreadCpuMs: () => number | undefined = (() => {
  const statFile = `/proc/self/task/${process.pid}/stat`;
  let ticksPerSecond = 100;
  try {
    readFileSync(statFile);
    ticksPerSecond = Number(execFileSync("getconf", ["CLK_TCK"], { encoding: "utf8" }).trim()) || 100;
  } catch {
    return () => undefined;
  }
  return () => {
    // Fields after "pid (comm) ": state is the first, utime the 12th, stime the 13th (proc(5)).
    const fields = readFileSync(statFile, "utf8").split(") ")[1]?.split(" ") ?? [];
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / ticksPerSecond;
  };
})();

interface Sample {
  requestsPerSecond: number;
  p99Ms: number;
  cpuMicrosPerRequest: number | undefined;
  bad: number;
}

async function load(port: number, duration: number): Promise<Sample> {
  const cpuBefore = mainThreadCpuMs();
  const result = await autocannon({
    url: `https://127.0.0.1:${port}/`,
    connections: CONNECTIONS,
    pipelining: PIPELINING,
    duration,
    workers: 1,
  });
  const cpuAfter = mainThreadCpuMs();
  return {
    requestsPerSecond: result.requests.average,
    p99Ms: result.latency.p99,
    cpuMicrosPerRequest:
      cpuBefore === undefined || cpuAfter === undefined || result.requests.total === 0
        ? undefined
        : ((cpuAfter - cpuBefore) * 1000) / result.requests.total,
    bad: result.errors + result.timeouts + result.non2xx,
  };
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

const fixed = (value: number | undefined, digits: number, width: number) =>
  (value === undefined ? "-" : value.toFixed(digits)).padStart(width);

async function main(): Promise<void> {
  const [ca, authority, previousAuthority] = await Promise.all([
    createCa({ trustDomain: "bench.test", withSpiffeUri: false }),
    createCa({ trustDomain: "example.org" }),
    createCa({ trustDomain: "example.org" }),
  ]);
  const cert = await createWebCert({ issuer: ca, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  // Two authorities, as during a rotation: a realistic body size (a couple of KiB).
  const served = servedBundleOf([authority, previousAuthority], { refreshHintSeconds: 300, sequence: 42n });
  const credentials: TlsCredentials = {
    certPem: cert.pem,
    keyPem: cert.keyPem,
    leaf: new X509Certificate(cert.der),
    fingerprint: createHash("sha256").update(cert.der).digest("hex"),
  };

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

  const targets = [
    { name: "baseline", port: baselinePort, samples: [] as Sample[] },
    { name: "endpoint", port: endpointPort, samples: [] as Sample[] },
  ] as const;

  console.log(
    `bundle endpoint benchmark: ${served.bytes.length}-byte bundle, ${CONNECTIONS} connections, ` +
      `pipelining ${PIPELINING}, ${rounds} x ${durationSeconds} s per server after ${WARMUP_SECONDS} s warm-up each`,
  );
  for (const target of targets) await load(target.port, WARMUP_SECONDS);

  console.log("");
  console.log(
    `${"round".padEnd(6)}${"server".padEnd(10)}${"req/s".padStart(10)}${"p99 ms".padStart(9)}${"cpu us/req".padStart(12)}`,
  );
  for (let round = 1; round <= rounds; round++) {
    // ABBA order, so neither server always runs right after the other.
    for (const target of round % 2 === 1 ? targets : [...targets].reverse()) {
      const sample = await load(target.port, durationSeconds);
      target.samples.push(sample);
      console.log(
        `${String(round).padEnd(6)}${target.name.padEnd(10)}${fixed(sample.requestsPerSecond, 0, 10)}` +
          `${fixed(sample.p99Ms, 0, 9)}${fixed(sample.cpuMicrosPerRequest, 2, 12)}` +
          `${sample.bad > 0 ? `  (${sample.bad} errors/non-2xx)` : ""}`,
      );
    }
  }

  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
  const cpuValues = (samples: Sample[]) =>
    samples.map((sample) => sample.cpuMicrosPerRequest).filter((value) => value !== undefined);
  const summary = targets.map((target) => {
    const cpu = cpuValues(target.samples);
    return {
      name: target.name,
      meanRequestsPerSecond: mean(target.samples.map((sample) => sample.requestsPerSecond)),
      bestRequestsPerSecond: Math.max(...target.samples.map((sample) => sample.requestsPerSecond)),
      meanP99Ms: mean(target.samples.map((sample) => sample.p99Ms)),
      bestCpuMicrosPerRequest: cpu.length > 0 ? Math.min(...cpu) : undefined,
      bad: target.samples.reduce((sum, sample) => sum + sample.bad, 0),
    };
  });
  const [base, real] = summary as [(typeof summary)[number], (typeof summary)[number]];

  console.log("");
  console.log(
    `${"server".padEnd(10)}${"mean req/s".padStart(12)}${"best req/s".padStart(12)}` +
      `${"mean p99 ms".padStart(13)}${"best cpu us/req".padStart(17)}`,
  );
  for (const row of summary) {
    console.log(
      `${row.name.padEnd(10)}${fixed(row.meanRequestsPerSecond, 0, 12)}${fixed(row.bestRequestsPerSecond, 0, 12)}` +
        `${fixed(row.meanP99Ms, 1, 13)}${fixed(row.bestCpuMicrosPerRequest, 2, 17)}`,
    );
  }
  console.log("");
  // Best of rounds is the headline: other load on the machine only ever slows a round down.
  const bestRatio = real.bestRequestsPerSecond / base.bestRequestsPerSecond;
  const meanRatio = real.meanRequestsPerSecond / base.meanRequestsPerSecond;
  console.log(`ratio endpoint/baseline, req/s best of rounds: ${bestRatio.toFixed(3)} (target >= 0.9)`);
  console.log(`ratio endpoint/baseline, req/s mean of rounds: ${meanRatio.toFixed(3)}`);
  if (base.bestCpuMicrosPerRequest !== undefined && real.bestCpuMicrosPerRequest !== undefined) {
    // Inverted so that, like the others, above 1 means the endpoint is the faster one.
    const cpuRatio = base.bestCpuMicrosPerRequest / real.bestCpuMicrosPerRequest;
    console.log(`ratio baseline/endpoint, cpu per request:      ${cpuRatio.toFixed(3)}`);
  }
  console.log(`endpoint onRequest calls: ${counted}`);

  await endpoint.close();
  await new Promise<void>((resolve) => {
    baseline.closeAllConnections();
    baseline.close(() => resolve());
  });
  if (base.bad > 0 || real.bad > 0) {
    console.log("errors or non-2xx answers during the runs: the numbers above are not comparable");
    process.exitCode = 1;
  }
}

await main();
