//! The tool registry through the real binary (T02, T03, T04, T21): rug
//! pulls announced and silent, strict mode, a changed server command line,
//! poisoned tools from the MSB corpus, `warden registry` and `warden scan`.
//! Every refusal is also checked on the upstream's side (its `--record`
//! file): a refused call must never reach it.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::harness::*;
use crate::peers::free_port;

/// The example server in test mode over Streamable HTTP, so that the
/// gateway and `warden registry` see the same server state.
fn http_example(rec: &Path) -> (Proc, u16) {
    let port = free_port();
    let proc = spawn(
        Command::new(WARDEN)
            .args(["example-server", "--mode", "test", "--http"])
            .arg(format!("127.0.0.1:{port}"))
            .arg("--record")
            .arg(rec),
    );
    for _ in 0..400 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            break;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    (proc, port)
}

/// Polls `f` until it returns `Some`, for up to 15 s.
async fn eventually<T>(what: &str, mut f: impl AsyncFnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn lock_text(w: &Warden) -> String {
    std::fs::read_to_string(w.dir().join("warden.lock")).unwrap_or_default()
}

fn message_of(r: &Reply) -> String {
    r.response()["error"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

#[tokio::test]
async fn registry_rug_pull_with_list_changed_is_hidden_refused_audited_and_diffed() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec.jsonl");
    let (_up, port) = http_example(&rec);
    let w = Warden::start(&format!(
        "registry: {{mode: tofu, lock: '{{DIR}}/warden.lock'}}\nservers:\n  t:\n    url: http://127.0.0.1:{port}/mcp\n"
    ));
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    assert!(c.tool_names().await.contains(&"t__echo".to_owned()));
    let r = c.call_tool("t__echo", json!({"message": "BEFORE"})).await;
    assert_eq!(text_of(r.result()), "BEFORE");
    // Trust on first use: pinned, and saved off the request path.
    eventually("the tofu pins on disk", async || {
        lock_text(&w).contains("name = \"echo\"").then_some(())
    })
    .await;

    let r = c.call_tool("t__change_tools", json!({})).await;
    assert!(r.result().is_object(), "{}", r.raw);
    let names = c.tool_names().await;
    assert!(!names.contains(&"t__echo".to_owned()), "{names:?}");
    assert!(names.contains(&"t__whoami".to_owned()), "{names:?}");
    let r = c
        .call_tool("t__echo", json!({"message": "AFTER-RUGPULL"}))
        .await;
    assert_eq!(r.error_code(), -32015, "{}", r.raw);
    assert_eq!(message_of(&r), "tool changed since approval");
    assert!(
        !recorded(&rec).contains("AFTER-RUGPULL"),
        "a refused call reached the upstream"
    );

    // The audit trail: a drift record with both hashes, and the refused call.
    let drift = eventually("a drift record", async || {
        let (_, out, _) = w.cli_status(&["audit", "query", "--json", "--server", "t"]);
        out.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .find(|e| e["kind"] == "drift" && e["tool"] == "echo")
    })
    .await;
    let pinned = drift["lifecycle"]["pinned_hash"].as_str().unwrap_or("");
    let live = drift["lifecycle"]["live_hash"].as_str().unwrap_or("");
    assert!(
        pinned.starts_with("sha256:") && live.starts_with("sha256:"),
        "{drift}"
    );
    assert_ne!(pinned, live, "{drift}");
    assert!(
        lock_text(&w).contains(pinned),
        "the pinned hash is not the lock's"
    );
    let (_, out, _) = w.cli_status(&["audit", "query", "--json", "--server", "t"]);
    assert!(
        out.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .any(|e| e["kind"] == "call"
                && e["tool"] == "echo"
                && e["reason_code"] == "registry.drifted"
                && e["manifest_hash"] == live),
        "no refused call record:\n{out}"
    );

    // `warden registry diff` shows the field that changed (exit 1).
    let (ok, out, err) = w.cli_status(&["registry", "diff"]);
    assert!(!ok, "diff exited 0:\n{out}{err}");
    assert!(out.contains("~ t/tool/echo"), "{out}{err}");
    assert!(out.contains("/description"), "{out}");
    assert!(out.contains("revision 2"), "{out}");

    // Re-approval clears the block.
    let (ok, out, err) = w.cli_status(&["registry", "approve", "--server", "t", "--tool", "echo"]);
    assert!(ok, "{out}{err}");
    eventually("echo callable after approval", async || {
        let r = c.call_tool("t__echo", json!({"message": "APPROVED"})).await;
        r.response().get("result").map(|_| ())
    })
    .await;
    assert!(recorded(&rec).contains("APPROVED"));
}

#[tokio::test]
async fn registry_silent_rug_pull_is_refused_at_the_next_call() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec.jsonl");
    let w = Warden::start(&format!(
        "registry: {{mode: tofu, lock: '{{DIR}}/warden.lock'}}\nservers:\n{}",
        example_server("t", "test", &record_arg(&rec))
    ));
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    assert!(c.tool_names().await.contains(&"t__echo".to_owned()));
    let r = c.call_tool("t__echo", json!({"message": "BEFORE"})).await;
    assert_eq!(text_of(r.result()), "BEFORE");
    let r = c.call_tool("t__change_tools_silently", json!({})).await;
    assert!(r.result().is_object(), "{}", r.raw);
    // No notification: the cached definition is re-fetched once older than
    // `registry.revalidate_after` (default 1 s).
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let r = c
        .call_tool("t__echo", json!({"message": "AFTER-SILENT"}))
        .await;
    assert_eq!(r.error_code(), -32015, "{}", r.raw);
    assert_eq!(message_of(&r), "tool changed since approval");
    assert!(!recorded(&rec).contains("AFTER-SILENT"));
    assert!(!c.tool_names().await.contains(&"t__echo".to_owned()));
}

#[tokio::test]
async fn registry_strict_mode_exposes_only_what_is_pinned() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec.jsonl");
    // Strict is the default: no `mode:`.
    let w = Warden::start(&format!(
        "registry: {{lock: '{{DIR}}/warden.lock'}}\nservers:\n{}",
        example_server("t", "test", &record_arg(&rec))
    ));
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    assert_eq!(c.tool_names().await, Vec::<String>::new());
    let r = c.call_tool("t__echo", json!({"message": "UNPINNED"})).await;
    assert_eq!(r.error_code(), -32015, "{}", r.raw);
    assert!(message_of(&r).contains("server not approved"), "{}", r.raw);
    assert!(!recorded(&rec).contains("UNPINNED"));

    let (ok, out, err) = w.cli_status(&["registry", "pin", "--approver", "alice"]);
    assert!(ok, "pin failed:\n{out}{err}");
    assert!(out.contains("+ t/tool/echo  pinned"), "{out}");
    let lock = lock_text(&w);
    assert!(lock.contains("approved_by = \"alice\""), "{lock}");
    assert!(lock.contains("transport = \"stdio\""), "{lock}");
    // The running gateway picks the lock file up.
    let names = eventually("pinned tools listed", async || {
        let mut c = Client::new(&w.url("/mcp"));
        c.initialize().await;
        let names = c.tool_names().await;
        names.contains(&"t__echo".to_owned()).then_some(names)
    })
    .await;
    assert!(names.contains(&"t__whoami".to_owned()), "{names:?}");
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let r = c.call_tool("t__echo", json!({"message": "PINNED"})).await;
    assert_eq!(text_of(r.result()), "PINNED");

    // A tool the lock does not know (as if the server added it after
    // approval) stays hidden and refused.
    let lock = lock_text(&w);
    let without: Vec<&str> = lock
        .split("[[item]]")
        .filter(|block| !block.contains("name = \"whoami\""))
        .collect();
    assert!(without.len() < lock.split("[[item]]").count());
    std::fs::write(w.dir().join("warden.lock"), without.join("[[item]]")).unwrap();
    eventually("whoami hidden", async || {
        (!c.tool_names().await.contains(&"t__whoami".to_owned())).then_some(())
    })
    .await;
    let r = c.call_tool("t__whoami", json!({})).await;
    assert_eq!(r.error_code(), -32015, "{}", r.raw);
    assert_eq!(message_of(&r), "tool not approved");
    assert!(
        !recorded(&rec)
            .lines()
            .any(|l| l.contains("tools/call") && l.contains("whoami")),
        "a refused call reached the upstream"
    );
}

