"""Self-test of the scripted LLM: starts server.py and has the official `openai` and
`anthropic` SDKs consume its plain and streamed replies, tool calls included, plus its faults
and request checks. One PASS/FAIL line per check; exits 1 on any FAIL.

    python selftest.py        (with requirements.txt installed)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request

import anthropic
import openai

HERE = os.path.dirname(os.path.abspath(__file__))
KEY = "sk-selftest"
URL = ""
failures = 0


def check(name: str, ok: bool, detail="") -> bool:
    global failures
    failures += not ok
    print(f"{'PASS' if ok else 'FAIL'} {name}" + ("" if ok else f"  -- {detail}"), flush=True)
    return ok


def hook(method: str, path: str, body=None):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(URL + path, data=data, method=method,
                                 headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def script(steps, **extra):
    status, body = hook("POST", "/__script", {"steps": steps, "api_key": KEY, **extra})
    assert status == 200, body


def requests():
    return hook("GET", "/__requests")[1]


def eventually(get, want, limit=10.0):
    """Polls `get` until it returns `want` or `limit` seconds pass; the last value."""
    end = time.monotonic() + limit
    while True:
        got = get()
        if got == want or time.monotonic() > end:
            return got
        time.sleep(0.05)


def raises(fn, kind) -> str:
    try:
        fn()
    except kind as e:
        return f"{type(e).__name__}: {e}"
    return ""


ECHO = {"type": "function", "function": {"name": "tools__echo", "description": "echo",
                                         "parameters": {"type": "object",
                                                        "properties": {"text": {"type": "string"}}}}}
ECHO_A = {"name": "tools__echo", "description": "echo",
          "input_schema": {"type": "object", "properties": {"text": {"type": "string"}}}}
CALLS = [{"name": "tools__echo", "arguments": {"text": "hi"}},
         {"name": "other__add", "arguments": {"a": 1, "b": 2}}]


def openai_checks(oa: openai.OpenAI) -> None:
    user = [{"role": "user", "content": "hello"}]
    script([{"text": "Hello there, friend.", "usage": {"input_tokens": 11, "output_tokens": 4}}])
    r = oa.chat.completions.create(model="m", messages=user)
    check("openai: plain text", r.choices[0].message.content == "Hello there, friend."
          and r.choices[0].finish_reason == "stop", r)
    check("openai: usage", r.usage.prompt_tokens == 11 and r.usage.completion_tokens == 4, r.usage)

    script([{"tool_calls": CALLS}])
    r = oa.chat.completions.create(model="m", messages=user, tools=[ECHO])
    calls = r.choices[0].message.tool_calls or []
    check("openai: parallel tool calls",
          [(c.function.name, json.loads(c.function.arguments)) for c in calls]
          == [("tools__echo", {"text": "hi"}), ("other__add", {"a": 1, "b": 2})]
          and r.choices[0].finish_reason == "tool_calls", r)

    script([{"text": "Streamed words arrive one by one."}])
    stream = oa.chat.completions.create(model="m", messages=user, stream=True,
                                        stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    check("openai: streamed text", text == "Streamed words arrive one by one.", text)
    check("openai: streamed usage chunk", chunks[-1].usage is not None and not chunks[-1].choices,
          chunks[-1])
    check("openai: one delta per word", sum(1 for c in chunks if c.choices and
                                            c.choices[0].delta.content) == 6, len(chunks))

    script([{"text": "Let me look.", "tool_calls": CALLS}])
    with oa.chat.completions.stream(model="m", messages=user, tools=[ECHO]) as s:
        final = s.get_final_completion()
    m = final.choices[0].message
    check("openai: streamed tool calls assembled by the SDK",
          m.content == "Let me look." and [(c.id, c.function.name, json.loads(c.function.arguments))
                                           for c in m.tool_calls]
          == [("call_0_0", "tools__echo", {"text": "hi"}), ("call_0_1", "other__add", {"a": 1, "b": 2})],
          m)

    script(["Echoed."])
    history = user + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_0_0", "type": "function",
         "function": {"name": "tools__echo", "arguments": "{\"text\":\"hi\"}"}}]},
        {"role": "tool", "tool_call_id": "call_0_0", "content": "hi"}]
    r = oa.chat.completions.create(model="m", messages=history, tools=[ECHO])
    seen = requests()[-1]
    check("openai: tool result round trip recorded",
          r.choices[0].message.content == "Echoed." and seen["body"]["messages"][-1]["content"] == "hi"
          and seen["body"]["tools"] == [ECHO] and seen["headers"]["authorization"] == f"Bearer {KEY}",
          seen)

    script(["never"])
    err = raises(lambda: oa.chat.completions.create(model="m", messages=history[:2], tools=[ECHO]),
                 openai.BadRequestError)
    check("openai: an unanswered tool call is a 400", "did not have response messages: call_0_0"
          in err and requests()[-1]["outcome"] == "invalid", err)
    err = raises(lambda: oa.chat.completions.create(
        model="m", messages=user, tools=[ECHO] * 129), openai.BadRequestError)
    check("openai: more than 128 tools is a 400", "maximum length 128" in err, err)
    bad = openai.OpenAI(base_url=URL + "/v1", api_key="sk-wrong", max_retries=0)
    err = raises(lambda: bad.chat.completions.create(model="m", messages=user),
                 openai.AuthenticationError)
    check("openai: a wrong key is a 401", "Incorrect API key" in err, err)

    script([{"tool_calls": [{"name": "tools__echo", "arguments_raw": "{\"text\": \"hi"}]}])
    r = oa.chat.completions.create(model="m", messages=user, tools=[ECHO])
    check("openai: malformed arguments passed through",
          r.choices[0].message.tool_calls[0].function.arguments == "{\"text\": \"hi", r)

    script([{"fault": "http_error", "status": 429, "message": "slow down"}])
    err = raises(lambda: oa.chat.completions.create(model="m", messages=user), openai.RateLimitError)
    check("openai: scripted 429", "slow down" in err, err)

    script([{"text": "one two three four five six", "fault": "cut", "cut_after": 3}])

    def consume_cut():
        got = []
        for c in oa.chat.completions.create(model="m", messages=user, stream=True):
            got += [c.choices[0].delta.content or ""] if c.choices else []
        return got
    err = raises(consume_cut, Exception)
    check("openai: a cut stream fails the SDK", bool(err) and requests()[-1]["outcome"] == "cut", err)

    script([{"fault": "cut"}])
    err = raises(lambda: oa.chat.completions.create(model="m", messages=user), Exception)
    check("openai: a cut plain body fails the SDK", bool(err), err)

    script([{"text": "a b c d", "token_delay_ms": 60}])
    list(oa.chat.completions.create(model="m", messages=user, stream=True))
    t = requests()[-1]["frame_times_ns"]
    gaps = [(b - a) / 1e6 for a, b in zip(t, t[1:])]
    check("openai: token delays", len(t) == 7 and sum(g >= 55 for g in gaps) == 4, gaps)

    script([{"fault": "hang", "hold_ms": 30000}])
    quick = openai.OpenAI(base_url=URL + "/v1", api_key=KEY, max_retries=0, timeout=0.5)
    err = raises(lambda: list(quick.chat.completions.create(model="m", messages=user, stream=True)),
                 Exception)
    outcome = eventually(lambda: requests()[-1]["outcome"], "disconnected")
    check("openai: a hung stream; the client's hang-up recorded",
          bool(err) and outcome == "disconnected", outcome)

    script([])
    err = raises(lambda: oa.chat.completions.create(model="m", messages=user),
                 openai.InternalServerError)
    check("openai: past the script's end is a 500 naming it", "no step 0" in err, err)


def anthropic_checks(an: anthropic.Anthropic) -> None:
    user = [{"role": "user", "content": "hello"}]
    script([{"text": "Hi from Claude.", "usage": {"input_tokens": 9, "output_tokens": 3}}])
    r = an.messages.create(model="m", max_tokens=100, messages=user)
    check("anthropic: plain text", [b.text for b in r.content] == ["Hi from Claude."]
          and r.stop_reason == "end_turn" and r.usage.input_tokens == 9
          and r.usage.output_tokens == 3, r)

    script([{"text": "Using tools.", "tool_calls": CALLS}])
    r = an.messages.create(model="m", max_tokens=100, messages=user, tools=[ECHO_A])
    uses = [b for b in r.content if b.type == "tool_use"]
    check("anthropic: parallel tool_use blocks", r.stop_reason == "tool_use"
          and [(u.id, u.name, u.input) for u in uses]
          == [("toolu_0_0", "tools__echo", {"text": "hi"}), ("toolu_0_1", "other__add", {"a": 1, "b": 2})],
          r)

    script([{"text": "Streaming from Claude now."}])
    with an.messages.stream(model="m", max_tokens=100, messages=user) as s:
        text = "".join(s.text_stream)
        final = s.get_final_message()
    check("anthropic: streamed text", text == "Streaming from Claude now."
          and final.stop_reason == "end_turn", text)

    script([{"text": "Both at once.", "tool_calls": CALLS, "usage": {"output_tokens": 21}}])
    with an.messages.stream(model="m", max_tokens=100, messages=user, tools=[ECHO_A]) as s:
        events = [e.type for e in s]
        final = s.get_final_message()
    uses = [(b.name, b.input) for b in final.content if b.type == "tool_use"]
    check("anthropic: streamed tool_use with input_json_delta assembled by the SDK",
          uses == [("tools__echo", {"text": "hi"}), ("other__add", {"a": 1, "b": 2})]
          and final.content[0].text == "Both at once." and final.stop_reason == "tool_use"
          and final.usage.output_tokens == 21, final)
    check("anthropic: the event sequence", events[0] == "message_start" and events[-1] == "message_stop"
          and "input_json" in events and "content_block_stop" in events, events)

    script(["Done."])
    history = user + [{"role": "assistant", "content": [
        {"type": "tool_use", "id": "toolu_0_0", "name": "tools__echo", "input": {"text": "hi"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_0_0",
                                      "content": [{"type": "text", "text": "hi"}]}]}]
    r = an.messages.create(model="m", max_tokens=100, messages=history, tools=[ECHO_A],
                           system="be brief")
    seen = requests()[-1]
    check("anthropic: tool_result round trip recorded", r.content[0].text == "Done."
          and seen["body"]["messages"][-1]["content"][0]["tool_use_id"] == "toolu_0_0"
          and seen["body"]["system"] == "be brief" and KEY in (seen["headers"].get("x-api-key"), seen["headers"].get("authorization", "")[7:]), seen)

    script(["never"])
    err = raises(lambda: an.messages.create(model="m", max_tokens=100, messages=history[:2] + [
        {"role": "user", "content": "go on"}]), anthropic.BadRequestError)
    check("anthropic: a tool_use without tool_result is a 400", "without `tool_result`" in err, err)
    bad = anthropic.Anthropic(base_url=URL, api_key="wrong", max_retries=0)
    err = raises(lambda: bad.messages.create(model="m", max_tokens=10, messages=user),
                 anthropic.AuthenticationError)
    check("anthropic: a wrong key is a 401", "invalid x-api-key" in err, err)

    script([{"text": "one two three four five", "fault": "cut", "cut_after": 4}])

    def consume_cut():
        with an.messages.stream(model="m", max_tokens=100, messages=user) as s:
            return s.get_final_message()
    err = raises(consume_cut, Exception)
    check("anthropic: a cut stream fails the SDK", bool(err), err)

    script([{"fault": "http_error", "status": 529, "message": "Overloaded"}])
    err = raises(lambda: an.messages.create(model="m", max_tokens=10, messages=user),
                 anthropic.APIStatusError)
    check("anthropic: scripted 529 overloaded", "overloaded_error" in err, err)


def turn_checks(oa: openai.OpenAI) -> None:
    script([{"tool_calls": CALLS[:1]}, "after the tool"], select="turn")
    first = [{"role": "user", "content": "hi"}]
    a = oa.chat.completions.create(model="m", messages=first, tools=[ECHO])
    b = oa.chat.completions.create(model="m", messages=first, tools=[ECHO])
    then = first + [{"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_0_0", "type": "function", "function": {"name": "tools__echo", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_0_0", "content": "x"}]
    c = oa.chat.completions.create(model="m", messages=then, tools=[ECHO])
    check("select=turn: steps by position in the turn",
          bool(a.choices[0].message.tool_calls) and bool(b.choices[0].message.tool_calls)
          and c.choices[0].message.content == "after the tool", (a, b, c))
    status, body = hook("POST", "/__script", {"steps": [{"txt": "typo"}]})
    check("a script with an unknown field is refused", status == 400 and "txt" in body["error"], body)


def azure_checks(az: openai.AzureOpenAI) -> None:
    """The official SDK's Azure client: deployment route, api-version, `api-key` header."""
    user = [{"role": "user", "content": "hello"}]
    script([{"text": "Hello from Azure.", "tool_calls": CALLS[:1]}])
    r = az.chat.completions.create(model="gpt-4o", messages=user, tools=[ECHO])
    seen = requests()[-1]
    check("azure: plain reply with a tool call",
          r.choices[0].message.content == "Hello from Azure."
          and r.choices[0].message.tool_calls[0].function.name == "tools__echo", r)
    check("azure: deployment, api-version and api-key recorded",
          seen["api"] == "azure" and seen["deployment"] == "gpt-4o"
          and seen["api_version"] == "2024-10-21" and seen["headers"]["api-key"] == KEY, seen)
    script([{"text": "Streamed from Azure."}])
    text = "".join(c.choices[0].delta.content or "" for c in
                   az.chat.completions.create(model="gpt-4o", messages=user, stream=True)
                   if c.choices)
    check("azure: streamed text", text == "Streamed from Azure.", text)
    bad = openai.AzureOpenAI(azure_endpoint=URL, api_key="wrong", api_version="2024-10-21",
                             max_retries=0)
    err = raises(lambda: bad.chat.completions.create(model="gpt-4o", messages=user),
                 openai.AuthenticationError)
    check("azure: a wrong key is a 401", "Access denied" in err, err)


def main() -> None:
    global URL
    proc = subprocess.Popen([sys.executable, os.path.join(HERE, "server.py"), "--port", "0",
                             "--quiet", "--exit-on-stdin-eof"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        URL = proc.stdout.readline().strip().removeprefix("READY ")
        oa = openai.OpenAI(base_url=URL + "/v1", api_key=KEY, max_retries=0)
        an = anthropic.Anthropic(base_url=URL, api_key=KEY, max_retries=0)
        az = openai.AzureOpenAI(azure_endpoint=URL, api_key=KEY, api_version="2024-10-21",
                                max_retries=0)
        for group in (lambda: openai_checks(oa), lambda: anthropic_checks(an),
                      lambda: turn_checks(oa), lambda: azure_checks(az)):
            try:
                group()
            except Exception as e:  # a crash in one group still lets the others report
                check("check group ran to the end", False, f"{type(e).__name__}: {e}")
    finally:
        proc.kill()
    print(f"{'FAIL' if failures else 'PASS'} llm fixture selftest: {failures} failure(s)")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
