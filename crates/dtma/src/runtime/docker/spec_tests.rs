use super::*;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;
use toolbelt_model::ServerId;
use toolbelt_model::catalog::{PackageManager, ResourceLimits};
use toolbelt_model::dtma::DesiredServer;
use toolbelt_model::server::DesiredState;

const TOOLBOX: &str = "tbx_01hardening";
const NETWORK: &str = "toolbelt-tbx_01hardening-srv_01spec";

fn server(transport: Transport, port: Option<u16>) -> DesiredServer {
    DesiredServer {
        id: ServerId::from_db("srv_01spec".into()),
        name: "fx".into(),
        generation: 3,
        desired: DesiredState::Running,
        source: CatalogSource::Image {
            image: "example/fx:1".into(),
            args: vec!["--serve".into()],
        },
        transport,
        port,
        env: BTreeMap::from([("LOG".into(), "debug".into())]),
        secrets: vec![],
        limits: ResourceLimits {
            memory_mb: 64,
            cpus: 0.5,
            pids: 32,
        },
        config: Default::default(),
        egress: vec![],
        image_digest: None,
        allowed_registries: vec![],
    }
}

/// The create body as the engine receives it (fields left unset are not sent).
fn wire(s: &DesiredServer, secrets_dir: Option<&str>) -> Value {
    let launch = Launch {
        server: s,
        secrets_dir: secrets_dir.map(PathBuf::from),
        secret_env: BTreeMap::from([("TOKEN".into(), "t0ken".into())]),
        redactor: Default::default(),
    };
    let spec = container_spec(&launch, TOOLBOX).expect("an image server");
    assert_eq!(spec.name, "toolbelt-tbx_01hardening-fx-g3");
    assert_eq!(spec.image, "example/fx:1");
    serde_json::to_value(&spec.body).expect("serialisable")
}

/// Every field of the container, exactly: a field added (a bind, a capability, a device,
/// a published port, host networking, privileged…) or a default changed fails here.
#[test]
fn a_stdio_container_is_exactly_the_hardened_spec() {
    let got = wire(
        &server(Transport::Stdio, None),
        Some("/dev/shm/toolbelt-x/srv-3"),
    );
    let want = json!({
        "Image": "example/fx:1",
        "Cmd": ["--serve"],
        "Env": ["LOG=debug", "TOKEN=t0ken"],
        "User": "65534:65534",
        "AttachStdin": true,
        "AttachStdout": true,
        "AttachStderr": true,
        "OpenStdin": true,
        "StdinOnce": false,
        "Tty": false,
        "Labels": {
            "toolbelt.managed": "true",
            "toolbelt.toolbox": TOOLBOX,
            "toolbelt.server": "srv_01spec",
            "toolbelt.name": "fx",
            "toolbelt.generation": "3",
            "toolbelt.transport": "stdio"
        },
        "HostConfig": {
            "CapDrop": ["ALL"],
            "SecurityOpt": ["no-new-privileges:true"],
            "ReadonlyRootfs": true,
            "Tmpfs": { "/tmp": "rw,noexec,nosuid,size=64m" },
            "PidsLimit": 32,
            "Memory": 67108864,
            "MemorySwap": 67108864,
            "NanoCpus": 500000000,
            "Mounts": [{
                "Type": "bind",
                "Source": "/dev/shm/toolbelt-x/srv-3",
                "Target": "/run/secrets",
                "ReadOnly": true
            }],
            "NetworkMode": "none",
            "Privileged": false,
            "PublishAllPorts": false,
            "LogConfig": { "Type": "json-file", "Config": { "max-size": "10m", "max-file": "3" } }
        }
    });
    assert_eq!(
        got,
        want,
        "the container spec changed:\n{}",
        serde_json::to_string_pretty(&got).unwrap()
    );
}

