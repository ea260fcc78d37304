/**
 * The readable forms of the admin API's relationship answers: the list table, the multi-section view of one
 * relationship, and the one-line results of actions. The shapes below are the API contract as the CLI reads
 * it; rendering is defensive (a field the server leaves out prints as "-"), so a newer server with more
 * fields, or an older one with fewer, still prints.
 */
import {
  fieldLabel,
  formatDuration,
  formatMoment,
  isRecord,
  looksLikeMoment,
  renderTable,
  scalarText,
} from "./render-text.js";

/** Sequences are exact: a number, or a bigint past 2^53 (or a decimal string, if the server writes them so). */
export type Sequence = number | bigint | string;

export interface RelationshipSummary {
  readonly trust_domain: string;
  readonly state: string;
  readonly origin?: string;
  readonly read_only?: boolean;
  readonly owner?: string;
  readonly profile?: string;
  readonly endpoint_url?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly staleness?: {
    readonly state?: string;
    readonly age_seconds?: number;
    readonly stale_after_seconds?: number;
    readonly critical_after_seconds?: number;
  };
  readonly sequence?: Sequence;
  readonly last_success_at?: string;
  readonly last_error_code?: string;
  readonly quarantined?: boolean;
  readonly review_by?: string;
  readonly expires_at?: string;
}

export interface AuthorityView {
  readonly use?: string;
  readonly id?: string;
  readonly not_after?: string;
  /** "valid", "expired" or "not-yet-valid". */
  readonly status?: string;
}

/** Settings a view may carry beyond the summary, shown as they come in the first section. */
const CONFIG_EXTRAS = [
  "bootstrap_bundle",
  "ca_pem",
  "refresh",
  "max_staleness_seconds",
  "proxy",
  "allowed_cidrs",
  "policy",
  "lifecycle",
] as const;

export interface RelationshipView extends RelationshipSummary {
  readonly bootstrap_bundle?: unknown;
  readonly ca_pem?: unknown;
  readonly refresh?: unknown;
  readonly max_staleness_seconds?: number;
  readonly proxy?: string;
  readonly allowed_cidrs?: readonly string[];
  readonly policy?: unknown;
  readonly lifecycle?: unknown;
  readonly revision?: number;
  readonly created_at?: string;
  readonly updated_at?: string;
  readonly contact?: string;
  readonly description?: string;
  readonly endpoint_spiffe_id?: string;
  readonly status?: Readonly<Record<string, unknown>>;
  readonly bundle?: {
    readonly digest?: string;
    readonly sequence?: Sequence;
    readonly refresh_hint_seconds?: number;
    readonly accepted_at?: string;
    readonly usable?: boolean;
    readonly authorities?: readonly AuthorityView[];
  };
  readonly warnings?: readonly unknown[];
  readonly quarantine?: QuarantineView;
  readonly preflight?: Readonly<Record<string, unknown>>;
  readonly health?: Readonly<Record<string, unknown>>;
  readonly review_due?: boolean;
  readonly expiring?: boolean;
}

/** Reasons and diff entries are codes and authority names (strings) today; objects render too. */
export interface QuarantineView {
  readonly digest?: string;
  readonly sequence?: Sequence;
  readonly reasons?: readonly unknown[];
  readonly added?: readonly unknown[];
  readonly removed?: readonly unknown[];
  readonly quarantined_at?: string;
}

export interface RefreshOutcome {
  readonly result?: string;
  readonly sequence?: Sequence;
  readonly digest?: string;
  readonly error_code?: string;
}

/** The relationship of an answer (`{ relationship: View }`); one without it still renders, as far as it goes. */
export function relationshipOf(body: unknown, trustDomain: string): RelationshipView {
  const view = isRecord(body) && isRecord(body.relationship) ? body.relationship : {};
  return { trust_domain: trustDomain, state: "-", ...view } as RelationshipView;
}

export const LIST_HEADERS = [
  "TRUST DOMAIN",
  "STATE",
  "OWNER",
  "PROFILE",
  "STALENESS",
  "AGE",
  "SEQUENCE",
  "LAST ERROR",
] as const;

