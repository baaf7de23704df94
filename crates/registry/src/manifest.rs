//! Manifests: an item exactly as an upstream announced it, canonicalised and hashed.

use std::fmt;
use std::str::FromStr;

use serde_json::value::RawValue;
use warden_protocol::message::{as_str, member};

use crate::canonical::{canonical_json, ManifestHash};
use crate::error::RegistryError;

/// What kind of item a manifest describes.
///
/// `Instructions` is the server's `initialize` instructions text: it reaches
/// the model like a description does, so it is pinned and scanned too (a
/// server that rewrites its instructions is a rug pull as well).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ItemKind {
    Tool,
    Prompt,
    ResourceTemplate,
    Resource,
    Instructions,
}

impl ItemKind {
    pub const ALL: [ItemKind; 5] = [
        ItemKind::Tool,
        ItemKind::Prompt,
        ItemKind::ResourceTemplate,
        ItemKind::Resource,
        ItemKind::Instructions,
    ];

    /// The lock-file spelling: `tool`, `prompt`, `resource_template`, `resource`, `instructions`.
    pub fn as_str(self) -> &'static str {
        match self {
            ItemKind::Tool => "tool",
            ItemKind::Prompt => "prompt",
            ItemKind::ResourceTemplate => "resource_template",
            ItemKind::Resource => "resource",
            ItemKind::Instructions => "instructions",
        }
    }

    /// The member that identifies an item of this kind within its server.
    pub fn name_member(self) -> Option<&'static str> {
        match self {
            ItemKind::Tool | ItemKind::Prompt => Some("name"),
            ItemKind::ResourceTemplate => Some("uriTemplate"),
            ItemKind::Resource => Some("uri"),
            ItemKind::Instructions => None,
        }
    }

    /// The member of a list result that carries items of this kind
    /// (`tools/list` → `tools`, …).
    pub fn list_member(self) -> Option<&'static str> {
        match self {
            ItemKind::Tool => Some("tools"),
            ItemKind::Prompt => Some("prompts"),
            ItemKind::ResourceTemplate => Some("resourceTemplates"),
            ItemKind::Resource => Some("resources"),
            ItemKind::Instructions => None,
        }
    }
}

impl fmt::Display for ItemKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ItemKind {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        ItemKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or(())
    }
}

/// The name under which a server's instructions are pinned.
pub const INSTRUCTIONS_NAME: &str = "instructions";

/// One item as its upstream announced it.
///
/// The canonical id is `server` + `kind` + `name` + `hash`; two manifests
/// with equal ids are byte-identical in canonical form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub server: String,
    pub kind: ItemKind,
    /// The upstream's own name (not Warden's namespaced one): `name` for
    /// tools and prompts, `uriTemplate` / `uri` for resource templates and
    /// resources, `instructions` for server instructions.
    pub name: String,
    pub hash: ManifestHash,
    /// RFC 8785 canonical JSON of the whole item as the upstream sent it.
    pub json: String,
}

impl Manifest {
    /// `server/kind/name@sha256:…`, for logs and audit events.
    pub fn id(&self) -> String {
        format!("{}@{}", self.key(), self.hash)
    }

    /// `server/kind/name`.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.server, self.kind, self.name)
    }

    /// The canonical JSON as a raw value, for [`crate::Scanner::scan_manifest`].
    pub fn raw(&self) -> Result<Box<RawValue>, RegistryError> {
        RawValue::from_string(self.json.clone())
            .map_err(|_| RegistryError::InvalidJson("canonical JSON did not re-parse"))
    }
}

/// Canonicalises and hashes one item of a list result.
pub fn manifest(server: &str, kind: ItemKind, item: &RawValue) -> Result<Manifest, RegistryError> {
    let name = match kind.name_member() {
        Some(key) => member(item, key)
            .and_then(as_str)
            .map(|s| s.into_owned())
            .ok_or(RegistryError::MissingName { kind, member: key })?,
        None => INSTRUCTIONS_NAME.to_owned(),
    };
    let json = canonical_json(item)?;
    Ok(Manifest {
        server: server.to_owned(),
        kind,
        name,
        hash: ManifestHash::of(&json),
        json,
    })
}

