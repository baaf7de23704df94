//! Detector quality on every public corpus in `shared/corpora`:
//! `cargo run -p warden-guard --release --example eval -- [DIR] [-v] [--family NAME]`
//! (DIR defaults to `shared/corpora` beside the repository; NAME is one of
//! descriptions, results, secrets, pii). Prints one table per family, one
//! row per corpus and set, each corpus scored on its own: the figures are
//! leave-one-corpus-out (see the crate's README). `-v` adds the misses and
//! the false alarms.

mod corpus;
mod families;

use std::path::PathBuf;

use families::{Score, Set};
use warden_guard::{Family, Guard, GuardSettings};
use warden_registry::Scanner;

fn main() {
    let mut dir = corpus::corpora_dir();
    let mut verbose = false;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-v" => verbose = true,
            "--family" => only = args.next(),
            _ => dir = PathBuf::from(a),
        }
    }
    let guard = match Guard::new(&GuardSettings::default()) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("guard: {e}");
            std::process::exit(1);
        }
    };
    let want = |f: &str| only.as_deref().is_none_or(|o| o == f);
    let run = || -> Result<(), String> {
        if want("descriptions") {
            let scanner = Scanner::new();
            let sets = families::description_sets(&dir)?;
            let scored: Vec<(&Set, Score)> = sets
                .iter()
                .map(|s| (s, families::score_descriptions(&scanner, s)))
                .collect();
            print_family(
                "descriptions: tool poisoning (registry scanner; flagged = warn or block)",
                &scored,
                true,
                verbose,
            );
        }
        if want("results") {
            let sets = families::result_sets(&dir)?;
            let scored: Vec<(&Set, Score)> = sets
                .iter()
                .map(|s| (s, families::score_texts(&guard, s, Family::Injection)))
                .collect();
            print_family(
                "results: injection in tool output (any injection detection)",
                &scored,
                false,
                verbose,
            );
        }
        if want("secrets") {
            let sets = families::secret_sets(&dir)?;
            let scored: Vec<(&Set, Score)> = sets
                .iter()
                .map(|s| (s, families::score_texts(&guard, s, Family::Secret)))
                .collect();
            print_family(
                "secrets (a row is detected when any secret rule matches its text)",
                &scored,
                false,
                verbose,
            );
            print!("{}", families::secrets_given_elsewhere(&scored));
        }
        if want("pii") {
            pii(&guard, &dir, verbose)?;
        }
        Ok(())
    };
    if let Err(e) = run() {
        eprintln!("eval: {e}");
        std::process::exit(1);
    }
}

fn print_family(title: &str, scored: &[(&Set, Score)], descriptions: bool, verbose: bool) {
    println!("## {title}\n");
    print!("{}", families::header(descriptions));
    for (set, sc) in scored {
        print!("{}", families::row(set, sc, descriptions));
    }
    println!("\n{}", families::summary(scored));
    if verbose {
        for (set, sc) in scored {
            for m in &sc.misses {
                println!("  miss [{}] {m}", set.corpus);
            }
            for f in &sc.false_alarms {
                println!("  false alarm [{}] {f}", set.corpus);
            }
        }
        println!();
    }
}

fn pii(guard: &Guard, dir: &std::path::Path, verbose: bool) -> Result<(), String> {
    let p = corpus::pii(guard, dir)?;
    println!("## pii: pii-presidio-research (same type, overlap ≥ half of the shorter span)\n");
    println!("| type | gold | recall | predicted | precision |");
    println!("|---|---:|---:|---:|---:|");
    for (_, class) in corpus::PII_TYPES {
        let t = &p[class];
        println!(
            "| {class} | {} | {:.1}% | {} | {:.1}% |",
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
    println!();
    Ok(())
}
