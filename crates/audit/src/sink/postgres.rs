//! PostgreSQL for clusters: every replica writes its own chain (`chain`
//! column) into one table, one multi-row insert per batch.
//!
//! The synchronous `postgres` client (tokio-postgres underneath, on its own
//! small runtime) runs on the writer thread, which is not a runtime worker.
//! While the server is unreachable the writer keeps the records in its
//! journal and replays them when the sink comes back.
//!
//! TLS: not yet (`NoTls`); use a loopback or a Unix socket, or a TLS proxy.

use std::time::Duration;

use postgres::{Client, NoTls};

use super::{AuditSink, Entry};
use crate::error::AuditError;

pub struct PostgresSink {
    config: postgres::Config,
    table: String,
    chain: String,
    client: Option<Client>,
}

fn err(e: postgres::Error) -> AuditError {
    // The driver's messages carry server text, never the connection string.
    AuditError::Sink {
        sink: "postgres",
        reason: e.to_string(),
    }
}

impl PostgresSink {
    /// A sink for `url` (libpq URL or conninfo); connects on first use, so
    /// an unreachable server does not stop Warden from starting. `table`
    /// must be a validated identifier (the settings check it).
    pub fn new(url: &str, table: &str, chain: &str) -> Result<PostgresSink, AuditError> {
        let mut config: postgres::Config = url.parse().map_err(|_| {
            AuditError::Settings(
                "audit.sinks.postgres.url: not a PostgreSQL URL or conninfo string".into(),
            )
        })?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(Duration::from_secs(5));
        }
        Ok(PostgresSink {
            config,
            table: table.to_owned(),
            chain: chain.to_owned(),
            client: None,
        })
    }

    fn client(&mut self) -> Result<&mut Client, AuditError> {
        if self.client.as_ref().is_none_or(Client::is_closed) {
            let mut client = self.config.connect(NoTls).map_err(err)?;
            client
                .batch_execute(&format!(
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
                    CREATE INDEX IF NOT EXISTS {t}_subject ON {t} (subject, time_ns);",
                    t = self.table
                ))
                .map_err(err)?;
            self.client = Some(client);
        }
        self.client.as_mut().ok_or(AuditError::Closed)
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
        let row = self.client()?.query_opt(&sql, &[&chain]).map_err(err)?;
        let Some(row) = row else { return Ok(None) };
        let seq: i64 = row.get(0);
        let hash_hex: String = row.get(1);
        let mut hash = [0u8; 32];
        hex::decode_to_slice(&hash_hex, &mut hash).map_err(|_| AuditError::Sink {
            sink: "postgres",
            reason: format!("record {seq} of chain {chain} has a malformed hash"),
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
        let client = self.client()?;
        client
            .execute(
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
            .map(|_| ())
            .map_err(err)
    }

    fn sync(&mut self) -> Result<(), AuditError> {
        // Each insert is its own committed transaction: durable on the server.
        Ok(())
    }

    fn reset(&mut self) -> Result<(), AuditError> {
        self.client = None;
        self.client().map(|_| ())
    }
}
