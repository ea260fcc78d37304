import { createHash, createPrivateKey, createPublicKey, X509Certificate } from "node:crypto";
import { chmodSync, mkdtempSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { pino } from "pino";
import { afterEach, beforeAll, beforeEach, describe, expect, it, vi } from "vitest";
import { manualClock } from "../../src/clock.js";
import { isBundlegateError } from "../../src/errors.js";
import {
  checkSvidCredentials,
  checkWebCredentials,
  createFileCredentialSource,
  type FileCredentialSource,
  loadTlsCredentialFiles,
  loadTlsCredentials,
  TlsCredentialsError,
} from "../../src/sources/tls-credentials.js";
import type { TlsCredentials, Watched } from "../../src/sources/types.js";
import { createTrustBundle, type TrustBundle, x509AuthorityFromCertificate } from "../../src/spiffe/bundle.js";
import { derToPem } from "../../src/spiffe/pem.js";
import { createCa, createNonCaCert, createSvid, createWebCert, type Issued, pemChain } from "../support/pki.js";

const TD = "example.org";
const ENDPOINT_ID = "spiffe://example.org/bundle-endpoint";
const DAY_MS = 24 * 60 * 60 * 1000;
const EVENTUALLY = { timeout: 5_000, interval: 20 };

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    if (isBundlegateError(error)) return error.code;
    throw error;
  }
  return undefined;
}

async function asyncCodeOf(run: () => Promise<unknown>): Promise<string | undefined> {
  try {
    await run();
  } catch (error) {
    if (isBundlegateError(error)) return error.code;
    throw error;
  }
  return undefined;
}

function bundleOf(...cas: Issued[]): TrustBundle {
  return createTrustBundle({
    x509Authorities: cas.map((ca) => x509AuthorityFromCertificate(new X509Certificate(ca.der))),
  });
}

const load = (certPem: string, keyPem: string) => loadTlsCredentials(certPem, keyPem);
const svidCheck = (creds: TlsCredentials, bundle: TrustBundle, now = new Date()) =>
  checkSvidCredentials(creds, { now, endpointSpiffeId: ENDPOINT_ID, bundle });

let root: Issued;
let webCa: Issued;
let web: Issued;
let svid: Issued;

