//! Hot reload of `routes.toml`.
//!
//! Three triggers lead to the same [`Reloader::reload`]: a change in the file's parent
//! directory (watched rather than the file, so that editors that write a temp file and
//! rename it, and Kubernetes ConfigMap volumes that swap a `..data` symlink, are seen),
//! SIGHUP, and `POST /admin/reload`.
//!
//! A reload reads and validates the whole file off the async workers, compiles it into a
//! new [`Snapshot`] and swaps it in atomically. A file that fails validation is rejected:
//! the old table keeps serving, and the errors are logged with file:line:column, counted
//! in `strangler_config_reloads_total{result="error"}` and shown on the admin API. Reloads
//! run one at a time. Watcher events whose file content is unchanged are ignored: content
//! equal to the table in force, or to a file last rejected for what its own bytes say (one
//! save can reach the watcher as several events; such a file is rejected, counted and
//! logged once). A file rejected for something outside it (an unreadable admin token, CA
//! or certificate file) is tried again at the next event, since fixing that other file and
//! saving is how an operator gets out. SIGHUP and `POST /admin/reload` always load the file.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::{Mutex, Notify};

use crate::config::LoadError;
use crate::state::{Snapshot, State};
use crate::table::Table;

/// How long to wait after a file event before reading, so that an editor's burst of
/// writes becomes one reload.
const SETTLE: Duration = Duration::from_millis(50);

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new table is in force.
    Applied {
        /// Its version.
        version: String,
    },
    /// The file's content equals the table in force, or (for a watcher event) the file
    /// last rejected; nothing changed.
    Unchanged {
        /// The version in force.
        version: String,
    },
    /// The file was rejected; the old table keeps serving.
    Rejected {
        /// Every error, as `file:line:col: message` (or an IO error).
        errors: Vec<String>,
    },
}

/// Why a reload was asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    /// The watched directory changed.
    FileChange,
    /// SIGHUP.
    Signal,
    /// `POST /admin/reload`.
    Admin,
}

/// Performs reloads, one at a time.
#[derive(Debug)]
pub struct Reloader {
    state: Arc<State>,
    /// Held for the whole of a reload (one at a time); holds the version of the file's
    /// bytes last rejected for what they say (not for another file), until a table is
    /// applied.
    last_rejected: Mutex<Option<String>>,
}

/// One read of the config file: what it validates to, and the version of its bytes when
/// they themselves are invalid (the same bytes would be rejected again).
struct Attempt {
    invalid_bytes: Option<String>,
    table: Result<Table, LoadError>,
}

impl Attempt {
    /// Reads and validates the file at `path`, then reads the admin token file it names.
    /// Blocking.
    fn read(path: &Path) -> Self {
        let text = match Table::read(path) {
            Ok(text) => text,
            Err(e) => {
                return Self {
                    invalid_bytes: None,
                    table: Err(e),
                };
            }
        };
        match Table::parse(&path.display().to_string(), &text) {
            Ok(mut table) => Self {
                invalid_bytes: None,
                table: table
                    .config
                    .read_admin_token()
                    .map(|()| table)
                    .map_err(LoadError::Invalid),
            },
            Err(errors) => Self {
                invalid_bytes: Some(crate::config::version_of(&text)),
                table: Err(LoadError::Invalid(errors)),
            },
        }
    }
}

impl Reloader {
    /// A reloader for the state's config file.
    pub fn new(state: Arc<State>) -> Self {
        Self {
            state,
            last_rejected: Mutex::new(None),
        }
    }

