//! Configuration of the guards: the YAML section `guards:` as written
//! ([`RawGuards`], serde, unknown keys refused) and its validated form
//! ([`GuardSettings`]). Every bad value is reported with its path under
//! `guards.`, all of them in one pass.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::rules::{self, Family};

/// What the guard does with a detection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Not detected at all.
    Off,
    /// Reported as a finding; content unchanged.
    Log,
    /// Content wrapped in untrusted-content delimiters with a notice.
    Label,
    /// The match replaced by `[REDACTED:<class>]`.
    Redact,
    /// The whole call refused.
    Block,
}

impl Action {
    fn parse(s: &str) -> Option<Action> {
        Some(match s {
            // YAML 1.1 readers turn a bare `off` into `false`.
            "off" | "false" => Action::Off,
            "log" => Action::Log,
            "label" => Action::Label,
            "redact" => Action::Redact,
            "block" => Action::Block,
            _ => return None,
        })
    }
}

/// How strictly arguments are held to a tool's input schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SchemaMode {
    /// Properties an object schema does not declare are refused unless the
    /// schema explicitly allows additional properties.
    Strict,
    /// The schema as the server wrote it (JSON Schema's own defaults).
    AsDeclared,
}

/// What to do with forbidden characters in arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CharPolicy {
    Reject,
    Strip,
    Allow,
}

/// What the client sees of an upstream error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorMode {
    /// A generic message with the correlation id; nothing of the original.
    Generic,
    /// The original message with secrets and PII redacted.
    Redacted,
    /// The original error unchanged.
    Passthrough,
}

/// Size and shape limits on a tool's arguments.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Longest string value or object key, in UTF-8 bytes.
    pub max_string_bytes: usize,
    /// Most items in one array.
    pub max_array_items: usize,
    /// Deepest nesting of arrays and objects; the arguments object is 1.
    pub max_depth: usize,
    /// Size of the whole arguments text, in bytes.
    pub max_total_bytes: usize,
}

/// An action per detector class: a default and per-class exceptions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClassActions {
    pub default: Action,
    pub classes: Vec<(&'static str, Action)>,
}

impl ClassActions {
    pub fn action(&self, class: &str) -> Action {
        self.classes
            .iter()
            .find(|(c, _)| *c == class)
            .map_or(self.default, |(_, a)| *a)
    }

    /// True when every class of the family is off.
    pub(crate) fn all_off(&self) -> bool {
        self.default == Action::Off && self.classes.iter().all(|(_, a)| *a == Action::Off)
    }

    fn patch(&mut self, p: &ClassActions) {
        self.default = p.default;
        self.classes = p.classes.clone();
    }
}

/// Every knob, resolved for one tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolGuards {
    pub schema_mode: SchemaMode,
    pub limits: Limits,
    pub forbidden_chars: CharPolicy,
    pub input_injection: ClassActions,
    pub secrets: ClassActions,
    pub pii: ClassActions,
    pub output_injection: ClassActions,
    /// Cap on a result's size in bytes; larger results are truncated with a marker.
    pub max_output_bytes: usize,
    pub upstream_errors: ErrorMode,
    /// Run the learned injection model ([`crate::learned::LinearModel::injection`])
    /// over result text besides the rules (`guards.output.model`).
    pub output_model: bool,
}

impl Default for ToolGuards {
    fn default() -> Self {
        ToolGuards {
            schema_mode: SchemaMode::Strict,
            limits: Limits {
                max_string_bytes: 8 << 10,
                max_array_items: 1000,
                max_depth: 15,
                max_total_bytes: 1 << 20,
            },
            forbidden_chars: CharPolicy::Reject,
            input_injection: ClassActions {
                default: Action::Log,
                classes: Vec::new(),
            },
            secrets: ClassActions {
                default: Action::Redact,
                classes: Vec::new(),
            },
            pii: ClassActions {
                default: Action::Redact,
                classes: vec![("ip_address", Action::Log)],
            },
            output_injection: ClassActions {
                default: Action::Label,
                classes: Vec::new(),
            },
            max_output_bytes: 1 << 20,
            upstream_errors: ErrorMode::Generic,
            output_model: false,
        }
    }
}

/// A partial [`ToolGuards`]: only the knobs an override names.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ToolPatch {
    pub schema_mode: Option<SchemaMode>,
    pub max_string_bytes: Option<usize>,
    pub max_array_items: Option<usize>,
    pub max_depth: Option<usize>,
    pub max_total_bytes: Option<usize>,
    pub forbidden_chars: Option<CharPolicy>,
    pub input_injection: Option<ClassActions>,
    pub secrets: Option<ClassActions>,
    pub pii: Option<ClassActions>,
    pub output_injection: Option<ClassActions>,
    pub max_output_bytes: Option<usize>,
    pub upstream_errors: Option<ErrorMode>,
    pub output_model: Option<bool>,
}

