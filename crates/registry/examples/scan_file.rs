//! Scans one manifest (a JSON file) or, with `--text`, a text file, and
//! prints the findings: `cargo run -p warden-registry --example scan_file -- FILE`.
use warden_registry::Scanner;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let scanner = Scanner::new();
    let (text_mode, path) = match args.as_slice() {
        [flag, p] if flag == "--text" => (true, p),
        [p] => (false, p),
        _ => {
            eprintln!("usage: scan_file [--text] FILE");
            std::process::exit(2);
        }
    };
    let content = match std::fs::read_to_string(path) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(2);
        }
    };
    let findings = if text_mode {
        scanner.scan_text("", &content)
    } else {
        match serde_json::from_str::<Box<serde_json::value::RawValue>>(&content) {
            Ok(raw) => scanner.scan_manifest(&raw).1,
            Err(e) => {
                eprintln!("{path}: {e}");
                std::process::exit(2);
            }
        }
    };
    println!("verdict: {}", scanner.verdict(&findings));
    for f in findings {
        println!(
            "{:<7} {:<36} {:<40} {}",
            f.severity, f.rule, f.location, f.excerpt
        );
    }
}
