//! The timeouts of an HTTP/2 client connection, which hyper's HTTP/2 server has none of:
//! a connection that sends only the preface and SETTINGS, or a HEADERS frame without
//! END_HEADERS and then nothing (an HTTP/2 slowloris), or nothing after its last answer,
//! would otherwise hold its `max_connections` slot for ever.
//!
//! [`FrameWatch`] reads the client's bytes for hyper and follows the frame headers (nine
//! bytes before each frame, after the 24-byte preface) to see when a header block is open:
//! a HEADERS frame without END_HEADERS, until the CONTINUATION that ends it. It looks at
//! nothing else, and copies nothing: a few comparisons per frame read. The connection's
//! requests are counted by the server as for HTTP/1.1 ([`super::head_clock::Exchanges`]),
//! so [`H2Clock`] (a [`HeadClock`] told about the open header block) knows when the
//! connection is idle, has had no request yet, or holds an incomplete header block, and
//! which of `client_idle_timeout` and `client_header_timeout` bounds the wait.
//!
//! A stream whose request is in flight (its request body still arriving, or its answer)
//! is not idleness: what bounds a stalled request body is the proxy's, not this clock's.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, ReadBuf};

use super::head_clock::HeadClock;

/// The client connection preface's length (RFC 9113 §3.4), which precedes the frames.
const PREFACE_LEN: usize = 24;
/// A frame header's length (RFC 9113 §4.1).
const FRAME_HEADER_LEN: usize = 9;
const HEADERS: u8 = 0x1;
const CONTINUATION: u8 = 0x9;
const END_HEADERS: u8 = 0x4;

/// Whether the client has a header block open, as [`FrameWatch`] saw it on the wire;
/// shared with the connection's [`H2Clock`].
#[derive(Debug, Default)]
pub struct HeaderBlocks {
    /// A HEADERS frame without END_HEADERS was read, and no CONTINUATION ended it yet.
    open: AtomicBool,
    /// A block ended since the clock last looked (so a new one is a new wait).
    ended: AtomicBool,
}

/// Where the watch is in the client's byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Position {
    /// In the preface: this many bytes to go.
    Preface(usize),
    /// In a frame header: this many of its bytes seen (kept in `header`).
    FrameHeader(usize),
    /// In a frame's payload: this many bytes to go.
    Payload(u32),
}

/// Reads an HTTP/2 client connection for hyper, unchanged, following its frame headers
/// into [`HeaderBlocks`]. Writes pass straight through.
#[derive(Debug)]
pub struct FrameWatch<IO> {
    io: IO,
    position: Position,
    header: [u8; FRAME_HEADER_LEN],
    blocks: Arc<HeaderBlocks>,
}

impl<IO> FrameWatch<IO> {
    /// Watches `io` from its first byte (the preface) on; `blocks` is told what it sees.
    pub fn new(io: IO, blocks: Arc<HeaderBlocks>) -> Self {
        Self {
            io,
            position: Position::Preface(PREFACE_LEN),
            header: [0; FRAME_HEADER_LEN],
            blocks,
        }
    }

    /// Follows the frames through `data`, the next bytes read.
    fn follow(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            match self.position {
                Position::Preface(left) => {
                    let used = left.min(data.len());
                    data = &data[used..];
                    self.position = match left - used {
                        0 => Position::FrameHeader(0),
                        left => Position::Preface(left),
                    };
                }
                Position::FrameHeader(seen) => {
                    let used = (FRAME_HEADER_LEN - seen).min(data.len());
                    self.header[seen..seen + used].copy_from_slice(&data[..used]);
                    data = &data[used..];
                    self.position = match seen + used {
                        FRAME_HEADER_LEN => self.frame_begins(),
                        seen => Position::FrameHeader(seen),
                    };
                }
                Position::Payload(left) => {
                    let used = usize::try_from(left).map_or(data.len(), |left| left.min(data.len()));
                    data = &data[used..];
                    // `used` is at most `left`, a u32.
                    let left = left - u32::try_from(used).unwrap_or(left);
                    self.position = match left {
                        0 => Position::FrameHeader(0),
                        left => Position::Payload(left),
                    };
                }
            }
        }
    }

    /// A whole frame header is in `header`: notes a header block opening or ending, and
    /// returns where its payload leaves the watch.
    fn frame_begins(&mut self) -> Position {
        let [l0, l1, l2, kind, flags, ..] = self.header;
        let length = u32::from_be_bytes([0, l0, l1, l2]);
        let ends_block = flags & END_HEADERS != 0;
        match kind {
            HEADERS if !ends_block => self.blocks.open.store(true, Ordering::Relaxed),
            CONTINUATION if ends_block => {
                self.blocks.open.store(false, Ordering::Relaxed);
                self.blocks.ended.store(true, Ordering::Relaxed);
            }
            _ => {}
        }
        match length {
            0 => Position::FrameHeader(0),
            length => Position::Payload(length),
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for FrameWatch<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        std::task::ready!(Pin::new(&mut this.io).poll_read(cx, buf))?;
        this.follow(&buf.filled()[before..]);
        Poll::Ready(Ok(()))
    }
}

