//! Accept loops for the public and admin listeners, and graceful draining.
//!
//! An accept error (EMFILE, ECONNABORTED …) is logged and backed off, never returned:
//! one bad moment must not end the server. Each connection is served by hyper's HTTP/1.1
//! server, read through a [`FramingCheck`] whose head clock bounds the wait for each
//! request head (`client_header_timeout`: slowloris) and between requests
//! (`client_idle_timeout`), with a cap on the request head size (431 beyond it), or by
//! its HTTP/2 server with the same cap on header lists, a cap on concurrent streams,
//! keep-alive PINGs and the same clock ([`conn::h2_watch`]: no request yet, a header
//! block left open, idle; GOAWAY, then closed); the settings are read from the snapshot
//! in force when the connection is accepted (a reload applies to new connections).
//!
//! Which protocol: on a TLS listener the handshake (bounded by the header timeout) decides,
//! by ALPN (`h2` or `http/1.1`). On a plain listener, a client that opens with the HTTP/2
//! connection preface gets h2c (prior knowledge); anyone else HTTP/1.1, on the same port.
//! The preface is peeked from the socket, not read, so an HTTP/1.1 connection is handed to
//! hyper untouched; a client that sends nothing within the header timeout is closed.
//!
//! Shutdown stops accepting, then [`drain`] tells the accept loop's [`Connections`] to
//! finish: HTTP/1.1 connections complete their request and close, HTTP/2 connections send
//! GOAWAY and complete their open streams (one with none open whose client does not
//! acknowledge the GOAWAY within [`conn::head_clock::CLOSING_GRACE`] is dropped then);
//! after the drain timeout the rest are dropped.
//!
//! The public listener is served thread-per-core, the way nginx runs one event loop per
//! worker process: each worker thread runs a single-threaded tokio runtime that accepts
//! from its own handle on the shared listening socket and drives both the client
//! connection and, through its own pooled clients, the upstream connections its requests
//! use. A request never hops between threads, so there are no cross-thread wake-ups on the
//! hot path; the shared state is only the snapshot (`ArcSwap`) and the metrics. A connection
//! may change threads once, right after it is accepted: [`balance`] hands it to the worker
//! with the fewest open connections.

pub mod affinity;
pub mod balance;
pub mod conn;
pub mod tls;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use std::pin::Pin;
use std::task::{Context, Poll};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{OwnedSemaphorePermit, watch};

use crate::server::conn::guard::FramingCheck;
use crate::server::conn::h2_send::{self, StreamWatchExecutor};
use crate::server::conn::h2_watch::{FrameWatch, H2Clock, HeaderBlocks};
use crate::server::conn::head_clock::{Answered, Exchanges, HeadClock};
use crate::server::conn::send_deadline::SendDeadline;
use crate::server::tls::ServerTls;
use crate::tls::ALPN_H2;
#[cfg(doc)]
use balance::Balancer;
use balance::{Kept, Seat};

/// How many tasks a worker polls before it asks the kernel for new I/O events (tokio's
/// `event_interval`; its default is 61). A proxy's tasks poll briefly and are mostly
/// woken by I/O, so under load the default makes a worker call `epoll_wait` every few
/// dozen polls and push newly woken connections between the steps of requests already
/// under way. At 300 a worker finishes the work it has before taking on new events
/// (nginx's order), and still picks them up within a fraction of a millisecond; when
/// its queue empties it polls at once, so light load sees no change. Measured with wrk
/// -c100 on two cores, against 61, in ten alternating pairs: req/s +1.2 %, p99 −11 %,
/// system CPU per request −0.2 µs.
const WORKER_EVENT_INTERVAL: u32 = 300;

/// A worker thread could not be started.
#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    /// The listening socket could not be shared with the worker.
    #[error("cannot share the listening socket with worker {index}: {source}")]
    Listener {
        /// The worker.
        index: usize,
        /// The cause.
        source: std::io::Error,
    },
    /// The thread or its runtime could not be created.
    #[error("cannot start worker {index}: {source}")]
    Spawn {
        /// The worker.
        index: usize,
        /// The cause.
        source: std::io::Error,
    },
}

