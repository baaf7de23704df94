//! A small, hand-written MCP server for the session-era protocol
//! (2024-11-05, 2025-03-26, 2025-06-18, 2025-11-25).
//!
//! It plays three parts, chosen by [`Mode`]:
//!
//! - [`Mode::Demo`]: a realistic notes-and-tickets server behind `warden demo`
//!   (tools with strict input schemas and annotations, resources, a resource
//!   template, prompts, completions, logging, subscriptions).
//! - [`Mode::Echo`]: one `echo` tool and nothing else — the upstream of the
//!   benchmark, so it must cost as little as possible.
//! - [`Mode::Test`]: a hostile, recording upstream for Warden's integration
//!   tests: tools that crash, hang, write garbage, stream progress, ask the
//!   client questions (sampling, elicitation, roots), leak stack traces, or
//!   change their own descriptions.
//!
//! Transports: newline-delimited JSON-RPC on stdin/stdout ([`run_stdio`]),
//! and Streamable HTTP on `/mcp` plus legacy HTTP+SSE on `/sse` and
//! `/messages` ([`run_http`]). Server-to-client requests get ids of their own
//! and the client's answer is routed back to the tool that asked.
//!
//! The server is deliberately lenient in what it accepts (plain
//! `serde_json`, no duplicate-key checks): it is the thing behind the
//! gateway, and tests must see what the gateway let through, not what this
//! server would have refused on its own.
#![forbid(unsafe_code)]

mod demo;
mod http;
mod schema;
mod session;
mod stdio;
mod test_tools;

use std::path::PathBuf;
use std::sync::Arc;

/// Which server to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mode {
    /// Notes and tickets, for `warden demo`.
    Demo,
    /// One `echo` tool; the benchmark upstream.
    Echo,
    /// The hostile, recording upstream for gateway tests.
    Test,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Demo => "demo",
            Mode::Echo => "echo",
            Mode::Test => "test",
        }
    }
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was not one of `demo`, `echo`, `test`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownMode(pub String);

impl std::fmt::Display for UnknownMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown mode {:?} (expected demo, echo or test)", self.0)
    }
}

impl std::error::Error for UnknownMode {}

impl std::str::FromStr for Mode {
    type Err = UnknownMode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "demo" => Ok(Mode::Demo),
            "echo" => Ok(Mode::Echo),
            "test" => Ok(Mode::Test),
            other => Err(UnknownMode(other.to_owned())),
        }
    }
}

/// Settings shared by every mode and transport.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Append every received message to this file, one line each, before it
    /// is handled (so a test can prove a message never reached the server).
    pub record: Option<PathBuf>,
    /// Overrides `serverInfo.name` in the `initialize` result.
    pub name: Option<String>,
    /// A JSON array of tool definitions served after the mode's own tools,
    /// exactly as written (test corpora, e.g. poisoned descriptions); a call
    /// to one answers `called <name>`.
    pub extra_tools: Option<PathBuf>,
}

/// Serves newline-delimited JSON-RPC on stdin/stdout until stdin closes.
/// Nothing but protocol messages is written to stdout; logs go to stderr.
pub async fn run_stdio(mode: Mode, opts: Options) -> std::io::Result<()> {
    let server = Arc::new(session::Server::new(mode, &opts)?);
    stdio::serve(server, tokio::io::stdin(), tokio::io::stdout()).await
}

/// Serves Streamable HTTP on `POST/GET/DELETE /mcp` and legacy HTTP+SSE on
/// `GET /sse` + `POST /messages?sessionId=…`, on `listener`, forever.
pub async fn run_http(
    mode: Mode,
    opts: Options,
    listener: tokio::net::TcpListener,
) -> std::io::Result<()> {
    let server = Arc::new(session::Server::new(mode, &opts)?);
    http::serve(server, listener).await
}

#[cfg(test)]
mod tests;
