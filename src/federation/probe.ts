import { lookup as dnsLookup } from "node:dns";
import { isIP } from "node:net";
import { performance } from "node:perf_hooks";
import { BundlegateError, type BundlegateErrorOptions, isBundlegateError } from "../errors.js";
import { type AuthorityIndex, EMPTY_AUTHORITY_INDEX } from "../policy/authority-index.js";
import { decideBundle } from "../policy/decide.js";
import { DEFAULT_TRUST_POLICY, type DecisionKind, type DecisionReason, type TrustPolicy } from "../policy/types.js";
import type { TrustBundle } from "../spiffe/bundle.js";
import { type BundleReadLimits, parseSpiffeBundle } from "../spiffe/codec.js";
import { isSpiffeId, parseSpiffeId, parseTrustDomain, type TrustDomain } from "../spiffe/id.js";
import { type BundleInspection, inspectBundle } from "../spiffe/inspect.js";
import { detectBundleFormat } from "../spiffe/read.js";
import { connectDirect, type DnsLookup, type TlsPolicy } from "./fetcher/connection.js";
import {
  type BundleFetcher,
  checkedCaContext,
  createSsrfGuard,
  FetchError,
  type FetchProfile,
  type FetchRequest,
  type PeerInfo,
} from "./fetcher/index.js";
import { chooseProxy, parseProxyUrl } from "./fetcher/proxy.js";
import { hostOf, parseEndpointUrl, portOf } from "./fetcher/url.js";

export type ProbeProfile = "https_web" | "https_spiffe";

export const PROBE_PROFILES: readonly ProbeProfile[] = ["https_web", "https_spiffe"];

export interface ProbeInput {
  readonly url: string;
  /** Whose bundle the endpoint serves. */
  readonly trustDomain: string;
  readonly profile: ProbeProfile;
  /** https_spiffe: the SPIFFE ID the endpoint's X509-SVID must carry. */
  readonly endpointSpiffeId?: string;
  /** https_spiffe: the bundle of the endpoint ID's trust domain; the SVID must chain to its X.509 authorities. */
  readonly bundle?: TrustBundle;
  /** https_web: PEM CA certificates to trust instead of the system roots. */
  readonly caPem?: string;
  /** The last-known-good to decide against; absent decides the fetched bundle as a first bundle. */
  readonly previous?: TrustBundle;
  /** A proxy URL or "direct"; absent follows the fetcher's HTTPS_PROXY/NO_PROXY. */
  readonly proxy?: string;
  readonly allowedCidrs?: readonly string[];
  /** Defaults to DEFAULT_TRUST_POLICY. */
  readonly policy?: TrustPolicy;
  /** Who else holds which authority; empty by default, so the decision sees only the previous bundle. */
  readonly ownAuthorities?: AuthorityIndex;
  readonly otherPartnerAuthorities?: AuthorityIndex;
  readonly limits?: BundleReadLimits;
}

/** Describes what a server presents on a handshake that trusts nothing; undefined when that cannot be learnt. */
export type PeerDiagnosis = (target: {
  readonly url: string;
  readonly allowedCidrs: readonly string[];
  readonly proxy?: string | undefined;
}) => Promise<PeerInfo | undefined>;

export interface ProbeDependencies {
  readonly fetcher: Pick<BundleFetcher, "fetch">;
  /** Bundle inspection and the decision are judged at this moment. */
  readonly now: Date;
  /** Without it, TLS failures get the hints that need no look at the presented certificate. */
  readonly diagnose?: PeerDiagnosis;
}

export interface ProbeError {
  readonly code: string;
  readonly message: string;
  readonly hint?: string;
}

export interface ProbeDecision {
  readonly kind: DecisionKind;
  /** The deciding reason first. */
  readonly reasons: readonly DecisionReason[];
  /** "previous" when decided against a given previous bundle, "none" when decided as a first bundle. */
  readonly against: "previous" | "none";
}

export interface ProbeReport {
  /** Fetched, a valid bundle with a usable authority, and a decision other than reject. */
  readonly ok: boolean;
  readonly url: string;
  readonly trustDomain: string;
  readonly profile: ProbeProfile;
  readonly endpointSpiffeId?: string;
  /** Where the bundle came from, or the URL of the hop that failed. */
  readonly finalUrl?: string;
  readonly redirects: readonly string[];
  readonly durationMs: number;
  /** The verified peer the bundle came from. */
  readonly peer?: PeerInfo;
  /** What the server presented on the diagnostic handshake after a TLS failure: unverified, for the hint only. */
  readonly presentedPeer?: PeerInfo;
  readonly inspection?: BundleInspection;
  readonly decision?: ProbeDecision;
  readonly error?: ProbeError;
}

