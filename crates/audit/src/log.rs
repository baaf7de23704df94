//! [`AuditLog`]: the handle the request path holds. It never does more
//! than a bounded queue push (or, when the queue is full, one append to the
//! spill journal); the writer thread ([`crate::writer`]) does the rest.

use std::collections::{HashMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::value::RawValue;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::error::AuditError;
use crate::event::{Event, EventKind};
use crate::journal::Spill;
use crate::metrics::{Counters, MetricsSnapshot};
use crate::redact::Redactor;
use crate::scrub::SecretScrubber;
use crate::settings::{
    ArgumentsPolicy, AuditSettings, AuthFailureLimit, Durability, DurabilityPolicy, PostgresUrl,
};
use crate::sink::AuditSink;

/// Sources tracked by the auth-failure limiter before it prunes.
const MAX_AUTH_SOURCES: usize = 10_000;

pub(crate) type Ack = oneshot::Sender<Result<(), String>>;

pub(crate) struct Pending {
    pub event: Event,
    pub ack: Option<Ack>,
}

pub(crate) enum Control {
    /// Answered with the seq everything before the flush reached, once it
    /// is fsync'd in the journal and the JSONL file; the caller then waits
    /// for the other sinks.
    Flush(oneshot::Sender<u64>),
    Shutdown(oneshot::Sender<()>),
}

/// The journal's head — appended, and fsync'd — and a wake-up for the
/// sinks that follow it.
#[derive(Default)]
pub(crate) struct JournalSignal {
    appended: AtomicU64,
    durable: AtomicU64,
    /// Bumped by every [`JournalSignal::wake_all`], so a wake-up between a
    /// follower's checks and its wait is not lost.
    generation: AtomicU64,
    lock: Mutex<()>,
    cond: Condvar,
}

impl JournalSignal {
    /// Seq of the newest record fsync'd in the journal.
    pub fn durable(&self) -> u64 {
        self.durable.load(Ordering::Acquire)
    }

    /// Seq of the newest record appended to the journal (complete in the
    /// file, not necessarily fsync'd).
    pub fn appended(&self) -> u64 {
        self.appended.load(Ordering::Acquire)
    }

    /// What a follower may take: the fsync'd head, or the appended one.
    pub fn head(&self, durable_only: bool) -> u64 {
        match durable_only {
            true => self.durable(),
            false => self.appended(),
        }
    }

    /// The journal was fsync'd through `seq`.
    pub fn publish(&self, seq: u64) {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.durable.fetch_max(seq, Ordering::AcqRel);
        self.appended.fetch_max(seq, Ordering::AcqRel);
        self.cond.notify_all();
    }

    /// Records through `seq` are complete in the journal.
    pub fn publish_appended(&self, seq: u64) {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.appended.fetch_max(seq, Ordering::AcqRel);
        self.cond.notify_all();
    }

    /// Wakes every follower (a stop or a flush request).
    pub fn wake_all(&self) {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        self.generation.fetch_add(1, Ordering::AcqRel);
        self.cond.notify_all();
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Waits until the head a follower takes (see [`JournalSignal::head`])
    /// passes `seen`, a wake-up after `generation` was read, or `until`.
    pub fn wait_past(&self, seen: u64, durable_only: bool, generation: u64, until: Instant) {
        let guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        if self.head(durable_only) > seen
            || self.generation.load(Ordering::Acquire) != generation
            || now >= until
        {
            return;
        }
        let _ = self
            .cond
            .wait_timeout(guard, until - now)
            .unwrap_or_else(PoisonError::into_inner);
    }
}

/// How long the writer holds back a batch of async events (none waiting
/// for an ack) to write them in one journal append and one sink
/// transaction, and the batch size that ends the wait early.
pub(crate) const COALESCE_WINDOW: std::time::Duration = std::time::Duration::from_millis(1);
pub(crate) const COALESCE_MAX: usize = 64;

pub(crate) struct QueueState {
    pub items: VecDeque<Pending>,
    pub controls: Vec<Control>,
    /// The writer is waiting on the condvar.
    pub idle: bool,
    /// The writer holds back a small batch of async events to write them
    /// together; a durable event (one with an ack) or a control wakes it.
    pub coalescing: bool,
    /// No more events are queued (shutdown requested or every handle
    /// dropped); later events go to the spill journal.
    pub closed: bool,
    /// Every `AuditLog` handle is gone.
    pub abandoned: bool,
}

/// State shared by the handles and the writer thread.
pub(crate) struct Shared {
    pub queue: Mutex<QueueState>,
    pub wake: Condvar,
    pub capacity: usize,
    pub depth: AtomicUsize,
    pub spill: Spill,
    pub counters: Counters,
    pub epoch: Instant,
    /// Microseconds after `epoch` when the writer last found nothing queued.
    pub caught_up_at: AtomicU64,
    pub running: AtomicBool,
    pub journal: JournalSignal,
    /// Notified when a sink's thread syncs, fails or stops (flush waits).
    pub progress: tokio::sync::Notify,
}

impl Shared {
    pub fn lock(&self) -> MutexGuard<'_, QueueState> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the writer (taking the lock, so a wake-up is never lost
    /// between its check and its wait).
    pub fn notify(&self) {
        let _guard = self.lock();
        self.wake.notify_one();
    }

    /// Queues `item`, or gives it back when the queue is full or closed.
    pub(crate) fn push(&self, item: Pending) -> Option<Pending> {
        let mut q = self.lock();
        if q.closed || q.items.len() >= self.capacity {
            return Some(item);
        }
        let urgent = item.ack.is_some();
        q.items.push_back(item);
        self.depth.store(q.items.len(), Ordering::Relaxed);
        if q.idle || (q.coalescing && (urgent || q.items.len() >= COALESCE_MAX)) {
            q.idle = false;
            q.coalescing = false;
            self.wake.notify_one();
        }
        None
    }

    fn control(&self, c: Control) -> bool {
        let mut q = self.lock();
        if !self.running.load(Ordering::Acquire) {
            return false;
        }
        if matches!(c, Control::Shutdown(_)) {
            q.closed = true;
        }
        q.controls.push(c);
        self.wake.notify_one();
        true
    }

    pub fn now_us(&self) -> u64 {
        self.epoch.elapsed().as_micros() as u64
    }
}

/// The handle to the audit trail. Cheap to clone; every clone feeds the
/// same writer.
#[derive(Clone)]
pub struct AuditLog {
    handle: Arc<Handle>,
}

/// The last handle's drop tells the writer to finish what is queued.
struct Handle {
    shared: Arc<Shared>,
    durability: DurabilityPolicy,
    arguments: ArgumentsPolicy,
    redactor: Redactor,
    scrubber: OnceLock<Arc<dyn SecretScrubber>>,
    warned_no_scrubber: AtomicBool,
    auth: Mutex<AuthLimiter>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        let mut q = self.shared.lock();
        q.closed = true;
        q.abandoned = true;
        self.shared.wake.notify_one();
    }
}

/// The writer thread, as the caller sees it: wait for it to end and learn
/// why. Dropping it detaches the thread (it still finishes its work).
pub struct AuditWorker {
    done: Option<oneshot::Receiver<Result<(), AuditError>>>,
    thread: Option<JoinHandle<()>>,
}

impl AuditWorker {
    /// Resolves when the writer has stopped: `Ok` after a shutdown (or the
    /// last handle's drop), `Err` if it failed.
    pub async fn wait(mut self) -> Result<(), AuditError> {
        let result = match self.done.take() {
            Some(rx) => rx.await.unwrap_or_else(|_| {
                Err(AuditError::Sink {
                    sink: "writer",
                    reason: "the audit writer thread panicked".into(),
                })
            }),
            None => Ok(()),
        };
        if let Some(t) = self.thread.take() {
            // It has finished (or is about to): joining does not block.
            let _ = t.join();
        }
        result
    }

    pub fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(JoinHandle::is_finished)
    }
}

