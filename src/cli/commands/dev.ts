/**
 * `bundlegate dev` (what `npm start` runs): a working gateway on localhost with nothing to set up.
 * It generates a dev PKI in memory, writes the public parts and the serving keys to a dev folder (the
 * endpoints read watched files, exactly as in production), serves both profiles, and prints curl
 * commands that verify what they fetch.
 *
 * It also runs a demo partner (dev-partner.ts): a second trust domain served by a second bundlegate in
 * this process, which the demo gateway federates with over https_spiffe, so a fresh relationship shows
 * from the first seconds. Stopping stops both.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { ADMIN_SCOPES } from "../../api/auth/admin-auth.js";
import { type RunningApp, startApp } from "../../app.js";
import { systemClock } from "../../clock.js";
import { parseConfig } from "../../config/load.js";
import type { FederationConfig } from "../../config/types.js";
import { isBundlegateError } from "../../errors.js";
import { refreshIntervalSeconds } from "../../federation/schedule.js";
import type { RefreshOutcome } from "../../federation/updater.js";
import { createLogger, type Logger, type LogLevel } from "../../logging.js";
import { createDevPki } from "../../sources/dev-pki.js";
import { serializeSpiffeBundle } from "../../spiffe/codec.js";
import type { TrustDomain } from "../../spiffe/id.js";
import { openEmbeddedStore } from "../../store/embedded/embedded-store.js";
import { trustDomainArgument } from "../admin-context.js";
import { CliExit, type CliIo, EXIT_OK, EXIT_REJECTED, EXIT_USAGE } from "../io.js";
import { writeSecret } from "../secret-file.js";
import { type DevPartner, demoPartnerRelationship, startDevPartner } from "./dev-partner.js";

export const DEFAULT_PARTNER_TRUST_DOMAIN = "partner.dev.bundlegate.test";
export const DEFAULT_PARTNER_PORT = 8445;

export interface DevOptions {
  readonly dir: string;
  readonly trustDomain: string;
  readonly host: string;
  readonly webPort: number;
  readonly spiffePort: number;
  readonly internalPort: number;
  /** Prometheus scrape port (default 9464); absent picks a free one. */
  readonly metricsPort?: number;
  /** The demo partner's trust domain (default partner.dev.bundlegate.test). */
  readonly partnerTrustDomain?: string;
  /** The demo partner's https_spiffe port (default 8445). */
  readonly partnerPort?: number;
  readonly logLevel: LogLevel;
}

