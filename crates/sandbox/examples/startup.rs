//! What the sandbox adds to starting a process: `/bin/true` spawned and
//! reaped N times plain and sandboxed (plan, then spawn to exit).
//!
//!     cargo run --release -p warden-sandbox --example startup [N]

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use warden_sandbox::{describe_spawn_error, Plan, SandboxSpec};

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(50);
    let spec = SandboxSpec::default();
    let (mut plain, mut plan, mut sandboxed) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..n {
        let t = Instant::now();
        let status = Command::new("/bin/true")
            .stdin(Stdio::null())
            .status()
            .expect("spawn");
        assert!(status.success());
        plain.push(t.elapsed());

        let t = Instant::now();
        let p = Plan::new(&spec, "/bin/true", &[], None, None).expect("plan");
        plan.push(t.elapsed());
        let (mut cmd, _spawned) = p.command();
        let t = Instant::now();
        let status = cmd
            .stdin(Stdio::null())
            .status()
            .unwrap_or_else(|e| panic!("{}", describe_spawn_error(&e)));
        assert!(status.success());
        sandboxed.push(t.elapsed());
    }
    let (plain, plan, sandboxed) = (median(plain), median(plan), median(sandboxed));
    println!(
        "/bin/true, median of {n}: plain {plain:?}; sandboxed: plan {plan:?} + spawn to exit {sandboxed:?} (adds {:?})",
        (plan + sandboxed).saturating_sub(plain)
    );
}
