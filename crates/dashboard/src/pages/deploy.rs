//! The Deploy form of a catalog entry, generated from its `config_schema` (types,
//! required, enums, defaults, descriptions), its secret requirements (a picker of the
//! caller's secrets, or a new value to seal) and its OAuth requirement (the scopes to
//! connect with, as checkboxes). Posted values are turned into JSON by the schema's
//! types; checking them is the servers service's (the same JSON Schema check as the
//! API's), whose field errors (`config.port`, `secrets.API_KEY`, `name`, `toolbox`) land
//! next to the inputs. Posting is [`super::deploy_submit`]'s.

use crate::form::Form;
use crate::view::Errors;
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use toolbelt_model::catalog::CatalogSpec;

pub struct ConfigField {
    pub key: String,
    /// The form field and the service's error field: `config.<key>`.
    pub field: String,
    pub input_id: String,
    pub title: String,
    pub description: String,
    /// text, number, checkbox, select or json.
    pub kind: &'static str,
    pub required: bool,
    pub options: Vec<String>,
    pub value: String,
    pub checked: bool,
    pub error: Option<String>,
}

pub struct SecretField {
    pub name: String,
    pub field: String,
    pub input_id: String,
    /// The new-value input: `secret-value.<NAME>`, `#secret-value-<NAME>`. Its value is
    /// never rendered, not even after a refusal.
    pub new_field: String,
    pub new_input_id: String,
    /// The name the new value is sealed under, with the server's name as a placeholder.
    pub sealed_as: String,
    pub description: String,
    pub required: bool,
    /// The existing secret picked.
    pub value: String,
    pub error: Option<String>,
}

/// The form field of a requirement's new value.
pub const NEW_VALUE: &str = "secret-value.";

/// The vault name a new value for requirement `key` of server `server` is sealed under:
/// `<server>-<key>` in lowercase, `_` and other separators as `-` (`wx` + `API_KEY` →
/// `wx-api-key`), so it reads as the server's and passes the name rules when the server's
/// name does.
pub fn sealed_name(server: &str, key: &str) -> String {
    format!("{server}-{}", key_part(key))
}

fn key_part(key: &str) -> String {
    let mut out = String::new();
    for c in key.chars() {
        let c = c.to_ascii_lowercase();
        let c = if c.is_ascii_lowercase() || c.is_ascii_digit() {
            c
        } else {
            '-'
        };
        if !(c == '-' && out.ends_with('-')) {
            out.push(c);
        }
    }
    out.trim_matches('-').to_string()
}

/// Requirement → the new value typed for it (empty inputs left out). Values are taken as
/// typed: spaces may be part of a secret.
pub fn new_values(f: &Form) -> BTreeMap<String, String> {
    f.with_prefix(NEW_VALUE)
        .filter(|(_, v)| !v.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// One scope checkbox of the OAuth picker.
pub struct ScopeBox {
    pub scope: String,
    pub input_id: String,
    pub checked: bool,
}

/// The entry's OAuth requirement on the form: the scopes to connect with (the entry's and
/// the provider's default scopes, as checkboxes) and whether to connect after deploying.
pub struct OAuthPicker {
    pub provider: String,
    /// The provider is configured here (otherwise there is nothing to connect to).
    pub configured: bool,
    /// The caller has an active connection to the provider already.
    pub connected: bool,
    pub scopes: Vec<ScopeBox>,
    pub connect: bool,
    pub error: Option<String>,
}

/// The form fields of the picker.
pub const SCOPE_FIELD: &str = "oauth.scope";
pub const CONNECT_FIELD: &str = "oauth.connect";

/// The scopes offered: the entry's first, then the provider's defaults it does not name.
pub fn offered_scopes(spec: &CatalogSpec, provider_defaults: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let entry = spec
        .oauth
        .as_ref()
        .map(|o| o.scopes.as_slice())
        .unwrap_or(&[]);
    for s in entry.iter().chain(provider_defaults) {
        if !out.contains(s) {
            out.push(s.clone());
        }
    }
    out
}

/// The picker as the form shows it: unposted, the entry's scopes are checked (the
/// provider's defaults when the entry names none) and connecting is on unless the caller
/// is connected already; posted, what was posted.
pub fn oauth_picker(
    spec: &CatalogSpec,
    provider_defaults: Option<&[String]>,
    connected: bool,
    posted: Option<&Form>,
    errors: &Errors,
) -> Option<OAuthPicker> {
    let o = spec.oauth.as_ref()?;
    let defaults = provider_defaults.unwrap_or(&[]);
    let first: &[String] = if o.scopes.is_empty() {
        defaults
    } else {
        &o.scopes
    };
    let picked = posted.map(|f| f.all(SCOPE_FIELD));
    let scopes = offered_scopes(spec, defaults)
        .into_iter()
        .enumerate()
        .map(|(i, scope)| ScopeBox {
            input_id: format!("oauth-scope-{i}"),
            checked: match &picked {
                Some(p) => p.contains(&scope.as_str()),
                None => first.contains(&scope),
            },
            scope,
        })
        .collect();
    Some(OAuthPicker {
        provider: o.provider.clone(),
        configured: provider_defaults.is_some(),
        connected,
        scopes,
        connect: match posted {
            Some(f) => f.checked(CONNECT_FIELD),
            None => provider_defaults.is_some() && !connected,
        },
        error: errors
            .get("oauth.scopes")
            .or_else(|| errors.get(CONNECT_FIELD))
            .map(str::to_string),
    })
}

fn props(spec: &CatalogSpec) -> Vec<(String, Value)> {
    spec.config_schema["properties"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())).collect())
        .unwrap_or_default()
}

