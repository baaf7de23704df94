use std::path::{Path, PathBuf};

use super::*;

fn fixture(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/clients")
        .join(rel)
}

fn names(c: &ClientConfig) -> Vec<String> {
    c.servers
        .iter()
        .map(|s| match &s.scope {
            Some(scope) => format!("{}@{scope}", s.name),
            None => s.name.clone(),
        })
        .collect()
}

#[test]
fn claude_desktop() {
    let c = read_client_config(&fixture("claude-desktop/claude_desktop_config.json")).unwrap();
    assert_eq!(names(&c), ["filesystem", "memory", "time"]);
    assert!(c
        .servers
        .iter()
        .all(|s| s.client == ClientKind::ClaudeDesktop));
    let ServerLaunch::Stdio {
        command, args, env, ..
    } = &c.servers[1].launch
    else {
        panic!()
    };
    assert_eq!(command, "npx");
    assert_eq!(args, &["-y", "@modelcontextprotocol/server-memory"]);
    assert_eq!(
        env.get("MEMORY_FILE_PATH").map(String::as_str),
        Some("/tmp/memory.json")
    );
}

#[test]
fn claude_code_user_and_project_scopes() {
    let c = read_client_config(&fixture("claude-code/.claude.json")).unwrap();
    assert_eq!(
        names(&c),
        ["fetch", "legacy@/home/dev/shop", "tickets@/home/dev/shop"]
    );
    assert!(c.servers.iter().all(|s| s.client == ClientKind::ClaudeCode));
    let ServerLaunch::Remote {
        url,
        transport,
        headers,
    } = &c.servers[2].launch
    else {
        panic!()
    };
    assert_eq!(url, "https://tickets.example.com/mcp");
    assert_eq!(transport.as_deref(), Some("http"));
    assert!(headers.contains_key("Authorization"));
    let p = read_client_config(&fixture("claude-code/project/.mcp.json")).unwrap();
    assert_eq!(names(&p), ["git", "warden-demo"]);
    assert_eq!(p.servers[0].client, ClientKind::ClaudeCode);
}

#[test]
fn cursor() {
    let c = read_client_config(&fixture("cursor/.cursor/mcp.json")).unwrap();
    assert_eq!(names(&c), ["everything", "old", "search"]);
    assert!(c.servers.iter().all(|s| s.client == ClientKind::Cursor));
    assert!(c.servers[1].disabled);
    assert!(matches!(c.servers[2].launch, ServerLaunch::Remote { .. }));
}

#[test]
fn vscode_mcp_json_with_comments_and_settings() {
    let c = read_client_config(&fixture("vscode/.vscode/mcp.json")).unwrap();
    assert_eq!(names(&c), ["github", "memory"]);
    assert!(c.servers.iter().all(|s| s.client == ClientKind::VsCode));
    let s = read_client_config(&fixture("vscode/User/settings.json")).unwrap();
    assert_eq!(names(&s), ["time"]);
    assert_eq!(s.servers[0].client, ClientKind::VsCode);
}

#[test]
fn windsurf_with_server_url_and_a_broken_entry() {
    let c = read_client_config(&fixture("windsurf/mcp_config.json")).unwrap();
    assert_eq!(names(&c), ["docs", "git"]);
    assert!(c.servers.iter().all(|s| s.client == ClientKind::Windsurf));
    assert!(
        matches!(&c.servers[0].launch, ServerLaunch::Remote { url, .. } if url == "https://docs.example.com/mcp")
    );
    assert_eq!(
        c.warnings,
        ["mcpServers.broken: neither `command` nor `url`"]
    );
}

#[test]
fn not_a_client_config() {
    let p = Path::new("x.json");
    for (text, want) in [
        ("[]", "top level is not an object"),
        ("{\"other\": 1}", "no MCP servers"),
        ("{", "not JSON"),
    ] {
        let err = parse_client_config(p, text).unwrap_err().to_string();
        assert!(err.contains(want), "{text}: {err}");
    }
    let c = parse_client_config(
        p,
        r#"{"mcpServers": {"a": {"command": "x", "args": "y"}, "b": 3}}"#,
    )
    .unwrap();
    assert!(c.servers.is_empty());
    assert_eq!(c.warnings.len(), 2);
}

#[test]
fn known_paths_cover_every_client() {
    let paths = known_config_paths(Path::new("/home/u"), Some(Path::new("/work/p")));
    for kind in [
        ClientKind::ClaudeDesktop,
        ClientKind::ClaudeCode,
        ClientKind::Cursor,
        ClientKind::VsCode,
        ClientKind::Windsurf,
    ] {
        assert!(paths.iter().any(|(k, _)| *k == kind), "{kind}");
    }
    assert!(paths
        .iter()
        .any(|(_, p)| p == Path::new("/work/p/.vscode/mcp.json")));
}

#[test]
fn config_entries_are_checked() {
    let scanner = Scanner::new();
    let c = read_client_config(&fixture("claude-desktop/claude_desktop_config.json")).unwrap();
    let memory = &c.servers[1];
    let f = config_findings(&scanner, memory);
    assert_eq!(f.len(), 1);
    assert_eq!(f[0].rule, "supply_chain.unpinned_package");
    assert!(
        config_findings(&scanner, &c.servers[2]).is_empty(),
        "time is pinned"
    );
    let cc = read_client_config(&fixture("claude-code/.claude.json")).unwrap();
    let legacy = cc.servers.iter().find(|s| s.name == "legacy").unwrap();
    assert_eq!(
        config_findings(&scanner, legacy)[0].rule,
        "config.insecure_url"
    );
    let local = ScannedServer {
        launch: ServerLaunch::Remote {
            url: "http://127.0.0.1:9/mcp".into(),
            transport: None,
            headers: Default::default(),
        },
        ..legacy.clone()
    };
    assert!(config_findings(&scanner, &local).is_empty());
}
