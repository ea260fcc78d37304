/** What the servers read: small interfaces over values that change while the process runs. */
import type { X509Certificate } from "node:crypto";
import type { TrustBundle } from "../spiffe/bundle.js";

/** A value that can change; subscribers are told of each new value after it is in place. */
export interface Watched<T> {
  current(): T;
  /** Returns the unsubscribe function. */
  subscribe(listener: (value: T) => void): () => void;
}

/** This trust domain's bundle, ready to serve: canonical bytes computed once per change, never per request. */
export interface ServedBundle {
  readonly bundle: TrustBundle;
  /** Canonical SPIFFE JSON. */
  readonly bytes: Buffer;
  /** Hex SHA-256 of `bytes`. */
  readonly digest: string;
  /** Strong ETag, quoted, derived from the digest. */
  readonly etag: string;
  readonly sequence: bigint;
  readonly refreshHintSeconds: number;
}

/** A certificate chain and its key, checked before it is offered to TLS. */
export interface TlsCredentials {
  /** PEM chain, leaf first. */
  readonly certPem: string;
  /** The same chain in DER, leaf first (what an x5c header or a chain check takes). */
  readonly chain: readonly Uint8Array[];
  readonly keyPem: string;
  readonly leaf: X509Certificate;
  /** Hex SHA-256 of the leaf DER: tells reloads apart in logs and tests. */
  readonly fingerprint: string;
}
