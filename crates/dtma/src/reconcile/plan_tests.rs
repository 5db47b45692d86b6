use super::*;
use crate::reconcile::history::backoff;
use std::time::Duration;

fn sid(n: u8) -> ServerId {
    ServerId::from_db(format!("srv_{n:026}"))
}

fn inst(server: u8, generation: i64, handle: &str, running: bool) -> Instance {
    Instance {
        server_id: sid(server),
        name: format!("s{server}"),
        generation,
        handle: handle.into(),
        running,
        started_at: None,
        exit_code: (!running).then_some(1),
        image_digest: None,
        endpoint: None,
    }
}

fn known(history: &History, generation: i64, link: Link) -> Known<'_> {
    Known {
        generation,
        desired: DesiredState::Running,
        removing: false,
        busy: false,
        status: ServerStatus::Running,
        history,
        link,
    }
}

fn facts(now: Instant) -> Facts {
    Facts {
        now,
        desired_known: true,
        stdio_closes_with_server: false,
    }
}

/// The actions in a stable, readable form.
fn names(actions: &[Action]) -> Vec<String> {
    let mut v: Vec<String> = actions
        .iter()
        .map(|a| match a {
            Action::Track(_, i) => format!("track {}", i.handle),
            Action::Report(_, s) => format!("report {}", s.as_str()),
            Action::Create(id) => format!("create {}", &id.as_str()[28..]),
            Action::Adopt(_, i) => format!("adopt {}", i.handle),
            Action::Crashed(_, i) => format!("crashed {}", i.handle),
            Action::Remove(Some(_), i) => format!("remove {}", i.handle),
            Action::Remove(None, i) => format!("remove unknown {}", i.handle),
            Action::Stopped(id) => format!("stopped {}", &id.as_str()[28..]),
            Action::Forget(id) => format!("forget {}", &id.as_str()[28..]),
        })
        .collect();
    v.sort();
    v
}

#[test]
fn a_missing_server_is_created_and_reported_deploying() {
    let now = Instant::now();
    let h = History::new(now);
    let k = HashMap::from([(sid(1), known(&h, 1, Link::Unbridged))]);
    assert_eq!(
        names(&plan(&k, &[], &facts(now))),
        ["create 01", "report deploying"]
    );
}

#[test]
fn a_running_bridged_instance_is_only_tracked() {
    let now = Instant::now();
    let h = History::new(now);
    let k = HashMap::from([(sid(1), known(&h, 1, Link::Bridged))]);
    let obs = [inst(1, 1, "c1", true)];
    assert_eq!(names(&plan(&k, &obs, &facts(now))), ["track c1"]);
}

#[test]
fn an_unbridged_running_instance_is_adopted_not_recreated() {
    let now = Instant::now();
    let h = History::new(now);
    let k = HashMap::from([(sid(1), known(&h, 1, Link::Unbridged))]);
    let obs = [inst(1, 1, "c1", true)];
    assert_eq!(
        names(&plan(&k, &obs, &facts(now))),
        ["adopt c1", "report deploying", "track c1"]
    );
}

#[test]
fn closed_pipes_are_a_crash_for_processes_and_a_reattach_for_containers() {
    let now = Instant::now();
    let h = History::new(now);
    let k = HashMap::from([(sid(1), known(&h, 1, Link::Closed))]);
    let obs = [inst(1, 1, "p1", true)];
    let mut f = facts(now);
    assert_eq!(
        names(&plan(&k, &obs, &f)),
        ["adopt p1", "report deploying", "track p1"]
    );
    f.stdio_closes_with_server = true;
    assert_eq!(names(&plan(&k, &obs, &f)), ["crashed p1", "track p1"]);
}

#[test]
fn an_exited_instance_is_a_crash_and_nothing_is_created_beside_it() {
    let now = Instant::now();
    let h = History::new(now);
    let k = HashMap::from([(sid(1), known(&h, 1, Link::Closed))]);
    let obs = [inst(1, 1, "c1", false)];
    assert_eq!(names(&plan(&k, &obs, &facts(now))), ["crashed c1"]);
}

#[test]
fn a_new_generation_removes_the_old_instance_first_then_creates() {
    let now = Instant::now();
    let h = History::new(now);
    let mut kn = known(&h, 2, Link::Bridged);
    kn.status = ServerStatus::PendingDeploy;
    let k = HashMap::from([(sid(1), kn)]);
    let obs = [inst(1, 1, "old", true)];
    assert_eq!(
        names(&plan(&k, &obs, &facts(now))),
        ["remove old"],
        "one slow action per server per pass: no create while the old one is removed"
    );
    assert_eq!(
        names(&plan(&k, &[], &facts(now))),
        ["create 01", "report deploying"]
    );
}

