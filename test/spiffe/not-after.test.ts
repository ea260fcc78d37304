/**
 * The DER reader of a certificate's notAfter against X509Certificate, on real certificates of both time
 * forms and on hand-made validity fields for the edges (the UTCTime century, impossible dates).
 */
import { X509Certificate } from "node:crypto";
import { beforeAll, describe, expect, it } from "vitest";
import { notAfterSeconds, readNotAfter } from "../../src/spiffe/not-after.js";
import { createCa, type Issued } from "../support/pki.js";

const nodeSeconds = (der: Uint8Array) => Date.parse(new X509Certificate(der).validTo) / 1000;

/** A DER TLV with a short or long length. */
function tlv(tag: number, content: readonly number[]): number[] {
  const length = content.length;
  const header = length < 0x80 ? [length] : length < 0x100 ? [0x81, length] : [0x82, length >> 8, length & 0xff];
  return [tag, ...header, ...content];
}

const ascii = (text: string) => [...text].map((char) => char.charCodeAt(0));

/** Certificate > TBSCertificate with just enough fields in front of a validity of `notAfter`. */
function skeleton(notAfter: number[], options: { version?: boolean } = {}): Uint8Array {
  const tbs = [
    ...(options.version === false ? [] : tlv(0xa0, tlv(0x02, [2]))),
    ...tlv(0x02, [0x01, 0x23]),
    ...tlv(0x30, tlv(0x06, [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02])),
    ...tlv(0x30, tlv(0x31, tlv(0x30, [...tlv(0x06, [0x55, 0x04, 0x03]), ...tlv(0x0c, ascii("issuer"))]))),
    ...tlv(0x30, [...tlv(0x17, ascii("250101000000Z")), ...notAfter]),
  ];
  return Uint8Array.from(tlv(0x30, [...tlv(0x30, tbs), ...tlv(0x30, []), ...tlv(0x03, [0])]));
}

const utc = (text: string) => tlv(0x17, ascii(text));
const generalized = (text: string) => tlv(0x18, ascii(text));

let cas: Record<string, Issued>;

beforeAll(async () => {
  const [utcTime, generalizedTime, lastCentury, rsa] = await Promise.all([
    createCa({
      trustDomain: "utc.test",
      notBefore: new Date("2026-01-01"),
      notAfter: new Date("2027-06-30T12:34:56Z"),
    }),
    // RFC 5280: from 2050 on, GeneralizedTime.
    createCa({
      trustDomain: "gen.test",
      notBefore: new Date("2026-01-01"),
      notAfter: new Date("2061-02-03T04:05:06Z"),
    }),
    createCa({
      trustDomain: "old.test",
      notBefore: new Date("1995-01-01"),
      notAfter: new Date("1999-12-31T23:59:59Z"),
    }),
    createCa({ trustDomain: "rsa.test", keyAlg: "RSA-2048" }),
  ]);
  cas = { utcTime: utcTime!, generalizedTime: generalizedTime!, lastCentury: lastCentury!, rsa: rsa! };
});

describe("readNotAfter", () => {
  it("reads what X509Certificate reads, for UTCTime, GeneralizedTime, 19xx and RSA certificates", () => {
    for (const [name, ca] of Object.entries(cas)) {
      expect(readNotAfter(ca.der), name).toBe(nodeSeconds(ca.der));
    }
    expect(readNotAfter(cas.utcTime!.der)).toBe(Date.parse("2027-06-30T12:34:56Z") / 1000);
    expect(readNotAfter(cas.generalizedTime!.der)).toBe(Date.parse("2061-02-03T04:05:06Z") / 1000);
    expect(readNotAfter(cas.lastCentury!.der)).toBe(Date.parse("1999-12-31T23:59:59Z") / 1000);
  });

  it("reads UTCTime years 50..99 as 19xx and 00..49 as 20xx, with or without a version field", () => {
    expect(readNotAfter(skeleton(utc("491231235959Z")))).toBe(Date.parse("2049-12-31T23:59:59Z") / 1000);
    expect(readNotAfter(skeleton(utc("500101000000Z")))).toBe(Date.parse("1950-01-01T00:00:00Z") / 1000);
    expect(readNotAfter(skeleton(generalized("20500101000000Z")))).toBe(Date.parse("2050-01-01T00:00:00Z") / 1000);
    expect(readNotAfter(skeleton(utc("300615120000Z"), { version: false }))).toBe(
      Date.parse("2030-06-15T12:00:00Z") / 1000,
    );
  });

  it("leaves to X509Certificate whatever is not the DER shape it expects", () => {
    for (const [name, time] of Object.entries({
      fraction: generalized("20500101000000.5Z"),
      offset: utc("3006151200+0100"),
      "no seconds": utc("3006151200Z"),
      "February 30": generalized("20300230000000Z"),
      "month 13": utc("301301000000Z"),
      "year 0049": generalized("00490101000000Z"),
      "not a time": tlv(0x04, ascii("300615120000Z")),
    })) {
      expect(readNotAfter(skeleton(time)), name).toBeUndefined();
    }
    const der = cas.utcTime!.der;
    expect(readNotAfter(der.subarray(0, 40))).toBeUndefined();
    expect(readNotAfter(Uint8Array.from([0x31, ...der.subarray(1)]))).toBeUndefined();
    expect(readNotAfter(new Uint8Array())).toBeUndefined();
  });
});

describe("notAfterSeconds", () => {
  it("answers X509Certificate's value, and X509Certificate's error for bytes that are no certificate", () => {
    expect(notAfterSeconds(cas.rsa!.der)).toBe(nodeSeconds(cas.rsa!.der));
    expect(() => notAfterSeconds(Uint8Array.from([0x30, 0x03, 0x02, 0x01, 0x01]))).toThrow();
  });
});
