//! An agent's view: exactly the tools (and prompts, resources) it may see, under the
//! names it sees them by. Built from the registry and its policy, cached until either
//! changes, so listing and resolving a name cost a map lookup on the hot path.
//!
//! A view holds no copy of a tool definition: each exposed tool points into its server's
//! registry entry (shared by every view), and the serialized `tools/list` pages are
//! shared by every view listing the same names and definitions (see [`pages`]).

pub mod pages;

use crate::naming;
use crate::policy::{AgentPolicy, Decision};
use crate::registry::{Registry, ServerEntry};
use rmcp::model::{ListToolsResult, Prompt, Resource, ResourceTemplate, Tool};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::{Arc, OnceLock, RwLock};
use toolbelt_model::{AgentId, ServerId};

pub struct ExposedPrompt {
    pub name: String,
    pub shown: Prompt,
    pub upstream: String,
    pub server: Arc<ServerEntry>,
}

/// A resource (or template) as one agent sees it: its URI qualified with the server's
/// prefix ([`naming::qualified_uri`]), and the server's own.
pub struct ExposedResource<T> {
    pub shown: T,
    /// The server's own URI (template).
    pub upstream: String,
    pub prefix: String,
    pub server: Arc<ServerEntry>,
}

/// A tool as one agent sees it: its exposed name and the server's own definition.
#[derive(Clone)]
pub struct Exposed {
    pub name: Arc<str>,
    pub server: Arc<ServerEntry>,
    /// Where the definition is in `server.tools`.
    index: usize,
    pub decision: Decision,
}

impl Exposed {
    /// The upstream's own tool (name as the server knows it).
    pub fn tool(&self) -> &Tool {
        &self.server.tools[self.index]
    }

    /// The tool as listed to the agent (its exposed name).
    pub fn shown(&self) -> Tool {
        let mut t = self.tool().clone();
        t.name = self.name.to_string().into();
        t
    }
}

#[derive(Default)]
pub struct View {
    /// Sorted by exposed name (stable pagination).
    pub tools: Vec<Exposed>,
    by_name: HashMap<Arc<str>, usize>,
    /// Exposed name, the prompt as shown, and its server (whose own name is `upstream`).
    pub prompts: Vec<ExposedPrompt>,
    pub resources: Vec<ExposedResource<Resource>>,
    pub templates: Vec<ExposedResource<ResourceTemplate>>,
    /// The servers whose resources the agent sees, by prefix (qualified URIs name them).
    pub resource_servers: HashMap<String, Arc<ServerEntry>>,
    /// A digest of what is listed, to tell agents when it changes.
    pub fingerprint: u64,
    /// SHA-256 over the listed names and definitions: views with the same key list the
    /// same bytes.
    key: [u8; 32],
    pages: OnceLock<Arc<pages::Pages>>,
    /// Positions by (server, the server's own tool name), made on first use (tool search
    /// and toolsets name tools by identity).
    by_identity: OnceLock<HashMap<(ServerId, Arc<str>), usize>>,
}

impl View {
    pub fn lookup(&self, name: &str) -> Option<&Exposed> {
        self.by_name.get(name).map(|&i| &self.tools[i])
    }

    /// The exposed tool that is `tool` of `server`, if the agent sees it.
    pub fn by_identity(&self, server: &ServerId, tool: &str) -> Option<&Exposed> {
        let map = self.by_identity.get_or_init(|| {
            self.tools
                .iter()
                .enumerate()
                .map(|(i, e)| ((e.server.id.clone(), e.tool().name.as_ref().into()), i))
                .collect()
        });
        // The key borrows nothing: tool names are short, and this runs per search hit.
        map.get(&(server.clone(), Arc::from(tool)))
            .map(|&i| &self.tools[i])
    }

    /// One page of `tools/list` (offset cursor), as rmcp's handler answers it.
    pub fn list_page(&self, cursor: Option<&str>, size: usize) -> Option<ListToolsResult> {
        let (start, end, next) = page_bounds(self.tools.len(), cursor, size)?;
        let items = self.tools[start..end].iter().map(Exposed::shown).collect();
        let mut r = ListToolsResult::with_all_items(items);
        r.next_cursor = next;
        Some(r)
    }
}

/// `[start, end)` of the page at `cursor` and the next page's cursor; None for a cursor
/// that is not an offset.
pub fn page_bounds(
    len: usize,
    cursor: Option<&str>,
    size: usize,
) -> Option<(usize, usize, Option<String>)> {
    let start = match cursor {
        Some(c) => c.parse::<usize>().ok()?,
        None => 0,
    };
    let start = start.min(len);
    let end = start.saturating_add(size).min(len);
    let next = (end < len).then(|| end.to_string());
    Some((start, end, next))
}

