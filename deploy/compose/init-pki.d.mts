// Types of init-pki.mjs, for the tests that run it against src/ (test/ops/container.test.ts).
import type { createDevPki } from "../../src/sources/dev-pki.js";
import type { createCa, createWebCert } from "../../src/sources/x509-issuer.js";
import type { serializeSpiffeBundle } from "../../src/spiffe/codec.js";

export declare const LOCAL_TRUST_DOMAIN: string;
export declare const PARTNER_TRUST_DOMAIN: string;

export interface ComposePkiModules {
  readonly createDevPki: typeof createDevPki;
  readonly createCa: typeof createCa;
  readonly createWebCert: typeof createWebCert;
  readonly serializeSpiffeBundle: typeof serializeSpiffeBundle;
}

export declare function loadModules(distDir: string): Promise<ComposePkiModules>;
export declare function writeComposePki(outDir: string, modules: ComposePkiModules, now?: Date): Promise<boolean>;
