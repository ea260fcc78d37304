/**
 * This trust domain's own bundle, from a file (SPIFFE JSON or PEM) that is watched: each content change
 * is served at once. A sequence the file sets is used and must not go backwards; otherwise the store
 * numbers each new content, so replicas agree and a restart never goes backwards.
 *
 * The first load must succeed or the process refuses to start. After that, a bad file, a backwards
 * sequence or an unreachable store leaves the last good bundle serving; store failures are retried.
 */
import { readFile } from "node:fs/promises";
import { BundlegateError, isBundlegateError } from "../errors.js";
import type { Logger } from "../logging.js";
import { withMetadata } from "../spiffe/bundle.js";
import { type BundleFormat, parseBundle } from "../spiffe/read.js";
import type { LocalBundleStateStore } from "../store/local-bundle-state.js";
import { watchFiles } from "./file-watch.js";
import { contentDigest, toServedBundle } from "./served-bundle.js";
import type { ServedBundle, Watched } from "./types.js";

export type LocalBundleErrorCode =
  | "ERR_LOCAL_BUNDLE_UNREADABLE"
  | "ERR_LOCAL_SEQUENCE_BACKWARDS"
  | "ERR_LOCAL_SEQUENCE_REUSED";

export class LocalBundleError extends BundlegateError<LocalBundleErrorCode> {}

export type LocalBundleReloadResult = "changed" | "unchanged" | "error";

export interface LocalBundleSourceOptions {
  readonly file: string;
  readonly format: BundleFormat | "auto";
  /** Served when the file carries no spiffe_refresh_hint. */
  readonly defaultRefreshHintSeconds: number;
  readonly maxBytes: number;
  readonly store: LocalBundleStateStore;
  readonly logger: Logger;
  readonly pollIntervalMs: number;
  /** Delay before retrying a change the store could not record (default 2000 ms). */
  readonly storeRetryMs?: number;
  readonly onReload?: (result: LocalBundleReloadResult, code?: string) => void;
}

export interface LocalBundleSource extends Watched<ServedBundle> {
  /** Re-reads the file now; resolves when that read is done (also when it failed and the old bundle stays). */
  reload(): Promise<void>;
  close(): void;
}

export async function createLocalBundleSource(options: LocalBundleSourceOptions): Promise<LocalBundleSource> {
  const logger = options.logger.child({ component: "local-bundle", file: options.file });
  const listeners = new Set<(value: ServedBundle) => void>();
  let current = await load(options, logger);
  logger.info({ sequence: current.sequence.toString(), digest: current.digest }, "local bundle loaded");

  let running: Promise<void> | undefined;
  let again = false;
  let retryTimer: NodeJS.Timeout | undefined;
  let closed = false;

  const reloadOnce = async (): Promise<void> => {
    try {
      const next = await load(options, logger);
      if (next.digest === current.digest) {
        options.onReload?.("unchanged");
        return;
      }
      current = next;
      logger.info({ sequence: next.sequence.toString(), digest: next.digest }, "local bundle changed");
      options.onReload?.("changed");
      for (const listener of listeners) listener(next);
    } catch (error) {
      const code = isBundlegateError(error) ? error.code : "ERR_INTERNAL";
      logger.error(
        {
          code,
          err: error instanceof Error ? error.message : String(error),
          servingSequence: current.sequence.toString(),
        },
        "local bundle not reloaded; the previous bundle keeps serving",
      );
      options.onReload?.("error", code);
      if (code.startsWith("ERR_STORE_") && !closed) {
        clearTimeout(retryTimer);
        retryTimer = setTimeout(() => void reload(), options.storeRetryMs ?? 2000);
      }
    }
  };

  // One read at a time; a change noticed during a read causes exactly one more read after it.
  const reload = (): Promise<void> => {
    if (running) {
      again = true;
      return running;
    }
    running = (async () => {
      do {
        again = false;
        await reloadOnce();
      } while (again && !closed);
      running = undefined;
    })();
    return running;
  };

  const watcher = watchFiles({
    paths: [options.file],
    pollIntervalMs: options.pollIntervalMs,
    onChange: () => void reload(),
    logger,
  });

  return {
    current: () => current,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    reload,
    close() {
      closed = true;
      clearTimeout(retryTimer);
      watcher.close();
    },
  };
}

async function load(options: LocalBundleSourceOptions, logger: Logger): Promise<ServedBundle> {
  let bytes: Buffer;
  try {
    bytes = await readFile(options.file);
  } catch (cause) {
    const reason = (cause as NodeJS.ErrnoException).code ?? (cause as Error).message;
    throw new LocalBundleError("ERR_LOCAL_BUNDLE_UNREADABLE", `cannot read ${options.file}: ${reason}`, { cause });
  }
  const parsed = parseBundle(bytes, options.format, { maxBytes: options.maxBytes });
  for (const warning of parsed.warnings) logger.warn({ code: warning.code }, warning.message);
  if (parsed.bundle.x509Authorities.length + parsed.bundle.jwtAuthorities.size === 0) {
    logger.warn(
      { code: "WARN_NO_USABLE_AUTHORITIES" },
      "the local bundle is empty: partners will trust no SVID of this domain",
    );
  }

  const refreshHint = parsed.bundle.refreshHintSeconds ?? options.defaultRefreshHintSeconds;
  const content = withMetadata(parsed.bundle, { sequence: undefined, refreshHintSeconds: refreshHint });
  const digest = contentDigest(content);
  const fileSequence = parsed.bundle.sequence;
  if (fileSequence === undefined) {
    const state = await options.store.assignLocalSequence(digest);
    return toServedBundle(content, state.sequence, refreshHint);
  }
  const recorded = await options.store.recordLocalSequence(digest, fileSequence);
  if (!recorded.ok) {
    const stored = recorded.stored.sequence;
    throw fileSequence < stored
      ? new LocalBundleError(
          "ERR_LOCAL_SEQUENCE_BACKWARDS",
          `${options.file} sets spiffe_sequence ${fileSequence}, below the ${stored} already published`,
          { details: { fileSequence: fileSequence.toString(), storedSequence: stored.toString() } },
        )
      : new LocalBundleError(
          "ERR_LOCAL_SEQUENCE_REUSED",
          `${options.file} changed its content but kept spiffe_sequence ${fileSequence}; the sequence must change with the content`,
          { details: { fileSequence: fileSequence.toString() } },
        );
  }
  return toServedBundle(content, fileSequence, refreshHint);
}
