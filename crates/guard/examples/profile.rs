//! A fixed workload for instruction-count profiling (the benches' texts):
//! `valgrind --tool=callgrind target/release/examples/profile [scan|prose|code|docs|findings|output|secret|mixed-output] [n]`,
//! or `token [n]`: n blobs of 256 KiB of base64, each another.

use serde_json::value::RawValue;
use warden_guard::{Guard, GuardSettings};

#[path = "../benches/support/texts.rs"]
mod texts;

fn main() {
    let mut args = std::env::args().skip(1);
    let what = args.next().unwrap_or_else(|| "scan".into());
    let n: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(1);
    let guard = Guard::new(&GuardSettings::default()).expect("guard");
    match what.as_str() {
        "token" => {
            // Another blob each time: the automaton's states are not all
            // built by the first.
            let tokens: Vec<String> = (0..n).map(|i| texts::token(1 << 18, i as u64)).collect();
            for t in &tokens {
                std::hint::black_box(guard.detect(t));
            }
        }
        "scan" | "prose" | "code" | "docs" | "findings" => {
            let text = match what.as_str() {
                "prose" => texts::prose(1 << 20),
                "docs" => texts::docs(1 << 20),
                "code" => texts::code(1 << 20),
                "findings" => texts::with_findings(&texts::mixed(1 << 20), 2048),
                _ => texts::mixed(1 << 20),
            };
            for _ in 0..n {
                std::hint::black_box(guard.detect(&text));
            }
        }
        _ => {
            let text = match what.as_str() {
                "mixed-output" => texts::result_4k_mixed(),
                w => texts::result_4k(w == "secret"),
            };
            let result = RawValue::from_string(text).expect("json");
            for _ in 0..n {
                std::hint::black_box(guard.inspect_output(
                    "srv__tool",
                    "srv",
                    "tools/call",
                    &result,
                ));
            }
        }
    }
}