export function renderRelationshipList(relationships: readonly RelationshipSummary[]): string {
  if (relationships.length === 0) return "no relationships\n";
  const rows = relationships.map((r) => [
    r.trust_domain,
    stateText(r),
    scalarText(r.owner),
    scalarText(r.profile),
    scalarText(r.staleness?.state),
    typeof r.staleness?.age_seconds === "number" ? formatDuration(r.staleness.age_seconds) : "-",
    scalarText(r.sequence),
    scalarText(r.last_error_code),
  ]);
  const count = (predicate: (r: RelationshipSummary) => boolean) => relationships.filter(predicate).length;
  const notes = [
    `${relationships.length} relationship${relationships.length === 1 ? "" : "s"}`,
    ...countNote(
      count((r) => r.state === "pending"),
      "pending approval",
    ),
    ...countNote(
      count((r) => r.quarantined === true),
      "quarantined",
    ),
    ...countNote(
      count((r) => r.staleness?.state === "stale" || r.staleness?.state === "critical"),
      "stale",
    ),
    ...countNote(
      count((r) => r.staleness?.state === "never_synced"),
      "never synced",
    ),
  ];
  return `${renderTable(LIST_HEADERS, rows)}\n${notes.join(", ")}\n`;
}

function countNote(count: number, text: string): string[] {
  return count === 0 ? [] : [`${count} ${text}`];
}

function stateText(r: RelationshipSummary): string {
  return r.quarantined === true ? `${r.state} (quarantine)` : r.state;
}

type Line = (name: string, value: string) => void;

export function renderRelationship(view: RelationshipView, now: Date): string {
  const lines: string[] = [];
  const section = (title: string) => {
    if (lines.length > 0) lines.push("");
    lines.push(title);
  };
  const field: Line = (name, value) => lines.push(`  ${fieldLabel(name)}${value}`);
  const moment = (value: string | undefined) => (value === undefined ? "-" : formatMoment(value, now));
  const td = view.trust_domain;

  section(`relationship ${td}`);
  const flags = [
    ...(view.quarantined === true ? ["a bundle is in quarantine"] : []),
    ...(view.read_only === true ? ["read-only: defined in the config file"] : []),
  ];
  field("state", `${view.state}${flags.length === 0 ? "" : ` (${flags.join("; ")})`}`);
  field("origin", scalarText(view.origin));
  if (view.revision !== undefined) field("revision", scalarText(view.revision));
  field("owner", scalarText(view.owner));
  if (view.contact !== undefined) field("contact", view.contact);
  if (view.description !== undefined) field("description", view.description);
  field("profile", scalarText(view.profile));
  field("endpoint url", scalarText(view.endpoint_url));
  if (view.endpoint_spiffe_id !== undefined) field("endpoint id", view.endpoint_spiffe_id);
  field("labels", labelsText(view.labels));
  if (view.review_by !== undefined) {
    field("review by", `${moment(view.review_by)}${view.review_due === true ? "  REVIEW DUE" : ""}`);
  }
  if (view.expires_at !== undefined) {
    field("expires at", `${moment(view.expires_at)}${view.expiring === true ? "  EXPIRING" : ""}`);
  }
  const extras = Object.fromEntries(
    CONFIG_EXTRAS.filter((key) => view[key] !== undefined).map((key) => [key, view[key]]),
  );
  renderGeneric(extras, lines, "  ", now);
  if (view.created_at !== undefined) field("created", moment(view.created_at));
  if (view.updated_at !== undefined) field("updated", moment(view.updated_at));

  section("staleness");
  field("state", scalarText(view.staleness?.state));
  const age = view.staleness?.age_seconds;
  field("age", typeof age === "number" ? formatDuration(age) : "-");
  const { stale_after_seconds: staleAfter, critical_after_seconds: criticalAfter } = view.staleness ?? {};
  if (typeof staleAfter === "number" && typeof criticalAfter === "number") {
    field("thresholds", `stale after ${formatDuration(staleAfter)}, critical after ${formatDuration(criticalAfter)}`);
  }
  field("last success", view.last_success_at === undefined ? "never" : moment(view.last_success_at));
  field("last error", scalarText(view.last_error_code));

  if (isRecord(view.status) && Object.keys(view.status).length > 0) {
    section("status");
    renderGeneric(view.status, lines, "  ", now);
  }

  section("bundle");
  if (view.bundle === undefined) {
    lines.push("  (none yet: no bundle has been accepted)");
  } else {
    const bundle = view.bundle;
    field("digest", scalarText(bundle.digest));
    field("sequence", scalarText(bundle.sequence));
    field("refresh hint", bundle.refresh_hint_seconds === undefined ? "-" : `${bundle.refresh_hint_seconds}s`);
    field("accepted at", moment(bundle.accepted_at));
    if (bundle.usable === false) field("usable", "NO: no authority is valid now");
    const authorities = bundle.authorities ?? [];
    field("authorities", String(authorities.length));
    for (const authority of authorities) lines.push(`    ${authorityText(authority, now)}`);
  }

  const warnings = view.warnings ?? [];
  if (warnings.length > 0) {
    section("warnings");
    for (const warning of warnings) lines.push(`  ${codedText(warning)}`);
  }

  if (view.quarantine !== undefined) {
    section("quarantine (held until someone accepts or discards it; the bundle above is still served)");
    quarantineLines(td, view.quarantine, lines, now);
  }

  if (view.preflight !== undefined) {
    section("preflight");
    renderPreflightFields(view.preflight, lines, now);
  }

  if (isRecord(view.health) && Object.keys(view.health).length > 0) {
    section("health");
    renderGeneric(view.health, lines, "  ", now);
  }

  if (view.state === "pending") {
    lines.push("", `pending approval: bundlegate relationships approve ${td}`);
  }
  return `${lines.join("\n")}\n`;
}

