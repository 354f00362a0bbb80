//! Wall-clock time that can follow tokio's clock. The simulators always use it, so a test
//! that pauses tokio's clock moves the pools' rate windows, `X-RateLimit-Reset` times and
//! histories with it. The exporter reads the system clock unless told otherwise: a process
//! that anchored its wall time at start would carry a clock error that NTP corrects later.

use std::cell::OnceCell;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum WallClock {
    /// `SystemTime::now()`.
    #[default]
    System,
    /// The system time when first asked, moved on by tokio's clock since (paused or not).
    Tokio,
}

impl WallClock {
    pub fn now(self) -> SystemTime {
        match self {
            WallClock::System => SystemTime::now(),
            WallClock::Tokio => {
                // One anchor a thread, not a process: each test runs on its own thread with
                // its own runtime, whose paused clock another test's anchor knows nothing of
                // (one far ahead froze this one's wall time, and its pools' rate windows).
                thread_local! {
                    static ANCHOR: OnceCell<(Instant, SystemTime)> = const { OnceCell::new() };
                }
                let (at, wall) =
                    ANCHOR.with(|a| *a.get_or_init(|| (Instant::now(), SystemTime::now())));
                wall + Instant::now().saturating_duration_since(at)
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
