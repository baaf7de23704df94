//! The `authorization:` section of `warden.yaml`: [`RawAuthorization`] as
//! written (serde, unknown keys refused), resolved into validated
//! [`AuthzSettings`]. Every problem is collected with its path
//! (`authorization.roles.analyst.grants[0].tools[1]`), so one
//! `warden check` lists them all. Policy files are read and parsed here, and
//! validated strictly against the schema, so a bad file is reported with the
//! path of its entry.
//!
//! The operator reference, with an example, is this crate's `README.md`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use cedar_policy::{Effect, Policy, PolicyId, PolicySet};
use serde::de::{self, Deserializer, Visitor};
use serde::Deserialize;

use crate::args::ArgType;
use crate::catalog::RiskTier;
use crate::request::ActionName;
use crate::schema;

/// `(path, message)` pairs: every problem of the section, in file order.
pub type SettingsErrors = Vec<(String, String)>;

// ----- the file as written --------------------------------------------------

/// The `authorization:` section as written. Every key is optional: with
/// none, nothing is allowed (default deny).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawAuthorization {
    /// Tier of tools, resources and prompts the catalog does not describe:
    /// `low | medium | high | critical` (default `medium`).
    pub default_risk: Option<String>,
    /// IANA time zone for `context.time` (default `UTC`).
    pub time_zone: Option<String>,
    /// Answer a denied call as if the tool did not exist, for deployments
    /// that must not reveal what exists (default false). Read by the gateway.
    pub deny_as_unknown: Option<bool>,
    /// Argument names policies may read, with their type: `string`, `long`,
    /// `decimal`, `bool`, `path`, `email`, `ipaddr`, `set<…>`, or a mapping
    /// for an object.
    pub arguments: Option<BTreeMap<String, RawArgType>>,
    /// Role name (as in the token's roles claim) → what it grants.
    pub roles: Option<BTreeMap<String, RawRole>>,
    /// Calls that need a human approval even when allowed.
    pub approvals: Option<Vec<RawApproval>>,
    /// Cedar policy files or directories (every `*.cedar` inside), relative
    /// to the configuration file.
    pub policies: Option<Vec<String>>,
    /// OAuth scopes operations need.
    pub scopes: Option<RawScopes>,
}

/// An argument type: a name (`string`, `set<email>`) or a mapping (record).
#[derive(Debug, Clone)]
pub enum RawArgType {
    Name(String),
    Record(BTreeMap<String, RawArgType>),
}

impl<'de> Deserialize<'de> for RawArgType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = RawArgType;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a type name (string, long, set<string>…) or a mapping")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<RawArgType, E> {
                Ok(RawArgType::Name(v.to_owned()))
            }
            fn visit_map<A: de::MapAccess<'de>>(self, map: A) -> Result<RawArgType, A::Error> {
                BTreeMap::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(RawArgType::Record)
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRole {
    pub description: Option<String>,
    /// Principals that hold the role besides those whose token names it.
    pub members: Option<RawMembers>,
    pub grants: Option<Vec<RawGrant>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawMembers {
    /// Principals in any of these groups (groups claim).
    pub groups: Option<Vec<String>>,
}

/// One grant of a role. `tools`, `resources`, `prompts` are
/// `server/name` globs (`github/*`, `*/read_*`, `docs/file:///pub/*`; `*`
/// alone is every server's everything). A grant lets the role discover and
/// use what it names, within the tier, environments and argument
/// constraints given.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrant {
    pub tools: Option<Vec<String>>,
    pub resources: Option<Vec<String>>,
    pub prompts: Option<Vec<String>>,
    /// Servers (globs) whose sampling requests the role's sessions accept.
    pub sampling: Option<Vec<String>>,
    /// Servers (globs) whose elicitation requests the role's sessions accept.
    pub elicitation: Option<Vec<String>>,
    /// Highest tier this grant reaches (default: every tier).
    pub max_risk: Option<String>,
    /// Only in these environments (`context.environment`).
    pub environments: Option<Vec<String>>,
    /// Argument name → constraint, for calls and prompts of this grant.
    pub arguments: Option<BTreeMap<String, RawConstraint>>,
}

/// A constraint on one argument. Several keys: all must hold. An absent
/// argument fails the constraint unless `optional: true`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConstraint {
    /// Exactly one of these values (strings or integers); for a set
    /// argument, every element is one of them.
    pub one_of: Option<Vec<RawLiteral>>,
    /// Matches one of these `*` globs.
    pub like: Option<Vec<String>>,
    /// Starts with this text (for `path` arguments: after normalisation).
    pub prefix: Option<String>,
    /// The address's domain (every address's, for `set<email>`) is one of
    /// these, exactly.
    pub email_domain: Option<Vec<String>>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    /// The argument may be absent.
    pub optional: Option<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum RawLiteral {
    Long(i64),
    String(String),
}

