//! The `warden-bench` binary: parses the command line, runs the plan, and
//! prints a table (or JSON with `--json`).
#![forbid(unsafe_code)]

use anyhow::Context as _;
use clap::Parser as _;
use warden_bench::{Args, Plan};

fn main() -> std::process::ExitCode {
    match run() {
        Ok(code) => code,
        Err(e) => {
            eprintln!("warden-bench: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<std::process::ExitCode> {
    let args = Args::parse();
    let plan = Plan::resolve(&args)?;
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    runtime.enable_all();
    if let Some(n) = args.threads {
        runtime.worker_threads(n.max(1));
    }
    let runtime = runtime.build().context("cannot start the runtime")?;
    let report = runtime.block_on(warden_bench::run(&plan, |line| eprintln!("{line}")))?;
    if args.json {
        println!("{}", report.to_json());
    } else {
        print!("{}", report.to_table());
    }
    for row in &report.rows {
        if let Some(e) = &row.first_error {
            eprintln!(
                "{} at concurrency {}: {} errors, first: {e}",
                row.target, row.concurrency, row.errors
            );
        }
    }
    // A row without a single successful call means the setup is wrong.
    let broken = report.rows.iter().any(|r| r.requests == 0);
    Ok(if broken {
        eprintln!("warden-bench: some targets completed no successful call");
        std::process::ExitCode::FAILURE
    } else {
        std::process::ExitCode::SUCCESS
    })
}
