//! Catalog entries: templates for MCP servers.

use crate::{CatalogId, error::Checker, error::Invalid, name};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use utoipa::ToSchema;

str_enum!(
    /// How the gateway and DTMA speak MCP with the server.
    Transport {
        Stdio = "stdio",
        StreamableHttp = "streamable_http",
        Sse = "sse",
    }
);

str_enum!(
    CatalogStatus {
        Available = "available",
        Beta = "beta",
        /// Kept for existing servers; new servers cannot use it.
        Deprecated = "deprecated",
    }
);

str_enum!(
    PackageManager {
        Pypi = "pypi",
        Npm = "npm",
        Binary = "binary",
    }
);

str_enum!(
    /// How a secret reaches the server: a read-only file (default) or an env variable.
    SecretDelivery {
        File = "file",
        Env = "env",
    }
);

/// Where the server comes from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CatalogSource {
    /// A container image, with an optional argument list replacing its default command.
    Image {
        image: String,
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        args: Vec<String>,
    },
    /// A package run by a command (`["python", "-m", "mcp_server_time"]`, `["npx", "-y", …]`).
    Package {
        manager: PackageManager,
        package: String,
        command: Vec<String>,
    },
    /// An MCP server that already runs somewhere; no container.
    Remote { url: String },
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SecretRequirement {
    /// Upper-case, env-variable-like name (`GITHUB_TOKEN`).
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default = "default_delivery")]
    pub delivery: SecretDelivery,
    #[serde(default = "yes")]
    pub required: bool,
}

fn default_delivery() -> SecretDelivery {
    SecretDelivery::File
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct OAuthRequirement {
    pub provider: String,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResourceLimits {
    pub memory_mb: u32,
    pub cpus: f64,
    pub pids: u32,
}

impl Default for ResourceLimits {
    fn default() -> Self {
        ResourceLimits {
            memory_mb: 256,
            cpus: 1.0,
            pids: 128,
        }
    }
}

fn object_schema() -> Value {
    serde_json::json!({"type": "object"})
}

fn available() -> CatalogStatus {
    CatalogStatus::Available
}

/// What an admin writes: the body of create and update, and the `--file` of the CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CatalogSpec {
    pub slug: String,
    #[serde(default)]
    pub display_name: String,
    #[serde(default)]
    pub description: String,
    pub source: CatalogSource,
    pub transport: Transport,
    /// Port the server listens on inside its container (HTTP transports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub port: Option<u16>,
    /// JSON Schema for a server's `config`.
    #[serde(default = "object_schema")]
    pub config_schema: Value,
    #[serde(default)]
    pub secrets: Vec<SecretRequirement>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub oauth: Option<OAuthRequirement>,
    #[serde(default)]
    pub limits: ResourceLimits,
    /// Fixed, non-secret environment.
    #[serde(default)]
    pub env: BTreeMap<String, String>,
    /// Where the server may connect (`host:port`, or `*` for anywhere); empty: nowhere.
    /// The process runtime gives a server with any egress the host's network (it cannot
    /// filter per destination) and none otherwise.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub egress: Vec<String>,
    #[serde(default = "available")]
    pub status: CatalogStatus,
    /// Honest notes: needs network, needs credentials, image not bundled…
    #[serde(default)]
    pub notes: String,
    /// Record tool-call argument values in the audit log (otherwise only their hash).
    #[serde(default)]
    pub audit_arguments: bool,
    /// Show tools that appear after the server's first discovery without an admin's
    /// approval (each such pin is audited as `tool.approve` by the entry). Off: they are
    /// held like changed tools.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub auto_approve_new_tools: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct CatalogEntry {
    pub id: CatalogId,
    #[serde(flatten)]
    pub spec: CatalogSpec,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// Upper-case identifier: `[A-Z][A-Z0-9_]*`, as env variables and secret names are.
pub fn validate_env_name(field: &str, s: &str) -> Result<(), Invalid> {
    let ok = !s.is_empty()
        && s.len() <= 128
        && s.as_bytes()[0].is_ascii_uppercase()
        && s.bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(Invalid::field(
            field,
            "must match [A-Z][A-Z0-9_]* and be at most 128 characters",
        ))
    }
}

fn check_image(c: &mut Checker, image: &str) {
    let ok = !image.is_empty()
        && image.len() <= 255
        && image
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-/:@".contains(&b))
        && !image.starts_with(['-', '/', ':', '@']);
    if !ok {
        c.fail(
            "source.image",
            "must be an image reference like 'mcp/time' or 'registry:5000/org/img:tag'",
        );
    }
}

fn check_args(c: &mut Checker, field: &str, args: &[String]) {
    for (i, a) in args.iter().enumerate() {
        if a.contains('\0') || a.len() > 4096 {
            c.fail(
                format!("{field}[{i}]"),
                "must not contain NUL and be at most 4096 bytes",
            );
        }
    }
}

/// One egress destination: `*` (anywhere) or `host:port` (a name or an address, IPv6 in
/// brackets) with a port 1-65535.
pub fn validate_egress(field: &str, e: &str) -> Result<(), Invalid> {
    if e == "*" {
        return Ok(());
    }
    let ok = e.rsplit_once(':').is_some_and(|(host, port)| {
        let host_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-_[]:".contains(&b));
        host_ok && port.parse::<u16>().is_ok_and(|p| p > 0)
    });
    if ok {
        Ok(())
    } else {
        Err(Invalid::field(
            field,
            "must be `*` or `host:port` (a port 1-65535)",
        ))
    }
}

/// `http(s)://host[:port]/…` with a non-empty host.
pub fn validate_http_url(field: &str, url: &str) -> Result<(), Invalid> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"));
    let host = rest.map(|r| r.split(['/', '?', '#']).next().unwrap_or(""));
    match host {
        Some(h) if !h.is_empty() && !h.contains(char::is_whitespace) && !h.contains('@') => Ok(()),
        _ => Err(Invalid::field(
            field,
            "must be an http:// or https:// URL with a host (no credentials in the URL)",
        )),
    }
}

