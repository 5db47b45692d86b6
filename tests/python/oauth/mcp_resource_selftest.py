"""Self-test of mcp_resource.py (the OAuth-protected MCP server) against server.py (the AS).

Starts server.py, gets alice's (and bob's) tokens with the code + PKCE flow (no browser:
`login_hint` auto-approves), starts mcp_resource.py on the AS's /introspect, then talks MCP
with the SDK's own streamable HTTP client and with plain HTTP POSTs, as the gateway does.
Prints one PASS/FAIL line per check; exits 1 on a FAIL.

    python mcp_resource_selftest.py   (mcp==2.3.0 and requirements.txt installed)
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import anyio
import httpx2
from mcp.client.session import ClientSession
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

HERE = os.path.dirname(os.path.abspath(__file__))
CID, SECRET = "toolbelt-test", "s3cret"
RS_CID, RS_SECRET = "mcp-resource", "rs-s3cret"  # the resource's own client, for /introspect
CB = "http://127.0.0.1:9/callback"
SHORT_TTL = 2  # access token lifetime at the second AS (the expiry check)
PROTO = "2025-06-18"
failures = 0
procs: list[subprocess.Popen] = []


def check(name: str, ok: bool, detail="") -> bool:
    global failures
    failures += not ok
    print(f"{'PASS' if ok else 'FAIL'} {name}" + ("" if ok else f"  -- {detail}"), flush=True)
    return ok


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


OPENER = urllib.request.build_opener(NoRedirect)


def http(method, url, body=None, headers=None):
    """(status, headers, body bytes); never raises on 4xx/5xx, never follows redirects."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with OPENER.open(req, timeout=15) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def start(script, *args):
    """Starts a fixture with a piped stdin (--exit-on-stdin-eof); returns (proc, READY url)."""
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, script), *args, "--quiet",
                             "--exit-on-stdin-eof"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    procs.append(proc)
    line = proc.stdout.readline().strip()
    return proc, line


def stop(proc, timeout=5.0) -> bool:
    """Closes stdin; True when the process then exits by itself."""
    proc.stdin.close()
    try:
        proc.wait(timeout)
        return True
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
        return False


# -- the authorization server side -------------------------------------------------------------

def login(as_url, user="alice", scope="read write") -> dict:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest())
    q = {"response_type": "code", "client_id": CID, "redirect_uri": CB, "scope": scope,
         "state": "s", "login_hint": user, "code_challenge": challenge.rstrip(b"=").decode(),
         "code_challenge_method": "S256"}
    status, headers, body = http("GET", f"{as_url}/authorize?{urllib.parse.urlencode(q)}")
    loc = urllib.parse.urlsplit(headers.get("Location", "")).query
    code = dict(urllib.parse.parse_qsl(loc)).get("code")
    if status != 302 or not code:
        raise RuntimeError(f"authorize for {user}: {status} {loc or body[:200]!r}")
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": CB,
            "code_verifier": verifier, "client_id": CID, "client_secret": SECRET}
    status, _, body = http("POST", f"{as_url}/token", urllib.parse.urlencode(form).encode())
    if status != 200:
        raise RuntimeError(f"token for {user}: {status} {body[:200]!r}")
    return json.loads(body)


def token_id(as_url, access) -> str:
    auth = base64.b64encode(f"{CID}:{SECRET}".encode()).decode()
    _, _, body = http("POST", f"{as_url}/introspect",
                      urllib.parse.urlencode({"token": access}).encode(),
                      {"Authorization": f"Basic {auth}"})
    return json.loads(body).get("jti")


# -- MCP over plain HTTP (what the gateway does) -----------------------------------------------

class Raw:
    """A minimal streamable-HTTP client: POST JSON-RPC, keep Mcp-Session-Id, no OAuth dance."""

    def __init__(self, url, token=None):
        self.url, self.token, self.session, self.next_id = url, token, None, 1

    def post(self, method, params=None, notify=False, token="default"):
        msg = {"jsonrpc": "2.0", "method": method}
        if params is not None:
            msg["params"] = params
        if not notify:
            msg["id"], self.next_id = self.next_id, self.next_id + 1
        h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream"}
        tok = self.token if token == "default" else token
        if tok:
            h["Authorization"] = f"Bearer {tok}"
        if self.session:
            h["Mcp-Session-Id"] = self.session
        if method != "initialize":
            h["MCP-Protocol-Version"] = PROTO
        status, headers, body = http("POST", self.url, json.dumps(msg).encode(), h)
        if method == "initialize" and status == 200:
            self.session = headers.get("Mcp-Session-Id")
        try:
            data = json.loads(body) if body else None
        except ValueError:
            data = body
        return status, headers, data

    def initialize(self):
        return self.post("initialize", {"protocolVersion": PROTO, "capabilities": {},
                                        "clientInfo": {"name": "raw-selftest", "version": "1"}})

    def call(self, tool, args=None, **kw):
        return self.post("tools/call", {"name": tool, "arguments": args or {}}, **kw)


