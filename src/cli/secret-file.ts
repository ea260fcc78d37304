import { chmod, writeFile } from "node:fs/promises";

/**
 * Writes a private key or a token readable by its owner only. The chmod is not redundant: `mode` applies
 * only when the file is created, and a file left by an earlier run keeps whatever mode it had.
 */
export async function writeSecret(path: string, content: string): Promise<void> {
  await writeFile(path, content, { mode: 0o600 });
  await chmod(path, 0o600);
}
