//! Anonymous failures, summed up before they reach the audit chain.
//!
//! A failed login, a throttled one, or any other failed write by a caller with no identity
//! costs an attacker one request; appending each to the hash chain would cost us a chain
//! lock and a row each, without bound. Instead each is tallied here, in memory, per
//! (client address, action), and [`FailureLedger::flush`] — run every window by the app's
//! background task and once at shutdown — appends one summary event per tally with its
//! counts, first and last time, and a few of the emails tried. The chain grows by at most
//! [`MAX_SOURCES`] + 1 events per window and replica, whatever the flood. A crash loses at
//! most one window of summaries.

use serde_json::json;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::Mutex;
use toolbelt_model::audit::{ActorKind, AuditAction, NewAuditEvent, Outcome, TargetKind};
use toolbelt_store::{Store, StoreError};

/// Addresses tallied apart per window; the rest share one "overflow" tally.
pub const MAX_SOURCES: usize = 1024;
/// Emails named per tally (the rest are counted).
pub const MAX_EMAILS: usize = 8;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    Addr(IpAddr),
    /// Not over a socket (in-process callers).
    Unknown,
    /// Past [`MAX_SOURCES`] distinct addresses in this window.
    Overflow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    source: Source,
    action: AuditAction,
    target_kind: TargetKind,
}

#[derive(Debug, Default)]
struct Tally {
    failed: u64,
    throttled: u64,
    first_ms: i64,
    last_ms: i64,
    statuses: BTreeMap<u16, u64>,
    emails: BTreeSet<String>,
    more_emails: u64,
}

/// What one tally counts.
enum Mark<'a> {
    Failed { status: u16, email: Option<&'a str> },
    Throttled,
}

/// The tallies of the current window (one per process).
#[derive(Debug, Default)]
pub struct FailureLedger {
    tallies: Mutex<HashMap<Key, Tally>>,
}

impl FailureLedger {
    pub fn new() -> FailureLedger {
        FailureLedger::default()
    }

    /// A login that did not check out (401), with the email it named if it was one.
    pub fn failed_login(&self, from: Option<IpAddr>, email: Option<&str>) {
        self.mark(
            from,
            AuditAction::SessionLoginFailure,
            TargetKind::User,
            Mark::Failed { status: 401, email },
        );
    }

    /// A login refused by the throttle (429): nothing was checked.
    pub fn throttled_login(&self, from: Option<IpAddr>) {
        self.mark(
            from,
            AuditAction::SessionLoginFailure,
            TargetKind::User,
            Mark::Throttled,
        );
    }

    /// Another failed write by an anonymous caller (a malformed login body, a bad join).
    pub fn failed_request(
        &self,
        from: Option<IpAddr>,
        action: AuditAction,
        target_kind: TargetKind,
        status: u16,
    ) {
        let action = match action {
            AuditAction::SessionLogin => AuditAction::SessionLoginFailure,
            a => a,
        };
        self.mark(
            from,
            action,
            target_kind,
            Mark::Failed {
                status,
                email: None,
            },
        );
    }

    /// Tallies waiting for the next flush.
    pub fn pending(&self) -> usize {
        self.lock().len()
    }

    /// Appends one summary event per tally and starts a new window; how many were appended.
    /// When the store fails the tallies are kept for the next flush.
    pub async fn flush(&self, store: &Store) -> Result<usize, StoreError> {
        let taken = std::mem::take(&mut *self.lock());
        if taken.is_empty() {
            return Ok(0);
        }
        let mut entries: Vec<(Key, Tally)> = taken.into_iter().collect();
        entries.sort_by_key(|(_, t)| t.first_ms);
        let events: Vec<NewAuditEvent> = entries.iter().map(|(k, t)| event(k, t)).collect();
        let n = events.len();
        // The group commit's batch size keeps each INSERT within both backends' limits.
        let mut written = 0;
        for chunk in events.chunks(256) {
            if let Err(e) = store.append_audit_batch(chunk.to_vec()).await {
                let mut now = self.lock();
                for (k, t) in entries.into_iter().skip(written) {
                    merge(now.entry(k).or_default(), t);
                }
                return Err(e);
            }
            written += chunk.len();
        }
        Ok(n)
    }

