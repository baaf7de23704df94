//! What runs in the child between `fork` and `exec`.
//!
//! The parent (Warden) is multi-threaded, so this code may only make
//! async-signal-safe calls: raw system calls on memory prepared before the
//! fork. Nothing here allocates, locks, or formats: every path is a
//! `CString` built by the plan, every buffer lives on the stack.
//!
//! A failing step is reported through the `io::Error` the standard
//! library passes back to `spawn`: its code is `FAIL_BASE + step * 4096 +
//! errno`, decoded by [`describe_failure`].

use std::ffi::CStr;
use std::ffi::CString;
use std::io;

use crate::landlock::{PathBeneathAttr, Rules, RULE_PATH_BENEATH};

/// One step of building the sandbox's root. Paths are absolute and already
/// prefixed with the staging directory where they name the new root.
#[derive(Debug)]
pub(crate) enum Op {
    /// `mkdir -p`.
    Dir(CString),
    /// An empty file (and its parents): a mount point for a file.
    File(CString),
    /// A recursive bind mount, then `mount_setattr` with these attributes
    /// on the whole tree.
    Bind {
        src: CString,
        dst: CString,
        attr: u64,
    },
    Tmpfs {
        dst: CString,
        data: CString,
    },
    Proc(CString),
    Symlink {
        target: CString,
        link: CString,
    },
}

/// Everything the child needs, prepared before the fork.
#[derive(Debug)]
pub(crate) struct Setup {
    pub namespaces: bool,
    pub uid_map: Vec<u8>,
    pub gid_map: Vec<u8>,
    pub staging: CString,
    pub ops: Vec<Op>,
    /// Working directory inside the sandbox (after `pivot_root`).
    pub cwd: CString,
    /// (resource, soft, hard).
    pub rlimits: Vec<(libc::__rlimit_resource_t, u64, u64)>,
    pub landlock: Option<Rules>,
    pub seccomp: Vec<Vec<libc::sock_filter>>,
    /// The child's end of the socket pair that carries the proxy listener
    /// to Warden; `None` without network.
    pub proxy_fd: Option<libc::c_int>,
    pub proxy_port: u16,
    /// `cgroup.procs` of the pids cgroup the child joins first (where the
    /// process rlimit does not bind: Warden runs as root).
    pub cgroup_procs: Option<CString>,
    /// The child's end of the socket pair that carries the watch filter's
    /// notification listener to Warden, and that filter (installed last).
    pub watch: Option<(libc::c_int, Vec<libc::sock_filter>)>,
}

/// The namespaces a sandbox gets (and the probe tries).
pub(crate) const NAMESPACES: libc::c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS;

pub(crate) const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub(crate) const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub(crate) const MOUNT_ATTR_NODEV: u64 = 0x4;
pub(crate) const MOUNT_ATTR_NOEXEC: u64 = 0x8;
const AT_RECURSIVE: libc::c_uint = 0x8000;

#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

const FAIL_BASE: i32 = 0x4000_0000;

#[derive(Clone, Copy)]
#[repr(i32)]
enum Step {
    Unshare = 1,
    Setgroups,
    UidMap,
    GidMap,
    Fork,
    Deathsig,
    Private,
    Mkdir,
    Touch,
    Bind,
    Attr,
    Tmpfs,
    Proc,
    Symlink,
    RootReadOnly,
    Pivot,
    Detach,
    Chdir,
    Hostname,
    Rlimit,
    NoNewPrivs,
    Landlock,
    Caps,
    Seccomp,
    Loopback,
    Listener,
    SendListener,
    Watch,
    SendWatch,
}

const STEPS: &[&str] = &[
    "",
    "unshare namespaces",
    "deny setgroups",
    "write uid_map",
    "write gid_map",
    "fork into the PID namespace",
    "set the parent-death signal",
    "make mounts private",
    "create a mount point directory",
    "create a mount point file",
    "bind-mount a path",
    "set mount attributes (read-only, nosuid, nodev)",
    "mount a tmpfs",
    "mount /proc",
    "create a symlink",
    "make the root read-only",
    "pivot_root",
    "detach the old root",
    "change directory",
    "set the hostname",
    "set a resource limit",
    "set no_new_privs",
    "apply the Landlock ruleset",
    "drop capabilities",
    "install the seccomp filter",
    "bring up loopback",
    "listen for the egress proxy",
    "hand the proxy listener to Warden",
    "install the watch filter",
    "hand the watch listener to Warden",
];

