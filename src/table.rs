//! The compiled routing table: a validated config and its [`RouteTable`].
//!
//! This is what `strangler check`, `explain`, `flip` and `parity` work with, and what a
//! reload builds (and validates completely) before the running proxy turns it into a
//! [`Snapshot`](crate::state::Snapshot). It does no network IO and starts nothing, so the
//! offline commands use it without the runtime.

use std::path::Path;

use crate::config::{self, Config, ConfigError, ConfigErrors, LoadError};
use crate::router::RouteTable;

/// A validated config and its compiled routes: what `strangler check` and `explain`
/// need, and what a reload builds before anything is swapped.
#[derive(Debug, Clone)]
pub struct Table {
    /// The validated file.
    pub config: Config,
    /// Its compiled routes; route ids index `config.routes`.
    pub routes: RouteTable,
}

impl Table {
    /// Validates config text completely, route conflicts included.
    pub fn parse(file: &str, text: &str) -> Result<Self, ConfigErrors> {
        let config = config::parse_str(file, text)?;
        let routes = RouteTable::build(&config.routes).map_err(|conflicts| {
            ConfigErrors(
                conflicts
                    .into_iter()
                    .map(|c| ConfigError {
                        file: file.to_owned(),
                        location: config.routes[c.route].location.clone(),
                        message: c.message,
                    })
                    .collect(),
            )
        })?;
        Ok(Self { config, routes })
    }

    /// Reads and validates a file. Blocking.
    pub fn load(path: &Path) -> Result<Self, LoadError> {
        let text = Self::read(path)?;
        Self::parse(&path.display().to_string(), &text).map_err(LoadError::Invalid)
    }

    /// [`load`](Self::load) for serving: also reads the secrets the table names (the admin
    /// token file) and its error pages, again on every reload, so a rotated token or an
    /// edited page takes effect. Blocking.
    pub fn load_for_serving(path: &Path) -> Result<Self, LoadError> {
        let mut table = Self::load(path)?;
        table.config.read_admin_token().map_err(LoadError::Invalid)?;
        table.config.read_error_pages().map_err(LoadError::Invalid)?;
        Ok(table)
    }

    /// The text of a table file: a regular file of at most [`MAX_TABLE_BYTES`]. Anything
    /// else at the path (a FIFO, a device such as `/dev/zero` behind a symlink, a directory)
    /// is refused without waiting on it, and the open itself never waits: a reload holds
    /// the reload lock while it reads, so a read that blocked or never ended would stop
    /// every later reload and shutdown. Blocking (file IO), but bounded.
    pub fn read(path: &Path) -> Result<String, LoadError> {
        read_regular_file(path).map_err(|source| LoadError::Read {
            path: path.display().to_string(),
            source,
        })
    }
}

/// The most [`Table::read`] reads: a routing table is a few KiB; 16 MiB is far beyond any
/// real one and small enough to hold and parse.
pub const MAX_TABLE_BYTES: u64 = 16 * 1024 * 1024;

/// Reads `path` if it is a regular file of at most [`MAX_TABLE_BYTES`].
fn read_regular_file(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    // Checked before opening: opening a FIFO for reading waits for a writer.
    refuse_unless_regular(&std::fs::metadata(path)?)?;
    let file = open_without_waiting(path)?;
    // And again on what was opened, should the name have been swapped in between.
    refuse_unless_regular(&file.metadata()?)?;
    let mut bytes = Vec::new();
    file.take(MAX_TABLE_BYTES + 1).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > MAX_TABLE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!(
                "routes.toml is larger than {} MiB (the most strangler reads as a routing table)",
                MAX_TABLE_BYTES / (1024 * 1024)
            ),
        ));
    }
    String::from_utf8(bytes).map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidData, e))
}

/// An error unless `metadata` is a regular file's, naming what it is instead.
fn refuse_unless_regular(metadata: &std::fs::Metadata) -> std::io::Result<()> {
    let kind = metadata.file_type();
    if kind.is_file() {
        return Ok(());
    }
    let what = if kind.is_dir() {
        "a directory"
    } else {
        special_file_kind(&kind)
    };
    Err(std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!("it is {what}, not a regular file"),
    ))
}

#[cfg(unix)]
fn special_file_kind(kind: &std::fs::FileType) -> &'static str {
    use std::os::unix::fs::FileTypeExt;
    if kind.is_fifo() {
        "a FIFO (named pipe)"
    } else if kind.is_char_device() {
        "a character device"
    } else if kind.is_block_device() {
        "a block device"
    } else if kind.is_socket() {
        "a socket"
    } else {
        "not a file"
    }
}

#[cfg(not(unix))]
fn special_file_kind(_: &std::fs::FileType) -> &'static str {
    "not a file"
}

/// Opens `path` for reading without waiting: non-blocking on Linux (a FIFO put in place
/// after the check opens at once rather than waiting for a writer; a regular file reads
/// as usual), a plain open elsewhere (after the check above).
fn open_without_waiting(path: &Path) -> std::io::Result<std::fs::File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(target_os = "linux")]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(i32::try_from(rustix::fs::OFlags::NONBLOCK.bits()).unwrap_or(0));
    }
    options.open(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read_error(path: &Path) -> String {
        match Table::read(path) {
            Ok(text) => panic!("read {} bytes", text.len()),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn only_a_regular_file_of_at_most_16_mib_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("routes.toml");
        std::fs::write(&file, "# a table\n").unwrap();
        assert_eq!(Table::read(&file).unwrap(), "# a table\n");

        let error = read_error(dir.path());
        assert!(error.contains("it is a directory, not a regular file"), "{error}");

        let big = dir.path().join("big.toml");
        let exactly = usize::try_from(MAX_TABLE_BYTES).unwrap();
        std::fs::write(&big, vec![b'#'; exactly]).unwrap();
        assert_eq!(Table::read(&big).unwrap().len(), exactly, "16 MiB itself is read");
        std::fs::write(&big, vec![b'#'; exactly + 1]).unwrap();
        let error = read_error(&big);
        assert!(error.contains("routes.toml is larger than 16 MiB"), "{error}");
    }

    /// `ln -s /dev/zero routes.toml` would read without end.
    #[cfg(unix)]
    #[test]
    fn a_device_behind_a_symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let link = dir.path().join("routes.toml");
        std::os::unix::fs::symlink("/dev/zero", &link).unwrap();
        let error = read_error(&link);
        assert!(
            error.contains("it is a character device, not a regular file"),
            "{error}"
        );
    }

    /// A FIFO with no writer: refused at once rather than waited on.
    #[cfg(unix)]
    #[test]
    fn a_fifo_is_refused_without_waiting_for_a_writer() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("routes.toml");
        let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
        assert!(made.success());
        let error = read_error(&fifo);
        assert!(
            error.contains("it is a FIFO (named pipe), not a regular file"),
            "{error}"
        );
        // Should the check be passed (the name swapped after it), the open does not wait.
        #[cfg(target_os = "linux")]
        {
            let opened = open_without_waiting(&fifo).unwrap();
            assert!(refuse_unless_regular(&opened.metadata().unwrap()).is_err());
        }
    }
}
