// The mixin's settings. Import the mixin and override any of these:
//
//   (import 'mining-exporter/mixin/mixin.libsonnet') + {
//     _config+:: { siteLabels: ['region', 'site'], exporterSelector: 'job="mining"' },
//   }
//
// The derived values at the bottom follow the settings: override the settings, not them.
{
  _config+:: {
    // Selects the exporter's own scrape target in `up`: MiningExporterDown and
    // MiningExporterAbsent read it.
    exporterSelector: 'job="mining-exporter"',

    // Labels that tell one site from another when many meet in one store: the agents'
    // external_labels. Two sites may both have a source `proxy` and an account `main`.
    // Each becomes a dashboard variable (multi, All).
    siteLabels: ['site'],
    // Labels that tell one exporter from another within a site.
    targetLabels: ['instance'],

    // MiningHashrateDrop: the smoothed present under dropRatio of the account's baseline
    // (the median of the smoothed series over baselineWindow, as it was baselineOffset
    // ago, so a drop is never part of its own baseline), for hashrateDropFor.
    hashrateDropRatio: 0.7,
    hashrateSmoothing: '5m',
    hashrateBaselineWindow: '6h',
    hashrateBaselineOffset: '1h',
    hashrateDropFor: '10m',

    // MiningWorkerDown: a worker that hashed within workerWasHashingWindow is inactive, at
    // zero or gone for workerDownFor. A vanished worker fires for at most that window.
    workerWasHashingWindow: '6h',
    workerDownWindow: '5m',
    workerDownFor: '5m',

    // Freshness: a source is stale after freshnessIntervals planned poll intervals, never
    // sooner than freshnessFloorSeconds. Stale data neither fires nor resolves data alerts.
    freshnessFloorSeconds: 1200,
    freshnessIntervals: 3,
    sourceStaleFor: '10m',

    // The error alerts look back errorWindow.
    errorWindow: '15m',
    sourceAuthFailingFor: '5m',
    sourceClockSkewFor: '5m',

    // MiningExporterDown: up == 0 for exporterDownFor. MiningExporterAbsent: a target seen
    // within exporterAbsentWindow that service discovery (or a site's agent) no longer
    // delivers, or no target at all, for exporterDownFor.
    exporterDownFor: '5m',
    exporterAbsentWindow: '1d',

    // Revenue. The hashprice (coins of hashpriceCurrency per PH/s per day, Luxor's or any
    // API's through http_json) applies to the accounts mining hashpriceAlgorithm at the same
    // site; the highest of a site's hashprice series is the one used.
    hashpriceCurrency: 'BTC',
    hashpriceAlgorithm: 'sha256',
    // MiningRevenueBelowExpected: the rewards of the last 24 h under revenueBelowRatio of
    // what the hashrate should have earned at the hashprice of those 24 h, while the
    // account's hashrate held (its lowest over the day at least revenueHashrateHeldRatio of
    // its mean), for revenueBelowFor. A pool's luck and fees move the ratio; a hashprice
    // move alone does not.
    revenueBelowRatio: 0.8,
    revenueHashrateHeldRatio: 0.9,
    revenueWindow: '1d',
    revenueBelowFor: '1h',
    // The price of power, for the power cost per day where power is known
    // (mining_account_power_watts or mining_worker_power_watts).
    powerPricePerKwh: 0.06,
    powerPriceCurrency: 'USD',

    // critical pages someone, warning makes a ticket.
    severities: {
      MiningHashrateDrop: 'critical',
      MiningWorkerDown: 'warning',
      MiningSourceStale: 'critical',
      MiningSourceAuthFailing: 'warning',
      MiningSourceClockSkew: 'warning',
      MiningRateLimited: 'warning',
      MiningExporterDown: 'critical',
      MiningExporterAbsent: 'critical',
      MiningRevenueBelowExpected: 'warning',
    },
    // Where each alert's runbook is: the alert's name in lower case is appended.
    runbookUrlBase: 'docs/alerts.md#',

    // How often the dashboards refresh, and their tag (the dashboards link each other by it).
    dashboardRefresh: '1m',
    dashboardTag: 'mining-exporter',

    // Derived values, for the rules and dashboards; each ends in its own separator, so an
    // empty siteLabels or targetLabels still gives valid PromQL.
    keepLabels:: self.siteLabels + self.targetLabels,
    // 'site, instance, ' to open a `by (...)` or `on (...)` list.
    keepBy:: std.join('', [label + ', ' for label in self.keepLabels]),
    // 'site' for an `on (...)` that matches a site alone (`on ()` without site labels).
    siteOn:: std.join(', ', self.siteLabels),
    // 'site, ' for the dashboards' `by (...)` lists.
    siteBy:: std.join('', [label + ', ' for label in self.siteLabels]),
    // 'site=~"$site", ' to open a dashboard selector.
    siteFilter:: std.join('', ['%s=~"$%s", ' % [label, label] for label in self.siteLabels]),
    // 'site=~"$site"' for a selector that holds nothing else.
    siteSelector:: std.join(', ', ['%s=~"$%s"' % [label, label] for label in self.siteLabels]),
    // '{{site}} ' to open a legend.
    siteLegend:: std.join('', ['{{%s}} ' % label for label in self.siteLabels]),
    // 'site a: ' to open an alert's description, empty for a series without the label.
    siteText:: std.join('', [
      '{{ with $labels.%s }}%s {{ . }}: {{ end }}' % [label, label]
      for label in self.siteLabels
    ]),
  },
}
