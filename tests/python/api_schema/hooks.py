"""Schemathesis hooks for the API property tests (tests/e2e/api_schema.rs).

Loaded through SCHEMATHESIS_HOOKS. Two jobs:

- Seeds (API_SCHEMA_SEEDS, a JSON file the test writes): per operation ("GET /api/v1/agents/{agent}")
  the path parameters, query and body of a request that should succeed against the data the test
  made. An operation's first call sends its seed whole; every second call after that keeps the
  generated query and body but uses the seeded path parameters, so generated input reaches
  things that exist instead of only 404s.
- Record (API_SCHEMA_RECORD, JSON lines): every response's operation and status, which the test
  reads to insist on a 2xx per operation.
"""

import json
import os
import threading

import schemathesis

_lock = threading.Lock()
_calls: dict[str, int] = {}
_seeds: dict = {}
if os.environ.get("API_SCHEMA_SEEDS"):
    with open(os.environ["API_SCHEMA_SEEDS"]) as f:
        _seeds = json.load(f)
_record = open(os.environ["API_SCHEMA_RECORD"], "a", buffering=1) if os.environ.get("API_SCHEMA_RECORD") else None


@schemathesis.hook
def before_call(context, case, kwargs):
    label = case.operation.label
    seed = _seeds.get(label)
    if seed is None:
        return
    with _lock:
        n = _calls.get(label, 0)
        _calls[label] = n + 1
    if n == 0:
        if "path" in seed:
            case.path_parameters = dict(seed["path"])
        if "query" in seed:
            case.query = dict(seed["query"])
        if "body" in seed:
            case.body = seed["body"]
            case.media_type = "application/json"
    elif n % 2 == 1 and "path" in seed:
        case.path_parameters = dict(seed["path"])


@schemathesis.hook
def after_call(context, case, response):
    if _record is not None:
        line = json.dumps({"op": case.operation.label, "status": response.status_code})
        with _lock:
            _record.write(line + "\n")
