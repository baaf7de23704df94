//! The launcher run for real: shell commands inside the sandbox.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::{Arc, Mutex};

use warden_sandbox::{
    describe_spawn_error, support, Attempt, Isolation, Network, Plan, SandboxError, SandboxSpec,
};

fn path_env() -> Option<std::ffi::OsString> {
    std::env::var_os("PATH")
}

fn run(spec: &SandboxSpec, script: &str) -> Output {
    run_watched(spec, script).0
}

/// Runs `script` and returns, with its output, what the sandbox refused it.
fn run_watched(spec: &SandboxSpec, script: &str) -> (Output, Vec<Attempt>) {
    let plan = Plan::new(
        spec,
        "/bin/sh",
        &["-c".to_owned(), script.to_owned()],
        None,
        path_env().as_deref(),
    )
    .expect("plan");
    let env: Vec<(String, String)> = plan.env().to_vec();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let (mut cmd, mut spawned) = plan
        .command(move |a| sink.lock().unwrap().push(a))
        .expect("command");
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env)
        .stdin(Stdio::null());
    let out = match cmd.output() {
        Ok(o) => o,
        Err(e) => panic!("spawn: {}", describe_spawn_error(&e)),
    };
    spawned.join_watch();
    let attempts = seen.lock().unwrap().clone();
    (out, attempts)
}

fn text(o: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        o.status,
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn modes() -> Vec<Isolation> {
    let s = support();
    let mut m = Vec::new();
    if s.user_namespaces {
        m.push(Isolation::Namespaces);
    } else {
        assert!(
            std::env::var_os("WARDEN_REQUIRE_SANDBOX").is_none(),
            "user namespaces are not available"
        );
    }
    if s.landlock_abi > 0 {
        m.push(Isolation::LandlockOnly);
    }
    m
}

fn spec(isolation: Isolation) -> SandboxSpec {
    SandboxSpec {
        isolation,
        ..SandboxSpec::default()
    }
}

#[test]
fn a_command_runs_and_sees_a_minimal_root() {
    let o = run(
        &spec(Isolation::Namespaces),
        // `/etc/shadow` is a tripwire (an empty directory), never a file.
        "echo hello; id -u; echo $$; ls /; test -f /etc/shadow && echo SHADOW; ls -A $HOME | wc -l",
    );
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", text(&o));
    assert!(out.starts_with("hello\n"), "{}", text(&o));
    assert!(!out.contains("SHADOW"), "{}", text(&o));
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[2],
        "1",
        "the server is PID 1 of its namespace: {}",
        text(&o)
    );
}

#[test]
fn secrets_outside_the_sandbox_are_unreadable_in_every_mode() {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("id_rsa");
    std::fs::write(&secret, "PRIVATE-KEY-7731").unwrap();
    for mode in modes() {
        let o = run(
            &spec(mode),
            &format!(
                "cat {} /etc/shadow /root/.ssh/id_rsa 2>&1; echo done",
                secret.display()
            ),
        );
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("done"), "{mode:?}: {}", text(&o));
        assert!(!out.contains("PRIVATE-KEY-7731"), "{mode:?}: {}", text(&o));
        assert!(!out.contains("root:"), "{mode:?}: {}", text(&o));
    }
}

#[test]
fn only_write_paths_are_writable() {
    let dir = tempfile::tempdir().unwrap();
    let ok = dir.path().join("data.txt");
    let outside = dir.path().join("outside.txt");
    for mode in modes() {
        let s = SandboxSpec {
            write: vec![ok.clone()],
            ..spec(mode)
        };
        let (o, attempts) = run_watched(
            &s,
            &format!(
                "echo written > {ok}; echo x > {out} 2>/dev/null; echo x > /usr/evil 2>/dev/null; echo x > /root/.evil 2>/dev/null; echo t > $TMPDIR/t && cat $TMPDIR/t; echo >/dev/null",
                ok = ok.display(),
                out = outside.display()
            ),
        );
        if mode == Isolation::Namespaces {
            // The refused writes are seen, and only those: a read-only
            // mount (`/usr`) and a directory the sandbox hides (`/root`).
            // `outside` is under the host's /tmp, which is the sandbox's
            // private /tmp: written there, not refused.
            let written = |p: &str| Attempt::Write {
                path: PathBuf::from(p),
            };
            assert_eq!(
                attempts,
                vec![written("/usr/evil"), written("/root/.evil")],
                "{}",
                text(&o)
            );
        }
        assert_eq!(
            std::fs::read_to_string(&ok).unwrap_or_default(),
            "written\n",
            "{mode:?}: {}",
            text(&o)
        );
        assert!(!outside.exists(), "{mode:?}: {}", text(&o));
        assert!(!Path::new("/usr/evil").exists());
        assert!(
            String::from_utf8_lossy(&o.stdout).contains('t'),
            "{mode:?}: {}",
            text(&o)
        );
        let _ = std::fs::remove_file(&ok);
    }
}

