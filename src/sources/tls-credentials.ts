/**
 * The gateway's serving certificates: read from files, checked before TLS ever sees them, reloaded when
 * the files change.
 *
 * Why check at all, when TLS clients check anyway: a broken pair only shows up as handshake failures on
 * the partner's side, hours later, in their logs. Refusing it here turns that into an error with a code
 * at start, or into "keep serving the last good pair" on reload.
 *
 * What is offered to TLS is exactly what was checked: the chain is re-encoded from the parsed DER (text
 * between blocks, other PEM blocks and trailing bytes are gone) and the key is re-exported as PKCS#8.
 *
 * The X509-SVID checks follow X509-SVID.md sections 2, 4 and 5: exactly one URI SAN, a SPIFFE ID with a
 * non-root path, equal to the configured endpoint ID; cA false and neither keyCertSign nor cRLSign on the
 * leaf; then RFC 5280 path building through the PEM's intermediates to an X.509 authority of the bundle,
 * with validity, the CA flag, key usage and pathLenConstraint checked on every signing certificate. Like
 * Go's verifier (which partners running SPIRE use), an expired bundle authority does not anchor a path.
 * Not checked: name constraints (X509-SVID.md 4.2 leaves them optional) and unknown critical extensions.
 *
 * Error codes, all `TlsCredentialsError` with status 500:
 * - ERR_TLS_FILE_UNREADABLE     a file cannot be read (missing, permissions, not a regular file)
 * - ERR_TLS_FILE_TOO_LARGE      a file is over 1 MiB: not a certificate or key file
 * - ERR_TLS_PEM_INVALID         no CERTIFICATE block, a malformed block, DER with trailing bytes, an unreadable
 *                               certificate, more than 10 certificates
 * - ERR_TLS_KEY_INVALID         the key file holds no readable unencrypted private key
 * - ERR_TLS_KEY_MISMATCH        the key is not the leaf's
 * - ERR_TLS_CERT_NOT_YET_VALID  the leaf's notBefore is after now
 * - ERR_TLS_CERT_EXPIRED        the leaf's notAfter is before now
 * - ERR_TLS_CERT_IS_CA          the leaf has basicConstraints cA true
 * - ERR_TLS_CERT_NOT_SERVER_AUTH  (web) the leaf has an extended key usage without serverAuth
 * - ERR_SVID_NO_URI_SAN         the leaf has no URI SAN
 * - ERR_SVID_MULTIPLE_URI_SANS  the leaf has more than one URI SAN
 * - ERR_SVID_INVALID_ID         the URI SAN is not a SPIFFE ID with a non-root path
 * - ERR_SVID_WRONG_ID           the SPIFFE ID is not the configured endpoint ID
 * - ERR_SVID_KEY_USAGE          the leaf sets keyCertSign or cRLSign
 * - ERR_SVID_NOT_CHAINED        no valid path to an X.509 authority of the bundle (`details.problems` says why)
 * - ERR_TLS_CHECK_FAILED        a file source's `check` threw something that is not a BundlegateError
 */
// Must come before @peculiar/x509: tsyringe (its dependency) needs Reflect metadata at import time.
import "reflect-metadata";
import { createHash, createPrivateKey, type KeyObject, X509Certificate } from "node:crypto";
import { open } from "node:fs/promises";
import * as x509 from "@peculiar/x509";
import type { Clock } from "../clock.js";
import { BundlegateError, type BundlegateErrorOptions, isBundlegateError } from "../errors.js";
import type { Logger } from "../logging.js";
import type { TrustBundle, X509Authority } from "../spiffe/bundle.js";
import { checkSingleDerSequence, derElementLength } from "../spiffe/der.js";
import { parseSpiffeId } from "../spiffe/id.js";
import { derToPem, PEM_BASE64_BODY, splitPemBlocks } from "../spiffe/pem.js";
import { watchFiles } from "./file-watch.js";
import type { TlsCredentials, Watched } from "./types.js";

