/**
 * Loads the Lua scripts (one per atomic operation) and registers them on a client. A script's
 * `--- @include "name"` line is replaced by lua/name.lua, so shared helpers are written once.
 * Each script's header documents its KEYS, ARGV and reply; the signatures below follow them.
 */
import { readFileSync } from "node:fs";
import type { Redis } from "ioredis";

const SCRIPTS = {
  assignLocalSequence: { file: "assign-local-sequence", keys: 1 },
  recordLocalSequence: { file: "record-local-sequence", keys: 1 },
  acquireLease: { file: "acquire-lease", keys: 2 },
  renewLease: { file: "renew-lease", keys: 1 },
  releaseLease: { file: "release-lease", keys: 1 },
  commitFetch: { file: "commit-fetch", keys: 5 },
  acceptQuarantine: { file: "accept-quarantine", keys: 4 },
  discardQuarantine: { file: "discard-quarantine", keys: 1 },
  resetSequence: { file: "reset-sequence", keys: 2 },
  removeRelationship: { file: "remove-relationship", keys: 5 },
  putRelationshipRecord: { file: "put-relationship-record", keys: 2 },
  deleteRelationshipRecord: { file: "delete-relationship-record", keys: 3 },
  queryAudit: { file: "query-audit", keys: 1 },
} as const;

export type ScriptName = keyof typeof SCRIPTS;

type Key = string;
type Arg = string | number;

export interface ScriptCommands {
  assignLocalSequence(key: Key, digest: string): Promise<[string, string]>;
  recordLocalSequence(key: Key, digest: string, sequence: string): Promise<[number, string, string]>;
  acquireLease(lease: Key, fence: Key, token: string, ttlMs: number): Promise<number | null>;
  renewLease(lease: Key, token: string, ttlMs: number): Promise<number>;
  releaseLease(lease: Key, token: string): Promise<number>;
  commitFetch(
    bundle: Key,
    status: Key,
    quarantine: Key,
    history: Key,
    fence: Key,
    ...args: Arg[]
  ): Promise<[string, string?]>;
  acceptQuarantine(bundle: Key, status: Key, quarantine: Key, history: Key, ...args: Arg[]): Promise<number>;
  discardQuarantine(quarantine: Key, ...args: Arg[]): Promise<number>;
  resetSequence(bundle: Key, history: Key, ...args: Arg[]): Promise<number>;
  removeRelationship(
    bundle: Key,
    status: Key,
    quarantine: Key,
    lease: Key,
    fence: Key,
    ...args: Arg[]
  ): Promise<number>;
  putRelationshipRecord(records: Key, audit: Key, ...args: Arg[]): Promise<[string, (string | null)?]>;
  deleteRelationshipRecord(
    records: Key,
    preflights: Key,
    audit: Key,
    ...args: Arg[]
  ): Promise<[string, (string | null)?]>;
  queryAudit(audit: Key, ...args: Arg[]): Promise<[string, [string, string[]][]]>;
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
