//! Resolving a sandbox before anything is forked: which paths are mounted
//! (and how), the command's absolute path, the environment, the Landlock
//! rules and the seccomp filters.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Component, Path, PathBuf};

use crate::cgroup::PidsCgroup;
use crate::child::{
    self, Op, Setup, MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY,
};
use crate::landlock::{Access, Rules};
use crate::watch::{Attempt, Watch};
use crate::{
    seccomp, support, Isolation, Network, SandboxError, SandboxSpec, PROXY_PORT, SANDBOX_HOME,
};

/// System directories mounted read-only (a symbolic link among them, as in
/// merged-`/usr` systems, is recreated as the same link).
const SYSTEM: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// Files and directories of `/etc` a program may need to start, find
/// libraries and certificates, and name users and time zones. Nothing
/// secret: no `shadow`, no `ssl/private`.
const ETC: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf",
    "/etc/ca-certificates",
    "/etc/pki/tls/certs",
    "/etc/pki/ca-trust",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/hosts",
    "/etc/host.conf",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/mime.types",
    "/etc/gitconfig",
    "/etc/os-release",
];

/// Files of the host a server has no business opening. Each (and each of
/// [`HOME_SECRETS`] and Warden's own files) that no mount shows is a
/// tripwire inside the sandbox: an empty read-only directory that Warden
/// watches. Opening it succeeds (reading then fails, `EISDIR`), so the
/// attempt is seen and audited, not only refused.
const HOST_SECRETS: &[&str] = &[
    "/etc/shadow",
    "/etc/gshadow",
    "/etc/sudoers",
    "/etc/ssh/ssh_host_rsa_key",
    "/etc/ssh/ssh_host_ecdsa_key",
    "/etc/ssh/ssh_host_ed25519_key",
    "/root/.ssh/id_rsa",
    "/root/.ssh/id_ecdsa",
    "/root/.ssh/id_ed25519",
    "/root/.aws/credentials",
    "/root/.netrc",
    "/root/.git-credentials",
    "/root/.docker/config.json",
    "/root/.kube/config",
];

/// The same, under the `HOME` Warden runs with.
const HOME_SECRETS: &[&str] = &[
    ".ssh/id_rsa",
    ".ssh/id_ecdsa",
    ".ssh/id_ed25519",
    ".aws/credentials",
    ".netrc",
    ".git-credentials",
    ".pgpass",
    ".docker/config.json",
    ".kube/config",
    ".config/gcloud/application_default_credentials.json",
];

/// At most this many tripwires per sandbox (files of a protected
/// directory beyond it are protected all the same, only not watched).
const MAX_TRIPWIRES: usize = 128;

/// Device nodes bound into the sandbox's `/dev`.
const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// Where the new root is assembled (the first that exists and is not above
/// a mounted path, so mounting there hides nothing still to be bound).
const STAGING: &[&str] = &["/mnt", "/media", "/srv", "/opt", "/run", "/var/tmp", "/tmp"];

/// How a path is mounted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Mode {
    Read,
    Write,
}

#[derive(Debug, Clone)]
struct Mount {
    /// The path as given (mounted at the same path inside).
    path: PathBuf,
    mode: Mode,
    is_dir: bool,
}

/// What a sandboxed server can read, write and reach (`warden check`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    pub isolation: Isolation,
    pub read: Vec<PathBuf>,
    pub write: Vec<PathBuf>,
    pub network: Network,
    /// What could not be enforced on this host (for the operator's log).
    pub warnings: Vec<String>,
}

/// The tripwires of one sandbox: the decoys on the host and an inotify
/// instance watching each decoy for opens.
#[derive(Debug)]
pub struct Tripwires {
    decoys: Decoys,
    inotify: inotify::Inotify,
    paths: std::collections::HashMap<inotify::WatchDescriptor, PathBuf>,
}

/// The decoys' directory on the host: keep it while the sandbox runs.
#[derive(Debug)]
pub struct Decoys {
    _dir: tempfile::TempDir,
}

