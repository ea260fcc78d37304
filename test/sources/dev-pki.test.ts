import { createPublicKey, X509Certificate } from "node:crypto";
import { once } from "node:events";
import { createServer as createTlsServer, request } from "node:https";
import type { AddressInfo } from "node:net";
import { beforeAll, describe, expect, it } from "vitest";
import { manualClock } from "../../src/clock.js";
import { isBundlegateError } from "../../src/errors.js";
import { createDevPki, type DevPki } from "../../src/sources/dev-pki.js";
import { checkSvidCredentials, checkWebCredentials, loadTlsCredentials } from "../../src/sources/tls-credentials.js";
import { serializePem } from "../../src/spiffe/pem.js";

const TD = "example.org";
const ENDPOINT_ID = "spiffe://example.org/bundle-endpoint";
const START = new Date("2030-06-01T12:00:00Z");
const DAY_MS = 24 * 60 * 60 * 1000;

let pki: DevPki;

beforeAll(async () => {
  pki = await createDevPki({ trustDomain: TD, endpointSpiffeId: ENDPOINT_ID, clock: manualClock(START) });
});

/** A TLS handshake through node:https, trusting `ca` and checking `servername` like curl would. */
async function handshake(creds: { certPem: string; keyPem: string }, ca: string, host: string): Promise<string> {
  const server = createTlsServer({ cert: creds.certPem, key: creds.keyPem }, (_req, res) => res.end("ok"));
  server.listen(0, "127.0.0.1");
  await once(server, "listening");
  const { port } = server.address() as AddressInfo;
  try {
    return await new Promise<string>((resolve, reject) => {
      const req = request(
        { host: "127.0.0.1", servername: host === "127.0.0.1" ? undefined : host, port, ca },
        (res) => {
          let body = "";
          res.on("data", (chunk) => {
            body += chunk;
          });
          res.on("end", () => resolve(body));
        },
      );
      req.on("error", reject);
      req.end();
    });
  } finally {
    server.close();
  }
}