#[tokio::test]
async fn registry_changed_command_line_stops_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let rec = dir.path().join("rec.jsonl");
    let rec2 = dir.path().join("rec2.jsonl");
    let yaml = |rec: &Path| {
        format!(
            "registry: {{lock: '{{DIR}}/warden.lock'}}\nservers:\n{}",
            example_server("t", "test", &record_arg(rec))
        )
    };
    let w = Warden::start(&yaml(&rec));
    let (ok, out, err) = w.cli_status(&["registry", "pin"]);
    assert!(ok, "{out}{err}");
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let r = eventually("echo callable", async || {
        let r = c.call_tool("t__echo", json!({"message": "ONE"})).await;
        r.response().get("result").is_some().then_some(r)
    })
    .await;
    assert_eq!(text_of(r.result()), "ONE");

    // Same server name, another command line (a new `--record` argument):
    // after a restart it must not start.
    let w = Warden::start_in(w.kill(), &yaml(&rec2), &[]);
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    assert_eq!(c.tool_names().await, Vec::<String>::new());
    let r = c.call_tool("t__echo", json!({"message": "TWO"})).await;
    assert_eq!(r.error_code(), -32015, "{}", r.raw);
    let msg = message_of(&r);
    assert!(msg.contains("'t'"), "{msg}");
    assert!(
        msg.contains("server identity changed since approval"),
        "{msg}"
    );
    assert!(!rec2.exists(), "the changed server was started");
    let (ok, out, _) = w.cli_status(&["registry", "diff"]);
    assert!(!ok);
    assert!(out.contains("identity changed since approval"), "{out}");
    assert!(out.contains("/args"), "{out}");
}