fn fail(step: Step) -> io::Error {
    let errno = io::Error::last_os_error().raw_os_error().unwrap_or(0);
    io::Error::from_raw_os_error(FAIL_BASE + (step as i32) * 4096 + (errno & 0xfff))
}

/// The operator-facing reason of a failed spawn: the sandbox step and the
/// system error, or the error itself when it did not come from a step.
pub(crate) fn describe_failure(e: &io::Error) -> String {
    match e.raw_os_error() {
        Some(code) if code >= FAIL_BASE => {
            let rest = code - FAIL_BASE;
            let step = usize::try_from(rest / 4096).unwrap_or(0);
            let errno = rest % 4096;
            let what = STEPS.get(step).copied().unwrap_or("sandbox setup");
            format!(
                "sandbox: cannot {what}: {}",
                io::Error::from_raw_os_error(errno)
            )
        }
        _ => e.to_string(),
    }
}

fn check(r: libc::c_int, step: Step) -> io::Result<()> {
    if r < 0 {
        Err(fail(step))
    } else {
        Ok(())
    }
}

fn check_long(r: libc::c_long, step: Step) -> io::Result<()> {
    if r < 0 {
        Err(fail(step))
    } else {
        Ok(())
    }
}

/// Writes `data` to a file that exists (a `/proc` control file).
///
/// SAFETY (for the callers): `path` is NUL-terminated and `data` is valid
/// for its length; only `open`, `write` and `close` are called.
unsafe fn write_file(path: &CStr, data: &[u8]) -> libc::c_int {
    let fd = libc::open(path.as_ptr(), libc::O_WRONLY | libc::O_CLOEXEC);
    if fd < 0 {
        return -1;
    }
    let n = libc::write(fd, data.as_ptr().cast(), data.len());
    libc::close(fd);
    if n == data.len() as isize {
        0
    } else {
        -1
    }
}

/// `mkdir -p` without allocating: the path is copied to a stack buffer
/// and cut at each `/` in turn.
///
/// SAFETY (for the callers): only `mkdir` is called, on a NUL-terminated
/// copy of `path` that lives on this stack frame.
unsafe fn mkdir_p(path: &CStr, last: bool) -> libc::c_int {
    let bytes = path.to_bytes();
    let mut buf = [0u8; 4096];
    if bytes.len() >= buf.len() {
        *libc::__errno_location() = libc::ENAMETOOLONG;
        return -1;
    }
    buf[..bytes.len()].copy_from_slice(bytes);
    let end = if last {
        bytes.len()
    } else {
        match bytes.iter().rposition(|&b| b == b'/') {
            Some(i) => i,
            None => return 0,
        }
    };
    let mut i = 1;
    while i <= end {
        if i == end || buf[i] == b'/' {
            let saved = buf[i];
            buf[i] = 0;
            let r = libc::mkdir(buf.as_ptr().cast(), 0o755);
            buf[i] = saved;
            if r < 0 && *libc::__errno_location() != libc::EEXIST {
                return -1;
            }
        }
        i += 1;
    }
    0
}

