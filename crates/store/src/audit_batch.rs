//! An audit writer's own connection ([`Store::audit_connection`]). On SQLite a batch is
//! one autocommitted INSERT linked to the head this connection's last batch left: one
//! round trip to sqlx's SQLite worker thread instead of five (BEGIN, read the head,
//! insert, move the head, COMMIT), which at one call at a time was most of the wait for
//! the audit event. The `audit_events_link` trigger checks every row against the head and
//! moves it, so a batch linked to a stale head (another writer appended meanwhile: a grant,
//! an approval request from another connection) writes nothing; it is then appended under
//! the chain lock with the head read inside the transaction, as every other append is.

use crate::db::Appended;
use crate::{Backend, Result, Store, audit};
use sqlx::AnyConnection;
use toolbelt_model::audit::{AuditEvent, NewAuditEvent};

pub struct AuditConnection {
    conn: AnyConnection,
    store: Store,
    /// `(seq, hash)` of the chain's head as this connection's last batch left it (SQLite);
    /// None when not known (a new connection, after a failure, on PostgreSQL).
    head: Option<(i64, String)>,
    /// Off: every batch under the chain lock (to compare the two in benchmarks).
    linked: bool,
}

/// A committed batch whose metrics samples and live-update notes are not published yet,
/// so the writer can answer its callers first.
pub struct Committed {
    pub events: Vec<AuditEvent>,
    after: Appended,
    store: Store,
}

impl Committed {
    /// Feeds the metrics and publishes the notes; the events, for the caller.
    pub fn publish(self) -> Vec<AuditEvent> {
        self.store.appended(self.events, self.after)
    }
}

/// How a batch was written (for tests and the benchmark's notes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Path {
    /// One INSERT linked to the known head.
    Linked,
    /// The head was unknown or stale: a transaction under the chain lock.
    Locked,
}

impl AuditConnection {
    pub(crate) fn new(conn: AnyConnection, store: Store) -> AuditConnection {
        AuditConnection {
            conn,
            store,
            head: None,
            linked: true,
        }
    }

    /// Whether batches may be linked to the known head (default) or always take the lock.
    pub fn set_linked(&mut self, linked: bool) {
        self.linked = linked;
    }

    /// [`AuditConnection::commit`], published.
    pub async fn append(&mut self, events: Vec<NewAuditEvent>) -> Result<Vec<AuditEvent>> {
        Ok(self.commit(events).await?.0.publish())
    }

    /// Appends the batch in order and commits it; publishing it is left to the caller.
    pub async fn commit(&mut self, events: Vec<NewAuditEvent>) -> Result<(Committed, Path)> {
        if events.is_empty() {
            let after = Appended::of(&[], &[]);
            let done = Committed {
                events: Vec::new(),
                after,
                store: self.store.clone(),
            };
            return Ok((done, Path::Linked));
        }
        // Known again only once this batch is in.
        let head = self.head.take();
        let linked = match head {
            Some(h) if self.linked && self.store.backend() == Backend::Sqlite => {
                self.append_linked(&events, h).await?
            }
            _ => None,
        };
        let (out, after, path) = match linked {
            Some(out) => {
                let after = Appended::of(&events, &out);
                (out, after, Path::Linked)
            }
            None => {
                let (out, after) = self.append_locked(&events).await?;
                (out, after, Path::Locked)
            }
        };
        if self.store.backend() == Backend::Sqlite {
            self.head = out.last().map(|e| (e.seq, e.hash.clone()));
        }
        let done = Committed {
            events: out,
            after,
            store: self.store.clone(),
        };
        Ok((done, path))
    }

    /// The batch as one INSERT after `head`; None when the head has moved (nothing written).
    async fn append_linked(
        &mut self,
        events: &[NewAuditEvent],
        (seq, hash): (i64, String),
    ) -> Result<Option<Vec<AuditEvent>>> {
        use sqlx::Connection;
        // A connection still counting a transaction would fold the INSERT into it.
        if self.conn.is_in_transaction() {
            return Ok(None);
        }
        let out = audit::link(events, seq, hash, crate::rows::now_ms());
        match audit::insert(&mut self.conn, &out).await {
            Ok(()) => Ok(Some(out)),
            Err(e) if audit::head_moved(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The batch in a transaction under the chain lock, the head read inside it.
    async fn append_locked(
        &mut self,
        events: &[NewAuditEvent],
    ) -> Result<(Vec<AuditEvent>, Appended)> {
        use sqlx::Connection;
        // A batch that failed as a full disk fails may leave this connection counting a
        // transaction (see `db::left_in_transaction`): a fresh one takes its place.
        if self.store.backend() == Backend::Sqlite
            && crate::db::left_in_transaction(&mut self.conn).await
        {
            self.conn = self.store.pool().acquire().await?.detach();
        }
        let mut tx = match self.store.backend() {
            Backend::Sqlite => self.conn.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.conn.begin().await?,
        };
        let appended = self.store.append_in(&mut tx, events).await?;
        tx.commit().await?;
        Ok(appended)
    }
}
