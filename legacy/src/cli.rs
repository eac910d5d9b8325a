//! The command line: the shared flags ([`mythoughts_common::cli`]) under this binary's names
//! (`LEGACY_*`) and defaults, turned into [`crate::startup::Options`].

use clap::Parser;
use mythoughts_common::PasswordHasher;
use mythoughts_common::cli::{CommitArgs, DbArgs, ListenArgs, SeedArgs, SigningKeyArgs};

use crate::startup::Options;

/// MyThoughts demo monolith: HTML pages and a JSON API over one SQLite file.
///
/// Prints `mythoughts-legacy listening on http://ADDR` on stdout once it accepts connections; logs go to
/// stderr (filter with RUST_LOG). SIGTERM or Ctrl-C stops it gracefully.
#[derive(Debug, Parser)]
#[command(name = "mythoughts-legacy", version, about, long_about)]
#[command(mut_arg("listen", |arg| arg.env("LEGACY_LISTEN").default_value("127.0.0.1:8001")))]
#[command(mut_arg("db", |arg| arg.env("LEGACY_DB").default_value("./legacy.sqlite")))]
#[command(mut_arg("jwt_private_key", |arg| arg
    .env("LEGACY_JWT_PRIVATE_KEY")
    .requires("jwt_public_key")
    .help("RSA private key (PEM) that signs API tokens and session cookies")))]
#[command(mut_arg("jwt_public_key", |arg| arg
    .env("LEGACY_JWT_PUBLIC_KEY")
    .help("RSA public key (PEM) that checks API tokens and session cookies")))]
#[command(mut_arg("dev_keys", |arg| arg.env("LEGACY_DEV_KEYS")))]
#[command(mut_arg("no_seed", |arg| arg.help("Do not insert the demo users and thoughts into an empty database")))]
pub struct Cli {
    /// `--listen`.
    #[command(flatten)]
    pub listen: ListenArgs,
    /// `--db`.
    #[command(flatten)]
    pub db: DbArgs,
    /// `--jwt-private-key` and `--jwt-public-key` (both), or `--dev-keys`.
    #[command(flatten)]
    pub keys: SigningKeyArgs,
    /// `--no-seed`.
    #[command(flatten)]
    pub seed: SeedArgs,
    /// `--commit`.
    #[command(flatten)]
    pub commit: CommitArgs,
}

impl Cli {
    /// The startup options these flags describe.
    pub fn options(&self) -> Options {
        Options {
            db_path: self.db.db.clone(),
            keys: self.keys.source(&self.db.db),
            seed: self.seed.seed(),
            commit: self.commit.commit.clone(),
            passwords: PasswordHasher::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;
    use mythoughts_common::startup::KeySource;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("mythoughts-legacy").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn dev_keys_or_a_key_pair_is_required() {
        let cli = parse(&["--dev-keys", "k"]).unwrap();
        assert_eq!(cli.options().keys, KeySource::DevDir("k".into()));
        assert!(cli.options().seed);
        assert_eq!(cli.listen.listen.port(), 8001);
        assert_eq!(cli.options().db_path, std::path::PathBuf::from("./legacy.sqlite"));

        let cli = parse(&["--jwt-private-key", "a.pem", "--jwt-public-key", "b.pem", "--no-seed"]).unwrap();
        assert_eq!(
            cli.options().keys,
            KeySource::Files {
                private_key: Some("a.pem".into()),
                public_key: Some("b.pem".into())
            }
        );
        assert!(!cli.options().seed);

        assert!(parse(&["--jwt-private-key", "a.pem"]).is_err());
        assert!(parse(&["--jwt-public-key", "b.pem"]).is_err());
        assert!(
            parse(&[
                "--dev-keys",
                "k",
                "--jwt-private-key",
                "a.pem",
                "--jwt-public-key",
                "b.pem"
            ])
            .is_err()
        );
    }

    #[test]
    fn listen_address_is_validated() {
        assert!(parse(&["--dev-keys", "k", "--listen", "not an address"]).is_err());
        let cli = parse(&["--dev-keys", "k", "--listen", "127.0.0.1:0"]).unwrap();
        assert_eq!(cli.listen.listen.port(), 0);
    }
}
