//! Upstream connection pools: one per upstream per proxy worker thread.
//!
//! Each worker owns its pools (see [`crate::server`]), so a request, its upstream
//! connection and that connection's driver task all live on one thread: checking a
//! connection out is an uncontended lock and a `Vec::pop`, with no connect future built
//! per request. Connections are HTTP/1.1 keep-alive (hyper's client connection), reused
//! most-recently-used first, dropped when the upstream closes them or when they have been
//! idle longer than `pool_idle_timeout`; beyond `pool_max_idle` idle ones per worker, a
//! connection given back is closed.
//!
//! A connection goes back to its pool only once the response body has been read to the
//! end; a response abandoned half-way, or an upgraded (101) connection, is never reused.
//! A request that a pooled connection refused before sending a byte (the upstream closed
//! it meanwhile) is retried on another connection: never a request that was sent.
//!
//! The caller's `request_timeout` bounds every step up to the response head: waiting for a
//! connection, connecting, sending, the head itself. A pooled connection keeps its own
//! timer for it (`ExchangeTimer`) rather than a new one per request.
//!
//! For an `https://` upstream, connections are TLS ([`ClientTls`]: SNI and verification
//! against the URL's host); `connect_timeout` bounds the TCP connect and the handshake
//! together. With `http2 = true` a pool keeps one multiplexed HTTP/2 connection instead of
//! a list: every request of the worker is a stream on it. The first request opens it on a
//! task of its own; requests that arrive meanwhile wait for that connect rather than open
//! one each, and share its failure. Once the upstream closes it (or it has been idle longer
//! than `pool_idle_timeout`) the next request opens a new one.
//!
//! `max_connections` bounds the HTTP/1.1 connections of one upstream over all its pools
//! ([`ConnectionLimit`]): every connection holds a permit. A request that finds no idle
//! connection in its worker's pool and no free permit closes an idle connection of another
//! worker's pool (freeing its permit), or waits — up to `connect_timeout` — for a
//! connection to be released; meanwhile connections given back are closed rather than kept
//! idle, so the waiters get their permits. A request that waited in vain fails with
//! [`SendError::Saturated`] (503).
//!
//! How a new connection is made is the pool's [`Dial`]: TCP (and TLS) to the upstream's
//! address, or, for the service's tests, an in-memory stream. It is asked once per new
//! connection, never per request.

use std::future::{Future, poll_fn};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::Poll;
use std::time::{Duration, Instant};

use http::uri::{Authority, Scheme};
use http::{Request, Response, Uri, header};
use hyper::body::Incoming;
use hyper::client::conn::{http1, http2};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, DuplexStream};
use tokio::net::TcpStream;
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::headers;
use crate::upstream::body::RequestBody;
use crate::upstream::tls::ClientTls;

/// Why an exchange with an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The TCP connection could not be made.
    #[error("connect: {0}")]
    Connect(#[source] io::Error),
    /// The TCP connection (and TLS handshake) was not made within `connect_timeout`.
    #[error("connect timed out")]
    ConnectTimeout,
    /// The TLS handshake failed (certificate not trusted, no common protocol …).
    #[error("TLS handshake: {0}")]
    Tls(#[source] io::Error),
    /// The HTTP handshake failed.
    #[error("handshake: {0}")]
    Handshake(#[source] hyper::Error),
    /// Sending the request or reading the response head failed.
    #[error("{0}")]
    Exchange(#[source] hyper::Error),
    /// The HTTP/2 connection this request waited for could not be opened.
    #[error(transparent)]
    Shared(Arc<SendError>),
    /// Every connection `max_connections` allows was busy for `connect_timeout`.
    #[error("all {0} connections allowed by max_connections stayed busy")]
    Saturated(usize),
    /// No response head within the time the caller allowed (`request_timeout`).
    #[error("no response within request_timeout")]
    TimedOut,
}

/// How a pool makes a new connection.
#[derive(Clone, Default)]
pub enum Dial {
    /// TCP to the upstream's `host:port`, then TLS for an `https://` upstream.
    #[default]
    Tcp,
    /// One end of an in-memory stream ([`tokio::io::duplex`]) per connection, whose other
    /// end the caller serves: an upstream without sockets, for tests. Always plain HTTP (no
    /// TLS); an error is a refused connection.
    Memory(Arc<dyn Fn() -> io::Result<DuplexStream> + Send + Sync>),
}

impl std::fmt::Debug for Dial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Dial::Tcp => "Tcp",
            Dial::Memory(_) => "Memory",
        })
    }
}

