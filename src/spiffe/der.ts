/**
 * DER framing checks done before a certificate reaches a parser.
 *
 * Node's X509Certificate quietly ignores bytes after the certificate; Go's x509 parser refuses them.
 * Two implementations disagreeing on what a bundle contains is how smuggling starts, so bundlegate
 * refuses trailing bytes outright.
 */
import { InvalidBundleError } from "./errors.js";

/** Length of the outermost DER TLV at the start of `der`, or undefined when the header is not DER. */
export function derElementLength(der: Uint8Array): number | undefined {
  if (der.length < 2) return undefined;
  const first = der[1]!;
  if (first < 0x80) return 2 + first;
  const lengthBytes = first & 0x7f;
  // 0x80 is BER's indefinite length; more than 4 length bytes is never a certificate.
  if (lengthBytes === 0 || lengthBytes > 4 || der.length < 2 + lengthBytes) return undefined;
  let length = 0;
  for (let i = 0; i < lengthBytes; i++) length = length * 256 + der[2 + i]!;
  // DER demands the shortest length form.
  if (length < 0x80 || (lengthBytes > 1 && der[2] === 0)) return undefined;
  return 2 + lengthBytes + length;
}

/**
 * Returns the certificate bytes when `der` holds exactly one DER SEQUENCE.
 * Trailing bytes reject the whole document; a malformed header returns undefined so the caller can
 * treat it as an unreadable certificate.
 */
export function checkSingleDerSequence(der: Uint8Array, where: string): Uint8Array | undefined {
  if (der[0] !== 0x30) return undefined;
  const length = derElementLength(der);
  if (length === undefined || length > der.length) return undefined;
  if (length < der.length) {
    throw new InvalidBundleError(
      "ERR_BUNDLE_DER_TRAILING_DATA",
      `${where}: ${der.length - length} byte(s) after the end of the DER certificate`,
      { details: { where, trailingBytes: der.length - length } },
    );
  }
  return der;
}
