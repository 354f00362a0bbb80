// Mining / Exporter health.
local lib = import 'lib.libsonnet';

function(c) lib.dashboard(
  c,
  'mining-exporter-health',
  'Mining / Exporter health',
  'Is mining-exporter seeing the pools: polls, errors, requests, budgets and switched-off endpoints.',
  lib.variables(c, 'source'),
  [
    lib.panel('state-timeline', 'Source up', "1 while a source's last poll succeeded; its last good values stay exported meanwhile.", { x: 0, y: 0, w: 24, h: 6 }, [
      lib.range('A', 'mining_exporter_source_up{%(siteFilter)spool=~"$pool", source=~"$source"}' % c, '%(siteLegend)s{{source}}' % c),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'short',
          min: 0,
          max: 1,
          mappings: [
            {
              type: 'value',
              options: {
                '0': {
                  text: 'down',
                  color: 'red',
                },
                '1': {
                  text: 'up',
                  color: 'green',
                },
              },
            },
          ],
        },
        overrides: [],
      },
      options: {
        showValue: 'never',
        mergeValues: true,
      },
    }),
    lib.panel('timeseries', 'Age of the last good poll', "Seconds since each source's last successful poll (recorded). MiningSourceStale fires past 20 minutes.", { x: 0, y: 6, w: 12, h: 8 }, [
      lib.range('A', 'pool_source:mining_exporter_source_last_success_timestamp_seconds:age{%(siteFilter)spool=~"$pool", source=~"$source"}' % c, '%(siteLegend)s{{source}}' % c),
    ], {
      fieldConfig: {
        defaults: {
          unit: 's',
          min: 0,
        },
        overrides: [],
      },
      options: {
        legend: {
          displayMode: 'table',
          placement: 'bottom',
          showLegend: true,
          calcs: ['lastNotNull', 'mean'],
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    }),
    lib.panel('timeseries', 'Poll duration', "Duration of each source's last poll, budget waits and retries included.", { x: 12, y: 6, w: 12, h: 8 }, [
      lib.range('A', 'mining_exporter_source_poll_duration_seconds{%(siteFilter)spool=~"$pool", source=~"$source"}' % c, '%(siteLegend)s{{source}}' % c),
    ], {
      fieldConfig: {
        defaults: {
          unit: 's',
          min: 0,
        },
        overrides: [],
      },
      options: {
        legend: {
          displayMode: 'table',
          placement: 'bottom',
          showLegend: true,
          calcs: ['lastNotNull', 'mean'],
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    }),
    lib.panel('timeseries', 'Poll errors by kind', 'Failed polls per second, by source and kind (auth, not_found, http, rate_limited, timeout, transport, decode, panic).', { x: 0, y: 14, w: 12, h: 8 }, [
      lib.range('A', 'sum by (%(siteBy)ssource, kind) (rate(mining_exporter_poll_errors_total{%(siteFilter)spool=~"$pool", source=~"$source"}[$__rate_interval]))' % c, '%(siteLegend)s{{source}} {{kind}}' % c),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'ops',
          min: 0,
        },
        overrides: [],
      },
      options: {
        legend: {
          displayMode: 'table',
          placement: 'bottom',
          showLegend: true,
          calcs: ['lastNotNull', 'mean'],
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    }),
    lib.panel('timeseries', 'Upstream requests by endpoint and code', 'Requests to the pools per second, by source, endpoint and HTTP code (or timeout, transport, decode).', { x: 12, y: 14, w: 12, h: 8 }, [
      lib.range('A', 'sum by (%(siteBy)ssource, endpoint, code) (rate(mining_exporter_upstream_requests_total{%(siteFilter)spool=~"$pool", source=~"$source"}[$__rate_interval]))' % c, '%(siteLegend)s{{source}} {{endpoint}} {{code}}' % c),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'reqps',
          min: 0,
        },
        overrides: [],
      },
      options: {
        legend: {
          displayMode: 'table',
          placement: 'bottom',
          showLegend: true,
          calcs: ['lastNotNull', 'mean'],
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    }),
    lib.panel('timeseries', 'Budget remaining', "Requests each budget allows right now in its tightest window, the pool's rate-limit headers included.", { x: 0, y: 22, w: 8, h: 8 }, [
      lib.range('A', 'mining_exporter_budget_remaining{%(siteSelector)s}' % c, '%(siteLegend)s{{budget}}' % c),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'short',
          min: 0,
        },
        overrides: [],
      },
      options: {
        legend: {
          displayMode: 'table',
          placement: 'bottom',
          showLegend: true,
          calcs: ['lastNotNull', 'mean'],
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    }),
    lib.panel('timeseries', 'Budget waits', 'Seconds per second that requests spent waiting for their budget.', { x: 8, y: 22, w: 8, h: 8 }, [
      lib.range('A', 'sum by (%(siteBy)sbudget) (rate(mining_exporter_budget_wait_seconds_total{%(siteSelector)s}[$__rate_interval]))' % c, '%(siteLegend)s{{budget}}' % c),
    ], {
      fieldConfig: {
        defaults: {
          unit: 's',
          min: 0,
        },
        overrides: [],
      },
      options: {
        legend: {
          displayMode: 'table',
          placement: 'bottom',
          showLegend: true,
          calcs: ['lastNotNull', 'mean'],
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    }),
    lib.panel('timeseries', '429 answers', 'HTTP 429 answers the pools gave each budget; should stay 0 (MiningRateLimited fires on any).', { x: 16, y: 22, w: 8, h: 8 }, [
      lib.range('A', 'sum by (%(siteBy)sbudget) (increase(mining_exporter_rate_limited_total{%(siteSelector)s}[$__rate_interval]))' % c, '%(siteLegend)s{{budget}}' % c),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'short',
          min: 0,
          custom: {
            drawStyle: 'bars',
            fillOpacity: 60,
          },
        },
        overrides: [],
      },
      options: {
        legend: {
          displayMode: 'table',
          placement: 'bottom',
          showLegend: true,
          calcs: ['lastNotNull', 'mean'],
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    }),
    lib.panel('table', 'Optional endpoints', 'Endpoints a pool may not serve: 1 polled, 0 switched off (it answered 404 and never 200; asked again hourly).', { x: 0, y: 30, w: 12, h: 8 }, [
      lib.table('A', 'mining_exporter_endpoint_enabled{%(siteFilter)spool=~"$pool", source=~"$source"}' % c, ''),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'short',
        },
        overrides: [
          {
            matcher: {
              id: 'byName',
              options: 'Enabled',
            },
            properties: [
              {
                id: 'custom.cellOptions',
                value: {
                  type: 'color-background',
                },
              },
              {
                id: 'mappings',
                value: [
                  {
                    type: 'value',
                    options: {
                      '0': {
                        text: 'switched off',
                        color: 'orange',
                      },
                      '1': {
                        text: 'polled',
                        color: 'green',
                      },
                    },
                  },
                ],
              },
            ],
          },
        ],
      },
      options: {
        showHeader: true,
        footer: {
          show: false,
        },
      },
      transformations: [
        {
          id: 'organize',
          options: {
            excludeByName: {
              Time: true,
              __name__: true,
              job: true,
              instance: true,
            },
            renameByName: {
              Value: 'Enabled',
            },
          },
        },
      ],
    }),
    lib.panel('timeseries', 'Series per source', 'Series each source contributes to /metrics.', { x: 12, y: 30, w: 12, h: 8 }, [
      lib.range('A', 'mining_exporter_source_series{%(siteFilter)spool=~"$pool", source=~"$source"}' % c, '%(siteLegend)s{{source}}' % c),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'short',
          min: 0,
        },
        overrides: [],
      },
      options: {
        legend: {
          displayMode: 'table',
          placement: 'bottom',
          showLegend: true,
          calcs: ['lastNotNull', 'mean'],
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    }),
    lib.panel('timeseries', 'Poll interval: planned and achieved', 'The interval the poll plan gives each source (its asked interval, stretched to fit its budgets at their target utilization) and the mean time between the starts of its last polls. Achieved well above planned: polls wait for budget or overrun; see Budget waits.', { x: 0, y: 38, w: 12, h: 8 }, [
      lib.range('A', 'mining_exporter_poll_interval_planned_seconds{%(siteFilter)spool=~"$pool", source=~"$source"}' % c, '%(siteLegend)s{{source}} planned' % c),
      lib.range('B', 'mining_exporter_poll_interval_achieved_seconds{%(siteFilter)spool=~"$pool", source=~"$source"}' % c, '%(siteLegend)s{{source}} achieved' % c),
    ], {
      fieldConfig: {
        defaults: {
          unit: 's',
          min: 0,
        },
        overrides: [],
      },
      options: {
        legend: {
          displayMode: 'table',
          placement: 'bottom',
          showLegend: true,
          calcs: ['lastNotNull', 'max'],
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    }),
    lib.panel('timeseries', 'Budget use planned', "Share of each budget's tightest window the poll plan uses; it aims at the budget's target_utilization (0.85 unless configured), the rest being room for retries.", { x: 12, y: 38, w: 12, h: 8 }, [
      lib.range('A', 'mining_exporter_budget_planned_use_ratio{%(siteSelector)s}' % c, '%(siteLegend)s{{budget}}' % c),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'percentunit',
          min: 0,
          max: 1,
        },
        overrides: [],
      },
      options: {
        legend: {
          displayMode: 'table',
          placement: 'bottom',
          showLegend: true,
          calcs: ['lastNotNull'],
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    }),
  ],
)
