/**
 * TLS parameters of the public bundle endpoint.
 *
 * The federation spec (section 5) requires bundle endpoint servers to follow Mozilla's "intermediate"
 * compatibility profile, and forbids client authentication. Both profiles (`https_web`, `https_spiffe`)
 * use these same parameters; they differ only in the certificate they present.
 */
import { createSecureContext, type SecureContext, type SecureContextOptions } from "node:tls";
import { BundlegateError } from "../errors.js";
import type { TlsCredentials } from "../sources/types.js";

export const TLS_MIN_VERSION = "TLSv1.2";

/**
 * Mozilla intermediate, TLS 1.2 part, with forward secrecy and AEAD only. Mozilla also lists three DHE-RSA
 * suites, which need ffdhe2048 parameters configured on the server; the clients that profile targets all
 * offer ECDHE suites too, so they are left out rather than served with ad-hoc parameters.
 */
export const TLS12_CIPHERS: readonly string[] = [
  "ECDHE-ECDSA-AES128-GCM-SHA256",
  "ECDHE-RSA-AES128-GCM-SHA256",
  "ECDHE-ECDSA-AES256-GCM-SHA384",
  "ECDHE-RSA-AES256-GCM-SHA384",
  "ECDHE-ECDSA-CHACHA20-POLY1305",
  "ECDHE-RSA-CHACHA20-POLY1305",
];

/** Listed explicitly so the TLS 1.3 suites do not silently follow OpenSSL's or Node's defaults. */
export const TLS13_CIPHER_SUITES: readonly string[] = [
  "TLS_AES_128_GCM_SHA256",
  "TLS_AES_256_GCM_SHA384",
  "TLS_CHACHA20_POLY1305_SHA256",
];

export const ECDH_CURVES = "X25519:prime256v1:secp384r1";

/** Everything but the certificate: what both the server constructor and every reload are given. */
export interface EndpointTlsParameters {
  readonly minVersion: "TLSv1.2";
  readonly ciphers: string;
  readonly ecdhCurve: string;
  /** Mozilla intermediate: every listed suite is strong, so the client picks what suits its hardware. */
  readonly honorCipherOrder: false;
  /** The spec forbids client authentication at the bundle endpoint. */
  readonly requestCert: false;
}

export const ENDPOINT_TLS_PARAMETERS: EndpointTlsParameters = Object.freeze({
  minVersion: TLS_MIN_VERSION,
  ciphers: [...TLS13_CIPHER_SUITES, ...TLS12_CIPHERS].join(":"),
  ecdhCurve: ECDH_CURVES,
  honorCipherOrder: false,
  requestCert: false,
});

/**
 * The complete option set for `tls.createSecureContext` and `server.setSecureContext`. It must be complete:
 * `setSecureContext` resets every option it is not given (honorCipherOrder even defaults back to true).
 */
export function endpointSecureContextOptions(credentials: TlsCredentials): SecureContextOptions {
  return {
    minVersion: ENDPOINT_TLS_PARAMETERS.minVersion,
    ciphers: ENDPOINT_TLS_PARAMETERS.ciphers,
    ecdhCurve: ENDPOINT_TLS_PARAMETERS.ecdhCurve,
    honorCipherOrder: ENDPOINT_TLS_PARAMETERS.honorCipherOrder,
    cert: credentials.certPem,
    key: credentials.keyPem,
  };
}

/**
 * Builds the secure context Node would use for these credentials, so a pair OpenSSL refuses (unparsable
 * PEM, a key that does not belong to the certificate) is found before it replaces a working one.
 * Throws `ERR_TLS_CONTEXT` with OpenSSL's error as the cause.
 */
export function createEndpointSecureContext(credentials: TlsCredentials): SecureContext {
  try {
    return createSecureContext(endpointSecureContextOptions(credentials));
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    throw new BundlegateError("ERR_TLS_CONTEXT", `TLS refused the certificate and key: ${reason}`, {
      cause: error,
      status: 500,
      details: { fingerprint: credentials.fingerprint },
    });
  }
}
