import { BundlegateError, type BundlegateErrorOptions } from "../errors.js";

/** Why a trust domain name or SPIFFE ID was refused (SPIFFE-ID.md section 2); one code per broken rule. */
export type SpiffeIdErrorCode =
  | "ERR_SPIFFEID_EMPTY"
  | "ERR_SPIFFEID_WRONG_SCHEME"
  | "ERR_SPIFFEID_MISSING_TRUST_DOMAIN"
  | "ERR_SPIFFEID_QUERY"
  | "ERR_SPIFFEID_FRAGMENT"
  | "ERR_SPIFFEID_TOO_LONG"
  | "ERR_SPIFFEID_PATH_BAD_CHAR"
  | "ERR_SPIFFEID_PATH_EMPTY_SEGMENT"
  | "ERR_SPIFFEID_PATH_DOT_SEGMENT"
  | "ERR_SPIFFEID_PATH_NO_LEADING_SLASH"
  | "ERR_SPIFFEID_PATH_TRAILING_SLASH"
  | "ERR_SPIFFEID_PATH_PERCENT_ENCODED"
  | "ERR_TRUST_DOMAIN_EMPTY"
  | "ERR_TRUST_DOMAIN_UPPERCASE"
  | "ERR_TRUST_DOMAIN_BAD_CHAR"
  | "ERR_TRUST_DOMAIN_PERCENT_ENCODED"
  | "ERR_TRUST_DOMAIN_PORT"
  | "ERR_TRUST_DOMAIN_USERINFO"
  | "ERR_TRUST_DOMAIN_TOO_LONG"
  | "ERR_TRUST_DOMAIN_IS_SPIFFE_ID";

export class InvalidSpiffeIdError extends BundlegateError<SpiffeIdErrorCode> {
  constructor(code: SpiffeIdErrorCode, message: string, options: BundlegateErrorOptions = {}) {
    super(code, message, { status: 400, expose: true, ...options });
  }
}

/** Why a whole bundle document was refused (DESIGN.md section 3). Nothing of a refused document is used. */
export type BundleErrorCode =
  | "ERR_BUNDLE_TOO_LARGE"
  | "ERR_BUNDLE_NOT_UTF8"
  | "ERR_BUNDLE_NOT_JSON"
  | "ERR_BUNDLE_TOO_DEEP"
  | "ERR_BUNDLE_DUPLICATE_MEMBER"
  | "ERR_BUNDLE_NOT_OBJECT"
  | "ERR_BUNDLE_KEYS_MISSING"
  | "ERR_BUNDLE_KEYS_NOT_ARRAY"
  | "ERR_BUNDLE_KEY_NOT_OBJECT"
  | "ERR_BUNDLE_TOO_MANY_KEYS"
  | "ERR_BUNDLE_PRIVATE_KEY"
  | "ERR_BUNDLE_DER_TRAILING_DATA"
  | "ERR_BUNDLE_BAD_SEQUENCE"
  | "ERR_BUNDLE_BAD_REFRESH_HINT"
  | "ERR_BUNDLE_DUPLICATE_KID"
  | "ERR_PEM_INVALID"
  | "ERR_PEM_PRIVATE_KEY"
  | "ERR_PEM_NO_CERTIFICATES"
  | "ERR_PEM_INVALID_CERTIFICATE"
  | "ERR_BUNDLE_INVALID_VALUE";

export class InvalidBundleError extends BundlegateError<BundleErrorCode> {
  constructor(code: BundleErrorCode, message: string, options: BundlegateErrorOptions = {}) {
    super(code, message, { status: 422, expose: true, ...options });
  }
}
