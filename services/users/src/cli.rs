//! The command line: flags (each with an environment variable) turned into [`crate::startup::Options`].

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgGroup, Parser};
use mythoughts_common::PasswordHasher;

use crate::startup::{KeySource, Options};

/// MyThoughts Users backend: login (JWT issuing) and user creation over its own SQLite file.
///
/// Prints `users-service listening on http://ADDR` on stdout once it accepts connections; logs go to stderr
/// (filter with RUST_LOG). SIGTERM or Ctrl-C stops it gracefully.
#[derive(Debug, Parser)]
#[command(name = "users-service", version, about, long_about)]
#[command(group(ArgGroup::new("keys").required(true).args(["jwt_private_key", "dev_keys"])))]
pub struct Cli {
    /// Address to listen on; port 0 picks a free port (the chosen address is printed).
    #[arg(long, env = "USERS_LISTEN", default_value = "127.0.0.1:8003")]
    pub listen: SocketAddr,

    /// SQLite database file, created if missing.
    #[arg(long, env = "USERS_DB", default_value = "./users.sqlite", value_name = "PATH")]
    pub db: PathBuf,

    /// RSA private key (PEM) that signs the tokens `POST /api/login/` hands out.
    #[arg(long, env = "USERS_JWT_PRIVATE_KEY", value_name = "PEM")]
    pub jwt_private_key: Option<PathBuf>,

    /// RSA public key (PEM) the other services verify with; if given, checked at startup to match the
    /// private key.
    #[arg(long, env = "USERS_JWT_PUBLIC_KEY", value_name = "PEM", requires = "jwt_private_key")]
    pub jwt_public_key: Option<PathBuf>,

    /// Development only: use the key pair in DIR, generating one if DIR has none.
    #[arg(long, env = "USERS_DEV_KEYS", value_name = "DIR", conflicts_with_all = ["jwt_private_key", "jwt_public_key"])]
    pub dev_keys: Option<PathBuf>,

    /// Do not insert the demo users into an empty database.
    #[arg(long)]
    pub no_seed: bool,

    /// Commit reported by /admin/version/.
    #[arg(long, env = "GIT_COMMIT", default_value = "unknown")]
    pub commit: String,
}

impl Cli {
    /// The startup options these flags describe.
    pub fn options(&self) -> Options {
        let keys = match (&self.dev_keys, &self.jwt_private_key) {
            (Some(dir), _) => KeySource::DevDir(dir.clone()),
            (None, Some(private_key)) => KeySource::Files {
                private_key: private_key.clone(),
                public_key: self.jwt_public_key.clone(),
            },
            // clap's `keys` group rules this out; fall back to a dev dir next to the database rather than
            // panic.
            (None, None) => KeySource::DevDir(self.db.with_extension("keys")),
        };
        Options {
            db_path: self.db.clone(),
            keys,
            seed: !self.no_seed,
            commit: self.commit.clone(),
            passwords: PasswordHasher::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("users-service").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn dev_keys_or_a_private_key_is_required() {
        let cli = parse(&["--dev-keys", "k"]).unwrap();
        assert_eq!(cli.options().keys, KeySource::DevDir("k".into()));
        assert!(cli.options().seed);
        assert_eq!(cli.listen.port(), 8003);

        let cli = parse(&["--jwt-private-key", "a.pem", "--no-seed"]).unwrap();
        assert_eq!(
            cli.options().keys,
            KeySource::Files {
                private_key: "a.pem".into(),
                public_key: None
            }
        );
        assert!(!cli.options().seed);
        let cli = parse(&["--jwt-private-key", "a.pem", "--jwt-public-key", "b.pem"]).unwrap();
        assert_eq!(
            cli.options().keys,
            KeySource::Files {
                private_key: "a.pem".into(),
                public_key: Some("b.pem".into())
            }
        );

        assert!(parse(&[]).is_err());
        assert!(parse(&["--jwt-public-key", "b.pem"]).is_err());
        assert!(parse(&["--dev-keys", "k", "--jwt-private-key", "a.pem"]).is_err());
        assert!(parse(&["--dev-keys", "k", "--listen", "nowhere"]).is_err());
    }
}