/// The pre-exec hook: turns the forked child into the sandboxed process.
///
/// # Safety
///
/// Must run only in the child of a `fork` (the standard library's
/// `pre_exec`), where it is the only thread. It calls only
/// async-signal-safe system calls on memory `setup` prepared before the
/// fork; see each block.
pub(crate) unsafe fn enter(setup: &Setup) -> io::Result<()> {
    if let Some(procs) = &setup.cgroup_procs {
        // "0" moves the writer itself. Best effort: a host whose cgroup
        // rules refuse the move (delegation, a v2 internal-process rule)
        // still runs the server, without this one cap; Warden warned when
        // it could not create the cgroup at all.
        let _ = write_file(procs, b"0");
    }
    if setup.namespaces {
        namespaces(setup)?;
    }
    let cwd = setup.cwd.as_ptr();
    // SAFETY: a NUL-terminated path prepared before the fork.
    check(libc::chdir(cwd), Step::Chdir)?;
    // SAFETY: plain prctl with integer arguments.
    check(
        libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0),
        Step::NoNewPrivs,
    )?;
    if let Some(rules) = &setup.landlock {
        landlock(rules)?;
    }
    drop_capabilities()?;
    if let Some((channel, filter)) = &setup.watch {
        let prog = libc::sock_fprog {
            len: filter.len() as libc::c_ushort,
            filter: filter.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points into a vector built before the fork that
        // outlives the call; the kernel copies the program. With
        // NEW_LISTENER it returns a new descriptor, the filter's
        // notification listener (installed before the descriptor limit is
        // set, like every other step that opens a file).
        let listener = libc::syscall(
            libc::SYS_seccomp,
            libc::SECCOMP_SET_MODE_FILTER,
            libc::SECCOMP_FILTER_FLAG_NEW_LISTENER,
            &prog as *const libc::sock_fprog,
        );
        check_long(listener, Step::Watch)?;
        // `sendmsg` and `close` are not watched, so nothing here waits for
        // the listener Warden has not received yet.
        let sent = send_fd(*channel, listener as libc::c_int);
        libc::close(listener as libc::c_int);
        libc::close(*channel);
        if sent < 0 {
            return Err(fail(Step::SendWatch));
        }
    }
    // After every step that opens a file: Warden may hold more descriptors
    // than the server is allowed, and `open` returns the lowest free number.
    for &(resource, soft, hard) in &setup.rlimits {
        let limit = libc::rlimit {
            rlim_cur: soft,
            rlim_max: hard,
        };
        // SAFETY: `limit` lives on this frame for the call.
        check(libc::setrlimit(resource, &limit), Step::Rlimit)?;
    }
    for filter in &setup.seccomp {
        let prog = libc::sock_fprog {
            len: filter.len() as libc::c_ushort,
            filter: filter.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points into a vector built before the fork that
        // outlives the call; the kernel copies the program.
        check_long(
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const libc::sock_fprog,
            ),
            Step::Seccomp,
        )?;
    }
    Ok(())
}

/// New namespaces, the PID-1 fork and the new root.
///
/// SAFETY (for the caller): as [`enter`].
unsafe fn namespaces(setup: &Setup) -> io::Result<()> {
    check(libc::unshare(NAMESPACES), Step::Unshare)?;
    // A kernel without the setgroups file (before 3.19) needs no denial.
    if write_file(c"/proc/self/setgroups", b"deny") < 0 && *libc::__errno_location() != libc::ENOENT
    {
        return Err(fail(Step::Setgroups));
    }
    check(
        write_file(c"/proc/self/uid_map", &setup.uid_map),
        Step::UidMap,
    )?;
    check(
        write_file(c"/proc/self/gid_map", &setup.gid_map),
        Step::GidMap,
    )?;
    if let Some(fd) = setup.proxy_fd {
        proxy_listener(fd, setup.proxy_port)?;
    }
    let pid = libc::fork();
    if pid < 0 {
        return Err(fail(Step::Fork));
    }
    if pid > 0 {
        intermediate(pid);
    }
    // The server: PID 1 of the new namespace. It dies with the intermediate.
    check(
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0),
        Step::Deathsig,
    )?;
    build_root(setup)?;
    let name = b"warden-sandbox";
    check(
        libc::sethostname(name.as_ptr().cast(), name.len()),
        Step::Hostname,
    )?;
    Ok(())
}

/// The process between Warden and the server: waits for the server and
/// exits as it did. It keeps no descriptor (Warden's `spawn` returns once
/// the server has exec'd, and the server alone holds the pipes).
///
/// SAFETY (for the caller): as [`enter`]; never returns.
unsafe fn intermediate(pid: libc::pid_t) -> ! {
    libc::syscall(libc::SYS_close_range, 0u32, u32::MAX, 0u32);
    let mut status = 0;
    loop {
        let r = libc::waitpid(pid, &mut status, 0);
        if r == pid {
            break;
        }
        if r < 0 && *libc::__errno_location() != libc::EINTR {
            libc::_exit(127);
        }
    }
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        // Die of the same signal, so Warden's log names it.
        libc::signal(sig, libc::SIG_DFL);
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, sig);
        libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
        libc::kill(libc::getpid(), sig);
        libc::_exit(128 + sig);
    }
    libc::_exit(libc::WEXITSTATUS(status));
}

