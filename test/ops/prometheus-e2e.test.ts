/**
 * The shipped alert rules against live gateways, end to end: a real Prometheus (Debian's package) scrapes
 * the metrics listener every second and evaluates config/prometheus/bundlegate-rules.yml every second.
 *
 * - A partner with a 1 s refresh hint (stale after 3 s) stops answering: BundleStale fires for it. It comes
 *   back serving a bundle whose spiffe_sequence is lower than the accepted one: BundleRollbackRejected fires.
 * - Two replicas on one real Redis serve different bundles of one partner (one replica's cache is given
 *   another bundle): both scrapes, and Prometheus, show two digests for that trust domain.
 *
 * No timed assertions: each step polls until its condition holds, under a generous deadline that fails the test.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { serializeSpiffeBundle } from "../../src/spiffe/codec.js";
import { bundleDigest } from "../../src/spiffe/digest.js";
import { parseTrustDomain } from "../../src/spiffe/id.js";
import { createCa, type Issued } from "../support/pki.js";
import { type RedisServerHandle, startRedisServer } from "../support/redis-server.js";
import { hasPrometheus, needsPrometheus, RULES_FILE } from "./prometheus-tools.js";
import {
  type AlertInfo,
  alerts,
  bundleOf,
  eventually,
  type Gateway,
  OWN_TD,
  type Partner,
  type PrometheusHandle,
  query,
  scrape,
  startGateway,
  startPartner,
  startPrometheus,
} from "./support.js";

/** Prometheus needs a few scrapes and evaluations for each step; a slow CI machine gets room. */
const DEADLINE_MS = 60_000;

function firing(list: readonly AlertInfo[], alertname: string, trustDomain: string): AlertInfo | undefined {
  return list.find(
    (alert) =>
      alert.labels.alertname === alertname && alert.labels.trust_domain === trustDomain && alert.state === "firing",
  );
}

