/**
 * Tells a caller that one of a few small files (certificates, keys, a bundle) changed, however it was replaced.
 *
 * Files get replaced in ways a watch on the file itself misses: an editor or `cp` writes in place, most
 * tools write a temporary file and rename it over (a new inode, so a watch on the old one goes quiet),
 * Kubernetes swaps a `..data` symlink so every projected file changes at once without any of their names
 * being touched, and some scripts delete and recreate. So:
 *
 * - `fs.watch` is set on each file's *directory* (and on the directory its symlinks resolve to), and an
 *   event there only triggers a look at the files: a name of ours, a Kubernetes `..`-prefixed entry, or
 *   an event without a name (some platforms) counts; anything else in the directory is ignored.
 * - The look compares each file's signature. For a regular file up to 1 MiB (every certificate, key and
 *   bundle) that is a SHA-256 of its content: mtime ticks are coarse (several milliseconds on ext4), so
 *   two same-size writes within one tick change no stat field, while a `touch`, a rewrite with the same
 *   bytes or a `..data` swap to identical content changes stat fields and nothing a reader would see.
 *   For anything else (larger, not a regular file) it is device, inode, size, mtime and realpath target.
 *   Whether the file exists, or why it cannot be read, is part of the signature either way.
 * - A poll every `pollIntervalMs` takes the same look, as the safety net for what events miss (network
 *   filesystems, a directory created after start, a symlink chain through another directory). It also
 *   re-arms directory watches that died or whose directory was replaced.
 * - A change starts (or restarts) a debounce timer; `onChange` runs once when the burst is over, so a
 *   certificate and key written one after the other are reported together.
 *
 * Nothing here throws out of a callback: fs errors become a "missing"/"error" signature or a log line, and
 * an `onChange` that throws (or rejects) is logged. Watchers and timers are unref'd: watching a file never
 * keeps a process alive on its own.
 */
import { createHash } from "node:crypto";
import { type FSWatcher, readFileSync, realpathSync, type Stats, statSync, watch } from "node:fs";
import { readFile, realpath, stat } from "node:fs/promises";
import { basename, dirname, resolve } from "node:path";
import type { Logger } from "../logging.js";

export interface WatchFilesOptions {
  readonly paths: readonly string[];
  /** How often the files are also compared without an event. */
  readonly pollIntervalMs: number;
  /** Quiet time after the last change before `onChange` runs. Default 100 ms. */
  readonly debounceMs?: number;
  readonly onChange: () => void;
  readonly logger?: Logger;
}

export interface FileWatcher {
  /** Stops every watch and timer; `onChange` is not called after this returns. */
  close(): void;
}

export const DEFAULT_DEBOUNCE_MS = 100;
const MAX_HASHED_BYTES = 1024 * 1024;

interface DirectoryWatch {
  readonly watcher: FSWatcher;
  /** Inode of the directory when the watch was set: a replaced directory needs a new watch. */
  readonly ino: number;
  names: Set<string>;
}