/// Starts a worker thread per seat of `layout` (see [`Balancer::per_worker`]) that serves
/// `listener` (over TLS when `tls` is set) until `shutdown` turns true, then drains its
/// connections for up to `drain_timeout()`. Connections are spread evenly over the workers
/// ([`balance`]); each worker pins itself to its CPU when the layout's placement gives it
/// one ([`affinity`]). Each worker serves requests with its own service, which `make_service`
/// makes on the worker's thread: what the service clones per request is then that
/// worker's alone (an `Arc` shared by the workers would have its count written from both
/// cores on every request). Returns one receiver per worker that completes (with whether
/// draining finished in time) when the worker has stopped.
pub fn spawn_workers<M, S, F, B>(
    listener: std::net::TcpListener,
    WorkerLayout { seats, placement }: WorkerLayout,
    settings: impl Fn() -> ConnectionSettings + Clone + Send + 'static,
    drain_timeout: impl Fn() -> Duration + Clone + Send + 'static,
    guards: ListenerGuards,
    make_service: M,
    shutdown: watch::Receiver<bool>,
) -> Result<Vec<tokio::sync::oneshot::Receiver<bool>>, WorkerError>
where
    M: Fn() -> S + Clone + Send + 'static,
    S: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut done = Vec::with_capacity(seats.len());
    for seat in seats {
        let index = seat.worker();
        let listener = listener
            .try_clone()
            .map_err(|source| WorkerError::Listener { index, source })?;
        let blocking_placement = placement.clone();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .event_interval(WORKER_EVENT_INTERVAL)
            // The runtime's blocking threads (DNS lookups): not pinned to the worker's CPU.
            .thread_name(format!("strangler-blocking-{index}"))
            .on_thread_start(move || blocking_placement.release_current_thread())
            .build()
            .map_err(|source| WorkerError::Spawn { index, source })?;
        let (finished, finished_rx) = tokio::sync::oneshot::channel();
        let (placement, settings, drain_timeout, tls, limit, make_service, shutdown) = (
            placement.clone(),
            settings.clone(),
            drain_timeout.clone(),
            guards.tls.clone(),
            guards.limit.clone(),
            make_service.clone(),
            shutdown.clone(),
        );
        std::thread::Builder::new()
            .name(format!("strangler-worker-{index}"))
            .spawn(move || {
                crate::worker::set_worker_index(index);
                placement.pin_current_worker(index);
                let service = make_service();
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(e) => {
                            tracing::error!(worker = index, error = %e, "worker cannot use the listener");
                            let _ = finished.send(true);
                            return;
                        }
                    };
                    let connections =
                        accept_loop(listener, "proxy", settings, tls, limit, Some(seat), service, shutdown).await;
                    let timeout = drain_timeout();
                    let drained = drain(connections, timeout).await;
                    if !drained {
                        tracing::warn!(
                            worker = index,
                            ?timeout,
                            "drain timeout passed; closing remaining connections"
                        );
                    }
                    let _ = finished.send(drained);
                });
            })
            .map_err(|source| WorkerError::Spawn { index, source })?;
        done.push(finished_rx);
    }
    Ok(done)
}

/// Starts the thread that runs shadow mirrors: a single-threaded runtime at the lowest
/// CPU priority, so that under load the kernel serves client requests first and mirrors
/// only get spare cycles (then queue, and the per-route cap drops the excess). It uses
/// its own upstream pools (index `workers`). Returns its handle; the thread ends when
/// `shutdown` turns true.
pub fn spawn_mirror_runtime(
    workers: usize,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<tokio::runtime::Handle> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let handle = runtime.handle().clone();
    std::thread::Builder::new()
        .name("strangler-shadow".to_owned())
        .spawn(move || {
            crate::worker::set_worker_index(workers.max(1));
            if let Err(e) = thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min) {
                tracing::warn!(error = ?e, "cannot lower the shadow thread's priority; mirrors compete with clients");
            }
            runtime.block_on(async move {
                let _ = shutdown.wait_for(|stop| *stop).await;
            });
        })?;
    Ok(handle)
}

