//! Metrics history: per-minute rollups that charts read, so they survive restarts and
//! agree across replicas.
//!
//! - **Calls** per minute, server and tool: calls, errors, p50 and p99 latency. Each
//!   process writes its own rows (`replica`), so replicas never overwrite each other;
//!   reads add calls and errors up and combine percentiles (p50: the call-weighted mean,
//!   p99: the largest — exact for one tool on one replica, an estimate otherwise). Fed by
//!   the [`Meter`] (every `tool.call` audit event the store appends) through [`flush`];
//!   any other source of the same rows (the gateway's own histograms) calls
//!   [`write_calls`].
//! - **Resources** per minute of a server or a toolbox: CPU and memory from heartbeats
//!   (the last sample of a minute wins).
//!
//! Rows older than the retention (7 days by default) are pruned by [`run`].

mod meter;

pub use meter::{CallSink, Meter, Sample};

use crate::events::Event;
use crate::rows::int;
use crate::{Result, Store};
use sqlx::{AnyConnection, Row};
use std::time::Duration;
use toolbelt_model::{Scope, ServerId, ToolboxId};

/// How long rollups are kept unless configured otherwise.
pub const DEFAULT_RETENTION: Duration = Duration::from_secs(7 * 24 * 3600);

/// The minute (unix minutes) of a unix-milliseconds time.
pub fn minute_of(ms: i64) -> i64 {
    ms.div_euclid(60_000)
}

/// The current minute.
pub fn this_minute() -> i64 {
    minute_of(crate::rows::now_ms())
}

/// One minute of one tool's calls, as one process saw them.
#[derive(Debug, Clone, PartialEq)]
pub struct CallMinute {
    pub minute: i64,
    pub server_id: ServerId,
    /// The server's own tool name.
    pub tool: String,
    pub calls: u64,
    pub errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

/// One minute of calls, all tools and replicas combined.
#[derive(Debug, Clone, PartialEq)]
pub struct CallPoint {
    pub minute: i64,
    pub calls: u64,
    pub errors: u64,
    pub p50_us: u64,
    pub p99_us: u64,
}

/// Whose resources a sample measures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    Server(ServerId),
    Toolbox(ToolboxId),
}

impl Subject {
    fn parts(&self) -> (&'static str, &str) {
        match self {
            Subject::Server(s) => ("server", s.as_str()),
            Subject::Toolbox(t) => ("toolbox", t.as_str()),
        }
    }
}

/// CPU and memory of a server or toolbox in one minute.
#[derive(Debug, Clone, PartialEq)]
pub struct ResourcePoint {
    pub minute: i64,
    pub cpu_percent: Option<f64>,
    pub memory_bytes: Option<u64>,
}

/// Writes (or rewrites: the current minute is written again as it fills) this process's
/// rows.
pub async fn write_calls(c: &mut AnyConnection, replica: &str, rows: &[CallMinute]) -> Result<()> {
    for r in rows {
        sqlx::query(
            "INSERT INTO metric_calls (minute, server_id, tool, replica, calls, errors, p50_us, p99_us)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
             ON CONFLICT (minute, server_id, tool, replica) DO UPDATE SET
               calls = excluded.calls, errors = excluded.errors,
               p50_us = excluded.p50_us, p99_us = excluded.p99_us",
        )
        .bind(r.minute)
        .bind(r.server_id.to_string())
        .bind(r.tool.clone())
        .bind(replica.to_string())
        .bind(r.calls as i64)
        .bind(r.errors as i64)
        .bind(r.p50_us as i64)
        .bind(r.p99_us as i64)
        .execute(&mut *c)
        .await?;
    }
    Ok(())
}

fn point(r: &sqlx::any::AnyRow) -> Result<CallPoint> {
    Ok(CallPoint {
        minute: int(r, "minute")?,
        calls: int(r, "calls")?.max(0) as u64,
        errors: int(r, "errors")?.max(0) as u64,
        p50_us: int(r, "p50_us")?.max(0) as u64,
        p99_us: int(r, "p99_us")?.max(0) as u64,
    })
}

/// A server's calls per minute since `since` (unix minutes), oldest first.
pub async fn server_calls(
    c: &mut AnyConnection,
    server: &ServerId,
    since: i64,
) -> Result<Vec<CallPoint>> {
    let rows = sqlx::query(
        "SELECT minute, CAST(SUM(calls) AS BIGINT) AS calls, CAST(SUM(errors) AS BIGINT) AS errors,
                CAST(CASE WHEN SUM(calls) > 0 THEN SUM(p50_us * calls) / SUM(calls) ELSE 0 END
                     AS BIGINT) AS p50_us,
                CAST(MAX(p99_us) AS BIGINT) AS p99_us
         FROM metric_calls WHERE server_id = $1 AND minute >= $2
         GROUP BY minute ORDER BY minute",
    )
    .bind(server.to_string())
    .bind(since)
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(point).collect()
}

