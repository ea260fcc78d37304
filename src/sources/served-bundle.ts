/** Turns a bundle into what the endpoint serves: canonical bytes, digest and ETag, computed once per change. */
import { createHash } from "node:crypto";
import { type TrustBundle, withMetadata } from "../spiffe/bundle.js";
import { canonicalBundleBytes } from "../spiffe/codec.js";
import type { ServedBundle } from "./types.js";

export function toServedBundle(bundle: TrustBundle, sequence: bigint, refreshHintSeconds: number): ServedBundle {
  const served = withMetadata(bundle, { sequence, refreshHintSeconds });
  const bytes = canonicalBundleBytes(served);
  const digest = createHash("sha256").update(bytes).digest("hex");
  return Object.freeze({ bundle: served, bytes, digest, etag: `"${digest}"`, sequence, refreshHintSeconds });
}

/** The digest of what a bundle says apart from its sequence: equal content, equal digest, whatever number it carries. */
export function contentDigest(bundle: TrustBundle): string {
  const bytes = canonicalBundleBytes(withMetadata(bundle, { sequence: undefined }));
  return createHash("sha256").update(bytes).digest("hex");
}
