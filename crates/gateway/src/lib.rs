//! The Warden gateway: client sessions, the enforcement pipeline, federation
//! of upstream MCP servers, and the client-facing transports (Streamable
//! HTTP, legacy HTTP+SSE, stdio).
//!
//! Reading order: [`pipeline`] (the stages, in order, one file each), then
//! [`core`] (sessions and the routing of upstream messages), then
//! [`federation`] (names, lists, cursors), [`session`], [`pool`], and the
//! transports [`http`] and [`stdio`] ([`edge`]: the accept loop and the
//! limits every HTTP connection is held to).
#![forbid(unsafe_code)]

pub mod call;
pub mod core;
pub mod edge;
pub mod federation;
pub mod http;
mod modern_http;
pub mod pipeline;
pub mod pool;
mod readiness;
mod roots;
pub mod sandbox;
pub mod session;
pub mod snapshot;
pub mod stdio;
pub mod stream;

pub use crate::core::Gateway;
pub use snapshot::Snapshot;
