/**
 * `bundlegate quarantine accept|discard TRUST_DOMAIN`: decide on a bundle held in quarantine.
 *
 * Both name the bundle by digest, so the API acts on exactly the bundle the operator saw: a newer bundle that
 * replaced it in quarantine meanwhile makes the API refuse instead of accepting unseen content. Without
 * --digest the command reads the relationship first and shows what is held; accepting that still needs --yes,
 * since accepting adds trust. Discarding keeps the trust as it is, so it needs no confirmation.
 */
import type { Command } from "commander";
import { BundlegateError } from "../../errors.js";
import {
  type AdminContext,
  type AdminOptions,
  type Runner,
  relationshipPath,
  runAdmin,
  trustDomainArgument,
  usageError,
  withAdminOptions,
} from "../admin-context.js";
import { type CliIo, EXIT_OK, EXIT_USAGE } from "../io.js";
import { type RelationshipView, relationshipOf, renderQuarantine, renderStateLine } from "../render-relationships.js";
import { isRecord } from "../render-text.js";

interface QuarantineOptions extends AdminOptions {
  readonly digest?: string;
  readonly yes?: boolean;
}

type Decision = "accept" | "discard";

export function registerQuarantineCommands(program: Command, io: CliIo, run: Runner): void {
  const group = program
    .command("quarantine")
    .description("accept or discard a bundle held in quarantine (needs the approve scope)")
    .addHelpText(
      "after",
      "\nExit status: 0 done; 1 the API refused (nothing quarantined, another digest) or could not be reached; " +
        "2 usage error, or accept without --digest or --yes.",
    );

  withAdminOptions(
    group
      .command("accept")
      .description("accept the quarantined bundle: it becomes the bundle served and trusted")
      .argument("<trust-domain>", "the partner's trust domain")
      .option("--digest <digest>", "the quarantined bundle's digest, as `relationships show` prints it")
      .option("--yes", "accept the bundle in quarantine now, whatever its digest (it is printed first)", false),
  ).action((td: string, options: QuarantineOptions) =>
    run(() => runAdmin(io, options, (context) => decide("accept", td, options, context))),
  );

  withAdminOptions(
    group
      .command("discard")
      .description("discard the quarantined bundle: the bundle served stays as it is")
      .argument("<trust-domain>", "the partner's trust domain")
      .option("--digest <digest>", "the quarantined bundle's digest; default: the one in quarantine now (printed)"),
  ).action((td: string, options: QuarantineOptions) =>
    run(() => runAdmin(io, options, (context) => decide("discard", td, options, context))),
  );
}

async function decide(
  decision: Decision,
  td: string,
  options: QuarantineOptions,
  { client, io, json, printJson }: AdminContext,
): Promise<number> {
  const name = trustDomainArgument(td, io);
  // `bundle inspect` prints digests as "sha256:<hex>"; the API takes the hex.
  let digest = options.digest?.replace(/^sha256:/, "");
  if (digest === "") usageError(io, "--digest", "ERR_CLI_USAGE", "must not be empty");
  if (digest === undefined) {
    const { body } = await client.request({ method: "GET", path: relationshipPath(name) });
    const view = (isRecord(body) && isRecord(body.relationship) ? body.relationship : {}) as Partial<RelationshipView>;
    const held = view.quarantine;
    if (held?.digest === undefined) {
      throw new BundlegateError("ERR_CLI_NOTHING_QUARANTINED", `no bundle of ${name} is in quarantine`);
    }
    // Under --json stdout carries only the API's answer; what the command looked at goes to stderr.
    const say = json ? io.stderr : io.stdout;
    say(renderQuarantine(name, held, io.now()));
    if (decision === "accept" && options.yes !== true) {
      io.stderr(
        `error: not accepted: accepting adds trust; pass --digest ${held.digest} to accept exactly this bundle ` +
          "(or --yes) (ERR_CLI_CONFIRMATION_REQUIRED)\n",
      );
      return EXIT_USAGE;
    }
    digest = held.digest;
  }
  const { body } = await client.request({
    method: "POST",
    path: relationshipPath(name, `/quarantine/${decision}`),
    body: { digest },
  });
  if (json) {
    printJson(body);
  } else {
    const done = `${decision === "accept" ? "accepted" : "discarded"} ${digest}`;
    io.stdout(renderStateLine(done, relationshipOf(body, name)));
  }
  return EXIT_OK;
}
