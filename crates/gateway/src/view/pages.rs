//! Serialized `tools/list` pages. A listing of a thousand tools is hundreds of kilobytes
//! of JSON; it is serialized once per distinct list (the same names and definitions, so
//! the 100 agents of a team with the same grants share one copy) and served as bytes
//! until the view changes.

use super::View;
use axum::body::Bytes;
use rmcp::model::ServerResult;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};

/// Every page of one list, as the `result` of a legacy-session reply.
pub struct Pages {
    size: usize,
    legacy: Vec<Bytes>,
}

impl Pages {
    /// The page at an offset cursor that starts a page; None for any other cursor
    /// (the caller answers those from the view itself).
    pub fn at(&self, cursor: Option<&str>) -> Option<&Bytes> {
        let start = match cursor {
            None => 0,
            Some(c) => c.parse::<usize>().ok()?,
        };
        if !start.is_multiple_of(self.size) {
            return None;
        }
        self.legacy.get(start / self.size)
    }
}

/// A `tools/list` result as a legacy peer gets it (rmcp strips `resultType` for them).
pub fn legacy_result(view: &View, cursor: Option<&str>, size: usize) -> Option<Bytes> {
    let page = view.list_page(cursor, size)?;
    let mut r = ServerResult::ListToolsResult(page);
    r.strip_result_type_for_legacy_peer();
    Some(Bytes::from(
        serde_json::to_vec(&r).expect("a listing serializes"),
    ))
}

fn make(view: &View, size: usize) -> Pages {
    let size = size.max(1);
    let n = view.tools.len().div_ceil(size).max(1);
    let legacy = (0..n)
        .map(|i| {
            let cursor = (i > 0).then(|| (i * size).to_string());
            legacy_result(view, cursor.as_deref(), size).expect("an offset cursor")
        })
        .collect();
    Pages { size, legacy }
}

/// A list's key (its names and definitions) and the page size.
type Key = ([u8; 32], usize);

/// Pages by list key, held weakly: they live as long as a view uses them.
#[derive(Default)]
pub struct Shared {
    map: Mutex<HashMap<Key, Weak<Pages>>>,
}

impl Shared {
    pub fn get_or_make(&self, view: &View, size: usize) -> Arc<Pages> {
        let key = (view.key, size);
        let mut map = self.map.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = map.get(&key).and_then(Weak::upgrade) {
            return p;
        }
        let pages = Arc::new(make(view, size));
        if map.len() >= 64 {
            map.retain(|_, w| w.strong_count() > 0);
        }
        map.insert(key, Arc::downgrade(&pages));
        pages
    }
}
