//! [`Options::from_env`]: the README's configuration table. A variable that is unset or
//! blank keeps its default; one that is set but does not parse is an error naming it.

use crate::error::AppError;
use crate::options::{DEFAULT_DATA_DIR, DEFAULT_LISTEN, Options, VaultKeys};
use std::time::Duration;
use toolbelt_control::client_ip::TrustedProxies;
use toolbelt_control::service::login_limits::LoginLimits;
use toolbelt_gateway::GatewayConfig;
use toolbelt_gateway::ratelimit::Rate;
use toolbelt_gateway::ssrf::AllowList;
use toolbelt_model::toolbox::ToolboxKind;
use toolbelt_oauth::OAuthConfig;
use zeroize::Zeroizing;

type Result<T> = std::result::Result<T, AppError>;

impl Options {
    /// Every setting this process's environment gives. Which processes run is the
    /// command's choice: `local_toolbox` stays off (`toolbelt up` turns it on).
    pub fn from_env() -> Result<Options> {
        Options::from_vars(|name| match std::env::var(name) {
            Ok(v) => Ok(Some(v)),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => Err(invalid(name, "is not valid text")),
        })
    }

    /// [`Options::from_env`] over any source of variables.
    pub fn from_vars(get: impl Fn(&'static str) -> Result<Option<String>>) -> Result<Options> {
        let v = Vars(&get);
        let mut o = Options::new(
            v.get("TOOLBELT_DATA_DIR")?
                .unwrap_or(DEFAULT_DATA_DIR.into()),
        );
        let listen = v.get("TOOLBELT_LISTEN")?.unwrap_or(DEFAULT_LISTEN.into());
        o.listen = listen
            .trim()
            .parse()
            .map_err(|e| invalid("TOOLBELT_LISTEN", e))?;
        o.database_url = v.get("TOOLBELT_DATABASE_URL")?;
        o.migrate_database_url = v.get("TOOLBELT_MIGRATE_DATABASE_URL")?;
        o.runtime = v
            .get("TOOLBELT_RUNTIME")?
            .map(|r| {
                ToolboxKind::parse(r.trim())
                    .filter(|k| *k != ToolboxKind::Remote)
                    .ok_or_else(|| invalid("TOOLBELT_RUNTIME", "must be docker or process"))
            })
            .transpose()?;
        o.fsync_every_commit = v.get("TOOLBELT_FSYNC")?.is_some_and(|f| truthy(&f));
        o.bootstrap_token = v.get("TOOLBELT_BOOTSTRAP_TOKEN")?;
        o.admin_email = v.get("TOOLBELT_ADMIN_EMAIL")?;
        o.control_key_file = v.get("TOOLBELT_CONTROL_KEY_FILE")?.map(Into::into);
        o.audit_key_file = v.get("TOOLBELT_AUDIT_KEY_FILE")?.map(Into::into);
        o.audit_checkpoint_file = v.get("TOOLBELT_AUDIT_CHECKPOINT_FILE")?.map(Into::into);
        if let Some(n) = v.number::<i64>("TOOLBELT_AUDIT_CHECKPOINT_EVENTS")? {
            if n < 1 {
                return Err(invalid(
                    "TOOLBELT_AUDIT_CHECKPOINT_EVENTS",
                    "must be 1 or more",
                ));
            }
            o.audit_checkpoint_every = n;
        }
        if let Some(d) = v.millis("TOOLBELT_AUDIT_CHECKPOINT_MS")? {
            o.audit_checkpoint_interval = d.max(Duration::from_millis(10));
        }
        o.vault_keys = match v.get(toolbelt_vault::ENV_VAR)? {
            Some(k) => VaultKeys::Given(Zeroizing::new(k)),
            None => VaultKeys::File(v.get("TOOLBELT_VAULT_KEY_FILE")?.map(Into::into)),
        };
        o.public_url = v.get("TOOLBELT_PUBLIC_URL")?;
        if let Some(d) = v.millis("TOOLBELT_HEARTBEAT_MS")? {
            o.control.heartbeat_interval = d;
        }
        if let Some(x) = v.get("TOOLBELT_TRUSTED_PROXIES")? {
            o.control.trusted_proxies =
                TrustedProxies::parse(&x).map_err(|e| invalid("TOOLBELT_TRUSTED_PROXIES", e))?;
        }
        login(&v, &mut o.control.login)?;
        if let Some(f) = v.get("TOOLBELT_CA_FILE")? {
            o.outbound = toolbelt_net::http::Outbound::with_ca_file(f.trim().as_ref())
                .map_err(|e| invalid("TOOLBELT_CA_FILE", e))?;
        }
        o.outbound.allow_plain_http = v
            .get("TOOLBELT_ALLOW_PLAIN_HTTP")?
            .is_some_and(|f| truthy(&f));
        if let Some(x) = v.get("TOOLBELT_DTMA_ALLOW")? {
            let allow = AllowList::parse(&x).map_err(|e| invalid("TOOLBELT_DTMA_ALLOW", e))?;
            o.outbound.dtma = toolbelt_net::dtma_address::DtmaAddresses::allowing(allow);
        }
        // Off by default: DTMAs joined on plain HTTP keep working until an admin says so.
        o.outbound.dtma.require_tls = v
            .get("TOOLBELT_DTMA_REQUIRE_TLS")?
            .is_some_and(|f| truthy(&f));
        o.gateway = gateway(&v)?;
        if let Some(n) = v.number::<u64>("TOOLBELT_CHAT_DAILY_TOKENS")? {
            o.chat.daily_tokens = n;
        }
        if let Some(d) = v.millis("TOOLBELT_CHAT_TURN_TIMEOUT_MS")? {
            o.chat.turn_timeout = d;
        }
        o.oauth = oauth(&v)?;
        if let Some(d) = v.get("TOOLBELT_METRICS_RETENTION_DAYS")? {
            let days: u64 = d
                .trim()
                .parse()
                .ok()
                .filter(|d| (1..=3650).contains(d))
                .ok_or_else(|| invalid("TOOLBELT_METRICS_RETENTION_DAYS", "must be 1-3650 days"))?;
            o.metrics.retention = Duration::from_secs(days * 24 * 3600);
        }
        if let Some(d) = v.millis("TOOLBELT_METRICS_FLUSH_MS")? {
            o.metrics.flush_every = d.max(Duration::from_millis(50));
        }
        if let Some(e) = v.get("TOOLBELT_OTLP_ENDPOINT")? {
            toolbelt_net::otel::traces_url(&e).map_err(|e| invalid("TOOLBELT_OTLP_ENDPOINT", e))?;
            o.otlp_endpoint = Some(e.trim().to_string());
        }
        if let Some(n) = v.number::<usize>("TOOLBELT_METRICS_MAX_SERIES")? {
            o.control.metrics_max_series = n;
        }
        if let Some(t) = v.get("TOOLBELT_METRICS_TOKEN")? {
            // A guessable scrape token would show every agent's and server's name.
            if t.trim().chars().count() < 16 {
                return Err(invalid(
                    "TOOLBELT_METRICS_TOKEN",
                    "must be at least 16 characters",
                ));
            }
            o.control.metrics_token = Some(toolbelt_model::token::TokenDigest::of(t.trim()));
        }
        Ok(o)
    }
}

/// The variables, blank ones read as unset.
struct Vars<'a>(&'a dyn Fn(&'static str) -> Result<Option<String>>);

impl Vars<'_> {
    fn get(&self, name: &'static str) -> Result<Option<String>> {
        Ok((self.0)(name)?.filter(|v| !v.trim().is_empty()))
    }

    fn number<T: std::str::FromStr>(&self, name: &'static str) -> Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        self.get(name)?
            .map(|v| {
                v.trim()
                    .parse::<T>()
                    .map_err(|e| invalid(name, format!("must be a number ({e})")))
            })
            .transpose()
    }

    fn millis(&self, name: &'static str) -> Result<Option<Duration>> {
        self.get(name)?
            .map(|v| {
                v.trim()
                    .parse::<u64>()
                    .map(Duration::from_millis)
                    .map_err(|e| invalid(name, format!("must be milliseconds ({e})")))
            })
            .transpose()
    }
}

fn invalid(name: &'static str, e: impl std::fmt::Display) -> AppError {
    AppError::Setting {
        name,
        message: e.to_string(),
    }
}

/// As clap reads a flag from the environment: only the usual spellings of "no" are false.
fn truthy(v: &str) -> bool {
    !matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "0" | "n" | "no" | "f" | "false" | "off"
    )
}

