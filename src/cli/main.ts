#!/usr/bin/env node
/** Process entry point: wires the real process to the CLI and sets the exit status. */
import { readFile } from "node:fs/promises";
import { buffer } from "node:stream/consumers";
import { runCli } from "./program.js";

const exitCode = await runCli(process.argv.slice(2), {
  stdout: (chunk) => process.stdout.write(chunk),
  stderr: (chunk) => process.stderr.write(chunk),
  readFile: (path) => readFile(path),
  readStdin: () => buffer(process.stdin),
  now: () => new Date(),
  env: process.env,
  waitForShutdown: () =>
    new Promise((resolve) => {
      for (const signal of ["SIGINT", "SIGTERM"] as const) process.once(signal, () => resolve(signal));
    }),
});
process.exitCode = exitCode;
