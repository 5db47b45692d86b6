//! The handler's requests that go to one upstream (a prompt, a resource read, a
//! completion): resolved in the agent's view, sent over the pooled session with the
//! agent's credential, bounded by the call timeout, and noted on the request's audit
//! event as they learn where they go.

use super::{Gateway, current_view};
use crate::call;
use crate::error::CallError;
use crate::naming;
use crate::policy::AgentIdentity;
use crate::registry::ServerEntry;
use crate::request_audit::RequestAudit;
use rmcp::model::{
    CompleteRequestParams, CompleteResult, GetPromptRequestParams, GetPromptResponse,
    ReadResourceRequestParams, ReadResourceResponse, Reference, ResourceContents, ResultType,
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
        let found = owner_of_uri(&view, &req.uri)
            .ok_or_else(|| CallError::UnknownResource(req.uri.clone()))?;
        audit.reached(TargetKind::Resource, &found.server, &found.uri);
        let peer = self.peer_of(agent, &found.server, audit).await?;
        let mut params = req.clone();
        params.uri = found.uri.clone();
        match self
            .bounded(&found.server.name, peer.read_resource_once(params))
            .await?
        {
            ReadResourceResponse::Complete(mut r) => {
                r.result_type.get_or_insert(ResultType::COMPLETE);
                // Asked by the qualified name, the contents answer under it too.
                if let Some(prefix) = found.qualified {
                    for c in &mut r.contents {
                        let uri = match c {
                            ResourceContents::TextResourceContents { uri, .. }
                            | ResourceContents::BlobResourceContents { uri, .. } => uri,
                            _ => continue,
                        };
                        *uri = naming::qualified_uri(prefix, uri);
                    }
                }
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
                let found = owner_of_uri(&view, &r.uri)
                    .ok_or_else(|| CallError::UnknownResource(r.uri.clone()))?;
                audit.reached(TargetKind::Resource, &found.server, &found.uri);
                if let Reference::Resource(rr) = &mut params.r#ref {
                    rr.uri = found.uri.clone();
                }
                found.server
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

/// Where a URI an agent names goes: the server, the URI as that server knows it, and the
/// prefix it was qualified with (None: the agent named the server's own URI).
struct UriOwner<'v> {
    server: Arc<ServerEntry>,
    uri: String,
    qualified: Option<&'v str>,
}

/// The server that owns a URI: by its prefix for a qualified URI (one of that server's
/// resources or visible templates), else the only server in the view whose exact resource,
/// or whose template with the longest literal prefix, matches it. A URI two servers would
/// both answer resolves to neither (it once went to the first), as tool names do.
fn owner_of_uri<'v>(view: &'v crate::view::View, uri: &str) -> Option<UriOwner<'v>> {
    if let Some((prefix, own)) = naming::split_uri(uri) {
        let (prefix, server) = view.resource_servers.get_key_value(prefix)?;
        let mine = |p: &str| p == prefix.as_str();
        let listed = view
            .resources
            .iter()
            .any(|r| mine(&r.prefix) && r.upstream == own);
        let templated = view
            .templates
            .iter()
            .any(|t| mine(&t.prefix) && template_match(&t.upstream, own).is_some());
        return (listed || templated).then(|| UriOwner {
            server: server.clone(),
            uri: own.to_string(),
            qualified: Some(prefix.as_str()),
        });
    }
    let only = |servers: Vec<&Arc<ServerEntry>>| -> Option<Arc<ServerEntry>> {
        let first = *servers.first()?;
        servers
            .iter()
            .all(|s| s.id == first.id)
            .then(|| first.clone())
    };
    let unqualified = |server| UriOwner {
        server,
        uri: uri.to_string(),
        qualified: None,
    };
    let exact: Vec<&Arc<ServerEntry>> = view
        .resources
        .iter()
        .filter(|r| r.upstream == uri)
        .map(|r| &r.server)
        .collect();
    if !exact.is_empty() {
        return only(exact).map(unqualified);
    }
    let matched: Vec<(usize, &Arc<ServerEntry>)> = view
        .templates
        .iter()
        .filter_map(|t| template_match(&t.upstream, uri).map(|n| (n, &t.server)))
        .collect();
    let longest = matched.iter().map(|(n, _)| *n).max()?;
    only(
        matched
            .into_iter()
            .filter(|(n, _)| *n == longest)
            .map(|(_, s)| s)
            .collect(),
    )
    .map(unqualified)
}

/// The length of a template's literal prefix when `uri` starts with it.
fn template_match(template: &str, uri: &str) -> Option<usize> {
    let prefix = template.split('{').next().unwrap_or("");
    (!prefix.is_empty() && uri.starts_with(prefix)).then_some(prefix.len())
}
