//! Policy slicing: at load, every policy is filed under the (server,
//! action) pairs its scope admits and, within those, under the principal
//! entity its scope names (`principal in Warden::Role::"r"`). A request
//! evaluates only the slices its server, action and principal can match.
//!
//! Cedar evaluates every policy of a set it is given, rebuilding each
//! policy's condition on the way; with hundreds of policies that is
//! hundreds of microseconds. Slicing is exact, not a heuristic: a policy
//! left out of a slice has a scope that cannot hold for any request of that
//! slice, because
//! - there are no action groups, so `action in [..]` is list membership;
//! - a tool, resource or prompt has exactly one parent, its server, and its
//!   id is `<server>/<name>` with no `/` in server names;
//! - a principal's ancestors are exactly its roles, groups and tenant.
//!
//! Anything the analysis does not recognise goes to every slice.
//!
//! Within a slice, the scope constraints that filing already decided are
//! stripped from the evaluated copy of each policy (`action == …`,
//! `resource in Warden::Server::"s"`, `principal in Warden::Role::"r"`
//! become unconstrained; `is T` stays): they hold for every request that
//! reaches the slice. The request then needs only the principal's parents
//! that conditions still name, and often none, which spares Cedar most of
//! its transitive-closure work. `explain` evaluates the policies as
//! written, with every parent, and the tests compare the two.

use std::collections::HashMap;

use cedar_policy::{
    ActionConstraint, EntityUid, Policy, PolicySet, PrincipalConstraint, ResourceConstraint,
};

use crate::request::ActionName;

/// The policies of one (server, action) pair.
#[derive(Debug, Default)]
pub(crate) struct Slice {
    /// Policies whose principal scope is `principal`, `principal is T`.
    common: Option<PolicySet>,
    /// Policies whose principal scope names an entity (`in`, `==`,
    /// `is T in`), by that entity, each set merged with `common` (one
    /// evaluation instead of two for the usual one-matching-role caller).
    by_principal: HashMap<EntityUid, PolicySet>,
}

impl Slice {
    /// The sets to evaluate for a principal whose entity and ancestors are
    /// `candidates`: the merged sets of the candidates that have one, else
    /// `common` alone. Together they hold `common` and every policy the
    /// principal's scope can match.
    pub(crate) fn sets<'a>(&'a self, candidates: &'a [EntityUid]) -> Vec<&'a PolicySet> {
        let mut sets: Vec<&PolicySet> = candidates
            .iter()
            .filter_map(|c| self.by_principal.get(c))
            .collect();
        if sets.is_empty() {
            sets.extend(self.common.iter());
        }
        sets
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.common.is_none() && self.by_principal.is_empty()
    }

