/**
 * `bundlegate dev` (what `npm start` runs), in-process: it starts on free ports, prints where the bundle is
 * served, and the curl commands it prints work when run for real, verification included.
 */
import { execFile, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { CliIo } from "../../src/cli/io.js";
import { runCli } from "../../src/cli/program.js";
import { parseSpiffeBundle } from "../../src/spiffe/codec.js";

const REPO_ROOT = fileURLToPath(new URL("../..", import.meta.url));
const CURL_MISSING = spawnSync("curl", ["--version"]).status !== 0;
const SKIP_CURL = "skipped: curl is not installed, so the printed curl commands cannot be run";

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a printed command line exactly as a user would paste it into a shell. */
function sh(command: string, timeoutMs = 20_000): Promise<Run> {
  return new Promise((resolve) => {
    execFile("sh", ["-c", command], { cwd: REPO_ROOT, timeout: timeoutMs }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === "number" ? error.code : null) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function until<T>(what: string, probe: () => T | undefined | Promise<T | undefined>, timeoutMs = 20_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

function authoritiesOf(bundleBytes: string | Buffer) {
  const { bundle } = parseSpiffeBundle(bundleBytes);
  return {
    x509: bundle.x509Authorities.map((authority) => authority.fingerprint),
    jwt: [...bundle.jwtAuthorities.keys()],
  };
}

describe("bundlegate dev", () => {
  let dir: string;
  let stdout = "";
  let stderr = "";
  let requestShutdown: ((signal: string) => void) | undefined;
  let exited: Promise<number>;
  let exitCode: number | undefined;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "bundlegate-dev-"));
    const io: CliIo = {
      stdout: (text) => {
        stdout += text;
      },
      stderr: (text) => {
        stderr += text;
      },
      readFile: (path) => readFile(path),
      readStdin: async () => new Uint8Array(),
      now: () => new Date(),
      env: {},
      waitForShutdown: () =>
        new Promise((resolve) => {
          requestShutdown = resolve;
        }),
    };
    exited = runCli(
      [
        "dev",
        "--dir",
        dir,
        "--web-port",
        "0",
        "--spiffe-port",
        "0",
        "--internal-port",
        "0",
        // Logs go to the process's stderr; keep the test output to what matters.
        "--log-level",
        "warn",
      ],
      io,
    );
    void exited.then((code) => {
      exitCode = code;
    });
    await until("the printed instructions", () => {
      if (exitCode !== undefined) throw new Error(`dev exited with ${exitCode} before serving: ${stderr}`);
      return requestShutdown !== undefined && stdout.includes("Ctrl-C stops.") ? true : undefined;
    });
  });

  afterAll(async () => {
    if (exitCode === undefined) {
      requestShutdown?.("SIGTERM");
      await exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  /** The printed instructions, read the way a user reads them. */
  function printed() {
    const web = /https_web\s+https:\/\/localhost:(\d+)\/\n\s+(curl [^\n]+)/.exec(stdout);
    const spiffe = /https_spiffe\s+https:\/\/localhost:(\d+)\/\s+endpoint SPIFFE ID (\S+)\n\s+(curl [^\n]+)/.exec(
      stdout,
    );
    const readiness = /readiness\s+(curl http:\/\/[\d.]+:(\d+)\/readyz)/.exec(stdout);
    const metrics = /metrics\s+(curl http:\/\/[\d.]+:(\d+)\/metrics)/.exec(stdout);
    const inspect = /Inspect what is served: ([^\n]+)/.exec(stdout);
    const edit = /Edit (\S+) and the endpoints serve the change/.exec(stdout);
    if (!web || !spiffe || !readiness || !metrics || !inspect || !edit) {
      throw new Error(`unexpected instructions:\n${stdout}`);
    }
    return {
      webPort: Number(web[1]),
      webCurl: web[2]!,
      spiffePort: Number(spiffe[1]),
      endpointSpiffeId: spiffe[2]!,
      spiffeCurl: spiffe[3]!,
      readinessCurl: readiness[1]!,
      internalPort: Number(readiness[2]),
      metricsCurl: metrics[1]!,
      inspect: inspect[1]!,
      bundleFile: edit[1]!,
    };
  }

  it("prints the ports it actually bound, never the :0 it was given", () => {
    const lines = printed();
    expect(stdout).toMatch(/serving the bundle of trust domain dev\.bundlegate\.test \(sequence 1\)/);
    expect(lines.endpointSpiffeId).toBe("spiffe://dev.bundlegate.test/bundlegate");
    for (const port of [lines.webPort, lines.spiffePort, lines.internalPort]) {
      expect(port).toBeGreaterThan(0);
      expect(port).toBeLessThan(65_536);
    }
    expect(new Set([lines.webPort, lines.spiffePort, lines.internalPort]).size).toBe(3);
    expect(stdout).not.toMatch(/:0\//);
    expect(lines.bundleFile).toBe(join(dir, "bundle.json"));
  });

  it("runs the printed curl commands: both profiles verify and serve the bundle", async (context) => {
    context.skip(CURL_MISSING, SKIP_CURL);
    const lines = printed();
    const onDisk = authoritiesOf(await readFile(lines.bundleFile));
    for (const command of [lines.webCurl, lines.spiffeCurl]) {
      // Exactly what was printed: --cacert and nothing that weakens verification.
      expect(command).toMatch(/^curl --cacert \S+ https:\/\/localhost:\d+\/$/);
      const run = await sh(command);
      expect(run.code, `${command}\n${run.stderr}`).toBe(0);
      const { bundle, warnings } = parseSpiffeBundle(run.stdout);
      expect(warnings).toEqual([]);
      expect(bundle.sequence).toBe(1n);
      expect(bundle.refreshHintSeconds).toBe(300);
      expect(authoritiesOf(run.stdout)).toEqual(onDisk);
    }
    expect(onDisk.x509).toHaveLength(1);
    expect(onDisk.jwt).toHaveLength(1);
  });

  it("runs the printed readiness and metrics commands", async (context) => {
    context.skip(CURL_MISSING, SKIP_CURL);
    const lines = printed();
    const ready = await sh(lines.readinessCurl);
    expect(ready.code, ready.stderr).toBe(0);
    expect(JSON.parse(ready.stdout)).toEqual({
      status: "ready",
      checks: [
        { name: "store", ok: true },
        { name: "sync", ok: true },
      ],
    });
    const metrics = await sh(lines.metricsCurl);
    expect(metrics.code, metrics.stderr).toBe(0);
    expect(metrics.stdout).toMatch(/^bundlegate_local_bundle_sequence 1$/m);
  });

  it("runs the printed inspect pipeline", async (context) => {
    context.skip(CURL_MISSING, SKIP_CURL);
    const lines = printed();
    const run = await sh(lines.inspect, 60_000);
    expect(run.code, `${lines.inspect}\n${run.stderr}`).toBe(0);
    expect(run.stdout).toMatch(/^bundle:\s+accepted, usable$/m);
    expect(run.stdout).toMatch(/^sequence:\s+1$/m);
  });

  it("serves an edit of the printed bundle file with the next sequence", async (context) => {
    context.skip(CURL_MISSING, SKIP_CURL);
    const lines = printed();
    const document = JSON.parse(await readFile(lines.bundleFile, "utf8")) as Record<string, unknown>;
    // An editor's change: the same keys, a refresh hint added, written in place.
    await writeFile(lines.bundleFile, `${JSON.stringify({ ...document, spiffe_refresh_hint: 60 }, null, 2)}\n`);
    const served = await until("the edited bundle", async () => {
      const run = await sh(lines.webCurl);
      if (run.code !== 0) throw new Error(`${lines.webCurl} failed: ${run.stderr}`);
      const { bundle } = parseSpiffeBundle(run.stdout);
      return bundle.refreshHintSeconds === 60 ? bundle : undefined;
    });
    expect(served.sequence).toBe(2n);
    const spiffe = await sh(lines.spiffeCurl);
    expect(parseSpiffeBundle(spiffe.stdout).bundle).toMatchObject({ sequence: 2n, refreshHintSeconds: 60 });
  });

  it("stops with exit status 0 when asked to shut down", async () => {
    expect(exitCode).toBeUndefined();
    requestShutdown?.("SIGINT");
    expect(await exited).toBe(0);
    expect(stderr).toBe("");
  });
});
