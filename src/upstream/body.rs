//! The request body on its way to an upstream: streamed from the client under the route's
//! `max_body`, or buffered so that it can be sent twice (a fallback replays it to legacy, a
//! shadow copy goes to the new upstream).
//!
//! A failure of the client's body is noted in a shared [`BodyWatch`], so that the
//! proxy answers for the client's mistake (413, 400, 408) instead of blaming the upstream.
//! A streamed body is read under `client_body_timeout` (the longest wait between two reads,
//! a [`StallDeadline`]); the watch also tells whether the body was waiting for the client
//! when the upstream's `request_timeout` ran out (then the client stalled, not the upstream).
//! Trailers the client sends lose hop-by-hop and proxy-only fields, like its head.
//!
//! The client's body can be any [`ClientBody`]: hyper's `Incoming` when
//! the server hands a request over, an in-memory body in the service's tests. A streamed
//! body is boxed once, when it starts streaming; a request without a body (most GETs) is
//! never boxed.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use tokio::time::{Instant, Sleep};

use crate::config::ProxySettings;

/// A deadline that never comes in practice (a year), for a timeout the clock cannot add.
const FAR_FUTURE: Duration = Duration::from_secs(365 * 24 * 3600);

/// An error of a client's body, boxed: hyper's for a body read off a connection, whatever
/// an in-memory body's is in tests.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the proxy accepts as a client's request body: hyper's `Incoming` from a connection,
/// or any other body of bytes (the service's tests send in-memory ones).
pub trait ClientBody: Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static {}

impl<B> ClientBody for B where B: Body<Data = Bytes, Error: Into<BoxError>> + Send + 'static {}

/// A client's request body while it streams upstream, its type erased.
type BoxedClientBody = Pin<Box<dyn Body<Data = Bytes, Error = BoxError> + Send>>;

/// A request body on its way upstream: streamed from the client, or buffered so that it
/// can be sent twice (a fallback replays it to the legacy upstream).
#[derive(Debug)]
pub enum RequestBody {
    /// Streamed as it arrives, under the route's `max_body` if it has one; made by
    /// [`RequestBody::streaming`]. Boxed: a request is moved many times on its way to the
    /// upstream connection (and held in several futures), most have no body, and the
    /// streamed state is four times the size of the rest of the request body.
    Streaming(Box<Streamed>),
    /// Buffered in full (bounded by the route's `fallback_max_body`).
    Buffered(Option<Bytes>),
}

/// A client body streamed upstream.
pub struct Streamed {
    /// A frame read before the upstream was contacted (see [`RequestBody::streaming`]).
    first: Option<Frame<Bytes>>,
    /// The rest of the client's body.
    rest: BoxedClientBody,
    /// Bytes still allowed by the route's `max_body`, if it has one.
    remaining: Option<u64>,
    /// The route's `max_body`, for the error.
    limit: u64,
    /// Where a failure of the body is noted, so that the handler answers for it (413, 400,
    /// 408) instead of blaming the upstream.
    watch: Arc<BodyWatch>,
    /// `client_body_timeout` between two reads of the client's body.
    deadline: StallDeadline,
}

impl std::fmt::Debug for Streamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streamed")
            .field("first", &self.first)
            .field("remaining", &self.remaining)
            .field("limit", &self.limit)
            .field("watch", &self.watch)
            .finish_non_exhaustive()
    }
}

/// What went wrong with a client's request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyFault {
    /// Larger than the route's `max_body`: 413.
    TooLarge {
        /// The route's `max_body`.
        limit: u64,
    },
    /// Could not be read (malformed chunked encoding, client gone): 400.
    Unreadable,
    /// Stalled: nothing arrived for `client_body_timeout`, or the body was still awaited
    /// from the client when the upstream's `request_timeout` ran out: 408.
    TimedOut,
}

