import { BundlegateError, type BundlegateErrorOptions } from "../errors.js";

export type StoreErrorCode =
  | "ERR_STORE_UNAVAILABLE"
  | "ERR_STORE_TIMEOUT"
  | "ERR_STORE_SCRIPT"
  | "ERR_STORE_SNAPSHOT_UNREADABLE"
  | "ERR_STORE_SNAPSHOT_WRITE"
  | "ERR_STORE_CORRUPT"
  | "ERR_SEQUENCE_EXHAUSTED";

export class StoreError extends BundlegateError<StoreErrorCode> {
  constructor(code: StoreErrorCode, message: string, options: BundlegateErrorOptions = {}) {
    super(code, message, { status: 503, expose: false, ...options });
  }
}
