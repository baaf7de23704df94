//! Plain configuration compiled into Cedar text: the built-in policies,
//! role grants and approval rules. One engine evaluates it all, and
//! `warden policy explain` shows exactly what runs.
//!
//! Generated ids (reserved; files cannot use them):
//! - `warden.<name>` built in;
//! - `role.<role>.grants[<i>].<tools|resources|prompts>.<server>.<discover|use>`
//!   and `role.<role>.grants[<i>].<sampling|elicitation>`;
//! - `approval.<id>`.

use std::fmt::Write as _;

use crate::args::ArgType;
use crate::glob::{cedar_like, cedar_prefix_like, cedar_string};
use crate::settings::{ApprovalRule, Constraint, Grant, ItemPattern, RawLiteral, Role};

/// A generated policy: its id, its text (with `@id`), and where in the
/// configuration it comes from.
#[derive(Debug, Clone)]
pub(crate) struct Generated {
    pub id: String,
    pub text: String,
    pub origin: String,
}

/// The tenancy rule: nothing scoped to other tenants is visible or usable.
/// A forbid, so no permit (a role, a file) can ever override it.
pub(crate) const TENANCY_ID: &str = "warden.tenancy";

pub(crate) fn builtins() -> Vec<Generated> {
    vec![Generated {
        id: TENANCY_ID.into(),
        text: format!(
            "// Servers, tools, resources and prompts scoped to tenants are invisible\n\
             // and unusable for principals of any other tenant (or of none).\n\
             @id(\"{TENANCY_ID}\")\n\
             @reason(\"cross_tenant\")\n\
             forbid (principal, action, resource)\n\
             unless {{\n  \
               resource.tenants.isEmpty() ||\n  \
               (principal has tenant && resource.tenants.contains(principal.tenant))\n\
             }};\n"
        ),
        origin: "built in".into(),
    }]
}

const DISCOVER: &str = "Warden::Action::\"discover\"";

/// The kinds a grant can name, with their entity type and use actions.
#[derive(Clone, Copy)]
enum Kind {
    Tools,
    Resources,
    Prompts,
}

impl Kind {
    fn key(self) -> &'static str {
        match self {
            Kind::Tools => "tools",
            Kind::Resources => "resources",
            Kind::Prompts => "prompts",
        }
    }

    fn entity(self) -> &'static str {
        match self {
            Kind::Tools => "Warden::Tool",
            Kind::Resources => "Warden::Resource",
            Kind::Prompts => "Warden::Prompt",
        }
    }

    fn use_actions(self) -> &'static str {
        match self {
            Kind::Tools => "action == Warden::Action::\"call_tool\"",
            Kind::Resources => {
                "action in [Warden::Action::\"read_resource\", Warden::Action::\"subscribe\"]"
            }
            Kind::Prompts => "action == Warden::Action::\"get_prompt\"",
        }
    }

    /// Argument constraints apply to calls and prompts, which carry
    /// arguments.
    fn has_arguments(self) -> bool {
        !matches!(self, Kind::Resources)
    }
}

pub(crate) fn roles(roles: &[Role]) -> Vec<Generated> {
    let mut out = Vec::new();
    for role in roles {
        for (i, grant) in role.grants.iter().enumerate() {
            let base = format!("role.{}.grants[{i}]", role.name);
            let who = Who {
                roles: std::slice::from_ref(&role.name),
                groups: &role.groups,
            };
            for (kind, patterns) in [
                (Kind::Tools, &grant.tools),
                (Kind::Resources, &grant.resources),
                (Kind::Prompts, &grant.prompts),
            ] {
                for (server, names) in by_server(patterns) {
                    let label = if server == "*" {
                        "any"
                    } else {
                        server.as_str()
                    };
                    let common = Common {
                        who: &who,
                        kind,
                        server: &server,
                        names: &names,
                        grant,
                    };
                    for discover in [true, false] {
                        let id = format!(
                            "{base}.{}.{label}.{}",
                            kind.key(),
                            if discover { "discover" } else { "use" }
                        );
                        out.push(Generated {
                            text: grant_policy(&id, &common, discover),
                            id,
                            origin: grant.path.clone(),
                        });
                    }
                }
            }
            for (key, action, servers) in [
                ("sampling", "sample", &grant.sampling),
                ("elicitation", "elicit", &grant.elicitation),
            ] {
                if servers.is_empty() {
                    continue;
                }
                let id = format!("{base}.{key}");
                out.push(Generated {
                    text: server_policy(&id, &who, action, servers, grant),
                    id,
                    origin: grant.path.clone(),
                });
            }
        }
    }
    out
}

