//! Waiting for something the test cannot be told about directly: poll with an
//! exponential back-off (1 ms doubling to 20 ms) under a bounded deadline, so that the
//! poller does not compete for the CPU with the proxy it waits on (two cores are common).
//! Prefer a signal (a `watch` of the proxy's state, a line on stderr) where there is one.

use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

/// The deadline of a poll when the caller names none.
pub const POLL_LIMIT: Duration = Duration::from_secs(5);

const FIRST_PAUSE: Duration = Duration::from_millis(1);
const LONGEST_PAUSE: Duration = Duration::from_millis(20);

/// The pause between two polls: 1 ms, doubling up to 20 ms.
#[derive(Debug)]
pub struct Backoff {
    next: Duration,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff { next: FIRST_PAUSE }
    }
}

impl Backoff {
    /// Waits the current pause and doubles it (up to 20 ms).
    pub async fn pause(&mut self) {
        tokio::time::sleep(self.next).await;
        self.next = (self.next * 2).min(LONGEST_PAUSE);
    }
}

/// Calls `probe` (with back-off between calls) until `accept` likes its value or `limit`
/// has passed; returns the last value, for the caller to assert on.
pub async fn poll<T, F, Fut>(limit: Duration, mut probe: F, accept: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = T>,
{
    let deadline = Instant::now() + limit;
    let mut backoff = Backoff::default();
    loop {
        let value = probe().await;
        if accept(&value) || Instant::now() >= deadline {
            return value;
        }
        backoff.pause().await;
    }
}
