import { mkdtemp, readFile, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { silentLogger } from "../../src/logging.js";
import { openEmbeddedStore } from "../../src/store/embedded/embedded-store.js";
import { storeContract } from "./contract.js";

storeContract("embedded (memory)", () => openEmbeddedStore({ logger: silentLogger() }));
storeContract("embedded (snapshot file)", async () =>
  openEmbeddedStore({
    snapshotFile: join(await mkdtemp(join(tmpdir(), "bg-store-")), "state.json"),
    logger: silentLogger(),
  }),
);

describe("embedded store snapshot", () => {
  const tempFile = async () => join(await mkdtemp(join(tmpdir(), "bg-store-")), "nested", "state.json");

  it("keeps the local sequence across a restart, so it never goes backwards", async () => {
    const file = await tempFile();
    const first = await openEmbeddedStore({ snapshotFile: file, logger: silentLogger() });
    await first.assignLocalSequence("a".repeat(64));
    await first.recordLocalSequence("b".repeat(64), 18446744073709551615n);
    await first.close();
    const second = await openEmbeddedStore({ snapshotFile: file, logger: silentLogger() });
    expect(await second.getLocalBundleState()).toEqual({
      contentDigest: "b".repeat(64),
      sequence: 18446744073709551615n,
    });
    expect(JSON.parse(await readFile(file, "utf8"))).toMatchObject({ version: 1 });
  });

  it.each([
    ["not JSON", "{"],
    ["another version", '{"version":2}'],
    ["a malformed digest", '{"version":1,"localBundle":{"contentDigest":"zz","sequence":"1"}}'],
    ["a malformed sequence", `{"version":1,"localBundle":{"contentDigest":"${"a".repeat(64)}","sequence":"-1"}}`],
  ])("refuses to start on a snapshot that is %s", async (_name, content) => {
    const file = await tempFile();
    const first = await openEmbeddedStore({ snapshotFile: file, logger: silentLogger() });
    await first.assignLocalSequence("a".repeat(64));
    await first.close();
    await writeFile(file, content);
    await expect(openEmbeddedStore({ snapshotFile: file, logger: silentLogger() })).rejects.toMatchObject({
      code: "ERR_STORE_CORRUPT",
    });
    // The bad file is left for a person to look at, not overwritten.
    expect(await readFile(file, "utf8")).toBe(content);
  });
});