#[test]
fn a_busy_server_gets_no_slow_action() {
    let now = Instant::now();
    let h = History::new(now);
    let mut kn = known(&h, 2, Link::Unbridged);
    kn.busy = true;
    let k = HashMap::from([(sid(1), kn)]);
    for obs in [
        vec![],
        vec![inst(1, 1, "old", true)],
        vec![inst(1, 2, "dead", false)],
    ] {
        assert!(names(&plan(&k, &obs, &facts(now))).is_empty(), "{obs:?}");
    }
    let obs = [inst(1, 2, "new", true)];
    assert_eq!(names(&plan(&k, &obs, &facts(now))), ["track new"]);
}

#[test]
fn nothing_is_created_before_the_backoff_or_after_giving_up() {
    let now = Instant::now();
    let mut h = History::new(now);
    h.start_failed(now);
    let mut kn = known(&h, 1, Link::Unbridged);
    kn.status = ServerStatus::ErrorRuntime;
    let k = HashMap::from([(sid(1), kn)]);
    assert!(plan(&k, &[], &facts(now)).is_empty());
    assert!(plan(&k, &[], &facts(now + backoff(1) - Duration::from_millis(1))).is_empty());
    assert_eq!(
        names(&plan(&k, &[], &facts(now + backoff(1)))),
        ["create 01"],
        "retried without leaving error_runtime (its reason stays visible)"
    );

    let mut h = History::new(now);
    for _ in 0..crate::reconcile::CRASH_LOOP_LIMIT {
        h.crashed("c", now);
    }
    let k = HashMap::from([(sid(1), known(&h, 1, Link::Unbridged))]);
    assert!(plan(&k, &[], &facts(now + Duration::from_secs(86_400))).is_empty());
}

#[test]
fn stopping_removes_the_instance_then_reports_stopped() {
    let now = Instant::now();
    let h = History::new(now);
    let mut kn = known(&h, 1, Link::Bridged);
    kn.desired = DesiredState::Stopped;
    let k = HashMap::from([(sid(1), kn)]);
    let obs = [inst(1, 1, "c1", true)];
    assert_eq!(names(&plan(&k, &obs, &facts(now))), ["remove c1"]);
    assert_eq!(names(&plan(&k, &[], &facts(now))), ["stopped 01"]);
}

#[test]
fn a_deleted_server_is_forgotten_once_its_instances_are_gone() {
    let now = Instant::now();
    let h = History::new(now);
    let mut kn = known(&h, 1, Link::Bridged);
    kn.removing = true;
    let k = HashMap::from([(sid(1), kn.clone())]);
    let obs = [inst(1, 1, "c1", true)];
    assert_eq!(names(&plan(&k, &obs, &facts(now))), ["remove c1"]);
    kn.busy = true;
    let k = HashMap::from([(sid(1), kn.clone())]);
    assert!(plan(&k, &[], &facts(now)).is_empty(), "not while removing");
    kn.busy = false;
    let k = HashMap::from([(sid(1), kn)]);
    assert_eq!(names(&plan(&k, &[], &facts(now))), ["forget 01"]);
}

#[test]
fn instances_of_unknown_servers_are_removed_only_once_a_desired_set_was_heard() {
    let now = Instant::now();
    let obs = [inst(9, 1, "stray", true), inst(9, 2, "stray2", false)];
    let mut f = facts(now);
    f.desired_known = false;
    assert!(
        plan(&HashMap::new(), &obs, &f).is_empty(),
        "a DTMA that has not heard its desired set yet leaves containers alone"
    );
    f.desired_known = true;
    assert_eq!(
        names(&plan(&HashMap::new(), &obs, &f)),
        ["remove unknown stray", "remove unknown stray2"]
    );
}

#[test]
fn servers_are_planned_independently() {
    let now = Instant::now();
    let h = History::new(now);
    let mut busy = known(&h, 1, Link::Unbridged);
    busy.busy = true;
    let k = HashMap::from([
        (sid(1), busy),
        (sid(2), known(&h, 1, Link::Unbridged)),
        (sid(3), known(&h, 1, Link::Bridged)),
    ]);
    let obs = [inst(3, 1, "c3", false)];
    assert_eq!(
        names(&plan(&k, &obs, &facts(now))),
        ["crashed c3", "create 02", "report deploying"]
    );
}
