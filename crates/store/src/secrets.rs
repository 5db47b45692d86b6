//! The vault's rows: sealed secrets and their metadata. Nothing here sees a plaintext; the
//! sealing and the key handling live in `toolbelt-vault`.
//!
//! Visibility differs by what is asked. Metadata (list, show, delete) follows the usual rule:
//! the owner, and admins for everything. Sealed material (for a decrypt) is narrower: a
//! member's secret opens only in that member's scope, a shared secret only in an admin's —
//! an admin manages members' secrets but never reads their values.

mod types;

pub use types::{Sealed, SealedSecret, SecretId, SecretKind, SecretMeta, SecretRef};

use crate::rows::{int, now_ms, opt_text, parsed, text, ts};
use crate::{Result, StoreError, conflict};
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};
use toolbelt_model::{Name, Page, Scope, UserId};

fn meta(r: &AnyRow) -> Result<SecretMeta> {
    Ok(SecretMeta {
        id: SecretId::from_db(text(r, "id")?),
        name: Name::from_db(text(r, "name")?),
        owner_id: opt_text(r, "owner_id")?.map(UserId::from_db),
        kind: parsed(r, "kind", SecretKind::parse)?,
        version: int(r, "version")?,
        kek_id: text(r, "kek_id")?,
        created_at: ts(r, "created_at")?,
        updated_at: ts(r, "updated_at")?,
    })
}

fn bytes(r: &AnyRow, col: &str) -> Result<Vec<u8>> {
    r.try_get::<Vec<u8>, _>(col)
        .map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

fn sealed(r: &AnyRow) -> Result<SealedSecret> {
    Ok(SealedSecret {
        meta: meta(r)?,
        sealed: Sealed {
            nonce: bytes(r, "nonce")?,
            ciphertext: bytes(r, "ciphertext")?,
            wrapped_key: bytes(r, "wrapped_key")?,
            kek_id: text(r, "kek_id")?,
        },
    })
}

/// Inserts version 1. `owner` None makes a shared secret; the caller has checked that the
/// scope may write there.
pub async fn insert(
    c: &mut AnyConnection,
    id: &SecretId,
    owner: Option<&UserId>,
    name: &Name,
    kind: SecretKind,
    s: &Sealed,
) -> Result<SecretMeta> {
    let now = now_ms();
    let r = sqlx::query(
        "INSERT INTO secrets (id, owner_id, name, kind, version, nonce, ciphertext, wrapped_key,
             kek_id, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 1, $5, $6, $7, $8, $9, $9) RETURNING *",
    )
    .bind(id.to_string())
    .bind(owner.map(|o| o.to_string()))
    .bind(name.to_string())
    .bind(kind.as_str())
    .bind(s.nonce.clone())
    .bind(s.ciphertext.clone())
    .bind(s.wrapped_key.clone())
    .bind(s.kek_id.clone())
    .bind(now)
    .fetch_one(&mut *c)
    .await
    .map_err(|e| conflict(e, || format!("a secret named {name} already exists")))?;
    meta(&r)
}

/// Stores a new value sealed for version `from_version + 1`, only if the row is still at
/// `from_version` (a compare-and-swap: `Conflict` when another writer got there first).
pub async fn replace(
    c: &mut AnyConnection,
    id: &SecretId,
    from_version: i64,
    kind: SecretKind,
    s: &Sealed,
) -> Result<SecretMeta> {
    let r = sqlx::query(
        "UPDATE secrets SET kind = $1, version = version + 1, nonce = $2, ciphertext = $3,
             wrapped_key = $4, kek_id = $5, updated_at = $6
         WHERE id = $7 AND version = $8 RETURNING *",
    )
    .bind(kind.as_str())
    .bind(s.nonce.clone())
    .bind(s.ciphertext.clone())
    .bind(s.wrapped_key.clone())
    .bind(s.kek_id.clone())
    .bind(now_ms())
    .bind(id.to_string())
    .bind(from_version)
    .fetch_optional(&mut *c)
    .await?
    .ok_or_else(|| StoreError::Conflict(format!("secret {id} changed concurrently")))?;
    meta(&r)
}