#[test]
fn a_protected_path_is_never_mounted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("warden-data");
    std::fs::create_dir_all(&data).unwrap();
    let s = SandboxSpec {
        protected: vec![data.clone()],
        read: vec![dir.path().to_path_buf()],
        ..SandboxSpec::default()
    };
    let err = Plan::new(&s, "/bin/true", &[], None, None).unwrap_err();
    assert!(matches!(err, SandboxError::Exposes { .. }), "{err}");
    // Named on the command line: refused as well.
    let s = SandboxSpec {
        protected: vec![data.clone()],
        ..SandboxSpec::default()
    };
    let arg = dir.path().display().to_string();
    let err = Plan::new(&s, "/bin/ls", &[arg], None, None).unwrap_err();
    assert!(matches!(err, SandboxError::Exposes { .. }), "{err}");
}

#[test]
fn no_network_reaches_a_loopback_listener() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    for mode in modes() {
        let (o, attempts) = run_watched(
            &spec(mode),
            &format!(
                "python3 -c 'import socket; s=socket.socket(); s.settimeout(2); s.connect((\"127.0.0.1\", {port})); print(\"CONNECTED\")' 2>&1; echo done"
            ),
        );
        if mode == Isolation::Namespaces {
            let tried = Attempt::Connect {
                address: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            };
            assert_eq!(attempts, vec![tried], "{mode:?}");
        }
        let out = String::from_utf8_lossy(&o.stdout);
        assert!(out.contains("done"), "{mode:?}: {}", text(&o));
        assert!(!out.contains("CONNECTED"), "{mode:?}: {}", text(&o));
        assert!(listener.accept().is_err(), "{mode:?}: a connection arrived");
    }
}

#[test]
fn a_fork_bomb_meets_the_process_limit() {
    let mut s = spec(Isolation::Namespaces);
    s.limits.processes = 20;
    let (o, attempts) = run_watched(
        &s,
        "exec python3 -c '
import os, time
n = 0
for i in range(60):
    try:
        pid = os.fork()
    except OSError:
        break
    if pid == 0:
        time.sleep(3)
        os._exit(0)
    n += 1
print(n)
'",
    );
    let out = String::from_utf8_lossy(&o.stdout);
    let count: usize = out
        .lines()
        .last()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or_else(|| panic!("{}", text(&o)));
    assert!(count < 20, "{count} processes: {}", text(&o));
    // Where Warden runs as root the limit is the pids cgroup's, which
    // counts what it refused (an ordinary user's RLIMIT_NPROC counts
    // nothing).
    // SAFETY: geteuid cannot fail and touches no memory.
    if unsafe { libc::geteuid() } == 0 {
        assert!(
            matches!(attempts.as_slice(), [Attempt::ProcessLimit { refused }] if *refused >= 1),
            "{attempts:?}"
        );
    }
}

#[test]
fn ptrace_and_mount_kill_the_process() {
    for (what, code) in [
        ("ptrace", "import ctypes; ctypes.CDLL(None).ptrace(16, 1, 0, 0); print('SURVIVED')"),
        ("mount", "import ctypes; ctypes.CDLL(None).mount(b'none', b'/tmp', b'tmpfs', 0, None); print('SURVIVED')"),
    ] {
        let o = run(&spec(Isolation::Namespaces), &format!("exec python3 -c \"{code}\""));
        assert!(
            !String::from_utf8_lossy(&o.stdout).contains("SURVIVED"),
            "{what}: {}",
            text(&o)
        );
        assert_eq!(
            std::os::unix::process::ExitStatusExt::signal(&o.status),
            Some(libc_sigsys()),
            "{what}: {}",
            text(&o)
        );
    }
}

fn libc_sigsys() -> i32 {
    31
}

#[test]
fn cpu_burn_is_stopped_by_its_limit() {
    let mut s = spec(Isolation::Namespaces);
    s.limits.cpu = std::time::Duration::from_secs(1);
    let o = run(&s, "exec python3 -c 'while True: pass'");
    let sig = std::os::unix::process::ExitStatusExt::signal(&o.status);
    assert!(matches!(sig, Some(24) | Some(9)), "{}", text(&o));
}

#[test]
fn the_proxy_listener_is_the_only_way_out() {
    let s = SandboxSpec {
        network: Network::Proxy,
        ..SandboxSpec::default()
    };
    let plan = Plan::new(
        &s,
        "/usr/bin/python3",
        &[
            "-c".to_owned(),
            "import socket,os; s=socket.create_connection(('127.0.0.1', 3128)); s.sendall(os.environ['HTTP_PROXY'].encode()); s.close()".to_owned(),
        ],
        None,
        None,
    )
    .expect("plan");
    let env = plan.env().to_vec();
    let (mut cmd, mut spawned) = plan.command(|_| {}).expect("command");
    let mut child = cmd
        .env_clear()
        .envs(env)
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{}", describe_spawn_error(&e)));
    drop(cmd);
    let listener = spawned.proxy_listener().unwrap().expect("a listener");
    listener.set_nonblocking(false).unwrap();
    let (mut conn, _) = listener.accept().unwrap();
    let mut got = String::new();
    conn.read_to_string(&mut got).unwrap();
    assert_eq!(got, "http://127.0.0.1:3128");
    let status = child.wait().unwrap();
    assert!(status.success());
}