pub(crate) fn approvals(rules: &[ApprovalRule]) -> Vec<Generated> {
    let mut out = Vec::new();
    for (i, rule) in rules.iter().enumerate() {
        let origin = format!("authorization.approvals[{i}]");
        let server_requests = !rule.sampling.is_empty() || !rule.elicitation.is_empty();
        let items = !rule.tools.is_empty()
            || !rule.resources.is_empty()
            || !rule.prompts.is_empty()
            || !rule.risk.is_empty();
        // A rule naming only server requests holds nothing else.
        if items || !server_requests {
            let id = format!("approval.{}", rule.id);
            out.push(Generated {
                text: approval_policy(&id, rule),
                id,
                origin: origin.clone(),
            });
        }
        // Server-to-client requests (T26): one policy per kind, on the
        // server that asks.
        for (key, action, servers) in [
            ("sampling", "sample", &rule.sampling),
            ("elicitation", "elicit", &rule.elicitation),
        ] {
            if servers.is_empty() {
                continue;
            }
            let id = format!("approval.{}.{key}", rule.id);
            out.push(Generated {
                text: server_request_approval(&id, rule, action, servers),
                id,
                origin: origin.clone(),
            });
        }
    }
    out
}

/// The approval policy that holds `action` (`sample`, `elicit`) from
/// `servers` (globs).
fn server_request_approval(
    id: &str,
    rule: &ApprovalRule,
    action: &str,
    servers: &[String],
) -> String {
    let who = Who {
        roles: &rule.roles,
        groups: &rule.groups,
    };
    let (principal, member) = who.scope();
    let mut conds: Vec<String> = Vec::new();
    conds.extend(member);
    if !servers.iter().any(|s| s == "*") {
        if let Some(n) = names_condition("resource.name", servers) {
            conds.push(n);
        }
    }
    if let Some(e) = environments_condition(&rule.environments) {
        conds.push(e);
    }
    let mut text = approval_header(id, rule);
    write_policy(
        &mut text,
        "forbid",
        &principal,
        &format!("action == Warden::Action::{}", cedar_string(action)),
        "resource is Warden::Server",
        &conds,
    );
    text
}

struct Who<'a> {
    roles: &'a [String],
    groups: &'a [String],
}

impl Who<'_> {
    /// The principal scope, and a condition when membership needs one.
    fn scope(&self) -> (String, Option<String>) {
        match (self.roles, self.groups) {
            ([], []) => ("principal".into(), None),
            ([role], []) => (
                format!("principal in Warden::Role::{}", cedar_string(role)),
                None,
            ),
            ([], [group]) => (
                format!("principal in Warden::Group::{}", cedar_string(group)),
                None,
            ),
            (roles, groups) => {
                let terms: Vec<String> = roles
                    .iter()
                    .map(|r| format!("principal in Warden::Role::{}", cedar_string(r)))
                    .chain(
                        groups
                            .iter()
                            .map(|g| format!("principal in Warden::Group::{}", cedar_string(g))),
                    )
                    .collect();
                ("principal".into(), Some(paren_or(&terms)))
            }
        }
    }
}

struct Common<'a> {
    who: &'a Who<'a>,
    kind: Kind,
    server: &'a str,
    names: &'a [String],
    grant: &'a Grant,
}

/// Patterns grouped by server pattern, in first-seen order; a `*` name
/// absorbs the others of its server.
fn by_server(patterns: &[ItemPattern]) -> Vec<(String, Vec<String>)> {
    let mut groups: Vec<(String, Vec<String>)> = Vec::new();
    for p in patterns {
        match groups.iter_mut().find(|(s, _)| *s == p.server) {
            Some((_, names)) => {
                if !names.contains(&p.name) {
                    names.push(p.name.clone());
                }
            }
            None => groups.push((p.server.clone(), vec![p.name.clone()])),
        }
    }
    for (_, names) in &mut groups {
        if names.iter().any(|n| n == "*") {
            *names = vec!["*".into()];
        }
    }
    groups
}

fn grant_policy(id: &str, c: &Common<'_>, discover: bool) -> String {
    let (principal, member) = c.who.scope();
    let action = if discover {
        format!("action == {DISCOVER}")
    } else {
        c.kind.use_actions().to_owned()
    };
    let mut conds: Vec<String> = Vec::new();
    conds.extend(member);
    let resource = server_scope(c.kind.entity(), c.server, &mut conds);
    if let Some(n) = names_condition("resource.name", c.names) {
        conds.push(n);
    }
    if let Some(t) = c.grant.max_risk {
        conds.push(format!("resource.risk_level <= {}", t.level()));
    }
    if let Some(e) = environments_condition(&c.grant.environments) {
        conds.push(e);
    }
    if !discover && c.kind.has_arguments() {
        for (name, ty, constraint) in &c.grant.constraints {
            conds.push(constraint_condition(name, ty, constraint));
        }
    }
    let mut text = format!("// {}\n@id({})\n", c.grant.path, cedar_string(id));
    write_policy(&mut text, "permit", &principal, &action, &resource, &conds);
    text
}