/// The MSB corpus' poisoned descriptions as tools, FastMCP-shaped (the
/// description is the docstring, each parameter a titled string).
fn msb_poisoned_tools() -> Vec<Value> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/corpora/tool-poisoning-msb/msb_tool_descriptions.jsonl");
    let path = std::env::var_os("WARDEN_CORPORA")
        .map(|d| PathBuf::from(d).join("tool-poisoning-msb/msb_tool_descriptions.jsonl"))
        .unwrap_or(path);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (set WARDEN_CORPORA)", path.display()));
    let mut seen = std::collections::HashSet::new();
    text.lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|row| row["label"] == "attack" && row["description_changed"] == true)
        .filter_map(|row| {
            // Tool names repeat across variants; one of each name (a
            // server cannot offer two tools of one name).
            let name = row["tool_name"].as_str()?.to_owned();
            if !seen.insert(name.clone()) {
                return None;
            }
            let params: Vec<String> = row["params"]
                .as_array()?
                .iter()
                .filter_map(|p| p.as_str().map(str::to_owned))
                .collect();
            let props: serde_json::Map<String, Value> = params
                .iter()
                .map(|p| (p.clone(), json!({"title": p, "type": "string"})))
                .collect();
            Some(json!({
                "name": name,
                "description": row["description"],
                "inputSchema": {"type": "object", "properties": props, "required": params},
            }))
        })
        .collect()
}

