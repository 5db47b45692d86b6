//! `toolbelt chat AGENT`: a conversation with an agent — one turn with `-m TEXT`, else one
//! turn per line read. The answer streams to stdout; tool calls, results and approvals go to
//! stderr. With `-o json` nothing streams: the chat's transcript is printed after the turn.

use super::Ctx;
use super::client::seg;
use super::output::Format;
use super::spinner::{self, Spinner};
use anyhow::{Result, anyhow};
use serde_json::{Value, json};
use std::io::{BufRead, IsTerminal, Write};
use toolbelt_chat::wire::sse;

#[derive(Debug, clap::Args)]
pub struct ChatArgs {
    /// The agent, by name or id (yours).
    pub agent: String,
    /// One turn with this message, then exit (0 done, 1 an error).
    #[arg(short = 'm', long = "message")]
    pub message: Option<String>,
    /// Continue this chat (its id, printed as `chat cht_…` on stderr).
    #[arg(long)]
    pub resume: Option<String>,
}

/// A turn's outcome as the CLI sees it.
enum Ended {
    Done,
    Failed(String),
}

pub async fn run(args: ChatArgs, ctx: &Ctx) -> Result<()> {
    let id = match &args.resume {
        Some(id) => {
            ctx.api.get(&format!("/api/v1/chats/{}", seg(id))).await?;
            id.clone()
        }
        None => {
            let v = ctx
                .api
                .post("/api/v1/chats", json!({ "agent": args.agent }))
                .await?;
            v["id"].as_str().unwrap_or_default().to_string()
        }
    };
    eprintln!("chat {id}");
    match &args.message {
        Some(m) => {
            let ended = turn(ctx, &id, m, false).await?;
            if ctx.out.format == Format::Json {
                let t = ctx.api.get(&format!("/api/v1/chats/{}", seg(&id))).await?;
                println!("{}", serde_json::to_string_pretty(&t)?);
            }
            match ended {
                Ended::Done => Ok(()),
                Ended::Failed(e) => Err(anyhow!(e)),
            }
        }
        None => {
            let interactive = std::io::stdin().is_terminal();
            loop {
                if interactive {
                    eprint!("> ");
                    let _ = std::io::stderr().flush();
                }
                let Some(line) = read_line().await? else {
                    return Ok(());
                };
                if line.trim().is_empty() {
                    continue;
                }
                if let Ended::Failed(e) = turn(ctx, &id, &line, interactive).await? {
                    eprintln!("error: {e}");
                }
            }
        }
    }
}

async fn read_line() -> Result<Option<String>> {
    tokio::task::spawn_blocking(|| {
        let mut s = String::new();
        match std::io::stdin().lock().read_line(&mut s) {
            Ok(0) => Ok(None),
            Ok(_) => Ok(Some(s.trim_end_matches(['\n', '\r']).to_string())),
            Err(e) => Err(e.into()),
        }
    })
    .await?
}

fn clip(s: &str, n: usize) -> String {
    let one_line = s.replace('\n', " ");
    if one_line.chars().count() > n {
        format!("{}…", one_line.chars().take(n).collect::<String>())
    } else {
        one_line
    }
}

/// One turn: streams its events; Ctrl-C closes the stream, which cancels the turn.
async fn turn(ctx: &Ctx, id: &str, text: &str, prompt_approvals: bool) -> Result<Ended> {
    let mut res = ctx
        .api
        .post_stream(
            &format!("/api/v1/chats/{}/messages", seg(id)),
            json!({ "text": text }),
        )
        .await?;
    let quiet = ctx.out.format == Format::Json;
    let mut decoder = sse::Decoder::default();
    let mut waiting: Option<String> = None;
    let mut out = std::io::stdout();
    // While a tool runs (from its tool_call to its result), on a terminal only.
    let mut running: Option<Spinner> = None;
    let mut tick = tokio::time::interval(spinner::TICK);
    loop {
        let chunk = tokio::select! {
            c = res.chunk() => c.map_err(|e| anyhow!("the turn's stream was cut off: {e}"))?,
            _ = tokio::signal::ctrl_c() => {
                drop(running.take());
                eprintln!("\ncancelled");
                return Ok(Ended::Failed("cancelled: the turn was stopped".into()));
            }
            _ = tick.tick(), if running.is_some() => {
                if let Some(s) = running.as_mut() {
                    s.tick();
                }
                continue;
            }
        };
        if let Some(s) = running.as_mut() {
            s.clear();
        }
        let Some(chunk) = chunk else {
            return Ok(Ended::Failed(
                "the turn's stream ended without done or error".into(),
            ));
        };
        for e in decoder.feed(&chunk) {
            let d: Value = serde_json::from_str(&e.data).unwrap_or(Value::Null);
            match e.name.as_str() {
                "text" if !quiet => {
                    print!("{}", d["delta"].as_str().unwrap_or(""));
                    let _ = out.flush();
                }
                "notice" => eprintln!("note: {}", d["message"].as_str().unwrap_or("")),
                "tool_call" if !quiet => {
                    let name = d["name"].as_str().unwrap_or("?");
                    eprintln!("\n→ {name}({}) …", clip(&d["arguments"].to_string(), 200));
                    running = Some(Spinner::start(name));
                }
                "approval_required" => {
                    running = None;
                    let aid = d["approval_id"].as_str().unwrap_or("").to_string();
                    eprintln!(
                        "waiting for approval {aid}: {}({})",
                        d["tool"].as_str().unwrap_or("?"),
                        clip(&d["arguments"].to_string(), 300)
                    );
                    if prompt_approvals {
                        decide(ctx, &aid).await?;
                    } else {
                        eprintln!("  approve it with: toolbelt approval approve {aid}");
                    }
                    waiting = Some(aid);
                }
                "tool_result" => {
                    let is_error = d["is_error"].as_bool().unwrap_or(false);
                    let t = d["text"].as_str().unwrap_or("");
                    // The ask timed out (the gateway's -32004): in a one-shot turn that
                    // ends it (exit 1); the stream is dropped, which cancels the turn.
                    if let Some(aid) = &waiting
                        && is_error
                        && t.contains("-32004")
                        && !prompt_approvals
                    {
                        return Ok(Ended::Failed(format!(
                            "approval {aid} was not given in time: {t}"
                        )));
                    }
                    waiting = None;
                    running = None;
                    if !quiet {
                        eprintln!(
                            "← {}{}",
                            if is_error { "error: " } else { "" },
                            clip(t, 300)
                        );
                    }
                }
                "done" => {
                    if !quiet {
                        println!();
                        eprintln!(
                            "[{} in, {} out tokens]",
                            d["usage"]["input_tokens"], d["usage"]["output_tokens"]
                        );
                    }
                    return Ok(Ended::Done);
                }
                "error" => {
                    if !quiet {
                        println!();
                    }
                    return Ok(Ended::Failed(format!(
                        "{} ({})",
                        d["message"].as_str().unwrap_or(""),
                        d["code"].as_str().unwrap_or("error")
                    )));
                }
                _ => {}
            }
        }
    }
}

/// Interactive: asks the owner right here, then tells the API.
async fn decide(ctx: &Ctx, aid: &str) -> Result<()> {
    eprint!("  approve? [y/N] ");
    let _ = std::io::stderr().flush();
    let yes = read_line()
        .await?
        .is_some_and(|l| matches!(l.trim(), "y" | "Y" | "yes"));
    let verb = if yes { "approve" } else { "deny" };
    ctx.api
        .post(&format!("/api/v1/approvals/{}/{verb}", seg(aid)), json!({}))
        .await?;
    eprintln!("  {verb}d");
    Ok(())
}
