//! `users-service`: parse flags, start, serve until SIGTERM/Ctrl-C. Everything else is in the library.

use std::process::ExitCode;

use anyhow::Context as _;
use clap::Parser as _;
use mythoughts_common::server;
use users_service::cli::Cli;
use users_service::{app, startup};

fn main() -> ExitCode {
    let cli = Cli::parse();
    mythoughts_common::telemetry::init_tracing("info");
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("users-service: cannot start the async runtime: {err}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("users-service: {err:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<()> {
    let shutdown = server::shutdown_signal().context("cannot install signal handlers")?;
    let state = startup::build_state(cli.options()).await.context("cannot start")?;
    let listener = tokio::net::TcpListener::bind(cli.listen)
        .await
        .with_context(|| format!("cannot listen on {}", cli.listen))?;
    let address = listener.local_addr().context("cannot read the bound address")?;
    println!("users-service listening on http://{address}");
    server::serve(listener, app(state), shutdown, server::DRAIN_TIMEOUT)
        .await
        .context("server failed")?;
    tracing::info!("stopped");
    Ok(())
}
