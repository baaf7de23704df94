//! Where approvals live: one SQLite file (the embedded default) or one
//! PostgreSQL table. Both keep the same columns, and every state change is
//! one conditional `UPDATE` (`… WHERE status = 'pending' AND expires_at >
//! now`), so two processes racing to decide, or two calls racing to
//! consume, cannot both win: single use is the database's, not a lock's.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tracing::{debug, warn};

use crate::model::{Approval, HeldCall, Status};
use crate::ApprovalError;

/// Each PostgreSQL exchange's deadline.
const PG_TIMEOUT: Duration = Duration::from_secs(5);

/// The columns, in the order every `SELECT`/`RETURNING` lists them.
const COLUMNS: &str = "id, binding, status, created_at, expires_at, decided_by, decided_at, \
                       reason, change_ticket, in_band, consumed_at, call";

/// A decision to write.
pub(crate) struct Decided<'a> {
    pub status: Status,
    pub by: &'a str,
    pub reason: Option<&'a str>,
    pub change_ticket: Option<&'a str>,
    pub in_band: bool,
    pub at: i64,
}

pub(crate) enum Store {
    Sqlite(Arc<Mutex<rusqlite::Connection>>),
    Postgres(Postgres),
}

/// Turns a stored row's parts into an [`Approval`].
#[allow(clippy::too_many_arguments)]
fn approval(
    id: String,
    binding: String,
    status: &str,
    created_at: i64,
    expires_at: i64,
    decided_by: Option<String>,
    decided_at: Option<i64>,
    reason: Option<String>,
    change_ticket: Option<String>,
    in_band: bool,
    consumed_at: Option<i64>,
    call: &str,
) -> Result<Approval, ApprovalError> {
    let status = Status::parse(status)
        .ok_or_else(|| ApprovalError::Corrupt(format!("approval {id}: status {status:?}")))?;
    let call: HeldCall = serde_json::from_str(call)
        .map_err(|e| ApprovalError::Corrupt(format!("approval {id}: {e}")))?;
    Ok(Approval {
        id,
        status,
        created_at,
        expires_at,
        call,
        binding,
        decided_by,
        decided_at,
        reason,
        change_ticket,
        in_band,
        consumed_at,
    })
}

// ----- SQLite ----------------------------------------------------------------

fn sqlite_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Result<Approval, ApprovalError>> {
    let status: String = r.get(2)?;
    let call: String = r.get(11)?;
    Ok(approval(
        r.get(0)?,
        r.get(1)?,
        &status,
        r.get(3)?,
        r.get(4)?,
        r.get(5)?,
        r.get(6)?,
        r.get(7)?,
        r.get(8)?,
        r.get(9)?,
        r.get(10)?,
        &call,
    ))
}

fn sqlite_open(path: &PathBuf) -> Result<rusqlite::Connection, ApprovalError> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)
            .map_err(|e| ApprovalError::Store(format!("cannot create {}: {e}", dir.display())))?;
    }
    let c = rusqlite::Connection::open(path)
        .map_err(|e| ApprovalError::Store(format!("cannot open {}: {e}", path.display())))?;
    // Several Warden processes may share the file: wait for each other's
    // writes instead of failing.
    c.busy_timeout(Duration::from_secs(5))
        .and_then(|()| c.pragma_update(None, "journal_mode", "WAL"))
        .and_then(|()| {
            c.execute_batch(
                "CREATE TABLE IF NOT EXISTS approvals (
                   id TEXT PRIMARY KEY,
                   binding TEXT NOT NULL,
                   status TEXT NOT NULL,
                   created_at INTEGER NOT NULL,
                   expires_at INTEGER NOT NULL,
                   decided_by TEXT,
                   decided_at INTEGER,
                   reason TEXT,
                   change_ticket TEXT,
                   in_band INTEGER NOT NULL DEFAULT 0,
                   consumed_at INTEGER,
                   call TEXT NOT NULL
                 );
                 CREATE INDEX IF NOT EXISTS approvals_binding ON approvals (binding, status);
                 CREATE INDEX IF NOT EXISTS approvals_status ON approvals (status, expires_at);",
            )
        })
        .map_err(|e| ApprovalError::Store(format!("{}: {e}", path.display())))?;
    Ok(c)
}

