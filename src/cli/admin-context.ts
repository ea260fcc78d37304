/**
 * What every admin command (relationships, quarantine, invite, audit) shares: the options that say which API
 * to talk to and how, their environment fallbacks (read from CliIo.env, never process.env), and one way to
 * turn a failure into an exit status and a message. Its usage-error, trust-domain and file-reading helpers
 * serve the other commands (bundle inspect, probe, dev) too, so every command reports bad input alike.
 */
import { type Command, InvalidArgumentError } from "commander";
import { CONFIG_DEFAULTS } from "../config/schema.js";
import { BundlegateError, isBundlegateError } from "../errors.js";
import { parseTrustDomain, type TrustDomain } from "../spiffe/id.js";
import { type AdminApiClient, createAdminApiClient, isAdminApiError, parseApiBaseUrl } from "./api-client.js";
import { CliExit, type CliIo, EXIT_REJECTED, EXIT_USAGE } from "./io.js";
import { writeJsonExact } from "./json-text.js";
import { VERSION } from "./version.js";

/** The internal listener's default address: where `serve` puts the admin API unless the config says otherwise. */
export const DEFAULT_API_URL = `http://${CONFIG_DEFAULTS.internal.listen.host}:${CONFIG_DEFAULTS.internal.listen.port}`;
export const DEFAULT_API_TIMEOUT_SECONDS = 10;

export const API_ENV = {
  url: "BUNDLEGATE_API_URL",
  token: "BUNDLEGATE_API_TOKEN",
  caFile: "BUNDLEGATE_API_CA_FILE",
} as const;

export interface AdminOptions {
  readonly api?: string;
  readonly token?: string;
  readonly apiCaFile?: string;
  readonly timeout?: number;
  readonly json: boolean;
}

/** Runs a command's action and keeps its exit status (program.ts owns the variable). */
export type Runner = (action: () => Promise<number>) => Promise<void>;

export interface AdminContext {
  readonly client: AdminApiClient;
  /** The command's io, with the API token blanked out of anything written. */
  readonly io: CliIo;
  readonly json: boolean;
  /** Prints an API answer for --json: the JSON as the API wrote it, numbers exact, indented. */
  readonly printJson: (value: unknown) => void;
}

function parseSeconds(value: string): number {
  const seconds = Number(value);
  // setTimeout fires at once past 2^31-1 ms, which would turn a long timeout into none.
  if (!/^\d+(\.\d+)?$/.test(value) || !(seconds > 0) || seconds * 1000 > 2_147_483_647) {
    throw new InvalidArgumentError("must be a number of seconds, more than 0 and at most 2147483");
  }
  return seconds;
}

/** Commander's collector for a repeatable option (--label, --allow-cidr, ...). */
export function repeatable(value: string, previous: readonly string[]): string[] {
  return [...previous, value];
}

/** The options every admin command takes; added to each subcommand so its --help lists them. */
export function withAdminOptions(command: Command): Command {
  return command
    .option("--api <url>", `admin API base URL (env ${API_ENV.url}; default ${DEFAULT_API_URL})`)
    .option(
      "--token <token>",
      `API bearer token (env ${API_ENV.token}, preferred: arguments are visible in the process list); never printed`,
    )
    .option("--api-ca-file <pem>", `PEM CA certificates to trust for an https API URL (env ${API_ENV.caFile})`)
    .option(
      "--timeout <seconds>",
      `give up on the API after this long (default ${DEFAULT_API_TIMEOUT_SECONDS})`,
      parseSeconds,
    )
    .option("--json", "print the API's JSON answer instead of the readable form", false);
}

/**
 * Resolves the options, calls `action` with a client, and maps failures to exit statuses: a bad option is
 * 2, anything the API or the network refused is 1, printed as `error: <detail> (<code>)`.
 */