#[allow(dead_code)]
fn unused(_: PathBuf) {}

/// Regression: with more descriptors open in Warden than the server may
/// have, a step that opened a file after the limit was set got `EMFILE`
/// (`open` returns the lowest free number), and the spawn failed.
#[test]
fn a_parent_holding_more_descriptors_than_the_limit_still_spawns() {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit on a local struct.
    unsafe {
        libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim);
        lim.rlim_cur = lim.rlim_max.min(4096);
        libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
    }
    let held: Vec<std::fs::File> = (0..300)
        .filter_map(|_| std::fs::File::open("/dev/null").ok())
        .collect();
    assert!(held.len() >= 200, "could not open descriptors");
    let mut s = spec(Isolation::Namespaces);
    s.limits.open_files = 64;
    let o = run(&s, "echo spawned");
    assert!(o.status.success(), "{}", text(&o));
    drop(held);
}

/// Warden as an ordinary user: when this runs as root, every other test of
/// this file runs again as `nobody` (unprivileged user namespaces, and the
/// Landlock-only mode an ordinary user gets where they are not available).
#[test]
fn every_test_passes_as_an_ordinary_user() {
    // SAFETY: geteuid cannot fail and touches no memory.
    if unsafe { libc::geteuid() } != 0 {
        return; // already one
    }
    let exe = std::env::current_exe().expect("test binary");
    let out = std::process::Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(&exe)
        .args([
            "--skip",
            "every_test_passes_as_an_ordinary_user",
            "--test-threads=1",
        ])
        .env_clear()
        .env("PATH", "/usr/bin:/bin")
        .env("HOME", "/tmp")
        .env("TMPDIR", "/tmp")
        .stdin(Stdio::null())
        .output();
    let out = match out {
        Ok(o) => o,
        Err(e) => {
            assert!(
                std::env::var_os("WARDEN_REQUIRE_SANDBOX").is_none(),
                "setpriv: {e}"
            );
            return;
        }
    };
    assert!(out.status.success(), "as nobody: {}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("test result: ok"),
        "{}",
        text(&out)
    );
}

/// Regression: the pids cgroup of a root Warden's sandbox outlived it when
/// the last processes of the namespace were still being released at drop
/// time, and cgroups of a killed Warden stayed forever.
#[test]
fn no_pids_cgroup_outlives_its_sandbox() {
    let o = run(&spec(Isolation::Namespaces), "true");
    assert!(o.status.success(), "{}", text(&o));
    let mine = format!("warden-sandbox-{}-", std::process::id());
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    for base in [
        "/sys/fs/cgroup",
        "/sys/fs/cgroup/unified",
        "/sys/fs/cgroup/pids",
    ] {
        loop {
            let left: Vec<String> = std::fs::read_dir(base)
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| e.file_name().into_string().ok())
                .filter(|n| n.starts_with(&mine))
                .collect();
            if left.is_empty() {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "cgroups left in {base}: {left:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
    }
}

/// Opening a host secret or one of Warden's files inside the sandbox opens
/// a tripwire: nothing is read, and Warden learns which path was tried.
/// A path the sandbox was given is never a tripwire.
#[test]
fn opening_a_host_secret_or_a_protected_file_trips_a_wire() {
    if !support().user_namespaces {
        assert!(
            std::env::var_os("WARDEN_REQUIRE_SANDBOX").is_none(),
            "user namespaces are not available"
        );
        return;
    }
    let warden = tempfile::tempdir().unwrap();
    let key = warden.path().join("api-keys.secret");
    std::fs::write(&key, "k3y-material-2718").unwrap();
    let given = tempfile::tempdir().unwrap();
    std::fs::write(given.path().join("data.txt"), "given").unwrap();
    let spec = SandboxSpec {
        protected: vec![warden.path().to_path_buf()],
        read: vec![given.path().to_path_buf()],
        ..SandboxSpec::default()
    };
    let script = format!(
        "cat /etc/shadow; cat '{}'; cat '{}/data.txt'; ls /etc/shadow >/dev/null",
        key.display(),
        given.path().display()
    );
    let plan = Plan::new(
        &spec,
        "/bin/sh",
        &["-c".to_owned(), script],
        None,
        path_env().as_deref(),
    )
    .expect("plan");
    let env: Vec<(String, String)> = plan.env().to_vec();
    let (mut cmd, mut spawned) = plan.command(|_| {}).expect("command");
    let mut wires = spawned.tripwires().expect("tripwires armed");
    assert!(!wires.is_empty());
    cmd.env_clear()
        .env("PATH", "/usr/bin:/bin")
        .envs(env)
        .stdin(Stdio::null());
    let out = cmd.output().expect("spawn");
    let shown = text(&out);
    assert!(!shown.contains("k3y-material-2718"), "{shown}");
    assert!(shown.contains("given"), "{shown}");
    let opened = wires.opened().unwrap();
    assert!(opened.contains(&PathBuf::from("/etc/shadow")), "{opened:?}");
    assert!(opened.contains(&key), "{opened:?}");
    assert!(
        !opened.iter().any(|p| p.starts_with(given.path())),
        "a given path was a tripwire: {opened:?}"
    );
}
