/**
 * `bundlegate dev` (what `npm start` runs), in-process: it starts on free ports, prints where the bundle is
 * served, and the curl commands it prints work when run for real, verification included. It also runs a
 * demo partner (a second bundlegate) and federates with it: the relationship is fresh right away.
 */
import { execFile, spawnSync } from "node:child_process";
import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type DevOptions, dev } from "../../src/cli/commands/dev.js";
import type { CliIo } from "../../src/cli/io.js";
import { parseSpiffeBundle } from "../../src/spiffe/codec.js";
import { eventually } from "../support/eventually.js";

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

/** Every port 0: the test never collides with a running demo or another test. */
function devOptions(dir: string): DevOptions {
  return {
    dir,
    trustDomain: "dev.bundlegate.test",
    host: "127.0.0.1",
    webPort: 0,
    spiffePort: 0,
    internalPort: 0,
    partnerTrustDomain: "partner.dev.bundlegate.test",
    partnerPort: 0,
    // Logs go to the process's stderr; keep the test output to what matters.
    logLevel: "warn",
  };
}

interface DevRun {
  readonly io: CliIo;
  readonly output: { stdout: string; stderr: string };
  readonly exited: Promise<number>;
  exitCode(): number | undefined;
  shutdown(signal: string): void;
}

/**
 * Runs the dev command in-process, as `bundlegate dev` would (the command's function is called directly:
 * the CLI parser only maps flags onto these options), and waits for the printed instructions.
 */
