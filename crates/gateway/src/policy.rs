//! Who may call what: agent tokens and grants, resolved once and cached until anything
//! audited changes (the store's epoch moves) or a couple of seconds pass (changes made
//! by other replicas). A revoked grant or token thus stops the very next call.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use toolbelt_model::grant::{GrantKind, ToolRule};
use toolbelt_model::token::{TokenDigest, TokenKind};
use toolbelt_model::{AgentId, ConnectionId, Scope, ServerId, TokenId, ToolboxId, UserId};
use toolbelt_store::tokens::Subject;
use toolbelt_store::{Store, StoreError, grants, mcp_auth, tokens, users};

/// Access tokens of Toolbelt's own authorization server (control's `mcp_auth`) start so.
const OAUTH_ACCESS_PREFIX: &str = "tbo_";

/// How long a cached answer may be used when the local epoch has not moved.
const TTL: Duration = Duration::from_secs(2);

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    pub agent_id: AgentId,
    pub owner_id: UserId,
    pub token_id: TokenId,
    /// The token's own discovery mode (None: the agent's).
    pub discovery: Option<toolbelt_model::agent::Discovery>,
    /// The toolset endpoint the request came to (`/mcp/toolsets/NAME`), if any.
    pub toolset: Option<Arc<str>>,
    /// The chat whose turn minted this credential (audited as `via: chat`).
    pub chat: Option<toolbelt_model::ChatId>,
    /// The OAuth client acting as the agent (`"<name> (<client_id>)"`), when the token is
    /// one Toolbelt's authorization server issued; the audit names it.
    pub oauth_client: Option<Arc<str>>,
}

/// An agent's grants, resolved.
#[derive(Debug, Default)]
pub struct AgentPolicy {
    pub owner: Option<Scope>,
    /// The agent's name (its calls' audit events and metrics carry it).
    pub agent_name: Option<Arc<str>>,
    toolboxes: HashSet<ToolboxId>,
    servers: HashSet<ServerId>,
    rules: HashMap<(ServerId, String), ToolRule>,
    /// Connection grants on the owner's own connections, oldest first: (connection, the
    /// server it is for or None for any server of the provider, the provider's name).
    connections: Vec<(ConnectionId, Option<ServerId>, String)>,
    /// Discovery mode, always-visible tools, toolsets.
    pub discovery: crate::search::lens::Settings,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Not visible, not callable (and never told apart from "does not exist").
    Hidden,
    Allow,
    /// Visible; each call waits for the owner's approval.
    Ask,
}

/// What the policy needs to know about a server.
pub struct ServerRef<'a> {
    pub id: &'a ServerId,
    pub toolbox_id: &'a ToolboxId,
    /// None for shared servers.
    pub owner_id: Option<&'a UserId>,
}

impl AgentPolicy {
    /// The owner can see the server at all (shared, theirs, or they are an admin).
    fn owner_sees(&self, s: &ServerRef<'_>) -> bool {
        match &self.owner {
            Some(o) => o.is_admin() || s.owner_id.is_none_or(|id| id == &o.user_id),
            None => false,
        }
    }

    pub fn server_granted(&self, s: &ServerRef<'_>) -> bool {
        self.owner_sees(s) && (self.toolboxes.contains(s.toolbox_id) || self.servers.contains(s.id))
    }

    /// Could any tool of this server be visible (a server, toolbox or tool grant)?
    pub fn touches(&self, s: &ServerRef<'_>) -> bool {
        self.server_granted(s)
            || (self.owner_sees(s) && self.rules.keys().any(|(id, _)| id == s.id))
    }

    /// The connection this agent acts with at `server` (whose catalog entry asks for
    /// `provider`): a grant naming that server first, else a provider-wide one — the
    /// choice the call's credential lookup makes (`oauth::for_agent_server`). The agent
    /// sees what that connection's token listed, and nothing listed with another one.
    pub fn connection_for(&self, server: &ServerId, provider: &str) -> Option<&ConnectionId> {
        let named = self
            .connections
            .iter()
            .find(|(_, s, _)| s.as_ref() == Some(server));
        named
            .or_else(|| {
                self.connections
                    .iter()
                    .find(|(_, s, p)| s.is_none() && p == provider)
            })
            .map(|(c, _, _)| c)
    }