export function watchFiles(options: WatchFilesOptions): FileWatcher {
  const { pollIntervalMs, logger } = options;
  const debounceMs = options.debounceMs ?? DEFAULT_DEBOUNCE_MS;
  if (!(pollIntervalMs > 0) || !Number.isFinite(pollIntervalMs)) {
    throw new RangeError(`pollIntervalMs must be a positive number, got ${pollIntervalMs}`);
  }
  const paths = [...new Set(options.paths.map((path) => resolve(path)))];

  // Taken synchronously so a change made right after watchFiles() returns is never mistaken for the baseline.
  const looks = new Map(paths.map((path) => [path, lookSync(path)]));
  const directories = new Map<string, DirectoryWatch>();
  const unwatchable = new Set<string>();

  let closed = false;
  let scanning = false;
  let scanAgain = false;
  let debounceTimer: NodeJS.Timeout | undefined;

  const fire = () => {
    debounceTimer = undefined;
    if (closed) return;
    try {
      const result: unknown = options.onChange();
      if (isPromiseLike(result)) {
        result.then(undefined, (err: unknown) => logger?.error({ err, paths }, "file change handler failed"));
      }
    } catch (err) {
      logger?.error({ err, paths }, "file change handler failed");
    }
  };

  const changed = () => {
    if (closed) return;
    if (debounceTimer) clearTimeout(debounceTimer);
    debounceTimer = setTimeout(fire, debounceMs);
    debounceTimer.unref();
  };

  const scan = async () => {
    if (scanning) {
      scanAgain = true;
      return;
    }
    scanning = true;
    try {
      do {
        scanAgain = false;
        let anyChanged = false;
        for (const path of paths) {
          const latest = await look(path);
          if (closed) return;
          if (looks.get(path)?.signature !== latest.signature) {
            anyChanged = true;
            logger?.debug({ path }, "watched file changed");
          }
          looks.set(path, latest);
        }
        if (anyChanged) changed();
        arm();
      } while (scanAgain && !closed);
    } catch (err) {
      logger?.error({ err, paths }, "comparing watched files failed");
    } finally {
      scanning = false;
    }
  };

  const requestScan = () => {
    if (!closed) void scan();
  };

  /** Brings the directory watches in line with where the files (and their symlink targets) live now. */
  const arm = () => {
    if (closed) return;
    const wanted = new Map<string, Set<string>>();
    const want = (file: string) => {
      const dir = dirname(file);
      const names = wanted.get(dir) ?? new Set<string>();
      names.add(basename(file));
      wanted.set(dir, names);
    };
    for (const path of paths) {
      want(path);
      const target = looks.get(path)?.target;
      if (target !== undefined && target !== path) want(target);
    }

    for (const [dir, entry] of directories) {
      if (!wanted.has(dir) || directoryIno(dir) !== entry.ino) {
        entry.watcher.close();
        directories.delete(dir);
      }
    }
    for (const [dir, names] of wanted) {
      const existing = directories.get(dir);
      if (existing) {
        existing.names = names;
        continue;
      }
      const ino = directoryIno(dir);
      if (ino === undefined) continue; // not there (yet): the poll keeps looking
      try {
        const entry: DirectoryWatch = { watcher: watchDirectory(dir), ino, names };
        directories.set(dir, entry);
        unwatchable.delete(dir);
      } catch (err) {
        if (!unwatchable.has(dir)) logger?.warn({ err, dir }, "cannot watch directory; relying on polling");
        unwatchable.add(dir);
      }
    }
  };

  const watchDirectory = (dir: string): FSWatcher => {
    const watcher = watch(dir, { persistent: false }, (_event, filename) => {
      const entry = directories.get(dir);
      if (filename === null || filename.startsWith("..") || entry?.names.has(filename)) requestScan();
    });
    watcher.on("error", (err) => {
      logger?.warn({ err, dir }, "directory watch failed; relying on polling until it is re-armed");
      watcher.close();
      if (directories.get(dir)?.watcher === watcher) directories.delete(dir);
    });
    watcher.unref();
    return watcher;
  };

  arm();
  const pollTimer = setInterval(requestScan, pollIntervalMs);
  pollTimer.unref();

  return {
    close() {
      if (closed) return;
      closed = true;
      clearInterval(pollTimer);
      if (debounceTimer) clearTimeout(debounceTimer);
      debounceTimer = undefined;
      for (const entry of directories.values()) entry.watcher.close();
      directories.clear();
    },
  };
}

function isPromiseLike(value: unknown): value is PromiseLike<unknown> {
  return typeof value === "object" && value !== null && typeof (value as { then?: unknown }).then === "function";
}

interface Look {
  /** Everything compared, as one string: "missing", "error:<code>", "sha256:<hex>" or "stat:<dev:ino:size:mtime:target>". */
  readonly signature: string;
  readonly target: string | undefined;
}

function describe(stats: Stats, target: string, content: Buffer | undefined): Look {
  const signature = content
    ? `sha256:${createHash("sha256").update(content).digest("hex")}`
    : `stat:${stats.dev}:${stats.ino}:${stats.size}:${stats.mtimeMs}:${target}`;
  return { signature, target };
}

function describeError(error: unknown): Look {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return {
    signature: code === "ENOENT" || code === "ENOTDIR" ? "missing" : `error:${code ?? "unknown"}`,
    target: undefined,
  };
}

/** Only regular files are read: a FIFO or device at the path must not block or flood the watcher. */
function shouldHash(stats: Stats): boolean {
  return stats.isFile() && stats.size <= MAX_HASHED_BYTES;
}

function lookSync(path: string): Look {
  try {
    const stats = statSync(path);
    const target = realpathSync(path);
    return describe(stats, target, shouldHash(stats) ? readFileSync(path) : undefined);
  } catch (error) {
    return describeError(error);
  }
}

async function look(path: string): Promise<Look> {
  try {
    const stats = await stat(path);
    const target = await realpath(path);
    return describe(stats, target, shouldHash(stats) ? await readFile(path) : undefined);
  } catch (error) {
    return describeError(error);
  }
}

function directoryIno(dir: string): number | undefined {
  try {
    const stats = statSync(dir);
    return stats.isDirectory() ? stats.ino : undefined;
  } catch {
    return undefined;
  }
}
