//! The stdio mux against a scripted child over `tokio::io::duplex`, on a paused clock:
//! id and progress-token rewriting, cancellation, junk, timeouts and a dying child.

use super::mux::{CallHandle, Event, Upstream};
use crate::logs::LogRing;
use crate::runtime::StdioPipes;
use futures::future::join_all;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{
    AsyncBufReadExt, AsyncWriteExt, BufReader, DuplexStream, Lines, ReadHalf, WriteHalf,
};
use toolbelt_model::rpc::ErrorKind;

const WAIT: Duration = Duration::from_secs(10);

/// The server's side of its stdio.
struct Child {
    lines: Lines<BufReader<ReadHalf<DuplexStream>>>,
    out: WriteHalf<DuplexStream>,
}

impl Child {
    /// The next message the mux wrote to the server's stdin.
    async fn recv(&mut self) -> Value {
        let line = tokio::time::timeout(WAIT, self.lines.next_line())
            .await
            .expect("the mux wrote nothing")
            .expect("readable")
            .expect("not closed");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))
    }

    /// Nothing more was written (within a virtual second).
    async fn silent(&mut self) {
        if let Ok(l) = tokio::time::timeout(Duration::from_secs(1), self.lines.next_line()).await {
            panic!("unexpected message: {l:?}");
        }
    }

    async fn send_bytes(&mut self, b: &[u8]) {
        self.out.write_all(b).await.expect("the mux reads");
    }

    async fn send(&mut self, v: Value) {
        self.send_bytes(format!("{v}\n").as_bytes()).await;
    }

    async fn answer(&mut self, req: &Value, result: Value) {
        self.send(json!({ "jsonrpc": "2.0", "id": req["id"], "result": result }))
            .await;
    }
}

fn upstream() -> (Arc<Upstream>, Child) {
    let (ours, theirs) = tokio::io::duplex(64 * 1024);
    let (stdout, stdin) = tokio::io::split(ours);
    let pipes = StdioPipes {
        stdout: Box::new(stdout),
        stdin: Box::new(stdin),
    };
    let up = Upstream::spawn("fx", pipes, Arc::new(LogRing::new(100)));
    let (r, w) = tokio::io::split(theirs);
    let child = Child {
        lines: BufReader::new(r).lines(),
        out: w,
    };
    (up, child)
}

fn request(id: Value, method: &str, params: Value) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params })
}

async fn next(call: &mut CallHandle, id: &Value) -> Event {
    call.next(WAIT, id).await
}

async fn done(call: &mut CallHandle, id: &Value) -> Value {
    match next(call, id).await {
        Event::Done(v) => v,
        Event::Relay(v) => panic!("a relay, not the reply: {v}"),
    }
}

#[tokio::test(start_paused = true)]
async fn many_callers_with_clashing_ids_each_get_their_own_answer() {
    let (up, mut child) = upstream();
    // Fifty callers, every one using id 1 (and ten more reusing "a"), some sharing a session.
    let ids: Vec<(Value, String)> = (0..60)
        .map(|n| {
            let id = if n < 50 { json!(1) } else { json!("a") };
            (id, format!("session-{}", n % 7))
        })
        .collect();
    let mut calls: Vec<CallHandle> = ids
        .iter()
        .enumerate()
        .map(|(n, (id, session))| {
            up.call(
                request(id.clone(), "tools/call", json!({ "n": n })),
                session,
            )
        })
        .collect();
    let mut seen = Vec::new();
    for _ in 0..ids.len() {
        seen.push(child.recv().await);
    }
    let mut upstream_ids: Vec<i64> = seen.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    upstream_ids.sort();
    upstream_ids.dedup();
    assert_eq!(
        upstream_ids.len(),
        ids.len(),
        "every request gets its own upstream id"
    );
    // Answered in reverse order of arrival.
    for r in seen.iter().rev() {
        child.answer(r, json!({ "n": r["params"]["n"] })).await;
    }
    let replies = join_all(
        calls
            .iter_mut()
            .zip(&ids)
            .map(|(c, (id, _))| async move { done(c, id).await }),
    )
    .await;
    for (n, (r, (id, _))) in replies.iter().zip(&ids).enumerate() {
        assert_eq!(&r["id"], id, "the caller's own id is restored");
        assert_eq!(r["result"]["n"], n, "caller {n} got its own answer: {r}");
    }
}

