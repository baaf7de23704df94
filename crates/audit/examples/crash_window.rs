//! What `kill -9` costs the default tiers: a child process records
//! medium-tier events (`async` by default) at a steady rate and reports
//! each one once `record_for_tier` has returned (as the gateway answers a
//! call right after); it is SIGKILLed at a random moment; the trail is then
//! recovered and every reported event looked for.
//!
//! `cargo run --release -p warden-audit --example crash_window [rounds] [events/s]`
//!
//! Prints, per round, how many reported events have no record and how long
//! before the kill the oldest of them was recorded.

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use warden_audit::{AuditLog, AuditSettings, Event, EventKind, Record, RiskTier};

const CHILD: &str = "WARDEN_CRASH_WINDOW_DIR";

fn now_us() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as u64)
        .unwrap_or(0)
}

fn event(i: u64) -> Event {
    Event {
        correlation_id: Some(format!("c{i}")),
        tool: Some("read_file".into()),
        risk_tier: Some(RiskTier::Medium),
        ..Event::new(EventKind::Call)
    }
}

fn settings(dir: &Path) -> AuditSettings {
    let mut s = AuditSettings::in_dir(dir);
    s.anomaly = Default::default();
    s
}

fn child(dir: &Path, rate: u64) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let log = AuditLog::start(settings(dir)).unwrap().0;
    let mut out = BufWriter::new(std::io::stdout().lock());
    let per_ms = rate.div_ceil(1000).max(1);
    let start = Instant::now();
    let mut i = 0u64;
    rt.block_on(async {
        loop {
            for _ in 0..per_ms {
                log.record_for_tier(event(i)).await.unwrap();
                let _ = writeln!(out, "Q {i} {}", now_us());
                i += 1;
            }
            let _ = out.flush();
            let due = start + Duration::from_micros(i * 1_000_000 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                std::thread::sleep(wait);
            }
        }
    });
}

fn main() {
    if let Some(dir) = std::env::var_os(CHILD) {
        let rate = std::env::args()
            .nth(2)
            .and_then(|a| a.parse().ok())
            .unwrap_or(20_000);
        return child(Path::new(&dir), rate);
    }
    let rounds: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(10);
    let rate: u64 = std::env::args()
        .nth(2)
        .and_then(|a| a.parse().ok())
        .unwrap_or(20_000);
    let exe = std::env::current_exe().unwrap();
    let (mut total, mut lost_total, mut worst) = (0usize, 0usize, 0u64);
    for round in 0..rounds {
        let dir = tempfile::tempdir().unwrap();
        let mut c = Command::new(&exe)
            .args(["child", &rate.to_string()])
            .env(CHILD, dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = c.stdout.take().unwrap();
        let reader = std::thread::spawn(move || {
            let mut seen = Vec::new();
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let mut parts = line.split(' ').skip(1);
                if let (Some(Ok(i)), Some(Ok(t))) = (
                    parts.next().map(str::parse::<u64>),
                    parts.next().map(str::parse::<u64>),
                ) {
                    seen.push((i, t));
                }
            }
            seen
        });
        std::thread::sleep(Duration::from_millis(700 + (round as u64 * 137) % 900));
        let killed_at = now_us();
        c.kill().unwrap();
        c.wait().unwrap();
        let reported = reader.join().unwrap();

        let s = settings(dir.path());
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(AuditLog::start(s.clone()).unwrap().0.shutdown());
        let recorded: std::collections::HashSet<String> = s
            .jsonl_files()
            .iter()
            .flat_map(|p| {
                std::fs::read_to_string(p)
                    .unwrap_or_default()
                    .lines()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .filter_map(|l| Record::parse(&l).ok()?.event().ok()?.correlation_id)
            .collect();
        let lost: Vec<&(u64, u64)> = reported
            .iter()
            .filter(|(i, _)| !recorded.contains(&format!("c{i}")))
            .collect();
        let oldest = lost
            .iter()
            .map(|(_, t)| killed_at.saturating_sub(*t))
            .max()
            .unwrap_or(0);
        println!(
            "round {round}: {} reported, {} without a record, the oldest recorded {:.1} ms before the kill",
            reported.len(),
            lost.len(),
            oldest as f64 / 1000.0
        );
        total += reported.len();
        lost_total += lost.len();
        worst = worst.max(oldest);
    }
    println!(
        "{rounds} rounds at {rate}/s: {lost_total} of {total} reported async records lost to SIGKILL; none recorded more than {:.1} ms before the kill",
        worst as f64 / 1000.0
    );
}
