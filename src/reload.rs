//! Hot reload of `routes.toml`.
//!
//! Three triggers lead to the same [`Reloader::reload`]: a change in the file's parent
//! directory (watched rather than the file, so that editors that write a temp file and
//! rename it, and Kubernetes ConfigMap volumes that swap a `..data` symlink, are seen),
//! SIGHUP, and `POST /admin/reload`.
//!
//! When a watched change is read is [`ReloadClock`]'s decision (a pure state machine;
//! [`watch_with`]'s task carries it out): a file renamed into place (or a `..data`
//! symlink swap) is complete and loads at once; a file written in place loads once its
//! writer has closed it and it stayed unchanged for `[proxy] reload_settle` (or, where the
//! watcher reports no closes, once it has been unchanged that long), so a save written in
//! parts never loads half a table. A writer that keeps the file open is read at the
//! longest wait (ten settle intervals), but a table that would remove routes is then held
//! back until the writer closes the file. SIGHUP and `POST /admin/reload` load at once.
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
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use notify::RecursiveMode;
use tokio::sync::{Mutex, mpsc};
use tokio::time::Instant;

use crate::config::{LoadError, RouteChanges};
use crate::state::{Snapshot, State};
use crate::table::Table;

/// What a reload did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReloadOutcome {
    /// A new table is in force.
    Applied {
        /// Its version.
        version: String,
        /// What it changed in the routes of the table it replaced.
        changes: RouteChanges,
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
    /// Reads of the config file started so far: the watcher tells its own reads' opens of
    /// the file from other processes' by this count (a read refused before opening, of a
    /// missing or non-regular file, makes it skip one other open).
    reads: AtomicU64,
}

/// One read of the config file: what it validates to, and the version of its bytes when
/// they themselves are invalid (the same bytes would be rejected again).
struct Attempt {
    invalid_bytes: Option<String>,
    table: Result<Table, LoadError>,
}

impl Attempt {
    /// Reads and validates the file at `path`, then reads the admin token file and the
    /// error pages it names.
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
                    .and_then(|()| table.config.read_error_pages())
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

/// What a file-change reload does with a table that would remove routes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removals {
    /// Apply it, as any other table.
    Apply,
    /// Keep the table in force: the file's writer still holds it open (the longest wait
    /// passed), so a table with fewer routes is most likely half written.
    HoldWhileWriterOpen,
}

/// A table held back by [`Removals::HoldWhileWriterOpen`]: the routes it would remove.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeldBack {
    /// The names of the routes it would remove.
    pub removed: Vec<String>,
}

impl Reloader {
    /// A reloader for the state's config file.
    pub fn new(state: Arc<State>) -> Self {
        Self {
            state,
            last_rejected: Mutex::new(None),
            reads: AtomicU64::new(0),
        }
    }

    /// Reads of the config file started so far.
    pub fn reads(&self) -> u64 {
        self.reads.load(Ordering::SeqCst)
    }

    /// `[proxy] reload_settle` of the table in force.
    pub fn settle(&self) -> Duration {
        self.state.snapshot().config().proxy.reload_settle
    }

    /// Reads, validates and installs the config file. Never panics, never leaves the
    /// proxy without a table.
    pub async fn reload(&self, trigger: Trigger) -> ReloadOutcome {
        match self.reload_unless(trigger, Removals::Apply).await {
            Ok(outcome) => outcome,
            // Not reached: only HoldWhileWriterOpen holds a table back.
            Err(_) => ReloadOutcome::Unchanged {
                version: self.state.snapshot().config().version.clone(),
            },
        }
    }

