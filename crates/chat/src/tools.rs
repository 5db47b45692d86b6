//! MCP shapes to what the LLM APIs accept: tool definitions to function definitions, call
//! results (text, structured, images, resources) to the text of a tool result.

use crate::wire::ToolDef;
use serde_json::{Value, json};

/// One MCP tool (`tools/list` item) as a function definition. The gateway's names already
/// fit every function-calling API (`[A-Za-z0-9_-]`, at most 64).
pub fn definition(tool: &Value) -> Option<ToolDef> {
    let name = tool["name"].as_str()?.to_string();
    let mut description = tool["description"]
        .as_str()
        .or_else(|| tool["title"].as_str())
        .unwrap_or("")
        .to_string();
    if description.chars().count() > 1024 {
        description = description.chars().take(1024).collect();
    }
    let mut parameters = match &tool["inputSchema"] {
        v @ Value::Object(_) => v.clone(),
        _ => json!({ "type": "object", "properties": {} }),
    };
    // Both APIs want an object schema with properties.
    if parameters.get("type").is_none() {
        parameters["type"] = json!("object");
    }
    if parameters["type"] == "object" && parameters.get("properties").is_none() {
        parameters["properties"] = json!({});
    }
    Some(ToolDef {
        name,
        description,
        parameters,
    })
}

/// The text a model gets for a `CallToolResult`: text blocks as they are, a structured
/// result as JSON (when no text block carries it), images and audio named with their type
/// and size (the chat APIs' tool results are text here), resources by their text or URI.
pub fn result_text(r: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    for c in r["content"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        match c["type"].as_str() {
            Some("text") => parts.push(c["text"].as_str().unwrap_or("").to_string()),
            Some(kind @ ("image" | "audio")) => parts.push(format!(
                "[{kind} {}, {} bytes base64]",
                c["mimeType"].as_str().unwrap_or("?"),
                c["data"].as_str().map_or(0, str::len)
            )),
            Some("resource") => {
                let res = &c["resource"];
                match res["text"].as_str() {
                    Some(t) => parts.push(t.to_string()),
                    None => parts.push(format!(
                        "[resource {} ({})]",
                        res["uri"].as_str().unwrap_or("?"),
                        res["mimeType"].as_str().unwrap_or("binary")
                    )),
                }
            }
            Some("resource_link") => parts.push(format!(
                "[resource link {}]",
                c["uri"].as_str().unwrap_or("?")
            )),
            _ => {}
        }
    }
    if let Some(s) = r.get("structuredContent").filter(|s| !s.is_null()) {
        let js = s.to_string();
        if !parts.iter().any(|p| p.trim() == js) {
            parts.push(js);
        }
    }
    let text = parts.join("\n");
    // Bounded: a huge result would blow the model's context and the transcript.
    const MAX: usize = 64 * 1024;
    if text.len() > MAX {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}\n[… {} more bytes cut]", &text[..end], text.len() - end)
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn definitions_are_object_schemas() {
        let d = definition(&json!({ "name": "tools__echo", "description": "Echo",
            "inputSchema": { "type": "object", "properties": { "text": { "type": "string" } } } }))
        .unwrap();
        assert_eq!(d.parameters["properties"]["text"]["type"], "string");
        let bare = definition(&json!({ "name": "x__y", "inputSchema": {} })).unwrap();
        assert_eq!(
            bare.parameters,
            json!({ "type": "object", "properties": {} })
        );
        assert!(definition(&json!({ "description": "no name" })).is_none());
    }

    #[test]
    fn every_kind_of_content_becomes_text() {
        let r = json!({ "content": [
            { "type": "text", "text": "hello" },
            { "type": "image", "mimeType": "image/png", "data": "aGVsbG8=" },
            { "type": "resource", "resource": { "uri": "file:///a", "text": "body" } },
            { "type": "resource", "resource": { "uri": "file:///b", "blob": "AA==" } }
        ], "structuredContent": { "n": 1 } });
        assert_eq!(
            result_text(&r),
            "hello\n[image image/png, 8 bytes base64]\nbody\n[resource file:///b (binary)]\n{\"n\":1}"
        );
        let dup = json!({ "content": [{ "type": "text", "text": "{\"n\":1}" }], "structuredContent": { "n": 1 } });
        assert_eq!(result_text(&dup), "{\"n\":1}");
    }
}