export type ProbeErrorCode =
  /** The probe's input is unusable (bad trust domain, missing endpoint ID, --ca with https_spiffe, ...). */
  | "ERR_PROBE_USAGE"
  /** The bundle was read but no authority in it is valid now. */
  | "ERR_PROBE_UNUSABLE"
  /** The trust policy rejects the bundle against the previous one. */
  | "ERR_PROBE_REJECTED";

export class ProbeUsageError extends BundlegateError<"ERR_PROBE_USAGE"> {
  /** The input field at fault, as ProbeInput names it. */
  readonly field: keyof ProbeInput;

  constructor(field: keyof ProbeInput, message: string, options: BundlegateErrorOptions = {}) {
    super("ERR_PROBE_USAGE", message, {
      status: 400,
      expose: true,
      ...options,
      details: { field, ...options.details },
    });
    this.field = field;
  }
}

export function isProbeUsageError(value: unknown): value is ProbeUsageError {
  return value instanceof ProbeUsageError;
}

interface CheckedInput {
  readonly trustDomain: TrustDomain;
  readonly profile: FetchProfile;
  readonly allowedCidrs: readonly string[];
}

/** Throws ProbeUsageError naming the first unusable field; nothing is fetched for an unusable probe. */
export function checkProbeInput(input: ProbeInput): CheckedInput {
  const usage = (field: keyof ProbeInput, message: string, cause?: unknown): ProbeUsageError =>
    new ProbeUsageError(field, message, {
      ...(cause === undefined ? {} : { cause }),
      ...(isBundlegateError(cause) ? { details: { cause: cause.code } } : {}),
    });
  const reason = (error: unknown) => (error instanceof Error ? error.message : String(error));

  try {
    parseEndpointUrl(input.url);
  } catch (error) {
    throw usage("url", reason(error), error);
  }
  let trustDomain: TrustDomain;
  try {
    trustDomain = parseTrustDomain(input.trustDomain);
  } catch (error) {
    throw usage("trustDomain", reason(error), error);
  }
  if (!PROBE_PROFILES.includes(input.profile)) {
    throw usage("profile", `profile must be https_web or https_spiffe, got ${JSON.stringify(input.profile)}`);
  }

  let profile: FetchProfile;
  if (input.profile === "https_spiffe") {
    if (input.caPem !== undefined) {
      throw usage("caPem", "a CA file is for https_web only; https_spiffe verifies the endpoint against the bundle");
    }
    if (input.endpointSpiffeId === undefined) {
      throw usage("endpointSpiffeId", "https_spiffe needs the endpoint SPIFFE ID the server's X509-SVID must carry");
    }
    try {
      parseSpiffeId(input.endpointSpiffeId);
    } catch (error) {
      throw usage("endpointSpiffeId", reason(error), error);
    }
    if (parseSpiffeId(input.endpointSpiffeId).path === "") {
      throw usage(
        "endpointSpiffeId",
        `${input.endpointSpiffeId} names a trust domain, not a workload; an X509-SVID's SPIFFE ID has a path`,
      );
    }
    if (input.bundle === undefined) {
      throw usage("bundle", "https_spiffe needs the bundle of the endpoint ID's trust domain to verify the X509-SVID");
    }
    if (input.bundle.x509Authorities.length === 0) {
      throw usage("bundle", "the bundle has no X.509 authority, so no X509-SVID can chain to it");
    }
    profile = { kind: "https_spiffe", endpointSpiffeId: input.endpointSpiffeId, authorities: input.bundle };
  } else {
    if (input.endpointSpiffeId !== undefined) {
      throw usage("endpointSpiffeId", "an endpoint SPIFFE ID is for https_spiffe only; https_web checks the host name");
    }
    if (input.bundle !== undefined) {
      throw usage("bundle", "a bundle to verify the endpoint with is for https_spiffe only; https_web uses a CA file");
    }
    if (input.caPem !== undefined) checkCaPem(input.caPem, (message, cause) => usage("caPem", message, cause));
    profile = { kind: "https_web", ...(input.caPem === undefined ? {} : { caPem: input.caPem }) };
  }

  const allowedCidrs = input.allowedCidrs ?? [];
  try {
    createSsrfGuard(allowedCidrs);
  } catch (error) {
    throw usage("allowedCidrs", reason(error), error);
  }
  const proxy = input.proxy?.trim();
  if (proxy !== undefined && proxy !== "" && proxy.toLowerCase() !== "direct") {
    try {
      parseProxyUrl(proxy, "request");
    } catch (error) {
      throw usage("proxy", reason(error), error);
    }
  }
  return { trustDomain, profile, allowedCidrs };
}

