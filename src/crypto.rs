//! Encryption of OAuth tokens at rest: AES-256-GCM with a random 96-bit nonce, the tenant and
//! realm as associated data (so a ciphertext copied to another connection row fails to open),
//! and a leading key-version byte so keys can be rotated: new tokens are sealed with the
//! current key, and older versions stay readable while they are kept in the key ring.
//!
//! Layout of a sealed value: `version (1) || nonce (12) || ciphertext || tag (16)`.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, Payload},
};
use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;
use secrecy::{ExposeSecret, SecretString};

const NONCE_LEN: usize = 12;

/// Why sealing or opening failed. Texts never hold key or token material.
#[derive(Debug, thiserror::Error)]
pub enum CryptoError {
    /// No key is configured (`QBO_SYNC_TOKEN_KEY`).
    #[error("no token key configured (QBO_SYNC_TOKEN_KEY)")]
    MissingKey,
    /// The key is not base64 of exactly 32 bytes.
    #[error("token key must be base64 of 32 bytes")]
    BadKey,
    /// The value was sealed with a key version not in the ring.
    #[error("unknown token key version {0}")]
    UnknownVersion(u8),
    /// The value is too short, was altered, or belongs to another tenant or realm.
    #[error("token ciphertext failed authentication")]
    Tampered,
    /// The opened value is not UTF-8.
    #[error("token plaintext is not UTF-8")]
    NotUtf8,
}

/// A ring of AES-256-GCM keys, one of them current.
#[derive(Clone)]
pub struct TokenCipher {
    current: u8,
    keys: Vec<(u8, Aes256Gcm)>,
}

impl std::fmt::Debug for TokenCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print key material.
        f.debug_struct("TokenCipher")
            .field("current", &self.current)
            .finish_non_exhaustive()
    }
}

impl TokenCipher {
    /// A cipher whose current key is `key` (base64 of 32 bytes) with the given version.
    ///
    /// # Errors
    /// [`CryptoError::BadKey`] when the key is not base64 of 32 bytes.
    pub fn new(version: u8, key: &SecretString) -> Result<Self, CryptoError> {
        Ok(Self {
            current: version,
            keys: vec![(version, decode_key(key)?)],
        })
    }

    /// Builds the cipher from configuration: the current key (required) with its version,
    /// and optionally the previous key as `VERSION:BASE64`.
    ///
    /// # Errors
    /// [`CryptoError::MissingKey`] or [`CryptoError::BadKey`] (also for a malformed previous
    /// key or one with the current key's version).
    pub fn from_config(
        key: Option<&SecretString>,
        version: u8,
        previous: Option<&SecretString>,
    ) -> Result<Self, CryptoError> {
        let cipher = Self::new(version, key.ok_or(CryptoError::MissingKey)?)?;
        let Some(previous) = previous else {
            return Ok(cipher);
        };
        let (old_version, old_key) = previous
            .expose_secret()
            .split_once(':')
            .ok_or(CryptoError::BadKey)?;
        let old_version: u8 = old_version
            .trim()
            .parse()
            .map_err(|_| CryptoError::BadKey)?;
        if old_version == version {
            return Err(CryptoError::BadKey);
        }
        cipher.with_previous(old_version, &SecretString::from(old_key.to_owned()))
    }

    /// Keeps an older key readable (for rotation); it is never used to seal.
    ///
    /// # Errors
    /// [`CryptoError::BadKey`] when the key is not base64 of 32 bytes.
    pub fn with_previous(mut self, version: u8, key: &SecretString) -> Result<Self, CryptoError> {
        self.keys.push((version, decode_key(key)?));
        Ok(self)
    }

    /// Seals `plaintext` for the (tenant, realm) pair with the current key.
    ///
    /// # Errors
    /// [`CryptoError::Tampered`] only if the AEAD itself fails (it does not for valid keys).
    pub fn seal(&self, tenant: &str, realm: &str, plaintext: &str) -> Result<Vec<u8>, CryptoError> {
        let cipher = self.key(self.current)?;
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let aad = associated_data(tenant, realm);
        let sealed = cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext.as_bytes(),
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Tampered)?;
        let mut out = Vec::with_capacity(1 + NONCE_LEN + sealed.len());
        out.push(self.current);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&sealed);
        Ok(out)
    }

    /// Opens a value sealed by [`Self::seal`] for the same (tenant, realm).
    ///
    /// # Errors
    /// [`CryptoError::UnknownVersion`], [`CryptoError::Tampered`] (altered, truncated, or
    /// sealed for another tenant or realm) or [`CryptoError::NotUtf8`].
    pub fn open(
        &self,
        tenant: &str,
        realm: &str,
        sealed: &[u8],
    ) -> Result<SecretString, CryptoError> {
        if sealed.len() < 1 + NONCE_LEN + 16 {
            return Err(CryptoError::Tampered);
        }
        let cipher = self.key(sealed[0])?;
        let (nonce, body) = sealed[1..].split_at(NONCE_LEN);
        let aad = associated_data(tenant, realm);
        let plain = cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: body,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Tampered)?;
        String::from_utf8(plain)
            .map(SecretString::from)
            .map_err(|_| CryptoError::NotUtf8)
    }

    /// Whether a sealed value uses an older key and should be re-sealed.
    #[must_use]
    pub fn needs_reseal(&self, sealed: &[u8]) -> bool {
        sealed.first().is_some_and(|v| *v != self.current)
    }

    fn key(&self, version: u8) -> Result<&Aes256Gcm, CryptoError> {
        self.keys
            .iter()
            .find(|(v, _)| *v == version)
            .map(|(_, k)| k)
            .ok_or(CryptoError::UnknownVersion(version))
    }
}

