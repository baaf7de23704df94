//! Tests for parsing and resolving: one per validation rule, golden
//! snapshots of whole broken files, and a no-panic property.

use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use proptest::prelude::*;

use crate::{
    parse_with_env, Config, ConfigErrors, Era, Isolation, RestartPolicy, Secret, Transport,
};

/// A value that must never show up in any error output.
const TOKEN: &str = "ghp_s3cr3t-VALUE";
/// A grant store key: 32 bytes, base64.
const GRANTS_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

fn fake_env(name: &str) -> Option<OsString> {
    match name {
        "GITHUB_TOKEN" | "NOTES_TOKEN" => Some(TOKEN.into()),
        "USER" => Some("alice".into()),
        "GRANTS_KEY" => Some(GRANTS_KEY.into()),
        "WARDEN_AUDIT_DATABASE_URL" => Some("postgres://warden@127.0.0.1:5432/test".into()),
        "EMPTY" => Some(OsString::new()),
        "WITH_NEWLINE" => Some(format!("{TOKEN}\r\nX-Injected: 1").into()),
        "WITH_NUL" => Some(format!("{TOKEN}\0").into()),
        "NOT_UTF8" => Some(not_utf8()),
        _ => None,
    }
}

#[cfg(unix)]
fn not_utf8() -> OsString {
    use std::os::unix::ffi::OsStringExt;
    OsString::from_vec(vec![0x66, 0xff, 0x6f])
}

#[cfg(not(unix))]
fn not_utf8() -> OsString {
    OsString::from("unused")
}

fn base() -> &'static Path {
    Path::new("/etc/warden")
}

fn parse_in(yaml: &str, base_dir: &Path) -> Result<Config, ConfigErrors> {
    parse_with_env(yaml, base_dir, &fake_env)
}

#[track_caller]
fn ok(yaml: &str) -> Config {
    match parse_in(yaml, base()) {
        Ok(config) => config,
        Err(errors) => panic!("expected a valid config, got:\n{errors}"),
    }
}

/// The errors as `path: message` lines; asserts that no secret leaked.
#[track_caller]
fn errors(yaml: &str) -> Vec<String> {
    errors_in(yaml, base())
}

#[track_caller]
fn errors_in(yaml: &str, base_dir: &Path) -> Vec<String> {
    match parse_in(yaml, base_dir) {
        Ok(config) => panic!("expected errors, got a valid config: {config:#?}"),
        Err(errors) => {
            assert!(!errors.is_empty());
            let text = errors.to_string();
            assert!(!text.contains(TOKEN), "secret leaked into errors:\n{text}");
            assert!(
                !text.contains("s3cr3t"),
                "secret leaked into errors:\n{text}"
            );
            errors.iter().map(ToString::to_string).collect()
        }
    }
}

/// Exactly one error, at `path`, whose message contains `needle`.
#[track_caller]
fn single_error(yaml: &str, path: &str, needle: &str) {
    let errors = errors(yaml);
    assert_eq!(errors.len(), 1, "expected one error, got {errors:#?}");
    let expected_prefix = if path.is_empty() {
        String::new()
    } else {
        format!("{path}: ")
    };
    assert!(
        errors[0].starts_with(&expected_prefix) && errors[0].contains(needle),
        "expected `{path}: …{needle}…`, got {:?}",
        errors[0]
    );
}

fn stdio_server(yaml_fields: &str) -> String {
    format!("servers:\n  git:\n    command: uvx\n{yaml_fields}")
}

fn http_server(yaml_fields: &str) -> String {
    format!("servers:\n  api:\n    url: https://mcp.example.com/mcp\n{yaml_fields}")
}

// ----- defaults ------------------------------------------------------------

#[test]
fn empty_file_is_the_default_config() {
    for text in ["", "\n", "# only a comment\n", "---\n", "~\n", "null\n"] {
        let config = ok(text);
        assert_eq!(config.listen, crate::Listen::default(), "{text:?}");
        assert_eq!(config.gateway, crate::Gateway::default());
        assert!(config.servers.is_empty());
        assert!(config.virtual_servers.is_empty());
        assert_eq!(config.stdio.principal, "alice");
    }
}

#[test]
fn default_values_are_the_documented_ones() {
    let config = ok("");
    assert_eq!(
        config.listen.addr,
        "127.0.0.1:8080".parse::<SocketAddr>().unwrap()
    );
    assert!(config.listen.allowed_origins.is_empty());
    assert_eq!(config.listen.allowed_hosts, None);
    assert!(config.listen.legacy_sse);
    let l = &config.listen.edge;
    assert_eq!(l.max_connections, 10_000);
    assert_eq!(l.max_connections_per_ip, 256);
    assert_eq!(l.header_timeout, Duration::from_secs(10));
    assert_eq!(l.idle_timeout, Duration::from_secs(120));
    assert_eq!(l.body_timeout, Duration::from_secs(20));
    assert_eq!(l.body_min_rate, 1024);
    let g = &config.gateway;
    assert_eq!(g.name, "warden");
    assert_eq!(g.separator, "__");
    assert_eq!(g.max_body_bytes, 4_194_304);
    assert_eq!(g.max_depth, 64);
    assert_eq!(g.max_upstream_message_bytes, 16 * 1024 * 1024);
    assert_eq!(g.session_idle_timeout, Duration::from_secs(1800));
    assert_eq!(g.replay_buffer_events, 256);
    assert_eq!(g.max_sessions, 10_000);
    assert_eq!(g.max_sessions_per_principal, 100);
    assert_eq!(g.max_streams_per_principal, 100);
    assert_eq!(g.max_parked_per_principal, 100);
    assert_eq!(g.notifications_per_second, 100);
    assert_eq!(g.instructions, None);
}

#[test]
fn config_default_matches_an_empty_file_except_the_principal_source() {
    let mut from_file = ok("");
    let default = Config::default();
    // Config::default reads the real $USER; the file above saw a fake one.
    from_file.stdio.principal = default.stdio.principal.clone();
    // Audit paths are relative to the file's directory.
    let jsonl = from_file.audit.jsonl.as_ref().map(|j| j.path.clone());
    assert!(
        jsonl
            .as_ref()
            .is_some_and(|p| p.ends_with(".warden/audit/audit.jsonl")),
        "{jsonl:?}"
    );
    assert!(from_file.audit.sqlite.is_some() && from_file.authorization.is_none());
    from_file.audit = default.audit.clone();
    assert!(from_file.registry.lock.ends_with("warden.lock"));
    from_file.registry.lock = default.registry.lock.clone();
    assert!(
        matches!(&from_file.approvals.store, warden_approvals::StoreSettings::Sqlite { path }
            if path.ends_with(".warden/approvals.db")),
        "{:?}",
        from_file.approvals
    );
    from_file.approvals = default.approvals.clone();
    assert_eq!(from_file, default);
}

#[test]
fn empty_sections_are_defaults() {
    let config = ok("listen:\ngateway:\nservers:\nvirtual_servers:\nstdio:\n");
    assert_eq!(config.listen, crate::Listen::default());
    assert!(config.servers.is_empty());
}

#[test]
fn server_defaults_depend_on_transport() {
    let config = ok("servers:\n  local:\n    command: x\n  remote:\n    url: http://localhost:9000/mcp\n  old:\n    transport: sse\n    url: http://localhost:9001/sse\n");
    let [local, remote, old] = config.servers.as_slice() else {
        panic!("three servers expected");
    };
    assert_eq!(local.isolation, Isolation::Principal);
    assert_eq!(remote.isolation, Isolation::Session);
    assert_eq!(old.isolation, Isolation::Session);
    assert_eq!(local.transport.kind(), "stdio");
    assert_eq!(remote.transport.kind(), "http");
    assert_eq!(old.transport.kind(), "sse");
    assert_eq!(local.connect_timeout, Duration::from_secs(30));
    assert_eq!(local.call_timeout, Duration::from_secs(120));
    assert_eq!(local.idle_timeout, Duration::from_secs(600));
    assert_eq!(local.restart, RestartPolicy::default());
    assert_eq!(local.restart.initial_backoff, Duration::from_millis(200));
    assert_eq!(local.restart.max_backoff, Duration::from_secs(30));
    assert_eq!(local.instructions, None);
}

// ----- a complete file -----------------------------------------------------

const FULL: &str = r#"
listen:
  addr: "0.0.0.0:9090"
  allowed_origins: ["http://LocalHost:6274/", "https://app.example.com:443"]
  allowed_hosts: [localhost, "Example.com:8443", "[::1]:9090"]
  legacy_sse: false
  max_connections: 2000
  max_connections_per_ip: 20
  header_timeout: 5s
  idle_timeout: 1m
  body_timeout: 8s
  body_min_rate: 4KiB/s
