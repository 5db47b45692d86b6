//! The OpenAPI document as served: utoipa's, with one correction. A request type that
//! refuses unknown fields (`#[serde(deny_unknown_fields)]`) is documented as closed
//! (`additionalProperties: false`), which is right for requests. A response type that
//! flattens it (`CatalogEntry` = `id` + the flattened `CatalogSpec` + timestamps) becomes
//! `allOf: [closed spec, {id, …}]` — a schema no response can satisfy, since the closed
//! half forbids the other half's fields. Inside an `allOf`, the closed schema is inlined
//! open; requests keep referring to the closed one.

use serde_json::{Map, Value};

const PREFIX: &str = "#/components/schemas/";

/// The served JSON of `spec`.
pub fn finish(spec: &utoipa::openapi::OpenApi) -> Value {
    let mut doc = serde_json::to_value(spec).unwrap_or_default();
    let closed: Map<String, Value> = doc["components"]["schemas"]
        .as_object()
        .map(|s| {
            s.iter()
                .filter(|(_, v)| v.get("additionalProperties") == Some(&Value::Bool(false)))
                .map(|(k, v)| {
                    let mut open = v.clone();
                    open.as_object_mut()
                        .map(|o| o.remove("additionalProperties"));
                    (k.clone(), open)
                })
                .collect()
        })
        .unwrap_or_default();
    open_in_all_of(&mut doc, &closed);
    doc
}

fn open_in_all_of(v: &mut Value, closed: &Map<String, Value>) {
    match v {
        Value::Object(o) => {
            if let Some(Value::Array(parts)) = o.get_mut("allOf") {
                for p in parts.iter_mut() {
                    let open = p["$ref"]
                        .as_str()
                        .and_then(|r| r.strip_prefix(PREFIX))
                        .and_then(|name| closed.get(name));
                    if let Some(open) = open {
                        *p = open.clone();
                    }
                }
            }
            o.values_mut().for_each(|x| open_in_all_of(x, closed));
        }
        Value::Array(a) => a.iter_mut().for_each(|x| open_in_all_of(x, closed)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_closed_schema_is_opened_only_where_it_is_flattened() {
        let mut doc = json!({
            "components": { "schemas": {
                "Spec": { "type": "object", "additionalProperties": false,
                    "properties": { "slug": { "type": "string" } } },
                "Entry": { "allOf": [ { "$ref": "#/components/schemas/Spec" },
                    { "type": "object", "properties": { "id": { "type": "string" } } } ] } } },
            "paths": { "/x": { "post": { "requestBody": { "$ref": "#/components/schemas/Spec" } } } }
        });
        let closed = Map::from_iter([(
            "Spec".to_string(),
            json!({ "type": "object", "properties": { "slug": { "type": "string" } } }),
        )]);
        open_in_all_of(&mut doc, &closed);
        let entry = &doc["components"]["schemas"]["Entry"]["allOf"][0];
        assert_eq!(entry.get("additionalProperties"), None);
        assert_eq!(entry["properties"]["slug"]["type"], "string");
        assert_eq!(
            doc["components"]["schemas"]["Spec"]["additionalProperties"],
            false
        );
        assert_eq!(
            doc["paths"]["/x"]["post"]["requestBody"]["$ref"],
            "#/components/schemas/Spec"
        );
    }
}
