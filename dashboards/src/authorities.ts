/** When the trust each bundle carries runs out: partner authorities and this domain's own. */
import {
  bargauge,
  type Dashboard,
  dashboard,
  datasourceVariable,
  lowIsBad,
  query,
  redFrom,
  stat,
  table,
  timeseries,
} from "./grafana.js";
import {
  expiringWithinDays,
  newestAuthorityDaysLeft,
  noUsableAuthorityCount,
  owned,
  ownerVariable,
  TRUST_DOMAIN,
  trustDomainVariable,
} from "./promql.js";

const AUTHORITY_EXPIRY = `max by (trust_domain, fingerprint) (bundlegate_bundle_authority_not_after_timestamp_seconds{${TRUST_DOMAIN}})`;

export function authoritiesDashboard(): Dashboard {
  return dashboard({
    uid: "bundlegate-authorities",
    title: "bundlegate / Authorities by expiry",
    description: "X.509 authorities of the partner bundles and of this domain's own bundle, soonest expiry first.",
    variables: [datasourceVariable(), ownerVariable, trustDomainVariable],
  })
    .add(
      stat({
        title: "No usable authority",
        description: "Partner bundles with no authority valid now: their workloads cannot be verified.",
        w: 6,
        h: 4,
        decimals: 0,
        noValue: "0",
        thresholds: redFrom(1),
        queries: [query(noUsableAuthorityCount)],
      }),
      stat({
        title: "Newest authority < 7 days",
        description: "Partner bundles whose newest X.509 authority expires within 7 days.",
        w: 6,
        h: 4,
        decimals: 0,
        noValue: "0",
        thresholds: redFrom(1),
        queries: [query(expiringWithinDays(7))],
      }),
      stat({
        title: "Newest authority < 30 days",
        description: "Partner bundles whose newest X.509 authority expires within 30 days.",
        w: 6,
        h: 4,
        decimals: 0,
        noValue: "0",
        thresholds: [
          { color: "green", value: null },
          { color: "orange", value: 1 },
        ],
        queries: [query(expiringWithinDays(30))],
      }),
      stat({
        title: "Own newest authority",
        description: "Days until the newest X.509 authority of the bundle this domain serves expires.",
        w: 6,
        h: 4,
        unit: "none",
        decimals: 1,
        thresholds: lowIsBad(7, 30),
        queries: [query("(max(bundlegate_local_authority_not_after_timestamp_seconds) - time()) / 86400")],
      }),
    )
    .add(
      bargauge({
        title: "Days left of the newest authority, soonest first",
        description:
          "Per partner, the days until its newest X.509 authority expires: the day its bundle stops verifying anything unless the partner rotates.",
        w: 12,
        h: 12,
        unit: "none",
        decimals: 1,
        min: 0,
        thresholds: lowIsBad(7, 30),
        queries: [query(`bottomk(20, ${newestAuthorityDaysLeft})`, { legend: "{{trust_domain}}" })],
      }),
      table({
        title: "Every partner authority",
        description:
          "Each X.509 authority of each partner bundle, by fingerprint (first 16 hex digits of its SHA-256).",
        w: 12,
        h: 12,
        joinOn: "fingerprint",
        joinTitle: "Fingerprint",
        sortBy: { column: "Days left", desc: false },
        columns: [
          {
            query: query(owned(`(${AUTHORITY_EXPIRY} - time()) / 86400`)),
            labels: { trust_domain: "Trust domain" },
            title: "Days left",
            unit: "none",
            decimals: 1,
            colored: true,
            thresholds: lowIsBad(7, 30),
          },
          {
            query: query(owned(`${AUTHORITY_EXPIRY} * 1000`)),
            title: "Expires",
            unit: "dateTimeAsIso",
          },
        ],
      }),
    )
    .add(
      timeseries({
        title: "Authorities by use",
        description: "Authorities in the partner bundles, by use (x509-svid, jwt-svid).",
        w: 12,
        h: 8,
        decimals: 0,
        min: 0,
        stack: true,
        queries: [
          query(
            `sum by (use) (${owned(`max by (trust_domain, use) (bundlegate_bundle_authorities{${TRUST_DOMAIN}})`)})`,
            { legend: "{{use}}" },
          ),
        ],
      }),
      bargauge({
        title: "Own authorities: days left",
        description: "Each X.509 authority of the bundle this domain serves (local_bundle), by fingerprint.",
        w: 12,
        h: 8,
        unit: "none",
        decimals: 1,
        min: 0,
        thresholds: lowIsBad(7, 30),
        queries: [
          query("(max by (fingerprint) (bundlegate_local_authority_not_after_timestamp_seconds) - time()) / 86400", {
            legend: "{{fingerprint}}",
          }),
        ],
      }),
    )
    .build();
}