gateway:
  name: corp-gateway
  separator: "-x-"
  max_body_bytes: 512KiB
  max_depth: 32
  max_upstream_message_bytes: 1048576
  session_idle_timeout: 5m
  replay_buffer_events: 10
  max_sessions: 50
  max_sessions_per_principal: 5
  max_streams_per_principal: 6
  max_parked_per_principal: 7
  notifications_per_second: 8
  instructions: Use the tools wisely.
servers:
  git:
    transport: stdio
    command: uvx
    args: [mcp-server-git, --repository, "."]
    env: {NODE_ENV: production, GITHUB_TOKEN: "env:GITHUB_TOKEN", ODD: "literal:env:not-a-ref"}
    inherit_env: [HOME, PATH]
    cwd: ./repos/./main
    isolation: shared
    connect_timeout: 10s
    call_timeout: 60s
    idle_timeout: 1h
    restart: {initial_backoff: 100ms, max_backoff: 10s}
    instructions: Git tools.
  notes:
    url: https://notes.example.com/mcp
    headers:
      Authorization: "env:GITHUB_TOKEN"
      X-Client: warden
  legacy:
    transport: sse
    url: http://127.0.0.1:3001/sse
    isolation: principal
virtual_servers:
  dev:
    servers: [git, notes]
    tools: ["git-x-*", "notes-x-search"]
  all:
    servers: [legacy]
stdio:
  principal: bob
"#;

#[test]
fn full_file_resolves_every_key() {
    let config = ok(FULL);
    assert_eq!(
        config.listen.addr,
        "0.0.0.0:9090".parse::<SocketAddr>().unwrap()
    );
    assert_eq!(
        config.listen.allowed_origins,
        ["http://localhost:6274", "https://app.example.com"]
    );
    assert_eq!(
        config.listen.allowed_hosts.as_deref(),
        Some(
            &[
                "localhost".to_owned(),
                "example.com:8443".to_owned(),
                "[::1]:9090".to_owned()
            ][..]
        )
    );
    assert!(!config.listen.legacy_sse);
    let l = &config.listen.edge;
    assert_eq!(l.max_connections, 2000);
    assert_eq!(l.max_connections_per_ip, 20);
    assert_eq!(l.header_timeout, Duration::from_secs(5));
    assert_eq!(l.idle_timeout, Duration::from_secs(60));
    assert_eq!(l.body_timeout, Duration::from_secs(8));
    assert_eq!(l.body_min_rate, 4096);

    let g = &config.gateway;
    assert_eq!(g.name, "corp-gateway");
    assert_eq!(g.separator, "-x-");
    assert_eq!(g.max_body_bytes, 512 * 1024);
    assert_eq!(g.max_depth, 32);
    assert_eq!(g.max_upstream_message_bytes, 1_048_576);
    assert_eq!(g.session_idle_timeout, Duration::from_secs(300));
    assert_eq!(g.replay_buffer_events, 10);
    assert_eq!(g.max_sessions, 50);
    assert_eq!(g.max_sessions_per_principal, 5);
    assert_eq!(g.max_streams_per_principal, 6);
    assert_eq!(g.max_parked_per_principal, 7);
    assert_eq!(g.notifications_per_second, 8);
    assert_eq!(g.instructions.as_deref(), Some("Use the tools wisely."));

    let names: Vec<&str> = config.servers.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["git", "notes", "legacy"], "file order is kept");

    let git = config.server("git").unwrap();
    assert_eq!(git.isolation, Isolation::Shared);
    assert_eq!(git.connect_timeout, Duration::from_secs(10));
    assert_eq!(git.call_timeout, Duration::from_secs(60));
    assert_eq!(git.idle_timeout, Duration::from_secs(3600));
    assert_eq!(
        git.restart,
        RestartPolicy {
            initial_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(10)
        }
    );
    assert_eq!(git.instructions.as_deref(), Some("Git tools."));
    let Transport::Stdio {
        command,
        args,
        env,
        inherit_env,
        cwd,
    } = &git.transport
    else {
        panic!("git is stdio");
    };
    assert_eq!(command, "uvx");
    assert_eq!(args, &["mcp-server-git", "--repository", "."]);
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.expose())).collect();
    assert_eq!(
        env,
        [
            ("NODE_ENV", "production"),
            ("GITHUB_TOKEN", TOKEN),
            ("ODD", "env:not-a-ref")
        ]
    );
    assert_eq!(inherit_env, &["HOME", "PATH"]);
    assert_eq!(cwd.as_deref(), Some(Path::new("/etc/warden/repos/main")));

    let notes = config.server("notes").unwrap();
    let Transport::StreamableHttp { url, headers } = &notes.transport else {
        panic!("notes is http");
    };
    assert_eq!(url, "https://notes.example.com/mcp");
    let headers: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.expose()))
        .collect();
    assert_eq!(headers, [("Authorization", TOKEN), ("X-Client", "warden")]);

    let legacy = config.server("legacy").unwrap();
    assert!(
        matches!(&legacy.transport, Transport::Sse { url, headers } if url == "http://127.0.0.1:3001/sse" && headers.is_empty())
    );
    assert_eq!(legacy.isolation, Isolation::Principal);

    let dev = config.virtual_server("dev").unwrap();
    assert_eq!(dev.servers, ["git", "notes"]);
    assert!(dev.allows_tool("git-x-status"));
    assert!(dev.allows_tool("notes-x-search"));
    assert!(!dev.allows_tool("notes-x-delete"));
    let all = config.virtual_server("all").unwrap();
    assert_eq!(all.tools, None);
    assert!(all.allows_tool("legacy-x-anything"));
    assert_eq!(config.stdio.principal, "bob");
}

#[test]
fn secrets_never_print() {
    let config = ok(FULL);
    let debug = format!("{config:?}");
    assert!(!debug.contains(TOKEN), "Debug of Config shows a secret");
    assert!(debug.contains("[secret]"));
    let secret = Secret::new("hunter2");
    assert_eq!(secret.to_string(), "[secret]");
    assert_eq!(format!("{secret:?}"), "[secret]");
    assert_eq!(secret.expose(), "hunter2");
}

// ----- YAML-level errors (parse step) --------------------------------------

#[test]
fn unknown_top_level_key_names_its_path_and_line() {
    single_error("listen: {}\nlisen: {}\n", "lisen", "unknown field `lisen`");
    single_error("lisen: {}\n", "lisen", "line 1, column 1");
}

#[test]
fn unknown_nested_key_names_its_path() {
    single_error(
        "servers:\n  git:\n    command: x\n    comand: y\n",
        "servers.git.comand",
        "unknown field `comand`",
    );
    single_error("listen:\n  adr: x\n", "listen.adr", "line 2, column 3");
    single_error(
        "servers:\n  git:\n    command: x\n    restart: {initial: 1s}\n",
        "servers.git.restart.initial",
        "unknown field",
    );
    single_error(
        "virtual_servers:\n  dev:\n    servers: [a]\n    tool: []\n",
        "virtual_servers.dev.tool",
        "unknown field",
    );
}

#[test]
fn wrong_shape_names_its_path() {
    single_error(
        "servers:\n  git:\n    command: [a, b]\n",
        "servers.git.command",
        "expected a single value, not a list or a mapping at line 3, column 14",
    );
    single_error("listen: [1, 2]\n", "listen", "line 1");
    single_error(
        "servers:\n  git:\n    command: x\n    args: notalist\n",
        "servers.git.args",
        "",
    );
    single_error("servers: [git]\n", "servers", "");
    single_error("listen:\n  legacy_sse: maybe\n", "listen.legacy_sse", "");
}

#[test]
fn yaml_one_point_one_booleans_are_refused() {
    single_error(
        "listen:\n  legacy_sse: yes\n",
        "listen.legacy_sse",
        "invalid boolean",
    );
}

#[test]
fn top_level_must_be_a_mapping() {
    single_error("- a\n- b\n", "", "line 1");
    single_error("just text\n", "", "");
}

#[test]
fn duplicate_keys_are_errors() {
    single_error(
        "servers:\n  git:\n    command: a\n  git:\n    command: b\n",
        "servers",
        "duplicate key \"git\" at line 4, column 3",
    );
    single_error(
        "listen:\n  addr: 1.2.3.4:1\n  addr: 1.2.3.4:2\n",
        "listen",
        "duplicate",
    );
    single_error("listen: {}\nlisten: {}\n", "", "duplicate");
    single_error(
        &stdio_server("    env: {A: x, A: y}\n"),
        "servers.git.env",
        "duplicate",
    );
}