/// A rule that holds matching calls for a human approval. `tools`,
/// `resources`, `prompts` as in grants; `risk` selects by tier; with
/// neither, every call matches. `roles`/`groups` narrow who it applies to.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawApproval {
    pub id: Option<String>,
    pub description: Option<String>,
    pub tools: Option<Vec<String>>,
    pub resources: Option<Vec<String>>,
    pub prompts: Option<Vec<String>>,
    pub risk: Option<Vec<String>>,
    pub environments: Option<Vec<String>>,
    pub roles: Option<Vec<String>>,
    pub groups: Option<Vec<String>>,
    /// Facts the approval must carry: `change_ticket`, `reason`.
    pub requires: Option<Vec<String>>,
    /// Who may approve: `caller` (the caller themself, the default) and/or
    /// role names. Without `caller` it is four eyes: the approver holds one
    /// of the roles and is not the caller.
    pub approvers: Option<Vec<String>>,
    /// Servers (globs) whose sampling requests are held for approval.
    pub sampling: Option<Vec<String>>,
    /// Servers (globs) whose elicitation requests are held for approval.
    pub elicitation: Option<Vec<String>>,
}

/// OAuth scope requirements. Hierarchy: a granted `a:b` satisfies a
/// required `a:b` and `a:b:…` (a broader scope satisfies a narrower one).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawScopes {
    /// Action name → scopes every operation of that action needs.
    pub actions: Option<BTreeMap<String, Vec<String>>>,
    /// `server/tool` glob → scopes a call needs (all matching entries add up).
    pub tools: Option<BTreeMap<String, Vec<String>>>,
    pub resources: Option<BTreeMap<String, Vec<String>>>,
    pub prompts: Option<BTreeMap<String, Vec<String>>>,
}

// ----- resolved ---------------------------------------------------------------

/// The validated `authorization:` section, ready for
/// [`crate::PolicyEngine::compile`].
#[derive(Debug, Clone)]
pub struct AuthzSettings {
    pub(crate) default_risk: RiskTier,
    pub(crate) time_zone: jiff::tz::TimeZone,
    pub(crate) time_zone_name: String,
    pub(crate) deny_as_unknown: bool,
    pub(crate) arguments: BTreeMap<String, ArgType>,
    pub(crate) roles: Vec<Role>,
    pub(crate) approvals: Vec<ApprovalRule>,
    pub(crate) policy_files: Vec<PolicyFile>,
    pub(crate) scopes: ScopeRequirements,
}

impl Default for AuthzSettings {
    fn default() -> Self {
        AuthzSettings {
            default_risk: RiskTier::Medium,
            time_zone: jiff::tz::TimeZone::UTC,
            time_zone_name: "UTC".into(),
            deny_as_unknown: false,
            arguments: BTreeMap::new(),
            roles: Vec::new(),
            approvals: Vec::new(),
            policy_files: Vec::new(),
            scopes: ScopeRequirements::default(),
        }
    }
}

impl AuthzSettings {
    /// Answer denied calls as "unknown tool" (the gateway's choice to make).
    #[must_use]
    pub fn deny_as_unknown(&self) -> bool {
        self.deny_as_unknown
    }

