//! `/api/v1/openapi.json` is generated from the handlers, and matches the router both ways.

use crate::support::{ADMIN, App};
use http::Method;
use toolbelt_control::audit_log::action_for;
use toolbelt_testkit::backend_tests;
use toolbelt_testkit::db::TestDb;

backend_tests!(every_documented_operation_is_routed);

fn operations(spec: &serde_json::Value) -> Vec<(Method, String)> {
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for m in ["get", "post", "put", "patch", "delete"] {
            if item.get(m).is_some() {
                ops.push((m.to_uppercase().parse().unwrap(), path.clone()));
            }
        }
    }
    ops
}

async fn every_documented_operation_is_routed(db: TestDb) {
    let app = App::new(db).await;
    let r = app.get("/api/v1/openapi.json", ADMIN).await;
    assert_eq!(r.status, 200);
    let ops = operations(&r.body);
    assert!(ops.len() >= 45, "only {} operations documented", ops.len());
    for (m, path) in &ops {
        let concrete = path.replace('{', "x").replace('}', "");
        let res = app.call(m.clone(), &concrete, Some(ADMIN), None).await;
        assert_ne!(
            res.problem(),
            "route-not-found",
            "{m} {path} is documented but not routed"
        );
        assert_ne!(
            res.status, 405,
            "{m} {path} is documented but not routed for {m}"
        );
        if *m != Method::GET && path.starts_with("/api/v1") {
            assert!(
                action_for(m, path).is_some(),
                "{m} {path} has no audit action name"
            );
        }
    }
}

/// Router → spec: handlers are registered only through `routes!` (which documents them),
/// so every `#[utoipa::path]` is an operation and no route is added any other way.
#[test]
fn no_route_bypasses_the_spec() {
    let spec = serde_json::to_value(toolbelt_control::openapi()).unwrap();
    let documented = operations(&spec).len();
    // The control plane's handlers (this suite lives in `toolbelt-app`, beside it).
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../control/src");
    let mut annotated = 0;
    let mut stack = vec![src];
    while let Some(dir) = stack.pop() {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            annotated += text.matches("#[utoipa::path(").count();
            for forbidden in [
                ".route(",
                ".route_service(",
                ".nest(",
                ".nest_service(",
                ".merge(",
            ] {
                assert!(
                    !text.contains(forbidden),
                    "{} adds a route with {forbidden}, outside the OpenAPI document",
                    p.display()
                );
            }
        }
    }
    assert_eq!(
        annotated, documented,
        "every annotated handler is documented, and nothing else"
    );
}
