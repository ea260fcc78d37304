import { X509Certificate } from "node:crypto";
import { mkdtemp, rename, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it, vi } from "vitest";
import { silentLogger } from "../../src/logging.js";
import {
  createLocalBundleSource,
  type LocalBundleSource,
  type LocalBundleSourceOptions,
} from "../../src/sources/local-bundle.js";
import { createTrustBundle, type TrustBundle, x509AuthorityFromCertificate } from "../../src/spiffe/bundle.js";
import { parseSpiffeBundle, serializeSpiffeBundle } from "../../src/spiffe/codec.js";
import { serializePem } from "../../src/spiffe/pem.js";
import { openEmbeddedStore } from "../../src/store/embedded/embedded-store.js";
import { StoreError } from "../../src/store/errors.js";
import type { LocalBundleStateStore } from "../../src/store/local-bundle-state.js";
import { createCa } from "../support/pki.js";

let bundleA: TrustBundle;
let bundleB: TrustBundle;
const sources: LocalBundleSource[] = [];

beforeAll(async () => {
  const [a, b] = await Promise.all([
    createCa({ trustDomain: "example.org" }),
    createCa({ trustDomain: "example.org" }),
  ]);
  const authority = (der: Uint8Array) => x509AuthorityFromCertificate(new X509Certificate(der));
  bundleA = createTrustBundle({ x509Authorities: [authority(a.der)] });
  bundleB = createTrustBundle({ x509Authorities: [authority(a.der), authority(b.der)] });
});

afterEach(() => {
  for (const source of sources.splice(0)) source.close();
});

async function setup(initial: string, overrides: Partial<LocalBundleSourceOptions> = {}) {
  const dir = await mkdtemp(join(tmpdir(), "bg-local-"));
  const file = join(dir, "bundle.json");
  await writeFile(file, initial);
  const store =
    overrides.store ?? (await openEmbeddedStore({ snapshotFile: join(dir, "state.json"), logger: silentLogger() }));
  const onReload = vi.fn();
  const open = () =>
    createLocalBundleSource({
      file,
      format: "auto",
      defaultRefreshHintSeconds: 300,
      maxBytes: 65536,
      store,
      logger: silentLogger(),
      pollIntervalMs: 200,
      onReload,
      ...overrides,
    }).then((source) => {
      sources.push(source);
      return source;
    });
  // Replaces the file the way deploy tools do: a new file renamed over the old one.
  const replace = async (content: string) => {
    await writeFile(`${file}.new`, content);
    await rename(`${file}.new`, file);
  };
  return { dir, file, store, onReload, open, replace };
}