    /// The policy files read, for the gateway's file watcher (hot reload).
    pub fn policy_paths(&self) -> impl Iterator<Item = &Path> {
        self.policy_files.iter().map(|f| f.path.as_path())
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Role {
    pub name: String,
    pub groups: Vec<String>,
    pub grants: Vec<Grant>,
}

/// `server/name` split at the first `/`; both halves are globs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ItemPattern {
    pub server: String,
    pub name: String,
}

impl ItemPattern {
    pub(crate) fn matches(&self, server: &str, name: &str) -> bool {
        crate::glob::glob_match(&self.server, server) && crate::glob::glob_match(&self.name, name)
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Grant {
    pub path: String,
    pub tools: Vec<ItemPattern>,
    pub resources: Vec<ItemPattern>,
    pub prompts: Vec<ItemPattern>,
    pub sampling: Vec<String>,
    pub elicitation: Vec<String>,
    pub max_risk: Option<RiskTier>,
    pub environments: Vec<String>,
    pub constraints: Vec<(String, ArgType, Constraint)>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct Constraint {
    pub one_of: Vec<RawLiteral>,
    pub like: Vec<String>,
    pub prefix: Option<String>,
    pub email_domain: Vec<String>,
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub optional: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct ApprovalRule {
    pub id: String,
    pub tools: Vec<ItemPattern>,
    pub resources: Vec<ItemPattern>,
    pub prompts: Vec<ItemPattern>,
    pub risk: Vec<RiskTier>,
    pub environments: Vec<String>,
    pub roles: Vec<String>,
    pub groups: Vec<String>,
    pub requires: Vec<ApprovalFact>,
    pub approvers: Approvers,
    pub sampling: Vec<String>,
    pub elicitation: Vec<String>,
}

/// Who may approve a held call, for one approval policy.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Approvers {
    /// The caller may approve their own call (in band, in their client).
    pub caller: bool,
    /// Principals holding one of these roles may approve, unless they are
    /// the caller (four eyes).
    pub roles: Vec<String>,
}

impl Default for Approvers {
    /// The caller, nobody else.
    fn default() -> Approvers {
        Approvers {
            caller: true,
            roles: Vec::new(),
        }
    }
}

impl Approvers {
    /// The word for the caller in `approvers:` and `@approvers`.
    pub const CALLER: &'static str = "caller";

    /// `caller security ops` (spaces or commas).
    pub(crate) fn parse(text: &str) -> Result<Approvers, String> {
        let mut a = Approvers {
            caller: false,
            roles: Vec::new(),
        };
        for w in approval_facts_text(text) {
            if w == Self::CALLER {
                a.caller = true;
            } else if w
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
            {
                if !a.roles.iter().any(|r| r == w) {
                    a.roles.push(w.to_owned());
                }
            } else {
                return Err(format!(
                    "@approvers: {w:?} is neither `caller` nor a role name"
                ));
            }
        }
        if !a.caller && a.roles.is_empty() {
            return Err("@approvers names nobody (use `caller` and/or role names)".into());
        }
        Ok(a)
    }

    /// The annotation text (`caller role-a role-b`).
    pub fn text(&self) -> String {
        let mut words: Vec<&str> = Vec::new();
        if self.caller {
            words.push(Self::CALLER);
        }
        words.extend(self.roles.iter().map(String::as_str));
        words.join(" ")
    }

    /// Whether `approver` (subject `approver_key`, holding `approver_roles`)
    /// may approve a call of `caller_key`: the caller where allowed, else
    /// someone else holding one of the roles.
    pub fn admits(&self, caller_key: &str, approver_key: &str, approver_roles: &[String]) -> bool {
        if approver_key == caller_key {
            return self.caller;
        }
        approver_roles.iter().any(|r| self.roles.contains(r))
    }
}

/// What an approval must carry besides the approver's yes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApprovalFact {
    ChangeTicket,
    Reason,
}

impl ApprovalFact {
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalFact::ChangeTicket => "change_ticket",
            ApprovalFact::Reason => "reason",
        }
    }