#[test]
fn syntax_errors_carry_a_location() {
    let errors = errors("listen:\n  addr: \"unterminated\n");
    assert_eq!(errors.len(), 1);
    assert!(errors[0].contains("line"), "{errors:?}");
}

#[test]
fn multiple_documents_are_refused() {
    single_error("listen: {}\n---\nlisten: {}\n", "", "multiple");
}

#[test]
fn unknown_tags_are_refused() {
    let errors = errors("listen:\n  addr: !include other.yaml\n");
    assert_eq!(errors.len(), 1, "{errors:?}");
}

#[test]
fn anchors_and_merge_keys_work() {
    let config = ok(
        "servers:\n  a: &base\n    command: x\n    call_timeout: 5s\n  b:\n    <<: *base\n    call_timeout: 6s\n",
    );
    assert_eq!(config.servers[1].call_timeout, Duration::from_secs(6));
    assert!(
        matches!(&config.servers[1].transport, Transport::Stdio { command, .. } if command == "x")
    );
}

#[test]
fn deep_nesting_is_refused_not_overflowed() {
    let deep = format!("listen: {}{}\n", "[".repeat(10_000), "]".repeat(10_000));
    assert_eq!(errors(&deep).len(), 1);
    let deep_map = format!("listen: {}{}\n", "{a: ".repeat(5_000), "}".repeat(5_000));
    assert_eq!(errors(&deep_map).len(), 1);
}

#[test]
fn scalar_type_mismatch_in_secret_position_does_not_echo_value() {
    // A header given as a list: the message must not quote anything from it.
    let errors = errors(&http_server(&format!(
        "    headers:\n      Authorization: [\"{TOKEN}\"]\n"
    )));
    assert_eq!(errors.len(), 1);
}

// ----- listen --------------------------------------------------------------

#[test]
fn listen_addr_must_be_a_socket_address() {
    single_error(
        "listen:\n  addr: x\n",
        "listen.addr",
        "invalid socket address \"x\"",
    );
    single_error(
        "listen:\n  addr: localhost:8080\n",
        "listen.addr",
        "IP:PORT",
    );
    single_error(
        "listen:\n  addr: 127.0.0.1\n",
        "listen.addr",
        "invalid socket address",
    );
    single_error("listen:\n  addr: 127.0.0.1:99999\n", "listen.addr", "");
    assert_eq!(
        ok("listen:\n  addr: \"[::1]:8443\"\n").listen.addr,
        "[::1]:8443".parse::<SocketAddr>().unwrap()
    );
}

#[test]
fn allowed_origins_must_be_exact_origins() {
    single_error(
        "listen:\n  allowed_origins: ['*']\n",
        "listen.allowed_origins[0]",
        "wildcard",
    );
    single_error(
        "listen:\n  allowed_origins: ['null']\n",
        "listen.allowed_origins[0]",
        "cannot be trusted",
    );
    single_error(
        "listen:\n  allowed_origins: [localhost:6274]\n",
        "listen.allowed_origins[0]",
        "scheme",
    );
    single_error(
        "listen:\n  allowed_origins: ['http://localhost:6274/app']\n",
        "listen.allowed_origins[0]",
        "expected scheme://host[:port]",
    );
    single_error(
        "listen:\n  allowed_origins: ['http://u:p@localhost']\n",
        "listen.allowed_origins[0]",
        "",
    );
    single_error(
        "listen:\n  allowed_origins: ['ftp://localhost']\n",
        "listen.allowed_origins[0]",
        "http or https",
    );
    single_error(
        "listen:\n  allowed_origins: ['http://a.com', 'http://A.com:80/']\n",
        "listen.allowed_origins[1]",
        "duplicate origin \"http://a.com\"",
    );
}

#[test]
fn allowed_hosts_must_be_hosts() {
    single_error(
        "listen:\n  allowed_hosts: []\n",
        "listen.allowed_hosts",
        "must not be empty",
    );
    single_error(
        "listen:\n  allowed_hosts: ['http://localhost']\n",
        "listen.allowed_hosts[0]",
        "invalid host",
    );
    single_error(
        "listen:\n  allowed_hosts: ['*.example.com']\n",
        "listen.allowed_hosts[0]",
        "",
    );
    single_error(
        "listen:\n  allowed_hosts: ['a:b:c']\n",
        "listen.allowed_hosts[0]",
        "",
    );
    single_error(
        "listen:\n  allowed_hosts: ['localhost:70000']\n",
        "listen.allowed_hosts[0]",
        "",
    );
    single_error(
        "listen:\n  allowed_hosts: [localhost, LOCALHOST]\n",
        "listen.allowed_hosts[1]",
        "duplicate host",
    );
}

// ----- gateway -------------------------------------------------------------

#[test]
fn gateway_name_must_be_printable() {
    single_error(
        "gateway:\n  name: ''\n",
        "gateway.name",
        "must not be empty",
    );
    single_error(
        "gateway:\n  name: \"a\\u0007b\"\n",
        "gateway.name",
        "control characters",
    );
}

#[test]
fn separator_must_be_a_non_empty_name_fragment() {
    single_error(
        "gateway:\n  separator: ''\n",
        "gateway.separator",
        "must not be empty",
    );
    single_error(
        "gateway:\n  separator: '.'\n",
        "gateway.separator",
        "may only contain",
    );
    single_error(
        "gateway:\n  separator: 'a/b'\n",
        "gateway.separator",
        "may only contain",
    );
    let long = "_".repeat(63);
    single_error(
        &format!("gateway:\n  separator: '{long}'\n"),
        "gateway.separator",
        "must fit in 64",
    );
    assert_eq!(ok("gateway:\n  separator: '-'\n").gateway.separator, "-");
}

#[test]
fn sizes_accept_integers_and_binary_units() {
    assert_eq!(
        ok("gateway:\n  max_body_bytes: 1024\n")
            .gateway
            .max_body_bytes,
        1024
    );
    assert_eq!(
        ok("gateway:\n  max_body_bytes: 4MiB\n")
            .gateway
            .max_body_bytes,
        4 << 20
    );
    assert_eq!(
        ok("gateway:\n  max_body_bytes: '2 GiB'\n")
            .gateway
            .max_body_bytes,
        2 << 30
    );
    single_error(
        "gateway:\n  max_body_bytes: 4MB\n",
        "gateway.max_body_bytes",
        "KiB, MiB or GiB",
    );
    single_error(
        "gateway:\n  max_body_bytes: -1\n",
        "gateway.max_body_bytes",
        "invalid size",
    );
    single_error(
        "gateway:\n  max_body_bytes: 0\n",
        "gateway.max_body_bytes",
        "greater than zero",
    );
    single_error(
        "gateway:\n  max_upstream_message_bytes: 99999999999GiB\n",
        "gateway.max_upstream_message_bytes",
        "too large",
    );
}

#[test]
fn max_depth_is_bounded() {
    assert_eq!(ok("gateway:\n  max_depth: 2\n").gateway.max_depth, 2);
    assert_eq!(ok("gateway:\n  max_depth: 128\n").gateway.max_depth, 128);
    single_error(
        "gateway:\n  max_depth: 1\n",
        "gateway.max_depth",
        "between 2 and 128, got 1",
    );
    single_error(
        "gateway:\n  max_depth: 129\n",
        "gateway.max_depth",
        "between 2 and 128",
    );
    single_error(
        "gateway:\n  max_depth: deep\n",
        "gateway.max_depth",
        "invalid number",
    );
}

#[test]
fn counts_must_be_positive() {
    single_error(
        "gateway:\n  replay_buffer_events: 0\n",
        "gateway.replay_buffer_events",
        "at least 1",
    );
    single_error(
        "gateway:\n  max_sessions: 0\n",
        "gateway.max_sessions",
        "at least 1",
    );
    single_error(
        "gateway:\n  max_sessions: 1.5\n",
        "gateway.max_sessions",
        "invalid number",
    );
}

