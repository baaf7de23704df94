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

/// The system calls the watch filter hands to Warden, and where their path
/// is: `(number, directory-descriptor argument, path argument, flags
/// argument)`. Opens are handed over only when their flags can write.
pub(crate) struct Watched {
    pub nr: libc::c_long,
    pub dirfd: Option<usize>,
    pub path: usize,
    pub flags: Option<usize>,
}

/// Opens that can change a file: write access, creation or truncation.
pub(crate) const WRITE_FLAGS: u32 =
    (libc::O_WRONLY | libc::O_RDWR | libc::O_CREAT | libc::O_TRUNC) as u32;

/// Calls that write a name or a file (the path a refusal is about).
/// `rename*` is watched at its destination, `openat2` always (its flags
/// live in memory the filter cannot read).
pub(crate) const WATCHED_PATHS: &[Watched] = &[
    #[cfg(target_arch = "x86_64")]
    Watched {
        nr: libc::SYS_open,
        dirfd: None,
        path: 0,
        flags: Some(1),
    },
    #[cfg(target_arch = "x86_64")]
    Watched {
        nr: libc::SYS_creat,
        dirfd: None,
        path: 0,
        flags: None,
    },
    #[cfg(target_arch = "x86_64")]
    Watched {
        nr: libc::SYS_mkdir,
        dirfd: None,
        path: 0,
        flags: None,
    },
    #[cfg(target_arch = "x86_64")]
    Watched {
        nr: libc::SYS_unlink,
        dirfd: None,
        path: 0,
        flags: None,
    },
    #[cfg(target_arch = "x86_64")]
    Watched {
        nr: libc::SYS_rmdir,
        dirfd: None,
        path: 0,
        flags: None,
    },
    #[cfg(target_arch = "x86_64")]
    Watched {
        nr: libc::SYS_rename,
        dirfd: None,
        path: 1,
        flags: None,
    },
    Watched {
        nr: libc::SYS_openat,
        dirfd: Some(0),
        path: 1,
        flags: Some(2),
    },
    Watched {
        nr: libc::SYS_openat2,
        dirfd: Some(0),
        path: 1,
        flags: None,
    },
    Watched {
        nr: libc::SYS_mkdirat,
        dirfd: Some(0),
        path: 1,
        flags: None,
    },
    Watched {
        nr: libc::SYS_unlinkat,
        dirfd: Some(0),
        path: 1,
        flags: None,
    },
    Watched {
        nr: libc::SYS_renameat,
        dirfd: Some(2),
        path: 3,
        flags: None,
    },
    Watched {
        nr: libc::SYS_renameat2,
        dirfd: Some(2),
        path: 3,
        flags: None,
    },
    Watched {
        nr: libc::SYS_truncate,
        dirfd: None,
        path: 0,
        flags: None,
    },
];

#[cfg(target_arch = "x86_64")]
const AUDIT_ARCH: u32 = 0xc000_003e; // AUDIT_ARCH_X86_64
#[cfg(target_arch = "aarch64")]
const AUDIT_ARCH: u32 = 0xc000_00b7; // AUDIT_ARCH_AARCH64

// Classic BPF opcodes (linux/filter.h).
const BPF_LD_W_ABS: u16 = 0x20; // BPF_LD | BPF_W | BPF_ABS
const BPF_JMP_JEQ_K: u16 = 0x05 | 0x10;
const BPF_JMP_JSET_K: u16 = 0x05 | 0x40;
const BPF_RET_K: u16 = 0x06;

/// Offset of the low 32 bits of argument `i` in `struct seccomp_data`.
const fn arg_low(i: usize) -> u32 {
    let base = 16 + 8 * i as u32;
    if cfg!(target_endian = "little") {
        base
    } else {
        base + 4
    }
}

