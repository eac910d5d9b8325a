//! The command-line flags the MyThoughts binaries share, as clap argument structs to
//! `#[command(flatten)]`: the listen address, the SQLite file, the JWT keys, `--no-seed` and `--commit`.
//!
//! A flag is defined here once (name, type, value name, what it conflicts with); what differs
//! between binaries stays with the binary: each one names its own environment variables and
//! defaults (`LEGACY_LISTEN`, `USERS_DB`, …) and, where its wording differs, its help text, with
//! `#[command(mut_arg("listen", |arg| arg.env("LEGACY_LISTEN").default_value("127.0.0.1:8001")))]`
//! on its `Cli`. `--listen` and `--db` have no default here (each binary has its own) and are not
//! marked required (clap would then ignore the binary's default): a binary that forgot its default
//! fails to parse its flags when the flag is absent, which its first CLI test shows.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{ArgGroup, Args};

use crate::startup::KeySource;

/// `--listen ADDR`.
#[derive(Debug, Clone, Args)]
pub struct ListenArgs {
    /// Address to listen on; port 0 picks a free port (the chosen address is printed).
    #[arg(long, required = false)]
    pub listen: SocketAddr,
}

/// `--db PATH`.
#[derive(Debug, Clone, Args)]
pub struct DbArgs {
    /// SQLite database file, created if missing.
    #[arg(long, value_name = "PATH", required = false)]
    pub db: PathBuf,
}

/// `--no-seed`.
#[derive(Debug, Clone, Args)]
pub struct SeedArgs {
    /// Do not insert the demo rows into an empty database.
    #[arg(long)]
    pub no_seed: bool,
}

impl SeedArgs {
    /// Whether to insert the demo rows into an empty database.
    pub fn seed(&self) -> bool {
        !self.no_seed
    }
}

/// `--commit SHA` (or `GIT_COMMIT`), reported by `/admin/version/`.
#[derive(Debug, Clone, Args)]
pub struct CommitArgs {
    /// Commit reported by /admin/version/.
    #[arg(long, env = "GIT_COMMIT", default_value = "unknown")]
    pub commit: String,
}

/// The keys of a service that signs tokens (the monolith, the users service): a private key
/// (with, depending on the service, its public half) or a development directory, exactly one of
/// the two. A public key needs the private key it belongs to.
#[derive(Debug, Clone, Args)]
#[group(skip)]
#[command(group(ArgGroup::new("keys").required(true).args(["jwt_private_key", "dev_keys"])))]
pub struct SigningKeyArgs {
    /// RSA private key (PEM) that signs tokens.
    #[arg(long, value_name = "PEM")]
    pub jwt_private_key: Option<PathBuf>,

    /// RSA public key (PEM), the private key's other half.
    #[arg(long, value_name = "PEM", requires = "jwt_private_key")]
    pub jwt_public_key: Option<PathBuf>,

    /// Development only: use the key pair in DIR, generating one if DIR has none.
    #[arg(long, value_name = "DIR", conflicts_with_all = ["jwt_private_key", "jwt_public_key"])]
    pub dev_keys: Option<PathBuf>,
}

impl SigningKeyArgs {
    /// Where the keys come from. clap's `keys` group rules out "neither"; should it happen anyway,
    /// a development directory next to `db` rather than a panic.
    pub fn source(&self, db: &Path) -> KeySource {
        match (&self.dev_keys, &self.jwt_private_key) {
            (Some(dir), _) => KeySource::DevDir(dir.clone()),
            (None, Some(private_key)) => KeySource::Files {
                private_key: Some(private_key.clone()),
                public_key: self.jwt_public_key.clone(),
            },
            (None, None) => KeySource::DevDir(db.with_extension("keys")),
        }
    }
}

/// The key of a service that only checks tokens (the thoughts and frontend services): a public key
/// or a development directory, exactly one of the two.
#[derive(Debug, Clone, Args)]
#[group(skip)]
#[command(group(ArgGroup::new("keys").required(true).args(["jwt_public_key", "dev_keys"])))]
pub struct VerifyingKeyArgs {
    /// RSA public key (PEM) that checks API tokens; the users service signs them with the private half.
    #[arg(long, value_name = "PEM")]
    pub jwt_public_key: Option<PathBuf>,

    /// Development only: use the public key of the pair in DIR, generating a pair if DIR has none.
    #[arg(long, value_name = "DIR", conflicts_with = "jwt_public_key")]
    pub dev_keys: Option<PathBuf>,
}

