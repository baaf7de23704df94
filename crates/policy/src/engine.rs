//! [`PolicyEngine`]: everything compiled once at load (schema, policy sets,
//! catalog index); [`PolicyEngine::decide`] does no I/O and reads no clock;
//! its only locks guard the bounded caches of entities built on first use.

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap, HashSet};
use std::fmt;
use std::sync::{Arc, PoisonError, RwLock};

use cedar_policy::{
    Authorizer, Context, Effect, Entities, Entity, EntityId, EntityTypeName, EntityUid, Policy,
    PolicyId, PolicySet, RestrictedExpression, Schema,
};
use serde_json::value::RawValue;
use warden_identity::AuthMethod;

use crate::catalog::{Catalog, ItemFacts, ItemKind, RiskTier, ServerFacts};
use crate::compile::{self, Generated};
use crate::decision::{Decision, ReasonCode, ScopeCheck};
use crate::error::PolicyError;
use crate::explain::{Explanation, Outcome, PolicyTrace, RequestFacts};
use crate::glob::specificity;
use crate::request::{Action, ActionName, Request};
use crate::settings::{
    approval_facts_text, is_reason_code, ApprovalFact, Approvers, AuthzSettings, ItemPattern,
    ScopeRequirements,
};
use crate::slice::{Slice, SlicedSet};
use crate::usage::Usage;
use crate::{args, schema};

// ----- the engine -----------------------------------------------------------------

/// Where a policy comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyOrigin {
    BuiltIn,
    /// A role grant; the configuration path.
    Role(String),
    /// An approval rule; the configuration path.
    Approval(String),
    /// A policy file, as listed.
    File(String),
}

impl fmt::Display for PolicyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PolicyOrigin::BuiltIn => f.write_str("built in"),
            PolicyOrigin::Role(p) | PolicyOrigin::Approval(p) | PolicyOrigin::File(p) => {
                f.write_str(p)
            }
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct PolicyMeta {
    pub order: usize,
    pub effect: Effect,
    pub origin: PolicyOrigin,
    pub reason: Option<ReasonCode>,
    /// `Some` for approval policies: the facts the approval must carry.
    pub approval: Option<Vec<ApprovalFact>>,
    /// Approval policies: who may approve (`@approvers`; the caller when
    /// not annotated).
    pub approvers: Approvers,
    pub text: String,
}

/// The compiled authorization stage. Immutable but for a bounded cache of
/// resource entities built on first use; `Send + Sync`; the gateway swaps
/// whole engines on reload.
pub struct PolicyEngine {
    schema: Schema,
    schema_text: String,
    /// Permits and ordinary forbids, sliced: the decision.
    main: SlicedSet,
    /// `@requires_approval` forbids, sliced, evaluated once the main set
    /// allows.
    approvals: SlicedSet,
    pub(crate) permits: PolicySet,
    pub(crate) forbids: PolicySet,
    pub(crate) meta: HashMap<String, PolicyMeta>,
    effective: String,
    servers: HashMap<String, ServerIndex>,
    default_risk: RiskTier,
    time_zone: jiff::tz::TimeZone,
    arguments: std::collections::BTreeMap<String, args::ArgType>,
    scopes: ScopeRequirements,
    authorizer: Authorizer,
    types: EntityTypes,
    referenced: Referenced,
    usage: Usage,
    /// Entity stores built for earlier requests (see [`Stores`]).
    stores: Stores,
}

/// The entity store of a request (its principal and resource entities,
/// transitively closed) kept by principal and resource uid: building one
/// costs more than the rest of preparing a request, and one caller sends
/// many calls to a few tools. A store is reused only when both entities
/// built for the new request are structurally equal (`deep_eq`: uid,
/// attributes, ancestors) to the ones it was built from, so a token with
/// other roles or claims under the same subject gets its own store. The
/// engine is rebuilt on every reload, so no store outlives the
/// configuration it was built under. Bounded: emptied when full.
#[derive(Default)]
struct Stores(RwLock<HashMap<(EntityUid, EntityUid), Arc<Store>>>);

struct Store {
    principal: Entity,
    resource: Entity,
    entities: Arc<Entities>,
}

const STORES_MAX: usize = 4096;

impl Stores {
    fn get(&self, principal: &Entity, resource: &Entity) -> Option<Arc<Entities>> {
        let key = (principal.uid(), resource.uid());
        let stores = self.0.read().unwrap_or_else(PoisonError::into_inner);
        let s = stores.get(&key)?;
        (s.principal.deep_eq(principal) && s.resource.deep_eq(resource)).then(|| s.entities.clone())
    }

    fn put(&self, principal: Entity, resource: Entity, entities: Arc<Entities>) {
        let key = (principal.uid(), resource.uid());
        let mut stores = self.0.write().unwrap_or_else(PoisonError::into_inner);
        if stores.len() >= STORES_MAX && !stores.contains_key(&key) {
            stores.clear();
        }
        stores.insert(
            key,
            Arc::new(Store {
                principal,
                resource,
                entities,
            }),
        );
    }
}

/// Roles, groups and tenants, by name.
#[derive(Debug, Default)]
struct Names {
    roles: HashSet<String>,
    groups: HashSet<String>,
    tenants: HashSet<String>,
}

impl Names {
    /// Adds a Role, Group or Tenant uid; says whether it was a Server.
    fn add(&mut self, uid: &EntityUid) -> bool {
        let id = uid.id().unescaped().to_owned();
        match uid.type_name().to_string().as_str() {
            "Warden::Role" => {
                self.roles.insert(id);
            }
            "Warden::Group" => {
                self.groups.insert(id);
            }
            "Warden::Tenant" => {
                self.tenants.insert(id);
            }
            "Warden::Server" => return true,
            _ => {}
        }
        false
    }
}

/// What a request must tell Cedar about its principal and resource.
#[derive(Debug, Default)]
struct Referenced {
    /// Ancestors the evaluated (stripped) policies can still ask about.
    parents: Names,
    /// Whether they ask about a server (`resource in Warden::Server::…`
    /// left in a condition).
    servers: bool,
    /// Ancestors slices are filed under.
    keys: Names,
}

impl Referenced {
    fn of(sets: &[&SlicedSet]) -> Referenced {
        let mut r = Referenced::default();
        for set in sets {
            for uid in set.literals() {
                r.servers |= r.parents.add(uid);
            }
            for uid in set.keys() {
                r.keys.add(uid);
            }
        }
        r
    }
}

