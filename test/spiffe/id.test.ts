import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidSpiffeIdError, type SpiffeIdErrorCode } from "../../src/spiffe/errors.js";
import {
  isMemberOf,
  isSpiffeId,
  isTrustDomain,
  MAX_SPIFFE_ID_LENGTH,
  MAX_TRUST_DOMAIN_LENGTH,
  parseSpiffeId,
  parseTrustDomain,
  spiffeIdFromPath,
  type TrustDomain,
  trustDomainSpiffeId,
} from "../../src/spiffe/id.js";

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected a throw, got a result");
}

function expectCode(fn: () => unknown, code: SpiffeIdErrorCode): void {
  const error = thrown(fn);
  expect(error).toBeInstanceOf(InvalidSpiffeIdError);
  expect(error).toMatchObject({ code, status: 400, expose: true });
}

function codeOf(fn: () => unknown): string {
  const error = thrown(fn);
  expect(error).toBeInstanceOf(InvalidSpiffeIdError);
  return (error as InvalidSpiffeIdError).code;
}

const td = (name: string): TrustDomain => parseTrustDomain(name);

// "spiffe://" is 9 bytes; these fill an ID to exactly the limit.
const longestTrustDomain = "a".repeat(MAX_TRUST_DOMAIN_LENGTH);
const pathFilling = (trustDomain: string, extra = 0): string =>
  `/${"p".repeat(MAX_SPIFFE_ID_LENGTH - 9 - trustDomain.length - 1 + extra)}`;

const invalidTrustDomains: [string, string, SpiffeIdErrorCode][] = [
  ["empty", "", "ERR_TRUST_DOMAIN_EMPTY"],
  ["a SPIFFE ID", "spiffe://example.org", "ERR_TRUST_DOMAIN_IS_SPIFFE_ID"],
  ["a SPIFFE ID with path", "spiffe://example.org/ns/prod", "ERR_TRUST_DOMAIN_IS_SPIFFE_ID"],
  ["an uppercase SPIFFE ID", "SPIFFE://example.org", "ERR_TRUST_DOMAIN_IS_SPIFFE_ID"],
  ["an uppercase first letter", "Example.org", "ERR_TRUST_DOMAIN_UPPERCASE"],
  ["an uppercase label", "example.ORG", "ERR_TRUST_DOMAIN_UPPERCASE"],
  ["percent-encoding", "exa%6Dple.org", "ERR_TRUST_DOMAIN_PERCENT_ENCODED"],
  ["a port", "example.org:8443", "ERR_TRUST_DOMAIN_PORT"],
  ["an empty port", "example.org:", "ERR_TRUST_DOMAIN_PORT"],
  ["userinfo", "user@example.org", "ERR_TRUST_DOMAIN_USERINFO"],
  ["userinfo with password", "user:pw@example.org", "ERR_TRUST_DOMAIN_USERINFO"],
  ["an IPv6 literal", "[::1]", "ERR_TRUST_DOMAIN_BAD_CHAR"],
  ["an IPv6 literal with port", "[2001:db8::1]:443", "ERR_TRUST_DOMAIN_BAD_CHAR"],
  ["a non-ASCII letter", "exämple.org", "ERR_TRUST_DOMAIN_BAD_CHAR"],
  ["a non-ASCII uppercase letter", "Ämter.example", "ERR_TRUST_DOMAIN_BAD_CHAR"],
  ["an astral char", "😀.example", "ERR_TRUST_DOMAIN_BAD_CHAR"],
  ["a space", "example org", "ERR_TRUST_DOMAIN_BAD_CHAR"],
  ["a trailing newline", "example.org\n", "ERR_TRUST_DOMAIN_BAD_CHAR"],
  ["a slash", "example.org/", "ERR_TRUST_DOMAIN_BAD_CHAR"],
  ["a path", "example.org/ns/prod", "ERR_TRUST_DOMAIN_BAD_CHAR"],
  ["another URL", "https://example.org", "ERR_TRUST_DOMAIN_BAD_CHAR"],
  ["a non-numeric port", "example.org:https", "ERR_TRUST_DOMAIN_BAD_CHAR"],
  ["a lone percent sign", "exa%zzmple.org", "ERR_TRUST_DOMAIN_BAD_CHAR"],
  ["a question mark", "example.org?x", "ERR_TRUST_DOMAIN_BAD_CHAR"],
  ["a hash", "example.org#x", "ERR_TRUST_DOMAIN_BAD_CHAR"],
  ["a plus", "a+b.example", "ERR_TRUST_DOMAIN_BAD_CHAR"],
  ["256 bytes", "a".repeat(MAX_TRUST_DOMAIN_LENGTH + 1), "ERR_TRUST_DOMAIN_TOO_LONG"],
  ["256 bytes in 128 chars", "é".repeat(128), "ERR_TRUST_DOMAIN_TOO_LONG"],
];