/// The `max_connections` of one upstream, shared by its pools.
#[derive(Debug)]
pub struct ConnectionLimit {
    max: usize,
    permits: Arc<Semaphore>,
    /// Requests waiting for a slot: connections given back meanwhile wake one of them.
    waiting: std::sync::atomic::AtomicUsize,
    released: Notify,
    /// The pools sharing the limit, to close an idle connection of another worker.
    pools: Mutex<Vec<std::sync::Weak<ConnectionPool>>>,
}

impl ConnectionLimit {
    /// A limit of `max` connections.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            permits: Arc::new(Semaphore::new(max)),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            released: Notify::new(),
            pools: Mutex::new(Vec::new()),
        })
    }

    fn has_waiters(&self) -> bool {
        self.waiting.load(std::sync::atomic::Ordering::Relaxed) > 0
    }

    /// Takes an idle connection from any pool under this limit (another worker's included:
    /// a connection can be used from any thread).
    fn take_idle(&self) -> Option<Idle> {
        let pools = self.pools.lock().unwrap_or_else(PoisonError::into_inner);
        pools
            .iter()
            .filter_map(std::sync::Weak::upgrade)
            .find_map(|pool| pool.pop())
    }

    /// A slot for one exchange: a free permit for a new connection, or an idle connection
    /// (of any worker) once one is given back, waiting up to `patience`.
    async fn acquire(&self, patience: Duration) -> Result<Slot, SendError> {
        struct Waiting<'a>(&'a std::sync::atomic::AtomicUsize);
        impl Drop for Waiting<'_> {
            fn drop(&mut self) {
                self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            }
        }
        let deadline = tokio::time::Instant::now() + patience;
        self.waiting.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let _waiting = Waiting(&self.waiting);
        loop {
            // Registered before looking, so that a connection given back meanwhile wakes us.
            let released = self.released.notified();
            tokio::pin!(released);
            released.as_mut().enable();
            if let Ok(permit) = self.permits.clone().try_acquire_owned() {
                return Ok(Slot::Permit(permit));
            }
            if let Some(idle) = self.take_idle() {
                return Ok(Slot::Idle(idle));
            }
            tokio::select! {
                permit = self.permits.clone().acquire_owned() => match permit {
                    Ok(permit) => return Ok(Slot::Permit(permit)),
                    Err(_) => return Err(SendError::Saturated(self.max)),
                },
                () = &mut released => {}
                () = tokio::time::sleep_until(deadline) => return Err(SendError::Saturated(self.max)),
            }
        }
    }
}

/// What a request under `max_connections` got: room for a new connection, or an idle one.
enum Slot {
    Permit(OwnedSemaphorePermit),
    Idle(Idle),
}

/// The pool of one upstream for one worker.
///
/// Aligned to two cache lines: the pools of one upstream are allocated one after the other
/// (at each reload), and every request writes its pool's reference count and idle-list
/// lock. Unaligned, a pool's end and the next worker's pool's start share a cache line,
/// which then moves between the cores on every request of either worker.
#[derive(Debug)]
#[repr(align(128))]
pub struct ConnectionPool {
    /// `host:port` to connect to.
    address: String,
    /// How: TCP, or in memory (tests).
    dial: Dial,
    connect_timeout: Duration,
    idle_timeout: Duration,
    /// Most idle connections kept; more are closed when given back.
    max_idle: usize,
    /// TLS for `https://` upstreams.
    tls: Option<Arc<ClientTls>>,
    /// Idle HTTP/1.1 connections.
    idle: Mutex<Vec<Idle>>,
    /// The multiplexed connection of an `http2 = true` upstream.
    h2: Option<Mutex<H2Slot>>,
    /// `max_connections` of the upstream, shared with its other pools.
    limit: Option<Arc<ConnectionLimit>>,
}

#[derive(Debug)]
struct Idle {
    sender: http1::SendRequest<RequestBody>,
    since: Instant,
    /// Its slot under `max_connections`, freed when the connection is dropped.
    permit: Option<OwnedSemaphorePermit>,
    /// Bounds each exchange on the connection (see [`ExchangeTimer`]).
    timer: ExchangeTimer,
}

/// The timer that bounds the exchanges of one pooled connection, kept with it: a fresh
/// tokio timer per request (registered, then cancelled) cost ~900 instructions per request
/// (callgrind), most of it the timer wheel. Moving a registered timer to a later deadline
/// is a compare-and-swap; tokio re-files it when the old deadline comes.
#[derive(Debug)]
struct ExchangeTimer(Pin<Box<tokio::time::Sleep>>);

