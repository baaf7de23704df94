//! Stage 9, Credentials: the client's token never goes upstream; the
//! upstream's own credential (a secret reference, a request-scoped token
//! minted for that server and tool, or an RFC 8693 exchange) is attached
//! here, last before execute.
//!
//! Empty until the upstream-credentials issue (#18) fills it: today an
//! upstream gets only the credentials its configuration names at start,
//! never the client's.

use super::{Exchange, Refusal};
use crate::core::Gateway;

pub(crate) fn run(_gw: &Gateway, _ex: &mut Exchange<'_>) -> Result<(), Refusal> {
    Ok(())
}
