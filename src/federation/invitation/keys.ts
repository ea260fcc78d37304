/**
 * Which JWS algorithm goes with which key. The signer's algorithm follows from its private key; the
 * verifier's allowed algorithms follow from the x5c leaf's public key, so a header can never talk the
 * verifier into another algorithm family (HMAC with the public key as secret, or `none`).
 */
import { KeyObject, type webcrypto } from "node:crypto";
import type { InvitationAlgorithm } from "./format.js";

export type SigningKey = KeyObject | webcrypto.CryptoKey;

/** jose refuses shorter RSA keys too; saying so here gives the refusal its own code. */
const MIN_RSA_BITS = 2048;

const CURVE_ALGORITHMS: Readonly<Record<string, InvitationAlgorithm>> = {
  prime256v1: "ES256",
  "P-256": "ES256",
  secp384r1: "ES384",
  "P-384": "ES384",
};

/** The algorithm a private key signs with, or undefined when invitations do not support it. */
export function signingAlgorithm(key: SigningKey): InvitationAlgorithm | undefined {
  if (isCryptoKey(key)) {
    const algorithm = key.algorithm as { name: string; namedCurve?: string; hash?: { name: string } };
    const modulusLength = (key.algorithm as { modulusLength?: number }).modulusLength ?? 0;
    switch (algorithm.name) {
      case "ECDSA":
        return CURVE_ALGORITHMS[algorithm.namedCurve ?? ""];
      case "RSASSA-PKCS1-v1_5":
        return algorithm.hash?.name === "SHA-256" && modulusLength >= MIN_RSA_BITS ? "RS256" : undefined;
      case "RSA-PSS":
        return algorithm.hash?.name === "SHA-256" && modulusLength >= MIN_RSA_BITS ? "PS256" : undefined;
      case "Ed25519":
        return "EdDSA";
      default:
        return undefined;
    }
  }
  return keyObjectAlgorithms(key)[0];
}

/** The algorithms a signature by this public key may use. Empty when the key type is not supported. */
export function verificationAlgorithms(key: KeyObject): readonly InvitationAlgorithm[] {
  return keyObjectAlgorithms(key);
}

function keyObjectAlgorithms(key: KeyObject): InvitationAlgorithm[] {
  const details = key.asymmetricKeyDetails ?? {};
  switch (key.asymmetricKeyType) {
    case "ec": {
      const alg = CURVE_ALGORITHMS[details.namedCurve ?? ""];
      return alg === undefined ? [] : [alg];
    }
    case "rsa":
      // An rsaEncryption key serves both RSA signature schemes; RS256 is what this signer writes.
      return (details.modulusLength ?? 0) >= MIN_RSA_BITS ? ["RS256", "PS256"] : [];
    case "ed25519":
      return ["EdDSA"];
    default:
      return [];
  }
}

function isCryptoKey(key: SigningKey): key is webcrypto.CryptoKey {
  // Node 20 has no `webcrypto.CryptoKey` class to test against; a KeyObject is the other case.
  return !(key instanceof KeyObject);
}
