"""A scripted LLM for Toolbelt's chat tests: OpenAI Chat Completions (POST
/v1/chat/completions) and Anthropic Messages (POST /v1/messages) on the real wire, plain and
streamed, answering each request with the next step of a script and recording every request.

    python server.py [--script FILE] [--port 0] [--exit-on-stdin-eof] [--quiet]

Prints exactly one line `READY http://127.0.0.1:PORT` once it accepts connections.
Script format, faults and test hooks: README.md next to this file. Standard library only.
"""
from __future__ import annotations

import argparse
import json
import os
import select
import socket
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anthropic_wire
import openai_wire
from script import Reply, ScriptError, parse_script, turn_position


class State:
    """The script, which step is next, and every request seen (shared by request threads)."""

    def __init__(self, script):
        self.lock = threading.Lock()
        self.script = script
        self.next = 0
        self.requests: list[dict] = []

    def load(self, raw) -> None:
        script = parse_script(raw)
        with self.lock:
            self.script, self.next, self.requests = script, 0, []

    def record(self, entry: dict) -> dict:
        with self.lock:
            entry["seq"] = len(self.requests)
            self.requests.append(entry)
        return entry

    def take(self, body: dict) -> tuple[int, Reply | None]:
        """The step answering this request: (its index, it) or (index, None) past the end."""
        with self.lock:
            steps = self.script.steps
            if self.script.select == "turn":
                i = turn_position(body.get("messages") or [])
            else:
                i, self.next = self.next, self.next + 1
            return i, (steps[i] if i < len(steps) else None)

    def snapshot(self) -> list[dict]:
        with self.lock:
            return json.loads(json.dumps(self.requests))


STATE = State(parse_script([]))
QUIET = False


