//! Detector quality on the public corpora:
//! `cargo run -p warden-guard --release --example eval -- /work/shared/corpora [-v]`
//! Prints one table per corpus; `-v` adds the misses and false matches.

mod corpus;

use std::path::PathBuf;

use warden_guard::{Guard, GuardSettings};

fn main() {
    let mut args = std::env::args().skip(1);
    let mut dir = corpus::corpora_dir();
    let mut verbose = false;
    for a in args.by_ref() {
        if a == "-v" {
            verbose = true;
        } else {
            dir = PathBuf::from(a);
        }
    }
    let guard = match Guard::new(&GuardSettings::default()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("guard: {e}");
            std::process::exit(1);
        }
    };
    if let Err(e) = run(&guard, &dir, verbose) {
        eprintln!("eval: {e}");
        std::process::exit(1);
    }
}

fn run(guard: &Guard, dir: &std::path::Path, verbose: bool) -> Result<(), String> {
    let s = corpus::secrets(guard, dir)?;
    println!("## secrets-gitleaks (a row is detected when any secret rule matches its text)\n");
    println!("| set | detected | rows | rate | floor |");
    println!("|---|---:|---:|---:|---|");
    println!(
        "| secret (recall) | {} | {} | {:.1}% | ≥ 95% |",
        s.recall.hits,
        s.recall.total,
        s.recall.pct()
    );
    println!(
        "| not_secret (matches) | {} | {} | {:.1}% | ≤ 5% |",
        s.false_matches.hits,
        s.false_matches.total,
        s.false_matches.pct()
    );
    println!(
        "| not_secret, without values gitleaks.toml allowlists verbatim | {} | {} | {:.1}% | reported |",
        s.false_matches_excluding_allowlisted.hits,
        s.false_matches_excluding_allowlisted.total,
        s.false_matches_excluding_allowlisted.pct()
    );
    if verbose {
        println!("\nper gitleaks rule (secret detected/total, not_secret matched/total):");
        for (rule, (p, n)) in &s.by_rule {
            println!("  {rule}: {}/{}  {}/{}", p.hits, p.total, n.hits, n.total);
        }
        println!("\nmissed secrets:");
        for (rule, text) in &s.missed {
            println!("  [{rule}] {text:?}");
        }
        println!("\nmatched not_secret rows:");
        for (rule, text, classes) in &s.matched_negatives {
            println!("  [{rule}] {classes:?} {text:?}");
        }
    }

    let p = corpus::pii(guard, dir)?;
    println!("\n## pii-presidio-research (same type, overlap ≥ half of the shorter span)\n");
    println!("| type | gold | recall | predicted | precision | floors |");
    println!("|---|---:|---:|---:|---:|---|");
    for (_, class) in corpus::PII_TYPES {
        let t = &p[class];
        println!(
            "| {class} | {} | {:.1}% | {} | {:.1}% | recall ≥ 95%, precision ≥ 90% |",
            t.gold,
            t.recall(),
            t.predicted,
            t.precision()
        );
    }
    if verbose {
        for (_, class) in corpus::PII_TYPES {
            let t = &p[class];
            for m in &t.missed {
                println!("  missed {class}: {m}");
            }
            for m in &t.spurious {
                println!("  spurious {class}: {m}");
            }
        }
    }

    let i = corpus::injection(guard, dir)?;
    println!("\n## prompt injection (a prompt is flagged when any injection rule matches)\n");
    println!("| set | kind | flagged | prompts | rate | floor |");
    println!("|---|---|---:|---:|---:|---|");
    for (name, r, benign) in &i.sets {
        let (kind, floor) = if *benign {
            (
                "false positives",
                if name.starts_with("valid") {
                    ""
                } else {
                    "≤ 3%"
                },
            )
        } else {
            ("recall", "reported")
        };
        println!(
            "| {name} | {kind} | {} | {} | {:.1}% | {floor} |",
            r.hits,
            r.total,
            r.pct()
        );
    }
    if verbose {
        println!("\nflagged benign prompts:");
        for (set, text, classes) in &i.flagged_benign {
            println!("  [{set}] {classes:?} {text:?}");
        }
    }
    Ok(())
}
