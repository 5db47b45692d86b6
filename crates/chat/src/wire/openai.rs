//! OpenAI Chat Completions (`POST {base}/chat/completions`): tools as `functions`, calls in
//! `tool_calls` (several per reply: parallel calls), results as `role: tool` messages.
//! Streamed as `data: {chunk}` events ending with `data: [DONE]`; a call's id and name
//! arrive in its first chunk, its arguments as string fragments keyed by `index`.

use super::{Message, Reply, Request, ToolCall, WireError, arguments, sse};
use serde_json::{Value, json};
use toolbelt_model::chat::Usage;

pub(crate) fn body(req: &Request<'_>) -> Value {
    let mut messages = Vec::new();
    if let Some(s) = req.system {
        messages.push(json!({ "role": "system", "content": s }));
    }
    // A `tool` message is text only in Chat Completions, so the images of a run of tool
    // results follow them in one `user` message of `image_url` data-URL parts (after the
    // last tool message: a tool call must be answered before any other message).
    let mut pending: Vec<Value> = Vec::new();
    for m in req.messages {
        if !matches!(m, Message::Tool { .. }) {
            flush_images(&mut messages, &mut pending);
        }
        messages.push(match m {
            Message::User { text } => json!({ "role": "user", "content": text }),
            Message::Assistant { text, tool_calls } => {
                let mut a = json!({ "role": "assistant", "content": text });
                if !tool_calls.is_empty() {
                    a["tool_calls"] = tool_calls
                        .iter()
                        .map(|c| {
                            json!({ "id": c.id, "type": "function", "function": {
                                "name": c.name, "arguments": c.arguments.to_string() } })
                        })
                        .collect();
                    if text.is_empty() {
                        a["content"] = Value::Null;
                    }
                }
                a
            }
            Message::Tool {
                id,
                name,
                text,
                images,
                ..
            } => {
                let mut text = text.clone();
                if !images.is_empty() {
                    text.push_str(&format!(
                        "\n[{} image(s) of this result follow in the next user message]",
                        images.len()
                    ));
                    pending.push(json!({ "type": "text",
                        "text": format!("The image(s) returned by tool call {id} ({name}):") }));
                    pending.extend(images.iter().map(|i| {
                        json!({ "type": "image_url", "image_url": {
                            "url": format!("data:{};base64,{}", i.mime_type, i.data) } })
                    }));
                }
                json!({ "role": "tool", "tool_call_id": id, "content": text })
            }
        });
    }
    flush_images(&mut messages, &mut pending);
    let mut b = json!({
        "model": req.model,
        "messages": messages,
        "stream": true,
        "stream_options": { "include_usage": true },
        "max_tokens": req.max_tokens,
    });
    if !req.tools.is_empty() {
        b["tools"] = req
            .tools
            .iter()
            .map(|t| {
                json!({ "type": "function", "function": {
                    "name": t.name, "description": t.description, "parameters": t.parameters } })
            })
            .collect();
    }
    if let Some(t) = req.temperature {
        b["temperature"] = json!(t);
    }
    b
}

fn flush_images(messages: &mut Vec<Value>, pending: &mut Vec<Value>) {
    if !pending.is_empty() {
        messages.push(json!({ "role": "user", "content": std::mem::take(pending) }));
    }
}

fn usage(v: &Value) -> Usage {
    Usage {
        input_tokens: v["prompt_tokens"].as_u64().unwrap_or(0),
        output_tokens: v["completion_tokens"].as_u64().unwrap_or(0),
    }
}