impl VerifyingKeyArgs {
    /// Where the key comes from. clap's `keys` group rules out "neither" (when serving); should it
    /// happen anyway, the development directory `fallback` rather than a panic.
    pub fn source(&self, fallback: PathBuf) -> KeySource {
        match (&self.dev_keys, &self.jwt_public_key) {
            (Some(dir), _) => KeySource::DevDir(dir.clone()),
            (None, Some(public_key)) => KeySource::public_key(public_key.clone()),
            (None, None) => KeySource::DevDir(fallback),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::*;

    /// A binary built the way the real ones are: shared flags, its own names and defaults.
    #[derive(Debug, Parser)]
    #[command(name = "signer")]
    #[command(mut_arg("listen", |arg| arg.env("SIGNER_TEST_LISTEN").default_value("127.0.0.1:9")))]
    #[command(mut_arg("db", |arg| arg.env("SIGNER_TEST_DB").default_value("./signer.sqlite")))]
    struct Signer {
        #[command(flatten)]
        listen: ListenArgs,
        #[command(flatten)]
        db: DbArgs,
        #[command(flatten)]
        keys: SigningKeyArgs,
        #[command(flatten)]
        seed: SeedArgs,
    }

    #[derive(Debug, Parser)]
    #[command(name = "checker")]
    struct Checker {
        #[command(flatten)]
        listen: ListenArgs,
        #[command(flatten)]
        keys: VerifyingKeyArgs,
    }

    fn signer(args: &[&str]) -> Result<Signer, clap::Error> {
        Signer::try_parse_from(std::iter::once("signer").chain(args.iter().copied()))
    }

    fn checker(args: &[&str]) -> Result<Checker, clap::Error> {
        Checker::try_parse_from(std::iter::once("checker").chain(args.iter().copied()))
    }

    #[test]
    fn definitions_are_consistent() {
        Signer::command().debug_assert();
        Checker::command().debug_assert();
    }

    #[test]
    fn a_binary_sets_its_own_defaults_and_an_unset_one_is_an_error() {
        let cli = signer(&["--dev-keys", "k"]).unwrap();
        assert_eq!(cli.listen.listen, "127.0.0.1:9".parse().unwrap());
        assert_eq!(cli.db.db, PathBuf::from("./signer.sqlite"));
        assert!(cli.seed.seed());
        assert!(!signer(&["--dev-keys", "k", "--no-seed"]).unwrap().seed.seed());

        let err = checker(&["--dev-keys", "k"]).unwrap_err();
        assert!(err.to_string().contains("listen"), "{err}");
        let cli = checker(&["--dev-keys", "k", "--listen", "127.0.0.1:0"]).unwrap();
        assert_eq!(cli.listen.listen.port(), 0);
    }

    #[test]
    fn signing_keys_are_a_private_key_with_an_optional_public_key_or_a_dev_dir() {
        let db = Path::new("data/db.sqlite");
        assert_eq!(
            signer(&["--dev-keys", "k"]).unwrap().keys.source(db),
            KeySource::DevDir("k".into())
        );
        assert_eq!(
            signer(&["--jwt-private-key", "a.pem"]).unwrap().keys.source(db),
            KeySource::Files {
                private_key: Some("a.pem".into()),
                public_key: None
            }
        );
        assert_eq!(
            signer(&["--jwt-private-key", "a.pem", "--jwt-public-key", "b.pem"])
                .unwrap()
                .keys
                .source(db),
            KeySource::Files {
                private_key: Some("a.pem".into()),
                public_key: Some("b.pem".into())
            }
        );
        assert!(signer(&[]).is_err(), "a key source is required");
        assert!(signer(&["--jwt-public-key", "b.pem"]).is_err(), "a public key alone");
        assert!(signer(&["--dev-keys", "k", "--jwt-private-key", "a.pem"]).is_err());
        assert!(signer(&["--dev-keys", "k", "--jwt-public-key", "b.pem"]).is_err());

        let neither = SigningKeyArgs {
            jwt_private_key: None,
            jwt_public_key: None,
            dev_keys: None,
        };
        assert_eq!(neither.source(db), KeySource::DevDir("data/db.keys".into()));
    }

    #[test]
    fn a_verifying_key_is_a_public_key_or_a_dev_dir() {
        let fallback = PathBuf::from("fallback");
        assert_eq!(
            checker(&["--listen", "127.0.0.1:0", "--dev-keys", "k"])
                .unwrap()
                .keys
                .source(fallback.clone()),
            KeySource::DevDir("k".into())
        );
        assert_eq!(
            checker(&["--listen", "127.0.0.1:0", "--jwt-public-key", "p.pem"])
                .unwrap()
                .keys
                .source(fallback.clone()),
            KeySource::public_key("p.pem".into())
        );
        assert!(checker(&["--listen", "127.0.0.1:0"]).is_err());
        assert!(
            checker(&[
                "--listen",
                "127.0.0.1:0",
                "--dev-keys",
                "k",
                "--jwt-public-key",
                "p.pem"
            ])
            .is_err()
        );
        assert!(checker(&["--listen", "127.0.0.1:0", "--jwt-private-key", "a.pem"]).is_err());

        let neither = VerifyingKeyArgs {
            jwt_public_key: None,
            dev_keys: None,
        };
        assert_eq!(neither.source(fallback.clone()), KeySource::DevDir(fallback));
    }
}
