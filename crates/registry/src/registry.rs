//! Run-time decisions: which items an upstream may expose, which calls may
//! proceed, which servers may start. Called by the gateway on every list an
//! upstream returns, before every call, and before starting a server.

use std::collections::HashMap;
use std::fmt;
use std::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::SystemTime;

use crate::canonical::ManifestHash;
use crate::diff::{diff, FieldChange};
use crate::identity::ServerIdentity;
use crate::lockfile::LockFile;
use crate::manifest::{ItemKind, Manifest};
use crate::scanner::{ScanContext, ScanFinding, Scanner, Verdict};

/// How unknown items are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// Only items and servers in the lock file exist. The default.
    #[default]
    Strict,
    /// Trust on first use: an unknown server or item the scanner does not
    /// block is pinned when first seen (the registry records it; the gateway
    /// persists it, see [`Registry::take_unsaved`]) and enforced from then on.
    Tofu,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Strict => "strict",
            Mode::Tofu => "tofu",
        }
    }
}

/// Whether an item may be shown to clients.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ItemDecision {
    Allow,
    Hidden(Reason),
}

/// Why an item is hidden, a call refused, or a server not started.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Reason {
    /// No approved manifest for this item.
    Unpinned,
    /// The live manifest differs from the approved one. Sticky: the item
    /// stays blocked until re-approved, even if the upstream reverts.
    Drifted {
        pinned: ManifestHash,
        live: ManifestHash,
        diff: Vec<FieldChange>,
    },
    /// The scanner blocks it (only reached in `tofu` mode: strict mode
    /// never shows what is not pinned, and pins are scanned when made).
    Blocked(Vec<ScanFinding>),
    /// The server is not in the lock file at all.
    UnknownServer,
    /// The server's command line, executable or URL changed since approval.
    ServerChanged(Vec<FieldChange>),
}

impl Reason {
    /// Stable audit reason code.
    pub fn code(&self) -> &'static str {
        match self {
            Reason::Unpinned => "registry.unpinned",
            Reason::Drifted { .. } => "registry.drifted",
            Reason::Blocked(_) => "registry.scan_blocked",
            Reason::UnknownServer => "registry.unknown_server",
            Reason::ServerChanged(_) => "registry.server_changed",
        }
    }
}

/// The message a client may see: no hashes, no findings, no internals.
impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Reason::Unpinned => "tool not approved",
            Reason::Drifted { .. } => "tool changed since approval",
            Reason::Blocked(_) => "tool refused by the description scanner",
            Reason::UnknownServer => "server not approved",
            Reason::ServerChanged(_) => "server changed since approval",
        })
    }
}

/// The registry: the lock file, the mode and the scanner, shared by every
/// request (`Arc<Registry>`). Reads take a shared lock and do no I/O; only
/// drift detection and tofu pins write.
pub struct Registry {
    mode: Mode,
    scanner: Scanner,
    state: RwLock<State>,
}

struct State {
    lock: LockFile,
    /// Items seen drifted: (server, kind, name) → on which instances, with
    /// the live hash. Cleared per item when it is re-approved (a new lock
    /// file is installed).
    drifted: HashMap<(String, ItemKind, String), Drift>,
    /// Tofu pins not yet handed out by `take_unsaved`.
    unsaved: bool,
}

impl fmt::Debug for Registry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registry")
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// Where one item was seen drifted. Drift is judged per instance (one
/// running copy of a server: the gateway's pool key), so one principal's
/// changed upstream process blocks that process, not everyone else's
/// unchanged one. An item seen drifted on more than [`MAX_INSTANCES`]
/// instances is blocked on all of them: the memory stays bounded and the
/// bound fails closed.
#[derive(Debug, Default)]
struct Drift {
    everywhere: Option<ManifestHash>,
    instances: HashMap<String, ManifestHash>,
}

const MAX_INSTANCES: usize = 1024;

impl Drift {
    fn on(&self, instance: &str) -> Option<&ManifestHash> {
        self.everywhere
            .as_ref()
            .or_else(|| self.instances.get(instance))
    }

    fn insert(&mut self, instance: &str, live: ManifestHash) {
        if self.everywhere.is_some() {
            return;
        }
        if self.instances.len() >= MAX_INSTANCES {
            self.everywhere = Some(live);
            self.instances = HashMap::new();
        } else {
            self.instances.insert(instance.to_owned(), live);
        }
    }
}

/// The instance of a server that is the only one (shared isolation, the
/// CLI, tests): drift on it blocks the item for every caller.
pub const SHARED_INSTANCE: &str = "";

/// Who tofu pins are attributed to in the lock file.
pub const TOFU_APPROVER: &str = "tofu";

