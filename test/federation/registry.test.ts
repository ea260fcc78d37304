import { describe, expect, it } from "vitest";
import { isBundlegateError } from "../../src/errors.js";
import { createStaticRegistry } from "../../src/federation/registry.js";
import type { Relationship } from "../../src/federation/relationship.js";
import { DEFAULT_TRUST_POLICY } from "../../src/policy/types.js";
import { parseTrustDomain } from "../../src/spiffe/id.js";

function relationship(trustDomain: string, owner = "team"): Relationship {
  return {
    trustDomain: parseTrustDomain(trustDomain),
    endpointUrl: `https://${trustDomain}/bundle`,
    profile: { kind: "https_web" },
    owner,
    labels: {},
    allowedCidrs: [],
    policy: DEFAULT_TRUST_POLICY,
    state: "active",
    origin: "config",
  };
}

describe("createStaticRegistry", () => {
  const a = relationship("a.org");
  const b = relationship("b.org");
  const c = relationship("c.org");

  it("lists the relationships in the order given", () => {
    expect(createStaticRegistry([b, a, c]).list()).toEqual([b, a, c]);
  });

  it("looks a relationship up by trust domain", () => {
    const registry = createStaticRegistry([a, b]);
    expect(registry.get("b.org")).toBe(b);
    expect(registry.get("a.org")).toBe(a);
    expect(registry.get("c.org")).toBeUndefined();
    expect(registry.get("")).toBeUndefined();
  });

  it("is empty without relationships", () => {
    const registry = createStaticRegistry([]);
    expect(registry.list()).toEqual([]);
    expect(registry.get("a.org")).toBeUndefined();
  });

  it("returns a frozen list, unaffected by later changes to the input array", () => {
    const input = [a, b];
    const registry = createStaticRegistry(input);
    input.push(c);
    expect(registry.list()).toEqual([a, b]);
    expect(Object.isFrozen(registry.list())).toBe(true);
    expect(registry.get("c.org")).toBeUndefined();
  });

  it("accepts subscribers, never calls them, and lets them unsubscribe (twice is harmless)", () => {
    const registry = createStaticRegistry([a]);
    let calls = 0;
    const unsubscribe = registry.subscribe(() => {
      calls++;
    });
    registry.list();
    registry.get("a.org");
    unsubscribe();
    unsubscribe();
    expect(calls).toBe(0);
  });

  it("refuses two relationships for one trust domain", () => {
    let caught: unknown;
    try {
      createStaticRegistry([a, b, relationship("a.org", "other")]);
    } catch (error) {
      caught = error;
    }
    expect(isBundlegateError(caught)).toBe(true);
    expect(caught).toMatchObject({ code: "ERR_RELATIONSHIP_DUPLICATE", details: { trustDomain: "a.org", index: 2 } });
  });
});
