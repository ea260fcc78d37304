/** Builds the configured Store. */
import type { StoreConfig } from "../config/types.js";
import type { Logger } from "../logging.js";
import type { TrustDomain } from "../spiffe/id.js";
import { openEmbeddedStore } from "./embedded/embedded-store.js";
import { openRedisStore } from "./redis/redis-store.js";
import type { Store } from "./types.js";

export function openStore(
  config: StoreConfig,
  context: { trustDomain: TrustDomain; logger: Logger; auditMaxEntries?: number | undefined },
): Promise<Store> {
  const logger = context.logger.child({ component: "store", kind: config.kind });
  const audit = context.auditMaxEntries === undefined ? {} : { auditMaxEntries: context.auditMaxEntries };
  if (config.kind === "redis") {
    return openRedisStore({ ...config, trustDomain: context.trustDomain, logger, ...audit });
  }
  return openEmbeddedStore(
    config.snapshotFile === undefined ? { logger, ...audit } : { snapshotFile: config.snapshotFile, logger, ...audit },
  );
}
