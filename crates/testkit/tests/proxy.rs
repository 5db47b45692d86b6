//! The round-robin proxy: new connections alternate between backends, a refusing backend
//! is skipped, each connection's backend and first line are recorded, and `cut` closes
//! what is open.

use std::time::Duration;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use toolbelt_testkit::proxy::RoundRobin;

/// A backend that answers every line with its name.
async fn backend(name: &'static str) -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((s, _)) = l.accept().await {
            tokio::spawn(async move {
                let (r, mut w) = s.into_split();
                let mut lines = BufReader::new(r).lines();
                while let Ok(Some(_)) = lines.next_line().await {
                    if w.write_all(format!("{name}\n").as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

async fn ask(proxy: &RoundRobin, line: &str) -> (String, BufReader<TcpStream>) {
    let mut s = BufReader::new(TcpStream::connect(proxy.addr).await.unwrap());
    s.get_mut()
        .write_all(format!("{line}\n").as_bytes())
        .await
        .unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), s.read_line(&mut answer))
        .await
        .expect("an answer")
        .unwrap();
    (answer.trim().to_string(), s)
}

#[tokio::test]
async fn new_connections_alternate_and_a_dead_backend_is_skipped() {
    let dead = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let dead_addr = dead.local_addr().unwrap();
    drop(dead);
    let proxy = RoundRobin::start(vec![backend("a").await, backend("b").await, dead_addr]).await;
    let mut seen = Vec::new();
    for i in 0..6 {
        seen.push(ask(&proxy, &format!("GET /{i} HTTP/1.1")).await.0);
    }
    // a, b, (dead → a), b, a, (dead → a)…: never the dead one, never stuck on one.
    assert_eq!(seen, ["a", "b", "a", "a", "b", "a"], "{seen:?}");
    let served = proxy.served();
    assert_eq!(
        served.iter().map(|s| s.backend).collect::<Vec<_>>(),
        [0, 1, 0, 0, 1, 0]
    );
    assert_eq!(served[3].first_line, "GET /3 HTTP/1.1");
}

#[tokio::test]
async fn cut_closes_open_connections_and_the_next_one_goes_on() {
    let proxy = RoundRobin::start(vec![backend("a").await, backend("b").await]).await;
    let (first, mut open) = ask(&proxy, "hello").await;
    assert_eq!(first, "a");
    proxy.cut();
    let mut rest = String::new();
    let n = tokio::time::timeout(Duration::from_secs(10), open.read_line(&mut rest))
        .await
        .expect("the cut connection ends")
        .unwrap_or(0);
    assert_eq!(n, 0, "closed, nothing more: {rest:?}");
    assert_eq!(ask(&proxy, "again").await.0, "b");
}
