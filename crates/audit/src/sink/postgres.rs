//! PostgreSQL for clusters: every replica writes its own chain (`chain`
//! column) into one table, one multi-row insert per batch.
//!
//! The sink runs on its own thread (`follower.rs`), fed from the
//! journal, so a slow or unreachable server never holds the writer. It
//! drives `tokio-postgres` on a small runtime of its own, and every
//! exchange with the server is bounded on Warden's side: connecting (TCP
//! and the PostgreSQL handshake) by `connect_timeout`, each statement by
//! `statement_timeout` (also set on the server). A server that accepts
//! and then never answers — a network partition — costs one timeout,
//! then the connection is dropped and retried; the journal keeps the
//! records until the sink catches up.
//!
//! TLS: not yet (`NoTls`); use a loopback or a Unix socket, or a TLS proxy.

use std::time::Duration;

use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_postgres::{Client, NoTls};

use super::{AuditSink, Entry, RetentionCut};
use crate::error::AuditError;
use crate::settings::{PostgresSettings, PostgresUrl, RetentionSettings};

/// Rows deleted per statement when pruning.
const PRUNE_CHUNK: i64 = 20_000;
/// Creating the table and its indexes may take longer than a statement
/// (an index on a large existing table): bounded separately.
const SCHEMA_TIMEOUT: Duration = Duration::from_secs(120);

pub struct PostgresSink {
    config: tokio_postgres::Config,
    table: String,
    chain: String,
    connect_timeout: Duration,
    statement_timeout: Duration,
    runtime: Runtime,
    client: Option<Client>,
    connection: Option<JoinHandle<()>>,
}

fn err(e: tokio_postgres::Error) -> AuditError {
    // The driver's messages carry server text, never the connection string.
    AuditError::Sink {
        sink: "postgres",
        reason: e.to_string(),
    }
}

fn timed_out(what: &str, after: Duration) -> AuditError {
    AuditError::Sink {
        sink: "postgres",
        reason: format!("{what}: no answer within {after:?}"),
    }
}

impl PostgresSink {
    /// A sink for the settings' URL (libpq URL or conninfo); connects on
    /// first use, so an unreachable server does not stop Warden from
    /// starting. The table name is a validated identifier (the settings
    /// check it).
    pub fn new(settings: &PostgresSettings) -> Result<PostgresSink, AuditError> {
        let url = match &settings.url {
            PostgresUrl::Resolved(u) => u,
            PostgresUrl::Reference(_) => {
                return Err(AuditError::Settings(
                    "the PostgreSQL URL was not resolved".into(),
                ))
            }
        };
        let mut config: tokio_postgres::Config = url.parse().map_err(|_| {
            AuditError::Settings(
                "audit.sinks.postgres.url: not a PostgreSQL URL or conninfo string".into(),
            )
        })?;
        // The TCP part; the whole handshake is bounded below as well.
        let connect_timeout = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(settings.connect_timeout)
            .min(settings.connect_timeout);
        config.connect_timeout(connect_timeout);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| AuditError::Sink {
                sink: "postgres",
                reason: format!("cannot start its runtime: {e}"),
            })?;
        Ok(PostgresSink {
            config,
            table: settings.table.clone(),
            chain: settings.chain.clone(),
            connect_timeout,
            statement_timeout: settings.statement_timeout,
            runtime,
            client: None,
            connection: None,
        })
    }

    fn disconnect(&mut self) {
        self.client = None;
        if let Some(c) = self.connection.take() {
            c.abort();
        }
    }

    /// Runs `f` against the connection (made first if need be), bounded by
    /// the statement timeout. Any failure drops the connection.
    fn run<T, F>(&mut self, what: &str, f: F) -> Result<T, AuditError>
    where
        F: AsyncFnOnce(&Client) -> Result<T, tokio_postgres::Error>,
    {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            self.connect()?;
        }
        let Some(client) = self.client.as_ref() else {
            return Err(AuditError::Closed);
        };
        let limit = self.statement_timeout;
        let result = self
            .runtime
            .block_on(async { tokio::time::timeout(limit, f(client)).await });
        match result {
            Ok(Ok(v)) => Ok(v),
            Ok(Err(e)) => {
                self.disconnect();
                Err(err(e))
            }
            Err(_) => {
                self.disconnect();
                Err(timed_out(what, limit))
            }
        }
    }

    fn connect(&mut self) -> Result<(), AuditError> {
        self.disconnect();
        let config = self.config.clone();
        let limit = self.connect_timeout;
        let connected = self
            .runtime
            .block_on(async { tokio::time::timeout(limit, config.connect(NoTls)).await });
        let (client, connection) = match connected {
            Ok(Ok(c)) => c,
            Ok(Err(e)) => return Err(err(e)),
            Err(_) => return Err(timed_out("connecting", limit)),
        };
        self.connection = Some(self.runtime.spawn(async move {
            let _ = connection.await;
        }));
        let ddl = format!(
            "CREATE TABLE IF NOT EXISTS {t} (
                chain          TEXT NOT NULL,
                seq            BIGINT NOT NULL,
                time_ns        BIGINT NOT NULL,
                kind           TEXT NOT NULL,
                subject        TEXT,
                tenant         TEXT,
                server         TEXT,
                tool           TEXT,
                decision       TEXT,
                correlation_id TEXT,
                session        TEXT,
                hash           TEXT NOT NULL,
                record         TEXT NOT NULL,
                PRIMARY KEY (chain, seq)
             );
             CREATE INDEX IF NOT EXISTS {t}_time ON {t} (time_ns);
             CREATE INDEX IF NOT EXISTS {t}_subject ON {t} (subject, time_ns);
             CREATE INDEX IF NOT EXISTS {t}_checkpoints ON {t} (chain, seq) WHERE kind = 'checkpoint';",
            t = self.table,
        );
        let limit = format!(
            "SET statement_timeout = {}",
            self.statement_timeout.as_millis()
        );
        self.client = Some(client);
        let Some(client) = self.client.as_ref() else {
            return Err(AuditError::Closed);
        };
        let schema = self.runtime.block_on(async {
            tokio::time::timeout(SCHEMA_TIMEOUT, async {
                // An index may take long on a large existing table: no
                // server-side limit for the schema, then the statement one.
                client.batch_execute("SET statement_timeout = 0").await?;
                client.batch_execute(&ddl).await?;
                client.batch_execute(&limit).await
            })
            .await
        });
        match schema {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => {
                self.disconnect();
                Err(err(e))
            }
            Err(_) => {
                self.disconnect();
                Err(timed_out("creating the table", SCHEMA_TIMEOUT))
            }
        }
    }

    fn one_i64(&mut self, what: &str, sql: String, limit: i64) -> Result<Option<i64>, AuditError> {
        let chain = self.chain.clone();
        self.run(what, async move |c| {
            let row = c.query_opt(&sql, &[&chain, &limit]).await?;
            Ok(row.and_then(|r| r.get::<_, Option<i64>>(0)))
        })
    }
}

