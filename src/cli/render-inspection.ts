/** The human-readable form of a bundle inspection. */
import type { BundleInspection } from "../spiffe/inspect.js";

export function renderInspection(inspection: BundleInspection, format: string): string {
  const lines: string[] = [];
  const field = (name: string, value: string) => lines.push(`${`${name}:`.padEnd(15)}${value}`);
  field("bundle", inspection.usable ? "accepted, usable" : "accepted, NOT usable");
  field("format", format);
  if (inspection.trustDomain) field("trust domain", inspection.trustDomain);
  field("digest", `sha256:${inspection.digest}`);
  field("sequence", inspection.sequence ?? "(none)");
  field("refresh hint", inspection.refreshHintSeconds === undefined ? "(none)" : `${inspection.refreshHintSeconds}s`);
  field("authorities", `${inspection.x509AuthorityCount} x509-svid, ${inspection.jwtAuthorityCount} jwt-svid/wit-svid`);
  if (inspection.earliestNotAfter) {
    field("expiry", `earliest ${inspection.earliestNotAfter}, latest ${inspection.latestNotAfter}`);
  }
  for (const [index, authority] of inspection.authorities.entries()) {
    lines.push("");
    const name = authority.keyId === undefined ? "" : ` kid=${authority.keyId}`;
    lines.push(`[${index + 1}] ${authority.use}${name}  ${authority.keyType}  ${authority.status}`);
    lines.push(`    fingerprint  ${authority.fingerprint}`);
    if (authority.subject !== undefined) lines.push(`    subject      ${authority.subject || "(empty)"}`);
    if (authority.notAfter !== undefined)
      lines.push(`    valid        ${authority.notBefore} .. ${authority.notAfter}`);
    if (authority.spiffeIds && authority.spiffeIds.length > 0)
      lines.push(`    spiffe ids   ${authority.spiffeIds.join(", ")}`);
    if (authority.ca !== undefined) lines.push(`    ca           ${authority.ca}, self-signed ${authority.selfSigned}`);
  }
  if (inspection.warnings.length > 0) {
    lines.push("", "warnings:");
    for (const w of inspection.warnings) lines.push(`  ${w.code}: ${w.message}`);
  }
  return `${lines.join("\n")}\n`;
}
