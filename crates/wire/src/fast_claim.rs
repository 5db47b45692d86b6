//! Which `/mcp` messages the gateway's fast path serves itself ([`claims`]): a decoded
//! `tools/call` or `tools/list` whose headers and `_meta` need nothing of rmcp's own
//! checks or routing. Anything it is not sure of goes to rmcp.

use crate::mcp_body::Decoded;
use http::{HeaderMap, header};
use rmcp::model::{ProtocolVersion, RequestMetaObject};

/// Headers as rmcp requires them, and nothing that needs rmcp's own checks.
fn plain_headers(h: &HeaderMap, method: &str, name: Option<&str>) -> bool {
    let essences = || {
        h.get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|e| {
                e.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
    };
    let accepts =
        essences().any(|e| e == "application/json") && essences().any(|e| e == "text/event-stream");
    let json_body = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .eq_ignore_ascii_case("application/json")
        });
    // A legacy version rmcp knows (absent: 2025-03-26, as rmcp assumes).
    let version = match h.get("mcp-protocol-version") {
        None => true,
        Some(v) => v.to_str().is_ok_and(|v| {
            v < ProtocolVersion::V_2026_07_28.as_str()
                && ProtocolVersion::KNOWN_VERSIONS
                    .iter()
                    .any(|k| k.as_str() == v)
        }),
    };
    // SEP-2243 headers must agree with the body; rmcp checks them.
    let sep2243 = h
        .get("mcp-method")
        .is_none_or(|m| m.as_bytes() == method.as_bytes())
        && h.get("mcp-name")
            .is_none_or(|n| name.is_some_and(|name| n.as_bytes() == name.as_bytes()))
        && !h.keys().any(|k| k.as_str().starts_with("mcp-param-"));
    // Hosts and origins were checked by the HTTP layer, for every request.
    accepts && json_body && version && sep2243
}

/// `_meta` the fast path passes on as it is (no progress to route, no per-request
/// protocol negotiation).
fn plain_meta(m: &RequestMetaObject) -> bool {
    m.get_progress_token().is_none()
        && !m
            .0
            .0
            .keys()
            .any(|k| k.starts_with("io.modelcontextprotocol/"))
}

/// Whether the fast path answers this message exactly as rmcp would.
pub fn claims(headers: &HeaderMap, d: &Decoded) -> bool {
    match d {
        Decoded::Call { params, meta, .. } => {
            params.input_responses.is_none()
                && params.request_state.is_none()
                && plain_meta(meta)
                && plain_headers(headers, "tools/call", Some(&params.name))
        }
        Decoded::List { meta, .. } => {
            plain_meta(meta) && plain_headers(headers, "tools/list", None)
        }
        _ => false,
    }
}
