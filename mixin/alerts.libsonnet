// Alert rules. Freshness is computed from the raw timestamp, not read from the recorded age:
// rule groups run in no fixed order, and a value one evaluation old would make the guard
// and the annotations lag. Every data alert is guarded by freshness: while a source has no
// good poll for freshnessFloorSeconds, or for freshnessIntervals of its planned intervals
// when the poll plan stretched it further (mining_exporter_poll_interval_planned_seconds),
// MiningSourceStale fires instead, and stale data neither fires nor resolves
// MiningHashrateDrop and MiningWorkerDown. Every `on (...)` names the site and target
// labels, so one site's freshness never guards another's data.
// '15m' as '15 minutes', for the annotations; a compound duration stays as written.
local inWords(duration) =
  local units = { s: 'second', m: 'minute', h: 'hour', d: 'day', w: 'week' };
  local count = std.substr(duration, 0, std.length(duration) - 1);
  local unit = std.substr(duration, std.length(duration) - 1, 1);
  local digits = std.length(count) > 0 && std.length(std.filter(function(ch) !std.member('0123456789', ch), std.stringChars(count))) == 0;
  if digits && std.objectHas(units, unit)
  then count + ' ' + units[unit] + (if count == '1' then '' else 's')
  else duration;

local runbook(c, name) = c.runbookUrlBase + std.asciiLower(name);

local alert(c, name, expr, forDuration, summary, description) = {
  alert: name,
  expr: expr,
  labels: { severity: c.severities[name] },
  annotations: {
    summary: summary,
    description: description,
    runbook_url: runbook(c, name),
  },
} + (if forDuration == null then {} else { 'for': forDuration });

