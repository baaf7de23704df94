//! The writer thread: takes batches from the queue (and the spill
//! journal), chains them, appends them to the WAL (fsync'd when a caller
//! waits for durability: group commit), answers the waiters, then hands
//! the records to every sink. Checkpoints, rotation, sync points and the
//! catching up of failed sinks happen here too.
//!
//! It is an OS thread, not a task: it fsyncs and uses synchronous database
//! drivers, which must not occupy an async worker.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tracing::warn;

use crate::anomaly::AnomalyDetector;
use crate::checkpoint::{side_file_for, CheckpointSigner, SideEntry};
use crate::error::AuditError;
use crate::event::{Event, EventKind, Lifecycle};
use crate::journal::{spill_ids, wal_line, Spill, Wal};
use crate::log::{Ack, Control, Pending, Shared, COALESCE_MAX, COALESCE_WINDOW};
use crate::metrics::Counters;
use crate::record::{Record, GENESIS};
use crate::settings::{AuditSettings, PostgresUrl};
use crate::sink::jsonl::JsonlSink;
use crate::sink::postgres::PostgresSink;
use crate::sink::sqlite::SqliteSink;
use crate::sink::stdout::StdoutSink;
use crate::sink::{AuditSink, Entry};

/// Sinks are synced and the WAL compacted at least this often while
/// records arrive.
const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// A failed sink is retried after this, doubling per failed attempt up to
/// [`RETRY_MAX`]: a sink that hangs on connect (a blackholed PostgreSQL)
/// stalls the writer for a shrinking fraction of the time.
const RETRY_INTERVAL: Duration = Duration::from_secs(5);
const RETRY_MAX: Duration = Duration::from_secs(300);
/// The writer wakes at least this often when idle.
const IDLE_TICK: Duration = Duration::from_secs(1);

pub(crate) fn sink_names(
    settings: &AuditSettings,
    extra: &[Box<dyn AuditSink>],
) -> Vec<&'static str> {
    let mut names = Vec::new();
    if settings.jsonl.is_some() {
        names.push("jsonl");
    }
    if settings.sqlite.is_some() {
        names.push("sqlite");
    }
    if settings.postgres.is_some() {
        names.push("postgres");
    }
    if settings.stdout {
        names.push("stdout");
    }
    names.extend(extra.iter().map(|s| s.name()));
    names
}

struct Slot {
    sink: Box<dyn AuditSink>,
    name: &'static str,
    keeps: bool,
    /// Last seq written (`None`: unknown until the sink answers).
    written: Option<u64>,
    /// Last seq known durable in the sink.
    synced: u64,
    failed: bool,
    last_retry: Option<Instant>,
    retry_delay: Duration,
}

pub(crate) struct Writer {
    shared: Arc<Shared>,
    wal: Wal,
    slots: Vec<Slot>,
    signer: CheckpointSigner,
    side_file: PathBuf,
    detector: AnomalyDetector,
    seq: u64,
    head: [u8; 32],
    batch_max: usize,
    checkpoint_every: u64,
    checkpoint_interval: Duration,
    since_checkpoint: u64,
    last_checkpoint: Instant,
    last_sync: Instant,
    dirty: bool,
    /// `keep_after` of the last WAL compaction.
    compacted_through: u64,
    /// The newest record's line: the WAL's anchor after compaction.
    last_line: Option<String>,
    /// Checkpoints not yet in the side file.
    pending_side: Vec<SideEntry>,
    wal_buf: Vec<u8>,
    /// Held for the writer's life: one writer per journal.
    _lock: File,
}

impl Writer {
    pub fn open(
        settings: AuditSettings,
        shared: Arc<Shared>,
        extra: Vec<Box<dyn AuditSink>>,
    ) -> Result<Writer, AuditError> {
        std::fs::create_dir_all(&settings.journal_dir)
            .map_err(|e| AuditError::io(&settings.journal_dir, e))?;
        let lock_path = settings.journal_dir.join("writer.lock");
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| AuditError::io(&lock_path, e))?;
        if lock.try_lock().is_err() {
            return Err(AuditError::Settings(format!(
                "another process writes the audit journal {}",
                settings.journal_dir.display()
            )));
        }
        let signer = CheckpointSigner::load_or_generate(&settings.checkpoint.signing_key)?;

