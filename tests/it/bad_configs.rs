//! The bad-config corpus: `tests/bad-configs/*.toml`, each a routing table with one thing
//! wrong. The file's first line says what; the second, `# expect: LINE:COL fragment`, says
//! where the loader must point and what its message must say.

use crate::support::strangler;
use std::path::PathBuf;

/// One corpus file and its expectation.
struct BadConfig {
    path: PathBuf,
    text: String,
    line: usize,
    column: usize,
    fragment: String,
}

fn corpus() -> Vec<BadConfig> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/bad-configs");
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "toml"))
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|path| {
            let text = std::fs::read_to_string(&path).unwrap();
            let mut lines = text.lines();
            let what = lines.next().unwrap_or_default();
            assert!(
                what.starts_with("# ") && what.len() > 10,
                "{}: no description",
                path.display()
            );
            let expect = lines
                .next()
                .and_then(|l| l.strip_prefix("# expect: "))
                .unwrap_or_else(|| panic!("{}: no `# expect: LINE:COL` line", path.display()));
            let (position, fragment) = expect.split_once(' ').unwrap_or((expect, ""));
            let (line, column) = position
                .split_once(':')
                .and_then(|(l, c)| Some((l.parse().ok()?, c.parse().ok()?)))
                .unwrap_or_else(|| panic!("{}: bad expectation `{expect}`", path.display()));
            BadConfig {
                fragment: fragment.to_owned(),
                path,
                text,
                line,
                column,
            }
        })
        .collect()
}

/// Proves that every file of the corpus is rejected, without a panic, and that the first
/// error names the expected line and column of the file and says what its header says.
#[test]
fn every_bad_config_is_rejected_at_its_line_and_column() {
    let corpus = corpus();
    assert!(corpus.len() >= 30, "only {} bad configs", corpus.len());
    let mut panics = 0;
    let mut wrong = Vec::new();
    for bad in &corpus {
        let name = bad.path.display().to_string();
        let parsed = std::panic::catch_unwind(|| strangler::table::Table::parse(&name, &bad.text));
        let Ok(parsed) = parsed else {
            panics += 1;
            wrong.push(format!("{name}: panicked"));
            continue;
        };
        let Err(errors) = parsed else {
            wrong.push(format!("{name}: accepted"));
            continue;
        };
        let first = &errors.0[0];
        let at = (first.location.line, first.location.column);
        if at != (bad.line, bad.column) || !first.message.contains(&bad.fragment) || first.file != name {
            wrong.push(format!(
                "{name}: want {}:{} `{}`, got {first}",
                bad.line, bad.column, bad.fragment
            ));
        }
    }
    println!(
        "figure: bad configs: {}/{} rejected at the expected file:line:col, {panics} panicked",
        corpus.len() - wrong.len(),
        corpus.len()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// Proves the same through the command line: `strangler check FILE` exits 1 and prints
/// `FILE:LINE:COL: message` first, for every file of the corpus.
#[tokio::test]
async fn strangler_check_reports_each_bad_config_with_file_line_col() {
    let corpus = corpus();
    let mut wrong = Vec::new();
    for bad in &corpus {
        let output = strangler(&[std::ffi::OsStr::new("check"), bad.path.as_os_str()]).await;
        let stdout = String::from_utf8_lossy(&output.stdout);
        let want = format!("{}:{}:{}: ", bad.path.display(), bad.line, bad.column);
        let first = stdout.lines().next().unwrap_or_default();
        if output.status.code() != Some(1) || !first.starts_with(&want) || !first.contains(&bad.fragment) {
            wrong.push(format!(
                "{}: exit {:?}, first line {first:?}, stderr {:?}",
                bad.path.display(),
                output.status.code(),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
    }
    println!(
        "figure: strangler check: {}/{} bad configs exit 1 with file:line:col first",
        corpus.len() - wrong.len(),
        corpus.len()
    );
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
