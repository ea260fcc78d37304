/**
 * A relationship made through the admin API: the spec a caller writes (the config file's relationship
 * entry, with the bootstrap bundle and CA certificates inline instead of as files), and the document the
 * store keeps (spec, lifecycle state, and who moved it there).
 *
 * The spec is checked with exactly the config file's rules (checkRelationshipEntry), so a relationship is
 * equally valid whichever way it was made. Issues name fields as the caller wrote them ("bootstrap_bundle",
 * "labels.team"), never the placeholders the config rules see.
 */
import type { ConfigIssue } from "../config/errors.js";
import {
  checkBootstrapBundleContent,
  checkCaContent,
  checkRelationshipEntry,
  type KnownRelationship,
} from "../config/schema.js";
import { BundlegateError } from "../errors.js";
import type { TrustBundle } from "../spiffe/bundle.js";
import { serializeSpiffeBundle } from "../spiffe/codec.js";
import type { Relationship, RelationshipState } from "./relationship.js";

export const RELATIONSHIP_DOCUMENT_VERSION = 1;

/** What the spec may not set: the lifecycle is moved by its own actions, and files are config-only. */
const NOT_IN_SPEC: Readonly<Record<string, string>> = {
  state: "is set by the approve, suspend and resume actions, not written",
  origin: "is set by the gateway",
  bootstrap_bundle_file: "is for the config file; send the bundle itself as bootstrap_bundle",
  ca_file: "is for the config file; send the certificates themselves as ca_pem",
};

/** Placeholders the config rules see for inline content; never stored or shown. */
const INLINE_BUNDLE = "(inline bootstrap_bundle)";
const INLINE_CA = "(inline ca_pem)";

export interface LifecycleRecord {
  readonly created_by: string;
  readonly created_at: string;
  readonly approved_by?: string;
  readonly approved_at?: string;
  readonly suspended_by?: string;
  readonly suspended_at?: string;
  readonly suspended_reason?: string;
  /** How it was made: "api" or "invitation" (then `invitation_id` and `invited_by`). */
  readonly source: "api" | "invitation";
  readonly invitation_id?: string;
  readonly invited_by?: string;
  /** What a person compares with the partner out of band before approving. */
  readonly invitation_bundle_digest?: string;
  readonly invitation_signer_fingerprint?: string;
}

/** The stored form of an API-made relationship. */
export interface RelationshipDocument {
  readonly version: typeof RELATIONSHIP_DOCUMENT_VERSION;
  /** Normalised spec: bootstrap_bundle is canonical SPIFFE JSON text, ca_pem re-encoded PEM. */
  readonly spec: Readonly<Record<string, unknown>>;
  readonly state: RelationshipState;
  readonly lifecycle: LifecycleRecord;
}

export type SpecCheck =
  | { readonly ok: true; readonly spec: Readonly<Record<string, unknown>>; readonly relationship: Relationship }
  | { readonly ok: false; readonly issues: readonly ConfigIssue[] };

export interface SpecContext {
  readonly ownTrustDomain: string;
  /** The other relationships (config and API), for the rules across relationships. */
  readonly others: readonly KnownRelationship[];
  readonly maxBundleBytes: number;
}

/** Checks a spec as a caller sent it (plain JSON); the relationship comes out in state "pending", origin "api". */
export function checkRelationshipSpec(input: unknown, context: SpecContext): SpecCheck {
  if (typeof input !== "object" || input === null || Array.isArray(input)) {
    return { ok: false, issues: [{ path: "", message: "must be a JSON object" }] };
  }
  const issues: ConfigIssue[] = [];
  const entry: Record<string, unknown> = { ...(input as Record<string, unknown>) };
  for (const [key, message] of Object.entries(NOT_IN_SPEC)) {
    if (key in entry) {
      issues.push({ path: key, message });
      delete entry[key];
    }
  }

  let bootstrap: TrustBundle | undefined;
  const spec: Record<string, unknown> = { ...entry };
  if ("bootstrap_bundle" in entry) {
    const read = readBootstrapBundle(entry.bootstrap_bundle, context.maxBundleBytes);
    delete entry.bootstrap_bundle;
    if ("issue" in read) issues.push(read.issue);
    else {
      bootstrap = read.bundle;
      spec.bootstrap_bundle = serializeSpiffeBundle(read.bundle);
      entry.bootstrap_bundle_file = INLINE_BUNDLE;
    }
  }
  let caPem: string | undefined;
  if ("ca_pem" in entry) {
    const read = readCaPem(entry.ca_pem);
    delete entry.ca_pem;
    if ("issue" in read) issues.push(read.issue);
    else {
      caPem = read.pem;
      spec.ca_pem = read.pem;
      entry.ca_file = INLINE_CA;
    }
  }

  const checked = checkRelationshipEntry(entry, {
    ownTrustDomain: context.ownTrustDomain,
    others: context.others,
    ...(bootstrap === undefined ? {} : { bootstrapBundle: bootstrap }),
    ...(caPem === undefined ? {} : { caPem }),
  });
  if (!checked.ok) issues.push(...checked.issues.map(renameInlineField));
  if (!checked.ok || issues.length > 0) return { ok: false, issues };
  const relationship: Relationship = {
    ...checked.relationship,
    // The placeholder must never reach anything that reads the file name.
    profile:
      checked.relationship.profile.kind === "https_web"
        ? caPem === undefined
          ? { kind: "https_web" }
          : { kind: "https_web", caPem }
        : checked.relationship.profile,
    state: "pending",
    origin: "api",
  };
  return { ok: true, spec, relationship };
}

