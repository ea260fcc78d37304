/**
 * Inviting side: sign this domain's trust domain, endpoint and current bundle with the key of the gateway's
 * own X509-SVID (the https_spiffe endpoint's), so the partner can check the token against the bundle it
 * carries before anyone has configured anything.
 *
 * Every token is verified with verifyInvitation before it is handed out: an invitation the partner would
 * refuse (key not the SVID's, SVID not chaining to our own bundle, bundle too large) is this gateway's
 * problem, reported here with a 500 rather than by the partner days later.
 */
import { randomBytes, X509Certificate } from "node:crypto";
import { CompactSign } from "jose";
import type { Clock } from "../../clock.js";
import { isBundlegateError } from "../../errors.js";
import { MAX_CHAIN_CERTIFICATES } from "../../sources/tls-credentials.js";
import type { TrustBundle } from "../../spiffe/bundle.js";
import { serializeSpiffeBundle } from "../../spiffe/codec.js";
import { parseStrictJson } from "../../spiffe/json.js";
import { writeJson } from "../../spiffe/json-writer.js";
import { parseSubjectAltName } from "../fetcher/peer.js";
import { checkInvitationContent } from "./content.js";
import { InvitationError } from "./errors.js";
import {
  INVITATION_CLAIM,
  INVITATION_TYP,
  INVITATION_VERSION,
  type InvitationPayload,
  type InvitationProfile,
  readableJson,
} from "./format.js";
import { type SigningKey, signingAlgorithm } from "./keys.js";
import { DEFAULT_INVITATION_MAX_TTL_SECONDS, verifyInvitation } from "./verify.js";

export interface InvitationSigner {
  /** The private key of the gateway's X509-SVID. */
  readonly privateKey: SigningKey;
  /** DER, leaf first: the gateway's X509-SVID, then any intermediates up to (not including) a bundle authority. */
  readonly chain: readonly Uint8Array[];
}

export interface CreateInvitationOptions {
  readonly trustDomain: string;
  readonly endpointUrl: string;
  readonly profile: InvitationProfile;
  /** Required for https_spiffe, refused for https_web. */
  readonly endpointSpiffeId?: string | undefined;
  /** This domain's current bundle; it must hold the authority the signer's SVID chains to. */
  readonly bundle: TrustBundle;
  readonly signer: InvitationSigner;
  readonly clock: Clock;
  /** Whole seconds, 1..maxTtlSeconds. */
  readonly ttlSeconds: number;
  /** Who may accept it, e.g. the partner's trust domain name; written as `aud`. */
  readonly audience?: string | readonly string[] | undefined;
  /** A line for the person accepting it; at most 1024 characters, no control characters but tab and newline. */
  readonly note?: string | undefined;
  /** Longest ttl allowed (and used for the self-check). Default 24 h, the verifiers' default limit. */
  readonly maxTtlSeconds?: number | undefined;
}

export interface CreatedInvitation {
  /** The compact JWS. A secret of sorts until accepted: never log it. */
  readonly token: string;
  /** The payload as the partner will read it. */
  readonly payload: InvitationPayload;
  /** `jti`. */
  readonly id: string;
  readonly issuedAt: Date;
  readonly expiresAt: Date;
}

const MAX_AUDIENCE_VALUES = 10;
const MAX_AUDIENCE_LENGTH = 2048;
/** Verification codes that mean the key or the SVID is at fault; anything else is the bundle or the size. */
const SIGNER_CODES: ReadonlySet<string> = new Set([
  "ERR_INVITATION_BAD_ALGORITHM",
  "ERR_INVITATION_BAD_SIGNATURE",
  "ERR_INVITATION_UNTRUSTED_SIGNER",
]);

