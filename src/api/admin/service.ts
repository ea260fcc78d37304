/**
 * The admin operations behind the routes: each checks what it is given, changes the store in one audited
 * step, and makes this replica see its own change at once (other replicas follow the store's events).
 *
 * Lifecycle (DESIGN.md section 2: trust is removed at once; an addition of trust waits for a person):
 *   create  -> pending     polled, not distributed; preflight saved
 *   approve pending -> active          needs relationships:approve (the route says so)
 *   suspend pending|active -> suspended  removes trust: relationships:write is enough
 *   resume  suspended -> active        adds trust back: relationships:approve
 *   delete  -> gone: polling stops, the stored bundle leaves distribution; history and audit stay
 * A change of an active relationship's trust settings (endpoint, profile, bootstrap bundle, CA, policy,
 * proxy, allowed CIDRs) by a caller without the approve scope puts it back to pending. A relationship past
 * its expires_at cannot be approved or resumed until expires_at is moved.
 * Config-file relationships are read-only here; actions on their bundle (quarantine, sequence reset,
 * refresh, preflight) are allowed.
 */
import type { Clock } from "../../clock.js";
import type { FederationConfig } from "../../config/types.js";
import { BundlegateError } from "../../errors.js";
import type { BundleCache } from "../../federation/bundle-cache.js";
import { EXPIRY_ACTOR } from "../../federation/expiry.js";
import type { ManagedEntry, ManagedRegistry } from "../../federation/managed-registry.js";
import type { SyncEngine } from "../../federation/manager.js";
import type { ProbeReport } from "../../federation/probe.js";
import type { Relationship } from "../../federation/relationship.js";
import {
  checkRelationshipSpec,
  type LifecycleRecord,
  RELATIONSHIP_DOCUMENT_VERSION,
  type RelationshipDocument,
  serializeRelationshipDocument,
} from "../../federation/relationship-document.js";
import type { Logger } from "../../logging.js";
import { parseTrustDomain, type TrustDomain } from "../../spiffe/id.js";
import type { AdminStore, AuditEntry, AuditQuery } from "../../store/admin-state.js";
import type { FederationStore } from "../../store/federation-state.js";
import { ApiError, trustDomainParam } from "../distribution/problem.js";
import { notFound, readOnly, revisionConflict, validationError, wrongState } from "./errors.js";
import { compact, relationshipSummary, relationshipView } from "./views.js";

/** Spec fields whose change alters whom or what is trusted. */
const TRUST_FIELDS = [
  "endpoint_url",
  "profile",
  "endpoint_spiffe_id",
  "bootstrap_bundle",
  "ca_pem",
  "policy",
  "proxy",
  "allowed_cidrs",
] as const;

export interface Caller {
  /** The audit actor: "token:<name>", "jwt:<issuer>#<subject>". */
  readonly id: string;
  readonly canApprove: boolean;
}

export type PreflightRunner = (relationship: Relationship) => Promise<ProbeReport>;

export interface AdminServiceOptions {
  readonly registry: ManagedRegistry;
  readonly store: AdminStore & FederationStore;
  readonly engine: Pick<SyncEngine, "refreshNow" | "status">;
  readonly cache: BundleCache;
  readonly federation: FederationConfig;
  readonly clock: Clock;
  readonly logger: Logger;
  /** This replica's name, for change events. */
  readonly origin: string;
  readonly preflight: PreflightRunner;
}

export interface RelationshipFilter {
  readonly state?: string;
  readonly owner?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly staleness?: string;
}

export type AdminService = ReturnType<typeof createAdminService>;

