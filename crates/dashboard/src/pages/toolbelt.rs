//! The toolbelt editor of an agent: a tree Toolbox → Server → Tool with a checkbox per
//! toolbox and server (a grant) and a rule per tool (none, allow, deny, ask). The form's
//! fields: `toolbox:<toolbox id>`, `server:<server id>` (`on`, or `off` from the hidden
//! field before each checkbox: a switch is judged only when the form carried it) and
//! `tool:<server id>:<tool>` (`""`, `allow`, `deny`, `ask`). Saving turns the differences
//! into calls of the grants service; what may be granted is its rule, not this file's.
//!
//! A small tree is shown whole. A large one (1,000 servers) is collapsed: each toolbox is
//! a row with its counts, `?toolbox=ID` lists its servers ([`SERVER_PAGE`] at a time,
//! `&from=N`) each with its counts, and `?server=ID` lists that server's tools
//! ([`TOOL_PAGE`] at a time, `&tools=N`) — plain links, so it works without JavaScript, and
//! only what is shown is posted and judged.

use crate::form::Form;
use std::collections::HashMap;
use toolbelt_control::AppState;
use toolbelt_control::service::activity::{self, ToolboxTools};
use toolbelt_control::service::grants::{CreateGrant, UpdateGrant};
use toolbelt_control::service::{self, Caller, Paging, Result};
use toolbelt_model::agent::Agent;
use toolbelt_model::grant::{Grant, GrantKind, ToolRule};

/// A tree up to this many servers and tools is shown whole, as before collapsing existed.
pub const FULL_SERVERS: usize = 30;
pub const FULL_TOOLS: usize = 200;
/// Servers of an opened toolbox listed at a time.
pub const SERVER_PAGE: usize = 100;
/// Tools of an opened server listed at a time (a server may have thousands).
pub const TOOL_PAGE: usize = 200;

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
    /// The row's element id (`srv-<toolbox>-<server>`), the target of its link.
    pub anchor: String,
    /// Its tools are listed (else only counted, and `href` lists them).
    pub open: bool,
    pub tools: Vec<TreeTool>,
    pub tool_count: usize,
    /// Which of its tools are listed, when not all of them are.
    pub window: Option<Window>,
    /// How many of its tools have each rule.
    pub allow: usize,
    pub ask: usize,
    pub deny: usize,
    pub href: String,
}

/// Which servers of an opened toolbox (or tools of an opened server) are listed, with
/// links to the others.
pub struct Window {
    pub first: usize,
    pub last: usize,
    pub total: usize,
    pub prev: Option<String>,
    pub next: Option<String>,
}

pub struct TreeToolbox {
    pub name: String,
    pub shared: bool,
    pub granted: bool,
    pub field: String,
    pub id: String,
    /// The row's element id (`tb-<toolbox>`).
    pub anchor: String,
    /// Its servers are listed (else only counted, and `href` lists them).
    pub open: bool,
    pub servers: Vec<TreeServer>,
    pub server_count: usize,
    /// Its servers granted one by one.
    pub granted_servers: usize,
    pub href: String,
    pub window: Option<Window>,
}

/// What of the tree the page opens: `?toolbox=`, `?server=`, `&from=` (the first server
/// listed), `&tools=` (the first tool listed); ids as in the form fields. Anything unknown
/// or malformed opens nothing.
#[derive(Debug, Default, Clone, serde::Deserialize)]
pub struct Open {
    pub toolbox: Option<String>,
    pub server: Option<String>,
    pub from: Option<String>,
    pub tools: Option<String>,
}