const validTrustDomains = [
  "example.org",
  "1.2.3.4",
  "999.999.999.999",
  "trust_domain_name.example.com",
  "k8s-west.example.com",
  "xn--bcher-kva.example",
  "a",
  "_",
  "...",
  longestTrustDomain,
];

describe("parseTrustDomain", () => {
  it.each(invalidTrustDomains)("rejects %s", (_, name, code) => {
    expectCode(() => parseTrustDomain(name), code);
  });

  it.each(validTrustDomains)("accepts %j", (name) => {
    expect(parseTrustDomain(name)).toBe(name);
  });

  it("keeps echoed input short even for huge garbage", () => {
    const error = thrown(() => parseTrustDomain(`X${"x".repeat(1_000_000)}`));
    expect(error).toMatchObject({ code: "ERR_TRUST_DOMAIN_TOO_LONG" });
    expect((error as Error).message.length).toBeLessThan(300);
  });
});

describe("isTrustDomain", () => {
  it.each(invalidTrustDomains)("is false for %s", (_, name) => {
    expect(isTrustDomain(name)).toBe(false);
  });

  it.each(validTrustDomains)("is true for %j", (name) => {
    expect(isTrustDomain(name)).toBe(true);
  });

  it("never throws, even for a non-string smuggled past the types", () => {
    expect(isTrustDomain(undefined as unknown as string)).toBe(false);
    expect(isTrustDomain(42 as unknown as string)).toBe(false);
  });
});

