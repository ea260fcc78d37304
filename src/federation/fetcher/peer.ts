/**
 * The server side of a TLS connection: what certificates it presented, whether they pass the profile's
 * checks, and how Node's TLS failures translate into fetch error codes.
 *
 * https_spiffe reuses the X509-SVID checker the bundle endpoint applies to its own serving certificate
 * (`checkSvidChain`): "an X509-SVID for the endpoint ID that a holder of this bundle accepts" is the
 * same question on both sides, so both sides must answer it with the same code. Its codes are mapped to the
 * fetcher's four SVID codes here.
 */
import { createHash, X509Certificate } from "node:crypto";
import type { DetailedPeerCertificate, TLSSocket } from "node:tls";
import { isBundlegateError } from "../../errors.js";
import { checkSvidChain, MAX_CHAIN_CERTIFICATES } from "../../sources/tls-credentials.js";
import type { TrustBundle } from "../../spiffe/bundle.js";
import { FetchError, type FetchErrorCode } from "./errors.js";

export interface PeerInfo {
  /** The address the TCP connection went to: the server's, or the proxy's when one was used. */
  address: string;
  port: number;
  /** The leaf certificate's subject DN, RDNs joined with ", ". */
  subject: string;
  uriSans: string[];
  dnsSans: string[];
  /** ISO 8601. */
  notAfter: string;
  /** Lowercase hex SHA-256 of the leaf's DER. */
  fingerprint: string;
  /** Every certificate the server presented that chains from the leaf, leaf first. */
  chain: { subject: string; notAfter: string }[];
  /** The proxy the connection was tunnelled through, credentials removed. */
  proxy?: string;
}

/**
 * The presented chain, leaf first, as DER. Read exactly once per socket: on Node 20.20 a second
 * `getPeerX509Certificate()` returns undefined and breaks later `getPeerCertificate()` calls too, so
 * nothing else may read the peer certificate of a fetcher socket.
 */
export function readPeerChain(socket: TLSSocket): Buffer[] {
  // An empty object, not undefined, when the server sent no certificate.
  let current: Partial<DetailedPeerCertificate> | undefined = socket.getPeerCertificate(true);
  const chain: Buffer[] = [];
  const seen = new Set<string>();
  // Node links each certificate to its issuer and a self-signed one to itself; the set stops either way.
  while (current?.raw !== undefined && chain.length < MAX_CHAIN_CERTIFICATES) {
    const fingerprint = createHash("sha256").update(current.raw).digest("hex");
    if (seen.has(fingerprint)) break;
    seen.add(fingerprint);
    chain.push(current.raw);
    current = current.issuerCertificate;
  }
  return chain;
}

/**
 * What the peer presented, for reports. Computed on first read: parsing every certificate of every
 * fetch for a description most fetches never read was an eighth of the engine's CPU at 10,000 partners.
 * The fields are own, enumerable getters, so spreading or serialising the object still sees them.
 */
export function describePeer(chain: readonly Buffer[], address: string, port: number): PeerInfo {
  let described: PeerInfo | undefined;
  const full = (): PeerInfo => {
    described ??= describePeerNow(chain, address, port);
    return described;
  };
  const peer = { address, port } as PeerInfo;
  for (const key of ["subject", "uriSans", "dnsSans", "notAfter", "fingerprint", "chain"] as const) {
    Object.defineProperty(peer, key, { enumerable: true, get: () => full()[key] });
  }
  return peer;
}

function describePeerNow(chain: readonly Buffer[], address: string, port: number): PeerInfo {
  const certificates = chain.map((der) => new X509Certificate(der));
  const leaf = certificates[0];
  if (!leaf) {
    return { address, port, subject: "", uriSans: [], dnsSans: [], notAfter: "", fingerprint: "", chain: [] };
  }
  const sans = parseSubjectAltName(leaf.subjectAltName);
  return {
    address,
    port,
    subject: dn(leaf.subject),
    uriSans: sans.filter((san) => san.type === "URI").map((san) => san.value),
    dnsSans: sans.filter((san) => san.type === "DNS").map((san) => san.value),
    notAfter: isoDate(leaf.validTo),
    fingerprint: createHash("sha256").update(chain[0]!).digest("hex"),
    chain: certificates.map((certificate) => ({
      subject: dn(certificate.subject),
      notAfter: isoDate(certificate.validTo),
    })),
  };
}

function dn(subject: string): string {
  return subject.replace(/\n/g, ", ");
}

function isoDate(text: string): string {
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? text : date.toISOString();
}

/**
 * Node's rendering of the SAN extension: "DNS:a, URI:spiffe://b". Values that could be mistaken for
 * separators are JSON-quoted by Node (since the CVE-2021-44532 fix), so quoted values are decoded.
 * For display only: the SVID decision reads URI SANs from the DER (tls-credentials.ts).
 */