/// Per-connection HTTP settings.
#[derive(Debug, Clone)]
pub struct ConnectionSettings {
    /// Time allowed for a request head to arrive (and, before it, the TLS handshake or the
    /// first bytes of the connection).
    pub header_read_timeout: Duration,
    /// Largest request head; hyper answers 431 beyond it (HTTP/2: largest header list).
    pub max_header_bytes: usize,
    /// How long a connection may stay open with no request in progress, once it has sent
    /// one (`client_idle_timeout`).
    pub idle_timeout: Duration,
    /// Streams one HTTP/2 connection may have open at once.
    pub http2_max_concurrent_streams: u32,
    /// `send_timeout`, and where its expiries are counted ([`conn::send_deadline`]).
    pub send_timeout: (Duration, prometheus::IntCounter),
}

/// The proxy workers to start: one per seat on the balancer, each on the CPU its
/// placement gives it (if any).
#[derive(Debug)]
pub struct WorkerLayout {
    /// One per worker, in worker order ([`Balancer::per_worker`]).
    pub seats: Vec<Seat>,
    /// Which CPU each worker pins itself to ([`affinity`]).
    pub placement: affinity::Placement,
}

/// What stands between a public listener and its connections: TLS, and the connection limit.
#[derive(Debug, Clone, Default)]
pub struct ListenerGuards {
    /// Terminate TLS (`[proxy.tls]`).
    pub tls: Option<Arc<ServerTls>>,
    /// `[proxy] max_connections`.
    pub limit: Option<Arc<ClientConnectionLimit>>,
}

/// `[proxy] max_connections`: client connections open at once, over every worker.
#[derive(Debug)]
pub struct ClientConnectionLimit {
    max: usize,
    permits: Arc<tokio::sync::Semaphore>,
}

impl ClientConnectionLimit {
    /// A limit of `max` open connections.
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Self {
            max,
            permits: Arc::new(tokio::sync::Semaphore::new(max)),
        })
    }
}

/// The connections of one accept loop that are still open: how they are told to shut down
/// gracefully, and how draining knows they are done. Each connection holds a receiver of
/// `signal` to its end. It is per accept loop (so per worker thread): the connections
/// polling it never contend across threads.
#[derive(Debug)]
pub struct Connections {
    signal: watch::Sender<()>,
}

impl Connections {
    fn new() -> Self {
        Self {
            signal: watch::Sender::new(()),
        }
    }
}

/// Serves `listener` (over TLS when `tls` is set) until `shutdown` turns true, then
/// returns the connections still open so the caller can drain them. With a `seat`, this is
/// one of several workers on the listener: accepted connections are spread over the
/// workers, and the ones handed over to this worker are served too.
#[expect(clippy::too_many_arguments, reason = "one call site per listener kind, all named")]
pub async fn accept_loop<S, F, B>(
    listener: TcpListener,
    name: &'static str,
    settings: impl Fn() -> ConnectionSettings,
    tls: Option<Arc<ServerTls>>,
    limit: Option<Arc<ClientConnectionLimit>>,
    mut seat: Option<Seat>,
    service: S,
    mut shutdown: watch::Receiver<bool>,
) -> Connections
where
    S: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let service = Arc::new(service);
    let connections = Connections::new();
    // Whether accepting is paused at the connection limit (and was logged as such).
    let mut paused = false;
    loop {
        let next = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break,
            // Handed-over connections hold their permit already, and are taken even at the
            // limit (the accept below may be waiting for a permit; dropping it releases one).
            Some((kept, peer)) = handed_over(&mut seat) => Arrival::HandedOver(kept, peer),
            accepted = accept_within(&listener, name, limit.as_deref(), &mut paused) => match accepted {
                Some((accepted, permit)) => Arrival::Accepted(accepted, permit),
                None => break,
            },
        };
        let (stream, peer, permit, open) = match next {
            Arrival::HandedOver(kept, peer) => (kept.stream, peer, kept.permit, Some(kept.open)),
            Arrival::Accepted(Ok((stream, peer)), permit) => {
                if let Err(e) = stream.set_nodelay(true) {
                    tracing::debug!(error = %e, "cannot set TCP_NODELAY");
                }
                match &seat {
                    None => (stream, peer, permit, None),
                    Some(seat) => match seat.place(stream, peer, permit) {
                        Some(kept) => (kept.stream, peer, kept.permit, Some(kept.open)),
                        // Handed over to another worker (or lost on the way).
                        None => continue,
                    },
                }
            }
            Arrival::Accepted(Err(e), _) => {
                tracing::warn!(listener = name, error = %e, "accept failed; backing off");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let connection = Connection {
            peer,
            settings: settings(),
            service: service.clone(),
            shutdown: connections.signal.subscribe(),
        };
        let tls = tls.clone();
        tokio::spawn(async move {
            let _counted = (permit, open);
            let served = match tls {
                Some(tls) => connection.serve_tls(stream, &tls).await,
                None => connection.serve_plain(stream).await,
            };
            if let Err(e) = served {
                tracing::debug!(listener = name, %peer, error = %e, "connection ended with an error");
            }
        });
    }
    tracing::debug!(listener = name, "stopped accepting");
    connections
}

