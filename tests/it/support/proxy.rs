//! A proxy running in the test's own runtime (`strangler::run_with_ready` on ephemeral
//! ports, its routes.toml in a temp dir), and the common setup of two echo upstreams behind
//! one; plus [`served_by`], which works on any running proxy.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::admin::AdminAddr;
use super::client::get;
use super::files::replace_file;
use super::routes::routes_toml_with;
use super::upstream::{Upstream, echo_upstream};

/// How long a reload may take before [`TestProxy::wait_for`] gives up.
const RELOAD_LIMIT: Duration = Duration::from_secs(5);

/// Something with a proxy listener.
pub trait ProxyAddr {
    fn proxy_addr(&self) -> SocketAddr;
}

impl<T: ProxyAddr + ?Sized> ProxyAddr for &T {
    fn proxy_addr(&self) -> SocketAddr {
        (**self).proxy_addr()
    }
}

/// Which upstream answered `GET path` through `proxy` (asserting a 200; the upstreams are
/// [`echo_upstream`]s, which name themselves).
pub async fn served_by(proxy: impl ProxyAddr, path: &str) -> String {
    let answer = get(&format!("http://{}{path}", proxy.proxy_addr())).await;
    assert_eq!(answer.status, 200, "GET {path}: {}", answer.body);
    answer.json()["upstream"].as_str().unwrap_or_default().to_owned()
}

/// A running proxy with its config in a temp dir.
pub struct TestProxy {
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    pub state: Arc<strangler::state::State>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<Result<(), strangler::StartError>>>,
}

impl TestProxy {
    /// Writes `routes` (a full routes.toml) into a temp dir and starts the proxy on
    /// ephemeral ports (the file's listen addresses are not used).
    pub async fn start(routes: &str) -> TestProxy {
        proxy_with_files(&[], routes).await
    }

    pub async fn start_at(dir: tempfile::TempDir, config: PathBuf) -> TestProxy {
        let app = {
            let config = config.clone();
            tokio::task::spawn_blocking(move || strangler::App::load(config))
                .await
                .unwrap()
                .unwrap()
        };
        let state = app.state().clone();
        let listeners = strangler::Listeners {
            proxy: TcpListener::bind("127.0.0.1:0").await.unwrap(),
            admin: TcpListener::bind("127.0.0.1:0").await.unwrap(),
        };
        let addr = listeners.proxy.local_addr().unwrap();
        let admin = listeners.admin.local_addr().unwrap();
        let (stop, stopped) = oneshot::channel::<()>();
        let (ready, is_ready) = oneshot::channel::<()>();
        let task = tokio::spawn(strangler::run_with_ready(
            app,
            listeners,
            async move {
                let _ = stopped.await;
            },
            move || {
                let _ = ready.send(());
            },
        ));
        is_ready.await.expect("the proxy stopped before it was ready");
        TestProxy {
            addr,
            admin,
            dir,
            config,
            state,
            stop: Some(stop),
            task: Some(task),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    pub fn admin_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.admin)
    }

    /// Replaces routes.toml the way editors do: write a temp file, rename it over.
    pub fn write_config(&self, text: &str) {
        replace_file(&self.config, text);
    }

    /// The table version in force.
    pub fn version(&self) -> String {
        self.state.snapshot().config().version.clone()
    }

    /// Waits (up to 5 s) until a load attempt has the outcome `done` accepts.
    pub async fn wait_for(
        &self,
        done: impl FnMut(&strangler::state::LoadStatus) -> bool,
    ) -> strangler::state::LoadStatus {
        self.wait_for_within(RELOAD_LIMIT, done).await
    }

    /// Like [`TestProxy::wait_for`], with the caller's deadline (e.g. "live within 2 s").
    pub async fn wait_for_within(
        &self,
        limit: Duration,
        done: impl FnMut(&strangler::state::LoadStatus) -> bool,
    ) -> strangler::state::LoadStatus {
        let mut status = self.state.subscribe();
        let seen = tokio::time::timeout(limit, status.wait_for(done))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "the expected load outcome did not happen within {limit:?}; last status: {:?}",
                    self.state.subscribe().borrow()
                )
            })
            .expect("state dropped");
        seen.clone()
    }

    /// Waits (up to 5 s) until the table with `version` is in force.
    pub async fn wait_for_version(&self, version: &str) {
        self.wait_for(|s| s.version == version).await;
    }

    /// Sends the shutdown signal (as SIGTERM would) without waiting: the proxy stops
    /// accepting and drains; [`TestProxy::stop`] then waits for it to finish.
    pub fn begin_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Sends the shutdown signal (if [`TestProxy::begin_stop`] has not) and waits for
    /// `run` to return.
    pub async fn stop(mut self) {
        self.begin_stop();
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Like [`TestProxy::start`], with `files` (`(name, contents)`, e.g. certificates or a
/// token file) written next to routes.toml first.
pub async fn proxy_with_files(files: &[(&str, &str)], routes: &str) -> TestProxy {
    let dir = tempfile::tempdir().unwrap();
    for (name, contents) in files {
        std::fs::write(dir.path().join(name), contents).unwrap();
    }
    let config = dir.path().join("routes.toml");
    std::fs::write(&config, routes).unwrap();
    TestProxy::start_at(dir, config).await
}

impl AdminAddr for TestProxy {
    fn admin_addr(&self) -> SocketAddr {
        self.admin
    }
}

impl ProxyAddr for TestProxy {
    fn proxy_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// The route `/api/thoughts/` (stage new, to `thoughts`) of [`ThoughtsSetup`].
pub const THOUGHTS_ROUTE: &str =
    "[[routes]]\nname = \"thoughts-api\"\npath = \"/api/thoughts/\"\nstage = \"new\"\nnew = \"thoughts\"\n";

/// Two echo upstreams that count their connections, `legacy` (the default) and `thoughts`
/// (behind [`THOUGHTS_ROUTE`]), and a proxy in front of them; for hostile requests.
pub struct ThoughtsSetup {
    pub legacy: Upstream,
    pub thoughts: Upstream,
    pub proxy: TestProxy,
}

impl ThoughtsSetup {
    /// Starts the upstreams and the proxy, with `proxy_extra` lines in `[proxy]`.
    pub async fn start(proxy_extra: &str) -> ThoughtsSetup {
        let legacy = echo_upstream("legacy").await;
        let thoughts = echo_upstream("thoughts").await;
        let proxy = TestProxy::start(&routes_toml_with(
            proxy_extra,
            &[("legacy", &legacy.url(), ""), ("thoughts", &thoughts.url(), "")],
            THOUGHTS_ROUTE,
        ))
        .await;
        ThoughtsSetup {
            legacy,
            thoughts,
            proxy,
        }
    }

    /// Requests and connections the upstreams have seen.
    pub fn upstream_traffic(&self) -> (usize, usize) {
        (
            self.legacy.seen().len() + self.thoughts.seen().len(),
            self.legacy.connections() + self.thoughts.connections(),
        )
    }

    pub fn assert_no_upstream_contacted(&self, what: &str) {
        assert!(
            self.legacy.seen().is_empty(),
            "{what} reached legacy: {:?}",
            self.legacy.seen()
        );
        assert!(
            self.thoughts.seen().is_empty(),
            "{what} reached thoughts: {:?}",
            self.thoughts.seen()
        );
    }
}
