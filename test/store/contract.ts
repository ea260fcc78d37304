/**
 * The behaviour every Store must have. Each backend's test file runs this suite against a fresh store.
 */
import { describe, expect, it } from "vitest";
import type { Store } from "../../src/store/types.js";

const digest = (n: number) => n.toString(16).padStart(64, "0");

export function storeContract(name: string, openFresh: () => Promise<Store>): void {
  describe(`${name}: local bundle sequence`, () => {
    it("numbers new content from 1 and keeps the number for the same content", async () => {
      const store = await openFresh();
      expect(await store.getLocalBundleState()).toBeUndefined();
      expect(await store.assignLocalSequence(digest(1))).toEqual({ contentDigest: digest(1), sequence: 1n });
      expect(await store.assignLocalSequence(digest(1))).toEqual({ contentDigest: digest(1), sequence: 1n });
      expect(await store.assignLocalSequence(digest(2))).toEqual({ contentDigest: digest(2), sequence: 2n });
      // Returning to earlier content is still a change, so it gets a new number.
      expect(await store.assignLocalSequence(digest(1))).toEqual({ contentDigest: digest(1), sequence: 3n });
      expect(await store.getLocalBundleState()).toEqual({ contentDigest: digest(1), sequence: 3n });
      await store.close();
    });

    it("gives concurrent callers with the same content the same number", async () => {
      const store = await openFresh();
      const results = await Promise.all(Array.from({ length: 10 }, () => store.assignLocalSequence(digest(7))));
      expect(new Set(results.map((r) => r.sequence))).toEqual(new Set([1n]));
      await store.close();
    });

    it("records a source's own sequence unless it goes backwards or repeats for other content", async () => {
      const store = await openFresh();
      expect(await store.recordLocalSequence(digest(1), 10n)).toEqual({
        ok: true,
        state: { contentDigest: digest(1), sequence: 10n },
      });
      expect(await store.recordLocalSequence(digest(1), 10n)).toMatchObject({ ok: true });
      expect(await store.recordLocalSequence(digest(2), 9n)).toEqual({
        ok: false,
        stored: { contentDigest: digest(1), sequence: 10n },
      });
      expect(await store.recordLocalSequence(digest(2), 10n)).toMatchObject({ ok: false });
      expect(await store.getLocalBundleState()).toEqual({ contentDigest: digest(1), sequence: 10n });
      expect(await store.recordLocalSequence(digest(2), 11n)).toMatchObject({ ok: true });
      // A later file without a sequence continues from the recorded one.
      expect(await store.assignLocalSequence(digest(3))).toEqual({ contentDigest: digest(3), sequence: 12n });
      await store.close();
    });

    it("keeps sequences exact up to 2^64-1 and refuses to pass it", async () => {
      const store = await openFresh();
      await store.recordLocalSequence(digest(1), 18446744073709551614n);
      expect((await store.assignLocalSequence(digest(2))).sequence).toBe(18446744073709551615n);
      await expect(store.assignLocalSequence(digest(3))).rejects.toMatchObject({ code: "ERR_SEQUENCE_EXHAUSTED" });
      expect(await store.getLocalBundleState()).toEqual({ contentDigest: digest(2), sequence: 18446744073709551615n });
      await store.close();
    });

    it("compares sequences as numbers, not as text", async () => {
      const store = await openFresh();
      await store.recordLocalSequence(digest(1), 9n);
      expect(await store.recordLocalSequence(digest(2), 10n)).toMatchObject({ ok: true });
      expect(await store.recordLocalSequence(digest(3), 9n)).toMatchObject({ ok: false });
      await store.recordLocalSequence(digest(4), 99n);
      expect((await store.assignLocalSequence(digest(5))).sequence).toBe(100n);
      await store.close();
    });

    it("reports itself healthy", async () => {
      const store = await openFresh();
      expect(await store.health()).toEqual({ ok: true });
      await store.close();
    });
  });
}
