//! Tool search over the 1,000-tool corpus of the relevance test (20 servers × 50 tools,
//! `toolbelt_testkit::toolcorpus`), in process: the index's query time (what `find_tools`
//! costs before the view keeps the agent's tools: one hash lookup per hit), its memory
//! (RSS grown by building ten indexes, per index), the search-mode `tools/list` result
//! made and serialized, and the listing's size in `all` and `search` mode.

use crate::stats::{fmt, rss_mib, summarize};
use rmcp::model::{ListToolsResult, Tool};
use std::sync::Arc;
use std::time::{Duration, Instant};
use toolbelt_gateway::search::{Index, meta};
use toolbelt_model::ServerId;

fn corpus() -> Vec<(ServerId, &'static str, Arc<Vec<Tool>>)> {
    toolbelt_testkit::toolcorpus::servers()
        .into_iter()
        .map(|s| {
            let tools = s
                .tools
                .iter()
                .map(|t| {
                    let serde_json::Value::Object(schema) = t.input_schema() else {
                        unreachable!("an object")
                    };
                    Tool::new(
                        format!("{}__{}", s.name, t.name),
                        t.description.clone(),
                        Arc::new(schema),
                    )
                })
                .collect();
            (ServerId::generate(), s.name, Arc::new(tools))
        })
        .collect()
}

fn build(c: &[(ServerId, &'static str, Arc<Vec<Tool>>)]) -> Index {
    let index = Index::default();
    for (id, name, tools) in c {
        index.put_server(id, name, tools);
    }
    index
}

const QUERIES: &[&str] = &[
    "report a bug in a repo",
    "post a message to a team channel",
    "refund a card payment",
    "why is this query slow",
    "who is on call right now",
    "restart the web app without downtime",
    "share a document with a colleague",
    "schedule a meeting with guests",
];

/// Tokens of a listing as a model reads it: OpenAI's o200k_base encoding (tiktoken-rs
/// bundles the vocabulary, nothing is downloaded). Other models' tokenizers differ by a
/// few per cent on JSON.
fn tokens(body: &[u8]) -> anyhow::Result<usize> {
    let bpe = tiktoken_rs::o200k_base()?;
    Ok(bpe.encode_ordinary(&String::from_utf8_lossy(body)).len())
}

pub fn run(queries: usize) -> anyhow::Result<()> {
    let pid = std::process::id();
    let c = corpus();
    let t = Instant::now();
    let index = build(&c);
    let built = t.elapsed();
    let before = rss_mib(pid);
    let extra: Vec<Index> = (0..10).map(|_| build(&c)).collect();
    let per_index = (rss_mib(pid) - before) / 10.0;
    drop(extra);

    let mut times: Vec<Duration> = Vec::with_capacity(queries);
    for i in 0..queries {
        let q = QUERIES[i % QUERIES.len()];
        let t = Instant::now();
        let hits = index.search(q);
        let top: Vec<_> = hits.into_iter().take(meta::DEFAULT_LIMIT).collect();
        times.push(t.elapsed());
        std::hint::black_box(top);
    }
    let find = summarize(times);

    // The search-mode listing: the two meta tools and one always-visible tool.
    let always = c[0].2[0].clone();
    let mut times = Vec::with_capacity(queries);
    let mut search_body = Vec::new();
    for _ in 0..queries {
        let t = Instant::now();
        let mut items = meta::tools().to_vec();
        items.push(always.clone());
        let body = serde_json::to_vec(&ListToolsResult::with_all_items(items))?;
        times.push(t.elapsed());
        search_body = body;
    }
    let list = summarize(times);
    let all: Vec<Tool> = c.iter().flat_map(|(_, _, t)| t.iter().cloned()).collect();
    let all_body = serde_json::to_vec(&ListToolsResult::with_all_items(all))?;
    let (all_bytes, search_bytes) = (all_body.len(), search_body.len());
    let (all_tokens, search_tokens) = (tokens(&all_body)?, tokens(&search_body)?);

    println!("## Tool search (1,000 tools, 20 servers; {queries} queries)");
    println!();
    println!("| what | value | target |");
    println!("|---|---|---|");
    println!("| index built (1,000 tools) | {} | |", fmt(built));
    println!(
        "| find_tools ranking, p50 / p99 | {} / {} | ≤ 1 ms p50 |",
        fmt(find.p50),
        fmt(find.p99)
    );
    println!(
        "| index memory per 1,000 tools (RSS of 10 indexes / 10) | {per_index:.2} MiB | ≤ 5 MB |"
    );
    println!(
        "| search-mode tools/list result made and serialized, p50 | {} | ≤ 200 µs |",
        fmt(list.p50)
    );
    println!("| listing size, all | {all_bytes} B, {all_tokens} tokens | |");
    println!(
        "| listing size, search (2 meta tools + 1 always visible) | {search_bytes} B, {search_tokens} tokens | |"
    );
    println!();
    println!("Tokens: o200k_base (tiktoken-rs), the listing's JSON as sent.");
    Ok(())
}
