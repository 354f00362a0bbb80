//! The pool's rate-limit headers (`X-RateLimit-Remaining`, `X-RateLimit-Reset`,
//! `Retry-After`) and its `Date`, read with checked conversions only: a pool's header can
//! never panic the client, and every wait it asks for is bounded.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::budget::MAX_UPSTREAM_PAUSE;

/// What the pool's rate-limit headers say, after checking: every wait is finite, a reset at
/// most `cap` (the budget's longest window) away and a Retry-After at most an hour, whatever
/// the pool sent.
#[derive(Debug, Default, PartialEq)]
pub(super) struct RateHeaders {
    /// `X-RateLimit-Limit`: what the pool allows in its window.
    pub(super) limit: Option<u32>,
    pub(super) remaining: Option<u32>,
    /// Time until `X-RateLimit-Reset`.
    pub(super) reset_in: Option<Duration>,
    /// `Retry-After`.
    pub(super) retry_after: Option<Duration>,
    /// Headers whose value was unusable (not a number or date, negative, or too far away)
    /// and was read as `cap` (or, for a Retry-After over an hour, an hour) instead.
    pub(super) clamped: Vec<&'static str>,
}

/// Reads `X-RateLimit-Remaining`, `X-RateLimit-Reset` and `Retry-After` with checked
/// conversions only: a pool's header can never panic the client. A reset is never further
/// than `cap`: the pool's window cannot be longer than ours. A Retry-After is the pool's
/// explicit order (a block may last longer than any window) and is kept up to an hour.
///
/// The reset is a Unix timestamp per Ultimate Proxy's docs. A small number is read as seconds
/// from now (what other APIs send under that name), a very large one as Unix milliseconds.
pub(super) fn rate_headers(headers: &HeaderMap, now: SystemTime, cap: Duration) -> RateHeaders {
    let text = |name: &str| headers.get(name).map(|v| v.to_str().unwrap_or("").trim());
    let mut read = RateHeaders::default();
    let mut wait = |name: &'static str, value: Result<Duration, ()>, longest: Duration| match value
    {
        Ok(d) if d <= longest => Some(d),
        Ok(_) => {
            read.clamped.push(name);
            Some(longest)
        }
        Err(()) => {
            read.clamped.push(name);
            Some(cap)
        }
    };
    read.reset_in = text("x-ratelimit-reset").and_then(|v| {
        let delay = v
            .parse::<f64>()
            .map_err(|_| ())
            .and_then(|reset| until_reset(reset, now));
        wait("X-RateLimit-Reset", delay, cap)
    });
    read.retry_after = text(RETRY_AFTER.as_str()).and_then(|v| {
        wait(
            "Retry-After",
            retry_after_value(v, now),
            MAX_UPSTREAM_PAUSE.max(cap),
        )
    });
    let count = |name: &str| {
        text(name)
            .and_then(|v| v.parse::<f64>().ok())
            .filter(|v| v.is_finite())
            // In range after the clamp, so the cast is exact up to the fraction it drops.
            .map(|v| v.clamp(0.0, f64::from(u32::MAX)) as u32)
    };
    read.remaining = count("x-ratelimit-remaining");
    read.limit = count("x-ratelimit-limit");
    read
}

/// Above this a reset is in Unix milliseconds: as seconds it would be past the year 5000.
const RESET_MILLIS_FROM: f64 = 1e11;
/// Below this a reset is seconds from now: as a timestamp it would be before 2001.
const RESET_TIMESTAMP_FROM: f64 = 1e9;

/// The wait until a reset given as delta seconds, Unix seconds or Unix milliseconds.
fn until_reset(reset: f64, now: SystemTime) -> Result<Duration, ()> {
    if !reset.is_finite() || reset < 0.0 {
        return Err(());
    }
    if reset < RESET_TIMESTAMP_FROM {
        return Duration::try_from_secs_f64(reset).map_err(|_| ());
    }
    let at = if reset >= RESET_MILLIS_FROM {
        reset / 1000.0
    } else {
        reset
    };
    let now = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64();
    // A reset already past means the window is open again.
    Duration::try_from_secs_f64((at - now).max(0.0)).map_err(|_| ())
}

/// `Retry-After` as delta-seconds or an HTTP date (one already past means now).
fn retry_after_value(value: &str, now: SystemTime) -> Result<Duration, ()> {
    if let Ok(secs) = value.parse::<f64>() {
        return if secs.is_finite() && secs >= 0.0 {
            Duration::try_from_secs_f64(secs).map_err(|_| ())
        } else {
            Err(())
        };
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).map_err(|_| ())?;
    let at = SystemTime::from(at.with_timezone(&chrono::Utc));
    Ok(at.duration_since(now).unwrap_or_default())
}