/// What the handler learns about a streamed client body once the exchange is over: its
/// fault, if any, and whether it was waiting for the client at the end.
#[derive(Debug, Default)]
pub struct BodyWatch {
    fault: OnceLock<BodyFault>,
    /// The last read of the client's body found nothing (and the body had not ended).
    waiting_for_client: AtomicBool,
}

impl BodyWatch {
    /// The body's fault, if it failed.
    pub fn fault(&self) -> Option<&BodyFault> {
        self.fault.get()
    }

    /// Notes `fault` (the first one stands).
    pub fn set_fault(&self, fault: BodyFault) {
        let _ = self.fault.set(fault);
    }

    /// Whether the body was waiting for the client when last read.
    pub fn waiting_for_client(&self) -> bool {
        self.waiting_for_client.load(Ordering::Relaxed)
    }
}

/// The longest a stream may stall between two steps: two reads of a body
/// (`client_body_timeout` for a request body, `read_timeout` for an upstream's response
/// body), or two writes to a client connection (`send_timeout`).
///
/// Cheap on the hot path: a body whose frames are ready when asked for never arms a timer
/// and never reads the clock. The first read that finds nothing starts the wait (one clock
/// read) and arms a timer for its end; later reads that find nothing only poll that timer;
/// a frame ends the wait. The timer is created once per body, when first needed, or borrowed
/// (a pooled upstream connection's, see [`crate::upstream::pool::Lease::timer`]).
#[derive(Debug)]
pub struct StallDeadline {
    timeout: Duration,
    /// The body is waiting, and the timer is set to the end of this wait.
    waiting: bool,
    /// The body's own timer, when none is borrowed.
    timer: Option<Pin<Box<Sleep>>>,
}

impl StallDeadline {
    /// No read may wait longer than `timeout`.
    pub fn new(timeout: Duration) -> Self {
        Self {
            timeout,
            waiting: false,
            timer: None,
        }
    }

    /// The longest wait.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// A step was made (a frame read, bytes written): the wait is over.
    #[inline]
    pub fn stepped(&mut self) {
        self.waiting = false;
    }

    /// A step found nothing to do: Ready once the stream has waited `timeout` since its last step,
    /// else Pending with `cx` woken at the deadline. `borrowed` is a timer to use instead of
    /// the body's own (the same one, or none, on every call for one body).
    pub fn poll_expired(&mut self, cx: &mut Context<'_>, borrowed: Option<Pin<&mut Sleep>>) -> Poll<()> {
        let mut timer = match borrowed {
            Some(timer) => timer,
            None => self
                .timer
                .get_or_insert_with(|| Box::pin(tokio::time::sleep(self.timeout)))
                .as_mut(),
        };
        if !self.waiting {
            self.waiting = true;
            // Checked: a deadline past what the clock holds is as good as never.
            let now = Instant::now();
            timer
                .as_mut()
                .reset(now.checked_add(self.timeout).unwrap_or(now + FAR_FUTURE));
        }
        timer.poll(cx)
    }
}

