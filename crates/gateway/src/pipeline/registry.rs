//! Stage 4, Registry: the server's pinned identity (command line,
//! executable hash, URL) must match `warden.lock`, and the item's live
//! manifest must be the pinned one. The live definition fetched here is
//! also what authorization reads (annotations) and what the input guard
//! checks the arguments against (schema), so all three judge the same
//! bytes. Lists are judged item by item when their pages arrive
//! ([`Gateway::list_one`]).
//!
//! No I/O but the upstream's own list, fetched at most every
//! `registry.revalidate_after`; the lock is read in memory.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use tracing::{debug, error, info, warn};
use warden_protocol::message::{as_str, member, parse_one};
use warden_protocol::method::{ListKind, NameKind};
use warden_registry::{ItemDecision, ItemKind, Manifest, Reason};

use super::execute::{describe, request_page};
use super::{Exchange, Refusal, Target};
use crate::call::Call;
use crate::core::Gateway;
use crate::federation::{has_capability, truncate};
use crate::pool::{Definition, Definitions, UpstreamHandle};
use crate::session::{lock, Session};
use crate::snapshot::Snapshot;

pub(crate) async fn run(gw: &Arc<Gateway>, ex: &mut Exchange<'_>) -> Result<(), Refusal> {
    let (kind, server, name, shown, what) = match &ex.target {
        Target::Item {
            kind,
            server,
            upstream_name,
            exposed,
        } => {
            let (k, what) = match kind {
                NameKind::Tool => (ItemKind::Tool, "tool"),
                _ => (ItemKind::Prompt, "prompt"),
            };
            (
                k,
                server.clone(),
                upstream_name.clone(),
                exposed.clone(),
                what,
            )
        }
        Target::CompletePrompt {
            server,
            upstream_name,
            exposed,
        } => (
            ItemKind::Prompt,
            server.clone(),
            upstream_name.clone(),
            exposed.clone(),
            "prompt",
        ),
        Target::Resource { server, .. } | Target::CompleteResource { server, .. } => {
            return gw.refuse_server(&ex.snap, server);
        }
        Target::Broadcast { servers } => {
            let approved = servers
                .iter()
                .filter(|s| gw.server_refusal(&ex.snap, s).is_none())
                .cloned()
                .collect();
            ex.target = Target::Broadcast { servers: approved };
            return Ok(());
        }
        Target::Unrouted | Target::Local | Target::List { .. } => return Ok(()),
    };
    gw.refuse_server(&ex.snap, &server)?;
    super::credentials::oauth_ready(gw, ex, &server).await?;
    let def = gw
        .item_definition(&ex.snap, &ex.session, &server, kind, &name)
        .await
        .map_err(|why| {
            warn!(server = %server, correlation_id = %ex.call.corr, error = %why, "live definition unavailable");
            Refusal::Upstream {
                server: server.clone(),
                what: "is unavailable".into(),
            }
        })?;
    if let Some(def) = &def {
        gw.check_pinned(&ex.snap, &ex.call, &server, kind, def, what, &shown)?;
    }
    ex.definition = def;
    Ok(())
}

impl Gateway {
    /// The upstream's live definition of one tool or prompt (its whole
    /// JSON): from the per-upstream cache when younger than
    /// `registry.revalidate_after`, else every page of the list fetched
    /// again. `Ok(None)`: the upstream does not offer it.
    pub(crate) async fn item_definition(
        self: &Arc<Self>,
        snap: &Snapshot,
        session: &Arc<Session>,
        server: &str,
        kind: ItemKind,
        name: &str,
    ) -> Result<Option<Definition>, String> {
        let h = self
            .upstream_for(snap, session, server)
            .ok_or_else(|| "not started".to_owned())?;
        let max_age = snap.config.registry.revalidate_after;
        let cached = lock(definitions_slot(&h, kind)).clone();
        if let Some(d) = cached.filter(|d| d.fetched.elapsed() < max_age) {
            return Ok(d.items.get(name).cloned());
        }
        let fresh = self.fetch_definitions(snap, &h, kind).await?;
        Ok(fresh.items.get(name).cloned())
    }

