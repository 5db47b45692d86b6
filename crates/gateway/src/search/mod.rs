//! Tool search: one BM25 index (the `bm25` crate's embedder and scorer over our own
//! tokenizer, [`words`]) over every discovered server's tools, shared by every agent and
//! session. A server's tools are (re)indexed when its discovered list changes — its
//! `Arc<Vec<Tool>>` is a new one — never per agent or per session; grants, holds and
//! toolsets are applied at query time by the caller, through the agent's view, so what
//! an agent may not see never comes out of a search.
//!
//! A document is the tool's name (split into words, counted twice: a name is the densest
//! summary of what a tool does), its server's name, title, description, and its
//! parameters' names and descriptions.

pub mod api;
pub mod lens;
pub mod meta;
pub mod settings;
pub mod words;

use bm25::{Embedder, EmbedderBuilder, Scorer};
use rmcp::model::Tool;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use toolbelt_model::ServerId;
use words::Words;

/// One indexed tool: its server and its own (upstream) name.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Doc {
    pub server: ServerId,
    pub tool: Arc<str>,
}

/// A match, best first.
#[derive(Debug, Clone)]
pub struct Hit {
    pub doc: Arc<Doc>,
    pub score: f32,
}

struct Indexed {
    name: String,
    tools: Arc<Vec<Tool>>,
    docs: Vec<Arc<Doc>>,
    /// Terms in this server's documents (for the average document length).
    terms: usize,
}

struct State {
    embedder: Embedder<u32, Words>,
    scorer: Scorer<Arc<Doc>>,
    servers: HashMap<ServerId, Indexed>,
}

/// The shared index. Cheap to query concurrently (a read lock); updates take the write
/// lock for the time it takes to embed one server's tools.
pub struct Index {
    state: RwLock<State>,
    /// The registry version the index was last brought up to date with.
    synced: AtomicU64,
}

/// The average document length the embedder starts with, before any tool is seen.
const START_AVGDL: f32 = 30.0;

fn embedder(avgdl: f32) -> Embedder<u32, Words> {
    EmbedderBuilder::<u32, Words>::with_avgdl(avgdl.max(1.0)).build()
}

impl Default for Index {
    fn default() -> Self {
        Index {
            state: RwLock::new(State {
                embedder: embedder(START_AVGDL),
                scorer: Scorer::new(),
                servers: HashMap::new(),
            }),
            synced: AtomicU64::new(0),
        }
    }
}

/// The text a tool is found by.
pub fn document(server: &str, t: &Tool) -> String {
    let mut s = String::with_capacity(256);
    let name = t.name.as_ref();
    for part in [name, name, server] {
        s.push_str(part);
        s.push(' ');
    }
    if let Some(title) = &t.title {
        s.push_str(title);
        s.push(' ');
    }
    if let Some(d) = &t.description {
        s.push_str(d);
        s.push(' ');
    }
    if let Some(serde_json::Value::Object(props)) = t.input_schema.get("properties") {
        for (k, v) in props {
            s.push_str(k);
            s.push(' ');
            if let Some(d) = v.get("description").and_then(|d| d.as_str()) {
                s.push_str(d);
                s.push(' ');
            }
        }
    }
    s
}

impl State {
    fn embed_server(&mut self, id: &ServerId, name: &str, tools: &Arc<Vec<Tool>>) {
        self.drop_server(id);
        let mut docs = Vec::with_capacity(tools.len());
        let mut terms = 0;
        for t in tools.iter() {
            let text = document(name, t);
            let e = self.embedder.embed(&text);
            terms += e.len();
            let doc = Arc::new(Doc {
                server: id.clone(),
                tool: t.name.as_ref().into(),
            });
            self.scorer.upsert(&doc, e);
            docs.push(doc);
        }
        self.servers.insert(
            id.clone(),
            Indexed {
                name: name.to_string(),
                tools: tools.clone(),
                docs,
                terms,
            },
        );
    }

    fn drop_server(&mut self, id: &ServerId) {
        if let Some(old) = self.servers.remove(id) {
            for d in &old.docs {
                self.scorer.remove(d);
            }
        }
    }

