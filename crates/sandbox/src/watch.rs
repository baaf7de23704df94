//! The watcher: what the sandbox refuses a server, seen as it happens, so
//! the attempt is audited and not only stopped.
//!
//! The mounts, the empty network namespace and the process limit refuse
//! without telling anyone. The server's last seccomp filter (see
//! [`crate::seccomp::watch_filter`]) stops `connect` and the calls that
//! write a file or a name until Warden has looked at them through the
//! filter's notification listener; the watcher reads their arguments from
//! the server's memory, decides whether the sandbox refuses what they ask,
//! reports it if so, and always answers "continue". The kernel then does
//! what it would have done without the filter: **enforcement stays with
//! the namespaces and mounts**; the watcher only sees. A server that
//! changes the arguments between the watcher's read and the kernel's (a
//! racing thread) can hide an attempt from the audit, never make one
//! succeed.
//!
//! Forks refused by the pids cgroup's limit are read from its
//! `pids.events` (the cgroup exists where Warden runs as root; an ordinary
//! user's sandbox is held by `RLIMIT_NPROC`, which counts nothing).

use std::collections::HashSet;
use std::ffi::OsStr;
use std::fs::File;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::FileExt;
use std::os::unix::net::UnixStream;
use std::path::{Component, Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;

use crate::seccomp::{Watched, WATCHED_PATHS};

/// Something a sandboxed server tried that its sandbox refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Attempt {
    /// Wrote (opened for writing, created, removed, renamed onto) a path
    /// that is read-only in its sandbox, or that the sandbox hides (a
    /// directory of the host that is not mounted).
    Write { path: PathBuf },
    /// Connected to a network address directly (not through Warden's
    /// egress proxy).
    Connect { address: SocketAddr },
    /// Forks refused by the process limit, counted when first seen.
    ProcessLimit { refused: u64 },
}

impl Attempt {
    /// A short code for records: `write`, `connect`, `process_limit`.
    pub fn kind(&self) -> &'static str {
        match self {
            Attempt::Write { .. } => "write",
            Attempt::Connect { .. } => "connect",
            Attempt::ProcessLimit { .. } => "process_limit",
        }
    }

    /// What was tried: the path, the address, or the number of refused
    /// forks (the path is the server's bytes, lossily decoded).
    pub fn target(&self) -> String {
        match self {
            Attempt::Write { path } => path.to_string_lossy().into_owned(),
            Attempt::Connect { address } => address.to_string(),
            Attempt::ProcessLimit { refused } => format!("{refused} forks refused"),
        }
    }
}

/// A running watcher. Dropping it stops the watch (within a quarter of a
/// second); it also ends on its own with the sandbox's last process.
#[derive(Debug)]
pub struct Watch {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Watch {
    /// Waits until the watcher has seen the sandbox's last process end
    /// (call it once that process has exited), so every attempt has been
    /// reported.
    pub(crate) fn join(&mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        // Not joined: the thread notices within one poll interval.
        drop(self.thread.take());
    }
}

/// At most this many distinct attempts are reported per sandbox: a server
/// looping over fresh paths is one flood, not an unbounded audit trail.
const MAX_REPORTS: usize = 256;

/// How long one wait for a notification lasts (the stop flag and the
/// pids cgroup are looked at between two).
const POLL_MS: libc::c_int = 250;

type Report = Box<dyn FnMut(Attempt) + Send>;

impl Watch {
    /// Starts the watcher's thread: it waits for the listener the child
    /// sends over `channel` (before it execs), then for notifications.
    pub(crate) fn start(
        channel: UnixStream,
        proxy_port: Option<u16>,
        pids_events: Option<PathBuf>,
        report: Report,
    ) -> io::Result<Watch> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = std::thread::Builder::new()
            .name("sandbox-watch".into())
            .spawn(move || {
                let Some(listener) = wait_for_listener(&channel, &flag) else {
                    return;
                };
                drop(channel);
                let mut watcher = Watcher {
                    listener,
                    proxy_port,
                    pids_events,
                    refused_forks: 0,
                    report,
                    seen: HashSet::new(),
                };
                watcher.run(&flag);
            })?;
        Ok(Watch {
            stop,
            thread: Some(thread),
        })
    }
}

