//! Everything that happens once before the first request: load (or generate) the public key that checks
//! session cookies, build the pooled backend client and the metrics. Key files are read on the blocking pool.

use std::sync::Arc;

use mythoughts_common::Metrics;
use mythoughts_common::startup::blocking;
pub use mythoughts_common::startup::{KeySource, StartupError};

use crate::AppState;
use crate::backend::{BackendConfig, Backends};

/// What the service is started with.
#[derive(Debug, Clone)]
pub struct Options {
    /// The public key that checks session cookies.
    pub keys: KeySource,
    /// How to reach the backends.
    pub backends: BackendConfig,
}

/// Loads the key and builds the state to serve with.
pub async fn build_state(options: Options) -> Result<AppState, StartupError> {
    let keys = options.keys;
    let verifier = blocking(move || keys.load_verifier()).await?;
    let metrics = Metrics::new()?;
    let backends = Backends::new(options.backends, metrics.registry())?;
    Ok(AppState {
        backends,
        verifier: Arc::new(verifier),
        metrics,
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use mythoughts_common::jwt::KeyError;

    use super::*;

    #[tokio::test]
    async fn a_missing_key_file_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope.pem");
        let options = Options {
            keys: KeySource::public_key(missing),
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
