/**
 * Reading Redis values back. A value Redis holds that the scripts could not have written (edited by hand,
 * another program sharing the prefix) is ERR_STORE_CORRUPT, never a guess.
 */
import { isWholeNumber, StoreError } from "../errors.js";

export function corrupt(key: string, what: string): StoreError {
  return new StoreError("ERR_STORE_CORRUPT", `${key}: ${what}`);
}

/** The number a field's decimal text stands for; undefined when absent or not a safe whole number. */
export function parseWholeNumber(text: string | undefined): number | undefined {
  // Digits only, as the scripts write them: Number() would also take "", " 7", "1e3" and "0x10".
  if (text === undefined || !/^[0-9]{1,16}$/.test(text)) return undefined;
  const parsed = Number(text);
  return isWholeNumber(parsed) ? parsed : undefined;
}