impl AuditLog {
    /// Opens the sinks and the journal, recovers what a crash left (WAL
    /// records a sink lacks, spilled events), and starts the writer thread.
    ///
    /// Blocks while recovering (file and database I/O): call it at startup,
    /// or from `spawn_blocking`. The PostgreSQL URL must be resolved
    /// ([`AuditSettings::set_postgres_url`]).
    pub fn start(settings: AuditSettings) -> Result<(AuditLog, AuditWorker), AuditError> {
        AuditLog::start_with_sinks(settings, Vec::new())
    }

    /// [`AuditLog::start`] with additional sinks (after the configured ones).
    pub fn start_with_sinks(
        settings: AuditSettings,
        extra: Vec<Box<dyn AuditSink>>,
    ) -> Result<(AuditLog, AuditWorker), AuditError> {
        if let Some(pg) = &settings.postgres {
            if let PostgresUrl::Reference(r) = &pg.url {
                return Err(AuditError::Settings(format!(
                    "audit.sinks.postgres.url: the reference {r:?} was not resolved (AuditSettings::set_postgres_url)"
                )));
            }
        }
        let shared = Arc::new(Shared {
            queue: Mutex::new(QueueState {
                items: VecDeque::with_capacity(settings.queue_capacity.min(1024)),
                controls: Vec::new(),
                idle: false,
                coalescing: false,
                closed: false,
                abandoned: false,
            }),
            wake: Condvar::new(),
            capacity: settings.queue_capacity,
            depth: AtomicUsize::new(0),
            spill: Spill::new(&settings.journal_dir),
            counters: Counters {
                sinks: crate::writer::sink_states(&settings, &extra),
                ..Counters::default()
            },
            epoch: Instant::now(),
            caught_up_at: AtomicU64::new(0),
            running: AtomicBool::new(true),
            journal: JournalSignal::default(),
            progress: tokio::sync::Notify::new(),
        });
        let handle = Arc::new(Handle {
            shared: shared.clone(),
            durability: settings.durability,
            arguments: settings.arguments,
            redactor: Redactor::new(),
            scrubber: OnceLock::new(),
            warned_no_scrubber: AtomicBool::new(false),
            auth: Mutex::new(AuthLimiter::new(settings.auth_failures)),
        });
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (done_tx, done_rx) = oneshot::channel();
        let thread_shared = shared.clone();
        let thread = std::thread::Builder::new()
            .name("warden-audit".into())
            .spawn(move || {
                let writer =
                    match crate::writer::Writer::open(settings, thread_shared.clone(), extra) {
                        Ok(w) => {
                            let _ = ready_tx.send(Ok(()));
                            w
                        }
                        Err(e) => {
                            thread_shared.running.store(false, Ordering::Release);
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                let result = writer.run();
                let _ = done_tx.send(result);
            })
            .map_err(|e| AuditError::io("warden-audit thread", e))?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok((
                AuditLog { handle },
                AuditWorker {
                    done: Some(done_rx),
                    thread: Some(thread),
                },
            )),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(AuditError::Sink {
                    sink: "writer",
                    reason: "the audit writer thread panicked while starting".into(),
                })
            }
        }
    }

