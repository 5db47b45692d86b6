"""Self-test of the OAuth fixture: starts server.py on a free port and drives every flow with
plain urllib, as the Rust tests will. Prints one PASS/FAIL line per check; exits 1 on a FAIL.

    python selftest.py        (with the packages of requirements.txt installed)
"""
from __future__ import annotations

import base64
import hashlib
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
CID, SECRET = "toolbelt-test", "s3cret"
CB, CB2 = "http://127.0.0.1:9/callback", "http://127.0.0.1:9/other"
TTL = 3
failures = 0
URL = ""


def check(name: str, ok: bool, detail="") -> bool:
    global failures
    failures += not ok
    print(f"{'PASS' if ok else 'FAIL'} {name}" + ("" if ok else f"  -- {detail}"), flush=True)
    return ok


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # we want to see the 302 and its Location ourselves


OPENER = urllib.request.build_opener(NoRedirect)


def http(method, path, form=None, headers=None, body=None):
    """(status, headers, body) without following redirects or raising on 4xx/5xx."""
    data = urllib.parse.urlencode(form).encode() if form is not None else body
    req = urllib.request.Request(URL + path, data=data, method=method, headers=headers or {})
    try:
        with OPENER.open(req, timeout=10) as r:
            return r.status, r.headers, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read()


def jget(path):
    return json.loads(http("GET", path)[2])


def basic(cid=CID, secret=SECRET):
    return {"Authorization": "Basic " + base64.b64encode(f"{cid}:{secret}".encode()).decode()}


def pkce():
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize(challenge=None, method="S256", **extra):
    """GET /authorize; returns (status, the Location's query as a dict, body, Location)."""
    q = {"response_type": "code", "client_id": CID, "redirect_uri": CB, "scope": "read write",
         "state": "st 1/+=&é", "login_hint": "alice"}
    if challenge:
        q.update(code_challenge=challenge, code_challenge_method=method)
    q.update(extra)
    q = {k: v for k, v in q.items() if v is not None}
    status, headers, body = http("GET", "/authorize?" + urllib.parse.urlencode(q))
    loc = headers.get("Location", "")
    return status, dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(loc).query)), body, loc


def token(form, auth="basic"):
    if auth == "basic":
        status, _, body = http("POST", "/token", form, basic())
    else:
        creds = {"client_id": CID, "client_secret": SECRET}
        status, _, body = http("POST", "/token", {**form, **creds})
    try:
        return status, json.loads(body)
    except ValueError:
        return status, body


def login(scope="read write", **extra):
    """Full code flow for alice; returns the token response."""
    verifier, challenge = pkce()
    _, q, _, _ = authorize(challenge, scope=scope, **extra)
    return token(code_form(q["code"], verifier))[1]


def me(access):
    auth = {"Authorization": f"Bearer {access}"} if access else {}
    status, headers, body = http("GET", "/resource/me", headers=auth)
    return status, headers.get("WWW-Authenticate", ""), json.loads(body or b"{}")


def refresh(rt):
    return token({"grant_type": "refresh_token", "refresh_token": rt})


def is_error(status, body, want_status, code) -> bool:
    return status == want_status and isinstance(body, dict) and body.get("error") == code


def code_form(code, verifier, redirect_uri=CB):
    form = {"grant_type": "authorization_code", "code": code, "redirect_uri": redirect_uri}
    return {**form, "code_verifier": verifier} if verifier else form


def events(kind=None):
    return jget("/_test/events" + (f"?type={kind}" if kind else ""))


