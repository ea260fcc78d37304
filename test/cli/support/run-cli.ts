/**
 * Runs the `bundlegate` CLI in-process with an io that captures what it prints; every CLI test reads
 * its exit code, stdout and stderr the same way.
 */
import { readFile } from "node:fs/promises";
import type { CliIo } from "../../../src/cli/io.js";
import { runCli } from "../../../src/cli/program.js";

export interface CliRun {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** What a test may change of the io: files and stdin it serves, the clock and the environment. */
export type IoOverrides = Partial<Pick<CliIo, "readFile" | "readStdin" | "now" | "env">>;

export async function runCapturing(args: readonly string[], overrides: IoOverrides = {}): Promise<CliRun> {
  let stdout = "";
  let stderr = "";
  const io: CliIo = {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
    readFile: (file) => readFile(file),
    readStdin: async () => new Uint8Array(),
    now: () => new Date(),
    env: {},
    waitForShutdown: () => new Promise<string>(() => {}),
    ...overrides,
  };
  const code = await runCli(args, io);
  return { code, stdout, stderr };
}

/** An io.readFile serving `files` (text or bytes) by name; any other name fails with ENOENT, as a missing file does. */
export function memoryFiles(files: ReadonlyMap<string, string | Uint8Array>): CliIo["readFile"] {
  return async (path) => {
    const content = files.get(path);
    if (content === undefined) {
      throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: "ENOENT" });
    }
    return typeof content === "string" ? new TextEncoder().encode(content) : content;
  };
}
