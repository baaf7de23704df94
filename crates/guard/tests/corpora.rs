//! Quality floors on the public corpora in `../../../shared/corpora`
//! (definitions in `examples/eval/corpus.rs`; print the tables with
//! `cargo run -p warden-guard --release --example eval`).

#[path = "../examples/eval/corpus.rs"]
mod corpus;

use warden_guard::{Guard, GuardSettings};

fn guard() -> Guard {
    Guard::new(&GuardSettings::default()).expect("guard")
}

#[test]
fn secrets_gitleaks_floors() {
    let r = corpus::secrets(&guard(), &corpus::corpora_dir()).expect("corpus");
    assert!(r.recall.total >= 90 && r.false_matches.total >= 250);
    assert!(
        r.recall.pct() >= 95.0,
        "recall {:.1}% missed {:?}",
        r.recall.pct(),
        r.missed
    );
    // The floor, on the raw measure: ≤ 5% of all `not_secret`
    // rows matched by any secret rule (the rows gitleaks allowlists by
    // exact value included; no value is special-cased here or in the rules).
    assert!(
        r.false_matches.pct() <= 5.0,
        "not_secret matches {:.1}% ({} of {}): {:?}",
        r.false_matches.pct(),
        r.false_matches.hits,
        r.false_matches.total,
        r.matched_negatives
    );
}

#[test]
fn pii_presidio_floors() {
    let r = corpus::pii(&guard(), &corpus::corpora_dir()).expect("corpus");
    for (_, class) in corpus::PII_TYPES {
        let t = &r[class];
        assert!(t.gold > 0, "{class}: no gold spans");
        assert!(
            t.recall() >= 95.0,
            "{class} recall {:.1}%: {:?}",
            t.recall(),
            t.missed
        );
        assert!(
            t.precision() >= 90.0,
            "{class} precision {:.1}%: {:?}",
            t.precision(),
            t.spurious
        );
    }
}

#[test]
fn prompt_injection_false_positive_floors() {
    let r = corpus::injection(&guard(), &corpus::corpora_dir()).expect("corpus");
    for (name, rate, benign) in &r.sets {
        if *benign && !name.starts_with("valid") {
            assert!(rate.pct() <= 3.0, "{name}: {:.1}% flagged", rate.pct());
        }
    }
    // Recall is reported, not held; a floor keeps it from silently collapsing.
    let wild = r
        .sets
        .iter()
        .find(|(n, _, _)| n.contains("in-the-wild"))
        .expect("set");
    assert!(
        wild.1.pct() >= 40.0,
        "in-the-wild recall {:.1}%",
        wild.1.pct()
    );
}

#[path = "../examples/eval/families.rs"]
mod families;

/// Per corpus, each scored on its own (`eval --family secrets`): recall
/// and false-positive floors a little under the measured figures, so a
/// rule that stops generalising fails here. Nosey Parker's and
/// detect-secrets' `not_secret` rows are "this rule must not match" (many
/// are real secrets of another kind), so their ceilings are loose.
#[test]
fn secrets_floors_on_every_corpus() {
    let sets = families::secret_sets(&corpus::corpora_dir()).expect("corpora");
    let g = guard();
    // (corpus, minimum recall %, maximum false-positive %)
    let floors = [
        ("secrets-gitleaks", 97.0, 5.0),
        ("secrets-noseyparker", 84.0, 30.0),
        ("secrets-kingfisher", 83.5, 20.0),
        ("secrets-detect-secrets", 72.0, 12.0),
    ];
    for (name, recall, fp) in floors {
        let set = sets.iter().find(|s| s.corpus == name).expect(name);
        let sc = families::score_texts(&g, set, warden_guard::Family::Secret);
        let r = sc.recall().unwrap_or(0.0);
        let f = sc.fp_rate().unwrap_or(0.0);
        assert!(
            r >= recall,
            "{name}: recall {r:.1}% < {recall}%; missed {:?}",
            sc.misses
        );
        assert!(f <= fp, "{name}: FP {f:.1}% > {fp}%; {:?}", sc.false_alarms);
    }
}

/// Injection in tool results, per corpus (`eval --family results`).
#[test]
fn result_injection_floors_on_every_corpus() {
    let sets = families::result_sets(&corpus::corpora_dir()).expect("corpora");
    let g = guard();
    let mut checked = 0;
    for set in sets.iter().filter(|s| !s.info) {
        let sc = families::score_texts(&g, set, warden_guard::Family::Injection);
        // (minimum recall %, maximum false-positive %) by corpus.
        let (recall, fp) = match set.corpus {
            "indirect-injection-agentdojo" | "indirect-injection-asb" => (97.0, 3.0),
            "tool-poisoning-msb" => (95.0, 3.0),
            "prompt-injection-cyberseceval" => (88.0, 3.0),
            "prompt-injection-injecguard" => (75.0, 3.0),
            "mcp-defense-bench" => (85.0, 3.0),
            _ => (0.0, 3.0),
        };
        if let Some(r) = sc.recall() {
            assert!(
                r >= recall,
                "{} / {}: recall {r:.1}%; missed {:?}",
                set.corpus,
                set.name,
                sc.misses
            );
        }
        if let Some(f) = sc.fp_rate() {
            assert!(
                f <= fp,
                "{} / {}: FP {f:.1}%; {:?}",
                set.corpus,
                set.name,
                sc.false_alarms
            );
        }
        checked += 1;
    }
    assert!(checked >= 8, "{checked} sets");
}
