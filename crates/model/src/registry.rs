//! Image registries: which registry an image reference pulls from (Docker's rule), and a
//! toolbox's optional allow-list of them, checked by the control plane at deploy and
//! update-image and again by the DTMA before it pulls or runs anything.

use crate::error::{Checker, Invalid};

/// At most this many registries in one toolbox's list.
pub const MAX_ALLOWED: usize = 32;

/// The registry `reference` pulls from, lowercased: its first path component when that
/// looks like a host (has a `.` or `:`, or is `localhost`), else Docker Hub (`docker.io`).
pub fn image_registry(reference: &str) -> String {
    let name = reference.split('@').next().unwrap_or(reference);
    match name.split_once('/') {
        Some((first, _)) if first.contains('.') || first.contains(':') || first == "localhost" => {
            first.to_ascii_lowercase()
        }
        _ => "docker.io".into(),
    }
}

/// Whether `reference` may run under `allowed` (empty: any registry).
pub fn is_allowed(allowed: &[String], reference: &str) -> bool {
    allowed.is_empty() || allowed.contains(&image_registry(reference))
}

/// Why `reference` may not run under `allowed`, in words both ends use; None if it may.
pub fn refusal(allowed: &[String], reference: &str) -> Option<String> {
    (!is_allowed(allowed, reference)).then(|| {
        format!(
            "image {reference} comes from registry {}, which the toolbox's allowed_registries ({}) does not list",
            image_registry(reference),
            allowed.join(", ")
        )
    })
}

/// A list as a toolbox keeps it: each a registry host (`ghcr.io`, `localhost:5000`),
/// lowercased, no scheme or path, no duplicates.
pub fn normalize(field: &str, given: &[String]) -> Result<Vec<String>, Invalid> {
    let mut c = Checker::new();
    let mut out: Vec<String> = Vec::new();
    if given.len() > MAX_ALLOWED {
        c.fail(field, format!("at most {MAX_ALLOWED} registries"));
    }
    for (i, r) in given.iter().enumerate() {
        let r = r.trim().to_ascii_lowercase();
        let ok = !r.is_empty()
            && r.len() <= 253
            && r.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-.:[]".contains(&b))
            && !r.starts_with(['.', '-', ':']);
        if !ok {
            c.fail(
                format!("{field}[{i}]"),
                "must be a registry host such as docker.io, ghcr.io or localhost:5000 (no scheme or path)",
            );
        } else if !out.contains(&r) {
            out.push(r);
        }
    }
    c.finish().map(|()| out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reference_names_its_registry_or_docker_hub() {
        assert_eq!(image_registry("fx"), "docker.io");
        assert_eq!(image_registry("fx:1"), "docker.io");
        assert_eq!(image_registry("mcp/fetch:latest"), "docker.io");
        assert_eq!(image_registry("docker.io/mcp/fetch"), "docker.io");
        assert_eq!(image_registry("GHCR.io/a/b:1"), "ghcr.io");
        assert_eq!(
            image_registry("localhost:5000/fx@sha256:aa"),
            "localhost:5000"
        );
        assert_eq!(image_registry("localhost/fx"), "localhost");
        assert_eq!(image_registry("fx@sha256:aa"), "docker.io");
    }

    #[test]
    fn an_empty_list_allows_any_registry_and_a_list_only_its_own() {
        assert!(is_allowed(&[], "evil.example/x"));
        let list = vec!["ghcr.io".to_string()];
        assert!(is_allowed(&list, "ghcr.io/a/b"));
        assert!(!is_allowed(&list, "a/b"));
        let why = refusal(&list, "a/b").unwrap();
        assert!(why.contains("registry docker.io") && why.contains("allowed_registries (ghcr.io)"));
    }

    #[test]
    fn a_list_is_hosts_lowercased_once_each() {
        let got = normalize(
            "allowed_registries",
            &["GHCR.io".into(), "ghcr.io".into(), "localhost:5000".into()],
        );
        assert_eq!(got.unwrap(), vec!["ghcr.io", "localhost:5000"]);
        for bad in ["", "https://ghcr.io", "ghcr.io/a", ".x"] {
            let e = normalize("allowed_registries", &[bad.to_string()]).unwrap_err();
            assert_eq!(e.0[0].field, "allowed_registries[0]", "{bad}");
        }
    }
}
