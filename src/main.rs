//! The `strangler` binary: parse the command line, set up logging, call into the library,
//! map the outcome to an exit code.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::Parser;
use strangler::cli::{Cli, Command, FlipArgs, InitArgs, LogFormat, ParityArgs, StatusArgs};
use strangler::table::Table;
use tracing_subscriber::EnvFilter;

/// mimalloc: a proxy allocates and frees many small buffers per request across threads;
/// mimalloc's thread-local free lists cost less than glibc malloc's arenas there.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    init_tracing(cli.log_format);
    match cli.command {
        Command::Serve { config } => match serve(config) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("strangler: {}", error_chain(&e));
                ExitCode::FAILURE
            }
        },
        Command::Check {
            file,
            against,
            admin_token_file,
        } => match against {
            None => check(&file),
            Some(against) => check_against(&file, &against, admin_token_file.as_deref()),
        },
        Command::Explain {
            config,
            json,
            method,
            path,
        } => explain(&config, json, &method, &path),
        Command::Flip(args) => flip(args),
        Command::Status(args) => status(args),
        Command::Parity(args) => parity(args),
        Command::Init(args) => init(args),
        Command::Completions { shell } => {
            strangler::cli::write_completions(shell, &mut stdout());
            ExitCode::SUCCESS
        }
        Command::Man { dir: None } => written(strangler::cli::write_man_page(&mut stdout())),
        Command::Man { dir: Some(dir) } => man_pages(&dir),
        Command::Schema => written(strangler::commands::schema::run(&mut stdout())),
    }
}

/// `strangler man --dir DIR`: one page per subcommand, each file named on stdout.
fn man_pages(dir: &std::path::Path) -> ExitCode {
    match strangler::cli::write_man_pages(dir) {
        Ok(pages) => written(
            pages
                .iter()
                .try_for_each(|page| writeln!(stdout(), "{}", page.display())),
        ),
        Err(e) => {
            eprintln!("strangler: cannot write man pages to {}: {e}", dir.display());
            ExitCode::FAILURE
        }
    }
}

fn init(args: InitArgs) -> ExitCode {
    let options = strangler::commands::init::Options {
        legacy: args.legacy,
        out: args.out,
        force: args.force,
        listen: args.listen,
        admin_listen: args.admin_listen,
    };
    match strangler::commands::init::run(&options, &mut stdout(), &mut std::io::stderr()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("strangler: {e}");
            ExitCode::FAILURE
        }
    }
}

fn serve(config: std::path::PathBuf) -> anyhow::Result<()> {
    // Every connection is a file: take the hard limit rather than a 1024 soft default.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => tracing::debug!(limit, "open files limit"),
        Err(e) => tracing::warn!(error = %e, "cannot raise the open files limit"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    runtime.block_on(async move {
        let app = strangler::App::load(config)?;
        let listeners = app.bind().await?;
        let proxy_addr = listeners.proxy.local_addr()?;
        let admin_addr = listeners.admin.local_addr()?;
        let snapshot = app.state().snapshot();
        tracing::info!(
            proxy = %proxy_addr,
            admin = %admin_addr,
            version = %snapshot.config().version,
            routes = snapshot.routes.len(),
            "strangler listening"
        );
        let scheme = if app.serves_tls() { "https" } else { "http" };
        let shutdown = strangler::shutdown_signal();
        strangler::run_with_ready(app, listeners, shutdown, || {
            // One plain line on stdout for scripts and tests that started us on port 0;
            // printed once signal handlers and the config watcher are in place.
            println!("strangler ready: proxy {scheme}://{proxy_addr} admin http://{admin_addr}");
        })
        .await?;
        Ok(())
    })
}

/// Standard output for the commands: a reader that went away (`strangler status | head`)
/// ends the output, not the command. Rust ignores SIGPIPE, so without this every write
/// after `head` exits fails with "Broken pipe" and the command exits 1 (or panics, for
/// `println!`).
fn stdout() -> StdoutUntilClosed {
    StdoutUntilClosed(std::io::stdout())
}

struct StdoutUntilClosed(std::io::Stdout);

impl std::io::Write for StdoutUntilClosed {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        match self.0.write(buf) {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(buf.len()),
            other => other,
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self.0.flush() {
            Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
            other => other,
        }
    }
}

fn written(result: std::io::Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strangler: cannot write output: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check(file: &std::path::Path) -> ExitCode {
    match strangler::commands::check::run(file, &mut stdout(), &mut std::io::stderr()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("strangler: {e}");
            ExitCode::FAILURE
        }
    }
}

fn check_against(file: &std::path::Path, against: &str, admin_token_file: Option<&std::path::Path>) -> ExitCode {
    if let Err(code) = use_admin_token(admin_token_file) {
        return code;
    }
    let run = strangler::commands::check::run_against(file, against, &mut stdout(), &mut std::io::stderr());
    match run {
        Ok(verdict) => ExitCode::from(verdict.exit_code()),
        Err(e) => {
            eprintln!("strangler: {e}");
            ExitCode::FAILURE
        }
    }
}

fn explain(config: &std::path::Path, json: bool, method: &str, path: &str) -> ExitCode {
    let table = match Table::load(config) {
        Ok(table) => table,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::FAILURE;
        }
    };
    match strangler::commands::explain::explain(&table, method, path) {
        Ok(explanation) if json => match serde_json::to_string_pretty(&explanation) {
            Ok(text) => written(writeln!(stdout(), "{text}")),
            Err(e) => {
                eprintln!("strangler: {e}");
                ExitCode::FAILURE
            }
        },
        Ok(explanation) => written(write!(stdout(), "{explanation}")),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::FAILURE
        }
    }
}

