//! Raw file → validated [`Config`].
//!
//! Each `resolve_*` function checks one section, records every problem it
//! finds in [`Problems`] (with the value's path) and returns its best effort
//! at a value, so that one bad key never hides the next. The caller only
//! builds a [`Config`] when no problem was recorded.

use std::collections::HashSet;
use std::ffi::OsString;
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use crate::defaults;
use crate::error::{ConfigErrors, FieldPath, Problems};
use crate::glob::{could_match_with_prefix, is_pattern_char};
use crate::model::{
    Config, CredentialMode, Era, Gateway, Isolation, Listen, RegistrySettings, RestartPolicy,
    ServerConfig, StdioSettings, Transport, VirtualServer,
};
use crate::raw::{
    OrderedMap, RawConfig, RawGateway, RawListen, RawRegistry, RawRestart, RawServer,
    RawServerCredentials, RawStdio, RawVirtualServer,
};
use crate::secret::{header_looks_secret, is_env_name, Secret, SecretRef, SecretSource};
use crate::units::{parse_count, parse_duration, parse_rate, parse_size};

/// Where the resolver finds what is not in the file.
pub(crate) struct Context<'a> {
    /// Relative paths (`cwd`, `file:` secrets) are resolved against this.
    pub base_dir: &'a Path,
    /// Environment lookup for `env:` secrets and the `$USER` default.
    pub env: &'a dyn Fn(&str) -> Option<OsString>,
}

pub(crate) fn resolve(raw: RawConfig, context: &Context<'_>) -> Result<Config, ConfigErrors> {
    let mut resolver = Resolver {
        problems: Problems::default(),
        secrets: SecretSource {
            env: context.env,
            base_dir: context.base_dir,
            files: Default::default(),
        },
        base_dir: context.base_dir,
        sandbox_default: raw.sandbox.clone(),
    };
    let root = FieldPath::root();

    let listen = resolver.listen(raw.listen.unwrap_or_default(), &root.field("listen"));
    let gateway = resolver.gateway(raw.gateway.unwrap_or_default(), &root.field("gateway"));
    // Server-name checks depend on the separator; skip them if it is invalid
    // (that error is already recorded) rather than report noise.
    let separator = separator_problem(&gateway.separator)
        .is_none()
        .then_some(gateway.separator.as_str());

    let raw_servers = raw.servers.unwrap_or(OrderedMap(Vec::new())).0;
    let server_names: Vec<&str> = raw_servers.iter().map(|(n, _)| n.as_str()).collect();
    let servers_path = root.field("servers");
    let mut servers = Vec::with_capacity(raw_servers.len());
    for (name, raw_server) in &raw_servers {
        let path = servers_path.key(name);
        if let Some(server) = resolver.server(name, raw_server.as_ref(), separator, &path) {
            servers.push(server);
        }
    }

    let vs_path = root.field("virtual_servers");
    let mut virtual_servers = Vec::new();
    for (name, raw_vs) in raw.virtual_servers.unwrap_or(OrderedMap(Vec::new())).0 {
        let path = vs_path.key(&name);
        if let Some(vs) = resolver.virtual_server(name, raw_vs, &server_names, separator, &path) {
            virtual_servers.push(vs);
        }
    }

    let stdio = resolver.stdio(raw.stdio.unwrap_or_default(), context, &root.field("stdio"));

    // Sections owned by other crates resolve themselves; their errors carry
    // full paths ("identity.issuers[0].jwks_uri").
    let identity =
        raw.identity.and_then(
            |raw| match raw.resolve_with_env(context.base_dir, context.env) {
                Ok(settings) => Some(crate::Section(std::sync::Arc::new(settings))),
                Err(problems) => {
                    for (path, message) in problems {
                        resolver.problems.push_raw(path, message);
                    }
                    None
                }
            },
        );

    let guards = match raw.guards.map(warden_guard::RawGuards::resolve) {
        None => Some(warden_guard::GuardSettings::default()),
        Some(Ok(settings)) => Some(settings),
        Some(Err(problems)) => {
            for (path, message) in problems {
                resolver.problems.push_raw(path, message);
            }
            None
        }
    };

    let authorization = raw
        .authorization
        .and_then(|raw| match raw.resolve(context.base_dir) {
            Ok(settings) => Some(crate::Section(std::sync::Arc::new(settings))),
            Err(problems) => {
                for (path, message) in problems {
                    resolver.problems.push_raw(path, message);
                }
                None
            }
        });

    // A PostgreSQL or Redis URL may hold a password: `env:`/`file:` like
    // every other secret in the file.
    let audit = resolver.section_with_url(
        raw.audit.unwrap_or_default().resolve(context.base_dir),
        |s| s.postgres_url_reference(),
        |s, url| {
            s.set_postgres_url(url);
            Ok(())
        },
    );

    let telemetry = resolver.section_with_url(
        raw.telemetry
            .unwrap_or_default()
            .resolve_with_env(context.env),
        |_| None,
        |_, _| Ok(()),
    );

    let limits = resolver.section_with_url(
        raw.limits.unwrap_or_default().resolve(),
        |s| s.redis_url_reference(),
        |s, url| s.set_redis_url(url),
    );

    let approvals = resolver.section_with_url(
        raw.approvals.unwrap_or_default().resolve(context.base_dir),
        |s| s.postgres_url_reference(),
        |s, url| {
            s.set_postgres_url(url);
            Ok(())
        },
    );

    let tls =
        raw.tls.and_then(
            |raw| match raw.resolve(context.base_dir, "tls", identity.as_deref()) {
                Ok(settings) => Some(crate::Section(std::sync::Arc::new(settings))),
                Err(problems) => {
                    for (path, message) in problems {
                        resolver.problems.push_raw(path, message);
                    }
                    None
                }
            },
        );
    let registry = resolver.registry(raw.registry.unwrap_or_default(), &root.field("registry"));
    let default_issuer = identity.as_ref().map(|i| i.public_url().to_owned());
    let credentials = match &raw.credentials {
        None => default_issuer
            .as_deref()
            .map(warden_credentials::IssuerSettings::defaults),
        Some(raw) => match raw.resolve(context.base_dir, default_issuer.as_deref()) {
            Ok(settings) => Some(settings),
            Err(problems) => {
                for (path, message) in problems {
                    resolver.problems.push_raw(path, message);
                }
                None
            }
        },
    };
    let grant_store_path = root.field("credentials").field("grant_store");
    let grant_store = raw
        .credentials
        .as_ref()
        .and_then(|c| c.grant_store.as_ref())
        .map(|g| {
            if g.path.trim().is_empty() {
                resolver
                    .problems
                    .push(&grant_store_path.field("path"), "must not be empty");
            }
            let path = context.base_dir.join(g.path.trim());
            let key_path = grant_store_path.field("key");
            let key = resolver.secret_reference(&g.key, &key_path);
            if !key.expose().is_empty() {
                if let Err(e) = warden_credentials::GrantStore::open(&path, key.expose()) {
                    // The message names the key's shape, never its value.
                    resolver.problems.push(&key_path, e.to_string());
                }
            }
            crate::GrantStoreSettings { path, key }
        });
    if grant_store.is_none() {
        for server in &servers {
            if matches!(server.credentials.mode, CredentialMode::OAuth { .. }) {
                resolver.problems.push(
                    &servers_path
                        .key(&server.name)
                        .field("credentials")
                        .field("mode"),
                    "oauth keeps each user's grant: set credentials.grant_store {path, key}",
                );
            }
        }
    }
    if credentials.is_none() && raw.credentials.is_none() {
        for server in &servers {
            if matches!(server.credentials.mode, CredentialMode::Mint { .. }) {
                resolver.problems.push(
                    &servers_path
                        .key(&server.name)
                        .field("credentials")
                        .field("mode"),
                    "mint needs Warden's issuer URL: set identity.public_url or credentials.issuer",
                );
            }
        }
    }

    if resolver.problems.is_empty() {
        let guards = crate::Section(std::sync::Arc::new(guards.unwrap_or_default()));
        let telemetry = crate::Section(std::sync::Arc::new(telemetry.unwrap_or_default()));
        let limits = crate::Section(std::sync::Arc::new(limits.unwrap_or_default()));
        let approvals =
            crate::Section(std::sync::Arc::new(approvals.unwrap_or_else(|| {
                warden_approvals::ApprovalSettings::defaults_in(context.base_dir)
            })));
        let Some(audit) = audit else {
            return Err(resolver.problems.into_errors());
        };
        let audit = crate::Section(std::sync::Arc::new(audit));
        let mut protected = crate::sandbox::protected_paths(
            context.base_dir,
            identity.as_deref(),
            &audit,
            &registry.lock,
        );
        // The key Warden signs upstream tokens with, the TLS key, the
        // approvals database, users' OAuth grants, and every secret file.
        protected.extend(credentials.as_ref().and_then(|c| c.signing_key.clone()));
        protected.extend(tls.as_ref().map(|t| t.key_file().to_path_buf()));
        if let warden_approvals::StoreSettings::Sqlite { path } = &approvals.store {
            protected.push(path.clone());
        }
        protected.extend(grant_store.as_ref().map(|g| g.path.clone()));
        protected.extend(resolver.secrets.files.borrow().iter().cloned());
        for server in &mut servers {
            if let Some(sandbox) = &mut server.sandbox {
                sandbox.protected.clone_from(&protected);
            }
        }
        Ok(Config {
            listen,
            gateway,
            servers,
            virtual_servers,
            stdio,
            identity,
            guards,
            authorization,
            audit,
            telemetry,
            limits,
            approvals,
            tls,
            registry,
            credentials: credentials.map(|c| crate::Section(std::sync::Arc::new(c))),
            grant_store,
        })
    } else {
        Err(resolver.problems.into_errors())
    }
}

