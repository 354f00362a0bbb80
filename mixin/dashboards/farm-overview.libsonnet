// Mining / Farm overview.
local lib = import 'lib.libsonnet';

function(c) lib.dashboard(
  c,
  'mining-farm-overview',
  'Mining / Farm overview',
  'Hashrate, workers, balances and rewards of every account mining-exporter watches.',
  lib.variables(c, 'worker'),
  [
    lib.panel('stat', 'Active workers', 'Workers the pools count as active, summed over the selected accounts.', { x: 0, y: 0, w: 6, h: 4 }, [
      lib.instant('A', 'sum(mining_workers{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account", state="active"})' % c, 'active'),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'short',
        },
        overrides: [],
      },
      options: {
        reduceOptions: {
          calcs: ['lastNotNull'],
          fields: '',
          values: false,
        },
        colorMode: 'value',
        graphMode: 'area',
      },
    }),
    lib.panel('stat', 'Inactive workers', 'Workers the pools list but do not count as active.', { x: 6, y: 0, w: 6, h: 4 }, [
      lib.instant('A', 'sum(mining_workers{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account", state="inactive"})' % c, 'inactive'),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'short',
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
              {
                color: 'orange',
                value: 1,
              },
            ],
          },
        },
        overrides: [],
      },
      options: {
        reduceOptions: {
          calcs: ['lastNotNull'],
          fields: '',
          values: false,
        },
        colorMode: 'background',
        graphMode: 'none',
      },
    }),
    lib.panel('stat', 'Sources up', 'Sources whose last poll succeeded, of all selected sources.', { x: 12, y: 0, w: 6, h: 4 }, [
      lib.instant('A', 'avg(mining_exporter_source_up{%(siteFilter)spool=~"$pool", source=~"$source"})' % c, 'up'),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'percentunit',
          min: 0,
          max: 1,
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'red',
                value: null,
              },
              {
                color: 'green',
                value: 1,
              },
            ],
          },
        },
        overrides: [],
      },
      options: {
        reduceOptions: {
          calcs: ['lastNotNull'],
          fields: '',
          values: false,
        },
        colorMode: 'background',
        graphMode: 'none',
      },
    }),
    lib.panel('stat', 'Oldest data', "Age of the oldest selected source's last good poll. Data alerts are silent while it is over 20 minutes, or over three planned intervals for a source the poll plan polls less often than every 400 s (red marks the 20 minutes).", { x: 18, y: 0, w: 6, h: 4 }, [
      lib.instant('A', 'max(pool_source:mining_exporter_source_last_success_timestamp_seconds:age{%(siteFilter)spool=~"$pool", source=~"$source"})' % c, 'age'),
    ], {
      fieldConfig: {
        defaults: {
          unit: 's',
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'green',
                value: null,
              },
              {
                color: 'orange',
                value: 600,
              },
              {
                color: 'red',
                value: 1200,
              },
            ],
          },
        },
        overrides: [],
      },
      options: {
        reduceOptions: {
          calcs: ['lastNotNull'],
          fields: '',
          values: false,
        },
        colorMode: 'background',
        graphMode: 'none',
      },
    }),
    lib.panel('timeseries', 'Hashrate by pool, account and algorithm', "The pool's freshest figure beside its own longer averages, one line per algorithm: hashrates of different algorithms are never added up.", { x: 0, y: 4, w: 16, h: 9 }, [
      lib.range('A', 'sum by (%(siteBy)spool, account, algorithm) (mining_account_hashrate_hashes_per_second{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account"})' % c, '%(siteLegend)s{{pool}} {{account}} {{algorithm}} freshest' % c),
      lib.range('B', 'sum by (%(siteBy)spool, account, algorithm, window) (mining_account_hashrate_average_hashes_per_second{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account"})' % c, '%(siteLegend)s{{pool}} {{account}} {{algorithm}} avg {{window}}' % c),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'Hs',
          min: 0,
          custom: {
            fillOpacity: 5,
            lineWidth: 1,
            spanNulls: false,
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
    lib.panel('timeseries', 'Workers by state', 'Workers the pools list, active and inactive.', { x: 16, y: 4, w: 8, h: 9 }, [
      lib.range('A', 'sum by (%(siteBy)sstate) (mining_workers{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account"})' % c, '%(siteLegend)s{{state}}' % c),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'short',
          min: 0,
          custom: {
            fillOpacity: 20,
            stacking: {
              mode: 'normal',
              group: 'A',
            },
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
    lib.panel('timeseries', "Workers' sum beside the pool's figure", "What the workers' freshest hashrates add up to (recorded per account and algorithm) beside the pool's own account figure: a gap means workers the list does not show, or different averaging.", { x: 0, y: 13, w: 24, h: 8 }, [
      lib.range('A', 'pool_account_algorithm:mining_worker_hashrate_hashes_per_second:sum{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account"}' % c, '%(siteLegend)s{{pool}} {{account}} {{algorithm}} workers' % c),
      lib.range('B', 'pool_account_algorithm:mining_account_hashrate_hashes_per_second:avg_over_time_%(hashrateSmoothing)s{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account"}' % c, '%(siteLegend)s{{pool}} {{account}} {{algorithm}} account (5m avg)' % c),
      lib.range('C', 'pool_account_algorithm:mining_account_hashrate_hashes_per_second:median_over_time_%(hashrateBaselineWindow)s{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account"}' % c, '%(siteLegend)s{{pool}} {{account}} {{algorithm}} 6h median (drop baseline)' % c),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'Hs',
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
    lib.panel('table', 'Workers, worst first', 'One row per worker: down before up, then the slowest. Last share age and rejected share ratio where the pool offers them.', { x: 0, y: 21, w: 24, h: 10 }, [
      lib.table('A', 'max by (%(siteBy)spool, source, account, worker) (mining_worker_up{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account", worker=~"$worker"})' % c, ''),
      lib.table('B', 'max by (%(siteBy)spool, source, account, worker) (mining_worker_hashrate_hashes_per_second{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account", worker=~"$worker"})' % c, ''),
      lib.table('C', 'max by (%(siteBy)spool, source, account, worker) (time() - mining_worker_last_share_timestamp_seconds{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account", worker=~"$worker"})' % c, ''),
      lib.table('D', 'max by (%(siteBy)spool, source, account, worker) (mining_worker_rejected_ratio{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account", worker=~"$worker"})' % c, ''),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'short',
        },
        overrides: [
          {
            matcher: {
              id: 'byName',
              options: 'Up',
            },
            properties: [
              {
                id: 'unit',
                value: 'short',
              },
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
            ],
          },
          {
            matcher: {
              id: 'byName',
              options: 'Hashrate',
            },
            properties: [
              {
                id: 'unit',
                value: 'Hs',
              },
            ],
          },
          {
            matcher: {
              id: 'byName',
              options: 'Last share age',
            },
            properties: [
              {
                id: 'unit',
                value: 's',
              },
            ],
          },
          {
            matcher: {
              id: 'byName',
              options: 'Rejected',
            },
            properties: [
              {
                id: 'unit',
                value: 'percentunit',
              },
            ],
          },
        ],
      },
      options: {
        showHeader: true,
        sortBy: [
          {
            displayName: 'Up',
            desc: false,
          },
          {
            displayName: 'Hashrate',
            desc: false,
          },
        ],
        footer: {
          show: false,
        },
        cellHeight: 'sm',
      },
      transformations: [
        {
          id: 'merge',
          options: {},
        },
        {
          id: 'organize',
          options: {
            excludeByName: {
              Time: true,
            },
            renameByName: {
              'Value #A': 'Up',
              'Value #B': 'Hashrate',
              'Value #C': 'Last share age',
              'Value #D': 'Rejected',
            },
          },
        },
        {
          id: 'sortBy',
          options: {
            sort: [
              {
                field: 'Up',
                desc: false,
              },
            ],
          },
        },
      ],
    }),
    lib.panel('table', 'Balances (BTC)', 'Unpaid balance per account, in BTC, as the pools report it.', { x: 0, y: 31, w: 8, h: 8 }, [
      lib.table('A', 'sum by (%(siteBy)spool, account) (mining_account_balance{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account", currency="BTC"})' % c, ''),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'currencyBTC',
        },
        overrides: [],
      },
      options: {
        showHeader: true,
        footer: {
          show: true,
          reducer: ['sum'],
        },
      },
      transformations: [
        {
          id: 'organize',
          options: {
            excludeByName: {
              Time: true,
            },
            renameByName: {
              Value: 'Balance',
            },
          },
        },
      ],
    }),
    lib.panel('table', 'Rewards (BTC)', 'Rewards credited over each window the pool reports (24h, 7d, 30d, all time).', { x: 8, y: 31, w: 8, h: 8 }, [
      lib.table('A', 'sum by (%(siteBy)spool, account, window) (mining_account_rewards{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account", currency="BTC"})' % c, ''),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'currencyBTC',
        },
        overrides: [],
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
            },
            renameByName: {
              Value: 'Rewards',
            },
          },
        },
      ],
    }),
    lib.panel('timeseries', 'Hashprice (BTC per PH/s per day)', 'Expected mining revenue per unit of hashrate, as the pool reports it (Luxor).', { x: 16, y: 31, w: 8, h: 8 }, [
      lib.range('A', 'avg by (%(siteBy)spool, currency) (mining_hashprice{%(siteFilter)spool=~"$pool", source=~"$source", currency="BTC"})' % c, '%(siteLegend)s{{pool}}' % c),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'currencyBTC',
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
    lib.panel('timeseries', 'Payouts (BTC)', 'Payouts credited per interval, from the cumulative paid total.', { x: 0, y: 39, w: 24, h: 7 }, [
      lib.range('A', 'sum by (%(siteBy)spool, account) (increase(mining_account_paid_total{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account", currency="BTC"}[$__rate_interval]))' % c, '%(siteLegend)s{{pool}} {{account}}' % c),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'currencyBTC',
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
    lib.panel('row', 'Revenue', 'What the farm should earn at the hashprice, what the pools credited, and what its power costs.', { x: 0, y: 46, w: 24, h: 1 }, [], {
      collapsed: false,
      panels: [],
    }),
    lib.panel('timeseries', 'Expected per day and realised in 24 h (%(hashpriceCurrency)s)' % c, "Expected: the account's hashrate times the hashprice, per day. Realised: the rewards the pool credited in the last 24 h. A pool's luck and fees part them; a hashprice move shows in both.", { x: 0, y: 47, w: 12, h: 8 }, [
      lib.range('A', 'sum by (%(siteBy)spool, account) (pool_account_currency:mining_revenue_expected_per_day:hashprice{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account", currency="%(hashpriceCurrency)s"})' % c, '%(siteLegend)s{{pool}} {{account}} expected' % c),
      lib.range('B', 'sum by (%(siteBy)spool, account) (mining_account_rewards{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account", currency="%(hashpriceCurrency)s", window="24h"})' % c, '%(siteLegend)s{{pool}} {{account}} realised 24h' % c),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'currency%(hashpriceCurrency)s' % c,
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
    lib.panel('stat', 'Realised / expected, 30 days', "The rewards of each day against what its hashrate should have earned at that day's hashprice, averaged over the last 30 days whatever the dashboard's range. Red under the share MiningRevenueBelowExpected alerts at.", { x: 12, y: 47, w: 4, h: 8 }, [
      lib.range('A', 'avg by (%(siteBy)spool, account, currency) (pool_account_currency:mining_account_rewards_24h:ratio_to_expected{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account"})' % c, '%(siteLegend)s{{pool}} {{account}} {{currency}}' % c),
    ], {
      timeFrom: '30d',
      fieldConfig: {
        defaults: {
          unit: 'percentunit',
          decimals: 1,
          thresholds: {
            mode: 'absolute',
            steps: [
              {
                color: 'red',
                value: null,
              },
              {
                color: 'green',
                value: c.revenueBelowRatio,
              },
            ],
          },
        },
        overrides: [],
      },
      options: {
        reduceOptions: {
          calcs: ['mean'],
          fields: '',
          values: false,
        },
        colorMode: 'background',
        graphMode: 'none',
      },
    }),
    lib.panel('table', 'Efficiency (J/TH)', "Joules per terahash of each account whose power is known (mining_account_power_watts, or its workers' mining_worker_power_watts): watts over TH/s.", { x: 16, y: 47, w: 4, h: 8 }, [
      lib.table('A', 'sum by (%(siteBy)saccount) (site_account:mining_efficiency_joules_per_terahash:ratio{%(siteFilter)saccount=~"$account"})' % c, ''),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'none',
          decimals: 1,
        },
        overrides: [],
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
            },
            renameByName: {
              Value: 'J/TH',
            },
          },
        },
      ],
    }),
    lib.panel('table', 'Power cost per day (%(powerPriceCurrency)s)' % c, "What the power of each account whose power is known costs a day, at %(powerPricePerKwh)g %(powerPriceCurrency)s per kWh (the mixin's powerPricePerKwh)." % c, { x: 20, y: 47, w: 4, h: 8 }, [
      lib.table('A', 'sum by (%(siteBy)saccount) (site_account:mining_power_cost_per_day:price{%(siteFilter)saccount=~"$account"})' % c, ''),
    ], {
      fieldConfig: {
        defaults: {
          unit: 'currency%(powerPriceCurrency)s' % c,
          decimals: 2,
        },
        overrides: [],
      },
      options: {
        showHeader: true,
        footer: {
          show: true,
          reducer: ['sum'],
        },
      },
      transformations: [
        {
          id: 'organize',
          options: {
            excludeByName: {
              Time: true,
            },
            renameByName: {
              Value: 'Cost per day',
            },
          },
        },
      ],
    }),
  ],
)
