/**
 * The bundle fetcher: one GET of a partner's bundle endpoint, with every check DESIGN.md section 6 asks for,
 * returning the raw body for the codec. It never parses bundles and keeps no state between fetches: the
 * caller passes the authorities to verify an https_spiffe endpoint against (bootstrap bundle or latest
 * stored) and keeps the configured URL, so a redirect is never remembered.
 *
 * Every fetch opens fresh connections (no keep-alive, no TLS session reuse): polls are minutes apart, and a
 * resumed session would skip the certificate the checks are about. Bounding concurrency is the caller's job.
 *
 * Timeouts: `connectTimeoutMs` covers name resolution, TCP, the proxy's CONNECT and the TLS handshake with
 * its checks, per hop; `headersTimeoutMs` runs from the request being handed to the socket to the response
 * headers, per hop; `totalTimeoutMs` covers the whole fetch, every redirect and the body, so a server
 * dripping one byte at a time still ends. Certificate times: https_spiffe judges the SVID at `now()`;
 * https_web is Node's own verification, which uses the system clock.
 */
import { X509Certificate } from "node:crypto";
import { lookup as dnsLookup, type LookupAddress } from "node:dns";
import type { IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";
import { isIP } from "node:net";
import { type ConnectionOptions, checkServerIdentity, createSecureContext, type SecureContext } from "node:tls";
import type { TrustBundle } from "../../spiffe/bundle.js";
import { parseSpiffeId } from "../../spiffe/id.js";
import {
  type ConnectContext,
  type ConnectPhase,
  connectDirect,
  connectFailure,
  type DnsLookup,
  type TlsPolicy,
  VerifyingProxyAgent,
} from "./connection.js";
import { FetchError, type FetchErrorCode } from "./errors.js";
import { type PeerInfo, verifySvidChain } from "./peer.js";
import { chooseProxy, type ProxyChoice, redactProxyUrl } from "./proxy.js";
import { blockedError, createSsrfGuard, type SsrfGuard, type SsrfVerdict } from "./ssrf-guard.js";
import { hostOf, parseEndpointUrl, portOf, resolveRedirect } from "./url.js";

export type { PeerInfo } from "./peer.js";

export type FetchProfile =
  /** `caPem` replaces the system roots when given. */
  | { kind: "https_web"; caPem?: string }
  /** The server must present an X509-SVID for `endpointSpiffeId` chaining to `authorities.x509Authorities`. */
  | { kind: "https_spiffe"; endpointSpiffeId: string; authorities: TrustBundle };

export interface FetchRequest {
  url: string;
  profile: FetchProfile;
  /** A proxy URL for this relationship, or "direct"; absent follows `httpsProxy`/`noProxy`. */
  proxy?: string;
  /** Special-purpose address ranges this relationship may reach anyway (a partner on a private network). */
  allowedCidrs?: readonly string[];
  ifNoneMatch?: string;
  signal?: AbortSignal;
}

export type FetchResult =
  | {
      kind: "bundle";
      body: Buffer;
      etag?: string;
      /** Where the body came from: the configured URL or the last redirect target. */
      url: string;
      /** Every redirect target followed, in order. */
      redirects: string[];
      peer: PeerInfo;
      durationMs: number;
    }
  | { kind: "not_modified"; etag?: string; url: string; redirects: string[]; peer: PeerInfo; durationMs: number };

export interface FetcherOptions {
  maxBytes: number;
  connectTimeoutMs: number;
  headersTimeoutMs: number;
  totalTimeoutMs: number;
  maxRedirects: number;
  /** HTTPS_PROXY as the config loader read it; nothing here reads the environment. */
  httpsProxy?: string;
  noProxy?: string;
  /** Name resolution; injectable so tests can point names at chosen addresses. */
  lookup?: DnsLookup;
  now?: () => Date;
  userAgent?: string;
}

export interface BundleFetcher {
  fetch(request: FetchRequest): Promise<FetchResult>;
}

const REDIRECT_STATUSES: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);
const DEFAULT_USER_AGENT = "bundlegate";
const PEM_CERTIFICATE = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/g;