impl fmt::Debug for PolicyEngine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PolicyEngine")
            .field("policies", &self.meta.len())
            .field("servers", &self.servers.len())
            .finish_non_exhaustive()
    }
}

/// Parsed entity type names, built once.
struct EntityTypes {
    user: EntityTypeName,
    agent: EntityTypeName,
    client: EntityTypeName,
    role: EntityTypeName,
    group: EntityTypeName,
    tenant: EntityTypeName,
    server: EntityTypeName,
    tool: EntityTypeName,
    resource: EntityTypeName,
    prompt: EntityTypeName,
    /// `Warden::Action::"…"`, in [`ActionName::ALL`] order.
    actions: Vec<EntityUid>,
}

fn action_index(a: ActionName) -> usize {
    ActionName::ALL.iter().position(|x| *x == a).unwrap_or(0)
}

impl EntityTypes {
    fn new() -> Result<Self, PolicyError> {
        let t = |n: &str| {
            n.parse::<EntityTypeName>()
                .map_err(|e| PolicyError::Schema(format!("entity type {n}: {e}")))
        };
        Ok(EntityTypes {
            user: t("Warden::User")?,
            agent: t("Warden::Agent")?,
            client: t("Warden::Client")?,
            role: t("Warden::Role")?,
            group: t("Warden::Group")?,
            tenant: t("Warden::Tenant")?,
            server: t("Warden::Server")?,
            tool: t("Warden::Tool")?,
            resource: t("Warden::Resource")?,
            prompt: t("Warden::Prompt")?,
            actions: {
                let ty = t("Warden::Action")?;
                ActionName::ALL
                    .iter()
                    .map(|a| EntityTypes::uid(&ty, a.as_str()))
                    .collect()
            },
        })
    }

    fn uid(ty: &EntityTypeName, id: &str) -> EntityUid {
        EntityUid::from_type_name_and_id(ty.clone(), EntityId::new(id))
    }
}

/// A server's facts with exact names indexed, and the Cedar entities of
/// the server and of every exactly named item at its configured tier, built
/// once (per request they are cloned, not rebuilt). Items the catalog
/// does not name exactly (found by a glob or not at all) are built on first
/// use and kept in `learned`, up to [`LEARNED_MAX`] names per kind.
struct ServerIndex {
    facts: ServerFacts,
    exact: [HashMap<String, usize>; 3],
    entity: Entity,
    prebuilt: [HashMap<String, Entity>; 3],
    learned: [RwLock<HashMap<String, Entity>>; 3],
}

/// Names per kind and server whose entities are kept once built: callers
/// choose the names (a resource URI is anything), so the map is bounded;
/// past it, entities are built per request as before.
const LEARNED_MAX: usize = 1024;

const KINDS: [ItemKind; 3] = [ItemKind::Tool, ItemKind::Resource, ItemKind::Prompt];

fn kind_index(k: ItemKind) -> usize {
    match k {
        ItemKind::Tool => 0,
        ItemKind::Resource => 1,
        ItemKind::Prompt => 2,
    }
}

impl ServerIndex {
    fn new(
        facts: ServerFacts,
        types: &EntityTypes,
        default_risk: RiskTier,
        server_parent: bool,
    ) -> Result<Self, String> {
        let mut index = ServerIndex {
            entity: Entity::with_uid(EntityTypes::uid(&types.server, &facts.name)),
            facts,
            exact: Default::default(),
            prebuilt: Default::default(),
            learned: Default::default(),
        };
        for kind in KINDS {
            for (i, item) in index.facts.items(kind).iter().enumerate() {
                if !item.name.contains('*') {
                    index.exact[kind_index(kind)]
                        .entry(item.name.clone())
                        .or_insert(i);
                }
            }
        }
        let server = index.facts.name.clone();
        let mut prebuilt: [HashMap<String, Entity>; 3] = Default::default();
        for kind in KINDS {
            for name in index.exact[kind_index(kind)].keys() {
                let facts = resource_facts(&index, Some(kind), name, None, default_risk);
                let e = resource_entity(types, Some(kind), &server, name, &facts, server_parent)?;
                prebuilt[kind_index(kind)].insert(name.clone(), e);
            }
        }
        let facts = resource_facts(&index, None, &server, None, default_risk);
        index.entity = resource_entity(types, None, &server, &server, &facts, false)?;
        index.prebuilt = prebuilt;
        Ok(index)
    }

    /// The entity built earlier for an item the catalog does not name
    /// exactly, at its configured tier.
    fn learned(&self, kind: ItemKind, name: &str) -> Option<Entity> {
        let learned = self.learned[kind_index(kind)]
            .read()
            .unwrap_or_else(PoisonError::into_inner);
        learned.get(name).cloned()
    }

    fn learn(&self, kind: ItemKind, name: &str, entity: &Entity) {
        let mut learned = self.learned[kind_index(kind)]
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if learned.len() < LEARNED_MAX {
            learned.insert(name.to_owned(), entity.clone());
        }
    }

    /// Exact entry, else the most specific glob (the first among equals);
    /// and whether it was exact.
    fn lookup(&self, kind: ItemKind, name: &str) -> Option<(&ItemFacts, bool)> {
        let items = self.facts.items(kind);
        if let Some(i) = self.exact[kind_index(kind)].get(name) {
            return items.get(*i).map(|f| (f, true));
        }
        let mut best: Option<&ItemFacts> = None;
        for item in items.iter().filter(|f| f.name.contains('*')) {
            if crate::glob::glob_match(&item.name, name)
                && best.is_none_or(|b| specificity(&item.name) > specificity(&b.name))
            {
                best = Some(item);
            }
        }
        best.map(|f| (f, false))
    }
}

/// The facts of one resource, as the engine resolves them, borrowed from
/// the catalog.
#[derive(Debug, Clone)]
pub(crate) struct ResourceFacts<'a> {
    pub risk: RiskTier,
    /// Annotations raised the tier above the configured one.
    raised: bool,
    /// The item (or the server itself) has a prebuilt entity.
    prebuilt: bool,
    pub data_class: Option<&'a str>,
    server_labels: &'a [String],
    item_labels: &'a [String],
    pub tenants: Cow<'a, [String]>,
    pub environment: Option<&'a str>,
}

impl<'a> ResourceFacts<'a> {
    fn labels(&self) -> BTreeSet<&'a str> {
        self.server_labels
            .iter()
            .chain(self.item_labels)
            .map(String::as_str)
            .collect()
    }
}

