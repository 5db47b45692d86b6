//! The audit chain: append (under the chain lock), list with filters, verify.

use crate::rows::{int, now_ms, opt_text, parsed, text, ts};
use crate::{Backend, Result, StoreError};
use sqlx::AnyConnection;
use sqlx::any::AnyRow;
use toolbelt_model::audit::{
    ActorKind, AuditAction, AuditEvent, ChainFields, GENESIS_HASH, NewAuditEvent, Outcome,
    VerifyReport,
};
use toolbelt_model::audit_checkpoint::Expected;
use toolbelt_model::{Page, Scope, UserId, canonical};

/// Takes the chain lock for the rest of the transaction. SQLite transactions already hold
/// the write lock (`BEGIN IMMEDIATE`); PostgreSQL needs the head row locked.
pub(crate) async fn lock_head(c: &mut AnyConnection, backend: Backend) -> Result<()> {
    if backend == Backend::Postgres {
        sqlx::query("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE")
            .fetch_one(&mut *c)
            .await?;
    }
    Ok(())
}

/// Appends one event. The caller holds the chain lock (an [`crate::AuditedTx`]).
pub(crate) async fn append_locked(c: &mut AnyConnection, ev: &NewAuditEvent) -> Result<AuditEvent> {
    let mut v = append_many_locked(c, std::slice::from_ref(ev)).await?;
    Ok(v.pop().expect("one event in, one out"))
}

/// Appends events in order with two statements whatever their number (read the head,
/// insert every row; the `audit_events_link` trigger checks each row against the head and
/// moves it): a group commit costs about what one event does. The caller holds the chain
/// lock.
pub(crate) async fn append_many_locked(
    c: &mut AnyConnection,
    evs: &[NewAuditEvent],
) -> Result<Vec<AuditEvent>> {
    if evs.is_empty() {
        return Ok(Vec::new());
    }
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(&mut *c)
        .await?;
    let out = link(evs, int(&head, "seq")?, text(&head, "hash")?, now_ms());
    insert(c, &out).await?;
    Ok(out)
}

/// One multi-row INSERT of linked rows. Fails with [`HEAD_MOVED`] (and writes nothing)
/// when the first row does not extend the head.
pub(crate) async fn insert(c: &mut AnyConnection, rows: &[AuditEvent]) -> Result<()> {
    let mut sql = String::with_capacity(INSERT_COLUMNS.len() + rows.len() * 80);
    sql.push_str(INSERT_COLUMNS);
    sql.push_str(" VALUES ");
    row_placeholders(&mut sql, rows.len());
    // Built from placeholders only; every value is bound.
    let done = bind_rows(sqlx::query(sqlx::AssertSqlSafe(sql)), rows)
        .execute(&mut *c)
        .await?;
    if done.rows_affected() != rows.len() as u64 {
        return Err(StoreError::Conflict(format!(
            "{} of {} audit rows written",
            done.rows_affected(),
            rows.len()
        )));
    }
    Ok(())
}

/// The `audit_events_link` trigger's refusal: a row did not extend the chain's head
/// (another writer appended since the head was read).
pub(crate) const HEAD_MOVED: &str = "audit chain head moved";

/// Whether `e` is the trigger's [`HEAD_MOVED`] refusal.
pub(crate) fn head_moved(e: &StoreError) -> bool {
    match e {
        StoreError::Db(sqlx::Error::Database(d)) => d.message().contains(HEAD_MOVED),
        _ => false,
    }
}

