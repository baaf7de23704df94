//! A child process speaking newline-delimited JSON-RPC on stdin/stdout.
//!
//! Invariants: the child sees a scrubbed environment (a short allowlist
//! plus what the spec names); all writes go through one writer task so
//! messages never interleave; stdout is read with a bound on line length;
//! one line that fails the strict parse ends the process (a peer that broke
//! framing once cannot be trusted to be back in sync); stderr is logged
//! escaped and truncated, never parsed.

use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::Duration;

use nix::sys::signal::{killpg, Signal};
use nix::unistd::Pid;
use tokio::io::AsyncWriteExt;
use tokio::process::{Child, ChildStderr, ChildStdin, ChildStdout, Command};
use tokio::sync::{mpsc, oneshot};
use tokio::task::AbortHandle;
use tracing::{info, warn};
use warden_sandbox::{describe_spawn_error, Attempt, Decoys, Plan, Spawned, Tripwires};

use crate::handshake::{self, Handshaken, INITIALIZED};
use crate::lines::{Line, LineReader};
use crate::log_safe::log_safe;
use crate::shared::{PendingGuard, Shared};
use crate::supervisor::End;
use crate::{TransportSpec, UpstreamError, UpstreamEvent};

/// Warden's own variables passed to every child: enough for a program to
/// find its tools and locale, nothing that tends to hold a credential.
const BASE_ENV: &[&str] = &["PATH", "HOME", "USER", "LANG", "LC_ALL", "TMPDIR", "TERM"];

/// The longest stderr line logged; the rest of the line is dropped.
const STDERR_LINE_BYTES: usize = 2048;

/// Grace periods of a clean shutdown: stdin closed, then SIGTERM after
/// `TERM_AFTER`, then SIGKILL after `KILL_AFTER` (both from the start).
const TERM_AFTER: Duration = Duration::from_secs(2);
const KILL_AFTER: Duration = Duration::from_secs(5);

/// How long an exit status is awaited once stdout closed, so the reason
/// names it; short, because pending calls are failed only after.
const EXIT_STATUS_WAIT: Duration = Duration::from_millis(250);

/// The sending half of the writer task.
#[derive(Clone)]
pub(crate) struct Writer {
    tx: mpsc::Sender<String>,
}

impl Writer {
    pub(crate) async fn send(&self, text: String) -> Result<(), UpstreamError> {
        self.tx
            .send(text)
            .await
            .map_err(|_| UpstreamError::Closed("the process's stdin is closed".into()))
    }
}

/// Why a stdio task gave up on the process.
enum Ended {
    Violation(String),
    StdoutClosed,
    WriteFailed(String),
}

/// A running child and its tasks, owned by the supervisor.
pub(crate) struct Process {
    child: Child,
    pub writer: Writer,
    close_stdin: Option<oneshot::Sender<()>>,
    ended: mpsc::Receiver<Ended>,
    reader: AbortHandle,
    stderr: AbortHandle,
    /// The sandbox's private directory and cgroup: kept while it runs.
    _sandbox: Option<Spawned>,
    /// The egress proxy serving this process's sandbox.
    proxy: Option<AbortHandle>,
    /// The task reporting the sandbox's tripwires, and their decoys.
    tripwires: Option<(AbortHandle, Decoys)>,
    /// The client roots mounted into its sandbox.
    pub mounts: Vec<std::path::PathBuf>,
}

/// Spawns the process and runs the handshake on it.
pub(crate) async fn connect(shared: &Arc<Shared>) -> Result<(Process, Handshaken), UpstreamError> {
    let mut process = spawn(shared)?;
    match handshake(shared, &mut process).await {
        Ok(done) => Ok((process, done)),
        Err(e) => {
            process.close(false).await;
            Err(e)
        }
    }
}

async fn handshake(
    shared: &Arc<Shared>,
    process: &mut Process,
) -> Result<Handshaken, UpstreamError> {
    let id = shared.next_id();
    let text = handshake::initialize_request(id, &shared.handshake.params)?;
    let rx = shared.register(id);
    let _guard = PendingGuard {
        shared: shared.clone(),
        id,
    };
    process.writer.send(text).await?;
    let response = tokio::select! {
        r = rx => r.map_err(|_| UpstreamError::Closed("handshake abandoned".into()))??,
        end = process.ended() => return Err(UpstreamError::Closed(end.reason())),
    };
    let done = handshake::accept(&response)?;
    process.writer.send(INITIALIZED.to_owned()).await?;
    Ok(done)
}