describe("alert rules on a live gateway", () => {
  const PARTNER_TD = "short-hint.test";
  let partnerCa: Issued;
  let partner: Partner;
  let gateway: Gateway;
  let prometheus: PrometheusHandle;

  beforeAll(async () => {
    if (!hasPrometheus) return;
    partnerCa = await createCa({ trustDomain: PARTNER_TD });
    partner = await startPartner(PARTNER_TD, bundleOf([partnerCa], 10n, 1));
    gateway = await startGateway({ partner });
    prometheus = await startPrometheus([`127.0.0.1:${gateway.app.addresses.metrics.port}`], [RULES_FILE]);
  }, 120_000);

  afterAll(async () => {
    await prometheus?.stop();
    await gateway?.stop();
    await partner?.stop();
  });

  it("fires BundleStale when the partner stops answering, then BundleRollbackRejected for a lower sequence", async (context) => {
    needsPrometheus(context);
    const explain = async () =>
      `alerts: ${JSON.stringify(await alerts(prometheus).catch(String))}\nprometheus log:\n${prometheus.log()}`;

    // Synced: the gateway serves sequence 10, and Prometheus has scraped it.
    await eventually(
      async () => {
        const samples = await query(prometheus, `bundlegate_bundle_sequence{trust_domain="${PARTNER_TD}"}`);
        return samples[0]?.value[1] === "10" || undefined;
      },
      {
        what: "the partner's bundle, sequence 10, in Prometheus",
        timeoutMs: DEADLINE_MS,
        intervalMs: 250,
        explain,
      },
    );
    expect(firing(await alerts(prometheus), "BundleStale", PARTNER_TD)).toBeUndefined();

    await partner.stop();
    const stale = await eventually(async () => firing(await alerts(prometheus), "BundleStale", PARTNER_TD), {
      what: "BundleStale firing",
      timeoutMs: DEADLINE_MS,
      intervalMs: 250,
      explain,
    });
    expect(stale.labels).toMatchObject({ severity: "warning", owner: "partner-team", trust_domain: PARTNER_TD });
    expect(stale.annotations.runbook_url).toMatch(/^https:\/\//);
    expect(firing(await alerts(prometheus), "BundleRollbackRejected", PARTNER_TD)).toBeUndefined();

    // Back, but serving an older bundle: rejected, and the last-known-good (sequence 10) stays.
    partner.serve(bundleOf([partnerCa], 3n, 1));
    await partner.restart();
    const rollback = await eventually(
      async () => firing(await alerts(prometheus), "BundleRollbackRejected", PARTNER_TD),
      { what: "BundleRollbackRejected firing", timeoutMs: DEADLINE_MS, intervalMs: 250, explain },
    );
    expect(rollback.labels).toMatchObject({ owner: "partner-team", trust_domain: PARTNER_TD });
    expect(Number(rollback.value)).toBeGreaterThanOrEqual(1);
    expect(await scrape(gateway)).toMatch(/^bundlegate_bundle_sequence\{trust_domain="short-hint\.test"\} 10$/m);
  }, 180_000);
});

describe("replica drift on live scrapes", () => {
  const PARTNER_TD = "drift.test";
  let redis: RedisServerHandle;
  let partner: Partner;
  let a: Gateway;
  let b: Gateway;
  let prometheus: PrometheusHandle;

  beforeAll(async () => {
    if (!hasPrometheus) return;
    redis = await startRedisServer();
    // A 300 s hint polls every 75 s: no refresh undoes the injected difference while the test looks.
    const partnerCa = await createCa({ trustDomain: PARTNER_TD });
    partner = await startPartner(PARTNER_TD, bundleOf([partnerCa], 1n, 300));
    const ownCa = await createCa({ trustDomain: OWN_TD });
    const shared = { partner, redisUrl: redis.url, keyPrefix: "drift", ownCa };
    a = await startGateway({ ...shared, replicaId: "replica-a" });
    b = await startGateway({ ...shared, replicaId: "replica-b" });
    prometheus = await startPrometheus(
      [`127.0.0.1:${a.app.addresses.metrics.port}`, `127.0.0.1:${b.app.addresses.metrics.port}`],
      [],
    );
  }, 120_000);

  afterAll(async () => {
    await prometheus?.stop();
    await a?.stop();
    await b?.stop();
    await partner?.stop();
    if (redis?.controllable) await redis.stop();
  });

  it("shows two digests for one trust domain when the replicas serve different bundles", async (context) => {
    needsPrometheus(context);
    const digestsIn = (text: string) =>
      [...text.matchAll(/^bundlegate_bundle_info\{trust_domain="drift\.test",digest="([0-9a-f]{64})"\} 1$/gm)].map(
        (match) => match[1],
      );
    // Both replicas serve the one bundle one of them fetched, and both know its last success (the one that
    // did not poll reads the status the other wrote).
    const synced = await eventually(
      async () => {
        const [textA, textB] = await Promise.all([scrape(a), scrape(b)]);
        const [digestA, digestB] = [digestsIn(textA), digestsIn(textB)];
        const success = /^bundlegate_relationship_last_success_timestamp_seconds\{trust_domain="drift\.test"\} /m;
        return digestA.length === 1 && digestA[0] === digestB[0] && success.test(textA) && success.test(textB)
          ? digestA[0]
          : undefined;
      },
      { what: "both replicas serving the partner's bundle", timeoutMs: DEADLINE_MS, intervalMs: 250 },
    );

    const other = bundleOf([await createCa({ trustDomain: PARTNER_TD })], 2n, 300);
    const injected = bundleDigest(other);
    b.app.cache.put(
      parseTrustDomain(PARTNER_TD),
      {
        json: serializeSpiffeBundle(other),
        digest: injected,
        sequence: "2",
        refreshHintSeconds: 300,
        acceptedAt: Date.now(),
      },
      { force: true },
    );

    const [textA, textB] = await Promise.all([scrape(a), scrape(b)]);
    expect(digestsIn(textA)).toEqual([synced]);
    expect(digestsIn(textB)).toEqual([injected]);

    const drift = await eventually(
      async () => {
        const samples = await query(
          prometheus,
          `count by (trust_domain) (count by (trust_domain, digest) (bundlegate_bundle_info{trust_domain="${PARTNER_TD}"}))`,
        );
        return samples[0]?.value[1] === "2" ? samples[0] : undefined;
      },
      {
        what: "two digests of drift.test in Prometheus",
        timeoutMs: DEADLINE_MS,
        intervalMs: 250,
        explain: () => prometheus.log(),
      },
    );
    expect(drift.metric).toEqual({ trust_domain: PARTNER_TD });
    const series = await query(prometheus, `bundlegate_bundle_info{trust_domain="${PARTNER_TD}"}`);
    expect(new Set(series.map((sample) => sample.metric.digest))).toEqual(new Set([synced, injected]));
    expect(new Set(series.map((sample) => sample.metric.instance)).size).toBe(2);
  }, 180_000);
});
