import { BundlegateError, type BundlegateErrorOptions } from "../errors.js";

/**
 * - ERR_CONFIG_INVALID: the document (after environment overrides) breaks the schema; `details.issues` names every field.
 * - ERR_CONFIG_UNREADABLE: the file could not be read at all.
 * - ERR_CONFIG_YAML: the file is not acceptable YAML (syntax, duplicate keys, alias bombs); line and column when known.
 */
export type ConfigErrorCode = "ERR_CONFIG_INVALID" | "ERR_CONFIG_UNREADABLE" | "ERR_CONFIG_YAML";

export interface ConfigIssue {
  /** Dotted snake_case path as written in the YAML file, e.g. "endpoint.https_web.cert_file"; "" is the document itself. */
  readonly path: string;
  readonly message: string;
  /** The environment variable the bad value came from, when it did not come from the file. */
  readonly env?: string;
  /** The code of the underlying error when there is one, e.g. "ERR_TRUST_DOMAIN_UPPERCASE". */
  readonly code?: string;
}

export interface YamlProblem {
  readonly message: string;
  /** The yaml package's own code, e.g. "DUPLICATE_KEY". */
  readonly yamlCode?: string;
  /** 1-based. */
  readonly line?: number;
  /** 1-based. */
  readonly column?: number;
}

export class ConfigError extends BundlegateError<ConfigErrorCode> {
  constructor(code: ConfigErrorCode, message: string, options: BundlegateErrorOptions = {}) {
    // A bad config stops the process at start; it never answers an API request, so nothing is exposed.
    super(code, message, { status: 500, expose: false, ...options });
  }

  /** The issues of an ERR_CONFIG_INVALID error; empty for the other codes. */
  get issues(): readonly ConfigIssue[] {
    const issues = this.details.issues;
    return Array.isArray(issues) ? (issues as ConfigIssue[]) : [];
  }
}

export function isConfigError(value: unknown): value is ConfigError {
  return value instanceof ConfigError;
}

/** One line per issue, starting with what the operator has to go and change: the env var, else the YAML path. */
export function formatIssue(issue: ConfigIssue): string {
  const where = issue.path === "" ? "(document)" : issue.path;
  return issue.env === undefined ? `${where}: ${issue.message}` : `${issue.env} (${where}): ${issue.message}`;
}

export function invalidConfigError(issues: readonly ConfigIssue[], source?: string): ConfigError {
  const count = issues.length === 1 ? "1 issue" : `${issues.length} issues`;
  const header = `invalid configuration${source === undefined ? "" : ` in ${source}`} (${count}):`;
  return new ConfigError("ERR_CONFIG_INVALID", [header, ...issues.map(formatIssue)].join("\n"), {
    details: { issues: issues.map((issue) => Object.freeze({ ...issue })), ...(source ? { file: source } : {}) },
  });
}

export function yamlConfigError(problems: readonly YamlProblem[], source?: string, cause?: unknown): ConfigError {
  const where = (p: YamlProblem): string =>
    [source ?? "config", p.line, p.column].filter((part) => part !== undefined).join(":");
  const first = problems[0];
  return new ConfigError("ERR_CONFIG_YAML", problems.map((p) => `${where(p)}: ${p.message}`).join("\n"), {
    ...(cause === undefined ? {} : { cause }),
    details: {
      problems: problems.map((p) => Object.freeze({ ...p })),
      ...(first?.line === undefined ? {} : { line: first.line }),
      ...(first?.column === undefined ? {} : { column: first.column }),
      ...(source ? { file: source } : {}),
    },
  });
}

export function unreadableConfigError(file: string, cause: unknown): ConfigError {
  const reason = (cause as NodeJS.ErrnoException | undefined)?.code ?? (cause instanceof Error ? cause.message : "");
  return new ConfigError("ERR_CONFIG_UNREADABLE", `cannot read config file ${file}${reason ? `: ${reason}` : ""}`, {
    cause,
    details: { file, ...(reason ? { reason } : {}) },
  });
}
