//! Catches a panic inside a poll so that it fails that one poll instead of ending the source's
//! task. The default panic hook would also print the panic to stderr, unformatted and without
//! the source's name; while a supervised future runs, the hook installed here keeps the
//! message and location for the scheduler's one log line instead.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Once;
use std::task::{Context, Poll};

thread_local! {
    /// Set while this thread polls a supervised future.
    static SUPERVISED: Cell<bool> = const { Cell::new(false) };
    /// What the hook saw of the last supervised panic on this thread.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Installs the hook once per process; panics outside supervised futures still reach the
/// hook that was there before.
fn install_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if SUPERVISED.with(Cell::get) {
                let message = payload_text(info.payload());
                let at = info
                    .location()
                    .map(|l| format!(" at {}:{}", l.file(), l.line()))
                    .unwrap_or_default();
                LAST_PANIC.with(|last| *last.borrow_mut() = Some(format!("{message}{at}")));
            } else {
                previous(info);
            }
        }));
    });
}

fn payload_text(payload: &(dyn std::any::Any + Send)) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "(a panic without a message)".to_string())
}

/// A future that resolves to `Err(message)` where the inner future panicked.
pub struct CatchPanic<'a, T> {
    inner: Pin<Box<dyn Future<Output = T> + Send + 'a>>,
}

/// Runs `future` so that a panic inside it becomes `Err` with the panic's message and place.
pub fn catch_panic<'a, T>(
    future: Pin<Box<dyn Future<Output = T> + Send + 'a>>,
) -> CatchPanic<'a, T> {
    install_hook();
    CatchPanic { inner: future }
}

impl<T> Future for CatchPanic<'_, T> {
    type Output = Result<T, String>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let was = SUPERVISED.with(|s| s.replace(true));
        let polled = catch_unwind(AssertUnwindSafe(|| self.inner.as_mut().poll(cx)));
        SUPERVISED.with(|s| s.set(was));
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(value)) => Poll::Ready(Ok(value)),
            Err(payload) => {
                let seen = LAST_PANIC.with(|last| last.borrow_mut().take());
                Poll::Ready(Err(seen.unwrap_or_else(|| payload_text(payload.as_ref()))))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panic_becomes_an_error_with_its_message_and_place() {
        let ok = catch_panic(Box::pin(async { 7 })).await;
        assert_eq!(ok, Ok(7));
        let caught = catch_panic::<u32>(Box::pin(async {
            tokio::task::yield_now().await;
            panic!("pool sent {}", "nonsense")
        }))
        .await;
        let message = caught.unwrap_err();
        assert!(message.starts_with("pool sent nonsense at "), "{message}");
        assert!(message.contains("supervision.rs"), "{message}");
        // The thread is usable afterwards, and unsupervised state is restored.
        assert!(!SUPERVISED.with(Cell::get));
    }
}