fn spawn(shared: &Arc<Shared>) -> Result<Process, UpstreamError> {
    let TransportSpec::Stdio {
        command,
        args,
        env,
        inherit_env,
        cwd,
        sandbox,
    } = &shared.spec.transport
    else {
        return Err(UpstreamError::Config("not a stdio transport".into()));
    };
    let mounts = shared.mounts();
    let (mut cmd, sandbox_env, mut spawned) = match sandbox {
        None => {
            let mut cmd = Command::new(command);
            cmd.args(args);
            if let Some(dir) = cwd {
                cmd.current_dir(dir);
            }
            (cmd, Vec::new(), None)
        }
        Some(sandbox) => {
            let path = env
                .iter()
                .find(|(k, _)| k == "PATH")
                .map(|(_, v)| std::ffi::OsString::from(v))
                .or_else(|| std::env::var_os("PATH"));
            // The client roots (#19.4) are mounted like configured paths.
            let roots = mounts.clone();
            let spec = if roots.is_empty() {
                std::borrow::Cow::Borrowed(&sandbox.spec)
            } else {
                let mut spec = sandbox.spec.clone();
                if sandbox.roots_writable {
                    spec.write.extend(roots);
                } else {
                    spec.read.extend(roots);
                }
                std::borrow::Cow::Owned(spec)
            };
            let plan = Plan::new(&spec, command, args, cwd.as_deref(), path.as_deref())
                .map_err(|e| UpstreamError::Unavailable(format!("sandbox: {e}")))?;
            for warning in &plan.summary().warnings {
                warn!(target: "upstream", server = %shared.spec.name, "sandbox: {warning}");
            }
            let sandbox_env = plan.env().to_vec();
            let (cmd, spawned) = plan
                .command(report_refused(shared.clone()))
                .map_err(|e| UpstreamError::Unavailable(format!("sandbox: {e}")))?;
            (Command::from(cmd), sandbox_env, Some(spawned))
        }
    };
    cmd.env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        // Its own process group, so shutdown reaches whatever it spawned
        // (`sh -c`, `npx` wrappers) and a terminal's Ctrl-C reaches only Warden.
        .process_group(0);
    for name in BASE_ENV
        .iter()
        .copied()
        .chain(inherit_env.iter().map(String::as_str))
    {
        if let Some(value) = std::env::var_os(name) {
            cmd.env(name, value);
        }
    }
    for (k, v) in env {
        cmd.env(k, v);
    }
    // The sandbox's own (HOME, TMPDIR, proxies) come last: they describe
    // the sandbox, not a preference.
    for (k, v) in &sandbox_env {
        cmd.env(k, v);
    }
    let mut child = cmd.spawn().map_err(|e| {
        UpstreamError::Unavailable(format!(
            "cannot start {}: {}",
            log_safe(command.as_bytes(), 256),
            describe_spawn_error(&e)
        ))
    })?;
    // The child's end of the proxy channel closes with the command.
    drop(cmd);
    let proxy = match spawned.as_mut().map(Spawned::proxy_listener) {
        Some(Err(e)) => {
            return Err(UpstreamError::Unavailable(format!(
                "sandbox: no egress proxy listener: {e}"
            )))
        }
        Some(Ok(listener)) => listener,
        None => None,
    };
    let tripwires = spawned
        .as_mut()
        .and_then(Spawned::tripwires)
        .and_then(|t| watch_tripwires(shared.clone(), t));
    let proxy = match (proxy, sandbox) {
        (Some(listener), Some(sandbox)) => Some(crate::egress_proxy::start(
            listener,
            shared.clone(),
            sandbox,
        )?),
        _ => None,
    };
    let (Some(stdin), Some(stdout), Some(stderr)) =
        (child.stdin.take(), child.stdout.take(), child.stderr.take())
    else {
        return Err(UpstreamError::Unavailable("child pipes missing".into()));
    };

    let (ended_tx, ended) = mpsc::channel(4);
    let (tx, rx) = mpsc::channel(256);
    let (close_tx, close_rx) = oneshot::channel();
    tokio::spawn(write_stdin(stdin, rx, close_rx, ended_tx.clone()));
    let reader = tokio::spawn(read_stdout(shared.clone(), stdout, ended_tx)).abort_handle();
    let stderr = tokio::spawn(log_stderr(shared.spec.name.clone(), stderr)).abort_handle();
    Ok(Process {
        child,
        writer: Writer { tx },
        close_stdin: Some(close_tx),
        ended,
        reader,
        stderr,
        _sandbox: spawned,
        proxy,
        tripwires,
        mounts,
    })
}

