//! Wall-clock time that can follow tokio's clock. The simulators always use it, so a test
//! that pauses tokio's clock moves the pools' rate windows, `X-RateLimit-Reset` times and
//! histories with it. The exporter reads the system clock unless told otherwise: a process
//! that anchored its wall time at start would carry a clock error that NTP corrects later.

use std::sync::OnceLock;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WallClock {
    /// `SystemTime::now()`.
    #[default]
    System,
    /// The system time when the process first asked, moved on by tokio's clock since
    /// (paused or not): one runtime's threads all read the same time.
    Tokio,
}

impl WallClock {
    pub fn now(self) -> SystemTime {
        match self {
            WallClock::System => SystemTime::now(),
            WallClock::Tokio => {
                // One anchor for the process, on the real clock: a paused runtime's
                // `Instant` is the real instant it was built at plus the time advanced since,
                // so every thread of one runtime (its blocking pool too, where the state
                // file is written) reads the same wall time, and a runtime far ahead in
                // paused time moves no other's. An anchor taken per thread on tokio's
                // clock put each blocking thread as far behind as the paused clock had
                // advanced before its first call: real time leaked into every test that
                // wrote a state file from one thread and read it on another.
                static ANCHOR: OnceLock<(std::time::Instant, SystemTime)> = OnceLock::new();
                let (at, wall) =
                    *ANCHOR.get_or_init(|| (std::time::Instant::now(), SystemTime::now()));
                let now = Instant::now().into_std();
                match now.checked_duration_since(at) {
                    Some(since) => wall.checked_add(since),
                    None => wall.checked_sub(at.duration_since(now)),
                }
                .unwrap_or(wall)
            }
        }
    }

    pub fn unix_seconds(self) -> u64 {
        self.now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    /// The state file is written on the blocking pool and read on a runtime thread: both must
    /// read one wall clock, however far the paused clock has moved before a thread first asks.
    #[tokio::test(start_paused = true)]
    async fn every_thread_of_a_paused_runtime_reads_one_wall_clock() {
        let _ = WallClock::Tokio.now();
        tokio::time::advance(Duration::from_secs(3600)).await;
        let here = WallClock::Tokio.now();
        let there = tokio::task::spawn_blocking(|| WallClock::Tokio.now())
            .await
            .unwrap();
        let apart = here.duration_since(there).unwrap_or_else(|e| e.duration());
        assert!(
            apart < Duration::from_millis(50),
            "a blocking thread's wall clock is {apart:?} off this thread's"
        );
    }

    /// Another runtime far ahead in paused time neither freezes nor moves this one's clock.
    #[tokio::test(start_paused = true)]
    async fn a_runtime_far_ahead_leaves_this_one_s_clock_alone() {
        let ahead = std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .start_paused(true)
                .build()
                .unwrap()
                .block_on(async {
                    tokio::time::advance(Duration::from_secs(86_400 * 30)).await;
                    WallClock::Tokio.now()
                })
        })
        .join()
        .unwrap();
        let before = WallClock::Tokio.now();
        tokio::time::advance(Duration::from_secs(60)).await;
        let after = WallClock::Tokio.now();
        assert_eq!(
            after.duration_since(before).unwrap(),
            Duration::from_secs(60)
        );
        assert!(ahead > after + Duration::from_secs(86_400 * 29));
    }
}
