use super::*;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

#[test]
fn backoff_doubles_from_one_second_up_to_its_cap() {
    let waits: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
    assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    assert_eq!(
        backoff(0),
        secs(1),
        "a first attempt waits as long as one failure"
    );
    assert_eq!(
        backoff(u32::MAX),
        BACKOFF_CAP,
        "no overflow however long it fails"
    );
}

#[test]
fn quick_crashes_back_off_and_the_fifth_in_a_row_gives_up() {
    let t0 = Instant::now();
    let mut h = History::new(t0);
    assert!(h.may_start(t0));
    let mut now = t0;
    for n in 1..CRASH_LOOP_LIMIT {
        h.started(&format!("c{n}"), now);
        now += secs(1);
        let v = h.crashed(&format!("c{n}"), now);
        assert_eq!(
            v,
            Verdict::Retry {
                at: now + backoff(n)
            },
            "crash {n}"
        );
        assert!(!h.may_start(now), "not before the backoff");
        assert!(h.may_start(now + backoff(n)));
        now += backoff(n);
    }
    h.started("c5", now);
    assert_eq!(
        h.crashed("c5", now + secs(1)),
        Verdict::GiveUp { crashes: 5 }
    );
    assert!(h.gave_up);
    assert!(!h.may_start(now + secs(3600)), "given up is given up");
    assert_eq!(h.restarts, 5);

    h.fresh_start(now);
    assert!(h.may_start(now) && !h.gave_up && h.fast_failures == 0);
    assert_eq!(h.restarts, 5, "the restart count is history, not reset");
}

#[test]
fn a_run_of_thirty_seconds_resets_the_quick_crash_count() {
    let t0 = Instant::now();
    let mut h = History::new(t0);
    for n in 0..4 {
        h.started("c", t0);
        h.crashed("c", t0 + secs(1));
        assert_eq!(h.fast_failures, n + 1);
    }
    h.started("stable", t0);
    let v = h.crashed("stable", t0 + QUICK);
    assert_eq!(h.fast_failures, 1, "a stable run starts the count again");
    assert_eq!(
        v,
        Verdict::Retry {
            at: t0 + QUICK + secs(1)
        }
    );
}

#[test]
fn a_crash_of_an_instance_of_unknown_age_counts_as_quick() {
    let t0 = Instant::now();
    let mut h = History::new(t0);
    h.started("a", t0);
    // Another instance than the one that started (an exited container found at start).
    h.crashed("b", t0 + secs(3600));
    assert_eq!(h.fast_failures, 1);
    h.crashed("b", t0 + secs(7200));
    assert_eq!(h.fast_failures, 2, "no run was seen: quick");
}

#[test]
fn an_adopted_instance_brings_its_age_from_the_engine() {
    let t0 = Instant::now() + secs(3600);
    let mut h = History::new(t0);
    h.fast_failures = 3;
    h.adopted("old", secs(86_400), t0);
    h.crashed("old", t0 + secs(1));
    assert_eq!(h.fast_failures, 1, "it had run for a day");

    h.adopted("young", secs(2), t0);
    h.crashed("young", t0 + secs(1));
    assert_eq!(h.fast_failures, 2, "three seconds in all: quick");

    // Re-attached after its stream dropped: the run this DTMA saw start is kept.
    h.started("mine", t0);
    h.adopted("mine", Duration::ZERO, t0 + secs(40));
    h.crashed("mine", t0 + secs(41));
    assert_eq!(h.fast_failures, 1);
}

#[test]
fn failed_starts_back_off_without_giving_up() {
    let t0 = Instant::now();
    let mut h = History::new(t0);
    let mut now = t0;
    for n in 1..=10 {
        let at = h.start_failed(now);
        assert_eq!(at, now + backoff(n));
        now = at;
    }
    assert!(!h.gave_up && h.may_start(now));
    assert_eq!(h.restarts, 0, "it never ran");
    h.engine_unavailable(now);
    assert_eq!(h.next_attempt, now + ENGINE_RETRY);
    assert_eq!(h.failed_starts, 10, "an engine outage counts nothing");

    // Once it runs, the failed starts are behind it: its first crash is its first.
    h.started("c", now);
    assert_eq!(h.failed_starts, 0);
    assert_eq!(
        h.crashed("c", now),
        Verdict::Retry {
            at: now + backoff(1)
        }
    );
    assert_eq!(h.fast_failures, 1);
}

#[test]
fn the_failure_report_names_the_cause_and_keeps_the_log_tail() {
    let at = Instant::now();
    let retry = Verdict::Retry { at };
    assert_eq!(
        failure_report(retry, Some(3), None, ""),
        "exited with code 3"
    );
    assert_eq!(failure_report(retry, None, None, ""), "exited with code ?");
    assert_eq!(
        failure_report(retry, Some(1), Some("MCP handshake failed: x"), "boom"),
        "MCP handshake failed: x; last log lines:\nboom"
    );
    let out = failure_report(
        Verdict::GiveUp { crashes: 5 },
        Some(7),
        Some("MCP handshake failed: closed"),
        "line 1\nline 2",
    );
    assert_eq!(
        out,
        "crashed 5 times in a row (last exit code 7); not restarting until it is restarted or redeployed; MCP handshake failed: closed; last log lines:\nline 1\nline 2"
    );
}
