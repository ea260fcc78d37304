/** Builds the `ServedBundle` the bundle endpoint serves, from the SPIFFE model, the way the sources will. */
import { X509Certificate } from "node:crypto";
import type { ServedBundle } from "../../src/sources/types.js";
import { createTrustBundle, type TrustBundle, x509AuthorityFromCertificate } from "../../src/spiffe/bundle.js";
import { canonicalBundleBytes } from "../../src/spiffe/codec.js";
import { bundleDigest } from "../../src/spiffe/digest.js";
import type { Issued } from "./pki.js";

/** The spec's recommended polling default, used when the bundle carries no refresh hint. */
export const DEFAULT_TEST_REFRESH_HINT_SECONDS = 300;

export function servedBundle(bundle: TrustBundle): ServedBundle {
  const digest = bundleDigest(bundle);
  return Object.freeze({
    bundle,
    bytes: canonicalBundleBytes(bundle),
    digest,
    etag: `"${digest}"`,
    sequence: bundle.sequence ?? 0n,
    refreshHintSeconds: bundle.refreshHintSeconds ?? DEFAULT_TEST_REFRESH_HINT_SECONDS,
  });
}

/** A served bundle whose X.509 authorities are the given CAs. */
export function servedBundleOf(
  cas: readonly Issued[],
  metadata: { refreshHintSeconds?: number; sequence?: bigint } = {},
): ServedBundle {
  return servedBundle(
    createTrustBundle({
      x509Authorities: cas.map((ca) => x509AuthorityFromCertificate(new X509Certificate(ca.der))),
      refreshHintSeconds: metadata.refreshHintSeconds,
      sequence: metadata.sequence,
    }),
  );
}
