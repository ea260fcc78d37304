/**
 * Federation invitations: a token made by createInvitation verifies on the other side to what was put in,
 * reads as plain JSON, and every way of breaking it is refused with its own ERR_INVITATION_* code.
 *
 * Broken tokens are built by hand (forge) with real keys, so each case breaks exactly one rule and the
 * others still hold: a case that tripped an earlier check would pass for the wrong reason.
 */
import { createHmac, createPrivateKey, generateKeyPairSync, X509Certificate } from "node:crypto";
import fc from "fast-check";
import { CompactSign } from "jose";
import { beforeAll, describe, expect, it } from "vitest";
import { manualClock } from "../../src/clock.js";
import { isBundlegateError } from "../../src/errors.js";
import {
  type CreateInvitationOptions,
  createInvitation,
  decodeInvitation,
  INVITATION_TYP,
  MAX_INVITATION_TOKEN_BYTES,
  type VerifiedInvitation,
  verifyInvitation,
} from "../../src/federation/invitation.js";
import {
  createTrustBundle,
  jwtAuthority,
  type TrustBundle,
  x509AuthorityFromCertificate,
} from "../../src/spiffe/bundle.js";
import { serializeSpiffeBundle } from "../../src/spiffe/codec.js";
import { bundleDigest } from "../../src/spiffe/digest.js";
import type { PublicJwk } from "../../src/spiffe/public-key.js";
import { type CryptoKey, createCa, createJwtKey, createSvid, type Issued, type KeyAlg } from "../support/pki.js";

const T0 = new Date("2031-03-01T12:00:00.000Z");
const T0_SECONDS = T0.getTime() / 1000;
const TD = "example.org";
const SIGNER_ID = "spiffe://example.org/bundlegate";
const ENDPOINT_ID = "spiffe://example.org/bundlegate";
const ENDPOINT_URL = "https://bundles.example.org/bundle";
const BIG_SEQUENCE = 2n ** 60n; // past 2^53: JSON.parse would round it

let ca: Issued;
let svid: Issued;
let bundle: TrustBundle;
let bundleText: string;
let otherKey: Issued;

beforeAll(async () => {
  ca = await createCa({ trustDomain: TD, now: T0 });
  svid = await createSvid({ issuer: ca, spiffeId: SIGNER_ID, now: T0 });
  otherKey = await createSvid({ issuer: ca, spiffeId: "spiffe://example.org/other", now: T0 });
  const jwt = await createJwtKey();
  bundle = createTrustBundle({
    x509Authorities: [x509AuthorityFromCertificate(new X509Certificate(ca.der))],
    jwtAuthorities: [jwtAuthority("jwt-1", jwt.publicJwk as PublicJwk)],
    refreshHintSeconds: 300,
    sequence: BIG_SEQUENCE,
  });
  bundleText = serializeSpiffeBundle(bundle);
});

function bundleOf(...authorities: Issued[]): TrustBundle {
  return createTrustBundle({
    x509Authorities: authorities.map((issued) => x509AuthorityFromCertificate(new X509Certificate(issued.der))),
  });
}

function options(overrides: Partial<CreateInvitationOptions> = {}): CreateInvitationOptions {
  return {
    trustDomain: TD,
    endpointUrl: ENDPOINT_URL,
    profile: "https_spiffe",
    endpointSpiffeId: ENDPOINT_ID,
    bundle,
    signer: { privateKey: svid.keys.privateKey, chain: [svid.der] },
    clock: manualClock(T0),
    ttlSeconds: 3600,
    ...overrides,
  };
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  try {
    await promise;
  } catch (error) {
    if (isBundlegateError(error)) return error.code;
    throw error;
  }
  return "(accepted)";
}

function b64url(text: string | Uint8Array): string {
  return Buffer.from(text).toString("base64url");
}

function derB64(issued: Issued): string {
  return Buffer.from(issued.der).toString("base64");
}

// --- forging tokens rule by rule --------------------------------------------------------------------

interface ForgeOptions {
  /** Members of the bundlegate_invitation object, merged over valid ones; undefined removes one. */
  invitation?: Record<string, unknown>;
  /** Top-level claims merged over valid ones; undefined removes one. */
  claims?: Record<string, unknown>;
  /** Raw JSON text for the bundle member. */
  bundleJson?: string;
  /** Replaces the whole payload text. */
  payloadJson?: string;
  header?: Record<string, unknown>;
  /** Key that signs; default the SVID's. */
  key?: CryptoKey;
  chain?: Issued[];
}

