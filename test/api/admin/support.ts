/**
 * A whole gateway for admin API tests: its own trust domain, CA, bundle file and https_spiffe endpoint
 * SVID, the admin API on a plain-HTTP internal listener with one static token per scope set, and a store
 * (a real redis-server with a prefix per gateway, or the embedded store).
 */
import { createHash, X509Certificate } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type RunningApp, startApp } from "../../../src/app.js";
import { type Clock, systemClock } from "../../../src/clock.js";
import { parseConfig } from "../../../src/config/load.js";
import { type Logger, silentLogger } from "../../../src/logging.js";
import { createTrustBundle, x509AuthorityFromCertificate } from "../../../src/spiffe/bundle.js";
import { serializeSpiffeBundle } from "../../../src/spiffe/codec.js";
import { createCa, createSvid, type Issued } from "../../support/pki.js";

export const TOKENS = {
  reader: "reader-token-0123456789",
  writer: "writer-token-0123456789",
  approver: "approver-token-0123456789",
  auditor: "auditor-token-0123456789",
  admin: "admin-token-0123456789",
} as const;

export type TokenName = keyof typeof TOKENS;

const SCOPES: Record<TokenName, string[]> = {
  reader: ["relationships:read"],
  writer: ["relationships:read", "relationships:write"],
  approver: ["relationships:read", "relationships:approve"],
  auditor: ["audit:read"],
  admin: ["relationships:read", "relationships:write", "relationships:approve", "audit:read"],
};

const sha256 = (text: string) => createHash("sha256").update(text).digest("hex");

export interface Gateway {
  readonly trustDomain: string;
  readonly app: RunningApp;
  readonly ca: Issued;
  readonly dir: string;
  /** The https_spiffe endpoint's URL and SPIFFE ID. */
  readonly endpointUrl: string;
  readonly endpointSpiffeId: string;
  api(method: string, path: string, options?: ApiOptions): Promise<ApiReply>;
  stop(): Promise<void>;
}

export interface ApiOptions {
  readonly token?: TokenName | string | null;
  readonly body?: unknown;
  /** Sent as is (for malformed-body tests). */
  readonly rawBody?: string;
  readonly headers?: Record<string, string>;
}

export interface ApiReply {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  // biome-ignore lint/suspicious/noExplicitAny: tests read answers field by field; the OpenAPI test checks their shapes
  readonly json: any;
}

export interface GatewayOptions {
  readonly trustDomain: string;
  /** redis URL, or undefined for the embedded store. */
  readonly redisUrl?: string;
  readonly keyPrefix?: string;
  readonly clock?: Clock;
  readonly logger?: Logger;
  readonly replicaId?: string;
  /** Reuse another gateway's files (a second replica of the same gateway). */
  readonly sameAs?: Gateway;
  readonly relationships?: unknown[];
  readonly adminExtra?: Record<string, unknown>;
  readonly distribution?: boolean;
  /** Extra files written into the gateway's directory before it starts (e.g. a JWKS). */
  readonly files?: Record<string, string>;
}

export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const td = options.trustDomain;
  let dir: string;
  let ca: Issued;
  if (options.sameAs) {
    dir = options.sameAs.dir;
    ca = options.sameAs.ca;
  } else {
    dir = await mkdtemp(join(tmpdir(), `bg-admin-${td}-`));
    ca = await createCa({ trustDomain: td });
    const svid = await createSvid({ issuer: ca, spiffeId: `spiffe://${td}/bundlegate`, ipAddresses: ["127.0.0.1"] });
    const bundle = createTrustBundle({
      x509Authorities: [x509AuthorityFromCertificate(new X509Certificate(ca.der))],
      sequence: 1n,
      refreshHintSeconds: 60,
    });
    await writeFile(join(dir, "bundle.json"), serializeSpiffeBundle(bundle));
    await writeFile(join(dir, "svid.pem"), svid.pem);
    await writeFile(join(dir, "svid.key"), svid.keyPem);
  }
  for (const [name, content] of Object.entries(options.files ?? {})) await writeFile(join(dir, name), content);
  const config = parseConfig(
    JSON.stringify({
      trust_domain: td,
      local_bundle: { file: "bundle.json" },
      endpoint: {
        https_spiffe: {
          listen: { host: "127.0.0.1", port: 0 },
          endpoint_spiffe_id: `spiffe://${td}/bundlegate`,
          svid_file: "svid.pem",
          svid_key_file: "svid.key",
        },
      },
      internal: { listen: { host: "127.0.0.1", port: 0 } },
      metrics: { listen: { host: "127.0.0.1", port: 0 } },
      store: options.redisUrl
        ? { kind: "redis", url: options.redisUrl, key_prefix: options.keyPrefix ?? `bg-${td}` }
        : { kind: "embedded" },
      federation: { min_refresh_hint_seconds: 1, lease_ms: 2000, backoff_initial_seconds: 1 },
      relationships: options.relationships ?? [],
      admin: {
        tokens: Object.entries(SCOPES).map(([name, scopes]) => ({
          name,
          sha256: sha256(TOKENS[name as TokenName]),
          scopes,
        })),
        expiry_check_interval_ms: 200,
        ...options.adminExtra,
      },
      ...(options.distribution
        ? {
            distribution: {
              tokens: [{ name: "reader", sha256: sha256(TOKENS.reader) }],
              allow: { "*": ["token:reader"] },
            },
          }
        : {}),
    }),
    { baseDir: dir, env: {}, source: `gateway ${td}` },
  );
  const app = await startApp(config, {
    logger: options.logger ?? silentLogger(),
    clock: options.clock ?? systemClock,
    ...(options.replicaId ? { replicaId: options.replicaId } : {}),
  });
  const spiffe = app.addresses.httpsSpiffe!;
  const gateway: Gateway = {
    trustDomain: td,
    app,
    ca,
    dir,
    endpointUrl: `https://127.0.0.1:${spiffe.port}/`,
    endpointSpiffeId: `spiffe://${td}/bundlegate`,
    api: (method, path, opts = {}) => call(app, method, path, opts),
    stop: () => app.stop(),
  };
  return gateway;
}

export function call(app: RunningApp, method: string, path: string, options: ApiOptions = {}): Promise<ApiReply> {
  const { host, port } = app.addresses.internal;
  const token =
    options.token === null
      ? undefined
      : options.token === undefined
        ? TOKENS.admin
        : ((TOKENS as Record<string, string>)[options.token] ?? options.token);
  const body = options.rawBody ?? (options.body === undefined ? undefined : JSON.stringify(options.body));
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host,
        port,
        method,
        path,
        headers: {
          ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
          // Node sends a DELETE body without framing unless its length is given.
          ...(body === undefined
            ? {}
            : { "content-type": "application/json", "content-length": String(Buffer.byteLength(body)) }),
          ...options.headers,
        },
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const text = Buffer.concat(chunks).toString("utf8");
          let json: unknown;
          try {
            json = text === "" ? undefined : JSON.parse(text);
          } catch {
            json = undefined;
          }
          resolve({ status: res.statusCode ?? 0, headers: res.headers, text, json });
        });
      },
    );
    req.on("error", reject);
    if (body !== undefined) req.write(body);
    req.end();
  });
}

/** Polls until `check` returns a value (not undefined) or the deadline passes. */
export async function eventually<T>(check: () => Promise<T | undefined> | T | undefined, ms = 10_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error("condition not met before the deadline");
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