#[tokio::test(start_paused = true)]
async fn progress_reaches_the_caller_that_asked_under_its_own_token() {
    let (up, mut child) = upstream();
    let params = json!({ "name": "slow", "_meta": { "progressToken": "tok" } });
    let (ida, idb) = (json!(1), json!(1));
    let mut a = up.call(request(ida.clone(), "tools/call", params.clone()), "A");
    let mut b = up.call(request(idb.clone(), "tools/call", params), "B");
    let (ra, rb) = (child.recv().await, child.recv().await);
    let (ta, tb) = (
        ra["params"]["_meta"]["progressToken"].clone(),
        rb["params"]["_meta"]["progressToken"].clone(),
    );
    assert_ne!(ta, tb, "clashing tokens are rewritten apart");
    let progress = |tok: &Value, p: u32| {
        json!({ "jsonrpc": "2.0", "method": "notifications/progress",
            "params": { "progressToken": tok, "progress": p } })
    };
    child.send(progress(&tb, 20)).await;
    child.send(progress(&ta, 10)).await;
    child.send(progress(&json!("nobody's"), 99)).await;
    for (call, id, want) in [(&mut a, &ida, 10), (&mut b, &idb, 20)] {
        match next(call, id).await {
            Event::Relay(n) => {
                assert_eq!(n["params"]["progressToken"], "tok", "{n}");
                assert_eq!(n["params"]["progress"], want, "{n}");
            }
            Event::Done(v) => panic!("expected progress, got {v}"),
        }
    }
    child.answer(&ra, json!({ "who": "a" })).await;
    child.answer(&rb, json!({ "who": "b" })).await;
    assert_eq!(done(&mut a, &ida).await["result"]["who"], "a");
    assert_eq!(done(&mut b, &idb).await["result"]["who"], "b");
}

#[tokio::test(start_paused = true)]
async fn a_cancellation_is_forwarded_with_the_upstream_id_and_ends_the_call() {
    let (up, mut child) = upstream();
    let id = json!(7);
    let mut call = up.call(request(id.clone(), "tools/call", json!({})), "s1");
    let mut other = up.call(request(id.clone(), "tools/call", json!({})), "s2");
    let req = child.recv().await;
    let other_req = child.recv().await;
    let cancel = json!({ "jsonrpc": "2.0", "method": "notifications/cancelled",
        "params": { "requestId": 7, "reason": "user" } });
    up.notify_from_client(cancel.clone(), "s1");
    let fwd = child.recv().await;
    assert_eq!(fwd["method"], "notifications/cancelled");
    assert_eq!(
        fwd["params"]["requestId"], req["id"],
        "the server's id, not the client's"
    );
    assert_eq!(fwd["params"]["reason"], "user");
    let r = done(&mut call, &id).await;
    assert_eq!(
        (&r["id"], &r["error"]["code"]),
        (&id, &json!(ErrorKind::Cancelled.code()))
    );
    // A late reply for the cancelled call goes nowhere; the other session's 7 is untouched.
    child.answer(&req, json!({ "late": true })).await;
    up.notify_from_client(cancel, "s3");
    child.silent().await;
    child.answer(&other_req, json!({ "ok": true })).await;
    assert_eq!(done(&mut other, &id).await["result"]["ok"], true);
}

#[tokio::test(start_paused = true)]
async fn a_caller_that_goes_away_cancels_its_call_upstream() {
    let (up, mut child) = upstream();
    let call = up.call(request(json!(1), "tools/call", json!({})), "s");
    let req = child.recv().await;
    drop(call);
    let fwd = child.recv().await;
    assert_eq!(fwd["method"], "notifications/cancelled");
    assert_eq!(fwd["params"]["requestId"], req["id"]);
    assert_eq!(fwd["params"]["reason"], "the client went away");
}

