//! Issue 19: stdio servers run in Warden's sandbox (threat T16). A hostile
//! stdio server (`tests/peers/hostile_server.py`) tries what a malicious
//! local server would; each attempt is refused or the process is killed,
//! Warden stays up, and the kills are in the audit trail.

use std::io::Read;
use std::net::TcpListener;
use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::{text_of, Client, Warden};

fn hostile_script() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/peers/hostile_server.py")
        .canonicalize()
        .expect("hostile server script")
        .display()
        .to_string()
}

/// A Warden with the hostile server, sandboxed by default; `sandbox` is
/// extra YAML under the server (e.g. `    sandbox: {...}\n`).
fn start(sandbox: &str, identity: &str) -> Warden {
    Warden::start(&format!(
        "{identity}servers:\n  hostile:\n    command: python3\n    args: ['{}']\n    restart: {{initial_backoff: 100ms, max_backoff: 500ms}}\n{sandbox}",
        hostile_script()
    ))
}

async fn call(c: &mut Client, tool: &str, args: Value) -> Value {
    let r = c.call_tool(&format!("hostile__{tool}"), args).await;
    r.response().clone()
}

fn text(v: &Value) -> String {
    match v.get("result") {
        Some(r) => text_of(r),
        None => format!("ERROR {}", v["error"]),
    }
}