/// What the sandbox refuses the process (writes, direct connects, forks
/// past its limit), reported by the sandbox's watcher thread, becomes
/// events. The task ends when the watcher does (after the sandbox's last
/// process), so what a dying process tried is still reported.
fn report_refused(shared: Arc<Shared>) -> impl FnMut(Attempt) + Send + 'static {
    let (tx, mut rx) = mpsc::channel::<Attempt>(64);
    tokio::spawn(async move {
        while let Some(attempt) = rx.recv().await {
            let target = log_safe(attempt.target().as_bytes(), 512);
            let what = attempt.kind();
            warn!(target: "audit", event = "sandbox.refused", server = %shared.spec.name, what, target = %target);
            shared
                .emit(UpstreamEvent::SandboxRefused {
                    server: shared.spec.name.clone(),
                    what,
                    target,
                })
                .await;
        }
    });
    // The watcher reports each distinct attempt once and at most a few
    // hundred; one that finds the queue full is dropped rather than
    // holding the sandboxed process, which waits for the watcher.
    move |attempt| {
        let _ = tx.try_send(attempt);
    }
}

/// Reports each tripwire the sandboxed process opens, once per path for
/// the life of the process (a loop over a decoy is one record, not a
/// flood). The task and the decoys end with the process.
fn watch_tripwires(shared: Arc<Shared>, wires: Tripwires) -> Option<(AbortHandle, Decoys)> {
    use futures::StreamExt;
    let (inotify, paths, decoys) = wires.into_parts();
    let mut events = match inotify.into_event_stream([0u8; 4096]) {
        Ok(s) => s,
        Err(e) => {
            warn!(target: "upstream", server = %shared.spec.name, error = %e, "sandbox: tripwires not watched");
            return None;
        }
    };
    let task = tokio::spawn(async move {
        let mut reported = std::collections::HashSet::new();
        while let Some(event) = events.next().await {
            let Ok(event) = event else {
                return;
            };
            let Some(path) = paths.get(&event.wd) else {
                continue;
            };
            if reported.insert(event.wd.clone()) {
                let path = log_safe(path.as_os_str().as_encoded_bytes(), 512);
                warn!(target: "audit", event = "sandbox.tripwire", server = %shared.spec.name, path = %path);
                shared
                    .emit(UpstreamEvent::Tripwire {
                        server: shared.spec.name.clone(),
                        path,
                    })
                    .await;
            }
        }
    });
    Some((task.abort_handle(), decoys))
}

impl Process {
    /// Resolves when the process is gone or unusable.
    pub(crate) async fn ended(&mut self) -> End {
        let why = tokio::select! {
            status = self.child.wait() => return End::Crashed(describe_exit(status)),
            why = self.ended.recv() => why,
        };
        match why {
            Some(Ended::Violation(reason)) => End::Crashed(format!("protocol violation: {reason}")),
            Some(Ended::WriteFailed(e)) => End::Crashed(
                self.exit_reason(&format!("writing to stdin failed: {e}"))
                    .await,
            ),
            Some(Ended::StdoutClosed) | None => {
                End::Crashed(self.exit_reason("the process closed its stdout").await)
            }
        }
    }

    async fn exit_reason(&mut self, otherwise: &str) -> String {
        match tokio::time::timeout(EXIT_STATUS_WAIT, self.child.wait()).await {
            Ok(status) => describe_exit(status),
            Err(_) => otherwise.to_owned(),
        }
    }

    /// Ends the process. Graceful: close stdin, SIGTERM after 2 s, SIGKILL
    /// after 5 s. Otherwise: SIGKILL at once.
    pub(crate) async fn close(&mut self, graceful: bool) {
        self.reader.abort();
        // Dropping the signal's sender stops the writer, which closes stdin.
        self.close_stdin.take();
        if graceful {
            if tokio::time::timeout(TERM_AFTER, self.child.wait())
                .await
                .is_ok()
            {
                self.finish();
                return;
            }
            self.signal(Signal::SIGTERM);
            if tokio::time::timeout(KILL_AFTER - TERM_AFTER, self.child.wait())
                .await
                .is_ok()
            {
                self.finish();
                return;
            }
        }
        self.signal(Signal::SIGKILL);
        let _ = self.child.start_kill();
        let _ = tokio::time::timeout(Duration::from_secs(2), self.child.wait()).await;
        self.finish();
    }

