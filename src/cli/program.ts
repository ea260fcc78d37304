/**
 * The `bundlegate` command line. Commander parses; each command lives in its own file under
 * commands/ and returns its exit status, so the whole program runs in-process in tests.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { repeatable } from "./admin-context.js";
import { registerAuditCommands } from "./commands/audit.js";
import { bundleInspect } from "./commands/bundle-inspect.js";
import { DEFAULT_PARTNER_PORT, DEFAULT_PARTNER_TRUST_DOMAIN, dev } from "./commands/dev.js";
import { registerInviteCommands } from "./commands/invite.js";
import { PROBE_DEFAULTS, type ProbeOptions, probe } from "./commands/probe.js";
import { registerQuarantineCommands } from "./commands/quarantine.js";
import { registerRelationshipsCommands } from "./commands/relationships.js";
import { serve } from "./commands/serve.js";
import { validateConfig } from "./commands/validate-config.js";
import { CliExit, type CliIo, EXIT_OK, EXIT_USAGE } from "./io.js";
import { VERSION } from "./version.js";

function parsePort(value: string): number {
  const port = Number(value);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new InvalidArgumentError("must be a port number, 0 to 65535");
  }
  return port;
}

function parseTimeout(value: string): number {
  const ms = Number(value);
  // setTimeout fires at once past 2^31-1 ms, which would turn a long timeout into none.
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(ms) || ms < 1 || ms > 2_147_483_647) {
    throw new InvalidArgumentError("must be a whole number of milliseconds, 1 to 2147483647");
  }
  return ms;
}

export async function runCli(argv: readonly string[], io: CliIo): Promise<number> {
  let exitCode = EXIT_OK;
  const program = new Command("bundlegate")
    .description("SPIFFE federation bundle gateway and trust-bundle sync service")
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeOut: io.stdout, writeErr: io.stderr })
    .showHelpAfterError("(run with --help for usage)");

  const bundle = program.command("bundle").description("work with SPIFFE trust bundles");
  bundle
    .command("inspect")
    .description("read a bundle file (SPIFFE JSON or PEM; '-' for stdin) exactly as the gateway would and summarise it")
    .argument("<file>", "bundle file, or - for standard input")
    .option("--trust-domain <name>", "the trust domain the bundle belongs to (checks the authorities' SPIFFE IDs)")
    .addOption(new Option("--format <format>", "input format").choices(["spiffe", "pem", "auto"]).default("auto"))
    .option("--json", "print the summary as JSON", false)
    .addOption(
      new Option("--canonical <format>", "also print the canonical re-serialization").choices(["spiffe", "pem"]),
    )
    .addHelpText(
      "after",
      "\nExit status: 0 the bundle is accepted and has a usable authority; 1 it is rejected or has none; 2 usage error.",
    )
    .action(
      async (
        file: string,
        options: {
          trustDomain?: string;
          format: "spiffe" | "pem" | "auto";
          json: boolean;
          canonical?: "spiffe" | "pem";
        },
      ) => {
        exitCode = await bundleInspect(file, options, io);
      },
    );

  program
    .command("serve")
    .description("run the gateway from a config file until SIGINT or SIGTERM")
    .requiredOption("-c, --config <file>", "YAML config file (BUNDLEGATE_* environment variables override it)")
    .action(async (options: { config: string }) => {
      exitCode = await serve(options, io);
    });

  program
    .command("dev")
    .description("run a demo gateway on localhost with a generated dev PKI (what npm start runs)")
    .option("--dir <dir>", "folder for the generated bundle, certificates and state", ".bundlegate/dev")
    .option("--trust-domain <name>", "the demo trust domain", "dev.bundlegate.test")
    .option("--host <host>", "address to listen on", "127.0.0.1")
    .option("--web-port <port>", "https_web port", parsePort, 8443)
    .option("--spiffe-port <port>", "https_spiffe port", parsePort, 8444)
    .option("--internal-port <port>", "health, distribution and admin API port", parsePort, 8080)
    .option("--metrics-port <port>", "Prometheus metrics port", parsePort, 9464)
    .option("--partner-trust-domain <name>", "the demo partner's trust domain", DEFAULT_PARTNER_TRUST_DOMAIN)
    .option("--partner-port <port>", "the demo partner's https_spiffe port", parsePort, DEFAULT_PARTNER_PORT)
    .addOption(
      new Option("--log-level <level>", "log level (logs go to stderr)")
        .choices(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
        .default("info"),
    )
    .action(async (options: Parameters<typeof dev>[0]) => {
      exitCode = await dev(options, io);
    });

  program
    .command("probe")
    .description("fetch a partner's bundle endpoint once with every check and report what was learnt")
    .argument("<url>", "the bundle endpoint URL (https)")
    .requiredOption("--trust-domain <name>", "the trust domain whose bundle the endpoint serves")
    .addOption(
      new Option("--profile <profile>", "bundle endpoint profile")
        .choices(["https_web", "https_spiffe"])
        .makeOptionMandatory(),
    )
    .option("--endpoint-id <spiffe-id>", "https_spiffe: the SPIFFE ID the endpoint's X509-SVID must carry")
    .option("--bundle <file>", "https_spiffe: bundle (SPIFFE JSON or PEM) the endpoint's X509-SVID must chain to")
    .option("--ca <file>", "https_web: PEM CA certificates to trust instead of the system roots")
    .option("--previous <file>", "previous bundle (SPIFFE JSON or PEM) to decide against; default: a first bundle")
    .option("--proxy <url>", "proxy URL, or 'direct'; default: HTTPS_PROXY and NO_PROXY")
    .option("--allow-cidr <cidr>", "let the fetch reach this special-purpose range (repeatable)", repeatable, [])
    .option("--timeout-ms <ms>", `timeout of the whole fetch (default ${PROBE_DEFAULTS.totalTimeoutMs})`, parseTimeout)
    .option("--json", "print the report as JSON", false)
    .addHelpText(
      "after",
      "\nExit status: 0 fetched, a usable bundle, decision not reject; 1 the probe failed, the bundle is unusable or rejected; 2 usage error.",
    )
    .action(async (url: string, options: ProbeOptions) => {
      exitCode = await probe(url, options, io);
    });

  program
    .command("validate-config")
    .description("load a config file and BUNDLEGATE_* overrides exactly as serve would; list every problem")
    .argument("<file>", "YAML config file")
    .option("--json", "print the result as JSON", false)
    .addHelpText(
      "after",
      "\nExit status: 0 valid; 1 invalid (every issue listed); 2 the file cannot be read or usage error.",
    )
    .action(async (file: string, options: { json: boolean }) => {
      exitCode = await validateConfig(file, options, io, io.env);
    });

  // The admin commands (one file each) talk to the admin API; `run` keeps their exit status.
  const run = async (action: () => Promise<number>) => {
    exitCode = await action();
  };
  registerRelationshipsCommands(program, io, run);
  registerQuarantineCommands(program, io, run);
  registerInviteCommands(program, io, run);
  registerAuditCommands(program, io, run);

  try {
    await program.parseAsync(argv, { from: "user" });
    return exitCode;
  } catch (error) {
    if (error instanceof CliExit) return error.exitCode;
    if (error instanceof CommanderError) {
      // --help and --version arrive here too, with exit code 0.
      return error.exitCode === 0 ? EXIT_OK : EXIT_USAGE;
    }
    throw error;
  }
}
