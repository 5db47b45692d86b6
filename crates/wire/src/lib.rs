//! Bytes from outside the process, decoded: the body of a POST to `/mcp` and whether the
//! gateway's fast path serves it ([`mcp_body`], [`fast_claim`]), and what a stdio MCP
//! server writes on its stdout ([`stdio`]). Every entry point takes any input and never
//! panics; `fuzz/` holds a cargo-fuzz target for each. A crate of its own so the fuzz
//! build needs neither the gateway's nor the DTMA's dependencies.

pub mod fast_claim;
pub mod mcp_body;
pub mod stdio;