impl ExchangeTimer {
    fn new() -> Self {
        // Armed only when an exchange sets a deadline.
        Self(Box::pin(tokio::time::sleep(Duration::ZERO)))
    }
}

/// The state of a pool's HTTP/2 connection.
#[derive(Debug)]
enum H2Slot {
    Empty,
    /// A task is connecting; it wakes the waiters when done.
    Connecting(Arc<Notify>),
    Ready {
        sender: http2::SendRequest<RequestBody>,
        last_used: Instant,
    },
    /// The last connect failed; requests that waited for it share the error, the next
    /// request tries again.
    Failed(Arc<SendError>),
}

/// A connection lent to one exchange; [`Lease::give_back`] returns it to the pool.
#[derive(Debug)]
pub struct Lease {
    /// An HTTP/1.1 connection and its pool; `None` for an HTTP/2 stream (its connection is
    /// shared, never lent).
    held: Option<Lent>,
}

/// An HTTP/1.1 connection out of its pool.
#[derive(Debug)]
struct Lent {
    sender: http1::SendRequest<RequestBody>,
    pool: Arc<ConnectionPool>,
    permit: Option<OwnedSemaphorePermit>,
    timer: ExchangeTimer,
}

impl Lease {
    /// The lent HTTP/1.1 connection's exchange timer, idle once the response head is in:
    /// the response body's read deadline borrows it rather than register a timer of its
    /// own ([`crate::upstream::body::StallDeadline`]). `None` for an HTTP/2 stream.
    pub fn timer(&mut self) -> Option<Pin<&mut tokio::time::Sleep>> {
        self.held.as_mut().map(|lent| lent.timer.0.as_mut())
    }

    /// Returns the connection to its pool (call once the response body is complete).
    pub fn give_back(self) {
        let Some(Lent {
            sender,
            pool,
            permit,
            timer,
        }) = self.held
        else {
            return;
        };
        if sender.is_closed() {
            return;
        }
        if let Ok(mut idle) = pool.idle.lock()
            && idle.len() < pool.max_idle
        {
            idle.push(Idle {
                sender,
                since: Instant::now(),
                permit,
                timer,
            });
        }
        // A request of any worker waiting for a slot under max_connections takes it.
        if let Some(limit) = &pool.limit
            && limit.has_waiters()
        {
            limit.released.notify_one();
        }
    }
}

/// `future`, failing with [`SendError::TimedOut`] past `deadline` if there is one.
async fn within<F: Future>(deadline: Option<tokio::time::Instant>, future: F) -> Result<F::Output, SendError> {
    match deadline {
        None => Ok(future.await),
        Some(deadline) => tokio::time::timeout_at(deadline, future)
            .await
            .map_err(|_| SendError::TimedOut),
    }
}

/// A connected socket, plain or TLS, or an in-memory stream ([`Dial::Memory`]).
enum Stream {
    Plain(TcpStream),
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
    Memory(DuplexStream),
}

impl ConnectionPool {
    /// An empty pool for `address` (`host:port`), connecting as `dial` says; TLS when
    /// `tls` is set; one multiplexed HTTP/2 connection when `http2`.
    #[expect(clippy::too_many_arguments, reason = "one per setting of the pool")]
    pub fn new(
        address: String,
        dial: Dial,
        connect_timeout: Duration,
        idle_timeout: Duration,
        max_idle: usize,
        tls: Option<Arc<ClientTls>>,
        http2: bool,
        limit: Option<Arc<ConnectionLimit>>,
    ) -> Arc<Self> {
        let pool = Arc::new(Self {
            address,
            dial,
            connect_timeout,
            idle_timeout,
            max_idle,
            tls,
            idle: Mutex::new(Vec::new()),
            h2: http2.then(|| Mutex::new(H2Slot::Empty)),
            limit,
        });
        if let Some(limit) = &pool.limit {
            let mut pools = limit.pools.lock().unwrap_or_else(PoisonError::into_inner);
            pools.retain(|p| p.strong_count() > 0);
            pools.push(Arc::downgrade(&pool));
        }
        pool
    }

    /// Sends `request` (origin-form URI) on a pooled connection, or a new one.
    pub async fn send(
        self: &Arc<Self>,
        request: Request<RequestBody>,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        self.send_with_retry(request, || false, None).await
    }

