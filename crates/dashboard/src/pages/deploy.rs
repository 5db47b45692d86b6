//! The Deploy form of a catalog entry, generated from its `config_schema` (types,
//! required, enums, defaults, descriptions) and its secret requirements (a picker of the
//! caller's secrets). Posted values are turned into JSON by the schema's types; checking
//! them is the servers service's (the same JSON Schema check as the API's), whose field
//! errors (`config.port`, `secrets.API_KEY`, `name`, `toolbox`) land next to the inputs.

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
    pub description: String,
    pub required: bool,
    pub value: String,
    pub error: Option<String>,
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
}
