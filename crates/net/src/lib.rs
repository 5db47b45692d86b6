//! Toolbelt's network edge, shared by the control plane, the gateway, the DTMA and the
//! CLI (it depends only on `toolbelt-model`).
//!
//! - [`ssrf`]: the SSRF guard — which addresses a fetch may reach, checked where the
//!   address is known (the DNS resolver, IP-literal URLs, every redirect hop).
//! - [`http`]: every outbound HTTP client — rustls with the platform's roots plus
//!   `TOOLBELT_CA_FILE`, no plain `http://` off loopback unless allowed.
//! - [`dtma_address`]: where a DTMA may say it is (`advertise_url`), and the guard every
//!   call to a DTMA goes through.
//! - [`dtma_pin`]: the key a DTMA serves TLS with, pinned at join, and the clients that
//!   accept only it.
//! - [`tls`]: inbound TLS from PEM files, reloaded when they change.
//! - [`otel`]: OpenTelemetry traces over OTLP/HTTP and W3C `traceparent` in and out.

pub mod dtma_address;
pub mod dtma_pin;
pub mod http;
pub mod otel;
pub mod ssrf;
pub mod tls;