    /// Signals the process group, only while the child is unreaped (so its
    /// pid, which is also the group id, cannot have been reused).
    fn signal(&mut self, sig: Signal) {
        if !matches!(self.child.try_wait(), Ok(None)) {
            return;
        }
        if let Some(pid) = self.child.id().and_then(|p| i32::try_from(p).ok()) {
            let _ = killpg(Pid::from_raw(pid), sig);
        }
    }

    /// Stops logging stderr soon: a descendant that escaped the group could
    /// otherwise keep the pipe (and the task) open forever. The delay lets
    /// the process's last words (often the reason it died) reach the log.
    fn finish(&mut self) {
        let stderr = self.stderr.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_secs(2)).await;
            stderr.abort();
        });
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // Dropped without `close` (a connect that timed out): take the whole
        // group down, not only the direct child that kill_on_drop reaches.
        self.signal(Signal::SIGKILL);
        self.reader.abort();
        if let Some(proxy) = &self.proxy {
            proxy.abort();
        }
        if let Some((t, _)) = &self.tripwires {
            t.abort();
        }
    }
}

fn describe_exit(status: std::io::Result<ExitStatus>) -> String {
    match status {
        Ok(s) => match (s.code(), std::os::unix::process::ExitStatusExt::signal(&s)) {
            (Some(code), _) => format!("process exited with status {code}"),
            (None, Some(sig)) => format!("process killed by signal {sig}"),
            (None, None) => "process exited".to_owned(),
        },
        Err(e) => format!("process lost: {e}"),
    }
}

async fn write_stdin(
    mut stdin: ChildStdin,
    mut rx: mpsc::Receiver<String>,
    mut close: oneshot::Receiver<()>,
    ended: mpsc::Sender<Ended>,
) {
    loop {
        let text = tokio::select! {
            biased;
            m = rx.recv() => match m {
                Some(t) => t,
                None => break,
            },
            _ = &mut close => break,
        };
        let mut bytes = text.into_bytes();
        // stdio framing forbids embedded newlines. In valid JSON a raw CR or
        // LF can only be whitespace between tokens (inside strings they must
        // be escaped), so a space means the same.
        for b in bytes.iter_mut() {
            if *b == b'\n' || *b == b'\r' {
                *b = b' ';
            }
        }
        bytes.push(b'\n');
        let written = async {
            stdin.write_all(&bytes).await?;
            stdin.flush().await
        };
        if let Err(e) = written.await {
            let _ = ended.try_send(Ended::WriteFailed(e.to_string()));
            break;
        }
    }
}

async fn read_stdout(shared: Arc<Shared>, stdout: ChildStdout, ended: mpsc::Sender<Ended>) {
    let max = shared.spec.limits.max_bytes;
    let mut lines = LineReader::new(stdout, max, true);
    let why = loop {
        let bytes = match lines.next_line().await {
            Ok(None) => break Ended::StdoutClosed,
            Err(e) => break Ended::Violation(format!("reading stdout: {e}")),
            Ok(Some(Line::TooLong(prefix))) => {
                let reason = format!("message longer than {max} bytes");
                shared.log_invalid(&prefix, &reason);
                break Ended::Violation(reason);
            }
            Ok(Some(Line::Complete(bytes))) => bytes,
        };
        if bytes.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let text = match String::from_utf8(bytes) {
            Ok(t) => t,
            Err(e) => {
                shared.log_invalid(e.as_bytes(), &"not UTF-8");
                break Ended::Violation("stdout is not UTF-8".into());
            }
        };
        if let Err(e) = shared.route(text, None, None).await {
            break Ended::Violation(e.to_string());
        }
    };
    let _ = ended.send(why).await;
}

async fn log_stderr(server: String, stderr: ChildStderr) {
    let mut lines = LineReader::new(stderr, STDERR_LINE_BYTES, false);
    while let Ok(Some(line)) = lines.next_line().await {
        let text = match line {
            Line::Complete(b) => log_safe(&b, STDERR_LINE_BYTES),
            Line::TooLong(b) => log_safe(&b, STDERR_LINE_BYTES) + "…[truncated]",
        };
        info!(target: "upstream", server = %server, line = %text, "stderr");
    }
}
