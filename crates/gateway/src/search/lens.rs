//! What one request sees of its agent's view: every granted tool (`all`), the meta tools
//! and the always-visible tools (`search`), or exactly one toolset's tools (a request to
//! `/mcp/toolsets/NAME`). The view stays the agent's, cached as before; a lens only
//! chooses from it, so nothing outside the view (ungranted, denied, held) can come
//! through one.

use super::meta;
use crate::error::CallError;
use crate::policy::{AgentIdentity, AgentPolicy};
use crate::view::{Exposed, View, page_bounds};
use rmcp::model::{ListToolsResult, Tool};
use std::collections::{HashMap, HashSet};
use toolbelt_model::ServerId;
use toolbelt_model::agent::Discovery;

/// A tool by identity: its server and the server's own name for it.
pub type ToolKey = (ServerId, String);

/// An agent's discovery settings, loaded with its grants.
#[derive(Debug, Clone)]
pub struct Settings {
    pub mode: Discovery,
    pub always_visible: HashSet<ToolKey>,
    pub toolsets: HashMap<String, HashSet<ToolKey>>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            mode: Discovery::All,
            always_visible: HashSet::new(),
            toolsets: HashMap::new(),
        }
    }
}

pub enum Lens<'a> {
    All,
    Search(&'a HashSet<ToolKey>),
    /// None: the toolset the request names is gone (it lists and resolves nothing).
    Toolset(Option<&'a HashSet<ToolKey>>),
}

fn key_of(e: &Exposed) -> ToolKey {
    (e.server.id.clone(), e.tool().name.to_string())
}

/// The lens of a request: its toolset, else its token's mode, else its agent's.
pub fn of<'a>(agent: &AgentIdentity, policy: &'a AgentPolicy) -> Lens<'a> {
    let s = &policy.discovery;
    if let Some(t) = &agent.toolset {
        return Lens::Toolset(s.toolsets.get(t.as_ref()));
    }
    match agent.discovery.unwrap_or(s.mode) {
        Discovery::All => Lens::All,
        Discovery::Search => Lens::Search(&s.always_visible),
    }
}

impl Lens<'_> {
    pub fn is_all(&self) -> bool {
        matches!(self, Lens::All)
    }

    /// Whether a tool of the view may be called directly through this lens. In search
    /// mode any granted tool may (its name came from `find_tools`); a toolset endpoint
    /// serves its own tools only.
    pub fn callable(&self, e: &Exposed) -> bool {
        match self {
            Lens::All | Lens::Search(_) => true,
            Lens::Toolset(set) => set.is_some_and(|s| s.contains(&key_of(e))),
        }
    }

    /// The tools listed through this lens, sorted by name (stable offset cursors).
    pub fn listed(&self, view: &View) -> Vec<Tool> {
        match self {
            Lens::All => view.tools.iter().map(Exposed::shown).collect(),
            Lens::Search(always) => {
                let mut v: Vec<Tool> = meta::tools().to_vec();
                v.extend(
                    view.tools
                        .iter()
                        .filter(|e| always.contains(&key_of(e)))
                        .map(Exposed::shown),
                );
                v.sort_by(|a, b| a.name.cmp(&b.name));
                v
            }
            Lens::Toolset(set) => view
                .tools
                .iter()
                .filter(|e| set.is_some_and(|s| s.contains(&key_of(e))))
                .map(Exposed::shown)
                .collect(),
        }
    }
}

/// One page of `tools/list` through a lens other than `all` (None for `all`: the
/// callers' own, cached paths serve it).
pub fn list_page(
    agent: &AgentIdentity,
    policy: &AgentPolicy,
    view: &View,
    cursor: Option<&str>,
    size: usize,
) -> Option<Result<ListToolsResult, CallError>> {
    let lens = of(agent, policy);
    if lens.is_all() {
        return None;
    }
    let items = lens.listed(view);
    let Some((start, end, next)) = page_bounds(items.len(), cursor, size) else {
        return Some(Err(CallError::InvalidParams("Invalid cursor".into())));
    };
    let mut r = ListToolsResult::with_all_items(items[start..end].to_vec());
    r.next_cursor = next;
    Some(Ok(r))
}
