/**
 * Reading a token without trusting it, for `bundlegate invite show` and for partners' tooling: the header
 * and payload as JSON, exactly as they are in the token. Nothing here says the token is genuine; only
 * verifyInvitation does.
 */
import { malformed, type ReadableJson, readableJson, readJson, splitToken } from "./format.js";

export interface DecodedInvitation {
  /** The protected header, e.g. `{ alg, typ, x5c }`. */
  readonly header: { readonly [name: string]: ReadableJson };
  /** The claims; shaped like InvitationPayload when the token is a well-formed invitation. */
  readonly payload: { readonly [name: string]: ReadableJson };
  /** The header's JSON text as signed. */
  readonly headerJson: string;
  /** The payload's JSON text as signed: exact where `payload` turns big integers into strings. */
  readonly payloadJson: string;
}

/** Throws ERR_INVITATION_TOO_LARGE or ERR_INVITATION_MALFORMED; never checks signature, times or content. */
export function decodeInvitation(token: string): DecodedInvitation {
  const parts = splitToken(token);
  if (parts.header.type !== "object") throw malformed("the header is not a JSON object");
  const payload = readJson(parts.payloadJson, "payload");
  if (payload.type !== "object") throw malformed("the payload is not a JSON object");
  return {
    header: readableJson(parts.header) as DecodedInvitation["header"],
    payload: readableJson(payload) as DecodedInvitation["payload"],
    headerJson: parts.headerJson,
    payloadJson: parts.payloadJson,
  };
}