        let mut sinks: Vec<Box<dyn AuditSink>> = Vec::new();
        if let Some(j) = &settings.jsonl {
            sinks.push(Box::new(JsonlSink::open(
                &j.path,
                j.rotate_bytes,
                j.rotate_keep,
            )?));
        }
        if let Some(s) = &settings.sqlite {
            sinks.push(Box::new(SqliteSink::open(&s.path)?));
        }
        if let Some(p) = &settings.postgres {
            let url = match &p.url {
                PostgresUrl::Resolved(u) => u.clone(),
                PostgresUrl::Reference(_) => {
                    return Err(AuditError::Settings(
                        "the PostgreSQL URL was not resolved".into(),
                    ))
                }
            };
            sinks.push(Box::new(PostgresSink::new(&url, &p.table, &p.chain)?));
        }
        if settings.stdout {
            sinks.push(Box::<StdoutSink>::default());
        }
        sinks.extend(extra);

        let side_file = match &settings.jsonl {
            Some(j) => side_file_for(&j.path),
            None => settings.journal_dir.join("audit.checkpoints"),
        };
        let (wal, wal_entries) = Wal::open(&settings.journal_dir)?;
        let now = Instant::now();
        let mut writer = Writer {
            shared,
            wal,
            slots: Vec::new(),
            signer,
            side_file,
            detector: AnomalyDetector::new(&settings.anomaly),
            seq: 0,
            head: GENESIS,
            batch_max: settings.batch_max,
            checkpoint_every: settings.checkpoint.every_records,
            checkpoint_interval: settings.checkpoint.interval,
            since_checkpoint: 0,
            last_checkpoint: now,
            last_sync: now,
            dirty: false,
            compacted_through: 0,
            last_line: None,
            pending_side: Vec::new(),
            wal_buf: Vec::with_capacity(256 * 1024),
            _lock: lock,
        };

