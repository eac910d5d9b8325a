//! The MyThoughts migration demo in one process: the legacy monolith, the thoughts, users
//! and frontend services, and strangler in front of them, each on its own loopback port
//! and talking real HTTP to the others.
//!
//! The services share the monolith's SQLite file: the first phase of a strangler
//! migration, where new services read and write the legacy data in place so that a route
//! can be flipped back and forth without the two sides drifting apart.
//! (`thoughts-service import` is the later phase: moving the data out.)
//!
//! Two ways to place the servers:
//! - [`Placement::AsConfigured`]: every server on the address `routes.toml` gives it (the
//!   `legacy`, `thoughts`, `users` and `frontend` upstreams, the proxy's `listen` and
//!   `admin_listen`), and the proxy watches that very file, so editing it flips routes;
//! - [`Placement::Ephemeral`]: every server on `127.0.0.1:0`, and a copy of the table,
//!   rewritten to those addresses, in the data directory (for tests).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use mythoughts_common::password::PasswordHasher;
use mythoughts_common::startup::KeySource;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// The upstream names the demo's routing table must define.
pub const UPSTREAMS: [&str; 4] = ["legacy", "thoughts", "users", "frontend"];

/// Where the servers listen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placement {
    /// On the addresses the routing table names.
    AsConfigured,
    /// On ephemeral loopback ports, with a rewritten copy of the table.
    Ephemeral,
}

/// How to start the demo.
#[derive(Debug, Clone)]
pub struct Options {
    /// The routing table (the repository's `routes.toml`).
    pub routes: PathBuf,
    /// Keys and the SQLite file live here (created if missing).
    pub data_dir: PathBuf,
    /// Where the servers listen.
    pub placement: Placement,
    /// Cheap password hashing (tests only: seeding with the real cost takes seconds).
    pub fast_passwords: bool,
}

/// Why the demo could not start.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// The routing table is unusable.
    #[error("{0}")]
    Routes(String),
    /// A server could not be set up.
    #[error("cannot start {what}: {detail}")]
    Start {
        /// Which server.
        what: &'static str,
        /// The cause.
        detail: String,
    },
    /// A listener could not be bound.
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// Which server.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The cause.
        source: std::io::Error,
    },
}

/// The running demo.
#[derive(Debug)]
pub struct Demo {
    /// The one URL users keep (strangler's public listener).
    pub proxy: SocketAddr,
    /// strangler's admin API.
    pub admin: SocketAddr,
    /// The monolith.
    pub legacy: SocketAddr,
    /// The thoughts service.
    pub thoughts: SocketAddr,
    /// The users service.
    pub users: SocketAddr,
    /// The frontend service.
    pub frontend: SocketAddr,
    /// The routing table the proxy watches.
    pub routes: PathBuf,
    /// The proxy's state (table in force, reload outcomes).
    pub proxy_state: Arc<strangler::state::State>,
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
}

impl Demo {
    /// Starts every server and returns once all of them accept connections.
    pub async fn start(options: Options) -> Result<Demo, DemoError> {
        let table = {
            let routes = options.routes.clone();
            tokio::task::spawn_blocking(move || strangler::table::Table::load(&routes))
                .await
                .map_err(|e| DemoError::Routes(e.to_string()))?
                .map_err(|e| DemoError::Routes(e.to_string()))?
        };
        let configured = |name: &str| -> Result<SocketAddr, DemoError> {
            let upstream = table.config.upstreams.get(name).ok_or_else(|| {
                DemoError::Routes(format!(
                    "{}: the demo needs an upstream named `{name}`",
                    options.routes.display()
                ))
            })?;
            let authority = upstream.url.authority().map(|a| a.as_str()).unwrap_or_default();
            authority.parse().map_err(|_| {
                DemoError::Routes(format!(
                    "upstream `{name}` must be an IP:port for the demo, got `{authority}`"
                ))
            })
        };
        // Only once the table is known good: a demo started in the wrong directory leaves
        // nothing behind.
        std::fs::create_dir_all(&options.data_dir).map_err(|e| DemoError::Start {
            what: "the data directory",
            detail: format!("{}: {e}", options.data_dir.display()),
        })?;
        let bind = |what: &'static str, addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| DemoError::Bind { what, addr, source })
        };
        let ephemeral: SocketAddr = ([127, 0, 0, 1], 0).into();
        let place = |name: &str| -> Result<SocketAddr, DemoError> {
            match options.placement {
                Placement::AsConfigured => configured(name),
                Placement::Ephemeral => Ok(ephemeral),
            }
        };
        let legacy_listener = bind("the monolith", place("legacy")?).await?;
        let thoughts_listener = bind("the thoughts service", place("thoughts")?).await?;
        let users_listener = bind("the users service", place("users")?).await?;
        let frontend_listener = bind("the frontend service", place("frontend")?).await?;
        let local = |l: &TcpListener| l.local_addr().unwrap_or(ephemeral);
        let (legacy, thoughts, users, frontend) = (
            local(&legacy_listener),
            local(&thoughts_listener),
            local(&users_listener),
            local(&frontend_listener),
        );

