//! Human approval of held calls (threats T20, T26).
//!
//! When policy says a call needs an approval, the gateway's hold stage
//! asks [`Approvals::hold`] for one bound to exactly that call
//! ([`Binding`]: caller, server, item, canonical argument hash):
//! - an approved, unused, unexpired approval of the same binding is
//!   [`Held::Granted`]: the stage consumes it ([`Approvals::consume`], once:
//!   a conditional `UPDATE` in the store) and the call goes on;
//! - otherwise the pending request of that binding (a retry while it
//!   waits) or a new one is [`Held::Pending`]: the stage asks the caller's
//!   client where policy lets the caller approve, or waits
//!   ([`Approvals::wait`]) for an approver out of band.
//!
//! Decisions ([`Approvals::decide`]) check who decides against the
//! policy's approvers (the caller, or a role other than the caller's: four
//! eyes) and the facts the policy requires (reason, change ticket). A
//! decision taken by one Warden process wakes the calls every process
//! sharing the store holds: in-process through a watch channel, across
//! processes through PostgreSQL `NOTIFY` (and, for a SQLite file shared on
//! one machine, a poll each second while a call waits).
//!
//! Nothing here does policy: the rules, who may approve and what an
//! approval must carry arrive in the [`HeldCall`].

#![forbid(unsafe_code)]

mod model;
mod settings;
mod store;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

pub use model::{is_id, now_ms, Approval, ApproverRule, Binding, HeldCall, Status};
pub use settings::{ApprovalSettings, RawApprovals, RawPostgres, StoreSettings, DEFAULT_TARGETS};

use store::{Decided, Store};

/// How often a waiting call re-reads its approval when no change was
/// signalled (another process on a shared SQLite file).
const POLL: Duration = Duration::from_secs(1);

#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// The store cannot be reached or written (the call is not let through).
    #[error("approval store: {0}")]
    Store(String),
    #[error("approval store holds an unreadable record: {0}")]
    Corrupt(String),
}

/// Why a decision was not taken.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecideError {
    #[error("no approval {0}")]
    NotFound(String),
    #[error("approval {id} is {status}, not pending")]
    NotPending { id: String, status: Status },
    #[error("approval {0} has expired")]
    Expired(String),
    /// The decider is not among the policy's approvers.
    #[error("{0}")]
    NotAllowed(String),
    /// An approval without a fact the policy requires.
    #[error("this approval requires a {0}")]
    Missing(&'static str),
    #[error("{0}")]
    Store(String),
}

/// What [`Approvals::hold`] found or made for a call.
#[derive(Debug, Clone)]
pub enum Held {
    /// An approval of exactly this call, approved and not yet used.
    Granted(Approval),
    /// Waiting for a decision; `new`: created by this call (not a retry's).
    Pending { approval: Approval, new: bool },
}

/// A decision, by whom.
#[derive(Debug, Clone)]
pub struct Verdict<'a> {
    pub approve: bool,
    /// The decider's principal key.
    pub by: &'a str,
    pub roles: &'a [String],
    pub reason: Option<&'a str>,
    pub change_ticket: Option<&'a str>,
    /// In the caller's own client (elicitation).
    pub in_band: bool,
}

/// The approvals service: one per process, shared by every request.
pub struct Approvals {
    store: Store,
    settings: ApprovalSettings,
    changed: watch::Sender<u64>,
    /// Held for as long as the service lives: the PostgreSQL listener
    /// stops once the service and every subscriber are gone.
    _alive: watch::Receiver<u64>,
}

impl std::fmt::Debug for Approvals {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approvals")
            .field("store", &self.settings.store)
            .finish_non_exhaustive()
    }
}

impl Approvals {
    /// Opens (and creates) the store the settings name.
    pub async fn start(settings: ApprovalSettings) -> Result<Arc<Approvals>, ApprovalError> {
        let (changed, alive) = watch::channel(0u64);
        let store = match &settings.store {
            StoreSettings::Sqlite { path } => Store::open_sqlite(path.clone()).await?,
            StoreSettings::Postgres { url, table, .. } => {
                let Some(url) = url.clone() else {
                    return Err(ApprovalError::Store(
                        "approvals.postgres.url was not resolved".into(),
                    ));
                };
                Store::open_postgres(url, table.clone(), changed.clone()).await?
            }
        };
        Ok(Arc::new(Approvals {
            store,
            settings,
            changed,
            _alive: alive,
        }))
    }

    pub fn settings(&self) -> &ApprovalSettings {
        &self.settings
    }