struct Resolver<'a> {
    problems: Problems,
    secrets: SecretSource<'a>,
    base_dir: &'a Path,
    /// The top-level `sandbox:`, under each stdio server's own.
    sandbox_default: Option<crate::sandbox::RawSandbox>,
}

impl Resolver<'_> {
    /// A section resolved by its crate: its problems collected with their
    /// paths, and the one secret reference it names (a database URL:
    /// `reference` gives its path in the file and text) resolved and
    /// handed back with `set`.
    fn section_with_url<T>(
        &mut self,
        resolved: Result<T, Vec<(String, String)>>,
        reference: impl Fn(&T) -> Option<(&'static str, &str)>,
        set: impl FnOnce(&mut T, String) -> Result<(), String>,
    ) -> Option<T> {
        match resolved {
            Ok(mut settings) => {
                let pending = reference(&settings).map(|(path, r)| (path, r.to_owned()));
                if let Some((path, r)) = pending {
                    let done = self
                        .secrets
                        .resolve(&SecretRef::parse(&r))
                        .map_err(|e| e.to_string())
                        .and_then(|url| set(&mut settings, url.expose().to_owned()));
                    if let Err(message) = done {
                        self.problems.push_raw(path.to_owned(), message);
                    }
                }
                Some(settings)
            }
            Err(problems) => {
                for (path, message) in problems {
                    self.problems.push_raw(path, message);
                }
                None
            }
        }
    }

    // ----- listen -------------------------------------------------------

    fn listen(&mut self, raw: RawListen, path: &FieldPath) -> Listen {
        let mut listen = Listen::default();
        if let Some(addr) = raw.addr {
            match addr.trim().parse::<SocketAddr>() {
                Ok(parsed) => listen.addr = parsed,
                Err(_) => self.problems.push(
                    &path.field("addr"),
                    format!(
                        "invalid socket address {addr:?}: expected IP:PORT, \
                         e.g. \"127.0.0.1:8080\" or \"[::1]:8080\""
                    ),
                ),
            }
        }

        if let Some(origins) = raw.allowed_origins {
            let list_path = path.field("allowed_origins");
            let mut seen = HashSet::new();
            for (i, origin) in origins.iter().enumerate() {
                match normalize_origin(origin) {
                    Ok(normalized) => {
                        if seen.insert(normalized.clone()) {
                            listen.allowed_origins.push(normalized);
                        } else {
                            self.problems.push(
                                &list_path.index(i),
                                format!("duplicate origin {normalized:?}"),
                            );
                        }
                    }
                    Err(message) => self.problems.push(&list_path.index(i), message),
                }
            }
        }

        if let Some(hosts) = raw.allowed_hosts {
            let list_path = path.field("allowed_hosts");
            if hosts.is_empty() {
                self.problems.push(
                    &list_path,
                    "must not be empty (an empty list would refuse every request; \
                     remove the key to use the gateway's default)",
                );
            }
            let mut allowed = Vec::with_capacity(hosts.len());
            for (i, host) in hosts.iter().enumerate() {
                match normalize_host(host) {
                    Ok(normalized) if allowed.contains(&normalized) => self.problems.push(
                        &list_path.index(i),
                        format!("duplicate host {normalized:?}"),
                    ),
                    Ok(normalized) => allowed.push(normalized),
                    Err(message) => self.problems.push(&list_path.index(i), message),
                }
            }
            listen.allowed_hosts = Some(allowed);
        }

        if let Some(legacy_sse) = raw.legacy_sse {
            listen.legacy_sse = legacy_sse;
        }
        let at_least_one = 1..=usize::MAX;
        if let Some(v) = self.count_in(
            raw.max_connections,
            &path.field("max_connections"),
            at_least_one.clone(),
        ) {
            listen.edge.max_connections = v;
        }
        if let Some(v) = self.count_in(
            raw.max_connections_per_ip,
            &path.field("max_connections_per_ip"),
            at_least_one,
        ) {
            listen.edge.max_connections_per_ip = v;
        }
        for (raw, key, slot) in [
            (
                raw.header_timeout,
                "header_timeout",
                &mut listen.edge.header_timeout,
            ),
            (
                raw.idle_timeout,
                "idle_timeout",
                &mut listen.edge.idle_timeout,
            ),
            (
                raw.body_timeout,
                "body_timeout",
                &mut listen.edge.body_timeout,
            ),
        ] {
            if let Some(v) = self.duration(raw, &path.field(key)) {
                *slot = v;
            }
        }
        if let Some(text) = raw.body_min_rate {
            match parse_rate(&text) {
                Ok(0) => self
                    .problems
                    .push(&path.field("body_min_rate"), "must be greater than zero"),
                Ok(v) => listen.edge.body_min_rate = v,
                Err(e) => self
                    .problems
                    .push(&path.field("body_min_rate"), e.to_string()),
            }
        }
        listen
    }

    // ----- gateway ------------------------------------------------------

    fn gateway(&mut self, raw: RawGateway, path: &FieldPath) -> Gateway {
        let mut gateway = Gateway::default();
        if let Some(name) = raw.name {
            if let Some(problem) = display_text_problem(&name, 128) {
                self.problems.push(&path.field("name"), problem);
            }
            gateway.name = name;
        }
        if let Some(separator) = raw.separator {
            if let Some(problem) = separator_problem(&separator) {
                self.problems.push(&path.field("separator"), problem);
            }
            gateway.separator = separator;
        }
        if let Some(v) = self.size(raw.max_body_bytes, &path.field("max_body_bytes")) {
            gateway.max_body_bytes = v;
        }
        if let Some(v) = self.count_in(
            raw.max_depth,
            &path.field("max_depth"),
            defaults::MAX_DEPTH_RANGE,
        ) {
            gateway.max_depth = v;
        }
        if let Some(v) = self.size(
            raw.max_upstream_message_bytes,
            &path.field("max_upstream_message_bytes"),
        ) {
            gateway.max_upstream_message_bytes = v;
        }
        if let Some(v) = self.duration(
            raw.session_idle_timeout,
            &path.field("session_idle_timeout"),
        ) {
            gateway.session_idle_timeout = v;
        }
        if let Some(v) = self.count_in(
            raw.replay_buffer_events,
            &path.field("replay_buffer_events"),
            1..=usize::MAX,
        ) {
            gateway.replay_buffer_events = v;
        }
        if let Some(v) = self.count_in(
            raw.max_sessions,
            &path.field("max_sessions"),
            1..=usize::MAX,
        ) {
            gateway.max_sessions = v;
        }
        for (raw, key, slot) in [
            (
                raw.max_sessions_per_principal,
                "max_sessions_per_principal",
                &mut gateway.max_sessions_per_principal,
            ),
            (
                raw.max_streams_per_principal,
                "max_streams_per_principal",
                &mut gateway.max_streams_per_principal,
            ),
            (
                raw.max_parked_per_principal,
                "max_parked_per_principal",
                &mut gateway.max_parked_per_principal,
            ),
            (
                raw.notifications_per_second,
                "notifications_per_second",
                &mut gateway.notifications_per_second,
            ),
        ] {
            if let Some(v) = self.count_in(raw, &path.field(key), 1..=usize::MAX) {
                *slot = v;
            }
        }
        gateway.instructions = raw.instructions;
        gateway
    }

    // ----- servers ------------------------------------------------------

    fn server(
        &mut self,
        name: &str,
        raw: Option<&RawServer>,
        separator: Option<&str>,
        path: &FieldPath,
    ) -> Option<ServerConfig> {
        let name_ok = self.server_name(name, separator, path);
        let Some(raw) = raw else {
            self.problems.push(
                path,
                "server has no settings: set `command` (stdio) or `url` (http, sse)",
            );
            return None;
        };

        let transport = self.transport(raw, path);
        let isolation = raw.isolation.as_deref().and_then(|text| {
            let parsed = match text.trim() {
                "session" => Some(Isolation::Session),
                "principal" => Some(Isolation::Principal),
                "shared" => Some(Isolation::Shared),
                _ => None,
            };
            if parsed.is_none() {
                self.problems.push(
                    &path.field("isolation"),
                    format!("unknown isolation {text:?} (expected session, principal or shared)"),
                );
            }
            parsed
        });
        let era = match raw.protocol.as_deref().map(str::trim) {
            None | Some("auto") => Era::Auto,
            Some("session") => Era::Session,
            Some("2026-07-28" | "modern") => Era::Modern,
            Some(other) => {
                self.problems.push(
                    &path.field("protocol"),
                    format!("unknown protocol {other:?} (expected auto, session or 2026-07-28)"),
                );
                Era::Auto
            }
        };
        let connect_timeout = self
            .duration(raw.connect_timeout.clone(), &path.field("connect_timeout"))
            .unwrap_or(defaults::CONNECT_TIMEOUT);
        let call_timeout = self
            .duration(raw.call_timeout.clone(), &path.field("call_timeout"))
            .unwrap_or(defaults::CALL_TIMEOUT);
        let idle_timeout = self
            .duration(raw.idle_timeout.clone(), &path.field("idle_timeout"))
            .unwrap_or(defaults::IDLE_TIMEOUT);
        let restart = self.restart(raw.restart.as_ref(), &path.field("restart"));
        for (i, item) in raw.tools.iter().flatten().enumerate() {
            let Some(cost) = &item.cost else { continue };
            let at = path.field("tools").index(i).field("cost");
            if !(cost.amount.is_finite() && cost.amount >= 0.0) {
                self.problems
                    .push(&at.field("amount"), "must be a number ≥ 0".to_owned());
            }
            if cost.unit.is_empty()
                || cost.unit.len() > 16
                || !cost.unit.bytes().all(|b| b.is_ascii_alphanumeric())
            {
                self.problems.push(
                    &at.field("unit"),
                    "a name such as USD or credits ([A-Za-z0-9], at most 16)".to_owned(),
                );
            }
        }

        let transport = transport?;
        if !name_ok {
            return None;
        }
        let isolation = isolation.unwrap_or(match transport {
            Transport::Stdio { .. } => Isolation::Principal,
            Transport::StreamableHttp { .. } | Transport::Sse { .. } => Isolation::Session,
        });
        if era == Era::Modern && !matches!(transport, Transport::StreamableHttp { .. }) {
            self.problems.push(
                &path.field("protocol"),
                "2026-07-28 is spoken over Streamable HTTP only (set url:)",
            );
        }
        let sandbox = match transport {
            Transport::Stdio { .. } => crate::sandbox::resolve(
                raw.sandbox.as_ref(),
                self.sandbox_default.as_ref(),
                self.base_dir,
                &path.field("sandbox"),
                &mut self.problems,
            ),
            _ => None,
        };
        let credentials = self.server_credentials(
            raw.credentials.as_ref(),
            &transport,
            isolation,
            &path.field("credentials"),
        );
        Some(ServerConfig {
            sandbox,
            name: name.to_owned(),
            transport,
            isolation,
            era,
            connect_timeout,
            call_timeout,
            idle_timeout,
            restart,
            instructions: raw.instructions.clone(),
            required: raw.required.unwrap_or(false),
            credentials,
            facts: crate::Section(std::sync::Arc::new(warden_policy::ServerFacts {
                name: name.to_owned(),
                tenants: raw.tenants.clone().unwrap_or_default(),
                environment: raw.environment.clone(),
                risk: raw.risk,
                data_class: raw.data_class.clone(),
                labels: raw.labels.clone().unwrap_or_default(),
                tools: raw.tools.clone().unwrap_or_default(),
                resources: raw.resources.clone().unwrap_or_default(),
                prompts: raw.prompts.clone().unwrap_or_default(),
            })),
        })
    }

    /// Server names prefix exposed tool names, which MCP clients require to
    /// match `^[a-zA-Z0-9_-]{1,64}$`, and which the gateway must split back
    /// into (server, tool) unambiguously.
    fn server_name(&mut self, name: &str, separator: Option<&str>, path: &FieldPath) -> bool {
        if let Some(problem) = identifier_problem(name) {
            self.problems
                .push(path, format!("invalid server name: {problem}"));
            return false;
        }
        let Some(separator) = separator else {
            return true;
        };
        if name.contains(separator) {
            self.problems.push(
                path,
                format!(
                    "server name contains the separator {separator:?}, so its exposed tool \
                     names could not be split back into server and tool"
                ),
            );
            return false;
        }
        // `git_` + `__` + `status` = `git___status`, which splits at the first
        // `__` into `git` and `_status`: the boundary must be where we put it.
        let joined = format!("{name}{separator}");
        if joined.find(separator) != Some(name.len()) {
            self.problems.push(
                path,
                format!(
                    "server name ends in a way that runs into the separator {separator:?}, \
                     so its exposed tool names could not be split back into server and tool"
                ),
            );
            return false;
        }
        if name.len() + separator.len() >= defaults::MAX_EXPOSED_NAME_LEN {
            self.problems.push(
                path,
                format!(
                    "server name is {} characters; with the separator {separator:?} that \
                     leaves no room for a tool name, and exposed names must match \
                     ^[a-zA-Z0-9_-]{{1,64}}$",
                    name.len()
                ),
            );
            return false;
        }
        true
    }

    fn transport(&mut self, raw: &RawServer, path: &FieldPath) -> Option<Transport> {
        #[derive(Clone, Copy, PartialEq, Eq)]
        enum Kind {
            Stdio,
            Http,
            Sse,
        }

        let kind = match raw.transport.as_deref().map(str::trim) {
            Some("stdio") => Kind::Stdio,
            Some("http") => Kind::Http,
            Some("sse") => Kind::Sse,
            Some(other) => {
                self.problems.push(
                    &path.field("transport"),
                    format!("unknown transport {other:?} (expected stdio, http or sse)"),
                );
                return None;
            }
            None => match (&raw.command, &raw.url) {
                (Some(_), None) => Kind::Stdio,
                (None, Some(_)) => Kind::Http,
                (Some(_), Some(_)) => {
                    self.problems.push(
                        path,
                        "both `command` and `url` are set: a server is either a local process \
                         (command) or a remote endpoint (url)",
                    );
                    return None;
                }
                (None, None) => {
                    self.problems.push(
                        path,
                        "one of `command` (stdio) or `url` (http, sse) is required",
                    );
                    return None;
                }
            },
        };

        let kind_name = match kind {
            Kind::Stdio => "stdio",
            Kind::Http => "http",
            Kind::Sse => "sse",
        };
        let misplaced: &[(&str, bool)] = if kind == Kind::Stdio {
            &[
                ("url", raw.url.is_some()),
                ("headers", raw.headers.is_some()),
            ]
        } else {
            &[
                ("command", raw.command.is_some()),
                ("args", raw.args.is_some()),
                ("env", raw.env.is_some()),
                ("inherit_env", raw.inherit_env.is_some()),
                ("cwd", raw.cwd.is_some()),
                ("sandbox", raw.sandbox.is_some()),
            ]
        };
        let mut ok = true;
        for (field, present) in misplaced {
            if *present {
                self.problems.push(
                    &path.field(field),
                    format!("not valid for transport {kind_name}"),
                );
                ok = false;
            }
        }

        let transport = match kind {
            Kind::Stdio => self.stdio_transport(raw, path),
            Kind::Http | Kind::Sse => {
                let url = self.url(raw.url.as_deref(), &path.field("url"));
                let headers = self.headers(raw.headers.as_ref(), &path.field("headers"));
                let (url, headers) = (url?, headers?);
                Some(if kind == Kind::Http {
                    Transport::StreamableHttp { url, headers }
                } else {
                    Transport::Sse { url, headers }
                })
            }
        };
        if ok {
            transport
        } else {
            None
        }
    }

    fn stdio_transport(&mut self, raw: &RawServer, path: &FieldPath) -> Option<Transport> {
        let mut ok = true;
        let command = match raw.command.as_deref() {
            None => {
                self.problems
                    .push(&path.field("command"), "is required for transport stdio");
                ok = false;
                String::new()
            }
            Some(command) if command.trim().is_empty() => {
                self.problems
                    .push(&path.field("command"), "must not be empty");
                ok = false;
                String::new()
            }
            Some(command) => {
                if command.contains('\0') {
                    self.problems
                        .push(&path.field("command"), "must not contain a NUL character");
                    ok = false;
                }
                command.to_owned()
            }
        };

        let args = raw.args.clone().unwrap_or_default();
        for (i, arg) in args.iter().enumerate() {
            if arg.contains('\0') {
                self.problems.push(
                    &path.field("args").index(i),
                    "must not contain a NUL character",
                );
                ok = false;
            }
        }

        let mut env = Vec::new();
        let env_path = path.field("env");
        for (name, value) in raw.env.as_ref().map_or(&[][..], |m| m.0.as_slice()) {
            let var_path = env_path.key(name);
            if !is_env_name(name) {
                self.problems.push(
                    &var_path,
                    format!(
                        "{name:?} is not a valid environment variable name \
                         (expected [A-Za-z_][A-Za-z0-9_]*)"
                    ),
                );
                ok = false;
                continue;
            }
            match self.secrets.resolve(&SecretRef::parse(value)) {
                Ok(secret) if secret.expose().contains('\0') => {
                    self.problems
                        .push(&var_path, "value must not contain a NUL character");
                    ok = false;
                }
                Ok(secret) => env.push((name.clone(), secret)),
                Err(e) => {
                    self.problems.push(&var_path, e.to_string());
                    ok = false;
                }
            }
        }

        let mut inherit_env: Vec<String> = Vec::new();
        let inherit_path = path.field("inherit_env");
        for (i, name) in raw.inherit_env.iter().flatten().enumerate() {
            let item_path = inherit_path.index(i);
            if !is_env_name(name) {
                self.problems.push(
                    &item_path,
                    format!(
                        "{name:?} is not a valid environment variable name \
                         (expected [A-Za-z_][A-Za-z0-9_]*)"
                    ),
                );
                ok = false;
            } else if inherit_env.contains(name) {
                self.problems
                    .push(&item_path, format!("duplicate variable {name:?}"));
                ok = false;
            } else if env.iter().any(|(n, _)| n == name) {
                self.problems.push(
                    &item_path,
                    format!("{name:?} is also set under `env`; choose one"),
                );
                ok = false;
            } else {
                inherit_env.push(name.clone());
            }
        }

        let cwd = match raw.cwd.as_deref() {
            None => None,
            Some("") => {
                self.problems.push(&path.field("cwd"), "must not be empty");
                ok = false;
                None
            }
            Some(cwd) if cwd.contains('\0') => {
                self.problems
                    .push(&path.field("cwd"), "must not contain a NUL character");
                ok = false;
                None
            }
            Some(cwd) => Some(join_clean(self.base_dir, Path::new(cwd))),
        };

        ok.then_some(Transport::Stdio {
            command,
            args,
            env,
            inherit_env,
            cwd,
        })
    }

    fn url(&mut self, url: Option<&str>, path: &FieldPath) -> Option<String> {
        let Some(text) = url else {
            self.problems
                .push(path, "is required for transport http and sse");
            return None;
        };
        // URLs may carry credentials, so messages here never quote them.
        match url::Url::parse(text.trim()) {
            Err(e) => {
                self.problems.push(path, format!("invalid URL: {e}"));
                None
            }
            Ok(parsed) if !matches!(parsed.scheme(), "http" | "https") => {
                self.problems.push(
                    path,
                    format!(
                        "URL scheme must be http or https, not {:?}",
                        parsed.scheme()
                    ),
                );
                None
            }
            Ok(parsed) if parsed.host_str().is_none_or(str::is_empty) => {
                self.problems.push(path, "URL has no host");
                None
            }
            Ok(parsed) if !parsed.username().is_empty() || parsed.password().is_some() => {
                self.problems.push(
                    path,
                    "URL must not embed credentials (user:password@): \
                     secrets must be referenced (env:NAME or file:PATH), not inlined; \
                     send them in `headers`",
                );
                None
            }
            Ok(_) => Some(text.trim().to_owned()),
        }
    }

    fn headers(
        &mut self,
        raw: Option<&OrderedMap<String>>,
        path: &FieldPath,
    ) -> Option<Vec<(String, Secret)>> {
        let mut ok = true;
        let mut headers: Vec<(String, Secret)> = Vec::new();
        let mut seen: Vec<String> = Vec::new();
        for (name, value) in raw.map_or(&[][..], |m| m.0.as_slice()) {
            let header_path = path.key(name);
            if let Some(problem) = header_name_problem(name) {
                self.problems.push(&header_path, problem);
                ok = false;
                continue;
            }
            let lower = name.to_ascii_lowercase();
            if seen.contains(&lower) {
                self.problems.push(
                    &header_path,
                    "duplicate header (header names are case-insensitive)",
                );
                ok = false;
                continue;
            }
            seen.push(lower);

            let reference = SecretRef::parse(value);
            if matches!(reference, SecretRef::Literal(_)) && header_looks_secret(name) {
                self.problems.push(
                    &header_path,
                    "secrets must be referenced (env:NAME or file:PATH), not inlined",
                );
                ok = false;
                continue;
            }
            match self.secrets.resolve(&reference) {
                Ok(secret) if secret.expose().chars().any(is_forbidden_in_header) => {
                    self.problems.push(
                        &header_path,
                        "value contains a control character (CR, LF, NUL, ...), \
                         which is not allowed in an HTTP header",
                    );
                    ok = false;
                }
                Ok(secret) => headers.push((name.clone(), secret)),
                Err(e) => {
                    self.problems.push(&header_path, e.to_string());
                    ok = false;
                }
            }
        }
        ok.then_some(headers)
    }

    /// `servers.NAME.credentials`: the mode, and headers per tenant and
    /// per principal (secrets referenced like every other header).
    fn server_credentials(
        &mut self,
        raw: Option<&RawServerCredentials>,
        transport: &Transport,
        isolation: Isolation,
        path: &FieldPath,
    ) -> crate::UpstreamCredentials {
        let mut out = crate::UpstreamCredentials::default();
        let Some(raw) = raw else {
            return out;
        };
        let Transport::StreamableHttp { url, .. } = transport else {
            self.problems.push(
                path,
                "upstream credentials are sent over Streamable HTTP only (transport http); \
                 a stdio server takes its secrets in `env`",
            );
            return out;
        };
        let mode = raw.mode.as_deref().map(str::trim);
        let exchange_fields = [
            ("token_endpoint", raw.token_endpoint.is_some()),
            ("client_id", raw.client_id.is_some()),
            ("client_secret", raw.client_secret.is_some()),
        ];
        let oauth_fields = [
            ("client_id", raw.client_id.is_some()),
            ("client_secret", raw.client_secret.is_some()),
            ("scopes", raw.scopes.is_some()),
            ("allow_private_network", raw.allow_private_network.is_some()),
        ];
        if mode != Some("exchange") && mode != Some("oauth") {
            for (field, present) in exchange_fields {
                if present {
                    self.problems
                        .push(&path.field(field), "only for mode exchange or oauth");
                }
            }
        }
        if mode != Some("oauth") {
            for (field, present) in &oauth_fields[2..] {
                if *present {
                    self.problems
                        .push(&path.field(field), "only for mode oauth");
                }
            }
        } else if raw.token_endpoint.is_some() {
            self.problems.push(
                &path.field("token_endpoint"),
                "not for mode oauth: the endpoints are discovered from the upstream",
            );
        }
        let audience = match raw.audience.as_deref().map(str::trim) {
            None => url.clone(),
            Some("") => {
                self.problems
                    .push(&path.field("audience"), "must not be empty");
                String::new()
            }
            Some(a) => a.to_owned(),
        };
        out.mode = match mode {
            None | Some("static") => {
                if raw.audience.is_some() {
                    self.problems
                        .push(&path.field("audience"), "only for mode mint or exchange");
                }
                CredentialMode::Static
            }
            Some("mint") => CredentialMode::Mint { audience },
            Some("exchange") => {
                let token_endpoint = match raw.token_endpoint.as_deref() {
                    None => {
                        self.problems.push(
                            &path.field("token_endpoint"),
                            "is required for mode exchange (the issuer's token endpoint)",
                        );
                        String::new()
                    }
                    Some(text) => self
                        .url(Some(text), &path.field("token_endpoint"))
                        .unwrap_or_default(),
                };
                let client_id = match raw.client_id.as_deref().map(str::trim) {
                    Some(id) if !id.is_empty() => id.to_owned(),
                    _ => {
                        self.problems.push(
                            &path.field("client_id"),
                            "is required for mode exchange (Warden's client at the token endpoint)",
                        );
                        String::new()
                    }
                };
                let client_secret = match raw.client_secret.as_deref() {
                    None => {
                        self.problems.push(
                            &path.field("client_secret"),
                            "is required for mode exchange (env:NAME or file:PATH)",
                        );
                        Secret::new("")
                    }
                    Some(text) => self.secret_reference(text, &path.field("client_secret")),
                };
                CredentialMode::Exchange {
                    audience,
                    token_endpoint,
                    client_id,
                    client_secret,
                }
            }
            Some("oauth") => {
                if raw.audience.is_some() {
                    self.problems.push(
                        &path.field("audience"),
                        "not for mode oauth: the audience is the resource the upstream names",
                    );
                }
                if isolation == Isolation::Shared {
                    self.problems.push(
                        &path.field("mode"),
                        "mode oauth carries each user's own token: it needs isolation \
                         session or principal, never shared",
                    );
                }
                let client_id = match raw.client_id.as_deref().map(str::trim) {
                    Some(id) if !id.is_empty() => id.to_owned(),
                    _ => {
                        self.problems.push(
                            &path.field("client_id"),
                            "is required for mode oauth (Warden's client at the upstream's \
                             authorization server)",
                        );
                        String::new()
                    }
                };
                let client_secret = raw
                    .client_secret
                    .as_deref()
                    .map(|text| self.secret_reference(text, &path.field("client_secret")));
                let scopes = raw
                    .scopes
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .map(|s| s.trim().to_owned())
                    .collect::<Vec<_>>();
                if scopes
                    .iter()
                    .any(|s| s.is_empty() || s.contains(char::is_whitespace))
                {
                    self.problems
                        .push(&path.field("scopes"), "each scope is one non-empty word");
                }
                CredentialMode::OAuth {
                    client_id,
                    client_secret,
                    scopes,
                    allow_private_network: raw.allow_private_network.unwrap_or(false),
                }
            }
            Some(other) => {
                self.problems.push(
                    &path.field("mode"),
                    format!("unknown mode {other:?} (expected static, mint, exchange or oauth)"),
                );
                CredentialMode::Static
            }
        };
        let mut scoped = |map: Option<&OrderedMap<OrderedMap<String>>>, field: &str| {
            let mut entries = Vec::new();
            for (who, headers) in map.map_or(&[][..], |m| m.0.as_slice()) {
                let at = path.field(field).key(who);
                if who.trim().is_empty() {
                    self.problems.push(&at, "must not be empty");
                    continue;
                }
                if let Some(h) = self.headers(Some(headers), &at) {
                    entries.push((who.clone(), h));
                }
            }
            entries
        };
        out.tenants = scoped(raw.tenants.as_ref(), "tenants");
        out.principals = scoped(raw.principals.as_ref(), "principals");
        if out.is_scoped() && isolation == Isolation::Shared {
            self.problems.push(
                path,
                "headers per tenant or principal need isolation session or principal: \
                 a shared connection would carry one caller's credential for everyone",
            );
        }
        if out.is_scoped() && !matches!(out.mode, CredentialMode::Static) {
            self.problems.push(
                path,
                "tenants and principals choose static headers: only with mode static",
            );
        }
        out
    }

    /// A secret that must be referenced (`env:NAME`, `file:PATH`).
    fn secret_reference(&mut self, text: &str, path: &FieldPath) -> Secret {
        let reference = SecretRef::parse(text);
        if matches!(reference, SecretRef::Literal(_)) {
            self.problems.push(
                path,
                "secrets must be referenced (env:NAME or file:PATH), not inlined",
            );
            return Secret::new("");
        }
        match self.secrets.resolve(&reference) {
            Ok(s) => s,
            Err(e) => {
                self.problems.push(path, e.to_string());
                Secret::new("")
            }
        }
    }

    fn restart(&mut self, raw: Option<&RawRestart>, path: &FieldPath) -> RestartPolicy {
        let mut policy = RestartPolicy::default();
        let Some(raw) = raw else {
            return policy;
        };
        let initial = self.duration(raw.initial_backoff.clone(), &path.field("initial_backoff"));
        let max = self.duration(raw.max_backoff.clone(), &path.field("max_backoff"));
        if let Some(initial) = initial {
            policy.initial_backoff = initial;
        }
        if let Some(max) = max {
            policy.max_backoff = max;
        }
        let both_valid = raw.initial_backoff.is_none() == initial.is_none()
            && raw.max_backoff.is_none() == max.is_none();
        if both_valid && policy.max_backoff < policy.initial_backoff {
            self.problems.push(
                &path.field("max_backoff"),
                format!(
                    "must be at least initial_backoff ({} < {})",
                    humantime::format_duration(policy.max_backoff),
                    humantime::format_duration(policy.initial_backoff),
                ),
            );
        }
        policy
    }

    // ----- virtual servers ----------------------------------------------

    fn virtual_server(
        &mut self,
        name: String,
        raw: Option<RawVirtualServer>,
        server_names: &[&str],
        separator: Option<&str>,
        path: &FieldPath,
    ) -> Option<VirtualServer> {
        let mut ok = true;
        if let Some(problem) = identifier_problem(&name) {
            self.problems
                .push(path, format!("invalid virtual server name: {problem}"));
            ok = false;
        }
        let raw = raw.unwrap_or_default();

        let servers_path = path.field("servers");
        let servers = match raw.servers {
            None => {
                self.problems
                    .push(&servers_path, "is required: list the servers to include");
                ok = false;
                Vec::new()
            }
            Some(list) => {
                if list.is_empty() {
                    self.problems.push(&servers_path, "must not be empty");
                    ok = false;
                }
                for (i, server) in list.iter().enumerate() {
                    if !server_names.contains(&server.as_str()) {
                        self.problems
                            .push(&servers_path.index(i), format!("unknown server {server:?}"));
                        ok = false;
                    } else if list[..i].contains(server) {
                        self.problems.push(
                            &servers_path.index(i),
                            format!("duplicate server {server:?}"),
                        );
                        ok = false;
                    }
                }
                list
            }
        };

        let namespace = raw.namespace.unwrap_or(true);
        if !namespace && servers.len() != 1 {
            self.problems.push(
                &path.field("namespace"),
                "false is allowed only for a virtual server of exactly one server \
                 (names of several servers could collide)",
            );
            ok = false;
        }
        let tools = raw.tools.map(|patterns| {
            let tools_path = path.field("tools");
            if patterns.is_empty() {
                self.problems.push(
                    &tools_path,
                    "must not be empty (remove `tools` to expose every tool of the servers)",
                );
                ok = false;
            }
            for (i, pattern) in patterns.iter().enumerate() {
                let problem = tool_pattern_problem(pattern).or_else(|| {
                    if patterns[..i].contains(pattern) {
                        return Some(format!("duplicate pattern {pattern:?}"));
                    }
                    let separator = separator.filter(|_| namespace)?;
                    let known: Vec<&String> = servers
                        .iter()
                        .filter(|s| server_names.contains(&s.as_str()))
                        .collect();
                    if known.is_empty() {
                        return None;
                    }
                    let reachable = known.iter().any(|server| {
                        could_match_with_prefix(pattern, &format!("{server}{separator}"))
                    });
                    (!reachable).then(|| {
                        let prefixes: Vec<String> = known
                            .iter()
                            .map(|s| format!("{s}{separator}<tool>"))
                            .collect();
                        format!(
                            "pattern {pattern:?} can match no tool of this virtual server \
                             (its exposed names look like {})",
                            prefixes.join(", ")
                        )
                    })
                });
                if let Some(problem) = problem {
                    self.problems.push(&tools_path.index(i), problem);
                    ok = false;
                }
            }
            patterns
        });

        ok.then_some(VirtualServer {
            name,
            servers,
            tools,
            namespace,
        })
    }

    // ----- stdio --------------------------------------------------------

    fn stdio(&mut self, raw: RawStdio, context: &Context<'_>, path: &FieldPath) -> StdioSettings {
        let principal = match raw.principal {
            Some(principal) => {
                if let Some(problem) = principal_problem(&principal) {
                    self.problems.push(&path.field("principal"), problem);
                }
                principal
            }
            None => defaults::stdio_principal(context.env),
        };
        StdioSettings { principal }
    }

    // ----- registry -----------------------------------------------------

    fn registry(&mut self, raw: RawRegistry, path: &FieldPath) -> RegistrySettings {
        let mut settings = RegistrySettings::in_dir(self.base_dir);
        if let Some(lock) = raw.lock {
            if lock.trim().is_empty() {
                self.problems.push(&path.field("lock"), "must not be empty");
            } else {
                settings.lock = join_clean(self.base_dir, Path::new(&lock));
            }
        }
        match raw.mode.as_deref() {
            None | Some("strict") => {}
            Some("tofu") => settings.mode = warden_registry::Mode::Tofu,
            Some(other) => self.problems.push(
                &path.field("mode"),
                format!("unknown mode {other:?}: expected \"strict\" or \"tofu\""),
            ),
        }
        if let Some(text) = raw.revalidate_after {
            match parse_duration(&text) {
                Ok(d) => settings.revalidate_after = d,
                Err(e) => self
                    .problems
                    .push(&path.field("revalidate_after"), e.to_string()),
            }
        }
        if let Some(scanner) = raw.scanner {
            let sp = path.field("scanner");
            let mut severity =
                |raw: Option<String>, key: &str, into: &mut warden_registry::Severity| {
                    if let Some(text) = raw {
                        match text.parse() {
                            Ok(s) => *into = s,
                            Err(()) => self.problems.push(
                                &sp.field(key),
                                format!(
                                "unknown severity {text:?}: expected low, medium, high or critical"
                            ),
                            ),
                        }
                    }
                };
            let t = &mut settings.scanner.thresholds;
            severity(scanner.warn_at, "warn_at", &mut t.warn_at);
            severity(scanner.block_at, "block_at", &mut t.block_at);
            if let Some(n) = scanner.block_on_distinct_rules {
                match n.trim().parse::<usize>() {
                    Ok(n) => settings.scanner.thresholds.block_on_distinct_rules = n,
                    Err(_) => self.problems.push(
                        &sp.field("block_on_distinct_rules"),
                        format!("{n:?} is not a count (0 = never)"),
                    ),
                }
            }
            let known = warden_registry::Scanner::rules();
            for (i, rule) in scanner
                .disabled_rules
                .unwrap_or_default()
                .into_iter()
                .enumerate()
            {
                if known.iter().any(|r| r.id == rule) {
                    settings.scanner.disabled_rules.push(rule);
                } else {
                    self.problems.push(
                        &sp.field("disabled_rules").index(i),
                        format!("unknown scanner rule {rule:?}"),
                    );
                }
            }
            if let Some(raw) = scanner.classifier {
                settings.classifier = self.classifier(raw, &sp.field("classifier"));
                if settings
                    .classifier
                    .as_ref()
                    .is_some_and(|c| c.on_error == warden_classifier::OnError::Block)
                {
                    // Fail closed: an unanswered item blocks.
                    settings.scanner.severities.push((
                        "classifier.unavailable".to_owned(),
                        warden_registry::Severity::High,
                    ));
                }
            }
        }
        settings
    }

    // ----- scalars ------------------------------------------------------

    /// `registry.scanner.classifier`.
    fn classifier(
        &mut self,
        raw: crate::raw::RawClassifier,
        path: &FieldPath,
    ) -> Option<warden_classifier::ClassifierSettings> {
        let url = match raw.url.as_deref().map(url::Url::parse) {
            None => {
                self.problems
                    .push(&path.field("url"), "required: the classifier service's URL");
                None
            }
            Some(Err(e)) => {
                self.problems
                    .push(&path.field("url"), format!("not a URL: {e}"));
                None
            }
            Some(Ok(u)) if !matches!(u.scheme(), "http" | "https") => {
                self.problems
                    .push(&path.field("url"), "must be an http or https URL");
                None
            }
            Some(Ok(u)) if !u.username().is_empty() || u.password().is_some() => {
                self.problems.push(
                    &path.field("url"),
                    "must not carry credentials (user:password@)",
                );
                None
            }
            Some(Ok(u)) => Some(u),
        };
        let timeout = self
            .duration(raw.timeout, &path.field("timeout"))
            .unwrap_or(Duration::from_secs(5));
        let threshold = match raw.threshold.as_deref().map(str::trim) {
            None => Some(0.5),
            Some(t) => match t.parse::<f32>() {
                Ok(v) if v.is_finite() && v > 0.0 && v <= 1.0 => Some(v),
                _ => {
                    self.problems.push(
                        &path.field("threshold"),
                        format!("{t:?} is not a score in (0, 1]"),
                    );
                    None
                }
            },
        };
        let labels = raw.labels.unwrap_or_else(|| vec!["INJECTION".to_owned()]);
        if labels.is_empty() || labels.iter().any(|l| l.trim().is_empty()) {
            self.problems
                .push(&path.field("labels"), "needs at least one non-empty label");
        }
        let on_error = match raw.on_error.as_deref() {
            None | Some("warn") => Some(warden_classifier::OnError::Warn),
            Some("block") => Some(warden_classifier::OnError::Block),
            Some(other) => {
                self.problems.push(
                    &path.field("on_error"),
                    format!("unknown fail mode {other:?}: expected warn or block"),
                );
                None
            }
        };
        Some(warden_classifier::ClassifierSettings {
            url: url?,
            timeout,
            threshold: threshold?,
            labels,
            on_error: on_error?,
        })
    }

    fn duration(&mut self, raw: Option<String>, path: &FieldPath) -> Option<Duration> {
        let text = raw?;
        match parse_duration(&text) {
            Ok(d) if d.is_zero() => {
                self.problems.push(path, "must be greater than zero");
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.problems.push(path, e.to_string());
                None
            }
        }
    }

    fn size(&mut self, raw: Option<String>, path: &FieldPath) -> Option<usize> {
        let text = raw?;
        match parse_size(&text) {
            Ok(0) => {
                self.problems.push(path, "must be greater than zero");
                None
            }
            Ok(n) => Some(n),
            Err(e) => {
                self.problems.push(path, e.to_string());
                None
            }
        }
    }

    fn count_in(
        &mut self,
        raw: Option<String>,
        path: &FieldPath,
        range: std::ops::RangeInclusive<usize>,
    ) -> Option<usize> {
        let text = raw?;
        match parse_count(&text) {
            Ok(n) if range.contains(&n) => Some(n),
            Ok(n) => {
                let message = if *range.end() == usize::MAX {
                    format!("must be at least {}, got {n}", range.start())
                } else {
                    format!(
                        "must be between {} and {}, got {n}",
                        range.start(),
                        range.end()
                    )
                };
                self.problems.push(path, message);
                None
            }
            Err(e) => {
                self.problems.push(path, e.to_string());
                None
            }
        }
    }
}

