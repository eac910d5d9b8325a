//! TLS pieces both sides share: the crypto provider, ALPN names, reading certificate/key
//! pairs and CA files, and the errors that name the file at fault.
//!
//! The listener's side (certificates per SNI name, hot reload) is [`crate::server::tls`];
//! the upstreams' side (`https://` upstreams, mutual TLS) is [`crate::upstream::tls`].
//!
//! Crypto provider: ring. It builds with a C compiler alone (aws-lc-rs needs cmake or a
//! long C build of aws-lc on a small machine), and for the suites that matter here
//! (TLS 1.3/1.2 with AES-GCM and ChaCha20-Poly1305, ECDHE over X25519/P-256) it is as fast.
//! What aws-lc-rs would add — FIPS mode and post-quantum key exchange — is not asked for.
//! Reading and parsing PEM happens on the blocking pool, never on the async workers.

use std::io;
use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::sign::CertifiedKey;
use sha2::{Digest, Sha256};

use crate::config::{CertKeyPair, FileRef};

/// ALPN name of HTTP/2.
pub const ALPN_H2: &[u8] = b"h2";
/// ALPN name of HTTP/1.1.
pub const ALPN_HTTP11: &[u8] = b"http/1.1";

/// The crypto provider every TLS config here uses (ring; see the module docs).
pub fn provider() -> Arc<CryptoProvider> {
    static PROVIDER: OnceLock<Arc<CryptoProvider>> = OnceLock::new();
    PROVIDER
        .get_or_init(|| Arc::new(rustls::crypto::ring::default_provider()))
        .clone()
}

/// Why certificates or keys could not be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A file could not be read.
    #[error("{written_at}: cannot read {what} `{}`: {source}", path.display())]
    Read {
        /// Where routes.toml names the file.
        written_at: String,
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        source: io::Error,
    },
    /// A file was read but does not hold what it should.
    #[error("{written_at}: {what} `{}`: {message}", path.display())]
    Invalid {
        /// Where routes.toml names the file.
        written_at: String,
        /// What the file should hold.
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The private key is not the one of the certificate.
    #[error("{written_at}: key `{}` does not match certificate `{}`", key.display(), cert.display())]
    Mismatch {
        /// Where routes.toml names the key.
        written_at: String,
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// An upstream's host cannot be a TLS server name.
    #[error("upstream `{upstream}`: host `{host}` is not a valid TLS server name")]
    ServerName {
        /// The upstream.
        upstream: String,
        /// Its host.
        host: String,
    },
    /// rustls refused the configuration.
    #[error("cannot set up TLS: {0}")]
    Setup(#[from] rustls::Error),
}

// ---------------------------------------------------------------------------------------
// Certificate/key pairs
// ---------------------------------------------------------------------------------------

/// The bytes of a certificate file and its key file, read together, and their digest.
pub(crate) struct PairFiles {
    pub(crate) cert: Vec<u8>,
    pub(crate) key: Vec<u8>,
    pub(crate) digest: [u8; 32],
}

pub(crate) fn read_file(file: &FileRef, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(&file.path).map_err(|source| TlsError::Read {
        written_at: file.written_at.clone(),
        what,
        path: file.path.clone(),
        source,
    })
}

pub(crate) fn invalid(file: &FileRef, what: &'static str, message: String) -> TlsError {
    TlsError::Invalid {
        written_at: file.written_at.clone(),
        what,
        path: file.path.clone(),
        message,
    }
}

pub(crate) fn read_pair(pair: &CertKeyPair) -> Result<PairFiles, TlsError> {
    let cert = read_file(&pair.cert, "certificate")?;
    let key = read_file(&pair.key, "key")?;
    let digest = Sha256::new()
        .chain_update(&cert)
        .chain_update([0])
        .chain_update(&key)
        .finalize()
        .into();
    Ok(PairFiles { cert, key, digest })
}

pub(crate) fn parse_chain(file: &FileRef, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let chain = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(file, "certificate", format!("not a PEM certificate chain: {e}")))?;
    if chain.is_empty() {
        return Err(invalid(file, "certificate", "no CERTIFICATE block".to_owned()));
    }
    Ok(chain)
}

pub(crate) fn parse_key(file: &FileRef, pem: &[u8]) -> Result<PrivateKeyDer<'static>, TlsError> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => invalid(file, "key", "no PRIVATE KEY block".to_owned()),
        other => invalid(file, "key", format!("not a PEM private key: {other}")),
    })
}

/// Parses a pair and checks that the key is the certificate's.
pub(crate) fn certified_key(pair: &CertKeyPair, files: &PairFiles) -> Result<CertifiedKey, TlsError> {
    let chain = parse_chain(&pair.cert, &files.cert)?;
    let key = parse_key(&pair.key, &files.key)?;
    check_pair(pair, chain, key)
}

fn check_pair(
    pair: &CertKeyPair,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<CertifiedKey, TlsError> {
    let provider = provider();
    let signing_key = provider
        .key_provider
        .load_private_key(key)
        .map_err(|e| invalid(&pair.key, "key", format!("unusable private key: {e}")))?;
    let certified = CertifiedKey::new(chain, signing_key);
    match certified.keys_match() {
        Ok(()) => Ok(certified),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => Err(TlsError::Mismatch {
            written_at: pair.key.written_at.clone(),
            cert: pair.cert.path.clone(),
            key: pair.key.path.clone(),
        }),
        Err(rustls::Error::InconsistentKeys(_)) => Err(invalid(
            &pair.key,
            "key",
            "cannot tell whether this key matches the certificate (unsupported key type)".to_owned(),
        )),
        Err(e) => Err(invalid(&pair.cert, "certificate", format!("unusable certificate: {e}"))),
    }
}

/// Reads and checks one pair (blocking).
pub fn load_pair(pair: &CertKeyPair) -> Result<CertifiedKey, TlsError> {
    certified_key(pair, &read_pair(pair)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_of_another_certificate_is_a_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let one = rcgen::generate_simple_self_signed(vec!["one.test".to_owned()]).unwrap();
        let two = rcgen::generate_simple_self_signed(vec!["two.test".to_owned()]).unwrap();
        std::fs::write(dir.path().join("cert.pem"), one.cert.pem()).unwrap();
        std::fs::write(dir.path().join("key.pem"), two.signing_key.serialize_pem()).unwrap();
        let file = |name: &str| FileRef {
            path: dir.path().join(name),
            written_at: "routes.toml:3:8".to_owned(),
        };
        let pair = CertKeyPair {
            cert: file("cert.pem"),
            key: file("key.pem"),
        };
        let error = load_pair(&pair).unwrap_err();
        assert!(matches!(error, TlsError::Mismatch { .. }), "{error}");
        assert!(error.to_string().starts_with("routes.toml:3:8: key "), "{error}");

        std::fs::write(dir.path().join("key.pem"), one.signing_key.serialize_pem()).unwrap();
        load_pair(&pair).unwrap();

        std::fs::write(dir.path().join("key.pem"), "garbage").unwrap();
        let error = load_pair(&pair).unwrap_err();
        assert!(error.to_string().contains("no PRIVATE KEY block"), "{error}");
        std::fs::write(dir.path().join("cert.pem"), "").unwrap();
        let error = load_pair(&pair).unwrap_err();
        assert!(error.to_string().contains("no CERTIFICATE block"), "{error}");
    }
}
