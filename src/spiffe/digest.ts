import { createHash } from "node:crypto";
import type { TrustBundle } from "./bundle.js";
import { canonicalBundleBytes } from "./codec.js";

/** Lowercase hex SHA-256 of the canonical form: equal content, equal digest, on every replica. */
export function bundleDigest(bundle: TrustBundle): string {
  return createHash("sha256").update(canonicalBundleBytes(bundle)).digest("hex");
}