    pub(crate) fn parse(s: &str) -> Option<ApprovalFact> {
        match s {
            "change_ticket" => Some(ApprovalFact::ChangeTicket),
            "reason" => Some(ApprovalFact::Reason),
            _ => None,
        }
    }
}

/// A parsed, strictly validated policy of a file.
#[derive(Debug, Clone)]
pub(crate) struct FilePolicy {
    pub policy: Policy,
    /// 1-based position in its file.
    pub ordinal: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct PolicyFile {
    /// As resolved (absolute or relative to the working directory).
    pub path: PathBuf,
    /// As shown to people: the entry as written, plus the file name for
    /// directory entries.
    pub display: String,
    pub text: String,
    pub policies: Vec<FilePolicy>,
}

#[derive(Debug, Clone, Default)]
pub(crate) struct ScopeRequirements {
    pub actions: Vec<(ActionName, Vec<String>)>,
    pub tools: Vec<(ItemPattern, Vec<String>)>,
    pub resources: Vec<(ItemPattern, Vec<String>)>,
    pub prompts: Vec<(ItemPattern, Vec<String>)>,
}

/// Policy ids reserved for what Warden generates.
pub(crate) const RESERVED_PREFIXES: [&str; 3] = ["warden.", "role.", "approval."];

// ----- resolving ----------------------------------------------------------------

impl RawAuthorization {
    /// Validates everything and reads the policy files (relative paths
    /// against `base_dir`, the configuration file's directory).
    pub fn resolve(self, base_dir: &Path) -> Result<AuthzSettings, SettingsErrors> {
        let mut r = Resolver::default();
        let mut s = AuthzSettings::default();
        if let Some(t) = &self.default_risk {
            if let Some(t) = r.tier("authorization.default_risk", t) {
                s.default_risk = t;
            }
        }
        if let Some(tz) = self.time_zone {
            match jiff::tz::TimeZone::get(&tz) {
                Ok(zone) => {
                    s.time_zone = zone;
                    s.time_zone_name = tz;
                }
                Err(_) => r.err(
                    "authorization.time_zone",
                    format!("unknown time zone {tz:?} (an IANA name such as \"Europe/Berlin\" or \"UTC\")"),
                ),
            }
        }
        s.deny_as_unknown = self.deny_as_unknown.unwrap_or(false);

        for (name, t) in self.arguments.unwrap_or_default() {
            let path = format!("authorization.arguments.{name}");
            if r.argument_name(&path, &name) {
                if let Some(t) = r.arg_type(&path, t) {
                    s.arguments.insert(name, t);
                }
            }
        }

        for (name, raw) in self.roles.unwrap_or_default() {
            let path = format!("authorization.roles.{name}");
            if let Some(role) = r.role(&path, name, raw, &mut s.arguments) {
                s.roles.push(role);
            }
        }

        for (i, raw) in self.approvals.unwrap_or_default().into_iter().enumerate() {
            let path = format!("authorization.approvals[{i}]");
            if let Some(a) = r.approval(&path, raw) {
                if s.approvals.iter().any(|o| o.id == a.id) {
                    r.err(
                        &format!("{path}.id"),
                        format!("duplicate approval id {:?}", a.id),
                    );
                } else {
                    s.approvals.push(a);
                }
            }
        }

        if let Some(sc) = self.scopes {
            s.scopes = r.scopes(sc);
        }

        // Policy files last: they are validated against the schema, which
        // depends on the declared arguments.
        let files = self.policies.unwrap_or_default();
        if !files.is_empty() {
            match schema::build(&s.arguments) {
                Ok(schema) => {
                    for (i, entry) in files.iter().enumerate() {
                        let path = format!("authorization.policies[{i}]");
                        r.policy_entry(&path, entry, base_dir, &schema, &mut s.policy_files);
                    }
                    r.duplicate_ids(&s.policy_files);
                }
                Err(e) => r.err("authorization.arguments", e),
            }
        }

        if r.errors.is_empty() {
            Ok(s)
        } else {
            Err(r.errors)
        }
    }
}

#[derive(Default)]
struct Resolver {
    errors: SettingsErrors,
}

impl Resolver {
    fn err(&mut self, path: &str, msg: impl Into<String>) {
        self.errors.push((path.to_owned(), msg.into()));
    }

    fn tier(&mut self, path: &str, s: &str) -> Option<RiskTier> {
        let t = RiskTier::parse(s);
        if t.is_none() {
            self.err(
                path,
                format!("unknown risk tier {s:?} (low, medium, high or critical)"),
            );
        }
        t
    }

    fn argument_name(&mut self, path: &str, name: &str) -> bool {
        let ok = !name.is_empty() && !name.chars().any(char::is_control);
        if !ok {
            self.err(path, "an argument name must be non-empty text");
        }
        ok
    }

    fn arg_type(&mut self, path: &str, t: RawArgType) -> Option<ArgType> {
        match t {
            RawArgType::Name(n) => {
                let t = ArgType::parse(&n);
                if t.is_none() {
                    self.err(
                        path,
                        format!(
                            "unknown argument type {n:?} (string, long, decimal, bool, path, \
                             email, ipaddr, set<…> of those, or a mapping for an object)"
                        ),
                    );
                }
                t
            }
            RawArgType::Record(fields) => {
                let mut out = BTreeMap::new();
                let mut ok = true;
                for (k, v) in fields {
                    let p = format!("{path}.{k}");
                    if !self.argument_name(&p, &k) {
                        ok = false;
                        continue;
                    }
                    match self.arg_type(&p, v) {
                        Some(t) => {
                            out.insert(k, t);
                        }
                        None => ok = false,
                    }
                }
                ok.then_some(ArgType::Record(out))
            }
        }
    }

    fn names(&mut self, path: &str, v: Option<Vec<String>>) -> Vec<String> {
        let v = v.unwrap_or_default();
        for (i, n) in v.iter().enumerate() {
            if n.is_empty() || n.chars().any(char::is_control) {
                self.err(&format!("{path}[{i}]"), "must be non-empty text");
            }
        }
        v
    }

    fn item_patterns(&mut self, path: &str, v: Option<Vec<String>>) -> Vec<ItemPattern> {
        let mut out = Vec::new();
        for (i, p) in v.unwrap_or_default().into_iter().enumerate() {
            let at = format!("{path}[{i}]");
            if p == "*" {
                out.push(ItemPattern {
                    server: "*".into(),
                    name: "*".into(),
                });
                continue;
            }
            match p.split_once('/') {
                Some((server, name))
                    if !server.is_empty()
                        && !name.is_empty()
                        && !p.chars().any(char::is_control) =>
                {
                    out.push(ItemPattern {
                        server: server.to_owned(),
                        name: name.to_owned(),
                    });
                }
                _ => self.err(
                    &at,
                    format!(
                        "{p:?} is not a pattern of the form server/name (globs with `*`, \
                         e.g. \"github/*\", \"*/read_*\", or \"*\" for everything)"
                    ),
                ),
            }
        }
        out
    }

