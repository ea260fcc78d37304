/**
 * The expiry of a DER certificate in seconds since the epoch (authority expiry gauges, relationship health).
 *
 * Read straight from the DER (Certificate > TBSCertificate > validity > notAfter) rather than by building
 * an X509Certificate: that costs ~0.2 ms a certificate, which made the first scrape of 10k relationships
 * with two authorities each take seconds. The bytes were already parsed and checked by X509Certificate
 * when the bundle was read, so the walk below only has to find the field; anything it does not expect
 * (a BER length, a time form DER forbids, an odd year) goes to X509Certificate, as before.
 * Each result is kept per DER array (authorities are immutable and read by every scrape).
 */
import { X509Certificate } from "node:crypto";

const SEQUENCE = 0x30;
const INTEGER = 0x02;
const EXPLICIT_VERSION = 0xa0;
const UTC_TIME = 0x17;
const GENERALIZED_TIME = 0x18;

const cache = new WeakMap<Uint8Array, number>();

export function notAfterSeconds(der: Uint8Array): number {
  let seconds = cache.get(der);
  if (seconds === undefined) {
    seconds = readNotAfter(der) ?? Date.parse(new X509Certificate(der).validTo) / 1000;
    cache.set(der, seconds);
  }
  return seconds;
}

interface Element {
  readonly tag: number;
  /** Where the content starts. */
  readonly start: number;
  /** Just past the content. */
  readonly end: number;
}

/** The TLV at `offset`, or undefined when its header is not DER or runs past `limit`. */
function element(der: Uint8Array, offset: number, limit: number): Element | undefined {
  if (offset + 2 > limit) return undefined;
  const tag = der[offset]!;
  const first = der[offset + 1]!;
  let start = offset + 2;
  let length = first;
  if (first >= 0x80) {
    const bytes = first & 0x7f;
    if (bytes === 0 || bytes > 4 || start + bytes > limit) return undefined;
    length = 0;
    for (let i = 0; i < bytes; i++) length = length * 256 + der[start + i]!;
    start += bytes;
  }
  const end = start + length;
  return end > limit ? undefined : { tag, start, end };
}

/** notAfter in seconds, or undefined for anything but the DER shape RFC 5280 prescribes. */
export function readNotAfter(der: Uint8Array): number | undefined {
  const certificate = element(der, 0, der.length);
  if (certificate?.tag !== SEQUENCE) return undefined;
  const tbs = element(der, certificate.start, certificate.end);
  if (tbs?.tag !== SEQUENCE) return undefined;
  let field = element(der, tbs.start, tbs.end);
  if (field?.tag === EXPLICIT_VERSION) field = element(der, field.end, tbs.end);
  if (field?.tag !== INTEGER) return undefined;
  // signature AlgorithmIdentifier, then issuer Name, then validity: three SEQUENCEs.
  for (let skip = 0; skip < 2; skip++) {
    field = element(der, field.end, tbs.end);
    if (field?.tag !== SEQUENCE) return undefined;
  }
  const validity = element(der, field.end, tbs.end);
  if (validity?.tag !== SEQUENCE) return undefined;
  const notBefore = element(der, validity.start, validity.end);
  if (notBefore === undefined) return undefined;
  const notAfter = element(der, notBefore.end, validity.end);
  if (notAfter === undefined) return undefined;
  return parseTime(notAfter.tag, String.fromCharCode(...der.subarray(notAfter.start, notAfter.end)));
}

const UTC = /^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;
const GENERALIZED = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/;

/** RFC 5280 4.1.2.5: UTCTime YYMMDDHHMMSSZ (YY < 50 is 20YY), GeneralizedTime YYYYMMDDHHMMSSZ. */
function parseTime(tag: number, text: string): number | undefined {
  const match = tag === UTC_TIME ? UTC.exec(text) : tag === GENERALIZED_TIME ? GENERALIZED.exec(text) : null;
  if (!match) return undefined;
  const [, y, mo, d, h, mi, s] = match.map(Number) as [number, number, number, number, number, number, number];
  const year = tag === UTC_TIME ? (y < 50 ? 2000 + y : 1900 + y) : y;
  // Date.UTC reads years 0..99 as 19xx; such a certificate is left to X509Certificate.
  if (year < 1950 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 59) return undefined;
  const ms = Date.UTC(year, mo - 1, d, h, mi, s);
  // A day the month does not have (Feb 30) would roll over; leave it to X509Certificate too.
  return new Date(ms).getUTCDate() === d ? ms / 1000 : undefined;
}