def text_of(data):
    """The first text content of a JSON-RPC tools/call response."""
    try:
        return data["result"]["content"][0]["text"]
    except (KeyError, IndexError, TypeError):
        return None


def is_401(status, headers, data) -> bool:
    www = headers.get("WWW-Authenticate", "")
    return (status == 401 and www.startswith("Bearer ") and 'error="invalid_token"' in www
            and isinstance(data, dict) and data.get("error") == "invalid_token")


# -- MCP with the SDK client -------------------------------------------------------------------

async def sdk_session(url, token):
    """initialize, tools/list, whoami, echo with the SDK client; returns a dict of results."""
    out = {}
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx2.AsyncClient(headers=headers, timeout=15) as client:
        async with streamable_http_client(url, http_client=client) as (read, write):
            async with ClientSession(read, write) as session:
                with anyio.fail_after(20):
                    init = await session.initialize()
                    out["server"] = init.server_info.name
                    out["tools"] = sorted(t.name for t in (await session.list_tools()).tools)
                    r = await session.call_tool("whoami", {})
                    out["whoami"] = json.loads(r.content[0].text)
                    r = await session.call_tool("echo", {"text": "héllo, world"})
                    out["echo"] = r.content[0].text
    return out


def leaf_errors(e: BaseException) -> list[BaseException]:
    if isinstance(e, BaseExceptionGroup):
        return [x for sub in e.exceptions for x in leaf_errors(sub)]
    return [e]


def sdk(url, token):
    return anyio.run(sdk_session, url, token)


# -- the checks --------------------------------------------------------------------------------

def main() -> int:
    try:
        run()
    except Exception as e:  # a broken precondition ends the run, visibly
        check("selftest ran to the end", False, f"{type(e).__name__}: {e}")
    finally:
        for p in procs:
            if p.poll() is None:
                stop(p)
    print(f"{'FAIL' if failures else 'PASS'} mcp_resource selftest: {failures} failure(s)")
    return 1 if failures else 0