    fn shared(&self) -> &Shared {
        &self.handle.shared
    }

    /// Records asynchronously: a bounded queue push. A full queue spills to
    /// the journal (one buffered append, no fsync) — never drops, never
    /// waits for the writer. Errors only if the spill append fails.
    pub fn record(&self, event: Event) -> Result<(), AuditError> {
        let Some(event) = self.admit(event) else {
            return Ok(());
        };
        let s = self.shared();
        Counters::add(&s.counters.recorded, 1);
        match s.push(Pending { event, ack: None }) {
            None => Ok(()),
            Some(p) => self.spill(&p.event, false),
        }
    }

    /// Records and returns once the record is durable: fsync'd in the
    /// writer's journal (group commit with the rest of its batch), or — when
    /// the queue is full — fsync'd in the spill journal.
    pub async fn record_durable(&self, event: Event) -> Result<(), AuditError> {
        let Some(event) = self.admit(event) else {
            return Ok(());
        };
        let s = self.shared();
        Counters::add(&s.counters.recorded, 1);
        Counters::add(&s.counters.recorded_durable, 1);
        let (tx, rx) = oneshot::channel();
        match s.push(Pending {
            event,
            ack: Some(tx),
        }) {
            None => match rx.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(reason)) => Err(AuditError::Sink {
                    sink: "journal",
                    reason,
                }),
                Err(_) => Err(AuditError::Closed),
            },
            Some(p) => self.spill(&p.event, true),
        }
    }

    /// `record_durable` or `record`, as the settings say for the event's
    /// risk tier.
    pub async fn record_for_tier(&self, event: Event) -> Result<(), AuditError> {
        match self.handle.durability.for_tier(event.risk_tier) {
            Durability::Sync => self.record_durable(event).await,
            Durability::Async => self.record(event),
        }
    }

    /// The durability configured for `tier`.
    pub fn durability(&self, tier: Option<crate::event::RiskTier>) -> Durability {
        self.handle.durability.for_tier(tier)
    }

    /// The arguments to put in a record: `None` unless `audit.arguments`
    /// is `redacted`, then the arguments with the values of sensitive keys
    /// redacted and every secret the installed scrubber finds in any other
    /// string or key replaced by `[redacted:<class>]`. Without a scrubber
    /// ([`AuditLog::set_secret_scrubber`]) the arguments are left out:
    /// never stored unscanned.
    pub fn recorded_arguments(&self, arguments: &RawValue) -> Option<Value> {
        match self.handle.arguments {
            ArgumentsPolicy::Omit => None,
            ArgumentsPolicy::Redacted => {
                let Some(scrubber) = self.handle.scrubber.get() else {
                    Counters::add(&self.shared().counters.arguments_withheld, 1);
                    if !self.handle.warned_no_scrubber.swap(true, Ordering::Relaxed) {
                        tracing::warn!(target: "audit",
                            "audit.arguments is `redacted` but no secret scrubber is installed: arguments are left out of records");
                    }
                    return None;
                };
                let mut v: Value = serde_json::from_str(arguments.get()).ok()?;
                self.handle.redactor.redact_value(&mut v);
                crate::scrub::scrub_value(scrubber.as_ref(), &mut v);
                Some(v)
            }
        }
    }

    /// Installs the secret detector `recorded_arguments` runs over every
    /// argument string (the binary installs the guard crate's). Once per
    /// trail: returns `false`, changing nothing, if one is installed.
    pub fn set_secret_scrubber(&self, scrubber: Arc<dyn SecretScrubber>) -> bool {
        self.handle.scrubber.set(scrubber).is_ok()
    }

    fn spill(&self, event: &Event, durable: bool) -> Result<(), AuditError> {
        let s = self.shared();
        s.spill.append(event, durable)?;
        Counters::add(&s.counters.spilled, 1);
        s.notify();
        Ok(())
    }

    /// Returns once everything recorded before the call is written to every
    /// healthy sink and synced. A sink that is down or hung is not waited
    /// for beyond its own timeouts (the journal keeps what it lacks).
    pub async fn flush(&self) {
        let (tx, rx) = oneshot::channel();
        if !self.shared().control(Control::Flush(tx)) {
            return;
        }
        let Ok(target) = rx.await else { return };
        let s = self.shared();
        for sink in &s.counters.sinks {
            sink.flush_target.fetch_max(target, Ordering::AcqRel);
        }
        s.journal.wake_all();
        loop {
            let progress = s.progress.notified();
            tokio::pin!(progress);
            progress.as_mut().enable();
            if s.counters.sinks.iter().all(|sink| sink.settled(target)) {
                return;
            }
            // Registered before the check: a sink that syncs, fails or
            // stops in between still wakes this.
            progress.await;
        }
    }

    /// Flushes, writes a final checkpoint and stops the writer. Events
    /// recorded afterwards (through clones) go to the journal, recovered at
    /// the next start.
    pub async fn shutdown(self) {
        let (tx, rx) = oneshot::channel();
        if self.shared().control(Control::Shutdown(tx)) {
            let _ = rx.await;
        }
    }

    /// Events waiting for the writer.
    pub fn queue_depth(&self) -> usize {
        self.shared().depth.load(Ordering::Relaxed)
    }

    /// How long the writer has been behind: zero when nothing waits,
    /// otherwise the time since it last had nothing to do.
    pub fn lag(&self) -> Duration {
        let s = self.shared();
        if self.queue_depth() == 0 && !s.spill.is_pending() {
            return Duration::ZERO;
        }
        let since = s
            .now_us()
            .saturating_sub(s.caught_up_at.load(Ordering::Relaxed));
        Duration::from_micros(since)
    }

    /// Counters for `/metrics`.
    pub fn metrics_snapshot(&self) -> MetricsSnapshot {
        let s = self.shared();
        s.counters.snapshot(
            self.queue_depth(),
            self.lag(),
            s.journal.durable(),
            s.now_us(),
        )
    }

    /// Auth failures beyond the per-source limit are counted, not queued.
    fn admit(&self, mut event: Event) -> Option<Event> {
        if event.kind != EventKind::AuthFailure {
            return Some(event);
        }
        let source = event
            .client_addr
            .as_deref()
            .map(source_of)
            .unwrap_or_default();
        let verdict = self
            .handle
            .auth
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .check(&source, Instant::now());
        match verdict {
            None => {
                Counters::add(&self.shared().counters.auth_failures_suppressed, 1);
                None
            }
            Some(0) => Some(event),
            Some(suppressed) => {
                event.lifecycle.get_or_insert_with(Box::default).suppressed = Some(suppressed);
                Some(event)
            }
        }
    }
}