    fn role(
        &mut self,
        path: &str,
        name: String,
        raw: RawRole,
        declared: &mut BTreeMap<String, ArgType>,
    ) -> Option<Role> {
        if name.is_empty() || name.chars().any(char::is_control) {
            self.err(path, "a role name must be non-empty text");
            return None;
        }
        let groups = self.names(
            &format!("{path}.members.groups"),
            raw.members.and_then(|m| m.groups),
        );
        let mut grants = Vec::new();
        for (i, g) in raw.grants.unwrap_or_default().into_iter().enumerate() {
            let gp = format!("{path}.grants[{i}]");
            if let Some(g) = self.grant(&gp, g, declared) {
                grants.push(g);
            }
        }
        Some(Role {
            name,
            groups,
            grants,
        })
    }

    fn grant(
        &mut self,
        path: &str,
        raw: RawGrant,
        declared: &mut BTreeMap<String, ArgType>,
    ) -> Option<Grant> {
        let before = self.errors.len();
        let tools = self.item_patterns(&format!("{path}.tools"), raw.tools);
        let resources = self.item_patterns(&format!("{path}.resources"), raw.resources);
        let prompts = self.item_patterns(&format!("{path}.prompts"), raw.prompts);
        let sampling = self.names(&format!("{path}.sampling"), raw.sampling);
        let elicitation = self.names(&format!("{path}.elicitation"), raw.elicitation);
        if tools.is_empty()
            && resources.is_empty()
            && prompts.is_empty()
            && sampling.is_empty()
            && elicitation.is_empty()
            && self.errors.len() == before
        {
            self.err(
                path,
                "a grant names nothing: give tools, resources, prompts, sampling or elicitation",
            );
        }
        let max_risk = raw
            .max_risk
            .as_deref()
            .and_then(|t| self.tier(&format!("{path}.max_risk"), t));
        let environments = self.names(&format!("{path}.environments"), raw.environments);
        let mut constraints = Vec::new();
        for (arg, c) in raw.arguments.unwrap_or_default() {
            let cp = format!("{path}.arguments.{arg}");
            if !self.argument_name(&cp, &arg) {
                continue;
            }
            if let Some((ty, c)) = self.constraint(&cp, &arg, c, declared) {
                constraints.push((arg, ty, c));
            }
        }
        if !constraints.is_empty() && tools.is_empty() && prompts.is_empty() {
            self.err(
                &format!("{path}.arguments"),
                "argument constraints apply to tools and prompts; this grant names neither",
            );
        }
        (self.errors.len() == before).then(|| Grant {
            path: path.to_owned(),
            tools,
            resources,
            prompts,
            sampling,
            elicitation,
            max_risk,
            environments,
            constraints,
        })
    }

