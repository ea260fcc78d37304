/**
 * An operator's view of a bundle: each authority with its key, fingerprint and validity, the
 * bundle's earliest and latest expiry, and every warning. The clock is passed in, never read.
 */
import { X509Certificate } from "node:crypto";
import type { TrustBundle, X509Authority } from "./bundle.js";
import { bundleDigest } from "./digest.js";
import { isSpiffeId, parseSpiffeId, type TrustDomain } from "./id.js";
import { describePublicJwk } from "./public-key.js";
import { type BundleWarning, warning } from "./warnings.js";

export type AuthorityStatus = "valid" | "expired" | "not-yet-valid";

export interface AuthorityInspection {
  readonly use: "x509-svid" | "jwt-svid" | "wit-svid";
  /** "EC P-256", "RSA 2048", "OKP Ed25519". */
  readonly keyType: string;
  /** SHA-256 of the certificate DER (hex) for X.509; RFC 7638 thumbprint for JWT keys. */
  readonly fingerprint: string;
  readonly keyId?: string;
  readonly subject?: string;
  readonly issuer?: string;
  readonly serialNumber?: string;
  readonly notBefore?: string;
  readonly notAfter?: string;
  readonly ca?: boolean;
  readonly selfSigned?: boolean;
  readonly spiffeIds?: readonly string[];
  /** JWT keys carry no validity period in a bundle, so they are always "valid". */
  readonly status: AuthorityStatus;
}

export interface BundleInspection {
  readonly trustDomain?: string;
  readonly digest: string;
  /** A decimal string: sequences run to 2^64-1, past what a JSON number keeps exactly. */
  readonly sequence?: string;
  readonly refreshHintSeconds?: number;
  readonly x509AuthorityCount: number;
  readonly jwtAuthorityCount: number;
  readonly authorities: readonly AuthorityInspection[];
  readonly earliestNotAfter?: string;
  readonly latestNotAfter?: string;
  /** At least one authority that can verify an SVID now. */
  readonly usable: boolean;
  readonly warnings: readonly BundleWarning[];
}

export interface InspectOptions {
  readonly now: Date;
  /** When given, X.509 authorities naming another trust domain are warned about. */
  readonly trustDomain?: TrustDomain;
  /** Warnings the reader raised, carried into the summary. */
  readonly warnings?: readonly BundleWarning[];
}

export function inspectBundle(bundle: TrustBundle, options: InspectOptions): BundleInspection {
  const warnings: BundleWarning[] = [...(options.warnings ?? [])];
  const authorities: AuthorityInspection[] = [];
  const notAfters: Date[] = [];

  for (const authority of bundle.x509Authorities) {
    const { inspection, notAfter } = inspectX509(authority, options, warnings);
    authorities.push(inspection);
    notAfters.push(notAfter);
  }
  for (const authority of bundle.jwtAuthorities.values()) {
    authorities.push({
      use: authority.use,
      keyType: describePublicJwk(authority.publicKey),
      fingerprint: authority.thumbprint,
      keyId: authority.keyId,
      status: "valid",
    });
  }

  const usable = authorities.some((authority) => authority.status === "valid");
  if (!usable) {
    warnings.push(
      warning(
        "WARN_NO_USABLE_AUTHORITIES",
        authorities.length === 0
          ? "the bundle has no authorities: every SVID of this trust domain is untrusted"
          : "no authority is valid now: every SVID of this trust domain is untrusted",
      ),
    );
  }
  notAfters.sort((a, b) => a.getTime() - b.getTime());
  const result: { -readonly [K in keyof BundleInspection]: BundleInspection[K] } = {
    digest: bundleDigest(bundle),
    x509AuthorityCount: bundle.x509Authorities.length,
    jwtAuthorityCount: bundle.jwtAuthorities.size,
    authorities,
    usable,
    warnings,
  };
  if (options.trustDomain !== undefined) result.trustDomain = options.trustDomain;
  if (bundle.sequence !== undefined) result.sequence = bundle.sequence.toString();
  if (bundle.refreshHintSeconds !== undefined) result.refreshHintSeconds = bundle.refreshHintSeconds;
  if (notAfters.length > 0) {
    result.earliestNotAfter = notAfters[0]!.toISOString();
    result.latestNotAfter = notAfters[notAfters.length - 1]!.toISOString();
  }
  return result;
}

function inspectX509(
  authority: X509Authority,
  options: InspectOptions,
  warnings: BundleWarning[],
): { inspection: AuthorityInspection; notAfter: Date } {
  const certificate = new X509Certificate(authority.der);
  const notBefore = new Date(certificate.validFrom);
  const notAfter = new Date(certificate.validTo);
  const short = authority.fingerprint.slice(0, 16);
  const now = options.now.getTime();
  const status: AuthorityStatus =
    now > notAfter.getTime() ? "expired" : now < notBefore.getTime() ? "not-yet-valid" : "valid";
  if (status === "expired") {
    warnings.push(warning("WARN_AUTHORITY_EXPIRED", `X.509 authority ${short} expired at ${notAfter.toISOString()}`));
  } else if (status === "not-yet-valid") {
    warnings.push(
      warning("WARN_AUTHORITY_NOT_YET_VALID", `X.509 authority ${short} is valid from ${notBefore.toISOString()}`),
    );
  }

  const selfSigned = certificate.checkIssued(certificate) && certificate.verify(certificate.publicKey);
  if (!selfSigned) {
    warnings.push(warning("WARN_AUTHORITY_NOT_SELF_SIGNED", `X.509 authority ${short} is not self-signed`));
  }
  const spiffeIds = uriSans(certificate).filter(isSpiffeId);
  if (options.trustDomain !== undefined) {
    const foreign = spiffeIds.filter((id) => parseSpiffeId(id).trustDomain !== options.trustDomain);
    if (foreign.length > 0) {
      warnings.push(
        warning(
          "WARN_AUTHORITY_OTHER_TRUST_DOMAIN",
          `X.509 authority ${short} names ${foreign.join(", ")}, outside ${options.trustDomain}`,
        ),
      );
    }
  }
  return {
    notAfter,
    inspection: {
      use: "x509-svid",
      keyType: describePublicJwk(authority.publicKey),
      fingerprint: authority.fingerprint,
      subject: certificate.subject.split("\n").join(", "),
      issuer: certificate.issuer.split("\n").join(", "),
      serialNumber: certificate.serialNumber.toLowerCase(),
      notBefore: notBefore.toISOString(),
      notAfter: notAfter.toISOString(),
      ca: certificate.ca,
      selfSigned,
      spiffeIds,
      status,
    },
  };
}

/** URI SANs from Node's rendering; SPIFFE IDs hold no comma, quote or space, so a plain split is exact for them. */
function uriSans(certificate: X509Certificate): string[] {
  return (certificate.subjectAltName ?? "")
    .split(", ")
    .filter((entry) => entry.startsWith("URI:"))
    .map((entry) => entry.slice(4));
}
