/**
 * `promtool check metrics` on a live scrape (DESIGN.md section 8): a real gateway with one partner
 * relationship synced over HTTPS, its metrics listener scraped over HTTP and piped to Prometheus' linter.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createCa } from "../support/pki.js";
import { METRIC_CONTRACT } from "./metric-names.js";
import { needsPromtool, PROMTOOL } from "./prometheus-tools.js";
import {
  bundleOf,
  eventually,
  type Gateway,
  type Partner,
  run,
  scrape,
  startGateway,
  startPartner,
} from "./support.js";

const PARTNER_TD = "partner.test";

let partner: Partner;
let gateway: Gateway;
let text: string;

beforeAll(async () => {
  const partnerCa = await createCa({ trustDomain: PARTNER_TD });
  partner = await startPartner(PARTNER_TD, bundleOf([partnerCa], 5n, 60));
  gateway = await startGateway({ partner });
  text = await eventually(
    async () => {
      const scraped = await scrape(gateway);
      return /^bundlegate_bundle_sequence\{trust_domain="partner\.test"\} 5$/m.test(scraped) ? scraped : undefined;
    },
    {
      what: "the partner's first accepted fetch, in the scrape",
      timeoutMs: 20_000,
      intervalMs: 250,
      explain: () => scrape(gateway),
    },
  );
});

afterAll(async () => {
  await gateway?.stop();
  await partner?.stop();
});

describe("the metrics listener's live scrape", () => {
  it("passes promtool check metrics without a lint problem", async (context) => {
    needsPromtool(context);
    const checked = await run(PROMTOOL, ["check", "metrics"], text);
    expect(`${checked.stdout}${checked.stderr}`).toBe("");
    expect(checked.code).toBe(0);
  });

  it("fails promtool on a scrape with a lint problem (the check can fail)", async (context) => {
    needsPromtool(context);
    const broken = `${text}# HELP bundlegate_broken_counter A counter without the suffix.\n# TYPE bundlegate_broken_counter counter\nbundlegate_broken_counter 1\n`;
    const checked = await run(PROMTOOL, ["check", "metrics"], broken);
    expect(checked.code).not.toBe(0);
    expect(`${checked.stdout}${checked.stderr}`).toContain("bundlegate_broken_counter");
  });

  it("holds every metric of the contract for the synced relationship", () => {
    const names = new Set(
      text
        .split("\n")
        .filter((line) => line.startsWith("# TYPE "))
        .map((line) => line.split(" ")[2]),
    );
    // prom-client's process metrics come with the app's prefix.
    for (const name of [...METRIC_CONTRACT, "bundlegate_process_cpu_user_seconds_total"]) {
      expect(names.has(name), name).toBe(true);
    }
    const line = (pattern: string) => expect(text).toMatch(new RegExp(`^${pattern}$`, "m"));
    line(
      'bundlegate_relationship_info\\{trust_domain="partner\\.test",owner="partner-team",profile="https_web",state="active",origin="config"\\} 1',
    );
    line('bundlegate_relationship_stale_after_seconds\\{trust_domain="partner\\.test"\\} 180');
    line('bundlegate_relationship_refresh_interval_seconds\\{trust_domain="partner\\.test"\\} 15');
    line('bundlegate_bundle_authorities\\{trust_domain="partner\\.test",use="x509-svid"\\} 1');
    line('bundlegate_bundle_authorities\\{trust_domain="partner\\.test",use="jwt-svid"\\} 0');
    line('bundlegate_bundle_updates_total\\{trust_domain="partner\\.test"\\} 1');
    line(
      'bundlegate_bundle_rejections_total\\{trust_domain="partner\\.test",reason="ERR_POLICY_SEQUENCE_ROLLBACK"\\} 0',
    );
    line("bundlegate_redis_up 1");
    line("bundlegate_serving_last_known_good 0");
    line('bundlegate_endpoint_requests_total\\{profile="https_web",code="304"\\} 0');
    // The relationship has no review date and no expiry: their metrics have no series.
    expect(text).not.toMatch(/^bundlegate_relationship_review_by_timestamp_seconds\{/m);
  });

  it("answers 404 beside /metrics and 405 to other methods, and stops listening with the app", async () => {
    const base = gateway.metricsUrl.replace(/\/metrics$/, "");
    expect((await fetch(`${base}/readyz`)).status).toBe(404);
    expect((await fetch(gateway.metricsUrl, { method: "DELETE" })).status).toBe(405);
    const other = await startGateway({ partner });
    expect((await fetch(other.metricsUrl)).status).toBe(200);
    await other.stop();
    await expect(fetch(other.metricsUrl)).rejects.toThrow();
  });

  it("is the only listener serving /metrics", async () => {
    const reply = await fetch(`http://127.0.0.1:${gateway.app.addresses.internal.port}/metrics`);
    expect(reply.status).toBe(404);
  });
});
