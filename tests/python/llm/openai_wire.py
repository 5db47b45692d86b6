"""OpenAI Chat Completions as the real API speaks it: POST /v1/chat/completions, replies as
`chat.completion` objects or, with "stream": true, `chat.completion.chunk` SSE lines ending
in `data: [DONE]`. The request checks are the ones the real API makes that a chat runtime can
get wrong (tool definitions, tool results answering every call), with its error wording.
"""
from __future__ import annotations

import json
import re
import time

from script import IMAGE_TYPES, Reply, image_bytes

PATH = "/v1/chat/completions"
MAX_TOOLS = 128
NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def error(status: int, message: str, kind: str = "invalid_request_error", code=None,
          param=None) -> dict:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def auth_error(headers, key: str | None):
    """None when the key matches (or none is required), else (status, body)."""
    if key is None:
        return None
    got = headers.get("authorization", "")
    if got == f"Bearer {key}":
        return None
    shown = got.removeprefix("Bearer ")[:8]
    return 401, error(401, f"Incorrect API key provided: {shown}***.", code="invalid_api_key")


# Azure OpenAI's deployment API: the same body and replies at
# /openai/deployments/{deployment}/chat/completions?api-version=V, the key in `api-key`.
AZURE_PATH = re.compile(r"^/openai/deployments/([A-Za-z0-9._-]+)/chat/completions$")


def azure_error(query: dict, headers, key: str | None):
    """None when the request is a valid Azure one, else (status, body) as Azure answers."""
    if not query.get("api-version"):
        return 404, {"error": {"code": "404", "message": "Resource not found"}}
    if key is not None and headers.get("api-key", "") != key:
        return 401, {"error": {"code": "401", "message": "Access denied due to invalid "
                               "subscription key or wrong API endpoint. Make sure to provide a "
                               "valid key for an active subscription and use a correct regional "
                               "API endpoint for your resource."}}
    return None


def validate(body: dict) -> str | None:
    """The real API's 400 message for a request it would refuse, else None."""
    if not isinstance(body.get("model"), str):
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "Invalid 'messages': empty array. Expected an array with minimum length 1."
    tools = body.get("tools")
    if tools is not None:
        if not isinstance(tools, list):
            return "Invalid type for 'tools': expected an array."
        if len(tools) > MAX_TOOLS:
            return (f"Invalid 'tools': array too long. Expected an array with maximum length "
                    f"{MAX_TOOLS}, but got an array with length {len(tools)} instead.")
        for i, t in enumerate(tools):
            f = t.get("function") if isinstance(t, dict) else None
            if not isinstance(t, dict) or t.get("type") != "function" or not isinstance(f, dict):
                return f"Missing required parameter: 'tools[{i}].function'."
            if not NAME.match(str(f.get("name", ""))):
                return (f"Invalid 'tools[{i}].function.name': string does not match pattern. "
                        "Expected a string that matches the pattern '^[a-zA-Z0-9_-]+$'.")
            params = f.get("parameters")
            if params is not None and (not isinstance(params, dict) or params.get("type") != "object"):
                return (f"Invalid schema for function '{f.get('name')}': schema must be a "
                        "JSON Schema of 'type: \"object\"'.")
    return content_error(messages) or tool_history_error(messages)


DATA_URL = re.compile(r"^data:([^;,]+);base64,(.*)$", re.S)


def _parts(m: dict) -> list:
    c = m.get("content")
    return c if isinstance(c, list) else []


def content_error(messages: list) -> str | None:
    """Content parts as the real API takes them: images (`image_url`) only in user messages,
    a data URL of a supported image type with valid base64."""
    for i, m in enumerate(messages):
        if not isinstance(m, dict):
            continue
        for j, p in enumerate(_parts(m)):
            kind = p.get("type") if isinstance(p, dict) else None
            if kind == "text":
                continue
            if kind != "image_url":
                return f"Invalid value: '{kind}'. Supported values are: 'text' and 'image_url'."
            if m.get("role") != "user":
                return (f"Invalid 'messages[{i}]'. Image URLs are only allowed for messages with "
                        f"role 'user', but this message with role '{m.get('role')}' contains an "
                        "image URL.")
            url = (p.get("image_url") or {}).get("url", "")
            if url.startswith(("http://", "https://")):
                continue
            d = DATA_URL.match(url)
            if not d or d.group(1) not in IMAGE_TYPES or image_bytes(d.group(2)) is None:
                return (f"Invalid 'messages[{i}].content[{j}].image_url.url'. Expected a "
                        "base64-encoded data URL with an image MIME type (e.g. "
                        "'data:image/png;base64,aW1nIGJ5dGVzIGhlcmU='), but got "
                        f"{url[:40]!r}.")
    return None