    /// Like [`Reloader::reload`]; with [`Removals::HoldWhileWriterOpen`], a valid table
    /// that would remove routes is not applied: logged once at warn, and returned as
    /// [`HeldBack`].
    pub async fn reload_unless(&self, trigger: Trigger, removals: Removals) -> Result<ReloadOutcome, HeldBack> {
        let mut last_rejected = self.last_rejected.lock().await;
        let path = self.state.config_path.clone();
        self.reads.fetch_add(1, Ordering::SeqCst);
        let attempt = tokio::task::spawn_blocking(move || Attempt::read(&path)).await;
        let current = self.state.snapshot();
        let invalid_bytes = attempt.as_ref().ok().and_then(|a| a.invalid_bytes.clone());
        if trigger == Trigger::FileChange && invalid_bytes.is_some() && *last_rejected == invalid_bytes {
            return Ok(ReloadOutcome::Unchanged {
                version: current.config().version.clone(),
            });
        }
        let outcome = match attempt.map(|a| a.table) {
            Ok(Ok(table))
                if trigger == Trigger::FileChange
                    && table.config.version == current.config().version
                    && self.state.last_error().is_none() =>
            {
                return Ok(ReloadOutcome::Unchanged {
                    version: table.config.version,
                });
            }
            Ok(Ok(table)) => {
                let changes = RouteChanges::between(current.config(), &table.config);
                if removals == Removals::HoldWhileWriterOpen && !changes.removed.is_empty() {
                    log_held_back(&table.config.version, &changes);
                    return Err(HeldBack {
                        removed: changes.removed,
                    });
                }
                self.apply(table, &current, changes).await
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
            ReloadOutcome::Applied { version, changes } => {
                *last_rejected = None;
                log_applied(trigger, version, self.state.snapshot().routes.len(), changes);
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
        Ok(outcome)
    }

    /// Builds the snapshot of a validated `table` and installs it.
    async fn apply(&self, table: Table, current: &Arc<Snapshot>, changes: RouteChanges) -> ReloadOutcome {
        let version = table.config.version.clone();
        warn_if_restart_needed(&current.config().proxy, &table.config.proxy);
        // Building reads upstream TLS files: off the async workers.
        let (state, previous) = (self.state.clone(), current.clone());
        let built =
            tokio::task::spawn_blocking(move || Snapshot::build(table, Some(&previous), &state.metrics, state.workers))
                .await;
        match built {
            Ok(Ok(snapshot)) => {
                // Counted before it is visible: whoever sees the new table (the admin
                // API, a test) also sees the reload counted.
                let metrics = &self.state.metrics;
                metrics.config_reloads.with_label_values(&["ok"]).inc();
                let removed = changes.removed.len();
                metrics.config_routes_removed.inc_by(removed as u64);
                if is_a_drop(removed, current.config().routes.len()) {
                    metrics.config_route_drops.inc();
                }
                self.state.install(snapshot);
                ReloadOutcome::Applied { version, changes }
            }
            Ok(Err(e)) => ReloadOutcome::Rejected {
                errors: vec![e.to_string()],
            },
            Err(join) => ReloadOutcome::Rejected {
                errors: vec![format!("reload task failed: {join}")],
            },
        }
    }
}

/// Whether a reload that removed `removed` of the `before` routes in force is a drop
/// (`strangler_config_route_drops_total`, alerted): at least one, and at least half.
fn is_a_drop(removed: usize, before: usize) -> bool {
    removed > 0 && removed * 2 >= before
}

/// Warns when `new` changes what only a restart applies.
fn warn_if_restart_needed(old: &crate::config::ProxySettings, new: &crate::config::ProxySettings) {
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
}

/// The log line of a table held back while its writer still has the file open.
fn log_held_back(version: &str, changes: &RouteChanges) {
    tracing::warn!(
        %version,
        changes = %changes.summary(),
        removed = %changes.removed.join(","),
        "routes.toml is still open for writing and its table would remove routes; keeping the table in force and waiting for the writer to close it (SIGHUP or POST /admin/reload loads it now)"
    );
}

/// The log line of an applied table: what it changed (`changes = "+2 -0 ~1"` and the
/// names, and the other settings it changed); at warn when it removed routes, which is how a half-written or truncated file
/// shows.
fn log_applied(trigger: Trigger, version: &str, routes: usize, changes: &RouteChanges) {
    let (added, removed, changed, settings) = (
        changes.added.join(","),
        changes.removed.join(","),
        changes.changed.join(","),
        changes.settings.join("; "),
    );
    let summary = changes.summary();
    if changes.removed.is_empty() {
        tracing::info!(?trigger, %version, routes, changes = %summary, %added, %removed, %changed, %settings, "routing table reloaded");
    } else {
        tracing::warn!(?trigger, %version, routes, changes = %summary, %added, %removed, %changed, %settings, "routing table reloaded");
    }
}

/// What one watcher event says about the config file, as [`ReloadClock`] reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileEvent {
    /// A complete file was put in place: renamed over the file's name, a symlink created
    /// as the file, or the `..data` symlink of a Kubernetes volume swapped.
    Replaced,
    /// The file's content changed, or the file was created: its writer may still have it
    /// open and be writing.
    Written,
    /// A writer that had the file open for writing closed it.
    Closed,
    /// The file was opened (for reading or writing: the watcher does not say which, and
    /// reports no close of a handle that was only read).
    Opened,
    /// Anything else that may matter: metadata, a removal, a rename away, another `..`
    /// entry of a Kubernetes volume, an event the watcher could not name, a watcher error.
    Touched,
}

/// What [`ReloadClock`] decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Read the file now.
    LoadNow,
    /// The longest wait passed with the file's writer still holding it open: read it now,
    /// but apply its table only if it removes no route ([`Removals::HoldWhileWriterOpen`]).
    /// If it is held back, tell the clock with [`ReloadClock::held_back`]; otherwise with
    /// [`ReloadClock::loaded`].
    LoadUnlessRemoving,
    /// Nothing to do before this instant (unless another event comes).
    WaitUntil(Instant),
    /// Nothing to do until the next event.
    Idle,
}

/// A change seen and not loaded yet.
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// The first event since the last load: the longest wait counts from here.
    since: Instant,
    /// A write was seen and no close after it (only where closes are reported).
    writer_open: bool,
    /// When the file will have been quiet for the settle interval.
    quiet_at: Instant,
    /// Opens seen since the last write while a writer had the file open: handles that
    /// have written nothing since they opened. A close while there are such handles is
    /// taken as one of theirs (`: >> routes.toml` by another process), not the writer's.
    opens_since_write: u32,
    /// The longest wait passed with the writer open and the file's table was held back
    /// (it would remove routes): from now on only the writer's close (and the settle
    /// interval) loads the file.
    held: bool,
}

