//! Server-sent events, decoded incrementally from the bytes as they arrive (both LLM
//! protocols stream this way). Only `event:` and `data:` fields matter here.

/// One event: its name (`message` when none was given) and its data lines joined by `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    pub name: String,
    pub data: String,
}

/// Feed it chunks; it hands back every event completed so far. A partial line or event
/// stays buffered until its end arrives (chunks split anywhere, even inside UTF-8).
#[derive(Debug, Default)]
pub struct Decoder {
    buf: Vec<u8>,
    name: Option<String>,
    data: Vec<String>,
}

impl Decoder {
    pub fn feed(&mut self, chunk: &[u8]) -> Vec<Event> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(pos) = self.buf.iter().position(|&b| b == b'\n') {
            let mut line: Vec<u8> = self.buf.drain(..=pos).collect();
            line.pop();
            if line.last() == Some(&b'\r') {
                line.pop();
            }
            let line = String::from_utf8_lossy(&line).into_owned();
            if line.is_empty() {
                if let Some(e) = self.dispatch() {
                    out.push(e);
                }
                continue;
            }
            if line.starts_with(':') {
                continue;
            }
            let (field, value) = match line.split_once(':') {
                Some((f, v)) => (f.to_string(), v.strip_prefix(' ').unwrap_or(v).to_string()),
                None => (line.clone(), String::new()),
            };
            match field.as_str() {
                "event" => self.name = Some(value),
                "data" => self.data.push(value),
                _ => {}
            }
        }
        out
    }

    /// At the end of the body: an event not closed by a blank line still counts (some
    /// servers omit the last one), a half line does not.
    pub fn finish(&mut self) -> Option<Event> {
        self.dispatch()
    }

    /// Bytes of an unfinished line are waiting.
    pub fn has_partial_line(&self) -> bool {
        !self.buf.is_empty()
    }

    fn dispatch(&mut self) -> Option<Event> {
        if self.data.is_empty() {
            self.name = None;
            return None;
        }
        let data = std::mem::take(&mut self.data).join("\n");
        let name = self.name.take().unwrap_or_else(|| "message".into());
        Some(Event { name, data })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_anywhere_come_out_whole() {
        let wire = b"event: a\ndata: {\"x\":\ndata: 1}\n\n: comment\ndata: two\r\n\r\n";
        for cut in 0..wire.len() {
            let mut d = Decoder::default();
            let mut got = d.feed(&wire[..cut]);
            got.extend(d.feed(&wire[cut..]));
            assert_eq!(
                got,
                vec![
                    Event {
                        name: "a".into(),
                        data: "{\"x\":\n1}".into()
                    },
                    Event {
                        name: "message".into(),
                        data: "two".into()
                    }
                ],
                "cut at {cut}"
            );
        }
    }
}
