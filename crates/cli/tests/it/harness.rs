//! Starting Warden and upstreams, and a small raw-HTTP MCP client.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use futures::StreamExt;
use serde_json::{json, Value};
use warden_protocol::sse;

pub const WARDEN: &str = env!("CARGO_BIN_EXE_warden");

/// A running process, killed when dropped.
pub struct Proc {
    pub child: Child,
    pub stderr_lines: mpsc::Receiver<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A running Warden serving HTTP.
pub struct Warden {
    // Held for their Drop: the process is killed, the directory removed.
    _proc: Proc,
    dir: tempfile::TempDir,
    pub base: String,
}

impl Warden {
    /// Starts `warden serve` with `yaml` (the listen address is forced to an
    /// ephemeral loopback port). `{WARDEN}` and `{DIR}` in `yaml` are
    /// replaced with the binary and the temp directory.
    pub fn start(yaml: &str) -> Warden {
        Warden::start_with_files(yaml, &[])
    }

    /// [`Warden::start`] with extra files (name, contents) written next to
    /// the configuration first.
    pub fn start_with_files(yaml: &str, files: &[(&str, &str)]) -> Warden {
        let dir = tempfile::tempdir().expect("tempdir");
        Warden::start_in(dir, yaml, files)
    }

    /// Starts Warden in an existing directory (a restart keeps its state).
    pub fn start_in(dir: tempfile::TempDir, yaml: &str, files: &[(&str, &str)]) -> Warden {
        Warden::start_limited(dir, yaml, files, None)
    }

    /// [`Warden::start`] in a process that may open at most `open_files`
    /// files (soft and hard limit: it cannot raise it).
    pub fn start_with_open_files(yaml: &str, open_files: u64) -> Warden {
        let dir = tempfile::tempdir().expect("tempdir");
        Warden::start_limited(dir, yaml, &[], Some(open_files))
    }

