//! A stdio server's stdout as the DTMA's mux reads it: `TolerantLines` framing, then
//! `classify` on every line. Input: one byte choosing the line limit, one the read size,
//! then the stream. Checks: no panic; the lines do not depend on how the stream arrives
//! in reads (one read vs. many small ones); no line holds a newline.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;
use toolbelt_wire::stdio::{Junk, Line, Message, TolerantLines, classify};

/// What `FramedRead` yields from `stream` arriving in reads of `chunk` bytes.
fn frame(stream: &[u8], max_line: usize, chunk: usize) -> Vec<String> {
    let mut codec = TolerantLines::new(max_line);
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut push = |l: Line| {
        out.push(match l {
            Ok(s) => s,
            Err(Junk::TooLong) => "\u{0}too long".into(),
            Err(Junk::Unreadable(_)) => "\u{0}unreadable".into(),
        })
    };
    for piece in stream.chunks(chunk) {
        buf.extend_from_slice(piece);
        while let Some(l) = codec.decode(&mut buf).expect("only I/O errors end the stream") {
            push(l);
        }
    }
    while let Some(l) = codec.decode_eof(&mut buf).expect("only I/O errors end the stream") {
        push(l);
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let [limit, chunk, stream @ ..] = data else {
        return;
    };
    let max_line = usize::from(*limit) + 1;
    let chunk = usize::from(*chunk % 16) + 1;
    let whole = frame(stream, max_line, stream.len().max(1));
    let pieces = frame(stream, max_line, chunk);
    assert_eq!(whole, pieces, "framing depends on read boundaries");
    for line in &whole {
        assert!(!line.contains('\n'));
        let m = classify(line);
        if let Message::Response { id, msg } = &m {
            assert_eq!(msg["id"].as_i64(), Some(*id));
        }
    }
    // The mux's own limit (16 MiB): every line of the stream is read whole.
    for line in frame(stream, 16 * 1024 * 1024, chunk) {
        let _ = classify(&line);
    }
});
