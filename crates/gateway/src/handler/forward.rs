//! The handler's requests that go to one upstream (a prompt, a resource read, a
//! completion): resolved in the agent's view, sent over the pooled session with the
//! agent's credential, bounded by the call timeout, and noted on the request's audit
//! event as they learn where they go.

use super::{Gateway, current_view};
use crate::call;
use crate::error::CallError;
use crate::policy::AgentIdentity;
use crate::registry::ServerEntry;
use crate::request_audit::RequestAudit;
use rmcp::model::{
    CompleteRequestParams, CompleteResult, GetPromptRequestParams, GetPromptResponse,
    ReadResourceRequestParams, ReadResourceResponse, Reference, ResultType,
};
use std::sync::Arc;
use toolbelt_model::audit::TargetKind;

impl Gateway {
    pub(super) async fn get_prompt_for(
        &self,
        agent: &AgentIdentity,
        req: GetPromptRequestParams,
        audit: &mut RequestAudit<'_>,
    ) -> Result<GetPromptResponse, CallError> {
        let view = current_view(&self.hub, agent).await?;
        let p = view
            .prompts
            .iter()
            .find(|p| p.name == req.name)
            .ok_or_else(|| CallError::UnknownPrompt(req.name.clone()))?;
        audit.reached(TargetKind::Prompt, &p.server, &p.upstream);
        let peer = self.peer_of(agent, &p.server, audit).await?;
        let mut params = req.clone();
        params.name = p.upstream.clone();
        match self
            .bounded(&p.server.name, peer.get_prompt_once(params))
            .await?
        {
            GetPromptResponse::Complete(mut r) => {
                r.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(GetPromptResponse::Complete(r))
            }
            other => Ok(other),
        }
    }

    pub(super) async fn read_resource_for(
        &self,
        agent: &AgentIdentity,
        req: ReadResourceRequestParams,
        audit: &mut RequestAudit<'_>,
    ) -> Result<ReadResourceResponse, CallError> {
        let view = current_view(&self.hub, agent).await?;
        let server = owner_of_uri(&view, &req.uri)
            .ok_or_else(|| CallError::UnknownResource(req.uri.clone()))?;
        audit.reached(TargetKind::Resource, &server, &req.uri);
        let peer = self.peer_of(agent, &server, audit).await?;
        match self
            .bounded(&server.name, peer.read_resource_once(req))
            .await?
        {
            ReadResourceResponse::Complete(mut r) => {
                r.result_type.get_or_insert(ResultType::COMPLETE);
                Ok(ReadResourceResponse::Complete(r))
            }
            other => Ok(other),
        }
    }

    pub(super) async fn complete_for(
        &self,
        agent: &AgentIdentity,
        req: CompleteRequestParams,
        audit: &mut RequestAudit<'_>,
    ) -> Result<CompleteResult, CallError> {
        let view = current_view(&self.hub, agent).await?;
        let mut params = req.clone();
        let server = match &req.r#ref {
            Reference::Prompt(p) => {
                let found = view
                    .prompts
                    .iter()
                    .find(|x| x.name == p.name)
                    .ok_or_else(|| CallError::UnknownPrompt(p.name.clone()))?;
                if let Reference::Prompt(pp) = &mut params.r#ref {
                    pp.name = found.upstream.clone();
                }
                audit.reached(TargetKind::Prompt, &found.server, &found.upstream);
                found.server.clone()
            }
            Reference::Resource(r) => {
                let s = owner_of_uri(&view, &r.uri)
                    .ok_or_else(|| CallError::UnknownResource(r.uri.clone()))?;
                audit.reached(TargetKind::Resource, &s, &r.uri);
                s
            }
            _ => {
                return Err(CallError::InvalidParams(
                    "Unsupported completion reference".into(),
                ));
            }
        };
        let peer = self.peer_of(agent, &server, audit).await?;
        let mut r = self.bounded(&server.name, peer.complete(params)).await?;
        r.result_type.get_or_insert(ResultType::COMPLETE);
        Ok(r)
    }

    /// An upstream request other than a tool call, bounded by the same call timeout:
    /// no request waits on a silent server for ever.
    async fn bounded<T>(
        &self,
        server: &str,
        request: impl std::future::Future<Output = Result<T, rmcp::service::ServiceError>>,
    ) -> Result<T, CallError> {
        let after = self.hub.config.call_timeout;
        match tokio::time::timeout(after, request).await {
            Ok(r) => r.map_err(|e| CallError::upstream(server, e)),
            Err(_) => Err(CallError::Timeout {
                server: server.to_string(),
                after,
            }),
        }
    }

    /// The upstream session for this agent's requests to `server` (with the user
    /// credential the agent was granted for it, if it acts with one: noted on the event).
    async fn peer_of(
        &self,
        agent: &AgentIdentity,
        server: &ServerEntry,
        audit: &mut RequestAudit<'_>,
    ) -> Result<rmcp::service::Peer<rmcp::service::RoleClient>, CallError> {
        let ep = server.reachable()?;
        let cred = call::credential(&self.hub, agent, server, ep).await?;
        audit.connection(cred.as_ref().map(|c| &c.connection_id));
        let conn = self
            .hub
            .registry
            .upstreams
            .get(
                &server.id,
                ep,
                self.hub.config.connect_timeout,
                cred.as_ref(),
            )
            .await
            .map_err(|source| CallError::Connect {
                server: server.name.clone(),
                source,
            })?;
        Ok(conn.peer().clone())
    }
}

/// The server that owns a URI: an exact resource, else the template with the longest
/// literal prefix matching it.
fn owner_of_uri(view: &crate::view::View, uri: &str) -> Option<Arc<ServerEntry>> {
    if let Some((_, s)) = view.resources.iter().find(|(r, _)| r.uri == uri) {
        return Some(s.clone());
    }
    view.templates
        .iter()
        .filter_map(|(t, s)| {
            let prefix = t.uri_template.split('{').next().unwrap_or("");
            (!prefix.is_empty() && uri.starts_with(prefix)).then_some((prefix.len(), s))
        })
        .max_by_key(|(n, _)| *n)
        .map(|(_, s)| s.clone())
}