function checkCaPem(pem: string, fail: (message: string, cause?: unknown) => Error): void {
  // The fetcher's own check, so the probe refuses exactly the CA files a fetch would.
  try {
    checkedCaContext(pem);
  } catch (error) {
    const reason = (error as { cause?: unknown }).cause;
    throw fail(
      `the CA file holds no readable certificate: ${reason instanceof Error ? reason.message : "unreadable"}`,
      error,
    );
  }
}

export async function probeEndpoint(input: ProbeInput, deps: ProbeDependencies): Promise<ProbeReport> {
  const checked = checkProbeInput(input);
  const base = {
    url: input.url,
    trustDomain: checked.trustDomain as string,
    profile: input.profile,
    ...(input.endpointSpiffeId === undefined ? {} : { endpointSpiffeId: input.endpointSpiffeId }),
  };
  const request: FetchRequest = {
    url: input.url,
    profile: checked.profile,
    allowedCidrs: checked.allowedCidrs,
    ...(input.proxy === undefined ? {} : { proxy: input.proxy }),
  };

  const started = performance.now();
  let fetched: Awaited<ReturnType<BundleFetcher["fetch"]>>;
  try {
    fetched = await deps.fetcher.fetch(request);
  } catch (error) {
    const durationMs = Math.round(performance.now() - started);
    // The fetcher wraps every failure it knows; anything else is a bug and must not pass for a partner's fault.
    if (!isBundlegateError(error)) throw error;
    const failedAt = stringDetail(error, "url") ?? input.url;
    const presentedPeer =
      deps.diagnose !== undefined && WANTS_DIAGNOSIS.has(error.code)
        ? await deps.diagnose({ url: failedAt, allowedCidrs: checked.allowedCidrs, proxy: input.proxy })
        : undefined;
    return {
      ok: false,
      ...base,
      finalUrl: failedAt,
      redirects: stringsDetail(error, "redirects"),
      durationMs,
      ...(presentedPeer === undefined ? {} : { presentedPeer }),
      error: withHint(error, fetchHint(error, { input, failedAt, presented: presentedPeer })),
    };
  }

  const fetchedPart = {
    ...base,
    finalUrl: fetched.url,
    redirects: fetched.redirects,
    durationMs: fetched.durationMs,
    peer: fetched.peer,
  };
  if (fetched.kind !== "bundle") {
    // The probe never sends If-None-Match, so a 304 is the fetcher answering something it was not asked.
    return {
      ok: false,
      ...fetchedPart,
      error: {
        code: "ERR_FETCH_INTERNAL",
        message: "the fetcher reported not-modified for an unconditional request",
        hint: "this is a bundlegate bug: please report it with this output",
      },
    };
  }

  let parsed: ReturnType<typeof parseSpiffeBundle>;
  try {
    parsed = parseSpiffeBundle(fetched.body, input.limits ?? {});
  } catch (error) {
    if (!isBundlegateError(error)) throw error;
    return { ok: false, ...fetchedPart, error: withHint(error, bundleHint(error, fetched.body)) };
  }

  const inspection = inspectBundle(parsed.bundle, {
    now: deps.now,
    trustDomain: checked.trustDomain,
    warnings: parsed.warnings,
  });
  const decided = decideBundle({
    candidate: parsed.bundle,
    lastKnownGood: input.previous,
    ownAuthorities: input.ownAuthorities ?? EMPTY_AUTHORITY_INDEX,
    otherPartnerAuthorities: input.otherPartnerAuthorities ?? EMPTY_AUTHORITY_INDEX,
    partner: checked.trustDomain,
    policy: input.policy ?? DEFAULT_TRUST_POLICY,
    now: deps.now,
  });
  // The diff holds key material as bytes; the reasons already say what changed, in JSON-safe terms.
  const decision: ProbeDecision = {
    kind: decided.kind,
    reasons: decided.reasons,
    against: input.previous === undefined ? "none" : "previous",
  };

  let error: ProbeError | undefined;
  if (decision.kind === "reject") {
    error = rejectedError(decision);
  } else if (!inspection.usable) {
    error = unusableError(inspection);
  }
  return { ok: error === undefined, ...fetchedPart, inspection, decision, ...(error === undefined ? {} : { error }) };
}

