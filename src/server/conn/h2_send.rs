//! `send_timeout` for HTTP/2 streams: a stream whose response is ready to go but gets no
//! flow-control window from its client for `send_timeout` is reset.
//!
//! An HTTP/2 client can stall a response without ever blocking the socket: it grants no
//! window (SETTINGS_INITIAL_WINDOW_SIZE 0, no WINDOW_UPDATE) and answers PINGs. hyper's
//! stream task then waits for send capacity and never polls the response body, so neither
//! the connection's [`super::send_deadline`] (writes never block) nor the body's
//! `read_timeout` (never asked for a frame) can notice; the stream, its in-flight slot and
//! its upstream connection would be held for ever.
//!
//! hyper spawns one future per stream through the executor it is given: [`StreamWatchExecutor`]
//! wraps each in a [`SendWatch`]. After every poll of the stream the watch asks whether the
//! stream is waiting on its upstream: the service future and the response body say so with
//! [`waiting_on_upstream`] (a thread-local flag, set when they return Pending) and then the
//! stream is not the client's fault (`request_timeout` and `read_timeout` bound that wait).
//! Otherwise it is waiting on the client, and if it is not polled again (woken by new
//! window) within `send_timeout` the watch drops it: h2 resets the stream (RST_STREAM
//! CANCEL), the response body goes with it (its upstream connection closed, never reused),
//! the in-flight slot is freed, and the stall is counted in
//! `strangler_client_errors_total{kind="send_timeout"}` with a WARN line.
//!
//! Cheap: a stream that never waits on its client never reads the clock nor arms a timer;
//! one that does reads the clock once per such poll, and its timer (made once, when first
//! needed) is re-armed lazily, only when it fires before the latest deadline.
//!
//! Limit: progress is seen as the stream being woken. A client that opens its window so
//! slowly that one chunk already handed to h2 (at most hyper's send buffer, 400 KiB) takes
//! longer than `send_timeout` to drain is not woken meanwhile, and is cut.

use std::cell::Cell;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus::IntCounter;
use tokio::time::{Instant, Sleep};

thread_local! {
    /// Set by a stream's service future or response body when it returns Pending: the
    /// stream waits on its upstream. Read (and cleared) by [`SendWatch`] around each poll.
    static WAITING_ON_UPSTREAM: Cell<bool> = const { Cell::new(false) };
}

/// Tells the HTTP/2 stream being polled (if any) that it is waiting on its upstream, not on
/// its client: called by the service future and the response body when they return
/// Pending. Harmless anywhere else (the next watched poll clears the flag first).
#[inline]
pub fn waiting_on_upstream() {
    WAITING_ON_UPSTREAM.set(true);
}

/// The executor given to hyper's HTTP/2 server: spawns each stream's future on tokio,
/// watched by a [`SendWatch`].
#[derive(Debug, Clone)]
pub struct StreamWatchExecutor {
    send_timeout: Duration,
    peer: SocketAddr,
    /// `strangler_client_errors_total{kind="send_timeout"}`.
    expired: IntCounter,
}

impl StreamWatchExecutor {
    /// Streams of the client at `peer`, each cut when it waits `send_timeout` on the
    /// client's window; expiries count in `expired`.
    pub fn new(send_timeout: Duration, peer: SocketAddr, expired: IntCounter) -> Self {
        Self {
            send_timeout,
            peer,
            expired,
        }
    }
}

impl<F> hyper::rt::Executor<F> for StreamWatchExecutor
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, stream: F) {
        tokio::spawn(SendWatch::new(stream, self.clone()));
    }
}

/// One HTTP/2 stream's future, dropped (the stream reset) once it has waited on its
/// client for `send_timeout`.
pub struct SendWatch<F> {
    /// The stream; `None` once it is cut.
    stream: Option<Pin<Box<F>>>,
    settings: StreamWatchExecutor,
    /// When the stream, waiting on its client, is cut; `None` while it is not.
    deadline: Option<Instant>,
    /// The timer, made when first needed; set to a deadline at or before `deadline`.
    timer: Option<Pin<Box<Sleep>>>,
}

