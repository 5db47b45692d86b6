"""Anthropic Messages as the real API speaks it: POST /v1/messages, replies as `message`
objects with text and tool_use content blocks or, with "stream": true, the named SSE events
message_start, content_block_start / content_block_delta (text_delta, input_json_delta) /
content_block_stop, message_delta (stop reason, usage) and message_stop. The request checks
are the real API's that a chat runtime can get wrong, with its error wording.
"""
from __future__ import annotations

import json
import re

from script import IMAGE_TYPES, Reply, image_bytes

PATH = "/v1/messages"
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,128}$")


def error(status: int, message: str, kind: str | None = None) -> dict:
    kind = kind or {400: "invalid_request_error", 401: "authentication_error",
                    404: "not_found_error", 429: "rate_limit_error",
                    529: "overloaded_error"}.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def auth_error(headers, key: str | None):
    if key is None:
        return None
    # x-api-key, or (as the current SDK sends its api_key) a Bearer token.
    if key in (headers.get("x-api-key"), headers.get("authorization", "").removeprefix("Bearer ")):
        return None
    return 401, error(401, "invalid x-api-key")


def validate(body: dict, headers) -> str | None:
    if not headers.get("anthropic-version"):
        return "anthropic-version: header is required"
    if not isinstance(body.get("model"), str):
        return "model: Field required"
    if not isinstance(body.get("max_tokens"), int):
        return "max_tokens: Field required"
    system = body.get("system")
    if system is not None and not isinstance(system, (str, list)):
        return "system: Input should be a valid string or list"
    tools = body.get("tools") or []
    if not isinstance(tools, list):
        return "tools: Input should be a valid list"
    for i, t in enumerate(tools):
        if not isinstance(t, dict) or not NAME.match(str(t.get("name", ""))):
            return f"tools.{i}.custom.name: String should match pattern '^[a-zA-Z0-9_-]{{1,128}}$'"
        schema = t.get("input_schema")
        if not isinstance(schema, dict) or schema.get("type") != "object":
            return f"tools.{i}.custom.input_schema.type: Input should be 'object'"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    return content_error(messages) or history_error(messages)


TOOL_RESULT_BLOCKS = ("text", "image", "document", "search_result")


def _image_error(where: str, b: dict) -> str | None:
    src = b.get("source") if isinstance(b.get("source"), dict) else {}
    if src.get("type") != "base64":
        return None if src.get("type") == "url" else f"{where}.source: Input tag found using 'type' does not match any of the expected tags: 'base64', 'url'"
    if src.get("media_type") not in IMAGE_TYPES:
        return (f"{where}.source.base64.media_type: Input should be 'image/jpeg', 'image/png', "
                "'image/gif' or 'image/webp'")
    if image_bytes(src.get("data")) is None:
        return f"{where}.source.base64.data: The image data is not valid base64"
    return None


def content_error(messages: list) -> str | None:
    """Image blocks as the real API takes them (base64 of a supported type), in a user
    message or inside a tool_result, whose content holds only the block types it allows."""
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or not isinstance(m.get("content"), list):
            continue
        for j, b in enumerate(m["content"]):
            if not isinstance(b, dict):
                continue
            where = f"messages.{i}.content.{j}"
            if b.get("type") == "image":
                why = _image_error(f"{where}.image", b)
                if why:
                    return why
            if b.get("type") == "tool_result" and isinstance(b.get("content"), list):
                for k, c in enumerate(b["content"]):
                    kind = c.get("type") if isinstance(c, dict) else None
                    if kind not in TOOL_RESULT_BLOCKS:
                        return (f"{where}.tool_result.content.{k}: Input tag '{kind}' found using "
                                "'type' does not match any of the expected tags: 'text', "
                                "'image', 'document', 'search_result'")
                    if kind == "image":
                        why = _image_error(f"{where}.tool_result.content.{k}.image", c)
                        if why:
                            return why
    return None


def images(body: dict) -> list[dict]:
    """Every image the request carried, where: {message, role, in (content | tool_result),
    tool_use_id?, media_type, bytes}."""
    out = []

    def add(i, role, where, b, tool_use_id=None):
        src = b.get("source") if isinstance(b.get("source"), dict) else {}
        e = {"message": i, "role": role, "in": where, "media_type": src.get("media_type"),
             "bytes": image_bytes(src.get("data"))}
        if tool_use_id is not None:
            e["tool_use_id"] = tool_use_id
        out.append(e)

    for i, m in enumerate(body.get("messages") or []):
        if not isinstance(m, dict) or not isinstance(m.get("content"), list):
            continue
        for b in m["content"]:
            if not isinstance(b, dict):
                continue
            if b.get("type") == "image":
                add(i, m.get("role"), "content", b)
            if b.get("type") == "tool_result" and isinstance(b.get("content"), list):
                for c in b["content"]:
                    if isinstance(c, dict) and c.get("type") == "image":
                        add(i, m.get("role"), "tool_result", c, b.get("tool_use_id"))
    return out


