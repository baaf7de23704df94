//! The manifest scanner (threat T02): finds poisoned tool, prompt and
//! resource definitions before any model sees them.
//!
//! It reads **every** text of a manifest — every string value at any depth
//! (names, titles, descriptions, enums, defaults, examples, nested schema
//! descriptions, `outputSchema`, annotations, `_meta`) and every object key
//! (parameter names are keys) — through two kinds of detectors:
//!
//! * character detectors on the raw text (invisible and format Unicode,
//!   controls, ANSI escapes, text hidden after long whitespace, look-alike
//!   letters), see `unicode.rs`;
//! * text rules on a normalised copy (see [`rules`]), compiled once into a
//!   [`regex::RegexSet`] (regex-automata with aho-corasick prefilters inside)
//!   so one pass tells which rules can match; only those run again for the
//!   location of the match.
//!
//! Each finding carries a rule id, a severity and a JSON pointer; the
//! verdict comes from [`Thresholds`] and from structure: one weak signal
//! warns at most, an instruction to the model with a target outside the
//! tool's own job blocks ([`Scanner::verdict`], explained by
//! [`Scanner::why`]). The scanner does no I/O and is cheap to clone (its
//! compiled state is shared).
//!
//! Quality is measured on the shared corpora by
//! `cargo run -p warden-guard --release --example eval -- --family descriptions`,
//! and the floors (MSB poisoned descriptions flagged ≥ 95 %, reference
//! servers flagged ≤ 2 %) are held by `tests/corpora.rs`. Rules are
//! written per attack family, never per corpus string.

pub mod rules;
mod unicode;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use base64::Engine as _;
use regex::bytes::{Regex as BytesRegex, RegexBuilder, RegexSet, RegexSetBuilder};
use regex::Regex;
use serde_json::value::RawValue;
use warden_guard::learned::{LinearModel, POISONING_THRESHOLD};

use crate::manifest::{ItemKind, Manifest};
use warden_protocol::message::{as_str, elements, members};

pub use rules::{RuleInfo, RULES};

use crate::error::RegistryError;
use crate::text::{escape_excerpt, pointer_token};

/// How serious a finding is.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Low => "low",
            Severity::Medium => "medium",
            Severity::High => "high",
            Severity::Critical => "critical",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Severity {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "low" => Ok(Severity::Low),
            "medium" => Ok(Severity::Medium),
            "high" => Ok(Severity::High),
            "critical" => Ok(Severity::Critical),
            _ => Err(()),
        }
    }
}

/// What to do with a scanned item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Ok,
    Warn,
    Block,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Ok => "ok",
            Verdict::Warn => "warn",
            Verdict::Block => "block",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing the scanner found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ScanFinding {
    /// Stable rule id, e.g. `instruction.concealment` (see [`RULES`]).
    pub rule: &'static str,
    pub severity: Severity,
    /// JSON pointer of the string or key inside the manifest.
    pub location: String,
    /// A short excerpt around the match, control and invisible characters escaped.
    pub excerpt: String,
}

/// How findings become a verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Thresholds {
    /// Any finding at or above this severity warns.
    pub warn_at: Severity,
    /// Any finding at or above this severity blocks.
    pub block_at: Severity,
    /// This many distinct rules at or above `warn_at` block together
    /// (0 = never). Several weak signals in one item are a strong one.
    pub block_on_distinct_rules: usize,
}

impl Default for Thresholds {
    fn default() -> Self {
        Self {
            warn_at: Severity::Medium,
            block_at: Severity::High,
            block_on_distinct_rules: 3,
        }
    }
}

/// Operator configuration of the scanner.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScannerConfig {
    pub thresholds: Thresholds,
    /// Rule ids that never report.
    pub disabled_rules: Vec<String>,
    /// Rule ids with a severity other than their default.
    pub severities: Vec<(String, Severity)>,
}

/// What the scanner knows about the item's neighbours: the names of its own
/// server's tools (references to them are not shadowing) and the tools of
/// other servers (references to them are).
#[derive(Debug, Clone, Default)]
pub struct ScanContext {
    own: BTreeSet<String>,
    foreign: BTreeMap<String, String>,
    /// The operator's classifier's verdicts, by item kind and name.
    external: BTreeMap<(ItemKind, String), External>,
}

