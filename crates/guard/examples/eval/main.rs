//! Detector quality on every public corpus in `shared/corpora`:
//! `cargo run -p warden-guard --release --example eval -- [DIR] [-v] [--family NAME]`
//! (DIR defaults to `shared/corpora` beside the repository; NAME is one of
//! descriptions, results, secrets, pii). Prints one table per family, one
//! row per corpus and set, each corpus scored on its own: the figures are
//! leave-one-corpus-out (see the crate's README). `-v` adds the misses and
//! the false alarms.
//!
//! For descriptions and results the learned models are measured
//! leave-one-corpus-out for real: for each corpus X a model is trained on
//! every other development corpus and scores X, beside the rules alone
//! (`--no-model` skips it). A threshold sweep over the pooled held-out
//! scores shows how the shipped thresholds were chosen.

mod corpus;
mod families;
mod learned;

use std::path::PathBuf;
use std::time::Instant;

use families::{Score, Set};
use warden_guard::learned::{INJECTION_THRESHOLD, POISONING_THRESHOLD};
use warden_guard::{Family, Guard, GuardSettings};
use warden_registry::Scanner;

fn main() {
    let mut dir = corpus::corpora_dir();
    let mut verbose = false;
    let mut model = true;
    let mut only: Option<String> = None;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "-v" => verbose = true,
            "--no-model" => model = false,
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
            let scanner = Scanner::new().with_learned(None);
            let sets = families::description_sets(&dir)?;
            let scored: Vec<(&Set, Score)> = sets
                .iter()
                .map(|s| (s, families::score_descriptions(&scanner, s)))
                .collect();
            print_family(
                "descriptions: tool poisoning (registry scanner, rules only; flagged = warn or block)",
                &scored,
                true,
                verbose,
            );
            if model {
                loco_descriptions(&sets, &families::result_sets(&dir)?, &scored, verbose);
            }
        }
        if want("results") {
            let sets = families::result_sets(&dir)?;
            let scored: Vec<(&Set, Score)> = sets
                .iter()
                .map(|s| (s, families::score_texts(&guard, s, Family::Injection)))
                .collect();
            print_family(
                "results: injection in tool output (any injection detection, rules only)",
                &scored,
                false,
                verbose,
            );
            if model {
                loco_results(&sets, &scored, verbose)?;
            }
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
            print!("{}", families::benign_flags(&guard, &dir, verbose)?);
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

/// Per corpus X: a model trained on every other corpus scores X; the rules
/// with it (the output guard with `output_model` on) beside the rules alone.
fn loco_results(sets: &[Set], rules: &[(&Set, Score)], verbose: bool) -> Result<(), String> {
    let docs = learned::result_docs(sets);
    let mut settings = GuardSettings::default();
    settings.defaults.output_model = true;
    let mut rows = Vec::new();
    let mut pooled = Vec::new();
    let started = Instant::now();
    for corpus in learned::corpora(sets) {
        let model = learned::train_without(&docs, Some(corpus));
        for (set, rules_score) in rules.iter().filter(|(s, _)| s.corpus == corpus) {
            for (item, ruled) in set.items.iter().zip(&rules_score.flagged) {
                let ruled = *ruled;
                let score = model.best_window(&item.text).map_or(0.0, |w| w.score);
                pooled.push((set.info, item.positive, ruled, false, score));
            }
        }
        let guard = Guard::with_injection_model(&settings, model.clone())
            .map_err(|e| format!("guard: {e}"))?;
        for (set, rules_score) in rules.iter().filter(|(s, _)| s.corpus == corpus) {
            let both = families::score_texts(&guard, set, Family::Injection);
            rows.push((*set, rules_score.clone(), both));
        }
    }
    println!(
        "## results, leave-one-corpus-out: rules alone vs rules + learned model (threshold {INJECTION_THRESHOLD}; {} folds trained in {:.1} s)\n",
        learned::corpora(sets).len(),
        started.elapsed().as_secs_f64()
    );
    print_comparison(&rows, false, verbose);
    print_sweep(
        &pooled,
        "benign results",
        &[(INJECTION_THRESHOLD, INJECTION_THRESHOLD)],
    );
    Ok(())
}

fn loco_descriptions(sets: &[Set], results: &[Set], rules: &[(&Set, Score)], verbose: bool) {
    let docs = learned::description_docs(sets, results);
    let mut rows = Vec::new();
    let mut pooled = Vec::new();
    let started = Instant::now();
    for corpus in learned::corpora(sets) {
        let model = learned::train_without(&docs, Some(corpus));
        for (set, rules_score) in rules.iter().filter(|(s, _)| s.corpus == corpus) {
            for ((item, ruled), signal) in set
                .items
                .iter()
                .zip(&rules_score.flagged)
                .zip(&rules_score.signals)
            {
                let ruled = *ruled;
                let score = model
                    .best_window(&learned::description_text(&item.text))
                    .map_or(0.0, |w| w.score);
                pooled.push((set.info, item.positive, ruled, *signal, score));
            }
        }
        let scanner = Scanner::new().with_learned(Some(model));
        for (set, rules_score) in rules.iter().filter(|(s, _)| s.corpus == corpus) {
            let both = families::score_descriptions(&scanner, set);
            rows.push((*set, rules_score.clone(), both));
        }
    }
    println!(
        "## descriptions, leave-one-corpus-out: rules alone vs rules + learned model (threshold {POISONING_THRESHOLD}; {} folds trained in {:.1} s)\n",
        learned::corpora(sets).len(),
        started.elapsed().as_secs_f64()
    );
    print_comparison(&rows, true, verbose);
    print_sweep(
        &pooled,
        "benign tools",
        &[(POISONING_THRESHOLD, POISONING_THRESHOLD)],
    );
}

fn print_comparison(rows: &[(&Set, Score, Score)], descriptions: bool, verbose: bool) {
    if descriptions {
        println!("| corpus (held out) | set | positives | recall rules | recall rules+model | blocked rules+model | negatives | FP/tool rules | FP/tool rules+model | FP/server rules+model | blocked benign rules | blocked benign rules+model |");
        println!("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    } else {
        println!("| corpus (held out) | set | positives | recall rules | recall rules+model | negatives | FP rules | FP rules+model |");
        println!("|---|---|---:|---:|---:|---:|---:|---:|");
    }
    let pct = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.1}%"));
    for (set, r, b) in rows {
        let info = if set.info { " *(info)*" } else { "" };
        let pos = r.tp + r.fn_;
        let neg = r.fp + r.tn;
        if descriptions {
            println!(
                "| {} | {}{info} | {pos} | {} | {} | {} | {neg} | {} | {} | {} | {} | {} |",
                set.corpus,
                set.name,
                pct(r.recall()),
                pct(b.recall()),
                pct(b.block_recall()),
                pct(r.fp_rate()),
                pct(b.fp_rate()),
                pct(b.fp_per_group()),
                if neg == 0 {
                    "–".into()
                } else {
                    r.blocked_fp.to_string()
                },
                if neg == 0 {
                    "–".into()
                } else {
                    b.blocked_fp.to_string()
                },
            );
        } else {
            println!(
                "| {} | {}{info} | {pos} | {} | {} | {neg} | {} | {} |",
                set.corpus,
                set.name,
                pct(r.recall()),
                pct(b.recall()),
                pct(r.fp_rate()),
                pct(b.fp_rate()),
            );
        }
    }
    let rules: Vec<(&Set, Score)> = rows.iter().map(|(s, r, _)| (*s, r.clone())).collect();
    let both: Vec<(&Set, Score)> = rows.iter().map(|(s, _, b)| (*s, b.clone())).collect();
    println!("\nrules alone: {}", families::summary(&rules));
    println!("rules + model: {}", families::summary(&both));
    if verbose {
        for (set, r, b) in rows {
            for m in b
                .false_alarms
                .iter()
                .filter(|m| !r.false_alarms.contains(m))
            {
                println!("  model false alarm [{}] {m}", set.corpus);
            }
            for m in b.misses.iter() {
                println!("  still missed [{}] {m}", set.corpus);
            }
        }
        println!();
    }
}

/// Pooled held-out scores of every scored (non-info) set: recall and
/// false-positive rate of the model alone and of the rules with it, per
/// threshold. `(alone, with a rule's signal)`: the model flags an item at
/// `alone`, or at `with` when a rule found anything in it (descriptions).
fn print_sweep(pooled: &[(bool, bool, bool, bool, f32)], negatives: &str, shipped: &[(f32, f32)]) {
    println!("threshold sweep (pooled held-out scores of the scored sets; {negatives} as negatives; corpora weighted by size):\n");
    println!("| threshold alone | threshold with a rule signal | model recall | model FP | rules+model recall | rules+model FP |");
    println!("|---:|---:|---:|---:|---:|---:|");
    let mut grid: Vec<(f32, f32)> = Vec::new();
    for alone in [0.5f32, 0.7, 0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99] {
        grid.push((alone, alone));
    }
    if pooled.iter().any(|x| x.3) {
        for with in [0.5f32, 0.7, 0.8, 0.9, 0.93, 0.95] {
            for alone in [0.95f32, 0.97, 0.99, 1.01] {
                grid.push((alone, with));
            }
        }
    }
    grid.extend_from_slice(shipped);
    for (alone, with) in grid {
        let (mut p, mut n, mut mp, mut mn, mut bp, mut bn) = (0, 0, 0, 0, 0, 0);
        for &(_, positive, ruled, signal, score) in pooled.iter().filter(|x| !x.0) {
            let m = score >= alone || (signal && score >= with);
            if positive {
                p += 1;
                mp += usize::from(m);
                bp += usize::from(m || ruled);
            } else {
                n += 1;
                mn += usize::from(m);
                bn += usize::from(m || ruled);
            }
        }
        let r = |a: usize, b: usize| {
            if b == 0 {
                0.0
            } else {
                100.0 * a as f64 / b as f64
            }
        };
        println!(
            "| {alone} | {with} | {:.1}% | {:.1}% | {:.1}% | {:.1}% |",
            r(mp, p),
            r(mn, n),
            r(bp, p),
            r(bn, n)
        );
    }
    println!();
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