#[test]
fn edge_limits_are_checked_where_they_are_written() {
    for key in [
        "gateway.max_sessions_per_principal",
        "gateway.max_streams_per_principal",
        "gateway.max_parked_per_principal",
        "gateway.notifications_per_second",
        "listen.max_connections",
        "listen.max_connections_per_ip",
    ] {
        let (section, field) = key.split_once('.').unwrap();
        single_error(&format!("{section}:\n  {field}: 0\n"), key, "at least 1");
        single_error(
            &format!("{section}:\n  {field}: lots\n"),
            key,
            "invalid number",
        );
    }
    for key in ["header_timeout", "idle_timeout", "body_timeout"] {
        single_error(
            &format!("listen:\n  {key}: 0s\n"),
            &format!("listen.{key}"),
            "greater than zero",
        );
        single_error(
            &format!("listen:\n  {key}: 10\n"),
            &format!("listen.{key}"),
            "invalid duration",
        );
    }
    single_error(
        "listen:\n  body_min_rate: 1KiB\n",
        "listen.body_min_rate",
        "expected a size per second, e.g. \"1KiB/s\"",
    );
    single_error(
        "listen:\n  body_min_rate: 0B/s\n",
        "listen.body_min_rate",
        "greater than zero",
    );
    assert_eq!(
        ok("listen:\n  body_min_rate: 100B/s\n")
            .listen
            .edge
            .body_min_rate,
        100
    );
}

#[test]
fn durations_need_units_and_must_be_positive() {
    single_error(
        "gateway:\n  session_idle_timeout: 30\n",
        "gateway.session_idle_timeout",
        "invalid duration \"30\"",
    );
    single_error(
        "gateway:\n  session_idle_timeout: 0s\n",
        "gateway.session_idle_timeout",
        "greater than zero",
    );
    single_error(
        &stdio_server("    call_timeout: soon\n"),
        "servers.git.call_timeout",
        "invalid duration",
    );
    single_error(
        &stdio_server("    connect_timeout: 0ms\n"),
        "servers.git.connect_timeout",
        "greater than zero",
    );
    single_error(
        &stdio_server("    idle_timeout: 10\n"),
        "servers.git.idle_timeout",
        "",
    );
}

// ----- server names --------------------------------------------------------

#[test]
fn server_name_charset() {
    single_error(
        "servers:\n  'my server':\n    command: x\n",
        "servers.\"my server\"",
        "^[A-Za-z0-9_-]{1,64}$",
    );
    single_error(
        "servers:\n  'a.b':\n    command: x\n",
        "servers.\"a.b\"",
        "contains '.'",
    );
    single_error(
        "servers:\n  '':\n    command: x\n",
        "servers.\"\"",
        "must not be empty",
    );
    let long = "a".repeat(65);
    single_error(
        &format!("servers:\n  {long}:\n    command: x\n"),
        &format!("servers.{long}"),
        "65 characters",
    );
}

#[test]
fn server_name_must_not_contain_the_separator() {
    single_error(
        "servers:\n  my__git:\n    command: x\n",
        "servers.my__git",
        "contains the separator \"__\"",
    );
    // with another separator the same name is fine
    ok("gateway:\n  separator: '-'\nservers:\n  my__git:\n    command: x\n");
}

#[test]
fn server_name_must_not_run_into_the_separator() {
    single_error(
        "servers:\n  git_:\n    command: x\n",
        "servers.git_",
        "runs into the separator",
    );
    ok("servers:\n  _git:\n    command: x\n");
}

#[test]
fn server_name_must_leave_room_for_a_tool_name() {
    let name = "a".repeat(62);
    single_error(
        &format!("servers:\n  {name}:\n    command: x\n"),
        &format!("servers.{name}"),
        "^[a-zA-Z0-9_-]{1,64}$",
    );
    let fits = "a".repeat(61);
    ok(&format!("servers:\n  {fits}:\n    command: x\n"));
}

#[test]
fn numeric_and_boolean_keys_are_names_too() {
    let config = ok("servers:\n  42:\n    command: x\n  true:\n    command: y\n");
    assert_eq!(config.servers[0].name, "42");
    assert_eq!(config.servers[1].name, "true");
}

// ----- transport selection --------------------------------------------------

#[test]
fn server_needs_settings() {
    single_error("servers:\n  git:\n", "servers.git", "has no settings");
}

#[test]
fn server_needs_command_or_url() {
    single_error(
        "servers:\n  git:\n    isolation: shared\n",
        "servers.git",
        "one of `command`",
    );
}

#[test]
fn server_cannot_have_both_command_and_url() {
    single_error(
        "servers:\n  git:\n    command: x\n    url: http://h/\n",
        "servers.git",
        "both `command` and `url`",
    );
}

#[test]
fn unknown_transport_is_an_error() {
    single_error(
        &stdio_server("    transport: grpc\n"),
        "servers.git.transport",
        "unknown transport \"grpc\"",
    );
}

#[test]
fn stdio_fields_are_refused_on_http() {
    let errors = errors("servers:\n  api:\n    transport: http\n    url: http://h/mcp\n    command: x\n    args: [a]\n    env: {A: b}\n    inherit_env: [HOME]\n    cwd: /tmp\n");
    assert_eq!(
        errors,
        [
            "servers.api.command: not valid for transport http",
            "servers.api.args: not valid for transport http",
            "servers.api.env: not valid for transport http",
            "servers.api.inherit_env: not valid for transport http",
            "servers.api.cwd: not valid for transport http",
        ]
    );
}

#[test]
fn http_fields_are_refused_on_stdio() {
    let errors = errors("servers:\n  git:\n    transport: stdio\n    command: x\n    url: http://h/\n    headers: {A: b}\n");
    assert_eq!(
        errors,
        [
            "servers.git.url: not valid for transport stdio",
            "servers.git.headers: not valid for transport stdio",
        ]
    );
}

#[test]
fn explicit_transport_requires_its_fields() {
    single_error(
        "servers:\n  git:\n    transport: stdio\n",
        "servers.git.command",
        "required",
    );
    single_error(
        "servers:\n  api:\n    transport: sse\n",
        "servers.api.url",
        "required",
    );
}

// ----- stdio servers ---------------------------------------------------------

#[test]
fn command_must_not_be_empty() {
    single_error(
        "servers:\n  git:\n    command: ''\n",
        "servers.git.command",
        "must not be empty",
    );
    single_error(
        "servers:\n  git:\n    command: '  '\n",
        "servers.git.command",
        "must not be empty",
    );
}

#[test]
fn nul_characters_are_refused_in_process_arguments() {
    single_error(
        "servers:\n  git:\n    command: \"a\\0b\"\n",
        "servers.git.command",
        "NUL",
    );
    single_error(
        &stdio_server("    args: [ok, \"a\\0b\"]\n"),
        "servers.git.args[1]",
        "NUL",
    );
    single_error(
        &stdio_server("    cwd: \"a\\0b\"\n"),
        "servers.git.cwd",
        "NUL",
    );
    single_error(
        &stdio_server("    env: {A: \"env:WITH_NUL\"}\n"),
        "servers.git.env.A",
        "NUL",
    );
}

#[test]
fn env_names_must_be_valid() {
    single_error(
        &stdio_server("    env: {'A=B': x}\n"),
        "servers.git.env.\"A=B\"",
        "not a valid environment variable name",
    );
    single_error(
        &stdio_server("    env: {'1A': x}\n"),
        "servers.git.env.1A",
        "not a valid environment variable name",
    );
    single_error(
        &stdio_server("    inherit_env: [HOME, 'bad name']\n"),
        "servers.git.inherit_env[1]",
        "not a valid",
    );
}

#[test]
fn inherit_env_has_no_repeats_or_overlap_with_env() {
    single_error(
        &stdio_server("    inherit_env: [HOME, HOME]\n"),
        "servers.git.inherit_env[1]",
        "duplicate",
    );
    single_error(
        &stdio_server("    env: {HOME: /x}\n    inherit_env: [HOME]\n"),
        "servers.git.inherit_env[0]",
        "also set under `env`",
    );
}

#[test]
fn cwd_resolves_against_the_config_directory() {
    let cwd = |yaml: &str| match &ok(yaml).servers[0].transport {
        Transport::Stdio { cwd, .. } => cwd.clone(),
        other => panic!("not stdio: {other:?}"),
    };
    assert_eq!(
        cwd(&stdio_server("    cwd: .\n")),
        Some(PathBuf::from("/etc/warden"))
    );
    assert_eq!(
        cwd(&stdio_server("    cwd: sub/dir\n")),
        Some(PathBuf::from("/etc/warden/sub/dir"))
    );
    assert_eq!(
        cwd(&stdio_server("    cwd: /srv/x\n")),
        Some(PathBuf::from("/srv/x"))
    );
    assert_eq!(cwd(&stdio_server("")), None);
    single_error(
        &stdio_server("    cwd: ''\n"),
        "servers.git.cwd",
        "must not be empty",
    );
}

