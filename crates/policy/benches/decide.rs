//! One decision against a 200-policy set with argument conditions.
//!
//! 100 roles, each with one grant over 2 tools of one of 20 servers, with
//! three argument constraints (allowed repository, path prefix, maximum) —
//! 200 compiled policies (discover + use per grant) plus the built-in
//! tenancy forbid. The caller holds 3 roles; arguments carry the
//! constrained values and some noise the policies never read.
//!
//! Target (issue 5): ≤ 20 µs p50 per decision. Besides criterion's
//! estimates, the bench prints p50/p99 over 100 000 plain decisions.

use std::hint::black_box;
use std::path::Path;
use std::time::{Instant, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion};
use serde_json::value::RawValue;
use warden_identity::{AuthMethod, Principal, PrincipalData};
use warden_policy::{
    Action, Catalog, Decision, PolicyEngine, RawAuthorization, Request, RequestContext,
};

const ROLES: usize = 100;

/// 200 role policies over `SERVERS` servers (20: spread out; 1: every
/// policy on the server called).
fn engine(servers: usize) -> PolicyEngine {
    let mut catalog = String::from("servers:\n");
    for s in 0..servers {
        catalog.push_str(&format!("  - name: srv{s}\n    tools:\n"));
        for t in 0..10 {
            let risk = ["low", "medium", "high"][t % 3];
            catalog.push_str(&format!("      - {{ name: tool{t}, risk: {risk} }}\n"));
        }
    }
    let mut auth = String::from("arguments: { repo: string, path: path, limit: long }\nroles:\n");
    for r in 0..ROLES {
        let s = r % servers;
        let t = r % 10;
        auth.push_str(&format!(
            "  role{r}:\n    grants:\n      - tools: [srv{s}/tool{t}, srv{s}/tool{u}]\n        max_risk: high\n        arguments:\n          repo: {{ one_of: [acme/r{r}, acme/shared] }}\n          path: {{ prefix: /work/r{r}/ }}\n          limit: {{ max: {max}, optional: true }}\n",
            u = (t + 1) % 10,
            max = 100 + r
        ));
    }
    let raw: RawAuthorization = serde_saphyr::from_str(&auth).expect("authorization");
    let settings = raw.resolve(Path::new(".")).expect("resolves");
    let catalog: Catalog = serde_saphyr::from_str(&catalog).expect("catalog");
    let engine = PolicyEngine::compile(&settings, &catalog).expect("compiles");
    assert_eq!(engine.policy_count(), 2 * ROLES + 1);
    engine
}

fn principal() -> Principal {
    Principal::new(PrincipalData {
        subject: "alice".into(),
        tenant: Some("acme".into()),
        roles: vec!["role7".into(), "role42".into(), "role99".into()],
        groups: vec!["engineering".into()],
        scopes: vec!["mcp:tools".into()],
        client_id: Some("ide".into()),
        agent_id: None,
        method: AuthMethod::Bearer,
    })
}

/// This thread's time on a CPU, in ns (Linux): excludes time spent waiting
/// for a CPU, which on a shared, loaded machine dominates wall time.
fn thread_cpu_ns() -> Option<u64> {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Mean CPU time per decision over 50 000 decisions, in µs.
fn cpu_mean(engine: &PolicyEngine, req: &Request<'_>) -> Option<f64> {
    const N: u32 = 50_000;
    let start = thread_cpu_ns()?;
    for _ in 0..N {
        black_box(engine.decide(black_box(req)));
    }
    let end = thread_cpu_ns()?;
    Some((end - start) as f64 / f64::from(N) / 1000.0)
}

fn percentiles(engine: &PolicyEngine, req: &Request<'_>) -> (f64, f64) {
    let mut samples: Vec<u128> = Vec::with_capacity(100_000);
    for _ in 0..100_000 {
        let t = Instant::now();
        black_box(engine.decide(black_box(req)));
        samples.push(t.elapsed().as_nanos());
    }
    samples.sort_unstable();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q) as usize] as f64 / 1000.0;
    (at(0.50), at(0.99))
}

fn bench(c: &mut Criterion) {
    for servers in [20, 1] {
        scenario(c, servers);
    }
}

fn scenario(c: &mut Criterion, servers: usize) {
    let engine = engine(servers);
    let p = principal();
    let server = if servers == 1 { "srv0" } else { "srv2" };
    let args = RawValue::from_string(
        r#"{"repo":"acme/r42","path":"/work/r42/src/lib.rs","limit":50,"body":"some text the policies never read","flags":[1,2,3]}"#
            .to_owned(),
    )
    .expect("json");
    let allowed = Request {
        principal: &p,
        action: Action::CallTool,
        server,
        resource: "tool2",
        arguments: Some(&args),
        annotations: None,
        context: RequestContext::at(SystemTime::now()),
    };
    assert!(matches!(engine.decide(&allowed), Decision::Allow { .. }));
    let bad_args = RawValue::from_string(
        r#"{"repo":"acme/r42","path":"/work/r42/../r7/secret","limit":50}"#.to_owned(),
    )
    .expect("json");
    let denied = Request {
        arguments: Some(&bad_args),
        ..allowed
    };
    assert!(matches!(engine.decide(&denied), Decision::Deny { .. }));

    for (name, req) in [("allow", &allowed), ("deny", &denied)] {
        let (p50, p99) = percentiles(&engine, req);
        let cpu = cpu_mean(&engine, req).map_or("n/a".into(), |c| format!("{c:.2} µs"));
        println!(
            "decide/200 policies on {servers} server(s)/{name}: wall p50 {p50:.2} µs, p99 {p99:.2} µs; CPU mean {cpu}"
        );
    }

    let mut g = c.benchmark_group(format!("decide/200 policies on {servers} server(s)"));
    g.bench_function("allow (3 roles, argument conditions)", |b| {
        b.iter(|| engine.decide(black_box(&allowed)));
    });
    g.bench_function("deny (path escapes the prefix)", |b| {
        b.iter(|| engine.decide(black_box(&denied)));
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
