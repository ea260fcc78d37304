/**
 * Accepting side: is this token an invitation its signer could have made, and what does it say.
 *
 * What a verified invitation proves: the token was signed, within its short lifetime, by the holder of an
 * X509-SVID of the named trust domain that chains to the bundle carried inside. It is self-consistent, not
 * vouched for by anyone this gateway already trusts: whoever can mint an SVID under some CA can invite in
 * that CA's name. That is why an accepted invitation only creates a *pending* relationship, and why the
 * result carries the bundle digest and the signer's fingerprint for a person to compare out of band.
 *
 * Checks run cheapest and most general first, and the signature before any claim is believed:
 * size, JWS shape, header, algorithm, signature, claim types, times, audience, content, bundle, signer.
 */
import { createHash } from "node:crypto";
import { compactVerify, errors as joseErrors } from "jose";
import type { Clock } from "../../clock.js";
import { isBundlegateError } from "../../errors.js";
import { checkSvidChain } from "../../sources/tls-credentials.js";
import type { TrustBundle } from "../../spiffe/bundle.js";
import { parseSpiffeBundle } from "../../spiffe/codec.js";
import { bundleDigest } from "../../spiffe/digest.js";
import { parseSpiffeId, type TrustDomain } from "../../spiffe/id.js";
import type { BundleWarning } from "../../spiffe/warnings.js";
import { type InvitationClaims, readClaims } from "./claims.js";
import { checkInvitationContent } from "./content.js";
import { InvitationError } from "./errors.js";
import {
  INVITATION_ALGORITHMS,
  type InvitationAlgorithm,
  type InvitationProfile,
  jsonText,
  type ReadHeader,
  readHeader,
  splitToken,
} from "./format.js";
import { verificationAlgorithms } from "./keys.js";

/** An invitation lives for minutes or hours; a day is the longest a verifier accepts unless told otherwise. */
export const DEFAULT_INVITATION_MAX_TTL_SECONDS = 24 * 60 * 60;
/** How far the inviting gateway's clock may run ahead of ours before `iat` counts as in the future. */
export const INVITATION_CLOCK_SKEW_SECONDS = 60;

export interface VerifyInvitationOptions {
  readonly clock: Clock;
  /** Longest accepted `exp - iat`. Default 24 h. */
  readonly maxTtlSeconds?: number | undefined;
  /**
   * Who is verifying, e.g. this gateway's trust domain name. A token with `aud` is refused unless this is
   * one of its values (RFC 7519 4.1.3); a token without `aud` is for anyone.
   */
  readonly expectedAudience?: string | undefined;
}

export interface VerifiedInvitation {
  /** `jti`. */
  readonly id: string;
  /** `iss`: the SPIFFE ID of the X509-SVID that signed the token. */
  readonly issuer: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
  readonly audience?: readonly string[];
  readonly trustDomain: TrustDomain;
  readonly endpointUrl: string;
  readonly profile: InvitationProfile;
  /** Always present for https_spiffe, never for https_web. */
  readonly endpointSpiffeId?: string;
  readonly note?: string;
  /** The inviting domain's bundle: the bootstrap bundle of the relationship the invitation starts. */
  readonly bundle: TrustBundle;
  /** What the codec ignored in the bundle (none for a bundle bundlegate wrote). */
  readonly bundleWarnings: readonly BundleWarning[];
  /** bundleDigest(bundle), for comparing with the partner out of band. */
  readonly bundleDigest: string;
  /** Lowercase hex SHA-256 of the signer's certificate (x5c[0]) DER. */
  readonly signerFingerprint: string;
}

export async function verifyInvitation(token: string, options: VerifyInvitationOptions): Promise<VerifiedInvitation> {
  const maxTtlSeconds = options.maxTtlSeconds ?? DEFAULT_INVITATION_MAX_TTL_SECONDS;
  if (!Number.isSafeInteger(maxTtlSeconds) || maxTtlSeconds <= 0) {
    throw new RangeError(`maxTtlSeconds must be a positive whole number, got ${maxTtlSeconds}`);
  }
  const now = options.clock.now();

  const parts = splitToken(token);
  const header = readHeader(parts.header);
  const alg = checkAlgorithm(header);
  await checkSignature(token, header, alg);

  const claims = readClaims(parts.payloadJson);
  checkTimes(claims, now, maxTtlSeconds);
  checkAudience(claims, options.expectedAudience);
  const content = checkInvitationContent(claims.content, "ERR_INVITATION_BAD_CONTENT");
  const { bundle, warnings } = readBundle(claims);
  checkSigner(header, claims.iss, content.trustDomain, bundle, now);

  return {
    id: claims.jti,
    issuer: claims.iss,
    issuedAt: new Date(claims.iat * 1000),
    expiresAt: new Date(claims.exp * 1000),
    ...(claims.aud === undefined ? {} : { audience: claims.aud }),
    ...content,
    bundle,
    bundleWarnings: warnings,
    bundleDigest: bundleDigest(bundle),
    signerFingerprint: createHash("sha256").update(header.chain[0]!).digest("hex"),
  };
}