/// The secret named `name` in exactly one namespace (`owner` None: the shared one). For
/// writers, after they checked the scope may write to that namespace.
pub async fn find_in_namespace(
    c: &mut AnyConnection,
    owner: Option<&UserId>,
    name: &str,
) -> Result<Option<SealedSecret>> {
    let r = sqlx::query("SELECT * FROM secrets WHERE COALESCE(owner_id, '') = $1 AND name = $2")
        .bind(owner.map_or_else(String::new, |o| o.to_string()))
        .bind(name.to_string())
        .fetch_optional(&mut *c)
        .await?;
    r.as_ref().map(sealed).transpose()
}

/// A secret's row, visible to `scope` under the metadata rule or, with `decrypt_rule`,
/// the narrower decrypt rule.
async fn row(
    c: &mut AnyConnection,
    scope: &Scope,
    key: &SecretRef,
    decrypt_rule: bool,
) -> Result<AnyRow> {
    let uid = scope.user_id.to_string();
    let q = match key {
        SecretRef::Id(id) if decrypt_rule => sqlx::query(
            "SELECT * FROM secrets
             WHERE id = $1 AND (owner_id = $2 OR (owner_id IS NULL AND $3 = 1))",
        )
        .bind(id.to_string()),
        SecretRef::Id(id) => {
            sqlx::query("SELECT * FROM secrets WHERE id = $1 AND (owner_id = $2 OR $3 = 1)")
                .bind(id.to_string())
        }
        // By name the two rules agree: the caller's own namespace, then (admins) the shared.
        SecretRef::Name(n) => sqlx::query(
            "SELECT * FROM secrets
             WHERE name = $1 AND (owner_id = $2 OR (owner_id IS NULL AND $3 = 1))
             ORDER BY CASE WHEN owner_id IS NULL THEN 1 ELSE 0 END LIMIT 1",
        )
        .bind(n.clone()),
    };
    q.bind(uid)
        .bind(scope.admin_flag())
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)
}

/// Metadata of one secret: its owner's, and every secret for admins.
pub async fn get(c: &mut AnyConnection, scope: &Scope, key: &SecretRef) -> Result<SecretMeta> {
    meta(&row(c, scope, key, false).await?)
}

/// The sealed material for a decrypt: only the owner's scope, or an admin's for shared ones.
pub async fn get_sealed(
    c: &mut AnyConnection,
    scope: &Scope,
    key: &SecretRef,
) -> Result<SealedSecret> {
    sealed(&row(c, scope, key, true).await?)
}

/// Members list their own secrets; admins list all (metadata only).
pub async fn list(
    c: &mut AnyConnection,
    scope: &Scope,
    limit: u32,
    after: Option<&str>,
) -> Result<Page<SecretMeta>> {
    let rows = sqlx::query(
        "SELECT id, owner_id, name, kind, version, kek_id, created_at, updated_at FROM secrets
         WHERE ($1 IS NULL OR id > $1) AND (owner_id = $2 OR $3 = 1)
         ORDER BY id LIMIT $4",
    )
    .bind(after.map(str::to_string))
    .bind(scope.user_id.to_string())
    .bind(scope.admin_flag())
    .bind(i64::from(limit) + 1)
    .fetch_all(&mut *c)
    .await?;
    let items = rows.iter().map(meta).collect::<Result<Vec<_>>>()?;
    Ok(Page::from_rows(items, limit, |m| m.id.to_string()))
}

/// Deletes a secret visible to `scope` (metadata rule) and returns what it was.
pub async fn delete(c: &mut AnyConnection, scope: &Scope, key: &SecretRef) -> Result<SecretMeta> {
    let m = get(c, scope, key).await?;
    sqlx::query("DELETE FROM secrets WHERE id = $1")
        .bind(m.id.to_string())
        .execute(&mut *c)
        .await?;
    Ok(m)
}

