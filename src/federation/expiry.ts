/**
 * Suspends relationships whose `expires_at` has passed, and audits it. The registry already reads such a
 * relationship as suspended from the moment it expires (so it leaves distribution at once on every
 * replica); this writes the suspension down and records who did it ("system:expiry").
 *
 * Every replica runs it; the write names the revision it read, so exactly one replica's write lands and
 * the others see a conflict and move on. Config-file relationships cannot be written: their expiry is
 * audited once per process (each replica may record it once).
 */
import type { Clock } from "../clock.js";
import type { Logger } from "../logging.js";
import type { AdminStore } from "../store/admin-state.js";
import type { ManagedRegistry } from "./managed-registry.js";
import { type RelationshipDocument, serializeRelationshipDocument } from "./relationship-document.js";

export const EXPIRY_ACTOR = "system:expiry";

export interface ExpiryEnforcer {
  /** One pass; resolves with the trust domains this replica suspended. */
  tick(): Promise<readonly string[]>;
  start(): void;
  stop(): void;
}

export function createExpiryEnforcer(options: {
  readonly registry: ManagedRegistry;
  readonly store: AdminStore;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly intervalMs: number;
  readonly origin: string;
}): ExpiryEnforcer {
  const { registry, store, clock } = options;
  const logger = options.logger.child({ component: "expiry" });
  const auditedConfig = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<readonly string[]> | undefined;

  const pass = async (): Promise<readonly string[]> => {
    const suspended: string[] = [];
    for (const relationship of registry.checkExpiry()) {
      const td = relationship.trustDomain;
      const entry = registry.entry(td);
      if (!entry) continue;
      const expiresAt = relationship.expiresAt?.toISOString();
      if (!entry.record || !entry.document) {
        if (auditedConfig.has(td)) continue;
        auditedConfig.add(td);
        await store.appendAudit({
          at: clock.now().getTime(),
          actor: EXPIRY_ACTOR,
          action: "relationship.expire",
          trustDomain: td,
          before: { state: entry.relationship.state },
          after: { state: "suspended" },
          details: {
            expires_at: expiresAt,
            origin: "config",
            note: "config relationships read as suspended once expired",
          },
        });
        logger.warn({ trustDomain: td, expiresAt }, "config relationship expired: not distributed any more");
        continue;
      }
      if (entry.document.state === "suspended") continue;
      const now = clock.now();
      const next: RelationshipDocument = {
        ...entry.document,
        state: "suspended",
        lifecycle: {
          ...entry.document.lifecycle,
          suspended_by: EXPIRY_ACTOR,
          suspended_at: now.toISOString(),
          suspended_reason: `expires_at ${expiresAt} passed`,
        },
      };
      const result = await store.putRelationshipRecord(td, serializeRelationshipDocument(next), {
        at: now.getTime(),
        expectedRevision: entry.record.revision,
        origin: options.origin,
        audit: {
          at: now.getTime(),
          actor: EXPIRY_ACTOR,
          action: "relationship.expire",
          trustDomain: td,
          before: entry.document,
          after: next,
          details: { expires_at: expiresAt },
        },
      });
      if (!result.ok) continue;
      await registry.reload(td);
      suspended.push(td);
      logger.warn({ trustDomain: td, expiresAt }, "relationship expired: suspended");
    }
    return suspended;
  };

  const tick = () => {
    running ??= pass().finally(() => {
      running = undefined;
    });
    return running;
  };

  return {
    tick,
    start() {
      timer = setInterval(() => {
        tick().catch((error: Error) => logger.warn({ err: error.message }, "expiry check failed; retried next time"));
      }, options.intervalMs);
      timer.unref();
    },
    stop() {
      if (timer) clearInterval(timer);
      timer = undefined;
    },
  };
}
