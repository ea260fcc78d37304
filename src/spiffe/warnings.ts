/**
 * What a reader ignored, and why. The spec tells consumers to ignore some entries rather than refuse
 * the bundle; bundlegate ignores them too but never silently: each becomes a warning on the relationship.
 */
export type BundleWarningCode =
  | "WARN_KEYS_NULL"
  | "WARN_KEY_USE_MISSING"
  | "WARN_KEY_USE_UNKNOWN"
  | "WARN_KEY_KTY_MISSING"
  | "WARN_KEY_KTY_UNKNOWN"
  | "WARN_KEY_UNSUPPORTED"
  | "WARN_KEY_INVALID"
  | "WARN_X5C_MISSING"
  | "WARN_X5C_INVALID"
  | "WARN_X5C_EXTRA_CERTIFICATES"
  | "WARN_X5C_KEY_MISMATCH"
  | "WARN_X509_KID_SET"
  | "WARN_CERT_INVALID"
  | "WARN_CERT_NOT_CA"
  | "WARN_KID_MISSING"
  | "WARN_DUPLICATE_AUTHORITY"
  | "WARN_PEM_BLOCK_IGNORED"
  // Raised by inspection (they depend on the clock or the trust domain, not on the document):
  | "WARN_AUTHORITY_EXPIRED"
  | "WARN_AUTHORITY_NOT_YET_VALID"
  | "WARN_AUTHORITY_OTHER_TRUST_DOMAIN"
  | "WARN_AUTHORITY_NOT_SELF_SIGNED"
  | "WARN_NO_USABLE_AUTHORITIES";

export interface BundleWarning {
  readonly code: BundleWarningCode;
  readonly message: string;
  /** Index of the entry in the document's `keys` array (or PEM block), when the warning is about one. */
  readonly index?: number;
}

export function warning(code: BundleWarningCode, message: string, index?: number): BundleWarning {
  return index === undefined ? { code, message } : { code, message, index };
}