/// Writes the poisoned tools and returns (file, names).
fn poisoned_tools_file(dir: &Path) -> (PathBuf, Vec<String>) {
    let tools = msb_poisoned_tools();
    let scanner = warden_registry::Scanner::new();
    let verdict = |t: &Value| {
        let raw = serde_json::value::RawValue::from_string(t.to_string()).unwrap();
        scanner.scan_manifest(&raw).0
    };
    let flagged = tools
        .iter()
        .filter(|t| verdict(t) != warden_registry::Verdict::Ok)
        .count();
    // The scanner's own floor on this corpus is 95 % flagged
    // (crates/registry/tests/corpora.rs). Most of its attacks are one weak
    // signal (a self-superlative, a parameter asking the model's name),
    // which warns and does not block alone (issue #20): the tools that do
    // block are the ones that must never reach a client.
    assert!(
        flagged * 100 >= tools.len() * 95,
        "only {flagged} of {} poisoned tools flagged",
        tools.len()
    );
    let names: Vec<String> = tools
        .iter()
        .filter(|t| verdict(t) == warden_registry::Verdict::Block)
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    assert!(!names.is_empty(), "no poisoned tool blocked");
    let only_blocked: Vec<&Value> = tools
        .iter()
        .filter(|t| names.iter().any(|n| t["name"] == n.as_str()))
        .collect();
    let path = dir.join("poisoned.json");
    std::fs::write(&path, serde_json::to_string(&only_blocked).unwrap()).unwrap();
    (path, names)
}

async fn assert_poison_unreachable(w: &Warden, poisoned: &[String], rec: &Path) {
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let names = eventually("the honest tools", async || {
        let names = c.tool_names().await;
        names.contains(&"p__echo".to_owned()).then_some(names)
    })
    .await;
    for p in poisoned {
        assert!(
            !names.contains(&format!("p__{p}")),
            "poisoned {p} listed: {names:?}"
        );
        let r = c.call_tool(&format!("p__{p}"), json!({})).await;
        assert!([-32602, -32015].contains(&r.error_code()), "{p}: {}", r.raw);
    }
    assert!(
        !recorded(rec)
            .lines()
            .any(|l| l.contains("tools/call") && poisoned.iter().any(|p| l.contains(p.as_str()))),
        "a call to a poisoned tool reached the upstream"
    );
}

#[tokio::test]
async fn registry_poisoned_corpus_tools_never_reach_a_client() {
    let dir = tempfile::tempdir().unwrap();
    let (tools, poisoned) = poisoned_tools_file(dir.path());
    let rec = dir.path().join("rec.jsonl");
    let server = |mode_line: &str| {
        format!(
            "registry: {{{mode_line}lock: '{{DIR}}/warden.lock'}}\nservers:\n{}",
            example_server(
                "p",
                "echo",
                &format!("{}, --extra-tools, '{}'", record_arg(&rec), tools.display())
            )
        )
    };

    // Tofu: the scanner refuses them at first sight.
    let w = Warden::start(&server("mode: tofu, "));
    assert_poison_unreachable(&w, &poisoned, &rec).await;
    drop(w);

    // Strict: `warden registry pin` refuses them (exit 1); what it pins is exposed.
    let w = Warden::start(&server(""));
    let (ok, out, _) = w.cli_status(&["registry", "pin"]);
    assert!(!ok, "pin accepted poisoned tools:\n{out}");
    for p in &poisoned {
        assert!(
            out.contains(&format!("! p/tool/{p}  refused by the scanner")),
            "{p} not refused:\n{out}"
        );
        assert!(!lock_text(&w).contains(&format!("name = \"{p}\"")));
    }
    assert!(lock_text(&w).contains("name = \"echo\""));
    assert_poison_unreachable(&w, &poisoned, &rec).await;

    // Forcing needs a reason, which the lock records.
    let (ok, _, err) = w.cli_status(&["registry", "pin", "--force"]);
    assert!(!ok, "--force without --reason accepted: {err}");
    let (ok, out, err) = w.cli_status(&["registry", "pin", "--force", "--reason", "corpus review"]);
    assert!(ok, "{out}{err}");
    assert!(lock_text(&w).contains("forced_reason = \"corpus review\""));
}

