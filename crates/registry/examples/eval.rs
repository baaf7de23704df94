//! Detector quality on the shared corpora: a confusion matrix per set.
//!
//! `cargo run -p warden-registry --release --example scan-eval -- /work/shared/corpora [-v]`
//!
//! Gated sets (held by `tests/corpora.rs`): MSB poisoned descriptions must
//! be flagged (warn or block) at ≥ 95 % recall (its attacks are single
//! weak signals, which warn); the reference servers' tools and
//! instructions must be flagged at ≤ 2 %.

#[path = "../tests/support/corpora.rs"]
mod corpora;

use std::path::PathBuf;

use warden_registry::Scanner;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dir = None;
    let mut verbose = false;
    for a in args.by_ref() {
        match a.as_str() {
            "-v" | "--verbose" => verbose = true,
            _ => dir = Some(PathBuf::from(a)),
        }
    }
    let dir = dir.unwrap_or_else(corpora::corpora_dir);
    let scanner = Scanner::new();
    let (msb, msb_other) = corpora::msb(&dir);
    let mut sets = vec![msb, corpora::benign_reference(&dir), msb_other];
    sets.extend(corpora::informational(&dir));
    let started = std::time::Instant::now();
    let mut items = 0;
    for set in &sets {
        let t = std::time::Instant::now();
        let m = corpora::evaluate(&scanner, set);
        let took = t.elapsed();
        items += set.cases.len();
        print!("{}", corpora::render(set, &m));
        if m.false_alarms.iter().any(|x| x.contains("attack.py")) {
            println!(
                "  note: the MSB extractor labels the tools of `word_document_server/attack.py` \"original\"; \
                 six of them carry that file's out-of-scope `llm_name` parameter and are warned about"
            );
        }
        if verbose || set.gated {
            for x in m.misses.iter().take(if verbose { usize::MAX } else { 10 }) {
                println!("  miss: {x}");
            }
            for x in m
                .false_alarms
                .iter()
                .take(if verbose { usize::MAX } else { 10 })
            {
                println!("  false alarm: {x}");
            }
        }
        println!("  ({} items in {took:.0?})\n", set.cases.len());
    }
    println!("{items} items scanned in {:.0?}", started.elapsed());
}