/// The manifest of a server's `initialize` instructions.
pub fn instructions_manifest(server: &str, instructions: &str) -> Result<Manifest, RegistryError> {
    let quoted = serde_json::to_string(instructions)
        .map_err(|_| RegistryError::InvalidJson("instructions"))?;
    let raw =
        RawValue::from_string(quoted).map_err(|_| RegistryError::InvalidJson("instructions"))?;
    manifest(server, ItemKind::Instructions, &raw)
}

/// The items of a list result (`{"tools": [...], "nextCursor": ...}`),
/// borrowed. `None` when the result has no array under the kind's member.
pub fn list_items(kind: ItemKind, result: &RawValue) -> Option<Vec<&RawValue>> {
    member(result, kind.list_member()?).and_then(warden_protocol::message::elements)
}

/// Manifests of every item of a list result; items that cannot be
/// canonicalised are returned as errors beside their index.
pub fn manifests_of_list(
    server: &str,
    kind: ItemKind,
    result: &RawValue,
) -> Vec<Result<Manifest, (usize, RegistryError)>> {
    list_items(kind, result)
        .unwrap_or_default()
        .into_iter()
        .enumerate()
        .map(|(i, item)| manifest(server, kind, item).map_err(|e| (i, e)))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(s: &str) -> Box<RawValue> {
        RawValue::from_string(s.to_owned()).unwrap()
    }

    #[test]
    fn tool_manifest_is_named_and_hashed_canonically() {
        let a = manifest(
            "github",
            ItemKind::Tool,
            &raw(r#"{"name":"x","description":"d","inputSchema":{"type":"object"}}"#),
        )
        .unwrap();
        let b = manifest(
            "github",
            ItemKind::Tool,
            &raw(r#"{ "inputSchema" : {"type":"object"}, "description":"d", "name":"x" }"#),
        )
        .unwrap();
        assert_eq!(a, b);
        assert_eq!(a.name, "x");
        assert_eq!(
            a.json,
            r#"{"description":"d","inputSchema":{"type":"object"},"name":"x"}"#
        );
        assert!(a.id().starts_with("github/tool/x@sha256:"));
    }

    #[test]
    fn resources_are_named_by_uri() {
        let m = manifest(
            "fs",
            ItemKind::Resource,
            &raw(r#"{"uri":"file:///a","name":"A"}"#),
        )
        .unwrap();
        assert_eq!(m.name, "file:///a");
        let t = manifest(
            "fs",
            ItemKind::ResourceTemplate,
            &raw(r#"{"uriTemplate":"file:///{p}","name":"T"}"#),
        )
        .unwrap();
        assert_eq!(t.name, "file:///{p}");
    }

    #[test]
    fn missing_name_is_an_error() {
        let e = manifest("s", ItemKind::Tool, &raw(r#"{"description":"d"}"#)).unwrap_err();
        assert!(matches!(
            e,
            RegistryError::MissingName { member: "name", .. }
        ));
        let e = manifest("s", ItemKind::Tool, &raw(r#"{"name":3}"#)).unwrap_err();
        assert!(matches!(e, RegistryError::MissingName { .. }));
    }

    #[test]
    fn instructions_are_a_string_manifest() {
        let m = instructions_manifest("s", "Use tools wisely.\n").unwrap();
        assert_eq!(m.kind, ItemKind::Instructions);
        assert_eq!(m.name, "instructions");
        assert_eq!(m.json, r#""Use tools wisely.\n""#);
    }

    #[test]
    fn list_results_yield_each_item() {
        let r = raw(r#"{"tools":[{"name":"a"},{"nope":1},{"name":"b"}],"nextCursor":"x"}"#);
        let ms = manifests_of_list("s", ItemKind::Tool, &r);
        assert_eq!(ms.len(), 3);
        assert!(ms[0].is_ok() && ms[2].is_ok());
        assert!(matches!(ms[1], Err((1, _))));
    }

    #[test]
    fn kinds_round_trip_through_their_spelling() {
        for k in ItemKind::ALL {
            assert_eq!(k.as_str().parse::<ItemKind>(), Ok(k));
        }
        assert!("tools".parse::<ItemKind>().is_err());
    }
}