/// Why a request body could not be sent upstream; it ends the upstream request, so the
/// upstream never gets a complete request.
#[derive(Debug, thiserror::Error)]
pub enum RequestBodyError {
    /// Reading the client's body failed.
    #[error("cannot read the request body: {0}")]
    Client(#[source] BoxError),
    /// The body is larger than the route's `max_body`.
    #[error("the request body is larger than the route's max_body of {limit} bytes")]
    TooLarge {
        /// The route's `max_body`.
        limit: u64,
    },
    /// Nothing of the body arrived for `client_body_timeout`.
    #[error("the client sent nothing of its request body for {0:?} (client_body_timeout)")]
    TimedOut(Duration),
}

impl RequestBodyError {
    /// The request-body error behind a failed upstream exchange, if that is why it failed.
    pub fn behind<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e RequestBodyError> {
        let mut source = Some(error);
        while let Some(cause) = source {
            if let Some(found) = cause.downcast_ref::<RequestBodyError>() {
                return Some(found);
            }
            source = cause.source();
        }
        None
    }
}

impl RequestBody {
    /// A client body to stream upstream, at most `limit` bytes. A chunked body under a
    /// limit has its first frame read here (if it comes within the `client_header_timeout`
    /// of `settings`), before the upstream is contacted, so that a body whose first read is
    /// already too large is refused with nothing sent upstream; beyond that the limit is
    /// enforced while streaming (and noted in `watch`), as is `client_body_timeout` between
    /// two reads. A body with a `Content-Length` over the limit never gets here (the
    /// handler answers 413 from the header).
    pub async fn streaming(
        body: impl ClientBody,
        limit: Option<u64>,
        settings: &ProxySettings,
        watch: Arc<BodyWatch>,
    ) -> Result<Self, BodyFault> {
        let mut body: BoxedClientBody = Box::pin(body.map_err(Into::into));
        let mut first = None;
        let mut remaining = limit;
        if let Some(limit) = limit
            && !body.is_end_stream()
            && body.size_hint().exact().is_none()
        {
            match tokio::time::timeout(settings.client_header_timeout, body.frame()).await {
                // A slow client: stream as it comes (the limit still holds).
                Err(_) | Ok(None) => {}
                Ok(Some(Err(_))) => return Err(BodyFault::Unreadable),
                Ok(Some(Ok(frame))) => {
                    let size = frame.data_ref().map_or(0, |d| d.len() as u64);
                    remaining = Some(limit.checked_sub(size).ok_or(BodyFault::TooLarge { limit })?);
                    first = Some(frame);
                }
            }
        }
        Ok(RequestBody::Streaming(Box::new(Streamed {
            first,
            rest: body,
            remaining,
            limit: limit.unwrap_or(u64::MAX),
            watch,
            deadline: StallDeadline::new(settings.client_body_timeout),
        })))
    }

