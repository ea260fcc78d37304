/**
 * The Store in process memory, with an optional snapshot file so a single node keeps its state across
 * restarts. For development, tests and single nodes; replicas must share Redis instead.
 *
 * Each operation changes memory synchronously (so it is atomic within the process) and then writes
 * the snapshot: to a temporary file, flushed, then renamed over the old one, so a crash leaves either
 * the old or the new snapshot, never half of one.
 */
import { mkdir, open, readFile, rename } from "node:fs/promises";
import { dirname } from "node:path";
import type { Logger } from "../../logging.js";
import { StoreError } from "../errors.js";
import type { LocalBundleState, RecordSequenceResult } from "../local-bundle-state.js";
import type { Store, StoreHealth } from "../types.js";

const SNAPSHOT_VERSION = 1;
const MAX_SEQUENCE = 2n ** 64n - 1n;

interface Snapshot {
  version: number;
  localBundle?: { contentDigest: string; sequence: string };
}

export interface EmbeddedStoreOptions {
  readonly snapshotFile?: string;
  readonly logger: Logger;
}

export async function openEmbeddedStore(options: EmbeddedStoreOptions): Promise<Store> {
  let localBundle = options.snapshotFile ? await readSnapshot(options.snapshotFile) : undefined;
  let writes: Promise<void> = Promise.resolve();

  const persist = (): Promise<void> => {
    const file = options.snapshotFile;
    if (!file) return Promise.resolve();
    const snapshot: Snapshot = { version: SNAPSHOT_VERSION };
    if (localBundle) {
      snapshot.localBundle = { contentDigest: localBundle.contentDigest, sequence: localBundle.sequence.toString() };
    }
    // Writes run one after another so an older snapshot never lands after a newer one.
    writes = writes.catch(() => undefined).then(() => writeSnapshot(file, snapshot));
    return writes;
  };

  return {
    kind: "embedded",

    async assignLocalSequence(contentDigest: string): Promise<LocalBundleState> {
      if (localBundle?.contentDigest === contentDigest) return localBundle;
      const previous = localBundle?.sequence ?? 0n;
      if (previous >= MAX_SEQUENCE) throw new StoreError("ERR_SEQUENCE_EXHAUSTED", "the local sequence reached 2^64-1");
      localBundle = { contentDigest, sequence: previous + 1n };
      const assigned = localBundle;
      await persist();
      return assigned;
    },

    async recordLocalSequence(contentDigest: string, sequence: bigint): Promise<RecordSequenceResult> {
      const stored = localBundle;
      if (
        stored &&
        (sequence < stored.sequence || (sequence === stored.sequence && contentDigest !== stored.contentDigest))
      ) {
        return { ok: false, stored };
      }
      localBundle = { contentDigest, sequence };
      const state = localBundle;
      await persist();
      return { ok: true, state };
    },

    async getLocalBundleState(): Promise<LocalBundleState | undefined> {
      return localBundle;
    },

    async health(): Promise<StoreHealth> {
      return { ok: true };
    },

    async close(): Promise<void> {
      await writes.catch(() => undefined);
    },
  };
}

async function readSnapshot(file: string): Promise<LocalBundleState | undefined> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (cause) {
    if ((cause as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new StoreError("ERR_STORE_SNAPSHOT_UNREADABLE", `cannot read snapshot ${file}`, { cause });
  }
  try {
    const snapshot = JSON.parse(text) as Snapshot;
    if (snapshot.version !== SNAPSHOT_VERSION) throw new Error(`unknown snapshot version ${String(snapshot.version)}`);
    const local = snapshot.localBundle;
    if (!local) return undefined;
    if (!/^[0-9a-f]{64}$/.test(local.contentDigest) || !/^(0|[1-9]\d*)$/.test(local.sequence)) {
      throw new Error("malformed localBundle entry");
    }
    return { contentDigest: local.contentDigest, sequence: BigInt(local.sequence) };
  } catch (cause) {
    // Refusing to start beats silently restarting the sequence at 1, which partners would reject as a rollback.
    throw new StoreError(
      "ERR_STORE_CORRUPT",
      `snapshot ${file} is not a bundlegate snapshot: ${(cause as Error).message}`,
      {
        cause,
      },
    );
  }
}

async function writeSnapshot(file: string, snapshot: Snapshot): Promise<void> {
  const temporary = `${file}.${process.pid}.tmp`;
  try {
    await mkdir(dirname(file), { recursive: true });
    const handle = await open(temporary, "w", 0o600);
    try {
      await handle.writeFile(`${JSON.stringify(snapshot, null, 2)}\n`);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, file);
  } catch (cause) {
    throw new StoreError("ERR_STORE_SNAPSHOT_WRITE", `cannot write snapshot ${file}`, { cause });
  }
}
