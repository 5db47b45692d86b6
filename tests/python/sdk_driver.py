"""The official MCP Python SDK, driven by a test: one JSON command per line on stdin,
one JSON answer per line on stdout. Keeps one session open across commands, so a test
can change grants or revoke tokens between two calls of the same session.

usage: sdk_driver.py URL TOKEN MODE        (MODE: legacy | 2026-07-28)
       sdk_driver.py stdio:TOOLBELT GATEWAY_URL TOKEN  — through `toolbelt stdio`

commands: {"op": "list_tools"} {"op": "call", "name": N, "args": {...}, "progress": bool}
          {"op": "list_prompts"} {"op": "get_prompt", "name": N, "args": {...}}
          {"op": "list_resources"} {"op": "list_templates"} {"op": "read_resource", "uri": U}
          {"op": "complete", "ref": {"type": "ref/prompt", "name": N}, "argument": {"name": A, "value": V}}
          {"op": "notifications"}  (tool list changes seen so far)  {"op": "quit"}
"""
import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.exceptions import MCPError

seen = {"list_changed": 0, "methods": []}


async def on_message(message) -> None:
    method = getattr(getattr(message, "root", message), "method", None) or getattr(message, "method", None)
    if method:
        seen["methods"].append(method)
        if method == "notifications/tools/list_changed":
            seen["list_changed"] += 1


def dump(obj):
    return obj.model_dump(mode="json", by_alias=True, exclude_none=True) if hasattr(obj, "model_dump") else obj


async def run(client: Client, cmd: dict) -> dict:
    op = cmd["op"]
    if op == "list_tools":
        tools, cursor, pages = [], None, 0
        while True:
            r = await client.list_tools(cursor=cursor, cache_mode="refresh") if cursor is None else await client.list_tools(cursor=cursor)
            pages += 1
            tools += [dump(t) for t in r.tools]
            cursor = r.next_cursor
            if not cursor:
                return {"ok": True, "tools": tools, "pages": pages}
    if op == "call":
        progress = []

        async def on_progress(p, total, message):
            progress.append({"progress": p, "total": total, "message": message})

        r = await client.call_tool(cmd["name"], cmd.get("args") or {}, progress_callback=on_progress if cmd.get("progress") else None)
        return {"ok": True, "is_error": bool(r.is_error), "text": "".join(getattr(c, "text", "") for c in r.content),
                "structured": r.structured_content, "progress": progress}
    if op == "list_prompts":
        r = await client.list_prompts()
        return {"ok": True, "prompts": [dump(p) for p in r.prompts]}
    if op == "get_prompt":
        r = await client.get_prompt(cmd["name"], cmd.get("args") or {})
        return {"ok": True, "messages": [dump(m) for m in r.messages]}
    if op == "list_resources":
        r = await client.list_resources()
        return {"ok": True, "resources": [dump(x) for x in r.resources]}
    if op == "list_templates":
        r = await client.list_resource_templates(cache_mode="refresh")
        return {"ok": True, "templates": [dump(x) for x in r.resource_templates]}
    if op == "read_resource":
        r = await client.read_resource(cmd["uri"])
        return {"ok": True, "contents": [dump(c) for c in r.contents]}
    if op == "complete":
        from mcp_types import PromptReference, ResourceTemplateReference
        ref = cmd["ref"]
        kind = PromptReference if ref.get("type") == "ref/prompt" else ResourceTemplateReference
        r = await client.complete(kind.model_validate(ref), cmd["argument"])
        return {"ok": True, "completion": dump(r.completion)}
    if op == "notifications":
        return {"ok": True, **seen}
    raise ValueError(f"unknown op {op}")


async def listen_forever(client: Client) -> None:
    try:
        async with client.listen(tools_list_changed=True) as sub:
            async for _event in sub:
                seen["list_changed"] += 1
    except Exception as e:  # the stream ends with the session
        seen["methods"].append(f"listen ended: {type(e).__name__}")


def transport(url: str, token: str):
    if url.startswith("stdio:"):
        # The agent speaks stdio to `toolbelt stdio`, which speaks HTTP to the gateway.
        import os
        from mcp import StdioServerParameters
        from mcp.client.stdio import stdio_client
        gateway, agent_token = token.split(" ", 1)
        env = {"PATH": os.environ.get("PATH", ""), "TOOLBELT_URL": gateway, "TOOLBELT_AGENT_TOKEN": agent_token}
        return stdio_client(StdioServerParameters(command=url[len("stdio:"):], args=["stdio"], env=env))
    headers = {"Authorization": f"Bearer {token}", **EXTRA_HEADERS}
    http = httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30.0, read=120.0))
    return streamable_http_client(url, http_client=http)


async def main(url: str, token: str, mode: str) -> None:
    async with Client(transport(url, token), mode=mode, message_handler=on_message, cache=None) as client:
        listener = asyncio.create_task(listen_forever(client)) if mode != "legacy" else None
        print(json.dumps({"ok": True, "ready": True, "protocol": getattr(client.session, "protocol_version", None)}), flush=True)
        loop = asyncio.get_running_loop()
        while True:
            line = await loop.run_in_executor(None, sys.stdin.readline)
            if not line or json.loads(line).get("op") == "quit":
                break
            try:
                out = await run(client, json.loads(line))
            except MCPError as e:
                out = {"ok": False, "code": e.error.code, "message": e.error.message, "data": e.error.data}
            except Exception as e:  # noqa: BLE001 - report, keep the session
                out = {"ok": False, "code": None, "message": f"{type(e).__name__}: {e}"}
            print(json.dumps(out), flush=True)
        if listener:
            listener.cancel()


if __name__ == "__main__":
    # An optional fourth argument: more headers for every request, as a JSON object.
    EXTRA_HEADERS = json.loads(sys.argv[4]) if len(sys.argv) > 4 else {}
    asyncio.run(main(*sys.argv[1:4]))
