/**
 * The throwaway PKI of `bundlegate dev`: everything a local demo needs, generated in memory at start and
 * gone when the process exits. Never used by `serve`.
 *
 * - A SPIFFE root CA for the trust domain (EC P-256, one year): the X.509 authority of the local bundle.
 * - A JWT signing key: the bundle's JWT authority, its key ID the RFC 7638 thumbprint.
 * - The endpoint's X509-SVID (seven days), issued by that root. Besides its one URI SAN it carries DNS
 *   `localhost` and IP 127.0.0.1 (X509-SVID.md section 2 allows other SAN types), so
 *   `curl --cacert bundle.pem https://localhost:8444/` verifies it with an ordinary hostname check.
 * - A separate "dev web CA" and a web certificate for localhost / 127.0.0.1 issued by it, standing in for
 *   the Web PKI of the `https_web` profile; `curl --cacert web-ca.pem` trusts it.
 *
 * Every validity is computed from the injected clock, backdated a few minutes so a process whose clock
 * runs slightly behind still accepts what was just issued.
 */
import { X509Certificate } from "node:crypto";
import type { Clock } from "../clock.js";
import { BundlegateError } from "../errors.js";
import { createTrustBundle, jwtAuthority, type TrustBundle, x509AuthorityFromCertificate } from "../spiffe/bundle.js";
import { parseSpiffeId, parseTrustDomain, type TrustDomain } from "../spiffe/id.js";
import { importPublicJwk, jwkThumbprint, type PublicJwk } from "../spiffe/public-key.js";
import { createCa, createJwtKey, createSvid, createWebCert, exportPkcs8Pem, type Issued } from "./x509-issuer.js";

const MINUTE_MS = 60 * 1000;
const DAY_MS = 24 * 60 * MINUTE_MS;
const BACKDATE_MS = 5 * MINUTE_MS;
const CA_VALIDITY_MS = 365 * DAY_MS;
const LEAF_VALIDITY_MS = 7 * DAY_MS;
const LOCAL_DNS_NAMES = ["localhost"];
const LOCAL_IP_ADDRESSES = ["127.0.0.1"];

export interface DevPkiOptions {
  readonly trustDomain: string;
  /** The SPIFFE ID of the bundle endpoint's SVID; must be in `trustDomain` and have a path. */
  readonly endpointSpiffeId: string;
  readonly clock: Clock;
}

/** A certificate chain (leaf first) and its PKCS#8 key, as the file credential source would read them. */
export interface PemCredentials {
  readonly certPem: string;
  readonly keyPem: string;
}

export interface IssueSvidOptions {
  readonly spiffeId: string;
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  /** Default seven days. */
  readonly validityMs?: number;
}

export interface DevPki {
  readonly trustDomain: TrustDomain;
  /** The local domain's bundle: the root CA as its X.509 authority, the JWT key as its JWT authority. */
  readonly bundle: TrustBundle;
  /** The root CA certificate (the bundle's X.509 authority) as PEM. */
  readonly rootCaPem: string;
  readonly jwtKey: { readonly keyId: string; readonly publicKey: PublicJwk; readonly privateKeyPem: string };
  /** The endpoint's X509-SVID for `endpointSpiffeId`, with DNS `localhost` and IP 127.0.0.1 as well. */
  readonly svid: PemCredentials & { readonly spiffeId: string };
  /** The dev web CA certificate as PEM: what a client trusts instead of the Web PKI. */
  readonly webCaPem: string;
  /** A web certificate for localhost / 127.0.0.1 issued by the dev web CA. */
  readonly web: PemCredentials;
  /** Issues another X509-SVID in this trust domain from the same root (a demo workload or partner endpoint). */
  issueSvid(options: IssueSvidOptions): Promise<PemCredentials>;
}

/**
 * - ERR_DEV_PKI_BAD_SPIFFE_ID  an SVID was asked for an ID outside the trust domain, or without a path
 * - ERR_DEV_PKI_KEY            a generated key did not survive its own export (a crypto backend problem)
 */
