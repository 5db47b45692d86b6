//! The container a server runs in, as a pure function of what to run and where: the
//! hardening defaults live here, in one place, with a test that fails if any is loosened.

use super::network::{ServerNetwork, server_network};
use super::{
    LABEL_GENERATION, LABEL_MANAGED, LABEL_NAME, LABEL_PORT, LABEL_SERVER, LABEL_TOOLBOX,
    LABEL_TRANSPORT,
};
use crate::runtime::secrets::CONTAINER_UID;
use crate::runtime::{Launch, RuntimeError};
use bollard::models::{
    ContainerCreateBody, EndpointSettings, HostConfig, HostConfigLogConfig, Mount, MountType,
    NetworkingConfig,
};
use std::collections::HashMap;
use toolbelt_model::catalog::{CatalogSource, Transport};

/// Where file-delivered secrets appear inside the container.
pub const SECRETS_TARGET: &str = "/run/secrets";
/// The only writable path: a small tmpfs, not executable.
pub const TMPFS: (&str, &str) = ("/tmp", "rw,noexec,nosuid,size=64m");

/// The engine keeps a container's log in at most this many files of this size (rotated),
/// whatever the engine's default driver: a server's log flood never fills the disk.
pub const LOG_MAX_SIZE: &str = "10m";
pub const LOG_MAX_FILES: &str = "3";

/// What to ask the engine for.
#[derive(Debug)]
pub struct ContainerSpec {
    /// The container's name (`toolbelt-{toolbox}-{server}-g{generation}`).
    pub name: String,
    pub image: String,
    /// The network it joins, made before it (none: `NetworkMode=none`).
    pub network: Option<ServerNetwork>,
    pub body: ContainerCreateBody,
}

/// Docker's network mode of a container with a loopback interface only.
pub const NO_NETWORK: &str = "none";

/// The hardened container for `launch`, on the server's own network if it has one. Only
/// image sources run here; everything else is refused with the reason.
pub fn container_spec(
    launch: &Launch<'_>,
    toolbox_id: &str,
) -> Result<ContainerSpec, RuntimeError> {
    let s = launch.server;
    let (image, args) = match &s.source {
        CatalogSource::Image { image, args } => (image.clone(), args.clone()),
        CatalogSource::Package { package, .. } => {
            return Err(RuntimeError::Refused(format!(
                "this toolbox runs container images; the package {package} needs a process toolbox"
            )));
        }
        CatalogSource::Remote { .. } => {
            return Err(RuntimeError::Refused(
                "remote servers run on a remote toolbox".into(),
            ));
        }
    };
    let stdio = s.transport == Transport::Stdio;
    // A stdio server speaks through the engine's attach stream, so it needs no network:
    // none at all unless its entry asks for egress.
    let net = server_network(toolbox_id, s);
    let network = net.as_ref().map_or(NO_NETWORK, |n| n.name.as_str());
    let mut labels = HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_TOOLBOX.to_string(), toolbox_id.to_string()),
        (LABEL_SERVER.to_string(), s.id.to_string()),
        (LABEL_NAME.to_string(), s.name.clone()),
        (LABEL_GENERATION.to_string(), s.generation.to_string()),
        (
            LABEL_TRANSPORT.to_string(),
            s.transport.as_str().to_string(),
        ),
    ]);
    if let Some(p) = s.port {
        labels.insert(LABEL_PORT.to_string(), p.to_string());
    }
    let env: Vec<String> = s
        .env
        .iter()
        .chain(launch.secret_env.iter())
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    // The one host path a container sees: its own secrets, read-only.
    let mounts = launch.secrets_dir.as_ref().map(|dir| {
        vec![Mount {
            typ: Some(MountType::BIND),
            source: Some(dir.display().to_string()),
            target: Some(SECRETS_TARGET.into()),
            read_only: Some(true),
            ..Default::default()
        }]
    });
    let memory = i64::from(s.limits.memory_mb) * 1024 * 1024;
    let host = HostConfig {
        cap_drop: Some(vec!["ALL".into()]),
        security_opt: Some(vec!["no-new-privileges:true".into()]),
        readonly_rootfs: Some(true),
        tmpfs: Some(HashMap::from([(TMPFS.0.into(), TMPFS.1.into())])),
        pids_limit: Some(i64::from(s.limits.pids)),
        memory: Some(memory),
        // No swap beyond the memory limit.
        memory_swap: Some(memory),
        nano_cpus: Some((s.limits.cpus * 1e9) as i64),
        mounts,
        network_mode: Some(network.to_string()),
        privileged: Some(false),
        publish_all_ports: Some(false),
        log_config: Some(HostConfigLogConfig {
            typ: Some("json-file".into()),
            config: Some(HashMap::from([
                ("max-size".into(), LOG_MAX_SIZE.into()),
                ("max-file".into(), LOG_MAX_FILES.into()),
            ])),
        }),
        ..Default::default()
    };
    let body = ContainerCreateBody {
        image: Some(image.clone()),
        cmd: (!args.is_empty()).then_some(args),
        env: Some(env),
        labels: Some(labels),
        user: Some(format!("{CONTAINER_UID}:{CONTAINER_UID}")),
        attach_stdin: Some(stdio),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        // Stdio servers read the protocol from stdin, which must stay open across
        // attaches (a re-adopting DTMA attaches again).
        open_stdin: Some(stdio),
        stdin_once: Some(false),
        tty: Some(false),
        host_config: Some(host),
        networking_config: (network != NO_NETWORK).then(|| NetworkingConfig {
            endpoints_config: Some(HashMap::from([(
                network.to_string(),
                EndpointSettings {
                    aliases: Some(vec![s.name.clone()]),
                    ..Default::default()
                },
            )])),
        }),
        ..Default::default()
    };
    Ok(ContainerSpec {
        name: format!("toolbelt-{toolbox_id}-{}-g{}", s.name, s.generation),
        image,
        network: net,
        body,
    })
}

#[cfg(test)]
#[path = "spec_tests.rs"]
mod tests;
