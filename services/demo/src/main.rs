//! `mythoughts-demo`: the whole MyThoughts migration on one command.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use mythoughts_demo::{Demo, Options, Placement};

/// The MyThoughts migration demo: the monolith, the thoughts, users and frontend services,
/// and strangler in front of them, on the loopback addresses routes.toml names.
#[derive(Debug, Parser)]
#[command(name = "mythoughts-demo", version, about)]
struct Cli {
    /// The routing table strangler serves and watches.
    #[arg(long, default_value = "routes.toml")]
    routes: PathBuf,
    /// Where the demo keeps its keys and SQLite database (created if missing).
    #[arg(long, default_value = "demo-data")]
    data_dir: PathBuf,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    mythoughts_common::telemetry::init_tracing("info");
    let shutdown = match mythoughts_common::server::shutdown_signal() {
        Ok(shutdown) => shutdown,
        Err(e) => {
            eprintln!("mythoughts-demo: cannot listen for signals: {e}");
            return ExitCode::FAILURE;
        }
    };
    let options = Options {
        routes: cli.routes,
        data_dir: cli.data_dir,
        placement: Placement::AsConfigured,
        fast_passwords: false,
    };
    let demo = match Demo::start(options).await {
        Ok(demo) => demo,
        Err(e) => {
            eprintln!("mythoughts-demo: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("{}", demo.banner());
    shutdown.await;
    demo.shutdown().await;
    ExitCode::SUCCESS
}
