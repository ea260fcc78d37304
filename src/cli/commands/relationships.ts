/**
 * `bundlegate relationships ...`: list, show, create, update, approve, suspend, resume, delete, refresh,
 * preflight and reset-sequence, each one request (or two) to the admin API.
 */
import { type Command, InvalidArgumentError, Option } from "commander";
import {
  type AdminOptions,
  parseLabels,
  type Runner,
  relationshipPath,
  repeatable,
  runAdmin,
  trustDomainArgument,
  usageError,
  withAdminOptions,
} from "../admin-context.js";
import { type CliIo, EXIT_OK, EXIT_REJECTED } from "../io.js";
import { type RelationshipFlags, relationshipDocument } from "../relationship-input.js";
import {
  type RefreshOutcome,
  type RelationshipSummary,
  type RelationshipView,
  relationshipOf,
  renderPreflight,
  renderRefresh,
  renderRelationship,
  renderRelationshipList,
  renderStateLine,
} from "../render-relationships.js";
import { isRecord } from "../render-text.js";

const STATES = ["pending", "active", "suspended"] as const;
const STALENESS = ["fresh", "stale", "critical", "never_synced"] as const;
const PROFILES = ["https_web", "https_spiffe"] as const;

interface ListOptions extends AdminOptions {
  readonly state?: string;
  readonly owner?: string;
  readonly label: readonly string[];
  readonly staleness?: string;
}

type CreateOptions = AdminOptions & RelationshipFlags;
type UpdateOptions = AdminOptions & Omit<RelationshipFlags, "trustDomain"> & { readonly revision?: number };

