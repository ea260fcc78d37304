/**
 * The `bundlegate` command line. Commander parses; each command lives in its own file under
 * commands/ and returns its exit status, so the whole program runs in-process in tests.
 */
import { Command, CommanderError, InvalidArgumentError, Option } from "commander";
import { bundleInspect } from "./commands/bundle-inspect.js";
import { dev } from "./commands/dev.js";
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
    .option("--internal-port <port>", "health and metrics port", parsePort, 8080)
    .addOption(
      new Option("--log-level <level>", "log level (logs go to stderr)")
        .choices(["fatal", "error", "warn", "info", "debug", "trace", "silent"])
        .default("info"),
    )
    .action(async (options: Parameters<typeof dev>[0]) => {
      exitCode = await dev(options, io);
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
