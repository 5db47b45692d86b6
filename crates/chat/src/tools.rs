//! MCP shapes to what the LLM APIs accept: tool definitions to function definitions, call
//! results (text, structured, images, resources) to a tool result's text plus the images
//! the APIs take natively (Anthropic inside the `tool_result`, OpenAI in a following user
//! message: see `wire::openai`).

use crate::wire::{Image, ToolDef};
use serde_json::{Value, json};

/// The largest image (decoded) forwarded to the model: the APIs refuse bigger ones
/// (Anthropic 5 MB) and every later request of the conversation carries it again.
pub const MAX_IMAGE_BYTES: usize = 1 << 20;
/// The most images of one tool result forwarded.
pub const MAX_IMAGES: usize = 4;
/// The image types both APIs accept.
const IMAGE_TYPES: [&str; 4] = ["image/png", "image/jpeg", "image/gif", "image/webp"];

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

/// A `CallToolResult` as the model gets it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ResultParts {
    /// Text blocks as they are, a structured result as JSON (when no text block carries
    /// it), text resources with their URI, and a line naming each image (forwarded or
    /// why not), audio and binary resource.
    pub text: String,
    /// The images forwarded natively, in order.
    pub images: Vec<Image>,
}

pub fn result(r: &Value) -> ResultParts {
    let mut parts: Vec<String> = Vec::new();
    let mut images: Vec<Image> = Vec::new();
    for c in r["content"].as_array().map(Vec::as_slice).unwrap_or(&[]) {
        match c["type"].as_str() {
            Some("text") => parts.push(c["text"].as_str().unwrap_or("").to_string()),
            Some("image") => {
                let (mime, data) = (
                    c["mimeType"].as_str().unwrap_or("?"),
                    c["data"].as_str().unwrap_or(""),
                );
                parts.push(image(mime, data, None, &mut images));
            }
            Some("audio") => parts.push(format!(
                "[audio {}, {} bytes: not forwarded, the chat APIs take no audio tool results]",
                c["mimeType"].as_str().unwrap_or("?"),
                decoded_len(c["data"].as_str().unwrap_or("")).unwrap_or(0)
            )),
            Some("resource") => {
                let res = &c["resource"];
                let uri = res["uri"].as_str().unwrap_or("?");
                let mime = res["mimeType"].as_str();
                match (res["text"].as_str(), res["blob"].as_str()) {
                    (Some(t), _) => parts.push(format!("[resource {uri}]\n{t}")),
                    (None, Some(blob)) if mime.is_some_and(|m| m.starts_with("image/")) => {
                        parts.push(image(mime.unwrap_or("?"), blob, Some(uri), &mut images));
                    }
                    _ => parts.push(format!(
                        "[resource {uri} ({}): binary, not forwarded]",
                        mime.unwrap_or("binary")
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
    let text = if text.len() > MAX {
        let mut end = MAX;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        format!("{}\n[… {} more bytes cut]", &text[..end], text.len() - end)
    } else {
        text
    };
    ResultParts { text, images }
}

/// Takes one image if the APIs accept it (type, size, count, valid base64); the line the
/// text carries for it either way, so the model (and the transcript) knows what it got.
fn image(mime: &str, data: &str, uri: Option<&str>, images: &mut Vec<Image>) -> String {
    let from = uri.map(|u| format!(" from {u}")).unwrap_or_default();
    let Some(len) = decoded_len(data) else {
        return format!("[image {mime}{from}: not valid base64, not forwarded]");
    };
    let why_not = if !IMAGE_TYPES.contains(&mime) {
        Some("a type the chat APIs do not take (png, jpeg, gif, webp)".to_string())
    } else if len > MAX_IMAGE_BYTES {
        Some(format!(
            "over the {} KiB limit for images forwarded to the model",
            MAX_IMAGE_BYTES / 1024
        ))
    } else if images.len() >= MAX_IMAGES {
        Some(format!("more than {MAX_IMAGES} images in one tool result"))
    } else {
        None
    };
    match why_not {
        Some(why) => format!("[image {mime}{from}, {len} bytes: not forwarded, {why}]"),
        None => {
            images.push(Image {
                mime_type: mime.to_string(),
                data: data.to_string(),
            });
            format!("[image {mime}{from}, {len} bytes: attached]")
        }
    }
}

/// The decoded length of standard base64 (padding optional), or None when it is not
/// base64 — which an API would refuse, breaking every later request of the conversation.
fn decoded_len(data: &str) -> Option<usize> {
    let body = data.trim_end_matches('=');
    let pad = data.len() - body.len();
    if pad > 2
        || (pad > 0 && !(body.len() + pad).is_multiple_of(4))
        || body.len() % 4 == 1
        || !body
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/')
    {
        return None;
    }
    Some(body.len() / 4 * 3 + (body.len() % 4).saturating_sub(1))
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
    fn every_kind_of_content_becomes_text_or_an_image() {
        let r = json!({ "content": [
            { "type": "text", "text": "hello" },
            { "type": "image", "mimeType": "image/png", "data": "aGVsbG8=" },
            { "type": "resource", "resource": { "uri": "file:///a", "text": "body" } },
            { "type": "resource", "resource": { "uri": "file:///b", "blob": "AA==" } },
            { "type": "resource", "resource": { "uri": "file:///c.gif", "mimeType": "image/gif", "blob": "R0lG" } }
        ], "structuredContent": { "n": 1 } });
        let p = result(&r);
        assert_eq!(
            p.text,
            "hello\n[image image/png, 5 bytes: attached]\n[resource file:///a]\nbody\n\
             [resource file:///b (binary): binary, not forwarded]\n\
             [image image/gif from file:///c.gif, 3 bytes: attached]\n{\"n\":1}"
        );
        assert_eq!(
            p.images,
            vec![
                Image {
                    mime_type: "image/png".into(),
                    data: "aGVsbG8=".into()
                },
                Image {
                    mime_type: "image/gif".into(),
                    data: "R0lG".into()
                }
            ]
        );
        let dup = json!({ "content": [{ "type": "text", "text": "{\"n\":1}" }], "structuredContent": { "n": 1 } });
        assert_eq!(result(&dup).text, "{\"n\":1}");
    }

    #[test]
    fn images_too_big_of_other_types_or_not_base64_are_named_not_forwarded() {
        let big = "A".repeat((MAX_IMAGE_BYTES / 3 + 1) * 4);
        let r = json!({ "content": [
            { "type": "image", "mimeType": "image/png", "data": big },
            { "type": "image", "mimeType": "image/tiff", "data": "AAAA" },
            { "type": "image", "mimeType": "image/png", "data": "not base64!" },
            { "type": "audio", "mimeType": "audio/wav", "data": "AAAA" }
        ] });
        let p = result(&r);
        assert!(p.images.is_empty());
        let lines: Vec<&str> = p.text.lines().collect();
        assert!(
            lines[0]
                .starts_with("[image image/png, 1048578 bytes: not forwarded, over the 1024 KiB"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].contains("a type the chat APIs do not take"),
            "{}",
            lines[1]
        );
        assert!(lines[2].contains("not valid base64"), "{}", lines[2]);
        assert!(
            lines[3].starts_with("[audio audio/wav, 3 bytes: not forwarded"),
            "{}",
            lines[3]
        );
        let many: Vec<Value> = (0..MAX_IMAGES + 1)
            .map(|_| json!({ "type": "image", "mimeType": "image/webp", "data": "AAAA" }))
            .collect();
        let p = result(&json!({ "content": many }));
        assert_eq!(p.images.len(), MAX_IMAGES);
        assert!(
            p.text.ends_with("more than 4 images in one tool result]"),
            "{}",
            p.text
        );
    }

    #[test]
    fn base64_lengths() {
        assert_eq!(decoded_len(""), Some(0));
        assert_eq!(decoded_len("AA=="), Some(1));
        assert_eq!(decoded_len("AAA="), Some(2));
        assert_eq!(decoded_len("AAAA"), Some(3));
        assert_eq!(decoded_len("AAA"), Some(2));
        assert_eq!(decoded_len("A"), None);
        assert_eq!(decoded_len("AA==="), None);
        assert_eq!(decoded_len("A-A="), None);
        assert_eq!(decoded_len("AAAA="), None);
    }
}
