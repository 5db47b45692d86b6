//! Live updates: a typed [`Event`] for every change a browser shows, and the [`Bus`] that
//! carries them — an in-process broadcast, relayed across replicas on PostgreSQL with
//! `LISTEN/NOTIFY` (on SQLite one process is the whole world).
//!
//! Events are hints, not data: they name what changed and whose it is (`owner`, `None`
//! for shared things), so a subscriber can tell whether to look again; it then reads
//! through the service layer, which applies tenancy. Delivery is best effort and bounded:
//! a subscriber that falls behind gets [`Received::Lagged`] and must re-read everything,
//! as it must after [`Event::Resync`] (a relay reconnected and may have missed some).
//!
//! Publishers: audited changes publish [`Event::Audited`] from the store's commit (every
//! audited change, at once); heartbeats publish server and toolbox status moves; the
//! gateway publishes approvals it creates and tool definitions that changed; the metrics
//! flush publishes [`Event::Metrics`]. Tool calls themselves are not published one by one
//! (thousands a second): they reach pages through the metrics.

use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast;
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::gateway::ApprovalStatus;
use toolbelt_model::server::ServerStatus;
use toolbelt_model::toolbox::ToolboxStatus;
use toolbelt_model::{AgentId, ApprovalId, ServerId, ToolboxId, UserId};

/// The PostgreSQL channel events travel on between replicas.
pub const CHANNEL: &str = "toolbelt_events";

/// How many events a subscriber may fall behind before it is told it lagged.
pub const CAPACITY: usize = 1024;

/// Something a page shows changed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A server's observed status moved (its toolbox reported it).
    ServerStatus {
        server: ServerId,
        toolbox: ToolboxId,
        owner: Option<UserId>,
        status: ServerStatus,
    },
    /// A toolbox's status moved, or it reported new system metrics.
    ToolboxStatus {
        toolbox: ToolboxId,
        owner: Option<UserId>,
        status: ToolboxStatus,
    },
    /// An `ask` call is waiting for its agent's owner.
    ApprovalCreated {
        approval: ApprovalId,
        agent: AgentId,
        owner: UserId,
    },
    /// An approval was decided or expired.
    ApprovalResolved {
        approval: ApprovalId,
        owner: UserId,
        status: ApprovalStatus,
    },
    /// A tool's definition changed upstream; it is held until an admin decides.
    ToolChanged { server: ServerId, tool: String },
    /// An audit event was appended: every audited change (a deploy, a grant, a decision…).
    Audited {
        seq: i64,
        action: AuditAction,
        target_kind: TargetKind,
        target: Option<String>,
        owner: Option<UserId>,
    },
    /// Per-minute metrics were written up to this minute (unix minutes).
    Metrics { minute: i64 },
    /// Events may have been missed (a relay reconnected): look at everything again.
    Resync,
}

impl Event {
    /// Whose change this is: `Some(user)` for one member's things, `None` for shared ones.
    pub fn owner(&self) -> Option<&UserId> {
        match self {
            Event::ServerStatus { owner, .. }
            | Event::ToolboxStatus { owner, .. }
            | Event::Audited { owner, .. } => owner.as_ref(),
            Event::ApprovalCreated { owner, .. } | Event::ApprovalResolved { owner, .. } => {
                Some(owner)
            }
            Event::ToolChanged { .. } | Event::Metrics { .. } | Event::Resync => None,
        }
    }
}

/// What the relay sends between processes: the event and who published it (a process
/// ignores its own, which it already broadcast).
#[derive(Serialize, Deserialize)]
struct Envelope {
    origin: String,
    event: Event,
}

/// The in-process broadcast, tagged with this process's id for the relay.
#[derive(Clone)]
pub struct Bus {
    tx: broadcast::Sender<Arc<Event>>,
    origin: Arc<str>,
}

impl Default for Bus {
    fn default() -> Bus {
        Bus::new()
    }
}

impl std::fmt::Debug for Bus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bus").field("origin", &self.origin).finish()
    }
}

/// What a subscriber gets next.
#[derive(Debug, Clone, PartialEq)]
pub enum Received {
    Event(Arc<Event>),
    /// This many events were dropped because the subscriber fell behind.
    Lagged(u64),
    /// The bus is gone (the process is stopping).
    Closed,
}