#[test]
fn env_literals_are_allowed() {
    let config = ok(&stdio_server(
        "    env: {NODE_ENV: production, PORT: 8080, DEBUG: true}\n",
    ));
    let Transport::Stdio { env, .. } = &config.servers[0].transport else {
        panic!()
    };
    let values: Vec<&str> = env.iter().map(|(_, v)| v.expose()).collect();
    assert_eq!(values, ["production", "8080", "true"]);
}

// ----- secrets ----------------------------------------------------------------

#[test]
fn env_reference_resolves_from_the_environment() {
    let config = ok(&stdio_server(
        "    env: {T: 'env:GITHUB_TOKEN', E: 'env:EMPTY'}\n",
    ));
    let Transport::Stdio { env, .. } = &config.servers[0].transport else {
        panic!()
    };
    assert_eq!(env[0].1.expose(), TOKEN);
    assert_eq!(env[1].1.expose(), "");
}

#[test]
fn missing_env_reference_is_an_error_naming_the_variable() {
    single_error(
        &stdio_server("    env: {T: 'env:NOPE_NOT_SET'}\n"),
        "servers.git.env.T",
        "environment variable NOPE_NOT_SET is not set",
    );
    single_error(
        &stdio_server("    env: {T: 'env:'}\n"),
        "servers.git.env.T",
        "needs a variable name",
    );
    single_error(
        &stdio_server("    env: {T: 'env:A B'}\n"),
        "servers.git.env.T",
        "not a valid environment variable name",
    );
}

#[cfg(unix)]
#[test]
fn non_utf8_env_reference_is_an_error() {
    single_error(
        &stdio_server("    env: {T: 'env:NOT_UTF8'}\n"),
        "servers.git.env.T",
        "not valid UTF-8",
    );
}

#[test]
fn file_reference_reads_the_file_relative_to_the_config() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token"), format!("{TOKEN}\n")).unwrap();
    std::fs::write(dir.path().join("crlf"), "abc\r\n").unwrap();
    std::fs::write(dir.path().join("two"), "abc\n\n").unwrap();
    let yaml = http_server("    headers:\n      Authorization: file:token\n      X-A: file:crlf\n");
    let config = parse_in(&yaml, dir.path()).unwrap();
    let Transport::StreamableHttp { headers, .. } = &config.servers[0].transport else {
        panic!()
    };
    assert_eq!(headers[0].1.expose(), TOKEN, "one trailing newline trimmed");
    assert_eq!(
        headers[1].1.expose(),
        "abc",
        "a trailing CRLF counts as one newline"
    );
    // Only one newline is trimmed; the one left over is refused in a header.
    let errors = errors_in(
        &http_server("    headers:\n      X-B: file:two\n"),
        dir.path(),
    );
    assert_eq!(
        errors,
        [
            "servers.api.headers.X-B: value contains a control character (CR, LF, NUL, ...), \
          which is not allowed in an HTTP header"
        ]
    );
}

#[test]
fn file_reference_problems_are_errors() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("big"), vec![b'a'; 70 * 1024]).unwrap();
    std::fs::write(dir.path().join("binary"), [0xff, 0xfe]).unwrap();
    let missing = errors_in(&stdio_server("    env: {T: 'file:nope'}\n"), dir.path());
    assert_eq!(missing.len(), 1);
    assert!(
        missing[0].starts_with("servers.git.env.T: cannot read secret file"),
        "{missing:?}"
    );
    assert!(missing[0].contains("not found"), "{missing:?}");
    let big = errors_in(&stdio_server("    env: {T: 'file:big'}\n"), dir.path());
    assert!(big[0].contains("larger than 65536 bytes"), "{big:?}");
    let binary = errors_in(&stdio_server("    env: {T: 'file:binary'}\n"), dir.path());
    assert!(binary[0].contains("not valid UTF-8"), "{binary:?}");
    single_error(
        &stdio_server("    env: {T: 'file:'}\n"),
        "servers.git.env.T",
        "needs a path",
    );
}

#[test]
fn inlined_secret_headers_are_refused() {
    for name in [
        "Authorization",
        "authorization",
        "Cookie",
        "X-Api-Key",
        "X-Auth-Token",
        "Private-Token",
        "X-Client-Secret",
        "Db-Password",
    ] {
        single_error(
            &http_server(&format!("    headers:\n      {name}: \"Bearer {TOKEN}\"\n")),
            &format!("servers.api.headers.{name}"),
            "secrets must be referenced (env:NAME or file:PATH), not inlined",
        );
    }
    // literal: does not make an inlined secret acceptable
    single_error(
        &http_server(&format!(
            "    headers:\n      Authorization: \"literal:{TOKEN}\"\n"
        )),
        "servers.api.headers.Authorization",
        "not inlined",
    );
    // non-secret headers may be literal
    ok(&http_server(
        "    headers:\n      X-Tenant: acme\n      User-Agent: warden\n",
    ));
}

#[test]
fn header_values_cannot_inject_lines() {
    single_error(
        &http_server("    headers:\n      Authorization: env:WITH_NEWLINE\n"),
        "servers.api.headers.Authorization",
        "control character",
    );
    single_error(
        &http_server("    headers:\n      X-Tenant: \"a\\r\\nX-Evil: 1\"\n"),
        "servers.api.headers.X-Tenant",
        "control character",
    );
}

#[test]
fn header_names_must_be_tokens_and_not_gateway_owned() {
    single_error(
        &http_server("    headers:\n      'Bad Header': x\n"),
        "servers.api.headers.\"Bad Header\"",
        "not a valid HTTP header name",
    );
    single_error(
        &http_server("    headers:\n      'X:Y': x\n"),
        "servers.api.headers.\"X:Y\"",
        "not a valid HTTP header name",
    );
    for name in [
        "Host",
        "content-length",
        "Mcp-Session-Id",
        "MCP-Protocol-Version",
        "Transfer-Encoding",
        "Mcp-Method",
    ] {
        single_error(
            &http_server(&format!("    headers:\n      {name}: x\n")),
            &format!("servers.api.headers.{name}"),
            "set by the gateway",
        );
    }
}

#[test]
fn header_names_are_case_insensitive_duplicates() {
    single_error(
        &http_server("    headers:\n      X-Tenant: a\n      x-tenant: b\n"),
        "servers.api.headers.x-tenant",
        "duplicate header",
    );
}

// ----- http servers -------------------------------------------------------------

#[test]
fn url_must_be_http_with_a_host() {
    single_error(
        "servers:\n  api:\n    url: not a url\n",
        "servers.api.url",
        "invalid URL",
    );
    single_error(
        "servers:\n  api:\n    url: ftp://h/x\n",
        "servers.api.url",
        "http or https",
    );
    single_error(
        "servers:\n  api:\n    url: 'file:///etc/passwd'\n",
        "servers.api.url",
        "http or https",
    );
    single_error(
        "servers:\n  api:\n    url: /relative\n",
        "servers.api.url",
        "invalid URL",
    );
    single_error(
        "servers:\n  api:\n    url: 'http://'\n",
        "servers.api.url",
        "",
    );
}

#[test]
fn url_must_not_embed_credentials() {
    single_error(
        &format!("servers:\n  api:\n    url: 'https://user:{TOKEN}@h.example/mcp'\n"),
        "servers.api.url",
        "must not embed credentials",
    );
}

#[test]
fn isolation_values() {
    assert_eq!(
        ok(&stdio_server("    isolation: session\n")).servers[0].isolation,
        Isolation::Session
    );
    assert_eq!(
        ok(&http_server("    isolation: principal\n")).servers[0].isolation,
        Isolation::Principal
    );
    assert_eq!(
        ok(&http_server("    isolation: shared\n")).servers[0].isolation,
        Isolation::Shared
    );
    single_error(
        &stdio_server("    isolation: global\n"),
        "servers.git.isolation",
        "unknown isolation \"global\"",
    );
}

#[test]
fn protocol_era_values() {
    assert_eq!(ok(&http_server("")).servers[0].era, Era::Auto);
    assert_eq!(
        ok(&http_server("    protocol: session\n")).servers[0].era,
        Era::Session
    );
    assert_eq!(
        ok(&http_server("    protocol: 2026-07-28\n")).servers[0].era,
        Era::Modern
    );
    single_error(
        &http_server("    protocol: 2099\n"),
        "servers.api.protocol",
        "unknown protocol \"2099\"",
    );
    single_error(
        &stdio_server("    protocol: 2026-07-28\n"),
        "servers.git.protocol",
        "Streamable HTTP only",
    );
}