    fn merge_common(&mut self) -> Result<(), String> {
        if let Some(common) = &self.common {
            for set in self.by_principal.values_mut() {
                for p in common.policies() {
                    set.add(p.clone()).map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    }

    fn add(&mut self, p: &Policy, stripped: &Policy) -> Result<(), String> {
        let set = match principal_key(p) {
            None => self.common.get_or_insert_with(PolicySet::new),
            Some(uid) => self.by_principal.entry(uid).or_default(),
        };
        set.add(stripped.clone()).map_err(|e| e.to_string())
    }
}

/// Slices for every server of the catalog and every action.
#[derive(Debug, Default)]
pub(crate) struct SlicedSet {
    by_server: HashMap<String, Vec<Slice>>,
    /// Entity literals the stripped policies still contain.
    literals: Vec<EntityUid>,
    /// The principal entities slices are filed under.
    keys: Vec<EntityUid>,
}

impl SlicedSet {
    pub(crate) fn build<'a>(
        policies: &[Policy],
        servers: impl Iterator<Item = &'a str>,
    ) -> Result<SlicedSet, String> {
        let stripped: Vec<Policy> = policies.iter().map(strip).collect::<Result<_, _>>()?;
        // Each policy's scope, analysed once.
        let scopes: Vec<([bool; 7], Option<String>)> = policies
            .iter()
            .map(|p| (ActionName::ALL.map(|a| admits_action(p, a)), server_of(p)))
            .collect();
        let mut by_server = HashMap::new();
        for server in servers {
            let mut slices: Vec<Slice> = ActionName::ALL.iter().map(|_| Slice::default()).collect();
            for (i, slice) in slices.iter_mut().enumerate() {
                for ((p, s), (actions, only)) in policies.iter().zip(&stripped).zip(&scopes) {
                    let admits_server = only.as_deref().is_none_or(|only| only == server);
                    if actions[i] && admits_server {
                        slice.add(p, s)?;
                    }
                }
                slice.merge_common()?;
            }
            by_server.insert(server.to_owned(), slices);
        }
        let literals = stripped.iter().flat_map(Policy::entity_literals).collect();
        let keys = policies.iter().filter_map(principal_key).collect();
        Ok(SlicedSet {
            by_server,
            literals,
            keys,
        })
    }

    /// Entity literals the evaluated (stripped) policies contain: the only
    /// ancestors a request needs to give.
    pub(crate) fn literals(&self) -> &[EntityUid] {
        &self.literals
    }

    /// The principal entities policies are filed under: a request looks
    /// its principal's up.
    pub(crate) fn keys(&self) -> &[EntityUid] {
        &self.keys
    }

    pub(crate) fn slice(&self, server: &str, action: ActionName) -> Option<&Slice> {
        let i = ActionName::ALL.iter().position(|a| *a == action)?;
        self.by_server.get(server)?.get(i)
    }
}

fn admits_action(p: &Policy, action: ActionName) -> bool {
    let is = |uid: &EntityUid| {
        uid.type_name().to_string() == "Warden::Action" && uid.id().unescaped() == action.as_str()
    };
    match p.action_constraint() {
        ActionConstraint::Any => true,
        ActionConstraint::Eq(uid) => is(&uid),
        ActionConstraint::In(list) => list.iter().any(is),
    }
}

/// The one server whose requests the resource scope admits; `None` for
/// every server.
fn server_of(p: &Policy) -> Option<String> {
    let target = match p.resource_constraint() {
        ResourceConstraint::Any | ResourceConstraint::Is(_) => return None,
        ResourceConstraint::In(uid)
        | ResourceConstraint::Eq(uid)
        | ResourceConstraint::IsIn(_, uid) => uid,
    };
    let id = target.id().unescaped();
    match target.type_name().to_string().as_str() {
        "Warden::Server" => Some(id.to_owned()),
        // No server name holds a `/`; an id without one matches no request
        // (the empty name is no server's).
        "Warden::Tool" | "Warden::Resource" | "Warden::Prompt" => {
            Some(id.split_once('/').map_or("", |(s, _)| s).to_owned())
        }
        // Not a shape Warden builds: keep it everywhere.
        _ => None,
    }
}

fn principal_key(p: &Policy) -> Option<EntityUid> {
    match p.principal_constraint() {
        PrincipalConstraint::Any | PrincipalConstraint::Is(_) => None,
        PrincipalConstraint::In(uid)
        | PrincipalConstraint::Eq(uid)
        | PrincipalConstraint::IsIn(_, uid) => Some(uid),
    }
}

/// The policy with the scope constraints its slice decides removed (see the
/// module documentation). Works on the JSON form, Cedar's stable interchange
/// format for policies.
fn strip(p: &Policy) -> Result<Policy, String> {
    let mut json = p.to_json().map_err(|e| format!("{}: {e}", p.id()))?;
    let Some(obj) = json.as_object_mut() else {
        return Err(format!("{}: unexpected JSON form", p.id()));
    };
    if let Some(principal) = obj.get_mut("principal") {
        match op(principal) {
            Some("==" | "in") => *principal = all(),
            Some("is") => drop_in(principal),
            _ => {}
        }
    }
    obj.insert("action".into(), all());
    if let Some(resource) = obj.get_mut("resource") {
        let in_server = |entity: Option<&serde_json::Value>| {
            entity.is_some_and(|e| {
                let e = e.get("__entity").unwrap_or(e);
                e.get("type").and_then(serde_json::Value::as_str) == Some("Warden::Server")
            })
        };
        match op(resource) {
            Some("in") if in_server(resource.get("entity")) => *resource = all(),
            Some("is") if in_server(resource.get("in").and_then(|i| i.get("entity"))) => {
                drop_in(resource);
            }
            _ => {}
        }
    }
    Policy::from_json(Some(p.id().clone()), json).map_err(|e| format!("{}: {e}", p.id()))
}

fn op(v: &serde_json::Value) -> Option<&str> {
    v.get("op").and_then(serde_json::Value::as_str)
}

fn all() -> serde_json::Value {
    serde_json::json!({ "op": "All" })
}

fn drop_in(v: &mut serde_json::Value) {
    if let Some(o) = v.as_object_mut() {
        o.remove("in");
    }
}
