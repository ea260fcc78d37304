/**
 * X.509 authorities as PEM: the format operators keep CA files in and SPIRE's `-format pem` prints.
 * PEM can carry no JWT authorities, refresh hint or sequence; a PEM bundle has X.509 authorities only.
 */
import type { TrustBundle, X509Authority } from "./bundle.js";
import { createTrustBundle, parseX509Der, x509AuthorityFromCertificate } from "./bundle.js";
import {
  type BundleReadLimits,
  DEFAULT_MAX_BUNDLE_BYTES,
  DEFAULT_MAX_BUNDLE_KEYS,
  type ParsedBundle,
} from "./codec.js";
import { InvalidBundleError } from "./errors.js";
import { type BundleWarning, warning } from "./warnings.js";

const BLOCK = /-----BEGIN ([A-Z0-9 ]+)-----\r?\n([\s\S]*?)-----END ([A-Z0-9 ]+)-----/g;
/** A PEM block's body: base64 and line breaks, nothing else. */
export const PEM_BASE64_BODY = /^[A-Za-z0-9+/=\s]*$/;

export interface PemBlock {
  readonly index: number;
  readonly label: string;
  readonly body: string;
}

/**
 * The blocks of a PEM text, in order, each BEGIN matched by an END of the same label. Bundles and
 * certificate chains are split here; `fail` makes the caller's own coded error.
 */
export function splitPemBlocks(
  text: string,
  fail: (message: string, details?: Record<string, unknown>) => Error,
): PemBlock[] {
  const matches = [...text.matchAll(BLOCK)];
  const begins = text.match(/-----BEGIN /g)?.length ?? 0;
  if (begins !== matches.length) throw fail("a PEM block has no matching END line");
  return matches.map(([, label = "", body = "", endLabel], index) => {
    if (label !== endLabel) throw fail(`PEM block ${index}: BEGIN ${label} closed by END ${endLabel}`, { index });
    return { index, label, body };
  });
}

export function parsePemBundle(input: Uint8Array | string, limits: BundleReadLimits = {}): ParsedBundle {
  const maxBytes = limits.maxBytes ?? DEFAULT_MAX_BUNDLE_BYTES;
  const maxKeys = limits.maxKeys ?? DEFAULT_MAX_BUNDLE_KEYS;
  const text = typeof input === "string" ? input : Buffer.from(input).toString("latin1");
  const size = typeof input === "string" ? Buffer.byteLength(input, "utf8") : input.byteLength;
  if (size > maxBytes) {
    throw new InvalidBundleError("ERR_BUNDLE_TOO_LARGE", `PEM bundle is ${size} bytes, over the ${maxBytes}-byte cap`, {
      details: { size, limit: maxBytes },
    });
  }

  const blocks = splitPemBlocks(
    text,
    (message, details) => new InvalidBundleError("ERR_PEM_INVALID", message, details ? { details } : {}),
  );
  if (blocks.length > maxKeys) {
    throw new InvalidBundleError(
      "ERR_BUNDLE_TOO_MANY_KEYS",
      `PEM bundle has ${blocks.length} blocks, over the cap of ${maxKeys}`,
      { details: { count: blocks.length, limit: maxKeys } },
    );
  }

  const warnings: BundleWarning[] = [];
  const authorities: X509Authority[] = [];
  const seen = new Set<string>();
  let certificateBlocks = 0;
  for (const { index, label, body } of blocks) {
    if (label.includes("PRIVATE KEY")) {
      throw new InvalidBundleError(
        "ERR_PEM_PRIVATE_KEY",
        `PEM block ${index} is a ${label}; a bundle carries certificates only`,
        { details: { index } },
      );
    }
    if (label !== "CERTIFICATE") {
      warnings.push(
        warning("WARN_PEM_BLOCK_IGNORED", `PEM block ${index} (${label}) is not a certificate; ignored`, index),
      );
      continue;
    }
    certificateBlocks++;
    if (!PEM_BASE64_BODY.test(body)) {
      throw new InvalidBundleError("ERR_PEM_INVALID", `PEM block ${index} is not base64`, { details: { index } });
    }
    const certificate = parseX509Der(Buffer.from(body.replace(/\s+/g, ""), "base64"), `PEM block ${index}`);
    if (!certificate) {
      throw new InvalidBundleError("ERR_PEM_INVALID_CERTIFICATE", `PEM block ${index} is not a readable certificate`, {
        details: { index },
      });
    }
    if (!certificate.ca) {
      warnings.push(warning("WARN_CERT_NOT_CA", `PEM block ${index} is not a CA certificate; ignored`, index));
      continue;
    }
    let authority: X509Authority;
    try {
      authority = x509AuthorityFromCertificate(certificate);
    } catch {
      warnings.push(
        warning("WARN_KEY_UNSUPPORTED", `PEM block ${index}: the key type is not supported; ignored`, index),
      );
      continue;
    }
    if (seen.has(authority.fingerprint)) {
      warnings.push(warning("WARN_DUPLICATE_AUTHORITY", `PEM block ${index} repeats an earlier certificate`, index));
      continue;
    }
    seen.add(authority.fingerprint);
    authorities.push(authority);
  }
  if (certificateBlocks === 0) throw new InvalidBundleError("ERR_PEM_NO_CERTIFICATES", "no CERTIFICATE block found");
  return { bundle: createTrustBundle({ x509Authorities: authorities }), warnings };
}

/** The bundle's X.509 authorities as PEM, in canonical order. */
export function serializePem(bundle: TrustBundle): string {
  return bundle.x509Authorities.map((authority) => derToPem(authority.der)).join("");
}

export function derToPem(der: Uint8Array, label = "CERTIFICATE"): string {
  const lines =
    Buffer.from(der)
      .toString("base64")
      .match(/.{1,64}/g) ?? [];
  return `-----BEGIN ${label}-----\n${lines.join("\n")}\n-----END ${label}-----\n`;
}