/// What the operator's external classifier said about an item's
/// descriptions (asked by the caller, which does the I/O).
#[derive(Debug, Clone, PartialEq)]
pub enum External {
    /// Its score and the threshold at which it means poisoned.
    Score { score: f32, threshold: f32 },
    /// It could not answer (the reason, for the finding's excerpt).
    Unavailable(String),
}

impl ScanContext {
    pub fn new() -> Self {
        Self::default()
    }

    /// Names of tools and prompts of the item's own server.
    pub fn own_names<'a>(mut self, names: impl IntoIterator<Item = &'a str>) -> Self {
        self.own.extend(names.into_iter().map(str::to_lowercase));
        self
    }

    /// The classifier's verdict on one of the server's items.
    pub fn external(mut self, kind: ItemKind, name: &str, verdict: External) -> Self {
        self.external.insert((kind, name.to_owned()), verdict);
        self
    }

    /// Names of tools offered by another server. Only distinctive names
    /// (5+ characters with a `_`, `-` or `.`, not also an own name) are
    /// looked for: `search` is a word, `send_email` is a tool.
    pub fn foreign_names<'a>(
        mut self,
        server: &str,
        names: impl IntoIterator<Item = &'a str>,
    ) -> Self {
        for n in names {
            let n = n.to_lowercase();
            if n.chars().count() >= 5 && n.contains(['_', '-', '.']) {
                self.foreign.entry(n).or_insert_with(|| server.to_owned());
            }
        }
        self
    }
}

/// The compiled scanner. Build once, share (`Clone` is an `Arc` copy).
#[derive(Clone)]
pub struct Scanner {
    inner: Arc<Compiled>,
    /// The learned poisoning model over descriptions (`None`: rules only).
    learned: Option<Arc<LinearModel>>,
}

impl fmt::Debug for Scanner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Scanner")
            .field("rules", &self.inner.rules.len())
            .field("thresholds", &self.inner.thresholds)
            .finish()
    }
}

struct Compiled {
    rules: Vec<CompiledRule>,
    set: RegexSet,
    parameter_name: Regex,
    base64: Regex,
    /// Effective severity per rule; `None` = disabled.
    severity: HashMap<&'static str, Option<Severity>>,
    thresholds: Thresholds,
}

struct CompiledRule {
    id: &'static str,
    regex: BytesRegex,
    other_tool: bool,
    /// A match counts only where this finds nothing inside it.
    unless: Option<BytesRegex>,
}

/// At most this many findings are kept per manifest.
const MAX_FINDINGS: usize = 200;

impl Default for Scanner {
    fn default() -> Self {
        Self::new()
    }
}

impl Scanner {
    /// The scanner with every rule at its default severity and the default thresholds.
    pub fn new() -> Self {
        // The built-in patterns are constants covered by tests; failing to
        // compile them is a bug in this crate, not something input can cause.
        Self::with_config(&ScannerConfig::default()).expect("built-in scanner rules compile")
    }

