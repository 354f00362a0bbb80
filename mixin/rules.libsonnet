// Recording rules, named level:metric:operations. The alerts and dashboards read them. Every
// aggregation keeps the site and target labels (_config.keepLabels), so two sites' sources
// called `proxy` and accounts called `main` stay apart in one store.
{
  prometheusRules+:: {
    local c = $._config,
    groups+: [
      {
        name: 'mining-exporter.rules',
        rules: [
          {
            // Seconds since a source's last good poll. The exporter exports the timestamp
            // as 0 until the first good poll, so a source that never worked has a huge age.
            record: 'pool_source:mining_exporter_source_last_success_timestamp_seconds:age',
            expr: 'time() - mining_exporter_source_last_success_timestamp_seconds',
          },
          {
            // The account's freshest hashrate per algorithm, smoothed: one failed scrape or
            // a noisy pool estimate does not move it much.
            record: 'pool_account_algorithm:mining_account_hashrate_hashes_per_second:avg_over_time_%(hashrateSmoothing)s' % c,
            expr: 'avg_over_time(mining_account_hashrate_hashes_per_second[%(hashrateSmoothing)s])' % c,
          },
          {
            // The account's own baseline: the median of the smoothed series. The drop alert
            // reads it an offset back, so a drop is never part of its own baseline.
            record: 'pool_account_algorithm:mining_account_hashrate_hashes_per_second:median_over_time_%(hashrateBaselineWindow)s' % c,
            expr: 'quantile_over_time(0.5, pool_account_algorithm:mining_account_hashrate_hashes_per_second:avg_over_time_%(hashrateSmoothing)s[%(hashrateBaselineWindow)s])' % c,
          },
          {
            // What the workers add up to, per account and algorithm (never across algorithms).
            record: 'pool_account_algorithm:mining_worker_hashrate_hashes_per_second:sum',
            expr: 'sum by (%(keepBy)spool, source, account, algorithm) (mining_worker_hashrate_hashes_per_second)' % c,
          },
          {
            // Whether a worker hashed at all lately (its highest hashrate), across its
            // algorithm label: the "was hashing" half of MiningWorkerDown.
            record: 'pool_account_worker:mining_worker_hashrate_hashes_per_second:max_over_time_%(workerWasHashingWindow)s' % c,
            expr: 'max by (%(keepBy)spool, source, account, worker) (max_over_time(mining_worker_hashrate_hashes_per_second[%(workerWasHashingWindow)s]))' % c,
          },
          {
            // Workers by state per account, summed over the sources of one exporter that
            // watch the same account name.
            record: 'pool_account_state:mining_workers:sum',
            expr: 'sum by (%(keepBy)spool, account, state) (mining_workers)' % c,
          },
        ],
      },
    ],
  },
}