/** The relationship a stored document stands for; throws ERR_RELATIONSHIP_DOCUMENT_INVALID when it no longer checks. */
export function relationshipOfDocument(document: RelationshipDocument, context: SpecContext): Relationship {
  const checked = checkRelationshipSpec(document.spec, context);
  if (!checked.ok) {
    throw new BundlegateError(
      "ERR_RELATIONSHIP_DOCUMENT_INVALID",
      `stored relationship no longer valid: ${checked.issues.map((i) => `${i.path}: ${i.message}`).join("; ")}`,
      { details: { issues: checked.issues } },
    );
  }
  return { ...checked.relationship, state: document.state };
}

export function parseRelationshipDocument(text: string): RelationshipDocument {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (cause) {
    throw new BundlegateError("ERR_RELATIONSHIP_DOCUMENT_INVALID", "stored relationship is not JSON", { cause });
  }
  const doc = value as Partial<RelationshipDocument> | null;
  if (
    doc === null ||
    typeof doc !== "object" ||
    doc.version !== RELATIONSHIP_DOCUMENT_VERSION ||
    typeof doc.spec !== "object" ||
    doc.spec === null ||
    (doc.state !== "pending" && doc.state !== "active" && doc.state !== "suspended") ||
    typeof doc.lifecycle !== "object" ||
    doc.lifecycle === null
  ) {
    throw new BundlegateError(
      "ERR_RELATIONSHIP_DOCUMENT_INVALID",
      "stored relationship is not a version 1 relationship document",
    );
  }
  return doc as RelationshipDocument;
}

export function serializeRelationshipDocument(document: RelationshipDocument): string {
  return JSON.stringify(document);
}

/** The cross-relationship facts of a relationship, for SpecContext.others. */
export function knownOf(relationship: Relationship): KnownRelationship {
  return {
    trust_domain: relationship.trustDomain,
    profile: relationship.profile.kind,
    ...(relationship.profile.kind === "https_spiffe"
      ? { endpoint_spiffe_id: relationship.profile.endpointSpiffeId }
      : {}),
  };
}

function renameInlineField(issue: ConfigIssue): ConfigIssue {
  if (issue.path === "bootstrap_bundle_file") {
    return {
      ...issue,
      path: "bootstrap_bundle",
      message: issue.message.replaceAll("bootstrap_bundle_file", "bootstrap_bundle"),
    };
  }
  if (issue.path === "ca_file")
    return { ...issue, path: "ca_pem", message: issue.message.replaceAll("ca_file", "ca_pem") };
  return { ...issue, message: issue.message.replaceAll("bootstrap_bundle_file", "bootstrap_bundle") };
}

function readBootstrapBundle(
  value: unknown,
  maxBytes: number,
): { readonly bundle: TrustBundle } | { readonly issue: ConfigIssue } {
  // An object arrives already parsed; its text is re-made for the strict reader (which then still checks
  // every bundle rule). A string may be SPIFFE JSON or PEM.
  const text =
    typeof value === "string" ? value : typeof value === "object" && value !== null ? JSON.stringify(value) : undefined;
  if (text === undefined) {
    return { issue: { path: "bootstrap_bundle", message: "must be a SPIFFE bundle (a JSON object) or PEM text" } };
  }
  const checked = checkBootstrapBundleContent(text, { maxBytes });
  return "problem" in checked ? { issue: { path: "bootstrap_bundle", ...checked.problem } } : checked;
}

function readCaPem(value: unknown): { readonly pem: string } | { readonly issue: ConfigIssue } {
  if (typeof value !== "string") return { issue: { path: "ca_pem", message: "must be PEM text" } };
  const checked = checkCaContent(value);
  return "problem" in checked ? { issue: { path: "ca_pem", ...checked.problem } } : checked;
}