impl Tripwires {
    /// The paths (as the server names them) opened since the last call,
    /// every pending event read (the descriptor is non-blocking).
    pub fn opened(&mut self) -> io::Result<Vec<PathBuf>> {
        let mut buffer = [0u8; 4096];
        let mut out = Vec::new();
        loop {
            match self.inotify.read_events(&mut buffer) {
                Ok(events) => {
                    let mut events = events.peekable();
                    if events.peek().is_none() {
                        return Ok(out);
                    }
                    out.extend(events.filter_map(|e| self.paths.get(&e.wd).cloned()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(out),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
    }

    /// How many paths are watched.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The inotify instance, the path each watch stands for, and the
    /// decoys (to keep while the sandbox runs), for an asynchronous reader.
    pub fn into_parts(
        self,
    ) -> (
        inotify::Inotify,
        std::collections::HashMap<inotify::WatchDescriptor, PathBuf>,
        Decoys,
    ) {
        (self.inotify, self.paths, self.decoys)
    }
}

/// A resolved sandbox for one launch of one command.
#[derive(Debug)]
pub struct Plan {
    program: PathBuf,
    args: Vec<OsString>,
    env: Vec<(String, String)>,
    summary: Summary,
    setup: Setup,
    /// Landlock-only mode: the private `/tmp` and `HOME` on the host.
    private_dir: Option<tempfile::TempDir>,
    proxy: Option<(UnixStream, UnixStream)>,
    cgroup: Option<PidsCgroup>,
    tripwires: Option<Tripwires>,
    /// Warden's and the child's ends of the watch listener's channel.
    watch: Option<(UnixStream, UnixStream)>,
    network: Network,
}

/// What a spawned sandbox leaves to its caller: its private directory
/// (removed on drop) and the egress proxy's listener.
#[derive(Debug)]
pub struct Spawned {
    _private_dir: Option<tempfile::TempDir>,
    _cgroup: Option<PidsCgroup>,
    proxy: Option<UnixStream>,
    tripwires: Option<Tripwires>,
    watch: Option<Watch>,
}

impl Spawned {
    /// Waits until every attempt the sandbox refused has been reported
    /// (call it once the server has exited: it returns when the watcher
    /// has seen the sandbox's last process end).
    pub fn join_watch(&mut self) {
        if let Some(w) = &mut self.watch {
            w.join();
        }
    }

    /// The sandbox's tripwires (namespaces only), to watch while it runs.
    pub fn tripwires(&mut self) -> Option<Tripwires> {
        self.tripwires.take()
    }

    /// The listening socket inside the sandbox's network namespace, sent
    /// by the child before it exec'd (only with [`Network::Proxy`]).
    pub fn proxy_listener(&mut self) -> io::Result<Option<std::net::TcpListener>> {
        let Some(channel) = self.proxy.take() else {
            return Ok(None);
        };
        let listener = std::net::TcpListener::from(receive_fd(&channel)?);
        listener.set_nonblocking(true)?;
        Ok(Some(listener))
    }
}

/// The operator-facing reason a sandboxed `spawn` failed.
pub fn describe_spawn_error(e: &io::Error) -> String {
    child::describe_failure(e)
}

impl Plan {
    /// Resolves `command` (searched in `path_env` when it has no `/`), the
    /// mounts its command line needs and the spec's paths.
    pub fn new(
        spec: &SandboxSpec,
        command: &str,
        args: &[String],
        cwd: Option<&Path>,
        path_env: Option<&OsStr>,
    ) -> Result<Plan, SandboxError> {
        let support = support();
        let isolation = match spec.isolation {
            Isolation::Namespaces if support.user_namespaces => Isolation::Namespaces,
            Isolation::Namespaces => match spec.fallback {
                crate::Fallback::Landlock => Isolation::LandlockOnly,
                crate::Fallback::Refuse => {
                    return Err(SandboxError::Unsupported(
                        "user namespaces are not available to Warden's user \
                         (set `sandbox.fallback: landlock` to run it under Landlock only)"
                            .into(),
                    ))
                }
            },
            Isolation::LandlockOnly => Isolation::LandlockOnly,
        };
        if isolation == Isolation::LandlockOnly && support.landlock_abi == 0 {
            return Err(SandboxError::Unsupported(
                "neither user namespaces nor Landlock are available".into(),
            ));
        }
        let program = find_command(command, path_env)?;
        let (system, mounts) = resolve_mounts(spec, &program, args, cwd, path_env, true)?;

        let cwd_inside: PathBuf =
            cwd.map_or_else(|| PathBuf::from(SANDBOX_HOME), Path::to_path_buf);
        let mut env = vec![("TMPDIR".to_owned(), "/tmp".to_owned())];
        let mut private_dir = None;
        let (uid, gid) = (
            // SAFETY: geteuid cannot fail and touches no memory.
            unsafe { libc::geteuid() },
            // SAFETY: likewise getegid.
            unsafe { libc::getegid() },
        );

        let landlock_abi = support.landlock_abi;
        let mut setup = Setup {
            namespaces: isolation == Isolation::Namespaces,
            uid_map: Vec::new(),
            gid_map: Vec::new(),
            staging: CString::default(),
            ops: Vec::new(),
            cwd: cstring(&cwd_inside)?,
            rlimits: rlimits(spec, isolation),
            landlock: None,
            seccomp: seccomp::filters(isolation == Isolation::LandlockOnly)?,
            proxy_fd: None,
            proxy_port: PROXY_PORT,
            cgroup_procs: None,
            watch: None,
        };
        let mut warnings = Vec::new();
        let mut cgroup = None;
        if isolation == Isolation::Namespaces && uid == 0 {
            // Root's processes are exempt from RLIMIT_NPROC.
            cgroup = PidsCgroup::create(spec.limits.processes);
            setup.cgroup_procs = cgroup.as_ref().and_then(PidsCgroup::procs);
            if cgroup.is_none() {
                warnings.push(
                    "the process limit is not enforced: Warden runs as root and no pids cgroup \
                     could be created"
                        .to_owned(),
                );
            }
        }
        if isolation == Isolation::LandlockOnly {
            warnings.push(
                "user namespaces are not available: Landlock, seccomp and rlimits only (no private \
                 /tmp mount, no PID or network namespace, no process limit)"
                    .to_owned(),
            );
        }
        let mut rules = (landlock_abi > 0)
            .then(|| Rules::new(landlock_abi, isolation == Isolation::LandlockOnly));
        let mut tripwires = None;

        match isolation {
            Isolation::Namespaces => {
                env.push(("HOME".to_owned(), SANDBOX_HOME.to_owned()));
                let inner_uid = if uid == 0 { 1000 } else { uid };
                let inner_gid = if gid == 0 { 1000 } else { gid };
                setup.uid_map = format!("{inner_uid} {uid} 1\n").into_bytes();
                setup.gid_map = format!("{inner_gid} {gid} 1\n").into_bytes();
                let staging = staging_dir(&mounts)?;
                setup.staging = cstring(&staging)?;
                setup.ops = ops(&staging, &system, &mounts, spec.tmp_bytes)?;
                let wires = tripwire_paths(spec, &system, &mounts);
                if !wires.is_empty() {
                    let mounted: Vec<&Path> = system
                        .iter()
                        .chain(&mounts)
                        .map(|m| m.path.as_path())
                        .collect();
                    match arm(&staging, &wires, &mounted, &mut setup.ops) {
                        Ok(t) => tripwires = Some(t),
                        Err(e) => warnings.push(format!(
                            "no tripwires (attempts to open the host's secrets are refused but \
                             not seen): {e}"
                        )),
                    }
                }
                if let Some(rules) = rules.as_mut() {
                    for m in system.iter().chain(&mounts) {
                        let access = match m.mode {
                            Mode::Read => Access::Read,
                            Mode::Write => Access::Write,
                        };
                        rules.allow(&m.path, access, m.is_dir);
                    }
                    rules.allow(Path::new("/tmp"), Access::Write, true);
                    rules.allow(Path::new(SANDBOX_HOME), Access::Write, true);
                    rules.allow(Path::new("/dev/shm"), Access::Write, true);
                    rules.allow(Path::new("/proc"), Access::Read, true);
                    rules.allow(Path::new("/dev"), Access::Read, true);
                    for dev in DEVICES {
                        rules.allow(Path::new(dev), Access::Device, false);
                    }
                    // Opening a tripwire must succeed to be seen.
                    for p in tripwires.iter().flat_map(|t| t.paths.values()) {
                        rules.allow(p, Access::Read, true);
                    }
                }
            }
            Isolation::LandlockOnly => {
                let Some(rules) = rules.as_mut() else {
                    return Err(SandboxError::Unsupported(
                        "Landlock is not available".into(),
                    ));
                };
                let dir = tempfile::Builder::new()
                    .prefix("warden-sandbox-")
                    .tempdir()?;
                let home = dir.path().join("home");
                let tmp = dir.path().join("tmp");
                std::fs::create_dir(&home)?;
                std::fs::create_dir(&tmp)?;
                env = vec![
                    ("TMPDIR".to_owned(), tmp.display().to_string()),
                    ("HOME".to_owned(), home.display().to_string()),
                ];
                if cwd.is_none() {
                    setup.cwd = cstring(&home)?;
                }
                for m in system.iter().chain(&mounts) {
                    let access = match m.mode {
                        Mode::Read => Access::Read,
                        Mode::Write => Access::Write,
                    };
                    rules.allow(&m.path, access, m.is_dir);
                }
                rules.allow(dir.path(), Access::Write, true);
                rules.allow(Path::new("/proc/self"), Access::Read, true);
                for dev in DEVICES {
                    rules.allow(Path::new(dev), Access::Device, false);
                }
                private_dir = Some(dir);
            }
        }
        setup.landlock = rules;

        let mut proxy = None;
        if spec.network == Network::Proxy {
            if isolation != Isolation::Namespaces {
                return Err(SandboxError::Unsupported(
                    "the egress proxy needs network namespaces".into(),
                ));
            }
            let (ours, theirs) = UnixStream::pair()?;
            setup.proxy_fd = Some(std::os::fd::AsRawFd::as_raw_fd(&theirs));
            let url = format!("http://127.0.0.1:{PROXY_PORT}");
            for name in [
                "HTTP_PROXY",
                "HTTPS_PROXY",
                "http_proxy",
                "https_proxy",
                "ALL_PROXY",
                "all_proxy",
            ] {
                env.push((name.to_owned(), url.clone()));
            }
            env.push(("NO_PROXY".to_owned(), String::new()));
            env.push(("no_proxy".to_owned(), String::new()));
            proxy = Some((ours, theirs));
        }

        // What the sandbox refuses is seen through the watch filter
        // (namespaces only: in Landlock-only mode network sockets cannot
        // even be created, and the host's mounts are writable; and only on
        // kernels whose notifications can let a call go on, else a watched
        // call would wait for an answer that cannot be given).
        let mut watch = None;
        if isolation == Isolation::Namespaces && !support.watch {
            warnings.push(
                "this kernel (before 5.6) cannot report what the sandbox refuses: \
                 refused writes, connects and forks are not audited"
                    .to_owned(),
            );
        }
        if isolation == Isolation::Namespaces && support.watch {
            let (ours, theirs) = UnixStream::pair()?;
            setup.watch = Some((
                std::os::fd::AsRawFd::as_raw_fd(&theirs),
                seccomp::watch_filter(),
            ));
            watch = Some((ours, theirs));
        }

        let summary = summary(isolation, &system, &mounts, spec.network, warnings);
        Ok(Plan {
            program,
            args: args.iter().map(OsString::from).collect(),
            env,
            summary,
            setup,
            private_dir,
            proxy,
            cgroup,
            tripwires,
            watch,
            network: spec.network,
        })
    }

    /// What a server would be able to read, write and reach, without
    /// creating anything (`warden check`).
    pub fn summarize(
        spec: &SandboxSpec,
        command: &str,
        args: &[String],
        cwd: Option<&Path>,
        path_env: Option<&OsStr>,
    ) -> Result<Summary, SandboxError> {
        let program = find_command(command, path_env)?;
        let (system, mounts) = resolve_mounts(spec, &program, args, cwd, path_env, false)?;
        let support = support();
        let isolation = if spec.isolation == Isolation::Namespaces && support.user_namespaces {
            Isolation::Namespaces
        } else {
            Isolation::LandlockOnly
        };
        Ok(summary(
            isolation,
            &system,
            &mounts,
            spec.network,
            Vec::new(),
        ))
    }

    /// The command's absolute path.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// Variables the sandbox sets in the server's environment (`HOME`,
    /// `TMPDIR`, the proxy variables), to be applied after the others.
    pub fn env(&self) -> &[(String, String)] {
        &self.env
    }

    /// What the server can read, write and reach.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The command, ready for its environment and standard streams, and
    /// what must be kept while it runs. Spawn it once.
    ///
    /// `report` is told what the sandbox refuses the server (namespaces
    /// only; see [`Attempt`]): writes where nothing is writable, direct
    /// network connects, forks past the process limit. It is called from
    /// the watcher's thread, once per distinct attempt, until the sandbox's
    /// last process ends or [`Spawned`] is dropped.
    pub fn command(
        self,
        report: impl FnMut(Attempt) + Send + 'static,
    ) -> io::Result<(std::process::Command, Spawned)> {
        let Plan {
            program,
            args,
            env: _,
            summary: _,
            setup,
            private_dir,
            proxy,
            cgroup,
            tripwires,
            watch,
            network,
        } = self;
        let mut cmd = std::process::Command::new(&program);
        cmd.args(&args);
        let (ours, theirs) = match proxy {
            Some((o, t)) => (Some(o), Some(t)),
            None => (None, None),
        };
        // The watcher waits for the child's listener from now on: the
        // child sends it before it execs, and its watched calls wait for
        // the watcher.
        let (watch, watch_theirs) = match watch {
            Some((ours, theirs)) => {
                let proxy_port = (network == Network::Proxy).then_some(crate::PROXY_PORT);
                let pids_events = cgroup.as_ref().map(PidsCgroup::events);
                let w = Watch::start(ours, proxy_port, pids_events, Box::new(report))?;
                (Some(w), Some(theirs))
            }
            None => (None, None),
        };
        // SAFETY: `child::enter` is written for exactly this place: it runs
        // in the forked child before exec, uses only async-signal-safe
        // system calls on the prepared `setup` (moved into the closure, so
        // it outlives the fork), and allocates nothing. The child's end of
        // the proxy channel is only borrowed by number: it is closed in the
        // parent after the spawn, when the closure (and `theirs`) drops
        // with the command.
        // The same holds for the child's end of the watch channel.
        unsafe {
            cmd.pre_exec(move || {
                let _keep = (&theirs, &watch_theirs);
                child::enter(&setup)
            });
        }
        Ok((
            cmd,
            Spawned {
                _private_dir: private_dir,
                _cgroup: cgroup,
                proxy: ours,
                tripwires,
                watch,
            },
        ))
    }
}

/// The system mounts and the server's own (normalised), checked against
/// the protected paths. `create`: make missing `write` paths.
fn resolve_mounts(
    spec: &SandboxSpec,
    program: &Path,
    args: &[String],
    cwd: Option<&Path>,
    path_env: Option<&OsStr>,
    create: bool,
) -> Result<(Vec<Mount>, Vec<Mount>), SandboxError> {
    let protected: Vec<PathBuf> = spec
        .protected
        .iter()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .collect();

    let mut mounts: Vec<Mount> = Vec::new();
    // The command, its interpreter and their packages.
    let mut seen = Vec::new();
    add_executable(program, &mut mounts, path_env, &mut seen, 0);
    // Paths named on the command line.
    for arg in args {
        let path = Path::new(arg);
        if !path.is_absolute() {
            continue;
        }
        let Ok(meta) = std::fs::metadata(path) else {
            continue;
        };
        if meta.is_dir() {
            add_path(&mut mounts, path, Mode::Read);
        } else if is_code(path, &meta) {
            add_package(&mut mounts, path);
        } else {
            add_path(&mut mounts, path, Mode::Read);
        }
    }
    if let Some(dir) = cwd {
        add_path(&mut mounts, dir, Mode::Read);
    }
    for path in &spec.read {
        if !path.exists() {
            return Err(SandboxError::Path {
                path: path.clone(),
                reason: "does not exist".into(),
            });
        }
        add_path(&mut mounts, path, Mode::Read);
    }
    for path in &spec.write {
        if create {
            create_writable(path)?;
        }
        add_path(&mut mounts, path, Mode::Write);
    }
    // Nothing mounted may be, or contain, a protected path.
    for m in &mounts {
        exposes(&m.path, &protected)?;
    }
    let system: Vec<Mount> = SYSTEM
        .iter()
        .chain(ETC)
        .map(Path::new)
        .filter(|p| p.symlink_metadata().is_ok())
        .map(|p| Mount {
            path: p.to_path_buf(),
            mode: Mode::Read,
            is_dir: p.is_dir(),
        })
        .collect();
    for m in &system {
        exposes(&m.path, &protected)?;
    }
    Ok((system, normalise(mounts)))
}

fn summary(
    isolation: Isolation,
    system: &[Mount],
    mounts: &[Mount],
    network: Network,
    warnings: Vec<String>,
) -> Summary {
    Summary {
        isolation,
        read: system
            .iter()
            .chain(mounts)
            .filter(|m| m.mode == Mode::Read)
            .map(|m| m.path.clone())
            .collect(),
        write: mounts
            .iter()
            .filter(|m| m.mode == Mode::Write)
            .map(|m| m.path.clone())
            .collect(),
        network,
        warnings,
    }
}

fn cstring(path: &Path) -> Result<CString, SandboxError> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| SandboxError::Path {
        path: path.to_path_buf(),
        reason: "contains a NUL byte".into(),
    })
}

/// The executable for `command`: itself when it has a `/`, else the first
/// executable file of that name in `PATH`.
fn find_command(command: &str, path_env: Option<&OsStr>) -> Result<PathBuf, SandboxError> {
    let executable = |p: &Path| {
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if command.contains('/') {
        let p = std::path::absolute(command)
            .map_err(|_| SandboxError::CommandNotFound(command.to_owned()))?;
        return if executable(&p) {
            Ok(p)
        } else {
            Err(SandboxError::CommandNotFound(command.to_owned()))
        };
    }
    let path = path_env.unwrap_or(OsStr::new("/usr/local/bin:/usr/bin:/bin"));
    std::env::split_paths(path)
        .map(|dir| dir.join(command))
        .find(|p| p.is_absolute() && executable(p))
        .ok_or_else(|| SandboxError::CommandNotFound(command.to_owned()))
}

/// Source that an interpreter runs (its package is mounted), as opposed
/// to data named on the command line (mounted alone).
fn is_code(path: &Path, meta: &std::fs::Metadata) -> bool {
    let ext = path.extension().and_then(OsStr::to_str).unwrap_or("");
    matches!(
        ext,
        "js" | "mjs" | "cjs" | "ts" | "py" | "pyz" | "rb" | "pl" | "sh" | "jar"
    ) || meta.permissions().mode() & 0o111 != 0
}

/// The directory a program's code lives in: the virtual environment (a
/// directory with `pyvenv.cfg`), the directory holding the outermost
/// `node_modules`, the prefix of a `bin` or `shims` directory, else its
/// directory.
fn package_root(file: &Path) -> PathBuf {
    let dir = file.parent().unwrap_or(Path::new("/"));
    if let Some(venv) = dir.ancestors().find(|a| a.join("pyvenv.cfg").is_file()) {
        return venv.to_path_buf();
    }
    let mut prefix = PathBuf::new();
    for c in file.components() {
        if c == Component::Normal(OsStr::new("node_modules")) {
            return prefix;
        }
        prefix.push(c);
    }
    // `bin/`, and the `shims/` of version managers (pyenv, rbenv, asdf),
    // whose scripts run the manager from the same prefix.
    if dir.file_name() == Some(OsStr::new("bin")) || dir.file_name() == Some(OsStr::new("shims")) {
        if let Some(p) = dir.parent() {
            return p.to_path_buf();
        }
    }
    dir.to_path_buf()
}

fn add_path(mounts: &mut Vec<Mount>, path: &Path, mode: Mode) {
    let is_dir = path.is_dir();
    for p in [Some(path.to_path_buf()), std::fs::canonicalize(path).ok()]
        .into_iter()
        .flatten()
    {
        mounts.push(Mount {
            path: p,
            mode,
            is_dir,
        });
    }
}

fn add_package(mounts: &mut Vec<Mount>, file: &Path) {
    for p in [Some(file.to_path_buf()), std::fs::canonicalize(file).ok()]
        .into_iter()
        .flatten()
    {
        let root = package_root(&p);
        if root.parent().is_some() && !is_system(&root) {
            add_path(mounts, &root, Mode::Read);
        }
    }
}

fn is_system(path: &Path) -> bool {
    SYSTEM.iter().any(|s| path.starts_with(s))
}

/// The executable's package, its interpreter (`#!`) and, for a virtual
/// environment, the Python it was made from.
fn add_executable(
    file: &Path,
    mounts: &mut Vec<Mount>,
    path_env: Option<&OsStr>,
    seen: &mut Vec<PathBuf>,
    depth: u8,
) {
    if depth > 4 || seen.iter().any(|s| s == file) {
        return;
    }
    seen.push(file.to_path_buf());
    add_package(mounts, file);
    for p in [Some(file.to_path_buf()), std::fs::canonicalize(file).ok()]
        .into_iter()
        .flatten()
    {
        let root = package_root(&p);
        if let Ok(cfg) = std::fs::read_to_string(root.join("pyvenv.cfg")) {
            for line in cfg.lines() {
                if let Some((k, v)) = line.split_once('=') {
                    if k.trim() == "home" {
                        let home = PathBuf::from(v.trim());
                        if let Some(prefix) = home.parent() {
                            if prefix.parent().is_some() && !is_system(prefix) {
                                add_path(mounts, prefix, Mode::Read);
                            }
                        }
                    }
                }
            }
        }
    }
    if let Some((interpreter, arg)) = shebang(file) {
        let interpreter = if interpreter.ends_with("/env") {
            arg.and_then(|a| find_command(&a, path_env).ok())
        } else {
            Some(PathBuf::from(interpreter))
        };
        if let Some(i) = interpreter {
            add_executable(&i, mounts, path_env, seen, depth + 1);
        }
    }
    if let Ok(real) = std::fs::canonicalize(file) {
        if real != file {
            add_executable(&real, mounts, path_env, seen, depth + 1);
        }
    }
}

/// The interpreter of a `#!` script and its first argument.
fn shebang(file: &Path) -> Option<(String, Option<String>)> {
    use std::io::Read;
    let mut head = [0u8; 256];
    let n = std::fs::File::open(file).ok()?.read(&mut head).ok()?;
    let head = head.get(..n)?;
    let rest = head.strip_prefix(b"#!")?;
    let line = rest.split(|&b| b == b'\n').next()?;
    let line = std::str::from_utf8(line).ok()?.trim();
    let mut words = line.split_whitespace();
    let interpreter = words.next()?.to_owned();
    Some((interpreter, words.next().map(str::to_owned)))
}

fn create_writable(path: &Path) -> Result<(), SandboxError> {
    if path.exists() {
        return Ok(());
    }
    let failed = |e: io::Error| SandboxError::Path {
        path: path.to_path_buf(),
        reason: format!("cannot create it: {e}"),
    };
    if path.as_os_str().as_bytes().ends_with(b"/") {
        std::fs::create_dir_all(path).map_err(failed)
    } else {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(failed)?;
        }
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map(drop)
            .map_err(failed)
    }
}

/// Refuses a mount that is, or contains, a protected path.
fn exposes(path: &Path, protected: &[PathBuf]) -> Result<(), SandboxError> {
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if real.parent().is_none() {
        return Err(SandboxError::Exposes {
            path: path.to_path_buf(),
            protected: real,
        });
    }
    for p in protected {
        if p.starts_with(&real) || p.starts_with(path) {
            return Err(SandboxError::Exposes {
                path: path.to_path_buf(),
                protected: p.clone(),
            });
        }
    }
    Ok(())
}

/// Where tripwires go: the host's secrets and Warden's own files (a
/// protected file, and the files directly in a protected directory), each
/// where no mount shows anything (so a tripwire never hides a path the
/// server was given), deduplicated and bounded.
fn tripwire_paths(spec: &SandboxSpec, system: &[Mount], mounts: &[Mount]) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = HOST_SECRETS.iter().map(PathBuf::from).collect();
    if let Some(home) = std::env::var_os("HOME").map(PathBuf::from) {
        if home.is_absolute() && home.parent().is_some() {
            out.extend(HOME_SECRETS.iter().map(|s| home.join(s)));
        }
    }
    for p in &spec.protected {
        let mut add = |p: &Path| {
            out.push(p.to_path_buf());
            if let Ok(real) = std::fs::canonicalize(p) {
                out.push(real);
            }
        };
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => {
                for entry in std::fs::read_dir(p)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .take(64)
                {
                    if entry.file_type().is_ok_and(|t| t.is_file()) {
                        add(&entry.path());
                    }
                }
            }
            // A file, or a path not made yet (watched all the same).
            _ => add(p),
        }
    }
    let shown = |p: &Path| {
        system.iter().chain(mounts).any(|m| p.starts_with(&m.path))
            || ["/proc", "/dev"].iter().any(|d| p.starts_with(d))
    };
    let mut seen = std::collections::BTreeSet::new();
    out.retain(|p| {
        p.is_absolute()
            && p.parent().is_some()
            && !p.components().any(|c| c == Component::ParentDir)
            && !shown(p)
            && seen.insert(p.clone())
    });
    out.truncate(MAX_TRIPWIRES);
    out
}

/// Makes one decoy per tripwire (an empty read-only directory on the
/// host), watches each for opens, and adds the mounts that put them in
/// place: last, over the root already built.
fn arm(
    staging: &Path,
    wires: &[PathBuf],
    mounted: &[&Path],
    ops: &mut Vec<Op>,
) -> Result<Tripwires, SandboxError> {
    let decoys = tempfile::Builder::new()
        .prefix("warden-decoys-")
        .tempdir()?;
    let inotify = inotify::Inotify::init()?;
    let mut paths = std::collections::HashMap::new();
    // A tripwire in the private /tmp or HOME (writable tmpfs) would leave
    // the directories made for it writable: each is made in a small tmpfs
    // of its own (at its first component there), sealed read-only once
    // the decoys are in it — unless that would hide a mount (whose
    // parents are already made there, as they always were).
    let mut covers: Vec<PathBuf> = Vec::new();
    for wire in wires {
        for writable in [Path::new("/tmp"), Path::new(SANDBOX_HOME)] {
            if let Ok(rest) = wire.strip_prefix(writable) {
                let mut parts = rest.components();
                if let (Some(first), Some(_)) = (parts.next(), parts.next()) {
                    let cover = writable.join(first);
                    let hides = mounted.iter().any(|m| m.starts_with(&cover));
                    if !hides && !covers.contains(&cover) {
                        covers.push(cover);
                    }
                }
            }
        }
    }
    for cover in &covers {
        let dst = inside(staging, cover)?;
        ops.push(Op::Dir(dst.clone()));
        ops.push(Op::Tmpfs {
            dst,
            data: CString::new("size=64k,mode=0755").map_err(|_| SandboxError::Path {
                path: cover.clone(),
                reason: "bad tmpfs options".into(),
            })?,
        });
    }
    for (i, wire) in wires.iter().enumerate() {
        let decoy = decoys.path().join(i.to_string());
        std::fs::create_dir(&decoy)?;
        std::fs::set_permissions(&decoy, std::fs::Permissions::from_mode(0o555))?;
        let wd = inotify.watches().add(&decoy, inotify::WatchMask::OPEN)?;
        paths.insert(wd, wire.clone());
        let dst = inside(staging, wire)?;
        ops.push(Op::Dir(dst.clone()));
        ops.push(Op::Bind {
            src: cstring(&decoy)?,
            dst,
            attr: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
        });
    }
    for cover in &covers {
        let dst = inside(staging, cover)?;
        ops.push(Op::Bind {
            src: dst.clone(),
            dst,
            attr: MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
        });
    }
    Ok(Tripwires {
        decoys: Decoys { _dir: decoys },
        inotify,
        paths,
    })
}

/// Sorted parents first; a path under another of the same or a stronger
/// mode is dropped (it is already there).
fn normalise(mut mounts: Vec<Mount>) -> Vec<Mount> {
    mounts.sort_by(|a, b| {
        a.path
            .components()
            .count()
            .cmp(&b.path.components().count())
            .then(b.mode.cmp(&a.mode))
            .then(a.path.cmp(&b.path))
    });
    let mut out: Vec<Mount> = Vec::new();
    for m in mounts {
        let covered = out
            .iter()
            .any(|o| m.path.starts_with(&o.path) && o.mode >= m.mode)
            || is_system(&m.path);
        if !covered {
            out.push(m);
        }
    }
    out
}

fn staging_dir(mounts: &[Mount]) -> Result<PathBuf, SandboxError> {
    STAGING
        .iter()
        .map(Path::new)
        .find(|s| {
            s.symlink_metadata().is_ok_and(|m| m.is_dir())
                && !mounts
                    .iter()
                    .any(|m| m.path.starts_with(s) || s.starts_with(&m.path))
        })
        .map(Path::to_path_buf)
        .ok_or_else(|| {
            SandboxError::Unsupported(format!(
                "no directory to assemble the sandbox's root in (one of {STAGING:?} must exist \
                 outside the mounted paths)"
            ))
        })
}

fn inside(staging: &Path, path: &Path) -> Result<CString, SandboxError> {
    let rel = path.strip_prefix("/").unwrap_or(path);
    cstring(&staging.join(rel))
}

/// The steps that build the root: system paths, `/dev`, `/proc`, the
/// private `/tmp` and `HOME`, then the server's own mounts, parents first.
fn ops(
    staging: &Path,
    system: &[Mount],
    mounts: &[Mount],
    tmp_bytes: u64,
) -> Result<Vec<Op>, SandboxError> {
    let mut ops = Vec::new();
    let ro = MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV;
    let bind = |ops: &mut Vec<Op>, m: &Mount| -> Result<(), SandboxError> {
        let dst = inside(staging, &m.path)?;
        ops.push(if m.is_dir {
            Op::Dir(dst.clone())
        } else {
            Op::File(dst.clone())
        });
        ops.push(Op::Bind {
            src: cstring(&m.path)?,
            dst,
            attr: match m.mode {
                Mode::Read => ro,
                Mode::Write => MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
            },
        });
        Ok(())
    };
    for m in system {
        let link = m
            .path
            .symlink_metadata()
            .is_ok_and(|md| md.file_type().is_symlink());
        if link && SYSTEM.iter().any(|s| Path::new(s) == m.path) {
            let target = std::fs::read_link(&m.path)?;
            ops.push(Op::Symlink {
                target: cstring(&target)?,
                link: inside(staging, &m.path)?,
            });
        } else {
            bind(&mut ops, m)?;
        }
    }
    let tmpfs = |size: u64, mode: &str| {
        CString::new(format!("size={size},mode={mode}")).map_err(|_| SandboxError::Path {
            path: PathBuf::from("/tmp"),
            reason: "bad tmpfs options".into(),
        })
    };
    for (dir, size, mode) in [
        ("/tmp", tmp_bytes, "1777"),
        (SANDBOX_HOME, tmp_bytes, "0700"),
        ("/dev", 64 * 1024, "0755"),
    ] {
        let dst = inside(staging, Path::new(dir))?;
        ops.push(Op::Dir(dst.clone()));
        ops.push(Op::Tmpfs {
            dst,
            data: tmpfs(size, mode)?,
        });
    }
    for dev in DEVICES {
        let dst = inside(staging, Path::new(dev))?;
        ops.push(Op::File(dst.clone()));
        ops.push(Op::Bind {
            src: cstring(Path::new(dev))?,
            dst,
            attr: MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
        });
    }
    for (link, target) in [
        ("/dev/fd", "/proc/self/fd"),
        ("/dev/stdin", "/proc/self/fd/0"),
        ("/dev/stdout", "/proc/self/fd/1"),
        ("/dev/stderr", "/proc/self/fd/2"),
    ] {
        ops.push(Op::Symlink {
            target: cstring(Path::new(target))?,
            link: inside(staging, Path::new(link))?,
        });
    }
    let shm = inside(staging, Path::new("/dev/shm"))?;
    ops.push(Op::Dir(shm.clone()));
    ops.push(Op::Tmpfs {
        dst: shm,
        data: tmpfs(tmp_bytes, "1777")?,
    });
    let proc_dir = inside(staging, Path::new("/proc"))?;
    ops.push(Op::Dir(proc_dir.clone()));
    ops.push(Op::Proc(proc_dir));
    for m in mounts {
        bind(&mut ops, m)?;
    }
    Ok(ops)
}

/// The limits to set, as (resource, soft, hard); never above the hard
/// limit Warden itself runs under (a process cannot raise it).
fn rlimits(spec: &SandboxSpec, isolation: Isolation) -> Vec<(libc::__rlimit_resource_t, u64, u64)> {
    let l = &spec.limits;
    let cpu = l.cpu.as_secs().max(1);
    let mut wanted = vec![
        // SIGXCPU at the limit, SIGKILL a second later if it is handled.
        (libc::RLIMIT_CPU, cpu, cpu + 1),
        (libc::RLIMIT_DATA, l.memory_bytes, l.memory_bytes),
        (libc::RLIMIT_NOFILE, l.open_files, l.open_files),
        (libc::RLIMIT_FSIZE, l.file_size_bytes, l.file_size_bytes),
        (libc::RLIMIT_CORE, 0, 0),
    ];
    // Without a user namespace of its own the process count is that of
    // Warden's whole user: not a limit on the server.
    if isolation == Isolation::Namespaces {
        wanted.push((libc::RLIMIT_NPROC, l.processes, l.processes));
    }
    wanted
        .into_iter()
        .map(|(resource, soft, hard)| {
            let mut current = libc::rlimit {
                rlim_cur: 0,
                rlim_max: libc::RLIM_INFINITY,
            };
            // SAFETY: getrlimit writes one rlimit into `current`, which lives
            // on this frame.
            if unsafe { libc::getrlimit(resource, &mut current) } == 0 {
                let ceiling = current.rlim_max;
                (resource, soft.min(ceiling), hard.min(ceiling))
            } else {
                (resource, soft, hard)
            }
        })
        .collect()
}

/// Receives the one descriptor the child sent (already in the socket's
/// buffer: the child sends it before it execs, and `spawn` returns after).
pub(crate) fn receive_fd(channel: &UnixStream) -> io::Result<std::os::fd::OwnedFd> {
    use std::os::fd::{AsRawFd, FromRawFd};
    let mut byte = [0u8; 1];
    let mut iov = libc::iovec {
        iov_base: byte.as_mut_ptr().cast(),
        iov_len: 1,
    };
    let mut control = [0u64; 4];
    // SAFETY: msghdr is plain data; zeroed is a valid empty header, filled
    // below with pointers to this frame's buffers, which outlive recvmsg.
    let mut msg: libc::msghdr = unsafe { std::mem::zeroed() };
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = std::mem::size_of_val(&control);
    // SAFETY: `msg` describes buffers valid for the call; MSG_DONTWAIT
    // never blocks.
    let n = unsafe {
        libc::recvmsg(
            channel.as_raw_fd(),
            &mut msg,
            libc::MSG_DONTWAIT | libc::MSG_CMSG_CLOEXEC,
        )
    };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the kernel filled `msg`'s control buffer; CMSG_FIRSTHDR and
    // CMSG_DATA only compute addresses inside it and are checked for null.
    unsafe {
        let cmsg = libc::CMSG_FIRSTHDR(&msg);
        if cmsg.is_null()
            || (*cmsg).cmsg_level != libc::SOL_SOCKET
            || (*cmsg).cmsg_type != libc::SCM_RIGHTS
        {
            return Err(io::Error::other("the sandbox sent no descriptor"));
        }
        let fd = std::ptr::read_unaligned(libc::CMSG_DATA(cmsg).cast::<libc::c_int>());
        // The descriptor is new to this process and owned by nothing else.
        Ok(std::os::fd::OwnedFd::from_raw_fd(fd))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_roots() {
        assert_eq!(
            package_root(Path::new("/a/b/node_modules/@x/y/dist/index.js")),
            Path::new("/a/b")
        );
        assert_eq!(
            package_root(Path::new("/opt/tool/bin/tool")),
            Path::new("/opt/tool")
        );
        assert_eq!(
            package_root(Path::new("/srv/x/server.py")),
            Path::new("/srv/x")
        );
    }

    #[test]
    fn a_mount_above_a_protected_path_is_refused() {
        let protected = vec![PathBuf::from("/srv/warden/keys")];
        assert!(exposes(Path::new("/srv"), &protected).is_err());
        assert!(exposes(Path::new("/srv/warden/keys"), &protected).is_err());
        assert!(exposes(Path::new("/srv/other"), &protected).is_ok());
        assert!(exposes(Path::new("/srv/warden/keys2"), &protected).is_ok());
    }

    #[test]
    fn nested_mounts_are_dropped_unless_they_widen() {
        let m = |p: &str, mode| Mount {
            path: PathBuf::from(p),
            mode,
            is_dir: true,
        };
        let out = normalise(vec![
            m("/a/b/c", Mode::Read),
            m("/a/b", Mode::Read),
            m("/a/b/w", Mode::Write),
            m("/usr/lib/x", Mode::Read),
        ]);
        let paths: Vec<_> = out.iter().map(|m| m.path.display().to_string()).collect();
        assert_eq!(paths, ["/a/b", "/a/b/w"]);
    }
}