    /// Checks a constraint against the argument's declared type, declaring
    /// it (with the type the constraint implies) when it is not yet.
    fn constraint(
        &mut self,
        path: &str,
        arg: &str,
        raw: RawConstraint,
        declared: &mut BTreeMap<String, ArgType>,
    ) -> Option<(ArgType, Constraint)> {
        let c = Constraint {
            one_of: raw.one_of.unwrap_or_default(),
            like: raw.like.unwrap_or_default(),
            prefix: raw.prefix,
            email_domain: raw
                .email_domain
                .unwrap_or_default()
                .into_iter()
                .map(|d| d.to_ascii_lowercase())
                .collect(),
            min: raw.min,
            max: raw.max,
            optional: raw.optional.unwrap_or(false),
        };
        let has_one_of = !c.one_of.is_empty();
        let has_text = !c.like.is_empty() || c.prefix.is_some();
        let has_email = !c.email_domain.is_empty();
        let has_range = c.min.is_some() || c.max.is_some();
        let kinds = [has_one_of, has_text, has_email, has_range]
            .iter()
            .filter(|b| **b)
            .count();
        if kinds == 0 {
            self.err(
                path,
                "an argument constraint needs one of one_of, like, prefix, email_domain, min, max",
            );
            return None;
        }
        if kinds > 1 && !(has_one_of && has_text) {
            self.err(
                path,
                "email_domain and min/max cannot be combined with other constraints",
            );
            return None;
        }
        let all_longs = c.one_of.iter().all(|l| matches!(l, RawLiteral::Long(_)));
        let all_strings = c.one_of.iter().all(|l| matches!(l, RawLiteral::String(_)));
        if has_one_of && !all_longs && !all_strings {
            self.err(
                &format!("{path}.one_of"),
                "values must be all strings or all integers",
            );
            return None;
        }
        let implied = if has_email {
            ArgType::Email
        } else if has_range || (has_one_of && all_longs) {
            ArgType::Long
        } else {
            ArgType::String
        };
        let ty = declared.entry(arg.to_owned()).or_insert(implied).clone();
        let elem = match &ty {
            ArgType::Set(e) => e.as_ref(),
            t => t,
        };
        let fits = if has_email {
            *elem == ArgType::Email
        } else if has_range {
            ty == ArgType::Long
        } else if has_text {
            matches!(ty, ArgType::String | ArgType::Path) && (!has_one_of || all_strings)
        } else if all_longs {
            *elem == ArgType::Long
        } else {
            matches!(elem, ArgType::String | ArgType::Path)
        };
        if !fits {
            self.err(
                path,
                format!(
                    "this constraint does not apply to argument {arg:?}, declared as {} \
                     (authorization.arguments.{arg})",
                    ty.name()
                ),
            );
            return None;
        }
        if let (Some(lo), Some(hi)) = (c.min, c.max) {
            if lo > hi {
                self.err(path, "min is greater than max");
                return None;
            }
        }
        for (i, d) in c.email_domain.iter().enumerate() {
            if crate::args::split_email(&format!("x@{d}")).is_none() {
                self.err(
                    &format!("{path}.email_domain[{i}]"),
                    format!("{d:?} is not a domain name"),
                );
                return None;
            }
        }
        Some((ty, c))
    }

    fn approval(&mut self, path: &str, raw: RawApproval) -> Option<ApprovalRule> {
        let before = self.errors.len();
        let id = match raw.id {
            Some(id)
                if !id.is_empty()
                    && id
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) =>
            {
                id
            }
            Some(id) => {
                self.err(
                    &format!("{path}.id"),
                    format!("{id:?}: use letters, digits, '-', '_' and '.'"),
                );
                return None;
            }
            None => {
                self.err(&format!("{path}.id"), "an approval rule needs an id");
                return None;
            }
        };
        let tools = self.item_patterns(&format!("{path}.tools"), raw.tools);
        let resources = self.item_patterns(&format!("{path}.resources"), raw.resources);
        let prompts = self.item_patterns(&format!("{path}.prompts"), raw.prompts);
        let mut risk = Vec::new();
        for (i, t) in raw.risk.unwrap_or_default().iter().enumerate() {
            if let Some(t) = self.tier(&format!("{path}.risk[{i}]"), t) {
                risk.push(t);
            }
        }
        let environments = self.names(&format!("{path}.environments"), raw.environments);
        let roles = self.names(&format!("{path}.roles"), raw.roles);
        let groups = self.names(&format!("{path}.groups"), raw.groups);
        let mut requires = Vec::new();
        for (i, f) in raw.requires.unwrap_or_default().iter().enumerate() {
            match ApprovalFact::parse(f) {
                Some(f) if !requires.contains(&f) => requires.push(f),
                Some(_) => {}
                None => self.err(
                    &format!("{path}.requires[{i}]"),
                    format!("unknown approval fact {f:?} (change_ticket or reason)"),
                ),
            }
        }
        let approvers = match raw.approvers {
            None => Approvers::default(),
            Some(list) if list.is_empty() => {
                self.err(
                    &format!("{path}.approvers"),
                    "an empty list: name `caller` and/or roles",
                );
                Approvers::default()
            }
            Some(list) => {
                let mut a = Approvers {
                    caller: false,
                    roles: Vec::new(),
                };
                for (i, name) in list.iter().enumerate() {
                    match Approvers::parse(name) {
                        Ok(one) if one.caller as usize + one.roles.len() == 1 => {
                            a.caller |= one.caller;
                            for r in one.roles {
                                if !a.roles.contains(&r) {
                                    a.roles.push(r);
                                }
                            }
                        }
                        _ => self.err(
                            &format!("{path}.approvers[{i}]"),
                            format!("{name:?} is neither `caller` nor a role name"),
                        ),
                    }
                }
                a
            }
        };
        let sampling = self.names(&format!("{path}.sampling"), raw.sampling);
        let elicitation = self.names(&format!("{path}.elicitation"), raw.elicitation);
        (self.errors.len() == before).then_some(ApprovalRule {
            id,
            tools,
            resources,
            prompts,
            risk,
            environments,
            roles,
            groups,
            requires,
            approvers,
            sampling,
            elicitation,
        })
    }

