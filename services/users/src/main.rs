//! `users-service`: parse flags, then start and serve until SIGTERM/Ctrl-C the way every MyThoughts binary
//! does ([`mythoughts_common::server::run_binary`]). Everything else is in the library.

use std::process::ExitCode;

use clap::Parser as _;
use users_service::cli::Cli;
use users_service::{app, startup};

fn main() -> ExitCode {
    let cli = Cli::parse();
    mythoughts_common::telemetry::init_tracing("info");
    let options = cli.options();
    mythoughts_common::server::run_binary("users-service", cli.listen.listen, move || async move {
        startup::build_state(options).await.map(app)
    })
}