// ---------------------------------------------------------------------------------------------------------
// The diagnostic handshake

export interface PeerDiagnosisOptions {
  readonly connectTimeoutMs: number;
  /** The same proxy settings the fetcher has: a proxied fetch is never diagnosed by a direct connection. */
  readonly httpsProxy?: string | undefined;
  readonly noProxy?: string | undefined;
  readonly lookup?: DnsLookup;
}

export function createPeerDiagnosis(options: PeerDiagnosisOptions): PeerDiagnosis {
  const lookup = options.lookup ?? dnsLookup;
  return async (target) => {
    let url: URL;
    try {
      url = parseEndpointUrl(target.url);
      // Going around the operator's proxy would open a path the fetch itself never takes.
      const choice = chooseProxy(url, {
        requestProxy: target.proxy,
        httpsProxy: options.httpsProxy,
        noProxy: options.noProxy,
      });
      if (choice.kind === "proxy") return undefined;
    } catch {
      return undefined;
    }
    const host = hostOf(url);
    const policy: TlsPolicy = {
      options: {
        host,
        ...(isIP(host) === 0 ? { servername: host } : {}),
        minVersion: "TLSv1.2",
        ALPNProtocols: ["http/1.1"],
        // Diagnosis only: the handshake is completed to read the certificate, which is described and never trusted.
        rejectUnauthorized: false,
        checkServerIdentity: () => undefined,
      },
      verify: () => undefined,
    };
    const aborter = new AbortController();
    const timer = setTimeout(
      () => aborter.abort(new FetchError("ERR_FETCH_CONNECT_TIMEOUT", "diagnostic handshake timed out")),
      options.connectTimeoutMs,
    );
    try {
      // connectDirect applies the SSRF guard to the connected address, exactly as the fetch did.
      const connected = await connectDirect({
        host,
        port: portOf(url),
        policy,
        guard: createSsrfGuard(target.allowedCidrs),
        lookup,
        context: { signal: aborter.signal, onPhase: () => undefined, details: { url: url.href, diagnostic: true } },
      });
      // No request byte is ever sent over this connection.
      connected.socket.destroy();
      return connected.peer;
    } catch {
      return undefined;
    } finally {
      clearTimeout(timer);
    }
  };
}

/** Failures where what the server presented decides the hint. */
const WANTS_DIAGNOSIS: ReadonlySet<string> = new Set([
  "ERR_FETCH_TLS_UNTRUSTED",
  "ERR_FETCH_TLS_HOSTNAME",
  "ERR_FETCH_TLS_EXPIRED",
  "ERR_FETCH_SVID_UNTRUSTED",
  "ERR_FETCH_SVID_WRONG_ID",
  "ERR_FETCH_SVID_INVALID",
  "ERR_FETCH_SVID_EXPIRED",
]);

// ---------------------------------------------------------------------------------------------------------
// Hints

interface HintContext {
  readonly input: ProbeInput;
  readonly failedAt: string;
  readonly presented: PeerInfo | undefined;
}

function withHint(error: BundlegateError, hint: string | undefined): ProbeError {
  return { code: error.code, message: error.message, ...(hint === undefined ? {} : { hint }) };
}

function stringDetail(error: BundlegateError, key: string): string | undefined {
  const value = error.details[key];
  return typeof value === "string" ? value : undefined;
}

function numberDetail(error: BundlegateError, key: string): number | undefined {
  const value = error.details[key];
  return typeof value === "number" ? value : undefined;
}

function stringsDetail(error: BundlegateError, key: string): string[] {
  const value = error.details[key];
  return Array.isArray(value) ? value.filter((entry): entry is string => typeof entry === "string") : [];
}

