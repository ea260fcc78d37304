/**
 * Opening one verified TLS connection to a bundle endpoint, directly or through an HTTP CONNECT proxy.
 *
 * The HTTP request is only given a socket after the handshake finished and the profile's checks passed,
 * so no request byte ever reaches a server that failed them; for https_spiffe that is the whole point of
 * `rejectUnauthorized: false`: Node lets the handshake complete and our own X509-SVID check decides.
 *
 * Direct connections resolve the name through a guarded lookup (blocked addresses are filtered out; none
 * left is ERR_FETCH_SSRF_BLOCKED) and then check `remoteAddress` once TCP is up, before TLS starts, so an
 * answer that changes between lookup and connect (DNS rebinding) or a resolver that is not ours cannot
 * slip a blocked address through.
 *
 * Through a proxy the fetcher never learns which address the proxy connects to: the guard refuses literal-IP
 * targets, and names that resolve here only to blocked addresses (fetcher.ts); anything else is the proxy's
 * business (its ACLs are the control there). The proxy's own address is not checked: the operator
 * configured it, and it usually lives on a private network.
 */
import type { LookupAddress, LookupOptions } from "node:dns";
import type { ClientRequest } from "node:http";
import { isIP, type LookupFunction, type Socket, connect as tcpConnect } from "node:net";
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from "node:tls";
import { HttpsProxyAgent } from "https-proxy-agent";
import { FetchError } from "./errors.js";
import { describePeer, type PeerInfo, readPeerChain, tlsFailure } from "./peer.js";
import { redactProxyUrl } from "./proxy.js";
import { blockedError, type SsrfGuard, type SsrfVerdict } from "./ssrf-guard.js";

export type ConnectPhase = "dns" | "tcp" | "proxy" | "tls";

/** How the handshake is configured and judged for one profile. */
export interface TlsPolicy {
  /** Everything tls.connect needs besides the socket. */
  readonly options: ConnectionOptions;
  /** Throws a FetchError when the presented chain fails the profile; runs before any request byte is sent. */
  readonly verify: (chain: Buffer[], details: Readonly<Record<string, unknown>>) => void;
}

export interface Connected {
  readonly socket: TLSSocket;
  readonly peer: PeerInfo;
}

export interface ConnectContext {
  /** Aborted with the FetchError to fail with (a timeout, the caller's abort). */
  readonly signal: AbortSignal;
  readonly onPhase: (phase: ConnectPhase) => void;
  /** Merged into every error's details (the URL being fetched). */
  readonly details: Readonly<Record<string, unknown>>;
}

export type DnsLookup = typeof import("node:dns").lookup;

export function connectFailure(error: unknown, details: Readonly<Record<string, unknown>>): FetchError {
  if (error instanceof FetchError) return error;
  const code = errnoOf(error);
  const reason = error instanceof Error ? error.message : String(error);
  return new FetchError("ERR_FETCH_CONNECT", `connection failed: ${reason}`, {
    cause: error,
    details: { ...details, ...(code === undefined ? {} : { errno: code }) },
  });
}

function errnoOf(error: unknown): string | undefined {
  if (error instanceof AggregateError) return errnoOf(error.errors[0]);
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return typeof code === "string" ? code : undefined;
}

/**
 * A lookup for net.connect that only ever hands out allowed addresses. Both of Node's calling conventions
 * are served: `all: true` (happy eyeballs, Node 20's default) and the single-address form.
 */