/// SAFETY (for the caller): as [`enter`].
unsafe fn build_root(setup: &Setup) -> io::Result<()> {
    // Nothing done here may propagate back to Warden's mount namespace.
    check(
        libc::mount(
            std::ptr::null(),
            c"/".as_ptr(),
            std::ptr::null(),
            libc::MS_REC | libc::MS_PRIVATE,
            std::ptr::null(),
        ),
        Step::Private,
    )?;
    let staging = setup.staging.as_ptr();
    check(
        libc::mount(
            c"tmpfs".as_ptr(),
            staging,
            c"tmpfs".as_ptr(),
            libc::MS_NOSUID | libc::MS_NODEV,
            c"size=1m,mode=0755".as_ptr().cast(),
        ),
        Step::Tmpfs,
    )?;
    for op in &setup.ops {
        match op {
            Op::Dir(path) => check(mkdir_p(path, true), Step::Mkdir)?,
            Op::File(path) => {
                check(mkdir_p(path, false), Step::Mkdir)?;
                let fd = libc::open(
                    path.as_ptr(),
                    libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC,
                    0o644,
                );
                if fd < 0 && *libc::__errno_location() != libc::EEXIST {
                    return Err(fail(Step::Touch));
                }
                if fd >= 0 {
                    libc::close(fd);
                }
            }
            Op::Bind { src, dst, attr } => {
                check(
                    libc::mount(
                        src.as_ptr(),
                        dst.as_ptr(),
                        std::ptr::null(),
                        libc::MS_BIND | libc::MS_REC,
                        std::ptr::null(),
                    ),
                    Step::Bind,
                )?;
                set_attr(dst, *attr, AT_RECURSIVE, Step::Attr)?;
            }
            Op::Tmpfs { dst, data } => check(
                libc::mount(
                    c"tmpfs".as_ptr(),
                    dst.as_ptr(),
                    c"tmpfs".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV,
                    data.as_ptr().cast(),
                ),
                Step::Tmpfs,
            )?,
            Op::Proc(dst) => check(
                libc::mount(
                    c"proc".as_ptr(),
                    dst.as_ptr(),
                    c"proc".as_ptr(),
                    libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
                    std::ptr::null(),
                ),
                Step::Proc,
            )?,
            Op::Symlink { target, link } => {
                check(mkdir_p(link, false), Step::Mkdir)?;
                check(libc::symlink(target.as_ptr(), link.as_ptr()), Step::Symlink)?;
            }
        }
    }
    // The root itself (mount points only) becomes read-only.
    set_attr(
        &setup.staging,
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        0,
        Step::RootReadOnly,
    )?;
    check(libc::chdir(staging), Step::Pivot)?;
    check_long(
        libc::syscall(libc::SYS_pivot_root, c".".as_ptr(), c".".as_ptr()),
        Step::Pivot,
    )?;
    check(libc::umount2(c".".as_ptr(), libc::MNT_DETACH), Step::Detach)?;
    check(libc::chdir(c"/".as_ptr()), Step::Chdir)?;
    Ok(())
}

/// Sets mount attributes on `dst` (and its submounts with `AT_RECURSIVE`).
///
/// SAFETY (for the caller): `dst` is NUL-terminated; `attr` lives on this
/// frame for the call.
unsafe fn set_attr(dst: &CStr, set: u64, flags: libc::c_uint, step: Step) -> io::Result<()> {
    let attr = MountAttr {
        attr_set: set,
        attr_clr: 0,
        propagation: 0,
        userns_fd: 0,
    };
    check_long(
        libc::syscall(
            libc::SYS_mount_setattr,
            libc::AT_FDCWD,
            dst.as_ptr(),
            flags,
            &attr as *const MountAttr,
            std::mem::size_of::<MountAttr>(),
        ),
        step,
    )
}

/// SAFETY (for the caller): `rules` was prepared before the fork; the
/// attributes live on this frame for each call.
unsafe fn landlock(rules: &Rules) -> io::Result<()> {
    let ruleset = libc::syscall(
        libc::SYS_landlock_create_ruleset,
        &rules.attr as *const crate::landlock::RulesetAttr,
        rules.attr_size,
        0u32,
    );
    if ruleset < 0 {
        return Err(fail(Step::Landlock));
    }
    let ruleset = ruleset as libc::c_int;
    for (path, rights) in &rules.paths {
        let fd = libc::open(path.as_ptr(), libc::O_PATH | libc::O_CLOEXEC);
        if fd < 0 {
            // A path that is not there grants nothing.
            continue;
        }
        let attr = PathBeneathAttr {
            allowed_access: *rights,
            parent_fd: fd,
        };
        let r = libc::syscall(
            libc::SYS_landlock_add_rule,
            ruleset,
            RULE_PATH_BENEATH,
            &attr as *const PathBeneathAttr,
            0u32,
        );
        libc::close(fd);
        if r < 0 {
            libc::close(ruleset);
            return Err(fail(Step::Landlock));
        }
    }
    let r = libc::syscall(libc::SYS_landlock_restrict_self, ruleset, 0u32);
    libc::close(ruleset);
    check_long(r, Step::Landlock)
}

