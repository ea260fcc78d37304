/**
 * What an invitation may say about the inviting domain. The same rules refuse bad options when one is
 * made (ERR_INVITATION_BAD_INPUT) and bad content when one is accepted (ERR_INVITATION_BAD_CONTENT), so
 * bundlegate never signs what another bundlegate would refuse.
 *
 * They are the relationship rules of DESIGN.md section 6: the accepted invitation becomes a pending
 * relationship, so what cannot be a relationship cannot be an invitation.
 */
import { isBundlegateError } from "../../errors.js";
import { parseSpiffeId, parseTrustDomain, type TrustDomain } from "../../spiffe/id.js";
import { parseEndpointUrl } from "../fetcher/url.js";
import { InvitationError, type InvitationErrorCode } from "./errors.js";
import { INVITATION_PROFILES, type InvitationProfile } from "./format.js";

export const MAX_INVITATION_NOTE_LENGTH = 1024;

export interface InvitationContentInput {
  readonly trustDomain: string;
  readonly endpointUrl: string;
  readonly profile: string;
  readonly endpointSpiffeId?: string | undefined;
  readonly note?: string | undefined;
}

export interface InvitationContent {
  readonly trustDomain: TrustDomain;
  readonly endpointUrl: string;
  readonly profile: InvitationProfile;
  readonly endpointSpiffeId?: string;
  readonly note?: string;
}

/** Tab and newline are text; any other C0 or C1 control could rewrite the terminal `invite show` prints to. */
function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if ((c < 0x20 && c !== 0x09 && c !== 0x0a) || (c >= 0x7f && c <= 0x9f)) return true;
  }
  return false;
}

type ContentCode = Extract<InvitationErrorCode, "ERR_INVITATION_BAD_CONTENT" | "ERR_INVITATION_BAD_INPUT">;

export function checkInvitationContent(input: InvitationContentInput, code: ContentCode): InvitationContent {
  const fail = (field: string, reason: string, cause?: unknown) =>
    new InvitationError(code, `invitation ${field} ${reason}`, {
      details: { field, ...(isBundlegateError(cause) ? { check: cause.code } : {}) },
      ...(cause === undefined ? {} : { cause }),
    });

  let trustDomain: TrustDomain;
  try {
    trustDomain = parseTrustDomain(input.trustDomain);
  } catch (cause) {
    throw fail("trust_domain", `is not a trust domain name: ${reasonOf(cause)}`, cause);
  }

  // Same rules as a configured endpoint URL, without echoing it: a mistyped URL may carry a password.
  if (/[\s\\]/.test(input.endpointUrl)) throw fail("endpoint_url", "must not contain whitespace or backslashes");
  try {
    parseEndpointUrl(input.endpointUrl);
  } catch (cause) {
    const reason = isBundlegateError(cause) ? String(cause.details.reason ?? "is not a URL") : "is not a URL";
    throw fail("endpoint_url", `is not a bundle endpoint URL (https, no userinfo, no fragment): it ${reason}`, cause);
  }

  if (!(INVITATION_PROFILES as readonly string[]).includes(input.profile)) {
    throw fail("profile", `must be one of ${INVITATION_PROFILES.join(", ")}`);
  }
  const profile = input.profile as InvitationProfile;

  let endpointSpiffeId: string | undefined;
  if (input.endpointSpiffeId !== undefined) {
    if (profile !== "https_spiffe") {
      throw fail("endpoint_spiffe_id", "is only meaningful with the https_spiffe profile");
    }
    let id: ReturnType<typeof parseSpiffeId>;
    try {
      id = parseSpiffeId(input.endpointSpiffeId);
    } catch (cause) {
      throw fail("endpoint_spiffe_id", `is not a SPIFFE ID: ${reasonOf(cause)}`, cause);
    }
    // X509-SVID.md section 3.1: the endpoint's SVID is a leaf, and a leaf's ID has a path.
    if (id.path === "") throw fail("endpoint_spiffe_id", `${id.uri} names the trust domain itself; it needs a path`);
    if (id.trustDomain !== trustDomain) {
      throw fail("endpoint_spiffe_id", `${id.uri} is not in the invitation's trust domain ${trustDomain}`);
    }
    endpointSpiffeId = id.uri;
  } else if (profile === "https_spiffe") {
    throw fail("endpoint_spiffe_id", "is required by the https_spiffe profile");
  }

  if (input.note !== undefined) {
    if (input.note.length > MAX_INVITATION_NOTE_LENGTH) {
      throw fail("note", `is longer than ${MAX_INVITATION_NOTE_LENGTH} characters`);
    }
    if (hasControlCharacter(input.note)) throw fail("note", "contains control characters");
  }

  return {
    trustDomain,
    endpointUrl: input.endpointUrl,
    profile,
    ...(endpointSpiffeId === undefined ? {} : { endpointSpiffeId }),
    ...(input.note === undefined ? {} : { note: input.note }),
  };
}

function reasonOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