fn decode_key(key: &SecretString) -> Result<Aes256Gcm, CryptoError> {
    let bytes = STANDARD
        .decode(key.expose_secret().trim())
        .map_err(|_| CryptoError::BadKey)?;
    Aes256Gcm::new_from_slice(&bytes).map_err(|_| CryptoError::BadKey)
}

/// Length-prefixed so ("ab", "c") and ("a", "bc") differ.
fn associated_data(tenant: &str, realm: &str) -> Vec<u8> {
    let mut aad = b"qbo-sync token v1".to_vec();
    for part in [tenant, realm] {
        aad.extend_from_slice(&u32::try_from(part.len()).unwrap_or(u32::MAX).to_be_bytes());
        aad.extend_from_slice(part.as_bytes());
    }
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretString {
        SecretString::from(STANDARD.encode([byte; 32]))
    }

    #[test]
    fn round_trip_with_random_nonce() {
        let cipher = TokenCipher::new(1, &key(7)).unwrap();
        let a = cipher.seal("t1", "r1", "refresh-token-value").unwrap();
        let b = cipher.seal("t1", "r1", "refresh-token-value").unwrap();
        assert_ne!(a, b, "nonces must differ");
        assert_eq!(a[0], 1);
        assert!(!a.windows(7).any(|w| w == b"refresh"));
        assert_eq!(
            cipher.open("t1", "r1", &a).unwrap().expose_secret(),
            "refresh-token-value"
        );
    }

    #[test]
    fn tampering_fails() {
        let cipher = TokenCipher::new(1, &key(7)).unwrap();
        let sealed = cipher.seal("t1", "r1", "secret").unwrap();
        for i in 1..sealed.len() {
            let mut bad = sealed.clone();
            bad[i] ^= 0x01;
            assert!(matches!(
                cipher.open("t1", "r1", &bad),
                Err(CryptoError::Tampered)
            ));
        }
        assert!(matches!(
            cipher.open("t1", "r1", &sealed[..10]),
            Err(CryptoError::Tampered)
        ));
    }

    #[test]
    fn wrong_associated_data_fails() {
        let cipher = TokenCipher::new(1, &key(7)).unwrap();
        let sealed = cipher.seal("t1", "r1", "secret").unwrap();
        assert!(cipher.open("t2", "r1", &sealed).is_err());
        assert!(cipher.open("t1", "r2", &sealed).is_err());
        // Boundary shifting must not produce the same associated data.
        let shifted = cipher.seal("ab", "c", "secret").unwrap();
        assert!(cipher.open("a", "bc", &shifted).is_err());
    }

    #[test]
    fn rotation_reads_old_and_seals_new() {
        let old = TokenCipher::new(1, &key(1)).unwrap();
        let sealed_old = old.seal("t", "r", "x").unwrap();
        let ring = TokenCipher::new(2, &key(2))
            .unwrap()
            .with_previous(1, &key(1))
            .unwrap();
        assert_eq!(
            ring.open("t", "r", &sealed_old).unwrap().expose_secret(),
            "x"
        );
        assert!(ring.needs_reseal(&sealed_old));
        let sealed_new = ring.seal("t", "r", "x").unwrap();
        assert_eq!(sealed_new[0], 2);
        assert!(matches!(
            old.open("t", "r", &sealed_new),
            Err(CryptoError::UnknownVersion(2))
        ));
    }

    #[test]
    fn configured_rotation_reads_the_previous_key() {
        let sealed_old = TokenCipher::new(1, &key(1))
            .unwrap()
            .seal("t", "r", "x")
            .unwrap();
        let previous = SecretString::from(format!("1:{}", STANDARD.encode([1u8; 32])));
        let ring = TokenCipher::from_config(Some(&key(2)), 2, Some(&previous)).unwrap();
        assert_eq!(
            ring.open("t", "r", &sealed_old).unwrap().expose_secret(),
            "x"
        );
        assert_eq!(ring.seal("t", "r", "x").unwrap()[0], 2);
        for bad in ["no-colon", "x:AAAA", "2:AAAA"] {
            let bad = SecretString::from(bad.to_owned());
            assert!(TokenCipher::from_config(Some(&key(2)), 2, Some(&bad)).is_err());
        }
    }

    #[test]
    fn bad_and_missing_keys() {
        assert!(matches!(
            TokenCipher::new(1, &SecretString::from("c2hvcnQ=")),
            Err(CryptoError::BadKey)
        ));
        assert!(matches!(
            TokenCipher::from_config(None, 1, None),
            Err(CryptoError::MissingKey)
        ));
        let debug = format!("{:?}", TokenCipher::new(1, &key(9)).unwrap());
        assert!(!debug.contains("9"), "{debug}");
    }
}
