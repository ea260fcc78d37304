/**
 * The payload's shape: standard JWT claims (`iss`, `iat`, `exp`, `jti`, optional `aud` and `nbf`; other
 * registered or private claims are ignored, as RFC 7519 asks) beside the `bundlegate_invitation` object,
 * which is closed: a member this version does not know is refused rather than silently dropped, since the
 * accepting side would otherwise act on less than the inviting side said.
 *
 * Only types are checked here; what the values mean is checked by content.ts, the bundle by the codec and
 * the signer by verify.ts.
 */
import { isBundlegateError } from "../../errors.js";
import type { JsonNode } from "../../spiffe/json.js";
import type { InvitationContentInput } from "./content.js";
import { InvitationError } from "./errors.js";
import { INVITATION_CLAIM, INVITATION_VERSION, malformed, readJson } from "./format.js";

export interface InvitationClaims {
  readonly iss: string;
  readonly iat: number;
  readonly exp: number;
  readonly nbf?: number;
  readonly jti: string;
  readonly aud?: readonly string[];
  readonly content: InvitationContentInput;
  /** The bundle document, still as parsed JSON: the codec decides what it is. */
  readonly bundle: JsonNode;
}

const MAX_JTI_LENGTH = 256;
const INVITATION_MEMBERS: ReadonlySet<string> = new Set([
  "version",
  "trust_domain",
  "endpoint_url",
  "profile",
  "endpoint_spiffe_id",
  "note",
  "bundle",
]);
const BUNDLE_PATH = `$.${INVITATION_CLAIM}.bundle`;

export function readClaims(payloadJson: string): InvitationClaims {
  const root = readPayloadJson(payloadJson);
  if (root.type !== "object") throw malformed("the payload is not a JSON object");
  const claims = root.members;

  const iss = string(claims.get("iss"), "iss");
  if (iss === "") throw malformed('"iss" is empty', { claim: "iss" });
  const jti = string(claims.get("jti"), "jti");
  if (jti === "" || jti.length > MAX_JTI_LENGTH) {
    throw malformed(`"jti" must be 1 to ${MAX_JTI_LENGTH} characters`, { claim: "jti" });
  }
  const nbf = claims.has("nbf") ? numericDate(claims.get("nbf"), "nbf") : undefined;
  const aud = claims.has("aud") ? audience(claims.get("aud")!) : undefined;

  const invitation = claims.get(INVITATION_CLAIM);
  if (invitation?.type !== "object") throw malformed(`"${INVITATION_CLAIM}" is missing or not an object`);
  const members = invitation.members;
  // The version first: a newer token is expected to carry members this reader does not know.
  const version = members.get("version");
  if (version?.type !== "number") throw malformed(`"${INVITATION_CLAIM}.version" is missing or not a number`);
  if (version.text !== String(INVITATION_VERSION)) {
    throw new InvitationError(
      "ERR_INVITATION_UNSUPPORTED_VERSION",
      `invitation version ${version.text} is not supported; this bundlegate reads version ${INVITATION_VERSION}`,
      { details: { version: version.text, supported: [INVITATION_VERSION] } },
    );
  }
  for (const name of members.keys()) {
    if (!INVITATION_MEMBERS.has(name)) {
      throw malformed(`"${INVITATION_CLAIM}" has an unknown member ${JSON.stringify(name)}`, { name });
    }
  }
  const bundle = members.get("bundle");
  if (bundle === undefined) throw malformed(`"${INVITATION_CLAIM}.bundle" is missing`);
  const endpointSpiffeId = optionalString(members.get("endpoint_spiffe_id"), "endpoint_spiffe_id");
  const note = optionalString(members.get("note"), "note");

  return {
    iss,
    iat: numericDate(claims.get("iat"), "iat"),
    exp: numericDate(claims.get("exp"), "exp"),
    ...(nbf === undefined ? {} : { nbf }),
    jti,
    ...(aud === undefined ? {} : { aud }),
    content: {
      trustDomain: string(members.get("trust_domain"), "trust_domain"),
      endpointUrl: string(members.get("endpoint_url"), "endpoint_url"),
      profile: string(members.get("profile"), "profile"),
      ...(endpointSpiffeId === undefined ? {} : { endpointSpiffeId }),
      ...(note === undefined ? {} : { note }),
    },
    bundle,
  };
}

/**
 * The strict reader stops at the first duplicate member or too-deep nesting anywhere in the payload; one
 * inside the bundle is the bundle's fault, as it would be had the bundle been fetched.
 */
function readPayloadJson(payloadJson: string): JsonNode {
  try {
    return readJson(payloadJson, "payload");
  } catch (error) {
    const inner = isBundlegateError(error) ? error.cause : undefined;
    const path = isBundlegateError(inner) ? inner.details.path : undefined;
    if (typeof path === "string" && (path.startsWith(`${BUNDLE_PATH}.`) || path.startsWith(`${BUNDLE_PATH}[`))) {
      throw new InvitationError(
        "ERR_INVITATION_BAD_BUNDLE",
        `the bundle inside the invitation is refused: ${messageOf(inner)}`,
        {
          cause: inner,
          details: { check: isBundlegateError(inner) ? inner.code : undefined, path },
        },
      );
    }
    throw error;
  }
}

function string(node: JsonNode | undefined, claim: string): string {
  if (node?.type !== "string") throw malformed(`"${claim}" is missing or not a string`, { claim });
  return node.value;
}

function optionalString(node: JsonNode | undefined, claim: string): string | undefined {
  return node === undefined ? undefined : string(node, claim);
}

/** Whole seconds since the epoch; fractions are legal JWT but never written by bundlegate. */
function numericDate(node: JsonNode | undefined, claim: string): number {
  const seconds = node?.type === "number" && /^(?:0|[1-9]\d*)$/.test(node.text) ? Number(node.text) : Number.NaN;
  if (!Number.isSafeInteger(seconds)) {
    throw malformed(`"${claim}" is missing or not a whole number of seconds`, { claim });
  }
  return seconds;
}

function audience(node: JsonNode): string[] {
  if (node.type === "string") return [node.value];
  if (node.type === "array" && node.items.length > 0 && node.items.every((item) => item.type === "string")) {
    return node.items.map((item) => (item as { value: string }).value);
  }
  throw malformed('"aud" must be a string or a non-empty array of strings', { claim: "aud" });
}

function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