/// How the accept loop got its next connection.
enum Arrival {
    /// From the listener, with its place under the connection limit.
    Accepted(std::io::Result<(TcpStream, SocketAddr)>, Option<OwnedSemaphorePermit>),
    /// From another worker, which accepted it.
    HandedOver(Kept, SocketAddr),
}

/// Accepts the next connection from `listener` once `limit` (if any) has room for it. At
/// the limit, accepting pauses (new connections wait in the kernel's queue) until a
/// connection closes (`paused` remembers that the pause was logged). `None` if the limit's
/// semaphore is closed.
async fn accept_within(
    listener: &TcpListener,
    name: &'static str,
    limit: Option<&ClientConnectionLimit>,
    paused: &mut bool,
) -> Option<(std::io::Result<(TcpStream, SocketAddr)>, Option<OwnedSemaphorePermit>)> {
    let permit = match limit {
        None => None,
        Some(limit) => Some(match limit.permits.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                // Once per pause, not again each time a handed-over connection interrupts it.
                if !std::mem::replace(paused, true) {
                    tracing::warn!(
                        listener = name,
                        max_connections = limit.max,
                        "connection limit reached: accepting paused until a connection closes"
                    );
                }
                limit.permits.clone().acquire_owned().await.ok()?
            }
        }),
    };
    *paused = false;
    Some((listener.accept().await, permit))
}

/// The next connection handed over to this worker; never, without a seat.
async fn handed_over(seat: &mut Option<Seat>) -> Option<(Kept, SocketAddr)> {
    match seat {
        Some(seat) => seat.handed_over().await,
        None => std::future::pending().await,
    }
}

/// Tells the connections to finish (HTTP/1.1: after the request in flight; HTTP/2: GOAWAY,
/// then the open streams) and waits for them, up to `timeout`. Returns whether all did.
pub async fn drain(connections: Connections, timeout: Duration) -> bool {
    connections.signal.send_replace(());
    tokio::time::timeout(timeout, connections.signal.closed()).await.is_ok()
}

/// The first bytes of an HTTP/2 connection (RFC 9113 §3.4).
const H2_PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// One accepted connection and what serving it needs.
struct Connection<S> {
    peer: SocketAddr,
    settings: ConnectionSettings,
    service: Arc<S>,
    /// Held until the connection ends (it counts as open); changes when it must shut down.
    shutdown: watch::Receiver<()>,
}

/// Runs a hyper connection to its end, starting its graceful shutdown when [`drain`]
/// signals (or its accept loop's [`Connections`] is dropped).
macro_rules! serve_gracefully {
    ($connection:expr, $shutdown:expr) => {{
        let connection = $connection;
        tokio::pin!(connection);
        let mut shutdown = $shutdown;
        tokio::select! {
            served = connection.as_mut() => served,
            () = async { drop(shutdown.changed().await) } => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        }
    }};
}