export async function runAdmin(
  rawIo: CliIo,
  options: AdminOptions,
  action: (context: AdminContext) => Promise<number>,
): Promise<number> {
  const token = options.token ?? envValue(rawIo, API_ENV.token);
  const io = token === undefined ? rawIo : redacting(rawIo, token);
  const rawUrl = options.api ?? envValue(rawIo, API_ENV.url) ?? DEFAULT_API_URL;
  const flag = options.api === undefined && envValue(rawIo, API_ENV.url) !== undefined ? API_ENV.url : "--api";
  let baseUrl: URL;
  try {
    baseUrl = parseApiBaseUrl(rawUrl);
  } catch (error) {
    if (!isBundlegateError(error)) throw error;
    // The URL is not echoed: a malformed one may hold a password.
    io.stderr(`${flag}: ${error.code}: ${error.message}\n`);
    return EXIT_USAGE;
  }
  const caFile = options.apiCaFile ?? envValue(rawIo, API_ENV.caFile);
  let caPem: string | undefined;
  if (caFile !== undefined) {
    if (baseUrl.protocol === "https:") {
      caPem = await readText(options.apiCaFile === undefined ? API_ENV.caFile : "--api-ca-file", caFile, io);
    } else if (options.apiCaFile !== undefined) {
      io.stderr("warning: --api-ca-file is ignored: the API URL is http, not https\n");
    }
  }
  const client = createAdminApiClient({
    baseUrl,
    ...(token === undefined ? {} : { token }),
    ...(caPem === undefined ? {} : { caPem }),
    timeoutMs: Math.round((options.timeout ?? DEFAULT_API_TIMEOUT_SECONDS) * 1000),
    userAgent: `bundlegate-cli/${VERSION}`,
  });
  const printJson = (value: unknown) => io.stdout(`${writeJsonExact(value, 2)}\n`);
  try {
    return await action({ client, io, json: options.json, printJson });
  } catch (error) {
    if (error instanceof CliExit || !isBundlegateError(error)) throw error;
    if (options.json) {
      // A script reading --json output gets the failure as JSON too: the API's problem as it is, or ours.
      const problem = isAdminApiError(error) ? error.problem : undefined;
      printJson(problem ?? { code: error.code, detail: error.message, ...problemStatus(error) });
    }
    reportError(error, io);
    if (isAdminApiError(error) && error.httpStatus === 401 && token === undefined) {
      io.stderr(`hint: no API token was given: pass --token or set ${API_ENV.token}\n`);
    }
    return EXIT_REJECTED;
  }
}

function problemStatus(error: BundlegateError): { status?: number } {
  return isAdminApiError(error) ? { status: error.httpStatus } : {};
}

/** `error: <detail> (<code>)`, then each field the API named. */
export function reportError(error: BundlegateError, io: CliIo): void {
  io.stderr(`error: ${error.message} (${error.code})\n`);
  if (isAdminApiError(error)) {
    for (const field of error.fieldErrors) io.stderr(`  ${field.path}: ${field.message}\n`);
  }
}

/** A usage error: `<flag>: <code>: <message>` and exit 2. */
export function usageError(io: CliIo, flag: string, code: string, message: string): never {
  io.stderr(`${flag}: ${code}: ${message}\n`);
  throw new CliExit(EXIT_USAGE);
}

/** A trust domain named on the command line, checked here so a typo is a usage error and not a 404. */
export function trustDomainArgument(value: string, io: CliIo, flag = "TRUST_DOMAIN"): TrustDomain {
  try {
    return parseTrustDomain(value);
  } catch (error) {
    if (!isBundlegateError(error)) throw error;
    return usageError(io, flag, error.code, error.message);
  }
}

/** The API path of one relationship (and of an action on it). */
export function relationshipPath(trustDomain: string, action = ""): string {
  return `/v1/relationships/${encodeURIComponent(trustDomain)}${action}`;
}

/** `k=v` from --label; the key and value rules are the API's to check. */
export function parseLabels(values: readonly string[], io: CliIo, flag = "--label"): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const value of values) {
    const at = value.indexOf("=");
    if (at <= 0) usageError(io, flag, "ERR_CLI_USAGE", `${JSON.stringify(value)} is not key=value`);
    Object.defineProperty(labels, value.slice(0, at), {
      value: value.slice(at + 1),
      enumerable: true,
      writable: true,
    });
  }
  return labels;
}

export interface ReadOptions {
  /** Whether "-" means standard input (the default) rather than a file of that name. */
  readonly stdin?: boolean;
}

export async function readText(flag: string, file: string, io: CliIo, options: ReadOptions = {}): Promise<string> {
  return new TextDecoder().decode(await readBytes(flag, file, io, options));
}

/**
 * A file named on the command line; one that cannot be read is a usage error (exit 2), printed as
 * `<flag>: ERR_FILE_UNREADABLE: ...`, or without the flag prefix for a command's own FILE argument.
 */
export async function readBytes(
  flag: string | undefined,
  file: string,
  io: CliIo,
  options: ReadOptions = {},
): Promise<Uint8Array> {
  try {
    return file === "-" && options.stdin !== false ? await io.readStdin() : await io.readFile(file);
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
    const error = new BundlegateError("ERR_FILE_UNREADABLE", `cannot read ${file}: ${reason}`, { cause });
    if (flag !== undefined) return usageError(io, flag, error.code, error.message);
    io.stderr(`${error.code}: ${error.message}\n`);
    throw new CliExit(EXIT_USAGE);
  }
}

/** An empty variable counts as unset, as in the config loader. */
function envValue(io: CliIo, name: string): string | undefined {
  const value = io.env[name]?.trim();
  return value === undefined || value === "" ? undefined : value;
}

/**
 * A last guard: whatever a server or a message echoes, the token does not reach the terminal or a CI log.
 * Too short a token would blank out ordinary text, and is no secret worth the name anyway.
 */
function redacting(io: CliIo, token: string): CliIo {
  if (token.length < 8) return io;
  const scrub = (text: string) => text.split(token).join("[redacted]");
  return { ...io, stdout: (text) => io.stdout(scrub(text)), stderr: (text) => io.stderr(scrub(text)) };
}