/// A whole (non-streamed) reply.
pub(crate) fn parse_plain(v: &Value) -> Result<Reply, WireError> {
    if v.get("error").is_some_and(|e| !e.is_null()) {
        return Err(WireError::Status {
            status: 200,
            message: super::error_message(&v.to_string()),
        });
    }
    let msg = v["choices"]
        .get(0)
        .map(|c| &c["message"])
        .filter(|m| m.is_object())
        .ok_or_else(|| WireError::Malformed("no choices[0].message in the reply".into()))?;
    let text = msg["content"].as_str().unwrap_or("").to_string();
    let mut tool_calls = Vec::new();
    for (i, c) in msg["tool_calls"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
        .iter()
        .enumerate()
    {
        let name = c["function"]["name"]
            .as_str()
            .filter(|n| !n.is_empty())
            .ok_or_else(|| WireError::Malformed(format!("tool call {i} has no name")))?;
        let raw = match &c["function"]["arguments"] {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        tool_calls.push(ToolCall {
            id: c["id"]
                .as_str()
                .map(str::to_string)
                .unwrap_or_else(|| format!("call_{i}")),
            name: name.to_string(),
            arguments: arguments(name, &raw)?,
        });
    }
    Ok(Reply {
        text,
        tool_calls,
        usage: usage(&v["usage"]),
    })
}

#[derive(Debug, Default)]
struct Partial {
    id: String,
    name: String,
    args: String,
}

/// A streamed reply, chunk by chunk.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    text: String,
    calls: Vec<Partial>,
    usage: Usage,
    finished: bool,
    done: bool,
}

impl super::Stream for Stream {
    fn event(&mut self, e: &sse::Event, on_text: &mut dyn FnMut(&str)) -> Result<(), WireError> {
        let data = e.data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        let v: Value = serde_json::from_str(data).map_err(|err| {
            WireError::Malformed(format!(
                "a stream chunk is not JSON ({err}): {}",
                super::clip(data)
            ))
        })?;
        if v.get("error").is_some_and(|e| !e.is_null()) {
            return Err(WireError::Status {
                status: 200,
                message: super::error_message(data),
            });
        }
        if v["usage"].is_object() {
            self.usage = usage(&v["usage"]);
        }
        let Some(choice) = v["choices"].get(0) else {
            return Ok(());
        };
        let d = &choice["delta"];
        if let Some(t) = d["content"].as_str()
            && !t.is_empty()
        {
            self.text.push_str(t);
            on_text(t);
        }
        for tc in d["tool_calls"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
            let index = tc["index"].as_u64().unwrap_or(self.calls.len() as u64) as usize;
            if index > 512 {
                return Err(WireError::Malformed(format!("tool call index {index}")));
            }
            while self.calls.len() <= index {
                self.calls.push(Partial::default());
            }
            let p = &mut self.calls[index];
            if let Some(id) = tc["id"].as_str() {
                p.id = id.to_string();
            }
            if let Some(n) = tc["function"]["name"].as_str() {
                p.name.push_str(n);
            }
            if let Some(a) = tc["function"]["arguments"].as_str() {
                p.args.push_str(a);
            }
        }
        if choice["finish_reason"].is_string() {
            self.finished = true;
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<Reply, WireError> {
        if !self.finished && !self.done {
            return Err(WireError::Cut(
                "no finish_reason and no [DONE] before the body ended".into(),
            ));
        }
        let mut tool_calls = Vec::new();
        for (i, p) in self.calls.into_iter().enumerate() {
            if p.name.is_empty() {
                return Err(WireError::Malformed(format!("tool call {i} has no name")));
            }
            tool_calls.push(ToolCall {
                arguments: arguments(&p.name, &p.args)?,
                id: if p.id.is_empty() {
                    format!("call_{i}")
                } else {
                    p.id
                },
                name: p.name,
            });
        }
        Ok(Reply {
            text: self.text,
            tool_calls,
            usage: self.usage,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Stream as _;
    use super::*;

    fn stream(wire: &str) -> (Result<Reply, WireError>, String) {
        let mut d = sse::Decoder::default();
        let mut s = Box::new(Stream::default());
        let mut seen = String::new();
        let mut on = |t: &str| seen.push_str(t);
        for e in d.feed(wire.as_bytes()).into_iter().chain(d.finish()) {
            if let Err(err) = s.event(&e, &mut on) {
                return (Err(err), seen);
            }
        }
        (s.finish(), seen)
    }

    #[test]
    fn a_plain_reply_with_two_parallel_calls() {
        let v = json!({
            "id": "chatcmpl-1", "object": "chat.completion",
            "choices": [{ "index": 0, "finish_reason": "tool_calls", "message": {
                "role": "assistant", "content": null,
                "tool_calls": [
                    { "id": "call_a", "type": "function",
                      "function": { "name": "tools__echo", "arguments": "{\"text\":\"hi\"}" } },
                    { "id": "call_b", "type": "function",
                      "function": { "name": "notes__add", "arguments": "{}" } } ] } }],
            "usage": { "prompt_tokens": 31, "completion_tokens": 9, "total_tokens": 40 }
        });
        let r = parse_plain(&v).unwrap();
        assert_eq!(r.text, "");
        assert_eq!(r.tool_calls.len(), 2);
        assert_eq!(r.tool_calls[0].name, "tools__echo");
        assert_eq!(r.tool_calls[0].arguments, json!({ "text": "hi" }));
        assert_eq!(r.tool_calls[1].id, "call_b");
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 31,
                output_tokens: 9
            }
        );
    }

    #[test]
    fn a_plain_text_reply() {
        let v = json!({ "choices": [{ "message": { "role": "assistant", "content": "Hello." },
            "finish_reason": "stop" }], "usage": { "prompt_tokens": 3, "completion_tokens": 2 } });
        let r = parse_plain(&v).unwrap();
        assert_eq!(r.text, "Hello.");
        assert!(r.tool_calls.is_empty());
    }

    const STREAMED: &str = concat!(
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Let me \"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"check.\"}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"tools__echo\",\"arguments\":\"\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"notes__add\",\"arguments\":\"{\\\"n\\\":\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"text\\\":\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\\"hi\\\"}\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"2}\"}}]}}]}\n\n",
        "data: {\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":50,\"completion_tokens\":20}}\n\n",
        "data: [DONE]\n\n",
    );

    #[test]
    fn a_streamed_reply_with_interleaved_parallel_calls() {
        let (r, seen) = stream(STREAMED);
        let r = r.unwrap();
        assert_eq!(seen, "Let me check.");
        assert_eq!(r.text, "Let me check.");
        assert_eq!(r.tool_calls.len(), 2);
        assert_eq!(r.tool_calls[0].arguments, json!({ "text": "hi" }));
        assert_eq!(r.tool_calls[1].name, "notes__add");
        assert_eq!(r.tool_calls[1].arguments, json!({ "n": 2 }));
        assert_eq!(r.usage.input_tokens, 50);
        assert_eq!(r.usage.output_tokens, 20);
    }

    #[test]
    fn a_stream_cut_midway_is_an_error_not_a_short_reply() {
        let cut = STREAMED.find("finish_reason").unwrap() - 60;
        let (r, _) = stream(&STREAMED[..cut]);
        assert!(matches!(r, Err(WireError::Cut(_))), "{r:?}");
    }

    #[test]
    fn bad_json_in_arguments_names_the_tool() {
        let wire = concat!(
            "data: {\"choices\":[{\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"c\",\"function\":{\"name\":\"tools__echo\",\"arguments\":\"{\\\"text\\\": hi\"}}]}}]}\n\n",
            "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\n",
            "data: [DONE]\n\n",
        );
        let (r, _) = stream(wire);
        match r {
            Err(WireError::Malformed(m)) => assert!(m.contains("tools__echo"), "{m}"),
            other => panic!("{other:?}"),
        }
        let v = json!({ "choices": [{ "message": { "tool_calls": [
            { "id": "x", "function": { "name": "a__b", "arguments": "[1]" } }] } }] });
        assert!(matches!(parse_plain(&v), Err(WireError::Malformed(_))));
    }

    #[test]
    fn a_chunk_that_is_not_json_is_malformed() {
        let (r, _) = stream("data: {\"choices\": [\n\n");
        assert!(matches!(r, Err(WireError::Malformed(_))), "{r:?}");
    }

    #[test]
    fn an_error_chunk_is_the_endpoints_error() {
        let (r, _) = stream("data: {\"error\":{\"message\":\"quota exceeded\"}}\n\n");
        assert_eq!(
            r,
            Err(WireError::Status {
                status: 200,
                message: "quota exceeded".into()
            })
        );
    }

    #[test]
    fn the_request_carries_tools_results_and_settings() {
        let msgs = vec![
            Message::User { text: "hi".into() },
            Message::Assistant {
                text: String::new(),
                tool_calls: vec![super::super::StoredCall {
                    id: "c1".into(),
                    name: "t__x".into(),
                    arguments: json!({ "a": 1 }),
                }],
            },
            Message::Tool {
                id: "c1".into(),
                name: "t__x".into(),
                text: "ok".into(),
                is_error: false,
                images: vec![],
            },
        ];
        let tools = vec![super::super::ToolDef {
            name: "t__x".into(),
            description: "d".into(),
            parameters: json!({ "type": "object" }),
        }];
        let b = body(&Request {
            model: "m",
            system: Some("be brief"),
            temperature: Some(0.2),
            messages: &msgs,
            tools: &tools,
            max_tokens: 100,
        });
        assert_eq!(
            b["messages"][0],
            json!({ "role": "system", "content": "be brief" })
        );
        assert_eq!(b["messages"][2]["content"], Value::Null);
        assert_eq!(
            b["messages"][2]["tool_calls"][0]["function"]["arguments"],
            "{\"a\":1}"
        );
        assert_eq!(b["messages"][3]["tool_call_id"], "c1");
        assert_eq!(b["tools"][0]["function"]["name"], "t__x");
        assert_eq!(b["temperature"], 0.2);
        assert_eq!(b["stream"], true);
    }

    #[test]
    fn images_of_tool_results_follow_the_tool_messages_in_one_user_message() {
        let call = |id: &str| super::super::StoredCall {
            id: id.into(),
            name: "t__shot".into(),
            arguments: json!({}),
        };
        let png = super::super::Image {
            mime_type: "image/png".into(),
            data: "iVBO".into(),
        };
        let msgs = vec![
            Message::User {
                text: "look".into(),
            },
            Message::Assistant {
                text: String::new(),
                tool_calls: vec![call("a"), call("b")],
            },
            Message::Tool {
                id: "a".into(),
                name: "t__shot".into(),
                text: "a picture".into(),
                is_error: false,
                images: vec![png.clone()],
            },
            Message::Tool {
                id: "b".into(),
                name: "t__shot".into(),
                text: "none".into(),
                is_error: false,
                images: vec![],
            },
            Message::Assistant {
                text: "I see it.".into(),
                tool_calls: vec![],
            },
        ];
        let b = body(&Request {
            model: "m",
            system: None,
            temperature: None,
            messages: &msgs,
            tools: &[],
            max_tokens: 10,
        });
        let m = b["messages"].as_array().unwrap();
        let roles: Vec<&str> = m.iter().map(|m| m["role"].as_str().unwrap()).collect();
        assert_eq!(
            roles,
            ["user", "assistant", "tool", "tool", "user", "assistant"]
        );
        assert!(
            m[2]["content"]
                .as_str()
                .unwrap()
                .starts_with("a picture\n[1 image(s)")
        );
        assert_eq!(m[3]["content"], "none");
        assert_eq!(m[4]["content"][0]["type"], "text");
        assert_eq!(
            m[4]["content"][1],
            json!({ "type": "image_url", "image_url": { "url": "data:image/png;base64,iVBO" } })
        );
    }
}
