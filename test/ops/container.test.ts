/**
 * The container image and the compose deployment, checked without a Docker engine: the Dockerfile with
 * dockerfile-utils and our own rules, docker-compose.yml as YAML against the repository (every mounted
 * file exists, ports, health checks, Redis settings), Prometheus' config with promtool, and the gateway
 * configs in deploy/compose with the real config loader, against a PKI written by the compose init script.
 */
import { spawnSync } from "node:child_process";
import { X509Certificate } from "node:crypto";
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import os from "node:os";
import path from "node:path";
import { validate } from "dockerfile-utils";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { LOCAL_TRUST_DOMAIN, PARTNER_TRUST_DOMAIN, writeComposePki } from "../../deploy/compose/init-pki.mjs";
import { loadConfigFile } from "../../src/config/load.js";
import { CONFIG_DEFAULTS } from "../../src/config/schema.js";
import type { BundlegateConfig } from "../../src/config/types.js";
import { createDevPki } from "../../src/sources/dev-pki.js";
import { createCa, createWebCert } from "../../src/sources/x509-issuer.js";
import { serializeSpiffeBundle } from "../../src/spiffe/codec.js";
import { runCapturing } from "../cli/support/run-cli.js";
import { needsPromtool, PROMTOOL, ROOT, RULES_FILE } from "./prometheus-tools.js";

const repoFile = (...parts: string[]): string => path.join(ROOT, ...parts);

// ---------------------------------------------------------------------------------------------------------
// Dockerfile

interface Instruction {
  readonly keyword: string;
  readonly args: string;
  readonly line: number;
}

/** Instructions with continuation lines joined and comments dropped (parser directives included). */
function instructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = "";
  let start = 0;
  text.split("\n").forEach((raw, index) => {
    const line = raw.trim();
    if (pending === "" && (line === "" || line.startsWith("#"))) return;
    if (line.startsWith("#")) return;
    if (pending === "") start = index + 1;
    if (line.endsWith("\\")) {
      pending += `${line.slice(0, -1)} `;
      return;
    }
    const full = (pending + line).trim();
    pending = "";
    const [keyword = "", ...rest] = full.split(/\s+/);
    out.push({ keyword: keyword.toUpperCase(), args: rest.join(" "), line: start });
  });
  return out;
}

interface Stage {
  readonly image: string;
  readonly name: string | undefined;
  readonly instructions: readonly Instruction[];
}

function stages(all: readonly Instruction[]): Stage[] {
  const out: { image: string; name: string | undefined; instructions: Instruction[] }[] = [];
  for (const instruction of all) {
    if (instruction.keyword === "FROM") {
      const words = instruction.args.split(/\s+/).filter((w) => !w.startsWith("--"));
      const as = words.findIndex((w) => w.toUpperCase() === "AS");
      out.push({ image: words[0] ?? "", name: as >= 0 ? words[as + 1] : undefined, instructions: [] });
    } else {
      out.at(-1)?.instructions.push(instruction);
    }
  }
  return out;
}

function jsonForm(instruction: Instruction | undefined): string[] | undefined {
  if (instruction === undefined) return undefined;
  try {
    const value: unknown = JSON.parse(instruction.args);
    return Array.isArray(value) && value.every((v) => typeof v === "string") ? (value as string[]) : undefined;
  } catch {
    return undefined;
  }
}

/** The Node.js base image rule: an LTS line (even major, 24 or later) pinned to its major, on Debian slim. */
function nodeBaseProblem(image: string): string | undefined {
  const m = /^node:(\d+)-(bookworm|trixie)-slim$/.exec(image);
  if (m === null) return `${image}: use node:<LTS major>-<bookworm|trixie>-slim`;
  const major = Number(m[1]);
  if (major % 2 !== 0) return `${image}: odd Node.js majors never become LTS`;
  if (major < 24) return `${image}: Node.js ${major} is past or near its end of life`;
  return undefined;
}

function imageTagProblem(image: string): string | undefined {
  if (image.includes("@sha256:")) return undefined;
  const tag = /:([^/:]+)$/.exec(image)?.[1];
  if (tag === undefined) return `${image}: no tag (that is :latest)`;
  if (tag === "latest") return `${image}: the :latest tag moves`;
  return undefined;
}

