// Mining / Worker.
local lib = import 'lib.libsonnet';

function(c) lib.dashboard(
  c,
  'mining-worker',
  'Mining / Worker',
  'One worker (or a few) in detail: hashrate, up or down, last share, share quality.',
  lib.variables(c, 'worker'),
  [
    lib.panel('timeseries', 'Hashrate', "The worker's freshest hashrate and the pool's longer averages, per algorithm.", { x: 0, y: 0, w: 24, h: 9 }, [
      lib.range('A', 'mining_worker_hashrate_hashes_per_second{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account", worker=~"$worker"}' % c, '%(siteLegend)s{{worker}} {{algorithm}} freshest' % c),
      lib.range('B', 'mining_worker_hashrate_average_hashes_per_second{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account", worker=~"$worker"}' % c, '%(siteLegend)s{{worker}} {{algorithm}} avg {{window}}' % c),
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
    lib.panel('state-timeline', 'Up or down', '1 while the pool counts the worker as active.', { x: 0, y: 9, w: 24, h: 6 }, [
      lib.range('A', 'max by (%(siteBy)spool, account, worker) (mining_worker_up{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account", worker=~"$worker"})' % c, '%(siteLegend)s{{pool}} {{account}} {{worker}}' % c),
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
        rowHeight: 0.8,
      },
    }),
    lib.panel('timeseries', 'Age of the last share', "Seconds since the pool saw the worker's last share.", { x: 0, y: 15, w: 12, h: 8 }, [
      lib.range('A', 'time() - mining_worker_last_share_timestamp_seconds{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account", worker=~"$worker"}' % c, '%(siteLegend)s{{worker}}' % c),
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
    lib.panel('timeseries', 'Share quality', 'Rejected and stale shares as a fraction of all shares, and share efficiency, where the pool reports them.', { x: 12, y: 15, w: 12, h: 8 }, [
      lib.range('A', 'mining_worker_rejected_ratio{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account", worker=~"$worker"}' % c, '%(siteLegend)s{{worker}} rejected' % c),
      lib.range('B', 'mining_worker_stale_ratio{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account", worker=~"$worker"}' % c, '%(siteLegend)s{{worker}} stale' % c),
      lib.range('C', 'mining_worker_efficiency_ratio{%(siteFilter)spool=~"$pool", source=~"$source", account=~"$account", worker=~"$worker"}' % c, '%(siteLegend)s{{worker}} efficiency' % c),
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
          calcs: ['lastNotNull', 'mean'],
        },
        tooltip: {
          mode: 'multi',
          sort: 'desc',
        },
      },
    }),
  ],
)
