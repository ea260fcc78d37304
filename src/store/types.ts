/**
 * The Store: bundlegate's state of record. Redis when replicas share work, the embedded store for
 * development and single nodes; both pass the same contract tests (test/store/contract.ts).
 */
import type { AdminStore } from "./admin-state.js";
import type { FederationStore } from "./federation-state.js";
import type { LocalBundleStateStore } from "./local-bundle-state.js";

export type StoreKind = "embedded" | "redis";

export interface StoreHealth {
  readonly ok: boolean;
  /** Why not, as an error code (ERR_STORE_UNAVAILABLE, ...). */
  readonly code?: string;
}

export interface Store extends LocalBundleStateStore, FederationStore, AdminStore {
  readonly kind: StoreKind;
  health(): Promise<StoreHealth>;
  close(): Promise<void>;
}
