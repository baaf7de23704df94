//! Detector quality floors on the shared corpora (issue 6):
//! - `tool-poisoning-msb`: poisoned descriptions flagged at recall ≥ 95 %
//!   (its attacks that are one weak signal — a superlative about the tool,
//!   a parameter for the model's name — warn and do not block, issue #20);
//! - `benign-tools-reference-servers`: tools and instructions flagged (warn
//!   or block) at ≤ 2 %.
//!
//! The full confusion matrices: `cargo run -p warden-registry --release --example eval`.

mod support;

use support::corpora;
use warden_registry::Scanner;

fn dir() -> std::path::PathBuf {
    let dir = corpora::corpora_dir();
    assert!(
        dir.is_dir(),
        "corpora not found at {} (set WARDEN_CORPORA to override)",
        dir.display()
    );
    dir
}

#[test]
fn msb_poisoned_descriptions_are_flagged() {
    let scanner = Scanner::new();
    let (set, _) = corpora::msb(&dir());
    let m = corpora::evaluate(&scanner, &set);
    eprint!("{}", corpora::render(&set, &m));
    assert_eq!(m.positives(), 36, "corpus changed");
    assert!(
        m.flag_recall() >= 0.95,
        "recall {:.3}; misses: {:#?}",
        m.flag_recall(),
        m.misses
    );
    // The benign originals must never be blocked (a few carry the corpus'
    // out-of-scope `llm_name` parameter and are warned about: see the eval).
    assert_eq!(m.blocked_fp, 0, "{:#?}", m.false_alarms);
}

#[test]
fn reference_servers_are_not_flagged() {
    let scanner = Scanner::new();
    let set = corpora::benign_reference(&dir());
    let m = corpora::evaluate(&scanner, &set);
    eprint!("{}", corpora::render(&set, &m));
    assert!(m.negatives() >= 51, "corpus changed: {}", m.negatives());
    assert!(
        m.flag_fpr() <= 0.02,
        "false positives {:.3}: {:#?}",
        m.flag_fpr(),
        m.false_alarms
    );
}
