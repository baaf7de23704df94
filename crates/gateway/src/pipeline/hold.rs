//! Stage 8, Hold: a call the policy marks as needing a human approval
//! (an `approvals:` rule or a Cedar `@approval` annotation) stops here.
//!
//! Until the approvals issue (#17) holds the call bound to its exact
//! arguments, it is refused with `-32013 approval required` naming the
//! rule and who may approve. 2026-07-28 calls parked for an upstream's
//! input requests are kept by the transport (`modern_http.rs`) for now.

use std::sync::Arc;

use super::{Exchange, Refusal};
use crate::core::Gateway;

pub(crate) async fn run(_gw: &Arc<Gateway>, ex: &mut Exchange<'_>) -> Result<(), Refusal> {
    match ex.approval.take() {
        None => Ok(()),
        Some((reason, requires)) => Err(Refusal::ApprovalRequired { reason, requires }),
    }
}