impl ToolPatch {
    pub(crate) fn apply(&self, t: &mut ToolGuards) {
        macro_rules! set {
            ($field:ident => $($target:tt)+) => {
                if let Some(v) = self.$field { t.$($target)+ = v; }
            };
        }
        set!(schema_mode => schema_mode);
        set!(max_string_bytes => limits.max_string_bytes);
        set!(max_array_items => limits.max_array_items);
        set!(max_depth => limits.max_depth);
        set!(max_total_bytes => limits.max_total_bytes);
        set!(forbidden_chars => forbidden_chars);
        set!(max_output_bytes => max_output_bytes);
        set!(upstream_errors => upstream_errors);
        set!(output_model => output_model);
        if let Some(c) = &self.input_injection {
            t.input_injection.patch(c);
        }
        if let Some(c) = &self.secrets {
            t.secrets.patch(c);
        }
        if let Some(c) = &self.pii {
            t.pii.patch(c);
        }
        if let Some(c) = &self.output_injection {
            t.output_injection.patch(c);
        }
    }
}

/// A per-tool override: `pattern` is an exposed tool name (`github__create_issue`)
/// or a glob over exposed names (`github__*`, `*__delete_*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOverride {
    pub pattern: String,
    pub patch: ToolPatch,
}

/// Validated guard settings: defaults, per-server schema modes and per-tool
/// overrides, applied in that order (globs before exact names; among globs,
/// the one with more literal characters last).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct GuardSettings {
    pub defaults: ToolGuards,
    pub servers: Vec<(String, SchemaMode)>,
    pub tools: Vec<ToolOverride>,
}

impl GuardSettings {
    /// The defaults, and the defaults with each tool override applied on
    /// its own (calls that several globs match combine them).
    pub(crate) fn variants(&self) -> impl Iterator<Item = ToolGuards> + '_ {
        std::iter::once(self.defaults.clone()).chain(self.tools.iter().map(|o| {
            let mut t = self.defaults.clone();
            o.patch.apply(&mut t);
            t
        }))
    }

    /// The knobs in force for one call.
    pub fn for_tool(&self, tool: &str, server: &str) -> ToolGuards {
        let mut t = self.defaults.clone();
        if let Some((_, mode)) = self.servers.iter().find(|(s, _)| s == server) {
            t.schema_mode = *mode;
        }
        for o in &self.tools {
            if glob_match(&o.pattern, tool) {
                o.patch.apply(&mut t);
            }
        }
        t
    }
}

