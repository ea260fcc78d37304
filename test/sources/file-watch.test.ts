import { mkdirSync, mkdtempSync, renameSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { type FileWatcher, watchFiles } from "../../src/sources/file-watch.js";

const EVENTUALLY = { timeout: 5_000, interval: 20 };
// Long enough for several polls and debounce windows to pass: "nothing happened" means nothing in this time.
const QUIET_MS = 400;
const POLL_MS = 50;
// Polling so rare it never happens during a test: what is noticed was noticed through fs.watch.
const EVENTS_ONLY = { pollIntervalMs: 600_000 };

let dir: string;
const watchers: FileWatcher[] = [];

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "bundlegate-watch-"));
});

afterEach(() => {
  for (const watcher of watchers.splice(0)) watcher.close();
  rmSync(dir, { recursive: true, force: true });
});

function start(paths: string[], options: { pollIntervalMs?: number; debounceMs?: number } = {}) {
  const onChange = vi.fn();
  const watcher = watchFiles({
    paths,
    pollIntervalMs: options.pollIntervalMs ?? POLL_MS,
    debounceMs: options.debounceMs ?? 20,
    onChange,
  });
  watchers.push(watcher);
  return { onChange, watcher };
}

describe("watchFiles", () => {
  it("reports an in-place write", async () => {
    const file = join(dir, "cert.pem");
    writeFileSync(file, "one");
    const { onChange } = start([file], EVENTS_ONLY);
    writeFileSync(file, "two, longer");
    await vi.waitFor(() => expect(onChange).toHaveBeenCalled(), EVENTUALLY);
  });

  it("reports a same-size rewrite made within one mtime tick", async () => {
    const file = join(dir, "cert.pem");
    writeFileSync(file, "AAAA");
    const { onChange } = start([file], EVENTS_ONLY);
    writeFileSync(file, "BBBB");
    await vi.waitFor(() => expect(onChange).toHaveBeenCalled(), EVENTUALLY);
  });

  it("reports an atomic replace (write a temporary file, rename it over)", async () => {
    const file = join(dir, "cert.pem");
    writeFileSync(file, "one");
    const { onChange } = start([file], EVENTS_ONLY);
    writeFileSync(join(dir, ".cert.pem.tmp"), "two");
    renameSync(join(dir, ".cert.pem.tmp"), file);
    await vi.waitFor(() => expect(onChange).toHaveBeenCalled(), EVENTUALLY);
  });

  it("reports a Kubernetes-style ..data symlink swap", async () => {
    // The layout the kubelet writes for a projected volume.
    mkdirSync(join(dir, "..2024_01_01_00_00_00.1"));
    writeFileSync(join(dir, "..2024_01_01_00_00_00.1", "tls.crt"), "one");
    symlinkSync("..2024_01_01_00_00_00.1", join(dir, "..data"));
    symlinkSync(join("..data", "tls.crt"), join(dir, "tls.crt"));
    const file = join(dir, "tls.crt");
    const { onChange } = start([file], EVENTS_ONLY);

    mkdirSync(join(dir, "..2024_01_01_00_01_00.2"));
    writeFileSync(join(dir, "..2024_01_01_00_01_00.2", "tls.crt"), "two");
    symlinkSync("..2024_01_01_00_01_00.2", join(dir, "..data_tmp"));
    renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
    rmSync(join(dir, "..2024_01_01_00_00_00.1"), { recursive: true });
    await vi.waitFor(() => expect(onChange).toHaveBeenCalledTimes(1), EVENTUALLY);

    // And again: the watches follow the new target directory.
    mkdirSync(join(dir, "..2024_01_01_00_02_00.3"));
    writeFileSync(join(dir, "..2024_01_01_00_02_00.3", "tls.crt"), "three");
    symlinkSync("..2024_01_01_00_02_00.3", join(dir, "..data_tmp"));
    renameSync(join(dir, "..data_tmp"), join(dir, "..data"));
    rmSync(join(dir, "..2024_01_01_00_01_00.2"), { recursive: true });
    await vi.waitFor(() => expect(onChange).toHaveBeenCalledTimes(2), EVENTUALLY);
  });

  it("reports a delete followed by a recreate", async () => {
    const file = join(dir, "cert.pem");
    writeFileSync(file, "one");
    const { onChange } = start([file], { ...EVENTS_ONLY, debounceMs: 200 });
    unlinkSync(file);
    await sleep(30);
    writeFileSync(file, "two");
    await vi.waitFor(() => expect(onChange).toHaveBeenCalled(), EVENTUALLY);
  });

  it("reports a file in a directory that did not exist at start once it appears (polling)", async () => {
    const file = join(dir, "later", "cert.pem");
    const { onChange } = start([file]);
    mkdirSync(join(dir, "later"));
    writeFileSync(file, "one");
    await vi.waitFor(() => expect(onChange).toHaveBeenCalled(), EVENTUALLY);
  });

  it("reports a change behind a symlink into another directory", async () => {
    mkdirSync(join(dir, "real"));
    mkdirSync(join(dir, "links"));
    writeFileSync(join(dir, "real", "cert.pem"), "one");
    symlinkSync(join(dir, "real", "cert.pem"), join(dir, "links", "cert.pem"));
    const { onChange } = start([join(dir, "links", "cert.pem")], EVENTS_ONLY);
    writeFileSync(join(dir, "real", "cert.pem"), "two");
    await vi.waitFor(() => expect(onChange).toHaveBeenCalled(), EVENTUALLY);
  });

  it("calls onChange once for a burst of changes to several files", async () => {
    const cert = join(dir, "cert.pem");
    const key = join(dir, "key.pem");
    writeFileSync(cert, "cert one");
    writeFileSync(key, "key one");
    const { onChange } = start([cert, key], { debounceMs: 300 });
    writeFileSync(cert, "cert two");
    writeFileSync(key, "key two");
    await vi.waitFor(() => expect(onChange).toHaveBeenCalled(), EVENTUALLY);
    await sleep(QUIET_MS);
    expect(onChange).toHaveBeenCalledTimes(1);
  });

  it("stays quiet when the files do not change, even when their directory does", async () => {
    const file = join(dir, "cert.pem");
    writeFileSync(file, "one");
    const { onChange } = start([file]);
    writeFileSync(join(dir, "other.pem"), "unrelated");
    renameSync(join(dir, "other.pem"), join(dir, "other2.pem"));
    writeFileSync(file, "one");
    await sleep(QUIET_MS);
    expect(onChange).not.toHaveBeenCalled();
  });

  it("keeps watching after onChange throws or rejects", async () => {
    const file = join(dir, "cert.pem");
    writeFileSync(file, "one");
    let calls = 0;
    watchers.push(
      watchFiles({
        paths: [file],
        pollIntervalMs: POLL_MS,
        debounceMs: 20,
        onChange: () => {
          calls++;
          if (calls === 1) throw new Error("boom");
          return Promise.reject(new Error("async boom")) as unknown as undefined;
        },
      }),
    );
    writeFileSync(file, "two");
    await vi.waitFor(() => expect(calls).toBe(1), EVENTUALLY);
    writeFileSync(file, "three");
    await vi.waitFor(() => expect(calls).toBe(2), EVENTUALLY);
    writeFileSync(file, "four");
    await vi.waitFor(() => expect(calls).toBe(3), EVENTUALLY);
  });

  it("stops after close()", async () => {
    const file = join(dir, "cert.pem");
    writeFileSync(file, "one");
    const { onChange, watcher } = start([file]);
    watcher.close();
    watcher.close();
    writeFileSync(file, "two");
    await sleep(QUIET_MS);
    expect(onChange).not.toHaveBeenCalled();
  });

  it("does not call onChange for a change still being debounced at close()", async () => {
    const file = join(dir, "cert.pem");
    writeFileSync(file, "one");
    const { onChange, watcher } = start([file], { debounceMs: 200 });
    writeFileSync(file, "two");
    await sleep(100);
    watcher.close();
    await sleep(QUIET_MS);
    expect(onChange).not.toHaveBeenCalled();
  });

  it("refuses a poll interval that is not positive", () => {
    expect(() => watchFiles({ paths: [join(dir, "x")], pollIntervalMs: 0, onChange: () => {} })).toThrow(RangeError);
  });
});