/// The events as the rows that extend the chain after `(prev_seq, prev_hash)`, all
/// stamped `ts_ms`: sequence numbers in order, each row's hash over its fields and the
/// previous row's hash.
pub(crate) fn link(
    evs: &[NewAuditEvent],
    prev_seq: i64,
    mut prev_hash: String,
    ts_ms: i64,
) -> Vec<AuditEvent> {
    let mut out = Vec::with_capacity(evs.len());
    for (seq, ev) in (prev_seq + 1..).zip(evs) {
        let detail = canonical::to_string(&ev.detail);
        let owner = ev.owner_id.as_ref().map(|o| o.as_str().to_string());
        let fields = ChainFields {
            seq,
            ts_ms,
            actor_kind: ev.actor_kind.as_str(),
            actor_id: ev.actor_id.as_deref(),
            owner_id: owner.as_deref(),
            action: ev.action.as_str(),
            target_kind: ev.target_kind.as_str(),
            target_id: ev.target_id.as_deref(),
            outcome: ev.outcome.as_str(),
            detail: &detail,
        };
        let hash = fields.hash(&prev_hash);
        out.push(AuditEvent {
            seq,
            ts: toolbelt_model::ts_from_ms(ts_ms),
            actor_kind: ev.actor_kind,
            actor_id: ev.actor_id.clone(),
            owner_id: ev.owner_id.clone(),
            action: ev.action.as_str().to_string(),
            target_kind: ev.target_kind.as_str().to_string(),
            target_id: ev.target_id.clone(),
            outcome: ev.outcome,
            detail,
            prev_hash: std::mem::replace(&mut prev_hash, hash.clone()),
            hash,
        });
    }
    out
}

/// The columns of an audit row, in the order [`bind_rows`] binds them.
const INSERT_COLUMNS: &str = "INSERT INTO audit_events (seq, ts, actor_kind, \
    actor_id, owner_id, action, target_kind, target_id, outcome, detail, prev_hash, hash)";

/// Parameters bound per row.
const ROW_PARAMS: usize = 12;

/// `($1, …, $12), ($13, …)` for `rows` rows. 12 parameters a row stays far below both
/// backends' limits for the writer's batches (at most 256 events).
fn row_placeholders(sql: &mut String, rows: usize) {
    use std::fmt::Write;
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push('(');
        for k in 1..=ROW_PARAMS {
            if k > 1 {
                sql.push_str(", ");
            }
            let _ = write!(sql, "${}", i * ROW_PARAMS + k);
        }
        sql.push(')');
    }
}

/// Binds the rows' values in [`INSERT_COLUMNS`] order.
fn bind_rows<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    rows: &[AuditEvent],
) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    for e in rows {
        q = q
            .bind(e.seq)
            .bind(e.ts.timestamp_millis())
            .bind(e.actor_kind.as_str())
            .bind(e.actor_id.clone())
            .bind(e.owner_id.as_ref().map(|o| o.as_str().to_string()))
            .bind(e.action.clone())
            .bind(e.target_kind.clone())
            .bind(e.target_id.clone())
            .bind(e.outcome.as_str())
            .bind(e.detail.clone())
            .bind(e.prev_hash.clone())
            .bind(e.hash.clone());
    }
    q
}

fn event(r: &AnyRow) -> Result<AuditEvent> {
    Ok(AuditEvent {
        seq: int(r, "seq")?,
        ts: ts(r, "ts")?,
        actor_kind: parsed(r, "actor_kind", ActorKind::parse)?,
        actor_id: opt_text(r, "actor_id")?,
        owner_id: opt_text(r, "owner_id")?.map(UserId::from_db),
        action: text(r, "action")?,
        target_kind: text(r, "target_kind")?,
        target_id: opt_text(r, "target_id")?,
        outcome: parsed(r, "outcome", Outcome::parse)?,
        detail: text(r, "detail")?,
        prev_hash: text(r, "prev_hash")?,
        hash: text(r, "hash")?,
    })
}

/// Filters of `GET /api/v1/audit`; every field optional.
#[derive(Debug, Default, Clone)]
pub struct Filter {
    pub actor_id: Option<String>,
    pub action: Option<String>,
    pub target_id: Option<String>,
    /// Events whose actor or target is this id, or whose detail names it (an agent's
    /// whole story: its grants and tokens too). Ids are unique, so the match is exact.
    pub involving: Option<String>,
    pub outcome: Option<Outcome>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
}

