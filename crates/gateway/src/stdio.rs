//! Client-facing stdio: Warden as the one MCP server a desktop client
//! launches. Newline-delimited JSON-RPC on stdin/stdout; logs go to stderr.

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::sync::mpsc;
use tracing::{info, warn};
use warden_identity::Principal;
use warden_protocol::error::error_response;
use warden_protocol::message::{self, parse_one, Incoming, Kind};
use warden_protocol::ErrorCode;

use crate::core::Gateway;
use crate::session::{new_session_id, Channel};
use crate::stream::Sink;

/// Serves one client on `input`/`output` until the input ends.
pub async fn serve<R, W>(
    gw: Arc<Gateway>,
    principal: Principal,
    input: R,
    output: W,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<Arc<str>>();
    let writer = tokio::spawn(async move {
        let mut out = output;
        while let Some(m) = rx.recv().await {
            // One message per line: a message never contains a raw newline
            // (strictly parsed JSON has them escaped), so this framing holds.
            let line = m.replace('\n', "");
            if out.write_all(line.as_bytes()).await.is_err() || out.write_all(b"\n").await.is_err()
            {
                return;
            }
            let _ = out.flush().await;
        }
    });
    let sink = Sink::Direct(tx.clone());
    let limits = gw.snapshot().limits;
    let mut lines = BufReader::new(input);
    let mut buf = Vec::new();
    let mut session = None;
    loop {
        buf.clear();
        let n = read_line_capped(&mut lines, &mut buf, limits.max_bytes + 1).await?;
        if n == 0 {
            break;
        }
        if buf.len() > limits.max_bytes {
            sink.send(
                error_response(
                    None,
                    ErrorCode::InvalidRequest,
                    &format!("message exceeds the limit of {} bytes", limits.max_bytes),
                    None,
                )
                .into(),
            );
            // Skip the rest of the oversized line.
            skip_line(&mut lines).await?;
            continue;
        }
        let Ok(text) = std::str::from_utf8(trim_newline(&buf)) else {
            sink.send(
                error_response(None, ErrorCode::ParseError, "parse error: not UTF-8", None).into(),
            );
            continue;
        };
        if text.trim().is_empty() {
            continue;
        }
        let m = match message::parse(text, &limits, false) {
            Ok(Incoming::Single(m)) => m,
            Ok(Incoming::Batch(_)) => continue,
            Err(e) => {
                sink.send(error_response(None, e.code(), &e.to_string(), None).into());
                continue;
            }
        };
        let Some(sess) = session.clone() else {
            if m.kind == Kind::Request && m.method() == "initialize" {
                match gw
                    .initialize(
                        principal.clone(),
                        None,
                        "",
                        Channel::Stdio,
                        &m,
                        sink.clone(),
                        new_session_id(),
                    )
                    .await
                {
                    Ok((s, body)) => {
                        sink.send(body.into());
                        session = Some(s);
                    }
                    Err(e) => {
                        sink.send(
                            error_response(
                                m.id.map(|i| i.raw()),
                                ErrorCode::InvalidParams,
                                &e.to_string(),
                                None,
                            )
                            .into(),
                        );
                    }
                }
            } else if m.kind == Kind::Request {
                let id = m.id.map(|i| i.raw());
                let resp = if m.method() == "ping" {
                    warden_protocol::error::result_response(id.unwrap_or("null"), "{}")
                } else {
                    error_response(id, ErrorCode::InvalidRequest, "send initialize first", None)
                };
                sink.send(resp.into());
            }
            continue;
        };
        if m.kind != Kind::Request {
            gw.handle(&sess, &m, &sink, Default::default()).await;
            continue;
        }
        let gw2 = gw.clone();
        let sink2 = sink.clone();
        let owned = text.to_owned();
        tokio::spawn(async move {
            let Ok(m) = parse_one(&owned) else {
                return;
            };
            if let Some(resp) = gw2.handle(&sess, &m, &sink2, Default::default()).await {
                sink2.send(resp.into());
            }
        });
    }
    info!("stdin closed; shutting down");
    if let Some(s) = session {
        gw.close_session(&s.id).await;
    }
    drop(sink);
    drop(tx);
    if let Err(e) = writer.await {
        warn!(error = %e, "stdout writer ended abnormally");
    }
    Ok(())
}

/// Reads one line (through `\n`) but stores at most `cap` bytes of it.
async fn read_line_capped<R: AsyncBufReadExt + Unpin>(
    r: &mut R,
    buf: &mut Vec<u8>,
    cap: usize,
) -> std::io::Result<usize> {
    let mut total = 0;
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(total);
        }
        let (take, done) = match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        let room = cap.saturating_sub(buf.len());
        buf.extend_from_slice(&chunk[..take.min(room)]);
        r.consume(take);
        total += take;
        if done || buf.len() >= cap {
            return Ok(total);
        }
    }
}

async fn skip_line<R: AsyncBufReadExt + Unpin>(r: &mut R) -> std::io::Result<()> {
    loop {
        let chunk = r.fill_buf().await?;
        if chunk.is_empty() {
            return Ok(());
        }
        match chunk.iter().position(|b| *b == b'\n') {
            Some(i) => {
                r.consume(i + 1);
                return Ok(());
            }
            None => {
                let n = chunk.len();
                r.consume(n);
            }
        }
    }
}

fn trim_newline(b: &[u8]) -> &[u8] {
    let b = b.strip_suffix(b"\n").unwrap_or(b);
    b.strip_suffix(b"\r").unwrap_or(b)
}
