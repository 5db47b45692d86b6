//! Moving a container server to another image: the one explicit, audited way its pin
//! changes (a restart or re-create never moves it). The server's toolbox resolves the
//! image — its entry's tag pulled afresh, or a given digest, which must be an image of
//! the entry's repository there or in its registry — and the control plane pins the ID it
//! answers and bumps the generation, so the container is re-created on it.

use super::caller::Caller;
use super::error::{Result, ServiceError};
use super::{refs, server_runtime};
use crate::state::AppState;
use serde::Deserialize;
use serde_json::json;
use toolbelt_model::audit::{AuditAction, TargetKind};
use toolbelt_model::catalog::CatalogSource;
use toolbelt_model::dtma::{ResolveImageRequest, is_image_digest};
use toolbelt_model::registry;
use toolbelt_model::server::{DesiredState, Server};
use toolbelt_store::{catalog, servers, toolboxes};
use utoipa::ToSchema;

#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateImage {
    /// The image to move to (`sha256:` and 64 hex digits): an image ID or a registry
    /// manifest digest of the entry's repository. Absent: the entry's image resolved
    /// again (its tag pulled afresh).
    #[serde(default)]
    pub digest: Option<String>,
}

/// The digest a catalog reference pins (`name[:tag]@sha256:…`), if any.
fn pinned_by(reference: &str) -> Option<&str> {
    reference
        .rsplit_once('@')
        .map(|(_, d)| d)
        .filter(|d| d.starts_with("sha256:"))
}

/// Moves a server the caller may change (their own; shared ones: admins) to another
/// image, audited with the old and the new digest.
pub async fn update_image(
    st: &AppState,
    caller: &Caller,
    r: &str,
    toolbox: Option<&str>,
    req: UpdateImage,
) -> Result<Server> {
    if let Some(d) = &req.digest
        && !is_image_digest(d)
    {
        return Err(ServiceError::invalid(
            "digest",
            "must be sha256: and 64 lowercase hex digits",
        ));
    }
    let mut c = st.store.conn().await?;
    let s = refs::server(&mut c, &caller.scope, r, toolbox).await?;
    super::servers::may_change(caller, &s)?;
    let entry = catalog::get(&mut c, s.catalog_id.as_str()).await?;
    let tb = toolboxes::get_internal(&mut c, &s.toolbox_id).await?;
    drop(c);
    let CatalogSource::Image { image, .. } = &entry.spec.source else {
        return Err(ServiceError::invalid(
            "server",
            format!(
                "server {} runs catalog entry {}, which is not a container image",
                s.name, entry.spec.slug
            ),
        ));
    };
    // An entry that names its digest is the admins' approval of exactly that image.
    if let (Some(want), Some(pinned)) = (req.digest.as_deref(), pinned_by(image))
        && want != pinned
    {
        return Err(ServiceError::invalid(
            "digest",
            format!(
                "catalog entry {} pins its image to {pinned}: change the entry to move its servers",
                entry.spec.slug
            ),
        ));
    }
    if let Some(why) = registry::refusal(&tb.allowed_registries, image) {
        return Err(ServiceError::invalid(
            "catalog",
            format!("toolbox {}: {why}", tb.name),
        ));
    }
    let resolve = ResolveImageRequest {
        image: image.clone(),
        digest: req.digest.clone(),
        allowed_registries: tb.allowed_registries.clone(),
    };
    let field = if req.digest.is_some() {
        "digest"
    } else {
        "catalog"
    };
    let new = server_runtime::resolve_image(st, &s, &resolve, field).await?;

    let mut tx = st.store.begin_audited().await?;
    let cur = super::error::found(
        format!("server {r}"),
        servers::get_internal(&mut tx, &s.id).await,
    )?;
    if cur.desired == DesiredState::Deleted {
        return Err(ServiceError::conflict(format!(
            "server {} is being deleted",
            cur.name
        )));
    }
    let old = cur.image_digest.clone();
    let moved = old.as_deref() != Some(new.as_str());
    // A stopped server keeps its generation: its next start creates on the new pin.
    let recreate = moved && cur.desired == DesiredState::Running;
    let s = servers::set_image(&mut tx, &s.id, &new, recreate).await?;
    tx.commit(caller.event(
        AuditAction::ServerUpdateImage,
        TargetKind::Server,
        &s.id,
        s.owner_id.as_ref(),
        json!({
            "name": s.name,
            "image": image,
            "requested_digest": req.digest,
            "old_digest": old,
            "new_digest": new,
            "recreated": recreate,
        }),
    ))
    .await?;
    Ok(s)
}