impl Registry {
    pub fn new(lock: LockFile, mode: Mode, scanner: Scanner) -> Self {
        Self {
            mode,
            scanner,
            state: RwLock::new(State {
                lock,
                drifted: HashMap::new(),
                unsaved: false,
            }),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    pub fn scanner(&self) -> &Scanner {
        &self.scanner
    }

    /// List filtering: only pinned items whose live hash equals the pinned
    /// hash pass. A drifted item is remembered and stays hidden (and its
    /// calls refused) until re-approved. In tofu mode an unknown item is
    /// scanned and, unless blocked, pinned now.
    ///
    /// `instance` names the running copy of the server the manifest came
    /// from ([`SHARED_INSTANCE`] when there is one): drift is remembered
    /// for that instance only.
    pub fn check_item(&self, m: &Manifest, instance: &str) -> ItemDecision {
        self.check_item_in(m, &ScanContext::default(), instance)
    }

    /// [`Registry::check_item`] with the item's neighbours, for the tofu scan.
    pub fn check_item_in(&self, m: &Manifest, ctx: &ScanContext, instance: &str) -> ItemDecision {
        self.check(m, Some(ctx), instance)
    }

    /// Before a call: [`Registry::check_item`] that never pins. Items are
    /// pinned where their list is checked (with the list's context and the
    /// operator's classifier); an item still unpinned at a call was not
    /// pinned there, and a scan without that context must not pin it now.
    pub fn check_known(&self, m: &Manifest, instance: &str) -> ItemDecision {
        self.check(m, None, instance)
    }

    fn check(&self, m: &Manifest, ctx: Option<&ScanContext>, instance: &str) -> ItemDecision {
        let known = {
            let state = self.read();
            match self.decide(&state, m, instance) {
                Some(known) => Some(known),
                None if self.mode == Mode::Strict => {
                    return ItemDecision::Hidden(if state.lock.knows_server(&m.server) {
                        Reason::Unpinned
                    } else {
                        Reason::UnknownServer
                    });
                }
                None => None,
            }
        };
        // The read guard is gone: the paths below may take the write lock.
        let Some(known) = known else {
            return match ctx {
                Some(ctx) => self.first_sight(m, ctx),
                None => self.unpinned(m),
            };
        };
        let (decision, newly_drifted) = known;
        if newly_drifted {
            self.write()
                .drifted
                .entry((m.server.clone(), m.kind, m.name.clone()))
                .or_default()
                .insert(instance, m.hash);
        }
        decision
    }

    /// Whether the lock file pins an item of this kind and name (an item it
    /// does not pin is scanned when first seen, in tofu mode).
    pub fn is_pinned(&self, m: &Manifest) -> bool {
        self.read().lock.get(&m.server, m.kind, &m.name).is_some()
    }

    /// Why an item is not pinned, without pinning it: what the scanner
    /// blocks (its findings), else not approved.
    fn unpinned(&self, m: &Manifest) -> ItemDecision {
        match self.scanner.scan_item(m, &ScanContext::new()) {
            Ok((Verdict::Block, findings)) => ItemDecision::Hidden(Reason::Blocked(findings)),
            _ => ItemDecision::Hidden(Reason::Unpinned),
        }
    }

    /// Tofu: scan outside the lock, then pin unless someone else did.
    fn first_sight(&self, m: &Manifest, ctx: &ScanContext) -> ItemDecision {
        let Ok((verdict, findings)) = self.scanner.scan_item(m, ctx) else {
            return ItemDecision::Hidden(Reason::Unpinned);
        };
        if verdict == Verdict::Block {
            return ItemDecision::Hidden(Reason::Blocked(findings));
        }
        let mut state = self.write();
        if let Some((decision, _)) = self.decide(&state, m, SHARED_INSTANCE) {
            return decision;
        }
        let rules: Vec<&str> = findings.iter().map(|f| f.rule).collect();
        state
            .lock
            .pin_at(m, TOFU_APPROVER, None, &rules, SystemTime::now());
        state.unsaved = true;
        ItemDecision::Allow
    }

    /// The decision for an item the lock file knows, and whether it is a
    /// drift not seen before; `None` when the lock file does not know it.
    fn decide(&self, state: &State, m: &Manifest, instance: &str) -> Option<(ItemDecision, bool)> {
        let pinned = state.lock.get(&m.server, m.kind, &m.name)?;
        let seen = if state.drifted.is_empty() {
            None
        } else {
            state
                .drifted
                .get(&(m.server.clone(), m.kind, m.name.clone()))
                .and_then(|d| d.on(instance))
        };
        if pinned.hash == m.hash && seen.is_none() {
            return Some((ItemDecision::Allow, false));
        }
        let (live, diff) = if pinned.hash == m.hash {
            // Drifted earlier and reverted since: still blocked until re-approved.
            (seen.copied().unwrap_or(m.hash), Vec::new())
        } else {
            (m.hash, diff(&pinned.json, &m.json))
        };
        let reason = Reason::Drifted {
            pinned: pinned.hash,
            live,
            diff,
        };
        Some((ItemDecision::Hidden(reason), seen.is_none()))
    }

    /// Before every call (`tools/call`, `prompts/get`, `resources/read`):
    /// the item must be pinned and not seen drifted on `instance`. The
    /// gateway lists an upstream before exposing its items, so an item whose
    /// live manifest changed has been seen (and remembered) by
    /// [`Registry::check_item`].
    pub fn check_call(
        &self,
        server: &str,
        kind: ItemKind,
        name: &str,
        instance: &str,
    ) -> ItemDecision {
        let state = self.read();
        let Some(pinned) = state.lock.get(server, kind, name) else {
            return ItemDecision::Hidden(
                if state.lock.knows_server(server) || self.mode == Mode::Tofu {
                    Reason::Unpinned
                } else {
                    Reason::UnknownServer
                },
            );
        };
        if state.drifted.is_empty() {
            return ItemDecision::Allow;
        }
        match state
            .drifted
            .get(&(server.to_owned(), kind, name.to_owned()))
            .and_then(|d| d.on(instance))
        {
            Some(live) => ItemDecision::Hidden(Reason::Drifted {
                pinned: pinned.hash,
                live: *live,
                diff: Vec::new(),
            }),
            None => ItemDecision::Allow,
        }
    }

    /// Before starting a server: its live identity must match the pinned one.
    /// In tofu mode an unknown server's identity is pinned now.
    pub fn check_server(&self, server: &str, identity: &ServerIdentity) -> Result<(), Reason> {
        {
            let state = self.read();
            if let Some(pinned) = state.lock.server_identity(server) {
                // Equal identities have no field changes; skip building
                // (and formatting) the field-level diff on every call.
                if pinned == identity {
                    return Ok(());
                }
                let changes = pinned.changes_to(identity);
                return if changes.is_empty() {
                    Ok(())
                } else {
                    Err(Reason::ServerChanged(changes))
                };
            }
            if self.mode == Mode::Strict {
                return Err(Reason::UnknownServer);
            }
        }
        let mut state = self.write();
        if state.lock.server_identity(server).is_none() {
            state
                .lock
                .pin_server_at(server, identity.clone(), TOFU_APPROVER, SystemTime::now());
            state.unsaved = true;
        }
        Ok(())
    }

    /// The approved manifest of an item (canonical JSON), if any.
    pub fn pinned_json(&self, server: &str, kind: ItemKind, name: &str) -> Option<String> {
        self.read()
            .lock
            .get(server, kind, name)
            .map(|p| p.json.clone())
    }

    /// A copy of the lock file as the registry holds it now.
    pub fn lock_snapshot(&self) -> LockFile {
        self.read().lock.clone()
    }

    /// When tofu pins were made since the last call: the lock file to save
    /// (off the request path). `None` when there is nothing new.
    pub fn take_unsaved(&self) -> Option<LockFile> {
        let mut state = self.write();
        if !state.unsaved {
            return None;
        }
        state.unsaved = false;
        Some(state.lock.clone())
    }

    /// Installs a new lock file (after `warden registry approve`, or a
    /// reload). Drift memory is kept only for items whose pin did not change:
    /// re-approving an item is what clears its block.
    pub fn replace_lock(&self, lock: LockFile) {
        let mut state = self.write();
        let old = std::mem::take(&mut state.lock);
        state.drifted.retain(|(server, kind, name), _| {
            match (old.get(server, *kind, name), lock.get(server, *kind, name)) {
                (Some(a), Some(b)) => a.hash == b.hash,
                _ => false,
            }
        });
        state.lock = lock;
    }

    fn read(&self) -> RwLockReadGuard<'_, State> {
        // A panic while holding the lock cannot leave `State` half-updated
        // in a way that loosens a decision: keep serving.
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// Convenience for the gateway: [`Registry::check_item_in`] over one
/// upstream's whole list (its own names as context), a decision per
/// manifest in order.
pub fn check_list(
    registry: &Registry,
    manifests: &[Manifest],
    instance: &str,
) -> Vec<ItemDecision> {
    check_list_in(registry, manifests, instance, ScanContext::new())
}

/// [`check_list`] with more context (the operator's classifier's verdicts).
pub fn check_list_in(
    registry: &Registry,
    manifests: &[Manifest],
    instance: &str,
    ctx: ScanContext,
) -> Vec<ItemDecision> {
    let ctx = ctx.own_names(manifests.iter().map(|m| m.name.as_str()));
    manifests
        .iter()
        .map(|m| registry.check_item_in(m, &ctx, instance))
        .collect()
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