export type TlsCredentialsErrorCode =
  | "ERR_TLS_FILE_UNREADABLE"
  | "ERR_TLS_FILE_TOO_LARGE"
  | "ERR_TLS_PEM_INVALID"
  | "ERR_TLS_KEY_INVALID"
  | "ERR_TLS_KEY_MISMATCH"
  | "ERR_TLS_CERT_NOT_YET_VALID"
  | "ERR_TLS_CERT_EXPIRED"
  | "ERR_TLS_CERT_IS_CA"
  | "ERR_TLS_CERT_NOT_SERVER_AUTH"
  | "ERR_SVID_NO_URI_SAN"
  | "ERR_SVID_MULTIPLE_URI_SANS"
  | "ERR_SVID_INVALID_ID"
  | "ERR_SVID_WRONG_ID"
  | "ERR_SVID_KEY_USAGE"
  | "ERR_SVID_NOT_CHAINED"
  | "ERR_TLS_CHECK_FAILED";

export class TlsCredentialsError extends BundlegateError<TlsCredentialsErrorCode> {
  constructor(code: TlsCredentialsErrorCode, message: string, options: BundlegateErrorOptions = {}) {
    super(code, message, { status: 500, ...options });
  }
}

export const MAX_CREDENTIAL_FILE_BYTES = 1024 * 1024;
export const MAX_CHAIN_CERTIFICATES = 10;

const OID_SUBJECT_ALT_NAME = "2.5.29.17";
const EKU_SERVER_AUTH = "1.3.6.1.5.5.7.3.1";
const EKU_ANY = "2.5.29.37.0";
const TAG_SEQUENCE = 0x30;
const TAG_URI = 0x86; // [6] IMPLICIT IA5String in GeneralName

/** One certificate as both parsers see it: node:crypto for signatures and key matching, @peculiar/x509 for extensions. */
interface ParsedCertificate {
  readonly node: X509Certificate;
  readonly der: Buffer;
  readonly subject: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  /** basicConstraints cA, false when the extension is absent. */
  readonly basicCa: boolean;
  readonly pathLength: number | undefined;
  /** x509.KeyUsageFlags, undefined when the extension is absent. */
  readonly keyUsage: number | undefined;
  readonly uriSans: readonly string[];
}

function parseCertificate(der: Buffer, where: string): ParsedCertificate {
  try {
    const node = new X509Certificate(der);
    const peculiar = new x509.X509Certificate(der);
    const basic = peculiar.getExtension(x509.BasicConstraintsExtension);
    const keyUsage = peculiar.getExtension(x509.KeyUsagesExtension);
    return {
      node,
      der,
      subject: node.subject.replace(/\n/g, ", "),
      notBefore: peculiar.notBefore,
      notAfter: peculiar.notAfter,
      basicCa: basic?.ca ?? false,
      pathLength: basic?.pathLength,
      keyUsage: keyUsage?.usages,
      uriSans: uriSans(peculiar.getExtensions(OID_SUBJECT_ALT_NAME)),
    };
  } catch (error) {
    if (error instanceof TlsCredentialsError) throw error;
    throw new TlsCredentialsError("ERR_TLS_PEM_INVALID", `${where} is not a readable certificate`, {
      cause: error,
      details: { where },
    });
  }
}

/**
 * URI names straight from the SAN's DER: a library that drops name types it does not model (otherName,
 * x400Address) must not be what decides how many URI SANs an SVID has.
 */
function uriSans(extensions: readonly x509.Extension[]): string[] {
  const uris: string[] = [];
  for (const extension of extensions) {
    const bytes = new Uint8Array(extension.value);
    const names = readTlv(bytes, 0);
    if (!names || names.tag !== TAG_SEQUENCE || names.end !== bytes.length) {
      throw new TlsCredentialsError("ERR_TLS_PEM_INVALID", "subjectAltName extension is not a DER SEQUENCE");
    }
    for (let offset = names.contentStart; offset < names.end; ) {
      const name = readTlv(bytes, offset);
      if (!name || name.end > names.end) {
        throw new TlsCredentialsError("ERR_TLS_PEM_INVALID", "subjectAltName extension holds a malformed name");
      }
      if (name.tag === TAG_URI) uris.push(Buffer.from(bytes.subarray(name.contentStart, name.end)).toString("latin1"));
      offset = name.end;
    }
  }
  return uris;
}