#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

/// Empties the bounding and ambient sets, then the process's own sets.
///
/// SAFETY (for the caller): prctl and capset with data on this frame.
unsafe fn drop_capabilities() -> io::Result<()> {
    // Capabilities beyond the kernel's last one answer EINVAL: the end.
    for cap in 0..64 {
        if libc::prctl(libc::PR_CAPBSET_DROP, cap, 0, 0, 0) < 0 {
            let errno = *libc::__errno_location();
            if errno == libc::EINVAL {
                break;
            }
            // EPERM: no CAP_SETPCAP (Landlock-only mode as an ordinary
            // user): the bounding set cannot be used by a process that has
            // no capabilities and no_new_privs anyway.
            if errno != libc::EPERM {
                return Err(fail(Step::Caps));
            }
        }
    }
    libc::prctl(
        libc::PR_CAP_AMBIENT,
        libc::PR_CAP_AMBIENT_CLEAR_ALL,
        0,
        0,
        0,
    );
    let header = CapHeader {
        version: 0x2008_0522, // _LINUX_CAPABILITY_VERSION_3
        pid: 0,
    };
    let data = [CapData {
        effective: 0,
        permitted: 0,
        inheritable: 0,
    }; 2];
    check_long(
        libc::syscall(libc::SYS_capset, &header as *const CapHeader, data.as_ptr()),
        Step::Caps,
    )
}

/// Brings up loopback, listens on `127.0.0.1:port` inside the new network
/// namespace and sends the listening socket to Warden over `channel`.
///
/// SAFETY (for the caller): only socket calls on stack buffers.
unsafe fn proxy_listener(channel: libc::c_int, port: u16) -> io::Result<()> {
    let ctl = libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0);
    check(ctl, Step::Loopback)?;
    let mut ifr: libc::ifreq = std::mem::zeroed();
    for (i, b) in b"lo".iter().enumerate() {
        ifr.ifr_name[i] = *b as libc::c_char;
    }
    ifr.ifr_ifru.ifru_flags = (libc::IFF_UP | libc::IFF_RUNNING) as libc::c_short;
    let r = libc::ioctl(ctl, libc::SIOCSIFFLAGS, &ifr as *const libc::ifreq);
    libc::close(ctl);
    check(r, Step::Loopback)?;

    let fd = libc::socket(libc::AF_INET, libc::SOCK_STREAM | libc::SOCK_CLOEXEC, 0);
    check(fd, Step::Listener)?;
    let addr = libc::sockaddr_in {
        sin_family: libc::AF_INET as libc::sa_family_t,
        sin_port: port.to_be(),
        sin_addr: libc::in_addr {
            s_addr: u32::from(std::net::Ipv4Addr::LOCALHOST).to_be(),
        },
        sin_zero: [0; 8],
    };
    if libc::bind(
        fd,
        (&addr as *const libc::sockaddr_in).cast(),
        std::mem::size_of::<libc::sockaddr_in>() as libc::socklen_t,
    ) < 0
        || libc::listen(fd, 128) < 0
    {
        libc::close(fd);
        return Err(fail(Step::Listener));
    }

    let sent = send_fd(channel, fd);
    libc::close(fd);
    libc::close(channel);
    if sent < 0 {
        return Err(fail(Step::SendListener));
    }
    Ok(())
}

/// Sends `fd` over the Unix socket `channel` in one `SCM_RIGHTS` message.
/// Returns what `sendmsg` returned (negative on failure).
///
/// SAFETY (for the callers): only `sendmsg` on buffers of this frame.
unsafe fn send_fd(channel: libc::c_int, fd: libc::c_int) -> isize {
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = [0u64; 4];
    let mut msg: libc::msghdr = std::mem::zeroed();
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = libc::CMSG_SPACE(std::mem::size_of::<libc::c_int>() as u32) as usize;
    let cmsg = libc::CMSG_FIRSTHDR(&msg);
    if cmsg.is_null() {
        return -1;
    }
    (*cmsg).cmsg_level = libc::SOL_SOCKET;
    (*cmsg).cmsg_type = libc::SCM_RIGHTS;
    (*cmsg).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<libc::c_int>() as u32) as usize;
    std::ptr::write_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>(), fd);
    libc::sendmsg(channel, &msg, libc::MSG_NOSIGNAL)
}