export async function createInvitation(options: CreateInvitationOptions): Promise<CreatedInvitation> {
  const content = checkInvitationContent(options, "ERR_INVITATION_BAD_INPUT");
  const maxTtlSeconds = options.maxTtlSeconds ?? DEFAULT_INVITATION_MAX_TTL_SECONDS;
  const ttl = options.ttlSeconds;
  if (!Number.isSafeInteger(ttl) || ttl < 1 || ttl > maxTtlSeconds) {
    throw badInput("ttlSeconds", `must be a whole number of seconds from 1 to ${maxTtlSeconds}`);
  }
  const audience = readAudience(options.audience);

  const { chain, issuer } = readSigner(options.signer);
  const alg = signingAlgorithm(options.signer.privateKey);
  if (alg === undefined) {
    throw signerInvalid("the key type is not supported (EC P-256/P-384, RSA of 2048 bits or more, Ed25519)");
  }

  const now = options.clock.now();
  const iat = Math.floor(now.getTime() / 1000);
  const exp = iat + ttl;
  const jti = randomBytes(16).toString("base64url");
  const invitation = objectText([
    ["version", writeJson(INVITATION_VERSION)],
    ["trust_domain", writeJson(content.trustDomain)],
    ["endpoint_url", writeJson(content.endpointUrl)],
    ["profile", writeJson(content.profile)],
    ["endpoint_spiffe_id", content.endpointSpiffeId === undefined ? undefined : writeJson(content.endpointSpiffeId)],
    ["note", content.note === undefined ? undefined : writeJson(content.note)],
    // Embedded as an object, not a string, so the decoded payload reads as one JSON document.
    ["bundle", serializeSpiffeBundle(options.bundle)],
  ]);
  const payloadJson = objectText([
    ["iss", writeJson(issuer)],
    ["iat", writeJson(iat)],
    ["exp", writeJson(exp)],
    ["jti", writeJson(jti)],
    ["aud", audience === undefined ? undefined : writeJson(audience.length === 1 ? audience[0]! : audience)],
    [INVITATION_CLAIM, invitation],
  ]);

  let token: string;
  try {
    token = await new CompactSign(new TextEncoder().encode(payloadJson))
      .setProtectedHeader({ alg, typ: INVITATION_TYP, x5c: chain.map((der) => der.toString("base64")) })
      .sign(options.signer.privateKey);
  } catch (cause) {
    throw signerInvalid(`signing failed: ${cause instanceof Error ? cause.message : String(cause)}`, cause);
  }

  try {
    await verifyInvitation(token, {
      clock: { now: () => now },
      maxTtlSeconds,
      ...(audience === undefined ? {} : { expectedAudience: audience[0]! }),
    });
  } catch (cause) {
    const code = isBundlegateError(cause) ? cause.code : undefined;
    const reason = cause instanceof Error ? cause.message : String(cause);
    if (code !== undefined && SIGNER_CODES.has(code)) throw signerInvalid(reason, cause);
    throw new InvitationError(
      "ERR_INVITATION_CREATE_FAILED",
      `this gateway cannot make an invitation a partner would accept: ${reason}`,
      { cause, details: { check: code } },
    );
  }

  return {
    token,
    payload: readableJson(parseStrictJson(payloadJson)) as unknown as InvitationPayload,
    id: jti,
    issuedAt: new Date(iat * 1000),
    expiresAt: new Date(exp * 1000),
  };
}

function readAudience(audience: string | readonly string[] | undefined): readonly string[] | undefined {
  if (audience === undefined) return undefined;
  const values = typeof audience === "string" ? [audience] : audience;
  if (values.length === 0 || values.length > MAX_AUDIENCE_VALUES) {
    throw badInput("audience", `must name 1 to ${MAX_AUDIENCE_VALUES} audiences`);
  }
  for (const value of values) {
    if (typeof value !== "string" || value === "" || value.length > MAX_AUDIENCE_LENGTH) {
      throw badInput("audience", `values must be non-empty strings of at most ${MAX_AUDIENCE_LENGTH} characters`);
    }
  }
  return values;
}

/** The chain as Buffers and the leaf's SPIFFE ID; the full X509-SVID rules run in the self-check. */
function readSigner(signer: InvitationSigner): { chain: Buffer[]; issuer: string } {
  if (signer.chain.length === 0 || signer.chain.length > MAX_CHAIN_CERTIFICATES) {
    throw signerInvalid(`the chain must hold 1 to ${MAX_CHAIN_CERTIFICATES} certificates, leaf first`);
  }
  const chain = signer.chain.map((der) => Buffer.from(der));
  let uris: { type: string; value: string }[];
  try {
    uris = parseSubjectAltName(new X509Certificate(chain[0]!).subjectAltName).filter((san) => san.type === "URI");
  } catch (cause) {
    throw signerInvalid("the first certificate of the chain is not readable", cause);
  }
  if (uris.length !== 1) {
    throw signerInvalid(`the certificate has ${uris.length} URI SANs; an X509-SVID has exactly one`);
  }
  return { chain, issuer: uris[0]!.value };
}

/** `{"name":text,...}` from already-written JSON values, skipping undefined ones, in the given order. */
function objectText(members: ReadonlyArray<readonly [string, string | undefined]>): string {
  const written = members.filter((member): member is readonly [string, string] => member[1] !== undefined);
  return `{${written.map(([name, text]) => `${JSON.stringify(name)}:${text}`).join(",")}}`;
}

function badInput(field: string, reason: string): InvitationError {
  return new InvitationError("ERR_INVITATION_BAD_INPUT", `invitation ${field} ${reason}`, { details: { field } });
}

function signerInvalid(reason: string, cause?: unknown): InvitationError {
  return new InvitationError("ERR_INVITATION_SIGNER_INVALID", `the gateway's SVID cannot sign invitations: ${reason}`, {
    ...(cause === undefined ? {} : { cause }),
    details: isBundlegateError(cause) ? { check: cause.code } : {},
  });
}
