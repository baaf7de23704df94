//! Real clients through Warden, in front of real servers federated at once.
//!
//! Needs the peers that `scripts/install-peers.sh` installs (`.peers/`);
//! a missing installation fails the test with the command to run.

use std::collections::HashMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use crate::harness::*;

pub struct Peers {
    env: HashMap<String, String>,
    root: PathBuf,
}

impl Peers {
    pub fn load() -> Peers {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let file = root.join(".peers/env.json");
        let text = std::fs::read_to_string(&file).unwrap_or_else(|_| {
            panic!(
                "real MCP peers are not installed ({} missing): run scripts/install-peers.sh",
                file.display()
            )
        });
        let env: HashMap<String, String> = serde_json::from_str(&text).expect("env.json");
        Peers { env, root }
    }

    pub fn get(&self, k: &str) -> &str {
        self.env
            .get(k)
            .unwrap_or_else(|| panic!("{k} missing from .peers/env.json"))
    }

    pub fn driver(&self, name: &str) -> PathBuf {
        self.root.join("tests/peers").join(name)
    }
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// server-everything in an HTTP mode (`streamableHttp` or `sse`) on a loopback port.
pub(crate) fn everything_http(p: &Peers, mode: &str) -> (Proc, u16) {
    let port = free_port();
    let proc = spawn(
        Command::new(p.get("NODE22"))
            .args([
                "--require",
                p.get("LOOPBACK_ONLY_CJS"),
                p.get("SERVER_EVERYTHING"),
                mode,
            ])
            .env("PORT", port.to_string()),
    );
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return (proc, port);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server-everything did not listen on {port}");
}

/// Every reference server behind one Warden.
pub struct Federation {
    pub dir: tempfile::TempDir,
    pub yaml: String,
    _http_upstream: Proc,
    _sse_upstream: Proc,
}

impl Federation {
    pub fn new(p: &Peers) -> Federation {
        let dir = tempfile::tempdir().unwrap();
        let repo = dir.path().join("repo");
        std::fs::create_dir_all(&repo).unwrap();
        let git = |args: &[&str]| {
            let ok = Command::new("git")
                .args(args)
                .current_dir(&repo)
                .output()
                .map(|o| o.status.success());
            assert!(matches!(ok, Ok(true)), "git {args:?} failed");
        };
        git(&["init", "-q"]);
        std::fs::write(repo.join("README.md"), "hello\n").unwrap();
        git(&["add", "README.md"]);
        git(&[
            "-c",
            "user.email=t@example.com",
            "-c",
            "user.name=t",
            "commit",
            "-qm",
            "init",
        ]);
        let files = dir.path().join("files");
        std::fs::create_dir_all(&files).unwrap();
        std::fs::write(files.join("note.txt"), "filesystem works\n").unwrap();
        let (http, port) = everything_http(p, "streamableHttp");
        let (sse, sse_port) = everything_http(p, "sse");
        let yaml = format!(
            r#"
servers:
  everything:
    command: '{node22}'
    args: ['{everything}', stdio]
  everything_http:
    url: http://127.0.0.1:{port}/mcp
  everything_sse:
    transport: sse
    url: http://127.0.0.1:{sse_port}/sse
  fs:
    command: '{node20}'
    args: ['{filesystem}', '{files}']
  memory:
    command: '{node20}'
    args: ['{memory}']
    env: {{MEMORY_FILE_PATH: '{mem}'}}
    sandbox: {{write: ['{memdir}/']}}
  time:
    command: '{time}'
  git:
    command: '{gitsrv}'
    args: [--repository, '{repo}']
"#,
            node22 = p.get("NODE22"),
            node20 = p.get("NODE20"),
            everything = p.get("SERVER_EVERYTHING"),
            filesystem = p.get("SERVER_FILESYSTEM"),
            memory = p.get("SERVER_MEMORY"),
            mem = dir.path().join("memory/memory.jsonl").display(),
            // Its directory, not the file: server-memory replaces the file
            // by renaming a new one over it.
            memdir = dir.path().join("memory").display(),
            time = p.get("MCP_SERVER_TIME"),
            gitsrv = p.get("MCP_SERVER_GIT"),
            files = files.display(),
            repo = repo.display(),
        );
        Federation {
            dir,
            yaml,
            _http_upstream: http,
            _sse_upstream: sse,
        }
    }

