//! Accept loops for the public and admin listeners, and graceful draining.
//!
//! An accept error (EMFILE, ECONNABORTED …) is logged and backed off, never returned:
//! one bad moment must not end the server. Each connection is served by hyper's HTTP/1.1
//! server with a header-read timeout (slowloris) and a cap on the request head size
//! (431 beyond it), read from the snapshot in force when the connection is accepted.
//! Connections are tracked by a [`GracefulShutdown`] so that shutdown can stop accepting,
//! let in-flight requests finish, and give up after the drain timeout.

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
