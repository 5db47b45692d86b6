//! The load generator: one way to an `echo` tool (a route), with one keep-alive
//! connection and one MCP session per concurrent client, driven in repetitions that the
//! caller interleaves with other routes' (A B C A B C …) so noise lands on all alike.

use crate::rpc::{self, Rpc};
use crate::stats::{Summary, cpu_time, summarize, switches};
use anyhow::Result;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct Route {
    pub label: String,
    args: Arc<Value>,
    clients: Vec<Arc<Rpc>>,
    /// Processes whose CPU a call of this route costs (gateway, DTMA); not the upstream.
    pids: Vec<u32>,
    lat: Vec<Duration>,
    /// Calls per second of each repetition.
    rates: Vec<f64>,
    cpu: Duration,
    /// Context switches of the route's processes.
    switched: u64,
}

/// What a route's repetitions came to.
pub struct Measured {
    pub lat: Summary,
    /// The median repetition's calls per second.
    pub rate: f64,
    /// CPU of the route's processes per call, µs.
    pub cpu_us: f64,
    /// Context switches of the route's processes per call.
    pub switches: f64,
}

impl Route {
    /// `wide` sessions at `url`, each with its own connection.
    pub async fn open(
        label: impl Into<String>,
        tool: &str,
        url: &str,
        token: &str,
        pids: Vec<u32>,
        wide: usize,
    ) -> Result<Route> {
        Route::open_via(rpc::http, label, tool, url, token, pids, wide).await
    }

    /// [`Route::open`] with clients that `client` makes (one trusting a test CA).
    pub async fn open_via(
        client: impl Fn() -> reqwest::Client,
        label: impl Into<String>,
        tool: &str,
        url: &str,
        token: &str,
        pids: Vec<u32>,
        wide: usize,
    ) -> Result<Route> {
        let mut clients = Vec::with_capacity(wide);
        for _ in 0..wide {
            // A client per session: one keep-alive connection each.
            clients.push(Arc::new(Rpc::connect(&client(), url, token).await?));
        }
        let args = Arc::new(json!({ "name": tool, "arguments": { "text": "benchmark" } }));
        Ok(Route {
            label: label.into(),
            args,
            clients,
            pids,
            lat: vec![],
            rates: vec![],
            cpu: Duration::ZERO,
            switched: 0,
        })
    }

    pub fn reset(&mut self) {
        (self.lat, self.rates, self.cpu, self.switched) = (vec![], vec![], Duration::ZERO, 0);
    }

    /// One repetition: `per` calls on each of `c` sessions at once, each in its own task.
    pub async fn batch(&mut self, c: usize, per: usize, keep: bool) -> Result<()> {
        let cpu0: Vec<Duration> = self.pids.iter().map(|p| cpu_time(*p)).collect();
        let sw0: u64 = self.pids.iter().map(|p| switches(*p)).sum();
        let t = Instant::now();
        let tasks: Vec<_> = self.clients[..c]
            .iter()
            .map(|rpc| {
                let (rpc, args) = (rpc.clone(), self.args.clone());
                tokio::spawn(async move {
                    let mut lat = Vec::with_capacity(per);
                    for _ in 0..per {
                        let t = Instant::now();
                        rpc.call_tool(&args).await?;
                        lat.push(t.elapsed());
                    }
                    Ok::<_, anyhow::Error>(lat)
                })
            })
            .collect();
        let mut lat = Vec::with_capacity(c * per);
        for t in tasks {
            lat.extend(t.await??);
        }
        let wall = t.elapsed();
        if keep {
            self.rates.push(lat.len() as f64 / wall.as_secs_f64());
            self.lat.extend(lat);
            for (p, before) in self.pids.iter().zip(cpu0) {
                self.cpu += cpu_time(*p).saturating_sub(before);
            }
            let sw: u64 = self.pids.iter().map(|p| switches(*p)).sum();
            self.switched += sw.saturating_sub(sw0);
        }
        Ok(())
    }

    pub fn result(&self) -> Measured {
        let mut rates = self.rates.clone();
        rates.sort_by(f64::total_cmp);
        let rate = rates.get(rates.len() / 2).copied().unwrap_or(0.0);
        Measured {
            lat: summarize(self.lat.clone()),
            rate,
            cpu_us: self.cpu.as_secs_f64() * 1e6 / self.lat.len().max(1) as f64,
            switches: self.switched as f64 / self.lat.len().max(1) as f64,
        }
    }
}

/// Runs every route `reps` times at concurrency `c`, after one warm-up repetition each,
/// rotating the order every round.
pub async fn interleave(routes: &mut [Route], c: usize, per: usize, reps: usize) -> Result<()> {
    for r in routes.iter_mut() {
        r.reset();
        r.batch(c, per, false).await?; // warm-up: pools, caches, page faults
    }
    for round in 0..reps.max(1) {
        for i in 0..routes.len() {
            let n = routes.len();
            routes[(round + i) % n].batch(c, per, true).await?;
        }
    }
    Ok(())
}