fn resource_facts<'a>(
    server: &'a ServerIndex,
    kind: Option<ItemKind>,
    name: &str,
    annotations: Option<&RawValue>,
    default_risk: RiskTier,
) -> ResourceFacts<'a> {
    let s = &server.facts;
    let found = kind.and_then(|k| server.lookup(k, name));
    let item = found.map(|(i, _)| i);
    let configured = item.and_then(|i| i.risk).or(s.risk).unwrap_or(default_risk);
    let risk = configured.max(annotation_floor(annotations));
    ResourceFacts {
        risk,
        raised: risk != configured,
        prebuilt: match kind {
            None => true,
            Some(_) => found.is_some_and(|(_, exact)| exact),
        },
        data_class: item
            .and_then(|i| i.data_class.as_deref())
            .or(s.data_class.as_deref()),
        server_labels: &s.labels,
        item_labels: item.map_or(&[][..], |i| &i.labels),
        tenants: effective_tenants(&s.tenants, item.map_or(&[][..], |i| &i.tenants)),
        environment: s.environment.as_deref(),
    }
}

/// The resource's entity: `Warden::Tool::"<server>/<name>"` (or Resource,
/// Prompt) in `Warden::Server::"<server>"` (the parent only when some
/// evaluated policy can ask); the server itself without a kind.
fn resource_entity(
    t: &EntityTypes,
    kind: Option<ItemKind>,
    server: &str,
    name: &str,
    facts: &ResourceFacts<'_>,
    server_parent: bool,
) -> Result<Entity, String> {
    let server_uid = EntityTypes::uid(&t.server, server);
    let (uid, parents) = match kind {
        None => (server_uid, HashSet::new()),
        Some(k) => {
            let ty = match k {
                ItemKind::Tool => &t.tool,
                ItemKind::Resource => &t.resource,
                ItemKind::Prompt => &t.prompt,
            };
            let mut id = String::with_capacity(server.len() + 1 + name.len());
            id.push_str(server);
            id.push('/');
            id.push_str(name);
            let parents = if server_parent {
                HashSet::from([server_uid])
            } else {
                HashSet::new()
            };
            (EntityTypes::uid(ty, &id), parents)
        }
    };
    let mut attrs: HashMap<String, RestrictedExpression> = HashMap::with_capacity(8);
    attrs.insert("server".into(), string(server));
    attrs.insert("name".into(), string(name));
    attrs.insert("risk".into(), string(facts.risk.as_str()));
    attrs.insert(
        "risk_level".into(),
        RestrictedExpression::new_long(facts.risk.level()),
    );
    attrs.insert(
        "labels".into(),
        RestrictedExpression::new_set(facts.labels().into_iter().map(string)),
    );
    attrs.insert("tenants".into(), string_set(&facts.tenants));
    if let Some(c) = facts.data_class {
        attrs.insert("data_class".into(), string(c));
    }
    if let Some(e) = facts.environment {
        attrs.insert("environment".into(), string(e));
    }
    Entity::new(uid, attrs, parents).map_err(|e| format!("resource: {e}"))
}

impl PolicyEngine {
    /// Compiles settings and catalog: the schema (with the declared
    /// arguments), the built-in policies, roles and approvals as Cedar, the
    /// policy files; validates every policy strictly.
    pub fn compile(
        settings: &AuthzSettings,
        catalog: &Catalog,
    ) -> Result<PolicyEngine, PolicyError> {
        let types = EntityTypes::new()?;
        // Indexed again below, once slicing has shown whether entities need
        // their server parent.
        let servers = index_catalog(catalog, &types, settings.default_risk, true)?;
        check_role_servers(settings, &servers)?;
        let schema_text = schema::text(&settings.arguments);
        let schema = schema::build(&settings.arguments).map_err(PolicyError::Schema)?;

        let mut meta: HashMap<String, PolicyMeta> = HashMap::new();
        let mut all: Vec<Policy> = Vec::new();
        let mut effective = String::new();
        effective.push_str(
            "// Warden: the effective Cedar policy set (built in, roles, approvals, files).\n\
             // Default deny; a forbid wins over every permit.\n",
        );

        let mut add_generated = |section: &str,
                                 gens: Vec<Generated>,
                                 origin: &dyn Fn(&Generated) -> PolicyOrigin|
         -> Result<(), PolicyError> {
            if gens.is_empty() {
                return Ok(());
            }
            effective.push_str(&format!("\n// ===== {section} =====\n"));
            for g in gens {
                let policy = Policy::parse(Some(PolicyId::new(&g.id)), &g.text).map_err(|e| {
                    PolicyError::Generated {
                        policy: g.id.clone(),
                        message: e.to_string(),
                    }
                })?;
                effective.push('\n');
                effective.push_str(&g.text);
                register(&mut meta, &mut all, policy, origin(&g), g.text.clone())?;
            }
            Ok(())
        };
        add_generated("built in", compile::builtins(), &|_| PolicyOrigin::BuiltIn)?;
        add_generated(
            "approvals (authorization.approvals)",
            compile::approvals(&settings.approvals),
            &|g| PolicyOrigin::Approval(g.origin.clone()),
        )?;
        add_generated(
            "roles (authorization.roles)",
            compile::roles(&settings.roles),
            &|g| PolicyOrigin::Role(g.origin.clone()),
        )?;

        for file in &settings.policy_files {
            effective.push_str(&format!("\n// ===== {} =====\n", file.display));
            effective.push_str(&file.text);
            if !file.text.ends_with('\n') {
                effective.push('\n');
            }
            for p in &file.policies {
                check_policy_servers(&file.display, &p.policy, &servers)?;
                register(
                    &mut meta,
                    &mut all,
                    p.policy.clone(),
                    PolicyOrigin::File(file.display.clone()),
                    p.policy.to_string(),
                )?;
            }
        }

        let mut main: Vec<Policy> = Vec::new();
        let mut approvals: Vec<Policy> = Vec::new();
        let mut permits = PolicySet::new();
        let mut forbids = PolicySet::new();
        let mut everything = PolicySet::new();
        for p in all {
            let id = p.id().to_string();
            let is_approval = meta.get(&id).is_some_and(|m| m.approval.is_some());
            let add = |set: &mut PolicySet, p: &Policy| {
                set.add(p.clone()).map_err(|e| PolicyError::Generated {
                    policy: id.clone(),
                    message: e.to_string(),
                })
            };
            add(&mut everything, &p)?;
            if is_approval {
                add(&mut forbids, &p)?;
                approvals.push(p);
            } else {
                match p.effect() {
                    Effect::Permit => add(&mut permits, &p)?,
                    Effect::Forbid => add(&mut forbids, &p)?,
                }
                main.push(p);
            }
        }
        let issues = schema::validate(&schema, &everything);
        if let Some(first) = issues.into_iter().next() {
            return Err(PolicyError::Validation {
                policy: first.policy,
                message: first.message,
            });
        }

        let slicing = |set: &[Policy]| {
            SlicedSet::build(set, servers.keys().map(String::as_str)).map_err(|message| {
                PolicyError::Generated {
                    policy: "(slicing)".into(),
                    message,
                }
            })
        };
        let usage =
            Usage::of(main.iter().chain(&approvals)).map_err(|message| PolicyError::Generated {
                policy: "(usage)".into(),
                message,
            })?;
        let main = slicing(&main)?;
        let approvals = slicing(&approvals)?;
        let referenced = Referenced::of(&[&main, &approvals]);
        let servers = if referenced.servers {
            servers
        } else {
            index_catalog(catalog, &types, settings.default_risk, false)?
        };
        Ok(PolicyEngine {
            schema,
            schema_text,
            main,
            approvals,
            permits,
            forbids,
            meta,
            effective,
            servers,
            default_risk: settings.default_risk,
            time_zone: settings.time_zone.clone(),
            arguments: settings.arguments.clone(),
            scopes: settings.scopes.clone(),
            authorizer: Authorizer::new(),
            types,
            referenced,
            usage,
            stores: Stores::default(),
        })
    }

