//! Warden's launcher for local (stdio) MCP servers (threat T16).
//!
//! A stdio server runs with nothing of Warden's: [`Plan`] turns a
//! [`SandboxSpec`] and a command line into a `std::process::Command` whose
//! child, between `fork` and `exec`:
//!
//! 1. enters new user, mount, PID, IPC, UTS and network namespaces, mapping
//!    only Warden's own uid and gid (so it works as root and as an ordinary
//!    user, with no setuid helper and no daemon);
//! 2. forks once more so the server is PID 1 of its own PID namespace (the
//!    intermediate process only waits and passes the exit status on; if it
//!    is killed, the server is too);
//! 3. builds a root of its own: a tmpfs holding read-only bind mounts of the
//!    system directories, a few files of `/etc`, the command's package (and
//!    its interpreter's), the paths named on its command line and the
//!    `read:` paths; the `write:` paths writable; a private `/tmp` and
//!    `HOME` (sized tmpfs), a minimal `/dev` and a `/proc` of its own PID
//!    namespace; then `pivot_root`s into it and detaches the old root;
//! 4. sets rlimits (CPU time, data size, processes, open files, file size),
//!    `no_new_privs`, a Landlock ruleset over the same paths (the second
//!    layer; the only filesystem layer where user namespaces are not
//!    available and the operator allowed that fallback), drops every
//!    capability, and installs a seccomp filter denying what an MCP server
//!    never needs (ptrace, mount, kexec, bpf, keyctl, module loading, new
//!    namespaces, io_uring, …).
//!
//! No path Warden protects (its configuration, keys, API keys, audit trail,
//! lock file) may be mounted, nor any directory above one: the plan is
//! refused with [`SandboxError::Exposes`]. Where those files and the
//! host's secrets would be, the root holds tripwires ([`Tripwires`]):
//! empty read-only directories watched with inotify, so opening one is
//! seen (and audited by the caller), while nothing is read.
//!
//! Network: an empty network namespace. With [`Network::Proxy`] the child
//! also brings up loopback, listens on `127.0.0.1:`[`PROXY_PORT`] *inside
//! its namespace* and hands that listening socket to Warden before `exec`
//! ([`Spawned::proxy_listener`]); Warden accepts on it and relays through
//! its egress guard. No relay runs inside the sandbox.
//!
//! This is the only crate of the workspace with `unsafe` code (in
//! `child.rs`, `probe.rs` and [`Plan::command`]); every block says why it
//! is sound.

#![deny(clippy::undocumented_unsafe_blocks)]

mod cgroup;
mod child;
mod landlock;
mod plan;
mod probe;
mod seccomp;
mod watch;

use std::path::PathBuf;
use std::time::Duration;

pub use plan::{describe_spawn_error, Decoys, Plan, Spawned, Summary, Tripwires};
pub use probe::{support, Support};
pub use watch::{Attempt, Watch};

/// The port the egress proxy listens on inside a sandbox's network
/// namespace (`HTTP_PROXY=http://127.0.0.1:3128`).
pub const PROXY_PORT: u16 = 3128;

/// `HOME` inside the sandbox: an empty tmpfs.
pub const SANDBOX_HOME: &str = "/home/sandbox";

/// How one stdio server is confined (resolved from its `sandbox:` settings).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SandboxSpec {
    /// Extra paths mounted read-only.
    pub read: Vec<PathBuf>,
    /// Paths mounted writable. A path that does not exist is created: a
    /// directory when written with a trailing `/`, else an empty file.
    pub write: Vec<PathBuf>,
    /// Warden's own files and directories: never mounted, nor any directory
    /// that contains one.
    pub protected: Vec<PathBuf>,
    pub network: Network,
    pub limits: ResourceLimits,
    /// Size of the private `/tmp` and of `HOME` (each).
    pub tmp_bytes: u64,
    /// What to do when the kernel cannot give user namespaces.
    pub fallback: Fallback,
    /// Which mechanism confines the server.
    pub isolation: Isolation,
}

impl Default for SandboxSpec {
    fn default() -> Self {
        SandboxSpec {
            read: Vec::new(),
            write: Vec::new(),
            protected: Vec::new(),
            network: Network::None,
            limits: ResourceLimits::default(),
            tmp_bytes: 64 * 1024 * 1024,
            fallback: Fallback::Refuse,
            isolation: Isolation::Namespaces,
        }
    }
}

/// What the server may reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Network {
    /// Nothing: an empty network namespace.
    None,
    /// Only Warden's egress proxy (`HTTP_PROXY`/`HTTPS_PROXY` are set).
    Proxy,
}

/// Resource limits (rlimits) of the server and everything it starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResourceLimits {
    /// CPU time over the process's life (`RLIMIT_CPU`; SIGXCPU then SIGKILL).
    pub cpu: Duration,
    /// Heap and other private writable memory (`RLIMIT_DATA`).
    pub memory_bytes: u64,
    /// Processes and threads of the sandbox's user (`RLIMIT_NPROC`; counted
    /// per user namespace, so per sandbox).
    pub processes: u64,
    /// Open file descriptors (`RLIMIT_NOFILE`).
    pub open_files: u64,
    /// Largest file it may write (`RLIMIT_FSIZE`).
    pub file_size_bytes: u64,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        ResourceLimits {
            cpu: Duration::from_secs(600),
            memory_bytes: 4 * 1024 * 1024 * 1024,
            processes: 256,
            open_files: 1024,
            file_size_bytes: 1024 * 1024 * 1024,
        }
    }
}

/// Without user namespaces: refuse to start the server (the default), or
/// confine it with Landlock, seccomp and rlimits only.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    Refuse,
    Landlock,
}

/// The confinement actually used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Isolation {
    /// Namespaces and a root of its own, plus Landlock where the kernel has it.
    Namespaces,
    /// Landlock over the host's filesystem, seccomp (no sockets but Unix
    /// ones) and rlimits; no namespaces. The fallback, also selectable.
    LandlockOnly,
}

/// Why a sandbox could not be planned or started.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The command was not found (or is not executable).
    #[error("command {0:?} not found")]
    CommandNotFound(String),
    /// A mount would expose one of Warden's protected paths.
    #[error("sandbox would expose Warden's {protected} through {path}")]
    Exposes { path: PathBuf, protected: PathBuf },
    /// A configured path is unusable.
    #[error("sandbox path {path}: {reason}")]
    Path { path: PathBuf, reason: String },
    /// The kernel lacks something the sandbox needs.
    #[error("the kernel cannot sandbox this server: {0}")]
    Unsupported(String),
    /// Building the seccomp filter failed.
    #[error("seccomp filter: {0}")]
    Seccomp(String),
    #[error("sandbox setup: {0}")]
    Io(#[from] std::io::Error),
}
