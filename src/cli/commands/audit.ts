/** `bundlegate audit list`: the admin audit log, newest first, one page at a time. */
import { type Command, InvalidArgumentError } from "commander";
import {
  type AdminOptions,
  type Runner,
  runAdmin,
  trustDomainArgument,
  usageError,
  withAdminOptions,
} from "../admin-context.js";
import { type CliIo, EXIT_OK } from "../io.js";
import { formatDuration, isRecord, renderTable, scalarText } from "../render-text.js";

interface AuditOptions extends AdminOptions {
  readonly trustDomain?: string;
  readonly actor?: string;
  readonly action?: string;
  readonly since?: string;
  readonly until?: string;
  readonly limit?: number;
  readonly before?: string;
}

interface AuditEntry {
  readonly id?: string;
  readonly at?: string;
  readonly actor?: string;
  readonly action?: string;
  readonly trust_domain?: string;
  readonly details?: unknown;
}

const DURATION = /^(\d+)([smhd])$/;
const UNIT_SECONDS: Readonly<Record<string, number>> = { s: 1, m: 60, h: 3600, d: 86_400 };

function parseLimit(value: string): number {
  const limit = Number(value);
  if (!/^\d+$/.test(value) || limit < 1 || limit > 1000) throw new InvalidArgumentError("must be 1 to 1000");
  return limit;
}

export function registerAuditCommands(program: Command, io: CliIo, run: Runner): void {
  const group = program.command("audit").description("read the admin audit log");
  withAdminOptions(
    group
      .command("list")
      .description("list audit entries, newest first")
      .option("--trust-domain <name>", "only entries about this relationship")
      .option("--actor <actor>", "only entries by this caller (e.g. token:ops)")
      .option("--action <action>", "only this action (e.g. relationship.approve)")
      .option("--since <time>", "entries at or after: an RFC 3339 time, a date, or an age such as 30m, 12h, 7d")
      .option("--until <time>", "entries at or before: same forms as --since")
      .option("--limit <n>", "entries per page, 1 to 1000 (default: the API's, 100)", parseLimit)
      .option("--before <id>", "the page after this entry id (printed at the end of the previous page)"),
  ).action((options: AuditOptions) =>
    run(() =>
      runAdmin(io, options, async ({ client, io, json, printJson }) => {
        const query: [string, string][] = [];
        if (options.trustDomain !== undefined) {
          query.push(["trust_domain", trustDomainArgument(options.trustDomain, io, "--trust-domain")]);
        }
        if (options.actor !== undefined) query.push(["actor", options.actor]);
        if (options.action !== undefined) query.push(["action", options.action]);
        if (options.since !== undefined) query.push(["since", moment("--since", options.since, io)]);
        if (options.until !== undefined) query.push(["until", moment("--until", options.until, io)]);
        if (options.limit !== undefined) query.push(["limit", String(options.limit)]);
        if (options.before !== undefined) query.push(["before", options.before]);
        const { body } = await client.request({ method: "GET", path: "/v1/audit", query });
        if (json) {
          printJson(body);
          return EXIT_OK;
        }
        const answer = isRecord(body) ? body : {};
        const entries = (Array.isArray(answer.entries) ? answer.entries : []) as AuditEntry[];
        io.stdout(renderAudit(entries, typeof answer.next === "string" ? answer.next : undefined, io.now()));
        return EXIT_OK;
      }),
    ),
  );
}

/** An RFC 3339 time or a date as given (the API checks it), or an age turned into the time that long ago. */
function moment(flag: string, value: string, io: CliIo): string {
  const age = DURATION.exec(value);
  if (age) return new Date(io.now().getTime() - Number(age[1]) * UNIT_SECONDS[age[2]!]! * 1000).toISOString();
  if (/^\d{4}-\d{2}-\d{2}/.test(value) && !Number.isNaN(Date.parse(value))) return value;
  return usageError(io, flag, "ERR_CLI_USAGE", `${JSON.stringify(value)} is not a time, a date or an age like 12h`);
}

function renderAudit(entries: readonly AuditEntry[], next: string | undefined, now: Date): string {
  if (entries.length === 0) return "no audit entries\n";
  const rows = entries.map((entry) => [
    scalarText(entry.at),
    ago(entry.at, now),
    scalarText(entry.actor),
    scalarText(entry.action),
    scalarText(entry.trust_domain),
    detailsText(entry.details),
  ]);
  const table = renderTable(["AT", "AGO", "ACTOR", "ACTION", "TRUST DOMAIN", "DETAILS"], rows);
  const more = next === undefined ? "" : `\nmore: add --before ${next} for the next page\n`;
  return `${table}${more}`;
}

function ago(at: string | undefined, now: Date): string {
  const ms = at === undefined ? Number.NaN : Date.parse(at);
  return Number.isNaN(ms) ? "-" : formatDuration((now.getTime() - ms) / 1000);
}

function detailsText(details: unknown): string {
  if (!isRecord(details)) return details === undefined ? "" : scalarText(details);
  return Object.entries(details)
    .map(([key, value]) => `${key}=${scalarText(value)}`)
    .join(" ");
}