/// The watch filter, installed last with a user-notification listener
/// (`SECCOMP_FILTER_FLAG_NEW_LISTENER`): `connect` (Warden reads the
/// address and tells network families apart) and the calls of
/// [`WATCHED_PATHS`] stop until Warden has looked at them, so an attempt
/// the sandbox refuses is audited. Warden always answers "continue": the
/// kernel then does exactly what it would have done without this filter,
/// so the namespaces and mounts remain the enforcement, and a slow, racing
/// or absent watcher never grants anything (without a listener the
/// watched calls fail with `ENOSYS`).
///
/// Written by hand: `seccompiler` has no user-notification action.
pub(crate) fn watch_filter() -> Vec<libc::sock_filter> {
    // Instructions with symbolic jump targets, resolved below.
    enum To {
        Next,
        Notify,
        Allow,
        At(usize),
    }
    struct Ins {
        code: u16,
        k: u32,
        jt: To,
        jf: To,
    }
    let stmt = |code, k| Ins {
        code,
        k,
        jt: To::Next,
        jf: To::Next,
    };
    let mut p: Vec<Ins> = vec![
        stmt(BPF_LD_W_ABS, 4), // arch
        Ins {
            code: BPF_JMP_JEQ_K,
            k: AUDIT_ARCH,
            jt: To::Next,
            jf: To::Allow,
        },
        stmt(BPF_LD_W_ABS, 0), // nr
        Ins {
            code: BPF_JMP_JEQ_K,
            k: libc::SYS_connect as u32,
            jt: To::Notify,
            jf: To::Next,
        },
    ];
    // Calls whose flags decide: a jump to a flag check placed after the
    // table, one per distinct flags argument.
    let mut flag_checks: Vec<(usize, Vec<usize>)> = Vec::new();
    for w in WATCHED_PATHS {
        match w.flags {
            None => p.push(Ins {
                code: BPF_JMP_JEQ_K,
                k: w.nr as u32,
                jt: To::Notify,
                jf: To::Next,
            }),
            Some(arg) => {
                let at = p.len();
                p.push(Ins {
                    code: BPF_JMP_JEQ_K,
                    k: w.nr as u32,
                    jt: To::Next,
                    jf: To::Next,
                });
                match flag_checks.iter_mut().find(|(a, _)| *a == arg) {
                    Some((_, from)) => from.push(at),
                    None => flag_checks.push((arg, vec![at])),
                }
            }
        }
    }
    p.push(stmt(BPF_RET_K, libc::SECCOMP_RET_ALLOW));
    for (arg, from) in flag_checks {
        let check = p.len();
        for f in from {
            p[f].jt = To::At(check);
        }
        p.push(stmt(BPF_LD_W_ABS, arg_low(arg)));
        p.push(Ins {
            code: BPF_JMP_JSET_K,
            k: WRITE_FLAGS,
            jt: To::Notify,
            jf: To::Allow,
        });
    }
    let notify = p.len();
    p.push(stmt(BPF_RET_K, libc::SECCOMP_RET_USER_NOTIF));
    let allow = p.len();
    p.push(stmt(BPF_RET_K, libc::SECCOMP_RET_ALLOW));

    let offset = |from: usize, to: &To| -> u8 {
        let target = match to {
            To::Next => from + 1,
            To::Notify => notify,
            To::Allow => allow,
            To::At(i) => *i,
        };
        // Jumps only go forward, and the program is a few dozen
        // instructions long, well within a u8 offset.
        u8::try_from(target - from - 1).unwrap_or(u8::MAX)
    };
    p.iter()
        .enumerate()
        .map(|(i, ins)| libc::sock_filter {
            code: ins.code,
            jt: offset(i, &ins.jt),
            jf: offset(i, &ins.jf),
            k: ins.k,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs a classic BPF program of the four instructions the watch filter
    /// uses over a `struct seccomp_data`.
    fn run(program: &[libc::sock_filter], nr: libc::c_long, arch: u32, args: [u64; 6]) -> u32 {
        let mut data = Vec::new();
        data.extend_from_slice(&(nr as i32).to_ne_bytes());
        data.extend_from_slice(&arch.to_ne_bytes());
        data.extend_from_slice(&0u64.to_ne_bytes());
        for a in args {
            data.extend_from_slice(&a.to_ne_bytes());
        }
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let ins = program[pc];
            match ins.code {
                BPF_LD_W_ABS => {
                    let at = ins.k as usize;
                    acc = u32::from_ne_bytes(data[at..at + 4].try_into().unwrap());
                    pc += 1;
                }
                BPF_JMP_JEQ_K | BPF_JMP_JSET_K => {
                    let taken = if ins.code == BPF_JMP_JEQ_K {
                        acc == ins.k
                    } else {
                        acc & ins.k != 0
                    };
                    pc += 1 + usize::from(if taken { ins.jt } else { ins.jf });
                }
                BPF_RET_K => return ins.k,
                other => panic!("unexpected opcode {other:#x}"),
            }
        }
    }

    #[test]
    fn the_watch_filter_hands_over_connects_and_writes_only() {
        let p = watch_filter();
        assert!(p.len() < 200, "jumps must fit in a u8: {}", p.len());
        let notify = libc::SECCOMP_RET_USER_NOTIF;
        let allow = libc::SECCOMP_RET_ALLOW;
        let at = |nr, args| run(&p, nr, AUDIT_ARCH, args);
        let flags = |i: usize, f: libc::c_int| {
            let mut a = [0u64; 6];
            a[i] = f as u64;
            a
        };
        assert_eq!(at(libc::SYS_connect, [0; 6]), notify);
        assert_eq!(at(libc::SYS_openat, flags(2, libc::O_RDONLY)), allow);
        assert_eq!(
            at(libc::SYS_openat, flags(2, libc::O_RDONLY | libc::O_CLOEXEC)),
            allow
        );
        assert_eq!(at(libc::SYS_openat, flags(2, libc::O_WRONLY)), notify);
        assert_eq!(at(libc::SYS_openat, flags(2, libc::O_RDWR)), notify);
        assert_eq!(at(libc::SYS_openat, flags(2, libc::O_CREAT)), notify);
        assert_eq!(at(libc::SYS_openat, flags(2, libc::O_TRUNC)), notify);
        // The flags are the third argument of openat, not the second.
        assert_eq!(at(libc::SYS_openat, flags(1, libc::O_WRONLY)), allow);
        #[cfg(target_arch = "x86_64")]
        {
            assert_eq!(at(libc::SYS_open, flags(1, libc::O_WRONLY)), notify);
            assert_eq!(at(libc::SYS_open, flags(1, libc::O_RDONLY)), allow);
            assert_eq!(at(libc::SYS_creat, [0; 6]), notify);
            assert_eq!(at(libc::SYS_rename, [0; 6]), notify);
        }
        for nr in [
            libc::SYS_openat2,
            libc::SYS_mkdirat,
            libc::SYS_unlinkat,
            libc::SYS_renameat2,
            libc::SYS_truncate,
        ] {
            assert_eq!(at(nr, [0; 6]), notify, "{nr}");
        }
        for nr in [
            libc::SYS_read,
            libc::SYS_write,
            libc::SYS_socket,
            libc::SYS_execve,
        ] {
            assert_eq!(at(nr, [0; 6]), allow, "{nr}");
        }
        // Another architecture's numbers mean other calls: left alone (the
        // first filters already refuse foreign architectures).
        assert_eq!(run(&p, libc::SYS_connect, 0x4000_0003, [0; 6]), allow);
    }
}
