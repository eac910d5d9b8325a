//! The command line: raw arguments parsed by clap into [`Cli`].

use std::path::PathBuf;

use clap::builder::PossibleValue;
use clap::{Args, CommandFactory, Parser, Subcommand, ValueEnum};

use crate::config::Stage;

/// `strangler --version`: the crate's version and the commit it was built from
/// (`0.1.0 (abc1234)`, or `(unknown commit)` when built without git; see build.rs).
pub const VERSION: &str = concat!(env!("CARGO_PKG_VERSION"), " (", env!("STRANGLER_GIT_COMMIT"), ")");

/// The long help's closing part (`strangler help`, `strangler --help`): what
/// `--log-format` writes, said once here rather than under every subcommand.
const LOGGING_HELP: &str = "\
Logs go to stderr. --log-format human (the default) writes text for people, in colour on a
terminal; --log-format json writes one JSON object per line for log pipelines. RUST_LOG
filters them (default `info`); the access log is the target `strangler::access`, e.g.
RUST_LOG=info,strangler::access=off silences it alone.

Examples:
  strangler init --legacy http://127.0.0.1:3000
  strangler check && strangler serve
  strangler explain GET /api/users/42";

/// A reverse proxy for strangler-fig migrations.
#[derive(Debug, Parser)]
#[command(
    name = "strangler",
    version = VERSION,
    about,
    propagate_version = true,
    after_long_help = LOGGING_HELP
)]
pub struct Cli {
    /// Log format on stderr: `human` or `json` (see `strangler help`).
    #[arg(
        long,
        value_enum,
        value_name = "FORMAT",
        default_value_t = LogFormat::Human,
        global = true,
        hide_possible_values = true
    )]
    pub log_format: LogFormat,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Log output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Text for people (colours on a terminal).
    Human,
    /// JSON lines for log pipelines.
    Json,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy.
    #[command(
        after_help = "Examples:\n  strangler serve\n  strangler serve --config /etc/strangler/routes.toml\n  kill -HUP $(pidof strangler)   # reload now (saving the file reloads it too)"
    )]
    Serve {
        /// The routing table.
        #[arg(long, short, default_value = "routes.toml")]
        config: PathBuf,
    },
    /// Validate a routing table; print every error as file:line:col: message.
    ///
    /// With --against, also print what the table would change, route by route (`+ name`,
    /// `- name`, `~ name (stage shadow -> canary)`), like `terraform plan`. Exit 0 valid
    /// (whatever the changes), 1 invalid, 2 the --against target cannot be reached or read.
    #[command(
        after_help = "Examples:\n  strangler check routes.toml\n  strangler check routes.toml --against http://127.0.0.1:9100\n  strangler check next.toml --against routes.toml"
    )]
    Check {
        /// The routing table.
        #[arg(default_value = "routes.toml")]
        file: PathBuf,
        /// Compare with the table in force at a running proxy's admin API (`http://host:port`)
        /// or with another routes.toml. Without a value: the admin API of the proxy that runs
        /// FILE (its `proxy.admin_listen`, with its `admin_token_file`); give FILE first then.
        #[arg(long, value_name = "ADMIN_URL_OR_FILE", num_args = 0..=1, default_missing_value = "")]
        against: Option<String>,
        /// File holding the admin API's bearer token (for --against a proxy with `admin_token_file`).
        #[arg(long, value_name = "FILE", env = "STRANGLER_ADMIN_TOKEN_FILE")]
        admin_token_file: Option<PathBuf>,
    },
    /// Show which route a request takes, why, and where it goes.
    #[command(
        after_help = "Examples:\n  strangler explain GET /api/users/42\n  strangler explain --config routes.toml --json POST '/api/login?next=/'"
    )]
    Explain {
        /// The routing table.
        #[arg(long, short, default_value = "routes.toml")]
        config: PathBuf,
        /// Print JSON for scripts.
        #[arg(long)]
        json: bool,
        /// Request method, e.g. GET.
        method: String,
        /// Request path, optionally with a query, e.g. /api/thoughts/5.
        path: String,
    },
    /// Move a route to another stage by editing routes.toml in place (comments and layout
    /// kept); a step forward to canary or new needs parity evidence.
    ///
    /// Prints the diff, validates the new table like a reload would, and replaces the file
    /// atomically. Exit 0 done, 1 refused (evidence, validation), 2 usage or unknown route.
    #[command(
        after_help = "Examples:\n  strangler flip users-api shadow\n  strangler flip users-api canary --percent 10\n  strangler flip users-api new --parity-report parity.json --dry-run"
    )]
    Flip(FlipArgs),
    /// The migration board of running proxies: each route's stage, share to new and
    /// parity, and whether every replica runs the same table. Exit 1 if they disagree or
    /// one is down.
    #[command(
        after_help = "Examples:\n  strangler status\n  strangler status --admin http://10.0.0.1:9100 --admin http://10.0.0.2:9100\n  strangler status --json | jq .routes"
    )]
    Status(StatusArgs),
    /// Replay a corpus of requests against each route's legacy and new upstreams and
    /// compare the answers with the route's compare rules (parity evidence for CI).
    ///
    /// Prints a table per route and every mismatch; writes JUnit XML (--junit) and a JSON
    /// report that `strangler flip --parity-report` reads (--json). Exit 0 when every
    /// compared request matched (or differed only by noise, or as its divergence states),
    /// 1 on any mismatch, resolved divergence or error, or when no request was compared, 2
    /// when the replay could not run (usage, table, corpus).
    #[command(
        after_help = "Examples:\n  strangler parity --requests traffic.har --route users-api --junit parity.xml --json parity.json\n  strangler parity --legacy http://127.0.0.1:8001 --new http://127.0.0.1:8002 --requests corpus.jsonl --setup ./reset-dbs.sh\n  strangler parity --legacy-from golden.har --new http://127.0.0.1:8002"
    )]
    Parity(ParityArgs),
    /// Write a first routing table for your monolith: commented, valid, a few lines.
    ///
    /// The monolith becomes upstream `legacy`, which serves every request until a route
    /// moves it; listeners keep their defaults unless --listen/--admin-listen are given.
    /// Validates what it wrote as `check` does and prints the next steps. Exit 0 written,
    /// 1 refused (the file exists; --force replaces it) or invalid.
    #[command(after_help = "Examples:\n  strangler init --legacy http://127.0.0.1:3000\n  \
                            strangler init --legacy http://legacy:8080 --out /etc/strangler/routes.toml")]
    Init(InitArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell) on stdout.
    #[command(after_help = "Examples:\n  \
                            strangler completions bash > ~/.local/share/bash-completion/completions/strangler\n  \
                            strangler completions zsh > ~/.zfunc/_strangler\n  \
                            strangler completions fish > ~/.config/fish/completions/strangler.fish")]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print strangler's man page (roff) on stdout, or write one page per subcommand.
    #[command(after_help = "Examples:\n  strangler man | man -l -\n  \
                            strangler man | gzip > /usr/local/share/man/man1/strangler.1.gz\n  \
                            strangler man --dir /usr/local/share/man/man1   # strangler.1, strangler-serve.1, …")]
    Man {
        /// Write strangler.1 and strangler-SUBCOMMAND.1 for every subcommand into this
        /// directory (created if missing) instead of printing the top page.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
    /// Print the JSON Schema (draft 07) of routes.toml on stdout, for editor completion and
    /// checks (taplo, Even Better TOML).
    #[command(after_help = "Examples:\n  strangler schema > routes.schema.json\n  \
                            # then, as the first line of routes.toml:  #:schema ./routes.schema.json")]
    Schema,
}

