//! A POST to `/mcp`: `decode` (the gateway reads every body with it) and the fast path's
//! `claims`. Input: the body, or header lines (`name: value`), a NUL byte, then the body
//! (a JSON body holds no raw NUL); without headers the fast path's usual ones are sent.
//! Checks: no panic; of refused bodies, exactly those that are not JSON get
//! `parse_error`; only `tools/call` and `tools/list` are claimed.
#![no_main]

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::fuzz_target;
use toolbelt_model::rpc::ErrorKind;
use toolbelt_wire::fast_claim::claims;
use toolbelt_wire::mcp_body::{Decoded, decode};

fn headers(head: Option<&[u8]>) -> HeaderMap {
    let mut h = HeaderMap::new();
    let Some(head) = head else {
        h.insert("accept", HeaderValue::from_static("application/json, text/event-stream"));
        h.insert("content-type", HeaderValue::from_static("application/json"));
        return h;
    };
    for line in head.split(|b| *b == b'\n') {
        let Some(colon) = line.iter().position(|b| *b == b':') else {
            continue;
        };
        let value = line[colon + 1..].trim_ascii();
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(&line[..colon]),
            HeaderValue::from_bytes(value),
        ) {
            h.append(n, v);
        }
    }
    h
}

fuzz_target!(|data: &[u8]| {
    let (head, body) = match data.iter().position(|b| *b == 0) {
        Some(nul) => (Some(&data[..nul]), &data[nul + 1..]),
        None => (None, data),
    };
    let is_json = serde_json::from_slice::<serde_json::Value>(body).is_ok();
    match decode(body) {
        Err(e) => assert_eq!(
            e.kind() == ErrorKind::ParseError,
            !is_json,
            "parse_error for exactly the bodies that are not JSON: {e}"
        ),
        // Not always JSON by `Value`'s rules: rmcp's types skip what they ignore (a
        // number out of `f64`'s range, say) as serde_json does.
        Ok(d) => {
            let claimed = claims(&headers(head), &d);
            assert!(!claimed || matches!(d, Decoded::Call { .. } | Decoded::List { .. }));
        }
    }
});