export function guardedLookup(
  base: DnsLookup,
  guard: SsrfGuard,
  details: Readonly<Record<string, unknown>>,
): LookupFunction {
  return (hostname: string, options: LookupOptions, callback) => {
    base(hostname, { ...options, all: true }, (error: NodeJS.ErrnoException | null, addresses: LookupAddress[]) => {
      if (error || addresses.length === 0) {
        const code = error?.code;
        callback(
          new FetchError("ERR_FETCH_DNS", `cannot resolve ${hostname}: ${error?.message ?? "no addresses"}`, {
            cause: error ?? undefined,
            details: { ...details, host: hostname, ...(code === undefined ? {} : { errno: code }) },
          }),
          "",
        );
        return;
      }
      const verdicts = addresses.map((entry) => ({ entry, verdict: guard.check(entry.address) }));
      const allowed = verdicts.filter(({ verdict }) => verdict.allowed).map(({ entry }) => entry);
      const first = allowed[0];
      if (!first) {
        const blocked = verdicts[0]!.verdict as Extract<SsrfVerdict, { allowed: false }>;
        callback(
          blockedError(blocked, { ...details, host: hostname, resolved: addresses.map((entry) => entry.address) }),
          "",
        );
        return;
      }
      if (options.all) callback(null, allowed);
      else callback(null, first.address, first.family);
    });
  };
}

export interface DirectConnectOptions {
  readonly host: string;
  readonly port: number;
  readonly policy: TlsPolicy;
  readonly guard: SsrfGuard;
  readonly lookup: DnsLookup;
  readonly context: ConnectContext;
}

/** TCP to an allowed address, then TLS, then the profile's checks. */
export function connectDirect(options: DirectConnectOptions): Promise<Connected> {
  const { host, port, policy, guard, context } = options;
  const { signal, details } = context;
  return new Promise<Connected>((resolve, reject) => {
    if (signal.aborted) {
      reject(signal.reason);
      return;
    }
    const literal = isIP(host) !== 0;
    if (literal) {
      const verdict = guard.check(host);
      if (!verdict.allowed) {
        reject(blockedError(verdict, { ...details, host }));
        return;
      }
    }
    context.onPhase(literal ? "tcp" : "dns");
    const raw: Socket = tcpConnect({
      host,
      port,
      ...(literal ? {} : { lookup: guardedLookup(options.lookup, guard, details) }),
    });
    const onAbort = () => {
      raw.destroy();
      reject(signal.reason);
    };
    const onError = (error: Error) => {
      signal.removeEventListener("abort", onAbort);
      raw.destroy();
      reject(connectFailure(error, { ...details, host }));
    };
    signal.addEventListener("abort", onAbort, { once: true });
    raw.on("lookup", () => context.onPhase("tcp"));
    raw.once("error", onError);
    raw.once("connect", () => {
      raw.off("error", onError);
      signal.removeEventListener("abort", onAbort);
      const address = raw.remoteAddress;
      const remotePort = raw.remotePort ?? port;
      // Checked again here: the lookup's answer is not necessarily what the kernel connected to.
      const verdict: SsrfVerdict =
        address === undefined ? { allowed: false, address: "", range: "invalid", cidr: "" } : guard.check(address);
      if (!verdict.allowed) {
        raw.destroy();
        reject(blockedError(verdict, { ...details, host }));
        return;
      }
      const socket = tlsConnect({ ...policy.options, socket: raw });
      awaitHandshake(socket, policy, context, address!, remotePort).then(resolve, reject);
    });
  });
}

/** Waits for the handshake on `socket` and runs the profile's checks; destroys the socket on any failure. */
export function awaitHandshake(
  socket: TLSSocket,
  policy: TlsPolicy,
  context: ConnectContext,
  address: string,
  port: number,
): Promise<Connected> {
  const { signal, details } = context;
  context.onPhase("tls");
  return new Promise<Connected>((resolve, reject) => {
    const cleanup = () => {
      signal.removeEventListener("abort", onAbort);
      socket.off("error", onError);
      socket.off("secureConnect", onSecure);
      // Errors between here and the HTTP client attaching its own listener must not crash the process;
      // the HTTP client still sees them through its listener.
      socket.on("error", ignore);
    };
    const fail = (error: FetchError) => {
      cleanup();
      socket.destroy();
      reject(error);
    };
    const onAbort = () => fail(signal.reason as FetchError);
    const onError = (error: Error) => fail(tlsFailure(error, details));
    const onSecure = () => {
      cleanup();
      try {
        const chain = readPeerChain(socket);
        policy.verify(chain, details);
        resolve({ socket, peer: describePeer(chain, address, port) });
      } catch (error) {
        socket.destroy();
        reject(error instanceof FetchError ? error : tlsFailure(error, details));
      }
    };
    if (signal.aborted) {
      onAbort();
      return;
    }
    signal.addEventListener("abort", onAbort, { once: true });
    socket.once("error", onError);
    socket.once("secureConnect", onSecure);
  });
}

