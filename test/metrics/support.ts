/**
 * Fakes for the metrics tests: relationships built directly, a registry the test changes, cached bundles
 * made from real certificates, and a reader of one metric's series from a registry.
 */
import { X509Certificate } from "node:crypto";
import type { Registry } from "prom-client";
import { type CachedBundle, createBundleCache } from "../../src/federation/bundle-cache.js";
import { createStaticRegistry, type RelationshipRegistry } from "../../src/federation/registry.js";
import type { Relationship } from "../../src/federation/relationship.js";
import { resolvePolicy } from "../../src/policy/merge.js";
import { type TrustBundle, x509AuthorityFromCertificate } from "../../src/spiffe/bundle.js";
import { serializeSpiffeBundle } from "../../src/spiffe/codec.js";
import { bundleDigest } from "../../src/spiffe/digest.js";
import { parseTrustDomain, type TrustDomain } from "../../src/spiffe/id.js";
import type { Issued } from "../support/pki.js";

export function relationshipOf(trustDomain: string, overrides: Partial<Relationship> = {}): Relationship {
  return {
    trustDomain: parseTrustDomain(trustDomain),
    endpointUrl: `https://${trustDomain}/bundle`,
    profile: { kind: "https_web" },
    owner: "team-a",
    labels: {},
    allowedCidrs: [],
    policy: resolvePolicy(),
    state: "active",
    origin: "config",
    ...overrides,
  };
}

export interface MutableRegistry extends RelationshipRegistry {
  set(relationship: Relationship): void;
  remove(trustDomain: string): void;
}

/** A registry whose relationships the test changes, telling subscribers as a store-backed one would. */
export function mutableRegistry(initial: readonly Relationship[]): MutableRegistry {
  let current = createStaticRegistry(initial);
  const listeners = new Set<() => void>();
  const replace = (list: readonly Relationship[]) => {
    current = createStaticRegistry(list);
    for (const listener of listeners) listener();
  };
  return {
    list: () => current.list(),
    get: (trustDomain) => current.get(trustDomain),
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    set: (relationship) =>
      replace([...current.list().filter((r) => r.trustDomain !== relationship.trustDomain), relationship]),
    remove: (trustDomain) => replace(current.list().filter((r) => r.trustDomain !== trustDomain)),
  };
}

/** What the bundle cache holds for `bundle` after accepting it at `acceptedAt`. */
export function cachedOf(trustDomain: string, bundle: TrustBundle, acceptedAt = 1_000): CachedBundle {
  const cache = createBundleCache();
  const td = parseTrustDomain(trustDomain);
  cache.put(td, {
    json: serializeSpiffeBundle(bundle),
    digest: bundleDigest(bundle),
    ...(bundle.sequence === undefined ? {} : { sequence: bundle.sequence.toString() }),
    ...(bundle.refreshHintSeconds === undefined ? {} : { refreshHintSeconds: bundle.refreshHintSeconds }),
    acceptedAt,
  });
  const cached = cache.get(td);
  if (!cached) throw new Error("not cached");
  return cached;
}

export function authorityOf(ca: Issued) {
  return x509AuthorityFromCertificate(new X509Certificate(ca.der));
}

export interface Series {
  readonly labels: Record<string, string | number>;
  readonly value: number;
}

/** Every series of one metric, collected as a scrape collects it. */
export async function series(registry: Registry, name: string): Promise<Series[]> {
  const metric = registry.getSingleMetric(name);
  if (!metric) throw new Error(`no metric ${name}`);
  const { values } = await metric.get();
  return values.map(({ labels, value }) => ({ labels: { ...labels } as Record<string, string | number>, value }));
}

/** The value of the one series of `name` whose labels include `labels`; undefined when there is none. */
export async function seriesValue(
  registry: Registry,
  name: string,
  labels: Record<string, string>,
): Promise<number | undefined> {
  const matching = (await series(registry, name)).filter((s) =>
    Object.entries(labels).every(([key, expected]) => s.labels[key] === expected),
  );
  if (matching.length > 1) throw new Error(`${matching.length} series of ${name} match ${JSON.stringify(labels)}`);
  return matching[0]?.value;
}

export function td(name: string): TrustDomain {
  return parseTrustDomain(name);
}