#[test]
fn registry_scan_reports_client_configs_of_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let (tools, poisoned) = poisoned_tools_file(dir.path());
    let clean = json!({"command": WARDEN, "args": ["example-server", "--mode", "echo"]});
    let dirty = json!({"command": WARDEN, "args": ["example-server", "--mode", "echo", "--extra-tools", tools]});
    let files: Vec<(&str, Value)> = vec![
        (
            "claude_desktop_config.json",
            json!({"mcpServers": {"clean": clean, "dirty": dirty}}),
        ),
        (".mcp.json", json!({"mcpServers": {"clean": clean}})),
        (".cursor/mcp.json", json!({"mcpServers": {"dirty": dirty}})),
        (
            ".vscode/mcp.json",
            json!({"servers": {"clean": {"type": "stdio", "command": WARDEN, "args": ["example-server", "--mode", "echo"]}}}),
        ),
        ("mcp_config.json", json!({"mcpServers": {"clean": clean}})),
    ];
    let mut paths = Vec::new();
    for (name, v) in &files {
        let p = dir.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, v.to_string()).unwrap();
        paths.push(p);
    }
    let out = Command::new(WARDEN)
        .arg("scan")
        .arg("--json")
        .args(&paths)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(2),
        "exit code: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let report: Value = serde_json::from_str(&stdout).unwrap();
    let servers = report["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 6, "{stdout}");
    let clients: std::collections::BTreeSet<&str> = servers
        .iter()
        .filter_map(|s| s["client"].as_str())
        .collect();
    for c in [
        "claude-desktop",
        "claude-code",
        "cursor",
        "vscode",
        "windsurf",
    ] {
        assert!(clients.contains(c), "{c} missing: {clients:?}");
    }
    for s in servers {
        assert_eq!(s["status"], "scanned", "{s}");
        if s["name"] == "clean" {
            // Clean itself; only warned that `dirty` offers a tool of the
            // same name (shadowing across servers).
            assert_eq!(s["verdict"], "warn", "{s}");
            let rules: Vec<&str> = s["items"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|i| i["findings"].as_array().unwrap())
                .filter_map(|f| f["rule"].as_str())
                .collect();
            assert_eq!(rules, ["shadowing.name_collision"], "{s}");
        } else {
            assert_eq!(s["verdict"], "block", "{s}");
            for p in &poisoned {
                assert!(
                    s["items"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .any(|i| i["name"] == p.as_str() && i["verdict"] == "block"),
                    "{p} not blocked: {s}"
                );
            }
        }
    }
    // Clean configs alone: exit 0, and the text report names the servers.
    let out = Command::new(WARDEN)
        .arg("scan")
        .arg(&paths[1])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(text.contains("clean"), "{text}");
}

/// Issue 15, item 17: a strict registry with no lock file served nothing,
/// silently (`warden check` said ok, `tools/list` returned `[]`).
#[test]
fn a_strict_registry_with_nothing_pinned_says_so_at_check() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("warden.yaml");
    std::fs::write(
        &cfg,
        format!(
            "servers:\n{}",
            example_server("t", "test", "").replace("{WARDEN}", WARDEN)
        ),
    )
    .unwrap();
    let out = std::process::Command::new(WARDEN)
        .args(["check", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("1 of 1 servers are not pinned") && err.contains("warden registry pin"),
        "{err}"
    );
}

/// Issue 15, item 10: `warden registry pin` listed server-everything as a
/// client declaring no capabilities, so the tools it offers only to
/// clients with sampling, elicitation or roots were never pinned (and
/// strict mode then refused them with -32015).
#[test]
fn pinning_lists_as_a_client_with_every_capability_warden_relays() {
    let p = crate::peers::Peers::load();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("warden.yaml");
    std::fs::write(
        &cfg,
        format!(
            "servers:\n  everything:\n    command: '{}'\n    args: ['{}', stdio]\n",
            p.get("NODE22"),
            p.get("SERVER_EVERYTHING")
        ),
    )
    .unwrap();
    let out = Command::new(WARDEN)
        .args(["registry", "pin", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let lock = std::fs::read_to_string(dir.path().join("warden.lock")).unwrap();
    for tool in ["trigger-sampling-request", "get-roots-list"] {
        assert!(lock.contains(tool), "{tool} not pinned:\n{lock}");
    }
    let diff = Command::new(WARDEN)
        .args(["registry", "diff", "-c"])
        .arg(&cfg)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&diff.stdout);
    assert!(text.contains("sampling, elicitation and roots"), "{text}");
}

/// Issue 15, item 19: a server that fails to start in `warden scan` exited
/// 1, like a finding. It now has its own code (3).
#[test]
fn a_scan_that_cannot_start_a_server_exits_3_not_like_a_finding() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("mcp.json");
    std::fs::write(
        &file,
        r#"{"mcpServers":{"gone":{"command":"/nonexistent/warden-test-binary","args":[]}}}"#,
    )
    .unwrap();
    let out = Command::new(WARDEN)
        .arg("scan")
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(3),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// #15.25: under `principal` isolation each principal has an upstream
/// process of their own; carol's process changing its tool blocks carol's
/// instance (refused, audited), not alice's unchanged one.
#[tokio::test]
async fn one_principals_drift_blocks_only_that_principals_instance() {
    let w = Warden::start(&format!(
        "identity:\n  public_url: http://127.0.0.1:1\n  data_dir: '{{DIR}}/data'\n  dev_issuer: {{enabled: true}}\nregistry: {{mode: tofu, lock: '{{DIR}}/warden.lock'}}\nservers:\n{}    isolation: principal\n",
        example_server("t", "test", "")
    ));
    let session = async |sub: &str| {
        let token = w.cli(&["token", "mint", "--sub", sub]);
        let mut c = Client::with_bearer(&w.url("/mcp"), &token);
        c.initialize().await;
        c
    };
    let mut alice = session("alice").await;
    let mut carol = session("carol").await;
    for (c, who) in [(&mut alice, "alice"), (&mut carol, "carol")] {
        let r = c.call_tool("t__echo", json!({"message": who})).await;
        assert_eq!(text_of(r.result()), who, "{}", r.raw);
    }

    let r = carol.call_tool("t__change_tools", json!({})).await;
    assert!(r.result().is_object(), "{}", r.raw);
    eventually("carol's echo hidden", async || {
        (!carol.tool_names().await.contains(&"t__echo".to_owned())).then_some(())
    })
    .await;
    let r = carol.call_tool("t__echo", json!({"message": "rug"})).await;
    assert_eq!(r.error_code(), -32015, "{}", r.raw);

    assert!(alice.tool_names().await.contains(&"t__echo".to_owned()));
    let r = alice
        .call_tool("t__echo", json!({"message": "still mine"}))
        .await;
    assert_eq!(
        text_of(r.result()),
        "still mine",
        "alice's unchanged instance was blocked by carol's drift: {}",
        r.raw
    );
}

/// `warden scan` starts the servers a client config names: untrusted code.
/// By default it runs in Warden's sandbox: a server that writes outside
/// its package at start writes nothing on the host, and is still scanned;
/// `--unsandboxed` runs it as the client would (and the write lands).
#[test]
fn scan_runs_the_servers_it_starts_in_the_sandbox() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = tempfile::tempdir().unwrap();
    let marker = out_dir.path().join("marker");
    let script = format!(
        "echo pwned > '{}'; exec \"$1\" example-server --mode echo",
        marker.display()
    );
    let cfg = dir.path().join(".mcp.json");
    std::fs::write(
        &cfg,
        json!({"mcpServers": {"eager": {"command": "/bin/sh", "args": ["-c", script, "sh", WARDEN]}}})
            .to_string(),
    )
    .unwrap();
    let scan = |extra: &[&str]| {
        let out = Command::new(WARDEN)
            .arg("scan")
            .args(extra)
            .arg(&cfg)
            .output()
            .unwrap();
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    let text = scan(&[]);
    assert!(
        text.contains("(1 scanned"),
        "not scanned in the sandbox: {text}"
    );
    assert!(
        !marker.exists(),
        "a scanned server wrote on the host: {text}"
    );
    let text = scan(&["--unsandboxed"]);
    assert!(text.contains("(1 scanned"), "{text}");
    assert!(
        marker.exists(),
        "--unsandboxed did not run it as is: {text}"
    );
}

/// The operator's classifier (`registry.scanner.classifier`, issue #20):
/// a tool whose descriptions it scores at or above its threshold is never
/// pinned nor listed; the others are. Its failure is the fail mode: with
/// `on_error: block` nothing is pinned while it cannot answer, with
/// `warn` the rules decide alone.
#[tokio::test]
async fn the_operators_classifier_keeps_a_flagged_tool_from_being_pinned() {
    let hostile = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/peers/hostile_server.py")
        .canonicalize()
        .unwrap();
    let script = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../tests/peers/classifier_server.py")
        .canonicalize()
        .unwrap();
    let log = tempfile::NamedTempFile::new().unwrap();
    let service = spawn(Command::new("python3").arg(&script).args([
        "--flag",
        "escalate",
        "--log",
        &log.path().display().to_string(),
    ]));
    let port = wait_for_line(&service, "", Duration::from_secs(20)).expect("classifier port");
    let port = port.trim().to_owned();
    let config = |classifier: &str| {
        format!(
            "servers:\n  hostile:\n    command: python3\n    args: ['{}']\nregistry:\n  mode: tofu\n  lock: '{{DIR}}/warden.lock'\n  scanner:\n    classifier: {classifier}\n",
            hostile.display()
        )
    };

    let w = Warden::start(&config(&format!(
        "{{url: 'http://127.0.0.1:{port}/predict', threshold: 0.9}}"
    )));
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let tools = c.tool_names().await;
    assert!(tools.contains(&"hostile__read".to_owned()), "{tools:?}");
    assert!(
        !tools.contains(&"hostile__escalate".to_owned()),
        "{tools:?}"
    );
    let lock = eventually("the lock file pins the other tools", async || {
        let lock = lock_text(&w);
        lock.contains("\"read\"").then_some(lock)
    })
    .await;
    assert!(!lock.contains("escalate"), "{lock}");
    let r = c
        .call_tool("hostile__escalate", json!({ "data_dir": "/tmp" }))
        .await;
    assert!(r.response().get("error").is_some(), "{:?}", r.response());
    // The service was asked about each tool, with its descriptions.
    let asked = std::fs::read_to_string(log.path()).unwrap();
    assert!(asked.contains("Tries escalate."), "{asked}");
    assert!(asked.contains("Tries read."), "{asked}");
    // Nothing is asked twice: pinned items are not asked again, and the
    // flagged one (never pinned, so checked again at each list) is answered
    // from the kept score.
    let before = asked.lines().count();
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    c.tool_names().await;
    let after = std::fs::read_to_string(log.path()).unwrap().lines().count();
    assert_eq!(before, after, "pinned items were classified again");

    // A service that cannot be reached: fail closed pins nothing, warn
    // leaves the rules to decide.
    let dead = free_port();
    let w = Warden::start(&config(&format!(
        "{{url: 'http://127.0.0.1:{dead}/predict', on_error: block, timeout: 2s}}"
    )));
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    assert_eq!(c.tool_names().await, Vec::<String>::new());
    assert!(!lock_text(&w).contains("read"));
    let w = Warden::start(&config(&format!(
        "{{url: 'http://127.0.0.1:{dead}/predict', on_error: warn, timeout: 2s}}"
    )));
    let mut c = Client::new(&w.url("/mcp"));
    c.initialize().await;
    let tools = c.tool_names().await;
    assert!(tools.contains(&"hostile__escalate".to_owned()), "{tools:?}");

    // Strict mode pins through `warden registry pin`, which asks too.
    let strict = config(&format!(
        "{{url: 'http://127.0.0.1:{port}/predict', threshold: 0.9}}"
    ))
    .replace("mode: tofu", "mode: strict");
    let w = Warden::start(&strict);
    let (ok, out, err) = w.cli_status(&["registry", "pin", "--approver", "alice"]);
    assert!(!ok, "a flagged tool must fail the pin: {out}{err}");
    assert!(
        out.contains("hostile/tool/escalate") && out.contains("classifier.poisoning"),
        "{out}{err}"
    );
    let lock = lock_text(&w);
    assert!(
        lock.contains("\"read\"") && !lock.contains("escalate"),
        "{lock}"
    );
}