#[test]
fn restart_max_must_not_be_below_initial() {
    single_error(
        &stdio_server("    restart: {initial_backoff: 5s, max_backoff: 1s}\n"),
        "servers.git.restart.max_backoff",
        "must be at least initial_backoff (1s < 5s)",
    );
    // against the default initial backoff (200ms)
    single_error(
        &stdio_server("    restart: {max_backoff: 100ms}\n"),
        "servers.git.restart.max_backoff",
        "100ms < 200ms",
    );
    // an invalid value does not also produce a comparison error
    single_error(
        &stdio_server("    restart: {initial_backoff: x, max_backoff: 1ms}\n"),
        "servers.git.restart.initial_backoff",
        "invalid duration",
    );
    let config = ok(&stdio_server(
        "    restart: {initial_backoff: 1s, max_backoff: 1s}\n",
    ));
    assert_eq!(
        config.servers[0].restart.max_backoff,
        Duration::from_secs(1)
    );
}

// ----- virtual servers ------------------------------------------------------------

const TWO_SERVERS: &str = "servers:\n  notes:\n    command: x\n  time:\n    command: y\n";

fn with_vs(vs: &str) -> String {
    format!("{TWO_SERVERS}virtual_servers:\n{vs}")
}

#[test]
fn virtual_server_namespace_false_needs_exactly_one_server() {
    single_error(
        &with_vs("  dev:\n    servers: [notes, time]\n    namespace: false\n"),
        "virtual_servers.dev.namespace",
        "exactly one server",
    );
    let cfg = ok(&with_vs(
        "  direct:\n    servers: [notes]\n    namespace: false\n    tools: [search]\n",
    ));
    assert!(!cfg.virtual_servers[0].namespace);
    assert!(ok(&with_vs("  dev:\n    servers: [notes]\n")).virtual_servers[0].namespace);
}

#[test]
fn virtual_server_references_must_exist() {
    single_error(
        &with_vs("  dev:\n    servers: [notes, nope]\n"),
        "virtual_servers.dev.servers[1]",
        "unknown server \"nope\"",
    );
}

#[test]
fn virtual_server_reference_to_an_invalid_server_is_not_unknown() {
    // the only error is the server's own
    single_error(
        "servers:\n  git:\n    command: ''\nvirtual_servers:\n  dev:\n    servers: [git]\n",
        "servers.git.command",
        "must not be empty",
    );
}

#[test]
fn virtual_server_needs_servers() {
    single_error(
        &with_vs("  dev:\n    servers: []\n"),
        "virtual_servers.dev.servers",
        "must not be empty",
    );
    single_error(
        &with_vs("  dev:\n    tools: ['*']\n"),
        "virtual_servers.dev.servers",
        "is required",
    );
    single_error(
        &with_vs("  dev:\n"),
        "virtual_servers.dev.servers",
        "is required",
    );
}

#[test]
fn virtual_server_servers_do_not_repeat() {
    single_error(
        &with_vs("  dev:\n    servers: [notes, time, notes]\n"),
        "virtual_servers.dev.servers[2]",
        "duplicate server \"notes\"",
    );
}

#[test]
fn virtual_server_name_is_an_identifier() {
    single_error(
        &with_vs("  'd v':\n    servers: [notes]\n"),
        "virtual_servers.\"d v\"",
        "invalid virtual server name",
    );
}

#[test]
fn tool_patterns_are_validated() {
    single_error(
        &with_vs("  dev:\n    servers: [notes]\n    tools: []\n"),
        "virtual_servers.dev.tools",
        "must not be empty",
    );
    single_error(
        &with_vs("  dev:\n    servers: [notes]\n    tools: ['']\n"),
        "virtual_servers.dev.tools[0]",
        "must not be empty",
    );
    single_error(
        &with_vs("  dev:\n    servers: [notes]\n    tools: ['notes__?']\n"),
        "virtual_servers.dev.tools[0]",
        "may only contain",
    );
    single_error(
        &with_vs("  dev:\n    servers: [notes]\n    tools: ['notes.*']\n"),
        "virtual_servers.dev.tools[0]",
        "may only contain",
    );
    single_error(
        &with_vs(&format!(
            "  dev:\n    servers: [notes]\n    tools: ['notes__{}']\n",
            "a".repeat(60)
        )),
        "virtual_servers.dev.tools[0]",
        "can never match",
    );
    single_error(
        &with_vs("  dev:\n    servers: [notes]\n    tools: ['notes__*', 'notes__*']\n"),
        "virtual_servers.dev.tools[1]",
        "duplicate pattern",
    );
}

#[test]
fn tool_patterns_must_be_able_to_match_a_listed_server() {
    single_error(
        &with_vs("  dev:\n    servers: [notes]\n    tools: ['time__*']\n"),
        "virtual_servers.dev.tools[0]",
        "can match no tool of this virtual server (its exposed names look like notes__<tool>)",
    );
    let config = ok(&with_vs(
        "  dev:\n    servers: [notes, time]\n    tools: ['*__now', 'notes__*', '*']\n",
    ));
    assert_eq!(
        config.virtual_servers[0].tools.as_ref().map(Vec::len),
        Some(3)
    );
}

// ----- stdio settings ---------------------------------------------------------------

#[test]
fn stdio_principal_defaults_to_user_then_local() {
    assert_eq!(ok("").stdio.principal, "alice");
    let no_user = parse_with_env("", base(), &|_| None).unwrap();
    assert_eq!(no_user.stdio.principal, "local");
    let bad_user = parse_with_env("", base(), &|_| Some("a\nb".into())).unwrap();
    assert_eq!(bad_user.stdio.principal, "local");
}

#[test]
fn stdio_principal_must_be_printable() {
    single_error(
        "stdio:\n  principal: ''\n",
        "stdio.principal",
        "must not be empty",
    );
    single_error(
        "stdio:\n  principal: \"a\\nb\"\n",
        "stdio.principal",
        "control characters",
    );
}

// ----- many errors at once ------------------------------------------------------------

#[test]
fn all_errors_are_reported_in_one_run() {
    let errors = errors(
        "listen:\n  addr: x\ngateway:\n  max_depth: 1\nservers:\n  a:\n    command: ''\n  b:\n    url: ftp://x\nvirtual_servers:\n  v:\n    servers: [c]\n",
    );
    assert_eq!(
        errors,
        [
            "listen.addr: invalid socket address \"x\": expected IP:PORT, e.g. \"127.0.0.1:8080\" or \"[::1]:8080\"",
            "gateway.max_depth: must be between 2 and 128, got 1",
            "servers.a.command: must not be empty",
            "servers.b.url: URL scheme must be http or https, not \"ftp\"",
            "virtual_servers.v.servers[0]: unknown server \"c\"",
        ]
    );
}

#[test]
fn errors_display_one_per_line() {
    let err = parse_in("listen:\n  addr: x\ngateway:\n  max_depth: 1\n", base()).unwrap_err();
    assert_eq!(err.len(), 2);
    let text = err.to_string();
    assert_eq!(text.lines().count(), 2);
    assert!(text.lines().all(|l| l.contains(": ")));
    let as_error: &dyn std::error::Error = &err;
    assert_eq!(as_error.to_string(), text);
}

// ----- load() -------------------------------------------------------------------------

#[test]
fn load_resolves_relative_paths_against_the_file() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("token.txt"), "abc\n").unwrap();
    let file = dir.path().join("warden.yaml");
    std::fs::write(
        &file,
        "servers:\n  git:\n    command: x\n    cwd: work\n    env: {T: 'file:token.txt'}\n",
    )
    .unwrap();
    let config = crate::load(&file).unwrap();
    let Transport::Stdio { cwd, env, .. } = &config.servers[0].transport else {
        panic!()
    };
    assert_eq!(cwd.as_deref(), Some(dir.path().join("work").as_path()));
    assert_eq!(env[0].1.expose(), "abc");
}

#[test]
fn load_reports_unreadable_files() {
    let dir = tempfile::tempdir().unwrap();
    let err = crate::load(&dir.path().join("missing.yaml")).unwrap_err();
    assert_eq!(err.len(), 1);
    assert!(err.0[0].path.is_empty());
    assert!(err.0[0].message.contains("missing.yaml"), "{err}");
    let not_utf8 = dir.path().join("bad.yaml");
    std::fs::write(&not_utf8, [b'a', b':', b' ', 0xff]).unwrap();
    let err = crate::load(&not_utf8).unwrap_err();
    assert!(err.to_string().contains("not valid UTF-8"), "{err}");
    // a directory is not a file
    assert!(crate::load(dir.path()).is_err());
}

