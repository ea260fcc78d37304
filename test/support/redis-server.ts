/**
 * A private redis-server per test file, on a free port, so tests never share state and can stop and
 * restart it. With REDIS_URL set, that server is used instead and stop/restart are unavailable.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { once } from "node:events";
import { createServer } from "node:net";
import { Redis } from "ioredis";
import { eventually } from "./eventually.js";

export interface RedisServerHandle {
  readonly url: string;
  /** False when REDIS_URL points at a server these tests did not start. */
  readonly controllable: boolean;
  stop(): Promise<void>;
  start(): Promise<void>;
  flushAll(): Promise<void>;
}

export async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const address = server.address();
  server.close();
  if (address === null || typeof address === "string") throw new Error("no port");
  return address.port;
}

export async function startRedisServer(): Promise<RedisServerHandle> {
  const external = process.env.REDIS_URL;
  if (external) {
    return {
      url: external,
      controllable: false,
      stop: () => Promise.reject(new Error("REDIS_URL server cannot be stopped by tests")),
      start: () => Promise.resolve(),
      flushAll: () => flushAll(external),
    };
  }
  const port = await freePort();
  const url = `redis://127.0.0.1:${port}`;
  let child: ChildProcess | undefined;

  const start = async () => {
    if (child) return;
    const spawned = spawn(
      "redis-server",
      ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--loglevel", "warning"],
      { stdio: "ignore" },
    );
    child = spawned;
    spawned.once("exit", () => {
      if (child === spawned) child = undefined;
    });
    await waitForPing(url);
  };
  const stop = async () => {
    const running = child;
    if (!running) return;
    child = undefined;
    const exited = once(running, "exit");
    running.kill("SIGKILL");
    await exited;
  };

  await start();
  return { url, controllable: true, stop, start, flushAll: () => flushAll(url) };
}

async function waitForPing(url: string): Promise<void> {
  let refused: unknown;
  await eventually(
    async () => {
      const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
      client.on("error", () => undefined);
      try {
        await client.connect();
        await client.ping();
        return true;
      } catch (error) {
        refused = error;
        return undefined;
      } finally {
        client.disconnect();
      }
    },
    {
      what: `redis-server at ${url} answering PING`,
      intervalMs: 50,
      explain: () => `last error: ${refused instanceof Error ? refused.message : String(refused)}`,
    },
  );
}

async function flushAll(url: string): Promise<void> {
  const client = new Redis(url, { lazyConnect: true });
  await client.connect();
  await client.flushall();
  client.disconnect();
}
