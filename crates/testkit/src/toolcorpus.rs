//! A thousand realistic MCP tools across twenty servers, for the tool search's relevance
//! test and benchmark. Each server has hand-written tools (what its real MCP server
//! offers, with near-duplicates across servers: issues on three trackers, messages on
//! two chats, mail on two providers, SQL on two databases) and is filled up to fifty
//! with the ordinary list/get/create/update/delete tools over its other resources, the
//! way generated API servers look. Deterministic: the same corpus every time.

/// One tool as a server would list it.
#[derive(Debug, Clone)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// (parameter, its description)
    pub params: Vec<(String, String)>,
}

impl ToolSpec {
    /// The tool's `inputSchema`.
    pub fn input_schema(&self) -> serde_json::Value {
        let props: serde_json::Map<String, serde_json::Value> = self
            .params
            .iter()
            .map(|(k, d)| {
                (
                    k.clone(),
                    serde_json::json!({ "type": "string", "description": d }),
                )
            })
            .collect();
        serde_json::json!({ "type": "object", "properties": props })
    }
}

pub struct ServerSpec {
    pub name: &'static str,
    pub tools: Vec<ToolSpec>,
}

pub const TOOLS_PER_SERVER: usize = 50;

/// server, its own words (product, container), hand-written tools (name | description |
/// param: description; …), and the other resources it manages (filler).
struct Seed {
    server: &'static str,
    product: &'static str,
    container: &'static str,
    tools: &'static str,
    resources: &'static [&'static str],
}

