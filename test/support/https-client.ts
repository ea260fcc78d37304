/**
 * The HTTPS clients tests fetch bundles with, one per bundle endpoint profile:
 *
 * - `webRequest`: an `https_web` client. Web PKI verification against the CA the test gives (`ca`), with
 *   the host name checked against `servername` (default "localhost"), while connecting to 127.0.0.1.
 * - `spiffeConnect` / `spiffeRequest`: an `https_spiffe` client (SPIFFE_Federation.md 5.2.2). On
 *   `secureConnect`, before a byte of the request is sent, it checks that the server's leaf is valid now,
 *   is issued by (checkIssued + verify) one of the given bundle's X.509 authorities, and that its single
 *   URI SAN is the expected endpoint SPIFFE ID; no host name check. A peer that fails is disconnected and
 *   the promise rejects. Only a leaf issued straight by a bundle authority is accepted: what tests serve.
 *
 * Every reply carries the fingerprint (hex SHA-256 of the DER, as `TlsCredentials.fingerprint` spells it)
 * of the certificate the server presented, so tests tell certificate reloads apart.
 */
// Must come before @peculiar/x509: tsyringe (its dependency) needs Reflect metadata at import time.
import "reflect-metadata";
import { createHash, X509Certificate } from "node:crypto";
import type { ClientRequest, IncomingHttpHeaders, OutgoingHttpHeaders } from "node:http";
import { type RequestOptions, request } from "node:https";
import { connect, type TLSSocket } from "node:tls";
import * as x509 from "@peculiar/x509";
import type { TrustBundle } from "../../src/spiffe/bundle.js";

export interface HttpsReply {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly body: Buffer;
  /** The client side's port: equal ports mean one reused (keep-alive) connection. */
  readonly localPort: number | undefined;
  readonly socket: TLSSocket;
  /** Fingerprint of the certificate the server presented on this connection. */
  readonly peer: string | undefined;
}

/** Lowercase hex SHA-256 of a DER certificate. */
export function fingerprintOf(der: Uint8Array): string {
  return createHash("sha256").update(der).digest("hex");
}

const peers = new WeakMap<TLSSocket, X509Certificate | undefined>();

/**
 * The peer certificate of a connection, read once and remembered: on Node 20.20 a second
 * `getPeerX509Certificate()` on the same socket returns undefined.
 */
export function peerCertificateOf(socket: TLSSocket): X509Certificate | undefined {
  if (!peers.has(socket)) peers.set(socket, socket.getPeerX509Certificate());
  return peers.get(socket);
}

/** Ends `req` and collects its reply. */
export function collect(req: ClientRequest): Promise<HttpsReply> {
  return new Promise((resolve, reject) => {
    req.on("response", (res) => {
      const socket = res.socket as TLSSocket;
      const peer = peerCertificateOf(socket);
      const chunks: Buffer[] = [];
      res.on("data", (chunk: Buffer) => chunks.push(chunk));
      res.on("end", () =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          body: Buffer.concat(chunks),
          localPort: socket.localPort,
          socket,
          peer: peer ? fingerprintOf(peer.raw) : undefined,
        }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

/** Header fields as sent; a field given as a list goes out once per value (a repeated field). */
export type HeaderFields = Readonly<Record<string, string | readonly string[]>>;

/** `node:https` request options, with headers as a plain object so defaults can be merged under them. */
export type SendOptions = Omit<RequestOptions, "headers"> & { readonly headers?: HeaderFields };

export type WebRequestOptions = SendOptions & {
  readonly port: number;
  /** The CA the client trusts instead of the system roots. */
  readonly ca: RequestOptions["ca"];
};

/**
 * One `https_web` request: to 127.0.0.1 unless `host` says otherwise, path "/", method GET, host name
 * checked against `servername` ("localhost" by default). A new connection unless an `agent` is given.
 */
export function webRequest(options: WebRequestOptions): Promise<HttpsReply> {
  return collect(
    request({
      host: "127.0.0.1",
      path: "/",
      servername: "localhost",
      ...options,
      headers: options.headers as OutgoingHttpHeaders | undefined,
      agent: options.agent ?? false,
    }),
  );
}

export interface SpiffeTarget {
  /** Default 127.0.0.1. */
  readonly host?: string;
  readonly port: number;
  /** The endpoint's trust domain bundle: its X.509 authorities are the roots the SVID must chain to. */
  readonly bundle: Pick<TrustBundle, "x509Authorities">;
  /** The SPIFFE ID the server's X509-SVID must carry. */
  readonly endpointSpiffeId: string;
}

/** Why `peer` is not an acceptable `https_spiffe` server certificate for `target`, or undefined when it is. */
export function svidPeerProblem(
  peer: X509Certificate | undefined,
  target: Pick<SpiffeTarget, "bundle" | "endpointSpiffeId">,
  now: Date = new Date(),
): Error | undefined {
  if (peer === undefined) return new Error("the server presented no certificate");
  if (peer.ca) return new Error("the server's certificate is a CA certificate, not an X509-SVID");
  if (Date.parse(peer.validFrom) > now.getTime() || Date.parse(peer.validTo) < now.getTime()) {
    return new Error(`the server's certificate is not valid now (${peer.validFrom} .. ${peer.validTo})`);
  }
  const uris = uriSansOf(peer);
  if (uris.length !== 1 || uris[0] !== target.endpointSpiffeId) {
    return new Error(`the server's SPIFFE ID is ${JSON.stringify(uris)}, expected ${target.endpointSpiffeId}`);
  }
  const chained = target.bundle.x509Authorities.some((authority) => {
    const anchor = new X509Certificate(authority.der);
    return peer.checkIssued(anchor) && peer.verify(anchor.publicKey);
  });
  if (!chained) return new Error("the server's certificate does not chain to an X.509 authority of the bundle");
  return undefined;
}

function uriSansOf(certificate: X509Certificate): string[] {
  const san = new x509.X509Certificate(certificate.raw).getExtension(x509.SubjectAlternativeNameExtension);
  return (san?.names.items ?? []).filter((name) => name.type === "url").map((name) => name.value);
}

/** Opens a TLS connection the `https_spiffe` way; resolves only once the peer passed `svidPeerProblem`. */
export function spiffeConnect(target: SpiffeTarget): Promise<TLSSocket> {
  return new Promise((resolve, reject) => {
    const socket = connect({
      host: target.host ?? "127.0.0.1",
      port: target.port,
      // Chain and identity are checked below against the SPIFFE bundle, not against Web PKI roots.
      rejectUnauthorized: false,
      checkServerIdentity: () => undefined,
    });
    socket.on("error", reject);
    socket.once("secureConnect", () => {
      const problem = svidPeerProblem(peerCertificateOf(socket), target);
      if (problem) {
        socket.destroy();
        reject(problem);
        return;
      }
      // The error listener stays: an error after this (the server closing an idle connection) rejects nothing.
      resolve(socket);
    });
  });
}

/** One request over an open connection, which stays open afterwards (`Connection: keep-alive`). */
export function requestOver(socket: TLSSocket, options: SendOptions = {}): Promise<HttpsReply> {
  return collect(
    request({
      createConnection: () => socket,
      path: "/",
      ...options,
      headers: { connection: "keep-alive", ...options.headers } as OutgoingHttpHeaders,
    }),
  );
}

/** One `https_spiffe` request on a new connection, closed once the reply is in. */
export async function spiffeRequest(target: SpiffeTarget, options: SendOptions = {}): Promise<HttpsReply> {
  const socket = await spiffeConnect(target);
  try {
    return await requestOver(socket, options);
  } finally {
    socket.destroy();
  }
}
