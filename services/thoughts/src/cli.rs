//! The command line: the shared serving flags ([`mythoughts_common::cli`]) under this binary's names
//! (`THOUGHTS_*`) and defaults, turned into [`crate::startup::Options`], and the `import` subcommand.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use mythoughts_common::cli::{CommitArgs, DbArgs, ListenArgs, SeedArgs, VerifyingKeyArgs};

use crate::startup::Options;

/// MyThoughts Thoughts backend: the thoughts JSON API over its own SQLite file.
///
/// Without a subcommand it serves: it prints `thoughts-service listening on http://ADDR` on stdout once it
/// accepts connections; logs go to stderr (filter with RUST_LOG). SIGTERM or Ctrl-C stops it gracefully.
#[derive(Debug, Parser)]
#[command(
    name = "thoughts-service",
    version,
    about,
    long_about,
    subcommand_negates_reqs = true
)]
#[command(mut_arg("listen", |arg| arg.env("THOUGHTS_LISTEN").default_value("127.0.0.1:8002")))]
// `global`: `import` writes into --db too, given before or after the subcommand.
#[command(mut_arg("db", |arg| arg.env("THOUGHTS_DB").default_value("./thoughts.sqlite").global(true)))]
#[command(mut_arg("jwt_public_key", |arg| arg.env("THOUGHTS_JWT_PUBLIC_KEY")))]
#[command(mut_arg("dev_keys", |arg| arg.env("THOUGHTS_DEV_KEYS")))]
#[command(mut_arg("no_seed", |arg| arg.help("Do not insert the demo thoughts into a fresh database")))]
pub struct Cli {
    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `--listen`.
    #[command(flatten)]
    pub listen: ListenArgs,
    /// `--db`.
    #[command(flatten)]
    pub db: DbArgs,
    /// `--jwt-public-key` or `--dev-keys`.
    #[command(flatten)]
    pub keys: VerifyingKeyArgs,
    /// `--no-seed`.
    #[command(flatten)]
    pub seed: SeedArgs,
    /// `--commit`.
    #[command(flatten)]
    pub commit: CommitArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy the monolith's thoughts into --db, keeping ids and timestamps. Idempotent: rows already present
    /// are skipped. Exits non-zero if the file is missing or not the monolith's, or if an id exists on both
    /// sides with different content.
    Import {
        /// The monolith's SQLite database (mythoughts-legacy --db), opened read-only.
        #[arg(long, value_name = "PATH")]
        from: PathBuf,
    },
}

impl Cli {
    /// The startup options these flags describe.
    pub fn options(&self) -> Options {
        Options {
            db_path: self.db.db.clone(),
            keys: self.keys.source(self.db.db.with_extension("keys")),
            seed: self.seed.seed(),
            commit: self.commit.commit.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use mythoughts_common::startup::KeySource;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("thoughts-service").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn serving_needs_a_public_key_or_dev_keys() {
        let cli = parse(&["--dev-keys", "k"]).unwrap();
        assert_eq!(cli.options().keys, KeySource::DevDir("k".into()));
        assert!(cli.options().seed);
        assert_eq!(cli.listen.listen.port(), 8002);
        assert_eq!(cli.options().db_path, PathBuf::from("./thoughts.sqlite"));

        let cli = parse(&["--jwt-public-key", "pub.pem", "--no-seed", "--db", "t.sqlite"]).unwrap();
        assert_eq!(cli.options().keys, KeySource::public_key("pub.pem".into()));
        assert!(!cli.options().seed);
        assert_eq!(cli.options().db_path, PathBuf::from("t.sqlite"));

        assert!(parse(&[]).is_err());
        assert!(parse(&["--dev-keys", "k", "--jwt-public-key", "pub.pem"]).is_err());
        assert!(parse(&["--dev-keys", "k", "--listen", "nowhere"]).is_err());
    }

    #[test]
    fn import_needs_no_keys_and_takes_db_on_either_side() {
        let cli = parse(&["import", "--from", "legacy.sqlite", "--db", "t.sqlite"]).unwrap();
        assert!(matches!(&cli.command, Some(Command::Import { from }) if from == &PathBuf::from("legacy.sqlite")));
        assert_eq!(cli.db.db, PathBuf::from("t.sqlite"));
        let cli = parse(&["--db", "u.sqlite", "import", "--from", "legacy.sqlite"]).unwrap();
        assert_eq!(cli.db.db, PathBuf::from("u.sqlite"));
        assert!(parse(&["import"]).is_err(), "--from is required");
    }
}
