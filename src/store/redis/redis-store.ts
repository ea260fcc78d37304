/** The Store on Redis: shared by every replica; every atomic operation is one Lua script (see lua/). */
import type { Logger } from "../../logging.js";
import type { TrustDomain } from "../../spiffe/id.js";
import type { LocalBundleState, RecordSequenceResult } from "../local-bundle-state.js";
import type { Store, StoreHealth } from "../types.js";
import { connectRedis, createRedisClient, wrapRedisError } from "./connection.js";
import { createRedisKeys } from "./keys.js";
import { registerScripts } from "./scripts.js";

export interface RedisStoreOptions {
  readonly url: string;
  readonly keyPrefix: string;
  readonly commandTimeoutMs: number;
  readonly trustDomain: TrustDomain;
  readonly logger: Logger;
}

export async function openRedisStore(options: RedisStoreOptions): Promise<Store> {
  const client = registerScripts(createRedisClient(options));
  await connectRedis(client, options.url);
  await warnOnEvictionPolicy(client, options.logger);
  const keys = createRedisKeys(options.keyPrefix);
  const localKey = keys.localBundleState(options.trustDomain);

  return {
    kind: "redis",

    async assignLocalSequence(contentDigest: string): Promise<LocalBundleState> {
      try {
        const [digest, sequence] = await client.assignLocalSequence(localKey, contentDigest);
        return { contentDigest: digest, sequence: BigInt(sequence) };
      } catch (error) {
        throw wrapRedisError(error, "assign local sequence");
      }
    },

    async recordLocalSequence(contentDigest: string, sequence: bigint): Promise<RecordSequenceResult> {
      try {
        const [recorded, digest, stored] = await client.recordLocalSequence(
          localKey,
          contentDigest,
          sequence.toString(),
        );
        const state = { contentDigest: digest, sequence: BigInt(stored) };
        return recorded === 1 ? { ok: true, state } : { ok: false, stored: state };
      } catch (error) {
        throw wrapRedisError(error, "record local sequence");
      }
    },

    async getLocalBundleState(): Promise<LocalBundleState | undefined> {
      try {
        const [digest, sequence] = await client.hmget(localKey, "digest", "sequence");
        return digest && sequence ? { contentDigest: digest, sequence: BigInt(sequence) } : undefined;
      } catch (error) {
        throw wrapRedisError(error, "read local bundle state");
      }
    },

    async health(): Promise<StoreHealth> {
      if (client.status !== "ready") return { ok: false, code: "ERR_STORE_UNAVAILABLE" };
      try {
        await client.ping();
        return { ok: true };
      } catch (error) {
        return { ok: false, code: wrapRedisError(error, "ping").code };
      }
    },

    async close(): Promise<void> {
      try {
        await client.quit();
      } catch {
        client.disconnect();
      }
    },
  };
}

/** Evicted bundle keys would be silent data loss; managed Redis may refuse CONFIG, which is fine. */
async function warnOnEvictionPolicy(client: Awaited<ReturnType<typeof registerScripts>>, logger: Logger) {
  try {
    const reply = (await client.config("GET", "maxmemory-policy")) as string[];
    const policy = reply[1];
    if (policy && policy !== "noeviction") {
      logger.warn(
        { policy },
        "redis maxmemory-policy is not noeviction: bundle state may be evicted under memory pressure",
      );
    }
  } catch {
    logger.debug("could not read redis maxmemory-policy");
  }
}