/** What is held in quarantine, for a person deciding whether to accept it. */
export function renderQuarantine(td: string, quarantine: QuarantineView, now: Date): string {
  const lines = [`in quarantine for ${td}`];
  quarantineLines(td, quarantine, lines, now);
  return `${lines.join("\n")}\n`;
}

function quarantineLines(td: string, q: QuarantineView, lines: string[], now: Date): void {
  const field: Line = (name, value) => lines.push(`  ${fieldLabel(name)}${value}`);
  field("digest", scalarText(q.digest));
  field("sequence", scalarText(q.sequence));
  field("quarantined at", q.quarantined_at === undefined ? "-" : formatMoment(q.quarantined_at, now));
  const reasons = q.reasons ?? [];
  if (reasons.length > 0) {
    lines.push("  reasons:");
    for (const reason of reasons) lines.push(`    ${codedText(reason)}`);
  }
  const added = q.added ?? [];
  const removed = q.removed ?? [];
  lines.push(`  diff against the bundle served: ${added.length} added, ${removed.length} removed`);
  for (const entry of added) lines.push(`    + ${diffEntryText(entry, now)}`);
  for (const entry of removed) lines.push(`    - ${diffEntryText(entry, now)}`);
  if (q.digest !== undefined) {
    field("to accept", `bundlegate quarantine accept ${td} --digest ${q.digest}`);
    field("to discard", `bundlegate quarantine discard ${td} --digest ${q.digest}`);
  }
}

/** A preflight report: verdict, when, the code and hint first, then whatever else it holds. */
export function renderPreflight(preflight: Readonly<Record<string, unknown>>, now: Date): string {
  const lines = ["preflight"];
  renderPreflightFields(preflight, lines, now);
  return `${lines.join("\n")}\n`;
}

function renderPreflightFields(preflight: Readonly<Record<string, unknown>>, lines: string[], now: Date): void {
  const { verdict, checked_at, code, hint, ...rest } = preflight;
  const field: Line = (name, value) => lines.push(`  ${fieldLabel(name)}${value}`);
  field("verdict", scalarText(verdict));
  field("checked at", looksLikeMoment(checked_at) ? formatMoment(checked_at, now) : scalarText(checked_at));
  if (code !== undefined) field("code", scalarText(code));
  if (hint !== undefined) field("hint", scalarText(hint));
  renderGeneric(rest, lines, "  ", now);
}

/** After approve, suspend, resume, reset-sequence, update and the quarantine actions: where the relationship stands. */
export function renderStateLine(done: string, view: RelationshipView): string {
  const parts = [`state ${view.state}`];
  if (view.quarantined === true) parts.push("a bundle is in quarantine");
  if (view.revision !== undefined) parts.push(`revision ${view.revision}`);
  if (view.bundle?.sequence !== undefined) parts.push(`serving sequence ${scalarText(view.bundle.sequence)}`);
  return `${view.trust_domain}: ${done}; ${parts.join(", ")}\n`;
}

