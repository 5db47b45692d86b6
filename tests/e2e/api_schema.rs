//! API property tests (issue 13, "In CI"): schemathesis (PyPI) against the OpenAPI
//! document of a running `toolbelt up`, once as an admin and once as a member, bounded in
//! examples per operation. Every response must be declared (status, content type,
//! headers) and match its declared schema, none may be a 5xx, and every operation must
//! succeed at least once — the test seeds what each one needs ([`api_schema_world`]),
//! and `tests/python/api_schema/hooks.py` sends each operation's seed first and records
//! every status. Before any of that, the document itself must declare a response schema
//! for every body an operation answers with, so "matches its schema" means something.

use crate::api_schema_world::{Seeds, World};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::Command;
use toolbelt_e2e::Server;

/// Generated cases per operation and phase (the seeds come on top).
const EXAMPLES: &str = "12";
/// Fixed, so a failure reproduces.
const SEED: &str = "1313";

/// Operations and how many responses of each status they gave.
type Statuses = BTreeMap<String, BTreeMap<u16, usize>>;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_api_keeps_its_openapi_document_as_an_admin_and_as_a_member() {
    let dir = tempfile::tempdir().unwrap();
    let world = World::start(dir.path()).await;
    let doc = world.admin.rest.get("/api/v1/openapi.json").await;
    let ops = operations(&doc);
    every_operation_declares_its_response_schemas(&doc);

    let mut admin = run(&world.server, dir.path(), "admin", &world.admin_seeds).await;
    let mut member = run(&world.server, dir.path(), "member", &world.member_seeds).await;
    // Schemathesis does not test the document it reads; the test read it above.
    for seen in [&mut admin, &mut member] {
        seen.entry("GET /api/v1/openapi.json".into())
            .or_default()
            .insert(200, 1);
    }

    for (who, seen) in [("admin", &admin), ("member", &member)] {
        let untested: Vec<_> = ops.keys().filter(|op| !seen.contains_key(*op)).collect();
        assert!(
            untested.is_empty(),
            "{who}: operations never called: {untested:?}"
        );
    }
    // Every operation succeeds for the admin; for a member, every one but the admins'.
    let failed = |seen: &Statuses, skip: &BTreeSet<&str>| -> Vec<String> {
        ops.iter()
            .filter(|(op, _)| !skip.contains(op.as_str()))
            .filter(|(op, success)| {
                !seen
                    .get(*op)
                    .is_some_and(|s| s.keys().any(|st| success.contains(st)))
            })
            .map(|(op, _)| format!("{op}: {:?}", seen.get(op)))
            .collect()
    };
    let unseeded: BTreeSet<&str> = World::UNSEEDED.iter().copied().collect();
    let admin_failed = failed(&admin, &unseeded);
    assert!(
        admin_failed.is_empty(),
        "admin: never succeeded: {admin_failed:#?}"
    );
    let admins_only: BTreeSet<&str> = World::ADMINS_ONLY
        .iter()
        .chain(World::UNSEEDED)
        .copied()
        .collect();
    let member_failed = failed(&member, &admins_only);
    assert!(
        member_failed.is_empty(),
        "member: never succeeded: {member_failed:#?}"
    );
    // And the admins' operations never succeed for a member.
    let let_in: Vec<_> = World::ADMINS_ONLY
        .iter()
        .filter(|op| {
            member
                .get(**op)
                .is_some_and(|s| s.keys().any(|st| (200..300).contains(st)))
        })
        .collect();
    assert!(let_in.is_empty(), "a member succeeded at: {let_in:?}");

    let verify = world.admin.rest.get("/api/v1/audit/verify").await;
    assert_eq!(verify["ok"], true, "{verify}");
}

/// Every operation ("GET /api/v1/agents") and the statuses that count as its success:
/// its declared 2xx, or its 3xx when it declares no 2xx (a browser redirect).
fn operations(doc: &Value) -> BTreeMap<String, BTreeSet<u16>> {
    let mut out = BTreeMap::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let codes: Vec<u16> = op["responses"]
                .as_object()
                .map(|r| r.keys().filter_map(|k| k.parse().ok()).collect())
                .unwrap_or_default();
            let two: BTreeSet<u16> = codes.iter().copied().filter(|c| c / 100 == 2).collect();
            let three: BTreeSet<u16> = codes.iter().copied().filter(|c| c / 100 == 3).collect();
            let label = format!("{} {path}", method.to_uppercase());
            out.insert(label, if two.is_empty() { three } else { two });
        }
    }
    out
}

