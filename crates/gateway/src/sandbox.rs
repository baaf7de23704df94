//! A configured `sandbox:` as the upstream crate's launcher spec.

use warden_config::{Sandbox, SandboxProfile};
use warden_sandbox::{Fallback, Isolation, Network, ResourceLimits, SandboxSpec};
use warden_upstream::StdioSandbox;

/// The launcher spec of a stdio server's sandbox (`None`: profile `none`).
pub fn stdio_sandbox(sandbox: Option<&Sandbox>) -> Option<Box<StdioSandbox>> {
    let s = sandbox?;
    let spec = SandboxSpec {
        read: s.read.clone(),
        write: s.write.clone(),
        protected: s.protected.clone(),
        network: match s.profile {
            SandboxProfile::Network => Network::Proxy,
            SandboxProfile::Strict | SandboxProfile::None => Network::None,
        },
        limits: ResourceLimits {
            cpu: s.limits.cpu,
            memory_bytes: s.limits.memory,
            processes: s.limits.processes,
            open_files: s.limits.open_files,
            file_size_bytes: s.limits.file_size,
        },
        tmp_bytes: s.tmp_size,
        fallback: if s.fallback_landlock {
            Fallback::Landlock
        } else {
            Fallback::Refuse
        },
        isolation: Isolation::Namespaces,
    };
    Some(Box::new(StdioSandbox {
        spec,
        egress: s.egress.iter().map(|t| (t.host.clone(), t.port)).collect(),
        egress_allow_private: s.allow_private_network,
        roots_writable: s.roots.as_ref().is_some_and(|r| r.writable),
    }))
}
