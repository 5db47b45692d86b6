//! Crash loops, backoff and its cap, the stable-run reset, failed starts and handshakes.

use super::*;
use crate::reconcile::history::{BACKOFF_CAP, CRASH_LOOP_LIMIT, QUICK, backoff};
use crate::runtime::fake::{Refuse, Start};
use toolbelt_model::dtma::Health;

/// The gaps between consecutive times, each checked against its expected backoff: at
/// least the backoff, at most one reconcile tick more.
fn assert_gaps(times: &[Instant], expected: &[Duration]) {
    let gaps: Vec<Duration> = times.windows(2).map(|w| w[1] - w[0]).collect();
    assert_eq!(gaps.len(), expected.len(), "{gaps:?}");
    for (i, (g, b)) in gaps.iter().zip(expected).enumerate() {
        assert!(
            *g >= *b && *g <= *b + TICK,
            "attempt {} came {g:?} after the previous one, expected {b:?} (+ at most {TICK:?}); all: {gaps:?}",
            i + 2
        );
    }
}

async fn a_crash_loop_backs_off_doubling_then_gives_up_with_the_log_tail(fake: FakeRuntime) {
    let w = World::start(fake);
    w.fake.behave("loop", Start::Crash(7));
    w.sup.replace_desired(vec![spec("loop")]);
    let o = w
        .until("loop", "the crash loop given up", |o| {
            o.status == ServerStatus::ErrorRuntime
        })
        .await;
    let err = o.last_error.expect("a reason");
    assert!(
        err.starts_with("crashed 5 times in a row (last exit code 7); not restarting"),
        "{err}"
    );
    assert!(err.contains("MCP handshake failed"), "{err}");
    assert!(
        err.ends_with("last log lines:\nloop starting\ncrashing on start"),
        "the log tail is kept: {err}"
    );
    assert_eq!(o.restarts, i64::from(CRASH_LOOP_LIMIT));
    assert_eq!((o.health, o.container_id), (Health::Failing, None));
    let expected: Vec<Duration> = (1..CRASH_LOOP_LIMIT).map(backoff).collect();
    assert_eq!(
        expected,
        [1, 2, 4, 8].map(Duration::from_secs),
        "doubling from one second"
    );
    assert_gaps(&w.fake.attempts("loop"), &expected);
    assert!(
        w.fake.handles().is_empty(),
        "every crashed instance removed"
    );

    // Given up is given up: an hour later nothing was tried…
    pass(Duration::from_secs(3600)).await;
    assert_eq!(w.fake.attempts("loop").len(), CRASH_LOOP_LIMIT as usize);
    // …until a restart asks for a new generation, which starts again at once.
    let id = w.sup.find("loop").expect("still desired");
    let asked = Instant::now();
    assert!(w.sup.set_state(&id, DesiredState::Running, true));
    w.until("loop", "generation 2 tried", |o| {
        o.generation == 2 && o.restarts > i64::from(CRASH_LOOP_LIMIT)
    })
    .await;
    let attempts = w.fake.attempts("loop");
    assert!(
        attempts[CRASH_LOOP_LIMIT as usize] - asked <= TICK,
        "{attempts:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_container_crash_loop_backs_off_doubling_then_gives_up_with_the_log_tail() {
    a_crash_loop_backs_off_doubling_then_gives_up_with_the_log_tail(FakeRuntime::docker()).await;
}

#[tokio::test(start_paused = true)]
async fn a_process_crash_loop_backs_off_doubling_then_gives_up_with_the_log_tail() {
    a_crash_loop_backs_off_doubling_then_gives_up_with_the_log_tail(FakeRuntime::process()).await;
}

#[tokio::test(start_paused = true)]
async fn a_start_that_keeps_failing_backs_off_up_to_the_cap_in_error_runtime() {
    let w = World::start(FakeRuntime::docker());
    for _ in 0..9 {
        w.fake
            .refuse_next("ghost", Refuse::Refused("no such image: ghost:1".into()));
    }
    w.sup.replace_desired(vec![spec("ghost")]);
    let trail = w
        .trail("ghost", "ghost running at last", |o| {
            o.status == ServerStatus::Running
        })
        .await;
    let expected: Vec<Duration> = [1, 2, 4, 8, 16, 32, 60, 60, 60]
        .map(Duration::from_secs)
        .to_vec();
    assert_eq!(expected[8], BACKOFF_CAP);
    assert_gaps(&w.fake.attempts("ghost"), &expected);
    let first_error = trail
        .iter()
        .position(|o| o.status == ServerStatus::ErrorRuntime)
        .expect("reported error_runtime");
    let (retrying, done) = trail[first_error..].split_at(trail.len() - first_error - 1);
    assert!(
        retrying
            .iter()
            .all(|o| o.status == ServerStatus::ErrorRuntime)
            && done[0].status == ServerStatus::Running,
        "retries stay in error_runtime (no flicker to deploying): {trail:#?}"
    );
    assert_eq!(
        trail[first_error].last_error.as_deref(),
        Some("no such image: ghost:1")
    );
    let last = trail.last().unwrap();
    assert_eq!(last.last_error, None, "a good start clears the reason");
    assert_eq!(last.restarts, 0, "it never ran, so it never restarted");
}

#[tokio::test(start_paused = true)]
async fn an_engine_that_does_not_answer_a_create_is_retried_without_counting() {
    let w = World::start(FakeRuntime::docker());
    w.fake
        .refuse_next("fx", Refuse::Unavailable("engine restarting".into()));
    w.sup.replace_desired(vec![spec("fx")]);
    let trail = w
        .trail("fx", "running", |o| o.status == ServerStatus::Running)
        .await;
    assert!(
        trail.iter().all(|o| o.status != ServerStatus::ErrorRuntime),
        "an engine outage is not the server's error: {trail:#?}"
    );
    let o = trail.last().unwrap();
    assert_eq!((o.restarts, &o.last_error), (0, &None));
    assert_gaps(
        &w.fake.attempts("fx"),
        &[crate::reconcile::history::ENGINE_RETRY],
    );
}

/// Crashes the running instance `n` times right after each start.
async fn crash_quickly(w: &World, n: usize) {
    for _ in 0..n {
        let o = w.running("fx", None).await;
        let h = o.container_id.unwrap();
        w.fake.exit("fx", 3, "bye");
        w.until("fx", "the crash seen", |o| {
            o.container_id.as_deref() != Some(h.as_str())
        })
        .await;
    }
}

#[tokio::test(start_paused = true)]
async fn a_stable_run_resets_the_crash_count() {
    let w = World::start(FakeRuntime::process());
    w.sup.replace_desired(vec![spec("fx")]);
    crash_quickly(&w, 4).await;
    let o = w.running("fx", None).await;
    assert_eq!(o.restarts, 4);
    // One more quick crash would be the fifth in a row; this run lasts long enough.
    pass(QUICK).await;
    let stable = o.container_id.unwrap();
    w.fake.exit("fx", 3, "bye");
    let at = Instant::now();
    let o = w.running("fx", Some(&stable)).await;
    assert_eq!(o.restarts, 5);
    assert!(
        Instant::now() - at <= backoff(1) + TICK,
        "restarted after the first backoff again"
    );
    // The count started again from one: three quick crashes leave it running…
    crash_quickly(&w, 3).await;
    let o = w.running("fx", None).await;
    assert_eq!(o.restarts, 8);
    // …and a fourth makes five in a row.
    crash_quickly(&w, 1).await;
    let o = w
        .until("fx", "given up", |o| o.status == ServerStatus::ErrorRuntime)
        .await;
    assert!(
        o.last_error
            .unwrap()
            .starts_with("crashed 5 times in a row (last exit code 3)")
    );
}

#[tokio::test(start_paused = true)]
async fn a_server_that_never_answers_initialize_fails_its_handshake_and_is_retried() {
    let w = World::start(FakeRuntime::docker());
    w.fake.behave("mute", Start::Hang);
    w.sup.replace_desired(vec![spec("mute")]);
    let started = Instant::now();
    let o = w
        .until("mute", "the handshake given up", |o| o.restarts == 1)
        .await;
    let waited = Instant::now() - started;
    let handshake = crate::reconcile::start::HANDSHAKE;
    assert!(
        waited >= handshake && waited < handshake + Duration::from_secs(2),
        "{waited:?}"
    );
    let err = o.last_error.unwrap();
    assert!(
        err.starts_with("MCP handshake failed") && err.contains("did not answer"),
        "{err}"
    );
    assert_eq!(o.status, ServerStatus::Deploying, "retried");
    assert_eq!(w.fake.removed().len(), 1, "the mute instance was removed");
    w.fake.behave("mute", Start::Serve);
    let o = w.running("mute", None).await;
    assert_eq!((o.restarts, o.last_error), (1, None));
}

#[tokio::test(start_paused = true)]
async fn closed_pipes_are_a_crash_for_a_process_and_a_reattach_for_a_container() {
    let w = World::start(FakeRuntime::process());
    w.sup.replace_desired(vec![spec("fx")]);
    let h = w.running("fx", None).await.container_id.unwrap();
    w.fake.cut_pipes("fx");
    let o = w.running("fx", Some(&h)).await;
    assert_eq!(o.restarts, 1, "a child without its pipes counts as crashed");
    assert_eq!(w.fake.removed(), [h], "and is removed, not left behind");

    let w = World::start(FakeRuntime::docker());
    w.sup.replace_desired(vec![spec("fx")]);
    let h = w.running("fx", None).await.container_id.unwrap();
    w.fake.cut_pipes("fx");
    w.until("fx", "re-attached", |_| w.fake.attaches() == 1)
        .await;
    let o = w.running("fx", None).await;
    assert_eq!(
        o.container_id.as_deref(),
        Some(h.as_str()),
        "the same container"
    );
    assert_eq!((o.restarts, o.health), (0, Health::Ok));
    assert!(w.fake.removed().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_vanished_instance_is_replaced() {
    let w = World::start(FakeRuntime::docker());
    w.sup.replace_desired(vec![spec("fx")]);
    let h = w.running("fx", None).await.container_id.unwrap();
    w.fake.vanish("fx");
    let o = w.running("fx", Some(&h)).await;
    assert_eq!(w.fake.created().len(), 2);
    assert_eq!(
        o.restarts, 0,
        "nothing crashed: it was removed behind our back"
    );
    assert!(w.bridges.get("fx").is_some(), "bridged again");
}