#[test]
fn load_without_a_directory_component_uses_the_current_directory() {
    // A bare file name has an empty parent; it must resolve against ".".
    let err = crate::load(Path::new("definitely-not-here-warden.yaml")).unwrap_err();
    assert!(err.to_string().contains("definitely-not-here-warden.yaml"));
}

// ----- golden snapshots ------------------------------------------------------------------

fn snapshot_errors(yaml: &str) -> String {
    match parse_in(yaml, base()) {
        Ok(_) => "(valid)".to_owned(),
        Err(errors) => {
            let text = errors.to_string();
            assert!(!text.contains(TOKEN), "secret leaked:\n{text}");
            text
        }
    }
}

#[test]
fn golden_many_errors() {
    insta::assert_snapshot!(snapshot_errors(include_str!(
        "../testdata/many_errors.yaml"
    )));
}

#[test]
fn golden_secrets() {
    insta::assert_snapshot!(snapshot_errors(include_str!("../testdata/secrets.yaml")));
}

#[test]
fn golden_names() {
    insta::assert_snapshot!(snapshot_errors(include_str!("../testdata/names.yaml")));
}

#[test]
fn golden_unknown_key() {
    insta::assert_snapshot!(snapshot_errors(include_str!(
        "../testdata/unknown_key.yaml"
    )));
}

fn yaml_blocks(markdown: &str) -> Vec<&str> {
    let mut blocks = Vec::new();
    let mut rest = markdown;
    while let Some(start) = rest.find("```yaml\n") {
        let body = &rest[start + "```yaml\n".len()..];
        let end = body.find("```").expect("unterminated yaml block");
        blocks.push(&body[..end]);
        rest = &body[end..];
    }
    blocks
}

#[test]
fn registry_defaults_to_strict_with_the_lock_next_to_the_file() {
    let c = ok("");
    assert_eq!(c.registry.mode, warden_registry::Mode::Strict);
    assert_eq!(c.registry.lock, Path::new("/etc/warden/warden.lock"));
    assert_eq!(c.registry.revalidate_after, Duration::from_secs(1));
    let c = ok("registry:\n  mode: tofu\n  lock: state/w.lock\n  revalidate_after: 0s\n  scanner:\n    block_at: critical\n    block_on_distinct_rules: 0\n");
    assert_eq!(c.registry.mode, warden_registry::Mode::Tofu);
    assert_eq!(c.registry.lock, Path::new("/etc/warden/state/w.lock"));
    assert_eq!(c.registry.revalidate_after, Duration::ZERO);
    assert_eq!(
        c.registry.scanner.thresholds.block_at,
        warden_registry::Severity::Critical
    );
    assert_eq!(c.registry.scanner.thresholds.block_on_distinct_rules, 0);
}

#[test]
fn registry_errors_name_their_path() {
    single_error("registry:\n  mode: lax\n", "registry.mode", "strict");
    single_error(
        "registry:\n  scanner:\n    block_at: severe\n",
        "registry.scanner.block_at",
        "unknown severity",
    );
    single_error(
        "registry:\n  scanner:\n    disabled_rules: [no.such.rule]\n",
        "registry.scanner.disabled_rules[0]",
        "unknown scanner rule",
    );
    for (yaml, path, message) in [
        ("{}", "registry.scanner.classifier.url", "required"),
        (
            "{url: 'ftp://x/'}",
            "registry.scanner.classifier.url",
            "http or https",
        ),
        (
            "{url: 'http://u:p@x/'}",
            "registry.scanner.classifier.url",
            "credentials",
        ),
        (
            "{url: 'http://x/', threshold: 2}",
            "registry.scanner.classifier.threshold",
            "score",
        ),
        (
            "{url: 'http://x/', on_error: open}",
            "registry.scanner.classifier.on_error",
            "warn or block",
        ),
        (
            "{url: 'http://x/', labels: []}",
            "registry.scanner.classifier.labels",
            "label",
        ),
        (
            "{url: 'http://x/', timeout: 0s}",
            "registry.scanner.classifier.timeout",
            "greater than zero",
        ),
    ] {
        single_error(
            &format!("registry:\n  scanner:\n    classifier: {yaml}\n"),
            path,
            message,
        );
    }
}

#[test]
fn a_classifier_that_fails_closed_blocks_unanswered_items() {
    let c = ok("registry:\n  scanner:\n    classifier: {url: 'http://127.0.0.1:9/predict'}\n");
    let cl = c.registry.classifier.as_ref().expect("classifier");
    assert_eq!(cl.threshold, 0.5);
    assert_eq!(cl.labels, vec!["INJECTION".to_owned()]);
    assert_eq!(cl.on_error, warden_classifier::OnError::Warn);
    assert!(c.registry.scanner.severities.is_empty());
    let c = ok("registry:\n  scanner:\n    classifier: {url: 'http://127.0.0.1:9/predict', on_error: block, threshold: 0.8, timeout: 2s}\n");
    let cl = c.registry.classifier.as_ref().expect("classifier");
    assert_eq!(cl.on_error, warden_classifier::OnError::Block);
    assert_eq!(cl.timeout, Duration::from_secs(2));
    assert!(c.registry.scanner.severities.contains(&(
        "classifier.unavailable".to_owned(),
        warden_registry::Severity::High
    )));
}

/// The operator reference's examples must be valid: the per-section ones
/// together form one file (each section appears once), and the complete
/// example is a file of its own.
#[test]
fn documented_examples_are_valid() {
    let doc = include_str!("../../../docs/configuration.md");
    let (sections, complete) = doc
        .split_once("## A complete file")
        .expect("docs/configuration.md has a complete example");
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("secrets")).unwrap();
    std::fs::write(dir.path().join("secrets/tickets-key"), "k\n").unwrap();
    std::fs::write(
        dir.path().join("secrets/grants-key"),
        format!("{GRANTS_KEY}\n"),
    )
    .unwrap();

    let section_blocks = yaml_blocks(sections);
    assert!(section_blocks.len() >= 5, "{section_blocks:?}");
    let combined = section_blocks.concat();
    if let Err(errors) = parse_in(&combined, dir.path()) {
        panic!("docs/configuration.md section examples are invalid:\n{errors}");
    }
    let complete_blocks = yaml_blocks(complete);
    assert_eq!(complete_blocks.len(), 1);
    if let Err(errors) = parse_in(complete_blocks[0], dir.path()) {
        panic!("docs/configuration.md complete example is invalid:\n{errors}");
    }
}

// ----- no panics -------------------------------------------------------------------------

/// Fragments that steer random documents into the interesting parts of the
/// schema rather than only into YAML syntax errors.
fn yamlish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("listen:".to_owned()),
        Just("gateway:".to_owned()),
        Just("servers:".to_owned()),
        Just("virtual_servers:".to_owned()),
        Just("stdio:".to_owned()),
        Just("command:".to_owned()),
        Just("url:".to_owned()),
        Just("transport:".to_owned()),
        Just("headers:".to_owned()),
        Just("env:".to_owned()),
        Just("tools:".to_owned()),
        Just("separator:".to_owned()),
        Just("restart:".to_owned()),
        Just("max_backoff:".to_owned()),
        Just("env:HOME".to_owned()),
        Just("file:/dev/null".to_owned()),
        Just("*".to_owned()),
        Just("&a".to_owned()),
        Just("*a".to_owned()),
        Just("<<:".to_owned()),
        Just("[".to_owned()),
        Just("]".to_owned()),
        Just("{".to_owned()),
        Just("}".to_owned()),
        Just("- ".to_owned()),
        Just(",".to_owned()),
        Just("\n".to_owned()),
        Just("\n  ".to_owned()),
        Just("\n    ".to_owned()),
        Just("\"".to_owned()),
        Just("'".to_owned()),
        Just("---".to_owned()),
        Just("!tag".to_owned()),
        Just("? ".to_owned()),
        Just("|".to_owned()),
        "[a-z_]{1,8}",
        "[0-9]{1,22}",
        any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(token, 0..60).prop_map(|parts| parts.join(" "))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        let _ = parse_in(&text, base());
    }

    #[test]
    fn yaml_like_text_never_panics(text in yamlish()) {
        let _ = parse_in(&text, base());
    }

    #[test]
    fn every_error_names_a_path_or_a_location(text in yamlish()) {
        if let Err(errors) = parse_in(&text, base()) {
            prop_assert!(!errors.is_empty());
            for error in &errors {
                prop_assert!(!error.message.is_empty());
            }
        }
    }
}

