/**
 * The readable form of an invitation's payload (from `invite show`, which decodes a token locally, or from
 * the API's answer to `invite create`), with the SPIFFE bundle inside inspected as the gateway would read it.
 */
import { isBundlegateError } from "../errors.js";
import { INVITATION_CLAIM } from "../federation/invitation.js";
import { inspectBundle } from "../spiffe/inspect.js";
import { parseBundle } from "../spiffe/read.js";
import { writeJsonExact } from "./json-text.js";
import { renderInspection } from "./render-inspection.js";
import { fieldLabel, formatMoment, isRecord, scalarText } from "./render-text.js";

export interface InvitationRendering {
  readonly text: string;
  /** `exp` has passed: no gateway accepts it any more. */
  readonly expired: boolean;
  /** The bundle inside is one the gateway would refuse (or there is none). */
  readonly bundleRefused: boolean;
}

/**
 * `payload` should be read exactly (parseJsonExact), so the bundle's sequence is inspected as written.
 * `header` is shown when given: alg and the size of the x5c chain, never the certificates themselves.
 */
export function renderInvitation(
  title: string,
  payload: unknown,
  now: Date,
  header?: Readonly<Record<string, unknown>>,
): InvitationRendering {
  const lines = [title];
  const field = (name: string, value: string) => lines.push(`  ${fieldLabel(name)}${value}`);
  const claims = isRecord(payload) ? payload : {};
  const invitation = isRecord(claims[INVITATION_CLAIM]) ? claims[INVITATION_CLAIM] : {};
  const time = (value: unknown) =>
    typeof value === "number" ? formatMoment(new Date(value * 1000).toISOString(), now) : scalarText(value);

  field("issuer", scalarText(claims.iss));
  field("trust domain", scalarText(invitation.trust_domain));
  field("endpoint url", scalarText(invitation.endpoint_url));
  field("profile", scalarText(invitation.profile));
  if (invitation.endpoint_spiffe_id !== undefined) field("endpoint id", scalarText(invitation.endpoint_spiffe_id));
  if (invitation.note !== undefined) field("note", scalarText(invitation.note));
  field("id", scalarText(claims.jti));
  if (claims.aud !== undefined) {
    field("audience", Array.isArray(claims.aud) ? claims.aud.map(scalarText).join(", ") : scalarText(claims.aud));
  }
  field("issued at", time(claims.iat));
  const expired = typeof claims.exp === "number" && claims.exp * 1000 <= now.getTime();
  field("expires at", `${time(claims.exp)}${expired ? "  EXPIRED" : ""}`);
  if (header !== undefined) {
    const chain = Array.isArray(header.x5c) ? header.x5c.length : 0;
    field(
      "signed with",
      `${scalarText(header.alg)}, by the X509-SVID in x5c (${chain} certificate${chain === 1 ? "" : "s"})`,
    );
  }

  lines.push("", "bundle inside");
  let bundleRefused = true;
  if (invitation.bundle === undefined) {
    lines.push("  (none)");
  } else {
    try {
      const parsed = parseBundle(writeJsonExact(invitation.bundle), "spiffe");
      const inspection = inspectBundle(parsed.bundle, { now, warnings: parsed.warnings });
      for (const line of renderInspection(inspection, "spiffe").trimEnd().split("\n")) {
        lines.push(line === "" ? "" : `  ${line}`);
      }
      bundleRefused = false;
    } catch (error) {
      if (!isBundlegateError(error)) throw error;
      lines.push(`  refused: ${error.code}: ${error.message}`);
    }
  }
  return { text: `${lines.join("\n")}\n`, expired, bundleRefused };
}