fn server_policy(
    id: &str,
    who: &Who<'_>,
    action: &str,
    servers: &[String],
    grant: &Grant,
) -> String {
    let (principal, member) = who.scope();
    let mut conds: Vec<String> = Vec::new();
    conds.extend(member);
    let exact: Vec<&String> = servers.iter().filter(|s| !s.contains('*')).collect();
    let resource = if servers.iter().any(|s| s == "*") {
        "resource is Warden::Server".to_owned()
    } else if let ([one], true) = (exact.as_slice(), servers.len() == 1) {
        format!("resource == Warden::Server::{}", cedar_string(one))
    } else {
        if let Some(n) = names_condition("resource.name", servers) {
            conds.push(n);
        }
        "resource is Warden::Server".to_owned()
    };
    if let Some(e) = environments_condition(&grant.environments) {
        conds.push(e);
    }
    let mut text = format!("// {}\n@id({})\n", grant.path, cedar_string(id));
    write_policy(
        &mut text,
        "permit",
        &principal,
        &format!("action == Warden::Action::{}", cedar_string(action)),
        &resource,
        &conds,
    );
    text
}

/// An approval policy's comment and annotations: its id, the facts the
/// approval must carry, who may approve (left out for the default, the
/// caller).
fn approval_header(id: &str, rule: &ApprovalRule) -> String {
    let facts: Vec<&str> = rule.requires.iter().map(|f| f.as_str()).collect();
    let mut text = format!(
        "// authorization.approvals: {}\n@id({})\n@requires_approval({})\n",
        rule.id,
        cedar_string(id),
        cedar_string(&facts.join(" "))
    );
    if rule.approvers != crate::settings::Approvers::default() {
        text.push_str(&format!(
            "@approvers({})\n",
            cedar_string(&rule.approvers.text())
        ));
    }
    text
}