export function parseSubjectAltName(text: string | undefined): { type: string; value: string }[] {
  if (!text) return [];
  const names: { type: string; value: string }[] = [];
  const pattern = /([A-Za-z ]+):("(?:[^"\\]|\\.)*"|[^,]*)(?:, |$)/g;
  for (const match of text.matchAll(pattern)) {
    const type = match[1] ?? "";
    const raw = match[2] ?? "";
    let value = raw;
    if (raw.startsWith('"')) {
      try {
        value = JSON.parse(raw) as string;
      } catch {
        value = raw;
      }
    }
    names.push({ type, value });
  }
  return names;
}

export interface SpiffeExpectation {
  readonly endpointSpiffeId: string;
  readonly authorities: TrustBundle;
  readonly now: Date;
}

const SVID_CODES: Readonly<Record<string, FetchErrorCode>> = {
  ERR_TLS_CERT_IS_CA: "ERR_FETCH_SVID_INVALID",
  ERR_SVID_KEY_USAGE: "ERR_FETCH_SVID_INVALID",
  ERR_SVID_NO_URI_SAN: "ERR_FETCH_SVID_INVALID",
  ERR_SVID_MULTIPLE_URI_SANS: "ERR_FETCH_SVID_INVALID",
  ERR_SVID_INVALID_ID: "ERR_FETCH_SVID_INVALID",
  ERR_TLS_PEM_INVALID: "ERR_FETCH_SVID_INVALID",
  ERR_SVID_WRONG_ID: "ERR_FETCH_SVID_WRONG_ID",
  ERR_TLS_CERT_EXPIRED: "ERR_FETCH_SVID_EXPIRED",
  ERR_TLS_CERT_NOT_YET_VALID: "ERR_FETCH_SVID_EXPIRED",
  ERR_SVID_NOT_CHAINED: "ERR_FETCH_SVID_UNTRUSTED",
};

/** Throws the matching ERR_FETCH_SVID_* unless `chain` is an X509-SVID for the endpoint ID under `authorities`. */
export function verifySvidChain(
  chain: readonly Buffer[],
  expected: SpiffeExpectation,
  context: Readonly<Record<string, unknown>>,
): void {
  const leaf = chain[0];
  if (!leaf) {
    throw new FetchError("ERR_FETCH_SVID_INVALID", "the server presented no certificate", { details: { ...context } });
  }
  try {
    checkSvidChain(chain, {
      now: expected.now,
      endpointSpiffeId: expected.endpointSpiffeId,
      bundle: expected.authorities,
    });
  } catch (error) {
    const code = (isBundlegateError(error) && SVID_CODES[error.code]) || "ERR_FETCH_SVID_INVALID";
    const reason = error instanceof Error ? error.message : String(error);
    throw new FetchError(code, `endpoint X509-SVID refused: ${reason}`, {
      cause: error,
      details: {
        ...context,
        expectedSpiffeId: expected.endpointSpiffeId,
        ...(isBundlegateError(error) ? { check: error.code, ...error.details } : {}),
      },
    });
  }
}

const UNTRUSTED_CHAIN = new Set([
  "UNABLE_TO_GET_ISSUER_CERT",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_DECRYPT_CERT_SIGNATURE",
  "UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY",
  "CERT_SIGNATURE_FAILURE",
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "CERT_CHAIN_TOO_LONG",
  "CERT_REVOKED",
  "INVALID_CA",
  "PATH_LENGTH_EXCEEDED",
  "INVALID_PURPOSE",
  "CERT_UNTRUSTED",
  "CERT_REJECTED",
]);

const NOT_VALID_NOW = new Set([
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERROR_IN_CERT_NOT_BEFORE_FIELD",
  "ERROR_IN_CERT_NOT_AFTER_FIELD",
]);

/** A failure during the TLS handshake, as one of the https_web codes (or ERR_FETCH_TLS). */
export function tlsFailure(error: unknown, context: Readonly<Record<string, unknown>>): FetchError {
  if (error instanceof FetchError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const reason = error instanceof Error ? error.message : String(error);
  let fetchCode: FetchErrorCode = "ERR_FETCH_TLS";
  if (code === "ERR_TLS_CERT_ALTNAME_INVALID") fetchCode = "ERR_FETCH_TLS_HOSTNAME";
  else if (code !== undefined && NOT_VALID_NOW.has(code)) fetchCode = "ERR_FETCH_TLS_EXPIRED";
  else if (code !== undefined && UNTRUSTED_CHAIN.has(code)) fetchCode = "ERR_FETCH_TLS_UNTRUSTED";
  return new FetchError(fetchCode, `TLS handshake failed: ${reason}`, {
    cause: error,
    details: { ...context, ...(code === undefined ? {} : { tlsError: code }) },
  });
}
