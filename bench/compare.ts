/**
 * Compares HTTPS servers under the same load in one process run: autocannon from a worker thread, the
 * same settings for each, a warm-up each, then rounds in ABBA order (so neither always runs right after the
 * other), then requests/s, p99 latency and, on Linux, the main thread's CPU time per request, with the
 * ratios of each candidate to the first server (the baseline). Used by bench/endpoint.ts and
 * bench/distribution.ts.
 */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import type { Server } from "node:https";
import type { AddressInfo } from "node:net";
import autocannon from "autocannon";
import { numberFlag } from "./flags.js";

const CONNECTIONS = 50;
const PIPELINING = 1;
const WARMUP_SECONDS = 3;

// Five short rounds rather than two long ones: on a small machine shared with other work, a burst of
// foreign load can halve one long round; with more alternations, best-of-rounds finds a quiet window for both.
const durationSeconds = numberFlag("duration", 4, { above: 0 });
const rounds = Math.floor(numberFlag("rounds", 5, { above: 0 }));

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

export interface Target {
  readonly name: string;
  readonly port: number;
  readonly path?: string;
  readonly headers?: Record<string, string>;
}

interface Sample {
  requestsPerSecond: number;
  p99Ms: number;
  cpuMicrosPerRequest: number | undefined;
  bad: number;
}

async function load(target: Target, duration: number): Promise<Sample> {
  const cpuBefore = mainThreadCpuMs();
  const result = await autocannon({
    url: `https://127.0.0.1:${target.port}${target.path ?? "/"}`,
    ...(target.headers ? { headers: target.headers } : {}),
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

export function listen(server: Server): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve((server.address() as AddressInfo).port));
  });
}

export const fixed = (value: number | undefined, digits: number, width: number) =>
  (value === undefined ? "-" : value.toFixed(digits)).padStart(width);

/** Runs the comparison and prints it; returns whether any run saw errors or non-2xx answers. */
export async function compareServers(title: string, servers: readonly Target[]): Promise<{ bad: boolean }> {
  const targets = servers.map((target) => ({ ...target, samples: [] as Sample[] }));
  console.log(
    `${title}: ${CONNECTIONS} connections, pipelining ${PIPELINING}, ${rounds} x ${durationSeconds} s per server after ${WARMUP_SECONDS} s warm-up each`,
  );
  for (const target of targets) await load(target, WARMUP_SECONDS);

  console.log("");
  console.log(
    `${"round".padEnd(6)}${"server".padEnd(14)}${"req/s".padStart(10)}${"p99 ms".padStart(9)}${"cpu us/req".padStart(12)}`,
  );
  for (let round = 1; round <= rounds; round++) {
    for (const target of round % 2 === 1 ? targets : [...targets].reverse()) {
      const sample = await load(target, durationSeconds);
      target.samples.push(sample);
      console.log(
        `${String(round).padEnd(6)}${target.name.padEnd(14)}${fixed(sample.requestsPerSecond, 0, 10)}` +
          `${fixed(sample.p99Ms, 0, 9)}${fixed(sample.cpuMicrosPerRequest, 2, 12)}` +
          `${sample.bad > 0 ? `  (${sample.bad} errors/non-2xx)` : ""}`,
      );
    }
  }

  const mean = (values: number[]) => values.reduce((sum, value) => sum + value, 0) / values.length;
  const summary = targets.map((target) => {
    const cpu = target.samples.map((sample) => sample.cpuMicrosPerRequest).filter((value) => value !== undefined);
    return {
      name: target.name,
      meanRequestsPerSecond: mean(target.samples.map((sample) => sample.requestsPerSecond)),
      bestRequestsPerSecond: Math.max(...target.samples.map((sample) => sample.requestsPerSecond)),
      meanP99Ms: mean(target.samples.map((sample) => sample.p99Ms)),
      bestCpuMicrosPerRequest: cpu.length > 0 ? Math.min(...cpu) : undefined,
      bad: target.samples.reduce((sum, sample) => sum + sample.bad, 0),
    };
  });

  console.log("");
  console.log(
    `${"server".padEnd(14)}${"mean req/s".padStart(12)}${"best req/s".padStart(12)}` +
      `${"mean p99 ms".padStart(13)}${"best cpu us/req".padStart(17)}`,
  );
  for (const row of summary) {
    console.log(
      `${row.name.padEnd(14)}${fixed(row.meanRequestsPerSecond, 0, 12)}${fixed(row.bestRequestsPerSecond, 0, 12)}` +
        `${fixed(row.meanP99Ms, 1, 13)}${fixed(row.bestCpuMicrosPerRequest, 2, 17)}`,
    );
  }
  const [base, ...candidates] = summary;
  for (const real of candidates) {
    if (!base) break;
    console.log("");
    // Best of rounds is the headline: other load on the machine only ever slows a round down.
    console.log(
      `ratio ${real.name}/${base.name}, req/s best of rounds: ${(real.bestRequestsPerSecond / base.bestRequestsPerSecond).toFixed(3)}`,
    );
    console.log(
      `ratio ${real.name}/${base.name}, req/s mean of rounds: ${(real.meanRequestsPerSecond / base.meanRequestsPerSecond).toFixed(3)}`,
    );
    if (base.bestCpuMicrosPerRequest !== undefined && real.bestCpuMicrosPerRequest !== undefined) {
      // Inverted so that, like the others, above 1 means the candidate is the cheaper one.
      console.log(
        `ratio ${base.name}/${real.name}, cpu per request: ${(base.bestCpuMicrosPerRequest / real.bestCpuMicrosPerRequest).toFixed(3)}`,
      );
    }
  }
  const bad = summary.some((row) => row.bad > 0);
  if (bad) console.log("errors or non-2xx answers during the runs: the numbers above are not comparable");
  return { bad };
}