/// Each response either has no body (204, a redirect) or declares a schema for every
/// media type it may come as; each operation declares its success.
fn every_operation_declares_its_response_schemas(doc: &Value) {
    let mut wrong = Vec::new();
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            let label = format!("{} {path}", method.to_uppercase());
            let Some(responses) = op["responses"].as_object().filter(|r| !r.is_empty()) else {
                wrong.push(format!("{label}: no responses"));
                continue;
            };
            if !responses
                .keys()
                .any(|k| k.starts_with('2') || k.starts_with('3'))
            {
                wrong.push(format!("{label}: no success response"));
            }
            for (code, r) in responses {
                let r = resolve(doc, r);
                let bodiless = code == "204" || code.starts_with('3');
                match r["content"].as_object() {
                    None if bodiless => {}
                    None => wrong.push(format!("{label} {code}: no content declared")),
                    Some(content) => {
                        for (media, m) in content {
                            if m.get("schema").is_none() {
                                wrong.push(format!("{label} {code} {media}: no schema"));
                            }
                        }
                    }
                }
            }
        }
    }
    assert!(wrong.is_empty(), "undeclared response schemas: {wrong:#?}");
}

/// A `$ref` to a component, followed.
fn resolve<'a>(doc: &'a Value, v: &'a Value) -> &'a Value {
    match v["$ref"].as_str() {
        Some(r) => r
            .strip_prefix("#/")
            .unwrap()
            .split('/')
            .fold(doc, |at, key| &at[key]),
        None => v,
    }
}

/// One schemathesis run as `who`; the statuses each operation answered.
async fn run(server: &Server, dir: &Path, who: &str, seeds: &Seeds) -> Statuses {
    let seeds_file = dir.join(format!("{who}-seeds.json"));
    std::fs::write(&seeds_file, serde_json::to_vec_pretty(&seeds.ops).unwrap()).unwrap();
    let record = dir.join(format!("{who}-record.jsonl"));
    let report = dir.join(format!("{who}-report"));
    let hooks = Path::new(env!("CARGO_MANIFEST_DIR")).join("python/api_schema/hooks.py");
    let out = Command::new(toolbelt_e2e::sdk::python())
        .args(["-m", "schemathesis.cli", "--config-file"])
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("python/api_schema/schemathesis.toml"))
        .arg("run")
        .arg(format!("{}/api/v1/openapi.json", server.url))
        .args(["--url", &server.url])
        .args([
            "--header",
            &format!("Authorization: Bearer {}", seeds.token),
        ])
        .args(["--checks", CHECKS])
        .args(["--phases", "examples,coverage,fuzzing"])
        .args(["--max-examples", EXAMPLES, "--seed", SEED])
        .args(["--workers", "2", "--request-timeout", "30"])
        .args(["--generation-deterministic", "--no-shrink"])
        .args(["--generation-with-security-parameters", "false"])
        .args(["--suppress-health-check", "all", "--continue-on-failure"])
        .args(["--report", "junit", "--report-dir"])
        .arg(&report)
        .env("SCHEMATHESIS_HOOKS", &hooks)
        .env("API_SCHEMA_SEEDS", &seeds_file)
        .env("API_SCHEMA_RECORD", &record)
        .env("NO_COLOR", "1")
        .current_dir(dir)
        .output()
        .expect("python runs schemathesis");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "schemathesis as {who} found problems:\n{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut seen = Statuses::new();
    for line in std::fs::read_to_string(&record).unwrap().lines() {
        let r: Value = serde_json::from_str(line).unwrap();
        let status = r["status"].as_u64().unwrap() as u16;
        *seen
            .entry(r["op"].as_str().unwrap().to_string())
            .or_default()
            .entry(status)
            .or_default() += 1;
    }
    let calls: usize = seen.values().flat_map(|s| s.values()).sum();
    eprintln!("{who}: {calls} requests over {} operations", seen.len());
    seen
}

/// What a response must satisfy: no 5xx; status, content type, headers and body as
/// declared.
const CHECKS: &str = "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance";