export function createAdminService(options: AdminServiceOptions) {
  const { registry, store, clock, federation } = options;
  const logger = options.logger.child({ component: "admin" });
  const historyLimit = federation.historyLimit;

  const entryOf = (name: string): { entry: ManagedEntry; relationship: Relationship } => {
    const trustDomain = trustDomainParam(name);
    const entry = registry.entry(trustDomain);
    const relationship = registry.get(trustDomain);
    if (!entry || !relationship) throw notFound(trustDomain);
    return { entry, relationship };
  };

  const apiEntryOf = (trustDomain: string) => {
    const found = entryOf(trustDomain);
    const { record, document } = found.entry;
    if (!record || !document) throw readOnly(trustDomain);
    return { ...found, record, document };
  };

  const view = async (trustDomain: string, full = true): Promise<Record<string, unknown>> => {
    const { entry, relationship } = entryOf(trustDomain);
    const td = relationship.trustDomain;
    const [status, quarantine, preflight] = await Promise.all([
      store.getStatus(td),
      store.getQuarantine(td),
      full ? store.getPreflight(td) : Promise.resolve(undefined),
    ]);
    const input = {
      entry,
      relationship,
      status: status ?? options.engine.status(td),
      cached: options.cache.get(td),
      quarantine,
      preflight: preflight === undefined ? undefined : (JSON.parse(preflight) as unknown),
      federation,
      now: clock.now(),
    };
    return full ? relationshipView(input) : relationshipSummary(input);
  };

  /** Writes a new document for an API relationship, audited, at the revision it was read at. */
  const writeDocument = async (
    trustDomain: TrustDomain,
    next: RelationshipDocument,
    audit: { actor: string; action: string; before?: unknown; details?: Record<string, unknown> },
    expectedRevision: number,
  ) => {
    const at = clock.now().getTime();
    const result = await store.putRelationshipRecord(trustDomain, serializeRelationshipDocument(next), {
      at,
      expectedRevision,
      origin: options.origin,
      audit: {
        at,
        actor: audit.actor,
        action: audit.action,
        trustDomain,
        ...(audit.before === undefined ? {} : { before: audit.before }),
        after: next,
        ...(audit.details === undefined ? {} : { details: audit.details }),
      },
    });
    if (!result.ok) throw revisionConflict(trustDomain, result.current?.revision);
    await registry.reload(trustDomain);
    logger.info(
      { trustDomain, actor: audit.actor, action: audit.action, revision: result.record.revision },
      "relationship changed",
    );
  };

  const transition = async (
    caller: Caller,
    trustDomain: string,
    action: "approve" | "suspend" | "resume",
    reason?: string,
  ) => {
    const { record, document, relationship } = apiEntryOf(trustDomain);
    const now = clock.now();
    const expired = relationship.expiresAt !== undefined && relationship.expiresAt.getTime() <= now.getTime();
    const from = document.state;
    const allowed = { approve: ["pending"], suspend: ["pending", "active"], resume: ["suspended"] }[action];
    if (!allowed.includes(from)) {
      const hint =
        action === "approve" && from === "suspended"
          ? "resume it instead"
          : action === "resume" && from === "pending"
            ? "approve it instead"
            : `it must be ${allowed.join(" or ")}`;
      throw wrongState(relationship.trustDomain, from, action, hint);
    }
    if (action !== "suspend" && expired) {
      throw new ApiError(
        409,
        "ERR_RELATIONSHIP_EXPIRED",
        "Conflict",
        `cannot ${action} ${relationship.trustDomain}: its expires_at (${relationship.expiresAt?.toISOString()}) has passed; update expires_at first`,
      );
    }
    const stamp = now.toISOString();
    const lifecycle: LifecycleRecord =
      action === "suspend"
        ? {
            ...document.lifecycle,
            suspended_by: caller.id,
            suspended_at: stamp,
            ...(reason === undefined ? {} : { suspended_reason: reason }),
          }
        : withoutSuspension({ ...document.lifecycle, approved_by: caller.id, approved_at: stamp });
    const next: RelationshipDocument = {
      ...document,
      state: action === "suspend" ? "suspended" : "active",
      lifecycle,
    };
    await writeDocument(
      relationship.trustDomain,
      next,
      {
        actor: caller.id,
        action: `relationship.${action}`,
        before: document,
        ...(reason === undefined ? {} : { details: { reason } }),
      },
      record.revision,
    );
    return view(relationship.trustDomain);
  };

  /** The audit stream and the log both get every audited action. */
  const audit = async (entry: Omit<AuditEntry, "id" | "at">) => {
    const written = await store.appendAudit({ ...entry, at: clock.now().getTime() });
    logger.info(
      { trustDomain: entry.trustDomain, actor: entry.actor, action: entry.action, auditId: written.id },
      "audited",
    );
    return written;
  };

  return {
    view,

    async list(filter: RelationshipFilter): Promise<Record<string, unknown>[]> {
      const matching = registry
        .list()
        .filter(
          (relationship) =>
            (filter.state === undefined || relationship.state === filter.state) &&
            (filter.owner === undefined || relationship.owner === filter.owner) &&
            (!filter.labels || Object.entries(filter.labels).every(([k, v]) => relationship.labels[k] === v)),
        );
      // The store reads of all relationships at once, not one round trip after another; order kept.
      const summaries = await Promise.all(matching.map((relationship) => view(relationship.trustDomain, false)));
      return summaries.filter(
        (summary) =>
          filter.staleness === undefined || (summary.staleness as { state: string }).state === filter.staleness,
      );
    },

    async create(
      caller: Caller,
      input: unknown,
      source?: Pick<
        LifecycleRecord,
        "source" | "invitation_id" | "invited_by" | "invitation_bundle_digest" | "invitation_signer_fingerprint"
      >,
    ) {
      const td = trustDomainOf(input);
      if (td !== undefined && registry.entry(td)) {
        throw validationError([
          {
            path: "trust_domain",
            message: `duplicate: a relationship for ${td} already exists (${registry.entry(td)?.record ? "made through the API" : "in the config file"})`,
          },
        ]);
      }
      const checked = checkRelationshipSpec(input, registry.specContext(td));
      if (!checked.ok) throw validationError(checked.issues);
      const trustDomain = checked.relationship.trustDomain;
      const document: RelationshipDocument = {
        version: RELATIONSHIP_DOCUMENT_VERSION,
        spec: checked.spec,
        state: "pending",
        lifecycle: { created_by: caller.id, created_at: clock.now().toISOString(), source: "api", ...source },
      };
      const at = clock.now().getTime();
      const result = await store.putRelationshipRecord(trustDomain, serializeRelationshipDocument(document), {
        at,
        expectedRevision: 0,
        origin: options.origin,
        audit: { at, actor: caller.id, action: "relationship.create", trustDomain, after: document },
      });
      if (!result.ok) {
        throw validationError([
          { path: "trust_domain", message: `duplicate: a relationship for ${trustDomain} already exists` },
        ]);
      }
      // A new relationship starts afresh: whatever an earlier one of this trust domain left in the store
      // (an interrupted delete, a replica that wrote late) must neither be served nor verify its endpoint.
      await store.removeRelationship(trustDomain, { origin: options.origin });
      options.cache.delete(trustDomain);
      await registry.reload(trustDomain);
      logger.info({ trustDomain, actor: caller.id }, "relationship created (pending)");
      await runPreflight(trustDomain);
      return view(trustDomain);
    },

    async update(caller: Caller, trustDomain: string, patch: unknown, ifMatch?: number) {
      const { record, document, relationship } = apiEntryOf(trustDomain);
      if (typeof patch !== "object" || patch === null || Array.isArray(patch)) {
        throw validationError([{ path: "", message: "must be a JSON object" }]);
      }
      if (ifMatch !== undefined && ifMatch !== record.revision)
        throw revisionConflict(relationship.trustDomain, record.revision);
      const changes = patch as Record<string, unknown>;
      if ("trust_domain" in changes && changes.trust_domain !== relationship.trustDomain) {
        throw validationError([
          {
            path: "trust_domain",
            message: "cannot change; delete this relationship and create one for the other trust domain",
          },
        ]);
      }
      const merged: Record<string, unknown> = { ...document.spec };
      for (const [key, value] of Object.entries(changes)) {
        // null removes an optional field, as in JSON Merge Patch (RFC 7396).
        if (value === null) delete merged[key];
        else merged[key] = value;
      }
      const checked = checkRelationshipSpec(merged, registry.specContext(relationship.trustDomain));
      if (!checked.ok) throw validationError(checked.issues);
      const trustChanged =
        TRUST_FIELDS.some((field) => JSON.stringify(checked.spec[field]) !== JSON.stringify(document.spec[field])) ||
        // A longer life is more trust: moving expires_at later (or dropping it) is a trust change too.
        extendsLife(document.spec.expires_at, checked.spec.expires_at);
      // What the registry reads now: an expired relationship is suspended even before the enforcer writes it.
      const expired = relationship.state === "suspended" && document.state !== "suspended";
      const backToPending = !expired && trustChanged && document.state === "active" && !caller.canApprove;
      const state = expired ? "suspended" : backToPending ? "pending" : document.state;
      if (state === document.state && JSON.stringify(checked.spec) === JSON.stringify(document.spec)) {
        // Nothing changes: no new revision, no audit entry, no event.
        return view(relationship.trustDomain);
      }
      const lifecycle = expired
        ? {
            ...document.lifecycle,
            suspended_by: EXPIRY_ACTOR,
            suspended_at: clock.now().toISOString(),
            suspended_reason: "expires_at passed",
          }
        : backToPending
          ? withoutApproval(document.lifecycle)
          : document.lifecycle;
      const next: RelationshipDocument = { ...document, spec: checked.spec, state, lifecycle };
      await writeDocument(
        relationship.trustDomain,
        next,
        {
          actor: caller.id,
          action: "relationship.update",
          before: document,
          ...(backToPending
            ? { details: { reason: "trust settings changed without approve scope: back to pending" } }
            : expired
              ? { details: { reason: "expired before this change: written as suspended; resume needs approval" } }
              : {}),
        },
        record.revision,
      );
      // The approver must see a preflight of what they approve, not of the settings before.
      if (trustChanged) await runPreflight(relationship.trustDomain);
      return view(relationship.trustDomain);
    },

    approve: (caller: Caller, trustDomain: string) => transition(caller, trustDomain, "approve"),
    suspend: (caller: Caller, trustDomain: string, reason?: string) =>
      transition(caller, trustDomain, "suspend", reason),
    resume: (caller: Caller, trustDomain: string) => transition(caller, trustDomain, "resume"),

    async remove(caller: Caller, trustDomain: string) {
      if (!registry.entry(trustDomain)) {
        // A delete cut short after its record went (the store failed between the two steps) leaves the
        // bundle behind; deleting again finishes it rather than answering 404 for ever.
        const td = trustDomainParam(trustDomain);
        const [bundle, status, quarantine] = await Promise.all([
          store.getBundle(td),
          store.getStatus(td),
          store.getQuarantine(td),
        ]);
        if (!bundle && !status && !quarantine) throw notFound(trustDomain);
        await store.removeRelationship(td, { origin: options.origin });
        options.cache.delete(td);
        await audit({
          actor: caller.id,
          action: "relationship.cleanup",
          trustDomain: td,
          before: { bundle: bundle?.digest ?? null },
        });
        return;
      }
      const { record, document, relationship } = apiEntryOf(trustDomain);
      const td = relationship.trustDomain;
      const dependents = registry
        .list()
        .filter(
          (other) =>
            other.trustDomain !== td &&
            other.profile.kind === "https_spiffe" &&
            new URL(other.profile.endpointSpiffeId).host === td,
        )
        .map((other) => other.trustDomain);
      if (dependents.length > 0) {
        throw new ApiError(
          409,
          "ERR_RELATIONSHIP_IN_USE",
          "Conflict",
          `${td}'s bundle verifies the endpoints of ${dependents.join(", ")}; change or delete those first`,
        );
      }
      const at = clock.now().getTime();
      const result = await store.deleteRelationshipRecord(td, {
        at,
        expectedRevision: record.revision,
        origin: options.origin,
        audit: { at, actor: caller.id, action: "relationship.delete", trustDomain: td, before: document },
      });
      if (!result.ok) throw revisionConflict(td, result.current?.revision);
      await registry.reload(td);
      // The record is gone, so every replica's registry stops distributing it; removing the bundle tells
      // every replica's cache too, and moves the fence on so a fetch still running cannot write it back.
      await store.removeRelationship(td, { origin: options.origin });
      options.cache.delete(td);
      logger.info({ trustDomain: td, actor: caller.id }, "relationship deleted");
    },

    async refresh(caller: Caller, trustDomain: string) {
      const { relationship } = entryOf(trustDomain);
      // Another replica may hold the relationship's lease (it is refreshing it right now): wait for it to
      // finish and fetch again, so "refresh now" means a fetch after the request whichever replica got it.
      const deadline = Date.now() + 2 * federation.leaseMs;
      let outcome = await options.engine.refreshNow(relationship.trustDomain);
      while (outcome === undefined && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
        outcome = await options.engine.refreshNow(relationship.trustDomain);
      }
      logger.info({ trustDomain, actor: caller.id, result: outcome?.result }, "refresh requested");
      const cached = options.cache.get(relationship.trustDomain);
      return {
        outcome: compact({
          result: outcome?.result ?? "skipped",
          error_code: outcome?.result.startsWith("ERR_") ? outcome.result : undefined,
          sequence: cached?.stored.sequence,
          digest: cached?.stored.digest,
        }),
        relationship: await view(relationship.trustDomain),
      };
    },

    async preflight(caller: Caller, trustDomain: string) {
      const { relationship } = entryOf(trustDomain);
      logger.info({ trustDomain, actor: caller.id }, "preflight requested");
      return runPreflight(relationship.trustDomain);
    },

    async acceptQuarantine(caller: Caller, trustDomain: string, digest: string) {
      const { relationship } = entryOf(trustDomain);
      const td = relationship.trustDomain;
      const held = await store.getQuarantine(td);
      if (held?.digest !== digest) throw quarantineMismatch(td, digest, held?.digest);
      const before = options.cache.get(td)?.stored.digest;
      // Audited before it is done: an action that happened is never missing from the audit log (one that
      // then fails is followed by a ".failed" entry).
      const entry = {
        actor: caller.id,
        action: "quarantine.accept",
        trustDomain: td,
        before: { digest: before ?? null },
        after: { digest, sequence: held.sequence ?? null },
        details: { reasons: held.reasons },
      };
      await audit(entry);
      const ok = await store.acceptQuarantine(td, digest, {
        at: clock.now().getTime(),
        historyLimit,
        origin: options.origin,
      });
      if (!ok) {
        await audit({ ...entry, action: "quarantine.accept.failed", after: entry.before });
        throw quarantineMismatch(td, digest, (await store.getQuarantine(td))?.digest);
      }
      const stored = await store.getBundle(td);
      if (stored) options.cache.put(td, stored);
      return view(td);
    },

    async discardQuarantine(caller: Caller, trustDomain: string, digest: string) {
      const { relationship } = entryOf(trustDomain);
      const td = relationship.trustDomain;
      const held = await store.getQuarantine(td);
      if (held?.digest !== digest) throw quarantineMismatch(td, digest, held?.digest);
      const entry = {
        actor: caller.id,
        action: "quarantine.discard",
        trustDomain: td,
        before: { quarantined: digest },
        after: { quarantined: null },
        details: { reasons: held.reasons },
      };
      await audit(entry);
      const ok = await store.discardQuarantine(td, digest, { origin: options.origin });
      if (!ok) {
        await audit({ ...entry, action: "quarantine.discard.failed", after: entry.before });
        throw quarantineMismatch(td, digest, (await store.getQuarantine(td))?.digest);
      }
      return view(td);
    },

    async resetSequence(caller: Caller, trustDomain: string) {
      const { relationship } = entryOf(trustDomain);
      const td = relationship.trustDomain;
      const before = await store.getBundle(td);
      if (!before) {
        throw new ApiError(
          409,
          "ERR_RELATIONSHIP_NO_BUNDLE",
          "Conflict",
          `no bundle of ${td} is stored yet; nothing to reset`,
        );
      }
      await audit({
        actor: caller.id,
        action: "sequence.reset",
        trustDomain: td,
        before: { sequence: before.sequence ?? null },
        after: { sequence: null },
      });
      await store.resetSequence(td, { at: clock.now().getTime(), historyLimit, origin: options.origin });
      const stored = await store.getBundle(td);
      if (stored) options.cache.put(td, stored, { force: true });
      return view(td);
    },

    auditQuery: (query: AuditQuery) => store.queryAudit(query),
    audit,
  };

  async function runPreflight(trustDomain: TrustDomain): Promise<unknown> {
    const relationship = registry.get(trustDomain);
    if (!relationship) throw notFound(trustDomain);
    let report: Record<string, unknown>;
    try {
      const probe = await options.preflight(relationship);
      report = {
        verdict: probe.ok ? (probe.inspection?.warnings.length ? "warning" : "ok") : "fail",
        checked_at: clock.now().toISOString(),
        ...(probe.error ? { code: probe.error.code, message: probe.error.message, hint: probe.error.hint } : {}),
        report: probe,
      };
    } catch (error) {
      const code = error instanceof BundlegateError ? error.code : "ERR_PREFLIGHT_INTERNAL";
      report = {
        verdict: "fail",
        checked_at: clock.now().toISOString(),
        code,
        message: (error as Error).message,
      };
    }
    await store.setPreflight(trustDomain, JSON.stringify(report));
    return report;
  }
}