/** "https_spiffe", with the flags to type, when the certificate carries a SPIFFE ID. */
function spiffeSuggestion(peer: PeerInfo | undefined): string | undefined {
  const id = peer?.uriSans.find(isSpiffeId);
  if (id === undefined) return undefined;
  const trustDomain = parseSpiffeId(id).trustDomain;
  return (
    `the endpoint presents a SPIFFE ID (${id}): did you mean --profile https_spiffe --endpoint-id ${id}` +
    ` --bundle FILE (with FILE the bundle of ${trustDomain})?`
  );
}

function chainText(peer: PeerInfo | undefined): string {
  if (peer === undefined || peer.chain.length === 0) return "";
  const subjects = peer.chain.map((entry) => JSON.stringify(entry.subject || "(empty subject)"));
  return ` (presented: ${subjects.join(" <- ")})`;
}

const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

function fetchHint(error: BundlegateError, context: HintContext): string | undefined {
  const { presented } = context;
  let target: URL | undefined;
  try {
    target = new URL(context.failedAt);
  } catch {
    target = undefined;
  }
  const host = stringDetail(error, "host") ?? (target ? hostOf(target) : "the host");
  const hostPort = target ? `${hostOf(target)}:${portOf(target)}` : "the endpoint";
  const tlsError = stringDetail(error, "tlsError");
  const errno = stringDetail(error, "errno");
  const timeoutMs = numberDetail(error, "timeoutMs");

  switch (error.code) {
    case "ERR_FETCH_URL_INVALID": {
      const location = stringDetail(error, "location");
      const why = stringDetail(error, "reason") ?? "not an https URL";
      return location === undefined
        ? `a bundle endpoint URL is https, without userinfo or fragment (${why})`
        : `the endpoint redirected to ${JSON.stringify(location)}, which is not a bundle endpoint URL (${why}): ` +
            "ask the partner to fix the redirect, or probe the intended URL directly";
    }
    case "ERR_FETCH_REDIRECT_INSECURE":
      return (
        `the endpoint redirects to plain http (${stringDetail(error, "target") ?? "an http URL"}); bundles are only ` +
        "fetched over https: probe the https URL directly, or ask the partner to redirect to https"
      );
    case "ERR_FETCH_TOO_MANY_REDIRECTS": {
      const redirects = stringsDetail(error, "redirects");
      const looping = new Set(redirects).size < redirects.length || redirects.includes(context.input.url);
      return looping
        ? `the redirects go round in a loop (${redirects.join(" -> ")}): the partner's server is misconfigured`
        : `too many redirects (${redirects.join(" -> ")}): probe the last URL directly, and configure that one`;
    }
    case "ERR_FETCH_STATUS":
      return statusHint(numberDetail(error, "status"), target);
    case "ERR_FETCH_ENCODING":
      return (
        `the answer is compressed (${stringDetail(error, "encoding") ?? "?"}) although bundlegate asks for identity ` +
        "encoding: the partner's server, or a proxy in between, must serve the bundle uncompressed"
      );
    case "ERR_FETCH_TOO_LARGE":
      return (
        `the body is over the ${numberDetail(error, "limit") ?? "size"}-byte cap, and a bundle is usually a few KiB: ` +
        "check that the URL is the bundle endpoint and not a web page or a download"
      );
    case "ERR_FETCH_TRUNCATED":
      return (
        "the connection closed before the whole body arrived: the server, or a proxy or load balancer in between " +
        "(an idle timeout?), cut it; try again"
      );
    case "ERR_FETCH_PROTOCOL":
      return `${hostPort} does not answer with HTTP/1.1 over TLS: check the port`;
    case "ERR_FETCH_CONNECT_TIMEOUT":
      return connectTimeoutHint(stringDetail(error, "phase"), host, hostPort, timeoutMs);
    case "ERR_FETCH_HEADERS_TIMEOUT":
      return (
        `the request was sent but no response headers came within ${timeoutMs ?? "the"} ms: the server is hung or ` +
        "overloaded; try again, and tell the partner if it persists"
      );
    case "ERR_FETCH_TIMEOUT":
      return (
        `the whole fetch took longer than ${timeoutMs ?? "the"} ms: the server sends very slowly (or the redirects ` +
        "are slow); raise --timeout-ms only if this partner is known to be that slow"
      );
    case "ERR_FETCH_ABORTED":
      return "the probe was cancelled before it finished";
    case "ERR_FETCH_TLS_UNTRUSTED":
      return (
        spiffeSuggestion(presented) ??
        (context.input.caPem === undefined
          ? `the server's certificate chain does not lead to a system root${chainText(presented)}: if the partner ` +
            "uses a private CA, pass that CA with --ca FILE"
          : `the server's certificate chain does not lead to a CA of --ca${chainText(presented)}: is that file the ` +
            "CA that issues the partner's endpoint certificate?")
      );
    case "ERR_FETCH_TLS_HOSTNAME": {
      const suggestion = spiffeSuggestion(presented);
      if (suggestion !== undefined) return suggestion;
      const names = presented?.dnsSans ?? [];
      const named = names.length === 0 ? "names no DNS host" : `names ${names.join(", ")}`;
      const wanted = target ? hostOf(target) : host;
      return presented === undefined
        ? `the server's certificate does not name ${wanted}: use the host name the certificate was issued for`
        : `the server's certificate ${named}, not ${wanted}: probe a URL with one of those names, or ask the ` +
            `partner to add ${wanted} to the certificate`;
    }
    case "ERR_FETCH_TLS_EXPIRED": {
      const leaf = presented === undefined ? "" : ` (the leaf's notAfter is ${presented.notAfter})`;
      return tlsError === "CERT_NOT_YET_VALID"
        ? `a certificate the server presents is not valid yet${leaf}: check this machine's clock, or the partner ` +
            "issued it with a start date in the future"
        : `a certificate the server presents has expired${leaf}: the partner must renew it (if the date looks ` +
            "wrong, check this machine's clock)";
    }
    case "ERR_FETCH_TLS":
      return (
        `the TLS handshake with ${hostPort} failed${tlsError === undefined ? "" : ` (${tlsError})`}: check that the ` +
        "port speaks TLS 1.2 or newer (a plain-HTTP port, or a server that demands a client certificate, fails " +
        "this way)"
      );
    case "ERR_FETCH_SVID_UNTRUSTED":
      return (
        "the SVID does not chain to the bundle given with --bundle: is it the partner's current bundle?" +
        chainText(presented)
      );
    case "ERR_FETCH_SVID_WRONG_ID": {
      const presentedId = stringDetail(error, "uri") ?? presented?.uriSans[0];
      if (presentedId === undefined) return "the endpoint's X509-SVID carries another SPIFFE ID than --endpoint-id";
      return (
        `the endpoint presents ${presentedId}, not ${context.input.endpointSpiffeId ?? "the expected ID"}: ` +
        `if ${presentedId} is the partner's bundle endpoint, pass --endpoint-id ${presentedId}`
      );
    }
    case "ERR_FETCH_SVID_INVALID":
      return svidInvalidHint(error, presented);
    case "ERR_FETCH_SVID_EXPIRED": {
      const notAfter = stringDetail(error, "notAfter") ?? presented?.notAfter;
      return stringDetail(error, "check") === "ERR_TLS_CERT_NOT_YET_VALID"
        ? `the endpoint's X509-SVID is not valid yet (from ${stringDetail(error, "notBefore") ?? "?"}): check this ` +
            "machine's clock"
        : `the endpoint's X509-SVID expired${notAfter === undefined ? "" : ` at ${notAfter}`}: SVIDs are short-lived ` +
            "and rotated automatically, so the partner's rotation has stalled (or this machine's clock is off)";
    }
    case "ERR_FETCH_SSRF_BLOCKED":
      return ssrfHint(error, host);
    case "ERR_FETCH_DNS":
      return errno === "EAI_AGAIN"
        ? `the resolver did not answer for ${host}: check this machine's DNS, then try again`
        : `${host} does not resolve${errno === undefined ? "" : ` (${errno})`}: check the spelling; a name only the ` +
            "partner's internal DNS knows cannot be fetched from here";
    case "ERR_FETCH_CONNECT":
      return connectHint(errno, host, hostPort);
    case "ERR_FETCH_PROXY": {
      const proxy = stringDetail(error, "proxy") ?? "the proxy";
      const status = numberDetail(error, "proxyStatus");
      const what =
        status === 407
          ? `${proxy} wants credentials (407): put them in the proxy URL`
          : status === undefined
            ? `${proxy} cannot be reached: check HTTPS_PROXY or --proxy`
            : `${proxy} refused the tunnel to ${hostPort} (${status}): check that its rules allow this host`;
      return `${what}; to skip the proxy, pass --proxy direct or add the host to NO_PROXY`;
    }
    case "ERR_FETCH_CONFIG":
      return "a setting is unusable: check --ca, --proxy, --allow-cidr, HTTPS_PROXY and NO_PROXY";
    case "ERR_FETCH_INTERNAL":
      return "this is a bundlegate bug: please report it with this output";
    default:
      return undefined;
  }
}