#[tokio::test(start_paused = true)]
async fn junk_and_oversized_lines_from_the_child_are_logged_and_skipped() {
    let (up, mut child) = upstream();
    let id = json!("q");
    let mut call = up.call(request(id.clone(), "ping", json!({})), "s");
    let req = child.recv().await;
    child.send_bytes(b"hello from a print statement\n").await;
    // A secret value across the 200th character: masked before the line is shortened.
    let key = "sk-live-ABCDEFGH1234";
    up.logs.set_redactor(Arc::new(crate::redact::Redactor::new(
        &[("API_KEY".to_string(), key.to_string())].into(),
    )));
    child
        .send_bytes(format!("{}{key}\n", "p".repeat(190)).as_bytes())
        .await;
    child.send_bytes(b"\n   \n").await; // blank lines are not junk
    child.send(json!({ "jsonrpc": "2.0" })).await; // neither request nor reply
    child
        .send(json!({ "jsonrpc": "2.0", "id": "str", "result": {} }))
        .await; // not our id
    child
        .send(json!({ "jsonrpc": "2.0", "id": 4242, "result": {} }))
        .await; // unknown: dropped
    child.send_bytes(b"\xff\xfe not utf-8\n").await;
    let big = vec![b'x'; 16 * 1024 * 1024 + 1];
    child.send_bytes(&big).await;
    child.send_bytes(b"\n").await;
    child.answer(&req, json!({ "after": "junk" })).await;
    let r = done(&mut call, &id).await;
    assert_eq!(r["result"]["after"], "junk", "still answering: {r}");
    assert!(up.is_alive());
    assert_eq!(
        up.junk_lines.load(std::sync::atomic::Ordering::Relaxed),
        6,
        "{:?}",
        up.logs.tail(10)
    );
    let logs = up.logs.tail(10);
    assert!(
        logs[0].starts_with("[stdout, not JSON-RPC] hello from a print statement"),
        "{logs:?}"
    );
    assert!(
        logs[1].ends_with(&format!("{}[secret:AP", "p".repeat(190))),
        "{logs:?}"
    );
    assert!(
        logs.iter().all(|l| l.chars().count() < 300),
        "junk is shown shortened: {logs:?}"
    );
    assert!(
        logs.iter()
            .any(|l| l.contains("unreadable output: a line over the length limit")),
        "{logs:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_stalled_request_times_out_is_cancelled_upstream_and_the_server_keeps_serving() {
    let (up, mut child) = upstream();
    let started = tokio::time::Instant::now();
    let stalled = up.call(request(json!(1), "tools/call", json!({})), "s");
    let req = child.recv().await;
    let r = stalled.finish(Duration::from_secs(30)).await;
    assert_eq!(
        tokio::time::Instant::now() - started,
        Duration::from_secs(30)
    );
    assert_eq!(r["error"]["code"], ErrorKind::UpstreamTimeout.code(), "{r}");
    assert_eq!(
        r["error"]["message"],
        "MCP server fx did not answer within 30.0 s"
    );
    let fwd = child.recv().await;
    assert_eq!(fwd["method"], "notifications/cancelled");
    assert_eq!(fwd["params"]["requestId"], req["id"]);
    assert_eq!(fwd["params"]["reason"], "timed out at the toolbox");
    child.answer(&req, json!({ "late": true })).await;

    let id = json!(2);
    let mut call = up.call(request(id.clone(), "ping", json!({})), "s");
    let req = child.recv().await;
    child.answer(&req, json!({})).await;
    assert_eq!(done(&mut call, &id).await["result"], json!({}));
}

#[tokio::test(start_paused = true)]
async fn a_dying_child_fails_every_pending_call_at_once() {
    let (up, mut child) = upstream();
    let ids: Vec<Value> = (0..5).map(|n| json!(n)).collect();
    let mut calls: Vec<CallHandle> = ids
        .iter()
        .map(|id| up.call(request(id.clone(), "tools/call", json!({})), "s"))
        .collect();
    for _ in &ids {
        child.recv().await;
    }
    let started = tokio::time::Instant::now();
    drop(child);
    for (c, id) in calls.iter_mut().zip(&ids) {
        let r = done(c, id).await;
        assert_eq!(
            (&r["id"], &r["error"]["code"]),
            (id, &json!(ErrorKind::UpstreamFailed.code()))
        );
        assert!(
            r["error"]["message"]
                .as_str()
                .unwrap()
                .starts_with("MCP server fx stopped"),
            "{r}"
        );
    }
    assert_eq!(
        tokio::time::Instant::now(),
        started,
        "no call waited for anything"
    );
    tokio::time::timeout(WAIT, up.closed())
        .await
        .expect("closed");
    assert!(!up.is_alive());
    let id = json!("late");
    let mut c = up.call(request(id.clone(), "ping", json!({})), "s");
    let r = done(&mut c, &id).await;
    assert_eq!(r["error"]["code"], ErrorKind::UpstreamUnreachable.code());
    assert_eq!(r["error"]["message"], "MCP server fx is not running");
}

#[tokio::test(start_paused = true)]
async fn a_server_request_goes_to_the_one_caller_in_flight_or_is_refused() {
    let (up, mut child) = upstream();
    // Nobody in flight and nobody listening: refused at once, never left hanging.
    child
        .send(request(json!(99), "roots/list", json!({})))
        .await;
    let refused = child.recv().await;
    assert_eq!(
        (&refused["id"], &refused["error"]["code"]),
        (&json!(99), &json!(ErrorKind::NoClientSession.code()))
    );

    let id = json!(1);
    let mut call = up.call(request(id.clone(), "tools/call", json!({})), "s");
    let req = child.recv().await;
    child
        .send(request(
            json!(100),
            "sampling/createMessage",
            json!({ "m": 1 }),
        ))
        .await;
    match next(&mut call, &id).await {
        Event::Relay(m) => assert_eq!(
            (&m["id"], &m["method"]),
            (&json!(100), &json!("sampling/createMessage"))
        ),
        Event::Done(v) => panic!("expected the server's request, got {v}"),
    }
    up.respond_from_client(&json!({ "jsonrpc": "2.0", "id": 100, "result": { "text": "hi" } }));
    let answer = child.recv().await;
    assert_eq!(
        (&answer["id"], &answer["result"]["text"]),
        (&json!(100), &json!("hi"))
    );
    child.answer(&req, json!({})).await;
    done(&mut call, &id).await;
}

#[tokio::test(start_paused = true)]
async fn the_handshake_keeps_the_servers_answer_and_says_initialized() {
    let (up, mut child) = upstream();
    let init = tokio::spawn({
        let up = up.clone();
        async move { up.initialize(Duration::from_secs(30)).await }
    });
    let req = child.recv().await;
    assert_eq!(req["method"], "initialize");
    assert_eq!(req["params"]["clientInfo"]["name"], "toolbelt-dtma");
    child
        .answer(
            &req,
            json!({ "protocolVersion": "2025-11-25", "serverInfo": { "name": "fx" } }),
        )
        .await;
    let result = init.await.unwrap().expect("a handshake");
    assert_eq!(result["serverInfo"]["name"], "fx");
    assert_eq!(up.init_result(), Some(result));
    assert_eq!(child.recv().await["method"], "notifications/initialized");

    let (up, mut child) = upstream();
    let init = tokio::spawn(async move { up.initialize(Duration::from_secs(30)).await });
    let req = child.recv().await;
    child
        .send(json!({ "jsonrpc": "2.0", "id": req["id"], "error": { "code": -32602, "message": "bad version" } }))
        .await;
    let e = init.await.unwrap().unwrap_err();
    assert!(e.to_string().contains("bad version"), "{e}");
}