/// Newest first. Members see the events of their own things and their own actions.
///
/// The WHERE clause holds only the filters given (not `$n IS NULL OR …` for each), so
/// the planner can walk the `(action, seq)`, `(actor_id, seq)` or `(owner_id, seq)`
/// index newest first instead of scanning the whole log for a filter that matches little.
/// Parameters are numbered once and may be used in several places.
pub async fn list(
    c: &mut AnyConnection,
    scope: &Scope,
    f: &Filter,
    limit: u32,
    before_seq: Option<i64>,
) -> Result<Page<AuditEvent>> {
    let mut q = Where::default();
    if !scope.is_admin() {
        let me = scope.user_id.as_str().to_string();
        let (a, b) = (q.text(me.clone()), q.text(me));
        q.cond(format!("(owner_id = {a} OR actor_id = {b})"));
    }
    if let Some(actor) = &f.actor_id {
        let p = q.text(actor.clone());
        q.cond(format!("actor_id = {p}"));
    }
    if let Some(target) = &f.target_id {
        let p = q.text(target.clone());
        q.cond(format!("target_id = {p}"));
    }
    if let Some(o) = f.outcome {
        let p = q.text(o.as_str().to_string());
        q.cond(format!("outcome = {p}"));
    }
    if let Some(ms) = f.since_ms {
        let p = q.int(ms);
        q.cond(format!("ts >= {p}"));
    }
    if let Some(ms) = f.until_ms {
        let p = q.int(ms);
        q.cond(format!("ts < {p}"));
    }
    if let Some(seq) = before_seq {
        let p = q.int(seq);
        q.cond(format!("seq < {p}"));
    }
    if let Some(id) = &f.involving {
        let (a, b, d) = (
            q.text(id.clone()),
            q.text(id.clone()),
            q.text(format!("%\"{id}\"%")),
        );
        q.cond(format!(
            "(actor_id = {a} OR target_id = {b} OR detail LIKE {d})"
        ));
    }
    let lim = q.int(i64::from(limit) + 1);
    let sql = match &f.action {
        None => format!(
            "SELECT * FROM audit_events{} ORDER BY seq DESC LIMIT {lim}",
            q.clause(None)
        ),
        // An action and those under it (`agent` → `agent.create`, …): one branch per
        // action, each the newest `lim` of its `(action, seq)` index range, merged. A
        // single range would make the database sort every match (all 100,000 for
        // `tool`), a scan in seq order would read the whole log for a rare action.
        Some(action) => {
            let prefix = format!("{action}.");
            let mut actions = vec![action.clone()];
            actions.extend(
                AuditAction::ALL
                    .iter()
                    .map(|a| a.as_str().to_string())
                    .filter(|a| a.starts_with(&prefix)),
            );
            let branches: Vec<String> = actions
                .into_iter()
                .enumerate()
                .map(|(i, a)| {
                    let p = q.text(a);
                    format!(
                        "SELECT * FROM (SELECT * FROM audit_events{} ORDER BY seq DESC \
                         LIMIT {lim}) AS b{i}",
                        q.clause(Some(format!("action = {p}")))
                    )
                })
                .collect();
            format!(
                "{} ORDER BY seq DESC LIMIT {lim}",
                branches.join(" UNION ALL ")
            )
        }
    };
    // Safe: the text is ours; every value is a bound parameter.
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql));
    for b in q.binds {
        query = match b {
            Bind::Text(t) => query.bind(t),
            Bind::Int(i) => query.bind(i),
        };
    }
    let rows = query.fetch_all(&mut *c).await?;
    let events = rows.iter().map(event).collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(events, limit, |e| e.seq.to_string()))
}

enum Bind {
    Text(String),
    Int(i64),
}

/// A WHERE clause being built: conditions and their numbered parameters.
#[derive(Default)]
struct Where {
    conds: Vec<String>,
    binds: Vec<Bind>,
}

impl Where {
    fn text(&mut self, v: String) -> String {
        self.binds.push(Bind::Text(v));
        format!("${}", self.binds.len())
    }

    fn int(&mut self, v: i64) -> String {
        self.binds.push(Bind::Int(v));
        format!("${}", self.binds.len())
    }