/// Rotation's work list, unscoped: rows whose data key is not wrapped by `kek_id`, in id
/// order after `after`.
pub async fn not_wrapped_by(
    c: &mut AnyConnection,
    kek_id: &str,
    after: Option<&SecretId>,
    limit: u32,
) -> Result<Vec<SealedSecret>> {
    let rows = sqlx::query(
        "SELECT * FROM secrets WHERE kek_id <> $1 AND ($2 IS NULL OR id > $2)
         ORDER BY id LIMIT $3",
    )
    .bind(kek_id.to_string())
    .bind(after.map(|a| a.to_string()))
    .bind(i64::from(limit))
    .fetch_all(&mut *c)
    .await?;
    rows.iter().map(sealed).collect()
}

/// Swaps a row's wrapped data key, only if the row still holds `version` under `old_kek`
/// (false when a writer changed it meanwhile). The ciphertext is untouched.
pub async fn rewrap(
    c: &mut AnyConnection,
    id: &SecretId,
    version: i64,
    old_kek: &str,
    new_kek: &str,
    wrapped_key: Vec<u8>,
) -> Result<bool> {
    let n = sqlx::query(
        "UPDATE secrets SET wrapped_key = $1, kek_id = $2
         WHERE id = $3 AND version = $4 AND kek_id = $5",
    )
    .bind(wrapped_key)
    .bind(new_kek.to_string())
    .bind(id.to_string())
    .bind(version)
    .bind(old_kek.to_string())
    .execute(&mut *c)
    .await?
    .rows_affected();
    Ok(n == 1)
}

/// How many data keys one key-encryption key wraps: secrets', and sealed records' (chat
/// turns).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KekUsage {
    pub kek_id: String,
    pub secrets: i64,
    pub records: i64,
}

impl KekUsage {
    /// Everything that opens only with this key.
    pub fn total(&self) -> i64 {
        self.secrets + self.records
    }
}

/// How many secrets and sealed records each key-encryption key wraps: a key may be retired
/// when both are zero.
pub async fn kek_usage(c: &mut AnyConnection) -> Result<Vec<KekUsage>> {
    let rows = sqlx::query(
        "SELECT kek_id, SUM(s) AS secrets, SUM(r) AS records FROM (
             SELECT kek_id, 1 AS s, 0 AS r FROM secrets
             UNION ALL SELECT kek_id, 0 AS s, 1 AS r FROM chat_turns
         ) u GROUP BY kek_id ORDER BY kek_id",
    )
    .fetch_all(&mut *c)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(KekUsage {
                kek_id: text(r, "kek_id")?,
                secrets: int(r, "secrets")?,
                records: int(r, "records")?,
            })
        })
        .collect()
}

/// The sealed material of one secret by id, unscoped: for Toolbelt's own uses (a deploy,
/// a token refresh, an injection), whose callers have checked who may use it.
pub async fn get_sealed_by_id(c: &mut AnyConnection, id: &SecretId) -> Result<SealedSecret> {
    sqlx::query("SELECT * FROM secrets WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *c)
        .await?
        .ok_or(StoreError::NotFound)
        .and_then(|r| sealed(&r))
}

/// Deletes a secret by id, unscoped (see [`get_sealed_by_id`]); NotFound when absent.
pub async fn delete_by_id(c: &mut AnyConnection, id: &SecretId) -> Result<SecretMeta> {
    let m = meta(
        &sqlx::query("SELECT * FROM secrets WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&mut *c)
            .await?
            .ok_or(StoreError::NotFound)?,
    )?;
    sqlx::query("DELETE FROM secrets WHERE id = $1")
        .bind(id.to_string())
        .execute(&mut *c)
        .await?;
    Ok(m)
}
