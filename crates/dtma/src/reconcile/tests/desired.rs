//! Desired-state transitions (stop, start, restart, delete), secrets, HTTP servers.

use super::*;
use crate::bridge::Target;
use toolbelt_model::catalog::{SecretDelivery, SecretRequirement};
use toolbelt_model::dtma::Health;

#[tokio::test(start_paused = true)]
async fn stop_start_and_delete_reach_the_runtime_and_the_bridge() {
    let w = World::start(FakeRuntime::docker());
    w.sup.replace_desired(vec![spec("fx")]);
    let o = w.running("fx", None).await;
    assert_eq!((o.health, o.tool_count), (Health::Ok, Some(2)));
    let first = o.container_id.unwrap();
    assert!(w.bridges.get("fx").is_some());
    let id = w.sup.find("fx").unwrap();

    assert!(w.sup.set_state(&id, DesiredState::Stopped, false));
    let o = w
        .until("fx", "stopped", |o| o.status == ServerStatus::Stopped)
        .await;
    assert_eq!((o.container_id, o.health), (None, Health::Unknown));
    assert!(w.fake.handles().is_empty(), "the instance is removed");
    assert!(w.bridges.get("fx").is_none(), "and unbridged");
    pass(Duration::from_secs(60)).await;
    assert_eq!(w.fake.created().len(), 1, "a stopped server stays stopped");

    assert!(w.sup.set_state(&id, DesiredState::Running, false));
    let o = w.running("fx", Some(&first)).await;
    assert_eq!((o.generation, o.restarts), (1, 0), "a start is no restart");

    assert!(w.sup.remove(&id));
    assert_eq!(w.get("fx").unwrap().status, ServerStatus::Deleting);
    assert!(w.sup.find("fx").is_none(), "a deleted name is free at once");
    w.gone("fx").await;
    assert!(w.fake.handles().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_deleted_server_is_forgotten_with_its_instance_and_secret_files() {
    let w = World::start(FakeRuntime::docker());
    let mut s = spec("fx");
    s.secrets = vec![requirement("API_KEY", SecretDelivery::File)];
    w.sup
        .deploy(s, BTreeMap::from([("API_KEY".into(), "k".into())]))
        .unwrap();
    w.running("fx", None).await;
    let dir = w.fake.created()[0]
        .secrets_dir
        .clone()
        .expect("a secrets dir");
    assert!(dir.join("API_KEY").exists());
    let id = w.sup.find("fx").unwrap();
    w.sup.remove(&id);
    w.gone("fx").await;
    assert!(w.fake.handles().is_empty());
    assert!(w.bridges.get("fx").is_none());
    assert!(!dir.exists(), "its secret files are removed with it");
}

#[tokio::test(start_paused = true)]
async fn a_restart_reports_pending_deploy_until_the_new_generation_runs() {
    let w = World::start(FakeRuntime::docker());
    w.sup.replace_desired(vec![spec("fx")]);
    let old = w.running("fx", None).await.container_id.unwrap();
    // The old container takes a while to stop, as `docker stop` does.
    w.fake.set_remove_delay(Duration::from_secs(5));
    let id = w.sup.find("fx").unwrap();
    let asked = Instant::now();
    assert!(w.sup.set_state(&id, DesiredState::Running, true));
    let now = w.get("fx").unwrap();
    assert_eq!(
        (now.status, now.generation),
        (ServerStatus::PendingDeploy, 2)
    );
    let trail = w
        .trail("fx", "generation 2 running", |o| {
            o.status == ServerStatus::Running && o.container_id.as_deref() != Some(old.as_str())
        })
        .await;
    for o in &trail {
        assert_eq!(o.generation, 2);
        assert!(
            o.status != ServerStatus::Running || o.container_id.as_deref() != Some(old.as_str()),
            "the old instance is never reported running for the new generation: {trail:#?}"
        );
        assert!(
            matches!(
                o.status,
                ServerStatus::PendingDeploy | ServerStatus::Deploying | ServerStatus::Running
            ),
            "{trail:#?}"
        );
    }
    assert!(Instant::now() - asked >= Duration::from_secs(5));
    let gens: Vec<i64> = w.fake.created().iter().map(|c| c.generation).collect();
    assert_eq!(gens, [1, 2]);
    assert_eq!(w.fake.removed(), [old]);
    assert_eq!(
        trail.last().unwrap().restarts,
        0,
        "a restart asked for is no crash"
    );
}

fn requirement(name: &str, delivery: SecretDelivery) -> SecretRequirement {
    SecretRequirement {
        name: name.into(),
        description: String::new(),
        delivery,
        required: true,
    }
}

fn keyed() -> DesiredServer {
    let mut s = spec("keyed");
    s.secrets = vec![
        requirement("API_KEY", SecretDelivery::File),
        requirement("TOKEN", SecretDelivery::Env),
    ];
    s
}

#[tokio::test(start_paused = true)]
async fn a_secrets_fetch_failure_is_reported_and_retried_until_the_vault_answers() {
    let w = World::start(FakeRuntime::docker());
    w.vault.answer(Err("the vault is sealed"));
    w.sup.replace_desired(vec![keyed()]);
    let o = w
        .until("keyed", "error_runtime", |o| {
            o.status == ServerStatus::ErrorRuntime
        })
        .await;
    assert_eq!(
        o.last_error.as_deref(),
        Some("secrets unavailable: the control plane refused: 503 the vault is sealed")
    );
    assert!(
        w.fake.attempts("keyed").is_empty(),
        "nothing started without them"
    );
    pass(Duration::from_secs(10)).await;
    assert!(w.vault.calls() > 1, "asked again after a backoff");

    w.vault.answer(Ok(&[("API_KEY", "file-value")]));
    let o = w
        .until("keyed", "the missing one named", |o| {
            o.last_error.as_deref().is_some_and(|e| e.contains("TOKEN"))
        })
        .await;
    assert_eq!(
        o.last_error.as_deref(),
        Some("required secret TOKEN was not provided")
    );

    w.vault
        .answer(Ok(&[("API_KEY", "file-value"), ("TOKEN", "env-value")]));
    let o = w.running("keyed", None).await;
    assert_eq!(o.last_error, None);
    let c = &w.fake.created()[0];
    let dir = c.secrets_dir.clone().expect("file secrets get a directory");
    assert_eq!(
        std::fs::read_to_string(dir.join("API_KEY")).unwrap(),
        "file-value"
    );
    assert!(!dir.join("TOKEN").exists(), "env secrets are not files");
    assert_eq!(
        c.secret_env,
        BTreeMap::from([("TOKEN".to_string(), "env-value".to_string())])
    );

    // Kept in memory: a crash is recreated without asking the control plane again. (And
    // the failed starts before do not count toward a crash loop: it is restarted.)
    let calls = w.vault.calls();
    let h = o.container_id.unwrap();
    w.fake.exit("keyed", 1, "bye");
    w.running("keyed", Some(&h)).await;
    assert_eq!(w.vault.calls(), calls);
}

#[tokio::test(start_paused = true)]
async fn pushed_secrets_are_used_without_asking_the_control_plane() {
    let w = World::start(FakeRuntime::docker());
    w.vault.answer(Err("not to be asked"));
    w.sup
        .deploy(
            keyed(),
            BTreeMap::from([("API_KEY".into(), "a".into()), ("TOKEN".into(), "t".into())]),
        )
        .unwrap();
    w.running("keyed", None).await;
    assert_eq!(w.vault.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_http_server_is_bridged_to_its_address_and_one_without_is_an_error() {
    let w = World::start(FakeRuntime::docker());
    let mut s = spec("web");
    s.transport = Transport::StreamableHttp;
    s.port = Some(8080);
    let mut bad = spec("noaddr");
    bad.transport = Transport::StreamableHttp;
    w.sup.replace_desired(vec![s, bad]);
    let o = w.running("web", None).await;
    assert_eq!(
        o.health,
        Health::Unknown,
        "not pinged: the gateway's discovery checks it"
    );
    let want = format!("http://{}:8080", o.container_id.unwrap());
    assert!(matches!(w.bridges.get("web"), Some(Target::Http(u)) if u == want));
    let o = w
        .until("noaddr", "error_runtime", |o| {
            o.status == ServerStatus::ErrorRuntime
        })
        .await;
    assert_eq!(
        o.last_error.as_deref(),
        Some("the container has no address on the toolbox network")
    );
}

/// Names become paths on the toolbox: a desired server whose secret name or server name
/// is `../x` (or whose id is a path) is refused, pushed or heard in a heartbeat, and
/// nothing is written anywhere.
#[tokio::test(start_paused = true)]
async fn a_desired_set_carrying_a_path_is_refused_and_writes_nothing() {
    let w = World::start(FakeRuntime::docker());
    let base = w.secrets.path().to_path_buf();
    let mut bad_secret = spec("fx");
    bad_secret.secrets = vec![requirement("../x", SecretDelivery::File)];
    let mut bad_name = spec("fy");
    bad_name.name = "../x".into();
    let mut bad_id = spec("fz");
    bad_id.id = ServerId::from_db("../../x".into());
    for s in [&bad_secret, &bad_name, &bad_id] {
        let e = w
            .sup
            .deploy(
                s.clone(),
                BTreeMap::from([("../x".into(), "stolen".into())]),
            )
            .unwrap_err();
        assert!(e.to_string().contains("server."), "{e}");
    }
    let mut ok_spec = spec("ok");
    ok_spec.secrets = vec![requirement("API_KEY", SecretDelivery::File)];
    let e = w
        .sup
        .deploy(ok_spec, BTreeMap::from([("../x".into(), "v".into())]))
        .unwrap_err();
    assert!(e.to_string().contains("secrets"), "{e}");
    w.sup
        .replace_desired(vec![bad_secret, bad_name, bad_id, spec("good")]);
    w.running("good", None).await;
    pass(Duration::from_secs(5)).await;
    let created: Vec<String> = w.fake.created().iter().map(|c| c.name.clone()).collect();
    assert_eq!(created, vec!["good"], "only the plain server ran");
    assert!(w.get("fx").is_none() && w.get("../x").is_none() && w.get("fz").is_none());
    let mut found = Vec::new();
    let mut stack = vec![base.clone()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            found.push(e.path());
            if e.file_type().unwrap().is_dir() {
                stack.push(e.path());
            }
        }
    }
    assert_eq!(
        found,
        vec![base.join("toolbelt-tbx_test")],
        "only the (empty) toolbox directory exists"
    );
}