    /// The watch on a streamed client body (`None` for a buffered one).
    pub fn watch(&self) -> Option<&Arc<BodyWatch>> {
        match self {
            RequestBody::Streaming(streamed) => Some(&streamed.watch),
            RequestBody::Buffered(_) => None,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = RequestBodyError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, RequestBodyError>>> {
        let streamed = match &mut *self {
            RequestBody::Buffered(chunk) => return Poll::Ready(chunk.take().map(|b| Ok(Frame::data(b)))),
            RequestBody::Streaming(streamed) => streamed,
        };
        if let Some(first) = streamed.first.take() {
            return Poll::Ready(Some(Ok(without_hop_by_hop(first))));
        }
        let polled = match streamed.rest.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => {
                streamed.watch.set_fault(BodyFault::Unreadable);
                return Poll::Ready(Some(Err(RequestBodyError::Client(e))));
            }
            Poll::Pending => {
                streamed.watch.waiting_for_client.store(true, Ordering::Relaxed);
                if streamed.deadline.poll_expired(cx, None).is_ready() {
                    streamed.watch.set_fault(BodyFault::TimedOut);
                    let waited = streamed.deadline.timeout();
                    return Poll::Ready(Some(Err(RequestBodyError::TimedOut(waited))));
                }
                return Poll::Pending;
            }
            polled => {
                streamed.deadline.stepped();
                streamed.watch.waiting_for_client.store(false, Ordering::Relaxed);
                polled
            }
        };
        if let (Poll::Ready(Some(Ok(frame))), Some(remaining)) = (&polled, &mut streamed.remaining)
            && let Some(data) = frame.data_ref()
        {
            match remaining.checked_sub(data.len() as u64) {
                Some(left) => *remaining = left,
                None => {
                    let limit = streamed.limit;
                    streamed.watch.set_fault(BodyFault::TooLarge { limit });
                    return Poll::Ready(Some(Err(RequestBodyError::TooLarge { limit })));
                }
            }
        }
        polled.map(|frame| frame.map(|frame| frame.map(without_hop_by_hop).map_err(RequestBodyError::Client)))
    }

    fn is_end_stream(&self) -> bool {
        match self {
            RequestBody::Streaming(streamed) => streamed.first.is_none() && streamed.rest.is_end_stream(),
            RequestBody::Buffered(chunk) => chunk.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            RequestBody::Streaming(streamed) => {
                let first = streamed
                    .first
                    .as_ref()
                    .and_then(Frame::data_ref)
                    .map_or(0, |d| d.len() as u64);
                let rest = streamed.rest.size_hint();
                let mut hint = SizeHint::new();
                hint.set_lower(rest.lower().saturating_add(first));
                if let Some(upper) = rest.upper() {
                    hint.set_upper(upper.saturating_add(first));
                }
                hint
            }
            RequestBody::Buffered(chunk) => SizeHint::with_exact(chunk.as_ref().map_or(0, |b| b.len() as u64)),
        }
    }
}

/// A trailers frame loses the fields a proxy must not forward (hop-by-hop, and those only
/// the proxy may assert), as the head did; a data frame is passed as it is.
#[inline]
fn without_hop_by_hop(frame: Frame<Bytes>) -> Frame<Bytes> {
    if !frame.is_trailers() {
        return frame;
    }
    match frame.into_trailers() {
        Ok(mut trailers) => {
            crate::headers::remove_hop_by_hop(&mut trailers, false);
            crate::headers::remove_proxy_only(&mut trailers);
            Frame::trailers(trailers)
        }
        Err(frame) => frame,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    const TIMEOUT: Duration = Duration::from_secs(60);

    /// Polls `deadline` as a body whose read found nothing would, until it expires.
    async fn expiry(deadline: &mut StallDeadline) {
        poll_fn(|cx| deadline.poll_expired(cx, None)).await
    }

    #[tokio::test(start_paused = true)]
    async fn a_stall_expires_the_timeout_after_the_wait_began() {
        let mut deadline = StallDeadline::new(TIMEOUT);
        let began = Instant::now();
        expiry(&mut deadline).await;
        assert_eq!(began.elapsed(), TIMEOUT);
    }

    #[tokio::test(start_paused = true)]
    async fn a_step_restarts_the_wait_and_steps_alone_never_arm_a_timer() {
        let mut deadline = StallDeadline::new(TIMEOUT);
        for _ in 0..3 {
            deadline.stepped();
        }
        assert!(deadline.timer.is_none(), "a timer armed with no wait");
        let waited = tokio::time::timeout(TIMEOUT / 2, expiry(&mut deadline)).await;
        assert!(waited.is_err(), "expired early");
        // A frame arrives after half the timeout: the next wait gets the whole timeout again.
        deadline.stepped();
        let began = Instant::now();
        expiry(&mut deadline).await;
        assert_eq!(began.elapsed(), TIMEOUT);
    }

    #[test]
    fn trailers_lose_hop_by_hop_and_proxy_only_fields() {
        let mut trailers = http::HeaderMap::new();
        for (name, value) in [
            ("x-checksum", "abc"),
            ("keep-alive", "timeout=5"),
            ("x-strangler-shadow", "1"),
            ("x-forwarded-host", "evil.example"),
        ] {
            trailers.insert(
                http::HeaderName::from_static(name),
                http::HeaderValue::from_static(value),
            );
        }
        let frame = without_hop_by_hop(Frame::trailers(trailers));
        let kept = frame.into_trailers().unwrap();
        assert_eq!(kept.len(), 1, "{kept:?}");
        assert_eq!(kept["x-checksum"], "abc");
        let data = without_hop_by_hop(Frame::data(Bytes::from_static(b"x-strangler-shadow: 1")));
        assert_eq!(data.into_data().unwrap(), Bytes::from_static(b"x-strangler-shadow: 1"));
    }
}
