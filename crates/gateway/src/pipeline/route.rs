//! Stage 3, Route: the request's method, name or URI → what it is about
//! ([`Target`]): the server and the upstream's own name, checked against
//! the virtual server's exposure; a list's cursor decoded. The audit facts
//! learn the action, server, item and the arguments' hash here.

use std::collections::BTreeMap;
use std::sync::Arc;

use warden_protocol::edit::json_string;
use warden_protocol::message::{as_str, member};
use warden_protocol::method::{self, ListKind, NameKind, Route};

use super::{Exchange, Refusal, Target};
use crate::core::Gateway;
use crate::federation::{self, cursor};
use crate::session::{lock, Channel};

pub(crate) async fn run(gw: &Arc<Gateway>, ex: &mut Exchange<'_>) -> Result<(), Refusal> {
    let method = ex.msg.method();
    if ex.snap.route_arc(&ex.session.virtual_server).is_none() {
        return Err(Refusal::VirtualServerGone);
    }
    ex.target = match method::route(method) {
        Route::Local => match method {
            "ping" if ex.session.channel != Channel::Modern => Target::Local,
            "server/discover" if ex.session.channel == Channel::Modern => Target::Local,
            "initialize" if ex.session.channel != Channel::Modern => {
                return Err(Refusal::AlreadyInitialized)
            }
            _ => return Err(Refusal::MethodNotFound),
        },
        Route::List(kind) => list(ex, kind)?,
        Route::ByName(kind) => by_name(gw, ex, kind)?,
        Route::ByUri => by_uri(gw, ex).await?,
        Route::ByRef => by_ref(gw, ex).await?,
        Route::Broadcast => {
            ex.call.note(|f| f.action = Some("set_log_level"));
            Target::Broadcast {
                servers: ex.route.servers.clone(),
            }
        }
        _ => return Err(Refusal::MethodNotFound),
    };
    Ok(())
}

fn list(ex: &Exchange<'_>, kind: ListKind) -> Result<Target, Refusal> {
    let pending = match ex.msg.param_str("cursor") {
        None => BTreeMap::new(),
        Some(c) => match cursor::decode(&c) {
            Some(p) if !p.is_empty() => p,
            _ => return Err(Refusal::InvalidParams("invalid cursor".into())),
        },
    };
    Ok(Target::List { kind, pending })
}

/// `tools/call` and `prompts/get` by namespaced name.
fn by_name(gw: &Gateway, ex: &mut Exchange<'_>, kind: NameKind) -> Result<Target, Refusal> {
    let Some(name_raw) = ex.msg.param("name") else {
        return Err(Refusal::InvalidParams("params.name is required".into()));
    };
    let Some(exposed) = as_str(name_raw) else {
        return Err(Refusal::InvalidParams(
            "params.name must be a string".into(),
        ));
    };
    let what = if kind == NameKind::Tool {
        "tool"
    } else {
        "prompt"
    };
    let routed = ex
        .route
        .resolve(&ex.snap.namer, &exposed)
        .filter(|_| kind != NameKind::Tool || ex.route.exposes_tool(&exposed))
        .map(|(s, n)| (s.to_owned(), n.to_owned()));
    let Some((server, upstream_name)) = routed else {
        return Err(Refusal::InvalidParams(format!(
            "unknown {what}: {}",
            federation::truncate(&exposed, 128)
        )));
    };
    // `arguments` must be an object when present (MCP: `{ [key]: unknown }`).
    let arguments = ex.msg.param("arguments");
    if let Some(args) = arguments {
        if !args.get().trim_start().starts_with('{') {
            return Err(Refusal::InvalidParams(
                "params.arguments must be an object".into(),
            ));
        }
    }
    ex.edits
        .replace(ex.msg.text, name_raw, json_string(&upstream_name));
    let action = if kind == NameKind::Tool {
        warden_policy::Action::CallTool
    } else {
        warden_policy::Action::GetPrompt
    };
    ex.call.note(|f| {
        f.action = Some(action.as_str());
        f.server = Some(server.clone());
        f.item = Some(upstream_name.clone());
    });
    if let Some(args) = arguments {
        // Hashed when a stage or the record first asks.
        ex.hashed_arguments = Some(args);
        let recorded = gw.audit().and_then(|a| a.recorded_arguments(args));
        if recorded.is_some() {
            ex.call.note(|f| f.arguments = recorded);
        }
    }
    Ok(Target::Item {
        kind,
        server,
        upstream_name,
        exposed: exposed.into_owned(),
    })
}

/// `resources/read`, `resources/subscribe`, `resources/unsubscribe`.
async fn by_uri(gw: &Arc<Gateway>, ex: &mut Exchange<'_>) -> Result<Target, Refusal> {
    let Some(uri) = ex.msg.param_str("uri") else {
        return Err(Refusal::InvalidParams("params.uri must be a string".into()));
    };
    let uri = uri.into_owned();
    let Some(server) = route_by_uri(gw, ex, &uri).await else {
        return Err(Refusal::ResourceNotFound { uri });
    };
    // Policy decides both directions as `subscribe`; the record says which.
    let recorded = match ex.msg.method() {
        "resources/read" => warden_policy::Action::ReadResource.as_str(),
        "resources/unsubscribe" => "unsubscribe",
        _ => warden_policy::Action::Subscribe.as_str(),
    };
    ex.call.note(|f| {
        f.action = Some(recorded);
        f.server = Some(server.clone());
        f.item = Some(federation::truncate(&uri, 1024));
    });
    Ok(Target::Resource { server, uri })
}