function readTlv(bytes: Uint8Array, offset: number): { tag: number; contentStart: number; end: number } | undefined {
  const tag = bytes[offset];
  // High tag numbers (low five bits all set) never occur in a GeneralName.
  if (tag === undefined || (tag & 0x1f) === 0x1f) return undefined;
  const element = bytes.subarray(offset);
  const length = derElementLength(element);
  if (length === undefined || length > element.length) return undefined;
  const first = element[1]!;
  const header = first < 0x80 ? 2 : 2 + (first & 0x7f);
  return { tag, contentStart: offset + header, end: offset + length };
}

/**
 * The certificates of a PEM chain, in file order. Other blocks (a private key kept in the same file, a CRL)
 * are skipped, as OpenSSL does: only certificates travel on to TLS.
 */
function parseChainPem(certPem: string): ParsedCertificate[] {
  const chain: ParsedCertificate[] = [];
  for (const { index, label, body } of splitPemBlocks(certPem, (message, details) => pemInvalid(message, details))) {
    if (label !== "CERTIFICATE") continue;
    if (!PEM_BASE64_BODY.test(body)) throw pemInvalid(`PEM block ${index} is not base64`, { index });
    const where = `PEM block ${index}`;
    let der: Uint8Array | undefined;
    try {
      der = checkSingleDerSequence(Buffer.from(body.replace(/\s+/g, ""), "base64"), where);
    } catch (error) {
      throw pemInvalid(`${where} has bytes after the end of the DER certificate`, { index }, error);
    }
    if (!der) throw pemInvalid(`${where} is not a DER certificate`, { index });
    chain.push(parseCertificate(Buffer.from(der), where));
  }
  if (chain.length === 0) throw pemInvalid("no CERTIFICATE block found");
  if (chain.length > MAX_CHAIN_CERTIFICATES) {
    throw pemInvalid(`${chain.length} certificates, over the limit of ${MAX_CHAIN_CERTIFICATES}`, {
      count: chain.length,
      limit: MAX_CHAIN_CERTIFICATES,
    });
  }
  return chain;
}

function pemInvalid(message: string, details: Record<string, unknown> = {}, cause?: unknown): TlsCredentialsError {
  return new TlsCredentialsError("ERR_TLS_PEM_INVALID", `certificate PEM: ${message}`, {
    details,
    ...(cause === undefined ? {} : { cause }),
  });
}

/** What loadTlsCredentials parsed, so the checks and the description do not parse the PEM again. */
const parsedChains = new WeakMap<TlsCredentials, readonly ParsedCertificate[]>();

/** Parses and pairs a certificate chain (leaf first) and its private key; no time-dependent checks. */
export function loadTlsCredentials(certPem: string, keyPem: string): TlsCredentials {
  const chain = parseChainPem(certPem);
  const leaf = chain[0]!;
  let key: KeyObject;
  try {
    key = createPrivateKey(keyPem);
  } catch (error) {
    // The cause is Node's parser error, which names the problem but never echoes key bytes.
    throw new TlsCredentialsError("ERR_TLS_KEY_INVALID", "the key file holds no readable unencrypted private key", {
      cause: error,
    });
  }
  let matches = false;
  try {
    matches = leaf.node.checkPrivateKey(key);
  } catch {
    matches = false;
  }
  if (!matches) {
    throw new TlsCredentialsError("ERR_TLS_KEY_MISMATCH", `the private key does not belong to ${leaf.subject}`, {
      details: { subject: leaf.subject },
    });
  }
  const creds: TlsCredentials = Object.freeze({
    certPem: chain.map((certificate) => derToPem(certificate.der)).join(""),
    chain: Object.freeze(chain.map((certificate) => certificate.der)),
    keyPem: key.export({ type: "pkcs8", format: "pem" }).toString(),
    leaf: leaf.node,
    fingerprint: createHash("sha256").update(leaf.der).digest("hex"),
  });
  parsedChains.set(creds, chain);
  return creds;
}