def peer_closed(sock: socket.socket) -> bool:
    """Whether the client hung up (readable with nothing to read), without reading its data."""
    try:
        ready, _, _ = select.select([sock], [], [], 0)
        return bool(ready) and sock.recv(1, socket.MSG_PEEK) == b""
    except OSError:
        return True


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "scripted-llm/1"

    def setup(self):
        super().setup()
        # As real model servers do: without it, small stream frames wait on the client's
        # delayed ACK (Nagle), adding ~40 ms that would be blamed on the client.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_message(self, fmt, *args):
        if not QUIET:
            sys.stderr.write("llm-fixture: " + fmt % args + "\n")

    # ---- plumbing -------------------------------------------------------------------
    def read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("content-length") or 0))

    def send_json(self, status: int, obj, raw: bytes | None = None) -> None:
        data = raw if raw is not None else json.dumps(obj).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def start_stream(self) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("cache-control", "no-cache")
        self.send_header("transfer-encoding", "chunked")
        self.end_headers()

    def chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
        self.wfile.flush()

    def hold(self, ms: int) -> str:
        """Waits until the client hangs up or `ms` pass; which one happened."""
        end = time.monotonic() + ms / 1000
        while time.monotonic() < end:
            if peer_closed(self.connection):
                return "disconnected"
            time.sleep(0.02)
        return "held"

    # ---- routes ---------------------------------------------------------------------
    def do_GET(self):
        path = self.path.split("?")[0]
        if path == "/__requests":
            return self.send_json(200, STATE.snapshot())
        if path == "/healthz":
            return self.send_json(200, {"ok": True})
        if path == "/v1/models":
            if self.headers.get("anthropic-version"):
                return self.send_json(200, {"data": [{"type": "model", "id": "scripted",
                                                      "display_name": "Scripted",
                                                      "created_at": "2026-01-01T00:00:00Z"}],
                                            "has_more": False, "first_id": "scripted",
                                            "last_id": "scripted"})
            return self.send_json(200, {"object": "list", "data": [
                {"id": "scripted", "object": "model", "created": 0, "owned_by": "toolbelt-tests"}]})
        self.send_json(404, {"error": {"message": f"no route GET {path}"}})

    def do_POST(self):
        path = self.path.split("?")[0]
        raw = self.read_body()
        if path == "/__script":
            try:
                STATE.load(json.loads(raw))
            except (ValueError, ScriptError) as e:
                return self.send_json(400, {"error": str(e)})
            return self.send_json(200, {"ok": True, "steps": len(STATE.script.steps)})
        if path == "/__reset":
            with STATE.lock:
                STATE.next, STATE.requests = 0, []
            return self.send_json(200, {"ok": True})
        azure = openai_wire.AZURE_PATH.match(path)
        if azure:
            return self.completion(openai_wire, raw, azure=azure.group(1))
        wire = {openai_wire.PATH: openai_wire, anthropic_wire.PATH: anthropic_wire}.get(path)
        if wire is None:
            return self.send_json(404, {"error": {"message": f"no route POST {path}"}})
        self.completion(wire, raw)

    def completion(self, wire, raw: bytes, azure: str | None = None) -> None:
        api = "azure" if azure else "openai" if wire is openai_wire else "anthropic"
        entry = {"api": api, "path": self.path, "headers": {k.lower(): v for k, v in
                                                            self.headers.items()},
                 "step": None, "stream": False, "outcome": "pending", "images": [],
                 "frame_times_ns": [], "token_times_ns": [], "received_ns": time.time_ns(),
                 "finished_ns": None}
        try:
            body = json.loads(raw)
            assert isinstance(body, dict)
        except (ValueError, AssertionError):
            entry.update(body=raw.decode(errors="replace"), outcome="invalid")
            STATE.record(entry)
            return self.send_json(400, wire.error(400, "We could not parse the JSON body of "
                                                       "your request."))
        entry.update(body=body, stream=bool(body.get("stream")), images=wire.images(body))
        STATE.record(entry)
        if azure:
            query = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(self.path).query))
            entry.update(deployment=azure, api_version=query.get("api-version"))
            refused = openai_wire.azure_error(query, self.headers, STATE.script.api_key)
        else:
            refused = wire.auth_error(self.headers, STATE.script.api_key)
        if refused:
            entry["outcome"] = "unauthorized"
            return self.send_json(*refused)
        if STATE.script.validate:
            why = (openai_wire.validate(body) if wire is openai_wire
                   else anthropic_wire.validate(body, self.headers))
            if why:
                entry.update(outcome="invalid", error=why)
                return self.send_json(400, wire.error(400, why))
        index, reply = STATE.take(body)
        entry["step"] = index
        if reply is None:
            entry["outcome"] = "exhausted"
            msg = f"the script has no step {index} ({len(STATE.script.steps)} steps)"
            return self.send_json(500, wire.error(500, msg))
        try:
            entry["outcome"] = self.answer(wire, reply, body, entry)
        except (BrokenPipeError, ConnectionResetError):
            entry["outcome"] = "disconnected"
            self.close_connection = True
        entry["finished_ns"] = time.time_ns()

    def answer(self, wire, reply: Reply, body: dict, entry: dict) -> str:
        """Sends one step's reply (or its fault); the outcome to record."""
        if reply.delay_ms:
            time.sleep(reply.delay_ms / 1000)
        if reply.fault == "http_error":
            self.send_json(reply.status, wire.error(reply.status, reply.message))
            return "error"
        if reply.fault == "garbage":
            self.send_json(200, None, raw=b"<html>502 Bad Gateway</html> {not json")
            return "garbage"
        rid = f"{'chatcmpl-' if wire is openai_wire else 'msg_'}{entry['seq']:06d}"
        if not body.get("stream"):
            if reply.fault == "hang":
                self.close_connection = True
                return self.hold(reply.hold_ms)
            data = json.dumps(wire.plain(reply, body, rid)).encode()
            return self.send_plain(data, cut=reply.fault == "cut")
        frames = wire.frames(reply, body, rid)
        self.start_stream()
        if reply.fault == "hang":
            self.chunk(frames[0][0])
            self.close_connection = True
            return self.hold(reply.hold_ms)
        cut = None
        if reply.fault == "cut":
            cut = reply.cut_after if reply.cut_after is not None else max(1, len(frames) // 2)
        for n, (frame, token) in enumerate(frames):
            if n == cut:
                self.close_connection = True
                return "cut"
            if token and reply.token_delay_ms:
                time.sleep(reply.token_delay_ms / 1000)
                if peer_closed(self.connection):
                    self.close_connection = True
                    return "disconnected"
            self.chunk(frame)
            entry["frame_times_ns"].append(time.time_ns())
            if token:
                entry["token_times_ns"].append(entry["frame_times_ns"][-1])
        self.wfile.write(b"0\r\n\r\n")
        return "replied"

    def send_plain(self, data: bytes, cut: bool) -> str:
        """A JSON reply; cut: its full length announced, half of it sent, then the socket
        closed (a connection lost mid-body)."""
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        if cut:
            self.wfile.write(data[: len(data) // 2])
            self.close_connection = True
            return "cut"
        self.wfile.write(data)
        return "replied"


def main(argv=None) -> None:
    global QUIET
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--script", help="JSON script file (else POST /__script later)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=0, help="0 picks a free port")
    p.add_argument("--exit-on-stdin-eof", action="store_true",
                   help="exit when stdin closes, so a crashed test leaves no orphan")
    p.add_argument("--quiet", action="store_true", help="no request log on stderr")
    a = p.parse_args(argv)
    QUIET = a.quiet
    if a.script:
        try:
            with open(a.script) as f:
                STATE.load(json.load(f))
        except (OSError, ValueError, ScriptError) as e:
            sys.exit(f"llm-fixture: bad script {a.script}: {e}")
    server = ThreadingHTTPServer((a.host, a.port), Handler)
    server.daemon_threads = True
    if a.exit_on_stdin_eof:
        def watch():
            while sys.stdin.buffer.read(4096):
                pass
            os._exit(0)
        threading.Thread(target=watch, daemon=True).start()
    print(f"READY http://{a.host}:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
