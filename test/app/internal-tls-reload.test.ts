/**
 * The internal listener's TLS certificate is watched like the bundle endpoint's: a replaced pair is served
 * to new connections without a restart, and a broken replacement leaves the old one serving.
 */
import { X509Certificate } from "node:crypto";
import { mkdtemp, rename, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { connect } from "node:tls";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type RunningApp, startApp } from "../../src/app.js";
import { systemClock } from "../../src/clock.js";
import { parseConfig } from "../../src/config/load.js";
import { silentLogger } from "../../src/logging.js";
import { createTrustBundle, x509AuthorityFromCertificate } from "../../src/spiffe/bundle.js";
import { serializeSpiffeBundle } from "../../src/spiffe/codec.js";
import { eventually } from "../support/eventually.js";
import { createCa, createWebCert, type Issued } from "../support/pki.js";

let dir: string;
let ca: Issued;
let app: RunningApp;

async function replace(name: string, content: string) {
  await writeFile(join(dir, `${name}.tmp`), content);
  await rename(join(dir, `${name}.tmp`), join(dir, name));
}

/** The fingerprint of the certificate a new connection to the internal listener is offered. */
function servedFingerprint(): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port: app.addresses.internal.port, rejectUnauthorized: false }, () => {
      const certificate = socket.getPeerX509Certificate();
      socket.destroy();
      if (certificate) resolve(certificate.fingerprint256);
      else reject(new Error("no certificate"));
    });
    socket.on("error", reject);
  });
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), "bg-internal-tls-"));
  ca = await createCa({ trustDomain: "example.org" });
  const first = await createWebCert({ issuer: ca, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
  await writeFile(join(dir, "internal.pem"), first.pem);
  await writeFile(join(dir, "internal.key"), first.keyPem);
  const web = await createWebCert({ issuer: ca, dnsNames: ["localhost"] });
  await writeFile(join(dir, "web.pem"), web.pem);
  await writeFile(join(dir, "web.key"), web.keyPem);
  await writeFile(
    join(dir, "bundle.json"),
    serializeSpiffeBundle(
      createTrustBundle({ x509Authorities: [x509AuthorityFromCertificate(new X509Certificate(ca.der))] }),
    ),
  );
  const config = parseConfig(
    JSON.stringify({
      trust_domain: "example.org",
      file_poll_interval_ms: 200,
      local_bundle: { file: "bundle.json" },
      endpoint: { https_web: { listen: { host: "127.0.0.1", port: 0 }, cert_file: "web.pem", key_file: "web.key" } },
      internal: {
        listen: { host: "127.0.0.1", port: 0 },
        tls: { cert_file: "internal.pem", key_file: "internal.key" },
      },
      metrics: { listen: { host: "127.0.0.1", port: 0 } },
    }),
    { baseDir: dir, env: {}, source: "internal tls test" },
  );
  app = await startApp(config, { logger: silentLogger(), clock: systemClock });
}, 30_000);

afterAll(async () => {
  await app?.stop();
});

describe("the internal listener's certificate", () => {
  it("is replaced without a restart, and a broken replacement keeps the old one", async () => {
    const before = await servedFingerprint();
    const second = await createWebCert({ issuer: ca, dnsNames: ["localhost"], ipAddresses: ["127.0.0.1"] });
    const expected = new X509Certificate(second.der).fingerprint256;
    expect(expected).not.toBe(before);
    // Key first, then certificate: in between, the pair does not match and must not be served.
    await replace("internal.key", second.keyPem);
    await replace("internal.pem", second.pem);
    await eventually(async () => (await servedFingerprint()) === expected);
    const metricsUrl = `http://127.0.0.1:${app.addresses.metrics.port}/metrics`;
    // One replacement, counted once.
    await eventually(async () =>
      /^bundlegate_tls_reloads_total\{profile="internal",result="ok",code=""\} 1$/m.test(
        await (await fetch(metricsUrl)).text(),
      ),
    );

    const stranger = await createWebCert({ issuer: ca, dnsNames: ["localhost"] });
    await replace("internal.key", stranger.keyPem);
    await eventually(async () =>
      /bundlegate_tls_reloads_total\{profile="internal",result="error",code="ERR_TLS_KEY_MISMATCH"\} [1-9]/.test(
        await (await fetch(metricsUrl)).text(),
      ),
    );
    expect(await servedFingerprint()).toBe(expected);
  }, 30_000);
});