// ----- checks shared by several sections ---------------------------------

/// `^[A-Za-z0-9_-]{1,64}$`: server and virtual server names.
fn identifier_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("must not be empty".to_owned());
    }
    if let Some(bad) = name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-')))
    {
        return Some(format!(
            "{name:?} contains {bad:?}; names must match ^[A-Za-z0-9_-]{{1,64}}$"
        ));
    }
    if name.len() > 64 {
        return Some(format!(
            "{} characters long; names must match ^[A-Za-z0-9_-]{{1,64}}$",
            name.len()
        ));
    }
    None
}

fn separator_problem(separator: &str) -> Option<String> {
    if separator.is_empty() {
        return Some("must not be empty".to_owned());
    }
    if !separator
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
    {
        return Some(format!(
            "{separator:?} may only contain A-Z, a-z, 0-9, _ and - \
             (exposed names must match ^[a-zA-Z0-9_-]{{1,64}}$)"
        ));
    }
    // One character of server name and one of tool name must still fit.
    if separator.len() > defaults::MAX_EXPOSED_NAME_LEN - 2 {
        return Some(format!(
            "{} characters long; exposed names (server + separator + tool) must fit in {} \
             characters",
            separator.len(),
            defaults::MAX_EXPOSED_NAME_LEN
        ));
    }
    None
}

