//! `toolbelt-bench`: benchmarks that print their numbers (never pass/fail on time).
//! Run through `scripts/bench.sh`, which builds in release mode and brings up PostgreSQL.

mod api;
mod callgrind;
mod chat;
mod control;
mod dashboard;
mod dtma;
mod gateway;
mod gateway_scale;
mod loadgen;
mod oauth;
mod otlp_sink;
mod procs;
mod rpc;
mod search;
mod stats;
mod telemetry;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(about = "Toolbelt's benchmarks")]
struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Control plane: cold start, idle RSS, list latency over 10,000 rows per backend.
    Control {
        #[arg(long, default_value_t = 10)]
        rounds: usize,
        #[arg(long, default_value_t = 2000)]
        requests: usize,
    },
    /// Dashboard: every page's render time and size at 1,000 servers, 500 agents and
    /// 100,000 audit events (SQLite); CSS + JS size; CPU of 200 idle `/events` streams.
    Dashboard {
        #[arg(long, default_value_t = 1000)]
        servers: usize,
        #[arg(long, default_value_t = 500)]
        agents: usize,
        #[arg(long, default_value_t = 100_000)]
        events: usize,
        /// Requests timed per page.
        #[arg(long, default_value_t = 200)]
        requests: usize,
    },
    /// DTMA: deploy time, 20 concurrent deploys, bridge overhead, idle cost.
    Dtma {
        #[arg(long, default_value_t = 3000)]
        calls: usize,
    },
    /// Gateway: added latency and throughput against direct calls, CPU per call,
    /// discovery and `tools/list` of 50 servers × 20 tools, memory with 100 sessions.
    Gateway {
        /// Calls per route at concurrency 1 (four times as many at concurrency 32).
        #[arg(long, default_value_t = 3000)]
        calls: usize,
        /// Cached `tools/list` listings timed.
        #[arg(long, default_value_t = 500)]
        lists: usize,
        /// Only the default gateway's routes (direct, remote, DTMA stdio, traced remote):
        /// no `--fsync`, HTTPS, PostgreSQL, TLS-DTMA or Docker rows, no scale run.
        #[arg(long)]
        quick: bool,
    },
    /// Instructions per `tools/call` (remote route: the gateway; stdio route: gateway +
    /// DTMA), counted by `valgrind --tool=callgrind` over `calls` calls at c=1.
    GatewayInstructions {
        #[arg(long, default_value_t = 500)]
        calls: usize,
    },
    /// What metrics and tracing cost a call, in process: a `tool.call` event's metrics,
    /// a remote call's spans with tracing off and with OTLP export on.
    GatewayTelemetry {
        #[arg(long, default_value_t = 90_000)]
        calls: usize,
    },
    /// Tool search over 1,000 tools: find_tools latency, index memory, the search-mode
    /// listing, and the listing's size in `all` vs `search` mode.
    Search {
        #[arg(long, default_value_t = 2000)]
        queries: usize,
    },
    /// Chat against the scripted LLM: chat's own time per turn and per tool step, streamed
    /// token forwarding latency, concurrent conversations.
    Chat {
        /// Turns timed per shape (without tools, with `steps` tool steps).
        #[arg(long, default_value_t = 30)]
        turns: usize,
        #[arg(long, default_value_t = 5)]
        steps: usize,
        #[arg(long, default_value_t = 50)]
        concurrent: usize,
    },
    /// Vault and OAuth: seal/open per secret, connecting and refreshing N connections
    /// against the local authorization server, header injection per call.
    Oauth {
        #[arg(long, default_value_t = 1000)]
        connections: usize,
    },
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    match Args::parse().what {
        What::Control { rounds, requests } => control::run(rounds, requests).await,
        What::Dashboard {
            servers,
            agents,
            events,
            requests,
        } => dashboard::run(servers, agents, events, requests).await,
        What::Dtma { calls } => dtma::run(calls).await,
        What::Gateway {
            calls,
            lists,
            quick,
        } => gateway::run(calls, lists, quick).await,
        What::GatewayInstructions { calls } => callgrind::run(calls).await,
        What::GatewayTelemetry { calls } => telemetry::run(calls).await,
        What::Chat {
            turns,
            steps,
            concurrent,
        } => chat::run(turns, steps, concurrent).await,
        What::Oauth { connections } => oauth::run(connections).await,
        What::Search { queries } => search::run(queries),
    }
}
