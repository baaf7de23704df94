//! Newline-delimited JSON-RPC over a reader and a writer (stdin/stdout).

use std::sync::Arc;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncWrite, AsyncWriteExt, BufReader};

use crate::session::{parse_body, Ctx, Frame, Reply, Server, Session, Sink, Transport};

/// Exit status of the `crash` tool in stdio mode.
pub(crate) const CRASH_EXIT_CODE: i32 = 3;

/// How long answers still being produced may take once input has closed.
const DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// Serves one session until `input` ends.
pub(crate) async fn serve<R, W>(server: Arc<Server>, input: R, output: W) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin + Send + 'static,
{
    let (sink, mut frames) = Sink::channel();
    let session = Session::new(Arc::clone(&server));
    session.open_standalone(sink.clone());

    let writer = tokio::spawn(async move {
        let mut out = tokio::io::BufWriter::new(output);
        while let Some(frame) = frames.recv().await {
            let line = match frame {
                Frame::Message(s) | Frame::Reply(Reply::Response(s) | Reply::Garbage(s)) => s,
                Frame::Reply(Reply::Crash) => {
                    let _ = out.flush().await;
                    std::process::exit(CRASH_EXIT_CODE);
                }
            };
            out.write_all(line.as_bytes()).await?;
            out.write_all(b"\n").await?;
            // Flush once the queue is drained, not after every line.
            if frames.is_empty() {
                out.flush().await?;
            }
        }
        out.flush().await
    });

    let ctx = Ctx {
        sink,
        transport: Transport::Stdio,
        headers: None,
    };
    let mut input = BufReader::new(input);
    let mut buf = Vec::new();
    loop {
        buf.clear();
        if input.read_until(b'\n', &mut buf).await? == 0 {
            break;
        }
        let text = String::from_utf8_lossy(&buf);
        let text = text.trim_end_matches(['\n', '\r']);
        if text.trim().is_empty() {
            continue;
        }
        server.record(text);
        let (messages, _batch) = parse_body(text);
        for msg in messages {
            session.accept(msg, &ctx);
        }
    }
    // Input closed. Let requests already running finish writing their
    // answers (the writer ends once every sink is dropped), but do not wait
    // long for one that never will (`hang`).
    tracing::debug!("input closed");
    session.close_standalone();
    drop(ctx);
    let abort = writer.abort_handle();
    match tokio::time::timeout(DRAIN_GRACE, writer).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Ok(()),
        Err(_) => {
            abort.abort();
            Ok(())
        }
    }
}