crate::server::conn::write_through!(FrameWatch<IO>, io);

/// The clock of one HTTP/2 connection: its [`HeadClock`], and the header blocks its
/// [`FrameWatch`] sees. Poll it after the connection (in the same task), so that it sees
/// what the connection has just read.
#[derive(Debug)]
pub struct H2Clock {
    clock: HeadClock,
    blocks: Arc<HeaderBlocks>,
}

impl H2Clock {
    /// `clock`, told about the header blocks in `blocks`.
    pub fn new(clock: HeadClock, blocks: Arc<HeaderBlocks>) -> Self {
        Self { clock, blocks }
    }

    /// Ready once the connection has waited too long (see [`HeadClock::poll_expired`]).
    pub fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<io::Error> {
        if self.blocks.ended.swap(false, Ordering::Relaxed) {
            self.clock.head_complete();
        }
        self.clock.poll_expired(cx, self.blocks.open.load(Ordering::Relaxed))
    }

    /// The connection was told to close (GOAWAY); see [`HeadClock::closing`].
    pub fn closing(&mut self) {
        self.clock.closing();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A frame header: `length`, `kind`, `flags`, stream 1.
    fn frame(length: u32, kind: u8, flags: u8) -> Vec<u8> {
        let length = length.to_be_bytes();
        vec![length[1], length[2], length[3], kind, flags, 0, 0, 0, 1]
    }

    /// Follows `pieces` (read in that order) and says whether a block is open after each.
    fn open_after_each(pieces: &[Vec<u8>]) -> Vec<bool> {
        let blocks = Arc::new(HeaderBlocks::default());
        let mut watch = FrameWatch::new((), blocks.clone());
        pieces
            .iter()
            .map(|piece| {
                watch.follow(piece);
                blocks.open.load(Ordering::Relaxed)
            })
            .collect()
    }

    const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

    #[test]
    fn headers_without_end_headers_open_a_block_until_a_continuation_ends_it() {
        let mut opening = PREFACE.to_vec();
        opening.extend(frame(0, 0x4, 0)); // SETTINGS
        opening.extend(frame(3, HEADERS, 0x1)); // END_STREAM, not END_HEADERS
        opening.extend([0x82, 0x86, 0x84]);
        let mut middle = frame(1, CONTINUATION, 0);
        middle.push(0x41);
        let mut end = frame(1, CONTINUATION, END_HEADERS);
        end.push(0x00);
        assert_eq!(open_after_each(&[opening, middle, end]), [true, true, false]);
    }

    #[test]
    fn a_complete_header_block_and_data_open_nothing() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(3, HEADERS, END_HEADERS));
        bytes.extend([0x82, 0x86, 0x84]);
        // A DATA frame whose payload looks like a HEADERS frame header.
        bytes.extend(frame(9, 0x0, 0));
        bytes.extend(frame(0, HEADERS, 0));
        assert_eq!(open_after_each(&[bytes]), [false]);
    }

    #[test]
    fn frames_split_anywhere_are_followed() {
        let mut bytes = PREFACE.to_vec();
        bytes.extend(frame(5, 0x0, 0));
        bytes.extend([1, 2, 3, 4, 5]);
        bytes.extend(frame(2, HEADERS, 0));
        bytes.extend([0x82, 0x86]);
        for split in 1..bytes.len() {
            let (a, b) = bytes.split_at(split);
            let open = open_after_each(&[a.to_vec(), b.to_vec()]);
            assert!(open[1], "split at {split}");
        }
        let one_by_one: Vec<Vec<u8>> = bytes.iter().map(|b| vec![*b]).collect();
        let open = open_after_each(&one_by_one);
        // Open from the last byte of the HEADERS frame's header (two payload bytes follow).
        let header_done = bytes.len() - 3;
        assert!(!open[..header_done].contains(&true), "opened before its HEADERS frame");
        assert!(open[header_done..].iter().all(|open| *open));
    }
}
