//! UTC days, weeks and months as the pools count them: `YYYY-MM-DD` dates, the last
//! complete week (from Monday) and month, and RFC 3339 times to the second.

use chrono::{DateTime, Datelike, Duration as Days, NaiveDate, TimeZone, Utc};

/// Midnight UTC of the day holding `t`.
pub fn day_start(t: i64) -> i64 {
    t.div_euclid(86_400) * 86_400
}

/// The first moment of Luxor's last complete week: Monday 00:00 UTC a week before this
/// week's Monday. `5m` ticks reach back to here.
pub fn last_complete_week(now: i64) -> i64 {
    let today = day_start(now);
    let weekday = i64::from(
        utc(now)
            .map(|d| d.weekday().num_days_from_monday())
            .unwrap_or(0),
    );
    today - weekday * 86_400 - 7 * 86_400
}

/// The first moment of Luxor's last complete month: the 1st of last month, 00:00 UTC. `1h`
/// ticks reach back to here.
pub fn last_complete_month(now: i64) -> i64 {
    let Some(now) = utc(now) else { return 0 };
    let (year, month) = if now.month() == 1 {
        (now.year() - 1, 12)
    } else {
        (now.year(), now.month() - 1)
    };
    NaiveDate::from_ymd_opt(year, month, 1)
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|d| d.and_utc().timestamp())
        .unwrap_or(0)
}

fn utc(t: i64) -> Option<DateTime<Utc>> {
    Utc.timestamp_opt(t, 0).single()
}

/// `t` as Luxor and OurPool write times: `2025-01-01T00:00:00Z`.
pub fn iso_seconds(t: i64) -> String {
    utc(t)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

/// The Unix time of midnight starting a `YYYY-MM-DD` date.
pub fn parse_date(text: &str) -> Option<i64> {
    let date = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    Some(date.and_hms_opt(0, 0, 0)?.and_utc().timestamp())
}

/// `t`'s date as `YYYY-MM-DD`.
pub fn date_of(t: i64) -> String {
    utc(t)
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_default()
}

/// One day after `t`.
pub fn next_day(t: i64) -> i64 {
    t + Days::days(1).num_seconds()
}

/// A time on the command line: a moment (a date, `2026-11-01`, midnight UTC; an RFC 3339
/// time, `2026-11-01T12:00:00Z`), or a span before the run (`30d`, `12h`). A span stays a
/// span in the progress file's key, so the same command run again resumes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// Unix seconds.
    At(i64),
    /// This long before now.
    Ago(std::time::Duration),
}

impl When {
    /// Unix seconds, for a run at `now`.
    pub fn at(self, now: i64) -> i64 {
        match self {
            When::At(t) => t,
            When::Ago(ago) => now.saturating_sub(i64::try_from(ago.as_secs()).unwrap_or(i64::MAX)),
        }
    }

    /// As the progress file's key writes it: the same words give the same key.
    pub fn key(self) -> String {
        match self {
            When::At(t) => t.to_string(),
            When::Ago(ago) => format!("{}s ago", ago.as_secs()),
        }
    }
}

/// A time on the command line (see `When`).
pub fn parse_when(text: &str) -> Result<When, String> {
    let text = text.trim();
    if let Some(t) = parse_date(text) {
        return Ok(When::At(t));
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Ok(When::At(t.timestamp()));
    }
    if let Ok(ago) = humantime::parse_duration(text) {
        i64::try_from(ago.as_secs()).map_err(|_| format!("{text:?} is too long ago"))?;
        return Ok(When::Ago(ago));
    }
    Err(format!(
        "{text:?} is not a time: give a date (2026-11-01), an RFC 3339 time (2026-11-01T12:00:00Z) or a span back from now (30d)"
    ))
}

/// A time on the command line, in Unix seconds for a run at `now`.
pub fn parse_time(text: &str, now: i64) -> Result<i64, String> {
    parse_when(text).map(|w| w.at(now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_on_the_command_line_are_dates_rfc3339_or_spans_back() {
        let now = 1_800_000_000;
        assert_eq!(
            parse_time("2026-11-01", now),
            Ok(parse_date("2026-11-01").unwrap())
        );
        assert_eq!(
            parse_time("2026-11-01T01:00:00Z", now),
            Ok(parse_date("2026-11-01").unwrap() + 3600)
        );
        assert_eq!(parse_time("30d", now), Ok(now - 30 * 86_400));
        assert!(
            parse_time("yesterday", now)
                .unwrap_err()
                .contains("not a time")
        );
    }

    #[test]
    fn the_depth_limits_fall_on_mondays_and_first_days() {
        // Thursday 2026-12-03 12:00 UTC.
        let now = parse_date("2026-12-03").unwrap() + 12 * 3600;
        assert_eq!(date_of(last_complete_week(now)), "2026-11-23");
        assert_eq!(date_of(last_complete_month(now)), "2026-11-01");
        let january = parse_date("2027-01-05").unwrap();
        assert_eq!(date_of(last_complete_month(january)), "2026-12-01");
    }
}