export function registerRelationshipsCommands(program: Command, io: CliIo, run: Runner): void {
  const group = program
    .command("relationships")
    .description("manage federation relationships through the admin API")
    .addHelpText("after", "\nExit status: 0 done; 1 the API refused or could not be reached; 2 usage error.");

  withAdminOptions(
    group
      .command("list")
      .description("list relationships with their state and freshness")
      .addOption(new Option("--state <state>", "only this state").choices(STATES))
      .option("--owner <owner>", "only this owner")
      .option("--label <key=value>", "only relationships with this label (repeatable: all must match)", repeatable, [])
      .addOption(new Option("--staleness <staleness>", "only this freshness").choices(STALENESS)),
  ).action((options: ListOptions) =>
    run(() =>
      runAdmin(io, options, async ({ client, io, json, printJson }) => {
        // Checked as create and update check theirs; the API takes the filters as they were typed.
        parseLabels(options.label, io);
        const query: [string, string][] = [];
        if (options.state !== undefined) query.push(["state", options.state]);
        if (options.owner !== undefined) query.push(["owner", options.owner]);
        for (const label of options.label) query.push(["label", label]);
        if (options.staleness !== undefined) query.push(["staleness", options.staleness]);
        const { body } = await client.request({ method: "GET", path: "/v1/relationships", query });
        if (json) {
          printJson(body);
          return EXIT_OK;
        }
        const relationships = isRecord(body) && Array.isArray(body.relationships) ? body.relationships : [];
        io.stdout(renderRelationshipList(relationships as RelationshipSummary[]));
        return EXIT_OK;
      }),
    ),
  );

  withAdminOptions(
    group
      .command("show")
      .description("show one relationship: config, status, bundle, warnings, quarantine, preflight")
      .argument("<trust-domain>", "the partner's trust domain"),
  ).action((td: string, options: AdminOptions) =>
    run(() =>
      runAdmin(io, options, async ({ client, io, json, printJson }) => {
        const name = trustDomainArgument(td, io);
        const { body } = await client.request({ method: "GET", path: relationshipPath(name) });
        if (json) printJson(body);
        else io.stdout(renderRelationship(relationshipOf(body, name), io.now()));
        return EXIT_OK;
      }),
    ),
  );

  withAdminOptions(
    relationshipFlags(
      group
        .command("create")
        .description("create a relationship (pending until approved) from --file or flags")
        .option("--trust-domain <name>", "the partner's trust domain"),
    ),
  )
    .addHelpText(
      "after",
      "\n--file takes the relationship as the config file writes it (YAML or JSON; bootstrap_bundle_file and\n" +
        "ca_file are read relative to it and sent as bootstrap_bundle and ca_pem). Flags override its fields.",
    )
    .action((options: CreateOptions) =>
      run(() =>
        runAdmin(io, options, async ({ client, io, json, printJson }) => {
          if (options.trustDomain !== undefined) trustDomainArgument(options.trustDomain, io, "--trust-domain");
          const document = await relationshipDocument(options, io, "create");
          const { body } = await client.request({ method: "POST", path: "/v1/relationships", body: document });
          if (json) {
            printJson(body);
            return EXIT_OK;
          }
          const view = relationshipOf(body, String(document.trust_domain));
          io.stdout(`created ${view.trust_domain}\n\n${renderRelationship(view, io.now())}`);
          return EXIT_OK;
        }),
      ),
    );

  withAdminOptions(
    relationshipFlags(
      group
        .command("update")
        .description("change fields of a relationship made through the API (PATCH); only the fields given change")
        .argument("<trust-domain>", "the partner's trust domain")
        .option(
          "--revision <n>",
          "only if the relationship is still at this revision (from `show`); refused if someone changed it since",
          parsePositiveInteger,
        )
        .option("--unset <field>", "remove this field, e.g. contact or review_by (repeatable)", repeatable, []),
    ),
  ).action((td: string, options: UpdateOptions) =>
    run(() =>
      runAdmin(io, options, async ({ client, io, json, printJson }) => {
        const name = trustDomainArgument(td, io);
        const document = await relationshipDocument(options, io, "update");
        if (document.trust_domain !== undefined && document.trust_domain !== name) {
          usageError(
            io,
            "--file",
            "ERR_CLI_USAGE",
            `trust_domain ${String(document.trust_domain)} is not ${name}; a trust domain cannot be changed`,
          );
        }
        delete document.trust_domain;
        const { body } = await client.request({
          method: "PATCH",
          path: relationshipPath(name),
          body: document,
          ...(options.revision === undefined ? {} : { headers: { "if-match": `"${options.revision}"` } }),
        });
        if (json) printJson(body);
        else io.stdout(renderStateLine("updated", relationshipOf(body, name)));
        return EXIT_OK;
      }),
    ),
  );

  const lifecycle = (
    command: string,
    description: string,
    action: string,
    done: string,
    extra?: (cmd: Command) => Command,
    body?: (options: AdminOptions & Record<string, unknown>) => unknown,
  ) => {
    const cmd = group
      .command(command)
      .description(description)
      .argument("<trust-domain>", "the partner's trust domain");
    withAdminOptions(extra === undefined ? cmd : extra(cmd)).action(
      (td: string, options: AdminOptions & Record<string, unknown>) =>
        run(() =>
          runAdmin(io, options, async ({ client, io, json, printJson }) => {
            const name = trustDomainArgument(td, io);
            const payload = body?.(options);
            const { body: answer } = await client.request({
              method: "POST",
              path: relationshipPath(name, action),
              ...(payload === undefined ? {} : { body: payload }),
            });
            if (json) printJson(answer);
            else io.stdout(renderStateLine(done, relationshipOf(answer, name)));
            return EXIT_OK;
          }),
        ),
    );
  };

  lifecycle("approve", "approve a pending relationship: it becomes active", "/approve", "approved");
  lifecycle(
    "suspend",
    "suspend a relationship: its bundle is no longer distributed (it is still polled)",
    "/suspend",
    "suspended",
    (cmd) => cmd.option("--reason <text>", "why (kept in the audit log)"),
    (options) => (options.reason === undefined ? {} : { reason: options.reason }),
  );
  lifecycle("resume", "resume a suspended relationship", "/resume", "resumed");
  lifecycle(
    "reset-sequence",
    "forget the highest spiffe_sequence seen, so a partner that restarted its sequence is accepted again",
    "/sequence/reset",
    "sequence reset",
  );

  withAdminOptions(
    group
      .command("delete")
      .description("delete a relationship made through the API: its bundle stops being trusted at once")
      .argument("<trust-domain>", "the partner's trust domain")
      .option("--yes", "confirm the deletion", false),
  ).action((td: string, options: AdminOptions & { readonly yes: boolean }) =>
    run(() =>
      runAdmin(io, options, async ({ client, io, json, printJson }) => {
        const name = trustDomainArgument(td, io);
        if (!options.yes) {
          usageError(
            io,
            "--yes",
            "ERR_CLI_CONFIRMATION_REQUIRED",
            `deleting ${name} removes its trust at once; pass --yes to confirm`,
          );
        }
        await client.request({ method: "DELETE", path: relationshipPath(name) });
        if (json) printJson({ deleted: name });
        else io.stdout(`deleted ${name}\n`);
        return EXIT_OK;
      }),
    ),
  );

  withAdminOptions(
    group
      .command("refresh")
      .description("fetch the partner's bundle now and report what was decided")
      .addHelpText(
        "after",
        "\nExit status: 0 fetched (accepted, unchanged or quarantined); 1 the fetch failed or the bundle was rejected, or the API refused; 2 usage error.",
      )
      .argument("<trust-domain>", "the partner's trust domain"),
  ).action((td: string, options: AdminOptions) =>
    run(() =>
      runAdmin(io, options, async ({ client, io, json, printJson }) => {
        const name = trustDomainArgument(td, io);
        const { body } = await client.request({ method: "POST", path: relationshipPath(name, "/refresh") });
        if (json) {
          printJson(body);
          return EXIT_OK;
        }
        const outcome = (isRecord(body) && isRecord(body.outcome) ? body.outcome : {}) as RefreshOutcome;
        const view =
          isRecord(body) && isRecord(body.relationship)
            ? (body.relationship as unknown as RelationshipView)
            : undefined;
        io.stdout(renderRefresh(outcome, view, name));
        // The API answered, but a fetch that failed or a bundle refused is a failed refresh for a script.
        if (outcome.error_code !== undefined) {
          io.stderr(`error: the refresh of ${name} failed (${outcome.error_code})\n`);
          return EXIT_REJECTED;
        }
        if (outcome.result === "rejected") {
          io.stderr(`error: the bundle fetched from ${name} was rejected by its policy (ERR_CLI_BUNDLE_REJECTED)\n`);
          return EXIT_REJECTED;
        }
        return EXIT_OK;
      }),
    ),
  );

  withAdminOptions(
    group
      .command("preflight")
      .description("check the relationship's endpoint now (reachability, TLS, bundle) and show the verdict")
      .addHelpText(
        "after",
        "\nExit status: 0 verdict ok or warning; 1 verdict fail, or the API refused; 2 usage error.",
      )
      .argument("<trust-domain>", "the partner's trust domain"),
  ).action((td: string, options: AdminOptions) =>
    run(() =>
      runAdmin(io, options, async ({ client, io, json, printJson }) => {
        const name = trustDomainArgument(td, io);
        const { body } = await client.request({ method: "POST", path: relationshipPath(name, "/preflight") });
        if (json) {
          printJson(body);
          return EXIT_OK;
        }
        const preflight = isRecord(body) && isRecord(body.preflight) ? body.preflight : {};
        io.stdout(`${name}: ${renderPreflight(preflight, io.now())}`);
        if (preflight.verdict === "fail") {
          const code = typeof preflight.code === "string" ? preflight.code : "ERR_CLI_PREFLIGHT_FAILED";
          io.stderr(`error: the preflight of ${name} failed (${code})\n`);
          return EXIT_REJECTED;
        }
        return EXIT_OK;
      }),
    ),
  );
}