fn sqlite_err(e: rusqlite::Error) -> ApprovalError {
    ApprovalError::Store(format!("SQLite: {e}"))
}

/// Every row `sql` (a statement listing [`COLUMNS`]) yields.
fn sqlite_all(
    c: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Vec<Approval>, ApprovalError> {
    let mut st = c.prepare_cached(sql).map_err(sqlite_err)?;
    let rows = st.query_map(params, sqlite_row).map_err(sqlite_err)?;
    let mut out = Vec::new();
    for r in rows {
        out.push(r.map_err(sqlite_err)??);
    }
    Ok(out)
}

/// The first row `sql` yields, if any.
fn sqlite_one(
    c: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> Result<Option<Approval>, ApprovalError> {
    Ok(sqlite_all(c, sql, params)?.into_iter().next())
}

// ----- PostgreSQL ------------------------------------------------------------

pub(crate) struct Postgres {
    url: String,
    table: String,
    client: tokio::sync::Mutex<Option<Arc<tokio_postgres::Client>>>,
}

fn pg_err(e: tokio_postgres::Error) -> ApprovalError {
    // The driver's messages carry server text, never the connection string.
    ApprovalError::Store(format!("PostgreSQL: {e}"))
}

fn pg_row(r: &tokio_postgres::Row) -> Result<Approval, ApprovalError> {
    let get = |e: tokio_postgres::Error| ApprovalError::Corrupt(e.to_string());
    let status: String = r.try_get(2).map_err(get)?;
    let call: String = r.try_get(11).map_err(get)?;
    approval(
        r.try_get(0).map_err(get)?,
        r.try_get(1).map_err(get)?,
        &status,
        r.try_get(3).map_err(get)?,
        r.try_get(4).map_err(get)?,
        r.try_get(5).map_err(get)?,
        r.try_get(6).map_err(get)?,
        r.try_get(7).map_err(get)?,
        r.try_get(8).map_err(get)?,
        r.try_get(9).map_err(get)?,
        r.try_get(10).map_err(get)?,
        &call,
    )
}

impl Postgres {
    /// The channel `NOTIFY` uses: one per table.
    fn channel(&self) -> String {
        format!("{}_changed", self.table)
    }

    async fn connect(url: &str) -> Result<tokio_postgres::Client, ApprovalError> {
        let (client, connection) = tokio::time::timeout(
            PG_TIMEOUT,
            tokio_postgres::connect(url, tokio_postgres::NoTls),
        )
        .await
        .map_err(|_| ApprovalError::Store("PostgreSQL: connecting timed out".into()))?
        .map_err(pg_err)?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                debug!(error = %e, "approvals: PostgreSQL connection ended");
            }
        });
        Ok(client)
    }

    /// The shared client; a new connection when the last one closed.
    async fn client(&self) -> Result<Arc<tokio_postgres::Client>, ApprovalError> {
        let mut g = self.client.lock().await;
        if let Some(c) = g.as_ref().filter(|c| !c.is_closed()) {
            return Ok(c.clone());
        }
        let c = Arc::new(Self::connect(&self.url).await?);
        *g = Some(c.clone());
        Ok(c)
    }

    async fn run<T, F, Fut>(&self, f: F) -> Result<T, ApprovalError>
    where
        F: FnOnce(Arc<tokio_postgres::Client>) -> Fut,
        Fut: std::future::Future<Output = Result<T, tokio_postgres::Error>>,
    {
        let c = self.client().await?;
        tokio::time::timeout(PG_TIMEOUT, f(c))
            .await
            .map_err(|_| ApprovalError::Store("PostgreSQL: the statement timed out".into()))?
            .map_err(pg_err)
    }

    /// Follows `NOTIFY`s of other processes: each bumps `changed`.
    /// Reconnects after a second when the connection drops. Returns once
    /// the first `LISTEN` is in place (a decision taken after `start`
    /// returns is heard).
    async fn listen(
        url: String,
        channel: String,
        changed: watch::Sender<u64>,
    ) -> Result<(), ApprovalError> {
        let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            let mut ready = Some(ready_tx);
            loop {
                match Self::listen_once(&url, &channel, &changed, &mut ready).await {
                    Ok(()) => return, // nobody is watching any more
                    Err(e) => {
                        if let Some(r) = ready.take() {
                            let _ = r.send(Err(e));
                            return;
                        }
                        warn!(error = %e, "approvals: PostgreSQL LISTEN failed; retrying");
                        // Something may have changed while we were away.
                        changed.send_modify(|v| *v += 1);
                        tokio::time::sleep(Duration::from_secs(1)).await;
                    }
                }
                if changed.is_closed() {
                    return;
                }
            }
        });
        ready_rx
            .await
            .map_err(|_| ApprovalError::Store("PostgreSQL: LISTEN did not start".into()))?
    }

    async fn listen_once(
        url: &str,
        channel: &str,
        changed: &watch::Sender<u64>,
        ready: &mut Option<tokio::sync::oneshot::Sender<Result<(), ApprovalError>>>,
    ) -> Result<(), ApprovalError> {
        let (client, mut connection) = tokio::time::timeout(
            PG_TIMEOUT,
            tokio_postgres::connect(url, tokio_postgres::NoTls),
        )
        .await
        .map_err(|_| ApprovalError::Store("PostgreSQL: connecting timed out".into()))?
        .map_err(pg_err)?;
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let driver = tokio::spawn(async move {
            loop {
                let m = futures::future::poll_fn(|cx| connection.poll_message(cx)).await;
                match m {
                    Some(Ok(tokio_postgres::AsyncMessage::Notification(_))) => {
                        if tx.send(()).is_err() {
                            return Ok(());
                        }
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => return Err(e),
                    None => return Ok(()),
                }
            }
        });
        client
            .batch_execute(&format!("LISTEN {channel}"))
            .await
            .map_err(pg_err)?;
        if let Some(r) = ready.take() {
            let _ = r.send(Ok(()));
        }
        loop {
            tokio::select! {
                n = rx.recv() => match n {
                    Some(()) => changed.send_modify(|v| *v += 1),
                    None => break,
                },
                () = changed.closed() => {
                    driver.abort();
                    return Ok(());
                }
            }
        }
        match driver.await {
            Ok(Err(e)) => Err(pg_err(e)),
            _ => Err(ApprovalError::Store(
                "PostgreSQL: the LISTEN connection closed".into(),
            )),
        }
    }
}