fn build(registry: &Registry, policy: &AgentPolicy) -> View {
    let mut servers: Vec<Arc<ServerEntry>> = registry
        .snapshot()
        .into_iter()
        .filter(|e| policy.touches(&e.reference()))
        .collect();
    servers.sort_by(|a, b| (&a.name, &a.toolbox_name).cmp(&(&b.name, &b.toolbox_name)));
    let prefixes = naming::prefixes(
        servers
            .iter()
            .map(|e| (e.name.as_str(), e.toolbox_name.as_str())),
    );
    // A per-user server shows what the agent's own connection listed, or nothing.
    let listed: Vec<(&String, Arc<ServerEntry>)> = servers
        .iter()
        .filter_map(|e| {
            let prefix = &prefixes[&(e.name.clone(), e.toolbox_name.clone())];
            registry.entry_for(e, policy).map(|e| (prefix, e))
        })
        .collect();
    let mut v = View::default();
    let mut hashes: HashMap<Arc<str>, &str> = HashMap::new();
    let mut prompt_hashes: HashMap<String, &str> = HashMap::new();
    for (prefix, e) in &listed {
        let prefix = *prefix;
        for (index, t) in e.tools.iter().enumerate() {
            let Some(verdict) = e.verdicts.get(t.name.as_ref()).filter(|v| v.visible) else {
                continue;
            };
            let decision = policy.decide(&e.reference(), &t.name);
            if decision == Decision::Hidden {
                continue;
            }
            let name: Arc<str> = naming::exposed(prefix, &t.name).into();
            hashes.insert(name.clone(), &verdict.hash);
            v.tools.push(Exposed {
                name,
                server: e.clone(),
                index,
                decision,
            });
        }
        // Prompts and resources follow the server grant (they are not tools); prompts and
        // templates are pinned like tools, and a held one is not listed.
        if policy.server_granted(&e.reference()) {
            let pinned = &e.listing_verdicts;
            for p in e.prompts.iter() {
                let Some(verdict) = pinned.prompts.get(&p.name).filter(|v| v.visible) else {
                    continue;
                };
                let name = naming::exposed(prefix, &p.name);
                prompt_hashes.insert(name.clone(), &verdict.hash);
                let mut shown = p.clone();
                shown.name = name.clone();
                v.prompts.push(ExposedPrompt {
                    name,
                    shown,
                    upstream: p.name.clone(),
                    server: e.clone(),
                });
            }
            v.resource_servers.insert(prefix.clone(), e.clone());
            for r in e.resources.iter() {
                let mut shown = r.clone();
                shown.uri = naming::qualified_uri(prefix, &r.uri);
                v.resources.push(ExposedResource {
                    shown,
                    upstream: r.uri.clone(),
                    prefix: prefix.clone(),
                    server: e.clone(),
                });
            }
            for t in e.templates.iter() {
                if pinned.template_visible(&t.uri_template) {
                    let mut shown = t.clone();
                    shown.uri_template = naming::qualified_uri(prefix, &t.uri_template);
                    v.templates.push(ExposedResource {
                        shown,
                        upstream: t.uri_template.clone(),
                        prefix: prefix.clone(),
                        server: e.clone(),
                    });
                }
            }
        }
    }
    v.tools.sort_by(|a, b| a.name.cmp(&b.name));
    // A name two tools would share resolves to neither: a call must never reach a server
    // other than the one whose tool the agent was shown. Distinct prefixes make this rare
    // (a truncated name's short hash, a cleaned name matching another's literal one).
    let shared = |names: Vec<&str>| -> std::collections::HashSet<String> {
        let mut seen = std::collections::HashSet::new();
        names
            .into_iter()
            .filter(|n| !seen.insert(*n))
            .map(String::from)
            .collect()
    };
    let clash = shared(v.tools.iter().map(|t| &*t.name).collect());
    let prompt_clash = shared(v.prompts.iter().map(|p| p.name.as_str()).collect());
    for n in clash.iter().chain(&prompt_clash) {
        tracing::warn!(name = %n, "two tools or prompts would share this name; both hidden");
    }
    v.tools.retain(|t| !clash.contains(&*t.name));
    v.prompts.retain(|p| !prompt_clash.contains(&p.name));
    v.by_name = v
        .tools
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    v.prompts.sort_by(|a, b| a.name.cmp(&b.name));
    let mut h = std::collections::hash_map::DefaultHasher::new();
    let mut key = Sha256::new();
    use std::hash::{Hash, Hasher};
    for t in &v.tools {
        let def = hashes.get(&t.name).copied().unwrap_or("");
        t.name.hash(&mut h);
        def.hash(&mut h);
        key.update(t.name.as_bytes());
        key.update([0]);
        key.update(def.as_bytes());
        key.update([0]);
    }
    // A prompt whose definition changed and was approved is news too.
    for p in &v.prompts {
        p.name.hash(&mut h);
        prompt_hashes.get(&p.name).hash(&mut h);
    }
    v.fingerprint = h.finish();
    v.key = key.finalize().into();
    v
}

struct Entry {
    policy: Arc<AgentPolicy>,
    version: u64,
    view: Arc<View>,
}

#[derive(Default)]
pub struct Views {
    map: RwLock<HashMap<AgentId, Entry>>,
    shared: pages::Shared,
}

impl Views {
    pub fn get(
        &self,
        agent: &AgentId,
        policy: &Arc<AgentPolicy>,
        registry: &Registry,
    ) -> Arc<View> {
        let version = registry.version.load(std::sync::atomic::Ordering::Acquire);
        if let Some(e) = self
            .map
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(agent)
            && e.version == version
            && Arc::ptr_eq(&e.policy, policy)
        {
            return e.view.clone();
        }
        let view = Arc::new(build(registry, policy));
        self.map.write().unwrap_or_else(|p| p.into_inner()).insert(
            agent.clone(),
            Entry {
                policy: policy.clone(),
                version,
                view: view.clone(),
            },
        );
        view
    }

    /// The view's serialized `tools/list` pages, made once for all views listing the
    /// same tools.
    pub fn pages(&self, view: &View, size: usize) -> Arc<pages::Pages> {
        view.pages
            .get_or_init(|| self.shared.get_or_make(view, size))
            .clone()
    }
}