async function startDev(options: DevOptions): Promise<DevRun> {
  const output = { stdout: "", stderr: "" };
  let requestShutdown: ((signal: string) => void) | undefined;
  let code: number | undefined;
  const io: CliIo = {
    stdout: (text) => {
      output.stdout += text;
    },
    stderr: (text) => {
      output.stderr += text;
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
  const exited = dev(options, io);
  void exited.then((value) => {
    code = value;
  });
  await eventually(
    () => {
      if (code !== undefined) throw new Error(`dev exited with ${code} before serving: ${output.stderr}`);
      return requestShutdown !== undefined && output.stdout.includes("Ctrl-C stops") ? true : undefined;
    },
    { what: "the printed instructions", timeoutMs: 20_000 },
  );
  return {
    io,
    output,
    exited,
    exitCode: () => code,
    shutdown: (signal) => requestShutdown?.(signal),
  };
}

/** Whether anything accepts TCP connections on 127.0.0.1:port. */
function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
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
  let demo: DevRun;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), "bundlegate-dev-"));
    demo = await startDev(devOptions(dir));
  });

  afterAll(async () => {
    if (demo && demo.exitCode() === undefined) {
      demo.shutdown("SIGTERM");
      await demo.exited;
    }
    await rm(dir, { recursive: true, force: true });
  });

  /** The printed instructions, read the way a user reads them. */
  function printed(stdout = demo.output.stdout) {
    const web = /https_web\s+https:\/\/localhost:(\d+)\/\n\s+(curl [^\n]+)/.exec(stdout);
    const spiffe = /https_spiffe\s+https:\/\/localhost:(\d+)\/\s+endpoint SPIFFE ID (\S+)\n\s+(curl [^\n]+)/.exec(
      stdout,
    );
    const readiness = /readiness\s+(curl http:\/\/[\d.]+:(\d+)\/readyz)/.exec(stdout);
    const metrics = /metrics\s+(curl http:\/\/[\d.]+:(\d+)\/metrics)/.exec(stdout);
    const inspect = /Inspect what is served: ([^\n]+)/.exec(stdout);
    const edit = /Edit (\S+) and the endpoints serve the change/.exec(stdout);
    const partner =
      /federates with a demo partner, [^\n]* trust domain (\S+) \(sequence (\d+)\)\n\n\s+partner\s+https:\/\/localhost:(\d+)\/\s+endpoint SPIFFE ID (\S+)\n\s+(curl [^\n]+)/.exec(
        stdout,
      );
    const relationship = /relationship\s+(\S+): ([^\n]+)\n\s+(first fetch: [^\n]+)/.exec(stdout);
    const fetches = /fetches\s+(curl [^\n]+)/.exec(stdout);
    if (!web || !spiffe || !readiness || !metrics || !inspect || !edit || !partner || !relationship || !fetches) {
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
      partnerTrustDomain: partner[1]!,
      partnerSequence: BigInt(partner[2]!),
      partnerPort: Number(partner[3]!),
      partnerEndpointSpiffeId: partner[4]!,
      partnerCurl: partner[5]!,
      relationshipTrustDomain: relationship[1]!,
      relationship: relationship[2]!,
      firstFetch: relationship[3]!,
      fetchesCommand: fetches[1]!,
    };
  }

  it("prints the ports it actually bound, never the :0 it was given", () => {
    const lines = printed();
    const stdout = demo.output.stdout;
    expect(stdout).toMatch(/serving the bundle of trust domain dev\.bundlegate\.test \(sequence 1\)/);
    expect(lines.endpointSpiffeId).toBe("spiffe://dev.bundlegate.test/bundlegate");
    const ports = [lines.webPort, lines.spiffePort, lines.internalPort, lines.partnerPort];
    for (const port of ports) {
      expect(port).toBeGreaterThan(0);
      expect(port).toBeLessThan(65_536);
    }
    expect(new Set(ports).size).toBe(4);
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
    const served = await eventually(
      async () => {
        const run = await sh(lines.webCurl);
        if (run.code !== 0) throw new Error(`${lines.webCurl} failed: ${run.stderr}`);
        const { bundle } = parseSpiffeBundle(run.stdout);
        return bundle.refreshHintSeconds === 60 ? bundle : undefined;
      },
      { what: "the edited bundle", timeoutMs: 20_000 },
    );
    expect(served.sequence).toBe(2n);
    const spiffe = await sh(lines.spiffeCurl);
    expect(parseSpiffeBundle(spiffe.stdout).bundle).toMatchObject({ sequence: 2n, refreshHintSeconds: 60 });
  });

  it("prints the demo partner and the relationship, fresh from the first fetch", () => {
    const lines = printed();
    expect(lines.partnerTrustDomain).toBe("partner.dev.bundlegate.test");
    expect(lines.partnerSequence).toBe(1n);
    expect(lines.partnerEndpointSpiffeId).toBe("spiffe://partner.dev.bundlegate.test/bundlegate");
    expect(lines.relationshipTrustDomain).toBe("partner.dev.bundlegate.test");
    expect(lines.relationship).toBe(
      `active, owner demo, https_spiffe, bootstrap bundle ${join(dir, "partner", "bundle.json")}`,
    );
    // The first fetch ran before the instructions were printed: accepted, and fresh.
    expect(lines.firstFetch).toBe("first fetch: accepted (sequence 1); fresh; polled every 15 s (refresh hint 60 s)");
    expect(lines.partnerCurl).toBe(
      `curl --cacert ${join(dir, "partner", "bundle.pem")} https://localhost:${lines.partnerPort}/`,
    );
  });

  it("runs the printed partner curl: the partner's own bundle, verified against its root", async (context) => {
    context.skip(CURL_MISSING, SKIP_CURL);
    const lines = printed();
    const run = await sh(lines.partnerCurl);
    expect(run.code, `${lines.partnerCurl}\n${run.stderr}`).toBe(0);
    const { bundle, warnings } = parseSpiffeBundle(run.stdout);
    expect(warnings).toEqual([]);
    expect(bundle.sequence).toBe(1n);
    expect(bundle.refreshHintSeconds).toBe(60);
    const partnerOnDisk = authoritiesOf(await readFile(join(dir, "partner", "bundle.json")));
    expect(authoritiesOf(run.stdout)).toEqual(partnerOnDisk);
    // A different trust domain: nothing in common with the demo gateway's own bundle.
    const own = authoritiesOf(await readFile(lines.bundleFile));
    expect(partnerOnDisk.x509.some((fingerprint) => own.x509.includes(fingerprint))).toBe(false);
  });

  it("runs the printed fetches command: the relationship's accepted fetch is in the metrics", async (context) => {
    context.skip(CURL_MISSING, SKIP_CURL);
    const lines = printed();
    const fetches = await sh(lines.fetchesCommand);
    expect(fetches.code, `${lines.fetchesCommand}\n${fetches.stderr}`).toBe(0);
    expect(fetches.stdout).toMatch(
      /^bundlegate_fetch_attempts_total\{trust_domain="partner\.dev\.bundlegate\.test",result="accepted"\} 1$/m,
    );
    expect(fetches.stdout).toMatch(
      /^bundlegate_bundle_decisions_total\{trust_domain="partner\.dev\.bundlegate\.test",decision="accept",[^}]*\} 1$/m,
    );
    // Only the partner's lines: every one names it.
    for (const line of fetches.stdout.trim().split("\n"))
      expect(line).toContain('trust_domain="partner.dev.bundlegate.test"');
  });

  it("stops both gateways with exit status 0 when asked to shut down", async () => {
    const lines = printed();
    expect(demo.exitCode()).toBeUndefined();
    expect(await accepts(lines.partnerPort)).toBe(true);
    demo.shutdown("SIGINT");
    expect(await demo.exited).toBe(0);
    expect(demo.output.stderr).toBe("");
    for (const port of [lines.webPort, lines.spiffePort, lines.internalPort, lines.partnerPort]) {
      expect(await accepts(port), `port ${port}`).toBe(false);
    }
  });

  it("federates afresh on the next run in the same folder, with the partner's new PKI", async (context) => {
    context.skip(CURL_MISSING, SKIP_CURL);
    // The earlier run stored the old partner's bundle; the new partner has all-new authorities, which the
    // gateway would hold as a full replacement and which would not verify the new SVID, unless forgotten.
    const second = await startDev(devOptions(dir));
    try {
      const lines = printed(second.output.stdout);
      expect(lines.partnerSequence).toBe(2n);
      expect(lines.firstFetch).toMatch(/^first fetch: accepted \(sequence 2\); fresh;/);
      const fetches = await sh(lines.fetchesCommand);
      expect(fetches.stdout).toMatch(/trust_domain="partner\.dev\.bundlegate\.test",result="accepted"\} 1$/m);
      expect(fetches.stdout).not.toMatch(/result="ERR_/);
    } finally {
      second.shutdown("SIGTERM");
      expect(await second.exited).toBe(0);
    }
    expect(second.output.stderr).toBe("");
  });
});
