import type { HistoryEntry } from "./federation-state.js";

/** A history entry with only its own members and fresh arrays: what a store keeps and hands out. */
export function copyHistoryEntry(entry: HistoryEntry): HistoryEntry {
  return {
    at: entry.at,
    digest: entry.digest,
    ...(entry.sequence === undefined ? {} : { sequence: entry.sequence }),
    event: entry.event,
    reasons: [...entry.reasons],
    added: [...entry.added],
    removed: [...entry.removed],
  };
}
