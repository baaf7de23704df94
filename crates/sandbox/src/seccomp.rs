//! The seccomp filters: compiled before `fork` (compiling allocates), only
//! installed in the child.
//!
//! Three filters, stacked (the kernel applies the strictest verdict):
//! - **kill the process** for what only an attack does from an MCP server:
//!   tracing or reading other processes, mounting, loading kernel code,
//!   kexec, BPF, the kernel keyring, raw I/O ports, rebooting. Killing
//!   makes the attempt visible (the server dies by `SIGSYS`, Warden logs
//!   and audits the crash) where a refusal would go unseen;
//! - **refuse with `EPERM`** what legitimate software may probe for and
//!   cope without: new namespaces (`unshare`, `setns`, `clone` with a
//!   namespace flag), io_uring (its operations bypass seccomp),
//!   `userfaultfd`, `perf_event_open`, `chroot`, handle-based opens, clock
//!   and swap changes, and, without network namespaces, every socket
//!   family but `AF_UNIX`;
//! - **`ENOSYS` for `clone3`**: its flags live in memory a filter cannot
//!   read, so the C library falls back to `clone`, whose flags the filter
//!   checks.

use std::collections::BTreeMap;

use seccompiler::{
    SeccompAction, SeccompCmpArgLen, SeccompCmpOp, SeccompCondition, SeccompFilter, SeccompRule,
    TargetArch,
};

use crate::SandboxError;

const KILL: &[libc::c_long] = &[
    libc::SYS_ptrace,
    libc::SYS_process_vm_readv,
    libc::SYS_process_vm_writev,
    libc::SYS_mount,
    libc::SYS_umount2,
    libc::SYS_pivot_root,
    libc::SYS_open_tree,
    libc::SYS_move_mount,
    libc::SYS_fsopen,
    libc::SYS_fsconfig,
    libc::SYS_fsmount,
    libc::SYS_fspick,
    libc::SYS_mount_setattr,
    libc::SYS_kexec_load,
    libc::SYS_kexec_file_load,
    libc::SYS_init_module,
    libc::SYS_finit_module,
    libc::SYS_delete_module,
    libc::SYS_bpf,
    libc::SYS_keyctl,
    libc::SYS_add_key,
    libc::SYS_request_key,
    libc::SYS_reboot,
    libc::SYS_swapon,
    libc::SYS_swapoff,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_iopl,
    #[cfg(target_arch = "x86_64")]
    libc::SYS_ioperm,
    libc::SYS_pidfd_getfd,
];

const REFUSE: &[libc::c_long] = &[
    libc::SYS_unshare,
    libc::SYS_setns,
    libc::SYS_io_uring_setup,
    libc::SYS_io_uring_enter,
    libc::SYS_io_uring_register,
    libc::SYS_userfaultfd,
    libc::SYS_perf_event_open,
    libc::SYS_chroot,
    libc::SYS_open_by_handle_at,
    libc::SYS_name_to_handle_at,
    libc::SYS_settimeofday,
    libc::SYS_clock_settime,
    libc::SYS_clock_adjtime,
    libc::SYS_adjtimex,
    libc::SYS_acct,
    libc::SYS_quotactl,
    libc::SYS_syslog,
    libc::SYS_kcmp,
    libc::SYS_lookup_dcookie,
    libc::SYS_vhangup,
];

/// Namespace flags `clone` may not carry.
const CLONE_NS_FLAGS: &[libc::c_int] = &[
    libc::CLONE_NEWUSER,
    libc::CLONE_NEWNS,
    libc::CLONE_NEWPID,
    libc::CLONE_NEWNET,
    libc::CLONE_NEWIPC,
    libc::CLONE_NEWUTS,
    libc::CLONE_NEWCGROUP,
];

fn arch() -> Result<TargetArch, SandboxError> {
    TargetArch::try_from(std::env::consts::ARCH).map_err(|e| SandboxError::Seccomp(e.to_string()))
}

fn compile(
    rules: BTreeMap<i64, Vec<SeccompRule>>,
    action: SeccompAction,
) -> Result<Vec<libc::sock_filter>, SandboxError> {
    let filter = SeccompFilter::new(rules, SeccompAction::Allow, action, arch()?)
        .map_err(|e| SandboxError::Seccomp(e.to_string()))?;
    let program: seccompiler::BpfProgram = filter
        .try_into()
        .map_err(|e: seccompiler::BackendError| SandboxError::Seccomp(e.to_string()))?;
    Ok(program
        .into_iter()
        .map(|f| libc::sock_filter {
            code: f.code,
            jt: f.jt,
            jf: f.jf,
            k: f.k,
        })
        .collect())
}

fn cond(
    index: u8,
    len: SeccompCmpArgLen,
    op: SeccompCmpOp,
    value: u64,
) -> Result<SeccompCondition, SandboxError> {
    SeccompCondition::new(index, len, op, value).map_err(|e| SandboxError::Seccomp(e.to_string()))
}

fn rule(c: SeccompCondition) -> Result<SeccompRule, SandboxError> {
    SeccompRule::new(vec![c]).map_err(|e| SandboxError::Seccomp(e.to_string()))
}

/// The filters, in the order they are installed. `unix_sockets_only`:
/// refuse every socket family but `AF_UNIX` (no network namespace).
pub(crate) fn filters(
    unix_sockets_only: bool,
) -> Result<Vec<Vec<libc::sock_filter>>, SandboxError> {
    let kill: BTreeMap<i64, Vec<SeccompRule>> = KILL.iter().map(|&n| (n, Vec::new())).collect();

    let mut refuse: BTreeMap<i64, Vec<SeccompRule>> =
        REFUSE.iter().map(|&n| (n, Vec::new())).collect();
    let clone_rules = CLONE_NS_FLAGS
        .iter()
        .map(|&flag| {
            let flag = flag as u64;
            rule(cond(
                0,
                SeccompCmpArgLen::Qword,
                SeccompCmpOp::MaskedEq(flag),
                flag,
            )?)
        })
        .collect::<Result<Vec<_>, _>>()?;
    refuse.insert(libc::SYS_clone, clone_rules);
    if unix_sockets_only {
        refuse.insert(
            libc::SYS_socket,
            vec![rule(cond(
                0,
                SeccompCmpArgLen::Dword,
                SeccompCmpOp::Ne,
                libc::AF_UNIX as u64,
            )?)?],
        );
    }

    let nosys: BTreeMap<i64, Vec<SeccompRule>> = [(libc::SYS_clone3, Vec::new())].into();

    Ok(vec![
        compile(kill, SeccompAction::KillProcess)?,
        compile(refuse, SeccompAction::Errno(libc::EPERM as u32))?,
        compile(nosys, SeccompAction::Errno(libc::ENOSYS as u32))?,
    ])
}