fn tool_pattern_problem(pattern: &str) -> Option<String> {
    if pattern.is_empty() {
        return Some("must not be empty".to_owned());
    }
    if !pattern.chars().all(is_pattern_char) {
        return Some(format!(
            "pattern {pattern:?} may only contain A-Z, a-z, 0-9, _, - and the wildcard *"
        ));
    }
    let literal_len = pattern.chars().filter(|&c| c != '*').count();
    if literal_len > defaults::MAX_EXPOSED_NAME_LEN {
        return Some(format!(
            "pattern {pattern:?} can never match: exposed names are at most {} characters",
            defaults::MAX_EXPOSED_NAME_LEN
        ));
    }
    None
}

/// Free text shown to clients or operators (gateway name).
fn display_text_problem(text: &str, max_len: usize) -> Option<String> {
    if text.trim().is_empty() {
        Some("must not be empty".to_owned())
    } else if text.chars().any(char::is_control) {
        Some("must not contain control characters".to_owned())
    } else if text.len() > max_len {
        Some(format!("must be at most {max_len} bytes"))
    } else {
        None
    }
}

/// A principal name: what audit records and policy see for `warden stdio`.
pub(crate) fn principal_problem(principal: &str) -> Option<String> {
    display_text_problem(principal, 256)
}

