//! Canonical JSON: object keys sorted, no insignificant whitespace. Used for hashes that
//! must not depend on field order (audit events, pinned tool definitions).
//!
//! Written out explicitly rather than relying on `serde_json::Map` ordering, which changes
//! when any crate in the build enables serde_json's `preserve_order`.

use serde_json::Value;

pub fn to_string(v: &Value) -> String {
    let mut out = String::new();
    write(v, &mut out);
    out
}

fn write(v: &Value, out: &mut String) {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write(&map[k], out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn key_order_does_not_matter() {
        let a = json!({"b": 1, "a": {"z": [1, {"y": 2, "x": 3}], "c": "é\n"}});
        let b: serde_json::Value =
            serde_json::from_str(r#"{"a":{"c":"é\n","z":[1,{"x":3,"y":2}]},"b":1}"#).unwrap();
        assert_eq!(super::to_string(&a), super::to_string(&b));
        assert_eq!(
            super::to_string(&a),
            r#"{"a":{"c":"é\n","z":[1,{"x":3,"y":2}]},"b":1}"#
        );
    }

    /// fuzz/canonical_json found it: a float that serde_json (without `float_roundtrip`)
    /// read one ULP off, so the canonical text read back as another value.
    #[test]
    fn fuzz_regression_a_float_reads_back_as_itself() {
        let bytes = include_bytes!("../../../fuzz/regressions/canonical_json/float_roundtrip.json");
        let v: serde_json::Value = serde_json::from_slice(bytes).unwrap();
        let text = super::to_string(&v);
        let back: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(back, v, "{text}");
        assert_eq!(super::to_string(&back), text);
    }
}
