//! Lines from a server's stdout that survive junk. `FramedRead` ends its stream after
//! any decoder error, so a plain `LinesCodec` turns one over-long or non-UTF-8 line
//! into what looks like the server exiting. This codec yields such a line as junk and
//! keeps reading; only an I/O error ends the stream.

use bytes::BytesMut;
use tokio_util::codec::{Decoder, LinesCodec, LinesCodecError};

/// A line, or why a line could not be read.
pub type Line = Result<String, Junk>;

/// A line that was skipped rather than read.
#[derive(Debug, thiserror::Error)]
pub enum Junk {
    #[error("a line over the length limit")]
    TooLong,
    #[error("{0}")]
    Unreadable(std::io::Error),
}

pub struct TolerantLines(LinesCodec);

impl TolerantLines {
    pub fn new(max_line: usize) -> TolerantLines {
        TolerantLines(LinesCodec::new_with_max_length(max_line))
    }
}

/// `LinesCodec` has consumed the bad line (or is discarding the rest of an over-long
/// one) when it reports these, so reading on is safe.
fn tolerate(r: Result<Option<String>, LinesCodecError>) -> std::io::Result<Option<Line>> {
    match r {
        Ok(l) => Ok(l.map(Ok)),
        Err(LinesCodecError::MaxLineLengthExceeded) => Ok(Some(Err(Junk::TooLong))),
        Err(LinesCodecError::Io(e)) if e.kind() == std::io::ErrorKind::InvalidData => {
            Ok(Some(Err(Junk::Unreadable(e))))
        }
        Err(LinesCodecError::Io(e)) => Err(e),
    }
}

impl Decoder for TolerantLines {
    type Item = Line;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> std::io::Result<Option<Line>> {
        tolerate(self.0.decode(buf))
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> std::io::Result<Option<Line>> {
        tolerate(self.0.decode_eof(buf))
    }
}
