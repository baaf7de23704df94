//! API keys for service principals.
//!
//! A key is `wdn_<id>_<secret>`: `id` is 16 hex digits (the lookup key and
//! what `warden keys revoke` names), `secret` 32 random bytes in base64url.
//! It is shown once, at creation; the store keeps only
//! `HMAC-SHA256(server secret, key)`, so a stolen store file is useless
//! without the server secret, and a stolen server secret is useless without
//! the store. Verification is one HMAC and a constant-time compare.
//!
//! The store is a JSON file in Warden's data directory, written atomically
//! (temporary file, then rename) with mode 0600. A running gateway reloads
//! it when it changes, so a revocation takes effect without a restart.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_lc_rs::hmac;
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use serde::{Deserialize, Serialize};

use crate::error::IdentityError;
use crate::jws::b64;
use crate::settings::read_small_file;

/// Prefix of every Warden API key (and how a `Bearer` value is recognised
/// as one: a JWT always starts with `eyJ`).
pub const API_KEY_PREFIX: &str = "wdn_";
const ID_HEX: usize = 16;
const SECRET_B64: usize = 43;
const STORE_VERSION: u32 = 1;
const MAX_NAME: usize = 128;

/// The server-side secret of the keyed hash (at least 32 bytes).
#[derive(Clone)]
pub struct ApiKeySecret(hmac::Key);

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKeySecret([secret])")
    }
}

impl ApiKeySecret {
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, IdentityError> {
        if bytes.len() < 32 {
            return Err(IdentityError::Invalid(
                "API key secret shorter than 32 bytes".into(),
            ));
        }
        Ok(ApiKeySecret(hmac::Key::new(hmac::HMAC_SHA256, bytes)))
    }

    /// Read the secret from `path`, creating it (32 random bytes, mode
    /// 0600) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self, IdentityError> {
        match read_small_file(path) {
            Ok(bytes) => return Self::from_bytes(&bytes),
            Err(_) if !path.exists() => {}
            Err(reason) => return Err(IdentityError::file(path, reason)),
        }
        let mut bytes = [0u8; 32];
        SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| IdentityError::Invalid("no randomness".into()))?;
        match write_new_private_file(path, &bytes) {
            Ok(()) => Self::from_bytes(&bytes),
            // Lost a race with another process creating it: use theirs.
            Err(_) if path.exists() => {
                let bytes = read_small_file(path).map_err(|r| IdentityError::file(path, r))?;
                Self::from_bytes(&bytes)
            }
            Err(e) => Err(e),
        }
    }

    fn tag(&self, key: &str) -> String {
        hex(hmac::sign(&self.0, key.as_bytes()).as_ref())
    }

    fn verify(&self, key: &str, stored_hex: &str) -> bool {
        let Some(stored) = unhex(stored_hex) else {
            return false;
        };
        hmac::verify(&self.0, key.as_bytes(), &stored).is_ok()
    }
}

/// One key as stored: its keyed hash and what it maps to. Never the key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoredKey {
    pub id: String,
    /// The principal's subject.
    pub principal: String,
    pub roles: Vec<String>,
    /// Unix seconds.
    pub created_at: u64,
    /// Unix seconds; a revoked key is refused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<u64>,
    /// Hex `HMAC-SHA256(server secret, key)`.
    pub hash: String,
}

/// Make a new key for `principal_name` with `roles`. Returns the key (show
/// it once, never store it) and the record to add to the [`KeyStore`].
pub fn create_api_key(
    secret: &ApiKeySecret,
    principal_name: &str,
    roles: &[String],
) -> Result<(String, StoredKey), IdentityError> {
    check_name("principal", principal_name)?;
    for role in roles {
        check_name("role", role)?;
    }
    let rng = SystemRandom::new();
    let mut id = [0u8; ID_HEX / 2];
    let mut secret_bytes = [0u8; 32];
    rng.fill(&mut id)
        .and_then(|()| rng.fill(&mut secret_bytes))
        .map_err(|_| IdentityError::Invalid("no randomness".into()))?;
    let id = hex(&id);
    let key = format!("{API_KEY_PREFIX}{id}_{}", b64(&secret_bytes));
    let stored = StoredKey {
        id,
        principal: principal_name.to_owned(),
        roles: roles.to_vec(),
        created_at: unix_now(),
        revoked_at: None,
        hash: secret.tag(&key),
    };
    Ok((key, stored))
}

fn check_name(what: &str, name: &str) -> Result<(), IdentityError> {
    if name.is_empty() || name.len() > MAX_NAME || name.chars().any(|c| c.is_control()) {
        return Err(IdentityError::Invalid(format!(
            "{what} must be 1 to {MAX_NAME} printable characters"
        )));
    }
    Ok(())
}

/// The id of a well-formed key (`wdn_<16 hex>_<43 base64url>`), else None.
pub(crate) fn parse_key_id(key: &str) -> Option<&str> {
    let rest = key.strip_prefix(API_KEY_PREFIX)?;
    let (id, secret) = rest.split_at_checked(ID_HEX)?;
    let secret = secret.strip_prefix('_')?;
    let ok = id
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        && secret.len() == SECRET_B64
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then_some(id)
}

/// The key store file.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyStore {
    version: u32,
    keys: Vec<StoredKey>,
}

impl KeyStore {
    /// Load the store; a missing file is an empty store.
    pub fn load(path: &Path) -> Result<KeyStore, IdentityError> {
        if !path.exists() {
            return Ok(KeyStore {
                version: STORE_VERSION,
                keys: Vec::new(),
            });
        }
        let bytes = read_small_file(path).map_err(|r| IdentityError::file(path, r))?;
        let store: KeyStore = serde_json::from_slice(&bytes)
            .map_err(|e| IdentityError::file(path, format!("not a key store: {e}")))?;
        if store.version != STORE_VERSION {
            return Err(IdentityError::file(
                path,
                format!(
                    "key store version {} (expected {STORE_VERSION})",
                    store.version
                ),
            ));
        }
        Ok(store)
    }

