/**
 * Loads the Lua scripts (one per atomic operation) and registers them on a client. A script's
 * `--- @include "name"` line is replaced by lua/name.lua, so shared helpers are written once.
 */
import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";

const SCRIPTS = {
  assignLocalSequence: { file: "assign-local-sequence", keys: 1 },
  recordLocalSequence: { file: "record-local-sequence", keys: 1 },
} as const;

export type ScriptName = keyof typeof SCRIPTS;

export interface ScriptCommands {
  assignLocalSequence(key: string, digest: string): Promise<[string, string]>;
  recordLocalSequence(key: string, digest: string, sequence: string): Promise<[number, string, string]>;
}

export function loadScript(name: string): string {
  const source = readFileSync(new URL(`./lua/${name}.lua`, import.meta.url), "utf8");
  return source.replace(/^--- @include "([a-z-]+)"$/gm, (_line, include: string) => loadScript(include));
}

export function registerScripts(client: Redis): Redis & ScriptCommands {
  for (const [command, { file, keys }] of Object.entries(SCRIPTS)) {
    client.defineCommand(command, { numberOfKeys: keys, lua: loadScript(file) });
  }
  return client as Redis & ScriptCommands;
}