export type DevPkiErrorCode = "ERR_DEV_PKI_BAD_SPIFFE_ID" | "ERR_DEV_PKI_KEY";

export async function createDevPki(options: DevPkiOptions): Promise<DevPki> {
  const trustDomain = parseTrustDomain(options.trustDomain);
  const { clock } = options;
  const endpointSpiffeId = checkLeafId(options.endpointSpiffeId, trustDomain);

  const now = clock.now();
  const rootCa = await createCa({
    trustDomain,
    subject: `CN=bundlegate dev root CA, O=${trustDomain}`,
    ...validFor(now, CA_VALIDITY_MS),
  });
  const webCa = await createCa({
    trustDomain,
    subject: "CN=bundlegate dev web CA",
    withSpiffeUri: false,
    ...validFor(now, CA_VALIDITY_MS),
  });

  const issueSvid = async (request: IssueSvidOptions): Promise<PemCredentials> => {
    const spiffeId = checkLeafId(request.spiffeId, trustDomain);
    const issued = await createSvid({
      issuer: rootCa,
      spiffeId,
      dnsNames: [...(request.dnsNames ?? [])],
      ipAddresses: [...(request.ipAddresses ?? [])],
      ...validFor(clock.now(), request.validityMs ?? LEAF_VALIDITY_MS),
    });
    return pemCredentials(issued);
  };

  const svid = await issueSvid({
    spiffeId: endpointSpiffeId,
    dnsNames: LOCAL_DNS_NAMES,
    ipAddresses: LOCAL_IP_ADDRESSES,
  });
  const web = pemCredentials(
    await createWebCert({
      issuer: webCa,
      dnsNames: LOCAL_DNS_NAMES,
      ipAddresses: LOCAL_IP_ADDRESSES,
      ...validFor(now, LEAF_VALIDITY_MS),
    }),
  );

  const jwt = await createJwtKey("EC-P256");
  const imported = importPublicJwk(jwt.publicJwk as Record<string, unknown>);
  if (!imported.ok) {
    throw new BundlegateError<DevPkiErrorCode>(
      "ERR_DEV_PKI_KEY",
      `generated JWT key does not import: ${imported.message}`,
    );
  }
  const keyId = jwkThumbprint(imported.jwk);

  const bundle = createTrustBundle({
    x509Authorities: [x509AuthorityFromCertificate(new X509Certificate(rootCa.der))],
    jwtAuthorities: [jwtAuthority(keyId, imported.jwk)],
  });

  return {
    trustDomain,
    bundle,
    rootCaPem: rootCa.pem,
    jwtKey: { keyId, publicKey: imported.jwk, privateKeyPem: await exportPkcs8Pem(jwt.keys.privateKey) },
    svid: { ...svid, spiffeId: endpointSpiffeId },
    webCaPem: webCa.pem,
    web,
    issueSvid,
  };
}

function validFor(now: Date, validityMs: number): { notBefore: Date; notAfter: Date; now: Date } {
  return {
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + validityMs),
    now,
  };
}

function pemCredentials(issued: Issued): PemCredentials {
  return { certPem: issued.pem, keyPem: issued.keyPem };
}

/** An SVID of this root must name a workload of this trust domain: partners look its bundle up by that domain. */
function checkLeafId(uri: string, trustDomain: TrustDomain): string {
  const id = parseSpiffeId(uri);
  if (id.trustDomain !== trustDomain || id.path === "") {
    throw new BundlegateError<DevPkiErrorCode>(
      "ERR_DEV_PKI_BAD_SPIFFE_ID",
      `${uri} is not a workload SPIFFE ID in ${trustDomain}; the dev CA only issues SVIDs for its own trust domain`,
      { status: 500, details: { spiffeId: uri, trustDomain } },
    );
  }
  return id.uri;
}
