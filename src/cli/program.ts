/**
 * The `bundlegate` command line. Commander parses; each command lives in its own file under
 * commands/ and returns its exit status, so the whole program runs in-process in tests.
 */
import { Command, CommanderError, Option } from "commander";
import { bundleInspect } from "./commands/bundle-inspect.js";
import { CliExit, type CliIo, EXIT_OK, EXIT_USAGE } from "./io.js";
import { VERSION } from "./version.js";

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
