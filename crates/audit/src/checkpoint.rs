//! Signed checkpoints: Ed25519 signatures over the chain head.
//!
//! A hash chain alone proves order and integrity *within* what is left: an
//! attacker who can write the file can cut its tail, or recompute every
//! hash after an edit. Checkpoints close both holes. Periodically, at every
//! file rotation and at shutdown the writer appends a `checkpoint` record
//! whose signature covers (seq, hash) of the record before it, and appends
//! the same statement to a side file (`<stem>.checkpoints` next to the JSONL
//! file). `verify` checks every signature (with the public key), and checks
//! that the log still contains every checkpointed (seq, hash) of the side
//! file: a cut tail or a rewritten chain is named. Ship the checkpoint
//! records off the host (PostgreSQL, stdout to a collector) and keep the
//! public key elsewhere: locally, whoever holds the private key can re-sign.
//!
//! Keys are PKCS#8 PEM (`openssl genpkey -algorithm ed25519` works); a
//! missing key file is generated at start (mode 0600) with the public key
//! beside it as `<path>.pub` (SPKI PEM).

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use ed25519_dalek::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::error::AuditError;
use crate::event::Checkpoint;

const DOMAIN: &[u8] = b"warden-audit-checkpoint/1";

/// The bytes a checkpoint signs.
pub fn signed_message(through_seq: u64, through_hash: &str) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + 90);
    m.extend_from_slice(DOMAIN);
    m.push(0);
    m.extend_from_slice(through_seq.to_string().as_bytes());
    m.push(0);
    m.extend_from_slice(through_hash.as_bytes());
    m
}

/// First 16 hex digits of SHA-256 of the raw public key.
pub fn key_id(key: &VerifyingKey) -> String {
    hex::encode(&Sha256::digest(key.as_bytes())[..8])
}

/// The writer's signing key.
pub(crate) struct CheckpointSigner {
    key: SigningKey,
    key_id: String,
}

impl CheckpointSigner {
    /// Loads the PKCS#8 PEM key at `path`, or generates one there (and its
    /// public key at `<path>.pub`) when the file does not exist.
    pub(crate) fn load_or_generate(path: &Path) -> Result<CheckpointSigner, AuditError> {
        let key = match fs::read_to_string(path) {
            Ok(text) => SigningKey::from_pkcs8_pem(&text).map_err(|e| AuditError::Key {
                path: path.to_owned(),
                reason: format!("not an Ed25519 PKCS#8 PEM private key ({e})"),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => generate(path)?,
            Err(e) => return Err(AuditError::io(path, e)),
        };
        let key_id = key_id(&key.verifying_key());
        Ok(CheckpointSigner { key, key_id })
    }

    pub(crate) fn sign(&self, through_seq: u64, through_hash: &str) -> Checkpoint {
        let signature = self.key.sign(&signed_message(through_seq, through_hash));
        Checkpoint {
            through_seq,
            through_hash: through_hash.to_owned(),
            key_id: self.key_id.clone(),
            signature: hex::encode(signature.to_bytes()),
        }
    }
}

/// Writes a new key pair: `path` (private, 0600) and `<path>.pub`.
pub fn generate_signing_key(path: &Path) -> Result<PathBuf, AuditError> {
    generate(path)?;
    Ok(public_key_path(path))
}

/// Where the public key of the private key at `path` is written.
pub fn public_key_path(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(".pub");
    PathBuf::from(name)
}

fn generate(path: &Path) -> Result<SigningKey, AuditError> {
    use std::os::unix::fs::OpenOptionsExt;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).map_err(|e| AuditError::io(dir, e))?;
    }
    let key = SigningKey::from_bytes(&rand::random::<[u8; 32]>());
    let key_err = |reason: String| AuditError::Key {
        path: path.to_owned(),
        reason,
    };
    let pem = key
        .to_pkcs8_pem(LineEnding::LF)
        .map_err(|e| key_err(e.to_string()))?;
    let mut file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| AuditError::io(path, e))?;
    file.write_all(pem.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| AuditError::io(path, e))?;
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .map_err(|e| key_err(e.to_string()))?;
    let pub_path = public_key_path(path);
    fs::write(&pub_path, public).map_err(|e| AuditError::io(&pub_path, e))?;
    Ok(key)
}

/// Loads a verification key: SPKI PEM (`BEGIN PUBLIC KEY`) or, for
/// convenience on the writing host, the PKCS#8 private key itself.
pub fn load_public_key(path: &Path) -> Result<VerifyingKey, AuditError> {
    let text = fs::read_to_string(path).map_err(|e| AuditError::io(path, e))?;
    if let Ok(key) = VerifyingKey::from_public_key_pem(&text) {
        return Ok(key);
    }
    SigningKey::from_pkcs8_pem(&text)
        .map(|k| k.verifying_key())
        .map_err(|_| AuditError::Key {
            path: path.to_owned(),
            reason: "not an Ed25519 public key (SPKI PEM) or private key (PKCS#8 PEM)".into(),
        })
}

/// Why a checkpoint does not verify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum SignatureProblem {
    OtherKey { key_id: String },
    Invalid,
}

pub(crate) fn check(key: &VerifyingKey, cp: &Checkpoint) -> Result<(), SignatureProblem> {
    if cp.key_id != key_id(key) {
        return Err(SignatureProblem::OtherKey {
            key_id: cp.key_id.clone(),
        });
    }
    let mut bytes = [0u8; 64];
    hex::decode_to_slice(&cp.signature, &mut bytes).map_err(|_| SignatureProblem::Invalid)?;
    key.verify(
        &signed_message(cp.through_seq, &cp.through_hash),
        &Signature::from_bytes(&bytes),
    )
    .map_err(|_| SignatureProblem::Invalid)
}

/// One line of the checkpoint side file.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct SideEntry {
    /// Seq of the checkpoint record itself.
    pub at_seq: u64,
    /// Its record hash.
    pub at_hash: String,
    #[serde(flatten)]
    pub checkpoint: Checkpoint,
}

/// `<dir>/<stem>.checkpoints` for the JSONL file `<dir>/<stem>.<ext>`.
pub fn side_file_for(jsonl: &Path) -> PathBuf {
    let stem = jsonl
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "audit".into());
    // A rotated file (`audit-000000000001.jsonl`) shares its active file's side file.
    let stem = match stem.rsplit_once('-') {
        Some((base, digits))
            if digits.len() == 12 && digits.bytes().all(|b| b.is_ascii_digit()) =>
        {
            base.to_owned()
        }
        _ => stem,
    };
    jsonl.with_file_name(format!("{stem}.checkpoints"))
}
