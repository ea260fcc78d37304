/** `bundlegate validate-config FILE`: load a config exactly as `serve` would and say what it sets up, or every problem. */
import { isConfigError } from "../../config/errors.js";
import { type ConfigEnv, loadConfigFile } from "../../config/load.js";
import type { BundlegateConfig, ListenConfig } from "../../config/types.js";
import { type CliIo, EXIT_OK, EXIT_REJECTED, EXIT_USAGE } from "../io.js";

export interface ValidateConfigOptions {
  readonly json: boolean;
}

export async function validateConfig(
  file: string,
  options: ValidateConfigOptions,
  io: CliIo,
  env: ConfigEnv,
): Promise<number> {
  let config: BundlegateConfig;
  try {
    config = await loadConfigFile(file, env, { readFile: io.readFile });
  } catch (error) {
    if (!isConfigError(error)) throw error;
    if (options.json) {
      const failure = { ok: false, file, code: error.code, message: error.message, ...error.details };
      io.stdout(`${JSON.stringify(failure, null, 2)}\n`);
    }
    io.stderr(`${error.code}: ${error.message}\n`);
    return error.code === "ERR_CONFIG_UNREADABLE" ? EXIT_USAGE : EXIT_REJECTED;
  }

  const summary = summarize(config);
  if (options.json) {
    io.stdout(`${JSON.stringify({ ok: true, file, ...summary }, null, 2)}\n`);
  } else {
    io.stdout(renderSummary(file, summary));
  }
  return EXIT_OK;
}

interface ConfigSummary {
  readonly trustDomain: string;
  readonly endpointPath: string;
  readonly profiles: readonly { readonly profile: "https_web" | "https_spiffe"; readonly listen: string }[];
  readonly endpointSpiffeId?: string;
  readonly internal: string;
  readonly store: { readonly kind: string; readonly url?: string; readonly keyPrefix?: string };
}

function summarize(config: BundlegateConfig): ConfigSummary {
  const { httpsWeb, httpsSpiffe } = config.endpoint;
  const profiles: ConfigSummary["profiles"][number][] = [];
  if (httpsWeb) profiles.push({ profile: "https_web", listen: address(httpsWeb.listen) });
  if (httpsSpiffe) profiles.push({ profile: "https_spiffe", listen: address(httpsSpiffe.listen) });
  const { store } = config;
  return {
    trustDomain: config.trustDomain,
    endpointPath: config.endpoint.path,
    profiles,
    ...(httpsSpiffe ? { endpointSpiffeId: httpsSpiffe.endpointSpiffeId } : {}),
    internal: address(config.internal.listen),
    store:
      store.kind === "redis"
        ? { kind: store.kind, url: withoutCredentials(store.url), keyPrefix: store.keyPrefix }
        : { kind: store.kind },
  };
}

function renderSummary(file: string, summary: ConfigSummary): string {
  const lines = [`config OK: ${file}`, `  trust domain  ${summary.trustDomain}`];
  for (const { profile, listen } of summary.profiles) {
    const id = profile === "https_spiffe" && summary.endpointSpiffeId ? ` as ${summary.endpointSpiffeId}` : "";
    lines.push(`  ${profile.padEnd(12)}  ${listen}${summary.endpointPath}${id}`);
  }
  lines.push(`  ${"internal".padEnd(12)}  ${summary.internal}`);
  const { store } = summary;
  const where = store.url === undefined ? "" : ` ${store.url} (key prefix ${store.keyPrefix})`;
  lines.push(`  ${"store".padEnd(12)}  ${store.kind}${where}`);
  return `${lines.join("\n")}\n`;
}

function address(listen: ListenConfig): string {
  const host = listen.host.includes(":") && !listen.host.startsWith("[") ? `[${listen.host}]` : listen.host;
  return `${host}:${listen.port}`;
}

/** A Redis URL may hold a password; the summary is for terminals and CI logs. */
function withoutCredentials(raw: string): string {
  const url = new URL(raw);
  if (url.username !== "" || url.password !== "") {
    url.username = "";
    url.password = "";
  }
  return url.toString();
}
