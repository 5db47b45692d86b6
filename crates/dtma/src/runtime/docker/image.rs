//! Images by digest: a catalog entry names an image by tag (`name:tag`), by digest
//! (`name@sha256:…`) or both; the DTMA resolves it once, at the first deploy, to the image
//! ID (`sha256:…`, the digest of the image's configuration: the content itself) and runs
//! the container by that ID. The control plane records the ID as the server's pin and
//! sends it back with every desired set, so a tag moved to other code later never changes
//! what a restart or a re-create runs.

use super::{DockerRuntime, classify};
use crate::runtime::RuntimeError;
use bollard::errors::Error as DockerError;
use bollard::models::ImageInspect;
use bollard::query_parameters::CreateImageOptionsBuilder;
use futures::TryStreamExt;
use std::time::Duration;

/// `name[:tag]@sha256:…` → (`name[:tag]`, `sha256:…`); no digest → (the reference, None).
pub fn split_digest(reference: &str) -> (&str, Option<&str>) {
    match reference.rsplit_once('@') {
        Some((name, digest)) if digest.starts_with("sha256:") => (name, Some(digest)),
        _ => (reference, None),
    }
}

/// Whether `img` is the content `digest` names: its ID, or the registry's manifest digest
/// it was pulled by.
fn is(img: &ImageInspect, digest: &str) -> bool {
    img.id.as_deref() == Some(digest)
        || img
            .repo_digests
            .iter()
            .flatten()
            .any(|r| split_digest(r).1 == Some(digest))
}

impl DockerRuntime {
    async fn inspect(&self, reference: &str) -> Result<Option<ImageInspect>, RuntimeError> {
        match self.docker.inspect_image(reference).await {
            Ok(i) => Ok(Some(i)),
            Err(DockerError::DockerResponseServerError {
                status_code: 404 | 400,
                ..
            }) => Ok(None),
            Err(e) => Err(classify(e)),
        }
    }

    /// Pulls `reference` (which fails fast without a registry; the engine's message
    /// becomes the server's error).
    async fn pull(&self, reference: &str) -> Result<(), RuntimeError> {
        let pull = self
            .docker
            .create_image(
                Some(
                    CreateImageOptionsBuilder::default()
                        .from_image(reference)
                        .build(),
                ),
                None,
                None,
            )
            .try_collect::<Vec<_>>();
        match tokio::time::timeout(Duration::from_secs(30), pull).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(RuntimeError::Refused(format!(
                "image {reference} is not available locally and could not be pulled: {}",
                classify(e)
            ))),
            Err(_) => Err(RuntimeError::Refused(format!(
                "image {reference} is not available locally and pulling it timed out"
            ))),
        }
    }

    /// The image ID `reference` names here, pulled first if it is not here. A digest in
    /// the reference must be the image's (its ID or a manifest digest it was pulled by):
    /// a tag and a digest that disagree are refused, not settled either way.
    async fn resolve(&self, reference: &str) -> Result<String, RuntimeError> {
        let (name, want) = split_digest(reference);
        let mut found = self.inspect(reference).await?;
        if found.is_none() && want.is_some() {
            found = self.inspect(name).await?;
        }
        let img = match found {
            Some(i) => i,
            None => {
                self.pull(reference).await?;
                self.inspect(reference).await?.ok_or_else(|| {
                    RuntimeError::Refused(format!("image {reference} is missing after its pull"))
                })?
            }
        };
        let id = img
            .id
            .clone()
            .ok_or_else(|| RuntimeError::Refused(format!("image {reference} has no ID")))?;
        if let Some(want) = want
            && !is(&img, want)
        {
            return Err(RuntimeError::Refused(format!(
                "image {name} is {id} on this toolbox, not the {want} its catalog entry pins"
            )));
        }
        Ok(id)
    }

    /// The image ID a server's container runs: `pinned` (the control plane's record) if
    /// given, else what this DTMA resolved for the server before (until the control plane
    /// has recorded it), else `reference` resolved now.
    pub(super) async fn image_for(
        &self,
        server: &str,
        reference: &str,
        pinned: Option<&str>,
    ) -> Result<String, RuntimeError> {
        let remembered = self
            .resolved
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(server)
            .cloned();
        let Some(pin) = pinned.map(str::to_string).or(remembered) else {
            let id = self.resolve(reference).await?;
            self.resolved
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(server.to_string(), id.clone());
            return Ok(id);
        };
        if let Some(img) = self.inspect(&pin).await?
            && img.id.as_deref() == Some(pin.as_str())
        {
            return Ok(pin);
        }
        // Gone from this toolbox (pruned): fetched again, the reference must still be it.
        let id = self.resolve(reference).await?;
        if id != pin {
            return Err(RuntimeError::Refused(format!(
                "the server is pinned to image {pin}, which is no longer on this toolbox, and \
                 {reference} is {id} now: deploy the server again to run the new image"
            )));
        }
        Ok(pin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_digest_is_split_from_its_reference() {
        let d = "sha256:aa";
        assert_eq!(split_digest("fx:1"), ("fx:1", None));
        assert_eq!(
            split_digest("registry:5000/fx:1@sha256:aa"),
            ("registry:5000/fx:1", Some(d))
        );
        assert_eq!(split_digest("fx@sha256:aa"), ("fx", Some(d)));
    }

    #[test]
    fn an_image_is_its_id_or_a_digest_it_was_pulled_by() {
        let img = ImageInspect {
            id: Some("sha256:11".into()),
            repo_digests: Some(vec!["reg/fx@sha256:22".into()]),
            ..Default::default()
        };
        assert!(is(&img, "sha256:11"));
        assert!(is(&img, "sha256:22"));
        assert!(!is(&img, "sha256:33"));
    }
}
