/**
 * `bundlegate invite create|accept|show`: federation invitations.
 *
 * create asks this gateway's admin API to sign an invitation to its trust domain; the token goes to stdout
 * alone (so `> invitation.jwt` keeps just the token) and what it says goes to stderr. accept hands a
 * partner's token to this gateway's API, which verifies it and creates a pending relationship. show decodes
 * a token here, without any API and without verifying its signature.
 */
import { type Command, InvalidArgumentError } from "commander";
import { isBundlegateError } from "../../errors.js";
import { decodeInvitation } from "../../federation/invitation.js";
import {
  type AdminOptions,
  parseLabels,
  type Runner,
  readText,
  repeatable,
  runAdmin,
  usageError,
  withAdminOptions,
} from "../admin-context.js";
import { type CliIo, EXIT_OK, EXIT_REJECTED } from "../io.js";
import { parseJsonExact, writeJsonExact } from "../json-text.js";
import { renderInvitation } from "../render-invitation.js";
import { relationshipOf, renderRelationship } from "../render-relationships.js";
import { isRecord, scalarText } from "../render-text.js";

interface CreateOptions extends AdminOptions {
  readonly ttl?: number;
}

interface AcceptOptions extends AdminOptions {
  readonly owner: string;
  readonly contact?: string;
  readonly description?: string;
  readonly label: readonly string[];
  readonly reviewBy?: string;
  readonly expiresAt?: string;
}

const NOT_VERIFIED =
  "decoded locally: the signature is NOT verified (the gateway that accepts it verifies it against the bundle inside)";

function parseTtl(value: string): number {
  const seconds = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(seconds) || seconds < 1) {
    throw new InvalidArgumentError("must be a whole number of seconds, 1 or more");
  }
  return seconds;
}

export function registerInviteCommands(program: Command, io: CliIo, run: Runner): void {
  const group = program.command("invite").description("federation invitations: make, accept, or read one");

  withAdminOptions(
    group
      .command("create")
      .description("sign an invitation to federate with this trust domain; prints the token")
      .option("--ttl <seconds>", "how long the invitation is valid (default: the gateway's setting)", parseTtl),
  ).action((options: CreateOptions) =>
    run(() =>
      runAdmin(io, options, async ({ client, io, json, printJson }) => {
        const { body } = await client.request({
          method: "POST",
          path: "/v1/invitations",
          body: options.ttl === undefined ? {} : { ttl_seconds: options.ttl },
        });
        if (json) {
          printJson(body);
          return EXIT_OK;
        }
        const answer = isRecord(body) ? body : {};
        io.stdout(`${scalarText(answer.token)}\n`);
        const { text } = renderInvitation("invitation (the token is on standard output)", answer.invitation, io.now());
        io.stderr(
          `${text}\nGive the token to the partner's operator. On their gateway they run:\n` +
            "  bundlegate invite accept TOKEN --owner TEAM\n" +
            "which creates a pending relationship with this trust domain for them to approve.\n",
        );
        return EXIT_OK;
      }),
    ),
  );

  withAdminOptions(
    group
      .command("accept")
      .description("accept a partner's invitation: the API verifies it and creates a pending relationship")
      .argument("<token>", "the invitation token, or - to read it from standard input")
      .requiredOption("--owner <owner>", "who answers for the relationship")
      .option("--contact <contact>", "how to reach the partner")
      .option("--description <text>", "what the relationship is for")
      .option("--label <key=value>", "a label (repeatable)", repeatable, [])
      .option("--review-by <date>", "when the relationship is next reviewed (YYYY-MM-DD or an ISO time)")
      .option("--expires-at <date>", "when the relationship ends (YYYY-MM-DD or an ISO time)"),
  ).action((tokenArgument: string, options: AcceptOptions) =>
    run(() =>
      runAdmin(io, options, async ({ client, io, json, printJson }) => {
        const token = await readToken(tokenArgument, io);
        const labels = parseLabels(options.label, io);
        const { body } = await client.request({
          method: "POST",
          path: "/v1/invitations/accept",
          body: {
            token,
            owner: options.owner,
            contact: options.contact,
            description: options.description,
            labels: options.label.length === 0 ? undefined : labels,
            review_by: options.reviewBy,
            expires_at: options.expiresAt,
          },
        });
        if (json) {
          printJson(body);
          return EXIT_OK;
        }
        const view = relationshipOf(body, "-");
        io.stdout(`created ${view.trust_domain} from the invitation\n\n${renderRelationship(view, io.now())}`);
        return EXIT_OK;
      }),
    ),
  );

  group
    .command("show")
    .description("decode an invitation token here, without the API and without verifying it")
    .argument("<token>", "the invitation token, or - to read it from standard input")
    .option("--json", "print the header and payload as JSON", false)
    .addHelpText(
      "after",
      "\nExit status: 0 decoded; 1 malformed, expired, or its bundle would be refused; 2 usage error.",
    )
    .action((tokenArgument: string, options: { readonly json: boolean }) =>
      run(() => showInvitation(tokenArgument, options, io)),
    );
}

async function showInvitation(tokenArgument: string, options: { readonly json: boolean }, io: CliIo): Promise<number> {
  const token = await readToken(tokenArgument, io);
  let decoded: ReturnType<typeof decodeInvitation>;
  try {
    decoded = decodeInvitation(token);
  } catch (error) {
    if (!isBundlegateError(error)) throw error;
    io.stderr(`error: ${error.message} (${error.code})\n`);
    return EXIT_REJECTED;
  }
  // The exact texts, so a 64-bit spiffe_sequence in the bundle is shown and inspected as written.
  const header = parseJsonExact(decoded.headerJson) as Record<string, unknown>;
  const payload = parseJsonExact(decoded.payloadJson);
  const now = io.now();
  const rendering = renderInvitation(`invitation (${NOT_VERIFIED})`, payload, now, header);
  if (options.json) {
    const out = { verified: false, expired: rendering.expired, header, payload };
    io.stdout(`${writeJsonExact(out, 2)}\n`);
  } else {
    io.stdout(rendering.text);
  }
  if (rendering.expired) {
    io.stderr("error: the invitation has expired: ask the partner for a new one (ERR_INVITATION_EXPIRED)\n");
    return EXIT_REJECTED;
  }
  if (rendering.bundleRefused) {
    io.stderr("error: the bundle inside would be refused (ERR_INVITATION_BAD_BUNDLE)\n");
    return EXIT_REJECTED;
  }
  return EXIT_OK;
}

async function readToken(argument: string, io: CliIo): Promise<string> {
  const token = (argument === "-" ? await readText("TOKEN", "-", io) : argument).trim();
  if (token === "") usageError(io, "TOKEN", "ERR_CLI_USAGE", "the invitation token is empty");
  return token;
}