/// Why a spec's text is not a catalog entry.
#[derive(Debug, thiserror::Error)]
pub enum SpecTextError {
    #[error("is neither YAML nor JSON: {0}")]
    Syntax(serde_norway::Error),
    #[error("is not a catalog entry: {0}")]
    Shape(serde_json::Error),
}

/// A spec as an admin writes it (the dashboard's form, `toolbelt catalog create --file`):
/// YAML, a superset of JSON, into JSON, then the catalog's own type — unknown or missing
/// fields are refused by its deserializer. Not yet validated ([`CatalogSpec::validate`]).
pub fn parse_spec(text: &str) -> Result<CatalogSpec, SpecTextError> {
    let v: Value = serde_norway::from_str(text).map_err(SpecTextError::Syntax)?;
    serde_json::from_value(v).map_err(SpecTextError::Shape)
}

/// A spec as YAML for an admin to edit; [`parse_spec`] reads it back unchanged.
pub fn spec_yaml(spec: &CatalogSpec) -> Result<String, serde_norway::Error> {
    serde_norway::to_string(spec)
}

impl CatalogSpec {
    pub fn validate(&self) -> Result<(), Invalid> {
        let mut c = Checker::new();
        c.check(name::Name::parse("slug", &self.slug, name::LONG_NAME_MAX));
        if self.display_name.len() > 200 {
            c.fail("display_name", "must be at most 200 characters");
        }
        if self.description.len() > 4000 {
            c.fail("description", "must be at most 4000 characters");
        }
        let http = self.transport != Transport::Stdio;
        match &self.source {
            CatalogSource::Image { image, args } => {
                check_image(&mut c, image);
                check_args(&mut c, "source.args", args);
                if http && self.port.is_none() {
                    c.fail("port", "is required for an image served over HTTP");
                }
            }
            CatalogSource::Package {
                package, command, ..
            } => {
                if package.trim().is_empty() {
                    c.fail("source.package", "must not be empty");
                }
                if command.is_empty() || command[0].trim().is_empty() {
                    c.fail("source.command", "must name the program to run");
                }
                check_args(&mut c, "source.command", command);
                if http && self.port.is_none() {
                    c.fail("port", "is required for a package served over HTTP");
                }
            }
            CatalogSource::Remote { url } => {
                c.check(validate_http_url("source.url", url));
                if !http {
                    c.fail(
                        "transport",
                        "a remote server speaks streamable_http or sse, not stdio",
                    );
                }
            }
        }
        if self.port == Some(0) {
            c.fail("port", "must be 1-65535");
        }
        if !self.config_schema.is_object() {
            c.fail("config_schema", "must be a JSON Schema object");
        }
        let mut seen = std::collections::HashSet::new();
        for (i, s) in self.secrets.iter().enumerate() {
            c.check(validate_env_name(&format!("secrets[{i}].name"), &s.name));
            if !seen.insert(&s.name) {
                c.fail(format!("secrets[{i}].name"), "is listed twice");
            }
        }
        if let Some(o) = &self.oauth
            && o.provider.trim().is_empty()
        {
            c.fail("oauth.provider", "must not be empty");
        }
        let l = self.limits;
        if !(16..=65536).contains(&l.memory_mb) {
            c.fail("limits.memory_mb", "must be 16-65536");
        }
        if !(l.cpus >= 0.01 && l.cpus <= 64.0) {
            c.fail("limits.cpus", "must be 0.01-64");
        }
        if !(8..=32768).contains(&l.pids) {
            c.fail("limits.pids", "must be 8-32768");
        }
        for k in self.env.keys() {
            c.check(validate_env_name(&format!("env.{k}"), k));
        }
        for (i, e) in self.egress.iter().enumerate() {
            c.check(validate_egress(&format!("egress[{i}]"), e));
        }
        c.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(v: Value) -> CatalogSpec {
        serde_json::from_value(v).unwrap()
    }

    fn fields(s: &CatalogSpec) -> Vec<String> {
        s.validate()
            .err()
            .map(|e| e.0.into_iter().map(|f| f.field).collect())
            .unwrap_or_default()
    }

    #[test]
    fn minimal_entries_validate_with_defaults() {
        let s = spec(
            json!({"slug": "time", "source": {"type": "image", "image": "mcp/time"}, "transport": "stdio"}),
        );
        assert!(s.validate().is_ok());
        assert_eq!(s.limits, ResourceLimits::default());
        assert_eq!(s.status, CatalogStatus::Available);
        assert_eq!(s.config_schema, json!({"type": "object"}));
    }

    #[test]
    fn each_problem_names_its_field() {
        let s = spec(json!({
            "slug": "Bad_Slug",
            "source": {"type": "image", "image": "bad image"},
            "transport": "streamable_http",
            "config_schema": [],
            "secrets": [{"name": "lower"}, {"name": "X"}, {"name": "X"}],
            "limits": {"memory_mb": 1, "cpus": 0, "pids": 1},
            "env": {"bad-key": "v"}
        }));
        let f = fields(&s);
        for want in [
            "slug",
            "source.image",
            "port",
            "config_schema",
            "secrets[0].name",
            "secrets[2].name",
            "limits.memory_mb",
            "limits.cpus",
            "limits.pids",
            "env.bad-key",
        ] {
            assert!(f.contains(&want.to_string()), "{want} missing from {f:?}");
        }
    }

    #[test]
    fn remote_entries_need_an_http_transport_and_url() {
        let s = spec(
            json!({"slug": "r", "source": {"type": "remote", "url": "ftp://x"}, "transport": "stdio"}),
        );
        assert_eq!(fields(&s), vec!["source.url", "transport"]);
        let s = spec(
            json!({"slug": "r", "source": {"type": "remote", "url": "https://user:pw@x/mcp"}, "transport": "sse"}),
        );
        assert_eq!(fields(&s), vec!["source.url"]);
        let s = spec(
            json!({"slug": "r", "source": {"type": "remote", "url": "https://mcp.example.com/mcp"}, "transport": "streamable_http"}),
        );
        assert!(s.validate().is_ok());
    }

    #[test]
    fn unknown_fields_are_refused() {
        let r: Result<CatalogSpec, _> = serde_json::from_value(json!({
            "slug": "x", "source": {"type": "image", "image": "x"}, "transport": "stdio", "privileged": true
        }));
        assert!(r.unwrap_err().to_string().contains("privileged"));
    }
}