/// The listener, once the child has sent it; `None` when the child ended
/// (or never started) first, or the watch was stopped.
fn wait_for_listener(channel: &UnixStream, stop: &AtomicBool) -> Option<OwnedFd> {
    loop {
        if stop.load(Ordering::Relaxed) {
            return None;
        }
        match poll(channel.as_raw_fd()) {
            Ok(revents) if revents & libc::POLLIN != 0 => {
                return crate::plan::receive_fd(channel).ok();
            }
            // The child's end closed without sending: no sandbox to watch.
            Ok(revents) if revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 => {
                return None
            }
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
}

/// Waits up to [`POLL_MS`] for `fd` to be readable; the events seen.
fn poll(fd: libc::c_int) -> io::Result<libc::c_short> {
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: one pollfd on this frame, valid for the call.
    if unsafe { libc::poll(&mut pfd, 1, POLL_MS) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(pfd.revents)
}

struct Watcher {
    listener: OwnedFd,
    proxy_port: Option<u16>,
    pids_events: Option<PathBuf>,
    refused_forks: u64,
    report: Report,
    seen: HashSet<String>,
}

impl Watcher {
    fn run(&mut self, stop: &AtomicBool) {
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let polled = poll(self.listener.as_raw_fd());
            self.check_processes();
            match polled {
                Ok(revents) if revents & libc::POLLIN != 0 => self.next(),
                // No process of the sandbox is left.
                Ok(revents) if revents & (libc::POLLHUP | libc::POLLERR | libc::POLLNVAL) != 0 => {
                    return
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => return,
            }
        }
    }

    fn emit(&mut self, attempt: Attempt) {
        if self.seen.len() >= MAX_REPORTS {
            return;
        }
        if self
            .seen
            .insert(format!("{}\0{}", attempt.kind(), attempt.target()))
        {
            (self.report)(attempt);
        }
    }

    /// Reports forks the pids cgroup refused since the last look.
    fn check_processes(&mut self) {
        let Some(path) = &self.pids_events else {
            return;
        };
        let Ok(text) = std::fs::read_to_string(path) else {
            return;
        };
        let refused = text
            .lines()
            .find_map(|l| l.strip_prefix("max "))
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0);
        if refused > self.refused_forks {
            self.refused_forks = refused;
            self.emit(Attempt::ProcessLimit { refused });
        }
    }

    /// Receives one notification, answers "continue", reports what it saw.
    fn next(&mut self) {
        let fd = self.listener.as_raw_fd();
        // SAFETY: seccomp_notif is plain data; the kernel requires it zeroed.
        let mut req: libc::seccomp_notif = unsafe { std::mem::zeroed() };
        // SAFETY: `req` is a seccomp_notif on this frame, as the ioctl expects.
        if unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_RECV, &mut req) } < 0 {
            // ENOENT: the caller died (or was interrupted) meanwhile.
            return;
        }
        let attempt = self.judge(&req);
        let resp = libc::seccomp_notif_resp {
            id: req.id,
            val: 0,
            error: 0,
            flags: libc::SECCOMP_USER_NOTIF_FLAG_CONTINUE as u32,
        };
        // SAFETY: `resp` is a seccomp_notif_resp on this frame. A failure
        // (ENOENT) means the caller is gone; nothing to answer.
        unsafe { libc::ioctl(fd, libc::SECCOMP_IOCTL_NOTIF_SEND, &resp) };
        if let Some(a) = attempt {
            self.emit(a);
        }
    }

    /// Whether notification `id` still stands for the thread that raised
    /// it (so what was read from `/proc/<tid>` was that thread's).
    fn still_valid(&self, id: u64) -> bool {
        // SAFETY: the ioctl reads one u64 from this frame.
        unsafe {
            libc::ioctl(
                self.listener.as_raw_fd(),
                libc::SECCOMP_IOCTL_NOTIF_ID_VALID,
                &id,
            ) == 0
        }
    }

    fn judge(&self, req: &libc::seccomp_notif) -> Option<Attempt> {
        let nr = libc::c_long::from(req.data.nr);
        let tid = req.pid;
        let args = req.data.args;
        if nr == libc::SYS_connect {
            let len = usize::try_from(args[2]).ok()?.min(128);
            let bytes = read_memory(tid, args[1], len).ok()?;
            if !self.still_valid(req.id) {
                return None;
            }
            let address = socket_address(&bytes)?;
            let to_proxy = self.proxy_port.is_some_and(|p| {
                address.port() == p && canonical_ip(address.ip()) == IpAddr::V4(Ipv4Addr::LOCALHOST)
            });
            return (!to_proxy).then_some(Attempt::Connect { address });
        }
        let watched = WATCHED_PATHS.iter().find(|w| w.nr == nr)?;
        let call = call_of(tid, watched, &args)?;
        let raw = read_c_string(tid, args[watched.path]).ok()?;
        let base = if raw.starts_with(b"/") {
            None
        } else {
            let link = match watched.dirfd.map(|i| args[i] as i32) {
                Some(dirfd) if dirfd != libc::AT_FDCWD => format!("/proc/{tid}/fd/{dirfd}"),
                _ => format!("/proc/{tid}/cwd"),
            };
            Some(std::fs::read_link(link).ok()?)
        };
        let root = File::open(format!("/proc/{tid}/root")).ok()?;
        if !self.still_valid(req.id) {
            return None;
        }
        let path = absolute(base.as_deref(), OsStr::from_bytes(&raw));
        refused_write(&root, &path, call).then_some(Attempt::Write { path })
    }
}