impl<S, F, B> Connection<S>
where
    S: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    /// TLS handshake within the header timeout, then HTTP/2 or HTTP/1.1 as ALPN chose.
    async fn serve_tls(self, stream: TcpStream, tls: &ServerTls) -> Result<(), hyper::Error> {
        let accept = tls.acceptor().accept(stream);
        let stream = match tokio::time::timeout(self.settings.header_read_timeout, accept).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(peer = %self.peer, error = %e, "TLS handshake failed");
                return Ok(());
            }
            Err(_) => {
                tracing::debug!(peer = %self.peer, "TLS handshake timed out");
                return Ok(());
            }
        };
        let h2 = stream.get_ref().1.alpn_protocol() == Some(ALPN_H2);
        self.serve(stream, h2).await
    }

    /// h2c for a client that opens with the HTTP/2 preface, HTTP/1.1 for anyone else.
    async fn serve_plain(self, stream: TcpStream) -> Result<(), hyper::Error> {
        let mut first = [0u8; H2_PREFACE.len()];
        let peeked = match tokio::time::timeout(self.settings.header_read_timeout, stream.peek(&mut first)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Ok(()),
            Ok(Ok(n)) => n,
            Err(_) => {
                tracing::debug!(peer = %self.peer, "no request within the header timeout; closing");
                return Ok(());
            }
        };
        if first[..peeked] != H2_PREFACE[..peeked] {
            return self.serve(stream, false).await;
        }
        if peeked == H2_PREFACE.len() {
            return self.serve(stream, true).await;
        }
        // A prefix of the preface so far (`P…`, as in `POST` too): read until it is told
        // apart, then replay what was read.
        let mut read = Vec::with_capacity(H2_PREFACE.len());
        let sniff = async {
            let mut chunk = [0u8; H2_PREFACE.len()];
            let mut stream = stream;
            loop {
                let n = stream.read(&mut chunk[..H2_PREFACE.len() - read.len()]).await?;
                read.extend_from_slice(&chunk[..n]);
                let h2 = read[..] == H2_PREFACE[..read.len()];
                if n == 0 || !h2 || read.len() == H2_PREFACE.len() {
                    return Ok::<_, std::io::Error>((stream, h2 && n > 0));
                }
            }
        };
        match tokio::time::timeout(self.settings.header_read_timeout, sniff).await {
            Ok(Ok((stream, h2))) => self.serve(Replay { read, at: 0, stream }, h2).await,
            Ok(Err(_)) => Ok(()),
            Err(_) => {
                tracing::debug!(peer = %self.peer, "no request within the header timeout; closing");
                Ok(())
            }
        }
    }

    /// Serves HTTP/2 or HTTP/1.1 (with upgrades) on `io` until it closes.
    async fn serve<I>(self, io: I, h2: bool) -> Result<(), hyper::Error>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Connection {
            peer,
            settings,
            service,
            shutdown,
        } = self;
        let (send_timeout, send_timeouts) = settings.send_timeout.clone();
        let io = SendDeadline::new(io, send_timeout, peer, send_timeouts);
        if h2 {
            return serve_h2(io, peer, settings, service, shutdown).await;
        }
        // Requests are counted begun and answered, so that the head clock knows when
        // the connection is idle.
        let exchanges = Arc::new(Exchanges::default());
        let clock =
            HeadClock::new(settings.header_read_timeout, exchanges.clone()).with_idle_timeout(settings.idle_timeout);
        let hyper_service = service_fn(move |request| {
            let in_flight = exchanges.begin();
            let response = Box::pin(service(request, peer));
            async move { Ok::<_, Infallible>(Answered::wrap(response.await, in_flight)) }
        });
        let mut builder = http1::Builder::new();
        // One flat write buffer per response rather than writev of head and body: for
        // the small answers of an API it is one copy instead of an iovec walk in the
        // kernel, +10 % req/s in bench/run.sh (measured against writev in the same run).
        builder.writev(false);
        builder
            // The head clock in the framing check bounds the wait for request heads;
            // hyper's own header timer would cost a timer per request (see head_clock).
            .header_read_timeout(None::<Duration>)
            // The exact head limit (431 beyond it); the buffer cap alone is not exact: a
            // head that arrives in one large read would get past it.
            .max_header_size(settings.max_header_bytes)
            .max_buf_size(settings.max_header_bytes)
            .keep_alive(true);
        // Request heads are seen before hyper parses them (request smuggling, see
        // `guard`); HTTP/2 frames its messages itself and needs no such check.
        let io = FramingCheck::new(io, settings.max_header_bytes, clock);
        serve_gracefully!(
            builder
                .serve_connection(TokioIo::new(io), hyper_service)
                .with_upgrades(),
            shutdown
        )
    }
}