    /// Fetches every page of an upstream's tools or prompts, checks each
    /// item against the registry (drift is remembered and reported even if
    /// no client lists), and caches the definitions.
    pub(crate) async fn fetch_definitions(
        &self,
        snap: &Snapshot,
        h: &UpstreamHandle,
        kind: ItemKind,
    ) -> Result<Arc<Definitions>, String> {
        let list = if kind == ItemKind::Prompt {
            ListKind::Prompts
        } else {
            ListKind::Tools
        };
        let fetched = Instant::now();
        let info = h
            .upstream
            .ready()
            .await
            .map_err(|e| describe(&e, h.call_timeout))?;
        let mut items = HashMap::new();
        let mut manifests = Vec::new();
        let offered = serde_json::from_str::<&RawValue>(&info.result)
            .is_ok_and(|init| has_capability(init, list.capability()));
        let mut cursor: Option<String> = None;
        // Bounded: a server paging forever cannot hold a call.
        for _ in 0..64 {
            if !offered {
                break;
            }
            let method = list.method();
            let resp = request_page(h, list, cursor.as_deref())
                .await
                .map_err(|e| describe(&e, h.call_timeout))?;
            let m = parse_one(&resp.text).map_err(|e| e.to_string())?;
            let result = m
                .result
                .ok_or_else(|| format!("answered {method} with an error"))?;
            for t in member(result, list.items_key())
                .and_then(warden_protocol::message::elements)
                .unwrap_or_default()
            {
                if let Ok(m) = warden_registry::manifest(&h.server, kind, t) {
                    items.insert(
                        m.name.clone(),
                        Definition::new(t, h.registry_instance.clone(), m.clone()),
                    );
                    manifests.push(m);
                }
            }
            cursor = member(result, "nextCursor")
                .and_then(as_str)
                .map(|c| c.into_owned());
            if cursor.is_none() {
                break;
            }
        }
        self.check_manifests(snap, &manifests, list.method(), &h.registry_instance)
            .await;
        let defs = Arc::new(Definitions { items, fetched });
        *lock(definitions_slot(h, kind)) = Some(defs.clone());
        Ok(defs)
    }

    /// Stage 4 over one upstream list: the decision per manifest (in
    /// order), hidden items logged, drift reported.
    pub(crate) async fn check_manifests(
        &self,
        snap: &Snapshot,
        manifests: &[Manifest],
        list: &str,
        instance: &str,
    ) -> Vec<ItemDecision> {
        let ctx = classify_unpinned(snap, manifests).await;
        let decisions = warden_registry::check_list_in(&snap.registry, manifests, instance, ctx);
        for (m, d) in manifests.iter().zip(&decisions) {
            if let ItemDecision::Hidden(reason) = d {
                self.report_hidden(m, reason, list);
            }
        }
        decisions
    }

    /// Logs a hidden item; a drift (or scanner block) once per live hash
    /// also becomes an audit record with the pinned and live hashes and the
    /// field-level diff.
    pub(crate) fn report_hidden(&self, m: &Manifest, reason: &Reason, list: &str) {
        let item = warden_registry::text::escape_untrusted(&truncate(&m.name, 256));
        match reason {
            Reason::Unpinned | Reason::UnknownServer => {
                debug!(server = %m.server, kind = %m.kind, item = %item, reason = reason.code(), "item hidden");
            }
            Reason::Blocked(findings) => {
                if !self.first_report(m.id()) {
                    return;
                }
                let rules: Vec<&str> = findings.iter().map(|f| f.rule).collect();
                warn!(target: "audit", event = "item.hidden", reason = reason.code(), server = %m.server,
                      kind = %m.kind, item = %item, live_hash = %m.hash, rules = %rules.join(","));
            }
            Reason::Drifted { pinned, live, diff } => {
                if !self.first_report(format!("{}/{}/{}@{live}", m.server, m.kind, m.name)) {
                    return;
                }
                let mut report = String::new();
                for c in diff {
                    warden_registry::diff::render_change(&mut report, c);
                }
                let paths: Vec<String> = diff
                    .iter()
                    .map(|c| warden_registry::text::escape_untrusted(&truncate(&c.path, 128)))
                    .collect();
                warn!(target: "audit", event = "registry.drift", server = %m.server, kind = %m.kind,
                      item = %item, pinned_hash = %pinned, live_hash = %live, diff = %report);
                self.record(warden_audit::Event {
                    server: Some(m.server.clone()),
                    tool: Some(truncate(&m.name, 1024)),
                    manifest_hash: Some(pinned.to_string()),
                    decision: Some(warden_audit::Decision::Deny),
                    reason_code: Some(reason.code().to_owned()),
                    lifecycle: Some(Box::new(warden_audit::Lifecycle {
                        list: Some(list.to_owned()),
                        pinned_hash: Some(pinned.to_string()),
                        live_hash: Some(live.to_string()),
                        outcome: Some("hidden".to_owned()),
                        error: (!paths.is_empty())
                            .then(|| format!("changed: {}", paths.join(", "))),
                        ..Default::default()
                    })),
                    ..warden_audit::Event::new(warden_audit::EventKind::Drift)
                });
            }
            _ => {
                warn!(server = %m.server, kind = %m.kind, item = %item, reason = reason.code(), "item hidden");
            }
        }
    }

