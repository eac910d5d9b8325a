//! `mythoughts-legacy`: parse flags, then start and serve until SIGTERM/Ctrl-C the way every MyThoughts
//! binary does ([`mythoughts_common::server::run_binary`]). Everything else is in the library.

use std::process::ExitCode;

use clap::Parser as _;
use mythoughts_legacy::cli::Cli;
use mythoughts_legacy::{app, startup};

fn main() -> ExitCode {
    let cli = Cli::parse();
    mythoughts_common::telemetry::init_tracing("info");
    let options = cli.options();
    mythoughts_common::server::run_binary("mythoughts-legacy", cli.listen.listen, move || async move {
        startup::build_state(options).await.map(app)
    })
}