fn required(spec: &CatalogSpec) -> Vec<String> {
    spec.config_schema["required"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|v| v.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn kind_of(p: &Value) -> &'static str {
    if p["enum"].is_array() {
        return "select";
    }
    match p["type"].as_str() {
        Some("integer") | Some("number") => "number",
        Some("boolean") => "checkbox",
        Some("object") | Some("array") => "json",
        _ => "text",
    }
}

fn shown(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A required property the schema check reports at `config` itself (`"port" is a
/// required property`) is shown at that property's input.
fn error_for(errors: &Errors, key: &str) -> Option<String> {
    let field = format!("config.{key}");
    errors.get(&field).map(str::to_string).or_else(|| {
        errors
            .fields
            .iter()
            .find(|e| e.field == "config" && e.message.starts_with(&format!("\"{key}\" ")))
            .map(|e| e.message.clone())
    })
}

/// The form's config inputs, filled with what was posted (or the schema's defaults).
pub fn config_fields(
    spec: &CatalogSpec,
    posted: Option<&Form>,
    errors: &Errors,
) -> Vec<ConfigField> {
    let req = required(spec);
    props(spec)
        .into_iter()
        .map(|(key, p)| {
            let field = format!("config.{key}");
            let kind = kind_of(&p);
            let default = shown(&p["default"]);
            let value = match posted {
                Some(f) => f.get(&field).unwrap_or("").to_string(),
                None => default.clone(),
            };
            let checked = match posted {
                Some(f) => f.checked(&field),
                None => p["default"].as_bool().unwrap_or(false),
            };
            ConfigField {
                input_id: format!("config-{key}"),
                title: p["title"].as_str().unwrap_or(&key).to_string(),
                description: p["description"].as_str().unwrap_or("").to_string(),
                kind,
                required: req.contains(&key),
                options: p["enum"]
                    .as_array()
                    .map(|a| a.iter().map(shown).collect())
                    .unwrap_or_default(),
                error: error_for(errors, &key),
                value,
                checked,
                key,
                field,
            }
        })
        .collect()
}

pub fn secret_fields(
    spec: &CatalogSpec,
    posted: Option<&Form>,
    errors: &Errors,
) -> Vec<SecretField> {
    spec.secrets
        .iter()
        .map(|s| {
            let field = format!("secrets.{}", s.name);
            SecretField {
                input_id: format!("secret-{}", s.name),
                new_field: format!("{NEW_VALUE}{}", s.name),
                new_input_id: format!("secret-value-{}", s.name),
                sealed_as: match posted.map(|f| f.text("name")).filter(|n| !n.is_empty()) {
                    Some(server) => sealed_name(&server, &s.name),
                    None => sealed_name("<server name>", &s.name),
                },
                description: s.description.clone(),
                required: s.required,
                value: posted.map(|f| f.text(&field)).unwrap_or_default(),
                error: errors.get(&field).map(str::to_string),
                name: s.name.clone(),
                field,
            }
        })
        .collect()
}

/// The posted config as JSON by the schema's types. A value that does not parse as its
/// type is passed on as the text it is, so the schema check names it.
pub fn config_of(spec: &CatalogSpec, f: &Form) -> Map<String, Value> {
    let mut out = Map::new();
    let known = props(spec);
    for (key, p) in &known {
        let field = format!("config.{key}");
        let raw = f.get(&field).unwrap_or("").trim();
        let v = match (kind_of(p), p["type"].as_str()) {
            ("checkbox", _) => Value::Bool(f.checked(&field)),
            _ if raw.is_empty() => continue,
            (_, Some("integer")) => raw
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| raw.into()),
            (_, Some("number")) => raw
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number)
                .unwrap_or_else(|| raw.into()),
            ("json", _) => serde_json::from_str(raw).unwrap_or_else(|_| raw.into()),
            _ => raw.into(),
        };
        out.insert(key.clone(), v);
    }
    // Fields the schema does not list go as text: the schema decides if they may.
    for (k, v) in f.with_prefix("config.") {
        if !known.iter().any(|(key, _)| key == k) && !v.trim().is_empty() {
            out.insert(k.to_string(), v.trim().into());
        }
    }
    out
}