    /// Changes seen by this process: its own decisions and uses, and (on
    /// PostgreSQL) every other process's.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changed.subscribe()
    }

    fn bump(&self) {
        self.changed.send_modify(|v| *v += 1);
    }

    /// The approval for a call that policy holds: an approved one to
    /// consume, the pending one of a retry, or a new request.
    /// A new request lapses after `expiry`.
    pub async fn hold(
        &self,
        binding: &Binding,
        call: HeldCall,
        expiry: Duration,
    ) -> Result<Held, ApprovalError> {
        let key = binding.key();
        let now = now_ms();
        if let Some(a) = self.store.live(&key, now).await? {
            return Ok(match a.status {
                Status::Approved => Held::Granted(a),
                _ => Held::Pending {
                    approval: a,
                    new: false,
                },
            });
        }
        let expiry = i64::try_from(expiry.as_millis()).unwrap_or(i64::MAX);
        let a = Approval {
            id: model::new_id(),
            status: Status::Pending,
            created_at: now,
            expires_at: now.saturating_add(expiry),
            call,
            binding: key,
            decided_by: None,
            decided_at: None,
            reason: None,
            change_ticket: None,
            in_band: false,
            consumed_at: None,
        };
        self.store.insert(&a).await?;
        Ok(Held::Pending {
            approval: a,
            new: true,
        })
    }

    /// Uses an approved approval once; `None` when it was not approved,
    /// already used, or expired (another call won, or time ran out).
    pub async fn consume(&self, id: &str) -> Result<Option<Approval>, ApprovalError> {
        let done = self
            .store
            .transition(
                id,
                Status::Approved,
                Decided {
                    status: Status::Consumed,
                    by: "",
                    reason: None,
                    change_ticket: None,
                    in_band: false,
                    at: now_ms(),
                },
            )
            .await?;
        if done.is_some() {
            self.bump();
        }
        Ok(done)
    }

    /// Approves or denies a pending request, if `v.by` may.
    pub async fn decide(&self, id: &str, v: &Verdict<'_>) -> Result<Approval, DecideError> {
        let store = |e: ApprovalError| DecideError::Store(e.to_string());
        let Some(a) = self.store.get(id).await.map_err(store)? else {
            return Err(DecideError::NotFound(id.to_owned()));
        };
        let now = now_ms();
        if a.status != Status::Pending {
            return Err(DecideError::NotPending {
                id: a.id,
                status: a.status,
            });
        }
        if a.lapsed(now) {
            return Err(DecideError::Expired(a.id));
        }
        if !a.call.admits(v.by, v.roles) {
            let why = if v.by == a.call.principal {
                format!(
                    "the caller may not decide approval {} (four eyes): it needs {}",
                    a.id,
                    a.call.approvers_text()
                )
            } else {
                format!(
                    "not an approver of {}: it needs {}",
                    a.id,
                    a.call.approvers_text()
                )
            };
            return Err(DecideError::NotAllowed(why));
        }
        let blank = |s: Option<&str>| s.is_none_or(|s| s.trim().is_empty());
        if v.approve {
            if a.call.requires.iter().any(|r| r == "change_ticket") && blank(v.change_ticket) {
                return Err(DecideError::Missing("change ticket"));
            }
            if a.call.requires.iter().any(|r| r == "reason") && blank(v.reason) {
                return Err(DecideError::Missing("reason"));
            }
        }
        let trim = |s: Option<&'_ str>| -> Option<String> {
            s.map(str::trim)
                .filter(|s| !s.is_empty())
                .map(|s| s.chars().take(1000).collect())
        };
        let (reason, ticket) = (trim(v.reason), trim(v.change_ticket));
        let done = self
            .store
            .transition(
                id,
                Status::Pending,
                Decided {
                    status: if v.approve {
                        Status::Approved
                    } else {
                        Status::Denied
                    },
                    by: v.by,
                    reason: reason.as_deref(),
                    change_ticket: ticket.as_deref(),
                    in_band: v.in_band,
                    at: now,
                },
            )
            .await
            .map_err(store)?;
        match done {
            Some(a) => {
                self.bump();
                Ok(a)
            }
            // Decided, used or expired between the read and the write.
            None => match self.store.get(id).await.map_err(store)? {
                Some(a) if a.status != Status::Pending => Err(DecideError::NotPending {
                    id: a.id,
                    status: a.status,
                }),
                _ => Err(DecideError::Expired(id.to_owned())),
            },
        }
    }

    pub async fn get(&self, id: &str) -> Result<Option<Approval>, ApprovalError> {
        self.store.get(id).await
    }

    pub async fn list(
        &self,
        status: Option<Status>,
        limit: u32,
    ) -> Result<Vec<Approval>, ApprovalError> {
        self.store.list(status, limit).await
    }

    /// Waits until approval `id` is no longer pending, or `deadline`; the
    /// approval as last read (still pending at the deadline). Each time
    /// `tick` elapses without a change, `on_tick` runs (progress).
    pub async fn wait(
        &self,
        id: &str,
        deadline: tokio::time::Instant,
        tick: Duration,
        mut on_tick: impl FnMut(),
    ) -> Result<Option<Approval>, ApprovalError> {
        let mut changed = self.changed.subscribe();
        let mut next_tick = tokio::time::Instant::now() + tick;
        loop {
            changed.borrow_and_update();
            let a = self.store.get(id).await?;
            match &a {
                Some(a) if a.status == Status::Pending && !a.lapsed(now_ms()) => {}
                _ => return Ok(a),
            }
            let now = tokio::time::Instant::now();
            if now >= deadline {
                return Ok(a);
            }
            let wake = deadline.min(now + POLL).min(next_tick);
            tokio::select! {
                r = changed.changed() => {
                    if r.is_err() {
                        return Ok(a);
                    }
                }
                () = tokio::time::sleep_until(wake) => {}
            }
            if tokio::time::Instant::now() >= next_tick {
                on_tick();
                next_tick = tokio::time::Instant::now() + tick;
            }
        }
    }

    /// Marks what has lapsed `expired`; those it marked (for the audit).
    pub async fn sweep(&self) -> Result<Vec<Approval>, ApprovalError> {
        let gone = self.store.expire(now_ms()).await?;
        if !gone.is_empty() {
            self.bump();
        }
        Ok(gone)
    }
}