function payloadText(forge: ForgeOptions): string {
  if (forge.payloadJson !== undefined) return forge.payloadJson;
  const invitation = withoutUndefined({
    version: 1,
    trust_domain: TD,
    endpoint_url: ENDPOINT_URL,
    profile: "https_spiffe",
    endpoint_spiffe_id: ENDPOINT_ID,
    bundle: "@BUNDLE@",
    ...forge.invitation,
  });
  const claims = withoutUndefined({
    iss: SIGNER_ID,
    iat: T0_SECONDS,
    exp: T0_SECONDS + 3600,
    jti: "forged-1",
    ...forge.claims,
    bundlegate_invitation: invitation,
  });
  // The bundle goes in as text so a 64-bit sequence (or a deliberately broken document) stays as written.
  return JSON.stringify(claims).replace('"@BUNDLE@"', forge.bundleJson ?? bundleText);
}

function withoutUndefined(record: Record<string, unknown>): Record<string, unknown> {
  return Object.fromEntries(Object.entries(record).filter(([, value]) => value !== undefined));
}

async function forge(forgeOptions: ForgeOptions = {}): Promise<string> {
  const chain = forgeOptions.chain ?? [svid];
  const header = withoutUndefined({
    alg: "ES256",
    typ: INVITATION_TYP,
    x5c: chain.map(derB64),
    ...forgeOptions.header,
  });
  return new CompactSign(new TextEncoder().encode(payloadText(forgeOptions)))
    .setProtectedHeader(header as { alg: string })
    .sign(forgeOptions.key ?? svid.keys.privateKey);
}

/** A token with a hand-written header and signature bytes, for what jose refuses to produce. */
function rawToken(header: Record<string, unknown>, payload: string, sign: (input: string) => string): string {
  const input = `${b64url(JSON.stringify(header))}.${b64url(payload)}`;
  return `${input}.${sign(input)}`;
}

function summary(verified: VerifiedInvitation) {
  return {
    id: verified.id,
    issuer: verified.issuer,
    trustDomain: verified.trustDomain,
    endpointUrl: verified.endpointUrl,
    profile: verified.profile,
    endpointSpiffeId: verified.endpointSpiffeId,
    bundleDigest: verified.bundleDigest,
    expiresAt: verified.expiresAt.toISOString(),
  };
}

// --- round trips ------------------------------------------------------------------------------------

describe("round trip", () => {
  it("verifies to what was put in, bundle included, sequence exact", async () => {
    const clock = manualClock(T0);
    const created = await createInvitation(options({ clock, note: "ACME onboarding\tticket 42" }));
    expect(created.expiresAt).toEqual(new Date(T0.getTime() + 3600_000));
    expect(created.issuedAt).toEqual(T0);

    clock.advance(10 * 60_000);
    const verified = await verifyInvitation(created.token, { clock });
    expect(verified).toMatchObject({
      id: created.id,
      issuer: SIGNER_ID,
      trustDomain: TD,
      endpointUrl: ENDPOINT_URL,
      profile: "https_spiffe",
      endpointSpiffeId: ENDPOINT_ID,
      note: "ACME onboarding\tticket 42",
      expiresAt: created.expiresAt,
      issuedAt: T0,
      bundleWarnings: [],
    });
    expect(verified.audience).toBeUndefined();
    expect(verified.bundle.sequence).toBe(BIG_SEQUENCE);
    expect(verified.bundle.refreshHintSeconds).toBe(300);
    expect(serializeSpiffeBundle(verified.bundle)).toBe(bundleText);
    expect(verified.bundleDigest).toBe(bundleDigest(bundle));
    expect(verified.signerFingerprint).toBe(
      new X509Certificate(svid.der).fingerprint256.replace(/:/g, "").toLowerCase(),
    );
  });

  it("gives every invitation its own id", async () => {
    const [a, b] = await Promise.all([createInvitation(options()), createInvitation(options())]);
    expect(a.id).not.toBe(b.id);
    expect(a.token).not.toBe(b.token);
  });

  it.each<[KeyAlg, string]>([
    ["EC-P256", "ES256"],
    ["EC-P384", "ES384"],
    ["RSA-2048", "RS256"],
    ["Ed25519", "EdDSA"],
  ])("signs with an %s SVID key as %s", async (keyAlg, alg) => {
    const signer = await createSvid({ issuer: ca, spiffeId: SIGNER_ID, keyAlg, now: T0 });
    const created = await createInvitation(
      options({ signer: { privateKey: signer.keys.privateKey, chain: [signer.der] } }),
    );
    expect(decodeInvitation(created.token).header.alg).toBe(alg);
    const verified = await verifyInvitation(created.token, { clock: manualClock(T0) });
    expect(verified.issuer).toBe(SIGNER_ID);
  });

  it("accepts a node KeyObject as the signing key", async () => {
    const privateKey = createPrivateKey(svid.keyPem);
    const created = await createInvitation(options({ signer: { privateKey, chain: [svid.der] } }));
    await expect(verifyInvitation(created.token, { clock: manualClock(T0) })).resolves.toMatchObject({
      trustDomain: TD,
    });
  });

  it("verifies an RSA signer using PS256 too", async () => {
    const rsa = await createSvid({ issuer: ca, spiffeId: SIGNER_ID, keyAlg: "RSA-2048", now: T0 });
    const token = await new CompactSign(new TextEncoder().encode(payloadText({})))
      .setProtectedHeader({ alg: "PS256", typ: INVITATION_TYP, x5c: [derB64(rsa)] })
      .sign(createPrivateKey(rsa.keyPem));
    await expect(verifyInvitation(token, { clock: manualClock(T0) })).resolves.toMatchObject({ issuer: SIGNER_ID });
  });

  it("follows an intermediate CA carried in x5c", async () => {
    const intermediate = await createCa({ trustDomain: TD, issuer: ca, now: T0 });
    const leaf = await createSvid({ issuer: intermediate, spiffeId: SIGNER_ID, now: T0 });
    const created = await createInvitation(
      options({ signer: { privateKey: leaf.keys.privateKey, chain: [leaf.der, intermediate.der] } }),
    );
    expect(decodeInvitation(created.token).header.x5c).toEqual([derB64(leaf), derB64(intermediate)]);
    await expect(verifyInvitation(created.token, { clock: manualClock(T0) })).resolves.toMatchObject({
      issuer: SIGNER_ID,
    });
  });

  it("carries an https_web invitation without an endpoint SPIFFE ID", async () => {
    const created = await createInvitation(options({ profile: "https_web", endpointSpiffeId: undefined }));
    const verified = await verifyInvitation(created.token, { clock: manualClock(T0) });
    expect(verified.profile).toBe("https_web");
    expect(verified.endpointSpiffeId).toBeUndefined();
    expect("endpointSpiffeId" in verified).toBe(false);
  });

  it("carries an audience and lets only that audience accept it", async () => {
    const created = await createInvitation(options({ audience: "partner.org" }));
    expect(created.payload.aud).toBe("partner.org");
    const clock = manualClock(T0);
    await expect(verifyInvitation(created.token, { clock, expectedAudience: "partner.org" })).resolves.toMatchObject({
      audience: ["partner.org"],
    });
    expect(await codeOf(verifyInvitation(created.token, { clock, expectedAudience: "elsewhere.org" }))).toBe(
      "ERR_INVITATION_WRONG_AUDIENCE",
    );
    expect(await codeOf(verifyInvitation(created.token, { clock }))).toBe("ERR_INVITATION_WRONG_AUDIENCE");

    const several = await createInvitation(options({ audience: ["a.org", "b.org"] }));
    expect(several.payload.aud).toEqual(["a.org", "b.org"]);
    await expect(verifyInvitation(several.token, { clock, expectedAudience: "b.org" })).resolves.toBeDefined();
  });

  it("lets any verifier accept an invitation without an audience", async () => {
    const created = await createInvitation(options());
    await expect(
      verifyInvitation(created.token, { clock: manualClock(T0), expectedAudience: "partner.org" }),
    ).resolves.toBeDefined();
  });
});

