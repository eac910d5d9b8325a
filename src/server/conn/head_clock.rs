//! How long a client connection may wait for its next request: while a head (HTTP/1.1)
//! or a header block (HTTP/2) is arriving piece by piece, and before the first request
//! (`client_header_timeout`: slowloris), and while it is idle between requests
//! (`client_idle_timeout`: keep-alive). HTTP/1.1 connections poll the clock from their
//! [`super::guard::FramingCheck`], HTTP/2 connections from [`super::h2_watch`].
//!
//! hyper's own header-read timer would do this, but it allocates, registers and cancels a
//! timer for every request, and makes its connection loop read once more per request: about
//! 4 % of the proxy's instructions per request, measured. [`HeadClock`] keeps one timer per
//! connection instead and re-arms it lazily: a timer that fires after the connection has
//! been busy is moved to the new deadline rather than obeyed, and a timer that already holds
//! the connection task's waker is not polled again, so a connection that is never idle that
//! long costs a clock read per answer and a few comparisons per read.
//!
//! Only the server knows when a request has been answered, so it counts: each request
//! handed to the service holds an [`InFlight`] until its response body is dropped (written,
//! or abandoned), in [`Answered`]. The connection is idle when every request begun has been
//! answered; a `101 Switching Protocols` answer never ends, because the connection then
//! belongs to the tunnel, which may stay quiet as long as it likes. A response that takes
//! longer than the timeout (a slow upstream, a long download, a quiet event stream) is not
//! idleness.
//!
//! Which timeout applies (the deadline is recomputed at every poll):
//! - a head or header block is held, incomplete: `client_header_timeout` from when the
//!   clock first saw it held, whether or not another request is in flight (pipelining);
//! - no request yet: `client_header_timeout` from when the connection opened;
//! - idle after a request: `client_idle_timeout` from the last answer;
//! - told to close ([`HeadClock::closing`], HTTP/2's GOAWAY): [`CLOSING_GRACE`] (or the
//!   header timeout if shorter) from then, or from the last answer if later, for the
//!   client to finish;
//! - a request in flight: no deadline.
//!
//! The same counts tell the framing check how a protocol upgrade went (see
//! [`HeadClock::poll_answer`]): after a request that may switch protocols it holds the
//! connection's further bytes until that request's answer is known, a `101` (they belong to
//! the tunnel) or anything else (they are the next request, checked as HTTP).

use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use http_body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

/// Requests begun and answered on one client connection, and when the last answer ended.
/// Updated by the connection's own task (the service and the response bodies hyper
/// drives), so relaxed counts are exact.
#[derive(Debug)]
pub struct Exchanges {
    opened: Instant,
    begun: AtomicU64,
    ended: AtomicU64,
    /// When the last answer ended, in nanoseconds since `opened`.
    answered_at: AtomicU64,
    /// Set once a `101 Switching Protocols` answer was handed to hyper: the connection is
    /// a tunnel from then on.
    switched: AtomicBool,
    /// Whether a task waits in [`Exchanges::poll_answer`]: only then does an answer look
    /// for its waker (most connections never wait, and pay one load per answer).
    awaited: AtomicBool,
    /// The task waiting for an answer.
    waiting: Mutex<Option<Waker>>,
}

impl Default for Exchanges {
    fn default() -> Self {
        Self {
            opened: Instant::now(),
            begun: AtomicU64::new(0),
            ended: AtomicU64::new(0),
            answered_at: AtomicU64::new(0),
            switched: AtomicBool::new(false),
            awaited: AtomicBool::new(false),
            waiting: Mutex::new(None),
        }
    }
}

impl Exchanges {
    /// Counts a request handed to the service; it is answered when the guard drops.
    pub fn begin(self: &Arc<Self>) -> InFlight {
        self.begun.fetch_add(1, Ordering::Relaxed);
        InFlight {
            exchanges: self.clone(),
            ends: true,
        }
    }

    /// Whether any request has been handed to the service yet.
    fn any_begun(&self) -> bool {
        self.begun.load(Ordering::Relaxed) != 0
    }

