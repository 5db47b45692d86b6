//! Tool search relevance, measured on the labelled set below: 1,000 tools across 20
//! servers (`toolbelt_testkit::toolcorpus`, with near-duplicates across servers), and
//! natural-language queries each naming the tool a careful person would pick. No query
//! shares a (stemmed, non-stop) word with its target's full name, so this measures
//! search, not string matching. The set was written before any tuning; the odd-numbered
//! queries are held out (never looked at while tuning). Fails below 90 % top-3 on either
//! half; prints top-1 and top-3 of both (`--nocapture`).

use rmcp::model::Tool;
use std::sync::Arc;
use toolbelt_gateway::search::Index;
use toolbelt_gateway::search::words::Words;
use toolbelt_model::ServerId;

const QUERIES: &[(&str, &str)] = &[
    (
        "report a bug in a repo so the maintainers see it",
        "github__create_issue",
    ),
    (
        "squash an approved PR into the base branch",
        "github__merge_pull_request",
    ),
    (
        "which source files mention a given symbol",
        "github__search_code",
    ),
    (
        "did the latest Actions CI build pass",
        "github__list_workflow_runs",
    ),
    (
        "copy somebody else's project into my own account",
        "github__fork_repository",
    ),
    (
        "publish a tagged version with notes about what changed",
        "github__create_release",
    ),
    (
        "ask for code review of my source branch against the target branch",
        "gitlab__create_merge_request",
    ),
    (
        "run the failed CI/CD jobs once more",
        "gitlab__retry_pipeline",
    ),
    (
        "show the console trace of a failed CI step",
        "gitlab__get_job_log",
    ),
    (
        "stop people force pushing to main",
        "gitlab__protect_branch",
    ),
    (
        "move ticket ENG-42 from To Do to In Progress",
        "jira__transition_issue",
    ),
    (
        "record two hours spent on a ticket in its worklog",
        "jira__log_work",
    ),
    (
        "all unresolved bugs assigned to me",
        "jira__search_issues_jql",
    ),
    ("mark one ticket as blocking another", "jira__link_issues"),
    (
        "what is the goal of the active Scrum iteration",
        "jira__get_sprint",
    ),
    (
        "schedule a ticket into the current time-boxed iteration",
        "linear__add_issue_to_cycle",
    ),
    (
        "show what is assigned to the current user sorted by priority",
        "linear__list_my_issues",
    ),
    (
        "reply in a thread in the team channel",
        "slack__post_message",
    ),
    (
        "put a thumbsup emoji on what Ann wrote",
        "slack__add_reaction",
    ),
    (
        "show colleagues I'm in a meeting until 3pm",
        "slack__set_user_status",
    ),
    (
        "read the recent conversation in #general",
        "slack__get_channel_history",
    ),
    (
        "find what Bob said last week across the workspace",
        "slack__search_messages",
    ),
    (
        "remove a troublemaker from our guild",
        "discord__kick_member",
    ),
    (
        "mute someone in voice chat for ten minutes",
        "discord__timeout_member",
    ),
    (
        "give a user moderator permissions in the guild",
        "discord__assign_role",
    ),
    (
        "compose a mail to my accountant with a bcc",
        "gmail__send_email",
    ),
    (
        "get a conversation out of the inbox without deleting it",
        "gmail__archive_thread",
    ),
    (
        "save a message for later without sending it",
        "gmail__create_draft",
    ),
    (
        "write to a colleague from my Microsoft 365 mailbox",
        "outlook__send_mail",
    ),
    (
        "turn on out-of-office while I'm on holiday",
        "outlook__set_automatic_replies",
    ),
    (
        "file this mail into the Receipts folder",
        "outlook__move_message",
    ),
    (
        "when are Ann and Bob both available for a 30 minute meeting",
        "calendar__find_free_time",
    ),
    (
        "decline Friday's meeting",
        "calendar__respond_to_invitation",
    ),
    (
        "schedule a dinner with guests on Saturday at 8",
        "calendar__create_event",
    ),
    (
        "cancel Thursday's standup and let the guests know",
        "calendar__delete_event",
    ),
    (
        "give Carol commenter access to the budget document",
        "drive__share_file",
    ),
    ("get the spreadsheet as a CSV", "drive__export_document"),
    (
        "make a place to organise the project documents",
        "drive__create_folder",
    ),
    (
        "tasks due this week from our tracker table",
        "notion__query_database",
    ),
    (
        "add a to-do at the end of the meeting notes page",
        "notion__append_blocks",
    ),
    (
        "why is this SELECT slow, show the plan",
        "postgres__explain_query",
    ),
    (
        "what columns and indexes does the orders relation have",
        "postgres__describe_table",
    ),
    (
        "which sessions are waiting on a lock, and on what statement",
        "postgres__list_active_connections",
    ),
    (
        "what threads are executing on the server right now",
        "mysql__show_processlist",
    ),
    (
        "give a customer their money back for a duplicate charge",
        "stripe__create_refund",
    ),
    (
        "stop a recurring plan at the end of the billing period",
        "stripe__cancel_subscription",
    ),
    (
        "how much money is available and pending for payout",
        "stripe__get_balance",
    ),
    (
        "bill a client for three hours of consulting, due in 30 days",
        "stripe__create_invoice",
    ),
    (
        "we now have 12 units of the blue shirt in stock at the warehouse",
        "shopify__update_inventory",
    ),
    (
        "mark a purchase as shipped with the tracking number",
        "shopify__fulfill_order",
    ),
    (
        "record a new prospect we met at the trade show",
        "salesforce__create_lead",
    ),
    (
        "move the Acme deal to Closed Won",
        "salesforce__update_opportunity_stage",
    ),
    (
        "note down the phone conversation I just had with a contact",
        "salesforce__log_call",
    ),
    (
        "answer the customer's support request with an internal note",
        "zendesk__reply_to_ticket",
    ),
    (
        "combine duplicate support requests from one customer",
        "zendesk__merge_tickets",
    ),
    (
        "temporary download link for a private file",
        "s3__presign_url",
    ),
    ("store a backup file in a bucket", "s3__put_object"),
    (
        "why did the container crash, show its output",
        "kubernetes__get_pod_logs",
    ),
    (
        "run five replicas of the web app",
        "kubernetes__scale_deployment",
    ),
    (
        "bounce all pods of the web app without downtime",
        "kubernetes__rollout_restart",
    ),
    (
        "page whoever is on call about the outage",
        "pagerduty__trigger_incident",
    ),
    ("who is on call right now", "pagerduty__get_oncall"),
    (
        "tell everyone I'm working on the outage so it stops escalating",
        "pagerduty__acknowledge_incident",
    ),
];

