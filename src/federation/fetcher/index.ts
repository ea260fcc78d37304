export { FETCH_ERROR_CODES, FetchError, type FetchErrorCode, isFetchError } from "./errors.js";
export {
  type BundleFetcher,
  checkedCaContext,
  createBundleFetcher,
  type FetcherOptions,
  type FetchProfile,
  type FetchRequest,
  type FetchResult,
  type PeerInfo,
} from "./fetcher.js";
export { classifyAddress, createSsrfGuard, type SsrfGuard, type SsrfVerdict } from "./ssrf-guard.js";