/// `*` matches any run of characters (including none); everything else
/// matches itself.
pub(crate) fn glob_match(pattern: &str, name: &str) -> bool {
    let mut parts = pattern.split('*');
    let Some(first) = parts.next() else {
        return false;
    };
    let Some(mut rest) = name.strip_prefix(first) else {
        return false;
    };
    let parts: Vec<&str> = parts.collect();
    let Some((last, middle)) = parts.split_last() else {
        return rest.is_empty();
    };
    for p in middle {
        match rest.find(p) {
            Some(i) => rest = &rest[i + p.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

fn specificity(pattern: &str) -> (bool, usize) {
    let literal = pattern.chars().filter(|c| *c != '*').count();
    (!pattern.contains('*'), literal)
}

// ---------------------------------------------------------------------------
// The file as written.

/// The `guards:` section as written. Every field is optional; a missing one
/// keeps the default.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGuards {
    pub input: Option<RawInput>,
    pub output: Option<RawOutput>,
    /// Per upstream server: `{ schema_mode: strict | as_declared }`.
    pub servers: Option<BTreeMap<String, RawServerGuards>>,
    /// Per exposed tool name or glob: the same knobs as `input` / `output`.
    pub tools: Option<BTreeMap<String, RawToolGuards>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawInput {
    pub schema_mode: Option<Scalar>,
    pub limits: Option<RawLimits>,
    pub forbidden_chars: Option<Scalar>,
    pub injection: Option<RawClassActions>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLimits {
    pub max_string_bytes: Option<Scalar>,
    pub max_array_items: Option<Scalar>,
    pub max_depth: Option<Scalar>,
    pub max_total_bytes: Option<Scalar>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOutput {
    pub secrets: Option<RawClassActions>,
    pub pii: Option<RawClassActions>,
    pub injection: Option<RawClassActions>,
    pub max_bytes: Option<Scalar>,
    pub upstream_errors: Option<Scalar>,
    /// `on | off`: the learned injection model over result text.
    pub model: Option<Scalar>,
}

/// `{ action: redact, classes: { private_key: block } }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawClassActions {
    pub action: Option<Scalar>,
    pub classes: Option<BTreeMap<String, Scalar>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawServerGuards {
    pub schema_mode: Option<Scalar>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawToolGuards {
    pub input: Option<RawInput>,
    pub output: Option<RawOutput>,
}

/// A YAML scalar kept as text (`8KiB`, `1000`, `redact`), interpreted when
/// resolving so that every bad value is reported with its path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scalar(pub String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string or a number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_owned()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E: de::Error>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// `(path under guards., message)` pairs.
pub type SettingsErrors = Vec<(String, String)>;

struct Resolver {
    errors: SettingsErrors,
}

impl Resolver {
    fn err(&mut self, path: &str, msg: impl Into<String>) {
        self.errors.push((path.to_owned(), msg.into()));
    }

    fn size(&mut self, path: &str, v: &Option<Scalar>) -> Option<usize> {
        let s = v.as_ref()?;
        match parse_size(&s.0) {
            Some(0) => {
                self.err(path, "must be greater than zero");
                None
            }
            Some(n) => Some(n),
            None => {
                self.err(
                    path,
                    format!(
                        "invalid size {:?}: expected a number of bytes or a number with a unit \
                         B, KiB, MiB or GiB (e.g. 8192, \"8KiB\", \"1MiB\")",
                        s.0
                    ),
                );
                None
            }
        }
    }

    fn count(&mut self, path: &str, v: &Option<Scalar>) -> Option<usize> {
        let s = v.as_ref()?;
        let t = s.0.trim();
        match t.parse::<usize>() {
            Ok(0) => {
                self.err(path, "must be greater than zero");
                None
            }
            Ok(n) if t.bytes().all(|b| b.is_ascii_digit()) => Some(n),
            _ => {
                self.err(
                    path,
                    format!("invalid number {:?}: expected a positive integer", s.0),
                );
                None
            }
        }
    }

    fn choice<T: Copy>(
        &mut self,
        path: &str,
        v: &Option<Scalar>,
        options: &[(&str, T)],
    ) -> Option<T> {
        let s = v.as_ref()?;
        match options.iter().find(|(name, _)| *name == s.0) {
            Some((_, t)) => Some(*t),
            None => {
                let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
                self.err(
                    path,
                    format!(
                        "invalid value {:?}: expected one of {}",
                        s.0,
                        names.join(", ")
                    ),
                );
                None
            }
        }
    }

    fn action(&mut self, path: &str, s: &Scalar, allowed: &[Action]) -> Option<Action> {
        match Action::parse(&s.0).filter(|a| allowed.contains(a)) {
            Some(a) => Some(a),
            None => {
                let names: Vec<String> = allowed
                    .iter()
                    .map(|a| format!("{a:?}").to_lowercase())
                    .collect();
                self.err(
                    path,
                    format!(
                        "invalid action {:?}: expected one of {}",
                        s.0,
                        names.join(", ")
                    ),
                );
                None
            }
        }
    }

    fn class_actions(
        &mut self,
        path: &str,
        raw: &Option<RawClassActions>,
        family: Family,
        base: &ClassActions,
        allowed: &[Action],
    ) -> Option<ClassActions> {
        let raw = raw.as_ref()?;
        let mut out = base.clone();
        if let Some(a) = &raw.action {
            if let Some(a) = self.action(&format!("{path}.action"), a, allowed) {
                out.default = a;
            }
        }
        if let Some(classes) = &raw.classes {
            for (name, a) in classes {
                let p = format!("{path}.classes.{name}");
                let Some(class) = rules::class_named(family, name) else {
                    let known: Vec<&str> = rules::classes(family).collect();
                    self.err(
                        &p,
                        format!(
                            "unknown class {name:?}; known classes: {}",
                            known.join(", ")
                        ),
                    );
                    continue;
                };
                if let Some(a) = self.action(&p, a, allowed) {
                    out.classes.retain(|(c, _)| *c != class);
                    out.classes.push((class, a));
                }
            }
        }
        Some(out)
    }

    fn patch(
        &mut self,
        path: &str,
        input: &Option<RawInput>,
        output: &Option<RawOutput>,
        base: &ToolGuards,
    ) -> ToolPatch {
        const INPUT_INJECTION: &[Action] =
            &[Action::Off, Action::Log, Action::Label, Action::Block];
        const OUTPUT: &[Action] = &[
            Action::Off,
            Action::Log,
            Action::Label,
            Action::Redact,
            Action::Block,
        ];
        let mut p = ToolPatch::default();
        if let Some(i) = input {
            let ip = format!("{path}.input");
            p.schema_mode = self.choice(
                &format!("{ip}.schema_mode"),
                &i.schema_mode,
                &[
                    ("strict", SchemaMode::Strict),
                    ("as_declared", SchemaMode::AsDeclared),
                ],
            );
            if let Some(l) = &i.limits {
                let lp = format!("{ip}.limits");
                p.max_string_bytes =
                    self.size(&format!("{lp}.max_string_bytes"), &l.max_string_bytes);
                p.max_array_items =
                    self.count(&format!("{lp}.max_array_items"), &l.max_array_items);
                p.max_depth = self.count(&format!("{lp}.max_depth"), &l.max_depth);
                p.max_total_bytes = self.size(&format!("{lp}.max_total_bytes"), &l.max_total_bytes);
            }
            p.forbidden_chars = self.choice(
                &format!("{ip}.forbidden_chars"),
                &i.forbidden_chars,
                &[
                    ("reject", CharPolicy::Reject),
                    ("strip", CharPolicy::Strip),
                    ("allow", CharPolicy::Allow),
                ],
            );
            p.input_injection = self.class_actions(
                &format!("{ip}.injection"),
                &i.injection,
                Family::Injection,
                &base.input_injection,
                INPUT_INJECTION,
            );
        }
        if let Some(o) = output {
            let op = format!("{path}.output");
            p.secrets = self.class_actions(
                &format!("{op}.secrets"),
                &o.secrets,
                Family::Secret,
                &base.secrets,
                OUTPUT,
            );
            p.pii =
                self.class_actions(&format!("{op}.pii"), &o.pii, Family::Pii, &base.pii, OUTPUT);
            p.output_injection = self.class_actions(
                &format!("{op}.injection"),
                &o.injection,
                Family::Injection,
                &base.output_injection,
                OUTPUT,
            );
            p.max_output_bytes = self.size(&format!("{op}.max_bytes"), &o.max_bytes);
            p.upstream_errors = self.choice(
                &format!("{op}.upstream_errors"),
                &o.upstream_errors,
                &[
                    ("generic", ErrorMode::Generic),
                    ("redacted", ErrorMode::Redacted),
                    ("passthrough", ErrorMode::Passthrough),
                ],
            );
            p.output_model = self.choice(
                &format!("{op}.model"),
                &o.model,
                &[
                    ("on", true),
                    ("off", false),
                    ("true", true),
                    ("false", false),
                ],
            );
        }
        p
    }
}

impl RawGuards {
    /// Validates every value; errors name their path under `guards.`.
    pub fn resolve(self) -> Result<GuardSettings, SettingsErrors> {
        let mut r = Resolver { errors: Vec::new() };
        let mut defaults = ToolGuards::default();
        let base = defaults.clone();
        r.patch("guards", &self.input, &self.output, &base)
            .apply(&mut defaults);

        let mut servers = Vec::new();
        for (name, s) in self.servers.iter().flatten() {
            let p = format!("guards.servers.{name}.schema_mode");
            let mode = r.choice(
                &p,
                &s.schema_mode,
                &[
                    ("strict", SchemaMode::Strict),
                    ("as_declared", SchemaMode::AsDeclared),
                ],
            );
            if let Some(mode) = mode {
                servers.push((name.clone(), mode));
            }
        }

        let mut tools = Vec::new();
        for (pattern, t) in self.tools.iter().flatten() {
            let path = format!("guards.tools.{pattern}");
            if pattern.is_empty()
                || !pattern
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_-.*/".contains(c))
            {
                r.err(
                    &path,
                    "a tool override is keyed by an exposed tool name or a glob over them \
                     (letters, digits, `_`, `-`, `.`, `/` and `*`)",
                );
                continue;
            }
            // Class overrides in a tool start from the defaults: a tool that
            // names `secrets.action` keeps the global per-class exceptions
            // unless it names them too.
            let patch = r.patch(&path, &t.input, &t.output, &defaults);
            tools.push(ToolOverride {
                pattern: pattern.clone(),
                patch,
            });
        }
        tools.sort_by_key(|o| specificity(&o.pattern));

        if r.errors.is_empty() {
            Ok(GuardSettings {
                defaults,
                servers,
                tools,
            })
        } else {
            Err(r.errors)
        }
    }
}

/// A byte count: an integer, or an integer with a binary unit (`B`, `KiB`,
/// `MiB`, `GiB`). Decimal units are refused: readers disagree on them.
fn parse_size(text: &str) -> Option<usize> {
    let t = text.trim();
    let end = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (digits, unit) = t.split_at(end);
    if digits.is_empty() {
        return None;
    }
    let mult: usize = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        _ => return None,
    };
    digits.parse::<usize>().ok()?.checked_mul(mult)
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
