//! Connecting, migrating, and transactions that carry an audit event.

use crate::audit_batch::AuditConnection;
use crate::events::{Bus, Event};
use crate::metrics::{CallSink, Meter};
use crate::{Result, audit};
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyConnection, AnyPool, Executor, Transaction};
use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, RwLock};
use std::time::Duration;
use toolbelt_model::audit::{AuditAction, AuditEvent, NewAuditEvent, TargetKind};

static SQLITE_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES_MIGRATIONS: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn of_url(url: &str) -> Option<Backend> {
        if url.starts_with("sqlite:") {
            Some(Backend::Sqlite)
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            Some(Backend::Postgres)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    pub(crate) fn migrator(self) -> &'static sqlx::migrate::Migrator {
        match self {
            Backend::Sqlite => &SQLITE_MIGRATIONS,
            Backend::Postgres => &POSTGRES_MIGRATIONS,
        }
    }
}

#[derive(Clone)]
pub struct StoreOptions {
    pub max_connections: u32,
    /// SQLite: `synchronous=FULL` (fsync at every commit, survives power loss) instead of
    /// `NORMAL` (survives a process crash; WAL synced at checkpoints).
    pub fsync_every_commit: bool,
    /// PostgreSQL: run migrations as this (owner) role and serve as the URL's role, which
    /// then may only SELECT and INSERT `audit_events` (see [`crate::roles`]).
    pub migrate_url: Option<String>,
}

impl std::fmt::Debug for StoreOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The migration URL carries the owner's password.
        f.debug_struct("StoreOptions")
            .field("max_connections", &self.max_connections)
            .field("fsync_every_commit", &self.fsync_every_commit)
            .field(
                "migrate_url",
                &self.migrate_url.as_ref().map(|_| "[redacted]"),
            )
            .finish()
    }
}

