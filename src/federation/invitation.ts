/**
 * Federation invitations: a short-lived signed token one gateway makes (`POST /v1/invitations`) and another
 * accepts (`POST /v1/invitations/accept`, `bundlegate invite accept`) to start a pending relationship with
 * the inviting domain's trust domain, endpoint, profile and bundle pre-filled.
 *
 * The token is a compact JWS signed with the key of the inviting gateway's X509-SVID, which travels in the
 * `x5c` header; the verifier checks it against the bundle inside the token. The parts live in ./invitation/.
 */

export { MAX_INVITATION_NOTE_LENGTH } from "./invitation/content.js";
export {
  type CreatedInvitation,
  type CreateInvitationOptions,
  createInvitation,
  type InvitationSigner,
} from "./invitation/create.js";
export { type DecodedInvitation, decodeInvitation } from "./invitation/decode.js";
export { INVITATION_ERROR_CODES, InvitationError, type InvitationErrorCode } from "./invitation/errors.js";
export {
  INVITATION_ALGORITHMS,
  INVITATION_CLAIM,
  INVITATION_TYP,
  INVITATION_VERSION,
  type InvitationAlgorithm,
  type InvitationHeader,
  type InvitationPayload,
  type InvitationProfile,
  MAX_INVITATION_TOKEN_BYTES,
  type ReadableJson,
} from "./invitation/format.js";
export {
  DEFAULT_INVITATION_MAX_TTL_SECONDS,
  INVITATION_CLOCK_SKEW_SECONDS,
  type VerifiedInvitation,
  type VerifyInvitationOptions,
  verifyInvitation,
} from "./invitation/verify.js";