/// Calls and errors since `since` on the servers `scope` can see.
pub async fn totals(c: &mut AnyConnection, scope: &Scope, since: i64) -> Result<(u64, u64)> {
    let r = sqlx::query(
        "SELECT CAST(COALESCE(SUM(m.calls), 0) AS BIGINT) AS calls,
                CAST(COALESCE(SUM(m.errors), 0) AS BIGINT) AS errors
         FROM metric_calls m
         JOIN servers s ON s.id = m.server_id
         JOIN toolboxes t ON t.id = s.toolbox_id
         WHERE m.minute >= $1 AND (t.owner_id IS NULL OR t.owner_id = $2 OR $3 = 1)",
    )
    .bind(since)
    .bind(scope.user_id.to_string())
    .bind(scope.admin_flag())
    .fetch_one(&mut *c)
    .await?;
    Ok((
        int(&r, "calls")?.max(0) as u64,
        int(&r, "errors")?.max(0) as u64,
    ))
}

/// Records one minute's CPU and memory of a server or toolbox (a later sample of the same
/// minute replaces it).
pub async fn record_resources(
    c: &mut AnyConnection,
    minute: i64,
    subject: &Subject,
    cpu_percent: Option<f64>,
    memory_bytes: Option<u64>,
) -> Result<()> {
    let (kind, id) = subject.parts();
    sqlx::query(
        "INSERT INTO metric_resources (subject_kind, subject_id, minute, cpu_percent, memory_bytes)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (subject_kind, subject_id, minute) DO UPDATE SET
           cpu_percent = excluded.cpu_percent, memory_bytes = excluded.memory_bytes",
    )
    .bind(kind)
    .bind(id.to_string())
    .bind(minute)
    .bind(cpu_percent)
    .bind(memory_bytes.map(|m| m as i64))
    .execute(&mut *c)
    .await?;
    Ok(())
}

/// A server's or toolbox's CPU and memory per minute since `since`, oldest first.
pub async fn resources(
    c: &mut AnyConnection,
    subject: &Subject,
    since: i64,
) -> Result<Vec<ResourcePoint>> {
    let (kind, id) = subject.parts();
    let rows = sqlx::query(
        "SELECT minute, cpu_percent, memory_bytes FROM metric_resources
         WHERE subject_kind = $1 AND subject_id = $2 AND minute >= $3 ORDER BY minute",
    )
    .bind(kind)
    .bind(id.to_string())
    .bind(since)
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(ResourcePoint {
                minute: int(r, "minute")?,
                cpu_percent: r
                    .try_get::<Option<f64>, _>("cpu_percent")
                    .map_err(|e| crate::StoreError::Corrupt(format!("cpu_percent: {e}")))?,
                memory_bytes: crate::rows::opt_int(r, "memory_bytes")?.map(|m| m.max(0) as u64),
            })
        })
        .collect()
}

/// Deletes rollups (and status history) from before `before` (unix minutes).
pub async fn prune(c: &mut AnyConnection, before: i64) -> Result<u64> {
    let mut n = 0;
    for sql in [
        "DELETE FROM metric_calls WHERE minute < $1",
        "DELETE FROM metric_resources WHERE minute < $1",
    ] {
        n += sqlx::query(sql)
            .bind(before)
            .execute(&mut *c)
            .await?
            .rows_affected();
    }
    n += crate::history::prune(c, before * 60_000).await?;
    Ok(n)
}

/// Writes what the [`Meter`] holds now; publishes [`Event::Metrics`] when it wrote any.
pub async fn flush(store: &Store) -> Result<usize> {
    let now = this_minute();
    let rows = store.meter().drain(now);
    if rows.is_empty() {
        return Ok(0);
    }
    let mut tx = store.begin().await?;
    write_calls(&mut tx, store.events().origin(), &rows).await?;
    tx.commit().await?;
    store.publish(Event::Metrics { minute: now }).await;
    Ok(rows.len())
}

/// How often the metrics task writes and prunes.
#[derive(Debug, Clone)]
pub struct MetricsOptions {
    /// Keep rollups this long.
    pub retention: Duration,
    /// Write the current minute this often (charts see the minute as it fills).
    pub flush_every: Duration,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        MetricsOptions {
            retention: DEFAULT_RETENTION,
            flush_every: Duration::from_secs(10),
        }
    }
}

/// The background task: flushes the meter every `flush_every`, prunes once a minute.
pub async fn run(store: Store, opts: MetricsOptions) {
    let retention_min = (opts.retention.as_secs() / 60).max(1) as i64;
    let mut last_prune = i64::MIN;
    loop {
        tokio::time::sleep(opts.flush_every).await;
        if store.pool().is_closed() {
            return;
        }
        if let Err(e) = flush(&store).await {
            tracing::warn!(error = %e, "could not write call metrics");
        }
        let now = this_minute();
        if now != last_prune {
            last_prune = now;
            let mut c = match store.conn().await {
                Ok(c) => c,
                Err(_) => continue,
            };
            match prune(&mut c, now - retention_min).await {
                Ok(n) if n > 0 => tracing::debug!(rows = n, "pruned old metrics"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "could not prune metrics"),
            }
        }
    }
}
