//! Password hashing with argon2id, stored as PHC strings (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`).
//!
//! A PHC string carries its own parameters, so a hash made with cheap test parameters verifies cheaply and
//! a hash made with production parameters keeps verifying after the defaults change.
//!
//! Hashing and verifying are deliberately slow CPU work: call them from `spawn_blocking`.

use std::sync::{Arc, OnceLock};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

/// Hashing failed, or a stored hash is not a valid PHC string.
#[derive(Debug, thiserror::Error)]
#[error("password hashing: {0}")]
pub struct PasswordError(String);

/// Hashes and verifies passwords. Cheap to clone.
#[derive(Debug, Clone)]
pub struct PasswordHasher {
    argon: Argon2<'static>,
    /// A hash of nothing in particular, made on first use, to verify against when the user does not exist so
    /// that "no such user" and "wrong password" take the same time.
    dummy: Arc<OnceLock<String>>,
}

impl Default for PasswordHasher {
    /// argon2id with the crate's default (OWASP-recommended) cost: 19 MiB, 2 passes, 1 lane.
    fn default() -> Self {
        Self::from_params(Params::default())
    }
}

impl PasswordHasher {
    /// argon2id with a custom cost: `memory_kib` KiB of memory, `passes` iterations, `lanes` parallelism.
    pub fn with_cost(memory_kib: u32, passes: u32, lanes: u32) -> Result<Self, PasswordError> {
        let params = Params::new(memory_kib, passes, lanes, None).map_err(|e| PasswordError(e.to_string()))?;
        Ok(Self::from_params(params))
    }

    /// The cheapest parameters argon2 allows. For tests only: such hashes are easy to brute-force.
    pub fn insecure_fast() -> Self {
        let params = Params::new(Params::MIN_M_COST, Params::MIN_T_COST, Params::MIN_P_COST, None).unwrap_or_default();
        Self::from_params(params)
    }

    fn from_params(params: Params) -> Self {
        Self {
            argon: Argon2::new(Algorithm::Argon2id, Version::V0x13, params),
            dummy: Arc::default(),
        }
    }

    /// Hashes `password` with a fresh random salt.
    pub fn hash(&self, password: &str) -> Result<String, PasswordError> {
        let salt = SaltString::generate(&mut OsRng);
        self.argon
            .hash_password(password.as_bytes(), &salt)
            .map(|hash| hash.to_string())
            .map_err(|e| PasswordError(e.to_string()))
    }

    /// Whether `password` matches the stored PHC string `hash`. A malformed `hash` is an error.
    pub fn verify(&self, password: &str, hash: &str) -> Result<bool, PasswordError> {
        let parsed = PasswordHash::new(hash).map_err(|e| PasswordError(e.to_string()))?;
        match self.argon.verify_password(password.as_bytes(), &parsed) {
            Ok(()) => Ok(true),
            Err(argon2::password_hash::Error::Password) => Ok(false),
            Err(e) => Err(PasswordError(e.to_string())),
        }
    }

    /// Spends the time a verification takes and returns `false`: call it when the user does not exist.
    pub fn verify_nobody(&self, password: &str) -> bool {
        let dummy = self
            .dummy
            .get_or_init(|| self.hash("not a password anybody has").unwrap_or_default());
        let _ = self.verify(password, dummy);
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_then_verify() {
        let hasher = PasswordHasher::insecure_fast();
        let hash = hasher.hash("password").unwrap();
        assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
        assert!(hasher.verify("password", &hash).unwrap());
        assert!(!hasher.verify("Password", &hash).unwrap());
        assert!(!hasher.verify("", &hash).unwrap());
    }

    #[test]
    fn salts_differ() {
        let hasher = PasswordHasher::insecure_fast();
        assert_ne!(hasher.hash("password").unwrap(), hasher.hash("password").unwrap());
    }

    #[test]
    fn parameters_travel_with_the_hash() {
        let cheap = PasswordHasher::insecure_fast().hash("password").unwrap();
        let other = PasswordHasher::with_cost(16, 1, 1).unwrap();
        assert!(other.verify("password", &cheap).unwrap());
    }

    #[test]
    fn default_cost_is_owasp() {
        let hash = PasswordHasher::default();
        assert_eq!(hash.argon.params().m_cost(), 19 * 1024);
        assert_eq!(hash.argon.params().t_cost(), 2);
    }

    #[test]
    fn malformed_hash_is_an_error_and_nobody_never_matches() {
        let hasher = PasswordHasher::insecure_fast();
        assert!(hasher.verify("password", "plaintext").is_err());
        assert!(!hasher.verify_nobody("password"));
        assert!(PasswordHasher::with_cost(0, 0, 0).is_err());
    }
}