/// When to read the config file after watcher events: a pure state machine (events and
/// the time in, [`Decision`] out), which the watcher task carries out.
///
/// - A complete file put in place ([`FileEvent::Replaced`]) loads at once.
/// - Where the watcher reports closes (inotify), a write waits for its writer to close
///   the file, and a close starts the settle clock: the file loads once it has stayed
///   closed and unchanged for `settle`. A writer that closes between parts (`echo a > f;
///   echo b >> f`) opens it again within the settle interval and so stops the clock.
///   A close that follows an open with no write between them, while the writer has the
///   file open, is taken as that other handle's (another process opening and closing
///   the file) and does not end the writer's save. (inotify names no handle: a reader
///   that opens the file between the writer's last write and its close makes the
///   writer's close look like the reader's; the file then loads at the longest wait.)
/// - Where it does not (the poll watcher, other platforms), any change restarts the settle
///   clock: the file loads once it has been unchanged for `settle`.
/// - However busy the file, it is read at the latest [`ReloadClock::longest_wait`] after
///   the first change (ten settle intervals), so a writer that never closes the file (a
///   crashed editor) or never stops writing still gets its file loaded; but while a
///   writer still holds the file open, a table that would remove routes is not applied
///   ([`Decision::LoadUnlessRemoving`]): it waits for the writer's close.
#[derive(Debug, Clone)]
pub struct ReloadClock {
    settle: Duration,
    closes_reported: bool,
    pending: Option<Pending>,
}

impl ReloadClock {
    /// How many settle intervals [`ReloadClock::longest_wait`] is.
    const LONGEST_WAIT_SETTLES: u32 = 10;

    /// A clock with nothing pending; `closes_reported` says whether the watcher reports
    /// [`FileEvent::Closed`].
    pub fn new(settle: Duration, closes_reported: bool) -> Self {
        Self {
            settle,
            closes_reported,
            pending: None,
        }
    }

    /// Takes the settle interval of a newly loaded table, for the changes to come.
    pub fn set_settle(&mut self, settle: Duration) {
        self.settle = settle;
    }

    /// The longest a change waits to be read: ten settle intervals (at least 1 s, as
    /// `reload_settle` is at least 100 ms; 3 s at the default 300 ms).
    pub fn longest_wait(&self) -> Duration {
        self.settle * Self::LONGEST_WAIT_SETTLES
    }

    /// The file was read after a [`Decision::LoadUnlessRemoving`] (applied, unchanged or
    /// rejected): nothing is pending any more.
    pub fn loaded(&mut self) {
        self.pending = None;
    }

    /// The table read after a [`Decision::LoadUnlessRemoving`] was held back: wait for
    /// the writer to close the file, however long that takes.
    pub fn held_back(&mut self) {
        if let Some(pending) = &mut self.pending {
            pending.held = true;
        }
    }