/// What a watched call does to its path.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// An open, with its flags.
    Open(u64),
    Mkdir,
    /// Removes or truncates what is there.
    Change,
    /// Renames something onto the path.
    RenameOnto,
}

fn call_of(tid: u32, watched: &Watched, args: &[u64; 6]) -> Option<Call> {
    let nr = watched.nr;
    if nr == libc::SYS_openat2 {
        // struct open_how { u64 flags; u64 mode; u64 resolve; }
        let how = read_memory(tid, args[2], 8).ok()?;
        return Some(Call::Open(u64::from_ne_bytes(
            how.get(..8)?.try_into().ok()?,
        )));
    }
    #[cfg(target_arch = "x86_64")]
    match nr {
        libc::SYS_creat => {
            return Some(Call::Open(
                (libc::O_CREAT | libc::O_WRONLY | libc::O_TRUNC) as u64,
            ))
        }
        libc::SYS_mkdir => return Some(Call::Mkdir),
        libc::SYS_rename => return Some(Call::RenameOnto),
        _ => {}
    }
    if let Some(i) = watched.flags {
        return Some(Call::Open(args[i]));
    }
    Some(match nr {
        libc::SYS_mkdirat => Call::Mkdir,
        libc::SYS_renameat | libc::SYS_renameat2 => Call::RenameOnto,
        _ => Call::Change,
    })
}