/** Reads a certificate file and a key file (each at most 1 MiB) and loads them as a pair. */
export async function loadTlsCredentialFiles(certFile: string, keyFile: string): Promise<TlsCredentials> {
  const [certPem, keyPem] = await Promise.all([readCredentialFile(certFile), readCredentialFile(keyFile)]);
  return loadTlsCredentials(certPem, keyPem);
}

async function readCredentialFile(file: string): Promise<string> {
  let handle: Awaited<ReturnType<typeof open>> | undefined;
  try {
    handle = await open(file, "r");
    const stats = await handle.stat();
    // A FIFO or device would block or never end; a certificate is always a regular file.
    if (!stats.isFile()) {
      throw new TlsCredentialsError("ERR_TLS_FILE_UNREADABLE", `${file} is not a regular file`, { details: { file } });
    }
    if (stats.size > MAX_CREDENTIAL_FILE_BYTES) {
      throw new TlsCredentialsError(
        "ERR_TLS_FILE_TOO_LARGE",
        `${file} is ${stats.size} bytes, over the ${MAX_CREDENTIAL_FILE_BYTES}-byte limit`,
        { details: { file, size: stats.size, limit: MAX_CREDENTIAL_FILE_BYTES } },
      );
    }
    return await handle.readFile("utf8");
  } catch (error) {
    if (error instanceof TlsCredentialsError) throw error;
    const errno = (error as NodeJS.ErrnoException).code;
    throw new TlsCredentialsError("ERR_TLS_FILE_UNREADABLE", `cannot read ${file} (${errno ?? "error"})`, {
      cause: error,
      details: { file, errno },
    });
  } finally {
    await handle?.close().catch(() => undefined);
  }
}

function chainOf(creds: TlsCredentials): readonly ParsedCertificate[] {
  let chain = parsedChains.get(creds);
  if (!chain) {
    // Credentials made by hand (tests) carry their DER chain; nothing to split.
    chain = creds.chain.map((der, index) => parseCertificate(Buffer.from(der), `certificate ${index}`));
    parsedChains.set(creds, chain);
  }
  return chain;
}

function checkLeafValidity(leaf: ParsedCertificate, now: Date): void {
  const details = {
    subject: leaf.subject,
    notBefore: leaf.notBefore.toISOString(),
    notAfter: leaf.notAfter.toISOString(),
    now: now.toISOString(),
  };
  if (now.getTime() < leaf.notBefore.getTime()) {
    throw new TlsCredentialsError(
      "ERR_TLS_CERT_NOT_YET_VALID",
      `${leaf.subject} is not valid before ${details.notBefore}`,
      { details },
    );
  }
  if (now.getTime() > leaf.notAfter.getTime()) {
    throw new TlsCredentialsError("ERR_TLS_CERT_EXPIRED", `${leaf.subject} expired at ${details.notAfter}`, {
      details,
    });
  }
}

function checkNotCa(leaf: ParsedCertificate): void {
  if (leaf.basicCa) {
    throw new TlsCredentialsError("ERR_TLS_CERT_IS_CA", `${leaf.subject} is a CA certificate, not a leaf`, {
      details: { subject: leaf.subject },
    });
  }
}

/** An `https_web` serving certificate: a leaf, valid now, usable for TLS servers. Trust is the client's business. */
export function checkWebCredentials(creds: TlsCredentials, options: { now: Date }): void {
  const [leaf] = chainOf(creds);
  checkNotCa(leaf!);
  checkLeafValidity(leaf!, options.now);
  // Node reports the extended key usage OIDs as `keyUsage`; undefined means no such extension (any use).
  const eku = leaf!.node.keyUsage;
  if (eku !== undefined && !eku.includes(EKU_SERVER_AUTH) && !eku.includes(EKU_ANY)) {
    throw new TlsCredentialsError(
      "ERR_TLS_CERT_NOT_SERVER_AUTH",
      `${leaf!.subject} has an extended key usage without serverAuth; TLS clients will refuse it`,
      { details: { subject: leaf!.subject, extendedKeyUsage: eku } },
    );
  }
}

