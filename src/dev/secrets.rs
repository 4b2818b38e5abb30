//! The secrets dev mode generates once and keeps in its data directory (readable by the owner
//! only): the key that encrypts tokens at rest, and the caller token with its callers file.

use std::{
    fs,
    io::Write,
    os::unix::fs::OpenOptionsExt,
    path::{Path, PathBuf},
};

use anyhow::Context;
use base64::{Engine, engine::general_purpose::STANDARD};
use rand::RngCore;
use sha2::{Digest, Sha256};

/// What dev mode's service is configured with.
pub struct DevSecrets {
    /// Base64 of the 32-byte token key.
    pub token_key: String,
    /// The bearer token of the `dev` caller (every scope, every tenant).
    pub caller_token: String,
    /// The callers file naming it.
    pub callers_file: PathBuf,
}

/// Reads the secrets of an earlier run, or makes them.
///
/// # Errors
/// When the files cannot be read or written.
pub fn load_or_create(dir: &Path) -> anyhow::Result<DevSecrets> {
    let token_key = read_or_make(&dir.join("token-key"), || STANDARD.encode(random::<32>()))?;
    let caller_token = read_or_make(&dir.join("caller-token"), || {
        format!("dev-{}", hex(&random::<16>()))
    })?;
    let callers_file = dir.join("callers.toml");
    let digest = hex(&Sha256::digest(caller_token.as_bytes()));
    let callers = format!(
        "# Written by `qbo-sync dev`: the one caller of dev mode.\n\
         [[caller]]\nname = \"dev\"\ntoken_sha256 = \"{digest}\"\n\
         scopes = [\"validate\", \"read\", \"write\", \"admin\"]\ntenants = [\"*\"]\n"
    );
    write_private(&callers_file, &callers)?;
    Ok(DevSecrets {
        token_key,
        caller_token,
        callers_file,
    })
}

fn read_or_make(path: &Path, make: impl FnOnce() -> String) -> anyhow::Result<String> {
    if let Ok(existing) = fs::read_to_string(path) {
        let existing = existing.trim();
        if !existing.is_empty() {
            return Ok(existing.to_owned());
        }
    }
    let value = make();
    write_private(path, &value)?;
    Ok(value)
}

fn write_private(path: &Path, contents: &str) -> anyhow::Result<()> {
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    file.write_all(contents.as_bytes())?;
    Ok(())
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    rand::rng().fill_bytes(&mut bytes);
    bytes
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
