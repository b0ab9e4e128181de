//! Request bodies: in memory (replayable), a one-shot stream, or a stream that can be rewound.

use std::io::{Read, Seek, SeekFrom};

/// A stream that can be rewound to where it started.
pub(crate) trait ReadSeek: Read + Seek {}

impl<T: Read + Seek> ReadSeek for T {}

/// The body of one request, across its redirects and replays.
pub(crate) enum Payload<'r> {
    Empty,
    Bytes(Vec<u8>),
    /// Read once, as it is sent; never replayed.
    Stream {
        reader: Box<dyn Read + 'r>,
        sent: bool,
    },
    /// Rewound to `start` before every send after the first.
    Seekable {
        reader: Box<dyn ReadSeek + 'r>,
        start: Option<u64>,
        sent: bool,
    },
}

impl<'r> Payload<'r> {
    pub(crate) fn stream(reader: impl Read + 'r) -> Self {
        Payload::Stream {
            reader: Box::new(reader),
            sent: false,
        }
    }

    pub(crate) fn seekable(reader: impl Read + Seek + 'r) -> Self {
        Payload::Seekable {
            reader: Box::new(reader),
            start: None,
            sent: false,
        }
    }

    /// Makes the body ready to be sent (again). `false` when it cannot be: a one-shot stream that
    /// was already sent, or a stream whose position cannot be restored.
    pub(crate) fn rewind(&mut self) -> bool {
        match self {
            Payload::Empty | Payload::Bytes(_) => true,
            Payload::Stream { sent, .. } => !*sent,
            Payload::Seekable {
                reader,
                start,
                sent,
            } => {
                if !*sent {
                    return true;
                }
                match start {
                    Some(at) => reader.seek(SeekFrom::Start(*at)).is_ok(),
                    None => false,
                }
            }
        }
    }

    /// The body for the next send.
    pub(crate) fn next(&mut self) -> Next<'_> {
        match self {
            Payload::Empty => Next::None,
            Payload::Bytes(b) => Next::Bytes(b.as_slice()),
            Payload::Stream { reader, sent } => {
                *sent = true;
                Next::Reader(reader.as_mut())
            }
            Payload::Seekable {
                reader,
                start,
                sent,
            } => {
                if start.is_none() {
                    *start = reader.stream_position().ok();
                }
                *sent = true;
                Next::Reader(reader.as_mut())
            }
        }
    }
}

/// What the next send carries.
pub(crate) enum Next<'a> {
    None,
    /// Sent with a `Content-Length`.
    Bytes(&'a [u8]),
    /// Sent chunked (unless the request has its own `Content-Length`).
    Reader(&'a mut dyn Read),
}