export async function dev(options: DevOptions, io: CliIo): Promise<number> {
  let trustDomain: TrustDomain;
  let partnerTrustDomain: TrustDomain;
  try {
    trustDomain = trustDomainArgument(options.trustDomain, io, "--trust-domain");
    partnerTrustDomain = trustDomainArgument(
      options.partnerTrustDomain ?? DEFAULT_PARTNER_TRUST_DOMAIN,
      io,
      "--partner-trust-domain",
    );
  } catch (error) {
    // dev() returns its exit status (tests call it directly) rather than throwing it.
    if (error instanceof CliExit) return error.exitCode;
    throw error;
  }
  if (partnerTrustDomain === trustDomain) {
    io.stderr(
      `--partner-trust-domain: must differ from --trust-domain (${trustDomain}): a domain does not federate with itself\n`,
    );
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

  const devToken = `bgdev_${randomBytes(24).toString("base64url")}`;
  await writeSecret(file("admin-token"), `${devToken}\n`);

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
      metrics: { listen: { host: options.host, port: options.metricsPort ?? 0 } },
      store: { kind: "embedded", snapshot_file: "state.json" },
      // A token made for this run, with every scope, printed below: the admin API is never open.
      admin: {
        tokens: [
          { name: "dev", sha256: createHash("sha256").update(devToken).digest("hex"), scopes: [...ADMIN_SCOPES] },
        ],
      },
    }),
    { baseDir: dir, env: {}, source: "bundlegate dev" },
  );

  // Logs go to stderr so the instructions on stdout stay readable.
  const logger = createLogger({ level: options.logLevel, name: "bundlegate-dev" }, process.stderr);

  // Every run generates a new partner PKI: what an earlier run accepted from the partner would now be a
  // full replacement (held in quarantine) and would fail to verify the new partner's SVID. The demo
  // relationship starts afresh each run, as a partner re-onboarded with new keys would.
  try {
    await forgetDemoRelationship(file("state.json"), partnerTrustDomain, logger);
  } catch (error) {
    return startFailed(error, io, "bundlegate dev", "--web-port, --spiffe-port, --internal-port and --metrics-port");
  }

  let partner: DevPartner;
  try {
    partner = await startDevPartner({
      dir: file("partner"),
      trustDomain: partnerTrustDomain,
      host: options.host,
      port: options.partnerPort ?? DEFAULT_PARTNER_PORT,
      logLevel: options.logLevel,
      logger: logger.child({ app: "demo-partner" }),
      clock: systemClock,
    });
  } catch (error) {
    return startFailed(error, io, "the demo partner", "--partner-port");
  }

  let app: RunningApp;
  try {
    app = await startApp(config, {
      logger,
      clock: systemClock,
      relationships: [demoPartnerRelationship(partner)],
    });
  } catch (error) {
    await partner.stop();
    return startFailed(error, io, "bundlegate dev", "--web-port, --spiffe-port, --internal-port and --metrics-port");
  }

  // The engine spreads first fetches over a few seconds (a gateway with many relationships must not fetch
  // them all at once); the demo has one and shows it fresh at once.
  const first = await app.engine.refreshNow(partnerTrustDomain).catch(() => undefined);

  const { httpsWeb, httpsSpiffe, internal } = app.addresses;
  const metricsUrl = `http://${app.addresses.metrics.host}:${app.addresses.metrics.port}/metrics`;
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
      `  metrics       curl ${metricsUrl}`,
      "",
      `and federates with a demo partner, another bundlegate in this process, serving trust domain ${partnerTrustDomain} (sequence ${partner.app.localBundle.current().sequence})`,
      "",
      `  partner       ${partner.endpointUrl}   endpoint SPIFFE ID ${partner.endpointSpiffeId}`,
      `                curl --cacert ${partner.bundlePemFile} ${partner.endpointUrl}`,
      `  relationship  ${partnerTrustDomain}: active, owner demo, https_spiffe, bootstrap bundle ${partner.bundleFile}`,
      `                ${describeRelationship(app, partnerTrustDomain, first, config.federation)}`,
      `  fetches       curl -s ${metricsUrl} | grep -F 'trust_domain="${partnerTrustDomain}"'`,
      `  table         curl -s ${metricsUrl} | grep '^bundlegate_relationship_info'`,
      "",
      `the admin API is on http://${internal.host}:${internal.port} (OpenAPI at /v1/openapi.json); this run's dev token, with every scope, is in ${file("admin-token")}:`,
      "",
      `  export BUNDLEGATE_API_URL=http://${internal.host}:${internal.port} BUNDLEGATE_API_TOKEN=${devToken}`,
      "  npm run -s bundlegate -- relationships list",
      `  npm run -s bundlegate -- relationships show ${partnerTrustDomain}`,
      "  npm run -s bundlegate -- invite create",
      "",
      `  Edit ${file("bundle.json")} and the endpoints serve the change at once, with the next sequence.`,
      `  Inspect what is served: curl -s --cacert ${file("web-ca.pem")} https://localhost:${httpsWeb?.port}/ | npm run -s bundlegate -- bundle inspect -`,
      "  The federated bundle is what the partner serves (its curl line prints it); the fetches line shows every poll.",
      "  Ctrl-C stops both gateways.",
      "",
    ].join("\n"),
  );
  const signal = await io.waitForShutdown();
  logger.info({ signal }, "stopping");
  await app.stop();
  await partner.stop();
  return EXIT_OK;
}

/** One line on the relationship after its first fetch: the outcome, how fresh it is, and how often it is polled. */
function describeRelationship(
  app: RunningApp,
  trustDomain: TrustDomain,
  first: RefreshOutcome | undefined,
  federation: FederationConfig,
): string {
  const { status, health } = app.engine.view(trustDomain);
  const cached = app.cache.get(trustDomain);
  const hint = cached?.bundle.refreshHintSeconds;
  const state = health?.staleness.state ?? "never_synced";
  const result = first?.result ?? status?.lastResult ?? "not fetched yet";
  const held = cached?.stored.sequence;
  const sequence =
    held === undefined ? "" : result === "accepted" ? ` (sequence ${held})` : `, holding sequence ${held}`;
  const every = refreshIntervalSeconds(hint, federation);
  return `first fetch: ${result}${sequence}; ${state}; polled every ${every} s (refresh hint ${hint ?? federation.defaultRefreshHintSeconds} s)`;
}

/** Drops what an earlier run's gateway stored about the demo partner (bundle, status, quarantine). */
async function forgetDemoRelationship(snapshotFile: string, trustDomain: TrustDomain, logger: Logger): Promise<void> {
  const store = await openEmbeddedStore({ snapshotFile, logger: logger.child({ component: "store" }) });
  try {
    const [bundle, status, quarantine] = await Promise.all([
      store.getBundle(trustDomain),
      store.getStatus(trustDomain),
      store.getQuarantine(trustDomain),
    ]);
    if (bundle || status || quarantine) {
      await store.removeRelationship(trustDomain, { origin: "bundlegate dev" });
    }
  } finally {
    await store.close();
  }
}

function startFailed(error: unknown, io: CliIo, what: string, portFlags: string): number {
  const code = isBundlegateError(error) ? error.code : ((error as NodeJS.ErrnoException).code ?? "ERR_START");
  io.stderr(`${what} could not start: ${code}: ${(error as Error).message}\n`);
  const cause = (error as { cause?: NodeJS.ErrnoException }).cause;
  if (code === "EADDRINUSE" || cause?.code === "EADDRINUSE" || /in use/i.test((error as Error).message)) {
    io.stderr(`another process holds one of the ports: pass ${portFlags}\n`);
  }
  return EXIT_REJECTED;
}