const invalidIds: [string, string, SpiffeIdErrorCode][] = [
  ["empty", "", "ERR_SPIFFEID_EMPTY"],
  ["a bare trust domain", "example.org", "ERR_SPIFFEID_WRONG_SCHEME"],
  ["an uppercase scheme", "SPIFFE://example.org", "ERR_SPIFFEID_WRONG_SCHEME"],
  ["a mixed-case scheme", "Spiffe://example.org/a", "ERR_SPIFFEID_WRONG_SCHEME"],
  ["another scheme", "https://example.org/a", "ERR_SPIFFEID_WRONG_SCHEME"],
  ["a single slash", "spiffe:/example.org", "ERR_SPIFFEID_WRONG_SCHEME"],
  ["no slashes", "spiffe:example.org", "ERR_SPIFFEID_WRONG_SCHEME"],
  ["leading whitespace", " spiffe://example.org", "ERR_SPIFFEID_WRONG_SCHEME"],
  ["only the scheme", "spiffe://", "ERR_SPIFFEID_MISSING_TRUST_DOMAIN"],
  ["a path but no trust domain", "spiffe:///ns/prod", "ERR_SPIFFEID_MISSING_TRUST_DOMAIN"],
  ["a query but no trust domain", "spiffe://?x", "ERR_SPIFFEID_MISSING_TRUST_DOMAIN"],
  ["an uppercase trust domain", "spiffe://Example.org/a", "ERR_TRUST_DOMAIN_UPPERCASE"],
  ["a port", "spiffe://example.org:8443/a", "ERR_TRUST_DOMAIN_PORT"],
  ["a port and no path", "spiffe://example.org:8443", "ERR_TRUST_DOMAIN_PORT"],
  ["userinfo", "spiffe://user@example.org/a", "ERR_TRUST_DOMAIN_USERINFO"],
  ["userinfo with password", "spiffe://user:pw@example.org", "ERR_TRUST_DOMAIN_USERINFO"],
  ["a percent-encoded trust domain", "spiffe://exa%6Dple.org/a", "ERR_TRUST_DOMAIN_PERCENT_ENCODED"],
  ["an IPv6 trust domain", "spiffe://[::1]/a", "ERR_TRUST_DOMAIN_BAD_CHAR"],
  ["a non-ASCII trust domain", "spiffe://exämple.org/a", "ERR_TRUST_DOMAIN_BAD_CHAR"],
  ["a backslash in the trust domain", "spiffe://example.org\\a", "ERR_TRUST_DOMAIN_BAD_CHAR"],
  ["a 256-byte trust domain", `spiffe://${"a".repeat(256)}/a`, "ERR_TRUST_DOMAIN_TOO_LONG"],
  ["a query after the trust domain", "spiffe://example.org?x=1", "ERR_SPIFFEID_QUERY"],
  ["a query after the path", "spiffe://example.org/a?x=1", "ERR_SPIFFEID_QUERY"],
  ["an empty query", "spiffe://example.org/a?", "ERR_SPIFFEID_QUERY"],
  ["a query holding a hash", "spiffe://example.org/a?b#c", "ERR_SPIFFEID_QUERY"],
  ["a fragment after the trust domain", "spiffe://example.org#x", "ERR_SPIFFEID_FRAGMENT"],
  ["a fragment after the path", "spiffe://example.org/a#x", "ERR_SPIFFEID_FRAGMENT"],
  ["an empty fragment", "spiffe://example.org/a#", "ERR_SPIFFEID_FRAGMENT"],
  ["a fragment holding a question mark", "spiffe://example.org/a#b?c", "ERR_SPIFFEID_FRAGMENT"],
  ["a lone slash path", "spiffe://example.org/", "ERR_SPIFFEID_PATH_TRAILING_SLASH"],
  ["a trailing slash", "spiffe://example.org/a/b/", "ERR_SPIFFEID_PATH_TRAILING_SLASH"],
  ["a leading empty segment", "spiffe://example.org//a", "ERR_SPIFFEID_PATH_EMPTY_SEGMENT"],
  ["an inner empty segment", "spiffe://example.org/a//b", "ERR_SPIFFEID_PATH_EMPTY_SEGMENT"],
  ["only slashes", "spiffe://example.org//", "ERR_SPIFFEID_PATH_EMPTY_SEGMENT"],
  ["a dot segment", "spiffe://example.org/.", "ERR_SPIFFEID_PATH_DOT_SEGMENT"],
  ["a dot-dot segment", "spiffe://example.org/..", "ERR_SPIFFEID_PATH_DOT_SEGMENT"],
  ["an inner dot segment", "spiffe://example.org/a/./b", "ERR_SPIFFEID_PATH_DOT_SEGMENT"],
  ["an inner dot-dot segment", "spiffe://example.org/a/../b", "ERR_SPIFFEID_PATH_DOT_SEGMENT"],
  ["a percent-encoded space", "spiffe://example.org/a%20b", "ERR_SPIFFEID_PATH_PERCENT_ENCODED"],
  ["a percent-encoded dot", "spiffe://example.org/%2e", "ERR_SPIFFEID_PATH_PERCENT_ENCODED"],
  ["a percent-encoded slash", "spiffe://example.org/a%2Fb", "ERR_SPIFFEID_PATH_PERCENT_ENCODED"],
  ["a space in the path", "spiffe://example.org/a b", "ERR_SPIFFEID_PATH_BAD_CHAR"],
  ["a lone percent sign in the path", "spiffe://example.org/a%", "ERR_SPIFFEID_PATH_BAD_CHAR"],
  ["a colon in the path", "spiffe://example.org/a:b", "ERR_SPIFFEID_PATH_BAD_CHAR"],
  ["an at sign in the path", "spiffe://example.org/a@b", "ERR_SPIFFEID_PATH_BAD_CHAR"],
  ["a non-ASCII path", "spiffe://example.org/ä", "ERR_SPIFFEID_PATH_BAD_CHAR"],
  ["an astral char in the path", "spiffe://example.org/😀", "ERR_SPIFFEID_PATH_BAD_CHAR"],
  ["2049 bytes", `spiffe://example.org${pathFilling("example.org", 1)}`, "ERR_SPIFFEID_TOO_LONG"],
  [
    "2049 bytes with the longest trust domain",
    `spiffe://${longestTrustDomain}${pathFilling(longestTrustDomain, 1)}`,
    "ERR_SPIFFEID_TOO_LONG",
  ],
  ["over 2048 bytes in fewer chars", `spiffe://example.org/${"é".repeat(1100)}`, "ERR_SPIFFEID_TOO_LONG"],
];

