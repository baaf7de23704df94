//! Integration tests of `warden-upstream` against small fake MCP servers:
//! a POSIX `sh` script over stdio, and axum servers on 127.0.0.1 for
//! Streamable HTTP and legacy SSE.

mod http;
mod legacy_sse;
mod stdio;
mod support;
