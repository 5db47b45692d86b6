//! Signed audit checkpoints written outside the database (the design is in
//! `toolbelt_model::audit_checkpoint`): the head signed every `every_events` events or
//! `interval` with new events, on demand (`POST /api/v1/audit/checkpoints`) and at
//! shutdown, each one JSON line appended to the checkpoint file.
//!
//! Periodic checkpoints are not audited: an event per checkpoint would move the head and
//! call for the next checkpoint, forever. The on-demand one is, and signs a head that
//! includes its own event.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use toolbelt_model::audit_checkpoint::{AuditKey, Checkpoint};
use toolbelt_store::{Store, StoreError, audit};

/// When checkpoints are written, and where.
#[derive(Debug, Clone)]
pub struct CheckpointConfig {
    /// JSON lines, appended (`TOOLBELT_AUDIT_CHECKPOINT_FILE`).
    pub file: PathBuf,
    /// A checkpoint once the head moved this many events past the last one.
    pub every_events: i64,
    /// A checkpoint this long after the last one, when there are new events.
    pub interval: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointWriteError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot append to the audit checkpoint file {}", path.display())]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Signs and appends checkpoints; one per process, shared by the API and the timer.
pub struct Checkpointer {
    key: AuditKey,
    config: CheckpointConfig,
    /// The last seq written by this process, and when: also serialises the appends, so
    /// this process's lines never interleave (replicas sharing a file rely on O_APPEND
    /// writes of one short line each being atomic).
    last: tokio::sync::Mutex<(i64, Instant)>,
}

impl std::fmt::Debug for Checkpointer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Checkpointer")
            .field("file", &self.config.file)
            .finish_non_exhaustive()
    }
}

impl Checkpointer {
    pub fn new(key: AuditKey, config: CheckpointConfig) -> Checkpointer {
        Checkpointer {
            key,
            config,
            last: tokio::sync::Mutex::new((0, Instant::now())),
        }
    }

    /// [`Checkpointer::new`], the file created (0600) now if it is not there: a path that
    /// cannot be written fails the start, not the first checkpoint an hour later, and the
    /// file exists (as a file) before any sandbox is told to hide it.
    pub fn open(
        key: AuditKey,
        config: CheckpointConfig,
    ) -> Result<Checkpointer, CheckpointWriteError> {
        append(&config.file, b"").map_err(|source| CheckpointWriteError::File {
            path: config.file.clone(),
            source,
        })?;
        Ok(Checkpointer::new(key, config))
    }

    /// The verifying key, base64url.
    pub fn public_key(&self) -> String {
        self.key.public_b64()
    }

    pub fn file(&self) -> &Path {
        &self.config.file
    }

    /// Signs the current head and appends it; `None` while the chain is empty.
    pub async fn checkpoint(
        &self,
        store: &Store,
    ) -> Result<Option<Checkpoint>, CheckpointWriteError> {
        let mut last = self.last.lock().await;
        let (seq, hash) = {
            let mut c = store.conn().await?;
            audit::head(&mut c).await?
        };
        if seq == 0 {
            return Ok(None);
        }
        let cp = self.key.sign(seq, &hash, chrono::Utc::now());
        let line = format!(
            "{}\n",
            serde_json::to_string(&cp).expect("a checkpoint serialises")
        );
        let path = self.config.file.clone();
        tokio::task::spawn_blocking(move || append(&path, line.as_bytes()))
            .await
            .map_err(|e| CheckpointWriteError::File {
                path: self.config.file.clone(),
                source: std::io::Error::other(e),
            })?
            .map_err(|source| CheckpointWriteError::File {
                path: self.config.file.clone(),
                source,
            })?;
        *last = (seq, Instant::now());
        Ok(Some(cp))
    }

    /// Whether the head at `seq` is due a checkpoint.
    async fn due(&self, seq: i64) -> bool {
        let (at, when) = *self.last.lock().await;
        seq > at && (seq - at >= self.config.every_events || when.elapsed() >= self.config.interval)
    }

    /// The timer: looks at the head each second (one row), writes when due. A failure is
    /// logged once, and again only after the file worked in between.
    pub async fn run(self: std::sync::Arc<Self>, store: Store) {
        let tick = self.config.interval.min(Duration::from_secs(1));
        let mut failing = false;
        loop {
            tokio::time::sleep(tick).await;
            let head = match store.conn().await {
                Ok(mut c) => audit::head(&mut c).await.map(|h| h.0),
                Err(e) => Err(e),
            };
            let Ok(seq) = head else { continue };
            if !self.due(seq).await {
                continue;
            }
            match self.checkpoint(&store).await {
                Ok(_) => failing = false,
                Err(e) if !failing => {
                    failing = true;
                    tracing::warn!(error = %error_chain(&e), "audit checkpoint not written; retrying");
                }
                Err(_) => {}
            }
        }
    }
}

/// One write of the whole line, O_APPEND, then fsync: a line is either all there or not.
fn append(path: &Path, line: &[u8]) -> std::io::Result<()> {
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .create(true)
        .mode(0o600)
        .open(path)?;
    f.write_all(line)?;
    f.sync_data()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(c) = src {
        s.push_str(": ");
        s.push_str(&c.to_string());
        src = c.source();
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolbelt_model::audit_checkpoint::{AuditPublicKey, read_verified};

    #[tokio::test]
    async fn checkpoints_are_appended_signed_and_only_when_due() {
        let db = toolbelt_testkit::db::TestDb::sqlite().await;
        let store = Store::open(&db.url, Default::default()).await.unwrap();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("cp.jsonl");
        let cp = Checkpointer::new(
            AuditKey::generate(),
            CheckpointConfig {
                file: file.clone(),
                every_events: 3,
                interval: Duration::from_secs(3600),
            },
        );
        assert!(
            cp.checkpoint(&store).await.unwrap().is_none(),
            "empty chain"
        );
        assert!(!file.exists());
        let refused = Checkpointer::open(
            AuditKey::generate(),
            CheckpointConfig {
                file: dir.path().join("no/such/dir/cp.jsonl"),
                every_events: 1,
                interval: Duration::from_secs(1),
            },
        )
        .unwrap_err();
        assert!(
            refused.to_string().contains("no/such/dir/cp.jsonl"),
            "{refused}"
        );
        let ev = || {
            toolbelt_model::audit::NewAuditEvent::new(
                toolbelt_model::audit::AuditAction::CatalogSeed,
                toolbelt_model::audit::TargetKind::Catalog,
                None,
            )
        };
        store
            .begin_audited()
            .await
            .unwrap()
            .commit(ev())
            .await
            .unwrap();
        let first = cp.checkpoint(&store).await.unwrap().unwrap();
        assert_eq!(first.seq, 1);
        for _ in 0..2 {
            store
                .begin_audited()
                .await
                .unwrap()
                .commit(ev())
                .await
                .unwrap();
        }
        assert!(!cp.due(3).await, "2 events, 3 needed, interval not over");
        assert!(cp.due(4).await);
        cp.checkpoint(&store).await.unwrap().unwrap();
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let public = AuditPublicKey::parse(&cp.public_key()).unwrap();
        let text = std::fs::read_to_string(&file).unwrap();
        let read = read_verified(&text, &public).unwrap();
        assert_eq!(read.iter().map(|c| c.seq).collect::<Vec<_>>(), vec![1, 3]);
        assert!(!format!("{cp:?}").contains(&cp.public_key()));
    }
}
