//! Per-user OAuth grants to remote servers (`mode: oauth`, issue #18 item
//! 3), encrypted at rest: what `warden credentials login` stores and the
//! request path refreshes from.
//!
//! One JSON file; each entry is sealed with AES-256-GCM under a 32-byte
//! key the operator provides (`env:`/`file:`, base64), with a fresh random
//! nonce per write. An entry's id is SHA-256 of (principal, server), which
//! is also the AEAD's associated data: the file names no principal and no
//! server, holds no token in clear, and a sealed grant moved under another
//! user's id no longer opens. Writes replace the file atomically (mode
//! 0600), one at a time: each holds the lock file beside it while it reads,
//! changes and writes the store, so concurrent writers (in one process or
//! several) lose nothing.

use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::error::CredentialError;

/// What Warden keeps of one user's authorization at one server. `Debug`
/// never prints a token.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserGrant {
    pub refresh_token: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub access_token: Option<String>,
    /// `exp` of `access_token`, seconds since the Unix epoch.
    #[serde(default)]
    pub expires_at: u64,
    #[serde(default)]
    pub scope: String,
    /// Where the refresh token is redeemed, and as which client.
    pub token_endpoint: String,
    pub client_id: String,
    /// The protected resource (RFC 8707) the tokens are for.
    #[serde(default)]
    pub resource: String,
}

impl std::fmt::Debug for UserGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserGrant")
            .field("expires_at", &self.expires_at)
            .field("scope", &self.scope)
            .field("token_endpoint", &self.token_endpoint)
            .field("client_id", &self.client_id)
            .finish_non_exhaustive()
    }
}

#[derive(Default, Serialize, Deserialize)]
struct StoreFile {
    version: u32,
    /// id → base64url(nonce ‖ ciphertext ‖ tag).
    entries: BTreeMap<String, String>,
}

/// The encrypted grant store.
pub struct GrantStore {
    path: PathBuf,
    key: LessSafeKey,
}

impl std::fmt::Debug for GrantStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GrantStore")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl GrantStore {
    /// The store at `path` (created on first write), sealed with `key`: 32
    /// bytes, base64 (`openssl rand -base64 32`).
    pub fn open(path: &Path, key_base64: &str) -> Result<GrantStore, CredentialError> {
        let bytes = STANDARD
            .decode(key_base64.trim())
            .map_err(|_| CredentialError::Store("the key is not base64".into()))?;
        if bytes.len() != 32 {
            return Err(CredentialError::Store(
                "the key must be 32 bytes, base64 (openssl rand -base64 32)".into(),
            ));
        }
        let unbound = UnboundKey::new(&AES_256_GCM, &bytes)
            .map_err(|_| CredentialError::Store("unusable key".into()))?;
        Ok(GrantStore {
            path: path.to_owned(),
            key: LessSafeKey::new(unbound),
        })
    }

    /// The grant of `principal` at `server`, if one is stored.
    pub fn get(&self, principal: &str, server: &str) -> Result<Option<UserGrant>, CredentialError> {
        let id = entry_id(principal, server);
        let file = self.read()?;
        let Some(sealed) = file.entries.get(&id) else {
            return Ok(None);
        };
        let mut bytes = URL_SAFE_NO_PAD.decode(sealed).map_err(|_| self.corrupt())?;
        if bytes.len() < NONCE_LEN {
            return Err(self.corrupt());
        }
        let mut nonce = [0u8; NONCE_LEN];
        nonce.copy_from_slice(&bytes[..NONCE_LEN]);
        let plain = self
            .key
            .open_in_place(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.as_bytes()),
                &mut bytes[NONCE_LEN..],
            )
            .map_err(|_| {
                CredentialError::Store(format!(
                    "{}: an entry does not open with this key (wrong key, or moved)",
                    self.path.display()
                ))
            })?;
        serde_json::from_slice(plain)
            .map(Some)
            .map_err(|_| self.corrupt())
    }

    /// Stores (or replaces) the grant of `principal` at `server`.
    pub fn put(
        &self,
        principal: &str,
        server: &str,
        grant: &UserGrant,
    ) -> Result<(), CredentialError> {
        let id = entry_id(principal, server);
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| CredentialError::Store("no randomness".into()))?;
        let mut sealed = serde_json::to_vec(grant).map_err(|_| self.corrupt())?;
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(id.as_bytes()),
                &mut sealed,
            )
            .map_err(|_| CredentialError::Store("sealing failed".into()))?;
        let mut stored = nonce.to_vec();
        stored.extend_from_slice(&sealed);
        let stored = URL_SAFE_NO_PAD.encode(stored);
        self.change(|file| {
            file.version = 1;
            file.entries.insert(id, stored);
            Ok(((), true))
        })
    }

    /// Forgets the grant of `principal` at `server`.
    pub fn remove(&self, principal: &str, server: &str) -> Result<bool, CredentialError> {
        let id = entry_id(principal, server);
        self.change(|file| {
            let removed = file.entries.remove(&id).is_some();
            Ok((removed, removed))
        })
    }

    /// Reads the file, lets `f` change it and writes it back (when `f`
    /// says it changed), holding the store's lock file (`<path>.lock`,
    /// `flock`) throughout: writers in this process and in others (the CLI
    /// beside the gateway, two gateways on one store) take turns, so none
    /// writes back a file read before another's write.
    fn change<T>(
        &self,
        f: impl FnOnce(&mut StoreFile) -> Result<(T, bool), CredentialError>,
    ) -> Result<T, CredentialError> {
        let lock_path = self.path.with_extension("lock");
        let fail = |e: std::io::Error| {
            CredentialError::Store(format!("cannot lock {}: {e}", lock_path.display()))
        };
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let lock = options.open(&lock_path).map_err(fail)?;
        lock.lock().map_err(fail)?;
        let mut file = self.read()?;
        let (out, changed) = f(&mut file)?;
        if changed {
            self.write(&file)?;
        }
        // Closing the lock file releases the lock.
        drop(lock);
        Ok(out)
    }

    fn read(&self) -> Result<StoreFile, CredentialError> {
        match std::fs::read(&self.path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|_| self.corrupt()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(StoreFile::default()),
            Err(e) => Err(CredentialError::Store(format!(
                "cannot read {}: {e}",
                self.path.display()
            ))),
        }
    }

    fn write(&self, file: &StoreFile) -> Result<(), CredentialError> {
        let fail = |e: std::io::Error| {
            CredentialError::Store(format!("cannot write {}: {e}", self.path.display()))
        };
        let text = serde_json::to_vec_pretty(file).map_err(|_| self.corrupt())?;
        let tmp = self.path.with_extension("tmp");
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut out = options.open(&tmp).map_err(fail)?;
        out.write_all(&text).map_err(fail)?;
        out.sync_all().map_err(fail)?;
        std::fs::rename(&tmp, &self.path).map_err(fail)
    }

    fn corrupt(&self) -> CredentialError {
        CredentialError::Store(format!("{} is not a grant store", self.path.display()))
    }
}

