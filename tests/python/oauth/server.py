"""A strict OAuth 2.1 authorization server plus a protected resource, for Toolbelt's tests.

    python server.py --port 0 [--state-file state.json] [--client-id ID --client-secret S
        --redirect-uri URI ...] [--access-ttl 60] ...

Prints exactly one line `READY http://127.0.0.1:PORT` once it accepts connections.
Endpoints, flags and test hooks: see README.md next to this file.
"""
from __future__ import annotations

import argparse
import base64
import functools
import html
import json
import sys
import threading

from authlib.oauth2.rfc6749 import OAuth2Error
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata
from authlib.oidc.discovery import OpenIDProviderMetadata
from flask import Flask, Response, jsonify, request
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

from provider import REALM, FixtureServer, protector, user_info
from store import AUTH_METHODS, Client, Store

MODES = ("normal", "garbage", "missing", "error")


def parse_args(argv=None):
    class Fmt(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
        pass

    p = argparse.ArgumentParser(description=__doc__, formatter_class=Fmt)
    p.add_argument("--host", default="127.0.0.1", help="listen address")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--state-file", help="optional: the whole state, rewritten after each request")
    p.add_argument("--config", help="JSON file: {clients: [{client_id, client_secret, "
                                    "redirect_uris, scope}], users: [...]}")
    p.add_argument("--client-id", default="toolbelt-test", help="a confidential client")
    p.add_argument("--client-secret", default="toolbelt-test-secret", help="its secret")
    p.add_argument("--redirect-uri", action="append",
                   help="exact redirect URI of --client-id; repeatable "
                        "(none given: http://127.0.0.1/callback)")
    p.add_argument("--scope", default="openid read write", help="scopes --client-id may ask for")
    p.add_argument("--user", action="append", help="a test user; repeatable (none given: alice, bob)")
    p.add_argument("--access-ttl", type=int, default=60, help="access token lifetime, seconds")
    p.add_argument("--refresh-ttl", type=int, default=86400, help="refresh token lifetime")
    p.add_argument("--code-ttl", type=int, default=60, help="authorization code lifetime")
    p.add_argument("--token-mode", choices=MODES, default="normal",
                   help="initial /token behaviour (see POST /_test/mode)")
    p.add_argument("--exit-on-stdin-eof", action="store_true",
                   help="exit when stdin closes, so a crashed test leaves no orphan")
    p.add_argument("--quiet", action="store_true", help="no request log on stderr")
    p.add_argument("--tls-cert", help="PEM certificate chain: serve HTTPS (with --tls-key)")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    return p.parse_args(argv)


def build_store(a) -> Store:
    store = Store(users=a.user or ["alice", "bob"], code_ttl=a.code_ttl,
                  access_ttl=a.access_ttl, refresh_ttl=a.refresh_ttl, state_file=a.state_file)
    if a.config:
        with open(a.config) as f:
            conf = json.load(f)
        for c in conf.get("clients", []):
            store.clients[c["client_id"]] = Client(**c)
        store.users = conf.get("users", store.users)
    store.clients[a.client_id] = Client(a.client_id, a.client_secret,
                                        a.redirect_uri or ["http://127.0.0.1/callback"], a.scope)
    store.token_modes["*"] = a.token_mode
    store.load()
    return store


def metadata(store: Store, oidc: bool) -> dict:
    u = store.url
    scopes = sorted({s for c in store.clients.values() for s in c.scope.split()})
    m = {
        "issuer": u,
        "authorization_endpoint": f"{u}/authorize",
        "token_endpoint": f"{u}/token",
        "revocation_endpoint": f"{u}/revoke",
        "introspection_endpoint": f"{u}/introspect",
        "jwks_uri": f"{u}/jwks.json",
        "userinfo_endpoint": f"{u}/userinfo",
        "scopes_supported": scopes,
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "token_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "revocation_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "introspection_endpoint_auth_methods_supported": list(AUTH_METHODS),
        "code_challenge_methods_supported": ["S256"],
    }
    if oidc:
        m.update({
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["sub", "name", "preferred_username", "email", "iss", "aud",
                                 "exp", "iat", "auth_time", "nonce", "at_hash"],
        })
    return m


def client_id_of(req) -> str | None:
    """The client a /token request claims to be, before Authlib authenticates it."""
    auth = req.headers.get("Authorization", "")
    if auth.lower().startswith("basic "):
        try:
            return base64.b64decode(auth[6:]).decode().split(":", 1)[0]
        except ValueError:
            return None
    return req.form.get("client_id")


def login_form(values) -> str:
    hidden = "".join(f'<input type="hidden" name="{html.escape(k)}" value="{html.escape(v)}">'
                     for k, v in values.items(multi=True) if k not in ("user", "deny"))
    # An empty icon: a browser asking for /favicon.ico would log a 404 in its console.
    return (f"<!doctype html><html lang=en><head><title>Fixture login</title>"
            f"<link rel=icon href='data:,'></head><body><form method=post action=/authorize>"
            f"{hidden}<p>{html.escape(values.get('client_id', ''))} asks for "
            f"<b>{html.escape(values.get('scope', '(default scope)'))}</b></p>"
            f"<label>User <input id=user name=user value=alice></label> "
            f"<button id=approve>Approve</button> "
            f"<button id=deny name=deny value=1>Deny</button></form></body></html>")


def oauth_error(status: int, error: str, description: str) -> Response:
    r = jsonify(error=error, error_description=description)
    r.status_code = status
    return r


def describe(resp: Response) -> Response:
    """Every OAuth error body carries an error_description (Authlib leaves some empty)."""
    body = resp.get_json(silent=True) if resp.status_code >= 400 else None
    if isinstance(body, dict) and body.get("error") and not body.get("error_description"):
        body["error_description"] = body["error"].replace("_", " ")
        resp.set_data(json.dumps(body))
    return resp


def create_app(store: Store) -> Flask:
    app = Flask(__name__)
    key = RSAKey.generate_key(2048, parameters={"use": "sig", "alg": "RS256"}, auto_kid=True)
    server = FixtureServer(app, store, key)
    require = protector(store)

    def locked(f):
        # One request at a time over the store: makes rotation and reuse detection race-free.
        @functools.wraps(f)
        def run(*args, **kwargs):
            with store.lock:
                resp = describe(app.make_response(f(*args, **kwargs)))
                store.save()
                return resp
        return run

    @app.get("/.well-known/oauth-authorization-server")
    def as_metadata():
        return metadata(store, oidc=False)

    @app.get("/.well-known/openid-configuration")
    def oidc_metadata():
        return metadata(store, oidc=True)

    @app.get("/jwks.json")
    def jwks():
        return {"keys": [key.as_dict(private=False)]}

    @app.route("/authorize", methods=["GET", "POST"])
    @locked
    def authorize():
        v = request.values
        try:
            grant = server.get_consent_grant(end_user=None)
        except OAuth2Error as error:  # bad client or redirect: JSON 400; else a redirect
            return server.handle_error_response(None, error)
        user = None if v.get("deny") == "1" else (v.get("user") or v.get("login_hint"))
        if v.get("deny") != "1":
            if not user:
                return login_form(v)
            if user not in store.users:
                return oauth_error(400, "invalid_request", f"unknown user {user!r} "
                                   f"(known: {', '.join(store.users)})")
        store.event("authorize", client_id=v.get("client_id"), user=user,
                    approved=user is not None, scope=v.get("scope"))
        return server.create_authorization_response(grant=grant, grant_user=user)

    @app.post("/token")
    @locked
    def token():
        cid = client_id_of(request)
        mode = store.token_modes.get(cid) or store.token_modes.get("*", "normal")
        if mode != "normal":
            store.event("token_malformed", mode=mode, client_id=cid,
                        grant_type=request.form.get("grant_type"))
        if mode == "garbage":
            return Response("<html>surprise: this is not JSON</html>", 200,
                            content_type="text/html")
        if mode == "missing":
            return {"token_type": "Bearer", "expires_in": store.access_ttl, "scope": "read"}
        if mode == "error":
            return Response("internal server error", 500, content_type="text/plain")
        resp = server.create_token_response()
        if resp.status_code >= 400:
            body = resp.get_json(silent=True) or {}
            store.event("token_error", grant_type=request.form.get("grant_type"), client_id=cid,
                        status=resp.status_code, error=body.get("error"),
                        error_description=body.get("error_description"))
        return resp

    @app.post("/revoke")
    @locked
    def revoke():
        return server.create_endpoint_response("revocation")

    @app.post("/introspect")
    @locked
    def introspect():
        return server.create_endpoint_response("introspection")

    def bearer():
        """(token, None) for a good access token, else (None, the 401 response)."""
        try:
            return require.acquire_token(), None
        except OAuth2Error as error:
            if error.error != "invalid_token":  # no header, or "Basic …" instead of "Bearer …"
                store.event("resource_denied", reason=error.error, path=request.path,
                            token_id=None)
            why = (error.description or "bearer access token required").replace('"', "'")
            r = oauth_error(401, "invalid_token", why)
            r.headers["WWW-Authenticate"] = (
                f'Bearer realm="{REALM}", error="invalid_token", error_description="{why}"')
            return None, r

    @app.get("/resource/me")
    @locked
    def resource_me():
        tok, denied = bearer()
        if denied:
            return denied
        store.event("resource_accessed", path=request.path, token_id=tok.id, user=tok.user,
                    client_id=tok.client_id)
        return {"user": tok.user, "scope": tok.scope, "token_id": tok.id}

    @app.get("/userinfo")
    @locked
    def userinfo():
        tok, denied = bearer()
        if denied:
            return denied
        store.event("resource_accessed", path=request.path, token_id=tok.id, user=tok.user,
                    client_id=tok.client_id)
        return dict(user_info(tok.user, tok.scope))

    # -- test hooks ------------------------------------------------------------------------

    @app.get("/_test/events")
    @locked
    def events():
        kind, since = request.args.get("type"), request.args.get("since", type=int, default=0)
        return jsonify([e for e in store.events
                        if e["seq"] > since and (kind is None or e["type"] == kind)])

    @app.post("/_test/reset")
    @locked
    def reset():
        store.events.clear()
        store.token_modes.clear()  # a mode left by a failed test must not leak into the next
        return {"ok": True}

    @app.post("/_test/revoke-all")
    @locked
    def revoke_all():
        user = request.args.get("user") or request.form.get("user")
        if not user:
            return oauth_error(400, "invalid_request", "missing 'user'")
        return {"user": user, "revoked": store.revoke_user(user)}

    @app.post("/_test/mode")
    @locked
    def mode():
        m, cid = request.args.get("token", "normal"), request.args.get("client_id") or "*"
        if m not in MODES:
            return oauth_error(400, "invalid_request", f"token mode must be one of {MODES}")
        store.token_modes[cid] = m
        store.event("mode_set", token=m, client_id=cid)
        return {"token": m, "client_id": cid}

    @app.post("/_test/clients")
    @locked
    def add_client():
        # Lets a test register its callback once it knows its own port.
        try:
            c = Client(**request.get_json(force=True))
        except TypeError as e:
            return oauth_error(400, "invalid_request", str(e))
        store.clients[c.client_id] = c
        store.event("client_registered", client_id=c.client_id, redirect_uris=c.redirect_uris)
        return {"client_id": c.client_id}, 201

    return app


def main() -> None:
    a = parse_args()
    store = build_store(a)
    app = create_app(store)
    tls = (a.tls_cert, a.tls_key) if a.tls_cert else None
    # bound and listening on return
    httpd = make_server(a.host, a.port, app, threaded=True, ssl_context=tls)
    store.url = f"{'https' if tls else 'http'}://{a.host}:{httpd.server_port}"
    for oidc, cls in ((False, AuthorizationServerMetadata), (True, OpenIDProviderMetadata)):
        cls(metadata(store, oidc)).validate()  # our discovery documents must be valid
    if a.quiet:
        import logging
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
    if a.exit_on_stdin_eof:
        def watch():
            sys.stdin.read()
            httpd.shutdown()
        threading.Thread(target=watch, daemon=True).start()
    with store.lock:
        store.save()
    print(f"READY {store.url}", flush=True)
    httpd.serve_forever()


if __name__ == "__main__":
    main()
