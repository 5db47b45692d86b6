//! An agent's view: exactly the tools (and prompts, resources) it may see, under the
//! names it sees them by. Built from the registry and its policy, cached until either
//! changes, so listing and resolving a name cost a map lookup on the hot path.

use crate::naming;
use crate::policy::{AgentPolicy, Decision};
use crate::registry::{Registry, ServerEntry};
use rmcp::model::{Prompt, Resource, ResourceTemplate, Tool};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use toolbelt_model::AgentId;

pub struct ExposedPrompt {
    pub name: String,
    pub shown: Prompt,
    pub upstream: String,
    pub server: Arc<ServerEntry>,
}

pub struct Exposed {
    pub server: Arc<ServerEntry>,
    /// The upstream's own tool (name as the server knows it).
    pub tool: Tool,
    pub decision: Decision,
}

#[derive(Default)]
pub struct View {
    /// Sorted by exposed name (stable pagination).
    pub tools: Vec<(String, Tool)>,
    pub by_name: HashMap<String, Exposed>,
    /// Exposed name, the prompt as shown, and its server (whose own name is `upstream`).
    pub prompts: Vec<ExposedPrompt>,
    pub resources: Vec<(Resource, Arc<ServerEntry>)>,
    pub templates: Vec<(ResourceTemplate, Arc<ServerEntry>)>,
    /// A digest of what is listed, to tell agents when it changes.
    pub fingerprint: u64,
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
    let mut v = View::default();
    for e in &servers {
        let prefix = &prefixes[&(e.name.clone(), e.toolbox_name.clone())];
        for t in &e.tools {
            if !e.verdicts.get(t.name.as_ref()).is_some_and(|v| v.visible) {
                continue;
            }
            let decision = policy.decide(&e.reference(), &t.name);
            if decision == Decision::Hidden {
                continue;
            }
            let name = naming::exposed(prefix, &t.name);
            let mut shown = t.clone();
            shown.name = name.clone().into();
            v.tools.push((name.clone(), shown));
            v.by_name.insert(
                name,
                Exposed {
                    server: e.clone(),
                    tool: t.clone(),
                    decision,
                },
            );
        }
        // Prompts and resources follow the server grant (they are not tools).
        if policy.server_granted(&e.reference()) {
            for p in &e.prompts {
                let name = naming::exposed(prefix, &p.name);
                let mut shown = p.clone();
                shown.name = name.clone();
                v.prompts.push(ExposedPrompt {
                    name,
                    shown,
                    upstream: p.name.clone(),
                    server: e.clone(),
                });
            }
            v.resources
                .extend(e.resources.iter().map(|r| (r.clone(), e.clone())));
            v.templates
                .extend(e.templates.iter().map(|t| (t.clone(), e.clone())));
        }
    }
    v.tools.sort_by(|a, b| a.0.cmp(&b.0));
    v.prompts.sort_by(|a, b| a.name.cmp(&b.name));
    let mut h = std::collections::hash_map::DefaultHasher::new();
    use std::hash::{Hash, Hasher};
    for (n, t) in &v.tools {
        n.hash(&mut h);
        crate::pinning::hash(&crate::pinning::definition(t)).hash(&mut h);
    }
    for p in &v.prompts {
        p.name.hash(&mut h);
    }
    v.fingerprint = h.finish();
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
}
