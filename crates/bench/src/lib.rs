//! `warden-bench`: a load generator for Streamable HTTP MCP endpoints.
//!
//! For every concurrency level and every target (in the order given), it
//! opens one keep-alive HTTP/1.1 connection per worker, applies load for a
//! warm-up, and then measures a fixed window of `tools/call` requests, each
//! worker keeping exactly one request in flight. Responses may come back as
//! JSON or as an SSE stream; a non-200 status, a JSON-RPC error, `isError`
//! or an incomplete result is a failed call.
//!
//! How a worker speaks MCP is chosen per target (`--protocol`,
//! `--target-protocol`): a session client initializes once per connection
//! (`initialize`, then `notifications/initialized`) and sends its calls with
//! the session's `Mcp-Session-Id`; a 2026-07-28 client discovers nothing and
//! sends every call self-contained (the envelope in `params._meta`, mirrored
//! by `MCP-Protocol-Version`, `Mcp-Method` and `Mcp-Name`).
//!
//! The first target is the baseline: the report gives each target's
//! throughput and p50 as a ratio of the baseline's at the same concurrency,
//! and, for a target given a reference (`--target-reference`), as a ratio of
//! that target's too.
//! Ratios measured in one run are the figures that count; absolute numbers
//! on a shared machine are not.
//!
//! Only `http://` targets are supported: the benchmark measures the gateway,
//! not TLS.
#![forbid(unsafe_code)]

pub mod client;
pub mod plan;
pub mod report;
pub mod run;

pub use plan::{Args, ClientEra, Plan, PlanError};
pub use report::{Report, Row};
pub use run::{Measurement, RunError};

/// Runs the whole plan: each concurrency level, then each target in order.
/// `progress` is told before each measurement starts.
pub async fn run(plan: &Plan, mut progress: impl FnMut(&str)) -> Result<Report, RunError> {
    let mut measurements = Vec::new();
    for &concurrency in &plan.concurrency {
        for target in &plan.targets {
            progress(&match plan.calls {
                Some(n) => format!("{} at concurrency {concurrency}: {n} calls", target.name),
                None => format!(
                    "{} at concurrency {concurrency}: {:?} warm-up, {:?} measured",
                    target.name, plan.warmup, plan.duration
                ),
            });
            measurements.push(run::measure(target, concurrency, plan).await?);
        }
    }
    let baseline = plan
        .targets
        .first()
        .map(|t| t.name.as_str())
        .unwrap_or_default();
    Ok(Report::new(
        baseline,
        &plan.tool,
        plan.warmup.as_secs_f64(),
        &measurements,
    ))
}

#[cfg(test)]
mod tests;