describe("createDevPki", () => {
  it("issues an X509-SVID that passes checkSvidCredentials against the local bundle", () => {
    const creds = loadTlsCredentials(pki.svid.certPem, pki.svid.keyPem);
    const now = new Date(START.getTime() + DAY_MS);
    expect(() => checkSvidCredentials(creds, { now, endpointSpiffeId: ENDPOINT_ID, bundle: pki.bundle })).not.toThrow();
    expect(pki.svid.spiffeId).toBe(ENDPOINT_ID);
    expect(creds.leaf.subjectAltName).toBe(`URI:${ENDPOINT_ID}, DNS:localhost, IP Address:127.0.0.1`);
    expect(creds.leaf.ca).toBe(false);
  });

  it("gives validities from the injected clock: root one year, SVID and web certificate seven days", () => {
    const root = new X509Certificate(pki.rootCaPem);
    const svid = new X509Certificate(pki.svid.certPem);
    const web = new X509Certificate(pki.web.certPem);
    const days = (cert: X509Certificate) => (Date.parse(cert.validTo) - START.getTime()) / DAY_MS;
    expect(days(root)).toBe(365);
    expect(days(svid)).toBe(7);
    expect(days(web)).toBe(7);
    expect(Date.parse(svid.validFrom)).toBeLessThanOrEqual(START.getTime());

    const creds = loadTlsCredentials(pki.svid.certPem, pki.svid.keyPem);
    const check = (now: Date) =>
      checkSvidCredentials(creds, { now, endpointSpiffeId: ENDPOINT_ID, bundle: pki.bundle });
    try {
      check(new Date(START.getTime() + 8 * DAY_MS));
      expect.unreachable();
    } catch (error) {
      expect(isBundlegateError(error) && error.code).toBe("ERR_TLS_CERT_EXPIRED");
    }
  });

  it("builds the local bundle from the root CA (EC P-256, SPIFFE ID of the domain) and the JWT key", () => {
    expect(pki.bundle.x509Authorities).toHaveLength(1);
    const root = new X509Certificate(pki.bundle.x509Authorities[0]!.der);
    expect(root.ca).toBe(true);
    expect(root.subjectAltName).toBe(`URI:spiffe://${TD}`);
    expect(root.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
    expect(serializePem(pki.bundle)).toBe(pki.rootCaPem);

    expect([...pki.bundle.jwtAuthorities.keys()]).toEqual([pki.jwtKey.keyId]);
    const authority = pki.bundle.jwtAuthorities.get(pki.jwtKey.keyId);
    expect(authority?.use).toBe("jwt-svid");
    expect(authority?.thumbprint).toBe(pki.jwtKey.keyId);
    const fromPrivate = createPublicKey(pki.jwtKey.privateKeyPem).export({ format: "jwk" });
    expect(fromPrivate).toMatchObject(authority?.publicKey ?? {});
  });

  it("issues a web certificate that passes checkWebCredentials and verifies against the dev web CA", () => {
    const creds = loadTlsCredentials(pki.web.certPem, pki.web.keyPem);
    expect(() => checkWebCredentials(creds, { now: START })).not.toThrow();
    const webCa = new X509Certificate(pki.webCaPem);
    expect(webCa.ca).toBe(true);
    expect(creds.leaf.checkIssued(webCa)).toBe(true);
    expect(creds.leaf.verify(webCa.publicKey)).toBe(true);
    expect(creds.leaf.checkHost("localhost")).toBe("localhost");
    expect(creds.leaf.checkIP("127.0.0.1")).toBe("127.0.0.1");
    // The web CA is not a SPIFFE authority: it must not verify the SVID, nor the root the web certificate.
    expect(creds.leaf.verify(new X509Certificate(pki.rootCaPem).publicKey)).toBe(false);
    expect(webCa.subjectAltName).toBeUndefined();
  });

  it("serves both certificates over real TLS to a client trusting the matching CA", async () => {
    const now = new Date();
    const live = await createDevPki({ trustDomain: TD, endpointSpiffeId: ENDPOINT_ID, clock: manualClock(now) });
    expect(await handshake(live.svid, serializePem(live.bundle), "localhost")).toBe("ok");
    expect(await handshake(live.svid, serializePem(live.bundle), "127.0.0.1")).toBe("ok");
    expect(await handshake(live.web, live.webCaPem, "localhost")).toBe("ok");
    await expect(handshake(live.web, live.rootCaPem, "localhost")).rejects.toThrow();
  });

  it("issueSvid issues more SVIDs from the same root", async () => {
    const other = "spiffe://example.org/demo/workload";
    const issued = await pki.issueSvid({ spiffeId: other, dnsNames: ["workload.local"], validityMs: DAY_MS });
    const creds = loadTlsCredentials(issued.certPem, issued.keyPem);
    expect(() =>
      checkSvidCredentials(creds, { now: START, endpointSpiffeId: other, bundle: pki.bundle }),
    ).not.toThrow();
    expect(creds.leaf.subjectAltName).toBe(`URI:${other}, DNS:workload.local`);
    expect((Date.parse(creds.leaf.validTo) - START.getTime()) / DAY_MS).toBe(1);
  });

  it.each([
    ["another trust domain", "spiffe://partner.org/bundle-endpoint"],
    ["the trust domain's own ID", "spiffe://example.org"],
  ])("refuses an SVID for %s", async (_name, spiffeId) => {
    const error = await pki.issueSvid({ spiffeId }).catch((e: unknown) => e);
    expect(isBundlegateError(error) && error.code).toBe("ERR_DEV_PKI_BAD_SPIFFE_ID");
    const atStart = await createDevPki({
      trustDomain: TD,
      endpointSpiffeId: spiffeId,
      clock: manualClock(START),
    }).catch((e: unknown) => e);
    expect(isBundlegateError(atStart) && atStart.code).toBe("ERR_DEV_PKI_BAD_SPIFFE_ID");
  });

  it("refuses an invalid trust domain or SPIFFE ID with the SPIFFE ID codes", async () => {
    const badDomain = await createDevPki({
      trustDomain: "Example.org",
      endpointSpiffeId: ENDPOINT_ID,
      clock: manualClock(),
    }).catch((e: unknown) => e);
    expect(isBundlegateError(badDomain) && badDomain.code).toBe("ERR_TRUST_DOMAIN_UPPERCASE");
    const badId = await createDevPki({
      trustDomain: TD,
      endpointSpiffeId: "https://example.org/x",
      clock: manualClock(),
    }).catch((e: unknown) => e);
    expect(isBundlegateError(badId) && badId.code).toBe("ERR_SPIFFEID_WRONG_SCHEME");
  });
});