/// The corpus indexed, and each tool's exposed name by (server id, tool).
fn index() -> (Index, Vec<(ServerId, String)>) {
    let index = Index::default();
    let mut names = Vec::new();
    for s in toolbelt_testkit::toolcorpus::servers() {
        let id = ServerId::generate();
        let tools: Vec<Tool> = s
            .tools
            .iter()
            .map(|t| {
                let serde_json::Value::Object(schema) = t.input_schema() else {
                    unreachable!()
                };
                Tool::new(t.name.clone(), t.description.clone(), Arc::new(schema))
            })
            .collect();
        index.put_server(&id, s.name, &Arc::new(tools));
        names.push((id, s.name.to_string()));
    }
    (index, names)
}

fn ranked(index: &Index, names: &[(ServerId, String)], q: &str) -> Vec<String> {
    index
        .search(q)
        .into_iter()
        .take(10)
        .map(|h| {
            let server = &names.iter().find(|(id, _)| *id == h.doc.server).unwrap().1;
            format!("{server}__{}", h.doc.tool)
        })
        .collect()
}

#[test]
fn queries_share_no_word_with_their_target_s_name() {
    let w = Words::default();
    assert!(QUERIES.len() >= 50);
    for (q, target) in QUERIES {
        let name: Vec<String> = w.terms(target);
        let shared: Vec<String> = w
            .terms(q)
            .into_iter()
            .filter(|t| name.contains(t))
            .collect();
        assert!(shared.is_empty(), "{q:?} shares {shared:?} with {target}");
    }
}

#[test]
fn every_target_is_in_the_corpus_which_has_a_thousand_tools() {
    let (index, names) = index();
    assert_eq!(index.len(), 1000);
    assert_eq!(names.len(), 20);
    let all: Vec<String> = toolbelt_testkit::toolcorpus::servers()
        .iter()
        .flat_map(|s| {
            s.tools
                .iter()
                .map(move |t| format!("{}__{}", s.name, t.name))
        })
        .collect();
    for (_, target) in QUERIES {
        assert!(all.contains(&target.to_string()), "{target} is not a tool");
    }
}

#[test]
fn top_3_is_at_least_90_percent_on_tuning_and_held_out_queries() {
    let (index, names) = index();
    let mut report = Vec::new();
    for (half, parity) in [("tuning", 0), ("held out", 1)] {
        let (mut top1, mut top3, mut n) = (0, 0, 0);
        for (i, (q, target)) in QUERIES.iter().enumerate() {
            if i % 2 != parity {
                continue;
            }
            n += 1;
            let r = ranked(&index, &names, q);
            let pos = r.iter().position(|x| x == target);
            top1 += usize::from(pos == Some(0));
            top3 += usize::from(pos.is_some_and(|p| p < 3));
            if pos.is_none_or(|p| p >= 3) {
                println!(
                    "miss ({half}): {q:?} wants {target}, got {:?}",
                    &r[..r.len().min(3)]
                );
            }
        }
        let pct = |k: usize| 100.0 * k as f64 / n as f64;
        println!(
            "{half}: {n} queries, top-1 {:.1} %, top-3 {:.1} %",
            pct(top1),
            pct(top3)
        );
        report.push((half, pct(top3)));
    }
    for (half, p) in report {
        assert!(p >= 90.0, "{half}: top-3 {p:.1} % is below 90 %");
    }
}

#[test]
fn a_server_s_new_tool_list_replaces_its_old_one_and_a_removed_server_leaves() {
    let index = Index::default();
    let id = ServerId::generate();
    let empty = Arc::new(serde_json::Map::new());
    let v1 = Arc::new(vec![Tool::new(
        "send_fax",
        "Send a fax to a number.",
        empty.clone(),
    )]);
    index.put_server(&id, "office", &v1);
    assert_eq!(index.search("fax").len(), 1);
    let v2 = Arc::new(vec![Tool::new("print", "Print a document.", empty)]);
    index.put_server(&id, "office", &v2);
    assert!(index.search("fax").is_empty(), "the old list is gone");
    assert_eq!(index.search("document").len(), 1);
    index.remove_server(&id);
    assert!(index.is_empty() && index.search("document").is_empty());
}
