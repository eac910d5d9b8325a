//! Build script: the git commit `strangler --version` prints, as `STRANGLER_GIT_COMMIT`
//! (`git rev-parse --short HEAD`; `unknown commit` when git or the repository is missing,
//! e.g. a crate unpacked from a tarball). Reruns when HEAD moves: on `.git/HEAD` and on the
//! file of the branch it names (or `packed-refs`), found through git so that worktrees,
//! whose `.git` is a file, work too.

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
    // A path that does not exist would rerun this script on every build: watch only files.
    for path in watched.iter().filter(|path| std::path::Path::new(path).is_file()) {
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
