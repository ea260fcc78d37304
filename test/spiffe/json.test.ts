/**
 * The strict RFC 8259 reader: what it accepts (and the node tree it builds), what it refuses and with
 * which code, the nesting cap, duplicate member names, and agreement with JSON.parse on every value
 * JSON.stringify can write.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { type JsonNode, MAX_JSON_DEPTH, parseStrictJson } from "../../src/spiffe/json.js";
import { rejection } from "../support/bundle-docs.js";

const str = (value: string): JsonNode => ({ type: "string", value });
const num = (text: string): JsonNode => ({ type: "number", text });
const obj = (...members: Array<[string, JsonNode]>): JsonNode => ({ type: "object", members: new Map(members) });
const arr = (...items: JsonNode[]): JsonNode => ({ type: "array", items });
const TRUE: JsonNode = { type: "boolean", value: true };
const FALSE: JsonNode = { type: "boolean", value: false };
const NULL: JsonNode = { type: "null" };

/** The node tree as a plain JS value, the way JSON.parse would build it (numbers through Number(text)). */
function toJs(node: JsonNode): unknown {
  switch (node.type) {
    case "object": {
      const out: Record<string, unknown> = {};
      for (const [name, member] of node.members) {
        // defineProperty, so a "__proto__" member becomes an own property exactly as JSON.parse makes it.
        Object.defineProperty(out, name, { value: toJs(member), enumerable: true, writable: true, configurable: true });
      }
      return out;
    }
    case "array":
      return node.items.map(toJs);
    case "number":
      return Number(node.text);
    case "string":
    case "boolean":
      return node.value;
    case "null":
      return null;
  }
}

const nestedArrays = (levels: number, inner = "") => `${"[".repeat(levels)}${inner}${"]".repeat(levels)}`;
const nestedObjects = (levels: number) => `${'{"a":'.repeat(levels - 1)}{}${"}".repeat(levels - 1)}`;

describe("valid documents parse to the right node tree", () => {
  const cases: Array<[string, string, JsonNode]> = [
    ["empty object", "{}", obj()],
    ["empty array", "[]", arr()],
    ["top-level string", '"abc"', str("abc")],
    ["top-level true", "true", TRUE],
    ["top-level false", "false", FALSE],
    ["top-level null", "null", NULL],
    [
      "space, tab, LF and CR around and between tokens",
      ' \t\r\n{ \t\r\n"a"\t:\n[ 1 ,\r\n2 ]\r\n} \n',
      obj(["a", arr(num("1"), num("2"))]),
    ],
    ["no whitespace at all", '{"a":[true,false,null],"b":{}}', obj(["a", arr(TRUE, FALSE, NULL)], ["b", obj()])],
    ["members keep document order", '{"z":1,"a":2,"m":3}', obj(["z", num("1")], ["a", num("2")], ["m", num("3")])],
    ["escaped quote and backslash", '"\\"\\\\"', str('"\\')],
    ["escaped solidus", '"\\/"', str("/")],
    ["control escapes", '"\\b\\f\\n\\r\\t"', str("\b\f\n\r\t")],
    ["\\u escape, lowercase and uppercase hex", '"\\u0041\\u00e9\\u00E9"', str("Aéé")],
    ["\\u0000 escape", '"a\\u0000b"', str("a\u0000b")],
    ["surrogate pair via \\u escapes", '"\\ud83d\\ude00"', str("😀")],
    ["raw non-BMP character", '"😀"', str("😀")],
    ["raw non-ASCII and DEL are allowed", '"é\u007f"', str("é\u007f")],
    ["empty string", '""', str("")],
    ["empty member name", '{"":1}', obj(["", num("1")])],
    ["escape in a member name", '{"\\u0061b":1}', obj(["ab", num("1")])],
    ["nested arrays and objects", '[{"a":[[],{}]},[[null]]]', arr(obj(["a", arr(arr(), obj())]), arr(arr(NULL)))],
  ];
  it.each(cases)("%s", (_name, text, expected) => {
    expect(parseStrictJson(text)).toEqual(expected);
  });

  const numbers = [
    "0",
    "-0",
    "7",
    "-7",
    "10",
    "1234567890",
    "0.5",
    "-0.5",
    "3.14159",
    "1e5",
    "1E5",
    "1e+5",
    "1e-5",
    "1E-05",
    "-1.5e10",
    "0e0",
    "0.0",
    "2.50",
    "18446744073709551615",
    "18446744073709551616",
    "9007199254740993",
    "1e400",
    "-1e400",
    "1e-400",
    "0.10000000000000000000000001",
  ];
  it.each(numbers)("number %s keeps its exact source text", (text) => {
    expect(parseStrictJson(text)).toEqual(num(text));
    expect(parseStrictJson(`[${text}]`)).toEqual(arr(num(text)));
    expect(parseStrictJson(`{"n":${text}}`)).toEqual(obj(["n", num(text)]));
  });
});