    /// Deny by default; a tool rule refines a server or toolbox grant, and an `allow` or
    /// `ask` rule alone grants just that tool.
    pub fn decide(&self, s: &ServerRef<'_>, tool: &str) -> Decision {
        if !self.owner_sees(s) {
            return Decision::Hidden;
        }
        match self.rules.get(&(s.id.clone(), tool.to_string())) {
            Some(ToolRule::Deny) => Decision::Hidden,
            Some(ToolRule::Ask) => Decision::Ask,
            Some(ToolRule::Allow) => Decision::Allow,
            None if self.server_granted(s) => Decision::Allow,
            None => Decision::Hidden,
        }
    }
}

struct Cached<T> {
    epoch: u64,
    at: Instant,
    value: T,
}

impl<T: Clone> Cached<T> {
    fn fresh(&self, epoch: u64) -> Option<T> {
        (self.epoch == epoch && self.at.elapsed() < TTL).then(|| self.value.clone())
    }
}

pub struct Policies {
    store: Store,
    /// The protected resource OAuth access tokens must be bound to (`https://host/mcp`);
    /// None: no public URL, so no OAuth token is accepted.
    resource: Option<String>,
    tokens: RwLock<HashMap<String, Cached<Option<AgentIdentity>>>>,
    agents: RwLock<HashMap<AgentId, Cached<Arc<AgentPolicy>>>>,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("{0}")]
    Refused(&'static str),
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Policies {
    pub fn new(store: Store) -> Policies {
        Policies {
            store,
            resource: None,
            tokens: RwLock::default(),
            agents: RwLock::default(),
        }
    }

    /// Accept OAuth access tokens bound to `resource` (RFC 8707 audience).
    pub fn with_resource(mut self, resource: Option<String>) -> Policies {
        self.resource = resource;
        self
    }

    /// The agent an OAuth access token acts as: live, unexpired, in a live family, and
    /// minted for this resource (a token for another resource is refused, RFC 8707).
    async fn oauth_identity(
        &self,
        c: &mut toolbelt_store::AnyConnection,
        digest: &TokenDigest,
    ) -> Result<Option<AgentIdentity>, AuthError> {
        let Some(resource) = &self.resource else {
            return Ok(None);
        };
        let Some(t) = mcp_auth::find_token(c, digest).await? else {
            return Ok(None);
        };
        let live = t.kind == mcp_auth::TokenKind::Access
            && !t.revoked
            && t.expires_at > toolbelt_model::now()
            && t.grant.resource.trim_end_matches('/') == resource.as_str();
        Ok(live.then(|| AgentIdentity {
            agent_id: t.grant.agent_id,
            owner_id: t.grant.user_id,
            token_id: TokenId::from_db(t.id),
            discovery: None,
            toolset: None,
            chat: None,
            oauth_client: Some(format!("{} ({})", t.client_name, t.grant.client_id).into()),
        }))
    }

    /// The agent a bearer token belongs to. Revoked, expired and non-agent tokens fail.
    pub async fn authenticate(&self, token: &str) -> Result<AgentIdentity, AuthError> {
        let digest = TokenDigest::of(token);
        let epoch = self.store.epoch();
        if let Some(c) = self
            .tokens
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&digest.hash)
            && let Some(v) = c.fresh(epoch)
        {
            return v.ok_or(AuthError::Refused(
                "invalid, revoked or expired agent token",
            ));
        }
        let mut c = self.store.conn().await?;
        let found = if token.starts_with(OAUTH_ACCESS_PREFIX) {
            None
        } else {
            tokens::find(&mut c, &digest).await?
        };
        let ident = match found {
            Some(f)
                if f.kind == TokenKind::Agent
                    && f.revoked_at.is_none()
                    && f.expires_at.is_none_or(|e| e > toolbelt_model::now()) =>
            {
                match (f.subject, f.agent_owner) {
                    (Subject::Agent(agent_id), Some(owner_id)) => {
                        tokens::touch(&mut c, &f.id).await?;
                        Some(AgentIdentity {
                            agent_id,
                            owner_id,
                            token_id: f.id,
                            // The token's own mode only: the agent's comes with its policy.
                            discovery: f.discovery,
                            toolset: None,
                            chat: f.chat_id,
                            oauth_client: None,
                        })
                    }
                    _ => None,
                }
            }
            _ if token.starts_with(OAUTH_ACCESS_PREFIX) => {
                self.oauth_identity(&mut c, &digest).await?
            }
            _ => None,
        };
        let mut map = self.tokens.write().unwrap_or_else(|p| p.into_inner());
        if map.len() > 100_000 {
            map.clear();
        }
        map.insert(
            digest.hash,
            Cached {
                epoch,
                at: Instant::now(),
                value: ident.clone(),
            },
        );
        ident.ok_or(AuthError::Refused(
            "invalid, revoked or expired agent token",
        ))
    }

    pub async fn policy(&self, agent: &AgentId) -> Result<Arc<AgentPolicy>, StoreError> {
        let epoch = self.store.epoch();
        if let Some(c) = self
            .agents
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(agent)
            && let Some(v) = c.fresh(epoch)
        {
            return Ok(v);
        }
        let mut c = self.store.conn().await?;
        let gs = grants::for_agent(&mut c, agent).await?;
        let (owner_id, agent_name) = sqlx_owner(&mut c, agent).await?.unzip();
        let discovery = crate::search::settings::load(&mut c, agent).await?;
        let connections = toolbelt_store::oauth::agent_connection_grants(&mut c, agent).await?;
        let owner = match owner_id {
            Some(id) => users::get(&mut c, &id).await.ok().map(|u| Scope {
                user_id: u.id,
                role: u.role,
            }),
            None => None,
        };
        let mut p = AgentPolicy {
            owner,
            agent_name: agent_name.map(|n| Arc::from(n.as_str())),
            discovery,
            connections,
            ..Default::default()
        };
        for g in gs {
            match (g.kind, g.toolbox_id, g.server_id, g.tool) {
                (GrantKind::Toolbox, Some(t), _, _) => {
                    p.toolboxes.insert(t);
                }
                (GrantKind::Server, _, Some(s), _) if g.active => {
                    p.servers.insert(s);
                }
                (GrantKind::Tool, _, Some(s), Some(tool)) => {
                    p.rules.insert((s, tool), g.rule);
                }
                _ => {}
            }
        }
        let p = Arc::new(p);
        self.agents
            .write()
            .unwrap_or_else(|pz| pz.into_inner())
            .insert(
                agent.clone(),
                Cached {
                    epoch,
                    at: Instant::now(),
                    value: p.clone(),
                },
            );
        Ok(p)
    }
}

