use super::*;

fn resolve(yaml: &str) -> Result<GuardSettings, SettingsErrors> {
    let raw: RawGuards = serde_saphyr::from_str(yaml).expect("yaml shape");
    raw.resolve()
}

#[test]
fn defaults() {
    let d = GuardSettings::default().defaults;
    assert_eq!(d.schema_mode, SchemaMode::Strict);
    assert_eq!(d.limits.max_string_bytes, 8192);
    assert_eq!(d.limits.max_array_items, 1000);
    assert_eq!(d.limits.max_depth, 15);
    assert_eq!(d.limits.max_total_bytes, 1 << 20);
    assert_eq!(d.forbidden_chars, CharPolicy::Reject);
    assert_eq!(d.input_injection.default, Action::Log);
    assert_eq!(d.secrets.default, Action::Redact);
    assert_eq!(d.pii.action("email"), Action::Redact);
    assert_eq!(d.pii.action("ip_address"), Action::Log);
    assert_eq!(d.output_injection.default, Action::Label);
    assert_eq!(d.max_output_bytes, 1 << 20);
    assert_eq!(d.upstream_errors, ErrorMode::Generic);
    assert_eq!(resolve("{}").unwrap(), GuardSettings::default());
}

#[test]
fn full_shape_resolves() {
    let s = resolve(
        r#"
input:
  schema_mode: strict
  limits: { max_string_bytes: 4KiB, max_array_items: 100, max_depth: 8, max_total_bytes: 65536 }
  forbidden_chars: strip
  injection: { action: block }
output:
  secrets: { action: redact, classes: { private_key: block } }
  pii: { action: label, classes: { ip_address: off } }
  injection: { action: log }
  max_bytes: 512KiB
  upstream_errors: redacted
servers:
  legacy: { schema_mode: as_declared }
tools:
  "github__*":
    output: { pii: { action: log } }
  "github__get_secret":
    output: { secrets: { action: block } }
"#,
    )
    .unwrap();
    let d = &s.defaults;
    assert_eq!(d.limits.max_string_bytes, 4096);
    assert_eq!(d.forbidden_chars, CharPolicy::Strip);
    assert_eq!(d.secrets.action("private_key"), Action::Block);
    assert_eq!(d.secrets.action("jwt"), Action::Redact);
    assert_eq!(d.max_output_bytes, 512 << 10);
    let t = s.for_tool("github__get_secret", "github");
    assert_eq!(t.pii.default, Action::Log);
    assert_eq!(t.secrets.default, Action::Block);
    assert_eq!(
        s.for_tool("legacy__x", "legacy").schema_mode,
        SchemaMode::AsDeclared
    );
    assert_eq!(s.for_tool("other__x", "other").pii.default, Action::Label);
}

#[test]
fn every_error_is_reported_with_its_path() {
    let errs = resolve(
        r#"
input:
  limits: { max_depth: -1, max_string_bytes: 4MB }
  injection: { action: redact }
output:
  secrets: { action: shred, classes: { nope: log } }
  upstream_errors: verbose
tools:
  "bad tool": {}
"#,
    )
    .unwrap_err();
    let paths: Vec<&str> = errs.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        vec![
            "guards.input.limits.max_string_bytes",
            "guards.input.limits.max_depth",
            "guards.input.injection.action",
            "guards.output.secrets.action",
            "guards.output.secrets.classes.nope",
            "guards.output.upstream_errors",
            "guards.tools.bad tool",
        ]
    );
    assert!(errs[4].1.contains("known classes"));
}

#[test]
fn unknown_keys_are_refused() {
    assert!(serde_saphyr::from_str::<RawGuards>("outptu: {}").is_err());
    assert!(serde_saphyr::from_str::<RawGuards>("output: { secret: {} }").is_err());
}

#[test]
fn globs() {
    assert!(glob_match("github__*", "github__create_issue"));
    assert!(glob_match("*__delete_*", "fs__delete_file"));
    assert!(glob_match("exact", "exact"));
    assert!(!glob_match("exact", "exactly"));
    assert!(!glob_match("a*b", "ab_"));
    assert!(glob_match("*", ""));
}

#[test]
fn output_model_is_a_setting_off_by_default() {
    assert!(!GuardSettings::default().defaults.output_model);
    let s = resolve("output: { model: on }\ntools:\n  \"web__*\": { output: { model: off } }\n")
        .unwrap();
    assert!(s.defaults.output_model);
    assert!(!s.for_tool("web__fetch", "web").output_model);
    assert!(s.for_tool("fs__read", "fs").output_model);
    assert!(
        !resolve("output: { model: false }")
            .unwrap()
            .defaults
            .output_model
    );
    let e = resolve("output: { model: sometimes }").unwrap_err();
    assert_eq!(e[0].0, "guards.output.model", "{e:?}");
}