describe("local bundle source", () => {
  it("serves the canonical form of the file, numbered from 1, with the configured refresh hint", async () => {
    const { open } = await setup(serializeSpiffeBundle(bundleA, { indent: 4 }));
    const source = await open();
    const served = source.current();
    expect(served.sequence).toBe(1n);
    expect(served.refreshHintSeconds).toBe(300);
    expect(served.bytes.toString()).toBe(
      serializeSpiffeBundle(
        createTrustBundle({ ...bundleA, jwtAuthorities: [], sequence: 1n, refreshHintSeconds: 300 }),
      ),
    );
    expect(served.etag).toBe(`"${served.digest}"`);
  });

  it("uses the sequence and refresh hint the file sets", async () => {
    const { open } = await setup(
      serializeSpiffeBundle(
        createTrustBundle({ ...bundleA, jwtAuthorities: [], sequence: 42n, refreshHintSeconds: 60 }),
      ),
    );
    const served = (await open()).current();
    expect(served.sequence).toBe(42n);
    expect(served.refreshHintSeconds).toBe(60);
  });

  it("reads a PEM file", async () => {
    const { open } = await setup(serializePem(bundleB));
    const served = (await open()).current();
    expect(parseSpiffeBundle(served.bytes).bundle.x509Authorities).toHaveLength(2);
  });

  it("refuses to start on a file it cannot use, with the error code", async () => {
    const { open } = await setup("{not json");
    await expect(open()).rejects.toMatchObject({ code: "ERR_BUNDLE_NOT_JSON" });
    const missing = await setup("{}", { file: "/nonexistent/bundle.json" });
    await expect(missing.open()).rejects.toMatchObject({ code: "ERR_LOCAL_BUNDLE_UNREADABLE" });
  });

  it("serves a changed file within seconds, with the sequence up by one, and tells subscribers", async () => {
    const { open, replace, onReload } = await setup(serializeSpiffeBundle(bundleA));
    const source = await open();
    const seen: bigint[] = [];
    source.subscribe((served) => seen.push(served.sequence));
    await replace(serializeSpiffeBundle(bundleB));
    await vi.waitFor(() => expect(source.current().sequence).toBe(2n), { timeout: 2000 });
    expect(parseSpiffeBundle(source.current().bytes).bundle.x509Authorities).toHaveLength(2);
    expect(seen).toEqual([2n]);
    expect(onReload).toHaveBeenCalledWith("changed");
  });

  it("does not renumber a file rewritten with the same content", async () => {
    const { open, replace, onReload } = await setup(serializeSpiffeBundle(bundleA));
    const source = await open();
    await replace(serializeSpiffeBundle(bundleA, { indent: 2 }));
    await vi.waitFor(() => expect(onReload).toHaveBeenCalledWith("unchanged"), { timeout: 2000 });
    expect(source.current().sequence).toBe(1n);
  });

  it.each([
    ["an unparsable file", () => "{", "ERR_BUNDLE_NOT_JSON"],
    [
      "a bundle with private key material",
      () => '{"keys":[{"use":"jwt-svid","kty":"oct","k":"AA"}]}',
      "ERR_BUNDLE_PRIVATE_KEY",
    ],
    [
      "a sequence that goes backwards",
      () => serializeSpiffeBundle(createTrustBundle({ ...bundleB, jwtAuthorities: [], sequence: 4n })),
      "ERR_LOCAL_SEQUENCE_BACKWARDS",
    ],
    [
      "the same sequence for other content",
      () => serializeSpiffeBundle(createTrustBundle({ ...bundleB, jwtAuthorities: [], sequence: 5n })),
      "ERR_LOCAL_SEQUENCE_REUSED",
    ],
  ])("keeps the previous bundle serving after %s", async (_name, content, code) => {
    const { open, replace, onReload } = await setup(
      serializeSpiffeBundle(createTrustBundle({ ...bundleA, jwtAuthorities: [], sequence: 5n })),
    );
    const source = await open();
    const before = source.current();
    await replace(content());
    await vi.waitFor(() => expect(onReload).toHaveBeenCalledWith("error", code), { timeout: 2000 });
    expect(source.current()).toBe(before);
  });

  it("never goes backwards across a restart", async () => {
    const { open, replace } = await setup(serializeSpiffeBundle(bundleA));
    const first = await open();
    await replace(serializeSpiffeBundle(bundleB));
    await vi.waitFor(() => expect(first.current().sequence).toBe(2n), { timeout: 2000 });
    first.close();
    const second = await open();
    expect(second.current().sequence).toBe(2n);
    await replace(serializeSpiffeBundle(bundleA));
    await vi.waitFor(() => expect(second.current().sequence).toBe(3n), { timeout: 2000 });
  });

  it("retries a change the store could not record, serving the old bundle meanwhile", async () => {
    const real = await openEmbeddedStore({ logger: silentLogger() });
    let failures = 0;
    const flaky: LocalBundleStateStore = {
      getLocalBundleState: () => real.getLocalBundleState(),
      recordLocalSequence: (d, s) => real.recordLocalSequence(d, s),
      assignLocalSequence: async (digest) => {
        if (failures > 0) {
          failures--;
          throw new StoreError("ERR_STORE_UNAVAILABLE", "redis is down");
        }
        return real.assignLocalSequence(digest);
      },
    };
    const { open, replace, onReload } = await setup(serializeSpiffeBundle(bundleA), {
      store: flaky,
      storeRetryMs: 100,
    });
    const source = await open();
    failures = 2;
    await replace(serializeSpiffeBundle(bundleB));
    await vi.waitFor(() => expect(onReload).toHaveBeenCalledWith("error", "ERR_STORE_UNAVAILABLE"), { timeout: 2000 });
    await vi.waitFor(() => expect(source.current().sequence).toBe(2n), { timeout: 3000 });
    expect(failures).toBe(0);
  });
});