export interface SvidCheckOptions {
  readonly now: Date;
  /** The SPIFFE ID the endpoint's X509-SVID must carry. */
  readonly endpointSpiffeId: string;
  /** This trust domain's bundle: its X.509 authorities are the roots a partner verifies the SVID against. */
  readonly bundle: TrustBundle;
}

/** An `https_spiffe` serving certificate: an X509-SVID for the endpoint ID that a partner holding `bundle` accepts. */
export function checkSvidCredentials(creds: TlsCredentials, options: SvidCheckOptions): void {
  checkSvid(chainOf(creds), options);
}

/**
 * The same check on a chain already in DER (leaf first), as a peer presents it: a client certificate, an
 * invitation's x5c. No key is involved.
 */
export function checkSvidChain(chain: readonly Uint8Array[], options: SvidCheckOptions): void {
  if (chain.length === 0) throw pemInvalid("no certificate");
  checkSvid(
    chain.map((der, index) => parseCertificate(Buffer.from(der), `certificate ${index}`)),
    options,
  );
}

function checkSvid(chain: readonly ParsedCertificate[], options: SvidCheckOptions): void {
  const leaf = chain[0]!;
  const subject = leaf.subject;
  // A signing certificate is not a leaf, whatever names it carries: that is the first thing to say about it.
  checkNotCa(leaf);
  const signingUsages = x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign;
  if (leaf.keyUsage !== undefined && (leaf.keyUsage & signingUsages) !== 0) {
    throw new TlsCredentialsError(
      "ERR_SVID_KEY_USAGE",
      `${subject} sets keyCertSign or cRLSign; a leaf SVID must not`,
      {
        details: { subject },
      },
    );
  }
  if (leaf.uriSans.length === 0) {
    throw new TlsCredentialsError("ERR_SVID_NO_URI_SAN", `${subject} has no URI SAN, so no SPIFFE ID`, {
      details: { subject },
    });
  }
  if (leaf.uriSans.length > 1) {
    throw new TlsCredentialsError(
      "ERR_SVID_MULTIPLE_URI_SANS",
      `${subject} has ${leaf.uriSans.length} URI SANs; an X509-SVID has exactly one`,
      { details: { subject, uris: leaf.uriSans } },
    );
  }
  const uri = leaf.uriSans[0]!;
  let leafId = false;
  try {
    leafId = parseSpiffeId(uri).path !== "";
  } catch {
    leafId = false;
  }
  if (!leafId) {
    throw new TlsCredentialsError(
      "ERR_SVID_INVALID_ID",
      `${subject}: URI SAN ${JSON.stringify(uri)} is not a SPIFFE ID with a path`,
      { details: { subject, uri } },
    );
  }
  // SPIFFE IDs have one spelling (id.ts refuses uppercase), so string equality is identity.
  if (uri !== options.endpointSpiffeId) {
    throw new TlsCredentialsError(
      "ERR_SVID_WRONG_ID",
      `${subject} is ${uri}, not the endpoint SPIFFE ID ${options.endpointSpiffeId}`,
      { details: { subject, uri, expected: options.endpointSpiffeId } },
    );
  }
  checkLeafValidity(leaf, options.now);
  checkChained(chain, options.bundle, options.now);
}

/**
 * Authorities are frozen and the same on every poll of a partner, so each is parsed once (both parsers
 * and its extensions: most of an https_spiffe check's cost). null: it does not parse and anchors nothing
 * (the bundle was validated when it was read, so this is not expected).
 */
const anchors = new WeakMap<X509Authority, ParsedCertificate | null>();

function anchorOf(authority: X509Authority): ParsedCertificate | undefined {
  let anchor = anchors.get(authority);
  if (anchor === undefined) {
    try {
      anchor = parseCertificate(Buffer.from(authority.der), "bundle authority");
    } catch {
      anchor = null;
    }
    anchors.set(authority, anchor);
  }
  return anchor ?? undefined;
}