        let keys = options.data_dir.join("keys");
        let db = options.data_dir.join("mythoughts.sqlite");
        let passwords = if options.fast_passwords {
            PasswordHasher::insecure_fast()
        } else {
            PasswordHasher::default()
        };
        let start_err = |what: &'static str| {
            move |e: &dyn std::fmt::Display| DemoError::Start {
                what,
                detail: e.to_string(),
            }
        };

        // The monolith first: it creates and seeds the database the services share.
        let legacy_state = mythoughts_legacy::startup::build_state(mythoughts_legacy::startup::Options {
            db_path: db.clone(),
            keys: KeySource::DevDir(keys.clone()),
            seed: true,
            commit: "demo".to_owned(),
            passwords: passwords.clone(),
        })
        .await
        .map_err(|e| start_err("the monolith")(&e))?;
        let thoughts_state = thoughts_service::startup::build_state(thoughts_service::startup::Options {
            db_path: db.clone(),
            keys: KeySource::DevDir(keys.clone()),
            seed: false,
            commit: "demo".to_owned(),
        })
        .await
        .map_err(|e| start_err("the thoughts service")(&e))?;
        let users_state = users_service::startup::build_state(users_service::startup::Options {
            db_path: db.clone(),
            keys: KeySource::DevDir(keys.clone()),
            seed: false,
            commit: "demo".to_owned(),
            passwords,
        })
        .await
        .map_err(|e| start_err("the users service")(&e))?;
        let backend = |addr: SocketAddr| {
            format!("http://{addr}")
                .parse::<frontend_service::backend::BaseUrl>()
                .map_err(|e| start_err("the frontend service")(&e))
        };
        let frontend_state = frontend_service::startup::build_state(frontend_service::startup::Options {
            keys: KeySource::DevDir(keys.clone()),
            backends: frontend_service::backend::BackendConfig {
                thoughts: backend(thoughts)?,
                users: backend(users)?,
                timeout: std::time::Duration::from_secs(5),
                connect_timeout: std::time::Duration::from_secs(1),
            },
        })
        .await
        .map_err(|e| start_err("the frontend service")(&e))?;

        let (stop, stopped) = watch::channel(false);
        let until_stopped = |mut stopped: watch::Receiver<bool>| async move {
            let _ = stopped.wait_for(|stop| *stop).await;
        };
        let drain = mythoughts_common::server::DRAIN_TIMEOUT;
        let mut tasks = Vec::new();
        for (name, listener, router) in [
            ("legacy", legacy_listener, mythoughts_legacy::app(legacy_state)),
            ("thoughts", thoughts_listener, thoughts_service::app(thoughts_state)),
            ("users", users_listener, users_service::app(users_state)),
            ("frontend", frontend_listener, frontend_service::app(frontend_state)),
        ] {
            let shutdown = until_stopped(stopped.clone());
            tasks.push(tokio::spawn(async move {
                if let Err(e) = mythoughts_common::server::serve(listener, router, shutdown, drain).await {
                    tracing::error!(server = name, error = %e, "server failed");
                }
            }));
        }

        // The proxy, on the table as given or on a copy pointed at the ephemeral ports.
        let routes = match options.placement {
            Placement::AsConfigured => options.routes.clone(),
            Placement::Ephemeral => {
                let text = std::fs::read_to_string(&options.routes)
                    .map_err(|e| DemoError::Routes(format!("{}: {e}", options.routes.display())))?;
                let mut text = text;
                for (name, addr) in [
                    ("legacy", legacy),
                    ("thoughts", thoughts),
                    ("users", users),
                    ("frontend", frontend),
                ] {
                    text = text.replace(&configured(name)?.to_string(), &addr.to_string());
                }
                let copy = options.data_dir.join("routes.toml");
                std::fs::write(&copy, text).map_err(|e| DemoError::Routes(format!("{}: {e}", copy.display())))?;
                copy
            }
        };
        let app = {
            let routes = routes.clone();
            tokio::task::spawn_blocking(move || strangler::App::load(routes))
                .await
                .map_err(|e| start_err("strangler")(&e))?
                .map_err(|e| start_err("strangler")(&e))?
        };
        let listeners = match options.placement {
            Placement::AsConfigured => app.bind().await.map_err(|e| start_err("strangler")(&e))?,
            Placement::Ephemeral => strangler::Listeners {
                proxy: bind("strangler", ephemeral).await?,
                admin: bind("strangler's admin API", ephemeral).await?,
            },
        };
        let proxy = local(&listeners.proxy);
        let admin = local(&listeners.admin);
        let proxy_state = app.state().clone();
        let (ready, is_ready) = tokio::sync::oneshot::channel::<()>();
        let shutdown = until_stopped(stopped);
        tasks.push(tokio::spawn(async move {
            let run = strangler::run_with_ready(app, listeners, shutdown, move || {
                let _ = ready.send(());
            });
            if let Err(e) = run.await {
                tracing::error!(error = %e, "strangler failed");
            }
        }));
        is_ready.await.map_err(|_| DemoError::Start {
            what: "strangler",
            detail: "stopped before it was ready".to_owned(),
        })?;

        Ok(Demo {
            proxy,
            admin,
            legacy,
            thoughts,
            users,
            frontend,
            routes,
            proxy_state,
            stop,
            tasks,
        })
    }

    /// Stops every server, letting in-flight requests finish.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        for task in self.tasks {
            let _ = task.await;
        }
    }

    /// The banner the demo prints: every URL an operator needs.
    pub fn banner(&self) -> String {
        format!(
            "MyThoughts migration demo\n\
             \n  users' one URL:  http://{proxy}/          (log in as bruce / password)\n\
             \n  strangler admin: http://{admin}/admin/routes   http://{admin}/metrics\n\
             \n  backends:\n    legacy monolith   http://{legacy}/\n    thoughts service  http://{thoughts}/api/thoughts/\n    users service     http://{users}/admin/version/\n    frontend service  http://{frontend}/search?search=\n\
             \n  routing table:   {routes}  (edit and save it to flip a route; `strangler check` it first)\n\
             \nCtrl-C stops everything.",
            proxy = self.proxy,
            admin = self.admin,
            legacy = self.legacy,
            thoughts = self.thoughts,
            users = self.users,
            frontend = self.frontend,
            routes = self.routes.display(),
        )
    }
}

/// The repository's `routes.toml`, for tests run from any directory of the workspace.
pub fn repository_routes() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../routes.toml")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `mythoughts-demo` run outside the repository (no routes.toml there) fails and
    /// creates no `demo-data` directory.
    #[tokio::test]
    async fn a_demo_that_cannot_start_leaves_no_data_directory() {
        let dir = tempfile::tempdir().unwrap();
        let data_dir = dir.path().join("demo-data");
        let options = Options {
            routes: dir.path().join("routes.toml"),
            data_dir: data_dir.clone(),
            placement: Placement::AsConfigured,
            fast_passwords: true,
        };
        let Err(error) = Demo::start(options).await else {
            panic!("the demo started without a routes.toml");
        };
        assert!(error.to_string().contains("routes.toml"), "{error}");
        assert!(!data_dir.exists(), "the demo created {}", data_dir.display());
    }
}
