//! `warden-bench`: a load generator for Streamable HTTP MCP endpoints.
//!
//! For every concurrency level and every target (in the order given), it
//! opens one keep-alive HTTP/1.1 connection per worker, initializes an MCP
//! session on each (`initialize`, then `notifications/initialized`), applies
//! load for a warm-up, and then measures a fixed window of `tools/call`
//! requests, each worker keeping exactly one request in flight. Responses
//! may come back as JSON or as an SSE stream.
//!
//! The first target is the baseline: the report gives each target's
//! throughput and p50 as a ratio of the baseline's at the same concurrency.
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

pub use plan::{Args, Plan, PlanError};
pub use report::{Report, Row};
pub use run::{Measurement, RunError};

/// Runs the whole plan: each concurrency level, then each target in order.
/// `progress` is told before each measurement starts.
pub async fn run(plan: &Plan, mut progress: impl FnMut(&str)) -> Result<Report, RunError> {
    let mut measurements = Vec::new();
    for &concurrency in &plan.concurrency {
        for target in &plan.targets {
            progress(&format!(
                "{} at concurrency {concurrency}: {:?} warm-up, {:?} measured",
                target.name, plan.warmup, plan.duration
            ));
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
