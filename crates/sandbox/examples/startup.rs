//! What the sandbox adds to starting a process: `/bin/true` spawned and
//! reaped N times plain and sandboxed (plan, then spawn to exit). Then what
//! the watcher adds to a call it looks at: inside one sandbox, Python
//! times opening a file in its `/tmp` for writing (watched: a round trip
//! to Warden's watcher thread) and for reading (not watched).
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
        let (mut cmd, _spawned) = p.command(|_| {}).expect("command");
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
    watched_calls();
}

/// Per-open cost inside a sandbox, write (watched) against read.
fn watched_calls() {
    let script = "
import os, time
p = '/tmp/f'
open(p, 'w').close()
def per(flags):
    best = None
    for _ in range(5):
        t = time.perf_counter()
        for _ in range(2000):
            os.close(os.open(p, flags))
        d = (time.perf_counter() - t) / 2000 * 1e6
        best = d if best is None else min(best, d)
    return best
print('open for writing %.1f us, for reading %.1f us (best of 5 x 2000)' % (per(os.O_WRONLY), per(os.O_RDONLY)))
";
    let Ok(p) = Plan::new(
        &SandboxSpec::default(),
        "python3",
        &["-c".to_owned(), script.to_owned()],
        None,
        std::env::var_os("PATH").as_deref(),
    ) else {
        println!("python3 not found: the watched-call figure is skipped");
        return;
    };
    let env = p.env().to_vec();
    let (mut cmd, _spawned) = p.command(|_| {}).expect("command");
    let out = cmd
        .envs(env)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("{}", describe_spawn_error(&e)));
    print!(
        "inside the sandbox: {}",
        String::from_utf8_lossy(&out.stdout)
    );
}
