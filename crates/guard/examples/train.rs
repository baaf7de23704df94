//! Trains the shipped learned models on every development corpus in
//! `shared/corpora` and writes them to `crates/guard/models/`:
//! `cargo run -p warden-guard --release --example train -- [DIR]`.
//!
//! Deterministic: the same corpora give the same bytes (the digests are
//! printed; `models/README.md` records those of the committed files).

#[path = "eval/corpus.rs"]
mod corpus;
#[path = "eval/families.rs"]
mod families;
#[path = "eval/learned.rs"]
mod learned;

use std::path::PathBuf;
use std::time::Instant;

fn main() {
    let dir = std::env::args()
        .nth(1)
        .map_or_else(corpus::corpora_dir, PathBuf::from);
    let out = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("models");
    let run = || -> Result<(), String> {
        let results = families::result_sets(&dir)?;
        for (name, docs) in [
            ("injection", learned::result_docs(&results)),
            (
                "poisoning",
                learned::description_docs(&families::description_sets(&dir)?, &results),
            ),
        ] {
            let started = Instant::now();
            let model = learned::train_without(&docs, None);
            let bytes = model.to_bytes();
            let path = out.join(format!("{name}.wlm"));
            std::fs::write(&path, &bytes).map_err(|e| format!("{}: {e}", path.display()))?;
            println!(
                "{name}: {} texts ({} positive), {:.1} s, {} bytes, sha256 {}",
                docs.len(),
                docs.iter().filter(|d| d.positive).count(),
                started.elapsed().as_secs_f64(),
                bytes.len(),
                model.digest()
            );
        }
        Ok(())
    };
    if let Err(e) = run() {
        eprintln!("train: {e}");
        std::process::exit(1);
    }
}