impl Drop for PostgresSink {
    fn drop(&mut self) {
        self.disconnect();
    }
}

impl AuditSink for PostgresSink {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn last(&mut self) -> Result<Option<(u64, [u8; 32])>, AuditError> {
        let sql = format!(
            "SELECT seq, hash FROM {} WHERE chain = $1 ORDER BY seq DESC LIMIT 1",
            self.table
        );
        let chain = self.chain.clone();
        let row = self.run("reading the last record", async move |c| {
            c.query_opt(&sql, &[&chain]).await
        })?;
        let Some(row) = row else { return Ok(None) };
        let seq: i64 = row.try_get(0).map_err(err)?;
        let hash_hex: String = row.try_get(1).map_err(err)?;
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&hash_hex, &mut hash).map_err(|_| AuditError::Sink {
            sink: "postgres",
            reason: format!("record {seq} of chain {} has a malformed hash", self.chain),
        })?;
        Ok(Some((u64::try_from(seq).unwrap_or(0), hash)))
    }

    fn write(&mut self, entries: &[Entry]) -> Result<(), AuditError> {
        if entries.is_empty() {
            return Ok(());
        }
        let n = entries.len();
        let mut seq = Vec::with_capacity(n);
        let mut time = Vec::with_capacity(n);
        let mut kind = Vec::with_capacity(n);
        let mut subject = Vec::with_capacity(n);
        let mut tenant = Vec::with_capacity(n);
        let mut server = Vec::with_capacity(n);
        let mut tool = Vec::with_capacity(n);
        let mut decision = Vec::with_capacity(n);
        let mut correlation = Vec::with_capacity(n);
        let mut session = Vec::with_capacity(n);
        let mut hash = Vec::with_capacity(n);
        let mut record = Vec::with_capacity(n);
        for e in entries {
            let i = &e.index;
            seq.push(i64::try_from(e.record.seq).unwrap_or(i64::MAX));
            time.push(i.time_ns);
            kind.push(i.kind.as_str());
            subject.push(i.subject.as_deref());
            tenant.push(i.tenant.as_deref());
            server.push(i.server.as_deref());
            tool.push(i.tool.as_deref());
            decision.push(i.decision.as_deref());
            correlation.push(i.correlation_id.as_deref());
            session.push(i.session.as_deref());
            hash.push(e.record.hash_hex());
            record.push(e.record.line.as_str());
        }
        let sql = format!(
            "INSERT INTO {} (chain, seq, time_ns, kind, subject, tenant, server, tool, decision,
                              correlation_id, session, hash, record)
             SELECT $1, * FROM unnest($2::bigint[], $3::bigint[], $4::text[], $5::text[], $6::text[],
                                      $7::text[], $8::text[], $9::text[], $10::text[], $11::text[],
                                      $12::text[], $13::text[])",
            self.table
        );
        let chain = self.chain.clone();
        self.run("inserting records", async move |c| {
            c.execute(
                &sql,
                &[
                    &chain,
                    &seq,
                    &time,
                    &kind,
                    &subject,
                    &tenant,
                    &server,
                    &tool,
                    &decision,
                    &correlation,
                    &session,
                    &hash,
                    &record,
                ],
            )
            .await
            .map(|_| ())
        })
    }

    fn sync(&mut self) -> Result<(), AuditError> {
        // Each insert is its own committed transaction: durable on the server.
        Ok(())
    }

    fn reset(&mut self) -> Result<(), AuditError> {
        self.connect()
    }

    fn retention_cut(
        &mut self,
        retention: &RetentionSettings,
        now_ns: i64,
    ) -> Result<Option<RetentionCut>, AuditError> {
        let t = self.table.clone();
        let chain = self.chain.clone();
        let sql = format!("SELECT min(seq), max(seq) FROM {t} WHERE chain = $1");
        let bounds = self.run("reading the chain's extent", async move |c| {
            let row = c.query_one(&sql, &[&chain]).await?;
            Ok((
                row.try_get::<_, Option<i64>>(0)?,
                row.try_get::<_, Option<i64>>(1)?,
            ))
        })?;
        let (Some(oldest), Some(newest)) = bounds else {
            return Ok(None);
        };
        let mut keep_from = oldest;
        let mut reason = "";
        if let Some(age) = retention.max_age {
            let cutoff = now_ns.saturating_sub(i64::try_from(age.as_nanos()).unwrap_or(i64::MAX));
            let old = self.one_i64(
                "finding old records",
                format!("SELECT seq FROM {t} WHERE chain = $1 AND time_ns < $2 ORDER BY time_ns DESC LIMIT 1"),
                cutoff,
            )?;
            if let Some(old) = old {
                let cp = self.one_i64(
                    "finding a checkpoint",
                    format!("SELECT max(seq) FROM {t} WHERE chain = $1 AND kind = 'checkpoint' AND seq <= $2"),
                    old,
                )?;
                if let Some(cp) = cp.filter(|cp| *cp > keep_from) {
                    keep_from = cp;
                    reason = "max_age";
                }
            }
        }
        if let Some(max) = retention.max_size {
            // This chain's record text, estimated from its newest rows.
            let avg = self
                .one_i64(
                    "measuring records",
                    format!(
                        "SELECT avg(octet_length(record))::bigint FROM
                           (SELECT record FROM {t} WHERE chain = $1 ORDER BY seq DESC LIMIT $2) s"
                    ),
                    1000,
                )?
                .unwrap_or(0);
            let rows = newest - oldest + 1;
            let used = avg.saturating_mul(rows);
            let max = i64::try_from(max).unwrap_or(i64::MAX);
            if used > max && avg > 0 {
                let remove = (used - max / 10 * 9) / avg;
                let cp = self.one_i64(
                    "finding a checkpoint",
                    format!("SELECT min(seq) FROM {t} WHERE chain = $1 AND kind = 'checkpoint' AND seq >= $2"),
                    oldest + remove.max(1),
                )?;
                if let Some(cp) = cp.filter(|cp| *cp > keep_from) {
                    keep_from = cp;
                    reason = "max_size";
                }
            }
        }
        Ok((keep_from > oldest).then(|| RetentionCut {
            oldest: u64::try_from(oldest).unwrap_or(0),
            keep_from: u64::try_from(keep_from).unwrap_or(0),
            reason,
        }))
    }

    fn prune(&mut self, cut: &RetentionCut) -> Result<u64, AuditError> {
        let keep_from = i64::try_from(cut.keep_from).unwrap_or(i64::MAX);
        let mut from = i64::try_from(cut.oldest).unwrap_or(0);
        let mut removed = 0u64;
        let sql = format!(
            "DELETE FROM {} WHERE chain = $1 AND seq >= $2 AND seq < $3",
            self.table
        );
        while from < keep_from {
            let to = (from + PRUNE_CHUNK).min(keep_from);
            let (sql, chain) = (sql.clone(), self.chain.clone());
            removed += self.run("pruning", async move |c| {
                c.execute(&sql, &[&chain, &from, &to]).await
            })?;
            from = to;
        }
        Ok(removed)
    }
}