function withoutApproval(lifecycle: LifecycleRecord): LifecycleRecord {
  const { approved_by: _by, approved_at: _at, ...rest } = lifecycle;
  return rest;
}

/** Whether `next` ends a relationship later than `previous` did (absent means never). */
function extendsLife(previous: unknown, next: unknown): boolean {
  if (previous === undefined) return false;
  if (next === undefined) return true;
  return Date.parse(String(next)) > Date.parse(String(previous));
}

function withoutSuspension(lifecycle: LifecycleRecord): LifecycleRecord {
  const { suspended_by: _by, suspended_at: _at, suspended_reason: _reason, ...rest } = lifecycle;
  return rest;
}

function quarantineMismatch(trustDomain: string, digest: string, held: string | undefined): ApiError {
  return new ApiError(
    409,
    "ERR_QUARANTINE_MISMATCH",
    "Conflict",
    held === undefined
      ? `no bundle of ${trustDomain} is quarantined`
      : `the quarantined bundle of ${trustDomain} is ${held}, not ${digest}; look at it again before deciding`,
  );
}

function trustDomainOf(input: unknown): TrustDomain | undefined {
  if (typeof input !== "object" || input === null) return undefined;
  const value = (input as Record<string, unknown>).trust_domain;
  if (typeof value !== "string") return undefined;
  try {
    return parseTrustDomain(value);
  } catch {
    return undefined;
  }
}
