//! The audit event of an agent request other than a tool call (`prompts/get`,
//! `resources/read`, `completion/complete`): like a `tool.call`, one event per request,
//! durable before the agent sees the answer, failures and refusals included.

use crate::Hub;
use crate::error::{CallError, request_ending};
use crate::policy::AgentIdentity;
use crate::registry::ServerEntry;
use rmcp::ErrorData as McpError;
use serde_json::{Value, json};
use std::time::Instant;
use toolbelt_model::ConnectionId;
use toolbelt_model::audit::{ActorKind, AuditAction, NewAuditEvent, TargetKind};

/// One request's event, filled in as the request learns where it goes.
pub(crate) struct RequestAudit<'a> {
    hub: &'a Hub,
    agent: &'a AgentIdentity,
    action: AuditAction,
    target_kind: TargetKind,
    target_id: Option<String>,
    detail: Value,
    started: Instant,
}

impl<'a> RequestAudit<'a> {
    /// `asked`: what the agent named (the exposed prompt name, the URI, the reference).
    pub fn new(
        hub: &'a Hub,
        agent: &'a AgentIdentity,
        action: AuditAction,
        target_kind: TargetKind,
        asked: Value,
    ) -> Self {
        RequestAudit {
            hub,
            agent,
            action,
            target_kind,
            target_id: None,
            detail: asked,
            started: Instant::now(),
        }
    }

    /// The request resolved to `name` (the server's own prompt name, or a URI) on `server`.
    pub fn reached(&mut self, kind: TargetKind, server: &ServerEntry, name: &str) {
        self.target_kind = kind;
        self.target_id = Some(format!("{}/{name}", server.id));
        self.detail["server"] = json!(server.id);
        self.detail["server_name"] = json!(server.name);
        self.detail["toolbox"] = json!(server.toolbox_name);
        self.detail["upstream"] = json!(name);
    }

    /// The OAuth connection whose token the request carried.
    pub fn connection(&mut self, c: Option<&ConnectionId>) {
        if let Some(c) = c {
            self.detail["connection"] = json!(c);
        }
    }

    fn event<T>(mut self, res: &Result<T, CallError>) -> NewAuditEvent {
        let end = request_ending(res);
        self.detail["latency_us"] = json!(self.started.elapsed().as_micros() as u64);
        if let Some(e) = &end.error {
            self.detail["error"] = json!(e);
        }
        if let Some(k) = end.kind {
            self.detail["error_kind"] = json!(k);
        }
        if let Some(client) = &self.agent.oauth_client {
            self.detail["via"] = json!("oauth");
            self.detail["oauth_client"] = json!(client.as_ref());
        }
        NewAuditEvent {
            actor_kind: ActorKind::Agent,
            actor_id: Some(self.agent.agent_id.to_string()),
            owner_id: Some(self.agent.owner_id.clone()),
            action: self.action,
            target_kind: self.target_kind,
            target_id: self.target_id,
            outcome: end.outcome,
            detail: self.detail,
        }
    }

    /// Records the event and only then hands the answer back: no event, no answer.
    pub async fn finish<T>(self, res: Result<T, CallError>) -> Result<T, McpError> {
        let hub = self.hub;
        hub.audit
            .record(self.event(&res))
            .await
            .map_err(CallError::from)?;
        Ok(res?)
    }
}
