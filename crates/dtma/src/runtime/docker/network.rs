//! A network of its own for each container that has one, so that no server can reach
//! another's address (a compromised server calling another's `/mcp` directly would skip
//! grants and audit). The engine's bridge isolation drops traffic between two bridge
//! networks; the host — the DTMA — still reaches each container on its bridge.
//!
//! Without `egress` the network is `internal` (no route out of it); with egress it is an
//! ordinary bridge with its own name, so a change of egress never needs a network to be
//! changed in place. Inter-container traffic is off on both, for the moment two
//! generations of one server share it. Networks are labelled like containers; one whose
//! server has no container left is removed (after each removal, and once when the DTMA
//! starts, for what a killed DTMA left behind).

use super::{DockerRuntime, LABEL_MANAGED, LABEL_SERVER, LABEL_TOOLBOX, classify};
use crate::runtime::RuntimeError;
use bollard::errors::Error as DockerError;
use bollard::models::NetworkCreateRequest;
use bollard::query_parameters::{ListContainersOptionsBuilder, ListNetworksOptionsBuilder};
use std::collections::{HashMap, HashSet};
use toolbelt_model::dtma::DesiredServer;

/// The engine's bridge option that turns inter-container traffic on a network off.
pub const ICC_OPTION: &str = "com.docker.network.bridge.enable_icc";

/// The network a server's containers join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerNetwork {
    pub name: String,
    /// No route out (the entry lists no egress).
    pub internal: bool,
}

/// The network of `s` on `toolbox_id`; `None` for a stdio server without egress, which
/// speaks through the engine's attach stream and has no network at all.
pub fn server_network(toolbox_id: &str, s: &DesiredServer) -> Option<ServerNetwork> {
    let stdio = s.transport == toolbelt_model::catalog::Transport::Stdio;
    if stdio && s.egress.is_empty() {
        return None;
    }
    let internal = s.egress.is_empty();
    let base = format!("toolbelt-{toolbox_id}-{}", s.id);
    Some(ServerNetwork {
        name: if internal {
            base
        } else {
            format!("{base}-egress")
        },
        internal,
    })
}

fn labels(toolbox_id: &str, server: Option<&str>) -> HashMap<String, String> {
    let mut l = HashMap::from([
        (LABEL_MANAGED.to_string(), "true".to_string()),
        (LABEL_TOOLBOX.to_string(), toolbox_id.to_string()),
    ]);
    if let Some(s) = server {
        l.insert(LABEL_SERVER.to_string(), s.to_string());
    }
    l
}

/// A removal that may fail harmlessly: already gone, or still in use (a container of the
/// server was created meanwhile, or an old DTMA's container still runs on it).
fn ignorable(e: &DockerError) -> bool {
    matches!(
        e,
        DockerError::DockerResponseServerError {
            status_code: 403 | 404 | 409,
            ..
        }
    )
}

impl DockerRuntime {
    /// The managed networks of this toolbox: (name, server label).
    async fn networks(&self) -> Result<Vec<(String, Option<String>)>, RuntimeError> {
        let managed = format!("{LABEL_MANAGED}=true");
        let tb = format!("{LABEL_TOOLBOX}={}", self.toolbox_id);
        let filters = HashMap::from([("label", vec![managed.as_str(), tb.as_str()])]);
        let nets = self
            .docker
            .list_networks(Some(
                ListNetworksOptionsBuilder::default()
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(classify)?;
        Ok(nets
            .into_iter()
            .filter_map(|n| {
                let server = n.labels.as_ref().and_then(|l| l.get(LABEL_SERVER).cloned());
                Some((n.name?, server))
            })
            .collect())
    }

    /// Creates `net` unless it exists. The caller holds `net_lock`: engines before API
    /// 1.44 accept duplicate names, and a sweep must not remove it before its container
    /// starts.
    pub(super) async fn ensure_server_network(
        &self,
        net: &ServerNetwork,
        server: &str,
    ) -> Result<(), RuntimeError> {
        if self.networks().await?.iter().any(|(n, _)| *n == net.name) {
            return Ok(());
        }
        self.docker
            .create_network(NetworkCreateRequest {
                name: net.name.clone(),
                driver: Some("bridge".into()),
                internal: Some(net.internal),
                options: Some(HashMap::from([(ICC_OPTION.into(), "false".into())])),
                labels: Some(labels(&self.toolbox_id, Some(server))),
                ..Default::default()
            })
            .await
            .map_err(classify)?;
        Ok(())
    }

    /// Removes the networks whose server has no container left (`only`: of that server
    /// alone), and the toolbox-wide network of DTMAs before per-server networks once
    /// nothing uses it.
    pub(super) async fn sweep_networks(&self, only: Option<&str>) -> Result<(), RuntimeError> {
        let _held = self.net_lock.lock().await;
        let mut filter = vec![
            format!("{LABEL_MANAGED}=true"),
            format!("{LABEL_TOOLBOX}={}", self.toolbox_id),
        ];
        if let Some(s) = only {
            filter.push(format!("{LABEL_SERVER}={s}"));
        }
        let refs: Vec<&str> = filter.iter().map(String::as_str).collect();
        let filters = HashMap::from([("label", refs)]);
        let containers = self
            .docker
            .list_containers(Some(
                ListContainersOptionsBuilder::default()
                    .all(true)
                    .filters(&filters)
                    .build(),
            ))
            .await
            .map_err(classify)?;
        let in_use: HashSet<String> = containers
            .iter()
            .filter_map(|c| c.labels.as_ref()?.get(LABEL_SERVER).cloned())
            .collect();
        for (name, server) in self.networks().await? {
            let unused = match (&server, only) {
                (Some(s), Some(o)) => s == o && !in_use.contains(s),
                (Some(s), None) => !in_use.contains(s),
                // The legacy shared network: the engine refuses while a container is on it.
                (None, None) => true,
                (None, Some(_)) => false,
            };
            if !unused {
                continue;
            }
            match self.docker.remove_network(&name).await {
                Ok(()) => tracing::debug!(network = %name, "removed an unused network"),
                Err(e) if ignorable(&e) => {}
                Err(e) => return Err(classify(e)),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use toolbelt_model::catalog::{CatalogSource, Transport};
    use toolbelt_model::server::DesiredState;

    fn server(transport: Transport, egress: &[&str]) -> DesiredServer {
        DesiredServer {
            id: toolbelt_model::ServerId::from_db("srv_01net".into()),
            name: "fx".into(),
            generation: 1,
            desired: DesiredState::Running,
            source: CatalogSource::Image {
                image: "x".into(),
                args: vec![],
            },
            transport,
            port: Some(8080),
            env: Default::default(),
            secrets: vec![],
            limits: Default::default(),
            config: Default::default(),
            egress: egress.iter().map(|s| s.to_string()).collect(),
            image_digest: None,
            allowed_registries: vec![],
        }
    }

    #[test]
    fn each_server_with_a_network_has_its_own_and_internal_without_egress() {
        assert_eq!(
            server_network("tbx_1", &server(Transport::Stdio, &[])),
            None
        );
        assert_eq!(
            server_network("tbx_1", &server(Transport::StreamableHttp, &[])),
            Some(ServerNetwork {
                name: "toolbelt-tbx_1-srv_01net".into(),
                internal: true
            })
        );
        for t in [Transport::Stdio, Transport::StreamableHttp] {
            assert_eq!(
                server_network("tbx_1", &server(t, &["api.example.com:443"])),
                Some(ServerNetwork {
                    name: "toolbelt-tbx_1-srv_01net-egress".into(),
                    internal: false
                })
            );
        }
    }
}
