//! Client roots become sandbox mounts (#19.4, T16).
//!
//! A stdio server with `sandbox.roots` is told only the roots its sandbox
//! mounts. Its `roots/list` goes to the client as any server request; the
//! client's answer comes back through [`admit`]: each root is resolved to
//! its real path (symbolic links followed, so a link cannot lead out of
//! `allow`), and kept only when it is an existing directory under one of
//! the operator's `allow` directories that neither holds nor lies inside
//! one of Warden's own files. The server then gets the admitted roots that
//! are mounted; when the admitted set differs from the mounted one, the
//! process is restarted with the new mounts ([`warden_upstream::Upstream::remount`])
//! and, once restarted, asks again.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use serde_json::Value;

/// The longest root text kept in a record.
const SHOWN_ROOT: usize = 512;

/// At most this many roots are looked at (each is a path resolution on
/// the host); the rest are refused as `too_many`.
const MAX_ROOTS: usize = 64;

/// One root the client declared and Warden admitted.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Root {
    /// The real path (mounted at the same path inside the sandbox).
    pub path: PathBuf,
    /// The client's entry, its `uri` rewritten to the real path.
    pub entry: Value,
}

/// One root refused, and why (a stable reason code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Refused {
    pub root: String,
    pub reason: &'static str,
}

#[derive(Debug, Default, Clone, PartialEq)]
pub(crate) struct Admission {
    pub admitted: Vec<Root>,
    pub refused: Vec<Refused>,
}

impl Admission {
    pub fn paths(&self) -> BTreeSet<PathBuf> {
        self.admitted.iter().map(|r| r.path.clone()).collect()
    }
}

/// Sorts the client's `roots` into admitted and refused.
pub(crate) fn admit(roots: &[Value], allow: &[PathBuf], protected: &[PathBuf]) -> Admission {
    let allow: Vec<PathBuf> = allow.iter().map(|p| real(p)).collect();
    let protected: Vec<PathBuf> = protected.iter().map(|p| real(p)).collect();
    let mut out = Admission::default();
    let mut seen = BTreeSet::new();
    for (i, entry) in roots.iter().enumerate() {
        let uri = entry.get("uri").and_then(Value::as_str);
        let shown = uri.map_or_else(|| "(no uri)".to_owned(), |u| truncate(u, SHOWN_ROOT));
        let mut refuse = |reason| {
            out.refused.push(Refused {
                root: shown.clone(),
                reason,
            })
        };
        if i >= MAX_ROOTS {
            refuse("too_many");
            continue;
        }
        let Some(path) = uri.and_then(file_path) else {
            refuse("not_a_file_uri");
            continue;
        };
        let Ok(path) = std::fs::canonicalize(&path) else {
            refuse("not_found");
            continue;
        };
        if !path.is_dir() {
            refuse("not_a_directory");
            continue;
        }
        if !allow.iter().any(|a| path.starts_with(a)) {
            refuse("outside_allowed");
            continue;
        }
        if protected
            .iter()
            .any(|p| p.starts_with(&path) || path.starts_with(p))
        {
            refuse("protected");
            continue;
        }
        if !seen.insert(path.clone()) {
            continue;
        }
        let mut entry = entry.clone();
        if let (Some(obj), Ok(url)) = (entry.as_object_mut(), url::Url::from_file_path(&path)) {
            obj.insert("uri".into(), Value::String(url.to_string()));
        }
        out.admitted.push(Root { path, entry });
    }
    out
}

/// The path of a `file:` URI with an empty (or `localhost`) host.
fn file_path(uri: &str) -> Option<PathBuf> {
    let url = url::Url::parse(uri).ok()?;
    if url.scheme() != "file" {
        return None;
    }
    let path = url.to_file_path().ok()?;
    path.is_absolute().then_some(path)
}

/// The real path where it exists, else the path as given.
fn real(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_owned();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &s[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn uri(p: &Path) -> String {
        url::Url::from_file_path(p).unwrap().to_string()
    }

    #[test]
    fn roots_are_admitted_only_under_allow_as_real_directories_and_never_over_wardens_files() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let allowed = base.join("projects");
        let a = allowed.join("a");
        let b = allowed.join("b with space");
        let outside = base.join("outside");
        let warden = allowed.join("warden-data");
        for d in [&a, &b, &outside, &warden] {
            std::fs::create_dir_all(d).unwrap();
        }
        std::fs::write(a.join("file.txt"), "x").unwrap();
        // A link under `allow` that leads out of it.
        std::os::unix::fs::symlink(&outside, allowed.join("escape")).unwrap();
        let roots = vec![
            json!({"uri": uri(&a), "name": "a"}),
            json!({"uri": uri(&b)}),
            json!({"uri": uri(&outside)}),
            json!({"uri": uri(&allowed.join("escape"))}),
            json!({"uri": uri(&a.join("file.txt"))}),
            json!({"uri": uri(&allowed.join("missing"))}),
            json!({"uri": "https://example.com/a"}),
            json!({"name": "no uri"}),
            json!({"uri": uri(&warden.join("sub/.."))}),
            // Holds Warden's files.
            json!({"uri": uri(&allowed)}),
            // Twice: mounted once.
            json!({"uri": uri(&a), "name": "again"}),
        ];
        let got = admit(
            &roots,
            std::slice::from_ref(&allowed),
            &[warden.join("keys")],
        );
        let paths: Vec<&Path> = got.admitted.iter().map(|r| r.path.as_path()).collect();
        assert_eq!(paths, vec![a.as_path(), b.as_path()]);
        assert_eq!(got.admitted[0].entry["name"], "a");
        assert_eq!(got.admitted[1].entry["uri"], uri(&b));
        let reasons: Vec<&str> = got.refused.iter().map(|r| r.reason).collect();
        assert_eq!(
            reasons,
            vec![
                "outside_allowed",
                "outside_allowed",
                "not_a_directory",
                "not_found",
                "not_a_file_uri",
                "not_a_file_uri",
                "protected",
                "protected",
            ]
        );
    }

    #[test]
    fn only_the_first_roots_are_looked_at() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let roots: Vec<Value> = (0..MAX_ROOTS + 3)
            .map(|_| json!({"uri": uri(&base)}))
            .collect();
        let got = admit(&roots, std::slice::from_ref(&base), &[]);
        assert_eq!(got.admitted.len(), 1);
        assert_eq!(got.refused.len(), 3);
        assert!(got.refused.iter().all(|r| r.reason == "too_many"));
    }

    #[test]
    fn a_root_inside_a_protected_directory_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let base = std::fs::canonicalize(dir.path()).unwrap();
        let inner = base.join("etc-warden/sub");
        std::fs::create_dir_all(&inner).unwrap();
        let got = admit(
            &[json!({"uri": uri(&inner)})],
            std::slice::from_ref(&base),
            &[base.join("etc-warden")],
        );
        assert!(got.admitted.is_empty());
        assert_eq!(got.refused[0].reason, "protected");
    }
}