    /// Since when the connection has been idle (every request begun has been answered).
    fn idle_since(&self) -> Option<Instant> {
        let ended = self.ended.load(Ordering::Relaxed);
        (self.begun.load(Ordering::Relaxed) == ended)
            .then(|| self.opened + Duration::from_nanos(self.answered_at.load(Ordering::Relaxed)))
    }

    fn end(&self) {
        let at = u64::try_from(self.opened.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.answered_at.store(at, Ordering::Relaxed);
        self.ended.fetch_add(1, Ordering::Relaxed);
        self.wake_awaiting();
    }

    /// A `101` answer was handed to hyper.
    fn switch(&self) {
        self.switched.store(true, Ordering::Relaxed);
        self.wake_awaiting();
    }

    fn wake_awaiting(&self) {
        if self.awaited.load(Ordering::Relaxed) {
            let waker = self
                .waiting
                .lock()
                .map(|mut waiting| waiting.take())
                .unwrap_or_default();
            self.awaited.store(false, Ordering::Relaxed);
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// How the `request`th request of the connection (counted from 1) was answered: `true`
    /// for a `101` (nothing but that request can have switched: the framing check holds
    /// everything after it), `false` once it and all before it were answered otherwise;
    /// Pending until then, with the task woken when an answer comes.
    fn poll_answer(&self, request: u64, cx: &Context<'_>) -> Poll<bool> {
        let known = || {
            if self.switched.load(Ordering::Relaxed) {
                Some(true)
            } else {
                (self.ended.load(Ordering::Relaxed) >= request).then_some(false)
            }
        };
        if let Some(switched) = known() {
            return Poll::Ready(switched);
        }
        if let Ok(mut waiting) = self.waiting.lock() {
            *waiting = Some(cx.waker().clone());
        }
        self.awaited.store(true, Ordering::Relaxed);
        // An answer between the first look and the waker's registration woke nobody.
        known().map_or(Poll::Pending, Poll::Ready)
    }
}

/// One request being answered; see [`Exchanges::begin`].
#[derive(Debug)]
pub struct InFlight {
    exchanges: Arc<Exchanges>,
    ends: bool,
}

impl InFlight {
    /// The answer switches protocols: the connection is a tunnel from now on, never idle
    /// in the HTTP sense.
    fn never_ends(&mut self) {
        self.ends = false;
        self.exchanges.switch();
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        if self.ends {
            self.exchanges.end();
        }
    }
}

/// A response body that holds its request's [`InFlight`] until hyper drops it.
#[derive(Debug)]
pub struct Answered<B> {
    body: B,
    _in_flight: InFlight,
}

impl<B> Answered<B> {
    /// Ties `response`'s body to `in_flight`.
    pub fn wrap(response: http::Response<B>, mut in_flight: InFlight) -> http::Response<Self> {
        if response.status() == http::StatusCode::SWITCHING_PROTOCOLS {
            in_flight.never_ends();
        }
        response.map(|body| Self {
            body,
            _in_flight: in_flight,
        })
    }
}

impl<B: Body + Unpin> Body for Answered<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<B::Data>, B::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// The wait for a request head on one connection, and the one timer that bounds it.
#[derive(Debug)]
pub struct HeadClock {
    /// `client_header_timeout`: for a held head, the first request, and closing.
    header_timeout: Duration,
    /// `client_idle_timeout`: between requests.
    idle_timeout: Duration,
    exchanges: Arc<Exchanges>,
    /// Since when the start of a head has been held, waiting for its rest.
    holding_since: Option<Instant>,
    /// Since when the connection has been closing ([`Self::closing`]).
    closing_since: Option<Instant>,
    /// Armed at a deadline no later than the current one; see the module docs.
    timer: Option<Pin<Box<Sleep>>>,
    /// The waker the armed timer holds (from a poll that registered it): while it has not
    /// fired, polling it again for the same task would change nothing.
    registered: Option<Waker>,
}

/// How long a connection told to close may take to finish once no request is in flight:
/// an HTTP/2 client acknowledges the GOAWAY's PING within a round trip; one that does not
/// is dropped, having been told.
pub const CLOSING_GRACE: Duration = Duration::from_secs(1);

/// Which wait a deadline bounds, for the error that ends the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wait {
    /// A head, the first request, or the end of a closing connection.
    Head,
    /// The next request on a connection that has been answered.
    Idle,
}

impl HeadClock {
    /// A clock for a connection whose requests `exchanges` counts, with `timeout` for heads
    /// and, until [`Self::with_idle_timeout`] says otherwise, between requests too.
    pub fn new(timeout: Duration, exchanges: Arc<Exchanges>) -> Self {
        Self {
            header_timeout: timeout,
            idle_timeout: timeout,
            exchanges,
            holding_since: None,
            closing_since: None,
            timer: None,
            registered: None,
        }
    }

    /// The clock with `idle` as the longest wait between requests (`client_idle_timeout`).
    pub fn with_idle_timeout(mut self, idle: Duration) -> Self {
        self.idle_timeout = idle;
        self
    }

    /// The connection was told to close (HTTP/2: GOAWAY): from now on it gets
    /// [`CLOSING_GRACE`] to finish, once no request is in flight.
    pub fn closing(&mut self) {
        self.closing_since = Some(Instant::now());
    }

    /// The current deadline, and what it waits for; `None` while a request is in flight
    /// and no head is held.
    fn deadline(&mut self, holding: bool) -> Option<(Instant, Wait)> {
        if holding {
            let since = *self.holding_since.get_or_insert_with(Instant::now);
            return Some((since + self.header_timeout, Wait::Head));
        }
        let idle = self.exchanges.idle_since()?;
        Some(match (self.closing_since, self.exchanges.any_begun()) {
            (Some(closing), _) => (idle.max(closing) + self.header_timeout.min(CLOSING_GRACE), Wait::Head),
            (None, false) => (idle + self.header_timeout, Wait::Head),
            (None, true) => (idle + self.idle_timeout, Wait::Idle),
        })
    }

    /// Called whenever a read finds nothing to hand over; `holding` says whether the start
    /// of a head is held back, waiting for its rest. Ready with an error once the
    /// connection has waited longer than its timeout (see the module docs); otherwise
    /// Pending, with a timer registered to wake the task: at the deadline, or, while a
    /// request is in flight (no deadline), the shorter timeout from now to look again,
    /// because the end of an answer wakes nobody.
    pub fn poll_expired(&mut self, cx: &mut Context<'_>, holding: bool) -> Poll<io::Error> {
        let deadline = self.deadline(holding);
        let look_again = self.header_timeout.min(self.idle_timeout);
        let timer = self.timer.get_or_insert_with(|| {
            Box::pin(tokio::time::sleep_until(
                deadline.map_or_else(|| Instant::now() + look_again, |(at, _)| at),
            ))
        });
        if let Some((deadline, _)) = deadline
            && timer.deadline() > deadline
        {
            timer.as_mut().reset(deadline);
            self.registered = None;
        }
        loop {
            if !timer.is_elapsed() && self.registered.as_ref().is_some_and(|w| w.will_wake(cx.waker())) {
                return Poll::Pending;
            }
            // Out of budget, tokio answers Pending without registering the waker.
            let registers = tokio::task::coop::has_budget_remaining();
            if timer.as_mut().poll(cx).is_pending() {
                self.registered = registers.then(|| cx.waker().clone());
                return Poll::Pending;
            }
            self.registered = None;
            match deadline {
                Some((deadline, wait)) if timer.deadline() >= deadline => {
                    return Poll::Ready(io::Error::new(
                        io::ErrorKind::TimedOut,
                        match wait {
                            Wait::Head => "no complete request head within client_header_timeout",
                            Wait::Idle => "no request within client_idle_timeout",
                        },
                    ));
                }
                // Armed for an earlier wait: wait on for this one.
                Some((deadline, _)) => timer.as_mut().reset(deadline),
                None => timer.as_mut().reset(Instant::now() + look_again),
            }
        }
    }

    /// A held head is complete: the wait for it is over.
    pub fn head_complete(&mut self) {
        self.holding_since = None;
    }

    /// How the `request`th request of the connection (counted from 1) was answered: Ready
    /// with `true` for a `101 Switching Protocols`, with `false` once it was answered
    /// otherwise; Pending (the task woken by the answer) until one of them is known.
    pub fn poll_answer(&self, request: u64, cx: &Context<'_>) -> Poll<bool> {
        self.exchanges.poll_answer(request, cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    const TIMEOUT: Duration = Duration::from_secs(10);

    async fn expiry(clock: &mut HeadClock, holding: bool) -> io::Error {
        poll_fn(|cx| clock.poll_expired(cx, holding)).await
    }

    /// Waits for the clock to expire; asserts that it does, exactly `TIMEOUT` after `since`.
    async fn assert_expires_timeout_after(since: Instant, clock: &mut HeadClock, holding: bool) {
        let error = expiry(clock, holding).await;
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(since.elapsed(), TIMEOUT);
    }

    /// A connection's clock while one of its requests is being answered.
    fn clock_with_a_request_in_flight() -> (HeadClock, InFlight) {
        let exchanges = Arc::new(Exchanges::default());
        let in_flight = exchanges.begin();
        (HeadClock::new(TIMEOUT, exchanges), in_flight)
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_connection_expires_after_the_timeout() {
        let exchanges = Arc::new(Exchanges::default());
        let mut clock = HeadClock::new(TIMEOUT, exchanges);
        assert_expires_timeout_after(Instant::now(), &mut clock, false).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_request_in_flight_has_no_deadline_and_its_answer_starts_a_new_wait() {
        let exchanges = Arc::new(Exchanges::default());
        let mut clock = HeadClock::new(TIMEOUT, exchanges.clone());
        // Idle for most of the timeout: the timer is armed.
        let idle = tokio::time::timeout(TIMEOUT - Duration::from_secs(1), expiry(&mut clock, false)).await;
        assert!(idle.is_err(), "expired early");
        let in_flight = exchanges.begin();
        let waited = tokio::time::timeout(TIMEOUT * 3, expiry(&mut clock, false)).await;
        assert!(
            waited.is_err(),
            "a connection with a request in flight expired: {waited:?}"
        );
        // Answered: the full timeout again from now, although the armed timer fired long ago.
        drop(in_flight);
        assert_expires_timeout_after(Instant::now(), &mut clock, false).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_held_head_expires_even_with_a_request_in_flight() {
        // Pipelining: the next head arrives in pieces while the previous request is answered.
        let (mut clock, _in_flight) = clock_with_a_request_in_flight();
        assert_expires_timeout_after(Instant::now(), &mut clock, true).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_completed_head_restarts_the_wait_for_the_next() {
        let (mut clock, _in_flight) = clock_with_a_request_in_flight();
        let first = tokio::time::timeout(TIMEOUT / 2, expiry(&mut clock, true)).await;
        assert!(first.is_err());
        clock.head_complete();
        tokio::time::advance(TIMEOUT / 4).await;
        assert_expires_timeout_after(Instant::now(), &mut clock, true).await;
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_wait_counts_from_the_last_answer_not_from_the_next_read() {
        let exchanges = Arc::new(Exchanges::default());
        let mut clock = HeadClock::new(TIMEOUT, exchanges.clone());
        let in_flight = exchanges.begin();
        let busy = tokio::time::timeout(TIMEOUT / 2, expiry(&mut clock, false)).await;
        assert!(busy.is_err());
        // The answer ends; the connection's reader is not polled again until later.
        drop(in_flight);
        let answered = Instant::now();
        tokio::time::advance(TIMEOUT / 4).await;
        assert_expires_timeout_after(answered, &mut clock, false).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_task_that_did_not_arm_the_timer_is_still_woken_by_it() {
        let mut clock = HeadClock::new(TIMEOUT, Arc::new(Exchanges::default()));
        // Armed from another context first: its waker is not this task's.
        let mut elsewhere = Context::from_waker(Waker::noop());
        assert!(clock.poll_expired(&mut elsewhere, false).is_pending());
        let started = Instant::now();
        let expired = tokio::time::timeout(TIMEOUT * 2, expiry(&mut clock, false)).await;
        assert_eq!(expired.map(|e| e.kind()).ok(), Some(io::ErrorKind::TimedOut));
        assert_eq!(started.elapsed(), TIMEOUT);
    }

    const IDLE: Duration = Duration::from_secs(75);

    /// A clock with `TIMEOUT` for heads and `IDLE` between requests, whose connection has
    /// had one request answered.
    fn clock_after_one_answer() -> HeadClock {
        let exchanges = Arc::new(Exchanges::default());
        drop(exchanges.begin());
        HeadClock::new(TIMEOUT, exchanges).with_idle_timeout(IDLE)
    }

    #[tokio::test(start_paused = true)]
    async fn before_its_first_request_a_connection_gets_the_header_timeout_not_the_idle_one() {
        let mut clock = HeadClock::new(TIMEOUT, Arc::new(Exchanges::default())).with_idle_timeout(IDLE);
        assert_expires_timeout_after(Instant::now(), &mut clock, false).await;
    }

    #[tokio::test(start_paused = true)]
    async fn between_requests_a_connection_gets_the_idle_timeout() {
        let mut clock = clock_after_one_answer();
        let answered = Instant::now();
        let error = expiry(&mut clock, false).await;
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert!(error.to_string().contains("client_idle_timeout"), "{error}");
        assert_eq!(answered.elapsed(), IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn a_head_begun_after_an_idle_gap_gets_the_header_timeout_from_its_start() {
        let mut clock = clock_after_one_answer();
        let quiet = tokio::time::timeout(IDLE - TIMEOUT, expiry(&mut clock, false)).await;
        assert!(quiet.is_err(), "expired while idle within client_idle_timeout");
        // The first bytes of the next head arrive, and then no more.
        let error = {
            let started = Instant::now();
            let error = expiry(&mut clock, true).await;
            assert_eq!(started.elapsed(), TIMEOUT);
            error
        };
        assert!(error.to_string().contains("client_header_timeout"), "{error}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_closing_connection_gets_the_closing_grace_from_when_it_was_told() {
        let mut clock = clock_after_one_answer();
        tokio::time::advance(Duration::from_secs(30)).await;
        clock.closing();
        let told = Instant::now();
        assert_eq!(expiry(&mut clock, false).await.kind(), io::ErrorKind::TimedOut);
        assert_eq!(told.elapsed(), CLOSING_GRACE);
    }

    #[tokio::test(start_paused = true)]
    async fn with_a_request_in_flight_the_idle_wait_starts_at_its_answer() {
        let exchanges = Arc::new(Exchanges::default());
        let mut clock = HeadClock::new(TIMEOUT, exchanges.clone()).with_idle_timeout(IDLE);
        let in_flight = exchanges.begin();
        let busy = tokio::time::timeout(IDLE * 2, expiry(&mut clock, false)).await;
        assert!(busy.is_err(), "a connection with a request in flight expired");
        drop(in_flight);
        let answered = Instant::now();
        // The look-again timer (the shorter timeout) notices the answer in time.
        let error = expiry(&mut clock, false).await;
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(answered.elapsed(), IDLE);
    }

    #[test]
    fn a_switching_answer_never_ends_its_request() {
        let exchanges = Arc::new(Exchanges::default());
        let switched = http::Response::builder()
            .status(http::StatusCode::SWITCHING_PROTOCOLS)
            .body(())
            .map(|response| Answered::wrap(response, exchanges.begin()));
        drop(switched);
        assert_eq!(exchanges.idle_since(), None, "a tunnel counted as idle");

        let exchanges = Arc::new(Exchanges::default());
        let answered = http::Response::builder()
            .status(http::StatusCode::OK)
            .body(())
            .map(|response| Answered::wrap(response, exchanges.begin()));
        assert_eq!(exchanges.idle_since(), None);
        drop(answered);
        assert!(exchanges.idle_since().is_some());
    }
}
