//! Integration tests of `warden-upstream` against small fake MCP servers:
//! a POSIX `sh` script over stdio, and axum servers on 127.0.0.1 for
//! Streamable HTTP and legacy SSE; and against real MCP servers (`peers`)
//! for era detection and the 2026-07-28 protocol.

mod http;
mod legacy_sse;
mod peers;
mod stdio;
mod support;