function statusHint(status: number | undefined, target: URL | undefined): string {
  const path = target?.pathname ?? "the path";
  if (status === undefined) return "the endpoint answered without a bundle";
  if (REDIRECT_STATUSES.has(status))
    return `a ${status} redirect without a Location header: the partner's server is misconfigured`;
  if (status === 404 || status === 410) {
    return `nothing is served at ${path} (${status}): check the URL's path with the partner (SPIRE serves its bundle at /)`;
  }
  if (status === 401 || status === 403) {
    return (
      `the endpoint refuses this client (${status}), but a bundle endpoint serves anyone without credentials: check ` +
      "the URL, or an allow-list or firewall in front of the endpoint"
    );
  }
  if (status === 405) return "the URL does not accept GET (405): it is probably not a bundle endpoint";
  if (status === 407) return "a proxy wants credentials (407): put them in the proxy URL (http://user:pass@host:port)";
  if (status === 429) return "the endpoint rate-limits this client (429): try again later";
  if (status === 304) return "304 Not Modified to an unconditional request: the server or a cache in between is broken";
  if (status === 502 || status === 503 || status === 504) {
    return (
      `a gateway or load balancer in front of the endpoint answered ${status}: the partner's bundle server is down ` +
      "or unreachable from it; try again later and tell the partner"
    );
  }
  if (status >= 500) return `the partner's server failed (${status}): try again later and tell the partner`;
  if (status >= 200 && status < 300) return `only 200 carries a bundle, and the endpoint answered ${status}`;
  return `the endpoint refused the request (${status}): check the URL with the partner`;
}

