//! First start: the first admin, the bootstrap token, the `local` toolbox, the seed catalog.

use serde_json::json;
use toolbelt_model::audit::{AuditAction, NewAuditEvent, TargetKind};
use toolbelt_model::catalog::CatalogSpec;
use toolbelt_model::name::Name;
use toolbelt_model::token::{self, MIN_TOKEN_LEN, TokenDigest, TokenKind};
use toolbelt_model::toolbox::ToolboxStatus;
use toolbelt_model::{Role, Scope, now};
use toolbelt_store::tokens::Subject;
use toolbelt_store::{Store, StoreError, catalog, settings, tokens, toolboxes, users};

#[derive(Debug, Clone, Default)]
pub struct BootstrapOptions {
    /// `TOOLBELT_BOOTSTRAP_TOKEN`: made an admin API token on first start.
    pub bootstrap_token: Option<String>,
    /// Email of the first admin (default `admin@toolbelt.local`).
    pub admin_email: Option<String>,
    /// Create the shared `local` toolbox (`toolbelt up`).
    pub local_toolbox: bool,
}

#[derive(Debug, Default)]
pub struct BootstrapReport {
    /// Set on first start without a bootstrap token: a one-time login for the first admin.
    pub login_token: Option<String>,
    pub admin_email: Option<String>,
    pub seeded_entries: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("TOOLBELT_BOOTSTRAP_TOKEN must be at least {MIN_TOKEN_LEN} characters")]
    WeakToken,
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub const SEED_CATALOG: &str = include_str!("seed_catalog.json");

pub fn seed_specs() -> Vec<CatalogSpec> {
    serde_json::from_str(SEED_CATALOG).expect("the seed catalog is valid (tested)")
}

pub async fn bootstrap(
    store: &Store,
    opts: &BootstrapOptions,
) -> Result<BootstrapReport, BootstrapError> {
    let mut report = BootstrapReport::default();
    if let Some(t) = &opts.bootstrap_token
        && t.len() < MIN_TOKEN_LEN
    {
        return Err(BootstrapError::WeakToken);
    }
    let mut tx = store.begin_audited().await?;
    if users::count(&mut tx, None).await? == 0 {
        let email = opts
            .admin_email
            .clone()
            .unwrap_or_else(|| "admin@toolbelt.local".into());
        let admin = users::create(&mut tx, &email, Role::Admin, None).await?;
        let subject = Subject::User(admin.id.clone());
        if let Some(t) = &opts.bootstrap_token {
            tokens::insert(
                &mut tx,
                TokenKind::Api,
                &TokenDigest::of(t),
                &subject,
                "bootstrap",
                None,
            )
            .await?;
        } else {
            let issued = token::issue(TokenKind::Login);
            let expires = now() + chrono::TimeDelta::hours(24);
            tokens::insert(
                &mut tx,
                TokenKind::Login,
                &issued.digest,
                &subject,
                "first login",
                Some(expires),
            )
            .await?;
            report.login_token = Some(issued.secret.clone());
        }
        report.admin_email = Some(email.clone());
        let mut ev = NewAuditEvent::new(
            AuditAction::UserCreate,
            TargetKind::User,
            Some(admin.id.to_string()),
        );
        ev.owner_id = Some(admin.id.clone());
        ev.detail = json!({ "email": email, "role": "admin", "reason": "first start" });
        tx.commit(ev).await?;
    } else {
        tx.rollback().await?;
    }

    if opts.local_toolbox {
        let mut tx = store.begin_audited().await?;
        let system = Scope {
            user_id: toolbelt_model::UserId::from_db(String::new()),
            role: Role::Member,
        };
        let name = Name::from_db("local".into());
        match toolboxes::find_by_name(&mut tx, &system, "local").await {
            Ok(_) => tx.rollback().await?,
            Err(StoreError::NotFound) => {
                let t =
                    toolboxes::create(&mut tx, &name, None, None, ToolboxStatus::AwaitingHeartbeat)
                        .await?;
                let ev = NewAuditEvent::new(
                    AuditAction::ToolboxCreate,
                    TargetKind::Toolbox,
                    Some(t.id.to_string()),
                );
                tx.commit(NewAuditEvent {
                    detail: json!({ "name": "local", "shared": true, "reason": "toolbelt up" }),
                    ..ev
                })
                .await?;
            }
            Err(e) => return Err(e.into()),
        }
    }

    let mut c = store.conn().await?;
    let seeded = settings::get(&mut c, "catalog_seeded").await?.is_some();
    drop(c);
    if !seeded {
        let mut tx = store.begin_audited().await?;
        let mut added = Vec::new();
        for spec in seed_specs() {
            if catalog::create_if_missing(&mut tx, &spec).await? {
                added.push(spec.slug.clone());
            }
        }
        settings::set(&mut tx, "catalog_seeded", "1").await?;
        report.seeded_entries = added.len();
        let mut ev = NewAuditEvent::new(AuditAction::CatalogSeed, TargetKind::Catalog, None);
        ev.detail = json!({ "added": added });
        tx.commit(ev).await?;
    }
    Ok(report)
}
