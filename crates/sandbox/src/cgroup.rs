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

impl Drop for PidsCgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}