function connectTimeoutHint(phase: string | undefined, host: string, hostPort: string, timeoutMs?: number): string {
  const within = timeoutMs === undefined ? "in time" : `within ${timeoutMs} ms`;
  switch (phase) {
    case "dns":
      return `resolving ${host} did not finish ${within}: check this machine's DNS resolver`;
    case "proxy":
      return `the proxy did not open a tunnel to ${hostPort} ${within}: check HTTPS_PROXY or --proxy`;
    case "tls":
      return `TCP connected but the TLS handshake did not finish ${within}: is ${hostPort} a TLS port?`;
    default:
      return `no TCP connection to ${hostPort} ${within}: a firewall probably drops the packets, or the port is wrong`;
  }
}

function connectHint(errno: string | undefined, host: string, hostPort: string): string {
  switch (errno) {
    case "ECONNREFUSED":
      return `nothing accepts connections at ${hostPort}: check the port, and that the partner's server is running`;
    case "ECONNRESET":
    case "EPIPE":
      return `${hostPort} dropped the connection: a firewall, or a service on that port that is not TLS`;
    case "EHOSTUNREACH":
    case "ENETUNREACH":
    case "ETIMEDOUT":
      return `no route to ${host} (${errno}): a network or firewall problem between here and the partner`;
    default:
      return `could not connect to ${hostPort}${errno === undefined ? "" : ` (${errno})`}: check the host and port`;
  }
}

function ssrfHint(error: BundlegateError, host: string): string {
  const address = stringDetail(error, "address") ?? host;
  const range = stringDetail(error, "range") ?? "special-purpose";
  const embedded = stringDetail(error, "embedded");
  const where = isIP(host) !== 0 ? address : `${host} resolves to ${address}`;
  if (range === "metadata") {
    return (
      `${where}, a cloud metadata service address: a bundle endpoint never lives there; check the URL and the DNS ` +
      "name (never allow this address)"
    );
  }
  const allow = embedded ?? address;
  const cidr = `${allow}/${isIP(allow) === 6 ? 128 : 32}`;
  return (
    `${where}, a ${range} address, which bundlegate refuses by default; pass --allow-cidr ${cidr} if the partner ` +
    "really lives there (allowed_cidrs on a relationship)"
  );
}