/// RFC 9110 `token`, and not one of the headers the gateway itself owns.
fn header_name_problem(name: &str) -> Option<String> {
    const TCHAR_PUNCT: &str = "!#$%&'*+-.^_`|~";
    if name.is_empty() {
        return Some("header name must not be empty".to_owned());
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || TCHAR_PUNCT.contains(c))
    {
        return Some(format!("{name:?} is not a valid HTTP header name"));
    }
    const MANAGED: &[&str] = &[
        "accept",
        "connection",
        "content-length",
        "content-type",
        "host",
        "keep-alive",
        "last-event-id",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    ];
    let lower = name.to_ascii_lowercase();
    if MANAGED.contains(&lower.as_str()) || lower.starts_with("mcp-") {
        return Some(format!(
            "header {name:?} is set by the gateway and cannot be configured"
        ));
    }
    None
}

/// What `http::HeaderValue` refuses: control characters other than tab.
fn is_forbidden_in_header(c: char) -> bool {
    (c.is_ascii_control() && c != '\t') || c == '\u{7f}'
}

/// `http://LocalHost:6274/` → `http://localhost:6274`: the form browsers
/// send in `Origin`, so the gateway can compare strings.
fn normalize_origin(origin: &str) -> Result<String, String> {
    let text = origin.trim();
    if text == "*" {
        return Err("wildcard origins are not supported: list each allowed origin".to_owned());
    }
    if text == "null" {
        return Err(
            "the \"null\" origin is sent by sandboxed and file: pages and cannot be trusted"
                .to_owned(),
        );
    }
    let invalid = || {
        format!(
            "invalid origin {origin:?}: expected scheme://host[:port], \
             e.g. \"http://localhost:6274\""
        )
    };
    let parsed = url::Url::parse(text).map_err(|_| invalid())?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(format!(
            "invalid origin {origin:?}: the scheme must be http or https"
        ));
    }
    if parsed.host_str().is_none_or(str::is_empty)
        || !parsed.username().is_empty()
        || parsed.password().is_some()
        || parsed.path() != "/"
        || parsed.query().is_some()
        || parsed.fragment().is_some()
    {
        return Err(invalid());
    }
    Ok(parsed.origin().ascii_serialization())
}

/// `Example.COM:8443` → `example.com:8443`, after checking that it is a
/// host (name, IPv4 or bracketed IPv6) with an optional port and nothing else.
fn normalize_host(host: &str) -> Result<String, String> {
    let text = host.trim();
    let invalid =
        || format!("invalid host {host:?}: expected a host or host:port, e.g. \"localhost:8080\"");
    if text.is_empty() || text.contains(['/', '@', '?', '#', '*', '\\']) || text.contains(' ') {
        return Err(invalid());
    }
    let parsed = url::Url::parse(&format!("http://{text}")).map_err(|_| invalid())?;
    if parsed.host_str().is_none_or(str::is_empty) || parsed.path() != "/" {
        return Err(invalid());
    }
    Ok(text.to_ascii_lowercase())
}

/// `base/./sub` → `base/sub`; `..` is kept (resolving it lexically would be
/// wrong across symlinks). An absolute `path` replaces `base`.
pub(crate) fn join_clean(base: &Path, path: &Path) -> PathBuf {
    let joined = base.join(path);
    let mut clean: PathBuf = joined
        .components()
        .filter(|c| !matches!(c, Component::CurDir))
        .collect();
    if clean.as_os_str().is_empty() {
        clean.push(".");
    }
    clean
}