    /// Default deny, forbid wins; then approval rules for allowed uses.
    #[must_use]
    pub fn decide(&self, req: &Request<'_>) -> Decision {
        match self.prepare(req, false) {
            Ok(p) => self.decide_prepared(req, &p),
            Err(refusal) => refusal.decision(),
        }
    }

    /// The decision with every policy considered and its outcome, for
    /// `warden policy explain`. Slower than [`PolicyEngine::decide`]
    /// (evaluates every permit and forbid, unsliced); never on the request
    /// path.
    #[must_use]
    pub fn explain(&self, req: &Request<'_>) -> Explanation {
        let p = match self.prepare(req, true) {
            Ok(p) => p,
            Err(refusal) => {
                return Explanation {
                    decision: refusal.decision(),
                    facts: refusal
                        .facts
                        .as_ref()
                        .map(|f| request_facts(req, f, String::new(), String::new())),
                    detail: Some(refusal.detail),
                    policies: Vec::new(),
                }
            }
        };
        let decision = self.decide_prepared(req, &p);
        let mut outcomes: HashMap<String, Outcome> = HashMap::new();
        for set in [&self.permits, &self.forbids] {
            let r = self.authorizer.is_authorized(&p.request, set, &p.entities);
            for id in r.diagnostics().reason() {
                outcomes.insert(id.to_string(), Outcome::Satisfied);
            }
            for e in r.diagnostics().errors() {
                outcomes.insert(errored(e).to_string(), Outcome::Error(e.to_string()));
            }
        }
        let mut ids: Vec<(&String, &PolicyMeta)> = self.meta.iter().collect();
        ids.sort_by_key(|(_, m)| m.order);
        let policies = ids
            .into_iter()
            .map(|(id, m)| PolicyTrace {
                id: id.clone(),
                effect: match m.effect {
                    Effect::Permit => "permit",
                    Effect::Forbid => "forbid",
                },
                origin: m.origin.clone(),
                requires_approval: m.approval.is_some(),
                outcome: outcomes.remove(id).unwrap_or(Outcome::NotSatisfied),
                text: m.text.clone(),
            })
            .collect();
        Explanation {
            decision,
            detail: None,
            facts: Some(request_facts(
                req,
                &p.facts,
                p.principal_uid.to_string(),
                p.resource_uid.to_string(),
            )),
            policies,
        }
    }

    /// Every scope the configuration requires somewhere (`scopes.actions`,
    /// `tools`, `resources`, `prompts`), each once, in the order written:
    /// what a resource server advertises (RFC 9728 `scopes_supported`).
    #[must_use]
    pub fn scopes_used(&self) -> Vec<String> {
        let r = &self.scopes;
        let mut out: Vec<String> = Vec::new();
        let lists = r.actions.iter().map(|(_, l)| l).chain(
            r.tools
                .iter()
                .chain(&r.resources)
                .chain(&r.prompts)
                .map(|(_, l)| l),
        );
        for list in lists {
            for s in list {
                if !out.contains(s) {
                    out.push(s.clone());
                }
            }
        }
        out
    }

    /// The scopes of `scopes.actions`, each once, in the order written:
    /// what every operation of an action needs, and so what a client should
    /// hold from the start (a 401 challenge's `scope`). The rest of
    /// [`PolicyEngine::scopes_used`] only particular tools, resources or
    /// prompts need: a client steps up to those when such an operation is
    /// refused with 403 `insufficient_scope`.
    #[must_use]
    pub fn action_scopes(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for s in self.scopes.actions.iter().flat_map(|(_, l)| l) {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
        out
    }

    /// Configured scope requirements: the action's, plus every matching
    /// tool/resource/prompt entry's (discovery needs only the action's, so
    /// a client can find a tool and then step up). A granted `a:b`
    /// satisfies a required `a:b` and `a:b:…`.
    #[must_use]
    pub fn check_scopes(&self, req: &Request<'_>) -> ScopeCheck {
        let needed = self.needed_scopes(req);
        let granted = &req.principal.data().scopes;
        let ok = needed
            .iter()
            .all(|need| granted.iter().any(|g| scope_covers(g, need)));
        if ok {
            ScopeCheck::Ok
        } else {
            ScopeCheck::Missing(needed.into_iter().map(str::to_owned).collect())
        }
    }

    /// Every scope the operation needs (the action's and the item's), in
    /// configuration order: what [`PolicyEngine::check_scopes`] checks, and
    /// the `scope` of a token Warden mints for the call.
    #[must_use]
    pub fn required_scopes(&self, req: &Request<'_>) -> Vec<String> {
        self.needed_scopes(req)
            .into_iter()
            .map(str::to_owned)
            .collect()
    }

    fn needed_scopes<'s>(&'s self, req: &Request<'_>) -> Vec<&'s str> {
        let name = req.action.name();
        let mut needed: Vec<&str> = Vec::new();
        let mut push = |list: &'s [String]| {
            for s in list {
                if !needed.contains(&s.as_str()) {
                    needed.push(s);
                }
            }
        };
        for (a, list) in &self.scopes.actions {
            if *a == name {
                push(list);
            }
        }
        let patterns: &[(ItemPattern, Vec<String>)] = match req.action {
            Action::CallTool => &self.scopes.tools,
            Action::ReadResource | Action::Subscribe => &self.scopes.resources,
            Action::GetPrompt => &self.scopes.prompts,
            _ => &[],
        };
        for (p, list) in patterns {
            if p.matches(req.server, req.resource) {
                push(list);
            }
        }
        needed
    }

