//! The request body on its way to an upstream: streamed from the client under the route's
//! `max_body`, or buffered so that it can be sent twice (a fallback replays it to legacy, a
//! shadow copy goes to the new upstream).
//!
//! A failure of the client's body is noted in a shared [`BodyFault`] cell, so that the
//! proxy answers for the client's mistake (413, 400) instead of blaming the upstream.
//!
//! The client's body can be any [`ClientBody`]: hyper's `Incoming` when
//! the server hands a request over, an in-memory body in the service's tests. A streamed
//! body is boxed once, when it starts streaming; a request without a body (most GETs) is
//! never boxed.

use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;

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
    /// Where a failure of the body is noted, so that the handler answers for it (413, 400)
    /// instead of blaming the upstream.
    fault: Arc<OnceLock<BodyFault>>,
}

impl std::fmt::Debug for Streamed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Streamed")
            .field("first", &self.first)
            .field("remaining", &self.remaining)
            .field("limit", &self.limit)
            .field("fault", &self.fault)
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
    /// limit has its first frame read here (if it comes within `first_wait`), before the
    /// upstream is contacted, so that a body whose first read is already too large is
    /// refused with nothing sent upstream; beyond that the limit is enforced while streaming
    /// (and noted in `fault`). A body with a `Content-Length` over the limit never gets here
    /// (the handler answers 413 from the header).
    pub async fn streaming(
        body: impl ClientBody,
        limit: Option<u64>,
        first_wait: std::time::Duration,
        fault: Arc<OnceLock<BodyFault>>,
    ) -> Result<Self, BodyFault> {
        let mut body: BoxedClientBody = Box::pin(body.map_err(Into::into));
        let mut first = None;
        let mut remaining = limit;
        if let Some(limit) = limit
            && !body.is_end_stream()
            && body.size_hint().exact().is_none()
        {
            match tokio::time::timeout(first_wait, body.frame()).await {
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
            fault,
        })))
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
            return Poll::Ready(Some(Ok(first)));
        }
        let polled = match streamed.rest.as_mut().poll_frame(cx) {
            Poll::Ready(Some(Err(e))) => {
                let _ = streamed.fault.set(BodyFault::Unreadable);
                return Poll::Ready(Some(Err(RequestBodyError::Client(e))));
            }
            polled => polled,
        };
        if let (Poll::Ready(Some(Ok(frame))), Some(remaining)) = (&polled, &mut streamed.remaining)
            && let Some(data) = frame.data_ref()
        {
            match remaining.checked_sub(data.len() as u64) {
                Some(left) => *remaining = left,
                None => {
                    let limit = streamed.limit;
                    let _ = streamed.fault.set(BodyFault::TooLarge { limit });
                    return Poll::Ready(Some(Err(RequestBodyError::TooLarge { limit })));
                }
            }
        }
        polled.map(|frame| frame.map(|frame| frame.map_err(RequestBodyError::Client)))
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
