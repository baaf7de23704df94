//! The wire layer of Warden: JSON-RPC 2.0 and MCP messages, parsed strictly
//! from the exact bytes that will be forwarded.
//!
//! Warden owns the wire: a message is validated once ([`strict`]), viewed
//! through borrowed slices of the original text ([`Message`]), and — when
//! Warden must change a field it owns (ids, namespaced names, cursors) —
//! edited by splicing only those byte ranges ([`edit`]). Every field Warden
//! does not model, including unknown ones, is forwarded byte-for-byte.
//!
//! This crate does no I/O.
#![forbid(unsafe_code)]

pub mod edit;
pub mod error;
pub mod message;
pub mod method;
pub mod modern;
pub mod sse;
pub mod strict;
pub mod version;

pub use edit::{Edit, EditSet};
pub use error::{ErrorCode, WireError};
pub use message::{Id, Incoming, Kind, Message};
pub use strict::Limits;
pub use version::ProtocolVersion;
