/** `bundlegate bundle inspect FILE`: read a bundle exactly as the gateway would and say what it holds. */
import { isBundlegateError } from "../../errors.js";
import { serializeSpiffeBundle } from "../../spiffe/codec.js";
import { type BundleInspection, inspectBundle } from "../../spiffe/inspect.js";
import { serializePem } from "../../spiffe/pem.js";
import { type BundleFormat, parseBundle } from "../../spiffe/read.js";
import { readBytes, trustDomainArgument } from "../admin-context.js";
import { type CliIo, EXIT_OK, EXIT_REJECTED } from "../io.js";
import { renderInspection } from "../render-inspection.js";

export interface BundleInspectOptions {
  readonly trustDomain?: string;
  readonly format: BundleFormat | "auto";
  readonly json: boolean;
  readonly canonical?: "spiffe" | "pem";
}

export async function bundleInspect(file: string, options: BundleInspectOptions, io: CliIo): Promise<number> {
  const trustDomain =
    options.trustDomain === undefined ? undefined : trustDomainArgument(options.trustDomain, io, "--trust-domain");
  const bytes = await readBytes(undefined, file, io);

  let parsed: ReturnType<typeof parseBundle>;
  try {
    parsed = parseBundle(bytes, options.format);
  } catch (error) {
    if (!isBundlegateError(error)) throw error;
    if (options.json) io.stdout(`${JSON.stringify({ ok: false, code: error.code, reason: error.message }, null, 2)}\n`);
    io.stderr(`bundle rejected: ${error.code}: ${error.message}\n`);
    return EXIT_REJECTED;
  }

  const inspectOptions = { now: io.now(), warnings: parsed.warnings, ...(trustDomain ? { trustDomain } : {}) };
  const inspection = inspectBundle(parsed.bundle, inspectOptions);
  const canonical =
    options.canonical === "pem"
      ? serializePem(parsed.bundle)
      : options.canonical === "spiffe"
        ? `${serializeSpiffeBundle(parsed.bundle, { indent: 2 })}\n`
        : undefined;

  if (options.json) {
    io.stdout(
      `${JSON.stringify({ ok: inspection.usable, format: parsed.format, ...inspection, ...(canonical ? { canonical } : {}) }, null, 2)}\n`,
    );
  } else {
    io.stdout(renderInspection(inspection, parsed.format));
    if (canonical) io.stdout(`\n${canonical}`);
  }
  if (!inspection.usable) {
    io.stderr(`bundle unusable: WARN_NO_USABLE_AUTHORITIES: ${unusableReason(inspection)}\n`);
    return EXIT_REJECTED;
  }
  return EXIT_OK;
}

function unusableReason(inspection: BundleInspection): string {
  return inspection.authorities.length === 0 ? "the bundle has no authorities" : "no authority is valid now";
}
