//! The task that keeps one upstream connected: connect and handshake within
//! the connect timeout, serve until the connection ends, fail what was
//! pending, back off, and start again.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{info, warn};

use crate::handshake::Handshaken;
use crate::shared::{Link, Shared};
use crate::{
    http, legacy_sse, stdio, Era, InitInfo, RestartPolicy, TransportSpec, UpstreamError,
    UpstreamEvent, UpstreamState,
};

/// A connection that stayed up this long resets the backoff.
const HEALTHY: Duration = Duration::from_secs(60);

/// A session that expires again within this long after an immediate
/// re-initialization waits out the backoff instead (a server that answers
/// 404 to everything must not be hammered).
const REINIT_WINDOW: Duration = Duration::from_secs(5);

/// Why a live connection ended.
#[derive(Debug)]
pub(crate) enum End {
    /// Gone: the process died, the stream broke, the peer misbehaved.
    Crashed(String),
    /// The HTTP server forgot our session (404): re-initialize, keep pending calls.
    SessionExpired,
    /// A modern upstream refused the version Warden adopted (-32022):
    /// detect the era again, keep pending calls.
    VersionRefused,
    /// Asked to restart a sandboxed server with other client roots mounted.
    Remount,
}

impl End {
    pub(crate) fn reason(&self) -> String {
        match self {
            End::Crashed(r) => r.clone(),
            End::SessionExpired => "session expired".to_owned(),
            End::VersionRefused => "protocol version refused".to_owned(),
            End::Remount => "restarted to mount the client's roots".to_owned(),
        }
    }
}

/// One live connection of any transport, owned by the supervisor.
enum Connection {
    Stdio(Box<stdio::Process>),
    Http(http::Connection),
    Sse(legacy_sse::Connection),
}

impl Connection {
    async fn open(shared: &Arc<Shared>) -> Result<(Connection, Link, Handshaken), UpstreamError> {
        let http = matches!(shared.spec.transport, TransportSpec::StreamableHttp { .. });
        if shared.spec.era == Era::Modern && !http {
            return Err(UpstreamError::Config(
                "the 2026-07-28 era needs a Streamable HTTP upstream; stdio and legacy SSE speak the session era".into(),
            ));
        }
        match &shared.spec.transport {
            TransportSpec::Stdio { .. } => {
                let (p, done) = stdio::connect(shared).await?;
                let link = Link::Stdio(p.writer.clone());
                Ok((Connection::Stdio(Box::new(p)), link, done))
            }
            TransportSpec::StreamableHttp { .. } => {
                let (c, done) = http::connect(shared).await?;
                let link = Link::Http(c.session.clone());
                Ok((Connection::Http(c), link, done))
            }
            TransportSpec::Sse { .. } => {
                let (c, done) = legacy_sse::connect(shared).await?;
                let link = Link::Sse(c.session.clone());
                Ok((Connection::Sse(c), link, done))
            }
        }
    }

    async fn ended(&mut self) -> End {
        match self {
            Connection::Stdio(p) => p.ended().await,
            Connection::Http(c) => c.ended().await,
            Connection::Sse(c) => c.ended().await,
        }
    }

    /// The client roots a sandboxed stdio process was started with.
    fn mounts(&self) -> Option<Vec<std::path::PathBuf>> {
        match self {
            Connection::Stdio(p) => Some(p.mounts.clone()),
            _ => None,
        }
    }

    async fn close(&mut self, graceful: bool) {
        match self {
            Connection::Stdio(p) => p.close(graceful).await,
            Connection::Http(c) => c.close(graceful).await,
            Connection::Sse(c) => c.close().await,
        }
    }
}

struct Backoff {
    policy: RestartPolicy,
    next: Duration,
}

impl Backoff {
    fn new(policy: RestartPolicy) -> Self {
        Backoff {
            policy,
            next: policy.initial_backoff.min(policy.max_backoff),
        }
    }

    fn next(&mut self) -> Duration {
        let d = self.next;
        self.next = (self.next * 2).min(self.policy.max_backoff);
        d
    }

    fn reset(&mut self) {
        self.next = self.policy.initial_backoff.min(self.policy.max_backoff);
    }
}