{
  prometheusAlerts+:: {
    local c = $._config,
    local ratioPercent = '%g' % (c.hashrateDropRatio * 100),
    local words = c {
      baselineInWords: inWords(c.hashrateBaselineWindow),
      errorWindowInWords: inWords(c.errorWindow),
      exporterDownInWords: inWords(c.exporterDownFor),
      revenueWindowInWords: inWords(c.revenueWindow),
      revenueBelowPercent: '%g' % (c.revenueBelowRatio * 100),
    },
    // The stale threshold in seconds, per source.
    local threshold = |||
      (clamp_min(%(freshnessIntervals)d * mining_exporter_poll_interval_planned_seconds, %(freshnessFloorSeconds)d)
         or mining_exporter_source_last_success_timestamp_seconds * 0 + %(freshnessFloorSeconds)d)
    ||| % c,
    local fresh = |||
      and on (%(keepBy)spool, source)
        (
            time() - mining_exporter_source_last_success_timestamp_seconds
          < %(threshold)s
        )
    ||| % (c { threshold: std.rstripChars(std.strReplace(threshold, '\n', '\n    '), ' \n') }),

    groups+: [
      {
        name: 'mining-exporter.alerts',
        rules: [
          alert(
            c,
            'MiningHashrateDrop',
            |||
              pool_account_algorithm:mining_account_hashrate_hashes_per_second:avg_over_time_%(hashrateSmoothing)s
                < %(hashrateDropRatio)g * (pool_account_algorithm:mining_account_hashrate_hashes_per_second:median_over_time_%(hashrateBaselineWindow)s offset %(hashrateBaselineOffset)s)
            ||| % c + fresh,
            c.hashrateDropFor,
            "An account's hashrate dropped well below its recent level.",
            c.siteText + '{{ $labels.pool }} account {{ $labels.account }} (source {{ $labels.source }}) mines {{ $labels.algorithm }} at {{ $value | humanize }}H/s, under ' + ratioPercent + ' %% of its median over %(baselineInWords)s.' % words,
          ),
          alert(
            c,
            'MiningWorkerDown',
            |||
              (
                  max by (%(keepBy)spool, source, account, worker) (max_over_time(mining_worker_up[%(workerDownWindow)s])) == 0
                or
                  max by (%(keepBy)spool, source, account, worker) (max_over_time(mining_worker_hashrate_hashes_per_second[%(workerDownWindow)s])) == 0
                or
                  (
                    max by (%(keepBy)spool, source, account, worker) (max_over_time(mining_worker_up[%(workerWasHashingWindow)s])) == 1
                    unless on (%(keepBy)spool, source, account, worker) mining_worker_up
                  )
              )
              and on (%(keepBy)spool, source, account, worker)
                pool_account_worker:mining_worker_hashrate_hashes_per_second:max_over_time_%(workerWasHashingWindow)s > 0
            ||| % c + fresh,
            c.workerDownFor,
            'A worker that was hashing is down, at zero, or gone.',
            c.siteText + 'Worker {{ $labels.worker }} of {{ $labels.pool }} account {{ $labels.account }} (source {{ $labels.source }}) is inactive, at zero hashrate, or no longer listed.',
          ),
          alert(
            c,
            'MiningSourceStale',
            'time() - mining_exporter_source_last_success_timestamp_seconds\n  > ' + std.strReplace(threshold, '\n   ', '\n     '),
            c.sourceStaleFor,
            'A source has had no good poll for a long time; its data is stale.',
            c.siteText + 'Source {{ $labels.source }} ({{ $labels.pool }}) has had no successful poll for {{ $value | humanizeDuration }}; hashrate and worker alerts are blind for it.',
          ),
          alert(
            c,
            'MiningSourceAuthFailing',
            |||
              increase(mining_exporter_poll_errors_total{kind="auth"}[%(errorWindow)s]) > 0
              and on (%(keepBy)spool, source) mining_exporter_source_up == 0
            ||| % c,
            c.sourceAuthFailingFor,
            "A pool refuses the exporter's token.",
            c.siteText + '{{ $labels.pool }} refuses the token of source {{ $labels.source }} (HTTP 401 or 403): the token is wrong, expired or lacks a scope.',
          ),
          alert(
            c,
            'MiningSourceClockSkew',
            |||
              increase(mining_exporter_poll_errors_total{kind="clock_skew"}[%(errorWindow)s]) > 0
              and on (%(keepBy)spool, source) mining_exporter_source_up == 0
            ||| % c,
            c.sourceClockSkewFor,
            "This machine's clock is too far off for a signed API.",
            c.siteText + "{{ $labels.pool }} (source {{ $labels.source }}) signs every request with the time, and the API's clock and the exporter's differ by more than it accepts, so it refuses the signatures.",
          ),
          alert(
            c,
            'MiningRateLimited',
            'increase(mining_exporter_rate_limited_total[%(errorWindow)s]) > 0' % c,
            null,
            'A pool answered 429 Too Many Requests.',
            c.siteText + 'Budget {{ $labels.budget }} got {{ $value | humanize }} answers of 429 in %(errorWindowInWords)s: something else uses the same token or account, or the budget is too generous. Some pools ban addresses that keep going.' % words,
          ),
          alert(
            c,
            'MiningRevenueBelowExpected',
            |||
              pool_account_currency:mining_account_rewards_24h:ratio_to_expected < %(revenueBelowRatio)g
              and on (%(keepBy)spool, source, account)
                (
                    min_over_time(pool_account_algorithm:mining_hashrate_hashes_per_second:account_or_workers{algorithm="%(hashpriceAlgorithm)s"}[%(revenueWindow)s])
                  >= %(revenueHashrateHeldRatio)g * avg_over_time(pool_account_algorithm:mining_hashrate_hashes_per_second:account_or_workers{algorithm="%(hashpriceAlgorithm)s"}[%(revenueWindow)s])
                )
            ||| % c + fresh,
            c.revenueBelowFor,
            'An account earned well under what its hashrate should have at the hashprice.',
            c.siteText + '{{ $labels.pool }} account {{ $labels.account }} (source {{ $labels.source }}) was credited {{ $value | humanizePercentage }} of the {{ $labels.currency }} its hashrate should have earned in %(revenueWindowInWords)s at the hashprice, under %(revenueBelowPercent)s %%, while its hashrate held: pool luck, fees, or shares the pool did not count.' % words,
          ),
          alert(
            c,
            'MiningExporterDown',
            'up{%(exporterSelector)s} == 0' % c,
            c.exporterDownFor,
            'Prometheus cannot scrape mining-exporter.',
            c.siteText + 'The mining-exporter target {{ $labels.instance }} has been down for %(exporterDownInWords)s: no pool data, and no other mining alert can fire.' % words,
          ),
          alert(
            c,
            'MiningExporterAbsent',
            |||
              (
                last_over_time(up{%(exporterSelector)s}[%(exporterAbsentWindow)s])
                unless up{%(exporterSelector)s}
              )
              or absent_over_time(up{%(exporterSelector)s}[%(exporterAbsentWindow)s])
            ||| % c,
            c.exporterDownFor,
            'A mining-exporter target is gone: no scrape of it arrives at all.',
            c.siteText + 'No scrape of {{ with $labels.instance }}the mining-exporter target {{ . }}{{ else }}any mining-exporter target{{ end }} has arrived for %(exporterDownInWords)s: service discovery lost it, or the site stopped sending (its agent or uplink is down). No other mining alert can fire for it.' % words,
          ),
        ],
      },
    ],
  },
}
