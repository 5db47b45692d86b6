"""The official MCP Python SDK's OAuth client (`OAuthClientProvider`) against Toolbelt's
gateway, as a desktop MCP client uses it: it discovers the protected resource and the
authorization server from the first 401, registers itself (or, with a client metadata
document URL, uses that as its client_id), sends the user's browser to the authorization
endpoint with PKCE, receives the answer on its own loopback redirect URI, exchanges the
code, and then speaks MCP with the token. The test drives the browser (consent).

usage: oauth_sdk_driver.py MCP_URL TOOL ARGS_JSON [cimd:CERT_PEM:KEY_PEM]

With `cimd:…` the client registers nothing: it serves its own client metadata document
over HTTPS on 127.0.0.1 (with that certificate, which the test's CA signed) and uses the
document's URL as its client_id.

stdout, one JSON line each:
  {"authorize": URL}          open this in the user's browser
  {"done": {...}}             what happened: tools, the call's text, the tokens' rotation
  {"error": "..."}            the flow failed (the message says where)
stdin: one line "refresh" after the first call makes the client treat its access token
as expired, so the SDK refreshes it by itself before the next request (deterministic,
no waiting for a clock).
"""
import asyncio
import json
import ssl
import sys
from urllib.parse import parse_qs, urlparse

import httpx2
from mcp import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken


def say(obj) -> None:
    print(json.dumps(obj), flush=True)


class Memory:
    """Token storage: in memory, as a test needs (a real client keeps them on disk)."""

    def __init__(self):
        self.tokens: OAuthToken | None = None
        self.client: OAuthClientInformationFull | None = None

    async def get_tokens(self):
        return self.tokens

    async def set_tokens(self, tokens):
        self.tokens = tokens

    async def get_client_info(self):
        return self.client

    async def set_client_info(self, client_info):
        self.client = client_info


PAGE = (b"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><link rel=\"icon\" href=\"data:,\">"
        b"<title>Signed in</title></head><body><h1 id=\"callback-done\">You can close this window.</h1></body></html>")


class Callback:
    """The client's loopback redirect URI (RFC 8252 §7.3): one answer, then done."""

    def __init__(self):
        self.answer: asyncio.Future = asyncio.get_running_loop().create_future()
        self.server = None
        self.port = 0

    async def start(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]

    async def handle(self, reader, writer):
        line = (await reader.readline()).decode("latin-1")
        while (await reader.readline()) not in (b"\r\n", b"\n", b""):
            pass
        target = line.split(" ")[1] if " " in line else "/"
        url = urlparse(target)
        if url.path == "/callback":
            q = {k: v[0] for k, v in parse_qs(url.query).items()}
            if not self.answer.done():
                self.answer.set_result(q)
            body, status = PAGE, b"200 OK"
        else:
            body, status = b"not found", b"404 Not Found"
        writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: text/html; charset=utf-8\r\n"
                     b"Content-Length: " + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()


class Document:
    """The client's metadata document, served over HTTPS (what a real client hosts)."""

    def __init__(self, cert: str, key: str, redirect: str):
        self.ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        self.ctx.load_cert_chain(cert, key)
        self.redirect = redirect
        self.url = ""
        self.fetches = 0

    async def start(self):
        self.server = await asyncio.start_server(self.handle, "127.0.0.1", 0, ssl=self.ctx)
        self.url = f"https://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/client.json"

    async def handle(self, reader, writer):
        try:
            line = (await reader.readline()).decode("latin-1")
            while (await reader.readline()) not in (b"\r\n", b"\n", b""):
                pass
            if " /client.json " in line:
                self.fetches += 1
                body = json.dumps({
                    "client_id": self.url, "client_name": "SDK CIMD e2e", "redirect_uris": [self.redirect],
                    "grant_types": ["authorization_code", "refresh_token"], "response_types": ["code"],
                    "token_endpoint_auth_method": "none"}).encode()
                status = b"200 OK"
            else:
                body, status = b"{}", b"404 Not Found"
            writer.write(b"HTTP/1.1 " + status + b"\r\nContent-Type: application/json\r\nContent-Length: "
                         + str(len(body)).encode() + b"\r\nConnection: close\r\n\r\n" + body)
            await writer.drain()
            writer.close()
        except (ConnectionError, ssl.SSLError):
            pass


async def main(mcp_url: str, tool: str, args: dict, cimd: str | None) -> None:
    cb = Callback()
    await cb.start()
    redirect = f"http://127.0.0.1:{cb.port}/callback"
    doc = None
    metadata_url = None
    if cimd:
        _, cert, key = cimd.split(":", 2)
        doc = Document(cert, key, redirect)
        await doc.start()
        metadata_url = doc.url

    async def redirect_handler(url: str) -> None:
        say({"authorize": url})

    async def callback_handler() -> AuthorizationCodeResult:
        q = await asyncio.wait_for(cb.answer, 120)
        if "error" in q:
            raise RuntimeError(f"authorization refused: {q.get('error')}: {q.get('error_description')}")
        return AuthorizationCodeResult(code=q["code"], state=q.get("state"), iss=q.get("iss"))

    storage = Memory()
    provider = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="SDK OAuth e2e",
            redirect_uris=[redirect],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=redirect_handler,
        callback_handler=callback_handler,
        client_metadata_url=metadata_url,
    )
    http = httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(30.0, read=120.0))
    out: dict = {"redirect_uri": redirect}
    async with Client(streamable_http_client(mcp_url, http_client=http), mode="legacy", cache=None) as client:
        tools = await client.list_tools()
        out["tools"] = sorted(t.name for t in tools.tools)
        out["client_id"] = storage.client.client_id if storage.client else None
        out["first_access"] = storage.tokens.access_token
        out["first_refresh"] = storage.tokens.refresh_token
        r = await client.call_tool(tool, args)
        out["call"] = {"is_error": bool(r.is_error), "text": "".join(getattr(c, "text", "") for c in r.content)}
        say({"called": out["call"]})
        line = await asyncio.get_running_loop().run_in_executor(None, sys.stdin.readline)
        if line.strip() == "refresh":
            # As if the access token's lifetime had run out: the provider refreshes before
            # the next request (it checks the expiry it computed from `expires_in`).
            provider.context.token_expiry_time = 0.5
            tools = await client.list_tools()
            out["tools_after_refresh"] = sorted(t.name for t in tools.tools)
            r = await client.call_tool(tool, args)
            out["call_after_refresh"] = {"is_error": bool(r.is_error),
                                         "text": "".join(getattr(c, "text", "") for c in r.content)}
            out["second_access"] = storage.tokens.access_token
            out["second_refresh"] = storage.tokens.refresh_token
    out["document_fetches"] = doc.fetches if doc else None
    say({"done": out})


if __name__ == "__main__":
    try:
        asyncio.run(main(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]),
                         sys.argv[4] if len(sys.argv) > 4 else None))
    except BaseException as e:  # noqa: BLE001 - report it to the test, whatever it is
        msg = f"{type(e).__name__}: {e}"
        if isinstance(e, BaseExceptionGroup):
            msg += " | " + " | ".join(f"{type(x).__name__}: {x}" for x in e.exceptions)
        say({"error": msg})
        sys.exit(1)
