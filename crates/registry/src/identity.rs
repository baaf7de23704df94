//! Server identity pins (threat T21): what exactly runs, or where exactly we connect.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::canonical::ManifestHash;
use crate::diff::FieldChange;

/// The identity of an upstream server as pinned in the lock file.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ServerIdentity {
    /// A child process: its command line, the resolved executable's hash,
    /// and the package and version for package-runner launches (`npx`, `uvx`, …).
    Stdio {
        command: String,
        args: Vec<String>,
        executable_sha256: Option<ManifestHash>,
        package: Option<PackagePin>,
    },
    /// A remote server: its URL and, optionally, the SHA-256 of its TLS
    /// key's SubjectPublicKeyInfo (base64 or hex, as the operator wrote it).
    Http {
        url: String,
        spki_sha256: Option<String>,
    },
}

/// A package fetched and run by a package runner.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagePin {
    /// `npx`, `bunx`, `pnpm dlx`, `uvx` or `pipx`.
    pub runner: String,
    /// The package name (`@modelcontextprotocol/server-github`, `mcp-server-fetch`).
    pub package: String,
    /// The requested version, when the command line pins one. `None` means
    /// "whatever is latest at launch": a supply-chain risk in itself.
    pub version: Option<String>,
}

/// The identity of a stdio server: resolves `command` on `path_env` (the
/// `PATH` the child will get; a command containing `/` is taken as a path),
/// hashes the executable, and recognises package-runner launches.
///
/// Reads the executable from disk: call at start-up or pin time, not on the
/// request path. An executable that cannot be found or read gets no hash.
pub fn stdio_identity(command: &str, args: &[String], path_env: Option<&str>) -> ServerIdentity {
    let executable_sha256 = resolve_executable(command, path_env)
        .as_deref()
        .and_then(hash_file);
    ServerIdentity::Stdio {
        command: command.to_owned(),
        args: args.to_vec(),
        executable_sha256,
        package: package_pin(command, args),
    }
}

/// The identity of a remote server.
pub fn http_identity(url: &str, spki_sha256: Option<&str>) -> ServerIdentity {
    ServerIdentity::Http {
        url: url.to_owned(),
        spki_sha256: spki_sha256.map(str::to_owned),
    }
}

/// Finds the file a command name resolves to, like a shell would.
pub fn resolve_executable(command: &str, path_env: Option<&str>) -> Option<PathBuf> {
    if command.is_empty() {
        return None;
    }
    if command.contains('/') || command.contains(std::path::MAIN_SEPARATOR) {
        let p = PathBuf::from(command);
        return is_executable_file(&p).then_some(p);
    }
    std::env::split_paths(path_env?)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(command))
        .find(|p| is_executable_file(p))
}

fn is_executable_file(p: &Path) -> bool {
    let Ok(meta) = std::fs::metadata(p) else {
        return false;
    };
    if !meta.is_file() {
        return false;
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        meta.permissions().mode() & 0o111 != 0
    }
    #[cfg(not(unix))]
    {
        true
    }
}

fn hash_file(p: &Path) -> Option<ManifestHash> {
    let mut f = File::open(p).ok()?;
    let mut hasher = Sha256::new();
    let mut buf = [0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).ok()?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Some(ManifestHash::from_bytes(hasher.finalize().into()))
}

/// Recognises `npx`, `bunx`, `pnpm dlx`, `uvx`, `uv tool run` and `pipx run`
/// launches and extracts the package and its version.
pub fn package_pin(command: &str, args: &[String]) -> Option<PackagePin> {
    let base = Path::new(command)
        .file_name()
        .and_then(|s| s.to_str())
        .unwrap_or(command);
    let base = base.strip_suffix(".cmd").unwrap_or(base);
    let base = base.strip_suffix(".exe").unwrap_or(base);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match base {
        "npx" | "bunx" => npm_like(base, &args),
        "pnpm" if args.first() == Some(&"dlx") => npm_like("pnpm dlx", &args[1..]),
        "npm" if matches!(args.first(), Some(&"exec") | Some(&"x")) => npm_like("npx", &args[1..]),
        "uvx" => python_like("uvx", &args),
        "uv" if args.get(..2) == Some(&["tool", "run"][..]) => python_like("uvx", &args[2..]),
        "pipx" if args.first() == Some(&"run") => python_like("pipx", &args[1..]),
        _ => None,
    }
}

/// `npx [-y|--yes] [-p|--package <spec>] <spec> [args…]`.
fn npm_like(runner: &str, args: &[&str]) -> Option<PackagePin> {
    let mut explicit = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        if a == "--" {
            i += 1;
            break;
        }
        if a == "-p" || a == "--package" {
            explicit = args.get(i + 1).copied();
            i += 2;
            continue;
        }
        if let Some(spec) = a.strip_prefix("--package=") {
            explicit = Some(spec);
            i += 1;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        break;
    }
    let spec = explicit.or_else(|| args.get(i).copied())?;
    let (package, version) = split_npm_spec(spec);
    Some(PackagePin {
        runner: runner.to_owned(),
        package,
        version,
    })
}

