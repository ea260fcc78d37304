/**
 * Store health for a scrape: the store's own check, at most one in flight, and never waited on longer
 * than `timeoutMs`. A Redis that stopped answering must not make Prometheus time out on the whole scrape;
 * a store that cannot answer a ping within the bound counts as down.
 */
export function boundedHealthCheck(
  check: () => Promise<{ readonly ok: boolean }>,
  timeoutMs: number,
): () => Promise<boolean> {
  let running: Promise<boolean> | undefined;
  return () => {
    running ??= check()
      .then(
        (health) => health.ok,
        () => false,
      )
      .finally(() => {
        running = undefined;
      });
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
      timer.unref?.();
    });
    return Promise.race([running, timedOut]).finally(() => clearTimeout(timer));
  };
}
