//! Anthropic Messages (`POST {base}/messages`): tools with `input_schema`, calls as
//! `tool_use` content blocks, results as `tool_result` blocks in the next user message.
//! Streamed as named events: `message_start`, `content_block_start` / `_delta` / `_stop`
//! (`text_delta`, `input_json_delta`), `message_delta` (stop reason, output usage),
//! `message_stop`; `ping` and `error` may come anywhere.

use super::{Message, Reply, Request, ToolCall, WireError, arguments, sse};
use serde_json::{Value, json};
use toolbelt_model::chat::Usage;

pub(crate) fn body(req: &Request<'_>) -> Value {
    // Roles must alternate: consecutive tool results (and a user text after them) share one
    // user message.
    let mut messages: Vec<Value> = Vec::new();
    let push_user = |messages: &mut Vec<Value>, block: Value| {
        if let Some(last) = messages.last_mut()
            && last["role"] == "user"
            && let Some(c) = last["content"].as_array_mut()
        {
            c.push(block);
            return;
        }
        messages.push(json!({ "role": "user", "content": [block] }));
    };
    for m in req.messages {
        match m {
            Message::User { text } => {
                push_user(&mut messages, json!({ "type": "text", "text": text }));
            }
            Message::Tool {
                id,
                text,
                is_error,
                images,
                ..
            } => {
                // A tool_result's content takes image blocks beside the text.
                let mut content = vec![json!({ "type": "text", "text": text })];
                content.extend(images.iter().map(|i| {
                    json!({ "type": "image", "source": {
                        "type": "base64", "media_type": i.mime_type, "data": i.data } })
                }));
                push_user(
                    &mut messages,
                    json!({ "type": "tool_result", "tool_use_id": id, "is_error": is_error,
                            "content": content }),
                )
            }
            Message::Assistant { text, tool_calls } => {
                let mut content = Vec::new();
                if !text.is_empty() {
                    content.push(json!({ "type": "text", "text": text }));
                }
                for c in tool_calls {
                    content.push(json!({ "type": "tool_use", "id": c.id, "name": c.name,
                                         "input": c.arguments }));
                }
                messages.push(json!({ "role": "assistant", "content": content }));
            }
        }
    }
    let mut b = json!({
        "model": req.model,
        "messages": messages,
        "max_tokens": req.max_tokens,
        "stream": true,
    });
    if let Some(s) = req.system {
        b["system"] = json!(s);
    }
    if let Some(t) = req.temperature {
        // Anthropic's range is 0..=1.
        b["temperature"] = json!(t.min(1.0));
    }
    if !req.tools.is_empty() {
        b["tools"] = req
            .tools
            .iter()
            .map(|t| json!({ "name": t.name, "description": t.description, "input_schema": t.parameters }))
            .collect();
    }
    b
}

fn usage(v: &Value) -> Usage {
    Usage {
        input_tokens: v["input_tokens"].as_u64().unwrap_or(0)
            + v["cache_read_input_tokens"].as_u64().unwrap_or(0)
            + v["cache_creation_input_tokens"].as_u64().unwrap_or(0),
        output_tokens: v["output_tokens"].as_u64().unwrap_or(0),
    }
}

fn error_of(v: &Value) -> WireError {
    WireError::Status {
        status: 200,
        message: v["error"]["message"]
            .as_str()
            .unwrap_or("the endpoint reported an error")
            .to_string(),
    }
}

/// A whole (non-streamed) reply.
pub(crate) fn parse_plain(v: &Value) -> Result<Reply, WireError> {
    if v["type"] == "error" {
        return Err(error_of(v));
    }
    let content = v["content"]
        .as_array()
        .ok_or_else(|| WireError::Malformed("no content in the reply".into()))?;
    let mut r = Reply {
        usage: usage(&v["usage"]),
        ..Reply::default()
    };
    for (i, b) in content.iter().enumerate() {
        match b["type"].as_str() {
            Some("text") => r.text.push_str(b["text"].as_str().unwrap_or("")),
            Some("tool_use") => {
                let name = b["name"]
                    .as_str()
                    .filter(|n| !n.is_empty())
                    .ok_or_else(|| {
                        WireError::Malformed(format!("tool_use block {i} has no name"))
                    })?;
                let input = match &b["input"] {
                    v @ Value::Object(_) => v.clone(),
                    Value::Null => json!({}),
                    other => arguments(name, &other.to_string())?,
                };
                r.tool_calls.push(ToolCall {
                    id: b["id"]
                        .as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| format!("toolu_{i}")),
                    name: name.to_string(),
                    arguments: input,
                });
            }
            _ => {}
        }
    }
    Ok(r)
}