/// One subscriber's end of the bus.
pub struct Subscription(broadcast::Receiver<Arc<Event>>);

impl Subscription {
    pub async fn recv(&mut self) -> Received {
        match self.0.recv().await {
            Ok(e) => Received::Event(e),
            Err(broadcast::error::RecvError::Lagged(n)) => Received::Lagged(n),
            Err(broadcast::error::RecvError::Closed) => Received::Closed,
        }
    }
}

impl Bus {
    pub fn new() -> Bus {
        let (tx, _) = broadcast::channel(CAPACITY);
        Bus {
            tx,
            origin: toolbelt_model::ids::AgentId::generate()
                .as_str()
                .trim_start_matches("agt_")
                .into(),
        }
    }

    pub fn subscribe(&self) -> Subscription {
        Subscription(self.tx.subscribe())
    }

    /// This process's id on the relay (also the `replica` of the metrics it writes).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// How many subscribers are listening in this process.
    pub fn subscribers(&self) -> usize {
        self.tx.receiver_count()
    }

    /// Delivers to this process's subscribers only.
    pub fn local(&self, event: Event) {
        // No subscriber is not an error: nobody is looking.
        let _ = self.tx.send(Arc::new(event));
    }

    /// The relay's payload for `event` (a NOTIFY payload: well under 8000 bytes).
    pub(crate) fn payload(&self, event: &Event) -> String {
        serde_json::to_string(&Envelope {
            origin: self.origin.to_string(),
            event: event.clone(),
        })
        .unwrap_or_default()
    }

    /// A relayed payload from another process, if it is one (never our own).
    fn relayed(&self, payload: &str) -> Option<Event> {
        let env: Envelope = serde_json::from_str(payload).ok()?;
        (env.origin != *self.origin).then_some(env.event)
    }
}

/// Relays events between replicas: LISTENs on [`CHANNEL`] and rebroadcasts what other
/// processes NOTIFY. Runs until the store closes; reconnects with backoff when the
/// connection drops, and announces [`Event::Resync`] after each reconnect (NOTIFYs sent
/// while it was away are lost). Returns at once on SQLite.
pub async fn relay(store: crate::Store) {
    let Some(url) = store.postgres_url() else {
        return;
    };
    let bus = store.events().clone();
    let mut backoff = Duration::from_millis(200);
    let mut reconnecting = false;
    loop {
        if store.pool().is_closed() {
            return;
        }
        match listen(&url).await {
            Ok(mut listener) => {
                backoff = Duration::from_millis(200);
                if reconnecting {
                    bus.local(Event::Resync);
                }
                loop {
                    match listener.try_recv().await {
                        Ok(Some(n)) => {
                            if let Some(ev) = bus.relayed(n.payload()) {
                                bus.local(ev);
                            }
                        }
                        // The connection dropped and was made again: anything NOTIFYed
                        // in between is gone.
                        Ok(None) => bus.local(Event::Resync),
                        Err(e) => {
                            tracing::warn!(error = %e, "event relay lost its connection");
                            break;
                        }
                    }
                }
            }
            Err(e) => tracing::warn!(error = %e, "event relay cannot listen"),
        }
        reconnecting = true;
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    }
}

async fn listen(url: &str) -> Result<sqlx::postgres::PgListener, sqlx::Error> {
    let mut l = sqlx::postgres::PgListener::connect(url).await?;
    l.listen(CHANNEL).await?;
    Ok(l)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_process_ignores_its_own_relayed_events_but_takes_others() {
        let (a, b) = (Bus::new(), Bus::new());
        let ev = Event::Metrics { minute: 7 };
        let p = a.payload(&ev);
        assert!(p.len() < 8000);
        assert_eq!(a.relayed(&p), None, "its own NOTIFY comes back to it");
        assert_eq!(b.relayed(&p), Some(ev));
        assert_eq!(b.relayed("not json"), None);
    }

    #[tokio::test]
    async fn a_slow_subscriber_is_told_it_lagged() {
        let bus = Bus::new();
        let mut sub = bus.subscribe();
        for i in 0..(CAPACITY as i64 + 5) {
            bus.local(Event::Metrics { minute: i });
        }
        assert_eq!(sub.recv().await, Received::Lagged(5));
        assert!(matches!(sub.recv().await, Received::Event(_)));
    }
}
