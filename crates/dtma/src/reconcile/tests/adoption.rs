//! A DTMA restart: containers are re-adopted as they run, processes are replaced; an
//! engine outage is survived.

use super::*;
use toolbelt_model::dtma::Health;

#[tokio::test(start_paused = true)]
async fn a_restarted_dtma_re_adopts_a_running_container_without_restarting_it() {
    let w = World::start(FakeRuntime::docker());
    w.sup.replace_desired(vec![spec("fx")]);
    let before = w.running("fx", None).await.container_id.unwrap();

    let w = w.restart_dtma();
    // Until it hears its desired set, a new DTMA leaves what it finds alone.
    pass(Duration::from_secs(30)).await;
    assert_eq!(w.fake.handles(), std::slice::from_ref(&before));
    assert!(w.fake.removed().is_empty());

    w.sup.replace_desired(vec![spec("fx")]);
    let o = w
        .until("fx", "re-adopted", |o| {
            o.status == ServerStatus::Running && o.health == Health::Ok
        })
        .await;
    assert_eq!(o.container_id, Some(before), "the same container");
    assert_eq!(w.fake.created().len(), 1, "not recreated");
    assert_eq!(w.fake.attaches(), 1);
    assert_eq!(o.restarts, 0);
    assert_eq!(o.tool_count, Some(2), "discovered again over the new pipes");
    assert!(w.bridges.get("fx").is_some());
}

#[tokio::test(start_paused = true)]
async fn a_restarted_dtma_replaces_a_process_it_cannot_re_attach_to() {
    let w = World::start(FakeRuntime::process());
    w.sup.replace_desired(vec![spec("fx")]);
    let before = w.running("fx", None).await.container_id.unwrap();

    let w = w.restart_dtma();
    w.sup.replace_desired(vec![spec("fx")]);
    let o = w.running("fx", Some(&before)).await;
    assert_eq!(w.fake.removed(), [before], "the unreachable one is removed");
    assert_eq!(w.fake.created().len(), 2);
    assert_eq!(o.restarts, 0, "replaced, not crashed");
}

#[tokio::test(start_paused = true)]
async fn a_restarted_dtma_removes_what_its_desired_set_no_longer_has() {
    let w = World::start(FakeRuntime::docker());
    w.sup.replace_desired(vec![spec("fx"), spec("old")]);
    w.running("fx", None).await;
    let old = w.running("old", None).await.container_id.unwrap();

    let w = w.restart_dtma();
    w.sup.replace_desired(vec![spec("fx")]);
    w.until("fx", "fx re-adopted", |o| o.status == ServerStatus::Running)
        .await;
    let deadline = Instant::now() + LIMIT;
    while !w.fake.removed().contains(&old) {
        assert!(Instant::now() < deadline, "the stray was never removed");
        pass(TICK).await;
    }
    assert!(w.get("old").is_none());
}

#[tokio::test(start_paused = true)]
async fn an_engine_outage_is_reported_and_the_container_is_re_attached_after_it() {
    let w = World::start(FakeRuntime::docker());
    w.sup.replace_desired(vec![spec("fx")]);
    let before = w.running("fx", None).await.container_id.unwrap();

    w.fake
        .set_unavailable(Some("cannot connect to the Docker daemon"));
    w.fake.cut_pipes("fx");
    pass(Duration::from_secs(5)).await;
    let rt = w.sup.runtime_status();
    assert!(!rt.available);
    assert_eq!(
        rt.detail.as_deref(),
        Some("runtime unavailable: cannot connect to the Docker daemon")
    );
    assert_eq!(
        w.fake.created().len(),
        1,
        "nothing created while it is down"
    );

    w.fake.set_unavailable(None);
    let o = w
        .until("fx", "re-attached", |o| {
            o.status == ServerStatus::Running && w.fake.attaches() == 1
        })
        .await;
    assert!(w.sup.runtime_status().available);
    assert_eq!(
        o.container_id,
        Some(before),
        "it kept running through the outage"
    );
    assert_eq!(o.restarts, 0);
}
