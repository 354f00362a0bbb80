//! The farm's past as the simulators' history endpoints serve it. Every value is a pure
//! function of a seed, a series key and a timestamp, so a test can compute exactly what a
//! backfill must have written, and two requests for one tick always agree.

pub use crate::backfill::calendar::{
    date_of, day_start, iso_seconds, last_complete_month, last_complete_week, next_day, parse_date,
};

/// How far back any history reaches, in days before now.
pub const HISTORY_DAYS: i64 = 400;
/// Days of OurPool payouts before the simulator started; their sum stays under the
/// wallet's starting `paid` (0.2 BTC or more), so the cumulative total never goes below 0.
pub const PAYOUT_DAYS: i64 = 120;
/// Seconds after midnight UTC at which OurPool's scheduled payout goes out.
pub const PAYOUT_AT: i64 = 3 * 3600 + 30 * 60;
/// Seconds after midnight UTC at which OurPool credits the day's mining reward.
pub const REWARD_AT: i64 = 10 * 60;

/// A value in [0, 1) from the seed, the key and the time: splitmix64 over an FNV-1a hash.
fn unit(seed: u64, key: &str, t: i64) -> f64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in key.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    let mut z = seed ^ h ^ (t as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

/// Hashrate (H/s, a whole number) of the series `key` at `t`: a daily wave of ±3 % and
/// ±2 % noise around `nominal`.
pub fn hashrate(seed: u64, key: &str, nominal: f64, t: i64) -> f64 {
    let day = std::f64::consts::TAU * (t.rem_euclid(86_400) as f64) / 86_400.0;
    let noise = unit(seed, key, t) * 2.0 - 1.0;
    (nominal * (1.0 + 0.03 * day.sin() + 0.02 * noise)).round()
}

/// Share efficiency (0.985-0.995, four decimals) of the series `key` at `t`.
pub fn efficiency(seed: u64, key: &str, t: i64) -> f64 {
    let e = 0.985 + 0.01 * unit(seed, &format!("{key}/efficiency"), t);
    (e * 10_000.0).round() / 10_000.0
}

/// Active workers of a subaccount of `count` at `t`: now and then one is down.
pub fn active_workers(seed: u64, key: &str, count: usize, t: i64) -> usize {
    let down = usize::from(unit(seed, &format!("{key}/active"), t) < 0.3);
    count.saturating_sub(down)
}

/// The payout (BTC, eight decimals) of the account `key` on the day starting at `day`.
pub fn payout(seed: u64, key: &str, day: i64) -> f64 {
    let amount = 0.0005 + 0.0002 * unit(seed, &format!("{key}/payout"), day);
    (amount * 1e8).round() / 1e8
}

/// Points of a series with ticks of `tick` seconds: every tick from `from` (rounded up to
/// the tick) that is complete by `now` and earlier than `until`.
pub fn ticks(from: i64, until: i64, tick: i64, now: i64) -> impl Iterator<Item = i64> {
    let first = from.div_euclid(tick) * tick + if from.rem_euclid(tick) == 0 { 0 } else { tick };
    let end = until.min(now - tick + 1);
    (0..)
        .map(move |i| first + i * tick)
        .take_while(move |t| *t < end)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_the_same_every_time_and_differ_between_series() {
        let a = hashrate(7, "luxor/hq", 1e15, 1_700_000_100);
        assert_eq!(a, hashrate(7, "luxor/hq", 1e15, 1_700_000_100));
        assert_ne!(a, hashrate(7, "luxor/annex", 1e15, 1_700_000_100));
        assert!((0.94e15..=1.06e15).contains(&a), "{a}");
        assert_eq!(a.fract(), 0.0);
        let e = efficiency(7, "luxor/hq", 1_700_000_100);
        assert!((0.985..=0.995).contains(&e), "{e}");
    }

    #[test]
    fn ticks_are_whole_complete_and_bounded() {
        let got: Vec<i64> = ticks(301, 1500, 300, 1300).collect();
        assert_eq!(got, [600, 900]);
        assert_eq!(ticks(0, 900, 300, 10_000).count(), 3);
    }
}