def images(body: dict) -> list[dict]:
    """Every image the request carried, where: {message, role, media_type, bytes}."""
    out = []
    for i, m in enumerate(body.get("messages") or []):
        if not isinstance(m, dict):
            continue
        for p in _parts(m):
            if isinstance(p, dict) and p.get("type") == "image_url":
                d = DATA_URL.match((p.get("image_url") or {}).get("url", ""))
                out.append({"message": i, "role": m.get("role"), "in": "image_url",
                            "media_type": d.group(1) if d else None,
                            "bytes": image_bytes(d.group(2)) if d else None})
    return out


def tool_history_error(messages: list) -> str | None:
    """Every assistant tool call answered by a `tool` message, and no stray tool messages."""
    pending: list[str] = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or m.get("role") not in ("system", "developer", "user",
                                                            "assistant", "tool"):
            return f"Invalid value for 'messages[{i}].role'."
        role = m["role"]
        if role == "tool":
            cid = m.get("tool_call_id")
            if cid not in pending:
                return ("Invalid parameter: messages with role 'tool' must be a response to a "
                        "preceeding message with 'tool_calls'.")
            if not isinstance(m.get("content"), (str, list)):
                return f"Missing required parameter: 'messages[{i}].content'."
            pending.remove(cid)
            continue
        if pending:
            return ("An assistant message with 'tool_calls' must be followed by tool messages "
                    "responding to each 'tool_call_id'. The following tool_call_ids did not "
                    f"have response messages: {', '.join(pending)}")
        if role == "assistant":
            for c in m.get("tool_calls") or []:
                fn = c.get("function") or {}
                if not isinstance(fn.get("arguments"), str):
                    return f"Invalid type for 'messages[{i}].tool_calls.function.arguments'."
                pending.append(c.get("id"))
    if pending:
        return ("An assistant message with 'tool_calls' must be followed by tool messages "
                "responding to each 'tool_call_id'. The following tool_call_ids did not have "
                f"response messages: {', '.join(pending)}")
    return None


def _finish(reply: Reply) -> str:
    return reply.stop_reason or ("tool_calls" if reply.calls else "stop")


def _usage(reply: Reply, body: dict) -> dict:
    i, o = reply.input_tokens(body), reply.output_tokens()
    return {"prompt_tokens": i, "completion_tokens": o, "total_tokens": i + o}


def plain(reply: Reply, body: dict, rid: str) -> dict:
    message = {"role": "assistant", "content": reply.text or None, "refusal": None}
    if reply.calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in reply.calls]
    return {"id": rid, "object": "chat.completion", "created": int(time.time()),
            "model": body.get("model"), "system_fingerprint": "fp_scripted",
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": _finish(reply)}],
            "usage": _usage(reply, body)}


def frames(reply: Reply, body: dict, rid: str) -> list[tuple[bytes, bool]]:
    """The SSE lines of a streamed reply, each with whether it carries a token (token
    delays apply before those)."""
    created, model = int(time.time()), body.get("model")

    def chunk(delta, finish=None, usage=None, choices=True):
        c = {"id": rid, "object": "chat.completion.chunk", "created": created, "model": model,
             "system_fingerprint": "fp_scripted",
             "choices": [{"index": 0, "delta": delta, "logprobs": None,
                          "finish_reason": finish}] if choices else []}
        if usage is not None:
            c["usage"] = usage
        return f"data: {json.dumps(c)}\n\n".encode()

    out = [(chunk({"role": "assistant", "content": "", "refusal": None}), False)]
    out += [(chunk({"content": t}), True) for t in reply.chunks]
    for i, c in enumerate(reply.calls):
        out.append((chunk({"tool_calls": [{"index": i, "id": c.id, "type": "function",
                                           "function": {"name": c.name, "arguments": ""}}]}), True))
        out += [(chunk({"tool_calls": [{"index": i, "function": {"arguments": f}}]}), True)
                for f in c.fragments()]
    out.append((chunk({}, finish=_finish(reply)), False))
    if (body.get("stream_options") or {}).get("include_usage"):
        out.append((chunk(None, usage=_usage(reply, body), choices=False), False))
    out.append((b"data: [DONE]\n\n", False))
    return out