def main() -> int:
    global URL
    state = os.path.join(tempfile.mkdtemp(), "state.json")
    proc = subprocess.Popen(
        [sys.executable, os.path.join(HERE, "server.py"), "--port", "0", "--state-file", state,
         "--client-id", CID, "--client-secret", SECRET, "--redirect-uri", CB,
         "--redirect-uri", CB2, "--access-ttl", str(TTL), "--quiet", "--exit-on-stdin-eof"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        if not check("server prints READY", line.startswith("READY http://127.0.0.1:"), line):
            return 1
        URL = line.split()[1]
        try:
            for flow in (discovery, main_flow, race, revocation, codes_and_pkce, consent, oidc,
                         provider_side, malformed, lifetimes):
                flow()
            state_file(state)
        except Exception as e:  # a broken precondition ends the run, visibly
            check("selftest ran to the end", False, f"{type(e).__name__}: {e}")
    finally:
        proc.stdin.close()  # --exit-on-stdin-eof: the server stops by itself
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
    print(f"{'FAIL' if failures else 'PASS'} selftest: {failures} failure(s)")
    return 1 if failures else 0


def discovery():
    m = jget("/.well-known/oauth-authorization-server")
    o = jget("/.well-known/openid-configuration")
    check("RFC 8414 metadata", m["issuer"] == URL and m["revocation_endpoint"] == URL + "/revoke"
          and m["code_challenge_methods_supported"] == ["S256"], m)
    check("OIDC discovery", o["jwks_uri"] == URL + "/jwks.json" and o["token_endpoint"]
          == m["token_endpoint"] and "RS256" in o["id_token_signing_alg_values_supported"], o)


def main_flow():
    """Authorize with the hint, exchange, call the resource, rotate twice, reuse an old one."""
    verifier, challenge = pkce()
    status, q, _, _ = authorize(challenge)
    check("authorize with login_hint redirects with a code", status == 302 and "code" in q, q)
    check("state comes back untouched", q.get("state") == "st 1/+=&é", q)
    status, t1 = token(code_form(q["code"], verifier), auth="post")
    check("code exchange (client_secret_post)", status == 200 and t1.get("refresh_token")
          and t1.get("expires_in") == TTL and t1.get("token_type") == "Bearer", t1)
    status, _, body = me(t1["access_token"])
    tid = body.get("token_id", "")
    check("resource accepts the access token", status == 200 and body.get("user") == "alice"
          and body.get("scope") == "read write" and tid.startswith("tok_"), body)
    status, www, _ = me("at_not-a-token")
    check("resource refuses an unknown token", status == 401 and 'error="invalid_token"' in www)
    status, www, _ = me(None)
    check("resource refuses a missing token", status == 401 and www.startswith("Bearer"), www)

    status, t2 = refresh(t1["refresh_token"])
    check("refresh 1 rotates the refresh token", status == 200 and t2["refresh_token"]
          != t1["refresh_token"] and t2["access_token"] != t1["access_token"], t2)
    status, t3 = refresh(t2["refresh_token"])
    check("refresh 2 rotates again", status == 200 and t3["refresh_token"] not in
          (t1["refresh_token"], t2["refresh_token"]), t3)
    check("new access token works", me(t3["access_token"])[0] == 200)
    status, body = refresh(t1["refresh_token"])
    check("reused refresh token -> invalid_grant", is_error(status, body, 400, "invalid_grant"))
    check("reuse revoked the family's access token", me(t3["access_token"])[0] == 401)
    status, body = refresh(t3["refresh_token"])
    check("reuse revoked the family's newest refresh token",
          is_error(status, body, 400, "invalid_grant"), body)

    ev = events()
    kinds = [e["type"] for e in ev]
    grants = {e["grant_type"] for e in ev if e["type"] == "token_issued"}
    check("events: token_issued per grant type",
          grants == {"authorization_code", "refresh_token"}, kinds)
    check("events: refresh_used twice", kinds.count("refresh_used") == 2, kinds)
    check("events: reuse detected and family revoked", "refresh_reuse_detected" in kinds and any(
        e["type"] == "family_revoked" and e["reason"] == "refresh_reused" for e in ev), kinds)
    of_tid = {e["type"] for e in ev if e.get("token_id") == tid}
    check("events: resource access names the issued token",
          {"resource_accessed", "token_issued"} <= of_tid, of_tid)


def race():
    """Two refreshes racing with one token: exactly one wins, the other is seen as a reuse."""
    tr, results = login(), []
    racers = [threading.Thread(target=lambda: results.append(refresh(tr["refresh_token"])))
              for _ in range(2)]
    [r.start() for r in racers]
    [r.join() for r in racers]
    winner = next((b for s, b in results if s == 200), {})
    check("racing refreshes: one 200, one invalid_grant",
          sorted(s for s, _ in results) == [200, 400], results)
    check("racing refreshes: the winner's family is revoked",
          me(winner.get("access_token"))[0] == 401)


def revocation():
    tb = login()
    form = {"token": tb["refresh_token"], "token_type_hint": "refresh_token"}
    check("revoke refresh token -> 200", http("POST", "/revoke", form, basic())[0] == 200)
    check("revoked family: access token refused", me(tb["access_token"])[0] == 401)
    check("revoked family: refresh refused", refresh(tb["refresh_token"])[0] == 400)
    check("events: revocation with hint", any(e["token_type_hint"] == "refresh_token" and e["found"]
                                              for e in events("revocation_requested")))
    status, _, _ = http("POST", "/revoke", {"token": "nonsense"}, basic())
    check("revoke unknown token -> 200 (RFC 7009)", status == 200)
    status, _, body = http("POST", "/revoke", {"token": "x"}, basic(secret="wrong"))
    check("revoke with a bad secret -> 401 invalid_client",
          is_error(status, json.loads(body), 401, "invalid_client"), body)
    tc = login()
    active = json.loads(http("POST", "/introspect", {"token": tc["access_token"]}, basic())[2])
    check("introspect live token", active.get("active") is True and active.get("sub") == "alice")
    http("POST", "/revoke", {"token": tc["access_token"]}, basic())
    gone = json.loads(http("POST", "/introspect", {"token": tc["access_token"]}, basic())[2])
    check("introspect revoked access token -> inactive", gone == {"active": False}, gone)


def codes_and_pkce():
    # Authorization code: single use; a replay revokes what it issued.
    verifier, challenge = pkce()
    form = code_form(authorize(challenge)[1]["code"], verifier)
    status, td = token(form)
    status, body = token(form)
    check("reused code -> invalid_grant", is_error(status, body, 400, "invalid_grant"), body)
    check("reused code revoked its tokens", me(td["access_token"])[0] == 401)

    # PKCE is required, S256 only, and the verifier is checked.
    status, q, _, _ = authorize(None)
    check("missing code_challenge -> invalid_request", status == 302 and q.get("error")
          == "invalid_request" and q.get("state") == "st 1/+=&é", q)
    status, q, _, _ = authorize(pkce()[0], method="plain")
    check("code_challenge_method=plain -> invalid_request", q.get("error") == "invalid_request", q)
    status, q, _, _ = authorize(pkce()[1], method=None)
    check("challenge without method -> invalid_request", q.get("error") == "invalid_request", q)
    verifier, challenge = pkce()
    code = authorize(challenge)[1]["code"]
    status, body = token(code_form(code, pkce()[0]))
    check("wrong code_verifier -> invalid_grant", is_error(status, body, 400, "invalid_grant"))
    status, body = token(code_form(code, verifier))
    check("code is burnt after a failed verifier", status == 400, body)
    code = authorize(challenge)[1]["code"]
    status, body = token(code_form(code, None))
    check("missing code_verifier -> invalid_request",
          is_error(status, body, 400, "invalid_request"), body)

    # redirect_uri: exact match at /authorize (never redirect to an unknown URI) and at /token.
    status, _, body, loc = authorize(pkce()[1], redirect_uri=CB + "/")
    check("unregistered redirect_uri -> 400, no redirect", status == 400 and not loc, body)
    verifier, challenge = pkce()
    status, body = token(code_form(authorize(challenge)[1]["code"], verifier, redirect_uri=CB2))
    check("other redirect_uri at /token -> invalid_grant", is_error(status, body, 400,
                                                                     "invalid_grant"), body)
    status, q, _, _ = authorize(pkce()[1], scope="read admin")
    check("scope not allowed -> invalid_scope", q.get("error") == "invalid_scope", q)


def consent():
    status, q, _, _ = authorize(pkce()[1], deny="1")
    check("deny=1 -> access_denied with state", q.get("error") == "access_denied"
          and q.get("state") == "st 1/+=&é", q)
    verifier, challenge = pkce()
    status, _, body, _ = authorize(challenge, login_hint=None)
    check("no login_hint -> HTML login form", status == 200 and b"<form" in body, body[:80])
    status, headers, _ = http("POST", "/authorize", {
        "response_type": "code", "client_id": CID, "redirect_uri": CB, "state": "f",
        "code_challenge": challenge, "code_challenge_method": "S256", "user": "bob"})
    check("form POST approves", status == 302 and "code=" in headers.get("Location", ""), headers)
    status, _, body, _ = authorize(pkce()[1], login_hint="mallory")
    check("unknown user -> 400", status == 400, body)


def oidc():
    """An RS256 ID token, verifiable with the published JWKS."""
    from joserfc import jwt
    from joserfc.jwk import KeySet
    to = login(scope="openid read", nonce="n-0S6")
    claims = jwt.decode(to["id_token"], KeySet.import_key_set(jget("/jwks.json"))).claims
    check("id_token signed, with iss/aud/sub/nonce", claims["iss"] == URL and claims["aud"]
          == [CID] and claims["sub"] == "alice" and claims["nonce"] == "n-0S6", claims)
    status, body = token({"grant_type": "refresh_token", "refresh_token": to["refresh_token"]},
                         auth="post")
    check("refresh with client_secret_post", status == 200, body)
    form = {"grant_type": "refresh_token", "refresh_token": body["refresh_token"]}
    status, _, body = http("POST", "/token", form, basic(secret="no"))
    check("bad client secret -> 401 invalid_client",
          is_error(status, json.loads(body), 401, "invalid_client"), body)


def provider_side():
    te = login()
    revoked = json.loads(http("POST", "/_test/revoke-all?user=alice")[2])["revoked"]
    check("revoke-all revokes alice's tokens", revoked and me(te["access_token"])[0] == 401)
    status, body = refresh(te["refresh_token"])
    check("after revoke-all refresh -> invalid_grant", is_error(status, body, 400, "invalid_grant"))
    client = {"client_id": "late", "client_secret": "x", "redirect_uris": ["http://127.0.0.1:7/cb"]}
    status, _, _ = http("POST", "/_test/clients", body=json.dumps(client).encode())
    _, q, _, _ = authorize(pkce()[1], client_id="late", redirect_uri="http://127.0.0.1:7/cb")
    check("client registered at runtime can authorize", status == 201 and "code" in q, q)


def malformed():
    tf = login()
    for mode, want in (("garbage", 200), ("missing", 200), ("error", 500)):
        http("POST", f"/_test/mode?token={mode}")
        status, body = refresh(tf["refresh_token"])
        shape = "access_token" not in body if mode == "missing" else isinstance(body, bytes)
        check(f"token mode {mode} -> {want}", status == want and shape, (status, body))
    http("POST", "/_test/mode?token=garbage&client_id=someone-else")
    http("POST", "/_test/mode?token=normal")
    check("mode normal again (other client's mode ignored)", refresh(tf["refresh_token"])[0] == 200)


def lifetimes():
    tg = login()
    time.sleep(TTL + 0.2)
    status, www, _ = me(tg["access_token"])
    check("expired access token -> 401 invalid_token", status == 401 and "expired" in www, www)
    check("its refresh token still works", refresh(tg["refresh_token"])[0] == 200)


def state_file(path):
    with open(path) as f:
        saved = json.load(f)
    check("state file holds tokens and url", saved["url"] == URL and len(saved["tokens"]) > 5)
    http("POST", "/_test/reset")
    check("reset clears events", events() == [])


if __name__ == "__main__":
    sys.exit(main())