/// Whether the call writes something its sandbox refuses: the path (or,
/// when it does not exist, the directory it would be made in) is on a
/// read-only mount, or the sandbox hides that directory (missing inside,
/// present on the host: a host path the server reached for).
fn refused_write(root: &File, path: &Path, call: Call) -> bool {
    const WRITE: u64 = (libc::O_WRONLY | libc::O_RDWR | libc::O_TRUNC) as u64;
    let existing = open_in_root(root, path).ok();
    let writes = match (call, existing.is_some()) {
        // An open writes an existing file only with write access or
        // truncation, and a missing one only when it creates it.
        (Call::Open(flags), true) => flags & WRITE != 0,
        (Call::Open(flags), false) => flags & libc::O_CREAT as u64 != 0,
        // `mkdir` of what exists fails with EEXIST, removing what is
        // missing with ENOENT: nothing is written either way.
        (Call::Mkdir, exists) => !exists,
        (Call::Change, exists) => exists,
        (Call::RenameOnto, _) => true,
    };
    if !writes {
        return false;
    }
    if let Some(fd) = &existing {
        // Device nodes, pipes and sockets are written through, whatever
        // the mount says.
        return is_file_or_dir(fd) && read_only(fd);
    }
    let Some(parent) = path.parent() else {
        return false;
    };
    if let Ok(fd) = open_in_root(root, parent) {
        return read_only(&fd);
    }
    // The directory to write in is missing inside.
    let mut above = parent.parent();
    while let Some(d) = above {
        if let Ok(fd) = open_in_root(root, d) {
            return read_only(&fd) || parent.is_dir();
        }
        above = d.parent();
    }
    false
}

/// Opens `path` (absolute, as the server sees it) as an `O_PATH`
/// descriptor, resolved inside the server's root: symbolic links and `..`
/// cannot leave it, and the mounts are the server's.
fn open_in_root(root: &File, path: &Path) -> io::Result<OwnedFd> {
    let c = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| io::Error::from(io::ErrorKind::InvalidInput))?;
    // SAFETY: open_how is plain data; zeroed, then its fields set.
    let mut how: libc::open_how = unsafe { std::mem::zeroed() };
    how.flags = (libc::O_PATH | libc::O_CLOEXEC) as u64;
    how.resolve = libc::RESOLVE_IN_ROOT;
    // SAFETY: a NUL-terminated path and an open_how on this frame; the
    // kernel copies both.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_openat2,
            root.as_raw_fd(),
            c.as_ptr(),
            &how as *const libc::open_how,
            std::mem::size_of::<libc::open_how>(),
        )
    };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor this process owns alone.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as libc::c_int) })
}

fn read_only(fd: &OwnedFd) -> bool {
    // SAFETY: statvfs is plain data, filled by the call.
    let mut st: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and a statvfs on this frame.
    unsafe { libc::fstatvfs(fd.as_raw_fd(), &mut st) == 0 && st.f_flag & libc::ST_RDONLY != 0 }
}

fn is_file_or_dir(fd: &OwnedFd) -> bool {
    // SAFETY: stat is plain data, filled by the call.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: a valid descriptor and a stat on this frame.
    if unsafe { libc::fstat(fd.as_raw_fd(), &mut st) } != 0 {
        return false;
    }
    matches!(
        st.st_mode & libc::S_IFMT,
        libc::S_IFREG | libc::S_IFDIR | libc::S_IFLNK
    )
}

/// `path` made absolute against `base` and cleaned of `.` and `..`
/// lexically (the resolution that counts is the kernel's, in the root).
fn absolute(base: Option<&Path>, path: &OsStr) -> PathBuf {
    let joined = match base {
        Some(b) => b.join(path),
        None => PathBuf::from(path),
    };
    let mut out = PathBuf::from("/");
    for c in joined.components() {
        match c {
            Component::Normal(n) => out.push(n),
            Component::ParentDir => {
                out.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    out
}

/// Reads up to `len` bytes of the thread's memory at `addr`.
fn read_memory(tid: u32, addr: u64, len: usize) -> io::Result<Vec<u8>> {
    let mem = File::open(format!("/proc/{tid}/mem"))?;
    let mut buf = vec![0u8; len];
    let n = mem.read_at(&mut buf, addr)?;
    buf.truncate(n);
    Ok(buf)
}

/// Reads a NUL-terminated string (at most `PATH_MAX` bytes) page by page,
/// so a string that ends just before an unmapped page is still read.
fn read_c_string(tid: u32, addr: u64) -> io::Result<Vec<u8>> {
    const PAGE: u64 = 4096;
    let mem = File::open(format!("/proc/{tid}/mem"))?;
    let mut out = Vec::new();
    let mut at = addr;
    while out.len() < libc::PATH_MAX as usize {
        let chunk = (PAGE - at % PAGE) as usize;
        let mut buf = vec![0u8; chunk];
        let n = mem.read_at(&mut buf, at)?;
        if n == 0 {
            break;
        }
        if let Some(end) = buf[..n].iter().position(|&b| b == 0) {
            out.extend_from_slice(&buf[..end]);
            return Ok(out);
        }
        out.extend_from_slice(&buf[..n]);
        at += n as u64;
    }
    Err(io::Error::from(io::ErrorKind::InvalidData))
}

/// A network address from a `sockaddr` (IPv4 and IPv6 only).
fn socket_address(b: &[u8]) -> Option<SocketAddr> {
    let family = i32::from(u16::from_ne_bytes(b.get(..2)?.try_into().ok()?));
    let port = u16::from_be_bytes(b.get(2..4)?.try_into().ok()?);
    match family {
        libc::AF_INET => {
            let ip: [u8; 4] = b.get(4..8)?.try_into().ok()?;
            Some(SocketAddr::new(IpAddr::V4(Ipv4Addr::from(ip)), port))
        }
        libc::AF_INET6 => {
            let ip: [u8; 16] = b.get(8..24)?.try_into().ok()?;
            Some(SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip)), port))
        }
        _ => None,
    }
}

fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn socket_addresses_of_both_families_are_read_and_others_ignored() {
        let mut v4 = vec![0u8; 16];
        v4[..2].copy_from_slice(&(libc::AF_INET as u16).to_ne_bytes());
        v4[2..4].copy_from_slice(&8080u16.to_be_bytes());
        v4[4..8].copy_from_slice(&[10, 0, 0, 7]);
        assert_eq!(socket_address(&v4), Some("10.0.0.7:8080".parse().unwrap()));
        let mut v6 = vec![0u8; 28];
        v6[..2].copy_from_slice(&(libc::AF_INET6 as u16).to_ne_bytes());
        v6[2..4].copy_from_slice(&443u16.to_be_bytes());
        v6[8..24].copy_from_slice(&Ipv6Addr::LOCALHOST.octets());
        assert_eq!(socket_address(&v6), Some("[::1]:443".parse().unwrap()));
        let mut unix = vec![0u8; 16];
        unix[..2].copy_from_slice(&(libc::AF_UNIX as u16).to_ne_bytes());
        assert_eq!(socket_address(&unix), None);
        assert_eq!(
            socket_address(&v4[..6]),
            None,
            "a short address is no address"
        );
    }

    #[test]
    fn paths_are_made_absolute_and_clean() {
        let p = |b: Option<&str>, s: &str| absolute(b.map(Path::new), OsStr::new(s));
        assert_eq!(p(None, "/etc/../usr/./x"), PathBuf::from("/usr/x"));
        assert_eq!(
            p(Some("/home/sandbox"), "../../../etc/x"),
            PathBuf::from("/etc/x")
        );
        assert_eq!(p(Some("/tmp"), "a/b"), PathBuf::from("/tmp/a/b"));
    }

    #[test]
    fn what_writes_and_what_does_not() {
        // On a writable directory of the host (the host's root standing in
        // for a sandbox's): nothing is refused; the read-only cases are
        // proven in the launch tests, on a real sandbox.
        let dir = tempfile::tempdir().unwrap();
        let root = File::open("/").unwrap();
        let file = dir.path().join("f");
        let create = (libc::O_CREAT | libc::O_WRONLY) as u64;
        assert!(!refused_write(&root, &file, Call::Open(create)));
        std::fs::write(&file, "x").unwrap();
        assert!(!refused_write(&root, &file, Call::Change));
        assert!(!refused_write(&root, &file, Call::Mkdir));
        let missing = dir.path().join("no/such/dir/f");
        assert!(!refused_write(&root, &missing, Call::Change));
        assert!(!refused_write(
            &root,
            &missing,
            Call::Open(libc::O_WRONLY as u64)
        ));
    }
}