    fn files(&self) -> String {
        self.dir.path().join("files").display().to_string()
    }

    fn repo(&self) -> String {
        self.dir.path().join("repo").display().to_string()
    }

    /// The scenario every client runs: one call per server, sampling and
    /// elicitation round trips, a resource and a prompt.
    pub fn scenario(&self, full: bool) -> Vec<String> {
        let mut a: Vec<String> = vec!["--list".into()];
        let mut call = |name: &str, args: String| {
            a.extend(["--call".into(), name.into(), "--args".into(), args]);
        };
        call("everything__echo", r#"{"message":"through warden"}"#.into());
        call("everything__get-sum", r#"{"a":2,"b":3}"#.into());
        call(
            "everything_http__echo",
            r#"{"message":"http upstream"}"#.into(),
        );
        call(
            "fs__read_text_file",
            format!(r#"{{"path":"{}/note.txt"}}"#, self.files()),
        );
        // Inside its sandbox, server-memory's file is its one writable path.
        call(
            "memory__create_entities",
            r#"{"entities":[{"name":"warden","entityType":"gateway","observations":["sandboxed"]}]}"#
                .into(),
        );
        call("memory__read_graph", "{}".into());
        call("time__get_current_time", r#"{"timezone":"UTC"}"#.into());
        call(
            "git__git_status",
            format!(r#"{{"repo_path":"{}"}}"#, self.repo()),
        );
        if full {
            call(
                "everything__trigger-sampling-request",
                r#"{"prompt":"hello"}"#.into(),
            );
            call("everything__trigger-elicitation-request", "{}".into());
            call(
                "everything_http__trigger-sampling-request",
                r#"{"prompt":"over http"}"#.into(),
            );
        }
        a.extend([
            "--read".into(),
            "demo://resource/static/document/architecture.md".into(),
            "--prompt".into(),
            "everything__args-prompt".into(),
            "--prompt-args".into(),
            r#"{"city":"Paris"}"#.into(),
        ]);
        a
    }
}

/// Runs a driver and returns its JSON.
pub(crate) fn run_driver(program: &str, args: &[String]) -> Value {
    let out = Command::new(program)
        .args(args)
        .output()
        .expect("driver runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "driver printed no JSON ({e}); status {:?}\nstdout: {stdout}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
    });
    v
}

fn call<'a>(v: &'a Value, name: &str) -> &'a Value {
    v["calls"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["name"] == name))
        .unwrap_or_else(|| panic!("no call {name} in {v}"))
}

/// Checks a scenario's JSON: every step succeeded and reached its server.
fn check(v: &Value, full: bool, label: &str) {
    assert_eq!(
        v["ok"],
        true,
        "{label}: {}",
        serde_json::to_string_pretty(v).unwrap_or_default()
    );
    let tools: Vec<&str> = v["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    for prefix in [
        "everything__",
        "everything_http__",
        "fs__",
        "memory__",
        "time__",
        "git__",
    ] {
        assert!(
            tools.iter().any(|t| t.starts_with(prefix)),
            "{label}: no {prefix} tools in {tools:?}"
        );
    }
    assert!(
        tools.iter().all(|t| t.contains("__")),
        "{label}: un-namespaced tool in {tools:?}"
    );
    let text = |n: &str| call(v, n)["text"].as_str().unwrap_or_default().to_owned();
    assert!(
        text("everything__echo").contains("through warden"),
        "{label}"
    );
    assert!(text("everything__get-sum").contains('5'), "{label}");
    assert!(
        text("everything_http__echo").contains("http upstream"),
        "{label}"
    );
    assert!(
        text("fs__read_text_file").contains("filesystem works"),
        "{label}"
    );
    assert!(
        text("time__get_current_time").contains("UTC"),
        "{label}: {}",
        text("time__get_current_time")
    );
    assert!(
        text("git__git_status").to_lowercase().contains("branch"),
        "{label}: {}",
        text("git__git_status")
    );
    if full {
        assert!(
            text("everything__trigger-sampling-request").contains("sampled:"),
            "{label}: {}",
            text("everything__trigger-sampling-request")
        );
        assert!(
            text("everything_http__trigger-sampling-request").contains("sampled:"),
            "{label}"
        );
        assert!(
            call(v, "everything__trigger-elicitation-request")["ok"] == true,
            "{label}"
        );
        let cb = &v["callbacks"];
        assert!(
            cb["sampling"].as_array().is_some_and(|s| s.len() >= 2),
            "{label}: {cb}"
        );
        assert!(
            cb["elicitation"].as_array().is_some_and(|s| !s.is_empty()),
            "{label}: {cb}"
        );
    }
    assert_eq!(v["reads"][0]["ok"], true, "{label}");
    assert_eq!(v["prompts_got"][0]["ok"], true, "{label}");
}

fn client_args(
    p: &Peers,
    driver: &str,
    transport: &[&str],
    fed: &Federation,
    full: bool,
) -> Vec<String> {
    let mut a = vec![p.driver(driver).display().to_string()];
    a.extend(transport.iter().map(|s| s.to_string()));
    a.extend(["--timeout".into(), "90".into()]);
    a.extend(fed.scenario(full));
    a
}

/// Each SDK client over each transport through one Warden.
fn run_clients(python_or_node: &str, driver: &str, stdio_ok: bool) {
    let p = Peers::load();
    let fed = Federation::new(&p);
    let w = Warden::start(&fed.yaml);
    let program = p.get(python_or_node).to_owned();
    let http = w.url("/mcp");
    let sse = w.url("/sse");
    let v = run_driver(
        &program,
        &client_args(
            &p,
            driver,
            &["--transport", "streamable-http", "--url", &http],
            &fed,
            true,
        ),
    );
    check(&v, true, &format!("{driver} streamable-http"));
    // server-memory wrote its file from inside its sandbox.
    let memory =
        std::fs::read_to_string(fed.dir.path().join("memory/memory.jsonl")).unwrap_or_default();
    assert!(memory.contains("sandboxed"), "memory file: {memory:?}");
    let v = run_driver(
        &program,
        &client_args(
            &p,
            driver,
            &["--transport", "sse", "--url", &sse],
            &fed,
            true,
        ),
    );
    check(&v, true, &format!("{driver} sse"));
    // The reference servers did their work with the sandbox refusing them
    // nothing but one thing (every refusal is audited): `git status`
    // refreshes the index opportunistically, and its repository is
    // mounted read-only, so its `index.lock` is refused (git goes on).
    let (_, trail, _) = w.cli_status(&["audit", "query", "--json", "--limit", "5000"]);
    let lock = format!("{}/.git/index.lock", fed.repo());
    let refused: Vec<Value> = trail
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| v["kind"] == "sandbox_refused")
        .filter(|v| !(v["server"] == "git" && v["action"] == lock.as_str()))
        .collect();
    assert!(refused.is_empty(), "{driver}: {refused:#?}");
    if stdio_ok {
        let cfg = fed.dir.path().join("warden.yaml");
        std::fs::write(
            &cfg,
            with_tofu(&fed.yaml).replace("{DIR}", &fed.dir.path().display().to_string()),
        )
        .unwrap();
        let mut args = client_args(&p, driver, &[], &fed, true);
        args.extend([
            "--command".into(),
            WARDEN.into(),
            "stdio".into(),
            "--config".into(),
            cfg.display().to_string(),
        ]);
        let v = run_driver(&program, &args);
        check(&v, true, &format!("{driver} stdio"));
    }
}

#[test]
fn python_sdk_1x_through_warden() {
    run_clients("PY1", "py_client.py", true);
}

#[test]
fn python_sdk_2x_through_warden() {
    run_clients("PY2", "py_client.py", true);
}

#[test]
fn typescript_sdk_through_warden() {
    run_clients("NODE20", "ts_client.mjs", true);
}

#[test]
fn inspector_cli_through_warden() {
    let p = Peers::load();
    let fed = Federation::new(&p);
    let w = Warden::start(&fed.yaml);
    let sh = p.driver("inspector.sh").display().to_string();
    let run = |args: &[&str]| -> Value {
        let out = Command::new("bash")
            .arg(&sh)
            .args(args)
            .output()
            .expect("inspector runs");
        let stdout = String::from_utf8_lossy(&out.stdout);
        serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
            panic!(
                "inspector printed no JSON ({e}): {stdout}\n{}",
                String::from_utf8_lossy(&out.stderr)
            )
        })
    };
    for (url, transport) in [(w.url("/mcp"), "http"), (w.url("/sse"), "sse")] {
        let list = run(&[
            "--url",
            &url,
            "--transport",
            transport,
            "--method",
            "tools/list",
        ]);
        let s = list.to_string();
        assert!(
            s.contains("everything__echo") && s.contains("git__git_status"),
            "{transport}: {s}"
        );
        let call = run(&[
            "--url",
            &url,
            "--transport",
            transport,
            "--method",
            "tools/call",
            "--tool-name",
            "time__get_current_time",
            "--tool-args-json",
            r#"{"timezone":"UTC"}"#,
        ]);
        assert!(call.to_string().contains("UTC"), "{transport}: {call}");
        let read = run(&[
            "--url",
            &url,
            "--transport",
            transport,
            "--method",
            "resources/read",
            "--uri",
            "demo://resource/static/document/architecture.md",
        ]);
        assert!(read.to_string().contains("contents"), "{transport}: {read}");
    }
}

