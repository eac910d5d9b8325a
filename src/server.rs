//! Accept loops for the public and admin listeners, and graceful draining.
//!
//! An accept error (EMFILE, ECONNABORTED …) is logged and backed off, never returned:
//! one bad moment must not end the server. Each connection is served by hyper's HTTP/1.1
//! server with a header-read timeout (slowloris) and a cap on the request head size
//! (431 beyond it), read from the snapshot in force when the connection is accepted.
//! Connections are tracked by a [`GracefulShutdown`] so that shutdown can stop accepting,
//! let in-flight requests finish, and give up after the drain timeout.
//!
//! The public listener is served thread-per-core, the way nginx runs one event loop per
//! worker process: each worker thread runs a single-threaded tokio runtime that accepts
//! from its own handle on the shared listening socket and drives both the client
//! connection and, through its own pooled clients, the upstream connections its requests
//! use. A request never hops between threads, so there are no cross-thread wake-ups on the
//! hot path; the shared state is only the snapshot (`ArcSwap`) and the metrics.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::watch;

thread_local! {
    /// Index of the proxy worker running on this thread (0 elsewhere).
    static WORKER_INDEX: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Index of the proxy worker running on the calling thread (0 on other threads).
#[inline]
pub fn worker_index() -> usize {
    WORKER_INDEX.with(std::cell::Cell::get)
}

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

/// Starts `count` worker threads that each serve `listener` with `service` until
/// `shutdown` turns true, then drain their connections for up to `drain_timeout()`.
/// Returns one receiver per worker that completes (with whether draining finished in
/// time) when the worker has stopped.
pub fn spawn_workers<S, F, B>(
    listener: std::net::TcpListener,
    count: usize,
    settings: impl Fn() -> ConnectionSettings + Clone + Send + 'static,
    drain_timeout: impl Fn() -> Duration + Clone + Send + 'static,
    service: S,
    shutdown: watch::Receiver<bool>,
) -> Result<Vec<tokio::sync::oneshot::Receiver<bool>>, WorkerError>
where
    S: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut done = Vec::with_capacity(count);
    for index in 0..count.max(1) {
        let listener = listener
            .try_clone()
            .map_err(|source| WorkerError::Listener { index, source })?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| WorkerError::Spawn { index, source })?;
        let (finished, finished_rx) = tokio::sync::oneshot::channel();
        let (settings, drain_timeout, service, shutdown) = (
            settings.clone(),
            drain_timeout.clone(),
            service.clone(),
            shutdown.clone(),
        );
        std::thread::Builder::new()
            .name(format!("strangler-worker-{index}"))
            .spawn(move || {
                WORKER_INDEX.with(|w| w.set(index));
                runtime.block_on(async move {
                    let listener = match TcpListener::from_std(listener) {
                        Ok(listener) => listener,
                        Err(e) => {
                            tracing::error!(worker = index, error = %e, "worker cannot use the listener");
                            let _ = finished.send(true);
                            return;
                        }
                    };
                    let connections = accept_loop(listener, "proxy", settings, service, shutdown).await;
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
            WORKER_INDEX.with(|w| w.set(workers.max(1)));
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
#[derive(Debug, Clone, Copy)]
pub struct ConnectionSettings {
    /// Time allowed for a request head to arrive.
    pub header_read_timeout: Duration,
    /// Largest request head; hyper answers 431 beyond it.
    pub max_header_bytes: usize,
}

/// Serves `listener` until `shutdown` turns true, then returns the tracker of the
/// connections still open so the caller can drain them.
pub async fn accept_loop<S, F, B>(
    listener: TcpListener,
    name: &'static str,
    settings: impl Fn() -> ConnectionSettings,
    service: S,
    mut shutdown: watch::Receiver<bool>,
) -> GracefulShutdown
where
    S: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = Response<B>> + Send + 'static,
    B: http_body::Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let service = Arc::new(service);
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            biased;
            _ = shutdown.wait_for(|stop| *stop) => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                tracing::warn!(listener = name, error = %e, "accept failed; backing off");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let settings = settings();
        let mut builder = auto::Builder::new(TokioExecutor::new()).http1_only();
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(settings.header_read_timeout)
            .max_buf_size(settings.max_header_bytes)
            .keep_alive(true);
        let service = service.clone();
        let hyper_service = service_fn(move |request| {
            let response = service(request, peer);
            async move { Ok::<_, Infallible>(response.await) }
        });
        // Request heads are seen before hyper parses them (request smuggling, see `guard`).
        let stream =
            crate::proxy::guard::FramingCheck::new(stream, settings.max_header_bytes, settings.header_read_timeout);
        let connection = builder.serve_connection_with_upgrades(TokioIo::new(stream), hyper_service);
        let connection = graceful.watch(connection.into_owned());
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(listener = name, %peer, error = %e, "connection ended with an error");
            }
        });
    }
    tracing::debug!(listener = name, "stopped accepting");
    graceful
}

/// Waits for in-flight connections to finish, up to `timeout`. Returns whether all did.
pub async fn drain(graceful: GracefulShutdown, timeout: Duration) -> bool {
    tokio::time::timeout(timeout, graceful.shutdown()).await.is_ok()
}