/// How often an HTTP/2 client connection that has sent nothing for that long is sent a
/// PING, and how long the PING's acknowledgement may take before the connection is
/// closed: a peer that vanished (no FIN, no RST) is found within both.
const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(20);
const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Serves an HTTP/2 connection on `io` until it closes, watched by its clock
/// ([`conn::h2_watch`]): when the connection has waited too long (no request yet, a
/// header block left open, idle since its last answer) it is sent GOAWAY and closed
/// gracefully; a client that does not finish closing within
/// [`conn::head_clock::CLOSING_GRACE`] (it never acknowledges the GOAWAY's PING) or keeps
/// its header block open is dropped.
async fn serve_h2<I, S, F, B>(
    io: I,
    peer: SocketAddr,
    settings: ConnectionSettings,
    service: Arc<S>,
    mut shutdown: watch::Receiver<()>,
) -> Result<(), hyper::Error>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: http_body::Body + Send + Unpin + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let exchanges = Arc::new(Exchanges::default());
    let blocks = Arc::new(HeaderBlocks::default());
    let mut clock = H2Clock::new(
        HeadClock::new(settings.header_read_timeout, exchanges.clone()).with_idle_timeout(settings.idle_timeout),
        blocks.clone(),
    );
    let hyper_service = service_fn(move |request| {
        let in_flight = exchanges.begin();
        // The request's future is kilobytes (the proxy's whole state machine); hyper
        // moves the future it gets into the connection's slot, so hand it a pointer.
        let mut response = Box::pin(service(request, peer));
        async move {
            // Until its head is ready the stream waits on the upstream, not on the
            // client's window: not for `send_timeout` to cut (see `conn::h2_send`).
            let response = std::future::poll_fn(|cx| {
                let polled = response.as_mut().poll(cx);
                if polled.is_pending() {
                    h2_send::waiting_on_upstream();
                }
                polled
            })
            .await;
            Ok::<_, Infallible>(Answered::wrap(response, in_flight))
        }
    });
    // Each stream is watched: one that waits `send_timeout` for window is reset.
    let (send_timeout, send_timeouts) = settings.send_timeout.clone();
    let mut builder = http2::Builder::new(StreamWatchExecutor::new(send_timeout, peer, send_timeouts));
    builder
        .timer(TokioTimer::new())
        .max_header_list_size(u32::try_from(settings.max_header_bytes).unwrap_or(u32::MAX))
        .max_concurrent_streams(settings.http2_max_concurrent_streams)
        .keep_alive_interval(H2_KEEP_ALIVE_INTERVAL)
        .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT);
    let connection = builder.serve_connection(TokioIo::new(FrameWatch::new(io, blocks)), hyper_service);
    tokio::pin!(connection);
    let (mut draining, mut closing) = (false, false);
    loop {
        tokio::select! {
            // The connection first: the clock then sees what it has just read.
            biased;
            served = connection.as_mut() => return served,
            () = async { drop(shutdown.changed().await) }, if !draining => {
                draining = true;
                closing = true;
                clock.closing();
                connection.as_mut().graceful_shutdown();
            }
            expired = std::future::poll_fn(|cx| clock.poll_expired(cx)) => {
                if closing {
                    tracing::debug!(%peer, reason = %expired, "HTTP/2 connection did not close in time; dropping it");
                    return Ok(());
                }
                tracing::debug!(%peer, reason = %expired, "closing HTTP/2 connection (GOAWAY)");
                closing = true;
                clock.closing();
                connection.as_mut().graceful_shutdown();
            }
        }
    }
}

/// A stream whose first bytes were already read: they are read again first.
struct Replay<I> {
    read: Vec<u8>,
    at: usize,
    stream: I,
}

impl<I: AsyncRead + Unpin> AsyncRead for Replay<I> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let this = &mut *self;
        if this.at < this.read.len() {
            let n = buf.remaining().min(this.read.len() - this.at);
            buf.put_slice(&this.read[this.at..this.at + n]);
            this.at += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.stream).poll_read(cx, buf)
    }
}

crate::server::conn::write_through!(Replay<I>, stream);
