/**
 * Why an invitation was refused (verifying) or could not be made (creating). One code per broken rule, so
 * the admin API and `bundlegate invite accept` can tell a partner exactly what to fix.
 */
import { BundlegateError, type BundlegateErrorOptions } from "../../errors.js";

export const INVITATION_ERROR_CODES = [
  /** The token is longer than MAX_INVITATION_TOKEN_BYTES; nothing of it was decoded. */
  "ERR_INVITATION_TOO_LARGE",
  /** Not a compact JWS of this token type: parts, base64url, JSON, header members, x5c, claim types. */
  "ERR_INVITATION_MALFORMED",
  /** `alg` is not on the allow-list (none, HMAC, ...), or does not fit the signer's key. */
  "ERR_INVITATION_BAD_ALGORITHM",
  /** The signature does not verify with the key of the x5c leaf. */
  "ERR_INVITATION_BAD_SIGNATURE",
  /** `exp` has passed. */
  "ERR_INVITATION_EXPIRED",
  /** `iat` (or `nbf`) lies in the future, beyond the clock skew allowance. */
  "ERR_INVITATION_NOT_YET_VALID",
  /** `exp - iat` is longer than the verifier's maximum lifetime. */
  "ERR_INVITATION_TTL_TOO_LONG",
  /** The token names an audience and the verifier is not in it. */
  "ERR_INVITATION_WRONG_AUDIENCE",
  /** `bundlegate_invitation.version` is not one this bundlegate understands. */
  "ERR_INVITATION_UNSUPPORTED_VERSION",
  /** The bundle inside is refused by the strict SPIFFE bundle codec (`cause` has the codec's code). */
  "ERR_INVITATION_BAD_BUNDLE",
  /** The x5c chain is not an X509-SVID of the invitation's trust domain, named by `iss`, chained to the bundle inside. */
  "ERR_INVITATION_UNTRUSTED_SIGNER",
  /** Trust domain, endpoint URL, profile, endpoint SPIFFE ID or note break the relationship rules. */
  "ERR_INVITATION_BAD_CONTENT",
  /** createInvitation: the caller's options break a rule (the same rules as BAD_CONTENT, plus ttl and audience). */
  "ERR_INVITATION_BAD_INPUT",
  /** createInvitation: the gateway's own key or SVID cannot make an invitation a partner would accept. */
  "ERR_INVITATION_SIGNER_INVALID",
  /** createInvitation: the token fails its own verification for another reason (own bundle refused, too large). */
  "ERR_INVITATION_CREATE_FAILED",
] as const;

export type InvitationErrorCode = (typeof INVITATION_ERROR_CODES)[number];

export class InvitationError extends BundlegateError<InvitationErrorCode> {
  constructor(code: InvitationErrorCode, message: string, options: BundlegateErrorOptions = {}) {
    // Failing to create is the gateway's own configuration or state, not the caller's mistake.
    const status = code === "ERR_INVITATION_SIGNER_INVALID" || code === "ERR_INVITATION_CREATE_FAILED" ? 500 : 400;
    super(code, message, { status, ...options });
  }
}
