/**
 * The JSON writer: bigints written exactly, member order kept, and byte-for-byte agreement with
 * JSON.stringify (compact and indented) on everything JSON.stringify can write.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseStrictJson } from "../../src/spiffe/json.js";
import { type JsonWritable, writeJson } from "../../src/spiffe/json-writer.js";

describe("bigints", () => {
  const cases: Array<[bigint, string]> = [
    [0n, "0"],
    [1n, "1"],
    [-1n, "-1"],
    [2n ** 53n + 1n, "9007199254740993"],
    [2n ** 64n - 1n, "18446744073709551615"],
    [2n ** 64n, "18446744073709551616"],
    [-(2n ** 63n), "-9223372036854775808"],
  ];
  it.each(cases)("%s is written exactly", (value, text) => {
    expect(writeJson(value)).toBe(text);
    expect(writeJson({ spiffe_sequence: value })).toBe(`{"spiffe_sequence":${text}}`);
    expect(writeJson([value], 2)).toBe(`[\n  ${text}\n]`);
  });

  it("any bigint reads back through the strict reader with the same digits", () => {
    fc.assert(
      fc.property(fc.bigInt(), (value) => {
        expect(parseStrictJson(writeJson({ n: value }))).toEqual({
          type: "object",
          members: new Map([["n", { type: "number", text: value.toString() }]]),
        });
      }),
    );
  });
});

describe("order", () => {
  it("keeps member insertion order, not sorted", () => {
    expect(writeJson({ keys: [], spiffe_sequence: 1n, spiffe_refresh_hint: 300, a: "x" })).toBe(
      '{"keys":[],"spiffe_sequence":1,"spiffe_refresh_hint":300,"a":"x"}',
    );
    expect(writeJson({ z: 1, a: 2, m: 3 })).toBe('{"z":1,"a":2,"m":3}');
  });

  it("keeps array order", () => {
    expect(writeJson(["b", "a", 3, 1n, null, true, false])).toBe('["b","a",3,1,null,true,false]');
  });
});

describe("indentation", () => {
  const value: JsonWritable = { keys: [{ use: "x509-svid", x5c: ["AAAA"] }, {}], empty: [], n: null, s: 2n };
  const cases: Array<[number, string]> = [
    [0, '{"keys":[{"use":"x509-svid","x5c":["AAAA"]},{}],"empty":[],"n":null,"s":2}'],
    [
      2,
      [
        "{",
        '  "keys": [',
        "    {",
        '      "use": "x509-svid",',
        '      "x5c": [',
        '        "AAAA"',
        "      ]",
        "    },",
        "    {}",
        "  ],",
        '  "empty": [],',
        '  "n": null,',
        '  "s": 2',
        "}",
      ].join("\n"),
    ],
  ];
  it.each(cases)("indent %i", (indent, expected) => {
    expect(writeJson(value, indent)).toBe(expected);
  });

  it("default indent is compact", () => {
    expect(writeJson({ a: [1, { b: 2 }] })).toBe('{"a":[1,{"b":2}]}');
  });
});

describe("agreement with JSON.stringify", () => {
  it("equals JSON.stringify(v) and JSON.stringify(v, null, n) for every bigint-free JSON value", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.integer({ min: 0, max: 10 }), (value, indent) => {
        const writable = value as JsonWritable;
        expect(writeJson(writable)).toBe(JSON.stringify(value));
        expect(writeJson(writable, indent)).toBe(JSON.stringify(value, null, indent));
      }),
      { numRuns: 300 },
    );
  });

  const strings: Array<[string, string]> = [
    ["quote and backslash", '"\\'],
    ["control characters", "\u0000\u0001\b\t\n\f\r\u001f"],
    ["DEL and non-ASCII", "\u007fé€"],
    ["a surrogate pair", "😀"],
    ["a lone high surrogate", "\ud83d"],
    ["a lone low surrogate", "\ude00x"],
    ["line and paragraph separators", "\u2028\u2029"],
    ["solidus (not escaped)", "a/b"],
    ["HTML-ish characters (not escaped)", "<script>&'"],
  ];
  it.each(strings)("escapes %s like JSON.stringify, as a value and as a member name", (_name, value) => {
    expect(writeJson(value)).toBe(JSON.stringify(value));
    expect(writeJson({ [value]: value })).toBe(JSON.stringify({ [value]: value }));
  });

  it("escapes any string like JSON.stringify", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 40 }), (value) => {
        expect(writeJson([value], 1)).toBe(JSON.stringify([value], null, 1));
      }),
    );
  });

  it("writes numbers like JSON.stringify", () => {
    for (const n of [0, -0, 1.5, -2.25e-7, 1e21, 1.2345678901234568e20, Number.MAX_SAFE_INTEGER, 5e-324]) {
      expect(writeJson(n)).toBe(JSON.stringify(n));
    }
  });
});