/// Reads `--admin-token-file` for the admin API client; exit code 2 when it cannot be read.
fn use_admin_token(file: Option<&std::path::Path>) -> Result<(), ExitCode> {
    let Some(file) = file else { return Ok(()) };
    match strangler::config::read_token_file(file, "`--admin-token-file`") {
        Ok(token) => {
            strangler::commands::admin_client::use_admin_token(token);
            Ok(())
        }
        Err(e) => {
            eprintln!("strangler: {e}");
            Err(ExitCode::from(2))
        }
    }
}

fn flip(args: FlipArgs) -> ExitCode {
    if let Err(code) = use_admin_token(args.admin_token_file.as_deref()) {
        return code;
    }
    let options = strangler::commands::flip::Options {
        config: args.config,
        route: args.route,
        stage: args.stage,
        percent: args.percent,
        admins: args.admins,
        admin_dns: args.admin_dns,
        prometheus: args.prometheus,
        parity_report: args.parity_report,
        thresholds: strangler::commands::flip::Thresholds {
            min_requests: args.min_requests,
            min_match_rate: args.min_match_rate,
        },
        force: args.force,
        dry_run: args.dry_run,
    };
    match strangler::commands::flip::run(&options, &mut stdout(), &mut std::io::stderr()) {
        Ok(outcome) => ExitCode::from(outcome.exit_code()),
        Err(e) => {
            eprintln!("strangler: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn status(args: StatusArgs) -> ExitCode {
    if let Err(code) = use_admin_token(args.admin_token_file.as_deref()) {
        return code;
    }
    let options = strangler::commands::status::Options {
        admins: args.admins,
        admin_dns: args.admin_dns,
        config: args.config,
        json: args.json,
    };
    match strangler::commands::status::run(&options, &mut stdout()) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(
            e @ (strangler::commands::status::StatusError::NoAdmin { .. }
            | strangler::commands::status::StatusError::Usage(_)),
        ) => {
            eprintln!("strangler: {e}");
            ExitCode::from(2)
        }
        Err(e) => {
            eprintln!("strangler: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parity(args: ParityArgs) -> ExitCode {
    let options = strangler::commands::parity::replay::Options {
        config: args.config,
        requests: args.requests,
        routes: args.routes,
        legacy: args.legacy,
        new: args.new,
        headers: args.headers,
        noise_sample: args.noise_sample,
        concurrency: args.concurrency,
        timeout: args.timeout,
        junit: args.junit,
        json: args.json,
        setup: args.setup,
        concurrent_writes: args.concurrent_writes,
        legacy_from: args.legacy_from,
    };
    match strangler::commands::parity::replay::run(&options, &mut stdout()) {
        Ok(run) if run.failed() => ExitCode::FAILURE,
        Ok(_) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("strangler: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

fn init_tracing(format: LogFormat) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(false).init(),
        LogFormat::Human => builder.with_ansi(std::io::stderr().is_terminal()).init(),
    }
}

/// An error and its causes on one line (see [`strangler::error_line`]).
fn error_chain(error: &anyhow::Error) -> String {
    let error: &(dyn std::error::Error + 'static) = error.as_ref();
    strangler::error_line::of(error)
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("routes.toml: cannot read: {source}")]
    struct SaysItsSource {
        source: std::io::Error,
    }

    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        let io = std::io::Error::from(std::io::ErrorKind::NotFound);
        let said = io.to_string();
        let error = anyhow::Error::new(SaysItsSource { source: io });
        assert_eq!(error_chain(&error), format!("routes.toml: cannot read: {said}"));
    }

    #[test]
    fn a_context_and_its_cause_are_both_said() {
        let error = anyhow::anyhow!("address in use").context("cannot listen on 127.0.0.1:8000");
        assert_eq!(error_chain(&error), "cannot listen on 127.0.0.1:8000: address in use");
    }
}