    /// Whether a registry refusal is reported for the first time. Bounded:
    /// when full the memory is cleared (a refusal may be reported again).
    fn first_report(&self, key: String) -> bool {
        let mut reported = lock(&self.reported);
        if reported.len() >= 16 * 1024 {
            reported.clear();
        }
        reported.insert(key)
    }

    /// Stage 4 before a call: the live manifest must be pinned, unchanged
    /// and never seen drifted.
    #[allow(clippy::too_many_arguments)]
    fn check_pinned(
        &self,
        snap: &Snapshot,
        call: &Call,
        server: &str,
        kind: ItemKind,
        def: &Definition,
        what: &'static str,
        shown: &str,
    ) -> Result<(), Refusal> {
        // The manifest was computed from exactly `def.def` when the list
        // was fetched; recomputed only if it was made for another server
        // or kind (never expected).
        let recomputed;
        let manifest = if def.manifest.server == server && def.manifest.kind == kind {
            Some(&*def.manifest)
        } else {
            recomputed = serde_json::from_str::<&RawValue>(&def.def)
                .ok()
                .and_then(|raw| warden_registry::manifest(server, kind, raw).ok());
            recomputed.as_ref()
        };
        let decision = match manifest {
            None => ItemDecision::Hidden(Reason::Unpinned),
            Some(m) => match snap.registry.check_known(m, &def.instance) {
                ItemDecision::Allow => {
                    snap.registry
                        .check_call(server, kind, &m.name, &def.instance)
                }
                hidden => hidden,
            },
        };
        if let Some(m) = manifest {
            let hex = if std::ptr::eq(m, &*def.manifest) {
                def.hash_hex.to_string()
            } else {
                m.hash.to_string()
            };
            call.note(|f| f.manifest_hash = Some(hex));
        }
        let ItemDecision::Hidden(reason) = decision else {
            return Ok(());
        };
        if let Some(m) = manifest {
            self.report_hidden(m, &reason, kind.as_str());
        }
        self.metrics.registry_blocked(reason.code());
        if matches!(reason, Reason::Blocked(_)) {
            // A poisoned item is not admitted to exist.
            return Err(Refusal::UnknownItem {
                what,
                shown: shown.to_owned(),
                reason_code: Some(reason.code().to_owned()),
            });
        }
        Err(Refusal::NotApproved {
            message: reason.to_string(),
            reason_code: reason.code().to_owned(),
        })
    }

    /// Why a server may not start (its pinned identity differs, or strict
    /// mode and it is not approved); reported once.
    pub(crate) fn server_refusal(&self, snap: &Snapshot, server: &str) -> Option<Reason> {
        let identity = snap.identities.get(server)?;
        let reason = snap.registry.check_server(server, identity).err()?;
        if self.first_report(format!("{server}:{}", reason.code())) {
            let changed: Vec<String> = match &reason {
                Reason::ServerChanged(c) => c
                    .iter()
                    .map(|c| warden_registry::text::escape_untrusted(&c.path))
                    .collect(),
                _ => Vec::new(),
            };
            warn!(target: "audit", event = "server.refused", server = %server, reason = reason.code(),
                  changed = %changed.join(","));
            self.record(warden_audit::Event {
                server: Some(server.to_owned()),
                decision: Some(warden_audit::Decision::Deny),
                reason_code: Some(reason.code().to_owned()),
                lifecycle: Some(Box::new(warden_audit::Lifecycle {
                    transport: Some(identity.transport().to_owned()),
                    outcome: Some("not_started".to_owned()),
                    error: (!changed.is_empty())
                        .then(|| format!("changed: {}", changed.join(", "))),
                    ..Default::default()
                })),
                ..warden_audit::Event::new(warden_audit::EventKind::Drift)
            });
        }
        Some(reason)
    }

    /// The refusal of a request to a server that may not start.
    pub(crate) fn refuse_server(&self, snap: &Snapshot, server: &str) -> Result<(), Refusal> {
        let Some(reason) = self.server_refusal(snap, server) else {
            return Ok(());
        };
        Err(Refusal::ServerNotApproved {
            server: server.to_owned(),
            changed: matches!(reason, Reason::ServerChanged(_)),
            reason_code: reason.code().to_owned(),
        })
    }
}

/// The cache of an upstream's tools or prompts.
pub(crate) fn definitions_slot(
    h: &UpstreamHandle,
    kind: ItemKind,
) -> &Mutex<Option<Arc<Definitions>>> {
    if kind == ItemKind::Prompt {
        &h.prompts
    } else {
        &h.tools
    }
}

