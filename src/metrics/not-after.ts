/**
 * The expiry of a DER certificate in seconds since the epoch, parsed once per certificate: scrapes read
 * the same authorities over and over, and parsing X.509 is the costly part of a scrape.
 */
import { X509Certificate } from "node:crypto";

const cache = new WeakMap<Uint8Array, number>();

export function notAfterSeconds(der: Uint8Array): number {
  let seconds = cache.get(der);
  if (seconds === undefined) {
    seconds = Date.parse(new X509Certificate(der).validTo) / 1000;
    cache.set(der, seconds);
  }
  return seconds;
}