    /// BM25 normalises by the average document length; when tool sets change enough to
    /// move it by a fifth, every document is embedded again with the new average.
    fn rebalance(&mut self) {
        let (docs, terms) = self
            .servers
            .values()
            .fold((0, 0), |(d, t), s| (d + s.docs.len(), t + s.terms));
        if docs == 0 {
            return;
        }
        let avgdl = terms as f32 / docs as f32;
        let now = self.embedder.avgdl();
        if (avgdl - now).abs() <= now * 0.2 {
            return;
        }
        self.embedder = embedder(avgdl);
        let all: Vec<(ServerId, String, Arc<Vec<Tool>>)> = self
            .servers
            .iter()
            .map(|(id, s)| (id.clone(), s.name.clone(), s.tools.clone()))
            .collect();
        for (id, name, tools) in all {
            self.embed_server(&id, &name, &tools);
        }
    }
}

impl Index {
    /// Indexes (or re-indexes) one server's tools; a no-op when this very list is indexed.
    pub fn put_server(&self, id: &ServerId, name: &str, tools: &Arc<Vec<Tool>>) {
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        if st
            .servers
            .get(id)
            .is_some_and(|s| Arc::ptr_eq(&s.tools, tools) && s.name == name)
        {
            return;
        }
        st.embed_server(id, name, tools);
        st.rebalance();
    }

    pub fn remove_server(&self, id: &ServerId) {
        let mut st = self.state.write().unwrap_or_else(|p| p.into_inner());
        st.drop_server(id);
        st.rebalance();
    }

    /// Brings the index up to date with the registry: one atomic load when nothing
    /// changed since the last call; otherwise only servers whose tool list is a new one
    /// are embedded again.
    pub fn sync(&self, registry: &crate::registry::Registry) {
        let version = registry.version.load(Ordering::Acquire);
        if self.synced.load(Ordering::Acquire) == version {
            return;
        }
        let live = registry.search_lists();
        let stale: Vec<ServerId> = {
            let st = self.state.read().unwrap_or_else(|p| p.into_inner());
            st.servers
                .keys()
                .filter(|id| !live.iter().any(|(live, _, _)| live == *id))
                .cloned()
                .collect()
        };
        for id in stale {
            self.remove_server(&id);
        }
        for (id, name, tools) in &live {
            self.put_server(id, name, tools);
        }
        self.synced.store(version, Ordering::Release);
    }

    /// Every tool matching the query, best first (the caller keeps what the agent may
    /// see, up to its limit).
    pub fn search(&self, query: &str) -> Vec<Hit> {
        let st = self.state.read().unwrap_or_else(|p| p.into_inner());
        let q = st.embedder.embed(query);
        if q.is_empty() {
            return Vec::new();
        }
        let mut hits: Vec<Hit> = st
            .scorer
            .matches(&q)
            .into_iter()
            .map(|m| Hit {
                doc: m.id,
                score: m.score,
            })
            .collect();
        // Equal scores in a fixed order (the scorer's come in hash order).
        hits.sort_by(|a, b| {
            b.score
                .total_cmp(&a.score)
                .then_with(|| a.doc.tool.cmp(&b.doc.tool))
                .then_with(|| a.doc.server.as_str().cmp(b.doc.server.as_str()))
        });
        hits
    }

    /// How many tools are indexed.
    pub fn len(&self) -> usize {
        let st = self.state.read().unwrap_or_else(|p| p.into_inner());
        st.servers.values().map(|s| s.docs.len()).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The toolset a request to `/mcp/toolsets/NAME` names, if the agent has one of that
/// name; otherwise the 404 it is answered with.
pub async fn toolset_of(
    hub: &crate::Hub,
    agent: &crate::policy::AgentIdentity,
    name: &str,
) -> Result<Arc<str>, axum::response::Response> {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    match hub.policies.policy(&agent.agent_id).await {
        Ok(p) if p.discovery.toolsets.contains_key(name) => Ok(name.into()),
        Ok(_) => Err(crate::http::rpc_error(
            StatusCode::NOT_FOUND,
            crate::error::CallError::InvalidRequest("this agent has no toolset of that name"),
        )),
        Err(e) => {
            tracing::error!(error = %e, "reading an agent's toolsets failed");
            Err(StatusCode::SERVICE_UNAVAILABLE.into_response())
        }
    }
}