// --- readable JSON ----------------------------------------------------------------------------------

describe("readable token", () => {
  it("decodes with plain base64url and JSON.parse to the documented fields", async () => {
    const created = await createInvitation(options({ note: "hello" }));
    const [headerPart, payloadPart, signaturePart] = created.token.split(".");
    expect(signaturePart).toMatch(/^[A-Za-z0-9_-]+$/);

    const header = JSON.parse(Buffer.from(headerPart!, "base64url").toString("utf8"));
    expect(header).toEqual({ alg: "ES256", typ: "bundlegate-invitation+jwt", x5c: [derB64(svid)] });

    const payload = JSON.parse(Buffer.from(payloadPart!, "base64url").toString("utf8"));
    expect(Object.keys(payload)).toEqual(["iss", "iat", "exp", "jti", "bundlegate_invitation"]);
    expect(payload).toMatchObject({ iss: SIGNER_ID, iat: T0_SECONDS, exp: T0_SECONDS + 3600, jti: created.id });
    expect(payload.bundlegate_invitation).toMatchObject({
      version: 1,
      trust_domain: TD,
      endpoint_url: ENDPOINT_URL,
      profile: "https_spiffe",
      endpoint_spiffe_id: ENDPOINT_ID,
      note: "hello",
    });
    const innerBundle = payload.bundlegate_invitation.bundle;
    expect(innerBundle.keys[0]).toMatchObject({ use: "x509-svid", kty: "EC", x5c: [derB64(ca)] });
    expect(innerBundle.keys[1]).toMatchObject({ use: "jwt-svid", kid: "jwt-1" });
    expect(innerBundle.spiffe_refresh_hint).toBe(300);
    // The text itself carries the bundle exactly as serializeSpiffeBundle writes it.
    expect(Buffer.from(payloadPart!, "base64url").toString("utf8")).toContain(`"bundle":${bundleText}}`);
  });

  it("decodeInvitation shows header and payload, exact where JSON.parse would round", async () => {
    const created = await createInvitation(options());
    const decoded = decodeInvitation(created.token);
    expect(decoded.header).toEqual({ alg: "ES256", typ: INVITATION_TYP, x5c: [derB64(svid)] });
    expect(decoded.payload).toEqual(created.payload);
    const bundleView = (decoded.payload.bundlegate_invitation as { bundle: Record<string, unknown> }).bundle;
    expect(bundleView.spiffe_sequence).toBe(BIG_SEQUENCE.toString());
    expect(decoded.payloadJson).toContain(`"spiffe_sequence":${BIG_SEQUENCE}`);
    expect(JSON.parse(decoded.headerJson)).toEqual(decoded.header);
  });

  it("decodeInvitation reads an expired or untrusted token without judging it", async () => {
    const stranger = await createCa({ trustDomain: TD, now: T0 });
    const token = await forge({
      claims: { exp: T0_SECONDS - 10, iat: T0_SECONDS - 20 },
      bundleJson: serializeSpiffeBundle(bundleOf(stranger)),
    });
    expect(decodeInvitation(token).payload.exp).toBe(T0_SECONDS - 10);
  });

  it.each([
    ["not a JWS", "hello"],
    ["four parts", "a.b.c.d"],
    ["a payload that is not JSON", `${b64url("{}")}.${b64url("nope")}.${b64url("sig")}`],
    ["a header that is a JSON array", `${b64url("[]")}.${b64url("{}")}.${b64url("sig")}`],
    ["duplicate payload members", `${b64url("{}")}.${b64url('{"a":1,"a":2}')}.${b64url("sig")}`],
  ])("decodeInvitation refuses %s as malformed", (_name, token) => {
    expect(() => decodeInvitation(token)).toThrow(expect.objectContaining({ code: "ERR_INVITATION_MALFORMED" }));
  });
});