/// `completion/complete`: routed by `params.ref`.
async fn by_ref(gw: &Arc<Gateway>, ex: &mut Exchange<'_>) -> Result<Target, Refusal> {
    let Some(r) = ex.msg.param("ref") else {
        return Err(Refusal::InvalidParams("params.ref is required".into()));
    };
    match member(r, "type").and_then(as_str).as_deref() {
        Some("ref/prompt") => {
            let Some(name_raw) = member(r, "name") else {
                return Err(Refusal::InvalidParams("params.ref.name is required".into()));
            };
            let name = as_str(name_raw).unwrap_or_default();
            let Some((server, upstream_name)) = ex
                .route
                .resolve(&ex.snap.namer, &name)
                .map(|(s, n)| (s.to_owned(), n.to_owned()))
            else {
                return Err(Refusal::InvalidParams("unknown prompt".into()));
            };
            ex.edits
                .replace(ex.msg.text, name_raw, json_string(&upstream_name));
            ex.call.note(|f| {
                f.action = Some("complete");
                f.server = Some(server.clone());
                f.item = Some(upstream_name.clone());
            });
            Ok(Target::CompletePrompt {
                server,
                upstream_name,
                exposed: name.into_owned(),
            })
        }
        Some("ref/resource") => {
            let uri = member(r, "uri")
                .and_then(as_str)
                .unwrap_or_default()
                .into_owned();
            let Some(server) = route_by_uri(gw, ex, &uri).await else {
                return Err(Refusal::InvalidParams("unknown resource".into()));
            };
            ex.call.note(|f| {
                f.action = Some("complete");
                f.server = Some(server.clone());
                f.item = Some(federation::truncate(&uri, 1024));
            });
            Ok(Target::CompleteResource { server, uri })
        }
        _ => Err(Refusal::InvalidParams(
            "params.ref.type must be ref/prompt or ref/resource".into(),
        )),
    }
}

/// Which server a resource URI belongs to: a URI seen in a list, then a
/// template, then — if still unknown — after listing every server once.
/// Templates are matched outside any lock, in time linear in the URI.
pub(crate) async fn route_by_uri(
    gw: &Arc<Gateway>,
    ex: &Exchange<'_>,
    uri: &str,
) -> Option<String> {
    for attempt in 0..2 {
        if let Some(s) = lock(&ex.session.resource_routes).get(uri) {
            return Some(s.clone());
        }
        // An `Arc` of the list: matching (linear in the URI) holds no lock.
        let templates = lock(&ex.session.template_routes).clone();
        if let Some(t) = templates.iter().find(|t| t.compiled.matches(uri)) {
            return Some(t.server.clone());
        }
        if ex.route.servers.len() == 1 {
            return ex.route.servers.first().cloned();
        }
        if attempt == 0 {
            // Learn routes from the first pages of both lists.
            for kind in [ListKind::Resources, ListKind::ResourceTemplates] {
                let _ = gw.list_pages(ex, kind, &BTreeMap::new()).await;
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::super::tests::Fixture;
    use super::*;

    #[tokio::test]
    async fn a_name_resolves_to_its_server_and_upstream_name() {
        let fx = Fixture::new("servers:\n  gh:\n    command: 'true'\n");
        let text = r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"gh__comment","arguments":{"a":1}}}"#;
        let target = fx.route(text).await.unwrap();
        let Target::Item {
            server,
            upstream_name,
            ..
        } = target
        else {
            panic!("{target:?}")
        };
        assert_eq!((server.as_str(), upstream_name.as_str()), ("gh", "comment"));
    }

    #[tokio::test]
    async fn tools_call_arguments_as_a_string_or_array_are_invalid_params() {
        let fx = Fixture::new("servers:\n  gh:\n    command: 'true'\n");
        for args in [r#""text""#, "[1,2]", "7"] {
            let text = format!(
                r#"{{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{{"name":"gh__comment","arguments":{args}}}}}"#
            );
            let r = fx.route(&text).await.unwrap_err();
            assert!(matches!(r, Refusal::InvalidParams(_)), "{args}: {r:?}");
        }
    }

    #[tokio::test]
    async fn an_unknown_server_is_invalid_params_and_reaches_no_upstream() {
        let fx = Fixture::new("servers:\n  gh:\n    command: 'true'\n");
        let text =
            r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"gti__comment"}}"#;
        assert!(matches!(
            fx.route(text).await,
            Err(Refusal::InvalidParams(_))
        ));
        assert_eq!(fx.gw.upstream_count(), 0);
    }

    #[tokio::test]
    async fn a_bad_cursor_is_invalid_params() {
        let fx = Fixture::new("servers:\n  gh:\n    command: 'true'\n");
        let text = r#"{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{"cursor":"w1.!!"}}"#;
        assert!(matches!(
            fx.route(text).await,
            Err(Refusal::InvalidParams(_))
        ));
    }
}