/// `strangler init`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The monolith's base URL: the `legacy` upstream.
    #[arg(long, value_name = "URL", default_value = crate::commands::init::DEFAULT_LEGACY)]
    pub legacy: String,
    /// The file to write.
    #[arg(long, short, value_name = "FILE", default_value = "routes.toml")]
    pub out: PathBuf,
    /// Replace the file if it exists.
    #[arg(long)]
    pub force: bool,
    /// Write `listen` (the public listener, IP:PORT) instead of leaving its default, 0.0.0.0:8000.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<String>,
    /// Write `admin_listen` (IP:PORT) instead of leaving its default, 127.0.0.1:9100.
    #[arg(long, value_name = "ADDR")]
    pub admin_listen: Option<String>,
}

/// Writes the completion script for `shell` to `out`.
pub fn write_completions(shell: clap_complete::Shell, out: &mut dyn std::io::Write) {
    clap_complete::generate(shell, &mut Cli::command(), "strangler", out);
}

/// Writes the man page (roff, section 1) to `out`.
pub fn write_man_page(out: &mut dyn std::io::Write) -> std::io::Result<()> {
    clap_mangen::Man::new(Cli::command()).render(out)
}

/// Writes `strangler.1` and `strangler-SUBCOMMAND.1` for every subcommand into `dir`
/// (created if missing); returns the files written, sorted. A page that is a symbolic link
/// is refused before anything is written: run as root into a shared directory, writing
/// through it would overwrite whatever it points at.
pub fn write_man_pages(dir: &std::path::Path) -> std::io::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir)?;
    let command = Cli::command();
    let mut pages = vec![dir.join("strangler.1")];
    for sub in command.get_subcommands().filter(|s| !s.is_hide_set()) {
        pages.push(dir.join(format!("strangler-{}.1", sub.get_name())));
    }
    if let Some(link) = pages
        .iter()
        .find(|page| std::fs::symlink_metadata(page).is_ok_and(|m| m.file_type().is_symlink()))
    {
        return Err(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!(
                "{} is a symbolic link: remove it, then write the pages again",
                link.display()
            ),
        ));
    }
    clap_mangen::generate_to(command, dir)?;
    pages.sort();
    Ok(pages)
}

