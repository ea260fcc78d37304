/**
 * Fixtures of the distribution API tests: real bundles (certificates and JWT keys made in the test), a bundle
 * cache, a static registry, an embedded store, and the router in a real express app on an ephemeral port.
 */
import { X509Certificate } from "node:crypto";
import { type IncomingHttpHeaders, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import express, { type RequestHandler } from "express";
import { createDistributionRouter, type DistributionRouter } from "../../../src/api/distribution/router.js";
import { manualClock } from "../../../src/clock.js";
import { type BundleCache, createBundleCache } from "../../../src/federation/bundle-cache.js";
import { createStaticRegistry, type RelationshipRegistry } from "../../../src/federation/registry.js";
import type { Relationship, RelationshipState } from "../../../src/federation/relationship.js";
import { silentLogger } from "../../../src/logging.js";
import { resolvePolicy } from "../../../src/policy/merge.js";
import {
  createTrustBundle,
  jwtAuthority,
  type TrustBundle,
  x509AuthorityFromCertificate,
} from "../../../src/spiffe/bundle.js";
import { serializeSpiffeBundle } from "../../../src/spiffe/codec.js";
import { bundleDigest } from "../../../src/spiffe/digest.js";
import type { TrustDomain } from "../../../src/spiffe/id.js";
import { importPublicJwk, type PublicJwk } from "../../../src/spiffe/public-key.js";
import { openEmbeddedStore } from "../../../src/store/embedded/embedded-store.js";
import type { StoredBundle } from "../../../src/store/federation-state.js";
import type { Store } from "../../../src/store/types.js";
import { createCa, createJwtKey, type JsonWebKey } from "../../support/pki.js";

export { eventually } from "../../support/eventually.js";

export const ACTIVE = "partner.test" as TrustDomain;
export const SECOND = "second.test" as TrustDomain;
export const PENDING = "pending.test" as TrustDomain;
export const SUSPENDED = "suspended.test" as TrustDomain;

export function relationship(trustDomain: TrustDomain, state: RelationshipState): Relationship {
  return {
    trustDomain,
    endpointUrl: `https://${trustDomain}/bundle`,
    profile: { kind: "https_web" },
    owner: "team",
    labels: {},
    allowedCidrs: [],
    policy: resolvePolicy(),
    state,
    origin: "config",
  };
}

function imported(jwk: JsonWebKey): PublicJwk {
  const result = importPublicJwk(jwk as Record<string, unknown>);
  if (!result.ok) throw new Error(result.message);
  return result.jwk;
}

export interface Material {
  /** Two CAs and two JWT keys per use; enough to build a first bundle and a rotated one. */
  readonly ca: readonly X509Certificate[];
  readonly jwt: readonly PublicJwk[];
}

export async function makeMaterial(): Promise<Material> {
  const [ca1, ca2, ca3, k1, k2] = await Promise.all([
    createCa({ trustDomain: ACTIVE }),
    createCa({ trustDomain: ACTIVE }),
    createCa({ trustDomain: SECOND }),
    createJwtKey(),
    createJwtKey(),
  ]);
  return {
    ca: [ca1, ca2, ca3].map((ca) => new X509Certificate(ca.der)),
    jwt: [imported(k1.publicJwk), imported(k2.publicJwk)],
  };
}

export function makeBundle(
  material: Material,
  options: { ca: number[]; jwt: number[]; wit?: number[]; sequence?: bigint; refreshHintSeconds?: number },
): TrustBundle {
  return createTrustBundle({
    x509Authorities: options.ca.map((i) => x509AuthorityFromCertificate(material.ca[i]!)),
    jwtAuthorities: [
      ...options.jwt.map((i) => jwtAuthority(`jwt-${i}`, material.jwt[i]!)),
      ...(options.wit ?? []).map((i) => jwtAuthority(`wit-${i}`, material.jwt[i]!, "wit-svid")),
    ],
    sequence: options.sequence,
    refreshHintSeconds: options.refreshHintSeconds,
  });
}

let acceptedAt = 1_700_000_000_000;

export function stored(bundle: TrustBundle): StoredBundle {
  acceptedAt += 1000;
  return {
    json: serializeSpiffeBundle(bundle),
    digest: bundleDigest(bundle),
    ...(bundle.sequence === undefined ? {} : { sequence: bundle.sequence.toString() }),
    ...(bundle.refreshHintSeconds === undefined ? {} : { refreshHintSeconds: bundle.refreshHintSeconds }),
    acceptedAt,
  };
}

export function put(cache: BundleCache, trustDomain: TrustDomain, bundle: TrustBundle): StoredBundle {
  const value = stored(bundle);
  cache.put(trustDomain, value, { bundle });
  return value;
}

export interface Harness {
  readonly url: string;
  readonly cache: BundleCache;
  readonly store: Store;
  readonly router: DistributionRouter;
  close(): Promise<void>;
}

/** Lets every caller read every trust domain (the router shows nothing to a caller without a predicate). */
export const allow: RequestHandler = (_req, res, next) => {
  res.locals.allowedTrustDomains = () => true;
  next();
};

/** A registry whose relationships the test changes, telling subscribers as a store-backed one would. */
export function mutableRegistry(initial: readonly Relationship[]): RelationshipRegistry & {
  set(relationship: Relationship): void;
} {
  let current = createStaticRegistry(initial);
  const listeners = new Set<() => void>();
  return {
    list: () => current.list(),
    get: (trustDomain) => current.get(trustDomain),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    set(relationship) {
      const others = current.list().filter((r) => r.trustDomain !== relationship.trustDomain);
      current = createStaticRegistry([...others, relationship]);
      for (const listener of listeners) listener();
    },
  };
}

export async function startHarness(options: {
  relationships: readonly Relationship[];
  registry?: RelationshipRegistry;
  fill?: (cache: BundleCache) => void;
  authorize?: RequestHandler;
  heartbeatMs?: number;
  eventCapacity?: number;
}): Promise<Harness> {
  const cache = createBundleCache();
  options.fill?.(cache);
  const store = await openEmbeddedStore({ logger: silentLogger() });
  const router = createDistributionRouter({
    cache,
    registry: options.registry ?? createStaticRegistry(options.relationships),
    store,
    authorize: options.authorize ?? allow,
    clock: manualClock(),
    logger: silentLogger(),
    ...(options.heartbeatMs === undefined ? {} : { heartbeatMs: options.heartbeatMs }),
    ...(options.eventCapacity === undefined ? {} : { eventCapacity: options.eventCapacity }),
  });
  const app = express();
  app.disable("x-powered-by");
  app.set("etag", false);
  app.use(router);
  const server: Server = await new Promise((resolve) => {
    const listening = app.listen(0, "127.0.0.1", () => resolve(listening));
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    cache,
    store,
    router,
    async close() {
      router.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await store.close();
    },
  };
}

export interface Reply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  readonly text: string;
}

export function get(
  url: string,
  headers: Record<string, string> = {},
  options: { method?: string; signal?: AbortSignal } = {},
): Promise<Reply> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: options.method ?? "GET", headers, ...(options.signal ? { signal: options.signal } : {}) },
      (res) => {
        const chunks: Buffer[] = [];
        res.on("data", (chunk: Buffer) => chunks.push(chunk));
        res.on("end", () => {
          const body = Buffer.concat(chunks);
          resolve({ status: res.statusCode ?? 0, headers: res.headers, body, text: body.toString("utf8") });
        });
        res.on("error", reject);
      },
    );
    req.on("error", reject);
    req.end();
  });
}