const SEEDS: &[Seed] = &[
    Seed { server: "github", product: "GitHub", container: "repository", resources: &["webhook", "deploy key", "gist", "milestone", "team", "secret", "environment", "runner"], tools: "
create_issue|Open a new issue in a GitHub repository to report a bug or propose a feature.|owner: account that owns the repository; repo: repository name; title: short summary; body: details in Markdown; labels: comma-separated labels
list_issues|List open or closed issues of a GitHub repository, filtered by label, assignee or state.|owner: account; repo: repository; state: open, closed or all; labels: filter by labels
create_pull_request|Propose merging a branch into another in a GitHub repository, with a title and description for review.|owner: account; repo: repository; head: branch with the changes; base: branch to merge into; title: summary
merge_pull_request|Merge an approved pull request into its base branch (merge, squash or rebase).|owner: account; repo: repository; number: pull request number; method: merge, squash or rebase
search_code|Find source files containing a text or symbol across GitHub repositories.|q: text or symbol to look for; language: programming language filter
get_file_contents|Read a file or directory listing at a path and branch of a GitHub repository.|owner: account; repo: repository; path: file path; ref: branch, tag or commit
create_branch|Start a new branch from an existing branch or commit in a GitHub repository.|owner: account; repo: repository; branch: new branch name; from: source branch or commit
list_workflow_runs|Show recent GitHub Actions CI runs of a repository with their status and conclusion.|owner: account; repo: repository; status: queued, in_progress or completed
add_issue_comment|Reply on an existing issue or pull request conversation in a GitHub repository.|owner: account; repo: repository; number: issue number; body: the reply in Markdown
fork_repository|Copy someone else's GitHub repository into your own account to work on it.|owner: account; repo: repository; organization: where to put the copy
star_repository|Bookmark a GitHub repository you like or want to follow.|owner: account; repo: repository
create_release|Publish a tagged version of a GitHub repository with release notes and binaries.|owner: account; repo: repository; tag: version tag; notes: what changed
" },
    Seed { server: "gitlab", product: "GitLab", container: "project", resources: &["pipeline schedule", "deploy token", "snippet", "milestone", "group", "variable", "environment", "runner"], tools: "
create_issue|Open a new issue in a GitLab project to track a bug, task or feature request.|project_id: project path or id; title: short summary; description: details; labels: comma-separated labels
list_issues|List issues of a GitLab project, filtered by milestone, label or state.|project_id: project; state: opened or closed; milestone: milestone title
create_merge_request|Ask to merge a source branch into a target branch of a GitLab project, for code review.|project_id: project; source_branch: branch with the changes; target_branch: branch to merge into; title: summary
approve_merge_request|Give your approval to a GitLab merge request so that it can be merged.|project_id: project; iid: merge request number
retry_pipeline|Run the failed jobs of a GitLab CI/CD pipeline again.|project_id: project; pipeline_id: pipeline number
get_job_log|Read the console output (trace) of a GitLab CI job to see why it failed.|project_id: project; job_id: job number
create_wiki_page|Write a new page in the wiki of a GitLab project.|project_id: project; title: page title; content: page text in Markdown
protect_branch|Stop direct pushes and force pushes to a branch of a GitLab project.|project_id: project; branch: branch name; allowed_to_merge: role allowed to merge
list_project_members|Show who has access to a GitLab project and with which role.|project_id: project
compare_commits|Show the diff between two branches, tags or commits of a GitLab project.|project_id: project; from: older ref; to: newer ref
" },
    Seed { server: "jira", product: "Jira", container: "project", resources: &["board", "component", "version", "filter", "dashboard", "workflow scheme", "field", "priority"], tools: "
create_issue|Create a Jira ticket (story, task or bug) in a project, with summary, description and priority.|project_key: project key such as ENG; summary: one-line summary; issuetype: Story, Task or Bug; priority: Highest to Lowest
transition_issue|Move a Jira ticket through its workflow, for example from To Do to In Progress or Done.|issue_key: ticket key such as ENG-42; transition: target status
search_issues_jql|Find Jira tickets with a JQL query, for example all unresolved bugs assigned to me.|jql: the JQL query; max_results: how many
assign_issue|Make someone responsible for a Jira ticket.|issue_key: ticket key; account_id: the assignee
log_work|Record time spent on a Jira ticket in its worklog.|issue_key: ticket key; time_spent: for example 2h 30m; comment: what was done
add_comment|Add a remark to the discussion of a Jira ticket.|issue_key: ticket key; body: comment text
get_sprint|Show the active sprint of a Jira Scrum board with its goal and dates.|board_id: board; state: active, future or closed
link_issues|Relate two Jira tickets, for example one blocks another or duplicates it.|inward: ticket key; outward: ticket key; type: Blocks, Duplicates or Relates
" },
    Seed { server: "linear", product: "Linear", container: "team", resources: &["cycle", "label", "workflow state", "roadmap", "initiative", "view", "template", "attachment"], tools: "
create_issue|File a new Linear issue for a team, with title, description, priority and estimate.|team_id: the team; title: summary; description: Markdown details; priority: 0 (none) to 4 (low); estimate: points
update_issue_status|Change the workflow state of a Linear issue, for example to In Progress or Done.|issue_id: identifier such as ENG-123; state: target state
list_my_issues|Show the Linear issues assigned to the current user, by priority.|state: filter by state
create_project|Start a Linear project grouping issues toward a goal with a target date.|name: project name; team_ids: teams; target_date: due date
add_issue_to_cycle|Schedule a Linear issue into a cycle (a time-boxed iteration).|issue_id: issue; cycle_id: cycle
" },
    Seed { server: "slack", product: "Slack", container: "workspace", resources: &["user group", "reminder", "bookmark", "emoji", "canvas", "workflow", "app", "call"], tools: "
post_message|Send a message to a Slack channel or direct conversation, optionally as a reply in a thread.|channel: channel id or name; text: message text (mrkdwn); thread_ts: timestamp of the parent message to reply in a thread
list_channels|List public and private channels of the Slack workspace.|types: public_channel, private_channel; limit: page size
get_channel_history|Read recent messages posted in a Slack channel.|channel: channel id; limit: how many messages; oldest: start time
add_reaction|React to a Slack message with an emoji.|channel: channel id; timestamp: message timestamp; name: emoji name such as thumbsup
search_messages|Find Slack messages across the workspace by words, sender or date.|query: words and modifiers such as from:@ann; count: how many
set_user_status|Set your Slack status text and emoji, for example In a meeting, with an expiry.|status_text: text; status_emoji: emoji; expiration: when it clears
upload_file|Share a file in a Slack channel with a comment.|channels: channel ids; filename: name; content: file content; initial_comment: message
invite_to_channel|Add workspace members to a Slack channel.|channel: channel id; users: user ids
" },
    Seed { server: "discord", product: "Discord", container: "guild", resources: &["role", "invite", "webhook", "sticker", "scheduled event", "stage", "thread", "ban"], tools: "
send_message|Send a message to a text channel of a Discord guild (server), with optional embeds.|channel_id: the channel; content: message text; embeds: rich embeds as JSON
create_channel|Create a text or voice channel in a Discord guild.|guild_id: the guild; name: channel name; type: text or voice
kick_member|Remove a member from a Discord guild (they can join again with an invite).|guild_id: the guild; user_id: member to remove; reason: audit log reason
assign_role|Give a member of a Discord guild a role and its permissions.|guild_id: the guild; user_id: member; role_id: role
timeout_member|Mute a Discord guild member for a while so they cannot chat or speak in voice.|guild_id: the guild; user_id: member; minutes: how long
" },
    Seed { server: "gmail", product: "Gmail", container: "mailbox", resources: &["filter", "label", "forwarding address", "send-as alias", "delegate", "history", "attachment", "setting"], tools: "
send_email|Compose and send a mail message from the user's Google account to recipients, with cc, bcc and attachments.|to: recipient addresses; subject: subject line; body: message text; cc: copy recipients
search_emails|Find messages in the Google mailbox with Gmail search operators, for example from:bob has:attachment.|q: search query; max_results: how many
create_draft|Save a mail message as a draft in the Google account without sending it.|to: recipients; subject: subject; body: text
archive_thread|Remove a conversation from the inbox without deleting it (Gmail archive).|thread_id: conversation id
mark_as_read|Mark Gmail messages read or unread.|message_ids: messages; read: true or false
reply_to_thread|Answer the last message of a Gmail conversation, keeping it in the same thread.|thread_id: conversation id; body: reply text
" },
    Seed { server: "outlook", product: "Outlook", container: "mailbox", resources: &["mail folder", "rule", "category", "contact folder", "focused override", "attachment", "signature", "setting"], tools: "
send_mail|Send a message from the user's Microsoft 365 Outlook mailbox to recipients.|to: recipient addresses; subject: subject; body: HTML or text body; importance: low, normal or high
list_messages|List messages in an Outlook mail folder such as Inbox or Sent Items.|folder: folder name; top: how many; filter: OData filter
move_message|File an Outlook message into another mail folder.|message_id: message; destination: folder id
create_event|Put a meeting in the user's Outlook calendar and invite attendees through Microsoft 365.|subject: title; start: start time; end: end time; attendees: invitee addresses; online: create a Teams meeting link
set_automatic_replies|Turn on an out-of-office auto-reply in Outlook for a period.|message: reply text; start: from; end: until
" },
    Seed { server: "calendar", product: "Google Calendar", container: "calendar", resources: &["calendar list entry", "acl rule", "color", "setting", "working location", "resource", "notification", "subscription"], tools: "
create_event|Schedule an event in Google Calendar with a time, place and guests, and send them invitations.|calendar_id: calendar, primary by default; summary: title; start: start time; end: end time; attendees: guest addresses
list_events|Show upcoming events of a Google Calendar between two dates.|calendar_id: calendar; time_min: from; time_max: until
find_free_time|Find slots when all the given people are available for a meeting (free/busy).|emails: people; time_min: from; time_max: until; duration: minutes needed
delete_event|Cancel an event in Google Calendar and notify its guests.|calendar_id: calendar; event_id: event
respond_to_invitation|Accept, decline or tentatively accept a meeting invitation.|event_id: event; response: accepted, declined or tentative
" },
    Seed { server: "drive", product: "Google Drive", container: "drive", resources: &["shared drive", "comment", "revision", "permission", "shortcut", "label", "change", "app"], tools: "
upload_file|Store a local file in Google Drive, in a chosen folder.|name: file name; folder_id: destination folder; content: file bytes; mime_type: type
search_files|Find documents, spreadsheets and folders in Google Drive by name, type or content.|q: Drive query; page_size: how many
share_file|Give people access to a Google Drive document as viewer, commenter or editor.|file_id: document; email: person; role: reader, commenter or writer
export_document|Download a Google Doc or Sheet converted to PDF, Word or CSV.|file_id: document; mime_type: target format
create_folder|Make a new folder in Google Drive to organise documents.|name: folder name; parent_id: parent folder
" },
    Seed { server: "notion", product: "Notion", container: "workspace", resources: &["block", "comment", "user", "database property", "template", "integration", "view", "link preview"], tools: "
create_page|Write a new Notion page inside a parent page or database, with content blocks.|parent_id: parent page or database; title: page title; content: blocks in Markdown
query_database|Filter and sort the rows of a Notion database, for example tasks due this week.|database_id: database; filter: Notion filter JSON; sorts: sort order
append_blocks|Add paragraphs, to-dos or headings at the end of a Notion page.|block_id: page or block; children: blocks to add
search_workspace|Find Notion pages and databases by title across the workspace.|query: words in the title; filter: page or database
" },
    Seed { server: "postgres", product: "PostgreSQL", container: "database", resources: &["schema", "role", "extension", "replication slot", "publication", "sequence", "trigger", "tablespace"], tools: "
run_query|Execute a read-only SQL SELECT against the PostgreSQL database and return the rows.|sql: the SELECT statement; params: bind parameters
list_tables|Show the tables of a PostgreSQL schema with their row estimates.|schema: schema name, public by default
describe_table|Show the columns, types, constraints and indexes of a PostgreSQL table.|table: table name; schema: schema name
explain_query|Show the PostgreSQL execution plan of a SQL statement to find out why it is slow.|sql: the statement; analyze: run it to get real timings
list_active_connections|Show current sessions of the PostgreSQL server from pg_stat_activity, with their running statements and wait events.|database: filter by database
" },
    Seed { server: "mysql", product: "MySQL", container: "database", resources: &["user", "grant", "event", "view", "procedure", "trigger", "partition", "binlog"], tools: "
execute_sql|Run a SQL statement on the MySQL server and return the result rows.|query: SQL text; database: default database
show_tables|List the tables of a MySQL database.|database: database name
show_processlist|Show the threads running on the MySQL server and what each is executing.|full: show full statements
" },
    Seed { server: "stripe", product: "Stripe", container: "account", resources: &["price", "product", "coupon", "payout", "dispute", "tax rate", "webhook endpoint", "payment link"], tools: "
create_refund|Give money back to a customer for a card charge or payment intent, fully or in part.|payment_intent: the payment; amount: amount in cents, all by default; reason: duplicate, fraudulent or requested_by_customer
create_customer|Add a customer record to Stripe with email, name and payment method.|email: customer email; name: full name; payment_method: card or payment method id
create_invoice|Bill a Stripe customer with an invoice of line items, sent by email.|customer: customer id; items: line items; days_until_due: payment term
list_charges|Show recent card payments in the Stripe account with their status.|customer: filter by customer; limit: how many
cancel_subscription|Stop a customer's recurring Stripe subscription now or at the end of the period.|subscription: subscription id; at_period_end: true to wait
get_balance|Show the Stripe account's available and pending funds by currency.|
" },
    Seed { server: "shopify", product: "Shopify", container: "store", resources: &["collection", "discount code", "gift card", "location", "theme", "metafield", "fulfillment", "draft order"], tools: "
list_orders|Show recent orders of the Shopify store with their payment and shipping status.|status: open, closed or cancelled; created_at_min: since
update_inventory|Set how many units of a product variant are in stock at a store location.|inventory_item_id: item; location_id: location; available: units on hand
create_product|Add a product with variants, prices and images to the Shopify catalog.|title: product name; variants: sizes and prices; images: image URLs
fulfill_order|Mark a Shopify order as shipped with a tracking number, and tell the buyer.|order_id: order; tracking_number: carrier tracking number; notify_customer: send an email
" },
    Seed { server: "salesforce", product: "Salesforce", container: "org", resources: &["campaign", "case", "contract", "quote", "report", "task", "user", "territory"], tools: "
create_lead|Record a new sales prospect in Salesforce CRM with company, contact details and source.|company: company name; last_name: contact's last name; email: email; lead_source: where they came from
update_opportunity_stage|Move a Salesforce deal to another pipeline stage, such as Negotiation or Closed Won.|opportunity_id: the deal; stage: new stage; amount: expected revenue
soql_query|Query Salesforce records with SOQL, for example accounts in a region.|soql: the query
log_call|Record a phone conversation with a contact as an activity in Salesforce.|who_id: contact or lead; subject: subject; notes: what was discussed
" },
    Seed { server: "zendesk", product: "Zendesk", container: "help center", resources: &["macro", "trigger", "automation", "view", "group", "organization", "brand", "satisfaction rating"], tools: "
create_ticket|Open a customer support request in Zendesk on behalf of a requester.|subject: subject; comment: first message; requester_email: the customer; priority: low, normal, high or urgent
reply_to_ticket|Answer the customer on a Zendesk support request, publicly or as an internal note.|ticket_id: request number; body: answer; public: false for an internal note
search_tickets|Find Zendesk support requests by status, requester, tag or text.|query: Zendesk search syntax
merge_tickets|Combine duplicate Zendesk requests from the same customer into one.|target_id: request to keep; source_ids: requests to fold in
" },
    Seed { server: "s3", product: "Amazon S3", container: "bucket", resources: &["bucket policy", "lifecycle rule", "cors rule", "access point", "replication rule", "inventory", "tag set", "multipart upload"], tools: "
put_object|Upload a file to an Amazon S3 bucket under a key.|bucket: bucket name; key: object path; body: content; content_type: MIME type
get_object|Download an object from an Amazon S3 bucket.|bucket: bucket name; key: object path
list_objects|List the keys in an Amazon S3 bucket under a prefix.|bucket: bucket name; prefix: key prefix; max_keys: how many
presign_url|Make a temporary link that lets someone download an S3 object without AWS credentials.|bucket: bucket; key: object path; expires_in: seconds the link stays valid
" },
    Seed { server: "kubernetes", product: "Kubernetes", container: "cluster", resources: &["configmap", "secret", "ingress", "service account", "persistent volume claim", "cronjob", "namespace", "network policy"], tools: "
get_pods|List the pods in a Kubernetes namespace with their phase, restarts and node.|namespace: namespace; label_selector: filter such as app=web
get_pod_logs|Read the container output of a Kubernetes pod, for example to see why it crashed.|namespace: namespace; pod: pod name; container: container; tail_lines: last lines
scale_deployment|Change how many replicas a Kubernetes deployment runs.|namespace: namespace; deployment: name; replicas: count
rollout_restart|Restart every pod of a Kubernetes deployment one by one, without downtime.|namespace: namespace; deployment: name
apply_manifest|Create or update Kubernetes resources from a YAML manifest.|manifest: YAML documents; namespace: default namespace
" },
    Seed { server: "pagerduty", product: "PagerDuty", container: "account", resources: &["escalation policy", "schedule override", "maintenance window", "business service", "team", "user", "response play", "extension"], tools: "
trigger_incident|Page the on-call responder of a PagerDuty service about an outage or alert.|service_id: the affected service; title: what is wrong; urgency: high or low
acknowledge_incident|Tell PagerDuty that someone is working on an incident so that escalation stops.|incident_id: the incident
resolve_incident|Close a PagerDuty incident once the problem is fixed.|incident_id: the incident; resolution: note on what fixed it
get_oncall|Show who is on call right now for a PagerDuty schedule or escalation policy.|schedule_id: the schedule
" },
];

fn plural(noun: &str) -> String {
    if noun.ends_with('y') && !noun.ends_with("ey") {
        format!("{}ies", &noun[..noun.len() - 1])
    } else if noun.ends_with('s') || noun.ends_with('h') {
        format!("{noun}es")
    } else {
        format!("{noun}s")
    }
}

fn filler(seed: &Seed) -> Vec<ToolSpec> {
    let (p, c) = (seed.product, seed.container);
    let mut out = Vec::new();
    for noun in seed.resources {
        let id = noun.replace([' ', '-'], "_");
        let many = plural(noun);
        let param = |d: &str| vec![(format!("{id}_id"), d.to_string())];
        out.push(ToolSpec {
            name: format!("list_{}", plural(&id)),
            description: format!("List the {many} of the {p} {c}, with paging."),
            params: vec![
                ("page".into(), "page cursor".into()),
                ("per_page".into(), "page size".into()),
            ],
        });
        out.push(ToolSpec {
            name: format!("get_{id}"),
            description: format!("Get one {noun} of the {p} {c} by its id."),
            params: param(&format!("the {noun}")),
        });
        out.push(ToolSpec {
            name: format!("create_{id}"),
            description: format!("Create a {noun} in the {p} {c}."),
            params: vec![("name".into(), format!("name of the {noun}"))],
        });
        out.push(ToolSpec {
            name: format!("update_{id}"),
            description: format!("Change the settings of an existing {noun} in the {p} {c}."),
            params: param(&format!("the {noun}")),
        });
        out.push(ToolSpec {
            name: format!("search_{}", plural(&id)),
            description: format!("Find {many} in the {p} {c} whose name matches a text."),
            params: vec![("query".into(), "text to match".into())],
        });
        out.push(ToolSpec {
            name: format!("copy_{id}"),
            description: format!("Duplicate an existing {noun} of the {p} {c}."),
            params: param(&format!("the {noun} to copy")),
        });
        out.push(ToolSpec {
            name: format!("delete_{id}"),
            description: format!("Delete a {noun} from the {p} {c} permanently."),
            params: param(&format!("the {noun}")),
        });
    }
    out
}

fn parse(tools: &str) -> Vec<ToolSpec> {
    tools
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| {
            let mut f = l.splitn(3, '|');
            let name = f.next().unwrap_or_default().to_string();
            let description = f.next().unwrap_or_default().to_string();
            let params = f
                .next()
                .unwrap_or_default()
                .split(';')
                .filter_map(|p| p.split_once(':'))
                .map(|(k, d)| (k.trim().to_string(), d.trim().to_string()))
                .collect();
            ToolSpec {
                name,
                description,
                params,
            }
        })
        .collect()
}

/// The twenty servers, fifty tools each.
pub fn servers() -> Vec<ServerSpec> {
    SEEDS
        .iter()
        .map(|s| {
            let mut tools = parse(s.tools);
            for f in filler(s) {
                if tools.len() >= TOOLS_PER_SERVER {
                    break;
                }
                if !tools.iter().any(|t| t.name == f.name) {
                    tools.push(f);
                }
            }
            assert_eq!(
                tools.len(),
                TOOLS_PER_SERVER,
                "{} needs more resources",
                s.server
            );
            ServerSpec {
                name: s.server,
                tools,
            }
        })
        .collect()
}