const validIds: [string, string, string][] = [
  ["spiffe://example.org", "example.org", ""],
  ["spiffe://example.org/a", "example.org", "/a"],
  ["spiffe://1.2.3.4/workload", "1.2.3.4", "/workload"],
  ["spiffe://trust_domain_name.example.com/a_b", "trust_domain_name.example.com", "/a_b"],
  ["spiffe://k8s-west.example.com/ns/staging/sa/default", "k8s-west.example.com", "/ns/staging/sa/default"],
  ["spiffe://example.com/9eebccd2-12bf-40a6-b262-65fe0487d453", "example.com", "/9eebccd2-12bf-40a6-b262-65fe0487d453"],
  ["spiffe://example.org/Payments/MySQL", "example.org", "/Payments/MySQL"],
  ["spiffe://example.org/.../.a/a./..b", "example.org", "/.../.a/a./..b"],
  [`spiffe://example.org${"/seg".repeat(400)}`, "example.org", "/seg".repeat(400)],
  [`spiffe://${longestTrustDomain}`, longestTrustDomain, ""],
  [
    `spiffe://${longestTrustDomain}${pathFilling(longestTrustDomain)}`,
    longestTrustDomain,
    pathFilling(longestTrustDomain),
  ],
  [`spiffe://example.org${pathFilling("example.org")}`, "example.org", pathFilling("example.org")],
];

describe("parseSpiffeId", () => {
  it.each(invalidIds)("rejects %s", (_, uri, code) => {
    expectCode(() => parseSpiffeId(uri), code);
  });

  it.each(validIds)("accepts %j", (uri, trustDomain, path) => {
    expect(parseSpiffeId(uri)).toEqual({ trustDomain, path, uri });
  });

  it("accepts exactly 2048 bytes", () => {
    const uri = `spiffe://${longestTrustDomain}${pathFilling(longestTrustDomain)}`;
    expect(new TextEncoder().encode(uri).length).toBe(MAX_SPIFFE_ID_LENGTH);
    expect(parseSpiffeId(uri).uri).toBe(uri);
  });

  it("keeps the path case-sensitive", () => {
    expect(parseSpiffeId("spiffe://example.org/Web").path).not.toBe(parseSpiffeId("spiffe://example.org/web").path);
  });

  it("returns a frozen value", () => {
    expect(Object.isFrozen(parseSpiffeId("spiffe://example.org/a"))).toBe(true);
  });

  it("keeps echoed input short even for huge garbage", () => {
    const error = thrown(() => parseSpiffeId(`spiffe://example.org/${"x".repeat(1_000_000)}`));
    expect(error).toMatchObject({ code: "ERR_SPIFFEID_TOO_LONG" });
    expect((error as Error).message.length).toBeLessThan(300);
  });
});

describe("isSpiffeId", () => {
  it.each(invalidIds)("is false for %s", (_, uri) => {
    expect(isSpiffeId(uri)).toBe(false);
  });

  it.each(validIds)("is true for %j", (uri) => {
    expect(isSpiffeId(uri)).toBe(true);
  });

  it("never throws, even for a non-string smuggled past the types", () => {
    expect(isSpiffeId(null as unknown as string)).toBe(false);
    expect(isSpiffeId({} as unknown as string)).toBe(false);
  });
});