/// `@scope/name@1.2.3` → (`@scope/name`, `1.2.3`); `name` → (`name`, None).
fn split_npm_spec(spec: &str) -> (String, Option<String>) {
    let (scope_at, rest) = match spec.strip_prefix('@') {
        Some(rest) => ("@", rest),
        None => ("", spec),
    };
    match rest.rsplit_once('@') {
        Some((name, version)) if !name.is_empty() && !version.is_empty() => (
            format!("{scope_at}{name}"),
            Some(version.to_owned()).filter(|v| v != "latest"),
        ),
        _ => (spec.to_owned(), None),
    }
}

/// `uvx [--from <spec>] [opts] <spec> [args…]`, spec `name==1.2`, `name@1.2`.
fn python_like(runner: &str, args: &[&str]) -> Option<PackagePin> {
    // Options of uvx / pipx run that take a value.
    const WITH_VALUE: &[&str] = &[
        "--from",
        "--with",
        "--python",
        "-p",
        "--index",
        "--index-url",
        "--extra-index-url",
        "--spec",
        "--with-requirements",
        "--constraint",
        "-c",
        "--directory",
    ];
    let mut from = None;
    let mut i = 0;
    while i < args.len() {
        let a = args[i];
        if a == "--" {
            i += 1;
            break;
        }
        if a == "--from" || a == "--spec" {
            from = args.get(i + 1).copied();
            i += 2;
            continue;
        }
        if let Some(spec) = a
            .strip_prefix("--from=")
            .or_else(|| a.strip_prefix("--spec="))
        {
            from = Some(spec);
            i += 1;
            continue;
        }
        if WITH_VALUE.contains(&a) {
            i += 2;
            continue;
        }
        if a.starts_with('-') {
            i += 1;
            continue;
        }
        break;
    }
    let spec = from.or_else(|| args.get(i).copied())?;
    let (package, version) = split_python_spec(spec);
    Some(PackagePin {
        runner: runner.to_owned(),
        package,
        version,
    })
}

fn split_python_spec(spec: &str) -> (String, Option<String>) {
    if let Some((name, version)) = spec.split_once("==") {
        return (name.trim().to_owned(), Some(version.trim().to_owned()));
    }
    if let Some((name, version)) = spec.split_once('@') {
        if !version.contains("://") && !version.is_empty() && version != "latest" {
            return (name.trim().to_owned(), Some(version.trim().to_owned()));
        }
        return (name.trim().to_owned(), None);
    }
    (spec.to_owned(), None)
}

impl ServerIdentity {
    /// Field-level differences from `live`, in the order a reviewer reads
    /// them. Empty when `live` satisfies this pin.
    ///
    /// A pinned executable hash or SPKI hash must be matched by the live
    /// identity; a live identity whose executable could not be hashed does
    /// not satisfy a pin that has one (fail closed).
    pub fn changes_to(&self, live: &ServerIdentity) -> Vec<FieldChange> {
        let mut out = Vec::new();
        let mut field = |path: &str, pinned: Option<String>, live: Option<String>| {
            if pinned != live {
                out.push(FieldChange {
                    path: path.to_owned(),
                    pinned,
                    live,
                });
            }
        };
        match (self, live) {
            (
                ServerIdentity::Stdio {
                    command,
                    args,
                    executable_sha256,
                    package,
                },
                ServerIdentity::Stdio {
                    command: l_command,
                    args: l_args,
                    executable_sha256: l_exe,
                    package: l_package,
                },
            ) => {
                field(
                    "/command",
                    Some(json_str(command)),
                    Some(json_str(l_command)),
                );
                field("/args", Some(json_args(args)), Some(json_args(l_args)));
                if let Some(pinned) = executable_sha256 {
                    field(
                        "/executable_sha256",
                        Some(pinned.to_string()),
                        l_exe.map(|h| h.to_string()),
                    );
                }
                if package.is_some() {
                    let show = |p: &Option<PackagePin>| {
                        p.as_ref().map(|p| {
                            format!(
                                "{} {}@{}",
                                p.runner,
                                p.package,
                                p.version.as_deref().unwrap_or("latest")
                            )
                        })
                    };
                    field("/package", show(package), show(l_package));
                }
            }
            (
                ServerIdentity::Http { url, spki_sha256 },
                ServerIdentity::Http {
                    url: l_url,
                    spki_sha256: l_spki,
                },
            ) => {
                field("/url", Some(json_str(url)), Some(json_str(l_url)));
                if let Some(pinned) = spki_sha256 {
                    field(
                        "/spki_sha256",
                        Some(json_str(pinned)),
                        l_spki.as_deref().map(json_str),
                    );
                }
            }
            (pinned, live) => field(
                "/transport",
                Some(json_str(pinned.transport())),
                Some(json_str(live.transport())),
            ),
        }
        out
    }

