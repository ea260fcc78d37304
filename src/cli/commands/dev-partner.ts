/**
 * The demo partner of `bundlegate dev`: a second trust domain with its own dev PKI, served by a second
 * bundlegate in the same process (its own embedded store, its own watched files in `<dir>/partner/`, only
 * the https_spiffe profile), and the relationship the demo gateway federates with it through.
 *
 * So `npm start` shows federation between two bundlegates end to end: the demo gateway polls the partner
 * over https_spiffe, verifies its X509-SVID against the bootstrap bundle, accepts the partner's bundle and
 * from then on verifies the endpoint against that accepted bundle, as it would a real partner.
 */
import { mkdir, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { type ListenAddress, type RunningApp, startApp } from "../../app.js";
import type { Clock } from "../../clock.js";
import { parseConfig } from "../../config/load.js";
import type { Relationship } from "../../federation/relationship.js";
import type { Logger, LogLevel } from "../../logging.js";
import { resolvePolicy } from "../../policy/merge.js";
import { createDevPki } from "../../sources/dev-pki.js";
import type { TrustBundle } from "../../spiffe/bundle.js";
import { serializeSpiffeBundle } from "../../spiffe/codec.js";
import type { TrustDomain } from "../../spiffe/id.js";
import { writeSecret } from "../secret-file.js";

/**
 * The partner publishes a one-minute refresh hint (the smallest the gateway accepts by default), so the
 * demo gateway polls it every 15 s and the fetch counters visibly move while the demo runs.
 */
export const DEMO_PARTNER_REFRESH_HINT_SECONDS = 60;

/** The partner runs on loopback, which the SSRF guard refuses unless a relationship allows it. */
export const LOOPBACK_CIDRS: readonly string[] = ["127.0.0.0/8", "::1/128"];

export interface DevPartnerOptions {
  /** The partner's own folder (`<dev dir>/partner`). */
  readonly dir: string;
  readonly trustDomain: TrustDomain;
  readonly host: string;
  /** The partner's https_spiffe port; 0 picks a free one. */
  readonly port: number;
  readonly logLevel: LogLevel;
  readonly logger: Logger;
  readonly clock: Clock;
}

export interface DevPartner {
  readonly trustDomain: TrustDomain;
  readonly endpointSpiffeId: string;
  /** Where the demo gateway fetches the partner's bundle (the port actually bound). */
  readonly endpointUrl: string;
  readonly address: ListenAddress;
  /** Files in the partner's folder: its bundle (JSON, watched) and its root CA (PEM, what curl trusts). */
  readonly bundleFile: string;
  readonly bundlePemFile: string;
  /** The bundle the partner serves at start: the relationship's bootstrap bundle. */
  readonly bundle: TrustBundle;
  readonly app: RunningApp;
  stop(): Promise<void>;
}

export async function startDevPartner(options: DevPartnerOptions): Promise<DevPartner> {
  const { dir, trustDomain, clock } = options;
  const endpointSpiffeId = `spiffe://${trustDomain}/bundlegate`;
  const pki = await createDevPki({ trustDomain, endpointSpiffeId, clock });
  const file = (name: string) => join(dir, name);
  await mkdir(dir, { recursive: true });
  await Promise.all([
    writeFile(file("bundle.json"), `${serializeSpiffeBundle(pki.bundle, { indent: 2 })}\n`),
    writeFile(file("bundle.pem"), pki.rootCaPem),
    writeFile(file("svid.pem"), pki.svid.certPem),
    writeSecret(file("svid.key"), pki.svid.keyPem),
  ]);

  const config = parseConfig(
    JSON.stringify({
      trust_domain: trustDomain,
      log_level: options.logLevel,
      file_poll_interval_ms: 1000,
      local_bundle: { file: "bundle.json", refresh_hint_seconds: DEMO_PARTNER_REFRESH_HINT_SECONDS },
      endpoint: {
        https_spiffe: {
          listen: { host: options.host, port: options.port },
          endpoint_spiffe_id: endpointSpiffeId,
          svid_file: "svid.pem",
          svid_key_file: "svid.key",
        },
      },
      // Nobody scrapes the partner: its internal and metrics listeners take any free port.
      internal: { listen: { host: options.host, port: 0 } },
      metrics: { listen: { host: options.host, port: 0 } },
      store: { kind: "embedded", snapshot_file: "state.json" },
    }),
    { baseDir: dir, env: {}, source: "bundlegate dev (demo partner)" },
  );
  const app = await startApp(config, { logger: options.logger, clock, replicaId: "demo-partner" });
  const address = app.addresses.httpsSpiffe;
  if (!address) {
    await app.stop();
    throw new Error("the demo partner started without its https_spiffe endpoint");
  }
  return {
    trustDomain,
    endpointSpiffeId,
    endpointUrl: `https://localhost:${address.port}/`,
    address,
    bundleFile: file("bundle.json"),
    bundlePemFile: file("bundle.pem"),
    bundle: app.localBundle.current().bundle,
    app,
    stop: () => app.stop(),
  };
}

/**
 * The demo gateway's relationship with the partner, built directly (not through the config loader):
 * https_spiffe with the partner's bundle as bootstrap bundle, loopback allowed, default trust policy.
 */
export function demoPartnerRelationship(partner: DevPartner): Relationship {
  return {
    trustDomain: partner.trustDomain,
    endpointUrl: partner.endpointUrl,
    profile: {
      kind: "https_spiffe",
      endpointSpiffeId: partner.endpointSpiffeId,
      bootstrapBundle: partner.bundle,
    },
    owner: "demo",
    description: "the demo partner bundlegate dev runs in the same process",
    labels: { demo: "true" },
    allowedCidrs: LOOPBACK_CIDRS,
    policy: resolvePolicy(),
    state: "active",
    origin: "config",
  };
}