/// Our clock minus the response's `Date`, in whole seconds; `None` without a usable Date.
pub(super) fn clock_skew(headers: &HeaderMap, now: SystemTime) -> Option<i64> {
    let date = headers.get(reqwest::header::DATE)?.to_str().ok()?;
    let theirs = chrono::DateTime::parse_from_rfc2822(date).ok()?.timestamp();
    let ours = i64::try_from(now.duration_since(UNIX_EPOCH).ok()?.as_secs()).ok()?;
    Some(ours.saturating_sub(theirs))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, value.parse().unwrap());
        }
        h
    }

    const CAP: Duration = Duration::from_secs(60);

    #[test]
    fn reset_header_accepts_deltas_seconds_and_milliseconds() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let read = |reset: &str| {
            rate_headers(
                &headers(&[("x-ratelimit-remaining", "3"), ("x-ratelimit-reset", reset)]),
                now,
                CAP,
            )
        };
        let delta = read("30");
        assert_eq!(delta.remaining, Some(3));
        assert_eq!(delta.reset_in, Some(Duration::from_secs(30)));
        assert!(delta.clamped.is_empty());
        assert_eq!(read("1800000020").reset_in, Some(Duration::from_secs(20)));
        assert_eq!(
            read("1800000020500").reset_in,
            Some(Duration::from_millis(20_500))
        );
        // A reset already past: the window is open.
        assert_eq!(read("1799999000").reset_in, Some(Duration::ZERO));
        assert!(read("1799999000").clamped.is_empty());
    }

    #[test]
    fn unusable_waits_are_clamped_to_the_longest_window() {
        let now = SystemTime::now();
        for bad in ["100000000000000000000", "1e308", "-5", "NaN", "inf", "soon"] {
            let read = rate_headers(
                &headers(&[("x-ratelimit-reset", bad), ("retry-after", bad)]),
                now,
                CAP,
            );
            assert_eq!(read.reset_in, Some(CAP), "{bad}");
            assert_eq!(read.retry_after, Some(CAP), "{bad}");
            assert_eq!(read.clamped, ["X-RateLimit-Reset", "Retry-After"], "{bad}");
        }
        // A reset past the window is wrong; a block longer than the window is not.
        let read = |value: &str| {
            rate_headers(
                &headers(&[("x-ratelimit-reset", value), ("retry-after", value)]),
                now,
                CAP,
            )
        };
        let long = read("300");
        assert_eq!(long.reset_in, Some(CAP));
        assert_eq!(long.retry_after, Some(Duration::from_secs(300)));
        assert_eq!(long.clamped, ["X-RateLimit-Reset"]);
        let too_long = read("7200");
        assert_eq!(too_long.retry_after, Some(MAX_UPSTREAM_PAUSE));
        assert_eq!(too_long.clamped, ["X-RateLimit-Reset", "Retry-After"]);
    }

    #[test]
    fn retry_after_takes_seconds_and_http_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let read = |value: &str| rate_headers(&headers(&[("retry-after", value)]), now, CAP);
        assert_eq!(read("7").retry_after, Some(Duration::from_secs(7)));
        let in_ten = chrono::DateTime::<chrono::Utc>::from(now + Duration::from_secs(10));
        assert_eq!(
            read(&in_ten.to_rfc2822()).retry_after,
            Some(Duration::from_secs(10))
        );
        assert_eq!(
            read("Wed, 21 Oct 2015 07:28:00 GMT").retry_after,
            Some(Duration::ZERO)
        );
        assert_eq!(read("7").reset_in, None);
    }

    #[test]
    fn remaining_is_read_with_checked_conversions() {
        let read = |value: &str| {
            rate_headers(
                &headers(&[("x-ratelimit-remaining", value)]),
                SystemTime::now(),
                CAP,
            )
            .remaining
        };
        assert_eq!(read("5"), Some(5));
        assert_eq!(read("-3"), Some(0));
        assert_eq!(read("1e30"), Some(u32::MAX));
        assert_eq!(read("NaN"), None);
        assert_eq!(read("many"), None);
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            /// Any header values: every wait is finite; a reset at most the window, a
            /// Retry-After at most an hour.
            #[test]
            fn any_rate_limit_headers_give_bounded_waits(
                remaining in "\\PC{0,24}",
                reset in prop_oneof!["\\PC{0,24}", any::<f64>().prop_map(|f| f.to_string())],
                retry in prop_oneof!["\\PC{0,32}", any::<i64>().prop_map(|n| n.to_string())],
            ) {
                let mut h = HeaderMap::new();
                for (name, value) in [
                    ("x-ratelimit-remaining", remaining),
                    ("x-ratelimit-reset", reset),
                    ("retry-after", retry),
                ] {
                    if let Ok(value) = value.parse() {
                        h.insert(name, value);
                    }
                }
                let read = rate_headers(&h, SystemTime::now(), CAP);
                prop_assert!(read.reset_in.is_none_or(|wait| wait <= CAP));
                prop_assert!(read.retry_after.is_none_or(|wait| wait <= MAX_UPSTREAM_PAUSE));
            }
        }
    }
}