/** What a refresh found; the sequence and digest are those of the bundle served after it. */
export function renderRefresh(outcome: RefreshOutcome, view: RelationshipView | undefined, td: string): string {
  const served = [
    ...(outcome.sequence === undefined ? [] : [`sequence ${scalarText(outcome.sequence)}`]),
    ...(outcome.digest === undefined ? [] : [`digest ${outcome.digest}`]),
  ];
  const lines = [
    `${td}: refresh: ${scalarText(outcome.result)}${served.length === 0 ? "" : `; serving ${served.join(", ")}`}`,
  ];
  if (view !== undefined) {
    const staleness = view.staleness?.state === undefined ? "" : `, staleness ${view.staleness.state}`;
    lines.push(
      `${td}: state ${view.state}${staleness}${view.quarantined === true ? ", a bundle is in quarantine" : ""}`,
    );
  }
  if (outcome.result === "quarantined" || view?.quarantined === true) {
    lines.push(`to review it: bundlegate relationships show ${td}`);
  }
  return `${lines.join("\n")}\n`;
}

function labelsText(labels: Readonly<Record<string, string>> | undefined): string {
  const entries = Object.entries(labels ?? {});
  return entries.length === 0 ? "(none)" : entries.map(([key, value]) => `${key}=${value}`).join(", ");
}

function authorityText(authority: AuthorityView, now: Date): string {
  const expiry =
    authority.not_after === undefined ? "no expiry" : `not after ${formatMoment(authority.not_after, now)}`;
  const expired = authority.not_after !== undefined && Date.parse(authority.not_after) <= now.getTime();
  const status = authority.status ?? (expired ? "expired" : undefined);
  const flag = status === undefined || status === "valid" ? "" : `  ${status.toUpperCase()}`;
  return `${scalarText(authority.use).padEnd(9)}  ${scalarText(authority.id)}  ${expiry}${flag}`;
}

/** A diff entry is an authority ({use, id, not_after}) or, from another server version, anything else. */
function diffEntryText(entry: unknown, now: Date): string {
  if (isRecord(entry) && ("use" in entry || "id" in entry)) return authorityText(entry as AuthorityView, now);
  return scalarText(entry);
}

/** A warning or a reason: "CODE: message" when it has both, else whatever it is. */
function codedText(value: unknown): string {
  if (isRecord(value) && typeof value.code === "string") {
    const { code, message, ...rest } = value;
    const extra = Object.keys(rest).length === 0 ? "" : ` ${scalarText(rest)}`;
    return `${code}${message === undefined ? "" : `: ${scalarText(message)}`}${extra}`;
  }
  return scalarText(value);
}

/** Any JSON object as indented "name: value" lines; for the parts whose shape the CLI does not know. */
function renderGeneric(value: Readonly<Record<string, unknown>>, lines: string[], indent: string, now: Date): void {
  for (const [key, member] of Object.entries(value)) {
    if (member === undefined) continue;
    const name = key.replaceAll("_", " ");
    if (isRecord(member)) {
      lines.push(`${indent}${name}:`);
      renderGeneric(member, lines, `${indent}  `, now);
    } else if (Array.isArray(member)) {
      if (member.every((item) => !isRecord(item) && !Array.isArray(item))) {
        const items = member.length === 0 ? "(none)" : member.map(scalarText).join(", ");
        lines.push(`${indent}${fieldLabel(name)}${items}`);
      } else {
        lines.push(`${indent}${name}:`);
        for (const item of member) lines.push(`${indent}  - ${codedOrCompact(item)}`);
      }
    } else {
      lines.push(`${indent}${fieldLabel(name)}${valueText(key, member, now)}`);
    }
  }
}

function codedOrCompact(item: unknown): string {
  if (isRecord(item) && typeof item.code === "string") return codedText(item);
  if (isRecord(item)) {
    return Object.entries(item)
      .map(([key, value]) => `${key}=${scalarText(value)}`)
      .join(", ");
  }
  return scalarText(item);
}

function valueText(key: string, value: unknown, now: Date): string {
  if (looksLikeMoment(value) && value.includes("T")) return formatMoment(value, now);
  if (key.endsWith("_seconds") && typeof value === "number") return formatDuration(value);
  return scalarText(value);
}