    fn start_limited(
        dir: tempfile::TempDir,
        yaml: &str,
        files: &[(&str, &str)],
        open_files: Option<u64>,
    ) -> Warden {
        for (name, text) in files {
            std::fs::write(dir.path().join(name), text).expect("write file");
        }
        let yaml = with_tofu(yaml)
            .replace("{WARDEN}", WARDEN)
            .replace("{DIR}", &dir.path().display().to_string());
        let (proc, base) = launch_limited(dir.path(), &yaml, "info", open_files);
        Warden {
            _proc: proc,
            dir,
            base,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// SIGKILL: no shutdown, no flush. Returns the directory for a restart.
    pub fn kill(self) -> tempfile::TempDir {
        let Warden { mut _proc, dir, .. } = self;
        let _ = _proc.child.kill();
        let _ = _proc.child.wait();
        dir
    }

    /// Like [`Warden::cli`], for commands that may fail: (success, stdout,
    /// stderr).
    pub fn cli_status(&self, args: &[&str]) -> (bool, String, String) {
        let out = Command::new(WARDEN)
            .args(args)
            .arg("--config")
            .arg(self.config_path())
            .output()
            .expect("warden runs");
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    }

    pub fn config_path(&self) -> std::path::PathBuf {
        self.dir.path().join("warden.yaml")
    }

    /// Runs `warden ARGS --config <this config>` and returns its stdout.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(WARDEN)
            .args(args)
            .arg("--config")
            .arg(self.config_path())
            .output()
            .expect("warden runs");
        assert!(
            out.status.success(),
            "warden {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

/// `yaml` with `registry: {mode: tofu, lock: '{DIR}/warden.lock'}` added
/// when it has no `registry:` section. Why: these tests were written before
/// tools had to be pinned; strict mode (the default) would expose nothing
/// from an empty lock. Trust on first use keeps them about what they test,
/// with the registry still on the path (every list and call is checked, and
/// a change after first sight is refused). Registry tests set their own.
pub fn with_tofu(yaml: &str) -> String {
    if yaml.lines().any(|l| l.starts_with("registry:")) {
        return yaml.to_owned();
    }
    format!("{yaml}\nregistry: {{mode: tofu, lock: '{{DIR}}/warden.lock'}}\n")
}

pub fn spawn(cmd: &mut Command) -> Proc {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn");
    let (tx, rx) = mpsc::channel();
    let stderr = child.stderr.take().expect("stderr");
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if std::env::var_os("WARDEN_TEST_VERBOSE").is_some() {
                eprintln!("[warden] {line}");
            }
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    Proc {
        child,
        stderr_lines: rx,
    }
}

pub fn wait_for_line(p: &Proc, needle: &str, timeout: Duration) -> Option<String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.checked_duration_since(std::time::Instant::now())?;
        match p.stderr_lines.recv_timeout(left) {
            Ok(l) if l.contains(needle) => return Some(l),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
}

/// `warden stdio --config cfg` with piped stdin and stdout: the child, its
/// stdin and its stdout, line by line.
pub fn stdio_warden(
    cfg: &Path,
) -> (
    std::process::Child,
    std::process::ChildStdin,
    BufReader<std::process::ChildStdout>,
) {
    let mut child = Command::new(WARDEN)
        .args(["stdio", "--config"])
        .arg(cfg)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn warden stdio");
    let stdin = child.stdin.take().expect("stdin");
    let out = BufReader::new(child.stdout.take().expect("stdout"));
    (child, stdin, out)
}

/// Writes `yaml` as `dir/warden.yaml` and starts `warden serve` on a free
/// loopback port with `WARDEN_LOG=log`: the process and its base URL.
pub fn launch(dir: &Path, yaml: &str, log: &str) -> (Proc, String) {
    launch_limited(dir, yaml, log, None)
}

/// [`launch`], under an open-file limit when `open_files` is set (through
/// the shell's `ulimit`, which sets the soft and the hard limit).
fn launch_limited(dir: &Path, yaml: &str, log: &str, open_files: Option<u64>) -> (Proc, String) {
    let cfg = dir.join("warden.yaml");
    std::fs::write(&cfg, yaml).expect("write config");
    let mut cmd = match open_files {
        None => Command::new(WARDEN),
        Some(n) => {
            let mut sh = Command::new("sh");
            sh.args([
                "-c",
                &format!("ulimit -n {n} && exec \"$0\" \"$@\""),
                WARDEN,
            ]);
            sh
        }
    };
    let proc = spawn(
        cmd.args(["serve", "--config"])
            .arg(&cfg)
            .args(["--listen", "127.0.0.1:0"])
            .env("WARDEN_LOG", log),
    );
    let base = wait_for_line(&proc, "warden: listening on ", Duration::from_secs(30))
        .and_then(|l| {
            l.split("listening on ")
                .nth(1)
                .map(|s| s.trim().trim_end_matches("/mcp").to_owned())
        })
        .expect("warden did not start");
    (proc, base)
}

/// The YAML for a server running the bundled example server.
pub fn example_server(name: &str, mode: &str, extra: &str) -> String {
    format!(
        "  {name}:\n    command: '{{WARDEN}}'\n    args: [example-server, --mode, {mode}, --name, {name}{extra}]\n"
    )
}

/// The recording path argument for a test upstream.
pub fn record_arg(path: &Path) -> String {
    format!(", --record, '{}'", path.display())
}

/// What one POST returned.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    /// Messages: the JSON body, or every SSE event's data.
    pub messages: Vec<Value>,
    pub raw: String,
}

impl Reply {
    /// The JSON-RPC response (the message with `result` or `error`).
    pub fn response(&self) -> &Value {
        self.messages
            .iter()
            .find(|m| m.get("result").is_some() || m.get("error").is_some())
            .unwrap_or_else(|| panic!("no response in {:?} (status {})", self.raw, self.status))
    }
    pub fn result(&self) -> &Value {
        let r = self.response();
        r.get("result")
            .unwrap_or_else(|| panic!("error response: {r}"))
    }
    pub fn error_code(&self) -> i64 {
        self.response()["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("not an error: {}", self.response()))
    }
}

/// A minimal Streamable HTTP MCP client for tests.
pub struct Client {
    pub http: reqwest::Client,
    pub url: String,
    pub session: Option<String>,
    pub version: String,
    next_id: u64,
    /// How to answer server-to-client requests (method → result).
    pub answers: Vec<(String, Value)>,
    /// Sent with every request (credentials).
    pub extra_headers: reqwest::header::HeaderMap,
}

impl Client {
    pub fn new(url: &str) -> Client {
        Client {
            http: reqwest::Client::new(),
            url: url.to_owned(),
            session: None,
            version: "2025-06-18".into(),
            next_id: 1,
            extra_headers: reqwest::header::HeaderMap::new(),
            answers: vec![
                (
                    "sampling/createMessage".into(),
                    json!({"role":"assistant","content":{"type":"text","text":"sampled by test client"},"model":"test","stopReason":"endTurn"}),
                ),
                (
                    "elicitation/create".into(),
                    json!({"action":"accept","content":{"answer":"yes"}}),
                ),
                (
                    "roots/list".into(),
                    json!({"roots":[{"uri":"file:///tmp","name":"tmp"}]}),
                ),
            ],
        }
    }

    /// A client that sends `Authorization: Bearer <token>`.
    pub fn with_bearer(url: &str, token: &str) -> Client {
        let mut c = Client::new(url);
        c.extra_headers.insert(
            "authorization",
            format!("Bearer {token}").parse().expect("header value"),
        );
        c
    }

    /// `initialize` + `notifications/initialized`.
    pub async fn initialize(&mut self) -> Value {
        self.initialize_with(json!({"sampling":{}, "elicitation":{}, "roots":{"listChanged":true}}))
            .await
    }

    /// [`Client::initialize`] declaring these client capabilities.
    pub async fn initialize_with(&mut self, capabilities: Value) -> Value {
        let r = self
            .request(
                "initialize",
                json!({"protocolVersion": self.version, "capabilities": capabilities, "clientInfo": {"name":"warden-it","version":"0"}}),
            )
            .await;
        assert_eq!(r.status, 200, "initialize failed: {}", r.raw);
        self.session = r
            .headers
            .get("mcp-session-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        assert!(self.session.is_some(), "no session id");
        let n = self
            .post_raw(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#.into())
            .await;
        assert_eq!(n.status, 202);
        r.result().clone()
    }

    pub async fn request(&mut self, method: &str, params: Value) -> Reply {
        let id = self.next_id;
        self.next_id += 1;
        let body = json!({"jsonrpc":"2.0","id":id,"method":method,"params":params}).to_string();
        self.post_raw(body).await
    }

    pub async fn call_tool(&mut self, name: &str, args: Value) -> Reply {
        self.request("tools/call", json!({"name": name, "arguments": args}))
            .await
    }

    pub fn builder(&self, body: String) -> reqwest::RequestBuilder {
        let mut b = self
            .http
            .post(&self.url)
            .headers(self.extra_headers.clone())
            .header("content-type", "application/json")
            .header("accept", "application/json, text/event-stream")
            .body(body);
        if let Some(s) = &self.session {
            b = b
                .header("mcp-session-id", s)
                .header("mcp-protocol-version", &self.version);
        }
        b
    }

    /// POSTs a raw body; answers server-to-client requests that arrive on
    /// an SSE response and keeps reading until the stream ends.
    pub async fn post_raw(&mut self, body: String) -> Reply {
        let resp = tokio::time::timeout(Duration::from_secs(60), self.builder(body).send())
            .await
            .expect("POST timed out")
            .expect("POST failed");
        self.read_reply(resp).await
    }

    pub async fn read_reply(&mut self, resp: reqwest::Response) -> Reply {
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let is_sse = headers
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("text/event-stream"));
        if !is_sse {
            let raw = resp.text().await.unwrap_or_default();
            let messages = serde_json::from_str::<Value>(&raw)
                .map(|v| match v {
                    Value::Array(a) => a,
                    v => vec![v],
                })
                .unwrap_or_default();
            return Reply {
                status,
                headers,
                messages,
                raw,
            };
        }
        let mut dec = sse::Decoder::new(64 << 20);
        let mut stream = resp.bytes_stream();
        let mut messages = Vec::new();
        let mut raw = String::new();
        loop {
            let chunk = tokio::time::timeout(Duration::from_secs(60), stream.next())
                .await
                .expect("SSE stream stalled");
            let Some(Ok(chunk)) = chunk else { break };
            raw.push_str(&String::from_utf8_lossy(&chunk));
            for ev in dec.feed(&chunk).expect("bad SSE") {
                let Ok(v) = serde_json::from_str::<Value>(&ev.data) else {
                    continue;
                };
                if v.get("method").is_some() && v.get("id").is_some() {
                    self.answer(&v).await;
                }
                let done = v.get("result").is_some() || v.get("error").is_some();
                messages.push(v);
                if done {
                    return Reply {
                        status,
                        headers,
                        messages,
                        raw,
                    };
                }
            }
        }
        Reply {
            status,
            headers,
            messages,
            raw,
        }
    }

    /// Answers a server-to-client request.
    async fn answer(&self, req: &Value) {
        let method = req["method"].as_str().unwrap_or_default();
        let result = self
            .answers
            .iter()
            .find(|(m, _)| m == method)
            .map(|(_, r)| r.clone())
            .unwrap_or(json!({}));
        let body = json!({"jsonrpc":"2.0","id":req["id"],"result":result}).to_string();
        let r = self.builder(body).send().await.expect("answer POST");
        assert_eq!(r.status().as_u16(), 202, "answer to {method} not accepted");
    }

    /// Tool names from `tools/list`.
    pub async fn tool_names(&mut self) -> Vec<String> {
        let r = self.request("tools/list", json!({})).await;
        let mut names: Vec<String> = r.result()["tools"]
            .as_array()
            .expect("tools array")
            .iter()
            .map(|t| t["name"].as_str().unwrap_or_default().to_owned())
            .collect();
        names.sort();
        names
    }
}

/// The text of the first content item of a tool result.
pub fn text_of(result: &Value) -> String {
    result["content"][0]["text"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Lines a recording upstream wrote (one received message per line).
pub fn recorded(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}