    /// The full Cedar text in force: built-in policies, approvals and roles
    /// as compiled, then every policy file verbatim.
    #[must_use]
    pub fn effective_policies(&self) -> String {
        self.effective.clone()
    }

    /// The Cedar schema in force (the shipped schema plus the generated
    /// `Warden::Arguments`).
    #[must_use]
    pub fn schema_text(&self) -> &str {
        &self.schema_text
    }

    /// The data class of a tool, resource (URI) or prompt, for the session
    /// facts of toxic-flow rules: looked up among tools, then resources,
    /// then prompts; else the server's class.
    #[must_use]
    pub fn data_class(&self, server: &str, tool_or_uri: &str) -> Option<&str> {
        let s = self.servers.get(server)?;
        [ItemKind::Tool, ItemKind::Resource, ItemKind::Prompt]
            .into_iter()
            .find_map(|k| {
                s.lookup(k, tool_or_uri)
                    .and_then(|(f, _)| f.data_class.as_deref())
            })
            .or(s.facts.data_class.as_deref())
    }

    /// The effective tier of an item (configured, raised by annotations),
    /// for audit records. `None` for an unknown server.
    #[must_use]
    pub fn risk_tier(
        &self,
        server: &str,
        kind: ItemKind,
        name: &str,
        annotations: Option<&RawValue>,
    ) -> Option<RiskTier> {
        let s = self.servers.get(server)?;
        Some(resource_facts(s, Some(kind), name, annotations, self.default_risk).risk)
    }

    /// How many policies are in force.
    #[must_use]
    pub fn policy_count(&self) -> usize {
        self.meta.len()
    }

    // ----- evaluation -----------------------------------------------------------

