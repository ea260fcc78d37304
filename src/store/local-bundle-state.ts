/**
 * The one piece of state the bundle endpoint keeps: which sequence number this domain's bundle content
 * was given. Content is identified by its digest without the sequence, so replicas reading the same file
 * agree on its sequence, and a restart never goes backwards.
 */
export interface LocalBundleState {
  /** Hex SHA-256 of the canonical bundle with no sequence. */
  readonly contentDigest: string;
  readonly sequence: bigint;
}

export type RecordSequenceResult =
  | { readonly ok: true; readonly state: LocalBundleState }
  /** The sequence went backwards, or stayed the same for other content; `stored` is left as it was. */
  | { readonly ok: false; readonly stored: LocalBundleState };

export interface LocalBundleStateStore {
  /**
   * For a source without its own sequence, atomically: the stored state when `contentDigest` is the stored
   * one, else stored sequence + 1 (1 when nothing is stored) with this digest.
   */
  assignLocalSequence(contentDigest: string): Promise<LocalBundleState>;
  /**
   * For a source that sets its own sequence, atomically: store it unless it is lower than the stored one,
   * or equal to it with other content (the spec says the sequence changes whenever the content does).
   */
  recordLocalSequence(contentDigest: string, sequence: bigint): Promise<RecordSequenceResult>;
  getLocalBundleState(): Promise<LocalBundleState | undefined>;
}