// ----- the operations --------------------------------------------------------

impl Store {
    pub(crate) async fn open_sqlite(path: PathBuf) -> Result<Store, ApprovalError> {
        let c = tokio::task::spawn_blocking(move || sqlite_open(&path))
            .await
            .map_err(|e| ApprovalError::Store(e.to_string()))??;
        Ok(Store::Sqlite(Arc::new(Mutex::new(c))))
    }

    pub(crate) async fn open_postgres(
        url: String,
        table: String,
        changed: watch::Sender<u64>,
    ) -> Result<Store, ApprovalError> {
        let pg = Postgres {
            url,
            table,
            client: tokio::sync::Mutex::new(None),
        };
        let t = pg.table.clone();
        pg.run(|c| async move {
            c.batch_execute(&format!(
                "CREATE TABLE IF NOT EXISTS {t} (
                   id TEXT PRIMARY KEY,
                   binding TEXT NOT NULL,
                   status TEXT NOT NULL,
                   created_at BIGINT NOT NULL,
                   expires_at BIGINT NOT NULL,
                   decided_by TEXT,
                   decided_at BIGINT,
                   reason TEXT,
                   change_ticket TEXT,
                   in_band BOOLEAN NOT NULL DEFAULT FALSE,
                   consumed_at BIGINT,
                   call TEXT NOT NULL
                 );
                 CREATE INDEX IF NOT EXISTS {t}_binding ON {t} (binding, status);
                 CREATE INDEX IF NOT EXISTS {t}_status ON {t} (status, expires_at);"
            ))
            .await
        })
        .await?;
        Postgres::listen(pg.url.clone(), pg.channel(), changed).await?;
        Ok(Store::Postgres(pg))
    }

    /// Runs `f` on the SQLite connection off the async threads.
    async fn sqlite<T: Send + 'static>(
        c: &Arc<Mutex<rusqlite::Connection>>,
        f: impl FnOnce(&rusqlite::Connection) -> Result<T, ApprovalError> + Send + 'static,
    ) -> Result<T, ApprovalError> {
        let c = c.clone();
        tokio::task::spawn_blocking(move || {
            let g = c
                .lock()
                .map_err(|_| ApprovalError::Store("SQLite: a writer panicked".into()))?;
            f(&g)
        })
        .await
        .map_err(|e| ApprovalError::Store(e.to_string()))?
    }

    pub(crate) async fn insert(&self, a: &Approval) -> Result<(), ApprovalError> {
        let call = serde_json::to_string(&a.call)
            .map_err(|e| ApprovalError::Store(format!("encoding the call: {e}")))?;
        let a = a.clone();
        match self {
            Store::Sqlite(c) => {
                Self::sqlite(c, move |c| {
                    c.execute(
                        &format!("INSERT INTO approvals ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"),
                        rusqlite::params![
                            a.id, a.binding, a.status.as_str(), a.created_at, a.expires_at,
                            a.decided_by, a.decided_at, a.reason, a.change_ticket, a.in_band,
                            a.consumed_at, call
                        ],
                    )
                    .map_err(sqlite_err)?;
                    Ok(())
                })
                .await
            }
            Store::Postgres(pg) => {
                let t = pg.table.clone();
                pg.run(|c| async move {
                    c.execute(
                        &format!("INSERT INTO {t} ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"),
                        &[
                            &a.id, &a.binding, &a.status.as_str(), &a.created_at, &a.expires_at,
                            &a.decided_by, &a.decided_at, &a.reason, &a.change_ticket, &a.in_band,
                            &a.consumed_at, &call,
                        ],
                    )
                    .await
                })
                .await?;
                Ok(())
            }
        }
    }

    pub(crate) async fn get(&self, id: &str) -> Result<Option<Approval>, ApprovalError> {
        let id = id.to_owned();
        match self {
            Store::Sqlite(c) => {
                Self::sqlite(c, move |c| {
                    sqlite_one(
                        c,
                        &format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"),
                        [id],
                    )
                })
                .await
            }
            Store::Postgres(pg) => {
                let t = pg.table.clone();
                let rows = pg
                    .run(|c| async move {
                        c.query(&format!("SELECT {COLUMNS} FROM {t} WHERE id = $1"), &[&id])
                            .await
                    })
                    .await?;
                rows.first().map(pg_row).transpose()
            }
        }
    }

    /// The newest pending or approved (not consumed), unexpired approval
    /// of a binding.
    pub(crate) async fn live(
        &self,
        binding: &str,
        now: i64,
    ) -> Result<Option<Approval>, ApprovalError> {
        let binding = binding.to_owned();
        match self {
            Store::Sqlite(c) => {
                Self::sqlite(c, move |c| {
                    sqlite_one(
                        c,
                        &format!(
                            "SELECT {COLUMNS} FROM approvals WHERE binding = ?1 \
                             AND status IN ('pending', 'approved') AND expires_at > ?2 \
                             ORDER BY (status = 'approved') DESC, created_at DESC LIMIT 1"
                        ),
                        rusqlite::params![binding, now],
                    )
                })
                .await
            }
            Store::Postgres(pg) => {
                let t = pg.table.clone();
                let rows = pg
                    .run(|c| async move {
                        c.query(
                            &format!(
                                "SELECT {COLUMNS} FROM {t} WHERE binding = $1 \
                                 AND status IN ('pending', 'approved') AND expires_at > $2 \
                                 ORDER BY (status = 'approved') DESC, created_at DESC LIMIT 1"
                            ),
                            &[&binding, &now],
                        )
                        .await
                    })
                    .await?;
                rows.first().map(pg_row).transpose()
            }
        }
    }

    /// Newest first; `status` narrows.
    pub(crate) async fn list(
        &self,
        status: Option<Status>,
        limit: u32,
    ) -> Result<Vec<Approval>, ApprovalError> {
        let status = status.map(Status::as_str);
        let limit = i64::from(limit);
        match self {
            Store::Sqlite(c) => {
                Self::sqlite(c, move |c| {
                    sqlite_all(
                        c,
                        &format!(
                            "SELECT {COLUMNS} FROM approvals WHERE (?1 IS NULL OR status = ?1) \
                             ORDER BY created_at DESC LIMIT ?2"
                        ),
                        rusqlite::params![status, limit],
                    )
                })
                .await
            }
            Store::Postgres(pg) => {
                let t = pg.table.clone();
                let rows = pg
                    .run(|c| async move {
                        c.query(
                            &format!(
                                "SELECT {COLUMNS} FROM {t} WHERE ($1::TEXT IS NULL OR status = $1) \
                                 ORDER BY created_at DESC LIMIT $2"
                            ),
                            &[&status, &limit],
                        )
                        .await
                    })
                    .await?;
                rows.iter().map(pg_row).collect()
            }
        }
    }

    /// Moves `id` from `from` to the decision's status, only while it is
    /// `from` and unexpired; the updated row, `None` when it was not.
    pub(crate) async fn transition(
        &self,
        id: &str,
        from: Status,
        d: Decided<'_>,
    ) -> Result<Option<Approval>, ApprovalError> {
        let id = id.to_owned();
        let (to, by, reason, ticket, in_band, at) = (
            d.status.as_str(),
            d.by.to_owned(),
            d.reason.map(str::to_owned),
            d.change_ticket.map(str::to_owned),
            d.in_band,
            d.at,
        );
        let from = from.as_str();
        match self {
            Store::Sqlite(c) => {
                Self::sqlite(c, move |c| {
                    let consume = to == "consumed";
                    let sql = if consume {
                        format!(
                            "UPDATE approvals SET status = ?2, consumed_at = ?3 \
                             WHERE id = ?1 AND status = ?4 AND expires_at > ?3 \
                             RETURNING {COLUMNS}"
                        )
                    } else {
                        format!(
                            "UPDATE approvals SET status = ?2, decided_by = ?3, reason = ?4, \
                             change_ticket = ?5, in_band = ?6, decided_at = ?7 \
                             WHERE id = ?1 AND status = ?8 AND expires_at > ?7 \
                             RETURNING {COLUMNS}"
                        )
                    };
                    if consume {
                        sqlite_one(c, &sql, rusqlite::params![id, to, at, from])
                    } else {
                        sqlite_one(
                            c,
                            &sql,
                            rusqlite::params![id, to, by, reason, ticket, in_band, at, from],
                        )
                    }
                })
                .await
            }
            Store::Postgres(pg) => {
                let t = pg.table.clone();
                let channel = pg.channel();
                let rows = pg
                    .run(|c| async move {
                        let rows = if to == "consumed" {
                            c.query(
                                &format!(
                                    "UPDATE {t} SET status = $2, consumed_at = $3 \
                                     WHERE id = $1 AND status = $4 AND expires_at > $3 \
                                     RETURNING {COLUMNS}"
                                ),
                                &[&id, &to, &at, &from],
                            )
                            .await?
                        } else {
                            c.query(
                                &format!(
                                    "UPDATE {t} SET status = $2, decided_by = $3, reason = $4, \
                                     change_ticket = $5, in_band = $6, decided_at = $7 \
                                     WHERE id = $1 AND status = $8 AND expires_at > $7 \
                                     RETURNING {COLUMNS}"
                                ),
                                &[&id, &to, &by, &reason, &ticket, &in_band, &at, &from],
                            )
                            .await?
                        };
                        if !rows.is_empty() {
                            // Wakes the calls other processes hold.
                            c.execute("SELECT pg_notify($1, $2)", &[&channel, &id])
                                .await?;
                        }
                        Ok(rows)
                    })
                    .await?;
                rows.first().map(pg_row).transpose()
            }
        }
    }

    /// Marks every pending or approved approval past its expiry `expired`;
    /// the ones it marked.
    pub(crate) async fn expire(&self, now: i64) -> Result<Vec<Approval>, ApprovalError> {
        match self {
            Store::Sqlite(c) => {
                Self::sqlite(c, move |c| {
                    sqlite_all(
                        c,
                        &format!(
                            "UPDATE approvals SET status = 'expired' \
                             WHERE status IN ('pending', 'approved') AND expires_at <= ?1 \
                             RETURNING {COLUMNS}"
                        ),
                        [now],
                    )
                })
                .await
            }
            Store::Postgres(pg) => {
                let t = pg.table.clone();
                let rows = pg
                    .run(|c| async move {
                        c.query(
                            &format!(
                                "UPDATE {t} SET status = 'expired' \
                                 WHERE status IN ('pending', 'approved') AND expires_at <= $1 \
                                 RETURNING {COLUMNS}"
                            ),
                            &[&now],
                        )
                        .await
                    })
                    .await?;
                rows.iter().map(pg_row).collect()
            }
        }
    }
}