function checkAlgorithm(header: ReadHeader): InvitationAlgorithm {
  const alg = header.alg;
  if (!(INVITATION_ALGORITHMS as readonly string[]).includes(alg)) {
    throw new InvitationError(
      "ERR_INVITATION_BAD_ALGORITHM",
      `invitation algorithm ${JSON.stringify(alg)} is not allowed; use one of ${INVITATION_ALGORITHMS.join(", ")}`,
      { details: { alg, allowed: INVITATION_ALGORITHMS } },
    );
  }
  const fitting = verificationAlgorithms(header.publicKey);
  if (!fitting.includes(alg as InvitationAlgorithm)) {
    throw new InvitationError(
      "ERR_INVITATION_BAD_ALGORITHM",
      fitting.length === 0
        ? "the signer's key type is not supported (EC P-256/P-384, RSA of 2048 bits or more, Ed25519)"
        : `invitation algorithm ${alg} does not fit the signer's key (${fitting.join(" or ")})`,
      { details: { alg, fitting } },
    );
  }
  return alg as InvitationAlgorithm;
}

async function checkSignature(token: string, header: ReadHeader, alg: InvitationAlgorithm): Promise<void> {
  try {
    await compactVerify(token, header.publicKey, { algorithms: [alg] });
  } catch (cause) {
    const message =
      cause instanceof joseErrors.JWSSignatureVerificationFailed
        ? "the invitation signature does not verify with the key of its x5c certificate"
        : `the invitation signature could not be verified: ${cause instanceof Error ? cause.message : String(cause)}`;
    throw new InvitationError("ERR_INVITATION_BAD_SIGNATURE", message, { cause, details: { alg } });
  }
}

function checkTimes(claims: InvitationClaims, now: Date, maxTtlSeconds: number): void {
  const nowSeconds = now.getTime() / 1000;
  const details = { iat: claims.iat, exp: claims.exp, now: now.toISOString() };
  if (claims.exp <= claims.iat) throw timeError("ERR_INVITATION_MALFORMED", '"exp" is not after "iat"', details);
  const notBefore = Math.max(claims.iat, claims.nbf ?? 0);
  if (notBefore > nowSeconds + INVITATION_CLOCK_SKEW_SECONDS) {
    throw timeError(
      "ERR_INVITATION_NOT_YET_VALID",
      `invitation is not valid before ${iso(notBefore)}; check the clocks of both gateways`,
      details,
    );
  }
  if (nowSeconds >= claims.exp) {
    throw timeError("ERR_INVITATION_EXPIRED", `invitation expired at ${iso(claims.exp)}; ask for a new one`, details);
  }
  const ttl = claims.exp - claims.iat;
  if (ttl > maxTtlSeconds) {
    throw timeError(
      "ERR_INVITATION_TTL_TOO_LONG",
      `invitation lives ${ttl} s, longer than the ${maxTtlSeconds} s this gateway accepts`,
      { ...details, ttl, limit: maxTtlSeconds },
    );
  }
}

function timeError(
  code:
    | "ERR_INVITATION_MALFORMED"
    | "ERR_INVITATION_NOT_YET_VALID"
    | "ERR_INVITATION_EXPIRED"
    | "ERR_INVITATION_TTL_TOO_LONG",
  message: string,
  details: Record<string, unknown>,
): InvitationError {
  return new InvitationError(
    code,
    code === "ERR_INVITATION_MALFORMED" ? `invitation is malformed: ${message}` : message,
    {
      details,
    },
  );
}

function iso(seconds: number): string {
  return new Date(seconds * 1000).toISOString();
}

function checkAudience(claims: InvitationClaims, expected: string | undefined): void {
  if (claims.aud === undefined) return;
  if (expected !== undefined && claims.aud.includes(expected)) return;
  throw new InvitationError(
    "ERR_INVITATION_WRONG_AUDIENCE",
    expected === undefined
      ? `invitation is addressed to ${claims.aud.join(", ")}; this gateway did not say who it is`
      : `invitation is addressed to ${claims.aud.join(", ")}, not to ${expected}`,
    { details: { audience: claims.aud, expected: expected ?? null } },
  );
}

function readBundle(claims: InvitationClaims): { bundle: TrustBundle; warnings: readonly BundleWarning[] } {
  try {
    return parseSpiffeBundle(jsonText(claims.bundle));
  } catch (cause) {
    throw new InvitationError(
      "ERR_INVITATION_BAD_BUNDLE",
      `the bundle inside the invitation is refused: ${cause instanceof Error ? cause.message : String(cause)}`,
      { cause, details: { check: isBundlegateError(cause) ? cause.code : undefined } },
    );
  }
}

/**
 * The X509-SVID rules are the ones the bundle endpoint applies to its own serving certificate and the
 * fetcher to a partner's (`checkSvidChain`): the invitation's signer is that very certificate.
 */
function checkSigner(header: ReadHeader, iss: string, trustDomain: TrustDomain, bundle: TrustBundle, now: Date): void {
  const untrusted = (message: string, details: Record<string, unknown>, cause?: unknown) =>
    new InvitationError("ERR_INVITATION_UNTRUSTED_SIGNER", `invitation signer refused: ${message}`, {
      details: { issuer: iss, ...details },
      ...(cause === undefined ? {} : { cause }),
    });
  let issuer: ReturnType<typeof parseSpiffeId>;
  try {
    issuer = parseSpiffeId(iss);
  } catch (cause) {
    throw untrusted(`"iss" ${JSON.stringify(iss)} is not a SPIFFE ID`, {}, cause);
  }
  if (issuer.trustDomain !== trustDomain) {
    throw untrusted(`${iss} is not in the invited trust domain ${trustDomain}`, { trustDomain });
  }
  try {
    checkSvidChain(header.chain, { now, endpointSpiffeId: iss, bundle });
  } catch (cause) {
    throw untrusted(
      cause instanceof Error ? cause.message : String(cause),
      {
        ...(isBundlegateError(cause) ? { check: cause.code, ...cause.details } : {}),
      },
      cause,
    );
  }
}
