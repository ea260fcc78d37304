/**
 * Where the rest of the gateway learns which relationships exist. The sync engine, the API and the
 * metrics read relationships through this interface only, so config-file relationships (here) and
 * API-managed ones (a store-backed registry) are interchangeable.
 */
import { BundlegateError } from "../errors.js";
import type { Relationship } from "./relationship.js";

export interface RelationshipRegistry {
  /** Every relationship, in a stable order (the config file's for a static registry). */
  list(): readonly Relationship[];
  get(trustDomain: string): Relationship | undefined;
  /** Called after any change to the set or to one relationship; returns the unsubscribe function. */
  subscribe(listener: () => void): () => void;
}

/**
 * The relationships of the config file. They change only with a restart, so listeners are never called;
 * subscribing is still allowed so consumers need not know which registry they were given.
 */
export function createStaticRegistry(relationships: readonly Relationship[]): RelationshipRegistry {
  const byTrustDomain = new Map<string, Relationship>();
  for (const [index, relationship] of relationships.entries()) {
    // The config loader refuses duplicates; a second entry here would make get() and list() disagree.
    if (byTrustDomain.has(relationship.trustDomain)) {
      throw new BundlegateError(
        "ERR_RELATIONSHIP_DUPLICATE",
        `two relationships for trust domain ${relationship.trustDomain} (the second at index ${index})`,
        { details: { trustDomain: relationship.trustDomain, index } },
      );
    }
    byTrustDomain.set(relationship.trustDomain, relationship);
  }
  const list = Object.freeze([...relationships]);
  return {
    list: () => list,
    get: (trustDomain) => byTrustDomain.get(trustDomain),
    subscribe: () => () => {},
  };
}