    /// Takes in an event seen at `now`.
    pub fn on_event(&mut self, event: FileEvent, now: Instant) -> Decision {
        if event == FileEvent::Replaced {
            self.pending = None;
            return Decision::LoadNow;
        }
        if event == FileEvent::Opened {
            // Counted only while a writer has the file open: the next writer's open (after
            // a close) or a reader's starts nothing.
            if let Some(pending) = self.pending.as_mut().filter(|p| p.writer_open) {
                pending.opens_since_write = pending.opens_since_write.saturating_add(1);
            }
            return self.on_time(now);
        }
        let quiet_at = now + self.settle;
        let pending = self.pending.get_or_insert(Pending {
            since: now,
            writer_open: false,
            quiet_at,
            opens_since_write: 0,
            held: false,
        });
        match event {
            FileEvent::Written if self.closes_reported => {
                pending.writer_open = true;
                pending.opens_since_write = 0;
            }
            // Another handle, opened since the last write, closed: the writer is still at it.
            FileEvent::Closed if pending.writer_open && pending.opens_since_write > 0 => {
                pending.opens_since_write -= 1;
            }
            FileEvent::Closed => {
                pending.writer_open = false;
                pending.quiet_at = quiet_at;
            }
            // A metadata change does not end an open writer's save.
            FileEvent::Touched if pending.writer_open => {}
            FileEvent::Written | FileEvent::Touched => pending.quiet_at = quiet_at,
            FileEvent::Replaced | FileEvent::Opened => {}
        }
        self.on_time(now)
    }

    /// What to do at `now`, when no event came: the executor asks when a wait ends.
    pub fn on_time(&mut self, now: Instant) -> Decision {
        let Some(pending) = &mut self.pending else {
            return Decision::Idle;
        };
        let latest = pending.since + self.settle * Self::LONGEST_WAIT_SETTLES;
        let due = match (pending.writer_open, pending.held) {
            (true, true) => return Decision::Idle,
            (true, false) if latest <= now => return Decision::LoadUnlessRemoving,
            (true, false) => latest,
            (false, true) => pending.quiet_at,
            (false, false) => pending.quiet_at.min(latest),
        };
        if due <= now {
            self.pending = None;
            Decision::LoadNow
        } else {
            Decision::WaitUntil(due)
        }
    }
}

/// Where the watcher's events come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// The platform's watcher ([`notify::RecommendedWatcher`]): inotify on Linux, which
    /// reports closes.
    Native,
    /// [`notify::PollWatcher`], reading the file (through its symlinks) at this interval
    /// and comparing its content (the poll watcher's modification times have a resolution
    /// of one second). It reports no closes, so a change is loaded once the file has been
    /// unchanged for the settle interval.
    Poll(Duration),
}

impl Backend {
    /// Whether this backend reports that a writer closed the file.
    fn reports_closes(self) -> bool {
        match self {
            Backend::Native => cfg!(any(target_os = "linux", target_os = "android")),
            Backend::Poll(_) => false,
        }
    }
}

/// The names in the watched directory that matter: the config file's, and Kubernetes'
/// `..data` (and its other `..` entries).
#[derive(Debug, Clone)]
struct WatchedNames {
    file: Option<std::ffi::OsString>,
}

impl WatchedNames {
    /// The name of the Kubernetes volume's symlink to the current payload.
    const KUBERNETES_DATA: &'static str = "..data";

    /// What `event` says about the config file, or `None` if nothing. `is_symlink` tells
    /// whether a created path is a symlink (a complete file put in place).
    fn classify(&self, event: &notify::Event, is_symlink: impl Fn(&Path) -> bool) -> Option<FileEvent> {
        use notify::EventKind;
        use notify::event::{AccessKind, AccessMode, ModifyKind, RenameMode};
        if event.need_rescan() {
            return Some(FileEvent::Touched);
        }
        // Only a close after writing is reported as such (inotify's mask has no
        // close-nowrite); opens are, of any handle, our own reads' included.
        if let EventKind::Access(kind) = event.kind {
            if !event.paths.iter().any(|p| self.is_file(p)) {
                return None;
            }
            return match kind {
                AccessKind::Close(AccessMode::Write) => Some(FileEvent::Closed),
                AccessKind::Open(_) => Some(FileEvent::Opened),
                _ => None,
            };
        }
        if !event.paths.is_empty() && !event.paths.iter().any(|p| self.is_file(p) || self.is_volume_entry(p)) {
            return None;
        }
        // The path a rename puts in place is the last one (`To` has one, `Both` two).
        let destination = event.paths.last();
        let put_in_place = |p: &&PathBuf| self.is_file(p) || p.file_name() == Some(Self::KUBERNETES_DATA.as_ref());
        Some(match event.kind {
            EventKind::Modify(ModifyKind::Name(RenameMode::To | RenameMode::Both))
                if destination.is_some_and(|p| put_in_place(&p)) =>
            {
                FileEvent::Replaced
            }
            EventKind::Create(_) if destination.is_some_and(|p| put_in_place(&p) && is_symlink(p)) => {
                FileEvent::Replaced
            }
            EventKind::Create(_) | EventKind::Modify(ModifyKind::Data(_) | ModifyKind::Any | ModifyKind::Other)
                if event.paths.iter().any(|p| self.is_file(p)) =>
            {
                FileEvent::Written
            }
            _ => FileEvent::Touched,
        })
    }

