//! The DTMA's side of the channel to the control plane: join once, then heartbeat, and
//! fetch a server's secrets when it must be (re)created.

use crate::supervisor::{SecretSource, SecretsError};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;
use toolbelt_model::ServerId;
use toolbelt_model::dtma::{
    HeartbeatReply, HeartbeatReport, JoinRequest, JoinResponse, SecretsRequest, SecretsResponse,
};
use toolbelt_model::signed::ControlPublicKey;
use toolbelt_model::signed_reply::{self, ReplyKind};
use toolbelt_model::toolbox::ToolboxKind;
use toolbelt_net::http::Outbound;

/// What a joined DTMA keeps on disk (mode 0600).
#[derive(Clone, Serialize, Deserialize)]
pub struct Credential {
    pub server_url: String,
    pub toolbox_id: String,
    pub toolbox_name: String,
    pub credential: String,
    pub control_public_key: String,
    pub heartbeat_interval_ms: u64,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("toolbox_id", &self.toolbox_id)
            .field("server_url", &self.server_url)
            .finish()
    }
}

impl Credential {
    pub fn load(path: &Path) -> Option<Credential> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = path.with_extension("tmp");
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&tmp)?;
        f.write_all(&serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?)?;
        f.sync_all()?;
        std::fs::rename(tmp, path)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ChannelError {
    #[error("cannot reach the control plane: {0}")]
    Unreachable(String),
    #[error("the control plane refused: {status} {detail}")]
    Refused { status: u16, detail: String },
    /// The reply does not carry the control plane's signature over this request: altered
    /// on the way (whoever holds a TLS position), or not from the control plane at all.
    #[error("{what} reply rejected: {reason}")]
    Tampered {
        what: &'static str,
        reason: toolbelt_model::signed_reply::ReplyError,
    },
}

fn client(outbound: &Outbound) -> reqwest::Client {
    outbound
        .builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client builds")
}

async fn sent(req: reqwest::RequestBuilder) -> Result<reqwest::Response, ChannelError> {
    let res = req
        .send()
        .await
        .map_err(|e| ChannelError::Unreachable(toolbelt_net::http::describe(&e)))?;
    let status = res.status();
    if !status.is_success() {
        let body: serde_json::Value = res.json().await.unwrap_or_default();
        let detail = body["detail"].as_str().unwrap_or("").to_string();
        return Err(ChannelError::Refused {
            status: status.as_u16(),
            detail,
        });
    }
    Ok(res)
}

async fn send<T: serde::de::DeserializeOwned>(
    req: reqwest::RequestBuilder,
) -> Result<T, ChannelError> {
    sent(req)
        .await?
        .json()
        .await
        .map_err(|e| ChannelError::Unreachable(format!("bad reply: {e}")))
}

/// Exchanges a one-time join token for the toolbox's credential.
pub async fn join(
    server_url: &str,
    join_token: &str,
    advertise_url: &str,
    runtime: ToolboxKind,
    tls_pin: Option<String>,
    outbound: &Outbound,
) -> Result<Credential, ChannelError> {
    let url = format!("{}/api/v1/dtma/join", server_url.trim_end_matches('/'));
    let body = JoinRequest {
        join_token: join_token.to_string(),
        advertise_url: advertise_url.to_string(),
        runtime,
        version: env!("CARGO_PKG_VERSION").into(),
        tls_pin,
    };
    let r: JoinResponse = send(client(outbound).post(url).json(&body)).await?;
    Ok(Credential {
        server_url: server_url.trim_end_matches('/').to_string(),
        toolbox_id: r.toolbox_id.to_string(),
        toolbox_name: r.toolbox_name,
        credential: r.credential,
        control_public_key: r.control_public_key,
        heartbeat_interval_ms: r.heartbeat_interval_ms,
    })
}

/// The DTMA's client of the control plane. Replies that steer it (the desired set, secret
/// values) are taken only when signed by the control key pinned at join, over this
/// request's nonce ([`toolbelt_model::signed_reply`]).
#[derive(Clone)]
pub struct ControlClient {
    http: reqwest::Client,
    base: String,
    credential: String,
    key: ControlPublicKey,
    toolbox_id: String,
}

impl ControlClient {
    pub fn new(c: &Credential, key: ControlPublicKey, outbound: &Outbound) -> ControlClient {
        ControlClient {
            http: client(outbound),
            base: c.server_url.clone(),
            credential: c.credential.clone(),
            key,
            toolbox_id: c.toolbox_id.clone(),
        }
    }

    /// POSTs `body` with a fresh nonce and takes the reply only with a valid signature.
    async fn signed<T: serde::de::DeserializeOwned>(
        &self,
        path: &str,
        kind: ReplyKind,
        body: &impl Serialize,
    ) -> Result<T, ChannelError> {
        let nonce = signed_reply::new_nonce();
        let res = sent(
            self.http
                .post(format!("{}{path}", self.base))
                .bearer_auth(&self.credential)
                .header(signed_reply::NONCE_HEADER, &nonce)
                .json(body),
        )
        .await?;
        let sig = res
            .headers()
            .get(signed_reply::SIGNATURE_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let bytes = res
            .bytes()
            .await
            .map_err(|e| ChannelError::Unreachable(toolbelt_net::http::describe(&e)))?;
        let what = match kind {
            ReplyKind::Heartbeat => "heartbeat",
            ReplyKind::Secrets => "secret delivery",
        };
        self.key
            .verify_reply(kind, &self.toolbox_id, &nonce, &bytes, sig.as_deref())
            .map_err(|reason| ChannelError::Tampered { what, reason })?;
        serde_json::from_slice(&bytes)
            .map_err(|e| ChannelError::Unreachable(format!("bad reply: {e}")))
    }

    pub async fn heartbeat(
        &self,
        report: &HeartbeatReport,
    ) -> Result<HeartbeatReply, ChannelError> {
        self.signed("/api/v1/dtma/heartbeat", ReplyKind::Heartbeat, report)
            .await
    }
}

#[async_trait::async_trait]
impl SecretSource for ControlClient {
    async fn secrets_for(
        &self,
        server: &ServerId,
    ) -> Result<BTreeMap<String, String>, SecretsError> {
        let req = SecretsRequest {
            server_id: server.clone(),
        };
        let r: SecretsResponse = self
            .signed("/api/v1/dtma/secrets", ReplyKind::Secrets, &req)
            .await?;
        Ok(r.secrets)
    }
}
