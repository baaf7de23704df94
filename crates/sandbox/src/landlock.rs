//! Landlock, spoken through its three system calls.
//!
//! Not the `landlock` crate: its rulesets are built with allocations
//! (path buffers, vectors) that must not happen between `fork` and `exec`
//! of a multi-threaded process. Here the ruleset is described before the
//! fork ([`Rules`]: every path a `CString`, every right computed for the
//! kernel's ABI) and the child only issues system calls (`child.rs`).

use std::ffi::CString;
use std::path::Path;

// Filesystem rights (`LANDLOCK_ACCESS_FS_*`), by the ABI that added them.
pub(crate) const EXECUTE: u64 = 1 << 0;
pub(crate) const WRITE_FILE: u64 = 1 << 1;
pub(crate) const READ_FILE: u64 = 1 << 2;
pub(crate) const READ_DIR: u64 = 1 << 3;
const REMOVE_DIR: u64 = 1 << 4;
const REMOVE_FILE: u64 = 1 << 5;
const MAKE_CHAR: u64 = 1 << 6;
const MAKE_DIR: u64 = 1 << 7;
const MAKE_REG: u64 = 1 << 8;
const MAKE_SOCK: u64 = 1 << 9;
const MAKE_FIFO: u64 = 1 << 10;
const MAKE_BLOCK: u64 = 1 << 11;
const MAKE_SYM: u64 = 1 << 12;
const REFER: u64 = 1 << 13; // ABI 2
const TRUNCATE: u64 = 1 << 14; // ABI 3
const IOCTL_DEV: u64 = 1 << 15; // ABI 5

// Network rights (ABI 4) and scopes (ABI 6).
const NET_BIND_TCP: u64 = 1 << 0;
const NET_CONNECT_TCP: u64 = 1 << 1;
const SCOPE_ABSTRACT_UNIX_SOCKET: u64 = 1 << 0;
const SCOPE_SIGNAL: u64 = 1 << 1;

pub(crate) const RULE_PATH_BENEATH: libc::c_int = 1;

/// `struct landlock_ruleset_attr` (the kernel reads as many bytes as the
/// size passed, which follows the ABI).
#[derive(Debug)]
#[repr(C)]
pub(crate) struct RulesetAttr {
    pub handled_access_fs: u64,
    pub handled_access_net: u64,
    pub scoped: u64,
}

/// `struct landlock_path_beneath_attr` (packed in the kernel's header).
#[repr(C, packed)]
pub(crate) struct PathBeneathAttr {
    pub allowed_access: u64,
    pub parent_fd: i32,
}

/// How a path may be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read and execute.
    Read,
    /// Everything.
    Write,
    /// Read and write an existing file (device nodes).
    Device,
}

/// A ruleset described before the fork.
#[derive(Debug)]
pub(crate) struct Rules {
    pub attr: RulesetAttr,
    pub attr_size: usize,
    pub paths: Vec<(CString, u64)>,
}

fn fs_rights(abi: u32) -> u64 {
    let mut all = EXECUTE
        | WRITE_FILE
        | READ_FILE
        | READ_DIR
        | REMOVE_DIR
        | REMOVE_FILE
        | MAKE_CHAR
        | MAKE_DIR
        | MAKE_REG
        | MAKE_SOCK
        | MAKE_FIFO
        | MAKE_BLOCK
        | MAKE_SYM;
    if abi >= 2 {
        all |= REFER;
    }
    if abi >= 3 {
        all |= TRUNCATE;
    }
    if abi >= 5 {
        all |= IOCTL_DEV;
    }
    all
}

/// Rights that may be granted on a file (the rest only make sense on a
/// directory, and the kernel refuses them on a file).
fn file_rights(abi: u32) -> u64 {
    fs_rights(abi) & (EXECUTE | WRITE_FILE | READ_FILE | TRUNCATE | IOCTL_DEV)
}

impl Rules {
    /// A ruleset for the kernel's Landlock `abi` (≥ 1). `deny_tcp`: handle
    /// TCP bind and connect with no port allowed (no network namespace).
    pub(crate) fn new(abi: u32, deny_tcp: bool) -> Rules {
        let handled_net = if abi >= 4 && deny_tcp {
            NET_BIND_TCP | NET_CONNECT_TCP
        } else {
            0
        };
        let scoped = if abi >= 6 {
            SCOPE_ABSTRACT_UNIX_SOCKET | SCOPE_SIGNAL
        } else {
            0
        };
        let attr_size = match abi {
            1..=3 => 8,
            4 | 5 => 16,
            _ => 24,
        };
        Rules {
            attr: RulesetAttr {
                handled_access_fs: fs_rights(abi),
                handled_access_net: handled_net,
                scoped,
            },
            attr_size,
            paths: Vec::new(),
        }
    }

    /// Allows `access` beneath `path` (a file gets the file rights only).
    pub(crate) fn allow(&mut self, path: &Path, access: Access, is_dir: bool) {
        let abi_all = self.attr.handled_access_fs;
        let mut rights = match access {
            Access::Read => EXECUTE | READ_FILE | READ_DIR,
            Access::Write => abi_all,
            Access::Device => READ_FILE | WRITE_FILE | (abi_all & IOCTL_DEV),
        };
        if !is_dir {
            rights &= file_rights_of(abi_all);
        }
        rights &= abi_all;
        if let Ok(c) = CString::new(path.as_os_str().as_encoded_bytes()) {
            self.paths.push((c, rights));
        }
    }
}

fn file_rights_of(handled: u64) -> u64 {
    let abi = if handled & IOCTL_DEV != 0 {
        5
    } else if handled & TRUNCATE != 0 {
        3
    } else {
        1
    };
    file_rights(abi)
}