impl<F> std::fmt::Debug for SendWatch<F> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SendWatch")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl<F: Future<Output = ()>> SendWatch<F> {
    /// Watches `stream` under `settings`.
    pub fn new(stream: F, settings: StreamWatchExecutor) -> Self {
        Self {
            stream: Some(Box::pin(stream)),
            settings,
            deadline: None,
            timer: None,
        }
    }

    /// Ready once the deadline has passed; else the timer is set (at most once per wait
    /// moved, lazily) and will wake `cx`.
    fn poll_deadline(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(deadline) = self.deadline else {
            return Poll::Pending;
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        loop {
            if timer.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            if timer.deadline() >= deadline {
                return Poll::Ready(());
            }
            // Fired at an older deadline: the stream made progress since; wait on.
            timer.as_mut().reset(deadline);
        }
    }

    /// The stream waited on its client for `send_timeout`: it is dropped (h2 resets it),
    /// counted and logged.
    #[cold]
    fn cut(&mut self) {
        self.stream = None;
        self.settings.expired.inc();
        tracing::warn!(
            client = %self.settings.peer,
            send_timeout_ms = self.settings.send_timeout.as_millis() as u64,
            "HTTP/2 client granted no window for its response for send_timeout; resetting the stream"
        );
    }
}

impl<F: Future<Output = ()>> Future for SendWatch<F> {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let Some(stream) = this.stream.as_mut() else {
            return Poll::Ready(());
        };
        WAITING_ON_UPSTREAM.set(false);
        if stream.as_mut().poll(cx).is_ready() {
            this.stream = None;
            return Poll::Ready(());
        }
        if WAITING_ON_UPSTREAM.replace(false) {
            this.deadline = None;
            return Poll::Pending;
        }
        // Waiting on the client. A poll our own timer did not cause (it is not due yet)
        // means the stream was woken, by new window: the wait starts (again) now.
        let now = Instant::now();
        let timer_due = this.deadline.is_some() && this.timer.as_ref().is_some_and(|timer| now >= timer.deadline());
        if !timer_due {
            this.deadline = Some(now + this.settings.send_timeout);
        }
        if this.poll_deadline(cx).is_ready() {
            this.cut();
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    const TIMEOUT: Duration = Duration::from_secs(60);

    fn settings() -> StreamWatchExecutor {
        let expired = IntCounter::new("send_timeouts", "test").unwrap();
        StreamWatchExecutor::new(TIMEOUT, "192.0.2.7:5000".parse().unwrap(), expired)
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_waiting_on_its_client_is_dropped_after_send_timeout() {
        let settings = settings();
        let started = Instant::now();
        SendWatch::new(std::future::pending::<()>(), settings.clone()).await;
        assert_eq!(started.elapsed(), TIMEOUT);
        assert_eq!(settings.expired.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_waiting_on_its_upstream_is_never_cut() {
        let settings = settings();
        let upstream = std::future::poll_fn(|_| {
            waiting_on_upstream();
            Poll::<()>::Pending
        });
        let watched = tokio::time::timeout(TIMEOUT * 10, SendWatch::new(upstream, settings.clone())).await;
        assert!(watched.is_err(), "the stream ended");
        assert_eq!(settings.expired.get(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn a_stream_woken_within_send_timeout_each_time_is_not_cut() {
        let settings = settings();
        let (window, mut windows) = tokio::sync::mpsc::channel::<()>(1);
        let received = Arc::new(AtomicUsize::new(0));
        let seen = received.clone();
        let stream = async move {
            while windows.recv().await.is_some() {
                seen.fetch_add(1, Ordering::Relaxed);
            }
        };
        let watched = tokio::spawn(SendWatch::new(stream, settings.clone()));
        // Five grants, each 3/4 of send_timeout after the last: far longer than it in all.
        for _ in 0..5 {
            tokio::time::sleep(TIMEOUT * 3 / 4).await;
            window.send(()).await.unwrap();
        }
        drop(window);
        watched.await.unwrap();
        assert_eq!(received.load(Ordering::Relaxed), 5);
        assert_eq!(settings.expired.get(), 0);
    }
}
