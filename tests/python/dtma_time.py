"""The official MCP Python SDK, as an agent would use it, against a DTMA's bridge.

usage: dtma_time.py URL KEY_FILE TOOLBOX_ID  — prints one JSON line with what it saw.
"""
import asyncio
import json
import sys

import httpx2
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from dtma_token import sign


async def main(url: str, key_file: str, toolbox: str) -> None:
    http = httpx2.AsyncClient(
        headers={"Authorization": f"Bearer {sign(key_file, toolbox)}"},
        timeout=httpx2.Timeout(30.0, read=60.0),
    )
    async with Client(streamable_http_client(url, http_client=http), mode="legacy") as c:
        tools = (await c.list_tools()).tools
        r = await c.call_tool("get_current_time", {"timezone": "UTC"})
        bad = await c.call_tool("get_current_time", {"timezone": "Not/AZone"})
        print(json.dumps({
            "tools": sorted(t.name for t in tools),
            "is_error": r.is_error,
            "text": r.content[0].text,
            "bad_is_error": bad.is_error,
        }))


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:4]))
