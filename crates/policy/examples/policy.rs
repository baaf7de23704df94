//! `warden policy test | explain | show` in miniature, over an example
//! directory (`authorization.yaml`, `catalog.yaml`, `cases.yaml`): what the
//! CLI wires up, runnable before it exists.
//!
//! ```text
//! cargo run -p warden-policy --example policy -- test    crates/policy/examples/seed000-rbac
//! cargo run -p warden-policy --example policy -- show    crates/policy/examples/seed003-github-yaml
//! cargo run -p warden-policy --example policy -- explain crates/policy/examples/seed003-github-yaml \
//!     '{ principal: { groups: [engineering] }, action: call_tool, server: github, name: workflow.run,
//!        context: { environment: prod } }'
//! ```

use std::path::Path;
use std::process::ExitCode;

use serde::Deserialize;
use warden_policy::{run_test_cases, Catalog, PolicyEngine, RawAuthorization, RequestSpec};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigExcerpt {
    authorization: RawAuthorization,
}

fn load(dir: &Path) -> Result<PolicyEngine, String> {
    let read =
        |name: &str| std::fs::read_to_string(dir.join(name)).map_err(|e| format!("{name}: {e}"));
    let excerpt: ConfigExcerpt =
        serde_saphyr::from_str(&read("authorization.yaml")?).map_err(|e| e.to_string())?;
    let settings = excerpt.authorization.resolve(dir).map_err(|errors| {
        errors
            .iter()
            .map(|(path, msg)| format!("{path}: {msg}"))
            .collect::<Vec<_>>()
            .join("\n")
    })?;
    let catalog: Catalog =
        serde_saphyr::from_str(&read("catalog.yaml")?).map_err(|e| e.to_string())?;
    PolicyEngine::compile(&settings, &catalog).map_err(|e| e.to_string())
}

fn run(args: &[String]) -> Result<bool, String> {
    let usage = "usage: policy (test|show|explain) <dir> [request]";
    let (cmd, dir) = match args {
        [cmd, dir, ..] => (cmd.as_str(), Path::new(dir)),
        _ => return Err(usage.into()),
    };
    let engine = load(dir)?;
    match (cmd, args.get(2)) {
        ("test", None) => {
            let cases = std::fs::read_to_string(dir.join("cases.yaml"))
                .map_err(|e| format!("cases.yaml: {e}"))?;
            let report = run_test_cases(&engine, &cases).map_err(|e| e.to_string())?;
            print!("{report}");
            Ok(report.success())
        }
        ("show", None) => {
            print!("{}", engine.effective_policies());
            Ok(true)
        }
        ("explain", Some(request)) => {
            let spec: RequestSpec = serde_saphyr::from_str(request).map_err(|e| e.to_string())?;
            let explanation = spec.with_request(|req| engine.explain(req))?;
            print!("{explanation}");
            Ok(explanation.decision.is_allow())
        }
        _ => Err(usage.into()),
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("{e}");
            ExitCode::from(2)
        }
    }
}
