/**
 * Test-side PKI helpers: real keys and X.509 certificates for SPIFFE tests.
 *
 * A thin layer over `src/sources/x509-issuer.ts`, so the tests and `bundlegate dev` share one
 * implementation. Nothing is cached globally; every call generates fresh keys. RSA-2048 key generation
 * is slow (tens to hundreds of milliseconds), so prefer the EC-P256 default unless a test needs RSA.
 */
export {
  type CaOptions,
  type CryptoKey,
  type CryptoKeyPair,
  createCa,
  createJwtKey,
  createNonCaCert,
  createSvid,
  createWebCert,
  exportPkcs8Pem,
  exportPublicKeyJwk as exportPublicJwk,
  generateKeys,
  type Issued,
  type JsonWebKey,
  type KeyAlg,
  type NonCaCertOptions,
  pemChain,
  type SvidOptions,
  type WebCertOptions,
} from "../../src/sources/x509-issuer.js";
