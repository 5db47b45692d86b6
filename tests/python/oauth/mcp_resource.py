"""A remote MCP server that is an OAuth protected resource, for Toolbelt's gateway tests.

    python mcp_resource.py --introspect http://127.0.0.1:AS_PORT/introspect
        [--client-id toolbelt-test --client-secret toolbelt-test-secret] [--port 0]
        [--stateless] [--sse] [--exit-on-stdin-eof] [--quiet]

Built with the official MCP Python SDK (mcp 2.x, `MCPServer`, streamable HTTP at /mcp). Every
request to /mcp needs `Authorization: Bearer <token>`; the token is checked with the fixture's
RFC 7662 introspection endpoint (server.py's POST /introspect), through the SDK's own
`TokenVerifier` / `AuthSettings` support. A client needs no OAuth discovery: it just sends the
bearer token. Prints exactly one line `READY http://127.0.0.1:PORT/mcp` once it accepts
connections. Tools: `whoami`, `echo` (with `--per-user-tool`, also `only_<user>`, listed only to
that user's token). Test hooks: GET /_test/calls, GET /_test/lists (the user of every
`tools/list`). See README.md.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import socket
import ssl
import sys
import threading
import warnings
from urllib.parse import urlsplit

import anyio
import httpx2
import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import Context, MCPServer
from mcp_types import ListToolsResult
from mcp_types import Tool as MCPTool
from starlette.requests import Request
from starlette.responses import JSONResponse

log = logging.getLogger("mcp_resource")


def parse_args(argv=None):
    class Fmt(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
        pass

    p = argparse.ArgumentParser(description=__doc__, formatter_class=Fmt)
    p.add_argument("--host", default="127.0.0.1", help="listen address")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--introspect", required=True,
                   help="RFC 7662 introspection endpoint, e.g. http://127.0.0.1:PORT/introspect")
    p.add_argument("--client-id", default="toolbelt-test",
                   help="client that authenticates to the introspection endpoint")
    p.add_argument("--client-secret", default="toolbelt-test-secret", help="its secret")
    p.add_argument("--client-auth", choices=("client_secret_basic", "client_secret_post"),
                   default="client_secret_basic", help="how to authenticate to --introspect")
    p.add_argument("--issuer", help="authorization server issuer advertised in the protected "
                                    "resource metadata (none: the origin of --introspect)")
    p.add_argument("--stateless", action="store_true",
                   help="stateless streamable HTTP (no Mcp-Session-Id)")
    p.add_argument("--sse", action="store_true",
                   help="answer POSTs with an SSE stream instead of a JSON body")
    p.add_argument("--exit-on-stdin-eof", action="store_true",
                   help="exit when stdin closes, so a crashed test leaves no orphan")
    p.add_argument("--quiet", action="store_true", help="no request log on stderr")
    p.add_argument("--tls-cert", help="PEM certificate chain: serve HTTPS (with --tls-key)")
    p.add_argument("--tls-key", help="PEM private key of --tls-cert")
    p.add_argument("--ca-file", help="PEM CA the introspection endpoint's certificate is from")
    p.add_argument("--per-user-tool", action="store_true",
                   help="list one more tool, only_<user>, to each user's token")
    return p.parse_args(argv)


class IntrospectionVerifier:
    """The SDK's `TokenVerifier` protocol, backed by RFC 7662 introspection.

    Inactive, unknown, expired and revoked tokens come back `{"active": false}`; a refresh token
    is active but not a bearer token (the fixture says `token_type: refresh_token`): all are
    refused (None → the SDK answers 401). An unreachable or failing introspection endpoint is
    refused too, and logged.
    """

    def __init__(self, url: str, client_id: str, client_secret: str, method: str,
                 ca_file: str | None = None):
        self.url, self.client_id, self.client_secret, self.method = (
            url, client_id, client_secret, method)
        verify = ssl.create_default_context(cafile=ca_file) if ca_file else True
        self.http = httpx2.AsyncClient(timeout=10, verify=verify)

    async def verify_token(self, token: str) -> AccessToken | None:
        form = {"token": token, "token_type_hint": "access_token"}
        auth = None
        if self.method == "client_secret_basic":
            auth = httpx2.BasicAuth(self.client_id, self.client_secret)
        else:
            form.update(client_id=self.client_id, client_secret=self.client_secret)
        try:
            resp = await self.http.post(self.url, data=form, auth=auth)
            data = resp.json() if resp.status_code == 200 else None
        except (httpx2.HTTPError, ValueError) as e:
            log.warning("introspection failed: %s: %s", type(e).__name__, e)
            return None
        if not isinstance(data, dict):
            log.warning("introspection answered %s: %.200s", resp.status_code, resp.text)
            return None
        if data.get("active") is not True:
            return None
        if str(data.get("token_type") or "bearer").lower() != "bearer":
            return None  # e.g. a refresh token presented as a bearer token
        exp = data.get("exp")
        return AccessToken(
            token=token,
            client_id=str(data.get("client_id") or ""),
            scopes=str(data.get("scope") or "").split(),
            expires_at=int(exp) if isinstance(exp, (int, float)) else None,
            subject=data.get("sub") or data.get("username"),
            claims=data,  # includes `iss`: session ownership binds (client_id, iss, sub)
        )


class ListingServer(MCPServer):
    """Records whose token every `tools/list` came with (`on_list`) and, when `per_user` is
    set, lists `only_<user>` besides the real tools, so a test can tell whose token a
    listing it was shown was made with."""

    on_list = None
    per_user = False

    async def _handle_list_tools(self, ctx, params) -> ListToolsResult:
        req = getattr(ctx, "request", None)
        user = getattr(req.scope.get("user"), "access_token", None) if req is not None else None
        claims = (user.claims or {}) if user is not None else {}
        name = claims.get("username") or (user.subject if user is not None else None)
        if self.on_list is not None:
            self.on_list(name)
        tools = await self.list_tools()
        if self.per_user and name:
            tools.append(MCPTool(name=f"only_{name}", description=f"Listed only to {name}.",
                                 input_schema={"type": "object", "properties": {}}))
        return ListToolsResult(tools=tools)


def token_info(ctx: Context) -> tuple[str | None, str | None, str | None, str | None]:
    """(user, token_id, scope, client_id) of the bearer token that carried this request."""
    tok = get_access_token()
    if tok is None:  # not in the contextvar: take it from the HTTP request itself
        req = getattr(ctx.request_context, "request", None)
        user = req.scope.get("user") if req is not None else None
        tok = getattr(user, "access_token", None)
    if tok is None:
        return None, None, None, None
    claims = tok.claims or {}
    user = claims.get("username") or tok.subject
    token_id = claims.get("jti") or "sha256:" + hashlib.sha256(tok.token.encode()).hexdigest()[:16]
    return user, token_id, " ".join(tok.scopes), tok.client_id or None


def build_server(a, resource_url: str) -> MCPServer:
    issuer = a.issuer or "{0.scheme}://{0.netloc}".format(urlsplit(a.introspect))
    verifier = IntrospectionVerifier(a.introspect, a.client_id, a.client_secret, a.client_auth,
                                     a.ca_file)
    mcp = ListingServer(
        name="toolbelt-oauth-mcp-resource",
        version="1",
        token_verifier=verifier,
        auth=AuthSettings(
            issuer_url=issuer,
            resource_server_url=resource_url,
            # The fixture's tokens carry no audience (no RFC 8707 binding): accept any token
            # the authorization server says is active.
            validate_token_resource=False,
        ),
        log_level="WARNING" if a.quiet else "INFO",
    )
    calls: list[dict] = []
    lists: list[str | None] = []
    lock = threading.Lock()

    def listed(user: str | None) -> None:
        with lock:
            lists.append(user)

    mcp.on_list, mcp.per_user = listed, a.per_user_tool

    def record(tool: str, ctx: Context) -> tuple:
        info = token_info(ctx)
        with lock:
            calls.append({"tool": tool, "user": info[0], "token_id": info[1]})
        return info

    @mcp.tool(description="Who does the bearer token of this request belong to?",
              structured_output=False)
    def whoami(ctx: Context) -> str:
        user, token_id, scope, client_id = record("whoami", ctx)
        return json.dumps({"user": user, "token_id": token_id, "scope": scope,
                           "client_id": client_id})

    @mcp.tool(description="Returns its argument unchanged.", structured_output=False)
    def echo(text: str, ctx: Context) -> str:
        record("echo", ctx)
        return text

    # custom routes are not behind the bearer check: these are test hooks
    @mcp.custom_route("/_test/calls", methods=["GET"])
    async def test_calls(request: Request) -> JSONResponse:
        with lock:
            return JSONResponse(list(calls))

    @mcp.custom_route("/_test/lists", methods=["GET"])
    async def test_lists(request: Request) -> JSONResponse:
        with lock:
            return JSONResponse(list(lists))

    @mcp.custom_route("/_test/reset", methods=["POST"])
    async def test_reset(request: Request) -> JSONResponse:
        with lock:
            calls.clear()
            lists.clear()
        return JSONResponse({"ok": True})

    return mcp


def setup_logging(quiet: bool) -> None:
    # Everything on stderr: stdout carries only the READY line (uvicorn's own default config
    # would send the access log to stdout).
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
    logging.basicConfig(level=logging.WARNING if quiet else logging.INFO, handlers=[handler])
    logging.getLogger("httpx2").setLevel(logging.WARNING)
    logging.getLogger("httpcore2").setLevel(logging.WARNING)
    if quiet:
        logging.getLogger("uvicorn.access").setLevel(logging.ERROR)


def main() -> None:
    a = parse_args()
    setup_logging(a.quiet)
    sock = socket.socket(socket.AF_INET6 if ":" in a.host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((a.host, a.port))
    sock.listen(128)
    port = sock.getsockname()[1]
    host = f"[{a.host}]" if ":" in a.host else a.host
    url = f"{'https' if a.tls_cert else 'http'}://{host}:{port}/mcp"

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SDK deprecation notices are not the test's business
        mcp = build_server(a, url)
    app = mcp.streamable_http_app(json_response=not a.sse, stateless_http=a.stateless,
                                  host=a.host)
    config = uvicorn.Config(app, log_config=None, access_log=not a.quiet,
                            log_level="warning" if a.quiet else "info", lifespan="on",
                            ssl_certfile=a.tls_cert, ssl_keyfile=a.tls_key)
    server = uvicorn.Server(config)

    if a.exit_on_stdin_eof:
        def watch():
            sys.stdin.read()
            server.should_exit = True
        threading.Thread(target=watch, daemon=True).start()

    async def run():
        async def announce():
            while not server.started:
                if server.should_exit:
                    return
                await anyio.sleep(0.01)
            print(f"READY {url}", flush=True)

        async with anyio.create_task_group() as tg:
            tg.start_soon(announce)
            await server.serve(sockets=[sock])
            tg.cancel_scope.cancel()

    anyio.run(run)


if __name__ == "__main__":
    main()