    /// Everything Cedar needs for this request, or why there is nothing to
    /// ask.
    fn prepare<'e>(
        &'e self,
        req: &Request<'_>,
        full: bool,
    ) -> Result<Prepared<'e>, Box<Refusal<'e>>> {
        let Some(server) = self.servers.get(req.server) else {
            return Err(Box::new(Refusal {
                reason: ReasonCode::UnknownServer,
                detail: "the server is not configured".into(),
                facts: None,
            }));
        };
        let kind = req.action.item_kind();
        let name = if kind.is_some() {
            req.resource
        } else {
            req.server
        };
        let facts = resource_facts(server, kind, name, req.annotations, self.default_risk);
        let arguments = match args::normalise(&self.arguments, req.arguments) {
            Ok(a) => a,
            Err(e) => {
                return Err(Box::new(Refusal {
                    reason: ReasonCode::InvalidArguments,
                    detail: e.0,
                    facts: Some(facts),
                }))
            }
        };
        match self.cedar_request(req, server, kind, name, &facts, arguments, full) {
            Ok((request, entities, principal_uid, resource_uid, candidates)) => Ok(Prepared {
                facts,
                request,
                entities,
                principal_uid,
                resource_uid,
                candidates,
            }),
            Err(detail) => Err(Box::new(Refusal {
                reason: ReasonCode::InvalidRequest,
                detail,
                facts: Some(facts),
            })),
        }
    }

    fn decide_prepared(&self, req: &Request<'_>, p: &Prepared<'_>) -> Decision {
        let (request, entities, candidates) = (&p.request, &p.entities, p.candidates.as_slice());
        let action = req.action.name();
        let tally = match self.main.slice(req.server, action) {
            Some(slice) => self.tally(slice, candidates, request, entities),
            None => Tally::default(),
        };

        // Cedar skips a policy whose evaluation errors. For a forbid that
        // would fail open, so an erroring forbid counts as applying.
        let errored_forbids = self.sorted(tally.errored.iter().filter(|id| {
            self.meta
                .get(&id.to_string())
                .is_some_and(|m| m.effect == Effect::Forbid)
        }));
        if !errored_forbids.is_empty() {
            return Decision::Deny {
                policies: errored_forbids,
                reason: ReasonCode::PolicyError,
            };
        }
        if !tally.forbids.is_empty() {
            let policies = self.sorted(tally.forbids.iter());
            let reason = policies
                .first()
                .and_then(|id| self.meta.get(id))
                .and_then(|m| m.reason.clone())
                .unwrap_or(ReasonCode::Forbidden);
            return Decision::Deny { policies, reason };
        }
        if tally.permits.is_empty() {
            return Decision::Deny {
                policies: Vec::new(),
                reason: ReasonCode::DefaultDeny,
            };
        }
        let deciding = self.sorted(tally.permits.iter());
        if matches!(req.action, Action::Discover(_)) {
            return Decision::Allow { policies: deciding };
        }
        let held = match self.approvals.slice(req.server, action) {
            Some(slice) if !slice.is_empty() => self.tally(slice, candidates, request, entities),
            _ => return Decision::Allow { policies: deciding },
        };
        // An approval rule that cannot be evaluated holds the call.
        let applying = self.sorted(held.forbids.iter().chain(held.errored.iter()));
        if applying.is_empty() {
            return Decision::Allow { policies: deciding };
        }
        let mut requires: Vec<ApprovalFact> = applying
            .iter()
            .filter_map(|id| self.meta.get(id))
            .filter_map(|m| m.approval.as_ref())
            .flatten()
            .copied()
            .collect();
        requires.sort();
        requires.dedup();
        let mut approvers: Vec<Approvers> = applying
            .iter()
            .filter_map(|id| self.meta.get(id))
            .filter(|m| m.approval.is_some())
            .map(|m| m.approvers.clone())
            .collect();
        approvers.dedup();
        let approval = &req.context.approval;
        if approval.granted && requires.iter().all(|f| approval.has(*f)) {
            let mut policies = deciding;
            policies.extend(applying);
            return Decision::Allow { policies };
        }
        Decision::RequiresApproval {
            policies: applying,
            reason: ReasonCode::ApprovalRequired,
            requires,
            approvers,
        }
    }

    /// Evaluates the sets of `slice` this principal can match and collects
    /// what held. Same result as one set holding all of them: within a set
    /// that denies, the reason is its satisfied forbids (the decision is a
    /// deny anyway); within a set that allows, its satisfied permits.
    fn tally(
        &self,
        slice: &Slice,
        candidates: &[EntityUid],
        request: &cedar_policy::Request,
        entities: &Entities,
    ) -> Tally {
        let mut t = Tally::default();
        for set in slice.sets(candidates) {
            let r = self.authorizer.is_authorized(request, set, entities);
            let reason = r.diagnostics().reason().cloned();
            match r.decision() {
                cedar_policy::Decision::Allow => t.permits.extend(reason),
                cedar_policy::Decision::Deny => t.forbids.extend(reason),
            }
            t.errored
                .extend(r.diagnostics().errors().map(|e| errored(e).clone()));
        }
        t
    }

    /// Policy ids in compiled order (built in, approvals, roles, files).
    fn sorted<'a>(&self, ids: impl Iterator<Item = &'a PolicyId>) -> Vec<String> {
        let mut v: Vec<(usize, String)> = ids
            .map(|id| {
                let s = id.to_string();
                (self.meta.get(&s).map_or(usize::MAX, |m| m.order), s)
            })
            .collect();
        v.sort();
        v.dedup();
        v.into_iter().map(|(_, s)| s).collect()
    }

    /// The Cedar request and entities; also the principal's uid and
    /// ancestors (the slicing candidates).
    #[allow(clippy::type_complexity, clippy::too_many_arguments)]
    fn cedar_request(
        &self,
        req: &Request<'_>,
        server: &ServerIndex,
        kind: Option<ItemKind>,
        name: &str,
        facts: &ResourceFacts<'_>,
        arguments: RestrictedExpression,
        full: bool,
    ) -> Result<
        (
            cedar_policy::Request,
            Arc<Entities>,
            EntityUid,
            EntityUid,
            Vec<EntityUid>,
        ),
        String,
    > {
        let t = &self.types;
        let p = req.principal.data();
        let key = req.principal.key();
        let principal_type = if p.agent_id.is_some() {
            &t.agent
        } else if p.method == AuthMethod::ApiKey {
            &t.client
        } else {
            &t.user
        };
        let principal_uid = EntityTypes::uid(principal_type, &key);
        // Only the roles, groups and tenant some policy names: the others
        // cannot change any decision (no attribute of the schema holds an
        // entity, so `principal in X` needs a literal X), and every parent
        // costs in Cedar's transitive closure. Tokens often carry dozens of
        // groups.
        // Parents: those the evaluated policies can ask about; `full`
        // (explain) gives every one, for the policies as written.
        // Candidates: the principal and the ancestors slices are filed under.
        let r = &self.referenced;
        let mut parents: HashSet<EntityUid> = HashSet::new();
        let mut candidates: Vec<EntityUid> = vec![principal_uid.clone()];
        let mut consider = |uid: EntityUid, parent: bool, key: bool| {
            if full || parent {
                parents.insert(uid.clone());
            }
            if full || key {
                candidates.push(uid);
            }
        };
        for x in &p.roles {
            let (parent, key) = (r.parents.roles.contains(x), r.keys.roles.contains(x));
            if full || parent || key {
                consider(EntityTypes::uid(&t.role, x), parent, key);
            }
        }
        for x in &p.groups {
            let (parent, key) = (r.parents.groups.contains(x), r.keys.groups.contains(x));
            if full || parent || key {
                consider(EntityTypes::uid(&t.group, x), parent, key);
            }
        }
        if let Some(x) = &p.tenant {
            let (parent, key) = (r.parents.tenants.contains(x), r.keys.tenants.contains(x));
            if full || parent || key {
                consider(EntityTypes::uid(&t.tenant, x), parent, key);
            }
        }
        // Only the attributes some policy reads (see `usage`); all of
        // them for `explain`.
        let wants = |a: &str| full || self.usage.principal(a);
        let mut attrs: HashMap<String, RestrictedExpression> = HashMap::new();
        let mut put = |a: &str, v: &dyn Fn() -> RestrictedExpression| {
            if wants(a) {
                attrs.insert(a.to_owned(), v());
            }
        };
        put("key", &|| string(&key));
        put("subject", &|| string(&p.subject));
        put("roles", &|| string_set(&p.roles));
        put("groups", &|| string_set(&p.groups));
        put("scopes", &|| string_set(&p.scopes));
        put("auth_method", &|| string(p.method.as_str()));
        if let Some(v) = &p.tenant {
            put("tenant", &|| string(v));
        }
        if let Some(v) = &p.client_id {
            put("client_id", &|| string(v));
        }
        if let Some(v) = &p.agent_id {
            put("agent_id", &|| string(v));
        }
        let principal = Entity::new(principal_uid.clone(), attrs, parents)
            .map_err(|e| format!("principal: {e}"))?;

        // The catalog's entity (or one built for an earlier request) when
        // nothing about this request changes it: the facts of an item at
        // its configured tier depend on its kind and name alone.
        let reusable = !full && !facts.raised;
        let resource = match kind {
            _ if !reusable => None,
            None => Some(server.entity.clone()),
            Some(k) if facts.prebuilt => server.prebuilt[kind_index(k)].get(name).cloned(),
            Some(k) => server.learned(k, name),
        };
        let resource = match resource {
            Some(e) => e,
            None => {
                let e = resource_entity(t, kind, req.server, name, facts, full || r.servers)?;
                if let Some(k) = kind.filter(|_| reusable && !facts.prebuilt) {
                    server.learn(k, name, &e);
                }
                e
            }
        };
        let resource_uid = resource.uid();
        // Debug builds (tests) check the complete entities and request
        // (`explain`'s) against the schema; `decide` leaves out what no
        // policy reads, and release builds rely on construction.
        let strict = (full && cfg!(debug_assertions)).then_some(&self.schema);
        let kept = if reusable {
            self.stores.get(&principal, &resource)
        } else {
            None
        };
        let entities = match kept {
            Some(kept) => kept,
            None => {
                let kept = reusable.then(|| (principal.clone(), resource.clone()));
                let entities = Arc::new(
                    Entities::from_entities([principal, resource], strict)
                        .map_err(|e| format!("entities: {e}"))?,
                );
                if let Some((principal, resource)) = kept {
                    self.stores.put(principal, resource, entities.clone());
                }
                entities
            }
        };

        let context = self.context(req, facts, arguments, full)?;
        let action = t.actions[action_index(req.action.name())].clone();
        let request = cedar_policy::Request::new(
            principal_uid.clone(),
            action,
            resource_uid.clone(),
            context,
            strict,
        )
        .map_err(|e| format!("request: {e}"))?;
        Ok((request, entities, principal_uid, resource_uid, candidates))
    }

    fn context(
        &self,
        req: &Request<'_>,
        facts: &ResourceFacts<'_>,
        arguments: RestrictedExpression,
        full: bool,
    ) -> Result<Context, String> {
        let wants = |a: &str| full || self.usage.context(a);
        let c = &req.context;
        let record = |fields: Vec<(&str, RestrictedExpression)>| {
            RestrictedExpression::new_record(fields.into_iter().map(|(k, v)| (k.to_owned(), v)))
                .map_err(|e| e.to_string())
        };
        let mut pairs: Vec<(String, RestrictedExpression)> = Vec::with_capacity(6);
        if wants("arguments") {
            pairs.push(("arguments".into(), arguments));
        }
        if wants("time") {
            let ts = jiff::Timestamp::try_from(c.now).map_err(|e| format!("time: {e}"))?;
            let local = self.time_zone.to_datetime(ts);
            let weekday = local.weekday();
            let date = format!(
                "{:04}-{:02}-{:02}",
                local.year(),
                local.month(),
                local.day()
            );
            let time = record(vec![
                (
                    "hour",
                    RestrictedExpression::new_long(i64::from(local.hour())),
                ),
                (
                    "minute",
                    RestrictedExpression::new_long(i64::from(local.minute())),
                ),
                ("weekday", string(weekday_name(weekday))),
                (
                    "weekday_number",
                    RestrictedExpression::new_long(i64::from(weekday.to_monday_one_offset())),
                ),
                ("date", string(&date)),
            ])?;
            pairs.push(("time".into(), time));
        }
        if wants("session") {
            let session = record(vec![("data_classes", string_set(c.session.data_classes))])?;
            pairs.push(("session".into(), session));
        }
        if wants("approval") {
            let mut approval = vec![(
                "granted",
                RestrictedExpression::new_bool(c.approval.granted),
            )];
            for (k, v) in [
                ("approver", c.approval.approver),
                ("change_ticket", c.approval.change_ticket),
                ("reason", c.approval.reason),
            ] {
                if let Some(v) = v {
                    approval.push((k, string(v)));
                }
            }
            pairs.push(("approval".into(), record(approval)?));
        }
        if let Some(ip) = c.client_address.filter(|_| wants("client_address")) {
            pairs.push((
                "client_address".into(),
                RestrictedExpression::new_ip(ip.to_string()),
            ));
        }
        if let Some(env) = facts
            .environment
            .or(c.environment)
            .filter(|_| wants("environment"))
        {
            pairs.push(("environment".into(), string(env)));
        }
        Context::from_pairs(pairs).map_err(|e| format!("context: {e}"))
    }
}