/// `strangler flip ROUTE STAGE`.
#[derive(Debug, Args)]
pub struct FlipArgs {
    /// The routing table to edit.
    #[arg(long, short, default_value = "routes.toml")]
    pub config: PathBuf,
    /// The route's `name`.
    pub route: String,
    /// The stage to move it to (legacy → shadow → canary → new is forward).
    #[arg(value_enum)]
    pub stage: Stage,
    /// At stage canary: the share of traffic for the new upstream, 0 to 100 (keeps `sticky`).
    #[arg(long, value_name = "N")]
    pub percent: Option<f64>,
    /// Admin API of a replica to read its table version and parity evidence from,
    /// `http://host:port`; repeat for every replica: the evidence is summed over the ones
    /// that run this file's version (default: the table's `proxy.admin_listen`).
    #[arg(long = "admin", value_name = "URL", conflicts_with_all = ["parity_report", "prometheus"])]
    pub admins: Vec<String>,
    /// Every address HOST resolves to is a replica, `HOST:PORT` (a Kubernetes headless
    /// Service); repeatable, and combines with --admin.
    #[arg(long = "admin-dns", value_name = "HOST:PORT", conflicts_with_all = ["parity_report", "prometheus"])]
    pub admin_dns: Vec<String>,
    /// Read the parity counts from this Prometheus server's HTTP API instead, `http://host:9090`
    /// (summed over every replica it scrapes, by evidence period).
    #[arg(long, value_name = "URL", conflicts_with = "parity_report")]
    pub prometheus: Option<String>,
    /// File holding the admin API's bearer token (for a proxy with `admin_token_file`).
    #[arg(long, value_name = "FILE", env = "STRANGLER_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// Read parity evidence from this JSON report (from `strangler parity`) instead.
    #[arg(long, value_name = "FILE")]
    pub parity_report: Option<PathBuf>,
    /// Least number of compared requests (match + noise + mismatch) for a step forward.
    #[arg(long, value_name = "N", default_value_t = 100)]
    pub min_requests: u64,
    /// Least match rate, (match + noise) / (match + noise + mismatch + error).
    #[arg(long, value_name = "RATE", default_value_t = 0.999)]
    pub min_match_rate: f64,
    /// Step forward even without enough evidence, with evidence of other upstreams or
    /// rules, or while the replicas run another version of the file (prints a warning).
    #[arg(long)]
    pub force: bool,
    /// Show the diff and the decision; write nothing.
    #[arg(long)]
    pub dry_run: bool,
}

/// A stage on the command line: the names of routes.toml, in migration order.
impl ValueEnum for Stage {
    fn value_variants<'a>() -> &'a [Self] {
        &Stage::ALL
    }

    fn to_possible_value(&self) -> Option<PossibleValue> {
        let help = match self {
            Stage::Legacy => "Everything to the legacy upstream",
            Stage::Shadow => "Legacy serves; new gets a mirrored copy to compare",
            Stage::Canary => "A share (`--percent`) goes to the new upstream",
            Stage::New => "Everything to the new upstream",
        };
        Some(PossibleValue::new(self.as_str()).help(help))
    }
}