    fn scope_list(&mut self, path: &str, v: Vec<String>) -> Vec<String> {
        for (i, s) in v.iter().enumerate() {
            let ok = !s.is_empty()
                && s.bytes()
                    .all(|b| (0x21..=0x7e).contains(&b) && b != b'"' && b != b'\\');
            if !ok {
                self.err(
                    &format!("{path}[{i}]"),
                    format!("{s:?} is not a scope (printable ASCII, no space, quote or backslash)"),
                );
            }
        }
        v
    }

    fn scopes(&mut self, raw: RawScopes) -> ScopeRequirements {
        let mut out = ScopeRequirements::default();
        for (name, list) in raw.actions.unwrap_or_default() {
            let path = format!("authorization.scopes.actions.{name}");
            match ActionName::parse(&name) {
                Some(a) => {
                    let list = self.scope_list(&path, list);
                    out.actions.push((a, list));
                }
                None => self.err(
                    &path,
                    format!(
                        "unknown action {name:?} (discover, call_tool, read_resource, \
                         get_prompt, subscribe, sample, elicit)"
                    ),
                ),
            }
        }
        let mut patterns = |key: &str, m: Option<BTreeMap<String, Vec<String>>>| {
            let mut v = Vec::new();
            for (pattern, list) in m.unwrap_or_default() {
                let path = format!("authorization.scopes.{key}.{pattern}");
                let p = self.item_patterns(&path, Some(vec![pattern]));
                let list = self.scope_list(&path, list);
                if let Some(p) = p.into_iter().next() {
                    v.push((p, list));
                }
            }
            v
        };
        out.tools = patterns("tools", raw.tools);
        out.resources = patterns("resources", raw.resources);
        out.prompts = patterns("prompts", raw.prompts);
        out
    }

    fn policy_entry(
        &mut self,
        path: &str,
        entry: &str,
        base_dir: &Path,
        schema: &cedar_policy::Schema,
        out: &mut Vec<PolicyFile>,
    ) {
        let full = base_dir.join(entry);
        let meta = match std::fs::metadata(&full) {
            Ok(m) => m,
            Err(e) => {
                self.err(path, format!("cannot read {}: {e}", full.display()));
                return;
            }
        };
        let mut files: Vec<(PathBuf, String)> = Vec::new();
        if meta.is_dir() {
            let listing = match std::fs::read_dir(&full) {
                Ok(l) => l,
                Err(e) => {
                    self.err(path, format!("cannot list {}: {e}", full.display()));
                    return;
                }
            };
            let mut names: Vec<PathBuf> = listing
                .filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|x| x == "cedar") && p.is_file())
                .collect();
            names.sort();
            if names.is_empty() {
                self.err(path, format!("{} holds no *.cedar file", full.display()));
            }
            for p in names {
                let shown = match p.file_name() {
                    Some(n) => format!("{}/{}", entry.trim_end_matches('/'), n.to_string_lossy()),
                    None => entry.to_owned(),
                };
                files.push((p, shown));
            }
        } else {
            files.push((full, entry.to_owned()));
        }
        for (file, shown) in files {
            if out.iter().any(|f| f.path == file) {
                self.err(path, format!("{shown} is listed twice"));
                continue;
            }
            match std::fs::read_to_string(&file) {
                Ok(text) => match parse_policy_file(&shown, &text, schema) {
                    Ok(policies) => out.push(PolicyFile {
                        path: file,
                        display: shown,
                        text,
                        policies,
                    }),
                    Err(msgs) => {
                        for m in msgs {
                            self.err(path, m);
                        }
                    }
                },
                Err(e) => self.err(path, format!("cannot read {shown}: {e}")),
            }
        }
    }

    fn duplicate_ids(&mut self, files: &[PolicyFile]) {
        let mut seen: BTreeMap<String, String> = BTreeMap::new();
        for f in files {
            for p in &f.policies {
                let id = p.policy.id().to_string();
                let here = format!("{} (policy #{})", f.display, p.ordinal);
                if let Some(first) = seen.get(&id) {
                    self.err(
                        "authorization.policies",
                        format!("{here}: policy id {id:?} is already used at {first}"),
                    );
                } else {
                    seen.insert(id, here);
                }
            }
        }
    }
}