def _blocks(content) -> list:
    return [{"type": "text", "text": content}] if isinstance(content, str) else (content or [])


def history_error(messages: list) -> str | None:
    """Every tool_use is answered by a tool_result in the very next message, and every
    tool_result answers one (consecutive same-role turns the real API merges, so they pass)."""
    pending: list[str] = []
    for i, m in enumerate(messages):
        role = m.get("role") if isinstance(m, dict) else None
        if role not in ("user", "assistant"):
            return f"messages.{i}.role: Input should be 'user' or 'assistant'"
        blocks = _blocks(m.get("content"))
        if not isinstance(blocks, list):
            return f"messages.{i}.content: Input should be a valid list"
        answered = [b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"]
        for a in answered:
            if a not in pending:
                return (f"messages.{i}.content: unexpected `tool_use_id` found in `tool_result` "
                        f"blocks: {a}. Each `tool_result` block must have a corresponding "
                        "`tool_use` block in the previous message.")
        missing = [p for p in pending if p not in answered]
        if missing:
            return (f"messages.{i}: `tool_use` ids were found without `tool_result` blocks "
                    f"immediately after: {', '.join(missing)}. Each `tool_use` block must have "
                    "a corresponding `tool_result` block in the next message.")
        pending = []
        if role == "assistant":
            for b in blocks:
                if b.get("type") == "tool_use":
                    if not isinstance(b.get("input"), dict):
                        return f"messages.{i}.content.tool_use.input: Input should be an object"
                    pending.append(b.get("id"))
    if pending:
        return (f"messages.{len(messages) - 1}: `tool_use` ids were found without "
                f"`tool_result` blocks immediately after: {', '.join(pending)}.")
    return None


def _stop(reply: Reply) -> str:
    return reply.stop_reason or ("tool_use" if reply.calls else "end_turn")


def _input(c) -> object:
    """A tool_use block's input: the object, or (a malformed-arguments fault) the raw text,
    which the real API never sends and a client must refuse."""
    try:
        return json.loads(c.arguments)
    except ValueError:
        return c.arguments


def plain(reply: Reply, body: dict, rid: str) -> dict:
    content = [{"type": "text", "text": reply.text}] if reply.text else []
    content += [{"type": "tool_use", "id": c.id.replace("call_", "toolu_"), "name": c.name,
                 "input": _input(c)} for c in reply.calls]
    return {"id": rid, "type": "message", "role": "assistant", "model": body.get("model"),
            "content": content, "stop_reason": _stop(reply), "stop_sequence": None,
            "usage": {"input_tokens": reply.input_tokens(body),
                      "output_tokens": reply.output_tokens()}}


def _event(name: str, data: dict) -> bytes:
    return f"event: {name}\ndata: {json.dumps(data)}\n\n".encode()


def frames(reply: Reply, body: dict, rid: str) -> list[tuple[bytes, bool]]:
    """The named events of a streamed reply, each with whether it carries a token."""
    start = {"id": rid, "type": "message", "role": "assistant", "model": body.get("model"),
             "content": [], "stop_reason": None, "stop_sequence": None,
             "usage": {"input_tokens": reply.input_tokens(body), "output_tokens": 1}}
    out = [(_event("message_start", {"type": "message_start", "message": start}), False),
           (_event("ping", {"type": "ping"}), False)]
    index = 0
    if reply.chunks:
        out.append((_event("content_block_start", {"type": "content_block_start", "index": 0,
                                                   "content_block": {"type": "text", "text": ""}}),
                    False))
        out += [(_event("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                "delta": {"type": "text_delta", "text": t}}), True)
                for t in reply.chunks]
        out.append((_event("content_block_stop", {"type": "content_block_stop", "index": 0}), False))
        index = 1
    for c in reply.calls:
        block = {"type": "tool_use", "id": c.id.replace("call_", "toolu_"), "name": c.name,
                 "input": {}}
        out.append((_event("content_block_start", {"type": "content_block_start", "index": index,
                                                   "content_block": block}), True))
        out += [(_event("content_block_delta", {"type": "content_block_delta", "index": index,
                                                "delta": {"type": "input_json_delta",
                                                          "partial_json": f}}), True)
                for f in c.fragments()]
        out.append((_event("content_block_stop", {"type": "content_block_stop", "index": index}),
                    False))
        index += 1
    out.append((_event("message_delta", {"type": "message_delta",
                                         "delta": {"stop_reason": _stop(reply), "stop_sequence": None},
                                         "usage": {"output_tokens": reply.output_tokens()}}), False))
    out.append((_event("message_stop", {"type": "message_stop"}), False))
    return out
