/**
 * `bundlegate dev` (what `npm start` runs): a working gateway on localhost with nothing to set up.
 * It generates a dev PKI in memory, writes the public parts and the serving keys to a dev folder (the
 * endpoints read watched files, exactly as in production), serves both profiles, and prints curl
 * commands that verify what they fetch.
 */
import { chmod, mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { startApp } from "../../app.js";
import { systemClock } from "../../clock.js";
import { parseConfig } from "../../config/load.js";
import { isBundlegateError } from "../../errors.js";
import { createLogger, type LogLevel } from "../../logging.js";
import { createDevPki } from "../../sources/dev-pki.js";
import { serializeSpiffeBundle } from "../../spiffe/codec.js";
import { parseTrustDomain } from "../../spiffe/id.js";
import { type CliIo, EXIT_OK, EXIT_REJECTED, EXIT_USAGE } from "../io.js";

export interface DevOptions {
  readonly dir: string;
  readonly trustDomain: string;
  readonly host: string;
  readonly webPort: number;
  readonly spiffePort: number;
  readonly internalPort: number;
  readonly logLevel: LogLevel;
}

export async function dev(options: DevOptions, io: CliIo): Promise<number> {
  let trustDomain: ReturnType<typeof parseTrustDomain>;
  try {
    trustDomain = parseTrustDomain(options.trustDomain);
  } catch (error) {
    if (!isBundlegateError(error)) throw error;
    io.stderr(`--trust-domain: ${error.code}: ${error.message}\n`);
    return EXIT_USAGE;
  }
  const endpointSpiffeId = `spiffe://${trustDomain}/bundlegate`;
  const pki = await createDevPki({ trustDomain, endpointSpiffeId, clock: systemClock });

  const dir = options.dir;
  const file = (name: string) => join(dir, name);
  await mkdir(dir, { recursive: true });
  await Promise.all([
    writeFile(file("bundle.json"), `${serializeSpiffeBundle(pki.bundle, { indent: 2 })}\n`),
    writeFile(file("bundle.pem"), pki.rootCaPem),
    writeFile(file("web-ca.pem"), pki.webCaPem),
    writeFile(file("web.pem"), pki.web.certPem),
    writeSecret(file("web.key"), pki.web.keyPem),
    writeFile(file("svid.pem"), pki.svid.certPem),
    writeSecret(file("svid.key"), pki.svid.keyPem),
  ]);

  // The dev config goes through the same loader as a config file, so every default comes from one place.
  const config = parseConfig(
    JSON.stringify({
      trust_domain: trustDomain,
      log_level: options.logLevel,
      file_poll_interval_ms: 1000,
      local_bundle: { file: "bundle.json" },
      endpoint: {
        https_web: { listen: { host: options.host, port: options.webPort }, cert_file: "web.pem", key_file: "web.key" },
        https_spiffe: {
          listen: { host: options.host, port: options.spiffePort },
          endpoint_spiffe_id: endpointSpiffeId,
          svid_file: "svid.pem",
          svid_key_file: "svid.key",
        },
      },
      internal: { listen: { host: options.host, port: options.internalPort } },
      store: { kind: "embedded", snapshot_file: "state.json" },
    }),
    { baseDir: dir, env: {}, source: "bundlegate dev" },
  );

  // Logs go to stderr so the instructions on stdout stay readable.
  const logger = createLogger({ level: options.logLevel, name: "bundlegate-dev" }, process.stderr);
  let app: Awaited<ReturnType<typeof startApp>>;
  try {
    app = await startApp(config, { logger, clock: systemClock });
  } catch (error) {
    const code = isBundlegateError(error) ? error.code : ((error as NodeJS.ErrnoException).code ?? "ERR_START");
    io.stderr(`bundlegate dev could not start: ${code}: ${(error as Error).message}\n`);
    const cause = (error as { cause?: NodeJS.ErrnoException }).cause;
    if (code === "EADDRINUSE" || cause?.code === "EADDRINUSE" || /in use/i.test((error as Error).message)) {
      io.stderr("another process holds one of the ports: pass --web-port, --spiffe-port and --internal-port\n");
    }
    return EXIT_REJECTED;
  }

  const { httpsWeb, httpsSpiffe, internal } = app.addresses;
  io.stdout(
    [
      "",
      `bundlegate dev is serving the bundle of trust domain ${trustDomain} (sequence ${app.localBundle.current().sequence})`,
      "",
      `  https_web     https://localhost:${httpsWeb?.port}/`,
      `                curl --cacert ${file("web-ca.pem")} https://localhost:${httpsWeb?.port}/`,
      `  https_spiffe  https://localhost:${httpsSpiffe?.port}/   endpoint SPIFFE ID ${endpointSpiffeId}`,
      `                curl --cacert ${file("bundle.pem")} https://localhost:${httpsSpiffe?.port}/`,
      `  readiness     curl http://${internal.host}:${internal.port}/readyz`,
      `  metrics       curl http://${internal.host}:${internal.port}/metrics`,
      "",
      `  Edit ${file("bundle.json")} and the endpoints serve the change at once, with the next sequence.`,
      `  Inspect what is served: curl -s --cacert ${file("web-ca.pem")} https://localhost:${httpsWeb?.port}/ | npm run -s bundlegate -- bundle inspect -`,
      "  Ctrl-C stops.",
      "",
    ].join("\n"),
  );
  const signal = await io.waitForShutdown();
  logger.info({ signal }, "stopping");
  await app.stop();
  return EXIT_OK;
}

async function writeSecret(path: string, content: string): Promise<void> {
  await writeFile(path, content, { mode: 0o600 });
  await chmod(path, 0o600);
}
