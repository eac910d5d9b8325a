//! `frontend-service`: parse flags, start, serve until SIGTERM/Ctrl-C. Everything else is in the library.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use frontend_service::cli::Cli;
use frontend_service::{app, startup};
use mythoughts_common::server;

fn main() -> ExitCode {
    let cli = Cli::parse();
    mythoughts_common::telemetry::init_tracing("info");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("frontend-service: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("frontend-service: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let shutdown = server::shutdown_signal().context("cannot install signal handlers")?;
    let options = cli.options();
    tracing::info!(thoughts = %options.backends.thoughts, users = %options.backends.users, "backends");
    let state = startup::build_state(options).await.context("cannot start")?;
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    let address = listener.local_addr().context("cannot read the bound address")?;
    println!("frontend-service listening on http://{address}");
    server::serve(listener, app(state), shutdown, server::DRAIN_TIMEOUT)
        .await
        .context("server failed")?;
    tracing::info!("stopped");
    Ok(())
}