/// Keeps the lock file and the registry in step, off the request path:
/// a lock file changed on disk (`warden registry pin|approve`) is loaded
/// and installed; tofu pins are then written (atomically). A file that
/// does not load keeps the running registry.
pub(crate) fn spawn_registry_keeper(gw: Weak<Gateway>) {
    tokio::spawn(async move {
        let modified = |p: &std::path::Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
        let mut tick = tokio::time::interval(Duration::from_millis(500));
        let mut seen: Option<(std::path::PathBuf, Option<std::time::SystemTime>)> = None;
        loop {
            tick.tick().await;
            let Some(gw) = gw.upgrade() else {
                return;
            };
            let (path, registry) = {
                let snap = gw.snapshot();
                (snap.config.registry.lock.clone(), snap.registry.clone())
            };
            drop(gw);
            let now = (path.clone(), modified(&path));
            if seen.as_ref().is_some_and(|s| *s != now) && now.1.is_some() {
                let p = path.clone();
                match tokio::task::spawn_blocking(move || crate::snapshot::load_lock(&p)).await {
                    Ok(Ok(lock)) => {
                        registry.replace_lock(lock);
                        info!(target: "audit", event = "registry.lock_reloaded", path = %path.display());
                    }
                    Ok(Err(e)) => {
                        error!(target: "audit", event = "registry.lock_reload_failed", error = %e);
                    }
                    Err(_) => {}
                }
            }
            seen = Some(now);
            if let Some(lock) = registry.take_unsaved() {
                let p = path.clone();
                match tokio::task::spawn_blocking(move || lock.save(&p)).await {
                    Ok(Ok(())) => {
                        info!(target: "audit", event = "registry.lock_saved", path = %path.display());
                    }
                    Ok(Err(e)) => {
                        error!(target: "audit", event = "registry.lock_save_failed", error = %e);
                    }
                    Err(_) => {}
                }
                seen = Some((path.clone(), modified(&path)));
            }
        }
    });
}

/// How many items are put to the operator's classifier at once.
const CLASSIFY_AT_ONCE: usize = 8;

/// Asks the operator's classifier (`registry.scanner.classifier`) about
/// every item the registry does not pin yet, before tofu pins it: pin
/// time, never a call's path (a pinned item is not asked again). Each
/// answer, or its failure, becomes a scanner finding (see
/// [`warden_registry::External`]); strict mode pins nothing here.
async fn classify_unpinned(
    snap: &Snapshot,
    manifests: &[Manifest],
) -> warden_registry::ScanContext {
    let Some(classifier) = &snap.classifier else {
        return warden_registry::ScanContext::new();
    };
    if snap.registry.mode() != warden_registry::Mode::Tofu {
        return warden_registry::ScanContext::new();
    }
    classify(
        classifier,
        manifests.iter().filter(|m| !snap.registry.is_pinned(m)),
    )
    .await
}

/// Asks the operator's classifier about each item's descriptions (a few
/// at a time); each answer, or its failure, becomes the item's verdict in
/// the returned context. Items without descriptions are not asked. Also
/// what `warden registry pin` and `approve` do before pinning.
pub async fn classify<'a>(
    classifier: &warden_classifier::Classifier,
    items: impl IntoIterator<Item = &'a Manifest>,
) -> warden_registry::ScanContext {
    let mut ctx = warden_registry::ScanContext::new();
    let threshold = classifier.settings().threshold;
    // Owned, so the futures borrow nothing of the caller's.
    let asked: Vec<(ItemKind, String, String, String)> = items
        .into_iter()
        .filter_map(|m| {
            let text = m
                .raw()
                .ok()
                .and_then(|raw| warden_registry::described_text(&raw))?;
            Some((m.kind, m.name.clone(), m.server.clone(), text))
        })
        .collect();
    for chunk in asked.chunks(CLASSIFY_AT_ONCE) {
        let answers = futures::future::join_all(chunk.iter().map(|(_, _, _, text)| {
            let classifier = classifier.clone();
            let text = text.clone();
            async move { classifier.score(&text).await }
        }))
        .await;
        for ((kind, name, server, _), answer) in chunk.iter().zip(answers) {
            let verdict = match answer {
                Ok(score) => warden_registry::External::Score { score, threshold },
                Err(e) => {
                    warn!(server = %server, kind = %kind, error = %e, "registry: the classifier did not answer");
                    warden_registry::External::Unavailable(e.to_string())
                }
            };
            ctx = ctx.external(*kind, name, verdict);
        }
    }
    ctx
}
