//! The command line: raw arguments parsed by clap into [`Cli`].

use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// A reverse proxy for strangler-fig migrations.
#[derive(Debug, Parser)]
#[command(name = "strangler", version, about, propagate_version = true)]
pub struct Cli {
    /// Log format: human-readable text, or one JSON object per line.
    #[arg(long, value_enum, default_value_t = LogFormat::Human, global = true)]
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
    Serve {
        /// The routing table.
        #[arg(long, short, default_value = "routes.toml")]
        config: PathBuf,
    },
    /// Validate a routing table; print every error as file:line:col: message.
    Check {
        /// The routing table.
        #[arg(default_value = "routes.toml")]
        file: PathBuf,
    },
    /// Show which route a request takes, why, and where it goes.
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
}
