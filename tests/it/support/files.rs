//! Files changed the ways a running proxy sees them change: renamed over (as editors and
//! `flip` do), written in place in parts (a paste, `cat >`, `rsync --inplace`), and swapped
//! as a Kubernetes ConfigMap volume.

use std::path::{Path, PathBuf};

/// Replaces `path` the way editors do: write a temp file next to it, rename it over.
pub fn replace_file(path: &Path, contents: &str) {
    let name = path.file_name().unwrap().to_string_lossy();
    let tmp = path.with_file_name(format!(".{name}.tmp"));
    std::fs::write(&tmp, contents).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// A file being written in place: opened for writing (truncated) by [`InPlaceWriter::open`],
/// written in parts that are each flushed to the file, closed by [`InPlaceWriter::close`]
/// (or when dropped).
pub struct InPlaceWriter {
    file: std::fs::File,
}

impl InPlaceWriter {
    /// Opens `path` for writing, truncating it (`cat > path`).
    pub fn open(path: &Path) -> InPlaceWriter {
        let file = std::fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(path)
            .unwrap();
        InPlaceWriter { file }
    }

    /// Opens `path` for appending (`cat >> path`).
    pub fn append(path: &Path) -> InPlaceWriter {
        let file = std::fs::OpenOptions::new().append(true).open(path).unwrap();
        InPlaceWriter { file }
    }

    /// Writes `part` and flushes it into the file (readers see it), keeping the file open.
    pub fn write(&mut self, part: &str) {
        use std::io::Write;
        self.file.write_all(part.as_bytes()).unwrap();
        self.file.flush().unwrap();
    }

    /// Closes the file.
    pub fn close(self) {
        drop(self.file);
    }
}

/// A ConfigMap or Secret volume as the kubelet lays it out
/// (pkg/volume/util/atomic_writer.go): the payload in a timestamped directory, `..data`
/// pointing at it, and each key a symlink through `..data`.
#[cfg(unix)]
pub struct ConfigMapVolume {
    dir: PathBuf,
    current: String,
}

#[cfg(unix)]
impl ConfigMapVolume {
    /// Lays out `files` (`(key, contents)`) in `dir` (created if missing) under `timestamp`.
    pub fn create(dir: &Path, timestamp: &str, files: &[(&str, &str)]) -> ConfigMapVolume {
        use std::os::unix::fs::symlink;
        std::fs::create_dir_all(dir.join(timestamp)).unwrap();
        for (key, contents) in files {
            std::fs::write(dir.join(timestamp).join(key), contents).unwrap();
        }
        symlink(timestamp, dir.join("..data")).unwrap();
        for (key, _) in files {
            symlink(format!("..data/{key}"), dir.join(key)).unwrap();
        }
        ConfigMapVolume {
            dir: dir.to_path_buf(),
            current: timestamp.to_owned(),
        }
    }

    /// An update, step for step as the kubelet does it: write the new payload into a new
    /// timestamped directory, point `..data_tmp` at it, rename `..data_tmp` over `..data`
    /// (the atomic swap), then delete the old timestamped directory.
    pub fn update(&mut self, timestamp: &str, files: &[(&str, &str)]) {
        use std::os::unix::fs::symlink;
        std::fs::create_dir(self.dir.join(timestamp)).unwrap();
        for (key, contents) in files {
            std::fs::write(self.dir.join(timestamp).join(key), contents).unwrap();
        }
        symlink(timestamp, self.dir.join("..data_tmp")).unwrap();
        std::fs::rename(self.dir.join("..data_tmp"), self.dir.join("..data")).unwrap();
        std::fs::remove_dir_all(self.dir.join(&self.current)).unwrap();
        self.current = timestamp.to_owned();
    }
}
