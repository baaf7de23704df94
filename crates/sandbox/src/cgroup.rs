//! A pids cgroup per sandbox, where `RLIMIT_NPROC` does not bind.
//!
//! The kernel never applies the process rlimit to processes of the host's
//! root user, and a sandbox started by a root Warden runs as the host's
//! root (mapped to an unprivileged user inside its namespace). There the
//! process count is capped by the pids controller instead: cgroup v2 when
//! its hierarchy offers `pids`, else the v1 `pids` hierarchy.

use std::ffi::CString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

const CANDIDATES: &[&str] = &[
    "/sys/fs/cgroup",
    "/sys/fs/cgroup/unified",
    "/sys/fs/cgroup/pids",
];

/// A cgroup made for one sandbox; removed (once empty) on drop.
#[derive(Debug)]
pub(crate) struct PidsCgroup {
    dir: PathBuf,
}

impl PidsCgroup {
    /// Creates `warden-sandbox-<pid>-<n>` under the first writable
    /// hierarchy that has the pids controller, limited to `max`.
    pub(crate) fn create(max: u64) -> Option<PidsCgroup> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        for base in CANDIDATES.iter().map(Path::new) {
            if !has_pids(base) {
                continue;
            }
            if n == 0 {
                sweep(base);
            }
            let dir = base.join(format!("warden-sandbox-{}-{n}", std::process::id()));
            if std::fs::create_dir(&dir).is_err() {
                continue;
            }
            if std::fs::write(dir.join("pids.max"), max.to_string()).is_ok() {
                return Some(PidsCgroup { dir });
            }
            let _ = std::fs::remove_dir(&dir);
        }
        None
    }

    /// `pids.events`: its `max` line counts the forks the limit refused.
    pub(crate) fn events(&self) -> PathBuf {
        self.dir.join("pids.events")
    }

    pub(crate) fn procs(&self) -> Option<CString> {
        CString::new(
            self.dir
                .join("cgroup.procs")
                .into_os_string()
                .into_encoded_bytes(),
        )
        .ok()
    }
}

fn has_pids(base: &Path) -> bool {
    if base.ends_with("pids") {
        return base.join("pids.max").exists() || base.join("tasks").exists();
    }
    std::fs::read_to_string(base.join("cgroup.subtree_control"))
        .is_ok_and(|c| c.split_whitespace().any(|w| w == "pids"))
}

/// Removes the empty cgroups a Warden that is gone left behind (killed
/// before it could remove them).
fn sweep(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix("warden-sandbox-"))
        else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or("");
        if !pid.is_empty() && !Path::new("/proc").join(pid).exists() {
            // Fails (and is left) while a process is still in it.
            let _ = std::fs::remove_dir(entry.path());
        }
    }
}

impl Drop for PidsCgroup {
    /// The last processes of a sandbox may take a moment to be released
    /// after its PID 1 died (the kernel kills the rest of the namespace
    /// then): a cgroup that is still busy is removed from a short-lived
    /// thread once it is empty.
    fn drop(&mut self) {
        if std::fs::remove_dir(&self.dir).is_ok() {
            return;
        }
        let dir = std::mem::take(&mut self.dir);
        let _ = std::thread::Builder::new()
            .name("sandbox-cgroup".into())
            .spawn(move || {
                for _ in 0..100 {
                    std::thread::sleep(std::time::Duration::from_millis(100));
                    if std::fs::remove_dir(&dir).is_ok() || !dir.exists() {
                        return;
                    }
                }
            });
    }
}
