//! Stage 6, Limits: rate limits per principal, tool and tenant, quotas,
//! cost budgets, concurrency caps and the upstream's circuit breaker.
//!
//! Empty until the limits issue (#16) fills it: every request passes. It
//! runs after authorization (a refused call spends no budget) and before
//! the input guards and the upstream.

use super::{Exchange, Refusal};
use crate::core::Gateway;

pub(crate) fn run(_gw: &Gateway, _ex: &mut Exchange<'_>) -> Result<(), Refusal> {
    Ok(())
}