describe("spiffeIdFromPath", () => {
  const invalidPaths: [string, string, SpiffeIdErrorCode][] = [
    ["no leading slash", "a/b", "ERR_SPIFFEID_PATH_NO_LEADING_SLASH"],
    ["a lone slash", "/", "ERR_SPIFFEID_PATH_TRAILING_SLASH"],
    ["a trailing slash", "/a/", "ERR_SPIFFEID_PATH_TRAILING_SLASH"],
    ["an empty segment", "/a//b", "ERR_SPIFFEID_PATH_EMPTY_SEGMENT"],
    ["a dot segment", "/a/./b", "ERR_SPIFFEID_PATH_DOT_SEGMENT"],
    ["a dot-dot segment", "/..", "ERR_SPIFFEID_PATH_DOT_SEGMENT"],
    ["percent-encoding", "/%41", "ERR_SPIFFEID_PATH_PERCENT_ENCODED"],
    ["a bad char", "/a b", "ERR_SPIFFEID_PATH_BAD_CHAR"],
    ["a query", "/a?b", "ERR_SPIFFEID_QUERY"],
    ["a fragment", "/a#b", "ERR_SPIFFEID_FRAGMENT"],
    ["an ID over 2048 bytes", pathFilling("example.org", 1), "ERR_SPIFFEID_TOO_LONG"],
  ];

  it.each(invalidPaths)("rejects %s", (_, path, code) => {
    expectCode(() => spiffeIdFromPath(td("example.org"), path), code);
  });

  it.each([
    ["uppercase", "Example.org", "ERR_TRUST_DOMAIN_UPPERCASE"],
    ["a path", "evil.org/x", "ERR_TRUST_DOMAIN_BAD_CHAR"],
    ["userinfo", "a@b", "ERR_TRUST_DOMAIN_USERINFO"],
    ["empty", "", "ERR_TRUST_DOMAIN_EMPTY"],
  ] as const)("rejects a trust domain cast past validation with %s", (_, name, code) => {
    expectCode(() => spiffeIdFromPath(name as TrustDomain, "/a"), code);
  });

  it.each([
    ["", "spiffe://example.org"],
    ["/a", "spiffe://example.org/a"],
    ["/ns/prod/sa/Web_1", "spiffe://example.org/ns/prod/sa/Web_1"],
    [pathFilling("example.org"), `spiffe://example.org${pathFilling("example.org")}`],
  ])("builds from %j", (path, uri) => {
    expect(spiffeIdFromPath(td("example.org"), path)).toEqual({ trustDomain: "example.org", path, uri });
  });
});

describe("trustDomainSpiffeId", () => {
  it("names the trust domain itself", () => {
    expect(trustDomainSpiffeId(td("example.org"))).toEqual({
      trustDomain: "example.org",
      path: "",
      uri: "spiffe://example.org",
    });
  });

  it("rejects a trust domain cast past validation", () => {
    expectCode(() => trustDomainSpiffeId("a@b" as TrustDomain), "ERR_TRUST_DOMAIN_USERINFO");
  });
});

describe("isMemberOf", () => {
  it.each([
    ["spiffe://example.org/a", "example.org", true],
    ["spiffe://example.org", "example.org", true],
    ["spiffe://example.org/a", "example.com", false],
    ["spiffe://sub.example.org/a", "example.org", false],
    ["spiffe://example.org/a", "sub.example.org", false],
    ["spiffe://1.2.3.4/a", "1.2.3.40", false],
  ])("%s in %s is %s", (uri, name, expected) => {
    expect(isMemberOf(parseSpiffeId(uri), td(name))).toBe(expected);
  });
});