describe("invalid documents are refused with ERR_BUNDLE_NOT_JSON", () => {
  const cases: Array<[string, string]> = [
    ["empty input", ""],
    ["whitespace only", " \t\r\n"],
    ["leading zero", "01"],
    ["leading zero in an array", "[01]"],
    ["negative leading zero", "-01"],
    ["plus sign", "+1"],
    ["leading dot", ".5"],
    ["negative leading dot", "-.5"],
    ["trailing dot", "1."],
    ["trailing dot in an array", "[1.]"],
    ["exponent without digits", "1e"],
    ["exponent sign without digits", "1e+"],
    ["lone minus", "-"],
    ["NaN", "NaN"],
    ["Infinity", "Infinity"],
    ["-Infinity", "-Infinity"],
    ["hex number", "0x10"],
    ["trailing comma in an object", '{"a":1,}'],
    ["trailing comma in an array", "[1,]"],
    ["leading comma in an array", "[,1]"],
    ["missing comma in an array", "[1 2]"],
    ["missing colon", '{"a" 1}'],
    ["missing member value", '{"a":}'],
    ["unquoted member name", "{a:1}"],
    ["single-quoted string", "'a'"],
    ["single-quoted member name", "{'a':1}"],
    ["raw tab in a string", '"a\tb"'],
    ["raw newline in a string", '"a\nb"'],
    ["raw NUL in a string", '"a\u0000b"'],
    ["raw 0x1f in a string", '"a\u001fb"'],
    ["bad escape \\x", '"\\x41"'],
    ["bad escape \\U", '"\\U0041"'],
    ["bad escape \\'", `"\\'"`],
    ["short \\u escape", '"\\u12"'],
    ["\\u escape with a non-hex digit", '"\\u12g4"'],
    ["backslash at the end", '"\\'],
    ["unterminated string", '"abc'],
    ["unterminated array", "[1"],
    ["unterminated object", '{"a":1'],
    ["unterminated member name", '{"a'],
    ["lone open brace", "{"],
    ["lone open bracket", "["],
    ["lone close brace", "}"],
    ["line comment", '// c\n{"a":1}'],
    ["block comment inside an object", '{/* c */"a":1}'],
    ["comment after the value", "{} // c"],
    ["two values", "{} {}"],
    ["data after the value", "[]x"],
    ["truncated literal", "tru"],
    ["capitalised literal", "True"],
    ["undefined", "undefined"],
    ["no-break space as whitespace", "\u00a0{}"],
    ["form feed as whitespace", "\f{}"],
    ["vertical tab as whitespace", "\v{}"],
    ["byte-order mark", "\ufeff{}"],
    ["line separator as whitespace", "[1,\u20282]"],
  ];
  it.each(cases)("%s", (_name, text) => {
    expect(rejection(() => parseStrictJson(text)).code).toBe("ERR_BUNDLE_NOT_JSON");
  });
});

describe("nesting depth", () => {
  it("MAX_JSON_DEPTH is 32, as the README promises", () => {
    expect(MAX_JSON_DEPTH).toBe(32);
  });

  const accepted: Array<[string, string]> = [
    ["MAX_JSON_DEPTH empty arrays", nestedArrays(MAX_JSON_DEPTH)],
    ["MAX_JSON_DEPTH arrays around a number", nestedArrays(MAX_JSON_DEPTH, "1")],
    ["MAX_JSON_DEPTH arrays around a string", nestedArrays(MAX_JSON_DEPTH, '"x"')],
    ["MAX_JSON_DEPTH objects", nestedObjects(MAX_JSON_DEPTH)],
  ];
  it.each(accepted)("%s are accepted", (_name, text) => {
    expect(() => parseStrictJson(text)).not.toThrow();
  });

  const refused: Array<[string, string, string]> = [
    ["MAX_JSON_DEPTH + 1 empty arrays", nestedArrays(MAX_JSON_DEPTH + 1), `$${"[0]".repeat(MAX_JSON_DEPTH)}`],
    [
      "MAX_JSON_DEPTH + 1 arrays around a number",
      nestedArrays(MAX_JSON_DEPTH + 1, "1"),
      `$${"[0]".repeat(MAX_JSON_DEPTH)}`,
    ],
    ["MAX_JSON_DEPTH + 1 objects", nestedObjects(MAX_JSON_DEPTH + 1), `$${".a".repeat(MAX_JSON_DEPTH)}`],
    ["far deeper nesting", nestedArrays(10_000), `$${"[0]".repeat(MAX_JSON_DEPTH)}`],
  ];
  it.each(refused)("%s are refused with ERR_BUNDLE_TOO_DEEP", (_name, text, path) => {
    const error = rejection(() => parseStrictJson(text));
    expect(error.code).toBe("ERR_BUNDLE_TOO_DEEP");
    expect(error.details).toEqual({ path, limit: MAX_JSON_DEPTH });
  });

  it("counts arrays and objects alike", () => {
    const mixed = (levels: number) =>
      `${Array.from({ length: levels }, (_, i) => (i % 2 === 0 ? "[" : '{"a":')).join("")}0${Array.from(
        { length: levels },
        (_, i) => (i % 2 === 0 ? "]" : "}"),
      )
        .reverse()
        .join("")}`;
    expect(() => parseStrictJson(mixed(MAX_JSON_DEPTH))).not.toThrow();
    expect(rejection(() => parseStrictJson(mixed(MAX_JSON_DEPTH + 1))).code).toBe("ERR_BUNDLE_TOO_DEEP");
  });
});