    /// The scanner with an operator's configuration. Unknown rule ids are errors.
    pub fn with_config(config: &ScannerConfig) -> Result<Self, RegistryError> {
        let mut severity: HashMap<&'static str, Option<Severity>> =
            RULES.iter().map(|r| (r.id, Some(r.severity))).collect();
        let known = |id: &str| {
            RULES
                .iter()
                .find(|r| r.id == id)
                .map(|r| r.id)
                .ok_or_else(|| RegistryError::UnknownRule(escape_excerpt(id, 64)))
        };
        for (id, sev) in &config.severities {
            severity.insert(known(id)?, Some(*sev));
        }
        for id in &config.disabled_rules {
            severity.insert(known(id)?, None);
        }
        let specs = rules::text_rules();
        let patterns: Vec<String> = specs.iter().map(|r| expand(&r.pattern)).collect();
        let set = RegexSetBuilder::new(&patterns)
            .case_insensitive(true)
            .unicode(false)
            .size_limit(64 << 20)
            .dfa_size_limit(32 << 20)
            .build()
            .map_err(|_| RegistryError::UnknownRule("built-in rule set".into()))?;
        let bytes_regex = |id: &'static str, pattern: &str| {
            RegexBuilder::new(pattern)
                .case_insensitive(true)
                .unicode(false)
                .size_limit(16 << 20)
                .dfa_size_limit(8 << 20)
                .build()
                .map_err(|_| RegistryError::UnknownRule(id.into()))
        };
        let rules = specs
            .iter()
            .zip(&patterns)
            .map(|(spec, pattern)| {
                Ok(CompiledRule {
                    id: spec.id,
                    regex: bytes_regex(spec.id, pattern)?,
                    other_tool: spec.other_tool,
                    unless: spec
                        .unless
                        .map(|u| bytes_regex(spec.id, &expand(u)))
                        .transpose()?,
                })
            })
            .collect::<Result<Vec<_>, RegistryError>>()?;
        let parameter_name = regex::RegexBuilder::new(rules::SUSPICIOUS_PARAMETER_NAME)
            .case_insensitive(true)
            .build()
            .map_err(|_| RegistryError::UnknownRule(rules::SUSPICIOUS_PARAMETER.into()))?;
        let base64 = Regex::new(r"[A-Za-z0-9+/_-]{40,}={0,2}")
            .map_err(|_| RegistryError::UnknownRule(rules::ENCODED_TEXT.into()))?;
        Ok(Self {
            learned: Some(Arc::new(LinearModel::poisoning().clone())),
            inner: Arc::new(Compiled {
                rules,
                set,
                parameter_name,
                base64,
                severity,
                thresholds: config.thresholds.clone(),
            }),
        })
    }

    /// Every rule this scanner knows, with its default severity.
    pub fn rules() -> &'static [RuleInfo] {
        RULES
    }

    pub fn thresholds(&self) -> &Thresholds {
        &self.inner.thresholds
    }

    /// This scanner with another learned poisoning model, or with none
    /// (rules only). The shipped model is on by default.
    pub fn with_learned(mut self, model: Option<LinearModel>) -> Self {
        self.learned = model.map(Arc::new);
        self
    }

    /// Scans every text of a manifest and decides.
    pub fn scan_manifest(&self, item: &RawValue) -> (Verdict, Vec<ScanFinding>) {
        self.scan_manifest_in(item, &ScanContext::default())
    }

    /// [`Scanner::scan_manifest`] knowing the item's neighbours.
    pub fn scan_manifest_in(
        &self,
        item: &RawValue,
        ctx: &ScanContext,
    ) -> (Verdict, Vec<ScanFinding>) {
        let mut out = Findings::default();
        let mut ptr = String::new();
        let scope = Scope {
            ctx,
            item: item_names(item),
        };
        self.walk(item, &mut ptr, Parent::Root, &scope, &mut out, 0);
        self.learned(item, &mut out);
        let findings = out.finish();
        (self.verdict(&findings), findings)
    }

    /// Scans one item of a server: its manifest's texts with
    /// [`Scanner::scan_manifest_in`], plus the operator's classifier's
    /// verdict on it from `ctx`, and decides.
    pub fn scan_item(
        &self,
        m: &Manifest,
        ctx: &ScanContext,
    ) -> Result<(Verdict, Vec<ScanFinding>), RegistryError> {
        let (mut verdict, mut findings) = self.scan_manifest_in(&m.raw()?, ctx);
        if self.add_external(m, ctx, &mut findings) {
            verdict = self.verdict(&findings);
        }
        Ok((verdict, findings))
    }

    /// Adds the classifier's finding on `m` (from `ctx`) to `findings`:
    /// `classifier.poisoning` at or above its threshold,
    /// `classifier.unavailable` when it could not answer. Whether that
    /// blocks is the rules' severity (the fail mode sets the second's).
    /// Whether a finding was added.
    fn add_external(
        &self,
        m: &Manifest,
        ctx: &ScanContext,
        findings: &mut Vec<ScanFinding>,
    ) -> bool {
        let Some(verdict) = ctx.external.get(&(m.kind, m.name.clone())) else {
            return false;
        };
        let finding = match verdict {
            External::Score { score, threshold } if score >= threshold => self.finding(
                rules::CLASSIFIER,
                "",
                format!("score {score:.2} (threshold {threshold:.2})"),
            ),
            External::Score { .. } => None,
            External::Unavailable(why) => {
                self.finding(rules::CLASSIFIER_UNAVAILABLE, "", escape_excerpt(why, 160))
            }
        };
        let added = finding.is_some();
        findings.extend(finding);
        added
    }

    /// Scans one text (server instructions, prompt messages, a tool result).
    pub fn scan_text(&self, location: &str, text: &str) -> Vec<ScanFinding> {
        self.scan_text_in(location, text, &ScanContext::default())
    }

    pub fn scan_text_in(&self, location: &str, text: &str, ctx: &ScanContext) -> Vec<ScanFinding> {
        let mut out = Findings::default();
        let scope = Scope {
            ctx,
            item: BTreeSet::new(),
        };
        self.scan_string(location, text, &scope, &mut out);
        out.finish()
    }

    /// The verdict for a set of findings under this scanner's thresholds.
    ///
    /// Besides the thresholds, structure: an instruction addressed to the
    /// model (imperative, precondition, urgency, addressing, a tag,
    /// concealment) together with a target outside the tool's own job
    /// (another server's tool, a credential or configuration file, a
    /// command, the caller's prompt, a parameter to fill with secrets)
    /// warns, and blocks when either side is at least `warn_at` on its
    /// own. Either side alone is a weak signal: it warns at most.
    pub fn verdict(&self, findings: &[ScanFinding]) -> Verdict {
        self.judge(findings).0
    }

    /// Why [`Scanner::verdict`] decided what it did, in one line: which
    /// findings blocked, which instruction met which target, or that weak
    /// signals only warn. Empty for `ok`.
    pub fn why(&self, findings: &[ScanFinding]) -> String {
        self.judge(findings).1
    }

    fn judge(&self, findings: &[ScanFinding]) -> (Verdict, String) {
        let t = &self.inner.thresholds;
        let ids = |pick: &dyn Fn(&ScanFinding) -> bool| {
            let set: BTreeSet<&str> = findings
                .iter()
                .filter(|f| pick(f))
                .map(|f| f.rule)
                .collect();
            set.into_iter().collect::<Vec<_>>().join(", ")
        };
        if findings.iter().any(|f| f.severity >= t.block_at) {
            let why = format!(
                "blocks: {} at {} or above, each enough alone",
                ids(&|f| f.severity >= t.block_at),
                t.block_at
            );
            return (Verdict::Block, why);
        }
        let strongest = |kinds: &[&str]| {
            findings
                .iter()
                .filter(|f| kinds.contains(&f.rule))
                .map(|f| f.severity)
                .max()
        };
        if let (Some(i), Some(g)) = (strongest(rules::INSTRUCTIONS), strongest(rules::TARGETS)) {
            let pair = format!(
                "an instruction to the model ({}) with a target outside the tool's job ({})",
                ids(&|f| rules::INSTRUCTIONS.contains(&f.rule)),
                ids(&|f| rules::TARGETS.contains(&f.rule))
            );
            return if i.max(g) >= t.warn_at {
                (Verdict::Block, format!("blocks: {pair}"))
            } else {
                (Verdict::Warn, format!("warns: {pair}, both weak"))
            };
        }
        let warned: BTreeSet<&str> = findings
            .iter()
            .filter(|f| f.severity >= t.warn_at)
            .map(|f| f.rule)
            .collect();
        let list = warned.iter().copied().collect::<Vec<_>>().join(", ");
        if t.block_on_distinct_rules > 0 && warned.len() >= t.block_on_distinct_rules {
            let why = format!(
                "blocks: {} distinct rules at or above {} ({list})",
                warned.len(),
                t.warn_at
            );
            (Verdict::Block, why)
        } else if warned.is_empty() {
            (Verdict::Ok, String::new())
        } else {
            let why = format!(
                "warns: {list} at {} or above; weak alone (blocking takes an instruction with a target outside the tool's job, or a stronger finding)",
                t.warn_at
            );
            (Verdict::Warn, why)
        }
    }

    /// The learned model over every `description` of the item, joined by
    /// line breaks in document order: one finding at the description that
    /// holds the best window, when its score reaches
    /// [`POISONING_THRESHOLD`]. The finding warns; blocking takes other
    /// evidence.
    fn learned(&self, item: &RawValue, out: &mut Findings) {
        let Some(model) = &self.learned else { return };
        let mut found = Vec::new();
        descriptions(item, &mut String::new(), &mut found, 0);
        let mut text = String::new();
        let mut starts = Vec::with_capacity(found.len());
        for (_, d) in &found {
            starts.push(text.len());
            text.push_str(d);
            text.push('\n');
        }
        let Some(w) = model.best_window(&text) else {
            return;
        };
        if w.score < POISONING_THRESHOLD {
            return;
        }
        let at = starts
            .partition_point(|s| *s <= w.span.start)
            .saturating_sub(1);
        let Some((location, _)) = found.get(at) else {
            return;
        };
        let excerpt = format!(
            "score {:.2}: {}",
            w.score,
            escape_excerpt(text.get(w.span.clone()).unwrap_or_default().trim(), 160)
        );
        out.push(self.finding(rules::LEARNED, location, excerpt));
    }

    /// A finding for `rule` at this scanner's severity, unless disabled.
    pub(crate) fn finding(
        &self,
        rule: &'static str,
        location: &str,
        excerpt: String,
    ) -> Option<ScanFinding> {
        let severity = self.inner.severity.get(rule).copied().flatten()?;
        Some(ScanFinding {
            rule,
            severity,
            location: location.to_owned(),
            excerpt,
        })
    }

    fn walk(
        &self,
        v: &RawValue,
        ptr: &mut String,
        parent: Parent,
        scope: &Scope<'_>,
        out: &mut Findings,
        depth: usize,
    ) {
        if depth > crate::canonical::MAX_DEPTH || out.full() {
            return;
        }
        let text = v.get().trim_start();
        match text.as_bytes().first() {
            Some(b'{') => {
                let Some(entries) = members(v) else { return };
                for (key, child) in entries {
                    let len = ptr.len();
                    ptr.push('/');
                    ptr.push_str(&pointer_token(&key));
                    self.scan_key(ptr, &key, parent == Parent::Properties, scope, out);
                    if parent == Parent::ArgumentList && key == "name" {
                        if let Some(name) = as_str(child) {
                            self.check_parameter_name(ptr, &name, out);
                        }
                    }
                    let next = match key.as_ref() {
                        "properties" | "patternProperties" if parent != Parent::Properties => {
                            Parent::Properties
                        }
                        "arguments" if parent == Parent::Root => Parent::Arguments,
                        _ => Parent::Other,
                    };
                    self.walk(child, ptr, next, scope, out, depth + 1);
                    ptr.truncate(len);
                }
            }
            Some(b'[') => {
                let Some(items) = elements(v) else { return };
                let next = if parent == Parent::Arguments {
                    Parent::ArgumentList
                } else {
                    Parent::Other
                };
                for (i, item) in items.into_iter().enumerate() {
                    let len = ptr.len();
                    ptr.push('/');
                    ptr.push_str(&i.to_string());
                    self.walk(item, ptr, next, scope, out, depth + 1);
                    ptr.truncate(len);
                }
            }
            Some(b'"') => {
                if let Some(s) = as_str(v) {
                    self.scan_string(ptr, &s, scope, out);
                }
            }
            _ => {}
        }
    }

    fn scan_key(
        &self,
        location: &str,
        key: &str,
        is_parameter: bool,
        scope: &Scope<'_>,
        out: &mut Findings,
    ) {
        self.scan_string(location, key, scope, out);
        let words = humanize(key);
        if words != key {
            let normalized = unicode::normalize(&words);
            self.text_rules(location, &normalized, "", scope, out);
        }
        if is_parameter {
            self.check_parameter_name(location, key, out);
        }
    }

    fn check_parameter_name(&self, location: &str, name: &str, out: &mut Findings) {
        let snake = snake_case(name);
        if self.inner.parameter_name.is_match(&snake) {
            out.push(self.finding(
                rules::SUSPICIOUS_PARAMETER,
                location,
                format!("parameter {:?}", escape_excerpt(name, 60)),
            ));
        }
    }

    fn scan_string(&self, location: &str, text: &str, scope: &Scope<'_>, out: &mut Findings) {
        let mut raw = Vec::new();
        let hidden = unicode::scan_chars(text, &mut raw);
        for f in raw {
            out.push(self.finding(f.rule, location, f.excerpt));
        }
        let normalized = unicode::normalize(text);
        self.text_rules(location, &normalized, "", scope, out);
        if let Some(hidden) = hidden {
            self.text_rules(
                location,
                &unicode::normalize(&hidden),
                "[hidden] ",
                scope,
                out,
            );
        }
        self.foreign_references(location, &normalized, scope, out);
        for m in self.inner.base64.find_iter(text).take(8) {
            if let Some(decoded) = decode_text(m.as_str()) {
                out.push(self.finding(
                    rules::ENCODED_TEXT,
                    location,
                    format!("[base64] {}", escape_excerpt(&decoded, 100)),
                ));
                self.text_rules(
                    location,
                    &unicode::normalize(&decoded),
                    "[base64] ",
                    scope,
                    out,
                );
            }
        }
    }

    fn text_rules(
        &self,
        location: &str,
        normalized: &str,
        prefix: &str,
        scope: &Scope<'_>,
        out: &mut Findings,
    ) {
        if normalized.is_empty() {
            return;
        }
        let view = AsciiView::of(normalized);
        for idx in self.inner.set.matches(&view.bytes).iter() {
            let Some(rule) = self.inner.rules.get(idx) else {
                continue;
            };
            let hit = if rule.other_tool {
                rule.regex
                    .captures_iter(&view.bytes)
                    .find(|caps| names_other_tool(caps, scope))
                    .and_then(|caps| caps.get(0))
            } else if let Some(unless) = &rule.unless {
                rule.regex
                    .find_iter(&view.bytes)
                    .find(|m| !unless.is_match(m.as_bytes()))
            } else {
                rule.regex.find(&view.bytes)
            };
            if let Some(m) = hit {
                let (start, end) = (view.offset(m.start()), view.offset(m.end()));
                let excerpt = format!("{prefix}{}", around(normalized, start, end));
                out.push(self.finding(rule.id, location, excerpt));
            }
        }
    }

    fn foreign_references(
        &self,
        location: &str,
        normalized: &str,
        scope: &Scope<'_>,
        out: &mut Findings,
    ) {
        let ctx = scope.ctx;
        if ctx.foreign.is_empty() {
            return;
        }
        let lower = normalized.to_lowercase();
        for (name, server) in &ctx.foreign {
            if ctx.own.contains(name) || scope.item.contains(name) {
                continue;
            }
            if let Some(at) = find_token(&lower, name) {
                // Lower-casing keeps offsets when it keeps lengths (ASCII).
                let shown = if lower.len() == normalized.len() {
                    normalized
                } else {
                    &lower
                };
                let excerpt = format!(
                    "{} (a tool of server {:?})",
                    around(shown, at, at + name.len()),
                    escape_excerpt(server, 40)
                );
                out.push(self.finding(rules::CROSS_SERVER, location, excerpt));
                return;
            }
        }
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Parent {
    Root,
    Properties,
    Arguments,
    ArgumentList,
    Other,
}

/// Findings of one scan, one per rule and location, at most [`MAX_FINDINGS`].
#[derive(Default)]
struct Findings {
    list: Vec<ScanFinding>,
    seen: BTreeSet<(&'static str, String)>,
}

impl Findings {
    fn push(&mut self, f: Option<ScanFinding>) {
        let Some(f) = f else { return };
        if self.full() || !self.seen.insert((f.rule, f.location.clone())) {
            return;
        }
        self.list.push(f);
    }

    fn full(&self) -> bool {
        self.list.len() >= MAX_FINDINGS
    }

    /// The findings, without a mention of a sensitive file where a request
    /// to read or send that file was found at the same place.
    fn finish(self) -> Vec<ScanFinding> {
        let seen = self.seen;
        self.list
            .into_iter()
            .filter(|f| {
                f.rule != rules::SENSITIVE_PATH
                    || !seen.contains(&(rules::SENSITIVE_READ, f.location.clone()))
            })
            .collect()
    }
}

/// `(JSON pointer, text)` of every string member named `description`, at
/// any depth, in document order.
/// What the operator's classifier is asked about an item: every
/// `description` in it, in document order, one per line (the text the
/// learned model reads too). `None` when it has none.
pub fn described_text(item: &RawValue) -> Option<String> {
    let mut found = Vec::new();
    descriptions(item, &mut String::new(), &mut found, 0);
    if found.is_empty() {
        return None;
    }
    let mut text = String::new();
    for (_, d) in &found {
        text.push_str(d);
        text.push('\n');
    }
    Some(text)
}

fn descriptions(v: &RawValue, ptr: &mut String, out: &mut Vec<(String, String)>, depth: usize) {
    if depth > crate::canonical::MAX_DEPTH {
        return;
    }
    match v.get().trim_start().as_bytes().first() {
        Some(b'{') => {
            for (key, child) in members(v).into_iter().flatten() {
                let len = ptr.len();
                ptr.push('/');
                ptr.push_str(&pointer_token(&key));
                if key == "description" {
                    if let Some(s) = as_str(child) {
                        out.push((ptr.clone(), s.into_owned()));
                    }
                }
                descriptions(child, ptr, out, depth + 1);
                ptr.truncate(len);
            }
        }
        Some(b'[') => {
            for (i, item) in elements(v).into_iter().flatten().enumerate() {
                let len = ptr.len();
                ptr.push('/');
                ptr.push_str(&i.to_string());
                descriptions(item, ptr, out, depth + 1);
                ptr.truncate(len);
            }
        }
        _ => {}
    }
}

/// A finding before it has a location and severity.
pub(crate) struct RawFinding {
    rule: &'static str,
    excerpt: String,
}

impl RawFinding {
    fn new(rule: &'static str, excerpt: String) -> Self {
        Self { rule, excerpt }
    }
}

/// Normalised text as one ASCII byte per character, which is what the text
/// rules run on: ASCII stays, other letters and digits become `x` (still
/// word characters, so boundaries hold) and other characters `#`. Matching
/// bytes with ASCII-only classes keeps the automata small and fast (a
/// Unicode `[^.!?]{0,60}` is sixty copies of a large UTF-8 automaton);
/// offsets map back to the normalised text for excerpts.
struct AsciiView {
    bytes: Vec<u8>,
    /// Byte offset in the normalised text of each character, then its length.
    offsets: Vec<usize>,
}

impl AsciiView {
    fn of(text: &str) -> Self {
        let mut bytes = Vec::with_capacity(text.len());
        let mut offsets = Vec::with_capacity(text.len() + 1);
        for (i, c) in text.char_indices() {
            offsets.push(i);
            bytes.push(if c.is_ascii() {
                c as u8
            } else if c.is_alphanumeric() {
                b'x'
            } else {
                b'#'
            });
        }
        offsets.push(text.len());
        Self { bytes, offsets }
    }

    fn offset(&self, ascii_index: usize) -> usize {
        self.offsets.get(ascii_index).copied().unwrap_or(0)
    }
}

/// Expands the rules' shorthand: `[^.!?]` ("within the sentence") also
/// lets through a period that does not end a sentence, as in `.env`,
/// `e.g.` or a URL.
fn expand(pattern: &str) -> String {
    pattern.replace("[^.!?]", r"(?:[^.!?]|\.[^\s.!?])")
}

fn names_other_tool(caps: &regex::bytes::Captures<'_>, scope: &Scope<'_>) -> bool {
    for n in 1..=11 {
        if let Some(m) = caps.name(&format!("who{n}")) {
            let who = String::from_utf8_lossy(m.as_bytes()).to_lowercase();
            return !rules::SELF_WORDS.contains(&who.as_str())
                && !scope.ctx.own.contains(&who)
                && !scope.item.contains(&who);
        }
    }
    true
}

/// What one scan may mention without naming another tool: the server's
/// tools (from the context), and the item's own name and parameters
/// ("`limit` is ignored when `page_token` is used" is about the tool
/// itself, not shadowing).
struct Scope<'a> {
    ctx: &'a ScanContext,
    /// The item's name and its parameters' names, lower-cased.
    item: BTreeSet<String>,
}

/// The item's `name` and every parameter name in it: the keys of each
/// `properties` object and the `name` of each prompt argument.
fn item_names(item: &RawValue) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    collect_names(item, Parent::Root, &mut names, 0);
    names
}

