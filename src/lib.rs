//! strangler: a reverse proxy for strangler-fig migrations.
//!
//! A team puts strangler in front of a legacy monolith; users keep one URL; operators move
//! traffic route by route to new services by editing `routes.toml`, which the running
//! proxy reloads without dropping a request.
//!
//! Map of the crate, from the bottom up. A module imports only modules listed above it
//! (or its own children); nothing reaches up.
//!
//! Pure building blocks (no IO, no runtime):
//! - [`error_line`]: an error and its causes on one line, each said once;
//! - [`path`]: request path normalisation (what matches is what the upstream sees);
//! - [`headers`]: HTTP header rules (hop-by-hop, `X-Forwarded-*`, `Via`);
//! - [`worker`]: which proxy worker thread the caller runs on;
//! - [`window`]: windowed counters (requests, 5xx, durations over the last minute and since
//!   a start), cheap enough for the request path;
//! - [`history`]: the last hour of each route's traffic, minute by minute, sampled from the
//!   windows (the dashboard's sparklines);
//! - [`parity`]: the comparison engine: does the new service answer like the legacy one?
//! - [`config`]: `routes.toml` → validated [`config::Config`], errors with file:line:column;
//! - [`router`]: the compiled [`router::RouteTable`] (specificity, not file order);
//! - [`table`]: a validated config and its routes, what offline commands and reloads build;
//! - [`metrics`]: the Prometheus metrics;
//! - [`tls`]: what both TLS sides share (provider, PEM files, errors).
//! - [`trace`] (pure, with the lowest): W3C `traceparent`/`tracestate`, parsed and written.
//!
//! The running proxy:
//! - [`upstream`]: connection pools, request bodies, health and ejection, client TLS;
//! - [`telemetry`]: OTLP/HTTP export of spans, off the request path (`[tracing]`);
//! - [`migration`]: canary placement, fallback to legacy, shadow mirroring and the parity
//!   ledger, recording: each feature owns its decision and its effect;
//! - [`state`]: the immutable [`state::Snapshot`] behind one `ArcSwap`;
//! - [`reload`]: file watch, SIGHUP and admin reloads;
//! - [`server`]: listeners, accept loops, HTTP/1.1 and HTTP/2, connection IO, TLS accept,
//!   graceful drain;
//! - [`proxy`]: the request path: a pure plan (route, side, body policy, mirror), the
//!   executor that carries it out, one `ProxyError` answer for every failure;
//! - [`admin`]: health, readiness, metrics, routes, upstreams, reload, the dashboard; its
//!   JSON types ([`admin::api`], imports nothing above config) are the commands' too.
//!
//! The command line:
//! - [`commands`]: check, explain, flip, status, parity;
//! - [`cli`]: the command line's arguments; `main.rs` only wires it up.
//!
//! This file wires the running proxy together: [`App`] loads the first table, [`run`]
//! serves until shutdown.