/** The fields of a relationship document, shared by create and update. */
function relationshipFlags(command: Command): Command {
  return command
    .option("--file <file>", "the relationship document, YAML or JSON ('-' for standard input)")
    .option("--endpoint-url <url>", "the partner's bundle endpoint URL (https)")
    .addOption(new Option("--profile <profile>", "bundle endpoint profile").choices(PROFILES))
    .option("--endpoint-spiffe-id <id>", "https_spiffe: the SPIFFE ID the endpoint's X509-SVID must carry")
    .option(
      "--bootstrap-bundle <file>",
      "https_spiffe: the partner's bundle (SPIFFE JSON or PEM) to trust until the first fetch",
    )
    .option("--ca-file <pem>", "https_web: PEM CA certificates to trust for the endpoint instead of the system roots")
    .option("--owner <owner>", "who answers for the relationship")
    .option("--contact <contact>", "how to reach the partner")
    .option("--description <text>", "what the relationship is for")
    .option("--label <key=value>", "a label (repeatable)", repeatable, [])
    .option("--review-by <date>", "when the relationship is next reviewed (YYYY-MM-DD or an ISO time)")
    .option("--expires-at <date>", "when the relationship ends (YYYY-MM-DD or an ISO time)")
    .option("--proxy <url>", "proxy URL for fetching this partner, or 'direct'")
    .option("--allow-cidr <cidr>", "let fetches reach this special-purpose address range (repeatable)", repeatable, []);
}

function parsePositiveInteger(value: string): number {
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1) {
    throw new InvalidArgumentError("must be a whole number, 1 or more");
  }
  return n;
}
