//! Pinned tool definitions: on first sight each tool's definition (name, title,
//! description, schemas, annotations) is hashed over canonical JSON and pinned; a later
//! change hides the tool until an admin approves it. Flagged new tools are held too.

use crate::scan::scan;
use rmcp::model::Tool;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use toolbelt_model::ServerId;
use toolbelt_model::audit::{AuditAction, NewAuditEvent, TargetKind};
use toolbelt_model::gateway::Pin;
use toolbelt_store::{Store, StoreError, pins};

/// The parts of a tool that define what it does, as the agent reads them.
pub fn definition(t: &Tool) -> Value {
    json!({
        "name": t.name,
        "title": t.title,
        "description": t.description,
        "inputSchema": &*t.input_schema,
        "outputSchema": t.output_schema.as_deref(),
        "annotations": t.annotations,
    })
}

pub fn hash(def: &Value) -> String {
    hex::encode(Sha256::digest(
        toolbelt_model::canonical::to_string(def).as_bytes(),
    ))
}

#[derive(Debug, Clone)]
pub struct Verdict {
    /// Shown to agents: its definition is the pinned one.
    pub visible: bool,
    pub flags: Vec<String>,
    /// SHA-256 of the current definition (what views and list pages are keyed by).
    pub hash: String,
}

/// Compares a server's current tools with their pins; pins first sightings, records
/// changes (audited), and says which tools may be shown.
pub async fn evaluate(
    store: &Store,
    server: &ServerId,
    owner: Option<&toolbelt_model::UserId>,
    tools: &[Tool],
    other_tools: &[String],
) -> Result<HashMap<String, Verdict>, StoreError> {
    let mut c = store.conn().await?;
    let pinned: HashMap<String, Pin> = pins::for_server(&mut c, server)
        .await?
        .into_iter()
        .map(|p| (p.tool.clone(), p))
        .collect();
    drop(c);
    // Tools this server has itself are not "other servers' tools", even if others have them too.
    let own: std::collections::HashSet<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    let other_tools: Vec<String> = other_tools
        .iter()
        .filter(|t| !own.contains(t.as_str()))
        .cloned()
        .collect();
    let other_tools = other_tools.as_slice();
    let mut out = HashMap::new();
    for t in tools {
        let def = definition(t);
        let h = hash(&def);
        let mut flags = scan(t.description.as_deref().unwrap_or(""), other_tools);
        flags.extend(scan(t.title.as_deref().unwrap_or(""), other_tools));
        let current = Pin {
            server_id: server.clone(),
            tool: t.name.to_string(),
            hash: h.clone(),
            definition: def,
            flags: flags.clone(),
        };
        let visible = match pinned.get(t.name.as_ref()) {
            Some(p) if p.hash == h => true,
            Some(p) => {
                record(store, Some(p), &current, owner, AuditAction::ToolChanged).await?;
                false
            }
            None if flags.is_empty() => {
                let mut c = store.conn().await?;
                pins::set(&mut c, &current, None).await?;
                true
            }
            None => {
                record(store, None, &current, owner, AuditAction::ToolHeld).await?;
                false
            }
        };
        out.insert(
            t.name.to_string(),
            Verdict {
                visible,
                flags,
                hash: h,
            },
        );
    }
    Ok(out)
}

async fn record(
    store: &Store,
    old: Option<&Pin>,
    new: &Pin,
    owner: Option<&toolbelt_model::UserId>,
    action: AuditAction,
) -> Result<(), StoreError> {
    let mut tx = store.begin_audited().await?;
    if pins::record_change(&mut tx, old, new).await? {
        let mut ev = NewAuditEvent::new(
            action,
            TargetKind::Tool,
            Some(format!("{}/{}", new.server_id, new.tool)),
        );
        ev.owner_id = owner.cloned();
        ev.detail = json!({ "server": new.server_id, "tool": new.tool, "old_hash": old.map(|o| &o.hash), "new_hash": new.hash, "flags": new.flags });
        tx.commit(ev).await?;
        store
            .publish(toolbelt_store::events::Event::ToolChanged {
                server: new.server_id.clone(),
                tool: new.tool.clone(),
            })
            .await;
    } else {
        tx.rollback().await?;
    }
    Ok(())
}