fn source_of(addr: &str) -> String {
    if let Ok(sa) = addr.parse::<SocketAddr>() {
        return sa.ip().to_string();
    }
    if let Ok(ip) = addr.parse::<IpAddr>() {
        return ip.to_string();
    }
    addr.to_owned()
}

/// Fixed window per source.
struct AuthLimiter {
    limit: AuthFailureLimit,
    sources: HashMap<String, AuthWindow>,
}

struct AuthWindow {
    start: Instant,
    count: u64,
    suppressed: u64,
}

impl AuthLimiter {
    fn new(limit: AuthFailureLimit) -> AuthLimiter {
        AuthLimiter {
            limit,
            sources: HashMap::new(),
        }
    }

    /// `Some(suppressed since the last record)` to record, `None` to count.
    fn check(&mut self, source: &str, now: Instant) -> Option<u64> {
        let window = self.limit.window;
        if !self.sources.contains_key(source) && self.sources.len() >= MAX_AUTH_SOURCES {
            self.sources
                .retain(|_, w| now.duration_since(w.start) < window || w.suppressed > 0);
        }
        let key = if self.sources.contains_key(source) || self.sources.len() < MAX_AUTH_SOURCES {
            source
        } else {
            "*"
        };
        let w = self.sources.entry(key.to_owned()).or_insert(AuthWindow {
            start: now,
            count: 0,
            suppressed: 0,
        });
        if now.duration_since(w.start) >= window {
            w.start = now;
            w.count = 0;
        }
        w.count += 1;
        if w.count > self.limit.per_source {
            w.suppressed += 1;
            return None;
        }
        Some(std::mem::take(&mut w.suppressed))
    }
}