const MAX_PATH_CERTIFICATES = MAX_CHAIN_CERTIFICATES + 1;
/** Intermediates that all issue each other could make the search factorial; a real chain needs a handful of steps. */
const MAX_PATH_STEPS = 256;

/**
 * Depth-first path building: several intermediates may share a subject during a rotation, so the first
 * name match is not necessarily the issuer. Each step needs the name/key-identifier match and the signature.
 */
function checkChained(chain: readonly ParsedCertificate[], bundle: TrustBundle, now: Date): void {
  const anchors: ParsedCertificate[] = [];
  for (const authority of bundle.x509Authorities) {
    const anchor = anchorOf(authority);
    if (anchor) anchors.push(anchor);
  }
  const anchorDer = new Set(anchors.map((anchor) => anchor.der.toString("hex")));
  // The bundle's own certificates in the PEM are anchors, not intermediates to climb past.
  const intermediates = chain.slice(1).filter((cert) => !anchorDer.has(cert.der.toString("hex")));
  const problems: string[] = [];
  if (anchors.length === 0) problems.push("the bundle has no X.509 authorities");
  let steps = 0;

  const climb = (cert: ParsedCertificate, depth: number, used: Set<ParsedCertificate>): boolean => {
    if (++steps > MAX_PATH_STEPS) {
      problems.push(`gave up after ${MAX_PATH_STEPS} path-building steps`);
      return false;
    }
    // `depth - 1` intermediates lie between a new issuer and the leaf: what pathLenConstraint limits.
    for (const anchor of anchors) {
      if (!issuedBy(cert, anchor)) continue;
      const problem = signingProblem(anchor, depth - 1, now, "bundle authority");
      if (problem === undefined) return true;
      problems.push(problem);
    }
    if (depth >= MAX_PATH_CERTIFICATES) return false;
    for (const candidate of intermediates) {
      if (used.has(candidate) || !issuedBy(cert, candidate)) continue;
      const problem = signingProblem(candidate, depth - 1, now, "intermediate");
      if (problem !== undefined) {
        problems.push(problem);
        continue;
      }
      used.add(candidate);
      if (climb(candidate, depth + 1, used)) return true;
      used.delete(candidate);
    }
    return false;
  };

  const leaf = chain[0]!;
  if (climb(leaf, 1, new Set())) return;
  if (problems.length === 0) problems.push(`no bundle authority or intermediate issued ${describeWithIssuer(leaf)}`);
  throw new TlsCredentialsError(
    "ERR_SVID_NOT_CHAINED",
    `${leaf.subject} does not chain to an X.509 authority of the bundle: ${[...new Set(problems)].join("; ")}`,
    { details: { subject: leaf.subject, problems: [...new Set(problems)] } },
  );
}

function describeWithIssuer(cert: ParsedCertificate): string {
  return `${cert.subject} (issuer ${cert.node.issuer.replace(/\n/g, ", ")})`;
}

function issuedBy(cert: ParsedCertificate, issuer: ParsedCertificate): boolean {
  try {
    return cert.node.checkIssued(issuer.node) && cert.node.verify(issuer.node.publicKey);
  } catch {
    return false;
  }
}

/** Why `ca` cannot sign at this point of a path, or undefined when it can. */
function signingProblem(
  ca: ParsedCertificate,
  intermediatesBelow: number,
  now: Date,
  role: string,
): string | undefined {
  if (now.getTime() < ca.notBefore.getTime()) {
    return `${role} ${ca.subject} is not valid before ${ca.notBefore.toISOString()}`;
  }
  if (now.getTime() > ca.notAfter.getTime()) {
    return `${role} ${ca.subject} expired at ${ca.notAfter.toISOString()}`;
  }
  // node's `ca` is basicConstraints cA true and, when key usage is present, keyCertSign among it.
  if (!ca.node.ca) return `${role} ${ca.subject} is not a signing CA (cA flag or keyCertSign missing)`;
  if (ca.pathLength !== undefined && intermediatesBelow > ca.pathLength) {
    return `${role} ${ca.subject} allows ${ca.pathLength} intermediate(s) below it, the path has ${intermediatesBelow}`;
  }
  return undefined;
}