fn collect_names(v: &RawValue, parent: Parent, names: &mut BTreeSet<String>, depth: usize) {
    if depth > crate::canonical::MAX_DEPTH {
        return;
    }
    match v.get().trim_start().as_bytes().first() {
        Some(b'{') => {
            for (key, child) in members(v).into_iter().flatten() {
                if parent == Parent::Properties {
                    names.insert(key.to_lowercase());
                }
                if key == "name" && matches!(parent, Parent::Root | Parent::ArgumentList) {
                    if let Some(n) = as_str(child) {
                        names.insert(n.to_lowercase());
                    }
                }
                let next = match key.as_ref() {
                    "properties" | "patternProperties" if parent != Parent::Properties => {
                        Parent::Properties
                    }
                    "arguments" if parent == Parent::Root => Parent::Arguments,
                    _ => Parent::Other,
                };
                collect_names(child, next, names, depth + 1);
            }
        }
        Some(b'[') => {
            let next = if parent == Parent::Arguments {
                Parent::ArgumentList
            } else {
                Parent::Other
            };
            for item in elements(v).into_iter().flatten() {
                collect_names(item, next, names, depth + 1);
            }
        }
        _ => {}
    }
}

/// `content_from_reading_ssh_id_rsa` → `content from reading ssh id rsa`;
/// `systemPrompt` → `system Prompt`.
fn humanize(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 8);
    let mut prev: Option<char> = None;
    for c in key.chars() {
        if c == '_' || c == '-' {
            out.push(' ');
        } else {
            if c.is_uppercase() && prev.is_some_and(|p| p.is_lowercase()) {
                out.push(' ');
            }
            out.push(c);
        }
        prev = Some(c);
    }
    out
}