describe("properties", () => {
  const trustDomainName = fc.stringMatching(/^[a-z0-9._-]{1,100}$/);
  const segment = fc.stringMatching(/^[a-zA-Z0-9._-]{1,20}$/).filter((s) => s !== "." && s !== "..");
  const path = fc.array(segment, { maxLength: 12 }).map((segments) => segments.map((s) => `/${s}`).join(""));
  // One code point outside the trust domain charset, ASCII or not.
  const foreignChar = fc.string({ unit: "binary", minLength: 1, maxLength: 1 }).filter((c) => !/^[a-z0-9._-]$/.test(c));

  it("parses any ID built from valid parts back into those parts", () => {
    fc.assert(
      fc.property(trustDomainName, path, (name, p) => {
        const uri = `spiffe://${name}${p}`;
        const id = parseSpiffeId(uri);
        expect(id).toEqual({ trustDomain: name, path: p, uri });
        expect(spiffeIdFromPath(parseTrustDomain(name), p)).toEqual(id);
        expect(isMemberOf(id, parseTrustDomain(name))).toBe(true);
        expect(parseSpiffeId(trustDomainSpiffeId(id.trustDomain).uri).trustDomain).toBe(name);
      }),
    );
  });

  it("rejects a trust domain name holding any char outside [a-z0-9._-]", () => {
    fc.assert(
      fc.property(trustDomainName, foreignChar, trustDomainName, (before, bad, after) => {
        const name = before + bad + after;
        expect(codeOf(() => parseTrustDomain(name))).toMatch(/^ERR_TRUST_DOMAIN_/);
        expect(isTrustDomain(name)).toBe(false);
        // "/", "?" and "#" end the authority of a URI, so inside an ID they are not trust domain chars.
        if (!"/?#".includes(bad)) {
          expect(codeOf(() => parseSpiffeId(`spiffe://${name}/a`))).toMatch(/^ERR_TRUST_DOMAIN_/);
        }
      }),
    );
  });

  it("reports an uppercase ASCII letter as uppercase and anything non-ASCII as a bad char", () => {
    const upper = fc.stringMatching(/^[A-Z]$/);
    const nonAscii = fc.string({ unit: "binary", minLength: 1, maxLength: 1 }).filter((c) => c.charCodeAt(0) > 0x7f);
    fc.assert(
      fc.property(trustDomainName, upper, nonAscii, trustDomainName, (before, up, other, after) => {
        expect(codeOf(() => parseTrustDomain(before + up + after))).toBe("ERR_TRUST_DOMAIN_UPPERCASE");
        expect(codeOf(() => parseTrustDomain(before + other + after))).toBe("ERR_TRUST_DOMAIN_BAD_CHAR");
      }),
    );
  });

  it("rejects a path segment holding any other char as a bad path char", () => {
    const pathForeign = fc
      .string({ unit: "binary", minLength: 1, maxLength: 1 })
      .filter((c) => !/^[a-zA-Z0-9._\-/?#%]$/.test(c));
    fc.assert(
      fc.property(segment, pathForeign, segment, (before, bad, after) => {
        expectCode(
          () => parseSpiffeId(`spiffe://example.org/ok/${before}${bad}${after}`),
          "ERR_SPIFFEID_PATH_BAD_CHAR",
        );
      }),
    );
  });

  it("builds from a path exactly as it parses the joined URI", () => {
    const tricky = fc.string({ unit: fc.constantFrom("a", "Z", "1", "/", ".", "%", "4", "?", "#", "é", " ", "_") });
    fc.assert(
      fc.property(tricky, (tail) => {
        const p = `/${tail}`;
        const outcome = (fn: () => unknown) => {
          try {
            return fn();
          } catch (error) {
            return (error as InvalidSpiffeIdError).code;
          }
        };
        expect(outcome(() => spiffeIdFromPath(td("example.org"), p))).toEqual(
          outcome(() => parseSpiffeId(`spiffe://example.org${p}`)),
        );
      }),
    );
  });

  it("never throws from the predicates, and they agree with the parsers", () => {
    const anyText = fc.oneof(
      fc.string({ unit: "binary" }),
      fc.string({ unit: "binary" }).map((s) => `spiffe://${s}`),
    );
    fc.assert(
      fc.property(anyText, (s) => {
        expect(isTrustDomain(s)).toBe(!thrownOrUndefined(() => parseTrustDomain(s)));
        expect(isSpiffeId(s)).toBe(!thrownOrUndefined(() => parseSpiffeId(s)));
      }),
    );
  });
});

function thrownOrUndefined(fn: () => unknown): unknown {
  try {
    fn();
    return undefined;
  } catch (error) {
    expect(error).toBeInstanceOf(InvalidSpiffeIdError);
    return error;
  }
}