    /// `stdio` or `http`.
    pub fn transport(&self) -> &'static str {
        match self {
            ServerIdentity::Stdio { .. } => "stdio",
            ServerIdentity::Http { .. } => "http",
        }
    }
}

fn json_str(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn json_args(args: &[String]) -> String {
    serde_json::to_string(args).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn npx_specs() {
        let p = package_pin(
            "npx",
            &s(&["-y", "@modelcontextprotocol/server-github@2025.4.8"]),
        )
        .unwrap();
        assert_eq!(p.runner, "npx");
        assert_eq!(p.package, "@modelcontextprotocol/server-github");
        assert_eq!(p.version.as_deref(), Some("2025.4.8"));
        let p = package_pin("/usr/bin/npx", &s(&["--yes", "@scope/pkg", "--flag"])).unwrap();
        assert_eq!((p.package.as_str(), p.version), ("@scope/pkg", None));
        let p = package_pin("npx", &s(&["-p", "mcp-x@1.0.0", "mcp-x-bin"])).unwrap();
        assert_eq!(
            (p.package.as_str(), p.version.as_deref()),
            ("mcp-x", Some("1.0.0"))
        );
        let p = package_pin("npx", &s(&["pkg@latest"])).unwrap();
        assert_eq!(p.version, None);
        let p = package_pin("pnpm", &s(&["dlx", "pkg@2"])).unwrap();
        assert_eq!(
            (p.runner.as_str(), p.version.as_deref()),
            ("pnpm dlx", Some("2"))
        );
        assert!(package_pin("npx", &s(&["-y"])).is_none());
    }

    #[test]
    fn uvx_specs() {
        let p = package_pin("uvx", &s(&["mcp-server-fetch==2026.10.24"])).unwrap();
        assert_eq!(
            (p.package.as_str(), p.version.as_deref()),
            ("mcp-server-fetch", Some("2026.10.24"))
        );
        let p = package_pin("uvx", &s(&["--python", "3.12", "mcp-server-git@1.2"])).unwrap();
        assert_eq!(
            (p.package.as_str(), p.version.as_deref()),
            ("mcp-server-git", Some("1.2"))
        );
        let p = package_pin("uvx", &s(&["--from", "mcp-x==3", "mcp-x-cli"])).unwrap();
        assert_eq!(
            (p.package.as_str(), p.version.as_deref()),
            ("mcp-x", Some("3"))
        );
        let p = package_pin("uv", &s(&["tool", "run", "mcp-server-time"])).unwrap();
        assert_eq!((p.package.as_str(), p.version), ("mcp-server-time", None));
        assert!(package_pin("python", &s(&["-m", "server"])).is_none());
    }

    #[test]
    fn resolves_and_hashes_on_path() {
        let dir = tempfile::tempdir().unwrap();
        let exe = dir.path().join("my-server");
        std::fs::write(&exe, b"#!/bin/sh\necho hi\n").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&exe, std::fs::Permissions::from_mode(0o755)).unwrap();
        }
        let path = format!("/nonexistent:{}", dir.path().display());
        let id = stdio_identity("my-server", &s(&["--x"]), Some(&path));
        let ServerIdentity::Stdio {
            executable_sha256,
            package,
            ..
        } = &id
        else {
            panic!()
        };
        assert_eq!(
            *executable_sha256,
            Some(ManifestHash::of("#!/bin/sh\necho hi\n"))
        );
        assert!(package.is_none());
        // Same binary, same identity; a changed binary is a change.
        assert!(id
            .changes_to(&stdio_identity("my-server", &s(&["--x"]), Some(&path)))
            .is_empty());
        std::fs::write(&exe, b"#!/bin/sh\necho pwned\n").unwrap();
        let changed = id.changes_to(&stdio_identity("my-server", &s(&["--x"]), Some(&path)));
        assert_eq!(changed.len(), 1);
        assert_eq!(changed[0].path, "/executable_sha256");
        // Not found: no hash, which does not satisfy a pinned hash.
        let gone = stdio_identity("my-server", &s(&["--x"]), Some("/nonexistent"));
        assert_eq!(id.changes_to(&gone)[0].live, None);
    }

    #[test]
    fn command_line_changes_are_named() {
        let a = stdio_identity("npx", &s(&["-y", "pkg@1"]), None);
        let b = stdio_identity("npx", &s(&["-y", "pkg@2"]), None);
        let changes = a.changes_to(&b);
        let paths: Vec<&str> = changes.iter().map(|c| c.path.as_str()).collect();
        assert_eq!(paths, ["/args", "/package"]);
        let h = http_identity("https://x", None);
        assert_eq!(a.changes_to(&h)[0].path, "/transport");
        let pinned = http_identity("https://x", Some("abc"));
        assert_eq!(pinned.changes_to(&h)[0].path, "/spki_sha256");
        assert!(
            h.changes_to(&pinned).is_empty(),
            "an unpinned SPKI accepts any key"
        );
    }
}