/// SHA-256 of the principal key and server name, base64url: the entry's
/// name and its associated data.
fn entry_id(principal: &str, server: &str) -> String {
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(principal.as_bytes());
    ctx.update(&[0]);
    ctx.update(server.as_bytes());
    URL_SAFE_NO_PAD.encode(ctx.finish().as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    fn grant(refresh: &str) -> UserGrant {
        UserGrant {
            refresh_token: refresh.into(),
            access_token: Some("at-secret-value".into()),
            expires_at: 1_900_000_000,
            scope: "mcp".into(),
            token_endpoint: "https://as.example/token".into(),
            client_id: "warden".into(),
            resource: "https://crm.example/mcp".into(),
        }
    }

    /// Defect: `put` and `remove` read the file, changed it and wrote it
    /// back through one shared temporary file, with nothing held between:
    /// two writers at once (two users' logins, a refresh's rotated token
    /// beside a login, the CLI beside the gateway) lost one's grant or
    /// left a file of interleaved writes that no longer parsed.
    #[test]
    fn concurrent_writers_lose_no_grant() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grants.json");
        // Two stores on one file: two processes, as far as the file knows.
        let stores = [
            std::sync::Arc::new(GrantStore::open(&path, KEY).unwrap()),
            std::sync::Arc::new(GrantStore::open(&path, KEY).unwrap()),
        ];
        let writers: Vec<_> = (0..8)
            .map(|w| {
                let store = stores[w % 2].clone();
                std::thread::spawn(move || {
                    for i in 0..12 {
                        store
                            .put(&format!("p{w}-{i}"), "crm", &grant(&format!("rt-{w}-{i}")))
                            .unwrap();
                        if i % 3 == 0 {
                            store
                                .put(&format!("gone{w}-{i}"), "crm", &grant("x"))
                                .unwrap();
                            assert!(store.remove(&format!("gone{w}-{i}"), "crm").unwrap());
                        }
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        for w in 0..8 {
            for i in 0..12 {
                let got = stores[0].get(&format!("p{w}-{i}"), "crm").unwrap();
                assert_eq!(got.map(|g| g.refresh_token), Some(format!("rt-{w}-{i}")));
            }
        }
        let text = std::fs::read_to_string(&path).unwrap();
        let file: StoreFile = serde_json::from_str(&text).unwrap();
        assert_eq!(file.entries.len(), 8 * 12);
    }

    #[test]
    fn grants_round_trip_and_are_not_readable_in_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grants.json");
        let store = GrantStore::open(&path, KEY).unwrap();
        store
            .put("corp:alice", "crm", &grant("rt-alice-secret"))
            .unwrap();
        store
            .put("corp:bob", "crm", &grant("rt-bob-secret"))
            .unwrap();
        assert_eq!(
            store.get("corp:alice", "crm").unwrap(),
            Some(grant("rt-alice-secret"))
        );
        assert_eq!(
            store.get("corp:bob", "crm").unwrap(),
            Some(grant("rt-bob-secret"))
        );
        assert_eq!(store.get("corp:alice", "other").unwrap(), None);
        let text = std::fs::read_to_string(&path).unwrap();
        for clear in [
            "rt-alice",
            "rt-bob",
            "at-secret",
            "alice",
            "crm",
            "as.example",
            "crm.example",
        ] {
            assert!(!text.contains(clear), "{clear} readable in {text}");
        }
        assert!(!format!("{:?}", grant("rt-x")).contains("rt-x"));
        assert!(store.remove("corp:bob", "crm").unwrap());
        assert_eq!(store.get("corp:bob", "crm").unwrap(), None);
    }

    #[test]
    fn a_wrong_key_or_a_moved_entry_does_not_open() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grants.json");
        let store = GrantStore::open(&path, KEY).unwrap();
        store.put("corp:alice", "crm", &grant("rt-a")).unwrap();
        store.put("corp:mallory", "crm", &grant("rt-m")).unwrap();
        let other = GrantStore::open(&path, &STANDARD.encode([7u8; 32])).unwrap();
        assert!(other.get("corp:alice", "crm").is_err());
        // Mallory copies Alice's sealed grant under her own id.
        let mut file: StoreFile = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let alice = file.entries[&entry_id("corp:alice", "crm")].clone();
        file.entries.insert(entry_id("corp:mallory", "crm"), alice);
        std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();
        assert!(store.get("corp:mallory", "crm").is_err());
        assert!(GrantStore::open(&path, "c2hvcnQ=").is_err());
    }
}
