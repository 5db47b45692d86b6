"""The script of the scripted LLM: what each step means, normalised once, independent of the
wire protocol (openai_wire.py and anthropic_wire.py render a Reply into their format).

A script is a JSON list of steps, or an object {"steps": [...], "api_key": KEY, "select":
"sequence"|"turn", "validate": true}. README.md describes the step fields.
"""
from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field

FAULTS = ("cut", "hang", "http_error", "garbage")
STEP_KEYS = {"text", "chunks", "tool_calls", "usage", "fault", "cut_after", "status", "message",
             "delay_ms", "token_delay_ms", "hold_ms", "stop_reason"}
CALL_KEYS = {"id", "name", "arguments", "arguments_raw"}


class ScriptError(ValueError):
    """A script the fixture refuses: a typo in a test must fail loudly, not pass quietly."""


@dataclass
class Call:
    id: str
    name: str
    # The arguments exactly as the model "writes" them: JSON text, possibly malformed.
    arguments: str

    def fragments(self, size: int = 7) -> list[str]:
        """The argument text in small pieces, as models stream it (clients must join them)."""
        a = self.arguments
        return [a[i:i + size] for i in range(0, len(a), size)] or [""]


@dataclass
class Reply:
    """One step: the model's answer to one request, or the way it fails."""
    text: str = ""
    chunks: list[str] = field(default_factory=list)
    calls: list[Call] = field(default_factory=list)
    usage: dict | None = None
    fault: str | None = None
    cut_after: int | None = None
    status: int = 500
    message: str = "scripted failure"
    delay_ms: int = 0
    token_delay_ms: int = 0
    hold_ms: int = 60_000
    stop_reason: str | None = None

    def output_tokens(self) -> int:
        return (self.usage or {}).get("output_tokens", len(self.chunks) + 5 * len(self.calls))

    def input_tokens(self, body: dict) -> int:
        default = max(1, len(json.dumps(body.get("messages", []))) // 4)
        return (self.usage or {}).get("input_tokens", default)


def words(text: str) -> list[str]:
    """Text as stream tokens: each word with the spaces after it."""
    return re.findall(r"\s*\S+\s*", text) or ([text] if text else [])


def parse_step(n: int, raw) -> Reply:
    if isinstance(raw, str):
        raw = {"text": raw}
    if not isinstance(raw, dict):
        raise ScriptError(f"step {n}: an object or a string, not {type(raw).__name__}")
    unknown = set(raw) - STEP_KEYS
    if unknown:
        raise ScriptError(f"step {n}: unknown field(s) {sorted(unknown)}")
    fault = raw.get("fault")
    if fault is not None and fault not in FAULTS:
        raise ScriptError(f"step {n}: fault must be one of {FAULTS}, not {fault!r}")
    calls = []
    for i, c in enumerate(raw.get("tool_calls", [])):
        if not isinstance(c, dict) or "name" not in c or set(c) - CALL_KEYS:
            raise ScriptError(f"step {n}: tool call {i} needs a name and only {sorted(CALL_KEYS)}")
        if "arguments_raw" in c:
            args = c["arguments_raw"]
        else:
            args = json.dumps(c.get("arguments", {}), separators=(",", ":"))
        calls.append(Call(c.get("id") or f"call_{n}_{i}", c["name"], args))
    text = raw.get("text", "")
    chunks = raw.get("chunks") or words(text)
    if "chunks" in raw:
        text = "".join(chunks)
    return Reply(text=text, chunks=chunks, calls=calls, usage=raw.get("usage"), fault=fault,
                 cut_after=raw.get("cut_after"), status=raw.get("status", 500),
                 message=raw.get("message", "scripted failure"),
                 delay_ms=raw.get("delay_ms", 0), token_delay_ms=raw.get("token_delay_ms", 0),
                 hold_ms=raw.get("hold_ms", 60_000), stop_reason=raw.get("stop_reason"))


@dataclass
class Script:
    steps: list[Reply]
    api_key: str | None = None
    # sequence: step i answers the i-th request. turn: step i answers a request that carries
    # i model messages since the user's last one (stateless, so concurrent chats each walk
    # the same steps: the benchmark's mode).
    select: str = "sequence"
    validate: bool = True


def parse_script(raw) -> Script:
    if isinstance(raw, list):
        raw = {"steps": raw}
    if not isinstance(raw, dict) or not isinstance(raw.get("steps"), list):
        raise ScriptError("a script is a list of steps or an object with \"steps\"")
    unknown = set(raw) - {"steps", "api_key", "select", "validate"}
    if unknown:
        raise ScriptError(f"unknown script field(s) {sorted(unknown)}")
    if raw.get("select", "sequence") not in ("sequence", "turn"):
        raise ScriptError("select is sequence or turn")
    return Script(steps=[parse_step(n, s) for n, s in enumerate(raw["steps"])],
                  api_key=raw.get("api_key"), select=raw.get("select", "sequence"),
                  validate=raw.get("validate", True))


def turn_position(messages: list) -> int:
    """How many model messages follow the user's last own message (not a tool result)."""
    n = 0
    for m in reversed(messages):
        role = m.get("role") if isinstance(m, dict) else None
        if role == "assistant":
            n += 1
        elif role == "user" and not only_tool_results(m.get("content")):
            break
    return n


def only_tool_results(content) -> bool:
    return isinstance(content, list) and bool(content) and all(
        isinstance(b, dict) and b.get("type") == "tool_result" for b in content)


IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")


def image_bytes(data) -> int | None:
    """The decoded size of base64 image data, or None when it is not base64."""
    if not isinstance(data, str):
        return None
    try:
        return len(base64.b64decode(data, validate=True))
    except (binascii.Error, ValueError):
        return None