fn gateway(v: &Vars<'_>) -> Result<GatewayConfig> {
    let mut c = GatewayConfig::default();
    if let Some(x) = v.get("TOOLBELT_RATE_LIMIT_AGENT")? {
        c.agent_rate = Some(Rate::parse(&x).map_err(|e| invalid("TOOLBELT_RATE_LIMIT_AGENT", e))?);
    }
    if let Some(x) = v.get("TOOLBELT_RATE_LIMIT_TOOL")? {
        c.tool_rate = Some(Rate::parse(&x).map_err(|e| invalid("TOOLBELT_RATE_LIMIT_TOOL", e))?);
    }
    if let Some(x) = v.get("TOOLBELT_SSRF_ALLOW")? {
        c.ssrf_allow = AllowList::parse(&x).map_err(|e| invalid("TOOLBELT_SSRF_ALLOW", e))?;
    }
    if let Some(x) = v.get("TOOLBELT_ALLOWED_HOSTS")? {
        c.allowed_hosts = x
            .split(',')
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .collect();
    }
    if let Some(n) = v.number::<usize>("TOOLBELT_MAX_REPLY_BYTES")? {
        c.max_reply_bytes = n;
    }
    if let Some(x) = v.get("TOOLBELT_ALLOWED_ORIGINS")? {
        c.allowed_origins = x
            .split(',')
            .map(|h| h.trim().to_string())
            .filter(|h| !h.is_empty())
            .collect();
    }
    if let Some(d) = v.millis("TOOLBELT_ASK_TIMEOUT_MS")? {
        c.ask_timeout = d;
    }
    if let Some(d) = v.millis("TOOLBELT_CALL_TIMEOUT_MS")? {
        c.call_timeout = d;
    }
    if let Some(d) = v.millis("TOOLBELT_DISCOVERY_DEADLINE_MS")? {
        c.discovery_deadline = d;
    }
    // For comparing paths (benchmarks): rmcp on both sides, or only towards upstreams.
    match v.get("TOOLBELT_GATEWAY_FAST")?.as_deref().map(str::trim) {
        None | Some("all") => {}
        Some("upstream") => c.fast_path = false,
        Some("none") => (c.fast_path, c.direct_upstream) = (false, false),
        Some(_) => {
            return Err(invalid(
                "TOOLBELT_GATEWAY_FAST",
                "must be all, upstream or none",
            ));
        }
    }
    // For comparing paths (benchmarks): audit batches under the chain lock every time.
    match v.get("TOOLBELT_GATEWAY_AUDIT")?.as_deref().map(str::trim) {
        None | Some("linked") => {}
        Some("locked") => c.linked_audit = false,
        Some(_) => {
            return Err(invalid(
                "TOOLBELT_GATEWAY_AUDIT",
                "must be linked or locked",
            ));
        }
    }
    Ok(c)
}

