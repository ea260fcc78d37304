/**
 * ioredis set up for a service that must not hang: no offline queue (a command while disconnected fails
 * at once instead of piling up), a per-command timeout, one retry per command, and reconnection forever
 * with a bounded delay. ioredis failures become StoreErrors here, at the module edge.
 */
import { Redis } from "ioredis";
import type { Logger } from "../../logging.js";
import { StoreError } from "../errors.js";

export interface RedisConnectionOptions {
  readonly url: string;
  readonly commandTimeoutMs: number;
  readonly logger: Logger;
}

export function createRedisClient(options: RedisConnectionOptions): Redis {
  const client = new Redis(options.url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    enableReadyCheck: true,
    commandTimeout: options.commandTimeoutMs,
    connectTimeout: Math.max(options.commandTimeoutMs, 1000),
    maxRetriesPerRequest: 1,
    retryStrategy: (attempt) => Math.min(100 * 2 ** Math.min(attempt, 5), 2000),
  });
  return logConnectionState(client, options.logger, "commands");
}

/**
 * A second connection with the same settings for pub/sub: a subscribed connection can run no other
 * command. ioredis subscribes it again to its channels after every reconnect (autoResubscribe).
 */
export function createSubscriberClient(client: Redis, logger: Logger): Redis {
  return logConnectionState(client.duplicate({ autoResubscribe: true }), logger, "events");
}

/** One line when a connection goes down and one when it is back, not one per retry. */
function logConnectionState(client: Redis, logger: Logger, role: string): Redis {
  let down = false;
  client.on("error", (error: Error) => {
    if (!down) logger.warn({ code: "ERR_STORE_UNAVAILABLE", err: error.message, role }, "redis connection error");
    down = true;
  });
  client.on("ready", () => {
    if (down) logger.info({ role }, "redis connection restored");
    down = false;
  });
  return client;
}

/** Connects, or fails with ERR_STORE_UNAVAILABLE naming the URL's host (never its password). */
export async function connectRedis(client: Redis, url: string): Promise<void> {
  try {
    await client.connect();
  } catch (cause) {
    client.disconnect();
    throw new StoreError("ERR_STORE_UNAVAILABLE", `cannot connect to redis at ${safeRedisTarget(url)}`, { cause });
  }
}

export function safeRedisTarget(url: string): string {
  try {
    const parsed = new URL(url);
    return `${parsed.protocol}//${parsed.host}${parsed.pathname}`;
  } catch {
    return "(unparsable url)";
  }
}

/** Runs one Redis call, its failure wrapped as a StoreError naming `operation`. */
export async function attempt<T>(operation: string, action: () => Promise<T>): Promise<T> {
  try {
    return await action();
  } catch (error) {
    throw wrapRedisError(error, operation);
  }
}

export function wrapRedisError(error: unknown, operation: string): StoreError {
  if (error instanceof StoreError) return error;
  const message = error instanceof Error ? error.message : String(error);
  if (/ERR_SEQUENCE_EXHAUSTED/.test(message)) {
    return new StoreError("ERR_SEQUENCE_EXHAUSTED", `${operation}: the sequence reached 2^64-1`, { cause: error });
  }
  if (/timed? ?out/i.test(message)) {
    return new StoreError("ERR_STORE_TIMEOUT", `${operation}: redis did not answer in time`, { cause: error });
  }
  if (/NOSCRIPT|ERR Error (running|compiling) script|user_script/i.test(message)) {
    return new StoreError("ERR_STORE_SCRIPT", `${operation}: ${message}`, { cause: error });
  }
  return new StoreError("ERR_STORE_UNAVAILABLE", `${operation}: ${message}`, { cause: error });
}