    /// Reads, validates and installs the config file. Never panics, never leaves the
    /// proxy without a table.
    pub async fn reload(&self, trigger: Trigger) -> ReloadOutcome {
        let mut last_rejected = self.last_rejected.lock().await;
        let path = self.state.config_path.clone();
        let attempt = tokio::task::spawn_blocking(move || Attempt::read(&path)).await;
        let current = self.state.snapshot();
        let invalid_bytes = attempt.as_ref().ok().and_then(|a| a.invalid_bytes.clone());
        if trigger == Trigger::FileChange && invalid_bytes.is_some() && *last_rejected == invalid_bytes {
            return ReloadOutcome::Unchanged {
                version: current.config().version.clone(),
            };
        }
        let outcome = match attempt.map(|a| a.table) {
            Ok(Ok(table))
                if trigger == Trigger::FileChange
                    && table.config.version == current.config().version
                    && self.state.last_error().is_none() =>
            {
                return ReloadOutcome::Unchanged {
                    version: table.config.version,
                };
            }
            Ok(Ok(table)) => {
                let version = table.config.version.clone();
                let old = &current.config().proxy;
                let new = &table.config.proxy;
                if old.listen != new.listen
                    || old.admin_listen != new.admin_listen
                    || old.workers != new.workers
                    || old.worker_cpu_affinity != new.worker_cpu_affinity
                    || old.max_connections != new.max_connections
                    || old.tls.is_some() != new.tls.is_some()
                {
                    tracing::warn!(
                        listen = %new.listen,
                        admin_listen = %new.admin_listen,
                        "listen addresses, worker count or CPU affinity, max_connections or TLS on/off changed: restart strangler to apply them; still serving as before"
                    );
                }
                // Building reads upstream TLS files: off the async workers.
                let (state, previous) = (self.state.clone(), current.clone());
                let built = tokio::task::spawn_blocking(move || {
                    Snapshot::build(table, Some(&previous), &state.metrics, state.workers)
                })
                .await;
                match built {
                    Ok(Ok(snapshot)) => {
                        // Counted before it is visible: whoever sees the new table (the admin
                        // API, a test) also sees the reload counted.
                        self.state.metrics.config_reloads.with_label_values(&["ok"]).inc();
                        self.state.install(snapshot);
                        ReloadOutcome::Applied { version }
                    }
                    Ok(Err(e)) => ReloadOutcome::Rejected {
                        errors: vec![e.to_string()],
                    },
                    Err(join) => ReloadOutcome::Rejected {
                        errors: vec![format!("reload task failed: {join}")],
                    },
                }
            }
            Ok(Err(LoadError::Invalid(errors))) => ReloadOutcome::Rejected {
                errors: errors.0.iter().map(ToString::to_string).collect(),
            },
            Ok(Err(e @ LoadError::Read { .. })) => ReloadOutcome::Rejected {
                errors: vec![e.to_string()],
            },
            Err(join) => ReloadOutcome::Rejected {
                errors: vec![format!("reload task failed: {join}")],
            },
        };
        match &outcome {
            ReloadOutcome::Applied { version } => {
                *last_rejected = None;
                tracing::info!(?trigger, %version, routes = self.state.snapshot().routes.len(), "routing table reloaded");
            }
            ReloadOutcome::Rejected { errors } => {
                *last_rejected = invalid_bytes;
                self.state.metrics.config_reloads.with_label_values(&["error"]).inc();
                for error in errors {
                    tracing::error!(?trigger, "routing table rejected, keeping the old one: {error}");
                }
                self.state.record_rejection(errors.clone());
            }
            ReloadOutcome::Unchanged { .. } => {}
        }
        outcome
    }
}

/// A running directory watcher; dropping it stops the watch.
#[derive(Debug)]
pub struct FileWatch {
    _watcher: notify::RecommendedWatcher,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches the config file's parent directory and reloads on relevant changes, until the
/// returned watch is dropped. Events are coalesced: a burst of changes gives one reload.
pub fn watch(reloader: Arc<Reloader>, config_path: &Path) -> Result<FileWatch, notify::Error> {
    let file_name = config_path.file_name().map(|n| n.to_os_string());
    let dir: PathBuf = match config_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let pending = Arc::new(Notify::new());
    let signal = pending.clone();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| match event {
        Ok(event) => {
            if event.kind.is_access() {
                return;
            }
            let relevant = event.paths.is_empty()
                || event.paths.iter().any(|p| {
                    let name = p.file_name();
                    name == file_name.as_deref() || name.is_some_and(|n| n.to_string_lossy().starts_with(".."))
                });
            if relevant {
                signal.notify_one();
            }
        }
        Err(e) => {
            tracing::warn!(error = %e, "config watcher error; reloading to be safe");
            signal.notify_one();
        }
    })?;
    watcher.watch(&dir, RecursiveMode::NonRecursive)?;
    let task = tokio::spawn(async move {
        loop {
            pending.notified().await;
            tokio::time::sleep(SETTLE).await;
            reloader.reload(Trigger::FileChange).await;
        }
    });
    tracing::info!(dir = %dir.display(), "watching for routing table changes");
    Ok(FileWatch {
        _watcher: watcher,
        task,
    })
}
