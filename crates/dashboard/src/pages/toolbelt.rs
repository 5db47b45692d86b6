//! The toolbelt editor of an agent: a tree Toolbox → Server → Tool with a checkbox per
//! toolbox and server (a grant) and a rule per tool (none, allow, deny, ask). The form's
//! fields: `toolbox:<toolbox id>`, `server:<server id>` (checked = granted) and
//! `tool:<server id>:<tool>` (`""`, `allow`, `deny`, `ask`). Saving turns the differences
//! into calls of the grants service; what may be granted is its rule, not this file's.

use crate::form::Form;
use std::collections::HashMap;
use toolbelt_control::AppState;
use toolbelt_control::service::activity::{self, ToolboxTools};
use toolbelt_control::service::grants::{CreateGrant, UpdateGrant};
use toolbelt_control::service::{self, Caller, Paging, Result};
use toolbelt_model::agent::Agent;
use toolbelt_model::grant::{Grant, GrantKind, ToolRule};

pub struct TreeTool {
    pub name: String,
    pub description: String,
    /// "", "allow", "deny" or "ask".
    pub rule: &'static str,
    pub field: String,
    pub id: String,
}

pub struct TreeServer {
    pub name: String,
    pub status: &'static str,
    pub granted: bool,
    pub field: String,
    pub id: String,
    pub tools: Vec<TreeTool>,
}

pub struct TreeToolbox {
    pub name: String,
    pub shared: bool,
    pub granted: bool,
    pub field: String,
    pub id: String,
    pub servers: Vec<TreeServer>,
}

/// The agent's grants, all pages.
async fn grants_of(st: &AppState, caller: &Caller, agent: &str) -> Result<Vec<Grant>> {
    let mut out = Vec::new();
    let mut page = Paging {
        limit: Some(1000),
        cursor: None,
    };
    loop {
        let p = service::grants::list(st, caller, Some(agent), &page).await?;
        out.extend(p.items);
        match p.next_cursor {
            Some(c) => page.cursor = Some(c),
            None => return Ok(out),
        }
    }
}

/// Keys of grants as the form names them.
fn key(g: &Grant) -> Option<String> {
    match g.kind {
        GrantKind::Toolbox => g.toolbox_id.as_ref().map(|t| format!("toolbox:{t}")),
        GrantKind::Server => g.server_id.as_ref().map(|s| format!("server:{s}")),
        GrantKind::Tool => match (&g.server_id, &g.tool) {
            (Some(s), Some(t)) => Some(format!("tool:{s}:{t}")),
            _ => None,
        },
        GrantKind::Connection => None,
    }
}

fn by_key(grants: Vec<Grant>) -> HashMap<String, Grant> {
    grants
        .into_iter()
        .filter_map(|g| key(&g).map(|k| (k, g)))
        .collect()
}

/// The editor's tree for the agent, and the raw tree (for "what it sees now").
pub async fn tree(
    st: &AppState,
    caller: &Caller,
    agent: &str,
) -> Result<(Vec<TreeToolbox>, Vec<ToolboxTools>)> {
    let raw = activity::tool_tree(st, caller).await?;
    let grants = by_key(grants_of(st, caller, agent).await?);
    let on = |k: &str| grants.get(k).is_some_and(|g| g.active);
    let tree = raw
        .iter()
        .map(|t| TreeToolbox {
            name: t.toolbox.name.to_string(),
            shared: t.toolbox.shared,
            granted: on(&format!("toolbox:{}", t.toolbox.id)),
            field: format!("toolbox:{}", t.toolbox.id),
            id: format!("grant-toolbox-{}", t.toolbox.name),
            servers: t
                .servers
                .iter()
                .map(|(s, tools)| TreeServer {
                    name: s.name.to_string(),
                    status: s.status.as_str(),
                    granted: on(&format!("server:{}", s.id)),
                    field: format!("server:{}", s.id),
                    id: format!("grant-server-{}-{}", t.toolbox.name, s.name),
                    tools: tools
                        .iter()
                        .map(|p| {
                            let field = format!("tool:{}:{}", s.id, p.tool);
                            TreeTool {
                                name: p.tool.clone(),
                                description: p.definition["description"]
                                    .as_str()
                                    .unwrap_or("")
                                    .chars()
                                    .take(160)
                                    .collect(),
                                rule: grants.get(&field).map(|g| g.rule.as_str()).unwrap_or(""),
                                id: format!("rule-{}-{}-{}", t.toolbox.name, s.name, p.tool),
                                field,
                            }
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    Ok((tree, raw))
}

/// Applies the posted editor; returns how many grants changed.
pub async fn save(st: &AppState, caller: &Caller, agent: &Agent, f: &Form) -> Result<usize> {
    let raw = activity::tool_tree(st, caller).await?;
    let existing = by_key(grants_of(st, caller, agent.id.as_str()).await?);
    let agent_ref = agent.id.to_string();
    let mut changed = 0;
    let create =
        |toolbox: Option<String>, server: Option<String>, tool: Option<String>, rule| CreateGrant {
            agent: agent_ref.clone(),
            toolbox,
            server,
            tool,
            rule,
            connection: None,
        };
    // Toolbox and server grants: a checkbox each.
    let mut switches: Vec<(String, CreateGrant)> = Vec::new();
    for t in &raw {
        switches.push((
            format!("toolbox:{}", t.toolbox.id),
            create(Some(t.toolbox.id.to_string()), None, None, None),
        ));
        for (s, _) in &t.servers {
            switches.push((
                format!("server:{}", s.id),
                create(None, Some(s.id.to_string()), None, None),
            ));
        }
    }
    for (k, new) in switches {
        let want = f.checked(&k);
        match existing.get(&k) {
            None if want => {
                service::grants::create(st, caller, new).await?;
                changed += 1;
            }
            Some(g) if g.active != want => {
                let req = UpdateGrant {
                    active: Some(want),
                    rule: None,
                };
                service::grants::update(st, caller, g.id.as_str(), req).await?;
                changed += 1;
            }
            _ => {}
        }
    }
    // Tool rules: a select each.
    for t in &raw {
        for (s, tools) in &t.servers {
            for p in tools {
                let k = format!("tool:{}:{}", s.id, p.tool);
                let Some(posted) = f.get(&k) else {
                    continue;
                };
                let want = match posted {
                    "" => None,
                    other => Some(ToolRule::parse(other).ok_or_else(|| {
                        service::ServiceError::invalid(&k, "must be allow, deny or ask")
                    })?),
                };
                match (existing.get(&k), want) {
                    (None, Some(r)) => {
                        let new =
                            create(None, Some(s.id.to_string()), Some(p.tool.clone()), Some(r));
                        service::grants::create(st, caller, new).await?;
                        changed += 1;
                    }
                    (Some(g), None) => {
                        service::grants::delete(st, caller, g.id.as_str()).await?;
                        changed += 1;
                    }
                    (Some(g), Some(r)) if g.rule != r => {
                        let req = UpdateGrant {
                            active: None,
                            rule: Some(r),
                        };
                        service::grants::update(st, caller, g.id.as_str(), req).await?;
                        changed += 1;
                    }
                    _ => {}
                }
            }
        }
    }
    Ok(changed)
}