    fn mark(&self, from: Option<IpAddr>, action: AuditAction, target_kind: TargetKind, m: Mark) {
        let now = toolbelt_model::now().timestamp_millis();
        let mut tallies = self.lock();
        let mut key = Key {
            source: from.map_or(Source::Unknown, Source::Addr),
            action,
            target_kind,
        };
        if !tallies.contains_key(&key) && tallies.len() >= MAX_SOURCES {
            key.source = Source::Overflow;
        }
        let t = tallies.entry(key).or_default();
        if t.first_ms == 0 {
            t.first_ms = now;
        }
        t.last_ms = now;
        match m {
            Mark::Throttled => t.throttled += 1,
            Mark::Failed { status, email } => {
                t.failed += 1;
                *t.statuses.entry(status).or_default() += 1;
                if let Some(e) = email {
                    if t.emails.len() < MAX_EMAILS || t.emails.contains(e) {
                        t.emails.insert(e.to_string());
                    } else {
                        t.more_emails += 1;
                    }
                }
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Tally>> {
        self.tallies.lock().unwrap_or_else(|p| p.into_inner())
    }
}

fn merge(into: &mut Tally, t: Tally) {
    into.failed += t.failed;
    into.throttled += t.throttled;
    if into.first_ms == 0 || t.first_ms < into.first_ms {
        into.first_ms = t.first_ms;
    }
    into.last_ms = into.last_ms.max(t.last_ms);
    for (s, n) in t.statuses {
        *into.statuses.entry(s).or_default() += n;
    }
    for e in t.emails {
        if into.emails.len() < MAX_EMAILS {
            into.emails.insert(e);
        } else {
            into.more_emails += 1;
        }
    }
    into.more_emails += t.more_emails;
}

fn event(k: &Key, t: &Tally) -> NewAuditEvent {
    let mut ev = NewAuditEvent::new(k.action, k.target_kind, None);
    ev.actor_kind = ActorKind::Anonymous;
    ev.outcome = if k.action == AuditAction::SessionLoginFailure {
        Outcome::Denied
    } else {
        Outcome::Failure
    };
    let address = match k.source {
        Source::Addr(ip) => json!(ip.to_string()),
        Source::Unknown => json!(null),
        Source::Overflow => json!("(other addresses)"),
    };
    let statuses: BTreeMap<String, u64> = t
        .statuses
        .iter()
        .map(|(s, n)| (s.to_string(), *n))
        .collect();
    ev.detail = json!({
        "summary": true,
        "address": address,
        "failed": t.failed,
        "throttled": t.throttled,
        "statuses": statuses,
        "first": toolbelt_model::ts_from_ms(t.first_ms),
        "last": toolbelt_model::ts_from_ms(t.last_ms),
        "emails": t.emails,
        "more_emails": t.more_emails,
    });
    ev
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_flood_is_one_tally_per_address_and_the_sources_are_capped() {
        let l = FailureLedger::new();
        let a: IpAddr = "198.51.100.7".parse().unwrap();
        for i in 0..500 {
            l.failed_login(Some(a), Some(&format!("u{i}@example.com")));
            l.throttled_login(Some(a));
        }
        assert_eq!(l.pending(), 1);
        let ev = {
            let t = l.lock();
            let (k, t) = t.iter().next().unwrap();
            event(k, t)
        };
        assert_eq!(ev.action, AuditAction::SessionLoginFailure);
        assert_eq!(
            (
                ev.detail["failed"].as_u64(),
                ev.detail["throttled"].as_u64(),
                ev.detail["emails"].as_array().map(Vec::len),
                ev.detail["more_emails"].as_u64(),
            ),
            (
                Some(500),
                Some(500),
                Some(MAX_EMAILS),
                Some(500 - MAX_EMAILS as u64)
            )
        );
        for i in 0..(MAX_SOURCES as u32 * 2) {
            l.failed_login(Some(IpAddr::from(i.to_be_bytes())), None);
        }
        assert_eq!(l.pending(), MAX_SOURCES + 1, "the rest share one tally");
    }
}
