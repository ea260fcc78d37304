/** One row per relationship: who owns it, how fresh it is, what it holds and what went wrong. */
import { type Dashboard, dashboard, datasourceVariable, lowIsBad, query, redFrom, table } from "./grafana.js";
import {
  ageRatio,
  ageSeconds,
  CRITICAL_RATIO,
  FETCH_ERROR,
  newestAuthorityDaysLeft,
  owned,
  ownerVariable,
  perDomain,
  TRUST_DOMAIN,
  trustDomainVariable,
} from "./promql.js";

// Grafana interpolates these variables when the link is followed.
const FRESHNESS_LINK = {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a Grafana variable, interpolated by Grafana
  title: "Freshness of ${__value.raw}",
  // biome-ignore lint/suspicious/noTemplateCurlyInString: Grafana variables, interpolated by Grafana
  url: "/d/bundlegate-freshness/bundlegate-freshness?var-trust_domain=${__value.raw}&${datasource:queryparam}&${__url_time_range}",
};

function daysUntil(metric: string): string {
  return owned(`(${perDomain(metric)} - time()) / 86400`);
}

export function relationshipsDashboard(): Dashboard {
  return dashboard({
    uid: "bundlegate-relationships",
    title: "bundlegate / Relationships",
    description: "Every federation relationship with its owner, freshness, bundle and errors.",
    variables: [datasourceVariable(), ownerVariable, trustDomainVariable],
  })
    .add(
      table({
        title: "Relationships",
        description:
          "One row per relationship. Age is the time since the last successful fetch; 'of stale threshold' is that age over 3 x the refresh hint (100 % is stale). Click a trust domain for its freshness.",
        w: 24,
        h: 16,
        joinOn: "trust_domain",
        joinTitle: "Trust domain",
        joinLinks: [FRESHNESS_LINK],
        sortBy: { column: "Of stale threshold", desc: true },
        columns: [
          {
            query: query(
              `max by (trust_domain, owner, profile, state, origin) (bundlegate_relationship_info{owner=~"$owner", ${TRUST_DOMAIN}})`,
            ),
            labels: { owner: "Owner", state: "State", profile: "Profile", origin: "Origin" },
          },
          { query: query(ageSeconds), title: "Age", unit: "s", decimals: 0 },
          {
            query: query(ageRatio),
            title: "Of stale threshold",
            unit: "percentunit",
            decimals: 0,
            colored: true,
            thresholds: [
              { color: "green", value: null },
              { color: "orange", value: 1 },
              { color: "red", value: CRITICAL_RATIO },
            ],
          },
          {
            query: query(owned(perDomain("bundlegate_bundle_sequence"))),
            title: "Sequence",
            unit: "none",
            decimals: 0,
          },
          {
            query: query(
              owned(
                `sum by (trust_domain) (max by (trust_domain, use) (bundlegate_bundle_authorities{${TRUST_DOMAIN}}))`,
              ),
            ),
            title: "Keys",
            unit: "none",
            decimals: 0,
          },
          {
            query: query(owned(perDomain("bundlegate_bundle_usable_authorities"))),
            title: "Usable",
            unit: "none",
            decimals: 0,
            colored: true,
            thresholds: [
              { color: "red", value: null },
              { color: "green", value: 1 },
            ],
          },
          {
            query: query(newestAuthorityDaysLeft),
            title: "Days left (newest authority)",
            unit: "none",
            decimals: 1,
            colored: true,
            thresholds: lowIsBad(7, 30),
          },
          {
            query: query(owned(perDomain("bundlegate_relationship_consecutive_failures"))),
            title: "Failures in a row",
            unit: "none",
            decimals: 0,
            colored: true,
            thresholds: redFrom(1),
          },
          {
            query: query(owned(perDomain("bundlegate_relationship_quarantined"))),
            title: "Quarantined",
            unit: "none",
            decimals: 0,
            colored: true,
            thresholds: redFrom(1),
          },
          {
            // The error code seen most in the last hour, with how many fetches failed with it.
            query: query(
              `topk by (trust_domain) (1, sum by (trust_domain, result) (${owned(
                `increase(bundlegate_fetch_attempts_total{${TRUST_DOMAIN}, ${FETCH_ERROR}}[1h])`,
              )}) > 0)`,
            ),
            labels: { result: "Last error (1 h)" },
            title: "Errors (1 h)",
            unit: "none",
            decimals: 0,
          },
          {
            query: query(daysUntil("bundlegate_relationship_review_by_timestamp_seconds")),
            title: "Review in (days)",
            unit: "none",
            decimals: 0,
            colored: true,
            thresholds: lowIsBad(0, 14),
          },
          {
            query: query(daysUntil("bundlegate_relationship_expires_at_timestamp_seconds")),
            title: "Expires in (days)",
            unit: "none",
            decimals: 0,
            colored: true,
            thresholds: lowIsBad(0, 30),
          },
        ],
      }),
    )
    .add(
      table({
        title: "Trust decisions in the time range",
        description:
          "Decisions on fetched bundles over the selected range, by trust domain, decision and deciding reason.",
        w: 24,
        h: 10,
        joinOn: "trust_domain",
        joinTitle: "Trust domain",
        joinLinks: [FRESHNESS_LINK],
        sortBy: { column: "Count", desc: true },
        columns: [
          {
            query: query(
              `round(sum by (trust_domain, decision, reason) (${owned(
                `increase(bundlegate_bundle_decisions_total{${TRUST_DOMAIN}}[$__range])`,
              )})) > 0`,
            ),
            labels: { decision: "Decision", reason: "Reason" },
            title: "Count",
            unit: "none",
            decimals: 0,
          },
        ],
      }),
    )
    .build();
}