/// The official conformance suite (0.1.x, session-era server scenarios),
/// in one run against the upstream directly and through Warden: every
/// scenario that passes directly passes through Warden.
#[test]
fn conformance_suite_passes_through_warden() {
    let p = Peers::load();
    let port = free_port();
    let _upstream = spawn(
        Command::new(p.get("PY2"))
            .arg(p.driver("conformance_server.py"))
            .args(["--port", &port.to_string()]),
    );
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let w = Warden::start(&format!(
        "servers:\n  conf:\n    url: http://127.0.0.1:{port}/mcp\nvirtual_servers:\n  conformance:\n    servers: [conf]\n    namespace: false\n"
    ));
    let dir = tempfile::tempdir().unwrap();
    let script = p.root.join("scripts/conformance.sh");
    let run = |url: &str, out: &Path| {
        let status = Command::new("bash")
            .arg(&script)
            .args(["v1", url])
            .arg(out)
            .status()
            .expect("conformance runs");
        assert!(
            status.code().is_some_and(|c| c <= 1),
            "conformance.sh could not run against {url}"
        );
        let v: Value = serde_json::from_str(&std::fs::read_to_string(out).unwrap()).unwrap();
        v
    };
    let direct = run(
        &format!("http://127.0.0.1:{port}/mcp"),
        &dir.path().join("direct.json"),
    );
    let through = run(&w.url("/mcp/conformance"), &dir.path().join("warden.json"));
    let scenarios = direct["scenarios"].as_object().expect("scenarios");
    assert!(
        scenarios.len() >= 25,
        "the suite ran too few scenarios: {direct}"
    );
    let mut regressions = Vec::new();
    for (name, d) in scenarios {
        if d["status"] == "pass" && through["scenarios"][name]["status"] != "pass" {
            regressions.push(format!(
                "{name}: {}",
                through["scenarios"][name]["failures"]
            ));
        }
    }
    assert!(
        regressions.is_empty(),
        "pass directly, fail through Warden:\n{}",
        regressions.join("\n")
    );
    eprintln!(
        "conformance: direct {} / through Warden {}",
        direct["totals"], through["totals"]
    );
}