impl Default for StoreOptions {
    fn default() -> Self {
        StoreOptions {
            max_connections: 8,
            fsync_every_commit: false,
            migrate_url: None,
        }
    }
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// Bumped after every audited change (grants, tokens, agents, servers, toolboxes…):
    /// caches of authorization state (the gateway's) compare it to know they are stale.
    epoch: Arc<AtomicU64>,
    /// Live updates for pages (see [`crate::events`]).
    events: Bus,
    /// Call metrics of this process, not yet written (see [`crate::metrics`]).
    meter: Arc<Meter>,
    /// Fed the same samples as the meter (the Prometheus exposition), once set.
    call_sink: Arc<RwLock<Option<Arc<dyn CallSink>>>>,
    /// The database URL, on PostgreSQL (the event relay LISTENs on its own connection).
    postgres_url: Option<Arc<str>>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Store {
    /// Connects (creating a SQLite file if needed) and applies migrations.
    pub async fn open(url: &str, opts: StoreOptions) -> Result<Store> {
        static DRIVERS: Once = Once::new();
        DRIVERS.call_once(sqlx::any::install_default_drivers);
        let backend = Backend::of_url(url).ok_or_else(|| {
            crate::StoreError::Db(sqlx::Error::Configuration(
                "database URL must start with sqlite: or postgres:".into(),
            ))
        })?;
        let mut url = url.to_string();
        if backend == Backend::Sqlite && !url.contains("mode=") && !url.contains(":memory:") {
            url.push_str(if url.contains('?') {
                "&mode=rwc"
            } else {
                "?mode=rwc"
            });
        }
        let postgres_url = (backend == Backend::Postgres).then(|| Arc::from(url.as_str()));
        let connect = AnyConnectOptions::from_str(&url)?;
        let sync = if opts.fsync_every_commit {
            "PRAGMA synchronous = FULL"
        } else {
            "PRAGMA synchronous = NORMAL"
        };
        let pool = AnyPoolOptions::new()
            .max_connections(opts.max_connections)
            // An in-process SQLite connection cannot have died between uses: no ping on
            // every acquire (a round trip to its worker thread).
            .test_before_acquire(backend == Backend::Postgres)
            .acquire_timeout(Duration::from_secs(10))
            .before_acquire(move |conn, _| {
                Box::pin(async move {
                    Ok(backend != Backend::Sqlite || !left_in_transaction(conn).await)
                })
            })
            .after_connect(move |conn, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        conn.execute("PRAGMA journal_mode = WAL").await?;
                        conn.execute(sync).await?;
                        conn.execute("PRAGMA foreign_keys = ON").await?;
                        conn.execute("PRAGMA busy_timeout = 10000").await?;
                    }
                    Ok(())
                })
            })
            .connect_with(connect)
            .await?;
        match &opts.migrate_url {
            Some(owner) => crate::roles::migrate_as_owner(backend, &pool, owner).await?,
            None => backend.migrator().run(&pool).await?,
        }
        Ok(Store {
            pool,
            backend,
            epoch: Arc::new(AtomicU64::new(1)),
            events: Bus::new(),
            meter: Arc::new(Meter::default()),
            call_sink: Arc::default(),
            postgres_url,
        })
    }

    /// The live-update bus of this process.
    pub fn events(&self) -> &Bus {
        &self.events
    }

    /// This process's call metrics, not yet written.
    pub fn meter(&self) -> &Meter {
        &self.meter
    }

    /// Every finished call from now on also goes to `sink`, at the point the [`Meter`]
    /// sees it (replacing an earlier sink).
    pub fn set_call_sink(&self, sink: Arc<dyn CallSink>) {
        *self.call_sink.write().unwrap_or_else(|p| p.into_inner()) = Some(sink);
    }

    /// The database URL when it is PostgreSQL (for the event relay's own connection).
    pub fn postgres_url(&self) -> Option<String> {
        self.postgres_url.as_deref().map(str::to_string)
    }

    /// Publishes an event to this process's subscribers and, on PostgreSQL, to every other
    /// replica's. Best effort: a failed NOTIFY is logged (pages then catch up at their next
    /// change or reload), never an error for the change that was made.
    pub async fn publish(&self, event: Event) {
        if self.backend == Backend::Postgres {
            let payload = self.events.payload(&event);
            let sent = match self.pool.acquire().await {
                Ok(mut c) => notify(&mut c, &payload).await,
                Err(e) => Err(e),
            };
            if let Err(e) = sent {
                tracing::warn!(error = %e, "could not relay an event to other replicas");
            }
        }
        self.events.local(event);
    }

    /// The change epoch of this process (see the field's comment).
    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Marks authorization caches stale (for changes made outside an audited transaction).
    pub fn bump_epoch(&self) {
        self.epoch.fetch_add(1, Ordering::AcqRel);
    }

    /// Appends several audit events in one transaction (group commit for tool calls).
    /// Does not bump the epoch: recording a call changes no authorization state.
    ///
    /// Tool calls feed this process's [`Meter`]; other events (approval requests…) are
    /// published as [`Event::Audited`]. Calls themselves are not published one by one.
    pub async fn append_audit_batch(&self, events: Vec<NewAuditEvent>) -> Result<Vec<AuditEvent>> {
        let mut tx = self.begin().await?;
        let (out, after) = self.append_in(&mut tx, &events).await?;
        tx.commit().await?;
        Ok(self.appended(out, after))
    }

    /// The batch appended inside the caller's transaction (chain lock taken here).
    pub(crate) async fn append_in(
        &self,
        tx: &mut AnyConnection,
        events: &[NewAuditEvent],
    ) -> Result<(Vec<AuditEvent>, Appended)> {
        audit::lock_head(tx, self.backend).await?;
        let out = audit::append_many_locked(tx, events).await?;
        let after = Appended::of(events, &out);
        if self.backend == Backend::Postgres {
            for n in &after.notes {
                notify(tx, &self.events.payload(n)).await?;
            }
        }
        Ok((out, after))
    }

    /// After the commit: the metrics samples and the live-update notes of a batch.
    pub(crate) fn appended(&self, out: Vec<AuditEvent>, after: Appended) -> Vec<AuditEvent> {
        let at = crate::rows::now_ms();
        let sink = self
            .call_sink
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        for s in &after.samples {
            self.meter.record(at, s);
            if let Some(k) = &sink {
                k.record(s);
            }
        }
        for n in after.notes {
            self.events.local(n);
        }
        out
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// A connection of its own for an audit writer, out of the pool: no acquire and no
    /// liveness check per batch.
    pub async fn audit_connection(&self) -> Result<AuditConnection> {
        Ok(AuditConnection::new(
            self.pool.acquire().await?.detach(),
            self.clone(),
        ))
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A pooled connection for reads and single-statement writes.
    pub async fn conn(&self) -> Result<sqlx::pool::PoolConnection<Any>> {
        Ok(self.pool.acquire().await?)
    }

    /// A plain transaction (no audit event).
    pub async fn begin(&self) -> Result<Transaction<'static, Any>> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// A transaction that ends by appending one audit event and committing both together.
    /// It takes the audit chain's lock first (a row lock on PostgreSQL, the write lock on
    /// SQLite) so the chain stays linear across connections and replicas.
    pub async fn begin_audited(&self) -> Result<AuditedTx> {
        let mut tx = self.begin().await?;
        audit::lock_head(&mut tx, self.backend).await?;
        Ok(AuditedTx {
            tx,
            epoch: self.epoch.clone(),
            events: self.events.clone(),
            relay: self.backend == Backend::Postgres,
        })
    }

    /// Database reachable and every migration applied.
    pub async fn ready(&self) -> Result<()> {
        let mut c = self.conn().await?;
        let applied: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations WHERE success = TRUE")
                .fetch_one(&mut *c)
                .await?;
        let want = self.backend.migrator().iter().count() as i64;
        if applied < want {
            return Err(crate::StoreError::Corrupt(format!(
                "{applied} of {want} migrations applied"
            )));
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// A transaction whose commit appends its audit event: the change and its record land
/// together or not at all.
pub struct AuditedTx {
    tx: Transaction<'static, Any>,
    epoch: Arc<AtomicU64>,
    events: Bus,
    /// NOTIFY other replicas (PostgreSQL), in the transaction: only a committed change is
    /// announced.
    relay: bool,
}

impl AuditedTx {
    /// Appends the event, commits, and publishes [`Event::Audited`].
    pub async fn commit(mut self, event: NewAuditEvent) -> Result<AuditEvent> {
        let (action, kind) = (event.action, event.target_kind);
        let ev = audit::append_locked(&mut self.tx, &event).await?;
        let note = audited(&ev, action, kind);
        if self.relay {
            notify(&mut self.tx, &self.events.payload(&note)).await?;
        }
        self.tx.commit().await?;
        self.epoch.fetch_add(1, Ordering::AcqRel);
        self.events.local(note);
        Ok(ev)
    }

    /// Abandons every change (also what dropping it does).
    pub async fn rollback(self) -> Result<()> {
        Ok(self.tx.rollback().await?)
    }
}

impl std::ops::Deref for AuditedTx {
    type Target = AnyConnection;
    fn deref(&self) -> &AnyConnection {
        &self.tx
    }
}

impl std::ops::DerefMut for AuditedTx {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        &mut self.tx
    }
}

/// The live-update note of an appended audit event.
fn audited(e: &AuditEvent, action: AuditAction, target_kind: TargetKind) -> Event {
    Event::Audited {
        seq: e.seq,
        action,
        target_kind,
        target: e.target_id.clone(),
        owner: e.owner_id.clone(),
    }
}

/// `NOTIFY` on the events channel (PostgreSQL only): delivered at commit.
async fn notify(c: &mut AnyConnection, payload: &str) -> std::result::Result<(), sqlx::Error> {
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(crate::events::CHANNEL)
        .bind(payload.to_string())
        .execute(&mut *c)
        .await?;
    Ok(())
}

/// Whether a SQLite connection is stuck in a transaction sqlx cannot end. When a COMMIT
/// fails with SQLITE_FULL or an I/O error, SQLite may already have rolled the transaction
/// back itself; the ROLLBACK sqlx then queues fails ("no transaction is active"), its
/// depth count stays at one, and every later `BEGIN IMMEDIATE` on that connection is
/// refused — one full disk would poison the pool for good. A depth of zero costs nothing to
/// check; otherwise a ping lets the queued ROLLBACK run first, and a connection still
/// counting a transaction is closed instead of used.
pub(crate) async fn left_in_transaction(conn: &mut AnyConnection) -> bool {
    use sqlx::Connection;
    if !conn.is_in_transaction() {
        return false;
    }
    conn.ping().await.is_err() || conn.is_in_transaction()
}

/// What a batch leaves to do once it is committed.
pub(crate) struct Appended {
    samples: Vec<crate::metrics::Sample>,
    notes: Vec<Event>,
}

impl Appended {
    /// The metrics samples of the batch's tool calls and the live-update notes of its
    /// other events (agent requests are not published one by one).
    pub(crate) fn of(events: &[NewAuditEvent], out: &[AuditEvent]) -> Appended {
        Appended {
            samples: events.iter().filter_map(Meter::sample_of).collect(),
            notes: out
                .iter()
                .zip(events)
                .filter(|(_, ev)| !ev.action.is_agent_request())
                .map(|(e, ev)| audited(e, ev.action, ev.target_kind))
                .collect(),
        }
    }
}
