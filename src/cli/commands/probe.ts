/**
 * `bundlegate probe URL`: one fetch of a partner's bundle endpoint with every check, and what was learnt.
 * The work is `probeEndpoint` (src/federation/probe.ts); this file reads the files, builds the fetcher and
 * prints the report.
 */
import { CONFIG_DEFAULTS } from "../../config/schema.js";
import { isBundlegateError } from "../../errors.js";
import { createBundleFetcher, type FetcherOptions, type PeerInfo } from "../../federation/fetcher/index.js";
import {
  createPeerDiagnosis,
  isProbeUsageError,
  type ProbeInput,
  type ProbeProfile,
  type ProbeReport,
  probeEndpoint,
} from "../../federation/probe.js";
import type { TrustBundle } from "../../spiffe/bundle.js";
import { parseBundle } from "../../spiffe/read.js";
import { readBytes, readText } from "../admin-context.js";
import { CliExit, type CliIo, EXIT_OK, EXIT_REJECTED, EXIT_USAGE } from "../io.js";
import { renderInspection } from "../render-inspection.js";
import { VERSION } from "../version.js";

export interface ProbeOptions {
  readonly trustDomain: string;
  readonly profile: ProbeProfile;
  readonly endpointId?: string;
  readonly bundle?: string;
  readonly ca?: string;
  readonly previous?: string;
  readonly proxy?: string;
  readonly allowCidr: readonly string[];
  readonly timeoutMs?: number;
  readonly json: boolean;
}

/** The gateway's own fetch limits (federation.* in the config), so a probe fetches as `serve` would. */
export const PROBE_DEFAULTS = {
  maxBytes: CONFIG_DEFAULTS.federation.max_bundle_bytes,
  connectTimeoutMs: CONFIG_DEFAULTS.federation.connect_timeout_ms,
  headersTimeoutMs: CONFIG_DEFAULTS.federation.headers_timeout_ms,
  totalTimeoutMs: CONFIG_DEFAULTS.federation.total_timeout_ms,
  maxRedirects: CONFIG_DEFAULTS.federation.max_redirects,
} as const;

/** The command-line flag for each input field, so usage errors name what the operator typed. */
const FLAGS: Readonly<Partial<Record<keyof ProbeInput, string>>> = {
  url: "URL",
  trustDomain: "--trust-domain",
  profile: "--profile",
  endpointSpiffeId: "--endpoint-id",
  bundle: "--bundle",
  caPem: "--ca",
  previous: "--previous",
  proxy: "--proxy",
  allowedCidrs: "--allow-cidr",
};

export async function probe(url: string, options: ProbeOptions, io: CliIo): Promise<number> {
  const proxyEnv = proxyEnvironment(io);
  const [bundle, caPem, previous] = [
    options.bundle === undefined ? undefined : await readBundle("--bundle", options.bundle, io),
    options.ca === undefined ? undefined : await readText("--ca", options.ca, io, { stdin: false }),
    options.previous === undefined ? undefined : await readBundle("--previous", options.previous, io),
  ];
  const input: ProbeInput = {
    url,
    trustDomain: options.trustDomain,
    profile: options.profile,
    ...(options.endpointId === undefined ? {} : { endpointSpiffeId: options.endpointId }),
    ...(bundle === undefined ? {} : { bundle }),
    ...(caPem === undefined ? {} : { caPem }),
    ...(previous === undefined ? {} : { previous }),
    ...(options.proxy === undefined ? {} : { proxy: options.proxy }),
    allowedCidrs: options.allowCidr,
  };

  const now = io.now();
  const totalTimeoutMs = options.timeoutMs ?? PROBE_DEFAULTS.totalTimeoutMs;
  // A short --timeout-ms bounds every phase, not only the whole fetch.
  const connectTimeoutMs = Math.min(PROBE_DEFAULTS.connectTimeoutMs, totalTimeoutMs);
  const fetcherOptions: FetcherOptions = {
    maxBytes: PROBE_DEFAULTS.maxBytes,
    connectTimeoutMs,
    headersTimeoutMs: Math.min(PROBE_DEFAULTS.headersTimeoutMs, totalTimeoutMs),
    totalTimeoutMs,
    maxRedirects: PROBE_DEFAULTS.maxRedirects,
    ...proxyEnv,
    now: () => now,
    userAgent: `bundlegate/${VERSION}`,
  };

  let report: ProbeReport;
  try {
    report = await probeEndpoint(input, {
      fetcher: createBundleFetcher(fetcherOptions),
      now,
      diagnose: createPeerDiagnosis({ connectTimeoutMs, ...proxyEnv }),
    });
  } catch (error) {
    if (!isProbeUsageError(error)) throw error;
    io.stderr(`${FLAGS[error.field] ?? error.field}: ${error.code}: ${error.message}\n`);
    return EXIT_USAGE;
  }

  io.stdout(options.json ? `${JSON.stringify(report, null, 2)}\n` : renderReport(report));
  if (report.error !== undefined) {
    io.stderr(`error: ${report.error.code}: ${report.error.message}\n`);
    if (report.error.hint !== undefined) io.stderr(`hint: ${report.error.hint}\n`);
  }
  return report.ok ? EXIT_OK : EXIT_REJECTED;
}