/// Parses one file: every policy needs `@id("…")` (stable ids for audit),
/// no templates, annotations checked, then strict validation.
pub(crate) fn parse_policy_file(
    shown: &str,
    text: &str,
    schema: &cedar_policy::Schema,
) -> Result<Vec<FilePolicy>, Vec<String>> {
    let set: PolicySet = match text.parse() {
        Ok(s) => s,
        Err(e) => return Err(vec![located(shown, text, &e)]),
    };
    let mut errors = Vec::new();
    if set.templates().next().is_some() {
        errors.push(format!(
            "{shown}: templates (`?principal`, `?resource`) are not supported"
        ));
    }
    // The parser names policies `policy0`, `policy1`… in text order.
    let mut parsed: Vec<(usize, &Policy)> = set
        .policies()
        .map(|p| {
            let n = p
                .id()
                .to_string()
                .strip_prefix("policy")
                .and_then(|n| n.parse::<usize>().ok())
                .unwrap_or(usize::MAX);
            (n, p)
        })
        .collect();
    parsed.sort_by_key(|(n, _)| *n);
    let mut out = Vec::new();
    let mut renamed = PolicySet::new();
    for (n, p) in parsed {
        let ordinal = n.saturating_add(1);
        let here = format!("{shown}: policy #{ordinal}");
        let Some(id) = p.annotation("id") else {
            errors.push(format!(
                "{here}: every policy needs an id: add @id(\"…\") before it"
            ));
            continue;
        };
        let here = format!("{shown}: policy {id:?}");
        if let Err(m) = check_policy_id(id) {
            errors.push(format!("{here}: {m}"));
            continue;
        }
        if let Err(m) = check_annotations(p) {
            errors.push(format!("{here}: {m}"));
            continue;
        }
        let p = p.new_id(PolicyId::new(id));
        if let Err(e) = renamed.add(p.clone()) {
            errors.push(format!("{here}: {e}"));
            continue;
        }
        out.push(FilePolicy { policy: p, ordinal });
    }
    if errors.is_empty() {
        errors.extend(crate::schema::validate(schema, &renamed).into_iter().map(
            |v| match v.offset {
                Some(o) => {
                    let (line, col) = line_col(text, o);
                    format!("{shown}:{line}:{col}: policy {:?}: {}", v.policy, v.message)
                }
                None => format!("{shown}: policy {:?}: {}", v.policy, v.message),
            },
        ));
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(errors)
    }
}

pub(crate) fn check_policy_id(id: &str) -> Result<(), String> {
    if id.is_empty() || id.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err(format!(
            "policy id {id:?} must be non-empty, without spaces"
        ));
    }
    if let Some(p) = RESERVED_PREFIXES.iter().find(|p| id.starts_with(**p)) {
        return Err(format!(
            "policy id {id:?}: ids starting with {p:?} are reserved for Warden's generated policies"
        ));
    }
    Ok(())
}

/// `@requires_approval("change_ticket reason")` only on `forbid`, naming
/// known facts; `@reason("snake_case")`.
pub(crate) fn check_annotations(p: &Policy) -> Result<(), String> {
    if let Some(v) = p.annotation("requires_approval") {
        if p.effect() != Effect::Forbid {
            return Err("@requires_approval belongs on a forbid policy".into());
        }
        for f in approval_facts_text(v) {
            if ApprovalFact::parse(f).is_none() {
                return Err(format!(
                    "@requires_approval: unknown fact {f:?} (change_ticket, reason)"
                ));
            }
        }
    }
    if let Some(v) = p.annotation("approvers") {
        if p.annotation("requires_approval").is_none() {
            return Err("@approvers belongs on a @requires_approval policy".into());
        }
        Approvers::parse(v)?;
    }
    if let Some(r) = p.annotation("reason") {
        if !is_reason_code(r) {
            return Err(format!(
                "@reason({r:?}): a reason code is lower-case letters, digits and '_'"
            ));
        }
    }
    Ok(())
}

pub(crate) fn approval_facts_text(v: &str) -> impl Iterator<Item = &str> {
    v.split(|c: char| c == ',' || c.is_whitespace())
        .filter(|s| !s.is_empty())
}

pub(crate) fn is_reason_code(r: &str) -> bool {
    !r.is_empty()
        && r.len() <= 64
        && r.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// 1-based line and column of a byte offset.
pub(crate) fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.bytes().filter(|b| *b == b'\n').count() + 1;
    let col = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
    (line, col)
}

/// A Cedar parse error with `file:line:col`.
fn located(shown: &str, text: &str, e: &cedar_policy::ParseErrors) -> String {
    use miette::Diagnostic;
    let first = e.iter().next();
    let offset = first
        .and_then(|pe| pe.labels())
        .and_then(|mut l| l.next())
        .map(|l| l.offset());
    let msg = first.map_or_else(|| e.to_string(), ToString::to_string);
    match offset {
        Some(o) => {
            let (line, col) = line_col(text, o);
            format!("{shown}:{line}:{col}: {msg}")
        }
        None => format!("{shown}: {msg}"),
    }
}

#[cfg(test)]
#[path = "settings_tests.rs"]
mod tests;
