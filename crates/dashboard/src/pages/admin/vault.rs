//! The vault on the admin page: its key-encryption keys (which is current, how many
//! secrets and sealed chat turns each wraps, any a secret needs that the provider no longer holds) and Rotate —
//! optionally a fresh key first, then every data key re-wrapped under the current one —
//! with the rotation's report shown on the page — and Delete for an old key that wraps
//! nothing, behind a confirmation page. `service::vault` does the work and the refusing.

use super::{ProviderForm, UserForm, admin_only, admin_page, with_status};
use crate::error::{Page, PageResult};
use crate::form::Form;
use crate::session::Dash;
use crate::view::Chrome;
use askama::Template;
use axum::extract::{Path, State};
use toolbelt_control::AppState;
use toolbelt_control::service;
use toolbelt_control::service::vault::{KekInfo, RotateReport, RotateRequest, VaultKeys};

pub struct KekRow {
    pub id: String,
    pub current: bool,
    pub secrets: i64,
    /// Sealed chat turns.
    pub records: i64,
}

impl KekRow {
    fn of(k: &KekInfo) -> KekRow {
        KekRow {
            id: k.id.clone(),
            current: k.current,
            secrets: k.secrets,
            records: k.records,
        }
    }
}

pub struct Rotation {
    pub kek: String,
    pub rewrapped: u64,
    pub skipped: u64,
    pub batches: u64,
    pub unreadable: Vec<String>,
    pub remaining: i64,
}

/// The vault section: its keys, the last rotation's report, or why neither shows.
#[derive(Default)]
pub struct VaultSection {
    /// `file` or `env`; empty when the keys could not be read.
    pub provider: String,
    pub keys: Vec<KekRow>,
    pub orphaned: Vec<KekRow>,
    pub rotation: Option<Rotation>,
    pub error: Option<String>,
}

impl VaultSection {
    fn of(k: &VaultKeys) -> VaultSection {
        VaultSection {
            provider: k.provider.clone(),
            keys: k.keys.iter().map(KekRow::of).collect(),
            orphaned: k.orphaned.iter().map(KekRow::of).collect(),
            ..VaultSection::default()
        }
    }

    /// The keys now; a control plane without a vault shows the service's reason.
    pub async fn read(st: &AppState, d: &Dash) -> VaultSection {
        match service::vault::keys(st, &d.caller).await {
            Ok(k) => VaultSection::of(&k),
            Err(e) => VaultSection {
                error: Some(e.to_string()),
                ..VaultSection::default()
            },
        }
    }

    fn rotated(r: &RotateReport) -> VaultSection {
        VaultSection {
            rotation: Some(Rotation {
                kek: r.kek_id.clone(),
                rewrapped: r.rewrapped,
                skipped: r.skipped,
                batches: r.batches,
                unreadable: r.unreadable.clone(),
                remaining: r.remaining,
            }),
            ..VaultSection::of(&r.keys)
        }
    }
}

/// Rotates and shows the report on the page (200), or the refusal in the vault section.
pub async fn rotate(State(st): State<AppState>, d: Dash, f: Form) -> PageResult {
    admin_only(&d)?;
    let req = RotateRequest {
        new_key: Some(f.checked("new_key")),
    };
    let (section, status, notice) = match service::vault::rotate(&st, &d.caller, req).await {
        Ok(r) => {
            let n = format!(
                "rotated: {} data key(s) now under {}",
                r.rewrapped, r.kek_id
            );
            (
                VaultSection::rotated(&r),
                axum::http::StatusCode::OK,
                Some(n),
            )
        }
        Err(e) => {
            let mut s = VaultSection::read(&st, &d).await;
            s.error = Some(e.to_string());
            (s, Page::from(e).status, None)
        }
    };
    let c = Chrome::new(&d, "admin").with_notice(notice);
    let page = admin_page(
        &st,
        &d,
        c,
        UserForm::default(),
        ProviderForm::default(),
        Some(section),
    )
    .await?;
    with_status(&page, status)
}

#[derive(Template)]
#[template(path = "admin_kek_delete.html")]
struct ConfirmDelete {
    c: Chrome,
    kek: String,
}

/// Asks before deleting a key (a key the vault does not hold is 404, as on delete).
pub async fn confirm_delete(
    State(st): State<AppState>,
    d: Dash,
    Path(kek): Path<String>,
) -> PageResult {
    admin_only(&d)?;
    let keys = service::vault::keys(&st, &d.caller).await?;
    let Some(k) = keys.keys.iter().find(|k| k.id == kek) else {
        return Err(Page {
            status: axum::http::StatusCode::NOT_FOUND,
            message: format!("no key {kek} in the vault"),
        });
    };
    super::super::render(&ConfirmDelete {
        c: Chrome::new(&d, "admin"),
        kek: k.id.clone(),
    })
}

/// Deletes the key; the service's refusal (the current key, one still wrapping secrets,
/// keys from `TOOLBELT_VAULT_KEY`) is shown in the vault section with its status.
pub async fn delete(
    State(st): State<AppState>,
    d: Dash,
    Path(kek): Path<String>,
    _f: Form,
) -> PageResult {
    admin_only(&d)?;
    match service::vault::delete_key(&st, &d.caller, &kek).await {
        Ok(_) => Ok(super::super::done("/admin", &format!("key {kek} deleted"))),
        Err(e) => {
            let mut s = VaultSection::read(&st, &d).await;
            s.error = Some(e.to_string());
            let status = Page::from(e).status;
            let c = Chrome::new(&d, "admin");
            let (u, p) = (UserForm::default(), ProviderForm::default());
            let page = admin_page(&st, &d, c, u, p, Some(s)).await?;
            with_status(&page, status)
        }
    }
}