const dockerfileText = readFileSync(repoFile("Dockerfile"), "utf8");
const dockerfile = instructions(dockerfileText);
const dockerStages = stages(dockerfile);
const finalStage = dockerStages.at(-1);
const last = (keyword: string): Instruction | undefined =>
  finalStage?.instructions.filter((i) => i.keyword === keyword).at(-1);

describe("Dockerfile", () => {
  it("has no problem dockerfile-utils reports", () => {
    const problems = validate(dockerfileText).map((d) => `line ${d.range.start.line + 1}: ${d.message}`);
    expect(problems).toEqual([]);
  });

  it("builds in one stage and runs from another, which copies only the build output", () => {
    expect(dockerStages.length).toBeGreaterThanOrEqual(2);
    const build = dockerStages[0];
    expect(build?.name).toBeDefined();
    expect(build?.instructions.some((i) => i.keyword === "RUN" && /\bnpm run build\b/.test(i.args))).toBe(true);
    const copies = finalStage?.instructions.filter((i) => i.keyword === "COPY" && i.args.includes("--from=")) ?? [];
    expect(copies.map((i) => i.args)).toEqual([`--from=${build?.name} /src/dist/ dist/`]);
  });

  it("runs on a Node.js LTS base pinned to its major, never a moving tag", () => {
    for (const stage of dockerStages) {
      expect(imageTagProblem(stage.image)).toBeUndefined();
      expect(nodeBaseProblem(stage.image)).toBeUndefined();
    }
    // What is built is what runs: one Node.js line for both stages.
    expect(new Set(dockerStages.map((s) => s.image)).size).toBe(1);
  });

  it("installs with npm ci from the lockfile, and only production dependencies in the image", () => {
    const runs = dockerfile.filter((i) => i.keyword === "RUN" && /\bnpm\b/.test(i.args));
    for (const run of runs) expect(run.args, `line ${run.line}`).not.toMatch(/\bnpm (install|i|add)\b/);
    expect(runs.some((r) => /\bnpm ci\b/.test(r.args))).toBe(true);
    const finalRuns = finalStage?.instructions.filter((i) => i.keyword === "RUN").map((i) => i.args) ?? [];
    expect(finalRuns.some((args) => /\bnpm ci\b.*--omit=dev/.test(args))).toBe(true);
  });

  it("runs as a non-root user", () => {
    const user = last("USER")?.args;
    expect(user).toBeDefined();
    expect(user?.split(":")[0]).not.toMatch(/^(root|0)$/);
    // Nothing after USER may switch back.
    const afterUser = finalStage?.instructions.slice(finalStage.instructions.indexOf(last("USER") as Instruction));
    expect(afterUser?.filter((i) => i.keyword === "USER")).toHaveLength(1);
  });

  it("checks its health with node against /healthz on the internal listener's default address", () => {
    const healthcheck = last("HEALTHCHECK");
    expect(healthcheck?.args).toMatch(/\bCMD \["node", "-e", /);
    const url = /ENV HEALTHCHECK_URL=(\S+)/.exec(dockerfileText)?.[1];
    const { host, port } = CONFIG_DEFAULTS.internal.listen;
    expect(url).toBe(`http://${host}:${port}/healthz`);
  });

  it("starts `serve` with the config at /etc/bundlegate, with flags the CLI has", async () => {
    expect(jsonForm(last("ENTRYPOINT"))).toEqual(["node", "dist/cli/main.js"]);
    // tsconfig.build.json compiles src/ to dist/: the entry point's source must exist.
    expect(existsSync(repoFile("src", "cli", "main.ts"))).toBe(true);
    const cmd = jsonForm(last("CMD"));
    expect(cmd).toEqual(["serve", "--config", "/etc/bundlegate/bundlegate.yaml"]);
    const help = await runCapturing(["serve", "--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain(cmd?.[1]);
  });

  it("exposes the default port of every listener", () => {
    const exposed = new Set(
      dockerfile.filter((i) => i.keyword === "EXPOSE").flatMap((i) => i.args.split(/\s+/).map((p) => Number(p))),
    );
    const D = CONFIG_DEFAULTS;
    for (const listen of [
      D.endpoint.https_web.listen,
      D.endpoint.https_spiffe.listen,
      D.relay.listen,
      D.internal.listen,
      D.metrics.listen,
    ]) {
      expect(exposed.has(listen.port), String(listen.port)).toBe(true);
    }
  });

  it("sends the build only what it copies (.dockerignore)", () => {
    const allowed = readFileSync(repoFile(".dockerignore"), "utf8")
      .split("\n")
      .map((l) => l.trim())
      .filter((l) => l.startsWith("!"))
      .map((l) => l.slice(1).replace(/\/$/, ""));
    const sources = dockerfile
      .filter((i) => i.keyword === "COPY" && !i.args.includes("--from="))
      .flatMap((i) => i.args.split(/\s+/).slice(0, -1));
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      const clean = source.replace(/\/$/, "");
      expect(existsSync(repoFile(clean)), source).toBe(true);
      expect(
        allowed.some((a) => clean === a || clean.startsWith(`${a}/`)),
        `${source} is excluded by .dockerignore`,
      ).toBe(true);
    }
  });

  it("rules catch what they are meant to", () => {
    expect(nodeBaseProblem("node:26-trixie-slim")).toBeUndefined();
    expect(nodeBaseProblem("node:25-trixie-slim")).toMatch(/odd/);
    expect(nodeBaseProblem("node:22-bookworm-slim")).toMatch(/end of life/);
    expect(nodeBaseProblem("node:lts-slim")).toMatch(/use node:/);
    expect(imageTagProblem("redis")).toMatch(/no tag/);
    expect(imageTagProblem("grafana/grafana:latest")).toMatch(/moves/);
    expect(imageTagProblem("localhost:5000/bundlegate")).toMatch(/no tag/);
    expect(instructions("FROM a AS b\nRUN x \\\n  && y\n# c\nUSER 1")).toEqual([
      { keyword: "FROM", args: "a AS b", line: 1 },
      { keyword: "RUN", args: "x && y", line: 2 },
      { keyword: "USER", args: "1", line: 5 },
    ]);
  });
});

// ---------------------------------------------------------------------------------------------------------
// docker-compose.yml

interface Service {
  readonly image?: string;
  readonly build?: unknown;
  readonly command?: string[];
  readonly user?: string;
  readonly read_only?: boolean;
  readonly tmpfs?: string[];
  readonly volumes?: string[];
  readonly ports?: string[];
  readonly healthcheck?: { readonly test?: unknown; readonly disable?: boolean };
  readonly depends_on?: Record<string, { readonly condition?: string }> | string[];
  readonly restart?: string;
  readonly environment?: Record<string, string>;
  readonly networks?: string[];
}

const compose = parse(readFileSync(repoFile("docker-compose.yml"), "utf8"), { merge: true }) as {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  networks?: Record<string, { ipam?: { config?: { subnet?: string }[] } }>;
};
const services = Object.entries(compose.services);
const GATEWAY_IMAGE = "bundlegate:compose";
/** The services that run the gateway (`serve`), not the one-off PKI job. */
const gateways = services.filter(([, s]) => s.image === GATEWAY_IMAGE && s.command?.[0] === "serve");

interface Mount {
  readonly source: string;
  readonly target: string;
  readonly readOnly: boolean;
  readonly bind: boolean;
}

function mounts(service: Service): Mount[] {
  return (service.volumes ?? []).map((spec) => {
    const [source = "", target = "", mode] = spec.split(":");
    return { source, target, readOnly: mode === "ro", bind: source.startsWith(".") || source.startsWith("/") };
  });
}

/** The host path behind `containerPath` through the service's bind mounts, if any. */
function hostPath(service: Service, containerPath: string): string | undefined {
  const mount = mounts(service)
    .filter((m) => m.bind && (containerPath === m.target || containerPath.startsWith(`${m.target}/`)))
    .sort((a, b) => b.target.length - a.target.length)[0];
  return mount === undefined ? undefined : repoFile(mount.source, containerPath.slice(mount.target.length));
}

function configPathOf(service: Service): string | undefined {
  const command = service.command ?? [];
  const i = command.findIndex((arg) => arg === "--config" || arg === "-c");
  return i >= 0 ? command[i + 1] : undefined;
}

describe("docker-compose.yml", () => {
  it("gives every service an image or a build, never a moving tag", () => {
    for (const [name, service] of services) {
      expect(service.image !== undefined || service.build !== undefined, name).toBe(true);
      if (service.image !== undefined) expect(imageTagProblem(service.image), name).toBeUndefined();
    }
  });

  it("mounts only files and folders that exist in the repository, and named volumes it declares", () => {
    for (const [name, service] of services) {
      for (const mount of mounts(service)) {
        if (mount.bind) {
          expect(existsSync(repoFile(mount.source)), `${name}: ${mount.source}`).toBe(true);
        } else {
          expect(Object.keys(compose.volumes ?? {}), `${name}: volume ${mount.source}`).toContain(mount.source);
        }
      }
    }
  });

  it("publishes each host port once, on the host's loopback only", () => {
    const published = services.flatMap(([, s]) => s.ports ?? []);
    expect(published.length).toBeGreaterThan(0);
    for (const port of published) expect(port).toMatch(/^127\.0\.0\.1:\d+:\d+$/);
    const hostPorts = published.map((p) => p.split(":")[1]);
    expect(new Set(hostPorts).size).toBe(hostPorts.length);
  });

  it("health-checks every long-running service and waits on health, not on start", () => {
    for (const [name, service] of services) {
      expect(service.healthcheck, name).toBeDefined();
      if (service.restart !== "no") expect(service.healthcheck?.test, name).toBeDefined();
      const deps = service.depends_on ?? {};
      expect(Array.isArray(deps), `${name}: depends_on needs conditions`).toBe(false);
      for (const [dep, { condition }] of Object.entries(deps as Record<string, { condition?: string }>)) {
        const target = compose.services[dep];
        expect(target, `${name} depends on ${dep}`).toBeDefined();
        const expected = target?.restart === "no" ? "service_completed_successfully" : "service_healthy";
        expect(condition, `${name} -> ${dep}`).toBe(expected);
      }
    }
  });

  it("runs Redis so it never evicts bundlegate's keys and keeps them across restarts", () => {
    const command = (compose.services.redis?.command ?? []).join(" ");
    expect(command).toMatch(/--maxmemory-policy noeviction\b/);
    expect(command).toMatch(/--appendonly yes\b/);
  });

  it("runs at least two gateway replicas on one Redis, read-only, as the image's user", async () => {
    const redisReplicas = [];
    for (const [name, service] of gateways) {
      expect(service.read_only, name).toBe(true);
      expect(service.tmpfs, name).toContain("/tmp");
      expect(service.user, name).toBeUndefined();
      // Nothing a gateway mounts is writable: state lives in Redis or in memory.
      for (const mount of mounts(service)) expect(mount.readOnly, `${name}: ${mount.target}`).toBe(true);
      const config = await loadComposeConfig(service);
      if (config.store.kind === "redis") redisReplicas.push({ name, url: config.store.url });
    }
    expect(redisReplicas.length).toBeGreaterThanOrEqual(2);
    expect(new Set(redisReplicas.map((r) => r.url)).size).toBe(1);
    expect(new URL(redisReplicas[0]?.url ?? "redis://x").hostname).toBe("redis");
  });

  it("loads bundlegate's alert rules into Prometheus and scrapes each replica's metrics listener", async () => {
    const prometheus = compose.services.prometheus as Service;
    const config = parse(readFileSync(repoFile("deploy", "compose", "prometheus.yml"), "utf8")) as {
      rule_files: string[];
      scrape_configs: { job_name: string; metrics_path?: string; static_configs: { targets: string[] }[] }[];
    };
    for (const ruleFile of config.rule_files) {
      const host = hostPath(prometheus, path.posix.join("/etc/prometheus", ruleFile));
      expect(host && existsSync(host), ruleFile).toBe(true);
    }
    expect(hostPath(prometheus, "/etc/prometheus/rules/bundlegate-rules.yml")).toBe(RULES_FILE);
    const targets = config.scrape_configs.flatMap((job) => job.static_configs.flatMap((c) => c.targets));
    const gatewaysWithRedis: string[] = [];
    for (const [name, service] of gateways) {
      const loaded = await loadComposeConfig(service);
      if (loaded.store.kind !== "redis") continue;
      gatewaysWithRedis.push(name);
      expect(targets, name).toContain(`${name}:${loaded.metrics.listen.port}`);
      // Another container can reach it only on a wildcard address.
      expect(loaded.metrics.listen.host).toBe("0.0.0.0");
    }
    expect(targets).toHaveLength(gatewaysWithRedis.length);
  });

  it("provisions Grafana with Prometheus and the dashboards in dashboards/", () => {
    const grafana = compose.services.grafana as Service;
    const provisioning = hostPath(grafana, "/etc/grafana/provisioning");
    expect(provisioning).toBeDefined();
    const datasources = parse(readFileSync(path.join(provisioning ?? "", "datasources", "prometheus.yml"), "utf8"));
    const url = new URL(datasources.datasources[0].url);
    expect(compose.services[url.hostname]).toBeDefined();
    expect(url.port).toBe("9090");
    const providers = parse(readFileSync(path.join(provisioning ?? "", "dashboards", "bundlegate.yml"), "utf8"));
    const dashboardsPath = providers.providers[0].options.path as string;
    expect(hostPath(grafana, dashboardsPath)).toBe(repoFile("dashboards"));
    const home = grafana.environment?.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH ?? "";
    expect(existsSync(hostPath(grafana, home) ?? "")).toBe(true);
  });

  describe("with promtool", () => {
    let dir: string;
    beforeAll(() => {
      dir = mkdtempSync(path.join(os.tmpdir(), "bundlegate-prometheus-"));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    it("Prometheus' config and the rules it loads are valid (promtool check config)", (context) => {
      needsPromtool(context);
      // Laid out as the prometheus service sees it: the config, with config/prometheus as rules/ beside it.
      cpSync(repoFile("deploy", "compose", "prometheus.yml"), path.join(dir, "prometheus.yml"));
      mkdirSync(path.join(dir, "rules"));
      cpSync(RULES_FILE, path.join(dir, "rules", "bundlegate-rules.yml"));
      const result = spawnSync(PROMTOOL, ["check", "config", path.join(dir, "prometheus.yml")], {
        encoding: "utf8",
      });
      expect(`${result.stdout}${result.stderr}`, result.stderr).toMatch(/SUCCESS: .*rules found/);
      expect(result.status).toBe(0);
    });
  });
});

// ---------------------------------------------------------------------------------------------------------
// The gateway configs in deploy/compose, loaded as `serve` would, against the PKI init-pki.mjs writes.

const PKI_IN_CONTAINER = "/var/lib/bundlegate/pki";
let pkiDir: string | undefined;

async function composePki(): Promise<string> {
  if (pkiDir === undefined) {
    pkiDir = mkdtempSync(path.join(os.tmpdir(), "bundlegate-compose-pki-"));
    const modules = { createDevPki, createCa, createWebCert, serializeSpiffeBundle };
    expect(await writeComposePki(pkiDir, modules)).toBe(true);
  }
  return pkiDir;
}

afterAll(() => {
  if (pkiDir !== undefined) rmSync(pkiDir, { recursive: true, force: true });
});

/** Reads the config a compose service mounts, with the pki volume standing in at a temporary folder. */
async function loadComposeConfig(service: Service): Promise<BundlegateConfig> {
  const configPath = configPathOf(service);
  expect(configPath).toBeDefined();
  const host = hostPath(service, configPath ?? "");
  expect(host, `${configPath} is not mounted`).toBeDefined();
  const pki = await composePki();
  const toHost = (file: string): string =>
    file.startsWith(`${PKI_IN_CONTAINER}/`) ? path.join(pki, file.slice(PKI_IN_CONTAINER.length)) : file;
  return loadConfigFile(host ?? "", {}, { readFile: (file) => readFile(toHost(file)) });
}

describe("deploy/compose gateway configs", () => {
  it.each(gateways.map(([name, service]) => ({ name, service })))(
    "$name: loads without issues, and every file it names is in the pki volume",
    async ({ service }) => {
      const config = await loadComposeConfig(service);
      const pki = await composePki();
      const files = [
        config.localBundle.file,
        config.endpoint.httpsWeb?.certFile,
        config.endpoint.httpsWeb?.keyFile,
        config.endpoint.httpsSpiffe?.svidFile,
        config.endpoint.httpsSpiffe?.svidKeyFile,
      ].filter((f): f is string => f !== undefined);
      for (const file of files) {
        expect(file.startsWith(`${PKI_IN_CONTAINER}/`), file).toBe(true);
        expect(existsSync(path.join(pki, file.slice(PKI_IN_CONTAINER.length))), file).toBe(true);
      }
      // The image's health check and the compose one ask the internal listener on loopback.
      expect(config.internal.listen.port).toBe(CONFIG_DEFAULTS.internal.listen.port);
      expect(config.internal.tls).toBeUndefined();
      // Every published container port is one the gateway listens on.
      const listening = new Set(
        [
          config.endpoint.httpsWeb?.listen.port,
          config.endpoint.httpsSpiffe?.listen.port,
          config.internal.listen.port,
          config.metrics.listen.port,
        ].filter((p) => p !== undefined),
      );
      for (const port of service.ports ?? []) expect(listening.has(Number(port.split(":")[2])), port).toBe(true);
    },
  );

  it("federate the replicas with the partner service over the compose network", async () => {
    const [main, partner] = await Promise.all([
      loadComposeConfig(compose.services["bundlegate-a"] as Service),
      loadComposeConfig(compose.services.partner as Service),
    ]);
    expect(main.trustDomain).toBe(LOCAL_TRUST_DOMAIN);
    expect(partner.trustDomain).toBe(PARTNER_TRUST_DOMAIN);
    const relationship = main.relationships.find((r) => r.trustDomain === PARTNER_TRUST_DOMAIN);
    expect(relationship).toBeDefined();
    const url = new URL(relationship?.endpointUrl ?? "https://x/");
    expect(url.hostname).toBe("partner");
    expect(Number(url.port)).toBe(partner.endpoint.httpsSpiffe?.listen.port);
    expect(relationship?.profile).toMatchObject({
      kind: "https_spiffe",
      endpointSpiffeId: partner.endpoint.httpsSpiffe?.endpointSpiffeId,
    });
    const subnet = compose.networks?.federation?.ipam?.config?.[0]?.subnet;
    expect(relationship?.allowedCidrs).toEqual([subnet]);
  });
});

describe("deploy/compose/init-pki.mjs", () => {
  it("writes SVIDs and web certificates for the compose host names, keys readable by their owner only", async () => {
    const pki = await composePki();
    const svid = new X509Certificate(readFileSync(path.join(pki, "local", "svid.pem")));
    expect(svid.subjectAltName).toContain(`URI:spiffe://${LOCAL_TRUST_DOMAIN}/bundlegate`);
    for (const name of ["bundlegate-a", "bundlegate-b", "localhost"])
      expect(svid.subjectAltName).toContain(`DNS:${name}`);
    const web = new X509Certificate(readFileSync(path.join(pki, "local", "web.pem")));
    expect(web.subjectAltName).toContain("DNS:bundlegate-a");
    expect(web.verify(new X509Certificate(readFileSync(path.join(pki, "local", "web-ca.pem"))).publicKey)).toBe(true);
    const partnerSvid = new X509Certificate(readFileSync(path.join(pki, "partner", "svid.pem")));
    expect(partnerSvid.subjectAltName).toContain(`URI:spiffe://${PARTNER_TRUST_DOMAIN}/bundlegate`);
    expect(
      partnerSvid.verify(new X509Certificate(readFileSync(path.join(pki, "partner", "bundle.pem"))).publicKey),
    ).toBe(true);
    for (const key of ["local/svid.key", "local/web.key", "partner/svid.key"]) {
      expect(statSync(path.join(pki, key)).mode & 0o777, key).toBe(0o600);
    }
  });

  it("keeps an existing PKI, so a restart does not replace the partner's keys", async () => {
    const pki = await composePki();
    const before = readFileSync(path.join(pki, "partner", "bundle.json"), "utf8");
    const modules = { createDevPki, createCa, createWebCert, serializeSpiffeBundle };
    expect(await writeComposePki(pki, modules)).toBe(false);
    expect(readFileSync(path.join(pki, "partner", "bundle.json"), "utf8")).toBe(before);
  });
});