/// The agent's owner and name.
async fn sqlx_owner(
    c: &mut toolbelt_store::AnyConnection,
    agent: &AgentId,
) -> Result<Option<(UserId, String)>, StoreError> {
    let admin = Scope {
        user_id: UserId::from_db(String::new()),
        role: toolbelt_model::Role::Admin,
    };
    match toolbelt_store::agents::get(c, &admin, agent).await {
        Ok(a) => Ok(Some((a.owner_id, a.name.to_string()))),
        Err(StoreError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(
        rules: &[(&str, ToolRule)],
        server_grant: bool,
    ) -> (AgentPolicy, ServerId, ToolboxId) {
        let s = ServerId::generate();
        let t = ToolboxId::generate();
        let mut p = AgentPolicy {
            owner: Some(Scope {
                user_id: UserId::generate(),
                role: toolbelt_model::Role::Member,
            }),
            ..Default::default()
        };
        if server_grant {
            p.servers.insert(s.clone());
        }
        for (tool, r) in rules {
            p.rules.insert((s.clone(), tool.to_string()), *r);
        }
        (p, s, t)
    }

    #[test]
    fn deny_by_default_and_rules_refine_grants() {
        let (p, s, t) = policy(&[("rm", ToolRule::Deny), ("pay", ToolRule::Ask)], true);
        let r = ServerRef {
            id: &s,
            toolbox_id: &t,
            owner_id: None,
        };
        assert_eq!(p.decide(&r, "echo"), Decision::Allow);
        assert_eq!(p.decide(&r, "rm"), Decision::Hidden);
        assert_eq!(p.decide(&r, "pay"), Decision::Ask);
        let (p, s, t) = policy(&[("echo", ToolRule::Allow)], false);
        let r = ServerRef {
            id: &s,
            toolbox_id: &t,
            owner_id: None,
        };
        assert_eq!(
            p.decide(&r, "echo"),
            Decision::Allow,
            "a tool rule alone grants that tool"
        );
        assert_eq!(p.decide(&r, "other"), Decision::Hidden);
        let someone = UserId::generate();
        let r = ServerRef {
            id: &s,
            toolbox_id: &t,
            owner_id: Some(&someone),
        };
        assert_eq!(
            p.decide(&r, "echo"),
            Decision::Hidden,
            "another member's private server stays invisible"
        );
    }
}