// --- refusals ---------------------------------------------------------------------------------------

describe("verifyInvitation refuses", () => {
  const clock = () => manualClock(T0);

  async function expectRefused(token: string | Promise<string>, code: string, verifyClock = clock()) {
    let caught: unknown;
    try {
      await verifyInvitation(await token, { clock: verifyClock });
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({ code, status: 400, expose: true });
    return caught as Error & { details: Record<string, unknown> };
  }

  it("a forged token that breaks nothing is accepted (the baseline the cases below break)", async () => {
    await expect(verifyInvitation(await forge(), { clock: clock() })).resolves.toMatchObject({ id: "forged-1" });
  });

  it("a tampered payload", async () => {
    const [header, payload, signature] = (await createInvitation(options())).token.split(".");
    const text = Buffer.from(payload!, "base64url").toString("utf8").replace(ENDPOINT_URL, "https://evil.example/b");
    await expectRefused(`${header}.${b64url(text)}.${signature}`, "ERR_INVITATION_BAD_SIGNATURE");
  });

  it("a tampered header", async () => {
    const [, payload, signature] = (await createInvitation(options())).token.split(".");
    const header = b64url(JSON.stringify({ alg: "ES256", typ: `application/${INVITATION_TYP}`, x5c: [derB64(svid)] }));
    await expectRefused(`${header}.${payload}.${signature}`, "ERR_INVITATION_BAD_SIGNATURE");
  });

  it("a signature by another key than the x5c leaf's", async () => {
    await expectRefused(forge({ key: otherKey.keys.privateKey }), "ERR_INVITATION_BAD_SIGNATURE");
  });

  it("an empty signature", async () => {
    const [header, payload] = (await forge()).split(".");
    await expectRefused(`${header}.${payload}.`, "ERR_INVITATION_BAD_SIGNATURE");
  });

  it("a leaf that does not chain to the bundle inside", async () => {
    const stranger = await createCa({ trustDomain: TD, now: T0 });
    const error = await expectRefused(
      forge({ bundleJson: serializeSpiffeBundle(bundleOf(stranger)) }),
      "ERR_INVITATION_UNTRUSTED_SIGNER",
    );
    expect(error.details.check).toBe("ERR_SVID_NOT_CHAINED");
  });

  it("a leaf whose SPIFFE ID is in another trust domain", async () => {
    const foreign = await createSvid({ issuer: ca, spiffeId: "spiffe://other.org/bundlegate", now: T0 });
    await expectRefused(
      forge({ chain: [foreign], key: foreign.keys.privateKey, claims: { iss: "spiffe://other.org/bundlegate" } }),
      "ERR_INVITATION_UNTRUSTED_SIGNER",
    );
  });

  it("an iss that is not the leaf's SPIFFE ID", async () => {
    const error = await expectRefused(
      forge({ claims: { iss: "spiffe://example.org/someone-else" } }),
      "ERR_INVITATION_UNTRUSTED_SIGNER",
    );
    expect(error.details.check).toBe("ERR_SVID_WRONG_ID");
  });

  it("an iss that is not a SPIFFE ID", async () => {
    await expectRefused(forge({ claims: { iss: "https://example.org" } }), "ERR_INVITATION_UNTRUSTED_SIGNER");
  });

  it("a leaf that is a CA, not an SVID", async () => {
    await expectRefused(
      forge({ chain: [ca], key: ca.keys.privateKey, claims: { iss: "spiffe://example.org" } }),
      "ERR_INVITATION_UNTRUSTED_SIGNER",
    );
  });

  it("a leaf that expired before the token did", async () => {
    const shortLived = await createSvid({
      issuer: ca,
      spiffeId: SIGNER_ID,
      notBefore: new Date(T0.getTime() - 7200_000),
      notAfter: new Date(T0.getTime() - 60_000),
    });
    const error = await expectRefused(
      forge({ chain: [shortLived], key: shortLived.keys.privateKey }),
      "ERR_INVITATION_UNTRUSTED_SIGNER",
    );
    expect(error.details.check).toBe("ERR_TLS_CERT_EXPIRED");
  });

  it("an expired token, from the second of exp on", async () => {
    const created = await createInvitation(options({ ttlSeconds: 600 }));
    const verifyClock = manualClock(new Date(created.expiresAt.getTime() - 1));
    await expect(verifyInvitation(created.token, { clock: verifyClock })).resolves.toBeDefined();
    verifyClock.advance(1);
    await expectRefused(created.token, "ERR_INVITATION_EXPIRED", verifyClock);
  });

  it("an iat in the future beyond the skew allowance, but not within it", async () => {
    await expect(
      verifyInvitation(await forge({ claims: { iat: T0_SECONDS + 60, exp: T0_SECONDS + 3600 } }), { clock: clock() }),
    ).resolves.toBeDefined();
    await expectRefused(
      forge({ claims: { iat: T0_SECONDS + 61, exp: T0_SECONDS + 3600 } }),
      "ERR_INVITATION_NOT_YET_VALID",
    );
  });

  it("an nbf in the future", async () => {
    await expectRefused(forge({ claims: { nbf: T0_SECONDS + 600 } }), "ERR_INVITATION_NOT_YET_VALID");
  });

  it("a lifetime over the default 24 h, or over the verifier's own limit", async () => {
    await expect(
      verifyInvitation(await forge({ claims: { exp: T0_SECONDS + 86_400 } }), { clock: clock() }),
    ).resolves.toBeDefined();
    await expectRefused(forge({ claims: { exp: T0_SECONDS + 86_401 } }), "ERR_INVITATION_TTL_TOO_LONG");
    const created = await createInvitation(options({ ttlSeconds: 3600 }));
    expect(await codeOf(verifyInvitation(created.token, { clock: clock(), maxTtlSeconds: 3599 }))).toBe(
      "ERR_INVITATION_TTL_TOO_LONG",
    );
  });

  it("exp not after iat", async () => {
    await expectRefused(forge({ claims: { iat: T0_SECONDS, exp: T0_SECONDS } }), "ERR_INVITATION_MALFORMED");
  });

  it("alg none", async () => {
    const token = rawToken({ alg: "none", typ: INVITATION_TYP, x5c: [derB64(svid)] }, payloadText({}), () => "");
    await expectRefused(token, "ERR_INVITATION_BAD_ALGORITHM");
  });

  it("HS256 keyed with the leaf's public key", async () => {
    const secret = new X509Certificate(svid.der).publicKey.export({ type: "spki", format: "der" });
    const token = rawToken({ alg: "HS256", typ: INVITATION_TYP, x5c: [derB64(svid)] }, payloadText({}), (input) =>
      createHmac("sha256", secret).update(input).digest("base64url"),
    );
    await expectRefused(token, "ERR_INVITATION_BAD_ALGORITHM");
  });

  it("an algorithm that does not fit the leaf's key", async () => {
    const token = rawToken({ alg: "RS256", typ: INVITATION_TYP, x5c: [derB64(svid)] }, payloadText({}), () =>
      b64url("x".repeat(256)),
    );
    await expectRefused(token, "ERR_INVITATION_BAD_ALGORITHM");
  });

  it("a leaf key type invitations do not use (P-521)", async () => {
    const { privateKey } = generateKeyPairSync("ec", { namedCurve: "secp521r1" });
    const token = await forge({ header: { alg: "ES512" }, key: privateKey as unknown as CryptoKey });
    await expectRefused(token, "ERR_INVITATION_BAD_ALGORITHM");
  });

  it.each<[string, Record<string, unknown>]>([
    ["a missing x5c", { x5c: undefined }],
    ["an empty x5c", { x5c: [] }],
    ["an x5c entry that is not base64", { x5c: ["not base64!"] }],
    ["an x5c entry that is base64url", { x5c: ["-_-_"] }],
    ["an x5c entry that is not a certificate", { x5c: [Buffer.from("hello").toString("base64")] }],
    ["a missing typ", { typ: undefined }],
    ["another typ", { typ: "JWT" }],
    ["a jwk member", { jwk: { kty: "EC" } }],
    ["a kid member", { kid: "k1" }],
  ])("a header with %s", async (_name, header) => {
    await expectRefused(forge({ header }), "ERR_INVITATION_MALFORMED");
  });

  it("a crit member (jose would not even sign it)", async () => {
    const header = { alg: "ES256", typ: INVITATION_TYP, x5c: [derB64(svid)], crit: ["exp"], exp: 1 };
    await expectRefused(
      rawToken(header, payloadText({}), () => b64url("sig")),
      "ERR_INVITATION_MALFORMED",
    );
  });

  it("an x5c certificate with bytes after its DER", async () => {
    const padded = Buffer.concat([Buffer.from(svid.der), Buffer.from([0])]).toString("base64");
    const token = rawToken({ alg: "ES256", typ: INVITATION_TYP, x5c: [padded] }, payloadText({}), () => b64url("sig"));
    await expectRefused(token, "ERR_INVITATION_MALFORMED");
  });

  it("an oversize token, before decoding anything", async () => {
    await expectRefused("a".repeat(MAX_INVITATION_TOKEN_BYTES + 1), "ERR_INVITATION_TOO_LARGE");
    const [header, , signature] = (await forge()).split(".");
    const padded = `${header}.${b64url(" ".repeat(MAX_INVITATION_TOKEN_BYTES))}.${signature}`;
    await expectRefused(padded, "ERR_INVITATION_TOO_LARGE");
  });

  it.each([
    ["two parts", (t: string) => t.split(".").slice(0, 2).join(".")],
    ["four parts", (t: string) => `${t}.x`],
    ["padding", (t: string) => t.replace(".", "=.")],
    ["a character outside base64url", (t: string) => `*${t}`],
    ["surrounding whitespace", (t: string) => ` ${t}\n`],
    ["an empty header", (t: string) => t.slice(t.indexOf("."))],
  ])("a token with %s", async (_name, mutate) => {
    await expectRefused(mutate(await forge()), "ERR_INVITATION_MALFORMED");
  });

  it("non-canonical base64url (stray bits in the last character)", async () => {
    const [header, payload, signature] = (await forge()).split(".");
    // 1 byte of signature would take 2 characters; find a payload whose length leaves stray bits, then set them.
    const last = payload!.at(-1)!;
    const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    const remainder = payload!.length % 4;
    expect(remainder).not.toBe(0);
    const mask = remainder === 2 ? 0x0f : 0x03;
    const index = alphabet.indexOf(last);
    const sibling = alphabet[(index & ~mask) | ((index + 1) & mask)]!;
    const mutated = `${header}.${payload!.slice(0, -1)}${sibling}.${signature}`;
    expect(Buffer.from(mutated.split(".")[1]!, "base64url")).toEqual(Buffer.from(payload!, "base64url"));
    await expectRefused(mutated, "ERR_INVITATION_MALFORMED");
  });

  it("a bundle with a duplicate member inside, keeping the codec's code as the cause", async () => {
    const duplicated = bundleText.replace('"use":"x509-svid"', '"use":"x509-svid","use":"x509-svid"');
    const error = await expectRefused(forge({ bundleJson: duplicated }), "ERR_INVITATION_BAD_BUNDLE");
    expect(error.cause).toMatchObject({ code: "ERR_BUNDLE_DUPLICATE_MEMBER" });
  });

  it.each([
    ["no keys member", '{"spiffe_refresh_hint":300}', "ERR_BUNDLE_KEYS_MISSING"],
    [
      "a private key member",
      () => bundleText.replace('"use":"x509-svid"', '"use":"x509-svid","d":"AAAA"'),
      "ERR_BUNDLE_PRIVATE_KEY",
    ],
    ["a negative sequence", '{"keys":[],"spiffe_sequence":-1}', "ERR_BUNDLE_BAD_SEQUENCE"],
    ["a sequence past 2^64-1", '{"keys":[],"spiffe_sequence":18446744073709551616}', "ERR_BUNDLE_BAD_SEQUENCE"],
    ["a string instead of an object", '"keys"', "ERR_BUNDLE_NOT_OBJECT"],
  ])("a bundle with %s", async (_name, bundleJson, check) => {
    const text = typeof bundleJson === "function" ? bundleJson() : bundleJson;
    const error = await expectRefused(forge({ bundleJson: text }), "ERR_INVITATION_BAD_BUNDLE");
    expect(error.details.check).toBe(check);
  });

  it.each<[string, Record<string, unknown>]>([
    ["an http endpoint URL", { endpoint_url: "http://bundles.example.org/bundle" }],
    ["an endpoint URL with userinfo", { endpoint_url: "https://user:pw@bundles.example.org/" }],
    ["an endpoint URL with a fragment", { endpoint_url: "https://bundles.example.org/#x" }],
    ["an endpoint URL with whitespace", { endpoint_url: "https://bundles.example.org/ x" }],
    ["https_spiffe without an endpoint SPIFFE ID", { endpoint_spiffe_id: undefined }],
    ["https_web with an endpoint SPIFFE ID", { profile: "https_web" }],
    ["an unknown profile", { profile: "http" }],
    ["an endpoint SPIFFE ID in another trust domain", { endpoint_spiffe_id: "spiffe://other.org/bundlegate" }],
    ["an endpoint SPIFFE ID without a path", { endpoint_spiffe_id: "spiffe://example.org" }],
    ["an endpoint SPIFFE ID that is not one", { endpoint_spiffe_id: "spiffe://Example.org/x" }],
    ["a trust domain that is a SPIFFE ID", { trust_domain: "spiffe://example.org" }],
    ["a note with an escape sequence", { note: "\u001b[2Jcleared" }],
    ["a note over 1024 characters", { note: "n".repeat(1025) }],
  ])("content with %s", async (_name, invitation) => {
    await expectRefused(forge({ invitation }), "ERR_INVITATION_BAD_CONTENT");
  });

  it("a trust domain other than the signer's", async () => {
    // Everything else is consistent: the signer is simply not of the domain it speaks for.
    await expectRefused(
      forge({ invitation: { trust_domain: "other.org", endpoint_spiffe_id: "spiffe://other.org/bundlegate" } }),
      "ERR_INVITATION_UNTRUSTED_SIGNER",
    );
  });

  it("a version it does not know", async () => {
    await expectRefused(forge({ invitation: { version: 2, extra: true } }), "ERR_INVITATION_UNSUPPORTED_VERSION");
  });

  it.each<[string, ForgeOptions]>([
    ["an unknown invitation member", { invitation: { endpoint_ca: "x" } }],
    ["no version", { invitation: { version: undefined } }],
    ["no bundle", { invitation: { bundle: undefined } }],
    ["a numeric trust domain", { invitation: { trust_domain: 42 } }],
    ["no iss", { claims: { iss: undefined } }],
    ["no jti", { claims: { jti: undefined } }],
    ["a fractional exp", { claims: { exp: T0_SECONDS + 0.5 } }],
    ["a string iat", { claims: { iat: String(T0_SECONDS) } }],
    ["an empty aud array", { claims: { aud: [] } }],
    ["a payload that is an array", { payloadJson: "[]" }],
    ["a duplicate claim", { payloadJson: `{"iss":"${SIGNER_ID}","iss":"${SIGNER_ID}"}` }],
  ])("a payload with %s", async (_name, forgeOptions) => {
    await expectRefused(forge(forgeOptions), "ERR_INVITATION_MALFORMED");
  });

  it("ignores claims it does not know outside bundlegate_invitation", async () => {
    await expect(
      verifyInvitation(await forge({ claims: { sub: "whatever", x_partner: { a: 1 } } }), { clock: clock() }),
    ).resolves.toBeDefined();
  });
});

// --- creating -----------------------------------------------------------------------------------------

describe("createInvitation refuses", () => {
  it.each<[string, Partial<CreateInvitationOptions>]>([
    ["an http endpoint URL", { endpointUrl: "http://bundles.example.org/" }],
    ["https_spiffe without an endpoint SPIFFE ID", { endpointSpiffeId: undefined }],
    ["https_web with an endpoint SPIFFE ID", { profile: "https_web" }],
    ["a bad trust domain", { trustDomain: "Example.org" }],
    ["a zero ttl", { ttlSeconds: 0 }],
    ["a fractional ttl", { ttlSeconds: 1.5 }],
    ["a ttl over 24 h", { ttlSeconds: 86_401 }],
    ["a ttl over its own maximum", { ttlSeconds: 601, maxTtlSeconds: 600 }],
    ["an empty audience", { audience: [] }],
    ["an empty audience value", { audience: "" }],
  ])("%s as bad input (400)", async (_name, overrides) => {
    await expect(createInvitation(options(overrides))).rejects.toMatchObject({
      code: "ERR_INVITATION_BAD_INPUT",
      status: 400,
      expose: true,
    });
  });

  it("a key that is not the SVID's as a signer problem (500)", async () => {
    await expect(
      createInvitation(options({ signer: { privateKey: otherKey.keys.privateKey, chain: [svid.der] } })),
    ).rejects.toMatchObject({ code: "ERR_INVITATION_SIGNER_INVALID", status: 500, expose: false });
  });

  it("an SVID that does not chain to this domain's own bundle", async () => {
    const stranger = await createCa({ trustDomain: TD, now: T0 });
    const error = await createInvitation(options({ bundle: bundleOf(stranger) })).catch((e: unknown) => e);
    expect(error).toMatchObject({
      code: "ERR_INVITATION_SIGNER_INVALID",
      details: { check: "ERR_INVITATION_UNTRUSTED_SIGNER" },
    });
    expect((error as Error).cause).toMatchObject({ code: "ERR_INVITATION_UNTRUSTED_SIGNER" });
  });

  it("an SVID of another trust domain than the one invited to", async () => {
    await expect(
      createInvitation(options({ trustDomain: "other.org", endpointSpiffeId: "spiffe://other.org/bundlegate" })),
    ).rejects.toMatchObject({ code: "ERR_INVITATION_SIGNER_INVALID" });
  });

  it("an empty chain, an unreadable leaf, or a key type invitations do not use", async () => {
    const p521 = generateKeyPairSync("ec", { namedCurve: "secp521r1" }).privateKey;
    for (const signer of [
      { privateKey: svid.keys.privateKey, chain: [] },
      { privateKey: svid.keys.privateKey, chain: [new Uint8Array([0x30, 0x00])] },
      { privateKey: p521, chain: [svid.der] },
    ]) {
      await expect(createInvitation(options({ signer }))).rejects.toMatchObject({
        code: "ERR_INVITATION_SIGNER_INVALID",
      });
    }
  });

  it("a bundle too large for a partner to accept", async () => {
    const { publicJwk } = await createJwtKey();
    const jwtAuthorities = Array.from({ length: 600 }, (_, i) => jwtAuthority(`key-${i}`, publicJwk as PublicJwk));
    const large = createTrustBundle({ x509Authorities: bundle.x509Authorities, jwtAuthorities });
    await expect(createInvitation(options({ bundle: large }))).rejects.toMatchObject({
      code: "ERR_INVITATION_CREATE_FAILED",
      status: 500,
      details: { check: "ERR_INVITATION_BAD_BUNDLE" },
    });
  });
});

// --- properties ---------------------------------------------------------------------------------------

describe("properties", () => {
  const ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";
  const mutation = fc.oneof(
    fc.record({ kind: fc.constant("replace" as const), at: fc.nat(), char: fc.constantFrom(...ALPHABET) }),
    fc.record({ kind: fc.constant("insert" as const), at: fc.nat(), char: fc.constantFrom(...ALPHABET) }),
    fc.record({ kind: fc.constant("delete" as const), at: fc.nat(), length: fc.integer({ min: 1, max: 8 }) }),
    fc.record({ kind: fc.constant("swap" as const), a: fc.nat(2), b: fc.nat(2) }),
  );
  type Mutation = typeof mutation extends fc.Arbitrary<infer T> ? T : never;

  function apply(token: string, m: Mutation): string {
    switch (m.kind) {
      case "replace": {
        const at = m.at % token.length;
        return token.slice(0, at) + m.char + token.slice(at + 1);
      }
      case "insert": {
        const at = m.at % (token.length + 1);
        return token.slice(0, at) + m.char + token.slice(at);
      }
      case "delete": {
        const at = m.at % token.length;
        return token.slice(0, at) + token.slice(at + m.length);
      }
      case "swap": {
        const parts = token.split(".");
        [parts[m.a], parts[m.b]] = [parts[m.b]!, parts[m.a]!];
        return parts.join(".");
      }
    }
  }

  async function outcome(token: string): Promise<{ ok: VerifiedInvitation } | { error: unknown }> {
    try {
      return { ok: await verifyInvitation(token, { clock: manualClock(T0) }) };
    } catch (error) {
      return { error };
    }
  }

  function expectInvitationError(error: unknown) {
    expect(isBundlegateError(error) && error.code.startsWith("ERR_INVITATION_"), String(error)).toBe(true);
  }

  it("a mutated token verifies to the same content or fails with an ERR_INVITATION_* code", async () => {
    const created = await createInvitation(options({ note: "property" }));
    const original = summary(await verifyInvitation(created.token, { clock: manualClock(T0) }));
    await fc.assert(
      fc.asyncProperty(fc.array(mutation, { minLength: 1, maxLength: 3 }), async (mutations) => {
        const mutated = mutations.reduce(apply, created.token);
        const result = await outcome(mutated);
        if ("ok" in result) expect(summary(result.ok)).toEqual(original);
        else expectInvitationError(result.error);
      }),
      { numRuns: 1000 },
    );
  });

  it("a mutated payload signed with the right key verifies or fails with an ERR_INVITATION_* code", async () => {
    const text = payloadText({});
    const PAYLOAD_CHARS = [...'{}[]",:0123456789.-eE truefalsn\\u/@x_'];
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ at: fc.nat(), char: fc.constantFrom(...PAYLOAD_CHARS), insert: fc.boolean() }), {
          minLength: 1,
          maxLength: 4,
        }),
        async (edits) => {
          const mutated = edits.reduce((acc, edit) => {
            const at = edit.at % acc.length;
            return acc.slice(0, at) + edit.char + acc.slice(edit.insert ? at : at + 1);
          }, text);
          const result = await outcome(await forge({ payloadJson: mutated }));
          if ("error" in result) expectInvitationError(result.error);
        },
      ),
      { numRuns: 200 },
    );
  });
});
