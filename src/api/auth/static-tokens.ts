/**
 * Static bearer tokens, shared by the consumer (distribution API) and admin authentication: the config holds
 * only the SHA-256 of each token, and a presented token is matched by hashing it and comparing the digest
 * with every configured one in constant time.
 */
import { createHash, timingSafeEqual } from "node:crypto";

/** Lowercase hex SHA-256, the one form a configured token hash may take. */
export const SHA256_HEX = /^[0-9a-f]{64}$/;

export interface StaticTokenEntry {
  /** Names the token in logs and in the caller ID; never the token itself. */
  readonly name: string;
  /** Lowercase hex SHA-256 of the token's UTF-8 bytes. */
  readonly sha256: string;
}

export interface CompiledStaticToken<T extends StaticTokenEntry> {
  readonly entry: T;
  readonly digest: Buffer;
}

/**
 * Checks names (non-empty, unique) and hashes (64 lowercase hex, unique) and decodes the digests once.
 * `fail` builds the caller's own config error from a message naming the entry.
 */
export function compileStaticTokens<T extends StaticTokenEntry>(
  tokens: readonly T[],
  fail: (message: string) => Error,
): CompiledStaticToken<T>[] {
  const names = new Set<string>();
  const digests = new Set<string>();
  return tokens.map((token, index) => {
    if (token.name === "" || names.has(token.name)) {
      throw fail(`tokens[${index}]: name is empty or used twice`);
    }
    if (!SHA256_HEX.test(token.sha256) || digests.has(token.sha256)) {
      throw fail(`tokens[${index}] (${token.name}): sha256 is not 64 lowercase hex or used twice`);
    }
    names.add(token.name);
    digests.add(token.sha256);
    return { entry: token, digest: Buffer.from(token.sha256, "hex") };
  });
}

/**
 * The configured token whose SHA-256 equals the presented token's. Every entry is compared, in constant
 * time over equal-length digests, whatever matched before, so the time taken does not say which entry
 * matched; only the (public) number of entries leaks.
 */
export function matchStaticToken<T extends StaticTokenEntry>(
  tokens: readonly CompiledStaticToken<T>[],
  token: string,
): T | undefined {
  const digest = createHash("sha256").update(token, "utf8").digest();
  let found: T | undefined;
  for (const candidate of tokens) {
    const equal = timingSafeEqual(digest, candidate.digest);
    if (equal && found === undefined) found = candidate.entry;
  }
  return found;
}