    fn is_file(&self, path: &Path) -> bool {
        self.file.is_some() && path.file_name() == self.file.as_deref()
    }

    fn is_volume_entry(&self, path: &Path) -> bool {
        path.file_name().is_some_and(|n| n.to_string_lossy().starts_with(".."))
    }
}

/// A running directory watcher; dropping it stops the watch.
pub struct FileWatch {
    _watcher: Box<dyn notify::Watcher + Send>,
    task: tokio::task::JoinHandle<()>,
}

impl std::fmt::Debug for FileWatch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileWatch").finish_non_exhaustive()
    }
}

impl Drop for FileWatch {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Watches the config file's parent directory with the platform's watcher and reloads
/// as [`ReloadClock`] decides, until the returned watch is dropped.
pub fn watch(reloader: Arc<Reloader>, config_path: &Path) -> Result<FileWatch, notify::Error> {
    watch_with(reloader, config_path, Backend::Native)
}

/// Like [`watch`], with the watcher `backend` (tests use [`Backend::Poll`]).
pub fn watch_with(reloader: Arc<Reloader>, config_path: &Path, backend: Backend) -> Result<FileWatch, notify::Error> {
    let names = WatchedNames {
        file: config_path.file_name().map(|n| n.to_os_string()),
    };
    let dir: PathBuf = match config_path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (events, received) = mpsc::unbounded_channel();
    let handler = move |event: notify::Result<notify::Event>| {
        let seen = match event {
            Ok(event) => names.classify(&event, |p| {
                p.symlink_metadata().is_ok_and(|m| m.file_type().is_symlink())
            }),
            Err(e) => {
                tracing::warn!(error = %e, "config watcher error; reloading to be safe");
                Some(FileEvent::Touched)
            }
        };
        if let Some(seen) = seen {
            // Fails only once the watch is dropped.
            let _ = events.send(seen);
        }
    };
    let (mut watcher, watched): (Box<dyn notify::Watcher + Send>, &Path) = match backend {
        Backend::Native => (Box::new(notify::recommended_watcher(handler)?), &dir),
        Backend::Poll(interval) => (
            Box::new(notify::PollWatcher::new(
                handler,
                notify::Config::default()
                    .with_poll_interval(interval)
                    .with_compare_contents(true),
            )?),
            config_path,
        ),
    };
    watcher.watch(watched, RecursiveMode::NonRecursive)?;
    let clock = ReloadClock::new(reloader.settle(), backend.reports_closes());
    let task = tokio::spawn(reload_when_due(reloader, received, clock));
    tracing::info!(dir = %dir.display(), ?backend, "watching for routing table changes");
    Ok(FileWatch {
        _watcher: watcher,
        task,
    })
}

/// The watcher task: feeds events and the time to `clock` and reloads when it says so,
/// then takes the settle interval of the table in force.
async fn reload_when_due(
    reloader: Arc<Reloader>,
    mut received: mpsc::UnboundedReceiver<FileEvent>,
    mut clock: ReloadClock,
) {
    let mut decision = Decision::Idle;
    // Opens of the file by our own reads (any trigger's) matched so far.
    let mut own_opens = 0u64;
    loop {
        let event = match decision {
            Decision::LoadNow => {
                reloader.reload(Trigger::FileChange).await;
                clock.set_settle(reloader.settle());
                decision = clock.on_time(Instant::now());
                continue;
            }
            Decision::LoadUnlessRemoving => {
                match reloader
                    .reload_unless(Trigger::FileChange, Removals::HoldWhileWriterOpen)
                    .await
                {
                    Ok(_) => clock.loaded(),
                    Err(HeldBack { .. }) => clock.held_back(),
                }
                clock.set_settle(reloader.settle());
                decision = clock.on_time(Instant::now());
                continue;
            }
            Decision::Idle => received.recv().await,
            Decision::WaitUntil(at) => tokio::select! {
                event = received.recv() => event,
                () = tokio::time::sleep_until(at) => {
                    decision = clock.on_time(Instant::now());
                    continue;
                }
            },
        };
        let Some(event) = event else { return };
        if event == FileEvent::Opened && own_opens < reloader.reads() {
            own_opens += 1;
            continue;
        }
        decision = clock.on_event(event, Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use notify::event::{AccessKind, AccessMode, CreateKind, DataChange, MetadataKind, ModifyKind, RenameMode};
    use notify::{Event, EventKind};

    use super::*;

    const SETTLE: Duration = Duration::from_millis(300);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Feeds `events` (`(milliseconds after t0, event)`) to `clock`; returns t0 and the
    /// last decision.
    fn feed(clock: &mut ReloadClock, events: &[(u64, FileEvent)]) -> (Instant, Decision) {
        let t0 = Instant::now();
        let mut decision = Decision::Idle;
        for (at, event) in events {
            decision = clock.on_event(*event, t0 + ms(*at));
        }
        (t0, decision)
    }

    #[test]
    fn a_drop_removes_at_least_one_route_and_at_least_half() {
        assert!(!is_a_drop(0, 0));
        assert!(!is_a_drop(0, 4));
        assert!(!is_a_drop(1, 4));
        assert!(is_a_drop(2, 4));
        assert!(is_a_drop(4, 4));
        assert!(is_a_drop(1, 1));
        assert!(!is_a_drop(1, 3));
        assert!(is_a_drop(2, 3));
    }

    #[test]
    fn a_file_put_in_place_loads_at_once_even_while_a_writer_is_open() {
        let mut clock = ReloadClock::new(SETTLE, true);
        assert_eq!(feed(&mut clock, &[(0, FileEvent::Replaced)]).1, Decision::LoadNow);
        let (t0, decision) = feed(&mut clock, &[(0, FileEvent::Written), (10, FileEvent::Replaced)]);
        assert_eq!(decision, Decision::LoadNow);
        assert_eq!(clock.on_time(t0 + ms(20)), Decision::Idle, "nothing left pending");
    }

    #[test]
    fn an_open_writer_is_waited_for_and_its_close_starts_the_settle_clock() {
        let mut clock = ReloadClock::new(SETTLE, true);
        let (t0, decision) = feed(&mut clock, &[(0, FileEvent::Written), (5, FileEvent::Written)]);
        assert_eq!(decision, Decision::WaitUntil(t0 + clock.longest_wait()));
        // A second later the writer is still at it: no load, a metadata change changes nothing.
        assert_eq!(clock.on_time(t0 + ms(1000)), Decision::WaitUntil(t0 + ms(3000)));
        assert_eq!(
            clock.on_event(FileEvent::Touched, t0 + ms(1001)),
            Decision::WaitUntil(t0 + ms(3000))
        );
        assert_eq!(
            clock.on_event(FileEvent::Closed, t0 + ms(1100)),
            Decision::WaitUntil(t0 + ms(1100) + SETTLE)
        );
        assert_eq!(clock.on_time(t0 + ms(1399)), Decision::WaitUntil(t0 + ms(1400)));
        assert_eq!(clock.on_time(t0 + ms(1400)), Decision::LoadNow);
        assert_eq!(clock.on_time(t0 + ms(1500)), Decision::Idle);
    }

    /// `echo a > f; sleep 0.1; echo b >> f`: two writers, each closing; one load, after
    /// the second close.
    #[test]
    fn two_writes_with_a_close_between_them_load_once_after_the_last() {
        let mut clock = ReloadClock::new(SETTLE, true);
        let (t0, decision) = feed(
            &mut clock,
            &[
                (0, FileEvent::Written),
                (1, FileEvent::Closed),
                (100, FileEvent::Written),
                (101, FileEvent::Closed),
            ],
        );
        assert_eq!(decision, Decision::WaitUntil(t0 + ms(101) + SETTLE));
        // The first close's deadline passes without a load.
        assert_eq!(clock.on_time(t0 + ms(301)), Decision::WaitUntil(t0 + ms(401)));
        assert_eq!(clock.on_time(t0 + ms(401)), Decision::LoadNow);
    }

    /// A writer that never closes the file: read at the longest wait, its table applied
    /// unless it removes routes.
    /// Writer A holds the file open; another process opens it and closes it without
    /// writing (`: >> f`): that close is not A's. A's own close, after a write, is.
    #[test]
    fn another_handles_open_and_close_does_not_end_the_writers_save() {
        let mut clock = ReloadClock::new(SETTLE, true);
        let (t0, decision) = feed(
            &mut clock,
            &[
                (0, FileEvent::Opened),
                (0, FileEvent::Written),
                (500, FileEvent::Opened),
                (500, FileEvent::Closed),
            ],
        );
        assert_eq!(
            decision,
            Decision::WaitUntil(t0 + clock.longest_wait()),
            "A is still open"
        );
        assert_eq!(clock.on_time(t0 + ms(800)), Decision::WaitUntil(t0 + ms(3000)));
        // A reader opens while A writes on: A's next write tells the reader's open apart.
        clock.on_event(FileEvent::Opened, t0 + ms(1000));
        clock.on_event(FileEvent::Written, t0 + ms(1500));
        assert_eq!(
            clock.on_event(FileEvent::Closed, t0 + ms(1600)),
            Decision::WaitUntil(t0 + ms(1900)),
            "A's close starts the settle clock"
        );
        assert_eq!(clock.on_time(t0 + ms(1900)), Decision::LoadNow);
        // `echo a > f; echo b >> f`, opens reported: the second writer's open follows a
        // close, so its own close ends the save.
        let (t1, decision) = feed(
            &mut clock,
            &[
                (0, FileEvent::Opened),
                (0, FileEvent::Written),
                (1, FileEvent::Closed),
                (100, FileEvent::Opened),
                (100, FileEvent::Written),
                (101, FileEvent::Closed),
            ],
        );
        assert_eq!(decision, Decision::WaitUntil(t1 + ms(101) + SETTLE));
        // An open with nothing pending (our own read after a load, a reader) starts nothing.
        clock.loaded();
        assert_eq!(clock.on_event(FileEvent::Opened, t1 + ms(500)), Decision::Idle);
    }

    #[test]
    fn a_writer_that_never_closes_is_read_after_the_longest_wait() {
        let mut clock = ReloadClock::new(SETTLE, true);
        assert_eq!(clock.longest_wait(), Duration::from_secs(3), "ten settle intervals");
        let (t0, _) = feed(&mut clock, &[(0, FileEvent::Written)]);
        assert_eq!(clock.on_time(t0 + ms(2999)), Decision::WaitUntil(t0 + ms(3000)));
        assert_eq!(clock.on_time(t0 + ms(3000)), Decision::LoadUnlessRemoving);
        clock.loaded();
        assert_eq!(clock.on_time(t0 + ms(3001)), Decision::Idle, "nothing left pending");
        let mut slow = ReloadClock::new(Duration::from_secs(2), true);
        assert_eq!(slow.longest_wait(), Duration::from_secs(20));
        slow.set_settle(ms(100));
        assert_eq!(
            slow.longest_wait(),
            Duration::from_secs(1),
            "the shortest: 100 ms settle"
        );
    }

    /// Held back at the longest wait (the table would remove routes): no deadline any more,
    /// however long the writer writes; its close (and the settle interval) loads the file.
    #[test]
    fn a_table_held_back_at_the_longest_wait_loads_when_its_writer_closes() {
        let mut clock = ReloadClock::new(SETTLE, true);
        let (t0, _) = feed(&mut clock, &[(0, FileEvent::Written)]);
        assert_eq!(clock.on_time(t0 + ms(3000)), Decision::LoadUnlessRemoving);
        clock.held_back();
        assert_eq!(clock.on_time(t0 + ms(3001)), Decision::Idle);
        assert_eq!(clock.on_event(FileEvent::Written, t0 + ms(9000)), Decision::Idle);
        assert_eq!(clock.on_event(FileEvent::Touched, t0 + ms(9500)), Decision::Idle);
        assert_eq!(clock.on_time(t0 + ms(60_000)), Decision::Idle, "no second attempt");
        assert_eq!(
            clock.on_event(FileEvent::Closed, t0 + ms(60_000)),
            Decision::WaitUntil(t0 + ms(60_300))
        );
        assert_eq!(clock.on_time(t0 + ms(60_300)), Decision::LoadNow);
        assert_eq!(clock.on_time(t0 + ms(60_301)), Decision::Idle);
    }

    /// The poll watcher (no closes): each change restarts the settle clock.
    #[test]
    fn without_closes_the_file_loads_once_unchanged_for_the_settle_interval() {
        let mut clock = ReloadClock::new(SETTLE, false);
        let (t0, decision) = feed(&mut clock, &[(0, FileEvent::Written), (100, FileEvent::Written)]);
        assert_eq!(decision, Decision::WaitUntil(t0 + ms(400)));
        assert_eq!(clock.on_time(t0 + ms(300)), Decision::WaitUntil(t0 + ms(400)));
        assert_eq!(clock.on_time(t0 + ms(400)), Decision::LoadNow);
        // A close, should one come, settles as well.
        let (t1, decision) = feed(&mut clock, &[(0, FileEvent::Touched), (50, FileEvent::Closed)]);
        assert_eq!(decision, Decision::WaitUntil(t1 + ms(350)));
    }

    #[test]
    fn a_file_that_never_stops_changing_still_loads_after_the_longest_wait() {
        let mut clock = ReloadClock::new(SETTLE, false);
        let t0 = Instant::now();
        let mut loads = Vec::new();
        for step in 0..80u64 {
            let now = t0 + ms(step * 100);
            if clock.on_time(now) == Decision::LoadNow {
                loads.push(step * 100);
            }
            clock.on_event(FileEvent::Written, now);
        }
        assert_eq!(
            loads,
            [3000, 6000],
            "one load per longest wait after the first change since the last load"
        );
    }

    #[test]
    fn the_settle_interval_of_a_new_table_applies_to_the_next_change() {
        let mut clock = ReloadClock::new(SETTLE, true);
        clock.set_settle(ms(50));
        let (t0, decision) = feed(&mut clock, &[(0, FileEvent::Written), (10, FileEvent::Closed)]);
        assert_eq!(decision, Decision::WaitUntil(t0 + ms(60)));
    }

    fn event(kind: EventKind, paths: &[&str]) -> Event {
        paths
            .iter()
            .fold(Event::new(kind), |event, path| event.add_path(PathBuf::from(path)))
    }

    #[test]
    fn watcher_events_are_read_as_what_they_say_about_the_file() {
        let names = WatchedNames {
            file: Some("routes.toml".into()),
        };
        let symlink = |p: &Path| p.ends_with("link/routes.toml");
        let classify = |kind: EventKind, paths: &[&str]| names.classify(&event(kind, paths), symlink);
        let file = "/etc/s/routes.toml";
        let write = EventKind::Modify(ModifyKind::Data(DataChange::Any));
        let cases: Vec<(EventKind, Vec<&str>, Option<FileEvent>)> = vec![
            (
                EventKind::Modify(ModifyKind::Name(RenameMode::To)),
                vec![file],
                Some(FileEvent::Replaced),
            ),
            (
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                vec!["/etc/s/.routes.toml.tmp", file],
                Some(FileEvent::Replaced),
            ),
            // Renamed away (vim's backup): not a complete file in place.
            (
                EventKind::Modify(ModifyKind::Name(RenameMode::Both)),
                vec![file, "/etc/s/routes.toml~"],
                Some(FileEvent::Touched),
            ),
            (
                EventKind::Modify(ModifyKind::Name(RenameMode::From)),
                vec![file],
                Some(FileEvent::Touched),
            ),
            (
                EventKind::Modify(ModifyKind::Name(RenameMode::To)),
                vec!["/etc/s/..data"],
                Some(FileEvent::Replaced),
            ),
            (
                EventKind::Create(CreateKind::File),
                vec!["/etc/s/..data_tmp"],
                Some(FileEvent::Touched),
            ),
            (
                EventKind::Create(CreateKind::File),
                vec![file],
                Some(FileEvent::Written),
            ),
            (
                EventKind::Create(CreateKind::File),
                vec!["/link/routes.toml"],
                Some(FileEvent::Replaced),
            ),
            (write, vec![file], Some(FileEvent::Written)),
            (EventKind::Modify(ModifyKind::Any), vec![file], Some(FileEvent::Written)),
            (
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                vec![file],
                Some(FileEvent::Closed),
            ),
            // A reader's close (not reported by inotify's mask anyway); any open.
            (EventKind::Access(AccessKind::Close(AccessMode::Read)), vec![file], None),
            (
                EventKind::Access(AccessKind::Open(AccessMode::Any)),
                vec![file],
                Some(FileEvent::Opened),
            ),
            (
                EventKind::Access(AccessKind::Open(AccessMode::Any)),
                vec!["/etc/s/other"],
                None,
            ),
            (
                EventKind::Access(AccessKind::Close(AccessMode::Write)),
                vec!["/etc/s/other"],
                None,
            ),
            (
                EventKind::Modify(ModifyKind::Metadata(MetadataKind::Any)),
                vec![file],
                Some(FileEvent::Touched),
            ),
            (
                EventKind::Remove(notify::event::RemoveKind::File),
                vec![file],
                Some(FileEvent::Touched),
            ),
            (write, vec!["/etc/s/other.toml"], None),
            (write, vec!["/etc/s/routes.toml.bak"], None),
            (EventKind::Other, vec![], Some(FileEvent::Touched)),
        ];
        for (kind, paths, expected) in cases {
            assert_eq!(classify(kind, &paths), expected, "{kind:?} {paths:?}");
        }
        let rescan = event(EventKind::Other, &[]).set_flag(notify::event::Flag::Rescan);
        assert_eq!(names.classify(&rescan, symlink), Some(FileEvent::Touched));
    }
}