/// What held across the evaluated sets.
#[derive(Default)]
struct Tally {
    permits: Vec<PolicyId>,
    forbids: Vec<PolicyId>,
    errored: Vec<PolicyId>,
}

/// A request ready for Cedar.
struct Prepared<'e> {
    facts: ResourceFacts<'e>,
    request: cedar_policy::Request,
    entities: Arc<Entities>,
    principal_uid: EntityUid,
    resource_uid: EntityUid,
    /// The principal and the ancestors policies can name.
    candidates: Vec<EntityUid>,
}

/// A request refused before Cedar.
struct Refusal<'e> {
    reason: ReasonCode,
    detail: String,
    facts: Option<ResourceFacts<'e>>,
}

impl Refusal<'_> {
    fn decision(&self) -> Decision {
        Decision::Deny {
            policies: Vec::new(),
            reason: self.reason.clone(),
        }
    }
}

fn request_facts(
    req: &Request<'_>,
    f: &ResourceFacts<'_>,
    principal: String,
    resource: String,
) -> RequestFacts {
    RequestFacts {
        principal,
        action: req.action.as_str(),
        resource,
        risk: f.risk,
        data_class: f.data_class.map(str::to_owned),
        tenants: f.tenants.to_vec(),
        environment: f.environment.or(req.context.environment).map(str::to_owned),
    }
}

/// The policy an evaluation error belongs to.
fn errored(e: &cedar_policy::AuthorizationError) -> &PolicyId {
    match e {
        cedar_policy::AuthorizationError::PolicyEvaluationError(p) => p.policy_id(),
    }
}

fn string(s: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(s.to_owned())
}

fn string_set(v: &[String]) -> RestrictedExpression {
    RestrictedExpression::new_set(v.iter().map(|s| string(s)))
}

fn weekday_name(w: jiff::civil::Weekday) -> &'static str {
    use jiff::civil::Weekday;
    match w {
        Weekday::Monday => "monday",
        Weekday::Tuesday => "tuesday",
        Weekday::Wednesday => "wednesday",
        Weekday::Thursday => "thursday",
        Weekday::Friday => "friday",
        Weekday::Saturday => "saturday",
        Weekday::Sunday => "sunday",
    }
}

/// A granted scope covers a needed one when equal, or when it is a
/// `:`-prefix of it (`tools` covers `tools:git`, never `toolsx`).
pub(crate) fn scope_covers(granted: &str, needed: &str) -> bool {
    granted == needed
        || needed
            .strip_prefix(granted)
            .is_some_and(|rest| rest.starts_with(':'))
}

/// The tier upstream annotations imply; `Low` when they imply nothing.
/// Only explicit `true` raises; a malformed object raises to `High`, so an
/// upstream cannot dodge the rule by sending garbage.
pub(crate) fn annotation_floor(annotations: Option<&RawValue>) -> RiskTier {
    let Some(raw) = annotations else {
        return RiskTier::Low;
    };
    let Ok(v) = serde_json::from_str::<serde_json::Value>(raw.get()) else {
        return RiskTier::High;
    };
    let obj = match v {
        serde_json::Value::Object(o) => o,
        serde_json::Value::Null => return RiskTier::Low,
        _ => return RiskTier::High,
    };
    let hint = |k: &str| match obj.get(k) {
        None | Some(serde_json::Value::Null) | Some(serde_json::Value::Bool(false)) => Some(false),
        Some(serde_json::Value::Bool(true)) => Some(true),
        Some(_) => None,
    };
    match (hint("destructiveHint"), hint("openWorldHint")) {
        (None, _) | (_, None) | (Some(true), _) => RiskTier::High,
        (Some(false), Some(true)) => RiskTier::Medium,
        (Some(false), Some(false)) => RiskTier::Low,
    }
}