    fn cond(&mut self, c: String) {
        self.conds.push(c);
    }

    /// ` WHERE …` of the conditions and `extra`, or nothing.
    fn clause(&self, extra: Option<String>) -> String {
        let all: Vec<&str> = self
            .conds
            .iter()
            .map(String::as_str)
            .chain(extra.as_deref())
            .collect();
        if all.is_empty() {
            String::new()
        } else {
            format!(" WHERE {}", all.join(" AND "))
        }
    }
}

/// Walks the whole chain in order: contiguous sequence numbers, each `prev_hash` equal to
/// the previous row's hash, each hash recomputed from its row, and the last row equal to
/// the head kept in `audit_head`. Names the first row that fails.
pub async fn verify(c: &mut AnyConnection) -> Result<VerifyReport> {
    verify_against(c, &[]).await
}

/// [`verify`], and the chain's hash at each checkpoint's sequence number compared with
/// the signed one (the caller checked the signatures). A chain rewritten and re-hashed
/// consistently passes [`verify`] but not this: its hash at the first later checkpoint
/// differs, and the rewrite lies after the last checkpoint that still matches. A
/// checkpoint past the chain's end means its tail was cut (and the head moved back).
///
/// The head and every page of the walk are read in one snapshot (a read-only transaction,
/// REPEATABLE READ on PostgreSQL): read in separate statements, an event appended between
/// the head's read and the last page's — by any writer, at any moment of a busy system —
/// showed as "the chain ends at N+1 but the head says N" on a sound chain.
pub async fn verify_against(c: &mut AnyConnection, expected: &[Expected]) -> Result<VerifyReport> {
    use sqlx::Connection;
    if c.is_in_transaction() {
        // The caller's transaction is the snapshot (and may not be nested into).
        return walk(c, expected).await;
    }
    let begin = if c.backend_name() == <sqlx::Postgres as sqlx::Database>::NAME {
        "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"
    } else {
        // A deferred transaction: SQLite's snapshot is taken at its first read.
        "BEGIN"
    };
    let mut tx = c.begin_with(begin).await?;
    let report = walk(&mut tx, expected).await?;
    tx.rollback().await?;
    Ok(report)
}

