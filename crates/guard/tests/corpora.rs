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