/** What the logs say about a pair: enough to tell reloads apart, nothing secret. */
export function describeTlsCredentials(creds: TlsCredentials): {
  fingerprint: string;
  subject: string;
  notAfter: string;
} {
  const [leaf] = chainOf(creds);
  return { fingerprint: creds.fingerprint, subject: leaf!.subject, notAfter: leaf!.notAfter.toISOString() };
}

export interface FileCredentialSourceOptions {
  readonly certFile: string;
  readonly keyFile: string;
  /** Throws (a BundlegateError with a code) when the pair must not be served; given `clock.now()`. */
  readonly check: (creds: TlsCredentials, now: Date) => void;
  readonly clock: Clock;
  readonly pollIntervalMs: number;
  readonly logger: Logger;
  /** Told of each reload that published a new pair ("ok") or was refused ("error" and its code). */
  readonly onReload?: (result: "ok" | "error", code?: string) => void;
  /** When this value changes (e.g. the local bundle), the files are re-read and the served pair re-checked. */
  readonly revalidate?: Watched<unknown>;
  /** Quiet time after a file change before reading. Default 250 ms. */
  readonly debounceMs?: number;
  /** Wait before the one re-read of a pair that failed to load right after a change. Default 500 ms. */
  readonly retryDelayMs?: number;
}

export interface FileCredentialSource extends Watched<TlsCredentials> {
  /** Stops watching; the current value stays readable. */
  close(): void;
  /** Re-reads the files now; resolves when done. Failures are reported like watched ones, never thrown. */
  reload(): Promise<void>;
}

type Trigger = "change" | "revalidate";

/** Load-stage failures a pair caught half-written produces; checks of a complete pair are never retried. */
const RETRIED_CODES: ReadonlySet<string> = new Set([
  "ERR_TLS_FILE_UNREADABLE",
  "ERR_TLS_PEM_INVALID",
  "ERR_TLS_KEY_INVALID",
  "ERR_TLS_KEY_MISMATCH",
]);

/**
 * Serving credentials from a certificate file and a key file.
 *
 * The first load throws its coded error: the process must refuse to start with a broken pair. Afterwards a
 * pair that fails to load or check is logged and reported through `onReload`, and the last good pair keeps
 * being served. Reloads run one at a time, so a burst of events never interleaves two reads.
 */