    pub fn keys(&self) -> &[StoredKey] {
        &self.keys
    }

    pub fn add(&mut self, key: StoredKey) -> Result<(), IdentityError> {
        if self.keys.iter().any(|k| k.id == key.id) {
            return Err(IdentityError::Invalid(format!("key id {} exists", key.id)));
        }
        self.version = STORE_VERSION;
        self.keys.push(key);
        Ok(())
    }

    /// Mark a key revoked. False when there is no key with that id.
    pub fn revoke(&mut self, id: &str) -> bool {
        match self.keys.iter_mut().find(|k| k.id == id) {
            Some(key) => {
                key.revoked_at.get_or_insert_with(unix_now);
                true
            }
            None => false,
        }
    }

    /// Write the store atomically (temporary file in the same directory,
    /// mode 0600, then rename).
    pub fn save(&self, path: &Path) -> Result<(), IdentityError> {
        let bytes = serde_json::to_vec_pretty(self).map_err(|e| IdentityError::file(path, e))?;
        let dir = path.parent().unwrap_or(Path::new("."));
        std::fs::create_dir_all(dir).map_err(|e| IdentityError::file(dir, e))?;
        let mut tmp = PathBuf::from(path);
        tmp.set_extension(format!("tmp{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        write_new_private_file(&tmp, &bytes)?;
        std::fs::rename(&tmp, path).map_err(|e| IdentityError::file(path, e))
    }
}

/// The store as the authenticator uses it: live keys by id.
pub(crate) struct ApiKeyIndex {
    secret: ApiKeySecret,
    by_id: HashMap<String, StoredKey>,
}

impl ApiKeyIndex {
    pub(crate) fn new(secret: ApiKeySecret, store: &KeyStore) -> Self {
        let by_id = store
            .keys
            .iter()
            .filter(|k| k.revoked_at.is_none())
            .map(|k| (k.id.clone(), k.clone()))
            .collect();
        ApiKeyIndex { secret, by_id }
    }

    /// The record for a presented key, if it is well-formed, known, not
    /// revoked and its hash matches. One answer for all failures.
    pub(crate) fn check(&self, key: &str) -> Option<&StoredKey> {
        let id = parse_key_id(key)?;
        let stored = self.by_id.get(id)?;
        self.secret.verify(key, &stored.hash).then_some(stored)
    }
}

fn write_new_private_file(path: &Path, bytes: &[u8]) -> Result<(), IdentityError> {
    use std::io::Write;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| IdentityError::file(dir, e))?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options
        .open(path)
        .map_err(|e| IdentityError::file(path, e))?;
    file.write_all(bytes)
        .and_then(|()| file.sync_all())
        .map_err(|e| IdentityError::file(path, e))
}

pub(crate) fn write_private_file_once(path: &Path, bytes: &[u8]) -> Result<(), IdentityError> {
    write_new_private_file(path, bytes)
}

pub(crate) fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[usize::from(b >> 4)] as char);
        out.push(DIGITS[usize::from(b & 15)] as char);
    }
    out
}

fn unhex(text: &str) -> Option<Vec<u8>> {
    if !text.len().is_multiple_of(2) {
        return None;
    }
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret() -> ApiKeySecret {
        ApiKeySecret::from_bytes(&[42; 32]).expect("32 bytes")
    }

    #[test]
    fn created_keys_verify_and_revoked_ones_do_not() {
        let s = secret();
        let (key, stored) = create_api_key(&s, "ci-bot", &["deployer".into()]).expect("created");
        assert!(key.starts_with(API_KEY_PREFIX));
        assert_eq!(parse_key_id(&key), Some(stored.id.as_str()));
        assert!(
            !stored.hash.contains(&key[4..]),
            "the store never holds the key"
        );
        let mut store = KeyStore::default();
        store.add(stored.clone()).expect("added");
        let index = ApiKeyIndex::new(s.clone(), &store);
        assert_eq!(
            index.check(&key).map(|k| k.principal.as_str()),
            Some("ci-bot")
        );
        // One changed character of the secret part.
        let mut forged = key.clone();
        let last = forged.pop().expect("non-empty");
        forged.push(if last == 'A' { 'B' } else { 'A' });
        assert!(index.check(&forged).is_none());
        // Another server secret.
        let other = ApiKeyIndex::new(ApiKeySecret::from_bytes(&[1; 32]).expect("32"), &store);
        assert!(other.check(&key).is_none());
        assert!(store.revoke(&stored.id));
        assert!(ApiKeyIndex::new(s, &store).check(&key).is_none());
    }

    #[test]
    fn store_round_trips_with_private_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keys.json");
        let s = ApiKeySecret::load_or_create(&dir.path().join("secret")).expect("secret");
        let again = ApiKeySecret::load_or_create(&dir.path().join("secret")).expect("secret");
        let (key, stored) = create_api_key(&s, "svc", &[]).expect("created");
        let mut store = KeyStore::load(&path).expect("empty");
        store.add(stored).expect("added");
        store.save(&path).expect("saved");
        let loaded = KeyStore::load(&path).expect("loaded");
        assert_eq!(loaded, store);
        assert!(ApiKeyIndex::new(again, &loaded).check(&key).is_some());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn malformed_keys_have_no_id() {
        for key in [
            "",
            "wdn_",
            "wdn_0123456789abcdef",
            "wdn_0123456789ABCDEF_",
            "eyJhbGciOi.x.y",
        ] {
            assert!(parse_key_id(key).is_none(), "{key}");
        }
    }
}