impl Open {
    /// An id as Toolbelt makes them (a prefix, `_`, letters and digits); else nothing, so
    /// what comes back in links and redirects is never more than an id.
    fn id(v: &Option<String>) -> Option<&str> {
        v.as_deref()
            .filter(|s| !s.is_empty() && s.len() <= 64)
            .filter(|s| s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
    }

    /// The form's hidden `open-…` fields, read back when it is saved.
    pub fn from_form(f: &Form) -> Open {
        Open {
            toolbox: f.get("open-toolbox").map(str::to_string),
            server: f.get("open-server").map(str::to_string),
            from: f.get("open-from").map(str::to_string),
            tools: f.get("open-tools").map(str::to_string),
        }
    }

    fn first_row(&self) -> usize {
        Open::offset(&self.from)
    }

    fn first_tool(&self) -> usize {
        Open::offset(&self.tools)
    }

    fn offset(v: &Option<String>) -> usize {
        v.as_deref().and_then(|s| s.parse().ok()).unwrap_or(0)
    }

    /// The agent page's URL with this opening (the query only, never a fragment).
    pub fn url(&self, agent: &str) -> String {
        let mut q = form_urlencoded::Serializer::new(String::new());
        if let Some(t) = Open::id(&self.toolbox) {
            q.append_pair("toolbox", t);
        }
        if let Some(s) = Open::id(&self.server) {
            q.append_pair("server", s);
        }
        if self.first_row() > 0 {
            q.append_pair("from", &self.first_row().to_string());
        }
        if self.first_tool() > 0 {
            q.append_pair("tools", &self.first_tool().to_string());
        }
        let q = q.finish();
        if q.is_empty() {
            format!("/agents/{agent}")
        } else {
            format!("/agents/{agent}?{q}")
        }
    }

    /// Hidden fields for the form, so saving returns to the same opening.
    pub fn fields(&self) -> Vec<(&'static str, String)> {
        let mut out = Vec::new();
        if let Some(t) = Open::id(&self.toolbox) {
            out.push(("open-toolbox", t.to_string()));
        }
        if let Some(s) = Open::id(&self.server) {
            out.push(("open-server", s.to_string()));
        }
        if self.first_row() > 0 {
            out.push(("open-from", self.first_row().to_string()));
        }
        if self.first_tool() > 0 {
            out.push(("open-tools", self.first_tool().to_string()));
        }
        out
    }
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

/// The editor's tree for the agent as `open` asks, and the raw tree (for "what it sees
/// now").
pub async fn tree(
    st: &AppState,
    caller: &Caller,
    agent: &str,
    open: &Open,
) -> Result<(Vec<TreeToolbox>, Vec<ToolboxTools>)> {
    let raw = activity::tool_tree(st, caller).await?;
    let grants = by_key(grants_of(st, caller, agent).await?);
    Ok((shape(&raw, &grants, agent, open), raw))
}

fn shape(
    raw: &[ToolboxTools],
    grants: &HashMap<String, Grant>,
    agent: &str,
    open: &Open,
) -> Vec<TreeToolbox> {
    let on = |k: &str| grants.get(k).is_some_and(|g| g.active);
    let servers: usize = raw.iter().map(|t| t.servers.len()).sum();
    let tools: usize = raw
        .iter()
        .flat_map(|t| &t.servers)
        .map(|(_, p)| p.len())
        .sum();
    let whole = servers <= FULL_SERVERS && tools <= FULL_TOOLS;
    let want_server = Open::id(&open.server);
    // The toolbox to open: the one asked for, the asked server's, or the only one.
    let want_toolbox = Open::id(&open.toolbox)
        .map(str::to_string)
        .or_else(|| {
            raw.iter()
                .find(|t| {
                    t.servers
                        .iter()
                        .any(|(s, _)| Some(s.id.as_str()) == want_server)
                })
                .map(|t| t.toolbox.id.to_string())
        })
        .or_else(|| (raw.len() == 1).then(|| raw[0].toolbox.id.to_string()));
    raw.iter()
        .map(|t| {
            let tb_open = whole || want_toolbox.as_deref() == Some(t.toolbox.id.as_str());
            let link = |toolbox: Option<String>, server: Option<String>, from: usize| {
                let o = Open {
                    toolbox,
                    server,
                    from: (from > 0).then(|| from.to_string()),
                    tools: None,
                };
                o.url(agent)
            };
            let tbid = t.toolbox.id.to_string();
            // The window of servers: the asked offset, else the one holding the asked server.
            let total = t.servers.len();
            let from = if whole {
                0
            } else {
                let asked = open.first_row();
                let at = t
                    .servers
                    .iter()
                    .position(|(s, _)| Some(s.id.as_str()) == want_server);
                let start = if open.from.is_some() {
                    asked
                } else {
                    at.map(|i| i - i % SERVER_PAGE).unwrap_or(0)
                };
                start.min(total.saturating_sub(1) / SERVER_PAGE * SERVER_PAGE)
            };
            let shown = if whole { total } else { SERVER_PAGE };
            let window = (tb_open && total > shown).then(|| Window {
                first: from + 1,
                last: (from + shown).min(total),
                total,
                prev: (from > 0)
                    .then(|| link(Some(tbid.clone()), None, from.saturating_sub(shown))),
                next: (from + shown < total).then(|| link(Some(tbid.clone()), None, from + shown)),
            });
            let list = if tb_open {
                t.servers
                    .iter()
                    .skip(from)
                    .take(shown)
                    .map(|(s, pins)| {
                        let s_open = whole || want_server == Some(s.id.as_str());
                        let rule_of = |tool: &str| {
                            grants
                                .get(&format!("tool:{}:{tool}", s.id))
                                .map(|g| g.rule.as_str())
                                .unwrap_or("")
                        };
                        let mut rules = [0; 3];
                        for p in pins {
                            match rule_of(&p.tool) {
                                "allow" => rules[0] += 1,
                                "ask" => rules[1] += 1,
                                "deny" => rules[2] += 1,
                                _ => {}
                            }
                        }
                        // The window of tools: from the asked offset (clamped to the last page).
                        let count = pins.len();
                        let t_from = if whole {
                            0
                        } else {
                            open.first_tool()
                                .min(count.saturating_sub(1) / TOOL_PAGE * TOOL_PAGE)
                        };
                        let t_shown = if whole { count } else { TOOL_PAGE };
                        let tools_link = |first: usize| {
                            let o = Open {
                                toolbox: Some(tbid.clone()),
                                server: Some(s.id.to_string()),
                                from: (from > 0).then(|| from.to_string()),
                                tools: (first > 0).then(|| first.to_string()),
                            };
                            o.url(agent)
                        };
                        let t_window = (s_open && count > t_shown).then(|| Window {
                            first: t_from + 1,
                            last: (t_from + t_shown).min(count),
                            total: count,
                            prev: (t_from > 0).then(|| tools_link(t_from.saturating_sub(t_shown))),
                            next: (t_from + t_shown < count).then(|| tools_link(t_from + t_shown)),
                        });
                        let tools = if s_open {
                            pins.iter()
                                .skip(t_from)
                                .take(t_shown)
                                .map(|p| TreeTool {
                                    name: p.tool.clone(),
                                    description: p.definition["description"]
                                        .as_str()
                                        .unwrap_or("")
                                        .chars()
                                        .take(160)
                                        .collect(),
                                    rule: rule_of(&p.tool),
                                    id: rule_id(&tbid, s.name.as_str(), &p.tool),
                                    field: format!("tool:{}:{}", s.id, p.tool),
                                })
                                .collect()
                        } else {
                            Vec::new()
                        };
                        TreeServer {
                            name: s.name.to_string(),
                            status: s.status.as_str(),
                            granted: on(&format!("server:{}", s.id)),
                            field: format!("server:{}", s.id),
                            id: format!("grant-server-{tbid}-{}", s.name),
                            anchor: format!("srv-{tbid}-{}", s.name),
                            open: s_open,
                            tools,
                            tool_count: count,
                            window: t_window,
                            allow: rules[0],
                            ask: rules[1],
                            deny: rules[2],
                            href: link(Some(tbid.clone()), Some(s.id.to_string()), from),
                        }
                    })
                    .collect()
            } else {
                Vec::new()
            };
            TreeToolbox {
                name: t.toolbox.name.to_string(),
                shared: t.toolbox.shared,
                granted: on(&format!("toolbox:{}", t.toolbox.id)),
                field: format!("toolbox:{}", t.toolbox.id),
                // Element ids by the toolbox's id: two users' toolboxes may share a name
                // (an admin sees both), and a label must name one checkbox.
                id: format!("grant-toolbox-{tbid}"),
                anchor: format!("tb-{tbid}"),
                open: tb_open,
                servers: list,
                server_count: total,
                granted_servers: t
                    .servers
                    .iter()
                    .filter(|(s, _)| on(&format!("server:{}", s.id)))
                    .count(),
                href: link(Some(tbid.clone()), None, 0),
                window,
            }
        })
        .collect()
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
        // Only the switches the form carried: a collapsed tree posts a part of them.
        let Some(want) = f.switch(&k) else {
            continue;
        };
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

/// A tool rule's element id. `--` ends the server's part: a server name never contains it
/// (nor ends in `-`), so server `a-b`'s tool `c` and server `a`'s tool `b-c` differ.
fn rule_id(toolbox: &str, server: &str, tool: &str) -> String {
    format!("rule-{toolbox}-{server}--{tool}")
}

#[cfg(test)]
mod rule_ids {
    use super::rule_id;

    #[test]
    fn a_dash_in_a_server_name_does_not_make_two_tools_share_an_id() {
        assert_ne!(rule_id("tb", "a-b", "c"), rule_id("tb", "a", "b-c"));
        assert_eq!(rule_id("tb", "mine", "echo"), "rule-tb-mine--echo");
    }
}
