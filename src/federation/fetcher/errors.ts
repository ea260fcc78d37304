/**
 * Why one fetch of a partner bundle endpoint failed. Each code names one failure, and the same string is
 * the `result` label of the fetch metric, so the set is closed and listed in FETCH_ERROR_CODES.
 */
import { BundlegateError, type BundlegateErrorOptions } from "../../errors.js";

export const FETCH_ERROR_CODES = [
  /** The URL (configured or a redirect target) is not an https URL without userinfo and fragment. */
  "ERR_FETCH_URL_INVALID",
  /** A redirect pointed at a plain http URL. */
  "ERR_FETCH_REDIRECT_INSECURE",
  /** More redirects than `maxRedirects`. */
  "ERR_FETCH_TOO_MANY_REDIRECTS",
  /** A status other than 200 (or 304 after If-None-Match), or a redirect without a Location. */
  "ERR_FETCH_STATUS",
  /** A Content-Encoding other than identity. */
  "ERR_FETCH_ENCODING",
  /** The body is over `maxBytes` (announced or counted). */
  "ERR_FETCH_TOO_LARGE",
  /** The connection ended before the whole body arrived. */
  "ERR_FETCH_TRUNCATED",
  /** The server's reply is not parseable HTTP/1.1. */
  "ERR_FETCH_PROTOCOL",
  /** Name resolution, TCP, proxy CONNECT and TLS handshake took longer than `connectTimeoutMs`. */
  "ERR_FETCH_CONNECT_TIMEOUT",
  /** No response headers within `headersTimeoutMs` of the request being sent. */
  "ERR_FETCH_HEADERS_TIMEOUT",
  /** The whole fetch, redirects and body included, took longer than `totalTimeoutMs`. */
  "ERR_FETCH_TIMEOUT",
  /** The caller's AbortSignal fired. */
  "ERR_FETCH_ABORTED",
  /** https_web: the certificate chain does not lead to a trusted root. */
  "ERR_FETCH_TLS_UNTRUSTED",
  /** https_web: the certificate does not name the URL's host. */
  "ERR_FETCH_TLS_HOSTNAME",
  /** https_web: a certificate of the chain is expired or not yet valid. */
  "ERR_FETCH_TLS_EXPIRED",
  /** Any other TLS handshake failure (protocol version, alert, connection closed mid-handshake). */
  "ERR_FETCH_TLS",
  /** https_spiffe: the X509-SVID does not chain to an X.509 authority of the given bundle. */
  "ERR_FETCH_SVID_UNTRUSTED",
  /** https_spiffe: the X509-SVID carries another SPIFFE ID than the endpoint SPIFFE ID. */
  "ERR_FETCH_SVID_WRONG_ID",
  /** https_spiffe: the server certificate is not an X509-SVID (a CA, no or several URI SANs, not a SPIFFE ID). */
  "ERR_FETCH_SVID_INVALID",
  /** https_spiffe: the X509-SVID is expired or not yet valid at `now()`. */
  "ERR_FETCH_SVID_EXPIRED",
  /** The address to connect to is loopback, private, link-local, metadata or otherwise special-purpose. */
  "ERR_FETCH_SSRF_BLOCKED",
  /** The host name does not resolve. */
  "ERR_FETCH_DNS",
  /** The connection was refused, reset or the host unreachable. */
  "ERR_FETCH_CONNECT",
  /** The proxy is unreachable or refused the CONNECT (407, 403, 5xx). */
  "ERR_FETCH_PROXY",
  /** The request's own settings are unusable: a bad CIDR, proxy URL, CA PEM, endpoint SPIFFE ID or header. */
  "ERR_FETCH_CONFIG",
  /** Something the fetcher did not expect; a bug, reported rather than disguised as a network failure. */
  "ERR_FETCH_INTERNAL",
] as const;

export type FetchErrorCode = (typeof FETCH_ERROR_CODES)[number];

export class FetchError extends BundlegateError<FetchErrorCode> {
  constructor(code: FetchErrorCode, message: string, options: BundlegateErrorOptions = {}) {
    // A partner endpoint failing is an upstream failure of ours: 502. Messages name hosts and addresses
    // of the internal network, so they stay hidden from API callers unless the API decides otherwise.
    super(code, message, { status: code === "ERR_FETCH_CONFIG" ? 500 : 502, expose: false, ...options });
  }
}

export function isFetchError(value: unknown): value is FetchError {
  return value instanceof FetchError;
}
