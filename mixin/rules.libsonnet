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
      {
        // What the farm should earn and what it costs, next to what the pools paid.
        name: 'mining-exporter.revenue',
        rules: [
          {
            // The account's hashrate per algorithm: the pool's account figure where it
            // gives one, else what its workers add up to (an http_json source of workers).
            record: 'pool_account_algorithm:mining_hashrate_hashes_per_second:account_or_workers',
            expr: |||
              sum by (%(keepBy)spool, source, account, algorithm) (pool_account_algorithm:mining_account_hashrate_hashes_per_second:avg_over_time_%(hashrateSmoothing)s)
              or pool_account_algorithm:mining_worker_hashrate_hashes_per_second:sum
            ||| % c,
          },
          {
            // One hashprice per site: the market's, whichever source reports it.
            record: 'site_currency:mining_hashprice:max',
            expr: 'max by (%(siteBy)scurrency) (mining_hashprice{currency="%(hashpriceCurrency)s"})' % c,
          },
          {
            // Coins a day the account's hashrate should earn at the current hashprice:
            // hashrate in PH/s times coins per PH/s per day.
            record: 'pool_account_currency:mining_revenue_expected_per_day:hashprice',
            expr: |||
              pool_account_algorithm:mining_hashrate_hashes_per_second:account_or_workers{algorithm="%(hashpriceAlgorithm)s"} / 1e15
              * on (%(siteOn)s) group_left (currency) site_currency:mining_hashprice:max
            ||| % c,
          },
          {
            // The rewards the pool credited in the last 24 h against what the hashrate
            // should have earned over the same 24 h at the hashprice of each moment: luck
            // and fees move it, a hashprice move alone does not.
            record: 'pool_account_currency:mining_account_rewards_24h:ratio_to_expected',
            expr: |||
              sum by (%(keepBy)spool, source, account, currency) (mining_account_rewards{window="24h"})
              / on (%(keepBy)spool, source, account, currency)
              sum by (%(keepBy)spool, source, account, currency) (avg_over_time(pool_account_currency:mining_revenue_expected_per_day:hashprice[%(revenueWindow)s]))
            ||| % c,
          },
          {
            // The account's power: its own figure where a source gives one, else what its
            // workers draw. Power and hashrate meet on the account name (a PDU's source
            // labels its outlets with the pool account they feed).
            record: 'site_account:mining_power_watts:sum',
            expr: |||
              sum by (%(keepBy)saccount) (mining_account_power_watts)
              or sum by (%(keepBy)saccount) (mining_worker_power_watts)
            ||| % c,
          },
          {
            // Joules per terahash: watts over TH/s, of the accounts mining the hashprice's
            // algorithm.
            record: 'site_account:mining_efficiency_joules_per_terahash:ratio',
            expr: |||
              site_account:mining_power_watts:sum
              / on (%(keepBy)saccount)
              (sum by (%(keepBy)saccount) (pool_account_algorithm:mining_hashrate_hashes_per_second:account_or_workers{algorithm="%(hashpriceAlgorithm)s"}) / 1e12)
            ||| % c,
          },
          {
            // What the power costs a day at the operator's price.
            record: 'site_account:mining_power_cost_per_day:price',
            expr: 'site_account:mining_power_watts:sum * 24 / 1000 * %(powerPricePerKwh)g' % c,
            labels: { currency: c.powerPriceCurrency },
          },
        ],
      },
    ],
  },
}