pub(crate) async fn supervise(shared: Arc<Shared>) {
    let name = shared.spec.name.clone();
    let mut stop = shared.stop.subscribe();
    let mut backoff = Backoff::new(shared.spec.restart);
    let mut generation = 0u64;
    let mut last_reinit: Option<Instant> = None;
    'life: loop {
        if shared.stopping() {
            break;
        }
        let attempt = tokio::select! {
            r = tokio::time::timeout(shared.spec.connect_timeout, Connection::open(&shared)) => {
                r.unwrap_or(Err(UpstreamError::Timeout))
            }
            _ = stopped(&mut stop) => break,
        };
        let mut immediate = false;
        match attempt {
            Ok((mut conn, link, done)) => {
                generation += 1;
                let info = Arc::new(InitInfo {
                    result: done.result,
                    protocol_version: done.protocol_version,
                    generation,
                    modern: done.modern,
                });
                info!(
                    target: "upstream",
                    server = %name,
                    generation,
                    protocol_version = %info.protocol_version,
                    modern = info.modern,
                    "upstream initialized"
                );
                shared.install(link, info);
                if generation > 1 {
                    shared
                        .emit(UpstreamEvent::Restarted {
                            server: name.clone(),
                            generation,
                        })
                        .await;
                }
                let up_since = Instant::now();
                let end = loop {
                    let end = tokio::select! {
                        end = conn.ended() => end,
                        () = shared.remount.notified() => End::Remount,
                        _ = stopped(&mut stop) => {
                            shared.uninstall(
                                Some(UpstreamError::Closed("upstream shutting down".into())),
                                UpstreamState::Closed,
                            );
                            conn.close(true).await;
                            break 'life;
                        }
                    };
                    // A remount asked for while this process was starting
                    // may already be what it was started with.
                    if matches!(end, End::Remount) && conn.mounts() == Some(shared.mounts()) {
                        continue;
                    }
                    break end;
                };
                if up_since.elapsed() >= HEALTHY {
                    backoff.reset();
                }
                match end {
                    End::Crashed(reason) => {
                        warn!(target: "upstream", server = %name, reason = %reason, "upstream down");
                        // Fail what was pending first: nothing waits on the kill.
                        shared.uninstall(
                            Some(UpstreamError::Closed(reason.clone())),
                            UpstreamState::Restarting,
                        );
                        conn.close(false).await;
                        shared
                            .emit(UpstreamEvent::Down {
                                server: name.clone(),
                                reason,
                            })
                            .await;
                    }
                    End::Remount => {
                        info!(target: "upstream", server = %name, "restarting to mount the client's roots");
                        // New calls wait for the new process; those pending
                        // on this one may finish first (bounded).
                        shared.hold_new_calls();
                        shared.set_state(UpstreamState::Restarting);
                        let drain = tokio::time::Instant::now() + crate::REMOUNT_DRAIN;
                        while shared.has_pending() && tokio::time::Instant::now() < drain {
                            tokio::select! {
                                _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                                _ = conn.ended() => break,
                            }
                        }
                        shared.uninstall(
                            Some(UpstreamError::Closed(end.reason())),
                            UpstreamState::Restarting,
                        );
                        conn.close(true).await;
                        immediate = true;
                    }
                    End::SessionExpired | End::VersionRefused => {
                        if matches!(end, End::SessionExpired) {
                            info!(target: "upstream", server = %name, "session expired; re-initializing");
                        } else {
                            info!(target: "upstream", server = %name, "protocol version refused; detecting the era again");
                        }
                        shared.uninstall(None, UpstreamState::Restarting);
                        conn.close(false).await;
                        immediate = last_reinit.is_none_or(|t| t.elapsed() > REINIT_WINDOW);
                        if immediate {
                            last_reinit = Some(Instant::now());
                        }
                    }
                }
            }
            Err(e) => {
                warn!(target: "upstream", server = %name, error = %e, "connection attempt failed");
                let permanent = matches!(e, UpstreamError::Config(_));
                shared.attempt_failed(e);
                if permanent {
                    shared.set_state(UpstreamState::Failed);
                    stopped(&mut stop).await;
                    break;
                }
                shared.set_state(UpstreamState::Restarting);
            }
        }
        if !immediate {
            tokio::select! {
                _ = tokio::time::sleep(backoff.next()) => {}
                _ = stopped(&mut stop) => break,
            }
        }
    }
    shared.uninstall(
        Some(UpstreamError::Closed("upstream shut down".into())),
        UpstreamState::Closed,
    );
    shared.finished.send_replace(true);
}

/// Resolves once a stop is requested.
async fn stopped(stop: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is not Send: drop it here.
    let _ = stop.wait_for(|s| *s).await.map(|_| ());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap_and_resets() {
        let mut b = Backoff::new(RestartPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
        });
        let got: Vec<u128> = (0..4).map(|_| b.next().as_millis()).collect();
        assert_eq!(got, vec![100, 200, 350, 350]);
        b.reset();
        assert_eq!(b.next().as_millis(), 100);
    }
}