beforeAll(async () => {
  root = await createCa({ trustDomain: TD });
  webCa = await createCa({ trustDomain: TD, withSpiffeUri: false, subject: "CN=Web CA" });
  web = await createWebCert({ issuer: webCa, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  svid = await createSvid({ issuer: root, spiffeId: ENDPOINT_ID });
});

describe("loadTlsCredentials", () => {
  it("loads a good pair: canonical chain, PKCS#8 key, SHA-256 fingerprint of the leaf", () => {
    const creds = load(pemChain(web, webCa), web.keyPem);
    expect(creds.fingerprint).toBe(createHash("sha256").update(web.der).digest("hex"));
    expect(creds.leaf.fingerprint256).toBe(new X509Certificate(web.der).fingerprint256);
    expect(creds.certPem).toBe(derToPem(web.der) + derToPem(webCa.der));
    expect(creds.keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----\n/);
    expect(createPrivateKey(creds.keyPem).asymmetricKeyType).toBe("ec");
  });

  it("keeps only the certificates of a file that also holds text and the key", () => {
    const messy = `subject=CN=localhost\n${web.pem}${web.keyPem}# comment\n${webCa.pem}`;
    const creds = load(messy, web.keyPem);
    expect(creds.certPem).toBe(derToPem(web.der) + derToPem(webCa.der));
    expect(creds.certPem).not.toContain("PRIVATE KEY");
  });

  it("accepts SEC1 and PKCS#1 keys and re-exports them as PKCS#8", async () => {
    const sec1 = createPrivateKey(web.keyPem).export({ type: "sec1", format: "pem" }).toString();
    expect(load(web.pem, sec1).keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
    const rsaCa = await createCa({ trustDomain: TD, keyAlg: "RSA-2048" });
    const rsaWeb = await createWebCert({ issuer: rsaCa, dnsNames: ["localhost"], keyAlg: "RSA-2048" });
    const pkcs1 = createPrivateKey(rsaWeb.keyPem).export({ type: "pkcs1", format: "pem" }).toString();
    expect(load(rsaWeb.pem, pkcs1).keyPem).toMatch(/^-----BEGIN PRIVATE KEY-----/);
  });

  it.each([
    ["empty", ""],
    ["no PEM at all", "hello"],
    ["only a key", "KEY"],
    ["BEGIN without END", "-----BEGIN CERTIFICATE-----\nMIIB\n"],
    ["mismatched labels", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END PRIVATE KEY-----\n"],
    ["a body that is not base64", "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n"],
    ["a body that is not DER", "-----BEGIN CERTIFICATE-----\naGVsbG8=\n-----END CERTIFICATE-----\n"],
    ["DER with trailing bytes", "TRAILING"],
    ["a SEQUENCE that is no certificate", "-----BEGIN CERTIFICATE-----\nMAMCAQE=\n-----END CERTIFICATE-----\n"],
    ["too many certificates", "MANY"],
  ])("ERR_TLS_PEM_INVALID: %s", (_name, input) => {
    const certPem =
      input === "KEY"
        ? web.keyPem
        : input === "TRAILING"
          ? derToPem(Buffer.concat([Buffer.from(web.der), Buffer.from([0, 0])]))
          : input === "MANY"
            ? web.pem + webCa.pem.repeat(10)
            : input;
    expect(codeOf(() => load(certPem, web.keyPem))).toBe("ERR_TLS_PEM_INVALID");
  });

  it.each([
    ["garbage", () => "not a key"],
    ["a public key", () => createPublicKey(web.keyPem).export({ type: "spki", format: "pem" }).toString()],
    [
      "an encrypted key",
      () =>
        createPrivateKey(web.keyPem)
          .export({ type: "pkcs8", format: "pem", cipher: "aes-256-cbc", passphrase: "secret" })
          .toString(),
    ],
  ])("ERR_TLS_KEY_INVALID: %s", (_name, key) => {
    expect(codeOf(() => load(web.pem, key()))).toBe("ERR_TLS_KEY_INVALID");
  });

  it("ERR_TLS_KEY_MISMATCH: the key of another certificate", () => {
    expect(codeOf(() => load(web.pem, svid.keyPem))).toBe("ERR_TLS_KEY_MISMATCH");
  });

  it("ERR_TLS_KEY_MISMATCH: the chain is not leaf first", () => {
    expect(codeOf(() => load(pemChain(webCa, web), web.keyPem))).toBe("ERR_TLS_KEY_MISMATCH");
  });

  it("errors are TlsCredentialsErrors with status 500 and no key material", () => {
    try {
      load(web.pem, svid.keyPem);
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(TlsCredentialsError);
      expect((error as TlsCredentialsError).status).toBe(500);
      expect((error as TlsCredentialsError).expose).toBe(false);
      expect(
        JSON.stringify({ message: (error as Error).message, details: (error as TlsCredentialsError).details }),
      ).not.toContain("PRIVATE");
    }
  });
});

describe("loadTlsCredentialFiles", () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "bundlegate-tls-"));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("loads a pair from files", async () => {
    writeFileSync(join(dir, "cert.pem"), web.pem);
    writeFileSync(join(dir, "key.pem"), web.keyPem);
    const creds = await loadTlsCredentialFiles(join(dir, "cert.pem"), join(dir, "key.pem"));
    expect(creds.fingerprint).toBe(createHash("sha256").update(web.der).digest("hex"));
  });

  it("ERR_TLS_FILE_UNREADABLE: a missing file, a directory", async () => {
    writeFileSync(join(dir, "key.pem"), web.keyPem);
    expect(await asyncCodeOf(() => loadTlsCredentialFiles(join(dir, "nope.pem"), join(dir, "key.pem")))).toBe(
      "ERR_TLS_FILE_UNREADABLE",
    );
    expect(await asyncCodeOf(() => loadTlsCredentialFiles(dir, join(dir, "key.pem")))).toBe("ERR_TLS_FILE_UNREADABLE");
  });

  it("ERR_TLS_FILE_UNREADABLE: a file without read permission", async () => {
    writeFileSync(join(dir, "cert.pem"), web.pem);
    writeFileSync(join(dir, "key.pem"), web.keyPem);
    chmodSync(join(dir, "key.pem"), 0o000);
    // root reads anything; the case only exists for other users.
    if (process.getuid?.() === 0) return;
    expect(await asyncCodeOf(() => loadTlsCredentialFiles(join(dir, "cert.pem"), join(dir, "key.pem")))).toBe(
      "ERR_TLS_FILE_UNREADABLE",
    );
  });

  it("ERR_TLS_FILE_TOO_LARGE: a file over 1 MiB", async () => {
    writeFileSync(join(dir, "cert.pem"), `${web.pem}${"#".repeat(1024 * 1024)}`);
    writeFileSync(join(dir, "key.pem"), web.keyPem);
    expect(await asyncCodeOf(() => loadTlsCredentialFiles(join(dir, "cert.pem"), join(dir, "key.pem")))).toBe(
      "ERR_TLS_FILE_TOO_LARGE",
    );
  });
});

describe("checkWebCredentials", () => {
  it("accepts a good web certificate", () => {
    expect(codeOf(() => checkWebCredentials(load(pemChain(web, webCa), web.keyPem), { now: new Date() }))).toBe(
      undefined,
    );
  });

  it("ERR_TLS_CERT_NOT_YET_VALID", async () => {
    const future = await createWebCert({
      issuer: webCa,
      dnsNames: ["localhost"],
      notBefore: new Date(Date.now() + DAY_MS),
      notAfter: new Date(Date.now() + 2 * DAY_MS),
    });
    expect(codeOf(() => checkWebCredentials(load(future.pem, future.keyPem), { now: new Date() }))).toBe(
      "ERR_TLS_CERT_NOT_YET_VALID",
    );
  });

  it("ERR_TLS_CERT_EXPIRED, judged by the time passed in", () => {
    const creds = load(web.pem, web.keyPem);
    expect(codeOf(() => checkWebCredentials(creds, { now: new Date(Date.now() + 31 * DAY_MS) }))).toBe(
      "ERR_TLS_CERT_EXPIRED",
    );
  });

  it("ERR_TLS_CERT_IS_CA", () => {
    expect(codeOf(() => checkWebCredentials(load(webCa.pem, webCa.keyPem), { now: new Date() }))).toBe(
      "ERR_TLS_CERT_IS_CA",
    );
  });

  it("ERR_TLS_CERT_NOT_SERVER_AUTH: a client-only certificate", async () => {
    const client = await createWebCert({
      issuer: webCa,
      dnsNames: ["localhost"],
      extendedKeyUsages: ["1.3.6.1.5.5.7.3.2"],
    });
    expect(codeOf(() => checkWebCredentials(load(client.pem, client.keyPem), { now: new Date() }))).toBe(
      "ERR_TLS_CERT_NOT_SERVER_AUTH",
    );
  });

  it("accepts a certificate without basicConstraints or extended key usage", async () => {
    const plain = await createNonCaCert({ subject: "CN=localhost" });
    expect(codeOf(() => checkWebCredentials(load(plain.pem, plain.keyPem), { now: new Date() }))).toBe(undefined);
  });
});

describe("checkSvidCredentials", () => {
  it("accepts an SVID issued by a bundle authority", () => {
    expect(codeOf(() => svidCheck(load(svid.pem, svid.keyPem), bundleOf(root)))).toBe(undefined);
  });

  it("accepts an SVID through an intermediate, with or without the root in the PEM", async () => {
    const inter = await createCa({ trustDomain: TD, issuer: root });
    const leaf = await createSvid({ issuer: inter, spiffeId: ENDPOINT_ID, dnsNames: ["localhost"] });
    expect(codeOf(() => svidCheck(load(pemChain(leaf, inter), leaf.keyPem), bundleOf(root)))).toBe(undefined);
    expect(codeOf(() => svidCheck(load(pemChain(leaf, inter, root), leaf.keyPem), bundleOf(root)))).toBe(undefined);
  });

  it("accepts a chain of two intermediates, in any order after the leaf", async () => {
    const inter1 = await createCa({ trustDomain: TD, issuer: root });
    const inter2 = await createCa({ trustDomain: TD, issuer: inter1 });
    const leaf = await createSvid({ issuer: inter2, spiffeId: ENDPOINT_ID });
    expect(codeOf(() => svidCheck(load(pemChain(leaf, inter1, inter2), leaf.keyPem), bundleOf(root)))).toBe(undefined);
  });

  it("finds the right issuer among intermediates sharing a subject (a rotation)", async () => {
    const subject = "CN=Intermediate, O=example.org";
    const old = await createCa({ trustDomain: TD, issuer: root, subject });
    const current = await createCa({ trustDomain: TD, issuer: root, subject });
    const leaf = await createSvid({ issuer: current, spiffeId: ENDPOINT_ID });
    expect(codeOf(() => svidCheck(load(pemChain(leaf, old, current), leaf.keyPem), bundleOf(root)))).toBe(undefined);
  });

  it("accepts an SVID chaining to any authority of a bundle with several", async () => {
    const other = await createCa({ trustDomain: TD });
    expect(codeOf(() => svidCheck(load(svid.pem, svid.keyPem), bundleOf(other, root)))).toBe(undefined);
  });

  it("ERR_TLS_CERT_IS_CA: a CA certificate", () => {
    expect(codeOf(() => svidCheck(load(root.pem, root.keyPem), bundleOf(root)))).toBe("ERR_TLS_CERT_IS_CA");
  });

  it("ERR_SVID_KEY_USAGE: a leaf that may sign certificates", async () => {
    const leaf = await createSvid({ issuer: root, spiffeId: ENDPOINT_ID, keyUsages: 0x01 | 0x20 });
    expect(codeOf(() => svidCheck(load(leaf.pem, leaf.keyPem), bundleOf(root)))).toBe("ERR_SVID_KEY_USAGE");
    const crl = await createSvid({ issuer: root, spiffeId: ENDPOINT_ID, keyUsages: 0x01 | 0x40 });
    expect(codeOf(() => svidCheck(load(crl.pem, crl.keyPem), bundleOf(root)))).toBe("ERR_SVID_KEY_USAGE");
  });

  it("ERR_SVID_NO_URI_SAN", async () => {
    const leaf = await createWebCert({ issuer: root, dnsNames: ["localhost"] });
    expect(codeOf(() => svidCheck(load(leaf.pem, leaf.keyPem), bundleOf(root)))).toBe("ERR_SVID_NO_URI_SAN");
  });

  it("ERR_SVID_MULTIPLE_URI_SANS", async () => {
    const leaf = await createSvid({ issuer: root, spiffeId: [ENDPOINT_ID, "spiffe://example.org/other"] });
    expect(codeOf(() => svidCheck(load(leaf.pem, leaf.keyPem), bundleOf(root)))).toBe("ERR_SVID_MULTIPLE_URI_SANS");
  });

  it.each([
    ["not a SPIFFE ID", "https://example.org/bundle-endpoint"],
    ["a trust domain ID (no path)", "spiffe://example.org"],
    ["an invalid SPIFFE ID", "spiffe://Example.org/x"],
  ])("ERR_SVID_INVALID_ID: %s", async (_name, uri) => {
    const leaf = await createSvid({ issuer: root, spiffeId: uri });
    const creds = load(leaf.pem, leaf.keyPem);
    expect(
      codeOf(() => checkSvidCredentials(creds, { now: new Date(), endpointSpiffeId: uri, bundle: bundleOf(root) })),
    ).toBe("ERR_SVID_INVALID_ID");
  });

  it("ERR_SVID_WRONG_ID", async () => {
    const leaf = await createSvid({ issuer: root, spiffeId: "spiffe://example.org/someone-else" });
    expect(codeOf(() => svidCheck(load(leaf.pem, leaf.keyPem), bundleOf(root)))).toBe("ERR_SVID_WRONG_ID");
  });

  it("ERR_TLS_CERT_NOT_YET_VALID and ERR_TLS_CERT_EXPIRED", () => {
    const creds = load(svid.pem, svid.keyPem);
    expect(codeOf(() => svidCheck(creds, bundleOf(root), new Date(Date.now() - 2 * 60 * 60 * 1000)))).toBe(
      "ERR_TLS_CERT_NOT_YET_VALID",
    );
    expect(codeOf(() => svidCheck(creds, bundleOf(root), new Date(Date.now() + 31 * DAY_MS)))).toBe(
      "ERR_TLS_CERT_EXPIRED",
    );
  });

  describe("ERR_SVID_NOT_CHAINED", () => {
    const notChained = (creds: TlsCredentials, bundle: TrustBundle) => {
      try {
        svidCheck(creds, bundle);
      } catch (error) {
        expect(isBundlegateError(error) && error.code).toBe("ERR_SVID_NOT_CHAINED");
        return (error as TlsCredentialsError).details.problems as string[];
      }
      return expect.unreachable("the SVID was accepted");
    };

    it("issued by a CA that is not in the bundle", async () => {
      const other = await createCa({ trustDomain: TD });
      notChained(load(svid.pem, svid.keyPem), bundleOf(other));
    });

    it("against a bundle without X.509 authorities", () => {
      notChained(load(svid.pem, svid.keyPem), createTrustBundle());
    });

    it("with the intermediate missing from the PEM", async () => {
      const inter = await createCa({ trustDomain: TD, issuer: root });
      const leaf = await createSvid({ issuer: inter, spiffeId: ENDPOINT_ID });
      notChained(load(leaf.pem, leaf.keyPem), bundleOf(root));
    });

    it("through an expired intermediate", async () => {
      const inter = await createCa({
        trustDomain: TD,
        issuer: root,
        notBefore: new Date(Date.now() - 10 * DAY_MS),
        notAfter: new Date(Date.now() - DAY_MS),
      });
      const leaf = await createSvid({ issuer: inter, spiffeId: ENDPOINT_ID });
      const problems = notChained(load(pemChain(leaf, inter), leaf.keyPem), bundleOf(root));
      expect(problems.join(" ")).toContain("expired");
    });

    it("through an intermediate that is not a CA", async () => {
      const notCa = await createWebCert({ issuer: root, dnsNames: ["intermediate.example.org"] });
      const leaf = await createSvid({ issuer: notCa, spiffeId: ENDPOINT_ID });
      notChained(load(pemChain(leaf, notCa), leaf.keyPem), bundleOf(root));
    });

    it("to an expired bundle authority", async () => {
      const oldRoot = await createCa({
        trustDomain: TD,
        notBefore: new Date(Date.now() - 10 * DAY_MS),
        notAfter: new Date(Date.now() - DAY_MS),
      });
      const leaf = await createSvid({ issuer: oldRoot, spiffeId: ENDPOINT_ID });
      notChained(load(leaf.pem, leaf.keyPem), bundleOf(oldRoot));
    });

    it("past a pathLenConstraint", async () => {
      const strictRoot = await createCa({ trustDomain: TD, pathLength: 0 });
      const inter = await createCa({ trustDomain: TD, issuer: strictRoot });
      const leaf = await createSvid({ issuer: inter, spiffeId: ENDPOINT_ID });
      const problems = notChained(load(pemChain(leaf, inter), leaf.keyPem), bundleOf(strictRoot));
      expect(problems.join(" ")).toContain("allows 0");
      // The same root still anchors a leaf it signs directly.
      const direct = await createSvid({ issuer: strictRoot, spiffeId: ENDPOINT_ID });
      expect(codeOf(() => svidCheck(load(direct.pem, direct.keyPem), bundleOf(strictRoot)))).toBe(undefined);
    });

    it("signed by an impostor with the authority's name", async () => {
      const impostor = await createCa({ trustDomain: TD });
      const leaf = await createSvid({ issuer: impostor, spiffeId: ENDPOINT_ID });
      // Same subject "O=example.org" as root, a different key.
      notChained(load(leaf.pem, leaf.keyPem), bundleOf(root));
    });
  });
});

interface LogLine {
  level: number;
  msg: string;
  code?: string;
  fingerprint?: string;
  [key: string]: unknown;
}

function captureLogger() {
  const lines: LogLine[] = [];
  const raw: string[] = [];
  const logger = pino(
    { level: "debug" },
    {
      write(chunk: string) {
        raw.push(chunk);
        lines.push(JSON.parse(chunk) as LogLine);
      },
    },
  );
  return { logger, lines, raw };
}

function fakeWatched<T>(initial: T): Watched<T> & { set(value: T): void } {
  let value = initial;
  const listeners = new Set<(value: T) => void>();
  return {
    current: () => value,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    set(next) {
      value = next;
      for (const listener of listeners) listener(next);
    },
  };
}

describe("createFileCredentialSource", () => {
  let dir: string;
  let certFile: string;
  let keyFile: string;
  const sources: FileCredentialSource[] = [];

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), "bundlegate-tls-src-"));
    certFile = join(dir, "svid.pem");
    keyFile = join(dir, "svid-key.pem");
  });
  afterEach(() => {
    for (const source of sources.splice(0)) source.close();
    rmSync(dir, { recursive: true, force: true });
  });

  /** Writes like most tools do: a temporary file renamed over the real one. */
  function replace(file: string, content: string) {
    writeFileSync(`${file}.tmp`, content);
    renameSync(`${file}.tmp`, file);
  }

  function writePair(cert: string, key: string) {
    replace(certFile, cert);
    replace(keyFile, key);
  }

  async function startSvidSource(bundle: Watched<TrustBundle> = fakeWatched(bundleOf(root))) {
    const { logger, lines, raw } = captureLogger();
    const onReload = vi.fn<(result: "ok" | "error", code?: string) => void>();
    const clock = manualClock();
    const source = await createFileCredentialSource({
      certFile,
      keyFile,
      check: (creds, now) =>
        checkSvidCredentials(creds, { now, endpointSpiffeId: ENDPOINT_ID, bundle: bundle.current() }),
      clock,
      pollIntervalMs: 50,
      debounceMs: 20,
      retryDelayMs: 100,
      logger,
      onReload,
      revalidate: bundle,
    });
    sources.push(source);
    return { source, onReload, lines, raw, clock };
  }

  const fingerprintOf = (issued: Issued) => createHash("sha256").update(issued.der).digest("hex");

  it("refuses to start with a broken pair", async () => {
    writePair(svid.pem, web.keyPem);
    expect(await asyncCodeOf(() => startSvidSource())).toBe("ERR_TLS_KEY_MISMATCH");
  });

  it("refuses to start when a file is missing or the pair fails its check", async () => {
    replace(certFile, svid.pem);
    expect(await asyncCodeOf(() => startSvidSource())).toBe("ERR_TLS_FILE_UNREADABLE");
    const other = await createSvid({ issuer: root, spiffeId: "spiffe://example.org/other" });
    writePair(other.pem, other.keyPem);
    expect(await asyncCodeOf(() => startSvidSource())).toBe("ERR_SVID_WRONG_ID");
  });

  it("publishes a good replacement pair and logs it without key material", async () => {
    writePair(svid.pem, svid.keyPem);
    const { source, onReload, lines, raw } = await startSvidSource();
    expect(source.current().fingerprint).toBe(fingerprintOf(svid));
    const seen: string[] = [];
    source.subscribe((creds) => seen.push(creds.fingerprint));

    const next = await createSvid({ issuer: root, spiffeId: ENDPOINT_ID });
    writePair(next.pem, next.keyPem);
    await vi.waitFor(() => expect(source.current().fingerprint).toBe(fingerprintOf(next)), EVENTUALLY);
    expect(seen).toEqual([fingerprintOf(next)]);
    expect(onReload.mock.calls).toEqual([["ok"]]);
    const reloaded = lines.find((line) => line.msg === "serving certificate reloaded");
    expect(reloaded?.fingerprint).toBe(fingerprintOf(next));
    expect(reloaded?.notAfter).toBe(next.cert.notAfter.toISOString());
    expect(reloaded?.code).toBeUndefined();
    const everything = raw.join("");
    expect(everything).not.toContain("PRIVATE KEY");
    for (const issued of [svid, next]) {
      const body = issued.keyPem.split("\n")[1] ?? "";
      expect(everything).not.toContain(body.slice(0, 40));
    }
  });

  it("reads a cert and key written one after the other as one pair", async () => {
    writePair(svid.pem, svid.keyPem);
    const { source, onReload } = await startSvidSource();
    const next = await createSvid({ issuer: root, spiffeId: ENDPOINT_ID });
    replace(certFile, next.pem);
    await sleep(40); // past the debounce: the first read sees the new cert with the old key
    replace(keyFile, next.keyPem);
    await vi.waitFor(() => expect(source.current().fingerprint).toBe(fingerprintOf(next)), EVENTUALLY);
    await sleep(300);
    expect(onReload.mock.calls).toEqual([["ok"]]);
  });

  it.each([
    ["a mismatched key", "ERR_TLS_KEY_MISMATCH"],
    ["an expired SVID", "ERR_TLS_CERT_EXPIRED"],
    ["an SVID with another SPIFFE ID", "ERR_SVID_WRONG_ID"],
    ["an SVID from a CA not in the bundle", "ERR_SVID_NOT_CHAINED"],
    ["a truncated certificate", "ERR_TLS_PEM_INVALID"],
  ])("keeps the old pair when replaced with %s and reports %s", async (name, code) => {
    writePair(svid.pem, svid.keyPem);
    const { source, onReload, lines } = await startSvidSource();
    const before = source.current();
    const listener = vi.fn();
    source.subscribe(listener);

    if (name === "a mismatched key") {
      const next = await createSvid({ issuer: root, spiffeId: ENDPOINT_ID });
      writePair(next.pem, svid.keyPem);
    } else if (name === "an expired SVID") {
      const next = await createSvid({
        issuer: root,
        spiffeId: ENDPOINT_ID,
        notBefore: new Date(Date.now() - 10 * DAY_MS),
        notAfter: new Date(Date.now() - DAY_MS),
      });
      writePair(next.pem, next.keyPem);
    } else if (name === "an SVID with another SPIFFE ID") {
      const next = await createSvid({ issuer: root, spiffeId: "spiffe://example.org/other" });
      writePair(next.pem, next.keyPem);
    } else if (name === "an SVID from a CA not in the bundle") {
      const next = await createSvid({ issuer: await createCa({ trustDomain: TD }), spiffeId: ENDPOINT_ID });
      writePair(next.pem, next.keyPem);
    } else {
      replace(certFile, svid.pem.slice(0, 200));
    }

    await vi.waitFor(() => expect(onReload).toHaveBeenCalledWith("error", code), EVENTUALLY);
    expect(onReload).toHaveBeenCalledTimes(1);
    expect(source.current()).toBe(before);
    expect(listener).not.toHaveBeenCalled();
    const failure = lines.find((line) => line.level === 50);
    expect(failure).toMatchObject({ code, certFile, keyFile });
  });

  it("recovers once a broken pair is fixed", async () => {
    writePair(svid.pem, svid.keyPem);
    const { source, onReload } = await startSvidSource();
    const other = await createSvid({ issuer: root, spiffeId: "spiffe://example.org/other" });
    writePair(other.pem, other.keyPem);
    await vi.waitFor(() => expect(onReload).toHaveBeenCalledWith("error", "ERR_SVID_WRONG_ID"), EVENTUALLY);
    const good = await createSvid({ issuer: root, spiffeId: ENDPOINT_ID });
    writePair(good.pem, good.keyPem);
    await vi.waitFor(() => expect(source.current().fingerprint).toBe(fingerprintOf(good)), EVENTUALLY);
    expect(onReload.mock.calls).toEqual([["error", "ERR_SVID_WRONG_ID"], ["ok"]]);
  });

  it("does not republish a pair whose files were rewritten with the same content", async () => {
    writePair(svid.pem, svid.keyPem);
    const { source, onReload } = await startSvidSource();
    const listener = vi.fn();
    source.subscribe(listener);
    writePair(`# renewed by a script that found nothing to do\n${svid.pem}`, svid.keyPem);
    await source.reload();
    expect(listener).not.toHaveBeenCalled();
    expect(onReload).not.toHaveBeenCalled();
  });

  it("reload() reads the files at once and uses the injected clock for checks", async () => {
    writePair(svid.pem, svid.keyPem);
    const { source, onReload, clock } = await startSvidSource();
    clock.advance(31 * DAY_MS);
    const next = await createSvid({ issuer: root, spiffeId: ENDPOINT_ID });
    writePair(next.pem, next.keyPem);
    await source.reload();
    expect(onReload).toHaveBeenCalledWith("error", "ERR_TLS_CERT_EXPIRED");
    expect(source.current().fingerprint).toBe(fingerprintOf(svid));
  });

  it("revalidates the served pair when the bundle changes, logging but keeping it", async () => {
    writePair(svid.pem, svid.keyPem);
    const bundle = fakeWatched(bundleOf(root));
    const { source, onReload, lines } = await startSvidSource(bundle);
    const other = await createCa({ trustDomain: TD });
    bundle.set(bundleOf(other));
    await vi.waitFor(
      () => expect(lines.some((line) => line.level === 50 && line.code === "ERR_SVID_NOT_CHAINED")).toBe(true),
      EVENTUALLY,
    );
    expect(source.current().fingerprint).toBe(fingerprintOf(svid));
    expect(onReload).not.toHaveBeenCalled();
  });

  it("picks up an SVID from a new CA once the bundle trusts that CA", async () => {
    writePair(svid.pem, svid.keyPem);
    const bundle = fakeWatched(bundleOf(root));
    const { source, onReload } = await startSvidSource(bundle);
    const newRoot = await createCa({ trustDomain: TD });
    const next = await createSvid({ issuer: newRoot, spiffeId: ENDPOINT_ID });
    writePair(next.pem, next.keyPem);
    await vi.waitFor(() => expect(onReload).toHaveBeenCalledWith("error", "ERR_SVID_NOT_CHAINED"), EVENTUALLY);
    bundle.set(bundleOf(root, newRoot));
    await vi.waitFor(() => expect(source.current().fingerprint).toBe(fingerprintOf(next)), EVENTUALLY);
    expect(onReload).toHaveBeenLastCalledWith("ok");
  });

  it("serves web credentials with a web check", async () => {
    writePair(pemChain(web, webCa), web.keyPem);
    const { logger } = captureLogger();
    const source = await createFileCredentialSource({
      certFile,
      keyFile,
      check: (creds, now) => checkWebCredentials(creds, { now }),
      clock: manualClock(),
      pollIntervalMs: 50,
      logger,
    });
    sources.push(source);
    expect(source.current().certPem).toBe(derToPem(web.der) + derToPem(webCa.der));
  });

  it("stops reloading after close()", async () => {
    writePair(svid.pem, svid.keyPem);
    const { source, onReload } = await startSvidSource();
    source.close();
    const next = await createSvid({ issuer: root, spiffeId: ENDPOINT_ID });
    writePair(next.pem, next.keyPem);
    await sleep(400);
    await source.reload();
    expect(source.current().fingerprint).toBe(fingerprintOf(svid));
    expect(onReload).not.toHaveBeenCalled();
  });
});