function ignore(): void {}

export interface ProxyConnectOptions {
  readonly proxy: URL;
  readonly policy: TlsPolicy;
  readonly lookup?: DnsLookup | undefined;
  readonly context: ConnectContext;
  readonly onConnected: (peer: PeerInfo) => void;
}

type AgentConnectOptions = Parameters<HttpsProxyAgent<string>["connect"]>[1];

/**
 * https-proxy-agent does the CONNECT and starts TLS with the request's options; this subclass adds what a
 * fetch needs on top: a proxy refusing CONNECT becomes ERR_FETCH_PROXY (the agent itself would replay the
 * proxy's answer to the HTTP client as if the endpoint had sent it), and the socket is handed over only
 * after the handshake and the profile's checks.
 */
export class VerifyingProxyAgent extends HttpsProxyAgent<string> {
  readonly #options: ProxyConnectOptions;

  constructor(options: ProxyConnectOptions) {
    // `signal` reaches net.connect, so a proxy that never answers can still be torn down by a timeout.
    super(options.proxy.href, {
      keepAlive: false,
      signal: options.context.signal,
      ...(options.lookup === undefined ? {} : { lookup: options.lookup as LookupFunction }),
    } as ConstructorParameters<typeof HttpsProxyAgent<string>>[1]);
    this.#options = options;
  }

  override async connect(req: ClientRequest, opts: AgentConnectOptions): Promise<Socket> {
    const { context, proxy, policy } = this.#options;
    const details = { ...context.details, proxy: redactProxyUrl(proxy) };
    context.onPhase("proxy");
    let status: number | undefined;
    const onProxyConnect = (response: { statusCode: number }) => {
      status = response.statusCode;
    };
    this.once("proxyConnect", onProxyConnect);
    let socket: Socket;
    try {
      socket = await super.connect(req, opts);
    } catch (error) {
      if (context.signal.aborted) throw context.signal.reason;
      const reason = error instanceof Error ? error.message : String(error);
      const code = errnoOf(error);
      throw new FetchError("ERR_FETCH_PROXY", `proxy ${redactProxyUrl(proxy)} failed: ${reason}`, {
        cause: error,
        details: { ...details, ...(code === undefined ? {} : { errno: code }) },
      });
    } finally {
      this.off("proxyConnect", onProxyConnect);
    }
    if (status !== 200) {
      socket.destroy();
      throw new FetchError(
        "ERR_FETCH_PROXY",
        `proxy ${redactProxyUrl(proxy)} refused CONNECT to ${String(opts.host)}:${String(opts.port)} with status ${status ?? "none"}`,
        { details: { ...details, proxyStatus: status } },
      );
    }
    const tlsSocket = socket as TLSSocket;
    const connected = await awaitHandshake(
      tlsSocket,
      policy,
      { ...context, details },
      tlsSocket.remoteAddress ?? proxy.hostname,
      tlsSocket.remotePort ?? Number(proxy.port || (proxy.protocol === "https:" ? 443 : 80)),
    );
    if (context.signal.aborted) {
      // The fetch ended while the handshake finished; the request this socket was for is gone.
      connected.socket.destroy();
      throw context.signal.reason;
    }
    this.#options.onConnected({ ...connected.peer, proxy: redactProxyUrl(proxy) });
    return connected.socket;
  }
}