type HopOutcome =
  | { kind: "redirect"; status: number; location: string }
  | { kind: "bundle"; body: Buffer; etag: string | undefined; peer: PeerInfo }
  | { kind: "not_modified"; etag: string | undefined; peer: PeerInfo };

interface PreparedFetch {
  readonly profile: FetchProfile;
  /** With the relationship's allowed CIDRs: for the configured host only. */
  readonly guard: SsrfGuard;
  /** Without exceptions: for hosts a redirect names, which the partner, not the operator, chose. */
  readonly redirectGuard: SsrfGuard;
  readonly configuredHost: string;
  readonly request: FetchRequest;
  /** Aborted with the FetchError that ends the fetch (total timeout, caller's abort). */
  readonly signal: AbortSignal;
}

export function createBundleFetcher(options: FetcherOptions): BundleFetcher {
  checkOptions(options);
  const lookup: DnsLookup = options.lookup ?? dnsLookup;
  const now = options.now ?? (() => new Date());
  const userAgent = options.userAgent ?? DEFAULT_USER_AGENT;

  const caContexts = new Map<string, SecureContext>();
  const caContext = (caPem: string): SecureContext => {
    let context = caContexts.get(caPem);
    if (!context) {
      context = checkedCaContext(caPem);
      // A handful of CA files in practice; the bound only keeps a misuse from growing without end.
      if (caContexts.size >= 256) caContexts.clear();
      caContexts.set(caPem, context);
    }
    return context;
  };

  const tlsPolicy = (profile: FetchProfile, host: string): TlsPolicy => {
    const common: ConnectionOptions = {
      host,
      // SNI must not carry an IP address (RFC 6066).
      ...(isIP(host) === 0 ? { servername: host } : {}),
      minVersion: "TLSv1.2",
      ALPNProtocols: ["http/1.1"],
    };
    if (profile.kind === "https_web") {
      return {
        options: {
          ...common,
          // One context per CA, built once: a fresh one per connection (what `ca:` does) was a tenth of
          // the CPU of every fetch. A context carries the protocol floor itself.
          ...(profile.caPem === undefined ? {} : { secureContext: caContext(profile.caPem) }),
          rejectUnauthorized: true,
          // Named explicitly: through a proxy, Node would otherwise check an IP-literal target against the
          // proxy's host name, because https-proxy-agent drops `host` from the TLS options.
          checkServerIdentity: (_name, certificate) => checkServerIdentity(host, certificate),
        },
        verify: () => undefined,
      };
    }
    return {
      options: { ...common, rejectUnauthorized: false, checkServerIdentity: () => undefined },
      verify: (chain, details) =>
        verifySvidChain(
          chain,
          { endpointSpiffeId: profile.endpointSpiffeId, authorities: profile.authorities, now: now() },
          details,
        ),
    };
  };

  /**
   * Through a proxy the connected address is the proxy's secret, so a name is resolved here too (defence in
   * depth): when every address it resolves to is blocked, the proxy is never asked. A name that does not
   * resolve here is left to the proxy (split-horizon DNS is why proxies exist), and one that resolves to an
   * allowed address here may still resolve differently there: the proxy's own ACLs stay the real control.
   */
  const refuseBlockedName = (host: string, guard: SsrfGuard, details: Record<string, unknown>): Promise<void> =>
    new Promise((resolve, reject) => {
      lookup(host, { all: true }, (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => {
        if (error || addresses.length === 0) {
          resolve();
          return;
        }
        const verdicts = addresses.map((entry) => guard.check(entry.address));
        const allowed = verdicts.some((verdict) => verdict.allowed);
        if (allowed) resolve();
        else {
          reject(
            blockedError(verdicts[0] as Extract<SsrfVerdict, { allowed: false }>, {
              ...details,
              host,
              resolved: addresses.map((entry) => entry.address),
            }),
          );
        }
      });
    });

  const exchange = async (url: URL, prepared: PreparedFetch): Promise<HopOutcome> => {
    const host = hostOf(url);
    const port = portOf(url);
    const guard = host === prepared.configuredHost ? prepared.guard : prepared.redirectGuard;
    const proxy: ProxyChoice = chooseProxy(url, {
      requestProxy: prepared.request.proxy,
      httpsProxy: options.httpsProxy,
      noProxy: options.noProxy,
    });
    const details: Record<string, unknown> = {
      url: url.href,
      ...(proxy.kind === "proxy" ? { proxy: redactProxyUrl(proxy.url) } : {}),
    };
    if (proxy.kind === "proxy") {
      if (isIP(host) !== 0) guard.assertAllowed(host, { ...details, host });
      else await refuseBlockedName(host, guard, details);
    }
    const policy = tlsPolicy(prepared.profile, host);
    const fetchSignal = prepared.signal;
    const hop = new AbortController();

    return new Promise<HopOutcome>((resolve, reject) => {
      let phase: ConnectPhase = "dns";
      let settled = false;
      let peer: PeerInfo | undefined;
      let connectTimer: NodeJS.Timeout | undefined;
      let headersTimer: NodeJS.Timeout | undefined;
      let agent: VerifyingProxyAgent | undefined;
      let req: ReturnType<typeof httpsRequest> | undefined;

      const settle = (error: FetchError | undefined, outcome?: HopOutcome) => {
        if (settled) return;
        settled = true;
        clearTimeout(connectTimer);
        clearTimeout(headersTimer);
        fetchSignal.removeEventListener("abort", onFetchAbort);
        if (error !== undefined) hop.abort(error);
        req?.destroy();
        agent?.destroy();
        if (error !== undefined) reject(error);
        else resolve(outcome!);
      };
      const fail = (code: FetchErrorCode, message: string, extra: Record<string, unknown> = {}, cause?: unknown) =>
        settle(
          new FetchError(code, message, {
            details: { ...details, ...extra },
            ...(cause === undefined ? {} : { cause }),
          }),
        );
      const onFetchAbort = () => settle(fetchSignal.reason as FetchError);
      if (fetchSignal.aborted) {
        onFetchAbort();
        return;
      }
      fetchSignal.addEventListener("abort", onFetchAbort, { once: true });

      connectTimer = setTimeout(
        () =>
          fail(
            "ERR_FETCH_CONNECT_TIMEOUT",
            `no connection to ${url.host} within ${options.connectTimeoutMs} ms (${phase})`,
            {
              phase,
              timeoutMs: options.connectTimeoutMs,
            },
          ),
        options.connectTimeoutMs,
      );
      const onConnected = (connectedPeer: PeerInfo) => {
        clearTimeout(connectTimer);
        peer = connectedPeer;
        headersTimer = setTimeout(
          () =>
            fail(
              "ERR_FETCH_HEADERS_TIMEOUT",
              `no response headers from ${url.host} within ${options.headersTimeoutMs} ms`,
              {
                timeoutMs: options.headersTimeoutMs,
              },
            ),
          options.headersTimeoutMs,
        );
      };
      const context: ConnectContext = {
        signal: hop.signal,
        details,
        onPhase: (next) => {
          phase = next;
        },
      };

      const headers: Record<string, string> = {
        host: url.host,
        accept: "application/json",
        // Compression is never asked for, so a compressed answer is refused rather than inflated.
        "accept-encoding": "identity",
        "user-agent": userAgent,
        ...(prepared.request.ifNoneMatch === undefined ? {} : { "if-none-match": prepared.request.ifNoneMatch }),
      };
      const base = {
        method: "GET",
        host,
        port,
        path: `${url.pathname}${url.search}`,
        headers,
        setHost: false,
      } as const;
      try {
        if (proxy.kind === "proxy") {
          agent = new VerifyingProxyAgent({ proxy: proxy.url, policy, lookup: options.lookup, context, onConnected });
          // The TLS options travel with the request: the agent starts TLS inside the tunnel with them.
          req = httpsRequest({ ...policy.options, ...base, agent });
        } else {
          req = httpsRequest({
            ...base,
            createConnection: (_options, oncreate) => {
              connectDirect({ host, port, policy, guard, lookup, context }).then(
                (connected) => {
                  if (settled) {
                    connected.socket.destroy();
                    return;
                  }
                  onConnected(connected.peer);
                  oncreate(null, connected.socket);
                },
                (error: unknown) => settle(connectFailure(error, details)),
              );
              return undefined;
            },
          });
        }
      } catch (error) {
        // https.request validates header values synchronously (an If-None-Match with a newline, say).
        const reason = error instanceof Error ? error.message : String(error);
        fail("ERR_FETCH_CONFIG", `cannot build the request: ${reason}`, {}, error);
        return;
      }

      req.on("error", (error: Error) => settle(requestFailure(error, details)));
      req.on("response", (res: IncomingMessage) => {
        clearTimeout(headersTimer);
        const status = res.statusCode ?? 0;
        const etag = firstHeader(res.headers.etag);
        if (REDIRECT_STATUSES.has(status)) {
          const location = firstHeader(res.headers.location);
          if (location === undefined || location === "") {
            fail("ERR_FETCH_STATUS", `${url.href} answered ${status} without a Location`, { status });
          } else {
            settle(undefined, { kind: "redirect", status, location });
          }
          return;
        }
        if (status === 304 && prepared.request.ifNoneMatch !== undefined) {
          settle(undefined, { kind: "not_modified", etag, peer: peer! });
          return;
        }
        if (status !== 200) {
          fail("ERR_FETCH_STATUS", `${url.href} answered ${status}, not 200`, { status });
          return;
        }
        const encoding = (firstHeader(res.headers["content-encoding"]) ?? "").trim().toLowerCase();
        if (encoding !== "" && encoding !== "identity") {
          fail("ERR_FETCH_ENCODING", `${url.href} sent Content-Encoding ${encoding}`, { encoding });
          return;
        }
        const declared = Number(res.headers["content-length"] ?? Number.NaN);
        if (declared > options.maxBytes) {
          fail(
            "ERR_FETCH_TOO_LARGE",
            `${url.href} announced ${declared} bytes, over the ${options.maxBytes}-byte cap`,
            {
              contentLength: declared,
              limit: options.maxBytes,
            },
          );
          return;
        }
        const chunks: Buffer[] = [];
        let received = 0;
        res.on("data", (chunk: Buffer) => {
          received += chunk.length;
          if (received > options.maxBytes) {
            fail("ERR_FETCH_TOO_LARGE", `${url.href} sent more than the ${options.maxBytes}-byte cap`, {
              received,
              limit: options.maxBytes,
            });
            return;
          }
          chunks.push(chunk);
        });
        res.on("end", () =>
          settle(undefined, { kind: "bundle", body: Buffer.concat(chunks, received), etag, peer: peer! }),
        );
        const truncated = (cause?: unknown) =>
          fail(
            "ERR_FETCH_TRUNCATED",
            `${url.href} closed the connection after ${received} body bytes`,
            { received },
            cause,
          );
        res.on("error", truncated);
        res.on("close", () => {
          if (!res.complete) truncated();
        });
      });
      req.end();
    });
  };

  return {
    async fetch(request: FetchRequest): Promise<FetchResult> {
      const started = performance.now();
      const aborter = new AbortController();
      const total = setTimeout(
        () =>
          aborter.abort(
            new FetchError(
              "ERR_FETCH_TIMEOUT",
              `fetch of ${request.url} took longer than ${options.totalTimeoutMs} ms`,
              {
                details: { url: request.url, timeoutMs: options.totalTimeoutMs },
              },
            ),
          ),
        options.totalTimeoutMs,
      );
      const onCallerAbort = () =>
        aborter.abort(
          new FetchError("ERR_FETCH_ABORTED", `fetch of ${request.url} aborted by the caller`, {
            cause: request.signal?.reason,
            details: { url: request.url },
          }),
        );
      if (request.signal?.aborted) onCallerAbort();
      else request.signal?.addEventListener("abort", onCallerAbort, { once: true });
      try {
        // A bad CA file fails here, before any connection, with ERR_FETCH_CONFIG.
        if (request.profile.kind === "https_web" && request.profile.caPem !== undefined)
          caContext(request.profile.caPem);
        let url = parseEndpointUrl(request.url);
        const prepared: PreparedFetch = {
          profile: checkProfile(request.profile),
          guard: createSsrfGuard(request.allowedCidrs ?? []),
          redirectGuard: createSsrfGuard([]),
          configuredHost: hostOf(url),
          request,
          signal: aborter.signal,
        };
        const redirects: string[] = [];
        for (;;) {
          if (aborter.signal.aborted) throw aborter.signal.reason;
          const outcome = await exchange(url, prepared);
          if (outcome.kind === "redirect") {
            if (redirects.length >= options.maxRedirects) {
              throw new FetchError(
                "ERR_FETCH_TOO_MANY_REDIRECTS",
                `more than ${options.maxRedirects} redirects fetching ${request.url}`,
                { details: { url: request.url, redirects, limit: options.maxRedirects, location: outcome.location } },
              );
            }
            url = resolveRedirect(outcome.location, url);
            redirects.push(url.href);
            continue;
          }
          const durationMs = Math.round(performance.now() - started);
          const etag = outcome.etag === undefined ? {} : { etag: outcome.etag };
          if (outcome.kind === "not_modified") {
            return { kind: "not_modified", ...etag, url: url.href, redirects, peer: outcome.peer, durationMs };
          }
          return {
            kind: "bundle",
            body: outcome.body,
            ...etag,
            url: url.href,
            redirects,
            peer: outcome.peer,
            durationMs,
          };
        }
      } catch (error) {
        if (error instanceof FetchError) throw error;
        const reason = error instanceof Error ? error.message : String(error);
        throw new FetchError("ERR_FETCH_INTERNAL", `fetch of ${request.url} failed unexpectedly: ${reason}`, {
          cause: error,
          details: { url: request.url },
        });
      } finally {
        clearTimeout(total);
        request.signal?.removeEventListener("abort", onCallerAbort);
      }
    },
  };
}

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** A failure the HTTP client reports once it has the socket: the connection dropping or unparseable HTTP. */
function requestFailure(error: Error, details: Readonly<Record<string, unknown>>): FetchError {
  if (error instanceof FetchError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  if (typeof code === "string" && code.startsWith("HPE_")) {
    return new FetchError("ERR_FETCH_PROTOCOL", `the response is not valid HTTP/1.1: ${error.message}`, {
      cause: error,
      details: { ...details, parserError: code },
    });
  }
  return connectFailure(error, details);
}

function checkOptions(options: FetcherOptions): void {
  const positive = ["maxBytes", "connectTimeoutMs", "headersTimeoutMs", "totalTimeoutMs"] as const;
  for (const name of positive) {
    if (!Number.isSafeInteger(options[name]) || options[name] <= 0) {
      throw new FetchError("ERR_FETCH_CONFIG", `fetcher option ${name} must be a positive integer`, {
        details: { option: name, value: options[name] },
      });
    }
  }
  if (!Number.isSafeInteger(options.maxRedirects) || options.maxRedirects < 0) {
    throw new FetchError("ERR_FETCH_CONFIG", "fetcher option maxRedirects must be a non-negative integer", {
      details: { option: "maxRedirects", value: options.maxRedirects },
    });
  }
}

function checkProfile(profile: FetchProfile): FetchProfile {
  if (profile.kind === "https_spiffe") {
    try {
      parseSpiffeId(profile.endpointSpiffeId);
    } catch (error) {
      throw new FetchError(
        "ERR_FETCH_CONFIG",
        `endpoint SPIFFE ID ${JSON.stringify(profile.endpointSpiffeId)} is invalid`,
        {
          cause: error,
          details: { endpointSpiffeId: profile.endpointSpiffeId },
        },
      );
    }
    return profile;
  }
  return profile;
}

/** Node would quietly trust nothing (or fail obscurely mid-handshake) with an unreadable CA file. */
/** A TLS context trusting these CA certificates; ERR_FETCH_CONFIG when the PEM holds none that parses. */
export function checkedCaContext(caPem: string): SecureContext {
  const blocks = caPem.match(PEM_CERTIFICATE) ?? [];
  try {
    if (blocks.length === 0) throw new Error("no CERTIFICATE block");
    for (const block of blocks) new X509Certificate(block);
    return createSecureContext({ ca: caPem, minVersion: "TLSv1.2" });
  } catch (error) {
    throw new FetchError("ERR_FETCH_CONFIG", "the https_web CA PEM holds no readable certificate", {
      cause: error,
    });
  }
}