function svidInvalidHint(error: BundlegateError, presented: PeerInfo | undefined): string {
  const check = stringDetail(error, "check");
  switch (check) {
    case "ERR_SVID_NO_URI_SAN": {
      const names = presented?.dnsSans ?? [];
      const dns = names.length === 0 ? "" : ` (it names ${names.join(", ")})`;
      return `the server's certificate carries no SPIFFE ID${dns}, so it is not an X509-SVID: did you mean --profile https_web?`;
    }
    case "ERR_SVID_INVALID_ID": {
      const uri = stringDetail(error, "uri") ?? "";
      return isSpiffeId(uri)
        ? `the certificate's SPIFFE ID ${uri} has no path, so it is not a workload's X509-SVID: the partner must serve an X509-SVID`
        : `the certificate's URI SAN ${JSON.stringify(uri)} is not a SPIFFE ID: did you mean --profile https_web?`;
    }
    case "ERR_SVID_MULTIPLE_URI_SANS":
      return (
        `the certificate carries ${stringsDetail(error, "uris").length} URI SANs (${stringsDetail(error, "uris").join(", ")}) ` +
        "and an X509-SVID has exactly one: the partner must serve a proper X509-SVID"
      );
    case "ERR_TLS_CERT_IS_CA":
      return "the server presents a CA certificate as its own; an https_spiffe endpoint serves an X509-SVID (a leaf)";
    case "ERR_SVID_KEY_USAGE":
      return "the server's certificate may sign certificates (keyCertSign/cRLSign), which an X509-SVID must not";
    default:
      return "the server's certificate is not a valid X509-SVID: the partner must serve one for its endpoint SPIFFE ID";
  }
}

const BUNDLE_HINT = "the server answered but not with a valid SPIFFE bundle";

function bundleHint(error: BundlegateError, body: Uint8Array): string {
  const start = Buffer.from(body.subarray(0, 64)).toString("latin1").trimStart();
  if (error.code === "ERR_BUNDLE_PRIVATE_KEY") {
    return `${BUNDLE_HINT}: it publishes PRIVATE key material; tell the partner at once, those keys are compromised`;
  }
  if (start.startsWith("<"))
    return `${BUNDLE_HINT}: it looks like HTML; check that the URL's path is the bundle endpoint`;
  if (detectBundleFormat(body) === "pem") {
    return `${BUNDLE_HINT}: it is PEM, a certificate file rather than a bundle endpoint's SPIFFE JSON`;
  }
  if (error.code === "ERR_BUNDLE_KEYS_MISSING") {
    return `${BUNDLE_HINT}: a JSON object without "keys"; is the URL another JSON API rather than the bundle endpoint?`;
  }
  if (body.length === 0) return `${BUNDLE_HINT}: the body is empty`;
  return `${BUNDLE_HINT}; the partner must fix the document (${error.code})`;
}

function rejectedError(decision: ProbeDecision): ProbeError {
  const deciding = decision.reasons[0];
  const message = `the trust policy rejects the bundle: ${deciding?.message ?? "no reason given"}`;
  if (deciding?.code === "SEQUENCE_ROLLBACK") {
    const sequences = deciding.details ?? {};
    return {
      code: "ERR_PROBE_REJECTED",
      message,
      hint:
        `the endpoint serves spiffe_sequence ${String(sequences.candidate)}, older than the previous bundle's ` +
        `${String(sequences.lastKnownGood)}: a stale replica or cache behind the endpoint, or a restored backup; ` +
        "if the partner really reset its sequence, an operator can reset the relationship's sequence",
    };
  }
  return {
    code: "ERR_PROBE_REJECTED",
    message,
    hint: `the relationship's trust policy is set to reject ${deciding?.code ?? "this change"}`,
  };
}

function unusableError(inspection: BundleInspection): ProbeError {
  if (inspection.authorities.length === 0) {
    return {
      code: "ERR_PROBE_UNUSABLE",
      message: "the bundle has no authorities",
      hint:
        "an empty bundle is how a trust domain revokes all its keys: nothing of this trust domain would be trusted; " +
        "ask the partner whether that is intended",
    };
  }
  return {
    code: "ERR_PROBE_UNUSABLE",
    message: "no authority of the bundle is valid now",
    hint:
      `every authority is expired or not yet valid (latest notAfter ${inspection.latestNotAfter ?? "unknown"}): ` +
      "the partner's bundle is not being rotated; tell them (and check this machine's clock)",
  };
}
