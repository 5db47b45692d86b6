//! Canonical JSON, hashed for pinned tool definitions and the audit chain:
//! `canonical::to_string` and `ChainFields`. Checks: no panic; the text is JSON that reads
//! back as the same value and is its own canonical form; it is what serde_json writes for
//! a map with sorted keys (when this build's `Map` sorts, as without `preserve_order`); an
//! audit row's canonical text carries its detail unchanged.
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{Map, Value};
use toolbelt_model::audit::ChainFields;
use toolbelt_model::canonical;

fn map_sorts() -> bool {
    let mut m = Map::new();
    m.insert("b".into(), Value::Null);
    m.insert("a".into(), Value::Null);
    m.keys().next().is_some_and(|k| k == "a")
}

fuzz_target!(|data: &[u8]| {
    let Ok(v) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let c = canonical::to_string(&v);
    let back: Value = serde_json::from_str(&c).expect("canonical text is JSON");
    assert_eq!(back, v, "canonical text reads back as another value: {c}");
    assert_eq!(canonical::to_string(&back), c, "not idempotent");
    if map_sorts() {
        assert_eq!(c, serde_json::to_string(&v).unwrap());
    }
    let row = ChainFields {
        seq: 1,
        ts_ms: 0,
        actor_kind: "agent",
        actor_id: None,
        owner_id: Some("o"),
        action: "tool.call",
        target_kind: "tool",
        target_id: Some("t"),
        outcome: "ok",
        detail: &c,
    };
    let text: Value = serde_json::from_str(&row.canonical()).expect("a row is JSON");
    assert_eq!(text["detail"].as_str(), Some(c.as_str()));
    let h = row.hash("0");
    assert!(h.len() == 64 && h.bytes().all(|b| b.is_ascii_hexdigit()));
});
