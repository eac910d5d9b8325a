//! `thoughts-service`: parse flags, then either serve until SIGTERM/Ctrl-C or run the import. Everything else
//! is in the library.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use mythoughts_common::server;
use thoughts_service::cli::{Cli, Command};
use thoughts_service::{app, import, startup};

fn main() -> ExitCode {
    let cli = Cli::parse();
    mythoughts_common::telemetry::init_tracing("info");
    let outcome = match &cli.command {
        Some(Command::Import { from }) => run_import(from, &cli.db),
        None => serve(cli),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("thoughts-service: {err:#}");
            ExitCode::FAILURE
        }
    }
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

fn serve(cli: Cli) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let shutdown = server::shutdown_signal().context("cannot install signal handlers")?;
        let state = startup::build_state(cli.options()).await.context("cannot start")?;
        let listener = tokio::net::TcpListener::bind(cli.listen)
            .await
            .with_context(|| format!("cannot listen on {}", cli.listen))?;
        let address = listener.local_addr().context("cannot read the bound address")?;
        println!("thoughts-service listening on http://{address}");
        server::serve(listener, app(state), shutdown, server::DRAIN_TIMEOUT)
            .await
            .context("server failed")?;
        tracing::info!("stopped");
        Ok(())
    })
}