fn approval_policy(id: &str, rule: &ApprovalRule) -> String {
    let who = Who {
        roles: &rule.roles,
        groups: &rule.groups,
    };
    let (principal, member) = who.scope();
    let mut conds: Vec<String> = Vec::new();
    conds.extend(member);
    let mut actions: Vec<&str> = Vec::new();
    let mut what: Vec<String> = Vec::new();
    for (kind, patterns, acts) in [
        (Kind::Tools, &rule.tools, &["call_tool"][..]),
        (
            Kind::Resources,
            &rule.resources,
            &["read_resource", "subscribe"][..],
        ),
        (Kind::Prompts, &rule.prompts, &["get_prompt"][..]),
    ] {
        if patterns.is_empty() {
            continue;
        }
        actions.extend(acts);
        for (server, names) in by_server(patterns) {
            let mut parts = vec![format!("resource is {}", kind.entity())];
            if server != "*" {
                parts.push(if server.contains('*') {
                    format!("resource.server like {}", cedar_like(&server))
                } else {
                    format!("resource.server == {}", cedar_string(&server))
                });
            }
            if let Some(n) = names_condition("resource.name", &names) {
                parts.push(n);
            }
            what.push(format!("({})", parts.join(" && ")));
        }
    }
    if actions.is_empty() {
        actions = vec!["call_tool", "read_resource", "get_prompt", "subscribe"];
    }
    if !what.is_empty() {
        conds.push(paren_or(&what));
    }
    if !rule.risk.is_empty() {
        let tiers: Vec<String> = rule.risk.iter().map(|t| cedar_string(t.as_str())).collect();
        conds.push(format!("[{}].contains(resource.risk)", tiers.join(", ")));
    }
    if let Some(e) = environments_condition(&rule.environments) {
        conds.push(e);
    }
    let action = match actions.as_slice() {
        [one] => format!("action == Warden::Action::{}", cedar_string(one)),
        many => format!(
            "action in [{}]",
            many.iter()
                .map(|a| format!("Warden::Action::{}", cedar_string(a)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let mut text = approval_header(id, rule);
    write_policy(&mut text, "forbid", &principal, &action, "resource", &conds);
    text
}

/// `resource is <T> in Warden::Server::"s"` for an exact server; a `like`
/// condition for a server glob; nothing more for `*`.
fn server_scope(entity: &str, server: &str, conds: &mut Vec<String>) -> String {
    if server == "*" {
        format!("resource is {entity}")
    } else if server.contains('*') {
        conds.push(format!("resource.server like {}", cedar_like(server)));
        format!("resource is {entity}")
    } else {
        format!(
            "resource is {entity} in Warden::Server::{}",
            cedar_string(server)
        )
    }
}

/// Exact names as one set lookup, globs as `like`; `None` when `*` is among
/// them (everything).
fn names_condition(attr: &str, names: &[String]) -> Option<String> {
    if names.iter().any(|n| n == "*") {
        return None;
    }
    let exact: Vec<String> = names
        .iter()
        .filter(|n| !n.contains('*'))
        .map(|n| cedar_string(n))
        .collect();
    let mut terms: Vec<String> = Vec::new();
    match exact.as_slice() {
        [] => {}
        [one] => terms.push(format!("{attr} == {one}")),
        many => terms.push(format!("[{}].contains({attr})", many.join(", "))),
    }
    for g in names.iter().filter(|n| n.contains('*')) {
        terms.push(format!("{attr} like {}", cedar_like(g)));
    }
    Some(paren_or(&terms))
}

fn environments_condition(envs: &[String]) -> Option<String> {
    match envs {
        [] => None,
        [one] => Some(format!(
            "context has environment && context.environment == {}",
            cedar_string(one)
        )),
        many => Some(format!(
            "context has environment && [{}].contains(context.environment)",
            many.iter()
                .map(|e| cedar_string(e))
                .collect::<Vec<_>>()
                .join(", ")
        )),
    }
}

/// `context.arguments.repo` or `context.arguments["my-arg"]`.
pub(crate) fn argument_access(name: &str) -> String {
    if is_identifier(name) {
        format!("context.arguments.{name}")
    } else {
        format!("context.arguments[{}]", cedar_string(name))
    }
}

fn argument_has(name: &str) -> String {
    if is_identifier(name) {
        format!("context.arguments has {name}")
    } else {
        format!("context.arguments has {}", cedar_string(name))
    }
}

fn is_identifier(s: &str) -> bool {
    const RESERVED: [&str; 12] = [
        "true",
        "false",
        "if",
        "then",
        "else",
        "in",
        "like",
        "has",
        "is",
        "principal",
        "action",
        "resource",
    ];
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !RESERVED.contains(&s)
        && !s.starts_with("__cedar")
}

fn constraint_condition(name: &str, ty: &ArgType, c: &Constraint) -> String {
    let a = argument_access(name);
    let is_set = matches!(ty, ArgType::Set(_));
    let mut terms: Vec<String> = Vec::new();
    if !c.one_of.is_empty() {
        let values: Vec<String> = c
            .one_of
            .iter()
            .map(|l| match l {
                RawLiteral::Long(n) => n.to_string(),
                RawLiteral::String(s) => cedar_string(s),
            })
            .collect();
        let set = format!("[{}]", values.join(", "));
        terms.push(if is_set {
            format!("{set}.containsAll({a})")
        } else {
            format!("{set}.contains({a})")
        });
    }
    if !c.like.is_empty() {
        let likes: Vec<String> = c
            .like
            .iter()
            .map(|g| format!("{a} like {}", cedar_like(g)))
            .collect();
        terms.push(paren_or(&likes));
    }
    if let Some(p) = &c.prefix {
        terms.push(format!("{a} like {}", cedar_prefix_like(p)));
    }
    if !c.email_domain.is_empty() {
        let domains: Vec<String> = c.email_domain.iter().map(|d| cedar_string(d)).collect();
        terms.push(if is_set {
            format!("[{}].containsAll({a}.domains)", domains.join(", "))
        } else {
            format!("[{}].contains({a}.domain)", domains.join(", "))
        });
    }
    if let Some(min) = c.min {
        terms.push(format!("{a} >= {min}"));
    }
    if let Some(max) = c.max {
        terms.push(format!("{a} <= {max}"));
    }
    let body = terms.join(" && ");
    if c.optional {
        // `!(has) || …` does not convince the validator; `if` does.
        format!("(if {} then {body} else true)", argument_has(name))
    } else {
        format!("{} && {body}", argument_has(name))
    }
}

fn paren_or(terms: &[String]) -> String {
    match terms {
        [one] => one.clone(),
        many => format!("({})", many.join(" || ")),
    }
}

fn write_policy(
    out: &mut String,
    effect: &str,
    principal: &str,
    action: &str,
    resource: &str,
    conds: &[String],
) {
    let _ = write!(
        out,
        "{effect} (\n  {principal},\n  {action},\n  {resource}\n)"
    );
    if conds.is_empty() {
        out.push_str(";\n");
    } else {
        out.push_str(" when {\n  ");
        out.push_str(&conds.join(" &&\n  "));
        out.push_str("\n};\n");
    }
}
