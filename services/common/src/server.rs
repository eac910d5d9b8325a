//! Serving: an already-bound listener, a shutdown future, and a bounded drain; and [`run_binary`], the
//! whole life of a MyThoughts binary once its flags are parsed, the same for all four.
//!
//! [`serve`] takes the listener rather than an address so that the caller can print the bound address (port
//! 0 in tests) before the first request, and a shutdown future so tests and `main` decide what stops it.

use std::error::Error;
use std::future::{Future, IntoFuture};
use std::io;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;

/// How long in-flight requests may take to finish after shutdown starts.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// Serves `app` on `listener` until `shutdown` completes, then stops accepting and lets open requests finish
/// for at most `drain`.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
    drain: Duration,
) -> io::Result<()> {
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = axum::serve(listener, app).with_graceful_shutdown(async move {
        let _ = stopped.await;
    });
    let mut server = std::pin::pin!(server.into_future());
    tokio::select! {
        result = &mut server => return result,
        () = shutdown => {
            tracing::info!("shutting down");
            let _ = stop.send(());
        }
    }
    match tokio::time::timeout(drain, server).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(?drain, "requests still running after the drain timeout; closing them");
            Ok(())
        }
    }
}

/// Completes on SIGTERM or SIGINT (Ctrl-C). The handlers are installed when this is called, not when the
/// future is first polled, so call it before announcing readiness.
pub fn shutdown_signal() -> io::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut terminate = signal(SignalKind::terminate())?;
        let mut interrupt = signal(SignalKind::interrupt())?;
        Ok(async move {
            tokio::select! {
                _ = terminate.recv() => tracing::info!("received SIGTERM"),
                _ = interrupt.recv() => tracing::info!("received SIGINT"),
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async move {
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

/// Why a binary stopped with an error. Printed by [`run_binary`] as `NAME: what: cause: cause…`.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The tokio runtime could not be built.
    #[error("cannot start the async runtime")]
    Runtime(#[source] io::Error),
    /// SIGTERM/SIGINT handlers could not be installed.
    #[error("cannot install signal handlers")]
    Signals(#[source] io::Error),
    /// The service's state could not be built (keys, database, …).
    #[error("cannot start")]
    Start(#[source] Box<dyn Error + Send + Sync>),
    /// The listen address could not be bound.
    #[error("cannot listen on {addr}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: io::Error,
    },
    /// The bound address could not be read back.
    #[error("cannot read the bound address")]
    LocalAddr(#[source] io::Error),
    /// Serving failed.
    #[error("server failed")]
    Serve(#[source] io::Error),
}

/// Everything a MyThoughts binary does after parsing its flags and setting up tracing: start the runtime,
/// install the signal handlers, build the app with `build`, bind `listen`, print `NAME listening on
/// http://ADDR` on stdout, serve until SIGTERM or SIGINT, then drain for at most [`DRAIN_TIMEOUT`]. A
/// failure is printed on stderr as `NAME: what: cause: …` and exits with status 1.
pub fn run_binary<F, Fut, E>(name: &str, listen: SocketAddr, build: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Router, E>>,
    E: Error + Send + Sync + 'static,
{
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(RunError::Runtime)
        .and_then(|runtime| {
            runtime.block_on(async {
                let shutdown = shutdown_signal().map_err(RunError::Signals)?;
                serve_binary(name, listen, build, shutdown).await
            })
        });
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("{name}: {}", error_chain(&err));
            ExitCode::FAILURE
        }
    }
}

/// [`run_binary`] inside the runtime, with the shutdown future given.
async fn serve_binary<F, Fut, E>(
    name: &str,
    listen: SocketAddr,
    build: F,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), RunError>
where
    F: FnOnce() -> Fut,
    Fut: Future<Output = Result<Router, E>>,
    E: Error + Send + Sync + 'static,
{
    let app = build().await.map_err(|err| RunError::Start(Box::new(err)))?;
    let listener = TcpListener::bind(listen)
        .await
        .map_err(|source| RunError::Bind { addr: listen, source })?;
    let address = listener.local_addr().map_err(RunError::LocalAddr)?;
    println!("{name} listening on http://{address}");
    serve(listener, app, shutdown, DRAIN_TIMEOUT)
        .await
        .map_err(RunError::Serve)?;
    tracing::info!("stopped");
    Ok(())
}

/// `err` and each of its causes, joined by `: ` (as `anyhow` prints `{:#}`).
pub fn error_chain(err: &dyn Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(err) = cause {
        text.push_str(": ");
        text.push_str(&err.to_string());
        cause = err.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn serves_until_shutdown_then_returns() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new().route("/healthz", get(|| async { "ok" }));
        let server = tokio::spawn(serve(
            listener,
            app,
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(5),
        ));

        let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
        stream
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).await.unwrap();
        assert!(response.starts_with("HTTP/1.1 200"), "{response}");
        assert!(response.ends_with("ok"), "{response}");

        stop.send(()).unwrap();
        server.await.unwrap().unwrap();
        assert!(
            tokio::net::TcpStream::connect(address).await.is_err(),
            "still accepting"
        );
    }

    #[derive(Debug, thiserror::Error)]
    #[error("cannot read key k.pem")]
    struct KeyFailure(#[source] io::Error);

    #[tokio::test]
    async fn a_failed_start_names_the_step_and_every_cause() {
        let any: SocketAddr = ([127, 0, 0, 1], 0).into();
        let err = serve_binary(
            "svc",
            any,
            || async { Err::<Router, _>(KeyFailure(io::Error::other("no such file"))) },
            std::future::pending(),
        )
        .await
        .unwrap_err();
        assert!(matches!(err, RunError::Start(_)), "{err:?}");
        assert_eq!(error_chain(&err), "cannot start: cannot read key k.pem: no such file");

        let taken = TcpListener::bind(any).await.unwrap();
        let addr = taken.local_addr().unwrap();
        let err = serve_binary(
            "svc",
            addr,
            || async { Ok::<_, KeyFailure>(Router::new()) },
            std::future::pending(),
        )
        .await
        .unwrap_err();
        assert!(matches!(&err, RunError::Bind { addr: a, .. } if *a == addr), "{err:?}");
        assert!(
            error_chain(&err).starts_with(&format!("cannot listen on {addr}: ")),
            "{}",
            error_chain(&err)
        );
    }

    #[tokio::test]
    async fn a_binary_serves_until_shutdown_and_returns_ok() {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        stop.send(()).unwrap();
        let outcome = serve_binary(
            "svc",
            ([127, 0, 0, 1], 0).into(),
            || async { Ok::<_, KeyFailure>(Router::new().route("/healthz", get(|| async { "ok" }))) },
            async move {
                let _ = stopped.await;
            },
        )
        .await;
        assert!(outcome.is_ok(), "{outcome:?}");
    }
}