#[test]
fn tool_costs_are_validated_with_their_path() {
    let errs = errors(
        "servers:\n  llm:\n    command: x\n    tools:\n      - {name: complete, cost: {amount: -1, unit: 'US$'}}\n      - {name: ok, cost: {amount: 0.5, unit: USD}}\n",
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("servers.llm.tools[0].cost.amount")),
        "{errs:?}"
    );
    assert!(
        errs.iter()
            .any(|e| e.starts_with("servers.llm.tools[0].cost.unit")),
        "{errs:?}"
    );
    assert_eq!(errs.len(), 2, "{errs:?}");
    let cfg = ok("servers:\n  llm:\n    command: x\n    tools:\n      - {name: 'complete*', cost: {amount: 0.002, unit: USD, per: max_tokens}}\n");
    let cost = cfg.servers[0]
        .facts
        .item(warden_policy::ItemKind::Tool, "complete_chat")
        .and_then(|f| f.cost.clone())
        .expect("the glob's cost");
    assert_eq!(cost.per.as_deref(), Some("max_tokens"));
}

#[test]
fn limits_section_defaults_and_errors() {
    let cfg = ok("");
    assert_eq!(cfg.limits.rate[0].id, "per-principal");
    let errs = errors("limits:\n  rate: [{id: r, rate: 5/week}]\n  loops: {window: never}\n");
    assert!(
        errs.iter().any(|e| e.starts_with("limits.rate[0].rate")),
        "{errs:?}"
    );
    assert!(
        errs.iter().any(|e| e.starts_with("limits.loops.window")),
        "{errs:?}"
    );
}

#[test]
fn the_limits_redis_url_is_a_secret_reference_resolved_at_load() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("redis.url"),
        "redis://:s3cr3t@127.0.0.1:6379/0\n",
    )
    .unwrap();
    let config = parse_in("limits:\n  redis: {url: 'file:redis.url'}\n", dir.path()).unwrap();
    let warden_limits::Backend::Redis(redis) = &config.limits.backend else {
        panic!("{:?}", config.limits)
    };
    assert_eq!(
        redis.url,
        warden_limits::RedisUrl::Resolved("redis://:s3cr3t@127.0.0.1:6379/0".into())
    );
    assert!(!format!("{config:?}").contains("s3cr3t"));
    single_error(
        "limits:\n  redis: {url: 'env:NOT_SET_ANYWHERE'}\n",
        "limits.redis.url",
        "NOT_SET_ANYWHERE is not set",
    );
    // A variable that holds something else: refused without echoing it.
    single_error(
        "limits:\n  redis: {url: 'env:GITHUB_TOKEN'}\n",
        "limits.redis.url",
        "not a Redis URL",
    );
    single_error(
        "limits:\n  redis: {url: 'redis://:s3cr3t@127.0.0.1:6379/0'}\n",
        "limits.redis.url",
        "by reference",
    );
}

// ----- upstream credentials --------------------------------------------------------------

#[test]
fn upstream_credentials_resolve_per_mode() {
    let c = ok(&format!(
        "credentials: {{issuer: 'https://warden.example.com/'}}\n{}",
        http_server("    credentials: {mode: mint}\n")
    ));
    assert_eq!(
        c.servers[0].credentials.mode,
        crate::CredentialMode::Mint {
            audience: "https://mcp.example.com/mcp".into()
        }
    );
    assert_eq!(
        c.credentials.as_ref().map(|s| s.issuer.as_str()),
        Some("https://warden.example.com")
    );
    let c = ok(&http_server(
        "    credentials:\n      mode: exchange\n      audience: api://reports\n      token_endpoint: https://login.example.com/token\n      client_id: warden\n      client_secret: env:NOTES_TOKEN\n",
    ));
    let crate::CredentialMode::Exchange {
        audience,
        client_secret,
        ..
    } = &c.servers[0].credentials.mode
    else {
        panic!("{:?}", c.servers[0].credentials)
    };
    assert_eq!(audience, "api://reports");
    assert_eq!(client_secret.expose(), TOKEN);
    assert!(!format!("{c:?}").contains(TOKEN));
    let c = ok(&http_server(
        "    credentials:\n      tenants:\n        acme: {X-Api-Key: env:NOTES_TOKEN}\n",
    ));
    assert!(c.servers[0].credentials.is_scoped());
}

const GRANT_STORE: &str = "credentials:\n  issuer: https://w.example.com\n  grant_store: {path: grants.json, key: env:GRANTS_KEY}\n";

#[test]
fn oauth_servers_resolve_with_a_grant_store() {
    let c = ok(&format!(
        "{GRANT_STORE}{}",
        http_server("    credentials:\n      mode: oauth\n      client_id: warden\n      client_secret: env:NOTES_TOKEN\n      scopes: [mcp, crm.read]\n")
    ));
    let crate::CredentialMode::OAuth {
        client_id,
        client_secret,
        scopes,
        allow_private_network,
    } = &c.servers[0].credentials.mode
    else {
        panic!("{:?}", c.servers[0].credentials)
    };
    assert_eq!(client_id, "warden");
    assert_eq!(client_secret.as_ref().map(|s| s.expose()), Some(TOKEN));
    assert_eq!(scopes, &["mcp", "crm.read"]);
    assert!(!allow_private_network);
    let store = c.grant_store.as_ref().expect("grant store");
    assert_eq!(store.path, base().join("grants.json"));
    assert_eq!(store.key.expose(), GRANTS_KEY);
    assert!(!format!("{c:?}").contains(GRANTS_KEY));
}

#[test]
fn oauth_mistakes_name_their_path() {
    single_error(
        &http_server("    credentials: {mode: oauth, client_id: warden}\n"),
        "servers.api.credentials.mode",
        "credentials.grant_store",
    );
    single_error(
        &format!(
            "{GRANT_STORE}{}",
            http_server(
                "    isolation: shared\n    credentials: {mode: oauth, client_id: warden}\n"
            )
        ),
        "servers.api.credentials.mode",
        "never shared",
    );
    single_error(
        &format!(
            "{GRANT_STORE}{}",
            http_server("    credentials: {mode: oauth}\n")
        ),
        "servers.api.credentials.client_id",
        "required for mode oauth",
    );
    single_error(
        &format!(
            "{GRANT_STORE}{}",
            http_server("    credentials: {mode: oauth, client_id: w, token_endpoint: 'https://as.example/t'}\n")
        ),
        "servers.api.credentials.token_endpoint",
        "discovered",
    );
    single_error(
        &format!(
            "credentials: {{issuer: 'https://w.example.com'}}\n{}",
            http_server("    credentials: {mode: mint, scopes: [a]}\n")
        ),
        "servers.api.credentials.scopes",
        "only for mode oauth",
    );
    single_error(
        "credentials:\n  issuer: https://w.example.com\n  grant_store: {path: g.json, key: env:NOTES_TOKEN}\n",
        "credentials.grant_store.key",
        "grant store: the key",
    );
}

#[test]
fn upstream_credential_mistakes_name_their_path() {
    single_error(
        &http_server("    credentials: {mode: mint}\n"),
        "servers.api.credentials.mode",
        "identity.public_url or credentials.issuer",
    );
    single_error(
        &http_server("    isolation: shared\n    credentials:\n      tenants:\n        acme: {X-Api-Key: env:NOTES_TOKEN}\n"),
        "servers.api.credentials",
        "isolation session or principal",
    );
    single_error(
        &http_server(
            "    credentials:\n      tenants:\n        acme: {X-Api-Key: inlined-secret}\n",
        ),
        "servers.api.credentials.tenants.acme.X-Api-Key",
        "must be referenced",
    );
    single_error(
        &http_server("    credentials:\n      mode: exchange\n      token_endpoint: https://login.example.com/token\n      client_id: warden\n      client_secret: inlined\n"),
        "servers.api.credentials.client_secret",
        "must be referenced",
    );
    single_error(
        &http_server("    credentials:\n      mode: exchange\n      client_id: warden\n      client_secret: env:NOTES_TOKEN\n"),
        "servers.api.credentials.token_endpoint",
        "required for mode exchange",
    );
    single_error(
        &format!(
            "credentials: {{issuer: 'https://w.example.com'}}\n{}",
            http_server("    credentials: {mode: mint, client_id: warden}\n")
        ),
        "servers.api.credentials.client_id",
        "only for mode exchange",
    );
    single_error(
        &stdio_server("    credentials: {mode: mint}\n"),
        "servers.git.credentials",
        "Streamable HTTP only",
    );
    single_error(
        "credentials: {token_ttl: 5m, issuer: 'https://w.example.com'}\n",
        "credentials.token_ttl",
        "at most 60s",
    );
}