pub mod admin;
pub mod cli;
pub mod commands;
pub mod config;
pub mod error_line;
pub mod headers;
pub mod history;
pub mod metrics;
pub mod migration;
pub mod parity;
pub mod path;
pub mod proxy;
pub mod reload;
pub mod router;
pub mod server;
pub mod state;
pub mod table;
pub mod telemetry;
pub mod tls;
pub mod trace;
pub mod upstream;
pub mod window;
pub mod worker;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::admin::Admin;
use crate::config::{LoadError, ProxySettings};
use crate::metrics::{Metrics, MetricsError};
use crate::proxy::Proxy;
use crate::reload::{Reloader, Trigger};
use crate::server::tls::ServerTls;
use crate::server::{ConnectionSettings, WorkerError, accept_loop, drain, spawn_workers};
use crate::state::{Snapshot, SnapshotError, State};
use crate::table::Table;

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The first routing table could not be loaded.
    #[error(transparent)]
    Config(#[from] LoadError),
    /// Metrics could not be set up.
    #[error(transparent)]
    Metrics(#[from] MetricsError),
    /// The table could not be turned into a snapshot.
    #[error(transparent)]
    Snapshot(#[from] SnapshotError),
    /// A proxy worker could not be started.
    #[error(transparent)]
    Worker(#[from] WorkerError),
    /// The listener's certificates could not be loaded.
    #[error(transparent)]
    Tls(#[from] tls::TlsError),
    /// The admin API would listen beyond loopback with no token to protect it.
    #[error(
        "refusing to serve the admin API on {addr}: it is not a loopback address and `[proxy] admin_token_file` \
         is not set (set it, so that admin requests need a bearer token, or listen on 127.0.0.1)"
    )]
    AdminWithoutToken {
        /// The admin listener's address.
        addr: SocketAddr,
    },
    /// A listener could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// A proxy with its first table loaded, not yet serving.
#[derive(Debug)]
pub struct App {
    state: Arc<State>,
    /// TLS on the public listener, when `[proxy.tls]` is set at start.
    tls: Option<Arc<ServerTls>>,
}

impl App {
    /// Loads and validates the config file (blocking IO: call before serving, or from
    /// `spawn_blocking`). The first load counts as a reload in the metrics.
    pub fn load(config_path: PathBuf) -> Result<Self, StartError> {
        let metrics = Metrics::new()?;
        let loaded = Table::load_for_serving(&config_path);
        let table = match loaded {
            Ok(table) => table,
            Err(e) => {
                metrics.config_reloads.with_label_values(&["error"]).inc();
                return Err(e.into());
            }
        };
        let workers = table
            .config
            .proxy
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()));
        let tls = match &table.config.proxy.tls {
            Some(settings) => Some(Arc::new(ServerTls::load(settings, metrics.tls_reloads.clone())?)),
            None => None,
        };
        let snapshot = Snapshot::build(table, None, &metrics, workers)?;
        metrics.config_reloads.with_label_values(&["ok"]).inc();
        Ok(Self {
            state: Arc::new(State::new(config_path, snapshot, metrics, workers)),
            tls,
        })
    }

    /// Whether the public listener speaks TLS.
    pub fn serves_tls(&self) -> bool {
        self.tls.is_some()
    }

    /// The `[proxy]` settings of the loaded table.
    pub fn settings(&self) -> ProxySettings {
        self.state.snapshot().config().proxy.clone()
    }

    /// Shared state (for tests and embedding).
    pub fn state(&self) -> &Arc<State> {
        &self.state
    }

    /// Binds the listeners named in the config.
    pub async fn bind(&self) -> Result<Listeners, StartError> {
        let settings = self.settings();
        let bind = |addr: SocketAddr| async move { listen(addr).map_err(|source| StartError::Bind { addr, source }) };
        Ok(Listeners {
            proxy: bind(settings.listen).await?,
            admin: bind(settings.admin_listen).await?,
        })
    }
}

/// Once a second, closes pooled upstream connections idle for longer than their
/// `pool_idle_timeout` (checking a connection out also skips expired ones).
async fn reap_idle_connections(state: Arc<State>) {
    let mut ticker = tokio::time::interval(Duration::from_secs(1));
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let snapshot = state.snapshot();
        let closed: usize = snapshot.upstreams.iter().map(|u| u.reap_idle()).sum();
        if closed > 0 {
            tracing::trace!(closed, "closed idle upstream connections");
        }
    }
}

/// A listening socket with a deep accept queue (the kernel caps it at `somaxconn`): a burst
/// of thousands of connects is queued rather than dropped and retried a second later.
/// `SO_REUSEADDR` lets a restarted proxy bind while old connections sit in TIME_WAIT.
fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4096)
}

/// Refuses an admin API on a non-loopback address unless `admin_token_file` is set.
fn admin_exposure(addr: SocketAddr, settings: &ProxySettings) -> Result<(), StartError> {
    if addr.ip().is_loopback() || settings.admin_token_file.is_some() {
        Ok(())
    } else {
        Err(StartError::AdminWithoutToken { addr })
    }
}

/// The two listeners, bound by the caller (tests bind `127.0.0.1:0`).
#[derive(Debug)]
pub struct Listeners {
    /// Where end users connect.
    pub proxy: TcpListener,
    /// The admin API.
    pub admin: TcpListener,
}

