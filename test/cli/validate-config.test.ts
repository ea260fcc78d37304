import { mkdtemp, readFile, rm, writeFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { validateConfig } from "../../src/cli/commands/validate-config.js";
import { type CliIo, EXIT_OK, EXIT_REJECTED, EXIT_USAGE } from "../../src/cli/io.js";
import type { ConfigEnv } from "../../src/config/load.js";

const EXAMPLE = fileURLToPath(new URL("../../config/bundlegate.example.yaml", import.meta.url));

const WEB_ONLY = `
trust_domain: example.org
local_bundle: { file: bundle.json }
endpoint:
  https_web: { listen: { port: 9443 }, cert_file: web.crt, key_file: web.key }
`;

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

async function run(file: string, options: { json?: boolean; env?: ConfigEnv } = {}): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    readFile: (p) => readFile(p),
    readStdin: async () => new Uint8Array(),
    now: () => new Date("2025-01-01T00:00:00Z"),
    // validate-config takes its environment as a parameter; this one must not be consulted.
    env: { BUNDLEGATE_TRUST_DOMAIN: "io-env-must-not-be-read" },
    waitForShutdown: () => new Promise<string>(() => {}),
  };
  const code = await validateConfig(file, { json: options.json ?? false }, io, options.env ?? {});
  return { code, stdout, stderr };
}

describe("bundlegate validate-config", () => {
  let dir: string;
  const write = async (name: string, text: string): Promise<string> => {
    const file = path.join(dir, name);
    await writeFile(file, text);
    return file;
  };

  beforeAll(async () => {
    dir = await mkdtemp(path.join(os.tmpdir(), "bundlegate-validate-"));
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it("accepts the example config and summarises it", async () => {
    const { code, stdout, stderr } = await run(EXAMPLE);
    expect(code).toBe(EXIT_OK);
    expect(stderr).toBe("");
    const lines = stdout.trimEnd().split("\n");
    expect(lines[0]).toBe(`config OK: ${EXAMPLE}`);
    expect(stdout).toMatch(/trust domain\s+example\.org/);
    expect(stdout).toMatch(/https_web\s+0\.0\.0\.0:8443\//);
    expect(stdout).toMatch(/https_spiffe\s+0\.0\.0\.0:8444\/ as spiffe:\/\/example\.org\/bundlegate/);
    expect(stdout).toMatch(/internal\s+127\.0\.0\.1:8080/);
    expect(stdout).toMatch(/store\s+embedded/);
  });

  it("shows only the enabled profiles", async () => {
    const { code, stdout } = await run(await write("web.yaml", WEB_ONLY));
    expect(code).toBe(EXIT_OK);
    expect(stdout).toMatch(/https_web\s+0\.0\.0\.0:9443\//);
    expect(stdout).not.toContain("https_spiffe");
  });

  it("applies the environment it is given", async () => {
    const env = {
      BUNDLEGATE_ENDPOINT__HTTPS_WEB__LISTEN__PORT: "10443",
      BUNDLEGATE_STORE__KIND: "redis",
      BUNDLEGATE_STORE__URL: "redis://admin:hunter2@redis:6379",
    };
    const { code, stdout } = await run(await write("env.yaml", WEB_ONLY), { env });
    expect(code).toBe(EXIT_OK);
    expect(stdout).toMatch(/https_web\s+0\.0\.0\.0:10443\//);
    expect(stdout).toMatch(/store\s+redis redis:\/\/redis:6379/);
    expect(stdout).not.toContain("hunter2");
  });

  it("prints a JSON summary with --json", async () => {
    const { code, stdout } = await run(EXAMPLE, { json: true });
    expect(code).toBe(EXIT_OK);
    expect(JSON.parse(stdout)).toEqual({
      ok: true,
      file: EXAMPLE,
      trustDomain: "example.org",
      endpointPath: "/",
      profiles: [
        { profile: "https_web", listen: "0.0.0.0:8443" },
        { profile: "https_spiffe", listen: "0.0.0.0:8444" },
      ],
      endpointSpiffeId: "spiffe://example.org/bundlegate",
      internal: "127.0.0.1:8080",
      store: { kind: "embedded" },
    });
  });

  it("exits 1 and lists every issue of an invalid config", async () => {
    const text = WEB_ONLY.replace("example.org", "Example.org").replace("port: 9443", "port: 99999");
    const file = await write("invalid.yaml", `${text}colour: blue\n`);
    const { code, stdout, stderr } = await run(file, { env: { BUNDLEGATE_LOG_LEVEL: "loud" } });
    expect(code).toBe(EXIT_REJECTED);
    expect(stdout).toBe("");
    expect(stderr.startsWith("ERR_CONFIG_INVALID: ")).toBe(true);
    const lines = stderr.trimEnd().split("\n");
    for (const start of ["trust_domain: ", "endpoint.https_web.listen.port: ", "colour: ", "BUNDLEGATE_LOG_LEVEL "]) {
      expect(
        lines.some((line) => line.startsWith(start)),
        start,
      ).toBe(true);
    }
  });

  it("prints the issues as JSON with --json", async () => {
    const file = await write("invalid-json.yaml", WEB_ONLY.replace("cert_file: web.crt, ", ""));
    const { code, stdout } = await run(file, { json: true });
    expect(code).toBe(EXIT_REJECTED);
    const output = JSON.parse(stdout);
    expect(output).toMatchObject({ ok: false, file, code: "ERR_CONFIG_INVALID" });
    expect(output.issues).toContainEqual(expect.objectContaining({ path: "endpoint.https_web.cert_file" }));
  });

  it("exits 1 on a YAML error, with its position", async () => {
    const file = await write("dup.yaml", `${WEB_ONLY}trust_domain: other.org\n`);
    const { code, stderr } = await run(file);
    expect(code).toBe(EXIT_REJECTED);
    expect(stderr.startsWith(`ERR_CONFIG_YAML: ${file}:6:1: `)).toBe(true);
  });

  it("exits 2 when the file cannot be read", async () => {
    const file = path.join(dir, "missing.yaml");
    const { code, stdout, stderr } = await run(file);
    expect(code).toBe(EXIT_USAGE);
    expect(stdout).toBe("");
    expect(stderr).toMatch(/^ERR_CONFIG_UNREADABLE: .*ENOENT/);
  });

  it("exits 2 with a JSON failure when the file cannot be read and --json is given", async () => {
    const { code, stdout } = await run(path.join(dir, "missing.yaml"), { json: true });
    expect(code).toBe(EXIT_USAGE);
    expect(JSON.parse(stdout)).toMatchObject({ ok: false, code: "ERR_CONFIG_UNREADABLE" });
  });
});
