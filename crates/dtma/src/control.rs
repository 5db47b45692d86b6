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
}

fn client(outbound: &Outbound) -> reqwest::Client {
    outbound
        .builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("an HTTP client builds")
}

async fn send<T: serde::de::DeserializeOwned>(
    req: reqwest::RequestBuilder,
) -> Result<T, ChannelError> {
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
    res.json()
        .await
        .map_err(|e| ChannelError::Unreachable(format!("bad reply: {e}")))
}

/// Exchanges a one-time join token for the toolbox's credential.
pub async fn join(
    server_url: &str,
    join_token: &str,
    advertise_url: &str,
    runtime: ToolboxKind,
    outbound: &Outbound,
) -> Result<Credential, ChannelError> {
    let url = format!("{}/api/v1/dtma/join", server_url.trim_end_matches('/'));
    let body = JoinRequest {
        join_token: join_token.to_string(),
        advertise_url: advertise_url.to_string(),
        runtime,
        version: env!("CARGO_PKG_VERSION").into(),
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

#[derive(Clone)]
pub struct ControlClient {
    http: reqwest::Client,
    base: String,
    credential: String,
}

impl ControlClient {
    pub fn new(c: &Credential, outbound: &Outbound) -> ControlClient {
        ControlClient {
            http: client(outbound),
            base: c.server_url.clone(),
            credential: c.credential.clone(),
        }
    }

    pub async fn heartbeat(
        &self,
        report: &HeartbeatReport,
    ) -> Result<HeartbeatReply, ChannelError> {
        send(
            self.http
                .post(format!("{}/api/v1/dtma/heartbeat", self.base))
                .bearer_auth(&self.credential)
                .json(report),
        )
        .await
    }
}

#[async_trait::async_trait]
impl SecretSource for ControlClient {
    async fn secrets_for(
        &self,
        server: &ServerId,
    ) -> Result<BTreeMap<String, String>, SecretsError> {
        let req = self
            .http
            .post(format!("{}/api/v1/dtma/secrets", self.base))
            .bearer_auth(&self.credential)
            .json(&SecretsRequest {
                server_id: server.clone(),
            });
        let r: SecretsResponse = send(req).await?;
        Ok(r.secrets)
    }
}