/// Serves until `shutdown` completes, then stops accepting, lets in-flight requests
/// finish for up to `drain_timeout`, and returns. Fails only if the proxy workers cannot
/// be started.
pub async fn run(app: App, listeners: Listeners, shutdown: impl Future<Output = ()>) -> Result<(), StartError> {
    run_with_ready(app, listeners, shutdown, || {}).await
}

/// Like [`run`], and calls `on_ready` once reload triggers (watcher, SIGHUP) are in place
/// and the listeners are being served: the moment to tell a supervisor we are up.
pub async fn run_with_ready(
    app: App,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
    on_ready: impl FnOnce(),
) -> Result<(), StartError> {
    let App { state, tls } = app;
    // Listeners may come from the caller: check the address really bound.
    let admin_addr = listeners.admin.local_addr().map_err(|source| StartError::Bind {
        addr: state.snapshot().config().proxy.admin_listen,
        source,
    })?;
    admin_exposure(admin_addr, &state.snapshot().config().proxy)?;
    let reloader = Arc::new(Reloader::new(state.clone()));
    let _tls_watch = tls.as_ref().map(|tls| server::tls::watch(tls.clone(), state.clone()));
    let _watch = match reload::watch(reloader.clone(), &state.config_path) {
        Ok(watch) => Some(watch),
        Err(e) => {
            tracing::error!(error = %e, "cannot watch the routing table for changes; use SIGHUP or POST /admin/reload");
            None
        }
    };
    let sighup = spawn_sighup(reloader.clone());

    let (stop, stopped) = watch::channel(false);
    let workers = match spawn_proxy_workers(&state, listeners.proxy, tls, stopped.clone()) {
        Ok(workers) => workers,
        Err(e) => {
            let _ = stop.send(true);
            return Err(e.into());
        }
    };
    match server::spawn_mirror_runtime(state.workers, stopped.clone()) {
        Ok(handle) => {
            let _ = state.mirrors.set(handle);
        }
        Err(e) => tracing::warn!(error = %e, "cannot start the shadow thread; mirrors run on the proxy workers"),
    }
    state.start_health_checks(tokio::runtime::Handle::current());
    let reaper = tokio::spawn(reap_idle_connections(state.clone()));
    let admin = Admin::new(state.clone(), reloader).listening_on(admin_addr);
    let history = tokio::spawn(admin.clone().keep_history());
    let admin_loop = tokio::spawn(accept_loop(
        listeners.admin,
        "admin",
        connection_settings(state.clone()),
        None,
        // The admin API keeps answering when the public listener is full.
        None,
        // One accept loop: nothing to spread.
        None,
        move |request, _peer| {
            let admin = admin.clone();
            async move { admin.handle(request).await }
        },
        stopped,
    ));

    on_ready();
    shutdown.await;
    tracing::info!("shutting down: no new connections; draining in-flight requests");
    state.set_not_ready();
    let _ = stop.send(true);
    if let Some(task) = sighup {
        task.abort();
    }
    reaper.abort();
    history.abort();
    for worker in workers {
        let _ = worker.await;
    }
    if let Ok(connections) = admin_loop.await {
        drain(connections, Duration::from_secs(1)).await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// The connection settings of the table in force, read when a connection is accepted.
fn connection_settings(state: Arc<State>) -> impl Fn() -> ConnectionSettings + Clone + Send + Sync + 'static {
    let send_timeouts = state
        .metrics
        .client_errors
        .with_label_values(&[metrics::CLIENT_SEND_TIMEOUT]);
    move || {
        let snapshot = state.snapshot();
        let proxy = &snapshot.config().proxy;
        ConnectionSettings {
            header_read_timeout: proxy.client_header_timeout,
            max_header_bytes: proxy.max_header_bytes,
            idle_timeout: proxy.client_idle_timeout,
            http2_max_concurrent_streams: proxy.http2_max_concurrent_streams,
            send_timeout: (proxy.send_timeout, send_timeouts.clone()),
        }
    }
}

/// Starts the public listener's workers (placed on CPUs as `worker_cpu_affinity` says),
/// each with its own [`Proxy`]; they serve until `stopped` turns true.
fn spawn_proxy_workers(
    state: &Arc<State>,
    listener: TcpListener,
    tls: Option<Arc<ServerTls>>,
    stopped: watch::Receiver<bool>,
) -> Result<Vec<tokio::sync::oneshot::Receiver<bool>>, WorkerError> {
    let snapshot = state.snapshot();
    let proxy = &snapshot.config().proxy;
    let placement = server::affinity::Placement::for_this_process(proxy.worker_cpu_affinity, state.workers)
        .reporting_to(state.metrics.worker_cpu.clone());
    tracing::info!(workers = state.workers, "{placement}");
    let limit = Some(server::ClientConnectionLimit::new(proxy.max_connections));
    let drain_state = state.clone();
    let drain_timeout = move || drain_state.snapshot().config().proxy.drain_timeout;
    let (proxy_state, over_tls) = (state.clone(), tls.is_some());
    let listener = listener
        .into_std()
        .map_err(|source| WorkerError::Listener { index: 0, source })?;
    spawn_workers(
        listener,
        server::WorkerLayout {
            seats: server::balance::Balancer::per_worker(state.workers, &state.metrics.client_connections),
            placement,
        },
        connection_settings(state.clone()),
        drain_timeout,
        server::ListenerGuards { tls, limit },
        // Made on each worker's thread: a proxy per worker, whose handles (the metrics,
        // the labels) only that worker's requests clone. Shared, their reference
        // counts would move between the cores on every request.
        move || {
            let proxy = Arc::new(Proxy::new(proxy_state.clone()).over_tls(over_tls));
            move |request, peer| proxy.clone().handle(request, peer)
        },
        stopped,
    )
}

#[cfg(unix)]
fn spawn_sighup(reloader: Arc<Reloader>) -> Option<tokio::task::JoinHandle<()>> {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::hangup()) {
        Ok(mut hangups) => Some(tokio::spawn(async move {
            while hangups.recv().await.is_some() {
                reloader.reload(Trigger::Signal).await;
            }
        })),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP");
            None
        }
    }
}

