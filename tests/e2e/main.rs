//! End-to-end: the real binary, as a user drives it.

mod cli_walkthrough;
mod dtma_docker;
mod dtma_paths;
mod dtma_process;
mod gateway_access;
mod gateway_audit;
mod gateway_browser;
mod gateway_fast;
mod gateway_limits;
mod gateway_pins;
mod gateway_process;
mod gateway_reply;
mod gw_setup;
mod oauth_flow;
mod oauth_world;
mod process_limits;
mod replicas;
mod sandbox_escape;
mod signals;
mod tls_inbound;
mod tls_outbound;
mod tool_search;
mod toolboxes_docker;
mod up_docker;
mod upgrade;
mod vault_secrets;