        // The chain head: the newest record anyone holds.
        if let Some(last) = wal_entries.last() {
            writer.seq = last.record.seq;
            writer.head = last.record.hash;
        }
        for mut sink in sinks {
            let name = sink.name();
            let keeps = sink.keeps_records();
            let (written, failed) = match sink.last() {
                Ok(last) => {
                    if let Some((seq, hash)) = last {
                        if seq > writer.seq {
                            writer.seq = seq;
                            writer.head = hash;
                        }
                        if let Some(w) = wal_entries.iter().find(|e| e.record.seq == seq) {
                            if w.record.hash != hash {
                                warn!(target: "audit", sink = name, seq,
                                      "audit sink holds a different record than the journal at this seq; `warden audit verify` will say more");
                            }
                        }
                    }
                    (Some(last.map_or(0, |(s, _)| s)), false)
                }
                Err(e) if name == "postgres" => {
                    warn!(target: "audit", sink = name, error = %e, "audit sink unavailable at start; records are kept in the journal until it returns");
                    (None, true)
                }
                Err(e) => return Err(e),
            };
            writer.slots.push(Slot {
                sink,
                name,
                keeps,
                written,
                synced: written.unwrap_or(0),
                failed,
                last_retry: failed.then_some(now),
                retry_delay: RETRY_INTERVAL,
            });
        }
        writer.publish_lag();
        writer.recover(&wal_entries)?;
        Ok(writer)
    }

    /// Replays WAL records sinks lack and chains spilled events.
    fn recover(&mut self, wal_entries: &[crate::journal::WalEntry]) -> Result<(), AuditError> {
        let mut replayed = 0u64;
        if let Some(last) = wal_entries.last() {
            let first_seq = wal_entries.first().map_or(0, |e| e.record.seq);
            for slot in self.slots.iter_mut().filter(|s| s.keeps && !s.failed) {
                let Some(pos) = slot.written else { continue };
                if pos >= last.record.seq {
                    continue;
                }
                if pos + 1 < first_seq {
                    warn!(target: "audit", sink = slot.name, from = pos + 1, to = first_seq - 1,
                          "audit sink lacks records the journal no longer holds");
                }
                let missing: Vec<Entry> = wal_entries
                    .iter()
                    .filter(|e| e.record.seq > pos)
                    .map(|e| Entry::from_record(e.record.clone()))
                    .collect();
                slot.sink.write(&missing)?;
                slot.written = Some(last.record.seq);
                replayed += missing.len() as u64;
            }
        }
        let mut seen = spill_ids(wal_entries);
        let mut chained = 0u64;
        for path in Spill::existing(&self.journal_dir())? {
            let events: Vec<(String, Event)> = Spill::read(&path)?
                .into_iter()
                .filter(|(id, _)| seen.insert(id.clone()))
                .collect();
            chained += events.len() as u64;
            if !events.is_empty() {
                self.process(Vec::new(), events);
            }
            self.sync_point();
            Spill::remove(&path)?;
        }
        if replayed + chained > 0 {
            Counters::add(&self.shared.counters.recovered, replayed + chained);
            warn!(target: "audit", replayed, chained, "audit journal recovered after an unclean stop");
            let event = Event {
                lifecycle: Some(Box::new(Lifecycle {
                    recovered: Some(replayed + chained),
                    outcome: Some(format!("replayed {replayed}, spilled {chained}")),
                    ..Lifecycle::default()
                })),
                ..Event::new(EventKind::JournalRecovered)
            };
            self.process(vec![Pending { event, ack: None }], Vec::new());
        }
        self.sync_point();
        Ok(())
    }

    fn journal_dir(&self) -> PathBuf {
        self.wal.dir().to_owned()
    }

    /// The main loop. Returns after a shutdown request or when every
    /// handle is gone and the queue is drained.
    pub fn run(mut self) -> Result<(), AuditError> {
        loop {
            let deadline = self.next_deadline();
            let (items, controls, abandoned) = self.take(deadline);
            let spilled = self.take_spill();
            let (spill_path, spilled) = match spilled {
                Some((p, e)) => (Some(p), e),
                None => (None, Vec::new()),
            };
            if !items.is_empty() || !spilled.is_empty() {
                self.process(items, spilled);
            }
            if let Some(p) = spill_path {
                // Its events are fsync'd in the WAL now.
                if let Err(e) = Spill::remove(&p) {
                    warn!(target: "audit", error = %e, "could not remove a drained spill file");
                }
            }
            self.housekeeping();
            let mut stop = false;
            let mut shutdown_acks = Vec::new();
            for c in controls {
                self.drain_all();
                match c {
                    Control::Flush(ack) => {
                        self.sync_point();
                        let _ = ack.send(());
                    }
                    Control::Shutdown(ack) => {
                        self.finish();
                        shutdown_acks.push(ack);
                        stop = true;
                    }
                }
            }
            if abandoned && !stop {
                self.drain_all();
                self.finish();
                stop = true;
            }
            if stop {
                // Under the queue lock, so no control slips in unanswered.
                let mut late = {
                    let mut q = self.shared.lock();
                    q.closed = true;
                    self.shared.running.store(false, Ordering::Release);
                    std::mem::take(&mut q.controls)
                };
                late.extend(shutdown_acks.into_iter().map(Control::Shutdown));
                // Release the journal lock and close the sinks before
                // answering: a caller may start a new writer right away.
                drop(self);
                for c in late {
                    match c {
                        Control::Flush(ack) | Control::Shutdown(ack) => {
                            let _ = ack.send(());
                        }
                    }
                }
                // Events that raced in after the last drain went to the
                // spill file (the queue is closed): recovered at next start.
                return Ok(());
            }
        }
    }

    fn finish(&mut self) {
        if self.since_checkpoint > 0 {
            self.checkpoint();
        }
        self.sync_point();
    }

    fn next_deadline(&self) -> Instant {
        let mut d = Instant::now() + IDLE_TICK;
        if self.dirty {
            d = d.min(self.last_sync + SYNC_INTERVAL);
        }
        if self.since_checkpoint > 0 {
            d = d.min(self.last_checkpoint + self.checkpoint_interval);
        }
        d
    }

    /// Waits for work until `deadline`; takes at most `batch_max` events.
    fn take(&mut self, deadline: Instant) -> (Vec<Pending>, Vec<Control>, bool) {
        let shared = self.shared.clone();
        let mut q = shared.lock();
        loop {
            if !q.items.is_empty()
                || !q.controls.is_empty()
                || q.abandoned
                || shared.spill.is_pending()
            {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            q.idle = true;
            q = shared
                .wake
                .wait_timeout(q, deadline - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
            q.idle = false;
        }
        // Group commit for async events: under load each event would
        // otherwise be its own journal append and sink transaction (and
        // each push a futex wake). Held back at most COALESCE_WINDOW
        // (within the deadline); an event awaiting an ack, a control, a
        // spill or a full batch ends the wait at once.
        let until = deadline.min(Instant::now() + COALESCE_WINDOW);
        loop {
            if q.items.is_empty()
                || q.items.len() >= COALESCE_MAX
                || !q.controls.is_empty()
                || q.abandoned
                || shared.spill.is_pending()
                || q.items.iter().any(|p| p.ack.is_some())
            {
                break;
            }
            let now = Instant::now();
            if now >= until {
                break;
            }
            q.coalescing = true;
            q = shared
                .wake
                .wait_timeout(q, until - now)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
            q.coalescing = false;
        }
        let n = q.items.len().min(self.batch_max);
        let items: Vec<Pending> = q.items.drain(..n).collect();
        let controls = std::mem::take(&mut q.controls);
        shared.depth.store(q.items.len(), Ordering::Relaxed);
        if q.items.is_empty() {
            shared
                .caught_up_at
                .store(shared.now_us(), Ordering::Relaxed);
        }
        (items, controls, q.abandoned)
    }

    fn take_spill(&mut self) -> Option<(PathBuf, Vec<(String, Event)>)> {
        if !self.shared.spill.is_pending() {
            return None;
        }
        let path = self.shared.spill.take()?;
        match Spill::read(&path) {
            Ok(events) => Some((path, events)),
            Err(e) => {
                // Left on disk for the next start's recovery.
                Counters::add(&self.shared.counters.journal_errors, 1);
                warn!(target: "audit", error = %e, "could not read a spill file; it stays for recovery at the next start");
                None
            }
        }
    }

    /// Everything queued or spilled right now, processed.
    fn drain_all(&mut self) {
        loop {
            let (items, controls) = {
                let shared = self.shared.clone();
                let mut q = shared.lock();
                let items: Vec<Pending> = q.items.drain(..).collect();
                shared.depth.store(0, Ordering::Relaxed);
                // Controls arriving meanwhile are answered by this drain too.
                let controls = std::mem::take(&mut q.controls);
                (items, controls)
            };
            let spilled = self.take_spill();
            let nothing = items.is_empty() && spilled.is_none();
            let (path, spilled) = match spilled {
                Some((p, e)) => (Some(p), e),
                None => (None, Vec::new()),
            };
            if !items.is_empty() || !spilled.is_empty() {
                self.process(items, spilled);
            }
            if let Some(p) = path {
                let _ = Spill::remove(&p);
            }
            for c in controls {
                match c {
                    Control::Flush(ack) => {
                        self.sync_point();
                        let _ = ack.send(());
                    }
                    Control::Shutdown(ack) => {
                        // Answered once the caller's own shutdown completes.
                        let mut q = self.shared.lock();
                        q.controls.push(Control::Shutdown(ack));
                    }
                }
            }
            if nothing {
                break;
            }
        }
        self.shared
            .caught_up_at
            .store(self.shared.now_us(), Ordering::Relaxed);
    }

    /// Chains, journals, acknowledges, writes to sinks.
    fn process(&mut self, items: Vec<Pending>, spilled: Vec<(String, Event)>) {
        let mut entries: Vec<Entry> = Vec::with_capacity(items.len() + spilled.len());
        let mut acks: Vec<Ack> = Vec::new();
        self.wal_buf.clear();
        let must_sync = !spilled.is_empty() || items.iter().any(|p| p.ack.is_some());
        for (id, event) in spilled {
            self.chain_event(&event, Some(&id), &mut entries);
        }
        for p in items {
            if let Some(a) = p.ack {
                acks.push(a);
            }
            self.chain_event(&p.event, None, &mut entries);
        }
        let buf = std::mem::take(&mut self.wal_buf);
        let result = self.wal.append(&buf, must_sync);
        self.wal_buf = buf;
        let answer = match &result {
            Ok(()) => Ok(()),
            Err(e) => {
                Counters::add(&self.shared.counters.journal_errors, 1);
                warn!(target: "audit", error = %e, "audit journal append failed");
                Err(e.to_string())
            }
        };
        for a in acks {
            let _ = a.send(answer.clone());
        }
        self.write_sinks(&entries);
        if let Some(last) = entries.last() {
            self.last_line = Some(last.record.line.clone());
        }
        Counters::add(&self.shared.counters.written, entries.len() as u64);
        self.shared
            .counters
            .last_seq
            .store(self.seq, Ordering::Relaxed);
        self.dirty = true;
    }

    fn chain_event(&mut self, event: &Event, spill_id: Option<&str>, entries: &mut Vec<Entry>) {
        let alerts = self.detector.observe(event);
        self.chain_one(event, spill_id, entries);
        for alert in alerts {
            let c = &self.shared.counters;
            match alert.anomaly.as_ref().map(|a| a.rule.as_str()) {
                Some("burst") => Counters::add(&c.anomaly_burst, 1),
                Some("off_hours") => Counters::add(&c.anomaly_off_hours, 1),
                Some("token_reuse") => Counters::add(&c.anomaly_token_reuse, 1),
                _ => {}
            }
            self.chain_one(&alert, None, entries);
        }
    }

    fn chain_one(&mut self, event: &Event, spill_id: Option<&str>, entries: &mut Vec<Entry>) {
        self.seq += 1;
        let record = Record::chain(self.seq, self.head, event);
        self.head = record.hash;
        wal_line(&mut self.wal_buf, spill_id, &record);
        entries.push(Entry::new(record, event));
        self.since_checkpoint += 1;
    }

    fn write_sinks(&mut self, entries: &[Entry]) {
        let (Some(first), Some(last)) = (entries.first(), entries.last()) else {
            return;
        };
        let (first, last) = (first.record.seq, last.record.seq);
        for slot in &mut self.slots {
            if slot.failed || (slot.keeps && slot.written != Some(first - 1)) {
                continue;
            }
            match slot.sink.write(entries) {
                Ok(()) => slot.written = Some(last),
                Err(e) => {
                    slot.failed = true;
                    slot.last_retry = Some(Instant::now());
                    if let Some((_, errors, _)) = self.shared.counters.sink(slot.name) {
                        Counters::add(errors, 1);
                    }
                    warn!(target: "audit", sink = slot.name, error = %e, "audit sink failed; it will be caught up from the journal");
                }
            }
        }
        self.publish_lag();
    }

    fn publish_lag(&self) {
        for slot in &self.slots {
            if let Some((_, _, lag)) = self.shared.counters.sink(slot.name) {
                let behind = match slot.written {
                    Some(w) if slot.keeps => self.seq.saturating_sub(w),
                    None if slot.keeps => self.seq,
                    _ => 0,
                };
                lag.store(behind, Ordering::Relaxed);
            }
        }
    }

    fn housekeeping(&mut self) {
        if self
            .slots
            .iter()
            .any(|s| !s.failed && s.sink.wants_rotation())
        {
            self.checkpoint();
            self.sync_point();
            for slot in self
                .slots
                .iter_mut()
                .filter(|s| !s.failed && s.sink.wants_rotation())
            {
                if let Err(e) = slot.sink.rotate() {
                    warn!(target: "audit", sink = slot.name, error = %e, "audit file rotation failed");
                    if let Some((_, errors, _)) = self.shared.counters.sink(slot.name) {
                        Counters::add(errors, 1);
                    }
                }
            }
        }
        let cp_due = self.since_checkpoint >= self.checkpoint_every
            || (self.since_checkpoint > 0
                && self.last_checkpoint.elapsed() >= self.checkpoint_interval);
        if cp_due {
            self.checkpoint();
        }
        if self.dirty && self.last_sync.elapsed() >= SYNC_INTERVAL {
            self.sync_point();
        }
        if self.slots.iter().any(|s| s.failed) {
            self.retry_failed();
        }
    }

    /// Appends a signed checkpoint over the current head, makes everything
    /// durable, and records it in the side file.
    fn checkpoint(&mut self) {
        if self.seq == 0 {
            return;
        }
        let cp = self.signer.sign(self.seq, &hex::encode(self.head));
        let event = Event {
            checkpoint: Some(Box::new(cp.clone())),
            ..Event::new(EventKind::Checkpoint)
        };
        self.process(vec![Pending { event, ack: None }], Vec::new());
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        // The side file names it once the JSONL copy is durable (next sync
        // point): it must never name a record a crash could take back.
        self.pending_side.push(SideEntry {
            at_seq: self.seq,
            at_hash: hex::encode(self.head),
            checkpoint: cp,
        });
        Counters::add(&self.shared.counters.checkpoints, 1);
    }

    /// Appends the checkpoints whose records the JSONL sink holds durably.
    fn write_side_entries(&mut self) {
        if self.pending_side.is_empty() {
            return;
        }
        let durable_through = self
            .slots
            .iter()
            .find(|s| s.name == "jsonl")
            .map_or(self.seq, |s| s.synced);
        let (ready, later): (Vec<SideEntry>, Vec<SideEntry>) =
            std::mem::take(&mut self.pending_side)
                .into_iter()
                .partition(|e| e.at_seq <= durable_through);
        self.pending_side = later;
        if ready.is_empty() {
            return;
        }
        if let Err(e) = append_side(&self.side_file, &ready) {
            Counters::add(&self.shared.counters.journal_errors, 1);
            warn!(target: "audit", error = %e, "could not append to the checkpoint file");
        }
    }

    /// Syncs every sink, then compacts the WAL to what some sink lacks.
    fn sync_point(&mut self) {
        for slot in self.slots.iter_mut().filter(|s| !s.failed) {
            match slot.sink.sync() {
                Ok(()) => slot.synced = slot.written.unwrap_or(0),
                Err(e) => {
                    slot.failed = true;
                    slot.last_retry = Some(Instant::now());
                    if let Some((_, errors, _)) = self.shared.counters.sink(slot.name) {
                        Counters::add(errors, 1);
                    }
                    warn!(target: "audit", sink = slot.name, error = %e, "audit sink sync failed");
                }
            }
        }
        let keep_after = self
            .slots
            .iter()
            .filter(|s| s.keeps)
            .map(|s| {
                if s.failed {
                    s.synced.min(s.written.unwrap_or(0))
                } else {
                    s.synced
                }
            })
            .min()
            .unwrap_or(self.seq);
        self.write_side_entries();
        // Only when it frees something: while a sink is down the WAL keeps
        // growing and is not rewritten every second for nothing.
        if self.wal.grown > 0 && keep_after > self.compacted_through {
            let result = match (&self.last_line, keep_after >= self.seq) {
                // Every sink holds everything: only the anchor stays.
                (Some(line), true) => self.wal.reset_to(line),
                _ => self.wal.compact(keep_after),
            };
            match result {
                Ok(()) => self.compacted_through = keep_after,
                Err(e) => {
                    Counters::add(&self.shared.counters.journal_errors, 1);
                    warn!(target: "audit", error = %e, "audit journal compaction failed");
                }
            }
        }
        self.last_sync = Instant::now();
        self.dirty = false;
    }

    /// Reconnects failed sinks and replays what they missed from the WAL.
    fn retry_failed(&mut self) {
        let now = Instant::now();
        let mut recovered_any = false;
        for i in 0..self.slots.len() {
            let slot = &mut self.slots[i];
            if !slot.failed
                || slot
                    .last_retry
                    .is_some_and(|t| now.duration_since(t) < slot.retry_delay)
            {
                continue;
            }
            slot.last_retry = Some(now);
            let attempt = (|| -> Result<u64, AuditError> {
                slot.sink.reset()?;
                let position = slot.sink.last()?.map_or(0, |(s, _)| s);
                if slot.keeps && position < self.seq {
                    let missing: Vec<Entry> = self
                        .wal
                        .records_after(position)?
                        .into_iter()
                        .map(Entry::from_record)
                        .collect();
                    if missing
                        .first()
                        .is_some_and(|e| e.record.seq != position + 1)
                    {
                        warn!(target: "audit", sink = slot.name, from = position + 1,
                              "audit sink lacks records the journal no longer holds");
                    }
                    slot.sink.write(&missing)?;
                }
                slot.sink.sync()?;
                Ok(if slot.keeps { self.seq } else { position })
            })();
            match attempt {
                Ok(position) => {
                    slot.failed = false;
                    slot.written = Some(position.max(slot.written.unwrap_or(0)));
                    if slot.keeps {
                        slot.written = Some(self.seq);
                    }
                    slot.synced = slot.written.unwrap_or(0);
                    slot.retry_delay = RETRY_INTERVAL;
                    recovered_any = true;
                    warn!(target: "audit", sink = slot.name, "audit sink is back and caught up");
                }
                Err(e) => {
                    slot.retry_delay = (slot.retry_delay * 2).min(RETRY_MAX);
                    if let Some((_, errors, _)) = self.shared.counters.sink(slot.name) {
                        Counters::add(errors, 1);
                    }
                    warn!(target: "audit", sink = slot.name, error = %e, retry_in = ?slot.retry_delay, "audit sink still failing");
                }
            }
        }
        if recovered_any {
            self.publish_lag();
        }
    }
}

fn append_side(path: &PathBuf, entries: &[SideEntry]) -> Result<(), AuditError> {
    let mut bytes = Vec::new();
    for entry in entries {
        serde_json::to_writer(&mut bytes, entry).map_err(|e| AuditError::Sink {
            sink: "checkpoints",
            reason: e.to_string(),
        })?;
        bytes.push(b'\n');
    }
    let mut f = OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| AuditError::io(path, e))?;
    f.write_all(&bytes)
        .and_then(|()| f.sync_data())
        .map_err(|e| AuditError::io(path, e))
}
