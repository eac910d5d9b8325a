//! `thoughts-service`: parse flags, then either run the import or start and serve until SIGTERM/Ctrl-C the
//! way every MyThoughts binary does ([`mythoughts_common::server::run_binary`]). Everything else is in the
//! library.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use thoughts_service::cli::{Cli, Command};
use thoughts_service::{app, import, startup};

const NAME: &str = "thoughts-service";

fn main() -> ExitCode {
    let cli = Cli::parse();
    mythoughts_common::telemetry::init_tracing("info");
    if let Some(Command::Import { from }) = &cli.command {
        return match run_import(from, &cli.db.db) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => {
                eprintln!("{NAME}: {err:#}");
                ExitCode::FAILURE
            }
        };
    }
    let options = cli.options();
    mythoughts_common::server::run_binary(NAME, cli.listen.listen, move || async move {
        startup::build_state(options).await.map(app)
    })
}

/// The import runs before (and without) the async runtime: it is one blocking transaction.
fn run_import(from: &Path, db: &Path) -> anyhow::Result<()> {
    let report = import::import_file(from, db).context("import failed")?;
    println!("{report}");
    if !report.conflicts.is_empty() {
        let ids: Vec<String> = report.conflicts.iter().map(i64::to_string).collect();
        anyhow::bail!(
            "{} thought(s) not imported: id(s) {} already exist in {} with different content (left unchanged)",
            ids.len(),
            ids.join(", "),
            db.display()
        );
    }
    Ok(())
}