fn login(v: &Vars<'_>, l: &mut LoginLimits) -> Result<()> {
    if let Some(n) = v.number("TOOLBELT_LOGIN_LIMIT_ADDRESS")? {
        l.per_address.free = n;
    }
    if let Some(n) = v.number("TOOLBELT_LOGIN_LIMIT_ACCOUNT")? {
        l.per_account.free = n;
    }
    if let Some(n) = v.number("TOOLBELT_REGISTER_LIMIT_ADDRESS")? {
        l.registrations.free = n;
    }
    if let Some(d) = v.millis("TOOLBELT_LOGIN_BACKOFF_MS")? {
        l.per_address.base = d;
        l.per_account.base = d;
    }
    // The longest wait is also how long a quiet key is remembered.
    if let Some(d) = v.millis("TOOLBELT_LOGIN_BACKOFF_MAX_MS")? {
        for b in [&mut l.per_address, &mut l.per_account] {
            b.max = d;
            b.forget = d;
        }
    }
    if let Some(n) = v.number::<usize>("TOOLBELT_LOGIN_HASH_PERMITS")? {
        if n == 0 {
            return Err(invalid("TOOLBELT_LOGIN_HASH_PERMITS", "must be at least 1"));
        }
        l.hashing.permits = n;
    }
    if let Some(d) = v.millis("TOOLBELT_LOGIN_HASH_WAIT_MS")? {
        l.hashing.wait = d;
    }
    if let Some(d) = v.millis("TOOLBELT_LOGIN_FAILURE_WINDOW_MS")? {
        l.failure_window = d;
    }
    Ok(())
}