/// Secret requirement → chosen secret name (empty choices left out).
pub fn secrets_of(f: &Form) -> BTreeMap<String, String> {
    f.with_prefix("secrets.")
        .filter(|(_, v)| !v.trim().is_empty())
        .map(|(k, v)| (k.to_string(), v.trim().to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(schema: Value) -> CatalogSpec {
        serde_json::from_value(json!({
            "slug": "x", "source": {"type": "image", "image": "x"}, "transport": "stdio",
            "config_schema": schema,
        }))
        .unwrap()
    }

    #[test]
    fn posted_values_take_their_schema_types_and_bad_ones_stay_text() {
        let s = spec(json!({"type": "object", "properties": {
            "port": {"type": "integer"}, "ratio": {"type": "number"}, "debug": {"type": "boolean"},
            "mode": {"enum": ["a", "b"]}, "tags": {"type": "array"}, "name": {"type": "string"}}}));
        let f = Form(vec![
            ("config.port".into(), "8080".into()),
            ("config.ratio".into(), "x".into()),
            ("config.mode".into(), "b".into()),
            ("config.tags".into(), "[1,2]".into()),
            ("config.name".into(), "".into()),
        ]);
        let c = config_of(&s, &f);
        assert_eq!(
            Value::Object(c),
            json!({"port": 8080, "ratio": "x", "debug": false, "mode": "b", "tags": [1, 2]})
        );
        let fields = config_fields(&s, None, &Errors::default());
        assert_eq!(
            fields.iter().find(|f| f.key == "mode").unwrap().kind,
            "select"
        );
        assert_eq!(
            fields.iter().find(|f| f.key == "debug").unwrap().kind,
            "checkbox"
        );
    }

    #[test]
    fn a_new_value_is_sealed_under_the_servers_name_and_the_requirement() {
        assert_eq!(sealed_name("wx", "API_KEY"), "wx-api-key");
        assert_eq!(sealed_name("gh", "GITHUB__TOKEN_"), "gh-github-token");
        assert_eq!(sealed_name("s", "key2"), "s-key2");
        let f = Form(vec![
            ("secret-value.API_KEY".into(), " spaced ".into()),
            ("secret-value.EMPTY".into(), "".into()),
        ]);
        let v = new_values(&f);
        assert_eq!(v.len(), 1);
        assert_eq!(v["API_KEY"], " spaced ", "taken as typed");
        assert!(
            !format!("{f:?}").contains("spaced"),
            "a form's Debug shows names only"
        );
    }

    #[test]
    fn the_scope_picker_checks_the_entrys_scopes_then_what_was_posted() {
        let mut s = spec(json!({"type": "object"}));
        s.oauth = Some(toolbelt_model::catalog::OAuthRequirement {
            provider: "gh".into(),
            scopes: vec!["repo".into()],
        });
        let defaults = vec!["read".to_string(), "repo".to_string()];
        let p = oauth_picker(&s, Some(&defaults), false, None, &Errors::default()).unwrap();
        let shown: Vec<(&str, bool)> = p
            .scopes
            .iter()
            .map(|b| (b.scope.as_str(), b.checked))
            .collect();
        assert_eq!(shown, [("repo", true), ("read", false)]);
        assert!(p.connect && p.configured);
        let posted = Form(vec![("oauth.scope".into(), "read".into())]);
        let p = oauth_picker(&s, Some(&defaults), true, Some(&posted), &Errors::default()).unwrap();
        let shown: Vec<bool> = p.scopes.iter().map(|b| b.checked).collect();
        assert_eq!(shown, [false, true]);
        assert!(!p.connect, "not posted: off");
        let p = oauth_picker(&s, None, false, None, &Errors::default()).unwrap();
        assert!(!p.configured && !p.connect);
    }
}