export async function createFileCredentialSource(options: FileCredentialSourceOptions): Promise<FileCredentialSource> {
  const { certFile, keyFile, check, clock, logger } = options;
  const retryDelayMs = options.retryDelayMs ?? 500;
  const files = { certFile, keyFile };
  const listeners = new Set<(value: TlsCredentials) => void>();
  const sleepers = new Set<() => void>();
  let closed = false;
  let current: TlsCredentials | undefined;

  const loadChecked = async (): Promise<TlsCredentials> => {
    const creds = await loadTlsCredentialFiles(certFile, keyFile);
    runCheck(creds);
    return creds;
  };

  const runCheck = (creds: TlsCredentials) => {
    try {
      check(creds, clock.now());
    } catch (error) {
      if (isBundlegateError(error)) throw error;
      throw new TlsCredentialsError("ERR_TLS_CHECK_FAILED", "the credential check failed unexpectedly", {
        cause: error,
      });
    }
  };

  const tryLoad = async (): Promise<{ ok: true; creds: TlsCredentials } | { ok: false; error: BundlegateError }> => {
    try {
      return { ok: true, creds: await loadChecked() };
    } catch (error) {
      const coded = isBundlegateError(error)
        ? error
        : new TlsCredentialsError("ERR_TLS_CHECK_FAILED", "loading the credentials failed unexpectedly", {
            cause: error,
          });
      return { ok: false, error: coded };
    }
  };

  const sleep = (ms: number) =>
    new Promise<void>((resolve) => {
      const wake = () => {
        clearTimeout(timer);
        sleepers.delete(wake);
        resolve();
      };
      const timer = setTimeout(wake, ms);
      sleepers.add(wake);
    });

  const publish = (creds: TlsCredentials) => {
    current = creds;
    logger.info({ ...files, ...describeTlsCredentials(creds) }, "serving certificate reloaded");
    for (const listener of [...listeners]) {
      try {
        listener(creds);
      } catch (err) {
        logger.error({ err, ...files }, "serving certificate subscriber failed");
      }
    }
    notify("ok");
  };

  const notify = (result: "ok" | "error", code?: string) => {
    try {
      if (code === undefined) options.onReload?.(result);
      else options.onReload?.(result, code);
    } catch (err) {
      logger.error({ err, ...files }, "onReload callback failed");
    }
  };

  const logFailure = (error: BundlegateError, message: string) => {
    logger.error({ code: error.code, ...files, reason: error.message, details: error.details }, message);
  };

  const same = (a: TlsCredentials, b: TlsCredentials) => a.certPem === b.certPem && a.keyPem === b.keyPem;

  const attempt = async (trigger: Trigger) => {
    if (closed || current === undefined) return;
    let result = await tryLoad();
    if (!result.ok && trigger === "change" && RETRIED_CODES.has(result.error.code)) {
      // The other file of the pair may still be on its way.
      logger.debug({ code: result.error.code, ...files }, "serving certificate not loadable yet; reading again");
      await sleep(retryDelayMs);
      if (closed) return;
      result = await tryLoad();
    }
    if (closed) return;

    if (result.ok) {
      if (same(result.creds, current)) {
        logger.debug({ ...files, fingerprint: current.fingerprint }, "serving certificate files unchanged");
        return;
      }
      publish(result.creds);
      return;
    }
    if (trigger === "change") {
      logFailure(result.error, "serving certificate reload refused; keeping the current one");
      notify("error", result.error.code);
      return;
    }
    // A revalidation: what is on disk was already reported when it changed; what matters now is the pair being served.
    try {
      runCheck(current);
    } catch (error) {
      logFailure(
        error as BundlegateError,
        "the serving certificate no longer passes its check; still serving it until a valid one is in place",
      );
    }
  };

  // One reload at a time; requests arriving while one waits to run join it (a file change outranks a revalidation).
  let tail: Promise<void> = Promise.resolve();
  let queued: { trigger: Trigger; run: Promise<void> } | undefined;
  const schedule = (trigger: Trigger): Promise<void> => {
    if (queued) {
      if (trigger === "change") queued.trigger = "change";
      return queued.run;
    }
    const entry: { trigger: Trigger; run: Promise<void> } = { trigger, run: Promise.resolve() };
    entry.run = tail.then(() => {
      queued = undefined;
      return attempt(entry.trigger).catch((err: unknown) => {
        logger.error({ err, ...files }, "serving certificate reload failed unexpectedly");
      });
    });
    queued = entry;
    tail = entry.run;
    return entry.run;
  };

  const initial = loadChecked();
  tail = initial.then(
    () => undefined,
    () => undefined,
  );
  // Watching starts before the first read completes, so a change landing in between is not missed.
  const watcher = watchFiles({
    paths: [certFile, keyFile],
    pollIntervalMs: options.pollIntervalMs,
    debounceMs: options.debounceMs ?? 250,
    onChange: () => void schedule("change"),
    logger,
  });
  try {
    current = await initial;
  } catch (error) {
    closed = true;
    watcher.close();
    throw error;
  }
  logger.info({ ...files, ...describeTlsCredentials(current) }, "serving certificate loaded");
  const unsubscribeRevalidate = options.revalidate?.subscribe(() => void schedule("revalidate"));

  return {
    current: () => current!,
    subscribe(listener) {
      listeners.add(listener);
      return () => {
        listeners.delete(listener);
      };
    },
    reload: () => schedule("change"),
    close() {
      if (closed) return;
      closed = true;
      watcher.close();
      unsubscribeRevalidate?.();
      for (const wake of [...sleepers]) wake();
      listeners.clear();
    },
  };
}