#[derive(Debug)]
enum Block {
    Text,
    Tool {
        id: String,
        name: String,
        json: String,
        input: Value,
    },
    Other,
}

/// A streamed reply, event by event.
#[derive(Debug, Default)]
pub(crate) struct Stream {
    text: String,
    blocks: Vec<(usize, Block)>,
    usage: Usage,
    stopped: bool,
}

impl Stream {
    fn block(&mut self, index: usize) -> Result<&mut Block, WireError> {
        self.blocks
            .iter_mut()
            .find(|(i, _)| *i == index)
            .map(|(_, b)| b)
            .ok_or_else(|| {
                WireError::Malformed(format!("a delta for block {index}, which never started"))
            })
    }
}

impl super::Stream for Stream {
    fn event(&mut self, e: &sse::Event, on_text: &mut dyn FnMut(&str)) -> Result<(), WireError> {
        let v: Value = serde_json::from_str(e.data.trim()).map_err(|err| {
            WireError::Malformed(format!(
                "a stream event is not JSON ({err}): {}",
                super::clip(&e.data)
            ))
        })?;
        let kind = v["type"].as_str().unwrap_or(e.name.as_str()).to_string();
        let index = v["index"].as_u64().unwrap_or(0) as usize;
        match kind.as_str() {
            "message_start" => self.usage = usage(&v["message"]["usage"]),
            "content_block_start" => {
                let b = &v["content_block"];
                let block = match b["type"].as_str() {
                    Some("text") => {
                        if let Some(t) = b["text"].as_str().filter(|t| !t.is_empty()) {
                            self.text.push_str(t);
                            on_text(t);
                        }
                        Block::Text
                    }
                    Some("tool_use") => Block::Tool {
                        id: b["id"].as_str().unwrap_or("").to_string(),
                        name: b["name"].as_str().unwrap_or("").to_string(),
                        json: String::new(),
                        input: b["input"].clone(),
                    },
                    _ => Block::Other,
                };
                if self.blocks.len() > 512 {
                    return Err(WireError::Malformed("more than 512 content blocks".into()));
                }
                self.blocks.push((index, block));
            }
            "content_block_delta" => {
                let d = &v["delta"];
                match d["type"].as_str() {
                    Some("text_delta") => {
                        let t = d["text"].as_str().unwrap_or("");
                        if !matches!(self.block(index)?, Block::Text) {
                            return Err(WireError::Malformed(format!(
                                "text for block {index}, which is not text"
                            )));
                        }
                        self.text.push_str(t);
                        on_text(t);
                    }
                    Some("input_json_delta") => match self.block(index)? {
                        Block::Tool { json, .. } => {
                            json.push_str(d["partial_json"].as_str().unwrap_or(""))
                        }
                        _ => {
                            return Err(WireError::Malformed(format!(
                                "tool input for block {index}, which is not a tool_use"
                            )));
                        }
                    },
                    _ => {}
                }
            }
            "message_delta" => {
                if let Some(n) = v["usage"]["output_tokens"].as_u64() {
                    self.usage.output_tokens = n;
                }
                if let Some(n) = v["usage"]["input_tokens"].as_u64() {
                    self.usage.input_tokens = n;
                }
            }
            "message_stop" => self.stopped = true,
            "error" => return Err(error_of(&v)),
            _ => {}
        }
        Ok(())
    }

