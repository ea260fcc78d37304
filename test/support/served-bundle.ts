/**
 * Builds the `ServedBundle` the bundle endpoint serves, for tests and the benchmark. A thin layer over
 * `src/sources/served-bundle.ts`, so what the tests serve is made exactly as the local bundle source makes it.
 */
import { X509Certificate } from "node:crypto";
import { toServedBundle } from "../../src/sources/served-bundle.js";
import type { ServedBundle } from "../../src/sources/types.js";
import { createTrustBundle, type TrustBundle, x509AuthorityFromCertificate } from "../../src/spiffe/bundle.js";
import type { Issued } from "./pki.js";

/** The spec's recommended polling default, used when the bundle carries no refresh hint. */
export const DEFAULT_TEST_REFRESH_HINT_SECONDS = 300;

/** Serves `bundle` with its own sequence (0 when it has none) and refresh hint (300 s when it has none). */
export function servedBundle(bundle: TrustBundle): ServedBundle {
  return toServedBundle(bundle, bundle.sequence ?? 0n, bundle.refreshHintSeconds ?? DEFAULT_TEST_REFRESH_HINT_SECONDS);
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