fn oauth(v: &Vars<'_>) -> Result<OAuthConfig> {
    let mut c = OAuthConfig::default();
    if let Some(d) = v.millis("TOOLBELT_OAUTH_REFRESH_LEAD_MS")? {
        c.refresh_lead = d;
    }
    if let Some(d) = v.millis("TOOLBELT_OAUTH_REFRESH_JITTER_MS")? {
        c.refresh_jitter = d;
    }
    if let Some(d) = v.millis("TOOLBELT_OAUTH_TICK_MS")? {
        c.tick = d;
    }
    if let Some(d) = v.millis("TOOLBELT_OAUTH_RETRY_MS")? {
        c.retry_base = d;
    }
    if let Some(n) = v.number("TOOLBELT_OAUTH_MAX_FAILURES")? {
        c.max_failures = n;
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use crate::{AppError, Options, VaultKeys};
    use std::time::Duration;

    fn from(vars: &[(&'static str, &str)]) -> Result<Options, AppError> {
        let vars: Vec<(&'static str, String)> =
            vars.iter().map(|(k, v)| (*k, v.to_string())).collect();
        Options::from_vars(|name| {
            Ok(vars
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.clone()))
        })
    }

    #[test]
    fn nothing_set_gives_the_documented_defaults() {
        let o = from(&[]).unwrap();
        assert_eq!(o.data_dir, std::path::Path::new("./toolbelt-data"));
        assert_eq!(o.listen.to_string(), "127.0.0.1:8870");
        assert_eq!(o.database_url(), "sqlite://./toolbelt-data/toolbelt.db");
        assert_eq!(o.control_key_path(), o.data_dir.join("control.key"));
        assert_eq!(o.vault_key_path(), Some(o.data_dir.join("vault.key")));
        assert_eq!(o.control.heartbeat_interval, Duration::from_secs(5));
        assert!(!o.local_toolbox && !o.fsync_every_commit && o.bootstrap_token.is_none());
        assert_eq!(o.metrics.retention, Duration::from_secs(7 * 86400));
        assert_eq!(o.metrics.flush_every, Duration::from_secs(10));
        assert_eq!(o.audit_key_path(), o.data_dir.join("audit.key"));
        assert_eq!(
            o.audit_checkpoint_path(),
            o.data_dir.join("audit-checkpoints.jsonl")
        );
        assert_eq!(o.audit_checkpoint_every, 1000);
        assert!(o.migrate_database_url.is_none());
        assert_eq!(o.audit_checkpoint_interval, Duration::from_secs(60));
        assert_eq!(o.control.metrics_max_series, 5000);
        assert!(o.control.metrics_token.is_none());
    }

    #[test]
    fn the_table_is_read_and_blank_means_unset() {
        let o = from(&[
            ("TOOLBELT_DATA_DIR", "/srv/tb"),
            ("TOOLBELT_HEARTBEAT_MS", "300"),
            ("TOOLBELT_CALL_TIMEOUT_MS", "1500"),
            ("TOOLBELT_OAUTH_TICK_MS", "20"),
            ("TOOLBELT_RATE_LIMIT_AGENT", "50:100"),
            ("TOOLBELT_ALLOWED_HOSTS", "a.example, b.example,"),
            ("TOOLBELT_VAULT_KEY_FILE", "/keys/vault.key"),
            ("TOOLBELT_FSYNC", "1"),
            ("TOOLBELT_BOOTSTRAP_TOKEN", "  "),
            ("TOOLBELT_METRICS_RETENTION_DAYS", "2"),
            ("TOOLBELT_METRICS_FLUSH_MS", "500"),
            ("TOOLBELT_TRUSTED_PROXIES", "10.0.0.0/8,::1"),
            ("TOOLBELT_LOGIN_LIMIT_ADDRESS", "50"),
            ("TOOLBELT_LOGIN_BACKOFF_MAX_MS", "60000"),
            ("TOOLBELT_LOGIN_HASH_PERMITS", "3"),
            ("TOOLBELT_REGISTER_LIMIT_ADDRESS", "200"),
            ("TOOLBELT_MIGRATE_DATABASE_URL", "postgres://owner:pw@db/tb"),
            ("TOOLBELT_AUDIT_CHECKPOINT_FILE", "/evidence/tb.jsonl"),
            ("TOOLBELT_AUDIT_CHECKPOINT_EVENTS", "50"),
            ("TOOLBELT_AUDIT_CHECKPOINT_MS", "2000"),
            ("TOOLBELT_METRICS_MAX_SERIES", "100"),
            ("TOOLBELT_OTLP_ENDPOINT", " http://collector:4318 "),
            ("TOOLBELT_METRICS_TOKEN", " scrape-token-of-16+ "),
        ])
        .unwrap();
        assert_eq!(
            o.audit_checkpoint_path(),
            std::path::Path::new("/evidence/tb.jsonl")
        );
        assert_eq!(o.audit_checkpoint_every, 50);
        assert_eq!(
            o.migrate_database_url.as_deref(),
            Some("postgres://owner:pw@db/tb")
        );
        assert_eq!(o.audit_checkpoint_interval, Duration::from_millis(2000));
        assert_eq!(o.control.metrics_max_series, 100);
        assert_eq!(o.otlp_endpoint.as_deref(), Some("http://collector:4318"));
        let digest = toolbelt_model::token::TokenDigest::of("scrape-token-of-16+");
        assert_eq!(
            o.control.metrics_token,
            Some(digest),
            "trimmed, kept as a digest"
        );
        assert_eq!(o.metrics.retention, Duration::from_secs(2 * 86400));
        assert_eq!(o.metrics.flush_every, Duration::from_millis(500));
        assert!(
            o.control
                .trusted_proxies
                .contains("10.9.8.7".parse().unwrap())
        );
        assert_eq!(o.control.login.per_address.free, 50);
        assert_eq!(o.control.login.per_account.free, 5, "the default");
        assert_eq!(o.control.login.per_account.max, Duration::from_secs(60));
        assert_eq!(o.control.login.per_account.forget, Duration::from_secs(60));
        assert_eq!(o.control.login.hashing.permits, 3);
        assert_eq!(o.control.login.registrations.free, 200);
        assert_eq!(
            o.control_key_path(),
            std::path::Path::new("/srv/tb/control.key")
        );
        assert_eq!(o.control.heartbeat_interval, Duration::from_millis(300));
        assert_eq!(o.gateway.call_timeout, Duration::from_millis(1500));
        assert_eq!(o.oauth.tick, Duration::from_millis(20));
        assert!(o.gateway.agent_rate.is_some());
        assert_eq!(o.gateway.allowed_hosts, ["a.example", "b.example"]);
        assert_eq!(o.vault_key_path(), Some("/keys/vault.key".into()));
        assert!(o.fsync_every_commit);
        assert!(o.bootstrap_token.is_none(), "blank is unset");
        let o = from(&[
            ("TOOLBELT_VAULT_KEY", "ab"),
            ("TOOLBELT_VAULT_KEY_FILE", "/k"),
        ])
        .unwrap();
        assert!(
            matches!(o.vault_keys, VaultKeys::Given(_)),
            "the keys override the file"
        );
        assert_eq!(o.vault_key_path(), None);
    }

    #[test]
    fn a_value_that_does_not_parse_is_an_error_naming_its_variable() {
        for (name, value) in [
            ("TOOLBELT_HEARTBEAT_MS", "5s"),
            ("TOOLBELT_LISTEN", "localhost"),
            ("TOOLBELT_RUNTIME", "remote"),
            ("TOOLBELT_RATE_LIMIT_TOOL", "fast"),
            ("TOOLBELT_SSRF_ALLOW", "10.0.0.x/8"),
            ("TOOLBELT_DTMA_ALLOW", "10.0.0.0/33"),
            ("TOOLBELT_OAUTH_MAX_FAILURES", "many"),
            ("TOOLBELT_METRICS_RETENTION_DAYS", "0"),
            ("TOOLBELT_METRICS_FLUSH_MS", "10s"),
            ("TOOLBELT_TRUSTED_PROXIES", "10.0.0.0/8,proxy.local"),
            ("TOOLBELT_LOGIN_LIMIT_ACCOUNT", "-1"),
            ("TOOLBELT_LOGIN_HASH_PERMITS", "0"),
            ("TOOLBELT_METRICS_MAX_SERIES", "lots"),
            ("TOOLBELT_METRICS_TOKEN", "short"),
            ("TOOLBELT_OTLP_ENDPOINT", "collector:4318"),
        ] {
            let e = from(&[(name, value)])
                .err()
                .unwrap_or_else(|| panic!("{name}={value}"));
            assert!(e.to_string().starts_with(&format!("{name}: ")), "{e}");
        }
    }

    #[test]
    fn flags_from_the_environment_read_as_clap_reads_them() {
        for no in ["0", "no", "False", "off", " n "] {
            assert!(!super::truthy(no), "{no}");
        }
        for yes in ["1", "true", "yes", "on"] {
            assert!(super::truthy(yes), "{yes}");
        }
    }
}