export function renderReport(report: ProbeReport): string {
  const lines: string[] = [];
  const field = (name: string, value: string) => lines.push(`  ${(name === "" ? "" : `${name}:`).padEnd(15)}${value}`);

  lines.push("endpoint");
  field("url", report.url);
  if (report.finalUrl !== undefined) {
    field(report.ok || report.peer !== undefined ? "final url" : "failed at", report.finalUrl);
  }
  field("redirects", report.redirects.length === 0 ? "none" : report.redirects.join(" -> "));
  field("profile", report.endpointSpiffeId ? `${report.profile} (${report.endpointSpiffeId})` : report.profile);
  field("trust domain", report.trustDomain);
  field("duration", `${report.durationMs} ms`);
  if (report.peer !== undefined) {
    renderPeer(report.peer, field);
  } else if (report.presentedPeer !== undefined) {
    lines.push("  presented (unverified: read on a diagnostic handshake that sent no request)");
    renderPeer(report.presentedPeer, field);
  }

  if (report.inspection !== undefined) {
    lines.push("", "bundle");
    for (const line of renderInspection(report.inspection, "spiffe").trimEnd().split("\n")) {
      lines.push(line === "" ? "" : `  ${line}`);
    }
  }

  if (report.decision !== undefined) {
    lines.push("", "decision");
    field(
      "kind",
      `${report.decision.kind} (${report.decision.against === "previous" ? "against --previous" : "as a first bundle: no --previous"})`,
    );
    for (const reason of report.decision.reasons) lines.push(`    ${reason.code}: ${reason.message}`);
    if (report.decision.kind === "quarantine") {
      lines.push("    (a quarantined bundle is held until someone with the approve scope accepts it)");
    }
  }
  lines.push("", `result: ${report.ok ? "ok" : "FAILED"}`);
  return `${lines.join("\n")}\n`;
}

function renderPeer(peer: PeerInfo, field: (name: string, value: string) => void): void {
  const address = peer.address.includes(":") ? `[${peer.address}]` : peer.address;
  field("peer address", `${address}:${peer.port}${peer.proxy === undefined ? "" : ` (via proxy ${peer.proxy})`}`);
  field("subject", peer.subject || "(empty)");
  field("URI SANs", peer.uriSans.length === 0 ? "(none)" : peer.uriSans.join(", "));
  field("DNS SANs", peer.dnsSans.length === 0 ? "(none)" : peer.dnsSans.join(", "));
  field("leaf notAfter", peer.notAfter);
  for (const [index, entry] of peer.chain.entries()) {
    field(
      index === 0 ? "chain" : "",
      `[${index + 1}] ${entry.subject || "(empty subject)"}, notAfter ${entry.notAfter}`,
    );
  }
  // ISO 8601 in UTC sorts as text; the earliest expiry is when the chain stops verifying.
  const earliest = peer.chain.map((entry) => entry.notAfter).sort()[0];
  if (earliest !== undefined) field("chain expiry", earliest);
  field("fingerprint", `sha256:${peer.fingerprint}`);
}

/**
 * HTTPS_PROXY and NO_PROXY as the config loader reads them: an empty variable is unset, and upper and lower
 * case set to different values is refused rather than guessed at.
 */
function proxyEnvironment(io: CliIo): { httpsProxy?: string; noProxy?: string } {
  const pick = (upper: string, lower: string): string | undefined => {
    const u = io.env[upper]?.trim() || undefined;
    const l = io.env[lower]?.trim() || undefined;
    if (u !== undefined && l !== undefined && u !== l) {
      io.stderr(`${upper}: ERR_PROBE_USAGE: differs from ${lower}; unset one of them, or set both to the same value\n`);
      throw new CliExit(EXIT_USAGE);
    }
    return u ?? l;
  };
  const httpsProxy = pick("HTTPS_PROXY", "https_proxy");
  const noProxy = pick("NO_PROXY", "no_proxy");
  return { ...(httpsProxy === undefined ? {} : { httpsProxy }), ...(noProxy === undefined ? {} : { noProxy }) };
}

async function readBundle(flag: string, file: string, io: CliIo): Promise<TrustBundle> {
  const bytes = await readBytes(flag, file, io, { stdin: false });
  try {
    return parseBundle(bytes).bundle;
  } catch (error) {
    if (!isBundlegateError(error)) throw error;
    io.stderr(`${flag}: ${error.code}: ${file}: ${error.message}\n`);
    throw new CliExit(EXIT_USAGE);
  }
}
