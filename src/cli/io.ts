/** What a CLI command may touch of the outside world, injected so tests run commands in-process. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly readFile: (path: string) => Promise<Uint8Array>;
  readonly readStdin: () => Promise<Uint8Array>;
  readonly now: () => Date;
  /** The process environment; commands read it only to hand it to the config loader. */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Resolves with the signal's name when the process is asked to stop (SIGINT, SIGTERM). */
  readonly waitForShutdown: () => Promise<string>;
}

/** Exit statuses every command shares: 0 ok, 1 the input was refused or is unusable, 2 the command line is wrong. */
export const EXIT_OK = 0;
export const EXIT_REJECTED = 1;
export const EXIT_USAGE = 2;

export class CliExit extends Error {
  constructor(readonly exitCode: number) {
    super(`exit ${exitCode}`);
  }
}
