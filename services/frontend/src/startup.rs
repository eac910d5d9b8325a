//! Everything that happens once before the first request: load (or generate) the public key that checks
//! session cookies, build the pooled backend client and the metrics. Key files are read on the blocking pool.

use std::path::PathBuf;
use std::sync::Arc;

use mythoughts_common::jwt::{self, KeyError};
use mythoughts_common::telemetry::MetricsError;
use mythoughts_common::{Metrics, TokenVerifier};

use crate::AppState;
use crate::backend::{BackendConfig, Backends};

/// Where the public key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// A PEM file (the public half of the pair the Users service signs with).
    PublicKey(PathBuf),
    /// A development directory shared with the other services, populated with a fresh pair if empty.
    DevDir(PathBuf),
}

/// What the service is started with.
#[derive(Debug, Clone)]
pub struct Options {
    /// The key that checks session cookies.
    pub keys: KeySource,
    /// How to reach the backends.
    pub backends: BackendConfig,
}

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// The key could not be loaded or generated.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The metrics registry could not be built.
    #[error("metrics: {0}")]
    Metrics(#[from] MetricsError),
    /// A startup task panicked.
    #[error("startup task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

/// Loads the key and builds the state to serve with.
pub async fn build_state(options: Options) -> Result<AppState, StartupError> {
    let keys = options.keys;
    let verifier = tokio::task::spawn_blocking(move || load_verifier(&keys)).await??;
    let metrics = Metrics::new()?;
    let backends = Backends::new(options.backends, metrics.registry())?;
    Ok(AppState {
        backends,
        verifier: Arc::new(verifier),
        metrics,
    })
}

fn load_verifier(keys: &KeySource) -> Result<TokenVerifier, KeyError> {
    let path = match keys {
        KeySource::PublicKey(path) => path.clone(),
        KeySource::DevDir(dir) => {
            let paths = jwt::ensure_dev_keys(dir)?;
            tracing::warn!(dir = %dir.display(), "using development JWT keys");
            paths.public_key
        }
    };
    TokenVerifier::from_pem_file(&path)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[tokio::test]
    async fn a_missing_key_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let options = Options {
            keys: KeySource::PublicKey(missing),
            backends: BackendConfig {
                thoughts: "http://127.0.0.1:1".parse().unwrap(),
                users: "http://127.0.0.1:1".parse().unwrap(),
                timeout: Duration::from_secs(1),
                connect_timeout: Duration::from_secs(1),
            },
        };
        let err = build_state(options).await.unwrap_err();
        assert!(matches!(err, StartupError::Keys(KeyError::Read { .. })), "{err}");
        assert!(err.to_string().contains("nope.pem"), "{err}");
    }
}