    fn finish(self: Box<Self>) -> Result<Reply, WireError> {
        if !self.stopped {
            return Err(WireError::Cut(
                "no message_stop before the body ended".into(),
            ));
        }
        let mut tool_calls = Vec::new();
        for (i, b) in self.blocks {
            if let Block::Tool {
                id,
                name,
                json,
                input,
            } = b
            {
                if name.is_empty() {
                    return Err(WireError::Malformed(format!(
                        "tool_use block {i} has no name"
                    )));
                }
                let arguments = if json.trim().is_empty() {
                    match input {
                        v @ Value::Object(_) => v,
                        _ => json!({}),
                    }
                } else {
                    arguments(&name, &json)?
                };
                tool_calls.push(ToolCall {
                    id: if id.is_empty() {
                        format!("toolu_{i}")
                    } else {
                        id
                    },
                    name,
                    arguments,
                });
            }
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

    const STREAMED: &str = concat!(
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"content\":[],\"usage\":{\"input_tokens\":42,\"output_tokens\":1}}}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n",
        "event: ping\ndata: {\"type\":\"ping\"}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Checking \"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"both.\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_a\",\"name\":\"tools__echo\",\"input\":{}}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"text\\\": \"}}\n\n",
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"\\\"hi\\\"}\"}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n",
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,\"content_block\":{\"type\":\"tool_use\",\"id\":\"toolu_b\",\"name\":\"notes__list\",\"input\":{}}}\n\n",
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n",
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"tool_use\"},\"usage\":{\"output_tokens\":17}}\n\n",
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
    );

    #[test]
    fn a_streamed_reply_with_text_and_two_tool_uses() {
        let (r, seen) = stream(STREAMED);
        let r = r.unwrap();
        assert_eq!(seen, "Checking both.");
        assert_eq!(r.text, "Checking both.");
        assert_eq!(r.tool_calls.len(), 2);
        assert_eq!(r.tool_calls[0].id, "toolu_a");
        assert_eq!(r.tool_calls[0].arguments, json!({ "text": "hi" }));
        assert_eq!(r.tool_calls[1].name, "notes__list");
        assert_eq!(r.tool_calls[1].arguments, json!({}));
        assert_eq!(
            r.usage,
            Usage {
                input_tokens: 42,
                output_tokens: 17
            }
        );
    }

    #[test]
    fn a_stream_cut_before_message_stop_is_an_error() {
        let cut = STREAMED.find("event: message_delta").unwrap();
        let (r, _) = stream(&STREAMED[..cut]);
        assert!(matches!(r, Err(WireError::Cut(_))), "{r:?}");
        let (r, _) = stream(&STREAMED[..STREAMED.len() / 2]);
        assert!(
            matches!(r, Err(WireError::Cut(_)) | Err(WireError::Malformed(_))),
            "{r:?}"
        );
    }

    #[test]
    fn bad_partial_json_is_malformed_naming_the_tool() {
        let wire = STREAMED.replace("\\\"hi\\\"}", "hi}");
        match stream(&wire).0 {
            Err(WireError::Malformed(m)) => assert!(m.contains("tools__echo"), "{m}"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn an_error_event_is_the_endpoints_error() {
        let (r, _) = stream(
            "event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n",
        );
        assert_eq!(
            r,
            Err(WireError::Status {
                status: 200,
                message: "Overloaded".into()
            })
        );
    }

    #[test]
    fn a_plain_reply() {
        let v = json!({ "id": "msg_1", "type": "message", "role": "assistant",
            "content": [ { "type": "text", "text": "On it." },
                         { "type": "tool_use", "id": "toolu_1", "name": "tools__echo", "input": { "text": "x" } } ],
            "stop_reason": "tool_use", "usage": { "input_tokens": 10, "output_tokens": 5 } });
        let r = parse_plain(&v).unwrap();
        assert_eq!(r.text, "On it.");
        assert_eq!(r.tool_calls[0].arguments, json!({ "text": "x" }));
        assert_eq!(r.usage.total(), 15);
    }

    #[test]
    fn tool_results_share_one_user_message_and_roles_alternate() {
        let msgs = vec![
            Message::User { text: "hi".into() },
            Message::Assistant {
                text: "ok".into(),
                tool_calls: vec![
                    super::super::StoredCall {
                        id: "a".into(),
                        name: "x__y".into(),
                        arguments: json!({}),
                    },
                    super::super::StoredCall {
                        id: "b".into(),
                        name: "x__z".into(),
                        arguments: json!({}),
                    },
                ],
            },
            Message::Tool {
                id: "a".into(),
                name: "x__y".into(),
                text: "1".into(),
                is_error: false,
                images: vec![super::super::Image {
                    mime_type: "image/png".into(),
                    data: "iVBO".into(),
                }],
            },
            Message::Tool {
                id: "b".into(),
                name: "x__z".into(),
                text: "no".into(),
                is_error: true,
                images: vec![],
            },
        ];
        let b = body(&Request {
            model: "claude",
            system: Some("s"),
            temperature: None,
            messages: &msgs,
            tools: &[],
            max_tokens: 64,
        });
        let m = b["messages"].as_array().unwrap();
        assert_eq!(m.len(), 3);
        assert_eq!(m[1]["content"][1]["type"], "tool_use");
        assert_eq!(m[2]["role"], "user");
        assert_eq!(m[2]["content"].as_array().unwrap().len(), 2);
        assert_eq!(m[2]["content"][1]["is_error"], true);
        assert_eq!(
            m[2]["content"][0]["content"][1],
            json!({ "type": "image", "source": { "type": "base64",
                "media_type": "image/png", "data": "iVBO" } })
        );
        assert_eq!(m[2]["content"][1]["content"].as_array().unwrap().len(), 1);
        assert_eq!(b["system"], "s");
    }
}
