//! Drives one target at one concurrency level and measures it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use crate::client::{CallError, Connection};
use crate::plan::{ClientEra, Plan, Target};

/// Pause after a failed reconnect, so a dead target is not hammered.
const RECONNECT_BACKOFF: Duration = Duration::from_millis(50);

/// The run could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    #[error("target {target} ({url}): could not set up a {} client: {source}", era.as_str())]
    Setup {
        target: String,
        url: String,
        era: ClientEra,
        #[source]
        source: CallError,
    },
    #[error("target {target} ({url}): the first tools/call of {tool} failed: {source}")]
    Probe {
        target: String,
        url: String,
        tool: String,
        #[source]
        source: CallError,
    },
    #[error("a load worker failed: {0}")]
    Worker(String),
}

/// What one (target, concurrency) pair did inside the measured window.
#[derive(Debug, Clone)]
pub struct Measurement {
    pub target: String,
    pub url: String,
    pub era: ClientEra,
    /// The target's second reference (`--target-reference`).
    pub reference: Option<String>,
    pub concurrency: usize,
    pub window: Duration,
    /// Latencies of the successful calls, in nanoseconds, sorted.
    pub latencies_ns: Vec<u64>,
    pub errors: u64,
    /// The first error seen, to tell the operator what went wrong.
    pub first_error: Option<String>,
}

#[derive(Default)]
struct WorkerStats {
    latencies_ns: Vec<u64>,
    errors: u64,
    first_error: Option<String>,
}

/// Opens `concurrency` clients on `target` (each on its own connection),
/// applies load for the warm-up and the measured window, and returns what
/// completed inside the window.
pub async fn measure(
    target: &Arc<Target>,
    concurrency: usize,
    plan: &Plan,
) -> Result<Measurement, RunError> {
    let mut opening = JoinSet::new();
    for _ in 0..concurrency {
        let target = Arc::clone(target);
        let plan = plan.clone();
        opening.spawn(async move { Connection::open(target, &plan).await });
    }
    let mut connections = Vec::with_capacity(concurrency);
    while let Some(opened) = opening.join_next().await {
        let conn = opened
            .map_err(|e| RunError::Worker(e.to_string()))?
            .map_err(|source| RunError::Setup {
                target: target.name.clone(),
                url: target.url.clone(),
                era: target.era,
                source,
            })?;
        connections.push(conn);
    }
    // One call before the clock starts, so that a wrong tool name or
    // missing credential is reported as such rather than as a wall of errors.
    if let Some(first) = connections.first_mut() {
        first.call(0).await.map_err(|source| RunError::Probe {
            target: target.name.clone(),
            url: target.url.clone(),
            tool: target.tool.clone(),
            source,
        })?;
    }

    let start = Instant::now() + plan.warmup;
    // A fixed number of calls: the window is however long they take.
    let (end, budget) = match plan.calls {
        Some(n) => (start + FOREVER, Some(Arc::new(AtomicU64::new(n)))),
        None => (start + plan.duration, None),
    };
    let mut workers = JoinSet::new();
    for conn in connections {
        workers.spawn(worker(conn, start, end, budget.clone()));
    }
    let mut total = WorkerStats::default();
    while let Some(done) = workers.join_next().await {
        let stats = done.map_err(|e| RunError::Worker(e.to_string()))?;
        total.latencies_ns.extend(stats.latencies_ns);
        total.errors += stats.errors;
        if total.first_error.is_none() {
            total.first_error = stats.first_error;
        }
    }
    total.latencies_ns.sort_unstable();
    let window = if budget.is_some() {
        start.elapsed()
    } else {
        plan.duration
    };
    Ok(Measurement {
        target: target.name.clone(),
        url: target.url.clone(),
        era: target.era,
        reference: target.reference.clone(),
        concurrency,
        window,
        latencies_ns: total.latencies_ns,
        errors: total.errors,
        first_error: total.first_error,
    })
}

/// The end of a window measured by a number of calls instead.
const FOREVER: Duration = Duration::from_secs(365 * 24 * 3600);

/// Calls in a loop until `end` (or until `budget`, the calls left to make,
/// is spent); counts the calls that started at or after `start` and
/// finished by `end`.
async fn worker(
    mut conn: Connection,
    start: Instant,
    end: Instant,
    budget: Option<Arc<AtomicU64>>,
) -> WorkerStats {
    let mut stats = WorkerStats::default();
    let mut id: u64 = 1;
    loop {
        let began = Instant::now();
        if began >= end {
            break;
        }
        if let Some(left) = &budget {
            let took =
                left.fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1));
            if took.is_err() {
                break;
            }
        }
        if conn.is_closed() {
            if let Err(e) = conn.reconnect().await {
                if began >= start {
                    note_error(&mut stats, &e);
                }
                tokio::time::sleep(RECONNECT_BACKOFF).await;
                continue;
            }
        }
        let outcome = conn.call(id).await;
        id += 1;
        let finished = Instant::now();
        let counted = began >= start && finished <= end;
        match outcome {
            Ok(()) if counted => {
                let ns = u64::try_from((finished - began).as_nanos()).unwrap_or(u64::MAX);
                stats.latencies_ns.push(ns);
            }
            Ok(()) => {}
            Err(e) => {
                if counted {
                    note_error(&mut stats, &e);
                }
                if e.breaks_connection() {
                    // Timeouts leave the connection mid-response: start over.
                    if let Err(e) = conn.reconnect().await {
                        if counted {
                            note_error(&mut stats, &e);
                        }
                        tokio::time::sleep(RECONNECT_BACKOFF).await;
                    }
                }
            }
        }
    }
    stats
}

fn note_error(stats: &mut WorkerStats, e: &CallError) {
    stats.errors += 1;
    if stats.first_error.is_none() {
        stats.first_error = Some(e.to_string());
    }
}