/// `strangler parity`.
#[derive(Debug, Args)]
pub struct ParityArgs {
    /// The routing table: routes, upstreams and compare rules (default: routes.toml when
    /// there is one; without one, --legacy (or --legacy-from) and --new are the two sides
    /// of every request).
    #[arg(long, short, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The corpus: JSON Lines (one `{"method", "path", "headers", "body", "name"}` per
    /// line) or a HAR file; `${NAME}` in its strings is read from the environment.
    /// Default: the --legacy-from file.
    #[arg(long, value_name = "FILE", required_unless_present = "legacy_from")]
    pub requests: Option<PathBuf>,
    /// Compare the new side with the answers recorded in FILE (a HAR with responses, or
    /// JSON Lines with a `response` per line, e.g. from `[record] responses = true`)
    /// instead of asking legacy.
    #[arg(long, value_name = "FILE", conflicts_with = "legacy")]
    pub legacy_from: Option<PathBuf>,
    /// A shell command run (`sh -c`) before the replay, e.g. to reset both databases;
    /// anything but exit 0 aborts with exit 2.
    #[arg(long, value_name = "CMD")]
    pub setup: Option<String>,
    /// Replay writes (methods other than GET, HEAD, OPTIONS, TRACE) concurrently with
    /// everything else. By default each write waits for every earlier request and
    /// finishes before any later one starts.
    #[arg(long)]
    pub concurrent_writes: bool,
    /// Replay only this route's requests; repeat for more (default: every route).
    #[arg(long = "route", value_name = "NAME")]
    pub routes: Vec<String>,
    /// Send every request's legacy side here instead of its route's upstream, `http://host:port`.
    #[arg(long, value_name = "URL")]
    pub legacy: Option<String>,
    /// Send every request's new side here instead of its route's `new` upstream.
    #[arg(long, value_name = "URL")]
    pub new: Option<String>,
    /// A header for every request that does not set it, `'NAME: VALUE'` (e.g. an
    /// Authorization); repeatable. Its value is never printed.
    #[arg(long = "header", value_name = "'NAME: VALUE'")]
    pub headers: Vec<String>,
    /// Share of requests (0 to 1) also sent to legacy a second time, so that fields legacy
    /// changes by itself count as noise; the same requests are picked on every run.
    #[arg(long, value_name = "FRACTION", default_value_t = 0.0)]
    pub noise_sample: f64,
    /// Requests in flight at once.
    #[arg(long, value_name = "N", default_value_t = 8)]
    pub concurrency: usize,
    /// How long each side may take to answer one request, body included.
    #[arg(long, value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub timeout: std::time::Duration,
    /// Write JUnit XML here: a testsuite per route, a testcase per request.
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    /// Write the report as JSON here, in the shape of the admin API's /admin/parity.
    #[arg(long, value_name = "FILE")]
    pub json: Option<PathBuf>,
}

/// `strangler status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Admin API of a replica, `http://host:port`; repeat for every replica (default, with
    /// no --admin-dns either: the `proxy.admin_listen` of --config).
    #[arg(long = "admin", value_name = "URL")]
    pub admins: Vec<String>,
    /// Every address HOST resolves to is a replica, `HOST:PORT` (a Kubernetes headless
    /// Service); repeatable, and combines with --admin.
    #[arg(long = "admin-dns", value_name = "HOST:PORT")]
    pub admin_dns: Vec<String>,
    /// File holding the admin APIs' bearer token (for proxies with `admin_token_file`).
    #[arg(long, value_name = "FILE", env = "STRANGLER_ADMIN_TOKEN_FILE")]
    pub admin_token_file: Option<PathBuf>,
    /// The table whose `proxy.admin_listen` is asked when no --admin is given.
    #[arg(long, short, default_value = "routes.toml")]
    pub config: PathBuf,
    /// Print JSON for scripts.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_read_by_their_routes_toml_names() {
        for stage in Stage::ALL {
            let cli = Cli::try_parse_from(["strangler", "flip", "api", stage.as_str()]).unwrap();
            let Command::Flip(args) = cli.command else {
                panic!("not a flip: {cli:?}")
            };
            assert_eq!(args.stage, stage);
        }
        let refused = Cli::try_parse_from(["strangler", "flip", "api", "dark-launch"]).unwrap_err();
        assert_eq!(refused.kind(), clap::error::ErrorKind::InvalidValue);
        assert!(
            refused
                .to_string()
                .contains("[possible values: legacy, shadow, canary, new]"),
            "{refused}"
        );
    }
}
