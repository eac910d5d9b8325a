//! The command line: the shared flags ([`mythoughts_common::cli`]) under this binary's names
//! (`FRONTEND_*`) and defaults, and the backends' addresses and deadlines, turned into
//! [`crate::startup::Options`].

use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;
use mythoughts_common::cli::{ListenArgs, VerifyingKeyArgs};

use crate::backend::{BackendConfig, BaseUrl};
use crate::startup::Options;

/// MyThoughts frontend: the HTML pages, rendered from the Thoughts and Users services over HTTP.
///
/// Prints `frontend-service listening on http://ADDR` on stdout once it accepts connections; logs go to
/// stderr (filter with RUST_LOG). SIGTERM or Ctrl-C stops it gracefully.
#[derive(Debug, Parser)]
#[command(name = "frontend-service", version, about, long_about)]
#[command(mut_arg("listen", |arg| arg.env("FRONTEND_LISTEN").default_value("127.0.0.1:8004")))]
#[command(mut_arg("jwt_public_key", |arg| arg.env("FRONTEND_JWT_PUBLIC_KEY").help(
    "RSA public key (PEM) that checks session cookies: the public half of the Users service's key"
)))]
#[command(mut_arg("dev_keys", |arg| arg.env("FRONTEND_DEV_KEYS").help(
    "Development only: use the key pair in DIR (shared with the other services), generating one if none"
)))]
pub struct Cli {
    /// `--listen`.
    #[command(flatten)]
    pub listen: ListenArgs,

    /// Base URL of the Thoughts service (http://host:port[/prefix]).
    #[arg(
        long,
        env = "THOUGHTS_URL",
        default_value = "http://127.0.0.1:8002",
        value_name = "URL"
    )]
    pub thoughts_url: BaseUrl,

    /// Base URL of the Users service (http://host:port[/prefix]).
    #[arg(long, env = "USERS_URL", default_value = "http://127.0.0.1:8003", value_name = "URL")]
    pub users_url: BaseUrl,

    /// `--jwt-public-key` or `--dev-keys`.
    #[command(flatten)]
    pub keys: VerifyingKeyArgs,

    /// Deadline for one backend call, connecting and reading the whole answer included (e.g. 5s, 800ms).
    #[arg(long, env = "FRONTEND_BACKEND_TIMEOUT", default_value = "5s", value_parser = humantime::parse_duration)]
    pub backend_timeout: Duration,

    /// Deadline for opening a connection to a backend.
    #[arg(long, env = "FRONTEND_CONNECT_TIMEOUT", default_value = "1s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
}

impl Cli {
    /// The startup options these flags describe.
    pub fn options(&self) -> Options {
        Options {
            // Without a key flag (clap's `keys` group rules it out): a dev dir in the working directory.
            keys: self.keys.source(PathBuf::from("dev-keys")),
            backends: BackendConfig {
                thoughts: self.thoughts_url.clone(),
                users: self.users_url.clone(),
                timeout: self.backend_timeout,
                connect_timeout: self.connect_timeout.min(self.backend_timeout),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use mythoughts_common::startup::KeySource;

    use super::*;

    fn parse(args: &[&str]) -> Result<Cli, clap::Error> {
        Cli::try_parse_from(std::iter::once("frontend-service").chain(args.iter().copied()))
    }

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn defaults_and_keys() {
        let cli = parse(&["--jwt-public-key", "pub.pem"]).unwrap();
        let options = cli.options();
        assert_eq!(options.keys, KeySource::public_key("pub.pem".into()));
        assert_eq!(options.backends.thoughts.to_string(), "http://127.0.0.1:8002");
        assert_eq!(options.backends.users.to_string(), "http://127.0.0.1:8003");
        assert_eq!(options.backends.timeout, Duration::from_secs(5));
        assert_eq!(options.backends.connect_timeout, Duration::from_secs(1));

        let cli = parse(&[
            "--dev-keys",
            "k",
            "--backend-timeout",
            "300ms",
            "--listen",
            "127.0.0.1:0",
        ])
        .unwrap();
        assert_eq!(cli.options().keys, KeySource::DevDir("k".into()));
        // The connect timeout never exceeds the call's deadline.
        assert_eq!(cli.options().backends.connect_timeout, Duration::from_millis(300));
        assert_eq!(cli.listen.listen.port(), 0);
    }

    #[test]
    fn bad_flags_are_refused() {
        assert!(parse(&[]).is_err(), "a key source is required");
        assert!(parse(&["--dev-keys", "k", "--jwt-public-key", "p.pem"]).is_err());
        assert!(parse(&["--dev-keys", "k", "--thoughts-url", "https://t"]).is_err());
        assert!(parse(&["--dev-keys", "k", "--users-url", "not a url"]).is_err());
        assert!(parse(&["--dev-keys", "k", "--backend-timeout", "soon"]).is_err());
    }
}
