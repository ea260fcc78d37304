/**
 * pino, configured once in the composition root and passed down as a value. Key material and tokens are
 * never logged; the redaction list is a net under that rule, not the rule itself.
 */
import { type DestinationStream, type Logger, pino } from "pino";

export type { Logger } from "pino";

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent";

export function createLogger(options: { level: LogLevel; name?: string }, destination?: DestinationStream): Logger {
  return pino(
    {
      name: options.name ?? "bundlegate",
      level: options.level,
      redact: { paths: ["*.key", "*.keyPem", "*.privateKey", "*.token", "*.authorization"], censor: "[redacted]" },
    },
    destination,
  );
}

/** A logger that writes nothing, for tests and library use. */
export function silentLogger(): Logger {
  return pino({ level: "silent" });
}