describe("duplicate member names", () => {
  const cases: Array<[string, string, string]> = [
    ["top level", '{"a":1,"a":2}', "$.a"],
    ["same value twice", '{"a":1,"a":1}', "$.a"],
    ["not adjacent", '{"a":1,"b":2,"a":3}', "$.a"],
    ["nested in an object", '{"x":{"y":1,"y":2}}', "$.x.y"],
    ["inside an array", '{"keys":[{},{"use":"a","use":"b"}]}', "$.keys[1].use"],
    ["spelled with a \\u escape", '{"keys":1,"k\\u0065ys":2}', "$.keys"],
    ["both spelled with escapes", '{"\\u0061":1,"\\u0041\\u0061":0,"\\u0061":2}', "$.a"],
    ["spelled with a simple escape", '{"a/b":1,"a\\/b":2}', "$.a/b"],
    ["surrogate pair against the raw character", '{"😀":1,"\\ud83d\\ude00":2}', "$.😀"],
    ["empty names", '{"":1,"":2}', "$."],
  ];
  it.each(cases)("%s → ERR_BUNDLE_DUPLICATE_MEMBER", (_name, text, path) => {
    const error = rejection(() => parseStrictJson(text));
    expect(error.code).toBe("ERR_BUNDLE_DUPLICATE_MEMBER");
    expect(error.details).toEqual({ path });
  });

  it("names differing only in case are different names", () => {
    expect(parseStrictJson('{"a":1,"A":2}')).toEqual(obj(["a", num("1")], ["A", num("2")]));
  });

  it("the same name in sibling objects is no duplicate", () => {
    expect(parseStrictJson('[{"a":1},{"a":2}]')).toEqual(arr(obj(["a", num("1")]), obj(["a", num("2")])));
  });
});

describe("__proto__ is just a member name", () => {
  it("is kept as a member and pollutes nothing", () => {
    const node = parseStrictJson('{"__proto__":{"polluted":true},"constructor":1}');
    expect(node).toEqual(obj(["__proto__", obj(["polluted", TRUE])], ["constructor", num("1")]));
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it("a repeated __proto__ is a duplicate", () => {
    expect(rejection(() => parseStrictJson('{"__proto__":1,"__proto__":2}')).code).toBe("ERR_BUNDLE_DUPLICATE_MEMBER");
  });
});

describe("agreement with JSON.parse", () => {
  it("for every value JSON.stringify writes, the tree converted back equals JSON.parse's result", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 8 }), (value) => {
        const text = JSON.stringify(value);
        expect(toJs(parseStrictJson(text))).toEqual(JSON.parse(text));
      }),
      { numRuns: 500 },
    );
  });

  it("also with indentation", () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), fc.integer({ min: 1, max: 4 }), (value, indent) => {
        const text = JSON.stringify(value, null, indent);
        expect(toJs(parseStrictJson(text))).toEqual(JSON.parse(text));
      }),
      { numRuns: 200 },
    );
  });

  it("for any string, including lone surrogates and control characters", () => {
    fc.assert(
      fc.property(fc.string({ unit: "binary", maxLength: 40 }), (value) => {
        expect(parseStrictJson(JSON.stringify(value))).toEqual(str(value));
      }),
      { numRuns: 500 },
    );
  });

  it("keeps integers past 2^53 exactly where JSON.parse rounds", () => {
    const node = parseStrictJson('{"spiffe_sequence":18446744073709551615}');
    expect(node).toEqual(obj(["spiffe_sequence", num("18446744073709551615")]));
    expect(JSON.parse('{"s":18446744073709551615}').s.toString()).not.toBe("18446744073709551615");
  });
});
