//! What the running kernel allows, probed once.

use std::sync::OnceLock;

/// The kernel's sandboxing features, as this process can use them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Support {
    /// New user (and with it mount, PID, network…) namespaces can be
    /// created by this process.
    pub user_namespaces: bool,
    /// The Landlock ABI version; 0 when Landlock is absent or disabled.
    pub landlock_abi: u32,
    /// Seccomp user notifications that can let a call go on (Linux 5.5)
    /// and `openat2` (5.6), which the watcher needs: without them the
    /// sandbox still refuses, and what it refuses is not audited.
    pub watch: bool,
}

/// Probes once per process (a short-lived child tries `unshare`).
pub fn support() -> Support {
    static SUPPORT: OnceLock<Support> = OnceLock::new();
    *SUPPORT.get_or_init(|| Support {
        user_namespaces: user_namespaces(),
        landlock_abi: landlock_abi(),
        watch: kernel_at_least(5, 6),
    })
}

/// Whether the running kernel's release is at least `major.minor`
/// (`uname -r`; distribution kernels keep the upstream numbering).
fn kernel_at_least(major: u32, minor: u32) -> bool {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .is_ok_and(|release| release_at_least(&release, major, minor))
}

fn release_at_least(release: &str, major: u32, minor: u32) -> bool {
    let mut parts = release
        .trim()
        .split(|c: char| !c.is_ascii_digit())
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let found = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    found >= (major, minor)
}

fn landlock_abi() -> u32 {
    // SAFETY: LANDLOCK_CREATE_RULESET_VERSION (1) with a null attribute and
    // size 0 only asks for the ABI version; no memory is read or written.
    let abi = unsafe {
        libc::syscall(
            libc::SYS_landlock_create_ruleset,
            std::ptr::null::<u8>(),
            0usize,
            1u32,
        )
    };
    u32::try_from(abi).unwrap_or(0)
}

fn user_namespaces() -> bool {
    let flags = crate::child::NAMESPACES;
    // SAFETY: the child of this fork calls only `unshare` and `_exit`,
    // both async-signal-safe, so the other threads' state (locks held at
    // the fork) can never be observed; the parent only waits for it.
    unsafe {
        let pid = libc::fork();
        if pid == 0 {
            let ok = libc::unshare(flags) == 0;
            libc::_exit(if ok { 0 } else { 1 });
        }
        if pid < 0 {
            return false;
        }
        let mut status = 0;
        loop {
            let r = libc::waitpid(pid, &mut status, 0);
            if r == pid {
                break;
            }
            if r < 0 && std::io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
                return false;
            }
        }
        libc::WIFEXITED(status) && libc::WEXITSTATUS(status) == 0
    }
}

#[cfg(test)]
mod tests {
    use super::release_at_least;

    #[test]
    fn kernel_releases_compare_by_major_then_minor() {
        assert!(release_at_least("6.18.44-fc-v1300\n", 5, 6));
        assert!(release_at_least("5.6.0", 5, 6));
        assert!(release_at_least("5.15.0-91-generic", 5, 6));
        assert!(!release_at_least("5.4.0-150-generic", 5, 6));
        assert!(!release_at_least("4.19.0", 5, 6));
        assert!(!release_at_least("garbage", 5, 6));
    }
}