/// [`verify_against`]'s walk, in the caller's snapshot.
async fn walk(c: &mut AnyConnection, expected: &[Expected]) -> Result<VerifyReport> {
    let head = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(&mut *c)
        .await?;
    let head_seq = int(&head, "seq")?;
    let head_hash = text(&head, "hash")?;
    let mut expected = expected.to_vec();
    // No event has a seq below 1; such a checkpoint would never be reached and hold back
    // every later one (callers refuse them; this keeps the walk sound regardless).
    expected.retain(|e| e.seq >= 1);
    expected.sort_by_key(|e| e.seq);
    let with_checkpoints = !expected.is_empty();
    let mut report = VerifyReport {
        ok: true,
        checked: 0,
        head_seq,
        first_broken_seq: None,
        reason: None,
        checkpoints_checked: with_checkpoints.then_some(0),
        signed_through: None,
    };
    let broken = |report: &mut VerifyReport, seq: i64, why: String| {
        report.ok = false;
        report.first_broken_seq = Some(seq);
        report.reason = Some(why);
    };
    let mut next_cp = 0usize;
    let (mut expect_seq, mut prev_hash) = (1i64, GENESIS_HASH.to_string());
    loop {
        let rows =
            sqlx::query("SELECT * FROM audit_events WHERE seq >= $1 ORDER BY seq LIMIT 1000")
                .bind(expect_seq)
                .fetch_all(&mut *c)
                .await?;
        let last_batch = rows.len() < 1000;
        for r in &rows {
            let seq = int(r, "seq")?;
            if seq != expect_seq {
                broken(
                    &mut report,
                    expect_seq,
                    format!("event {expect_seq} is missing (next is {seq})"),
                );
                return Ok(report);
            }
            let row_prev = text(r, "prev_hash")?;
            if row_prev != prev_hash {
                broken(
                    &mut report,
                    seq,
                    "prev_hash does not match the previous event".into(),
                );
                return Ok(report);
            }
            let hash = text(r, "hash")?;
            if row_hash(r, seq, &row_prev)? != hash {
                broken(&mut report, seq, "content does not match its hash".into());
                return Ok(report);
            }
            while let Some(cp) = expected.get(next_cp).filter(|cp| cp.seq == seq) {
                if cp.hash != hash {
                    let from = report.signed_through.unwrap_or(0) + 1;
                    let why = format!(
                        "the chain was rewritten: event {seq}'s hash is not the one signed in \
                         its checkpoint, so events {from} to {seq} were changed and re-hashed"
                    );
                    broken(&mut report, from, why);
                    return Ok(report);
                }
                report.signed_through = Some(seq);
                report.checkpoints_checked = report.checkpoints_checked.map(|n| n + 1);
                next_cp += 1;
            }
            report.checked += 1;
            prev_hash = hash;
            expect_seq += 1;
        }
        if last_batch {
            break;
        }
    }
    let last_seq = expect_seq - 1;
    if last_seq < head_seq {
        let why = format!(
            "events {} to {head_seq} are missing (the head says {head_seq})",
            last_seq + 1
        );
        broken(&mut report, last_seq + 1, why);
    } else if last_seq > head_seq {
        let why = format!("the chain ends at {last_seq} but the head says {head_seq}");
        broken(&mut report, head_seq + 1, why);
    } else if prev_hash != head_hash {
        broken(
            &mut report,
            last_seq,
            "the last event does not match the head's hash".into(),
        );
    } else if let Some(cp) = expected.last().filter(|cp| cp.seq > last_seq) {
        let why = format!(
            "the chain was cut: it ends at event {last_seq} but a signed checkpoint \
             vouches for event {}, so events {} to at least {} were removed",
            cp.seq,
            last_seq + 1,
            cp.seq
        );
        broken(&mut report, last_seq + 1, why);
    }
    Ok(report)
}

/// A row's hash recomputed from its columns.
fn row_hash(r: &AnyRow, seq: i64, prev_hash: &str) -> Result<String> {
    let (actor_id, owner_id, target_id) = (
        opt_text(r, "actor_id")?,
        opt_text(r, "owner_id")?,
        opt_text(r, "target_id")?,
    );
    let (ak, action, tk, outcome, detail) = (
        text(r, "actor_kind")?,
        text(r, "action")?,
        text(r, "target_kind")?,
        text(r, "outcome")?,
        text(r, "detail")?,
    );
    let fields = ChainFields {
        seq,
        ts_ms: int(r, "ts")?,
        actor_kind: &ak,
        actor_id: actor_id.as_deref(),
        owner_id: owner_id.as_deref(),
        action: &action,
        target_kind: &tk,
        target_id: target_id.as_deref(),
        outcome: &outcome,
        detail: &detail,
    };
    Ok(fields.hash(prev_hash))
}

/// The chain's head: the last event's sequence number and hash (0 and the genesis hash
/// before the first event).
pub async fn head(c: &mut AnyConnection) -> Result<(i64, String)> {
    let r = sqlx::query("SELECT seq, hash FROM audit_head WHERE id = 1")
        .fetch_one(&mut *c)
        .await?;
    Ok((int(&r, "seq")?, text(&r, "hash")?))
}

/// Number of events (for status pages and tests).
pub async fn count(c: &mut AnyConnection) -> Result<i64> {
    let r = sqlx::query("SELECT COUNT(*) AS n FROM audit_events")
        .fetch_one(&mut *c)
        .await?;
    int(&r, "n")
}

/// Reads one event by sequence number, unscoped (internal use).
pub async fn get(c: &mut AnyConnection, seq: i64) -> Result<AuditEvent> {
    let r = sqlx::query("SELECT * FROM audit_events WHERE seq = $1")
        .bind(seq)
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)?;
    event(&r)
}