/// Server tenants narrowed by the item's: empty means every tenant.
fn effective_tenants<'a>(server: &'a [String], item: &'a [String]) -> Cow<'a, [String]> {
    match (server.is_empty(), item.is_empty()) {
        (_, true) => Cow::Borrowed(server),
        (true, false) => Cow::Borrowed(item),
        (false, false) => Cow::Owned(
            item.iter()
                .filter(|t| server.contains(t))
                .cloned()
                .collect(),
        ),
    }
}

fn register(
    meta: &mut HashMap<String, PolicyMeta>,
    all: &mut Vec<Policy>,
    policy: Policy,
    origin: PolicyOrigin,
    text: String,
) -> Result<(), PolicyError> {
    let id = policy.id().to_string();
    if meta.contains_key(&id) {
        return Err(PolicyError::DuplicateId { policy: id });
    }
    let approval = policy.annotation("requires_approval").map(|v| {
        approval_facts_text(v)
            .filter_map(ApprovalFact::parse)
            .collect::<Vec<_>>()
    });
    if approval.is_some() && policy.effect() != Effect::Forbid {
        return Err(PolicyError::Annotation {
            policy: id,
            message: "@requires_approval belongs on a forbid policy".into(),
        });
    }
    let approvers = match policy.annotation("approvers") {
        None => Approvers::default(),
        Some(_) if approval.is_none() => {
            return Err(PolicyError::Annotation {
                policy: id,
                message: "@approvers belongs on a @requires_approval policy".into(),
            })
        }
        Some(v) => Approvers::parse(v).map_err(|message| PolicyError::Annotation {
            policy: id.clone(),
            message,
        })?,
    };
    let reason = match policy.annotation("reason") {
        Some(r) if is_reason_code(r) => Some(ReasonCode::from_annotation(r)),
        Some(r) => {
            return Err(PolicyError::Annotation {
                policy: id,
                message: format!("@reason({r:?}) is not a reason code"),
            })
        }
        None => None,
    };
    meta.insert(
        id,
        PolicyMeta {
            order: meta.len(),
            effect: policy.effect(),
            origin,
            reason,
            approval,
            approvers,
            text,
        },
    );
    all.push(policy);
    Ok(())
}

fn index_catalog(
    catalog: &Catalog,
    types: &EntityTypes,
    default_risk: RiskTier,
    server_parent: bool,
) -> Result<HashMap<String, ServerIndex>, PolicyError> {
    let mut out = HashMap::new();
    for (i, s) in catalog.servers.iter().enumerate() {
        let path = format!("servers[{i}]");
        if s.name.is_empty() || s.name.contains('/') || s.name.chars().any(char::is_control) {
            return Err(PolicyError::Catalog {
                path,
                message: format!("server name {:?} must be non-empty, without '/'", s.name),
            });
        }
        for kind in [ItemKind::Tool, ItemKind::Resource, ItemKind::Prompt] {
            for (j, item) in s.items(kind).iter().enumerate() {
                let ipath = format!("{path}.{}s[{j}]", kind.as_str());
                if item.name.is_empty() {
                    return Err(PolicyError::Catalog {
                        path: ipath,
                        message: "an entry needs a name (or uri)".into(),
                    });
                }
                if !s.tenants.is_empty()
                    && !item.tenants.is_empty()
                    && effective_tenants(&s.tenants, &item.tenants).is_empty()
                {
                    return Err(PolicyError::Catalog {
                        path: ipath,
                        message: format!(
                            "tenants {:?} share none with the server's {:?}: nobody could use it",
                            item.tenants, s.tenants
                        ),
                    });
                }
            }
        }
        let index =
            ServerIndex::new(s.clone(), types, default_risk, server_parent).map_err(|message| {
                PolicyError::Catalog {
                    path: path.clone(),
                    message,
                }
            })?;
        if out.insert(s.name.clone(), index).is_some() {
            return Err(PolicyError::Catalog {
                path,
                message: format!("server {:?} appears twice", s.name),
            });
        }
    }
    Ok(out)
}

/// Exact server names in role grants, approval rules and scope patterns
/// must be servers of the catalog: a typo would otherwise grant nothing,
/// silently.
fn check_role_servers(
    settings: &AuthzSettings,
    servers: &HashMap<String, ServerIndex>,
) -> Result<(), PolicyError> {
    let check = |path: &str, server: &str| -> Result<(), PolicyError> {
        if server.contains('*') || servers.contains_key(server) {
            Ok(())
        } else {
            Err(PolicyError::UnknownServer {
                path: path.to_owned(),
                server: server.to_owned(),
            })
        }
    };
    for role in &settings.roles {
        for g in &role.grants {
            for p in g.tools.iter().chain(&g.resources).chain(&g.prompts) {
                check(&g.path, &p.server)?;
            }
            for s in g.sampling.iter().chain(&g.elicitation) {
                check(&g.path, s)?;
            }
        }
    }
    for (i, a) in settings.approvals.iter().enumerate() {
        for p in a.tools.iter().chain(&a.resources).chain(&a.prompts) {
            check(&format!("authorization.approvals[{i}]"), &p.server)?;
        }
    }
    Ok(())
}

/// A policy file naming a server that is not configured — by its own uid
/// (`Warden::Server::"gti"`) or as the server part of an item's
/// (`Warden::Tool::"gti/comment"`) — is a typo, and on a `forbid` a silent
/// hole: refused at load, naming the file and the server.
fn check_policy_servers(
    file: &str,
    policy: &Policy,
    servers: &HashMap<String, ServerIndex>,
) -> Result<(), PolicyError> {
    for uid in policy.entity_literals() {
        let ty = uid.type_name().to_string();
        let id: &str = uid.id().as_ref();
        let server = match ty.as_str() {
            "Warden::Server" => id,
            "Warden::Tool" | "Warden::Prompt" => id.split('/').next().unwrap_or(id),
            _ => continue,
        };
        if !servers.contains_key(server) {
            return Err(PolicyError::UnknownServer {
                path: format!("{file} (policy {})", policy.id()),
                server: server.to_owned(),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "engine_tests.rs"]
mod tests;
