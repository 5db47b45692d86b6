//! Durable audit of every call, with group commit: callers hand their event to one
//! writer and wait; the writer commits whatever queued up in one transaction and then
//! answers them all. A tool result is never returned before its event is committed. The
//! writer keeps a connection of its own (no pool acquire per batch), replaced after a
//! failure; on SQLite that connection remembers the chain's head, so a batch is one
//! INSERT (`toolbelt_store::AuditConnection`). Metrics and live-update notes of a batch
//! are published after its callers were answered, off their wait.

use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use toolbelt_model::audit::NewAuditEvent;
use toolbelt_store::{Store, StoreError};

#[derive(Debug, Clone, thiserror::Error)]
pub enum AuditError {
    /// The batch the event was in did not commit (every event of it gets this error).
    #[error("{0}")]
    Write(Arc<StoreError>),
    #[error("the audit writer stopped")]
    Stopped,
}

type Job = (NewAuditEvent, oneshot::Sender<Result<i64, AuditError>>);

#[derive(Clone)]
pub struct AuditWriter {
    tx: mpsc::Sender<Job>,
}

/// The most events committed together.
const BATCH: usize = 256;

impl AuditWriter {
    /// `linked`: batches as one INSERT after the known head (see the module's comment).
    pub fn start(store: Store, linked: bool) -> AuditWriter {
        let (tx, mut rx) = mpsc::channel::<Job>(4096);
        tokio::spawn(async move {
            let mut conn: Option<toolbelt_store::AuditConnection> = None;
            while let Some(first) = rx.recv().await {
                let mut jobs = vec![first];
                while jobs.len() < BATCH {
                    match rx.try_recv() {
                        Ok(j) => jobs.push(j),
                        Err(_) => break,
                    }
                }
                let (events, acks): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
                let written = match conn.as_mut() {
                    Some(c) => c.commit(events).await,
                    None => match store.audit_connection().await {
                        Ok(mut c) => {
                            c.set_linked(linked);
                            let r = c.commit(events).await;
                            conn = Some(c);
                            r
                        }
                        Err(e) => Err(e),
                    },
                };
                if written.is_err() {
                    // The next batch starts on a fresh connection.
                    conn = None;
                }
                match written {
                    Ok((done, _)) => {
                        for (ack, ev) in acks.into_iter().zip(&done.events) {
                            let _ = ack.send(Ok(ev.seq));
                        }
                        done.publish();
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "audit write failed");
                        let e = AuditError::Write(Arc::new(e));
                        for ack in acks {
                            let _ = ack.send(Err(e.clone()));
                        }
                    }
                }
            }
        });
        AuditWriter { tx }
    }

    /// Appends the event and returns once it is committed (its sequence number).
    pub async fn record(&self, ev: NewAuditEvent) -> Result<i64, AuditError> {
        let (ack, done) = oneshot::channel();
        self.tx
            .send((ev, ack))
            .await
            .map_err(|_| AuditError::Stopped)?;
        done.await.map_err(|_| AuditError::Stopped)?
    }
}