/// T02: a real server (Python SDK) offering poisoned tools — hidden
/// instructions in a description and in a parameter's description. They
/// never reach the client, calls to them are refused before the upstream,
/// and the honest tool works.
#[tokio::test]
async fn poisoned_tools_are_hidden_and_refused() {
    let p = Peers::load();
    let w = Warden::start(&format!(
        "servers:\n  shady:\n    command: '{}'\n    args: ['{}']\n",
        p.get("PY2"),
        p.driver("poisoned_server.py").display()
    ));
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let names = c.tool_names().await;
    assert_eq!(
        names,
        vec!["shady__add".to_string()],
        "poisoned tools listed: {names:?}"
    );
    for name in ["shady__multiply", "shady__greet"] {
        let r = c
            .call_tool(name, serde_json::json!({"a": 2, "b": 3, "name": "x"}))
            .await;
        assert_eq!(r.error_code(), -32602, "{name}: {}", r.raw);
    }
    let r = c
        .call_tool("shady__add", serde_json::json!({"a": 2, "b": 3}))
        .await;
    assert_eq!(text_of(r.result()), "5", "{}", r.raw);
}

/// T02 in strict mode: `warden registry pin` refuses the real server's
/// poisoned tools (exit 1) and pins the honest one, which alone is exposed;
/// calls to the others are refused as not approved.
#[tokio::test]
async fn poisoned_tools_are_refused_by_registry_pin_in_strict_mode() {
    let p = Peers::load();
    let w = Warden::start(&format!(
        "registry: {{lock: '{{DIR}}/warden.lock'}}\nservers:\n  shady:\n    command: '{}'\n    args: ['{}']\n",
        p.get("PY2"),
        p.driver("poisoned_server.py").display()
    ));
    let (ok, out, err) = w.cli_status(&["registry", "pin"]);
    assert!(!ok, "pin accepted poisoned tools:\n{out}{err}");
    for t in ["multiply", "greet"] {
        assert!(
            out.contains(&format!("! shady/tool/{t}  refused by the scanner")),
            "{t}:\n{out}"
        );
    }
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let mut c = loop {
        let mut c = Client::new(&w.url("/mcp"));
        c.initialize().await;
        if c.tool_names().await == vec!["shady__add".to_string()] {
            break c;
        }
        assert!(std::time::Instant::now() < deadline, "add never listed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    for name in ["shady__multiply", "shady__greet"] {
        let r = c
            .call_tool(name, serde_json::json!({"a": 2, "b": 3, "name": "x"}))
            .await;
        assert_eq!(r.error_code(), -32015, "{name}: {}", r.raw);
    }
}

/// #15.11: without authentication every client is `anonymous`. Client A
/// declares the root `file:///`; server-filesystem replaces its allowed
/// directories with a client's roots. Client B (no roots) must not get a
/// process that A's roots opened: B reads nothing outside the directory
/// Warden's configuration gave the server.
#[tokio::test]
async fn one_clients_roots_never_widen_another_clients_filesystem() {
    let p = Peers::load();
    let dir = tempfile::tempdir().unwrap();
    let allowed = dir.path().join("allowed");
    let outside = dir.path().join("outside");
    std::fs::create_dir_all(&allowed).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    std::fs::write(allowed.join("ok.txt"), "allowed content").unwrap();
    let secret = outside.join("secret.txt");
    std::fs::write(&secret, "outside-secret-4471").unwrap();
    let w = Warden::start(&format!(
        "servers:\n  fs:\n    command: '{}'\n    args: ['{}', '{}']\n",
        p.get("NODE20"),
        p.get("SERVER_FILESYSTEM"),
        allowed.display()
    ));
    let url = w.url("/mcp");
    let driver = p.driver("py_client.py").display().to_string();
    let py = p.get("PY1").to_owned();

    // A: roots `file:///`, stays connected while B works.
    let a_args: Vec<String> = vec![
        driver.clone(),
        "--url".into(),
        url.clone(),
        "--root".into(),
        "file:///".into(),
        "--call".into(),
        "fs__list_allowed_directories".into(),
        "--hold".into(),
        "12".into(),
    ];
    let a = std::thread::spawn({
        let py = py.clone();
        move || run_driver(&py, &a_args)
    });
    // A's call is done (and its roots were asked for) once it is audited.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let (_, out, _) = w.cli_status(&["audit", "query", "--json"]);
        if out.contains("list_allowed_directories") {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "A never called");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let b_args: Vec<String> = vec![
        driver,
        "--url".into(),
        url,
        "--no-callbacks".into(),
        "--call".into(),
        "fs__read_text_file".into(),
        "--args".into(),
        serde_json::json!({"path": secret.display().to_string()}).to_string(),
    ];
    let b = tokio::task::spawn_blocking(move || run_driver(&py, &b_args))
        .await
        .unwrap();
    assert!(
        !b.to_string().contains("outside-secret-4471"),
        "client B read a file only client A's roots allowed: {b}"
    );
    assert_eq!(call(&b, "fs__read_text_file")["ok"], false, "{b}");
    let a = a.join().unwrap();
    assert_eq!(a["ok"], true, "{a}");
}
