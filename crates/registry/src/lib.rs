//! Warden's tool registry (threats T02, T03, T04, T21).
//!
//! Tools are never trusted because an upstream announced them. Only
//! approved manifests, with their hashes pinned in `warden.lock`, reach a
//! client; a manifest that changes after approval is hidden and its calls
//! refused until someone re-approves it; a server whose command line,
//! executable or URL changed does not start.
//!
//! # The pieces
//!
//! * [`manifest()`] — an item (tool, prompt, resource template, resource,
//!   server instructions) exactly as the upstream sent it, canonicalised
//!   ([`canonical_json`], RFC 8785) and hashed ([`ManifestHash`], SHA-256).
//!   Canonical id = server + kind + name + hash.
//! * [`ServerIdentity`] / [`stdio_identity`] — what runs: command, args,
//!   the executable's hash, the `npx`/`uvx` package and version; or the URL
//!   and optional SPKI hash of a remote server.
//! * [`LockFile`] — `warden.lock` (TOML): every approved manifest and
//!   identity, who approved it and when, forced-approval reasons. Verified
//!   on load, written atomically.
//! * [`Registry`] — the run-time decisions, cheap reads without I/O:
//!   [`Registry::check_item`] on every list an upstream returns,
//!   [`Registry::check_call`] before every call, [`Registry::check_server`]
//!   before a server starts. Modes: [`Mode::Strict`] (default) and
//!   [`Mode::Tofu`].
//! * [`Scanner`] — finds poisoned manifests in every text of an item.
//! * [`diff()`] / [`diff_report`] — field-level drift, for audit events and
//!   `warden registry diff`.
//! * [`scan`] — `warden scan`: client configs in, report out.
//!
//! # How the gateway uses it
//!
//! ```text
//! start:    lock = LockFile::load(path)?; registry = Arc::new(Registry::new(lock, mode, Scanner::new()))
//! spawn:    registry.check_server(name, &stdio_identity(cmd, args, path_env))  → Err: refuse to start, audit reason.code()
//! list:     manifests = manifests_of_list(server, kind, result)   (+ instructions_manifest)
//!           check_list(&registry, &manifests, instance)  → forward only Allow items; Hidden(Drifted{..}) → audit old/new hash + diff
//!           if let Some(lock) = registry.take_unsaved() { save off the request path }   (tofu)
//! list_changed from upstream: re-list, same as above
//! call:     registry.check_call(server, kind, name, instance) → Hidden(r): JSON-RPC error with r.to_string()
//!           ("tool changed since approval"), audit r.code()
//! reload:   registry.replace_lock(LockFile::load(path)?)
//! ```
//!
//! # Invariants
//!
//! * No I/O on the request path: `check_*` read an in-memory lock file.
//! * Fail closed: unknown, unpinned, drifted or unverifiable means hidden.
//! * A drifted item stays blocked until re-approved, even if it reverts.
//! * Nothing from a peer reaches a message, report or error unescaped.
#![forbid(unsafe_code)]

pub mod canonical;
pub mod diff;
pub mod error;
pub mod identity;
pub mod lockfile;
pub mod manifest;
pub mod registry;
pub mod scan;
pub mod scanner;
pub mod text;

pub use canonical::{canonical_json, canonical_json_str, ManifestHash};
pub use diff::{diff, diff_report, FieldChange};
pub use error::RegistryError;
pub use identity::{http_identity, package_pin, stdio_identity, PackagePin, ServerIdentity};
pub use lockfile::{Approval, LockFile, PinnedItem, PinnedServer};
pub use manifest::{
    instructions_manifest, list_items, manifest, manifests_of_list, ItemKind, Manifest,
};
pub use registry::{
    check_list, check_list_in, ItemDecision, Mode, Reason, Registry, SHARED_INSTANCE,
};
pub use scanner::{
    described_text, External, ScanContext, ScanFinding, Scanner, ScannerConfig, Severity,
    Thresholds, Verdict,
};