/// `llmModelName`, `llm-model-name`, `LLM Model Name` → `llm_model_name`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 8);
    let mut prev: Option<char> = None;
    for c in name.chars() {
        if c == '-' || c == ' ' || c == '.' {
            out.push('_');
        } else {
            if c.is_uppercase() && prev.is_some_and(|p| p.is_lowercase() || p.is_ascii_digit()) {
                out.push('_');
            }
            out.extend(c.to_lowercase());
        }
        prev = Some(c);
    }
    out
}

/// The match with some context, cut on character boundaries.
fn around(text: &str, start: usize, end: usize) -> String {
    const CONTEXT: usize = 30;
    let mut s = start.saturating_sub(CONTEXT);
    while !text.is_char_boundary(s) {
        s -= 1;
    }
    let mut e = (end + CONTEXT).min(text.len());
    while !text.is_char_boundary(e) {
        e += 1;
    }
    let mut excerpt = String::new();
    if s > 0 {
        excerpt.push('…');
    }
    excerpt.push_str(&text[s..e]);
    if e < text.len() {
        excerpt.push('…');
    }
    escape_excerpt(&excerpt, 160)
}

/// `needle` in `hay` as a whole token (not inside a longer identifier).
fn find_token(hay: &str, needle: &str) -> Option<usize> {
    let ident = |c: char| c.is_alphanumeric() || c == '_' || c == '-';
    let mut from = 0;
    while let Some(pos) = hay[from..].find(needle) {
        let at = from + pos;
        let end = at + needle.len();
        let before_ok = hay[..at].chars().next_back().is_none_or(|c| !ident(c));
        let after_ok = hay[end..].chars().next().is_none_or(|c| !ident(c));
        if before_ok && after_ok {
            return Some(at);
        }
        from = at + needle.len().max(1);
        while from < hay.len() && !hay.is_char_boundary(from) {
            from += 1;
        }
        if from >= hay.len() {
            break;
        }
    }
    None
}

/// Base64 (standard or URL-safe, padded or not) that decodes to readable
/// text with spaces: a way to hide instructions from people, not from models.
fn decode_text(candidate: &str) -> Option<String> {
    use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
    let bytes = [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
        .iter()
        .find_map(|e| e.decode(candidate).ok())?;
    let text = String::from_utf8(bytes).ok()?;
    let total = text.chars().count();
    let printable = text
        .chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ' || *c == '\n')
        .count();
    let spaces = text.chars().filter(|c| *c == ' ').count();
    (total >= 20 && printable * 10 >= total * 9 && spaces * 20 >= total).then_some(text)
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;

#[cfg(test)]
#[path = "held_out_tests.rs"]
mod held_out_tests;