/// Waits until the hostile server answers again (after a kill, Warden
/// restarts it).
async fn answers_again(c: &mut Client) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = call(c, "whoami", json!({})).await;
        if text(&v).starts_with("OK: ") {
            return v;
        }
        assert!(Instant::now() < deadline, "never answered again: {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The audit trail's `server_died` records.
fn deaths(w: &Warden) -> Vec<String> {
    let (_, out, _) = w.cli_status(&["audit", "query", "--json", "--limit", "1000"]);
    out.lines()
        .filter(|l| l.contains("server_died"))
        .map(str::to_owned)
        .collect()
}

/// Waits for a `server_died` record naming one of `signals`.
async fn wait_audited_death(w: &Warden, signals: &[i32]) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = deaths(w);
        if found.iter().any(|l| {
            signals
                .iter()
                .any(|s| l.contains(&format!("killed by signal {s}\"")))
        }) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no server_died record naming signal {signals:?}: {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// The `sandbox_refused` records of the hostile server: (reason, action).
fn refusals(w: &Warden) -> Vec<(String, String)> {
    let (_, out, _) = w.cli_status(&["audit", "query", "--json", "--limit", "1000"]);
    out.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["kind"] == "sandbox_refused" && v["server"] == "hostile")
        .map(|v| {
            let field = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
            (field("reason_code"), field("action"))
        })
        .collect()
}

/// Waits until every `(reason, action)` of `expected` is audited as
/// `sandbox_refused` (an action starting with `*` matches its suffix).
async fn wait_refusals(w: &Warden, expected: &[(&str, String)]) -> Vec<(String, String)> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let found = refusals(w);
        let missing: Vec<_> = expected
            .iter()
            .filter(|(reason, action)| {
                !found.iter().any(|(r, a)| {
                    r == reason
                        && match action.strip_prefix('*') {
                            Some(suffix) => a.ends_with(suffix),
                            None => a == action,
                        }
                })
            })
            .collect();
        if missing.is_empty() {
            return found;
        }
        assert!(
            Instant::now() < deadline,
            "not audited as sandbox_refused: {missing:?} (audited: {found:?})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_hostile_server_reads_none_of_the_hosts_secrets() {
    let home = tempfile::tempdir().unwrap();
    let ssh = home.path().join(".ssh");
    std::fs::create_dir_all(&ssh).unwrap();
    let id_rsa = ssh.join("id_rsa");
    std::fs::write(&id_rsa, "-----BEGIN OPENSSH PRIVATE KEY----- planted-3141").unwrap();
    let w = start(
        "",
        "identity:\n  public_url: http://127.0.0.1:1\n  data_dir: '{DIR}/data'\n  api_keys: {enabled: true}\n  allow_anonymous: true\n",
    );
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let who = text(&answers_again(&mut c).await);
    assert!(who.contains("/home/sandbox"), "{who}");

    let data = w.dir().join("data");
    let targets = [
        id_rsa.display().to_string(),
        "/root/.ssh/id_rsa".to_owned(),
        "/etc/shadow".to_owned(),
        w.config_path().display().to_string(),
        data.join("api-keys.secret").display().to_string(),
        data.join("api-keys.json").display().to_string(),
        w.dir()
            .join(".warden/audit/checkpoint.key")
            .display()
            .to_string(),
        w.dir().join("warden.lock").display().to_string(),
    ];
    for path in &targets {
        let v = call(&mut c, "read", json!({ "path": path })).await;
        let t = text(&v);
        assert!(t.starts_with("REFUSED"), "{path}: {t}");
        assert!(!t.contains("planted-3141"), "{path}: {t}");
    }
    // Each attempt on a host secret or one of Warden's files (all but the
    // key planted in a random directory) opened a tripwire: audited.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, out, _) = w.cli_status(&["audit", "query", "--json", "--limit", "1000"]);
        let wired: Vec<String> = out
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["kind"] == "tripwire" && v["server"] == "hostile")
            .filter_map(|v| v["action"].as_str().map(str::to_owned))
            .collect();
        let missing: Vec<&String> = targets[1..].iter().filter(|t| !wired.contains(t)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "attempts not audited as tripwires: {missing:?} (audited: {wired:?})"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

#[tokio::test]
async fn a_hostile_server_writes_nowhere_but_its_tmp() {
    let outside = tempfile::tempdir().unwrap();
    let w = start("", "");
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let targets = [
        outside.path().join("evil.txt"),
        w.dir().join("evil.txt"),
        w.config_path(),
        Path::new("/usr/evil.txt").to_path_buf(),
    ];
    for path in &targets {
        let before = std::fs::read(path).ok();
        let v = call(
            &mut c,
            "write",
            json!({ "path": path.display().to_string(), "text": "pwned" }),
        )
        .await;
        assert!(text(&v).starts_with("REFUSED"), "{}: {v}", path.display());
        assert_eq!(std::fs::read(path).ok(), before, "{}", path.display());
    }
    let v = call(
        &mut c,
        "write",
        json!({ "path": "/tmp/scratch.txt", "text": "fine" }),
    )
    .await;
    assert!(text(&v).starts_with("OK"), "{v}");
    // Each refused write is audited (a read-only mount, or a host
    // directory the sandbox hides); the write to its own /tmp is not.
    let expected: Vec<(&str, String)> = targets
        .iter()
        .map(|p| ("write", p.display().to_string()))
        .collect();
    let found = wait_refusals(&w, &expected).await;
    assert!(
        !found.iter().any(|(_, a)| a.starts_with("/tmp/scratch")),
        "{found:?}"
    );
}

#[tokio::test]
async fn a_hostile_server_reaches_no_loopback_listener() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let w = start("", "");
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let v = call(&mut c, "connect", json!({ "port": port })).await;
    assert!(text(&v).starts_with("REFUSED"), "{v}");
    let mut got = String::new();
    if let Ok((mut s, _)) = listener.accept() {
        let _ = s.read_to_string(&mut got);
        panic!("a connection reached the listener: {got}");
    }
    wait_refusals(&w, &[("connect", format!("127.0.0.1:{port}"))]).await;
}

#[tokio::test]
async fn a_fork_bomb_is_stopped_and_warden_stays_up() {
    let w = start("    sandbox: {limits: {processes: 32}}\n", "");
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let v = call(&mut c, "fork_bomb", json!({ "n": 500 })).await;
    let t = text(&v);
    assert!(t.starts_with("REFUSED: fork stopped"), "{t}");
    answers_again(&mut c).await;
    // Where Warden runs as root (CI) the limit is a pids cgroup, whose
    // count of refused forks is audited.
    let root = std::os::unix::fs::MetadataExt::uid(&std::fs::metadata("/proc/self").unwrap()) == 0;
    if root {
        wait_refusals(&w, &[("process_limit", "* forks refused".to_owned())]).await;
    }
}

#[tokio::test]
async fn burning_cpu_past_the_limit_kills_the_server_and_is_audited() {
    let w = start("    sandbox: {limits: {cpu: 2s}}\n", "");
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let v = call(&mut c, "burn_cpu", json!({ "seconds": 120 })).await;
    assert!(v.get("error").is_some(), "{v}");
    // SIGXCPU at the soft limit, SIGKILL at the hard one a second later
    // (which one ends it depends on how long the dying takes).
    wait_audited_death(&w, &[24, 9]).await;
    answers_again(&mut c).await;
}

#[tokio::test]
async fn ptrace_and_mount_kill_the_server_and_are_audited() {
    let w = start("", "");
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let warden_pid = std::process::id();
    let v = call(&mut c, "ptrace", json!({ "pid": warden_pid })).await;
    assert!(v.get("error").is_some(), "ptrace survived: {v}");
    wait_audited_death(&w, &[31]).await;
    answers_again(&mut c).await;
    let v = call(&mut c, "mount", json!({})).await;
    assert!(v.get("error").is_some(), "mount survived: {v}");
    answers_again(&mut c).await;
}

/// The escalation of issue 19: a stdio server read `api-keys.secret`, added
/// an admin key to `api-keys.json`, and Warden accepted it. Run once
/// unsandboxed (profile `none`) to show the attack works, then in the
/// default sandbox, where it must fail.
#[tokio::test]
async fn api_key_escalation_by_a_stdio_server() {
    for (sandbox, escalates) in [("    sandbox: {profile: none}\n", true), ("", false)] {
        let w = start(
            sandbox,
            "identity:\n  public_url: http://127.0.0.1:1\n  data_dir: '{DIR}/data'\n  api_keys: {enabled: true}\n",
        );
        let key = w.cli(&["keys", "create", "--principal", "tester", "--roles", "user"]);
        let mut c = with_accepted_key(&w, &key, "the tester's key").await;
        c.initialize().await;
        let data = w.dir().join("data").display().to_string();
        let v = call(&mut c, "escalate", json!({ "data_dir": data })).await;
        let t = text(&v);
        let forged = t.strip_prefix("OK: ").map(str::to_owned);
        assert_eq!(forged.is_some(), escalates, "{sandbox:?}: {t}");
        if let Some(forged) = forged {
            // Unsandboxed: Warden picks the forged admin key up.
            with_accepted_key(&w, &forged, "the forged key").await;
        } else {
            let listed = w.cli(&["keys", "list"]);
            assert!(!listed.contains("attacker"), "{listed}");
        }
    }
}

/// A client with `key`, once Warden (which reloads the key store when it
/// changes) accepts it.
async fn with_accepted_key(w: &Warden, key: &str, what: &str) -> Client {
    let mut c = Client::new(&w.url("/mcp"));
    c.extra_headers
        .insert("x-api-key", key.parse().expect("a header value"));
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = c
            .builder(init_body())
            .send()
            .await
            .map(|r| r.status().as_u16());
        if matches!(status, Ok(200)) {
            return c;
        }
        assert!(Instant::now() < deadline, "{what} was never accepted");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn init_body() -> String {
    json!({
        "jsonrpc": "2.0",
        "id": 1,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-06-18",
            "capabilities": {},
            "clientInfo": {"name": "t", "version": "1"}
        }
    })
    .to_string()
}

/// A loopback HTTP site: `/` answers `marker`; `/to-denied` and
/// `/to-metadata` redirect. Counts the connections it accepts.
struct Site {
    port: u16,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Site {
    fn start(marker: &'static str, denied_port: u16) -> Site {
        use std::io::Write;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(mut conn) = conn else { continue };
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 16384 {
                    match conn.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let head = String::from_utf8_lossy(&head);
                let path = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                let response = match path.as_str() {
                    "/to-denied" => format!(
                        "HTTP/1.1 302 Found\r\nLocation: http://127.0.0.1:{denied_port}/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    ),
                    "/to-metadata" => "HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/latest/meta-data/\r\nContent-Length: 0\r\nConnection: close\r\n\r\n".to_owned(),
                    _ => {
                        let body = format!("<html><body><p>{marker}</p></body></html>");
                        format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        )
                    }
                };
                let _ = conn.write_all(response.as_bytes());
            }
        });
        Site { port, hits }
    }

    fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// Issue 19, item 3: mcp-server-fetch in the `network` profile reaches its
/// allowed loopback site through Warden's egress proxy, and nothing else:
/// not another port, not any encoding of the denied address, not a
/// redirect into a denied range, not a name that resolves to a denied
/// address. (The fetch server's own address check is switched off with
/// `--allow-private-ips`: what is tested is Warden's.)
#[tokio::test]
async fn fetch_reaches_only_its_allowed_site_through_the_egress_proxy() {
    let p = crate::peers::Peers::load();
    let denied = Site::start("denied-site-4242", 1);
    let allowed = Site::start("allowed-site-9917", denied.port);
    let fetch = p.get("MCP_SERVER_FETCH");
    let w = Warden::start(&format!(
        "servers:
  fetch:
    command: '{fetch}'
    args: [--ignore-robots-txt, --allow-private-ips]
    sandbox:
      profile: network
      egress: ['127.0.0.1:{a}', '169.254.169.254:80']
      allow_private_network: true
  strict_fetch:
    command: '{fetch}'
    args: [--ignore-robots-txt, --allow-private-ips]
    sandbox:
      profile: network
      egress: ['localhost:{a}']
",
        a = allowed.port
    ));
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let fetch_text = async |c: &mut Client, tool: &str, url: String| -> String {
        let r = c
            .call_tool(tool, json!({"url": url, "raw": true, "max_length": 2000}))
            .await;
        r.response().to_string()
    };

    let ok = fetch_text(
        &mut c,
        "fetch__fetch",
        format!("http://127.0.0.1:{}/", allowed.port),
    )
    .await;
    assert!(ok.contains("allowed-site-9917"), "{ok}");

    let b = denied.port;
    for url in [
        format!("http://127.0.0.1:{b}/"),
        format!("http://0x7f.1:{b}/"),
        format!("http://0x7f000001:{b}/"),
        format!("http://2130706433:{b}/"),
        format!("http://017700000001:{b}/"),
        format!("http://127.1:{b}/"),
        format!("http://[::ffff:127.0.0.1]:{b}/"),
        format!("http://localhost:{b}/"),
        format!("http://127.0.0.1:{}/to-denied", allowed.port),
        format!("http://127.0.0.1:{}/to-metadata", allowed.port),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
    ] {
        let t = fetch_text(&mut c, "fetch__fetch", url.clone()).await;
        assert!(!t.contains("denied-site-4242"), "{url}: {t}");
        assert!(
            !t.contains("allowed-site-9917") || url.contains("/to-"),
            "{url}: {t}"
        );
    }
    // Allowlisted by name, but the name is loopback and this server may not
    // reach private addresses.
    let t = fetch_text(
        &mut c,
        "strict_fetch__fetch",
        format!("http://localhost:{}/", allowed.port),
    )
    .await;
    assert!(!t.contains("allowed-site-9917"), "{t}");
    assert_eq!(denied.hits(), 0, "a connection reached the denied site");

    // Each refusal is in the audit trail, with why.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (_, out, _) = w.cli_status(&["audit", "query", "--json", "--limit", "1000"]);
        let refused: Vec<&str> = out
            .lines()
            .filter(|l| l.contains("\"egress_refused\""))
            .collect();
        let has = |server: &str, code: &str| {
            refused.iter().any(|l| {
                l.contains(&format!("\"server\":\"{server}\""))
                    && l.contains(&format!("\"reason_code\":\"{code}\""))
            })
        };
        if has("fetch", "not_allowlisted")
            && has("fetch", "link_local")
            && has("strict_fetch", "loopback")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "egress refusals not audited: {refused:?}"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// #19.4: a client's roots become the sandboxed server's mounts. Only the
/// roots under `roots.allow` are mounted (read-only) and told to the
/// server (server-filesystem, which replaces its allowed directories with
/// the client's roots); a root outside, a link under `allow` that leads
/// out, and Warden's own directory are refused, never reach the server,
/// and are audited with why.
#[tokio::test]
async fn client_roots_become_the_servers_only_mounts_read_only() {
    let p = crate::peers::Peers::load();
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().canonicalize().unwrap();
    let projects = base.join("projects");
    let a = projects.join("a");
    let outside = base.join("outside");
    std::fs::create_dir_all(&a).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(a.join("notes.txt"), "root-a-content-5521").unwrap();
    std::fs::write(outside.join("secret.txt"), "outside-secret-8813").unwrap();
    std::os::unix::fs::symlink(&outside, projects.join("escape")).unwrap();
    let wdir = tempfile::tempdir().unwrap();
    let wpath = wdir.path().canonicalize().unwrap();
    let w = Warden::start_in(
        wdir,
        &format!(
            "servers:\n  fs:\n    command: '{}'\n    args: ['{}']\n    sandbox:\n      roots: {{allow: ['{}', '{}']}}\n",
            p.get("NODE20"),
            p.get("SERVER_FILESYSTEM"),
            projects.display(),
            wpath.display(),
        ),
        &[],
    );
    let uri = |p: &Path| format!("file://{}", p.display());
    let mut args: Vec<String> = vec![
        p.driver("py_client.py").display().to_string(),
        "--url".into(),
        w.url("/mcp"),
        "--timeout".into(),
        "90".into(),
    ];
    for r in [&a, &outside, &projects.join("escape"), &wpath] {
        args.extend(["--root".into(), uri(r)]);
    }
    args.extend([
        "--first-until".into(),
        a.display().to_string(),
        "--call".into(),
        "fs__list_allowed_directories".into(),
        "--call".into(),
        "fs__read_text_file".into(),
        "--args".into(),
        json!({"path": a.join("notes.txt")}).to_string(),
        "--call".into(),
        "fs__read_text_file".into(),
        "--args".into(),
        json!({"path": outside.join("secret.txt")}).to_string(),
        "--call".into(),
        "fs__write_file".into(),
        "--args".into(),
        json!({"path": a.join("new.txt"), "content": "x"}).to_string(),
    ]);
    let py = p.get("PY1").to_owned();
    let out = tokio::task::spawn_blocking(move || crate::peers::run_driver(&py, &args))
        .await
        .unwrap();
    let calls = out["calls"].as_array().cloned().unwrap_or_default();
    assert_eq!(calls.len(), 4, "{out}");
    let dirs = calls[0]["text"].as_str().unwrap_or_default();
    assert!(dirs.contains(&a.display().to_string()), "{out}");
    assert!(
        !dirs.contains(&outside.display().to_string())
            && !dirs.contains(&wpath.display().to_string()),
        "the server was told a refused root: {dirs}"
    );
    assert!(
        calls[1]["text"]
            .as_str()
            .is_some_and(|t| t.contains("root-a-content-5521")),
        "the mounted root is not readable: {out}"
    );
    assert_ne!(calls[2]["ok"], true, "{out}");
    assert!(!out.to_string().contains("outside-secret-8813"), "{out}");
    assert_ne!(calls[3]["ok"], true, "a read-only root was written: {out}");
    assert!(!a.join("new.txt").exists(), "a read-only root was written");

    // Each refusal, and the mount, is in the audit trail.
    let (_, trail, _) = w.cli_status(&["audit", "query", "--json", "--limit", "1000"]);
    let roots: Vec<Value> = trail
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["kind"] == "roots")
        .collect();
    let reason_of = |root: &Path| -> Vec<String> {
        roots
            .iter()
            .filter(|v| v["action"].as_str() == Some(uri(root).as_str()))
            .filter_map(|v| v["reason_code"].as_str().map(str::to_owned))
            .collect()
    };
    assert!(
        reason_of(&outside).contains(&"outside_allowed".to_owned()),
        "{roots:?}"
    );
    assert!(
        reason_of(&projects.join("escape")).contains(&"outside_allowed".to_owned()),
        "{roots:?}"
    );
    assert!(
        reason_of(&wpath).contains(&"protected".to_owned()),
        "{roots:?}"
    );
    assert!(reason_of(&a).contains(&"mounted".to_owned()), "{roots:?}");
}

/// `warden check` says what each sandboxed server can read, write and
/// reach, client roots included; a `roots` section without `allow` is an
/// error naming its path.
#[test]
fn check_prints_what_each_server_can_read_write_and_reach() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().canonicalize().unwrap();
    let data = base.join("data");
    std::fs::create_dir_all(&data).unwrap();
    let cfg = base.join("warden.yaml");
    std::fs::write(
        &cfg,
        format!(
            "servers:\n  fs:\n    command: python3\n    args: ['{}']\n    sandbox:\n      write: ['{}/']\n      roots: {{allow: ['{}'], mount: write}}\n  web:\n    command: python3\n    sandbox: {{profile: network, egress: [example.com:443]}}\n  raw:\n    command: python3\n    sandbox: {{profile: none}}\n",
            hostile_script(),
            data.display(),
            base.join("projects").display(),
        ),
    )
    .unwrap();
    let check = || {
        let out = std::process::Command::new(crate::harness::WARDEN)
            .args(["check", "-c"])
            .arg(&cfg)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).to_string()
            + &String::from_utf8_lossy(&out.stderr);
        (out.status.success(), text)
    };
    let (ok, text) = check();
    assert!(ok, "{text}");
    let line = |name: &str| {
        text.lines()
            .find(|l| l.trim_start().starts_with(name))
            .unwrap_or_else(|| panic!("no line for {name}: {text}"))
            .to_owned()
    };
    let fs = line("fs (");
    assert!(fs.contains(&format!("writes {}", data.display())), "{fs}");
    assert!(
        fs.contains(&format!(
            "the client's roots under {} (writable)",
            base.join("projects").display()
        )),
        "{fs}"
    );
    assert!(fs.contains("reaches nothing"), "{fs}");
    assert!(
        line("web (").contains("the egress proxy to example.com:443"),
        "{text}"
    );
    assert!(line("raw:").contains("not sandboxed"), "{text}");

    std::fs::write(
        &cfg,
        "servers:\n  fs:\n    command: python3\n    sandbox:\n      roots: {mount: read}\n",
    )
    .unwrap();
    let (ok, text) = check();
    assert!(!ok, "{text}");
    assert!(text.contains("servers.fs.sandbox.roots.allow"), "{text}");
}
