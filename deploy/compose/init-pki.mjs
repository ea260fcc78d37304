// The throwaway PKI of the compose demo, written once into the `pki` volume by the `pki` service, which runs
// this file with the bundlegate image's own code (dist/), the generator `bundlegate dev` uses:
//
//   node init-pki.mjs OUT_DIR [--dist DIR] [--chown UID:GID]
//
// OUT_DIR/local    this domain (compose.bundlegate.test): bundle.json and bundle.pem, the https_spiffe
//                  X509-SVID (svid.pem, svid.key) and an https_web certificate (web.pem, web.key) issued by a
//                  separate "web" CA (web-ca.pem) standing in for the Web PKI
// OUT_DIR/partner  the demo partner (partner.compose.bundlegate.test): bundle.json, bundle.pem, svid.pem, svid.key
//
// Certificates carry the compose service names and localhost, and last 90 days (the CAs a year). An existing
// PKI is kept: a new one would make the partner's next bundle a full replacement, held in quarantine. Start
// afresh with `docker compose down -v`.
import { chown, mkdir, readdir, stat, writeFile } from "node:fs/promises";
import path from "node:path";
import { pathToFileURL } from "node:url";

export const LOCAL_TRUST_DOMAIN = "compose.bundlegate.test";
export const PARTNER_TRUST_DOMAIN = "partner.compose.bundlegate.test";
const LEAF_DAYS = 90;
const CA_DAYS = 365;
const DAY_MS = 86_400_000;
const BACKDATE_MS = 5 * 60_000;

/** The modules of bundlegate this script uses; from dist/ in the image, from src/ in the tests. */
export async function loadModules(distDir) {
  const load = (file) => import(pathToFileURL(path.join(distDir, file)).href);
  const [devPki, issuer, codec] = await Promise.all([
    load("sources/dev-pki.js"),
    load("sources/x509-issuer.js"),
    load("spiffe/codec.js"),
  ]);
  return {
    createDevPki: devPki.createDevPki,
    createCa: issuer.createCa,
    createWebCert: issuer.createWebCert,
    serializeSpiffeBundle: codec.serializeSpiffeBundle,
  };
}

/** Writes both PKIs under `outDir`; returns false, writing nothing, when one is already there. */
export async function writeComposePki(outDir, modules, now = new Date()) {
  if (await exists(path.join(outDir, "local", "bundle.json"))) return false;
  const clock = { now: () => now };
  const validity = (days) => ({
    notBefore: new Date(now.getTime() - BACKDATE_MS),
    notAfter: new Date(now.getTime() + days * DAY_MS),
    now,
  });

  const local = await modules.createDevPki({
    trustDomain: LOCAL_TRUST_DOMAIN,
    endpointSpiffeId: `spiffe://${LOCAL_TRUST_DOMAIN}/bundlegate`,
    clock,
  });
  const localSvid = await local.issueSvid({
    spiffeId: `spiffe://${LOCAL_TRUST_DOMAIN}/bundlegate`,
    dnsNames: ["bundlegate-a", "bundlegate-b", "localhost"],
    ipAddresses: ["127.0.0.1"],
    validityMs: LEAF_DAYS * DAY_MS,
  });
  const webCa = await modules.createCa({
    trustDomain: LOCAL_TRUST_DOMAIN,
    subject: "CN=bundlegate compose web CA",
    withSpiffeUri: false,
    ...validity(CA_DAYS),
  });
  const web = await modules.createWebCert({
    issuer: webCa,
    dnsNames: ["localhost", "bundlegate-a", "bundlegate-b"],
    ipAddresses: ["127.0.0.1"],
    ...validity(LEAF_DAYS),
  });

  const partner = await modules.createDevPki({
    trustDomain: PARTNER_TRUST_DOMAIN,
    endpointSpiffeId: `spiffe://${PARTNER_TRUST_DOMAIN}/bundlegate`,
    clock,
  });
  const partnerSvid = await partner.issueSvid({
    spiffeId: `spiffe://${PARTNER_TRUST_DOMAIN}/bundlegate`,
    dnsNames: ["partner", "localhost"],
    ipAddresses: ["127.0.0.1"],
    validityMs: LEAF_DAYS * DAY_MS,
  });

  const bundleJson = (pki) => `${modules.serializeSpiffeBundle(pki.bundle, { indent: 2 })}\n`;
  await writeAll(path.join(outDir, "local"), {
    "bundle.json": bundleJson(local),
    "bundle.pem": local.rootCaPem,
    "svid.pem": localSvid.certPem,
    "svid.key": [localSvid.keyPem],
    "web-ca.pem": webCa.pem,
    "web.pem": web.pem,
    "web.key": [web.keyPem],
  });
  await writeAll(path.join(outDir, "partner"), {
    "bundle.json": bundleJson(partner),
    "bundle.pem": partner.rootCaPem,
    "svid.pem": partnerSvid.certPem,
    "svid.key": [partnerSvid.keyPem],
  });
  return true;
}

/** Values in an array are private keys: readable by their owner only. */
async function writeAll(dir, files) {
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) {
    const secret = Array.isArray(content);
    await writeFile(path.join(dir, name), secret ? content[0] : content, { mode: secret ? 0o600 : 0o644 });
  }
}

async function exists(file) {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

/** The volume may be created root-owned; the gateways run as another user and must read the keys. */
async function chownTree(dir, uid, gid) {
  await chown(dir, uid, gid);
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const child = path.join(dir, entry.name);
    if (entry.isDirectory()) await chownTree(child, uid, gid);
    else await chown(child, uid, gid);
  }
}

function parseArgs(argv) {
  const [outDir, ...rest] = argv;
  const options = { outDir, dist: "/app/dist", owner: undefined };
  for (let i = 0; i < rest.length; i += 2) {
    const [flag, value] = [rest[i], rest[i + 1]];
    if (flag === "--dist" && value) options.dist = value;
    else if (flag === "--chown" && /^\d+:\d+$/.test(value ?? "")) options.owner = value.split(":").map(Number);
    else throw new Error(`unknown argument ${flag}; usage: node init-pki.mjs OUT_DIR [--dist DIR] [--chown UID:GID]`);
  }
  if (!outDir) throw new Error("usage: node init-pki.mjs OUT_DIR [--dist DIR] [--chown UID:GID]");
  return options;
}

async function main() {
  const options = parseArgs(process.argv.slice(2));
  const written = await writeComposePki(options.outDir, await loadModules(options.dist));
  if (options.owner) await chownTree(options.outDir, options.owner[0], options.owner[1]);
  console.log(
    written
      ? `wrote the compose PKI for ${LOCAL_TRUST_DOMAIN} and ${PARTNER_TRUST_DOMAIN} to ${options.outDir}`
      : `kept the compose PKI in ${options.outDir}`,
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((error) => {
    console.error(error instanceof Error ? error.message : error);
    process.exitCode = 1;
  });
}
