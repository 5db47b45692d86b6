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

/// The repository of a reference, as the engine lists it: no digest, no tag, and Docker
/// Hub's implicit `docker.io/` and `library/` left out (`docker.io/library/fx:1` → `fx`).
pub fn repository(reference: &str) -> &str {
    let name = split_digest(reference).0;
    let slash = name.rfind('/').map_or(0, |i| i + 1);
    let name = match name[slash..].rfind(':') {
        Some(i) => &name[..slash + i],
        None => name,
    };
    let name = name.strip_prefix("docker.io/").unwrap_or(name);
    name.strip_prefix("library/").unwrap_or(name)
}

/// Whether `img` is an image of `repo` (tagged or pulled by digest as one of it).
fn of_repository(img: &ImageInspect, repo: &str) -> bool {
    img.repo_tags
        .iter()
        .flatten()
        .chain(img.repo_digests.iter().flatten())
        .any(|r| repository(r) == repo)
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

    /// The image an explicit update moves a server to. A given `digest` must be an image
    /// of the entry's repository (never any image this engine happens to hold): found here
    /// by ID or manifest digest, else pulled as `repository@digest`. Without one, the
    /// entry's reference is pulled again (a tag moved in its registry is seen), the local
    /// image used if the pull fails (a tag that only ever lived on this engine).
    pub(super) async fn resolve_update(
        &self,
        reference: &str,
        digest: Option<&str>,
    ) -> Result<String, RuntimeError> {
        let repo = repository(reference);
        let Some(digest) = digest else {
            if split_digest(reference).1.is_some() {
                return self.resolve(reference).await;
            }
            if let Err(e) = self.pull(reference).await {
                tracing::info!(image = reference, error = %e, "not pulled again: the local image is used");
            }
            let img = self.inspect(reference).await?.ok_or_else(|| {
                RuntimeError::Refused(format!("image {reference} is not on this toolbox"))
            })?;
            return img
                .id
                .ok_or_else(|| RuntimeError::Refused(format!("image {reference} has no ID")));
        };
        if let Some(img) = self.inspect(digest).await?
            && img.id.as_deref() == Some(digest)
        {
            if !of_repository(&img, repo) {
                return Err(RuntimeError::Refused(format!(
                    "image {digest} is not an image of {repo}"
                )));
            }
            return Ok(digest.to_string());
        }
        let by_digest = format!("{repo}@{digest}");
        let img = match self.inspect(&by_digest).await? {
            Some(i) => i,
            None => {
                self.pull(&by_digest).await?;
                self.inspect(&by_digest).await?.ok_or_else(|| {
                    RuntimeError::Refused(format!("image {by_digest} is missing after its pull"))
                })?
            }
        };
        if !is(&img, digest) {
            return Err(RuntimeError::Refused(format!(
                "image {by_digest} is not on this toolbox"
            )));
        }
        img.id
            .ok_or_else(|| RuntimeError::Refused(format!("image {by_digest} has no ID")))
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
    fn a_repository_is_its_reference_without_tag_digest_or_hub_prefix() {
        assert_eq!(repository("fx"), "fx");
        assert_eq!(repository("fx:1"), "fx");
        assert_eq!(repository("docker.io/library/fx:1@sha256:aa"), "fx");
        assert_eq!(repository("docker.io/mcp/fetch"), "mcp/fetch");
        assert_eq!(repository("localhost:5000/a/fx:2"), "localhost:5000/a/fx");
        assert_eq!(repository("localhost:5000/fx"), "localhost:5000/fx");
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
