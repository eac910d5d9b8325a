//! The command line: serving flags (each with an environment variable) turned into
//! [`crate::startup::Options`], and the `import` subcommand.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgGroup, Parser, Subcommand};

use crate::startup::{KeySource, Options};

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
#[command(group(ArgGroup::new("keys").required(true).args(["jwt_public_key", "dev_keys"])))]
pub struct Cli {
    /// What to do instead of serving.
    #[command(subcommand)]
    pub command: Option<Command>,

    /// Address to listen on; port 0 picks a free port (the chosen address is printed).
    #[arg(long, env = "THOUGHTS_LISTEN", default_value = "127.0.0.1:8002")]
    pub listen: SocketAddr,

    /// SQLite database file, created if missing.
    #[arg(
        long,
        env = "THOUGHTS_DB",
        default_value = "./thoughts.sqlite",
        value_name = "PATH",
        global = true
    )]
    pub db: PathBuf,

    /// RSA public key (PEM) that checks API tokens; the users service signs them with the private half.
    #[arg(long, env = "THOUGHTS_JWT_PUBLIC_KEY", value_name = "PEM")]
    pub jwt_public_key: Option<PathBuf>,

    /// Development only: use the public key of the pair in DIR, generating a pair if DIR has none.
    #[arg(
        long,
        env = "THOUGHTS_DEV_KEYS",
        value_name = "DIR",
        conflicts_with = "jwt_public_key"
    )]
    pub dev_keys: Option<PathBuf>,

    /// Do not insert the demo thoughts into a fresh database.
    #[arg(long)]
    pub no_seed: bool,

    /// Commit reported by /admin/version/.
    #[arg(long, env = "GIT_COMMIT", default_value = "unknown")]
    pub commit: String,
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
        let keys = match (&self.dev_keys, &self.jwt_public_key) {
            (Some(dir), _) => KeySource::DevDir(dir.clone()),
            (None, Some(public_key)) => KeySource::PublicKey(public_key.clone()),
            // clap's `keys` group rules this out when serving; fall back to a dev dir next to the database
            // rather than panic.
            (None, None) => KeySource::DevDir(self.db.with_extension("keys")),
        };
        Options {
            db_path: self.db.clone(),
            keys,
            seed: !self.no_seed,
            commit: self.commit.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

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
        assert_eq!(cli.listen.port(), 8002);

        let cli = parse(&["--jwt-public-key", "pub.pem", "--no-seed", "--db", "t.sqlite"]).unwrap();
        assert_eq!(cli.options().keys, KeySource::PublicKey("pub.pem".into()));
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
        assert_eq!(cli.db, PathBuf::from("t.sqlite"));
        let cli = parse(&["--db", "u.sqlite", "import", "--from", "legacy.sqlite"]).unwrap();
        assert_eq!(cli.db, PathBuf::from("u.sqlite"));
        assert!(parse(&["import"]).is_err(), "--from is required");
    }
}
