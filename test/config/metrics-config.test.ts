/** The `metrics` section: the Prometheus scrape listener, with defaults, overrides and its port checked against the others. */
import path from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError } from "../../src/config/errors.js";
import { type ConfigEnv, parseConfig } from "../../src/config/load.js";
import { CONFIG_DEFAULTS } from "../../src/config/schema.js";

const MINIMAL = `
trust_domain: example.org
local_bundle:
  file: bundle.json
endpoint:
  https_web:
    cert_file: web.crt
    key_file: web.key
`;

function parse(text: string, env: ConfigEnv = {}) {
  return parseConfig(text, { env, baseDir: path.resolve("/etc/bundlegate") });
}

function issuesOf(text: string, env: ConfigEnv = {}) {
  try {
    parse(text, env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as ConfigError).issues;
  }
  throw new Error("expected a ConfigError");
}

describe("metrics config", () => {
  it("listens on 127.0.0.1:9464 by default", () => {
    expect(CONFIG_DEFAULTS.metrics).toEqual({ listen: { host: "127.0.0.1", port: 9464 } });
    expect(parse(MINIMAL).metrics).toEqual({ listen: { host: "127.0.0.1", port: 9464 } });
  });

  it("takes the listener from the file, each field defaulting on its own, and from the environment", () => {
    expect(parse(`${MINIMAL}metrics: { listen: { host: 0.0.0.0 } }\n`).metrics.listen).toEqual({
      host: "0.0.0.0",
      port: 9464,
    });
    expect(parse(`${MINIMAL}metrics: { listen: { port: 0 } }\n`).metrics.listen).toEqual({
      host: "127.0.0.1",
      port: 0,
    });
    expect(parse(MINIMAL, { BUNDLEGATE_METRICS__LISTEN__PORT: "9100" }).metrics.listen.port).toBe(9100);
  });

  it("names a bad port, an unknown key, and a port shared with another listener", () => {
    expect(issuesOf(`${MINIMAL}metrics: { listen: { port: 70000 } }\n`)).toContainEqual(
      expect.objectContaining({ path: "metrics.listen.port" }),
    );
    expect(issuesOf(`${MINIMAL}metrics: { path: /m }\n`)).toContainEqual(
      expect.objectContaining({ path: "metrics.path" }),
    );
    expect(issuesOf(`${MINIMAL}metrics: { listen: { port: 8080 } }\n`)).toContainEqual({
      path: "metrics.listen.port",
      message: "127.0.0.1:8080 collides with internal.listen (127.0.0.1:8080)",
    });
  });
});
