//! Audit: the log with filters (actor, agent, action, target, outcome, time range), keyset
//! pages ("older"), each event's detail inline, the chain's verification (admins) and an
//! export of the filtered events as JSON lines. Who sees which events is the audit
//! service's (members: their own things').

use crate::error::PageResult;
use crate::session::Dash;
use crate::view::{Chrome, Errors, tone, when};
use askama::Template;
use axum::extract::{Query, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use toolbelt_control::AppState;
use toolbelt_control::service::audit::Filter;
use toolbelt_control::service::{self, ServiceError};
use toolbelt_model::audit::{AuditEvent, Outcome, VerifyReport};

/// The filter form's fields, as typed (kept for re-showing).
#[derive(Deserialize, Default, Clone)]
pub struct AuditQuery {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    agent: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    target: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    since: String,
    #[serde(default)]
    until: String,
    cursor: Option<String>,
}

fn opt(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_string())
}

/// A time from a `datetime-local` input (`2026-12-02T05:00`, taken as UTC) or RFC 3339.
fn time(field: &str, s: &str) -> Result<Option<chrono::DateTime<chrono::Utc>>, ServiceError> {
    let s = s.trim();
    if s.is_empty() {
        return Ok(None);
    }
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(Some(t.with_timezone(&chrono::Utc)));
    }
    for f in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S"] {
        if let Ok(t) = chrono::NaiveDateTime::parse_from_str(s, f) {
            return Ok(Some(t.and_utc()));
        }
    }
    Err(ServiceError::invalid(
        field,
        "is not a time (2026-12-02T05:00, UTC)",
    ))
}

impl AuditQuery {
    fn filter(&self, limit: u32) -> Result<Filter, ServiceError> {
        let outcome = match self.outcome.trim() {
            "" => None,
            o => Some(Outcome::parse(o).ok_or_else(|| {
                ServiceError::invalid("outcome", "must be success, denied or failure")
            })?),
        };
        Ok(Filter {
            limit: Some(limit),
            cursor: self.cursor.clone().filter(|c| !c.is_empty()),
            agent: opt(&self.agent),
            actor: opt(&self.actor),
            action: opt(&self.action),
            target: opt(&self.target),
            outcome,
            since: time("since", &self.since)?,
            until: time("until", &self.until)?,
        })
    }

    /// This filter as a query string, with `extra` pairs.
    fn query(&self, extra: &[(&str, &str)]) -> String {
        let mut u = form_urlencoded::Serializer::new(String::new());
        for (k, v) in [
            ("actor", &self.actor),
            ("agent", &self.agent),
            ("action", &self.action),
            ("target", &self.target),
            ("outcome", &self.outcome),
            ("since", &self.since),
            ("until", &self.until),
        ] {
            if !v.trim().is_empty() {
                u.append_pair(k, v.trim());
            }
        }
        for (k, v) in extra {
            u.append_pair(k, v);
        }
        u.finish()
    }
}

pub struct EventRow {
    pub seq: i64,
    pub at: String,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: &'static str,
    pub tone: &'static str,
    pub detail: String,
    pub hash: String,
}

impl EventRow {
    fn of(e: &AuditEvent) -> EventRow {
        let detail = serde_json::from_str::<serde_json::Value>(&e.detail)
            .ok()
            .and_then(|v| serde_json::to_string_pretty(&v).ok())
            .unwrap_or_else(|| e.detail.clone());
        EventRow {
            seq: e.seq,
            at: when(&e.ts),
            actor: format!(
                "{} {}",
                e.actor_kind.as_str(),
                e.actor_id.clone().unwrap_or_default()
            ),
            action: e.action.clone(),
            target: format!(
                "{} {}",
                e.target_kind,
                e.target_id.clone().unwrap_or_default()
            ),
            outcome: e.outcome.as_str(),
            tone: tone(e.outcome.as_str()),
            detail: detail.chars().take(4000).collect(),
            hash: e.hash.chars().take(16).collect(),
        }
    }
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    c: Chrome,
    q: AuditQuery,
    events: Vec<EventRow>,
    older: Option<String>,
    export: String,
    errors: Errors,
    verify: Option<VerifyReport>,
}

async fn render(
    st: &AppState,
    d: &Dash,
    q: AuditQuery,
    verify: Option<VerifyReport>,
) -> PageResult {
    let (events, older, errors) = match q.filter(50) {
        Ok(f) => match service::audit::list(st, &d.caller, &f).await {
            Ok(p) => (
                p.items.iter().map(EventRow::of).collect(),
                p.next_cursor
                    .map(|c| format!("/audit?{}", q.query(&[("cursor", &c)]))),
                Errors::default(),
            ),
            Err(e) if !e.fields().is_empty() || e.is_not_found() => {
                (Vec::new(), None, Errors::from_service(&e))
            }
            Err(e) => return Err(e.into()),
        },
        Err(e) => (Vec::new(), None, Errors::from_service(&e)),
    };
    let status = if errors.fields.is_empty() && errors.general.is_none() {
        axum::http::StatusCode::OK
    } else {
        axum::http::StatusCode::UNPROCESSABLE_ENTITY
    };
    let page = AuditPage {
        c: Chrome::new(d, "audit"),
        export: format!("/audit/export?{}", q.query(&[])),
        q,
        events,
        older,
        errors,
        verify,
    };
    let mut res = super::render(&page)?;
    *res.status_mut() = status;
    Ok(res)
}

pub async fn list(State(st): State<AppState>, d: Dash, Query(q): Query<AuditQuery>) -> PageResult {
    render(&st, &d, q, None).await
}

/// Walks the chain (admins; the service refuses others) and shows its state.
pub async fn verify(State(st): State<AppState>, d: Dash) -> PageResult {
    let report = service::audit::verify(&st, &d.caller).await?;
    render(&st, &d, AuditQuery::default(), Some(report)).await
}

/// At most this many events in one export (a bounded response).
const EXPORT_MAX: usize = 100_000;

/// The filtered events as JSON lines (`application/x-ndjson`), newest first.
pub async fn export(
    State(st): State<AppState>,
    d: Dash,
    Query(q): Query<AuditQuery>,
) -> PageResult<Response> {
    let mut f = q.filter(1000)?;
    let mut out = String::new();
    let mut n = 0;
    loop {
        let p = service::audit::list(&st, &d.caller, &f).await?;
        for e in &p.items {
            out.push_str(&serde_json::to_string(e).unwrap_or_default());
            out.push('\n');
            n += 1;
        }
        match p.next_cursor {
            Some(c) if n < EXPORT_MAX => f.cursor = Some(c),
            _ => break,
        }
    }
    Ok((
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/x-ndjson"),
            ),
            (
                header::CONTENT_DISPOSITION,
                HeaderValue::from_static("attachment; filename=\"toolbelt-audit.jsonl\""),
            ),
            (header::CACHE_CONTROL, HeaderValue::from_static("no-store")),
        ],
        out,
    )
        .into_response())
}