#[test]
fn each_hardening_default_holds() {
    let c = wire(&server(Transport::Stdio, None), Some("/dev/shm/s"));
    let h = &c["HostConfig"];
    assert_eq!(h["CapDrop"], json!(["ALL"]), "every capability dropped");
    assert!(h.get("CapAdd").is_none(), "none added back");
    assert_eq!(h["SecurityOpt"], json!(["no-new-privileges:true"]));
    assert_eq!(h["ReadonlyRootfs"], true);
    let tmp = h["Tmpfs"]["/tmp"].as_str().unwrap();
    assert!(tmp.contains("noexec") && tmp.contains("nosuid"), "{tmp}");
    assert_eq!(
        c["User"], "65534:65534",
        "never the image's own (root) user"
    );
    assert_eq!(h["PidsLimit"], 32);
    assert_eq!(
        (&h["Memory"], &h["MemorySwap"]),
        (&json!(64 << 20), &json!(64 << 20))
    );
    assert_eq!(h["NanoCpus"], 500_000_000);
    assert_eq!(h["Privileged"], false);
    assert_eq!(
        h["NetworkMode"], "none",
        "a stdio server without egress has no network at all"
    );
    assert!(c.get("NetworkingConfig").is_none(), "{c}");
    assert_eq!(h["PublishAllPorts"], false);
    assert_eq!(
        h["LogConfig"],
        json!({ "Type": "json-file", "Config": { "max-size": "10m", "max-file": "3" } }),
        "the engine rotates the log: a flood never fills the disk"
    );
    for unset in [
        "Binds",
        "PortBindings",
        "Devices",
        "DeviceRequests",
        "VolumesFrom",
        "PidMode",
        "IpcMode",
        "UsernsMode",
        "CgroupnsMode",
        "Sysctls",
    ] {
        assert!(h.get(unset).is_none(), "{unset} is set: {h}");
    }
    assert!(c.get("ExposedPorts").is_none(), "no published ports");
    let mounts = h["Mounts"].as_array().unwrap();
    assert_eq!(mounts.len(), 1, "the secrets directory and nothing else");
    assert_eq!(
        (&mounts[0]["Target"], &mounts[0]["ReadOnly"]),
        (&json!("/run/secrets"), &json!(true))
    );
    assert!(!c.to_string().contains("docker.sock"), "no engine socket");
    assert_eq!(
        (&c["OpenStdin"], &c["StdinOnce"], &c["Tty"]),
        (&json!(true), &json!(false), &json!(false)),
        "stdin stays open across attaches"
    );
}

#[test]
fn egress_or_http_puts_the_container_on_its_own_network_only() {
    let mut egress = server(Transport::Stdio, None);
    egress.egress = vec!["api.example.com:443".into()];
    let egress_net = format!("{NETWORK}-egress");
    for (s, net) in [
        (egress, egress_net.as_str()),
        (server(Transport::StreamableHttp, Some(8080)), NETWORK),
    ] {
        let c = wire(&s, None);
        assert_eq!(c["HostConfig"]["NetworkMode"], net, "never host: {c}");
        assert_eq!(
            c["NetworkingConfig"],
            json!({ "EndpointsConfig": { net: { "Aliases": ["fx"] } } })
        );
    }
}

#[test]
fn without_secret_files_there_is_no_mount_at_all() {
    let c = wire(&server(Transport::Stdio, None), None);
    assert!(c["HostConfig"].get("Mounts").is_none(), "{c}");
}

#[test]
fn an_http_container_keeps_stdin_closed_and_labels_its_port() {
    let c = wire(&server(Transport::StreamableHttp, Some(8080)), None);
    assert_eq!(
        (&c["OpenStdin"], &c["AttachStdin"]),
        (&json!(false), &json!(false))
    );
    assert_eq!(c["Labels"]["toolbelt.port"], "8080");
    assert_eq!(c["Labels"]["toolbelt.transport"], "streamable_http");
    assert!(
        c["HostConfig"].get("PortBindings").is_none(),
        "reached over the toolbox network, never published"
    );
}

#[test]
fn only_image_sources_run_in_containers() {
    let mut s = server(Transport::Stdio, None);
    s.source = CatalogSource::Package {
        manager: PackageManager::Pypi,
        package: "mcp-server-time".into(),
        command: vec!["python".into()],
    };
    let launch = Launch {
        server: &s,
        secrets_dir: None,
        secret_env: BTreeMap::new(),
        redactor: Default::default(),
    };
    let e = container_spec(&launch, TOOLBOX).unwrap_err();
    assert!(
        matches!(&e, RuntimeError::Refused(m) if m.contains("mcp-server-time") && m.contains("process toolbox")),
        "{e}"
    );
    s.source = CatalogSource::Remote {
        url: "https://example.com/mcp".into(),
    };
    let launch = Launch {
        server: &s,
        secrets_dir: None,
        secret_env: BTreeMap::new(),
        redactor: Default::default(),
    };
    assert!(matches!(
        container_spec(&launch, TOOLBOX),
        Err(RuntimeError::Refused(_))
    ));
}
