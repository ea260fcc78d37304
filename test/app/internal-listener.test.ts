/**
 * The internal listener's lifecycle: a taken port is refused with ERR_INTERNAL_LISTEN, and stopping the app
 * ends open watch streams instead of waiting for them.
 */
import { createHash, X509Certificate } from "node:crypto";
import { mkdtemp, writeFile } from "node:fs/promises";
import { request } from "node:http";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { startApp } from "../../src/app.js";
import { systemClock } from "../../src/clock.js";
import { parseConfig } from "../../src/config/load.js";
import { silentLogger } from "../../src/logging.js";
import { createTrustBundle, x509AuthorityFromCertificate } from "../../src/spiffe/bundle.js";
import { serializeSpiffeBundle } from "../../src/spiffe/codec.js";
import { createCa, createWebCert } from "../support/pki.js";

const TOKEN = "watch-token-for-tests";

async function configWith(internalPort: number) {
  const dir = await mkdtemp(join(tmpdir(), "bg-internal-"));
  const ca = await createCa({ trustDomain: "example.org" });
  const web = await createWebCert({ issuer: ca, dnsNames: ["localhost"] });
  await writeFile(join(dir, "web.pem"), web.pem);
  await writeFile(join(dir, "web.key"), web.keyPem);
  await writeFile(
    join(dir, "bundle.json"),
    serializeSpiffeBundle(
      createTrustBundle({ x509Authorities: [x509AuthorityFromCertificate(new X509Certificate(ca.der))] }),
    ),
  );
  return parseConfig(
    JSON.stringify({
      trust_domain: "example.org",
      local_bundle: { file: "bundle.json" },
      endpoint: { https_web: { listen: { host: "127.0.0.1", port: 0 }, cert_file: "web.pem", key_file: "web.key" } },
      internal: { listen: { host: "127.0.0.1", port: internalPort } },
      metrics: { listen: { host: "127.0.0.1", port: 0 } },
      distribution: {
        tokens: [{ name: "watcher", sha256: createHash("sha256").update(TOKEN).digest("hex") }],
        allow: { "*": ["token:watcher"] },
      },
    }),
    { baseDir: dir, env: {}, source: "internal listener test" },
  );
}

describe("the internal listener", () => {
  it("refuses a port already taken with ERR_INTERNAL_LISTEN", async () => {
    const holder = createServer();
    await new Promise<void>((resolve) => holder.listen(0, "127.0.0.1", resolve));
    const port = (holder.address() as { port: number }).port;
    try {
      await expect(
        startApp(await configWith(port), { logger: silentLogger(), clock: systemClock }),
      ).rejects.toMatchObject({
        code: "ERR_INTERNAL_LISTEN",
      });
    } finally {
      holder.close();
    }
  });

  it("stops promptly while a watch stream is open, ending the stream", async () => {
    const app = await startApp(await configWith(0), { logger: silentLogger(), clock: systemClock });
    const ended = new Promise<string>((resolve, reject) => {
      const req = request(
        {
          host: "127.0.0.1",
          port: app.addresses.internal.port,
          path: "/v1/bundles/watch",
          headers: { authorization: `Bearer ${TOKEN}` },
        },
        (res) => {
          expect(res.statusCode).toBe(200);
          res.resume();
          res.on("end", () => resolve("ended"));
          res.on("error", reject);
        },
      );
      req.on("error", reject);
      req.end();
    });
    // Give the stream time to be open before stopping.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const stopping = app.stop().then(() => "stopped");
    // Well inside the 5 s grace: the stream is ended by the router, not cut by the listener.
    const first = await Promise.race([
      stopping,
      new Promise((resolve) => setTimeout(() => resolve("still stopping"), 2000)),
    ]);
    expect(first).toBe("stopped");
    expect(await ended).toBe("ended");
  });
});