def run():
    asp, line = start("server.py", "--port", "0", "--client-id", CID, "--client-secret", SECRET,
                      "--redirect-uri", CB)
    if not check("AS prints READY", line.startswith("READY http://127.0.0.1:"), line):
        raise RuntimeError("no authorization server")
    as_url = line.split()[1]
    # The resource authenticates to /introspect as a client of its own.
    client = {"client_id": RS_CID, "client_secret": RS_SECRET, "redirect_uris": [CB]}
    status, _, _ = http("POST", f"{as_url}/_test/clients", json.dumps(client).encode())
    check("register the resource's introspection client", status == 201, status)

    rsp, line = start("mcp_resource.py", "--introspect", f"{as_url}/introspect",
                      "--client-id", RS_CID, "--client-secret", RS_SECRET)
    m = re.fullmatch(r"READY (http://127\.0\.0\.1:(\d+)/mcp)", line)
    if not check("resource prints exactly `READY http://127.0.0.1:PORT/mcp`", bool(m), line):
        raise RuntimeError("no resource server")
    url = m.group(1)
    base = url[: -len("/mcp")]

    # -- refusals ------------------------------------------------------------------------------
    status, headers, data = Raw(url).initialize()
    check("no Authorization -> 401 Bearer error=invalid_token", is_401(status, headers, data),
          (status, dict(headers), data))
    status, headers, data = Raw(url, "at_not-a-token").initialize()
    check("unknown token -> 401 invalid_token", is_401(status, headers, data), (status, data))
    h = {"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
         "Authorization": "Basic " + base64.b64encode(b"alice:x").decode()}
    status, headers, _ = http("POST", url, b'{"jsonrpc":"2.0","id":1,"method":"ping"}', h)
    check("Basic instead of Bearer -> 401", status == 401
          and headers.get("WWW-Authenticate", "").startswith("Bearer"), status)
    ta = login(as_url)
    status, headers, data = Raw(url, ta["refresh_token"]).initialize()
    check("refresh token used as bearer -> 401", is_401(status, headers, data), (status, data))
    www = headers.get("WWW-Authenticate", "")
    check("WWW-Authenticate names the protected resource metadata",
          f'resource_metadata="{base}/.well-known/oauth-protected-resource/mcp"' in www, www)
    status, _, body = http("GET", f"{base}/.well-known/oauth-protected-resource/mcp")
    meta = json.loads(body) if status == 200 else {}
    check("protected resource metadata lists the AS", meta.get("resource") == url
          and meta.get("authorization_servers") == [as_url], (status, meta))

    # -- the SDK client with alice's token ------------------------------------------------------
    ta = login(as_url)
    tid = token_id(as_url, ta["access_token"])
    out = sdk(url, ta["access_token"])
    check("SDK client: initialize", out.get("server") == "toolbelt-oauth-mcp-resource", out)
    check("SDK client: tools/list = echo, whoami", out.get("tools") == ["echo", "whoami"], out)
    who = out.get("whoami", {})
    check("SDK client: whoami -> alice, her token id and scope", who.get("user") == "alice"
          and who.get("token_id") == tid and tid.startswith("tok_")
          and who.get("scope") == "read write", (who, tid))
    check("SDK client: echo", out.get("echo") == "héllo, world", out)
    calls = json.loads(http("GET", f"{base}/_test/calls")[2])
    check("/_test/calls names alice's token", calls == [
        {"tool": "whoami", "user": "alice", "token_id": tid},
        {"tool": "echo", "user": "alice", "token_id": tid}], calls)

    # -- plain streamable HTTP, as the gateway speaks it ---------------------------------------
    http("POST", f"{base}/_test/reset")
    raw = Raw(url, ta["access_token"])
    status, headers, data = raw.initialize()
    check("plain POST initialize -> 200 JSON + Mcp-Session-Id", status == 200
          and headers.get("Content-Type", "").startswith("application/json") and raw.session
          and data["result"]["protocolVersion"] == PROTO, (status, dict(headers), data))
    status, _, _ = raw.post("notifications/initialized", notify=True)
    check("notifications/initialized -> 202", status == 202, status)
    status, _, data = raw.post("tools/list")
    names = sorted(t["name"] for t in (data or {}).get("result", {}).get("tools", []))
    check("plain tools/list", status == 200 and names == ["echo", "whoami"], data)
    status, _, data = raw.call("whoami")
    check("plain tools/call whoami -> alice", status == 200
          and json.loads(text_of(data) or "{}").get("user") == "alice", data)
    status, _, data = raw.call("echo", {"text": "plain"})
    check("plain tools/call echo", text_of(data) == "plain", data)
    status, headers, data = raw.call("whoami", token=None)
    check("session without a token -> 401", is_401(status, headers, data), (status, data))

    # The gateway refreshes: another token of alice's keeps the session; whoami sees the new one.
    ta2 = login(as_url)
    tid2 = token_id(as_url, ta2["access_token"])
    status, _, data = raw.call("whoami", token=ta2["access_token"])
    who = json.loads(text_of(data) or "{}")
    check("same session, alice's new token -> whoami reports the new token id",
          status == 200 and who.get("token_id") == tid2 and tid2 != tid, (status, data))
    tb = login(as_url, "bob")
    status, _, data = raw.call("whoami", token=tb["access_token"])
    check("bob's token on alice's session -> 404 (SDK session ownership)", status == 404,
          (status, data))
    fresh = Raw(url, tb["access_token"])
    fresh.initialize()
    fresh.post("notifications/initialized", notify=True)
    who = json.loads(text_of(fresh.call("whoami")[2]) or "{}")
    check("bob in his own session -> whoami bob", who.get("user") == "bob", who)
    calls = json.loads(http("GET", f"{base}/_test/calls")[2])
    check("/_test/calls: whoami, echo, whoami (new token), whoami (bob)",
          [(c["tool"], c["user"], c["token_id"]) for c in calls] ==
          [("whoami", "alice", tid), ("echo", "alice", tid), ("whoami", "alice", tid2),
           ("whoami", "bob", token_id(as_url, tb["access_token"]))], calls)

    # -- revoked at the provider, and expired ---------------------------------------------------
    revoked = json.loads(http("POST", f"{as_url}/_test/revoke-all?user=alice")[2])["revoked"]
    check("AS revoke-all alice", tid in revoked and tid2 in revoked, revoked)
    status, headers, data = raw.call("whoami", token=ta2["access_token"])
    check("revoked token on the open session -> 401 invalid_token",
          is_401(status, headers, data), (status, data))
    status, headers, data = Raw(url, ta["access_token"]).initialize()
    check("revoked token, new session -> 401 invalid_token", is_401(status, headers, data),
          (status, data))
    try:
        sdk(url, ta["access_token"])
        check("SDK client with a revoked token fails", False, "it succeeded")
    except Exception as e:  # the SDK raises MCPError (in exception groups) on the 401
        leaves = leaf_errors(e)
        check("SDK client with a revoked token fails (MCPError)",
              leaves and all(isinstance(x, MCPError) for x in leaves), repr(e))
    calls = json.loads(http("GET", f"{base}/_test/calls")[2])
    check("/_test/calls: no call got through with a refused token", len(calls) == 4, calls)
    check("bob unaffected by alice's revocation",
          fresh.call("echo", {"text": "b"})[0] == 200)

    check("resource exits on stdin EOF", stop(rsp))

    # Expiry: a second AS whose access tokens live SHORT_TTL seconds, and a resource on it.
    asp2, line = start("server.py", "--port", "0", "--client-id", CID, "--client-secret", SECRET,
                       "--redirect-uri", CB, "--access-ttl", str(SHORT_TTL))
    as2 = line.split()[1] if line.startswith("READY ") else ""
    rsp4, line = start("mcp_resource.py", "--introspect", f"{as2}/introspect",
                       "--client-id", CID, "--client-secret", SECRET)
    url4 = line.split()[1] if line.startswith("READY ") else ""
    te = login(as2)
    check("short-lived token accepted while fresh",
          Raw(url4, te["access_token"]).initialize()[0] == 200)
    time.sleep(SHORT_TTL + 1.2)
    status, headers, data = Raw(url4, te["access_token"]).initialize()
    check(f"expired token (after {SHORT_TTL}s) -> 401 invalid_token",
          is_401(status, headers, data), (status, data))
    stop(rsp4)
    stop(asp2)

    # -- other modes: stateless + SSE answers, client_secret_post to /introspect ---------------
    rsp2, line = start("mcp_resource.py", "--introspect", f"{as_url}/introspect",
                       "--client-id", RS_CID, "--client-secret", RS_SECRET,
                       "--client-auth", "client_secret_post", "--stateless", "--sse")
    url2 = line.split()[1] if line.startswith("READY ") else ""
    tc = login(as_url)
    out = sdk(url2, tc["access_token"])
    check("--stateless --sse --client-auth client_secret_post: SDK whoami -> alice",
          out.get("whoami", {}).get("user") == "alice" and out.get("echo") == "héllo, world", out)
    status, headers, _ = Raw(url2, tc["access_token"]).initialize()
    check("stateless: no Mcp-Session-Id, SSE answer", status == 200
          and not headers.get("Mcp-Session-Id")
          and headers.get("Content-Type", "").startswith("text/event-stream"), dict(headers))
    check("stateless: no token -> 401", Raw(url2).initialize()[0] == 401)
    stop(rsp2)

    rsp3, line = start("mcp_resource.py", "--introspect", f"{as_url}/introspect",
                       "--client-id", RS_CID, "--client-secret", "wrong")
    url3 = line.split()[1] if line.startswith("READY ") else ""
    status, headers, data = Raw(url3, tc["access_token"]).initialize()
    check("resource with a bad introspection secret refuses a good token -> 401",
          is_401(status, headers, data), (status, data))
    stop(rsp3)

    # -- --per-user-tool: each token's listing has its user's own tool; listings recorded ------
    rsp5, line = start("mcp_resource.py", "--introspect", f"{as_url}/introspect",
                       "--client-id", RS_CID, "--client-secret", RS_SECRET, "--per-user-tool")
    url5 = line.split()[1] if line.startswith("READY ") else ""
    for who in ("alice", "bob"):
        raw = Raw(url5, login(as_url, who)["access_token"])
        raw.initialize()
        raw.post("notifications/initialized", notify=True)
        status, _, data = raw.post("tools/list")
        names = sorted(t["name"] for t in (data or {}).get("result", {}).get("tools", []))
        check(f"--per-user-tool: {who}'s listing", names == ["echo", f"only_{who}", "whoami"], data)
    lists = json.loads(http("GET", f"{url5[: -len('/mcp')]}/_test/lists")[2])
    check("/_test/lists names each lister", lists == ["alice", "bob"], lists)
    stop(rsp5)
    check("AS exits on stdin EOF", stop(asp))


if __name__ == "__main__":
    sys.exit(main())