export interface SseEvent {
  readonly id?: string;
  readonly event?: string;
  readonly data?: string;
}

/** A minimal EventSource: parses the stream into events and comments as they arrive. */
export interface SseStream {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly events: SseEvent[];
  readonly comments: string[];
  /** Resolves when `count` events in all have arrived. */
  waitForEvents(count: number, timeoutMs?: number): Promise<SseEvent[]>;
  waitForComment(text: string, timeoutMs?: number): Promise<void>;
  close(): void;
}

export function openSse(url: string, headers: Record<string, string> = {}): Promise<SseStream> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers: { accept: "text/event-stream", ...headers } }, (res) => {
      const events: SseEvent[] = [];
      const comments: string[] = [];
      const waiters = new Set<() => void>();
      let buffer = "";
      res.setEncoding("utf8");
      res.on("data", (chunk: string) => {
        buffer += chunk;
        let end = buffer.indexOf("\n\n");
        while (end >= 0) {
          const block = buffer.slice(0, end);
          buffer = buffer.slice(end + 2);
          const event: { id?: string; event?: string; data?: string } = {};
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) comments.push(line.slice(1).trim());
            else {
              const colon = line.indexOf(":");
              const field = line.slice(0, colon);
              const value = line.slice(colon + 1).replace(/^ /, "");
              if (field === "id" || field === "event" || field === "data") event[field] = value;
            }
          }
          if (Object.keys(event).length > 0) events.push(event);
          end = buffer.indexOf("\n\n");
        }
        for (const waiter of [...waiters]) waiter();
      });
      const until = (done: () => boolean, what: string, timeoutMs: number) =>
        new Promise<void>((resolveWait, rejectWait) => {
          if (done()) return resolveWait();
          const timer = setTimeout(() => {
            waiters.delete(check);
            rejectWait(new Error(`timed out waiting for ${what}`));
          }, timeoutMs);
          const check = () => {
            if (!done()) return;
            clearTimeout(timer);
            waiters.delete(check);
            resolveWait();
          };
          waiters.add(check);
        });
      resolve({
        status: res.statusCode ?? 0,
        headers: res.headers,
        events,
        comments,
        waitForEvents: async (count, timeoutMs = 5000) => {
          await until(() => events.length >= count, `${count} events`, timeoutMs);
          return events.slice(0, count);
        },
        waitForComment: (text, timeoutMs = 5000) => until(() => comments.includes(text), `comment ${text}`, timeoutMs),
        close: () => req.destroy(),
      });
    });
    req.on("error", reject);
    req.end();
  });
}
