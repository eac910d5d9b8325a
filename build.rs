//! Build script: the git commit `strangler --version` prints, as `STRANGLER_GIT_COMMIT`
//! (`git rev-parse --short HEAD`; `unknown commit` when git or the repository is missing,
//! e.g. a crate unpacked from a tarball). Reruns when HEAD moves: on `.git/HEAD` and on the
//! file of the branch it names, the directory that file is (or will be) in, and
//! `packed-refs`, found through git so that worktrees, whose `.git` is a file, work too.

use std::process::Command;

fn main() {
    let commit = git(&["rev-parse", "--short", "HEAD"]).unwrap_or_else(|| "unknown commit".to_owned());
    println!("cargo:rustc-env=STRANGLER_GIT_COMMIT={commit}");
    println!("cargo:rerun-if-changed=build.rs");
    let mut watched = Vec::new();
    if let Some(head) = git(&["rev-parse", "--git-path", "HEAD"]) {
        watched.push(head);
    }
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.extend(git(&["rev-parse", "--git-path", &branch]));
        watched.extend(git(&["rev-parse", "--git-path", "packed-refs"]));
    }
    // A packed branch ref has no file of its own until the next commit writes one: watch
    // the directory it will appear in too (cargo scans a watched directory's entries).
    let branch_dirs: Vec<String> = watched
        .iter()
        .filter_map(|path| std::path::Path::new(path).parent())
        .filter(|dir| dir.ends_with("heads") || dir.components().any(|c| c.as_os_str() == "heads"))
        .map(|dir| dir.display().to_string())
        .collect();
    watched.extend(branch_dirs);
    // A path that does not exist would rerun this script on every build: watch only what is there.
    for path in watched.iter().filter(|path| std::path::Path::new(path).exists()) {
        println!("cargo:rerun-if-changed={path}");
    }
}

/// `git ARGS` in the crate's directory: its output's first line, if it ran and said something.
fn git(args: &[&str]) -> Option<String> {
    let output = Command::new("git")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .ok()?;
    let text = String::from_utf8(output.stdout).ok()?;
    let line = text.lines().next()?.trim();
    (output.status.success() && !line.is_empty()).then(|| line.to_owned())
}