#[cfg(not(unix))]
fn spawn_sighup(_reloader: Arc<Reloader>) -> Option<tokio::task::JoinHandle<()>> {
    None
}

/// A future that completes on SIGINT (Ctrl-C) or SIGTERM. The handlers are installed when
/// this function is called, not when the future is first polled, so a signal that arrives
/// in between is not lost (and does not kill the process with the default action).
pub fn shutdown_signal() -> impl Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let install = |kind: SignalKind, name: &str| match signal(kind) {
            Ok(stream) => Some(stream),
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for {name}");
                None
            }
        };
        let mut terminate = install(SignalKind::terminate(), "SIGTERM");
        let mut interrupt = install(SignalKind::interrupt(), "SIGINT");
        async move {
            let terminated = async {
                match terminate.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            let interrupted = async {
                match interrupt.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = terminated => tracing::info!("SIGTERM received"),
                _ = interrupted => tracing::info!("SIGINT received"),
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            if tokio::signal::ctrl_c().await.is_err() {
                std::future::pending::<()>().await;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(admin_token_file: bool) -> ProxySettings {
        let text = format!(
            "[proxy]\nlisten = \"127.0.0.1:0\"\nadmin_listen = \"127.0.0.1:0\"\ndefault_upstream = \"a\"\n{}\
             [upstreams.a]\nurl = \"http://127.0.0.1:1\"\n",
            if admin_token_file {
                "admin_token_file = \"token\"\n"
            } else {
                ""
            }
        );
        match config::parse_str("routes.toml", &text) {
            Ok(config) => config.proxy,
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn admin_beyond_loopback_needs_a_token_file() {
        let exposed: SocketAddr = "0.0.0.0:9100".parse().unwrap();
        let error = admin_exposure(exposed, &settings(false)).unwrap_err().to_string();
        assert!(error.contains("0.0.0.0:9100"), "{error}");
        assert!(error.contains("admin_token_file"), "{error}");
        assert!(admin_exposure(exposed, &settings(true)).is_ok());
        let v6: SocketAddr = "[::]:9100".parse().unwrap();
        assert!(admin_exposure(v6, &settings(false)).is_err());
        for loopback in ["127.0.0.1:9100", "[::1]:9100", "127.0.0.2:1"] {
            assert!(
                admin_exposure(loopback.parse().unwrap(), &settings(false)).is_ok(),
                "{loopback}"
            );
        }
    }
}