    /// Like [`send`](Self::send); when a new connection is refused (nothing was sent, so any
    /// method may be tried again) and `may_retry` grants it, connects once more after a
    /// short pause. `may_retry` is where the caller's retry budget is spent. With a
    /// `timeout`, no response head within it from now fails with [`SendError::TimedOut`].
    #[expect(clippy::manual_async_fn, reason = "an async fn would hold its request twice")]
    pub fn send_with_retry(
        self: &Arc<Self>,
        mut request: Request<RequestBody>,
        may_retry: impl Fn() -> bool,
        timeout: Option<Duration>,
    ) -> impl Future<Output = Result<(Response<Incoming>, Lease), SendError>> {
        // An async block, not an async fn: an async fn holds its arguments twice in its
        // state (as captured, and as moved into the body), and copies the request between.
        async move {
            let deadline = timeout.map(|timeout| tokio::time::Instant::now() + timeout);
            if let Some(slot) = &self.h2 {
                // Boxed, like every path but the pooled HTTP/1.1 one: this future is moved for every
                // request, and an awaited future is stored inline in it.
                let response = Box::pin(within(deadline, self.send_h2(slot, request, may_retry))).await??;
                return Ok((response, Lease { held: None }));
            }
            // Connections still finishing their last exchange: kept, not waited for.
            let mut busy = Vec::new();
            let mut retried = false;
            let exchange = loop {
                let next = match (self.pop(), &self.limit) {
                    (Some(idle), _) => Ok(idle),
                    (None, None) => Err(None),
                    (None, Some(limit)) => match limit.permits.clone().try_acquire_owned() {
                        Ok(permit) => Err(Some(permit)),
                        Err(_) => match Box::pin(within(deadline, limit.acquire(self.connect_timeout))).await {
                            Ok(Ok(Slot::Idle(idle))) => Ok(idle),
                            Ok(Ok(Slot::Permit(permit))) => Err(Some(permit)),
                            Ok(Err(e)) | Err(e) => break Err(e),
                        },
                    },
                };
                let mut idle = match next {
                    Ok(idle) => idle,
                    Err(permit) => {
                        let mut sender = match Box::pin(within(deadline, self.connect_h1())).await {
                            Ok(Ok(sender)) => sender,
                            Ok(Err(e)) if !retried && is_refused(&e) && may_retry() => {
                                retried = true;
                                tracing::debug!(upstream = %self.address, error = %e, "connect refused; retrying once");
                                if let Err(e) = Box::pin(within(deadline, tokio::time::sleep(retry_pause()))).await {
                                    break Err(e);
                                }
                                continue;
                            }
                            Ok(Err(e)) | Err(e) => break Err(e),
                        };
                        let response = Box::pin(within(deadline, sender.send_request(request))).await;
                        break match response {
                            Ok(Ok(response)) => Ok((response, sender, permit, ExchangeTimer::new())),
                            Ok(Err(e)) => Err(SendError::Exchange(e)),
                            Err(e) => Err(e),
                        };
                    }
                };
                if idle.sender.is_closed() || idle.since.elapsed() >= self.idle_timeout {
                    continue;
                }
                match poll_fn(|cx| Poll::Ready(idle.sender.poll_ready(cx))).await {
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(_)) => continue,
                    Poll::Pending => {
                        busy.push(idle);
                        continue;
                    }
                }
                let timer = &mut idle.timer.0;
                if let Some(deadline) = deadline {
                    timer.as_mut().reset(deadline);
                }
                let send = idle.sender.try_send_request(request);
                tokio::pin!(send);
                let sent = poll_fn(|cx| match send.as_mut().poll(cx) {
                    Poll::Ready(sent) => Poll::Ready(Some(sent)),
                    Poll::Pending if deadline.is_some() && timer.as_mut().poll(cx).is_ready() => Poll::Ready(None),
                    Poll::Pending => Poll::Pending,
                })
                .await;
                match sent {
                    Some(Ok(response)) => break Ok((response, idle.sender, idle.permit, idle.timer)),
                    Some(Err(mut refused)) => match refused.take_message() {
                        // Never sent: safe to try another connection.
                        Some(unsent) => request = unsent,
                        None => break Err(SendError::Exchange(refused.into_error())),
                    },
                    None => break Err(SendError::TimedOut),
                }
            };
            if !busy.is_empty()
                && let Ok(mut idle) = self.idle.lock()
            {
                idle.extend(busy);
            }
            let (response, sender, permit, timer) = exchange?;
            Ok((
                response,
                Lease {
                    held: Some(Lent {
                        sender,
                        pool: self.clone(),
                        permit,
                        timer,
                    }),
                },
            ))
        }
    }

    /// Closes the connections that have been idle longer than `pool_idle_timeout` or that
    /// the upstream closed. Called periodically, so that an upstream that gets no more
    /// traffic does not keep connections open forever.
    pub fn reap(&self) -> usize {
        let mut closed = 0;
        if let Some(slot) = &self.h2 {
            let mut state = slot.lock().unwrap_or_else(PoisonError::into_inner);
            if let H2Slot::Ready { sender, last_used } = &*state
                && (sender.is_closed() || last_used.elapsed() >= self.idle_timeout)
            {
                // Streams still open keep their clones; the connection closes after them.
                *state = H2Slot::Empty;
                closed += 1;
            }
        }
        let Ok(mut idle) = self.idle.lock() else { return closed };
        let before = idle.len();
        idle.retain(|c| !c.sender.is_closed() && c.since.elapsed() < self.idle_timeout);
        closed + before - idle.len()
    }

    fn pop(&self) -> Option<Idle> {
        self.idle.lock().ok().and_then(|mut idle| idle.pop())
    }

    /// Connects to the upstream, with TLS for `https://`, within `connect_timeout`.
    async fn open(&self) -> Result<Stream, SendError> {
        if let Dial::Memory(connect) = &self.dial {
            return connect().map(Stream::Memory).map_err(SendError::Connect);
        }
        let connect = async {
            let stream = TcpStream::connect(&*self.address).await.map_err(SendError::Connect)?;
            if let Err(e) = stream.set_nodelay(true) {
                tracing::debug!(error = %e, "cannot set TCP_NODELAY upstream");
            }
            match &self.tls {
                None => Ok(Stream::Plain(stream)),
                Some(tls) => tls
                    .connect(stream)
                    .await
                    .map(|stream| Stream::Tls(Box::new(stream)))
                    .map_err(SendError::Tls),
            }
        };
        match tokio::time::timeout(self.connect_timeout, connect).await {
            Ok(result) => result,
            Err(_) => Err(SendError::ConnectTimeout),
        }
    }

    async fn connect_h1(&self) -> Result<http1::SendRequest<RequestBody>, SendError> {
        match self.open().await? {
            Stream::Plain(stream) => self.handshake_h1(stream).await,
            Stream::Tls(stream) => self.handshake_h1(stream).await,
            Stream::Memory(stream) => self.handshake_h1(stream).await,
        }
    }

    async fn handshake_h1<I>(&self, io: I) -> Result<http1::SendRequest<RequestBody>, SendError>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        // Flat writes, like the server side (see `server`): head and small body in one copy.
        let (sender, connection) = http1::Builder::new()
            .writev(false)
            .handshake(TokioIo::new(io))
            .await
            .map_err(SendError::Handshake)?;
        let address = self.address.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!(upstream = %address, error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }

    /// Sends a request as a stream of the pool's HTTP/2 connection. A request the
    /// connection refused before sending it (it was closing) is retried once on a new one.
    async fn send_h2(
        self: &Arc<Self>,
        slot: &Mutex<H2Slot>,
        mut request: Request<RequestBody>,
        may_retry: impl Fn() -> bool,
    ) -> Result<Response<Incoming>, SendError> {
        self.to_h2_form(&mut request);
        let mut retried = false;
        let mut reconnected = false;
        loop {
            let mut sender = match self.h2_sender(slot).await {
                Ok(sender) => sender,
                // A refused connect sent nothing: one more, as for HTTP/1.1, if the budget allows.
                Err(e) if !reconnected && is_refused(&e) && may_retry() => {
                    reconnected = true;
                    tracing::debug!(upstream = %self.address, error = %e, "connect refused; retrying once");
                    tokio::time::sleep(retry_pause()).await;
                    continue;
                }
                Err(e) => return Err(e),
            };
            match sender.try_send_request(request).await {
                Ok(response) => return Ok(response),
                Err(mut refused) => match refused.take_message() {
                    Some(unsent) if !retried => {
                        retried = true;
                        request = unsent;
                    }
                    _ => return Err(SendError::Exchange(refused.into_error())),
                },
            }
        }
    }

    /// HTTP/2 requests carry scheme and authority as pseudo-headers: the URI becomes
    /// absolute, with the `Host` the upstream would have got as its authority, and
    /// connection-specific headers go (RFC 9113 §8.2.2, §8.3.1).
    fn to_h2_form(&self, request: &mut Request<RequestBody>) {
        let authority = request
            .headers_mut()
            .remove(header::HOST)
            .and_then(|host| Authority::try_from(host.as_bytes()).ok())
            .or_else(|| Authority::try_from(self.address.as_str()).ok());
        let mut parts = std::mem::take(request.uri_mut()).into_parts();
        parts.scheme = Some(if self.tls.is_some() {
            Scheme::HTTPS
        } else {
            Scheme::HTTP
        });
        parts.authority = authority;
        if parts.path_and_query.is_none() {
            parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
        }
        if let Ok(uri) = Uri::from_parts(parts) {
            *request.uri_mut() = uri;
        }
        *request.version_mut() = http::Version::HTTP_2;
        headers::remove_connection_specific(request.headers_mut());
    }

    /// The pool's HTTP/2 connection: the open one, or the one being opened, or a new one.
    async fn h2_sender(self: &Arc<Self>, slot: &Mutex<H2Slot>) -> Result<http2::SendRequest<RequestBody>, SendError> {
        let mut waited = false;
        loop {
            let notify = {
                let mut state = slot.lock().unwrap_or_else(PoisonError::into_inner);
                match &mut *state {
                    H2Slot::Ready { sender, last_used }
                        if !sender.is_closed() && last_used.elapsed() < self.idle_timeout =>
                    {
                        *last_used = Instant::now();
                        return Ok(sender.clone());
                    }
                    H2Slot::Connecting(notify) => notify.clone(),
                    H2Slot::Failed(error) if waited => return Err(SendError::Shared(error.clone())),
                    _ => {
                        let notify = Arc::new(Notify::new());
                        *state = H2Slot::Connecting(notify.clone());
                        self.spawn_h2_connect(notify.clone());
                        notify
                    }
                }
            };
            // The connect task runs on this thread (the pool's worker) and so cannot finish
            // before this wait is registered; elsewhere `notify_waiters` would still reach a
            // waiter created before it, and `Connecting` is re-checked on every pass.
            let notified = notify.notified();
            let still_connecting = matches!(
                &*slot.lock().unwrap_or_else(PoisonError::into_inner),
                H2Slot::Connecting(current) if Arc::ptr_eq(current, &notify)
            );
            if still_connecting {
                notified.await;
            }
            waited = true;
        }
    }

    /// Opens the HTTP/2 connection on a task of its own, so that a request that gives up
    /// waiting (client gone, timeout) does not leave the slot connecting forever.
    fn spawn_h2_connect(self: &Arc<Self>, notify: Arc<Notify>) {
        let pool = self.clone();
        tokio::spawn(async move {
            let outcome = pool.connect_h2().await;
            if let Some(slot) = &pool.h2 {
                let mut state = slot.lock().unwrap_or_else(PoisonError::into_inner);
                *state = match outcome {
                    Ok(sender) => H2Slot::Ready {
                        sender,
                        last_used: Instant::now(),
                    },
                    Err(error) => H2Slot::Failed(Arc::new(error)),
                };
            }
            notify.notify_waiters();
        });
    }

    async fn connect_h2(&self) -> Result<http2::SendRequest<RequestBody>, SendError> {
        match self.open().await? {
            Stream::Plain(stream) => self.handshake_h2(stream).await,
            Stream::Tls(stream) => self.handshake_h2(stream).await,
            Stream::Memory(stream) => self.handshake_h2(stream).await,
        }
    }

    async fn handshake_h2<I>(&self, io: I) -> Result<http2::SendRequest<RequestBody>, SendError>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = http2::Builder::new(TokioExecutor::new())
            .timer(TokioTimer::new())
            .handshake(TokioIo::new(io))
            .await
            .map_err(SendError::Handshake)?;
        let address = self.address.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(upstream = %address, error = %e, "upstream HTTP/2 connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// Whether a failed connect was refused (nothing sent; not a timeout).
fn is_refused(error: &SendError) -> bool {
    match error {
        SendError::Connect(e) => e.kind() != io::ErrorKind::TimedOut,
        SendError::Shared(inner) => is_refused(inner),
        _ => false,
    }
}

/// 10–30 ms, jittered so that retries of many requests do not arrive together.
fn retry_pause() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_millis(10 + u64::from(nanos % 20))
}
