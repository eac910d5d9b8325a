//! The bounded copy of the legacy answer that a shadow comparison reads.
//!
//! The legacy body streams to the client as usual ([`crate::proxy::body::ResponseBody`]
//! feeds the copy frame by frame); once complete, the copy is handed to the waiting mirror
//! task. An answer larger than [`CAPTURE_LIMIT`], or one the client abandoned, is handed
//! over as `None` (the comparison counts it as an error), never held back.
//!
//! The traffic recording (`[record] responses = true`) reads the same copy: a capture
//! hands it to every receiver it was asked for ([`Capture::also`]).

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use tokio::sync::oneshot;

use crate::parity::Captured;

/// The largest answer captured for a comparison, per side.
pub const CAPTURE_LIMIT: usize = 1024 * 1024;

/// A bounded copy of a response body as it streams to the client; delivered when the body
/// is complete, or `None` if it was abandoned or grew past [`CAPTURE_LIMIT`].
#[derive(Debug)]
pub struct Capture {
    status: u16,
    headers: HeaderMap,
    body: BytesMut,
    overflowed: bool,
    done: Option<oneshot::Sender<Option<Captured>>>,
    /// More receivers of the same copy.
    others: Vec<oneshot::Sender<Option<Captured>>>,
}

impl Capture {
    /// Starts capturing a response with this status and headers.
    pub fn new(status: u16, headers: HeaderMap) -> (Self, oneshot::Receiver<Option<Captured>>) {
        let (done, receiver) = oneshot::channel();
        let capture = Self {
            status,
            headers,
            body: BytesMut::new(),
            overflowed: false,
            done: Some(done),
            others: Vec::new(),
        };
        (capture, receiver)
    }

    /// Another receiver of the copy (`None` when it is abandoned or too large, like the
    /// first).
    pub fn also(&mut self) -> oneshot::Receiver<Option<Captured>> {
        let (done, receiver) = oneshot::channel();
        self.others.push(done);
        receiver
    }

    /// Copies a chunk (up to the limit).
    pub fn data(&mut self, chunk: &Bytes) {
        if self.overflowed {
            return;
        }
        if self.body.len() + chunk.len() > CAPTURE_LIMIT {
            self.overflowed = true;
            self.body = BytesMut::new();
        } else {
            self.body.extend_from_slice(chunk);
        }
    }

    /// The body is complete: deliver the copy.
    pub fn complete(&mut self) {
        if let Some(done) = self.done.take() {
            let captured = (!self.overflowed).then(|| Captured {
                status: self.status,
                headers: std::mem::take(&mut self.headers),
                body: std::mem::take(&mut self.body).freeze(),
            });
            for other in self.others.drain(..) {
                let _ = other.send(captured.clone());
            }
            let _ = done.send(captured);
        }
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        if let Some(done) = self.done.take() {
            let _ = done.send(None);
        }
        for other in self.others.drain(..) {
            let _ = other.send(None);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_delivers_or_gives_up() {
        let (mut capture, mut receiver) = Capture::new(200, HeaderMap::new());
        capture.data(&Bytes::from_static(b"hello "));
        capture.data(&Bytes::from_static(b"world"));
        capture.complete();
        let captured = receiver.try_recv().unwrap().unwrap();
        assert_eq!(captured.body, Bytes::from_static(b"hello world"));

        let (mut capture, mut receiver) = Capture::new(200, HeaderMap::new());
        capture.data(&Bytes::from(vec![0u8; CAPTURE_LIMIT + 1]));
        capture.complete();
        assert!(
            receiver.try_recv().unwrap().is_none(),
            "an overflowing body is not compared"
        );

        let (capture, mut receiver) = Capture::new(200, HeaderMap::new());
        drop(capture);
        assert!(
            receiver.try_recv().unwrap().is_none(),
            "an abandoned body is not compared"
        );
    }

    #[test]
    fn every_receiver_gets_the_same_copy() {
        let (mut capture, mut first) = Capture::new(201, HeaderMap::new());
        let mut second = capture.also();
        capture.data(&Bytes::from_static(b"made"));
        capture.complete();
        let (a, b) = (first.try_recv().unwrap().unwrap(), second.try_recv().unwrap().unwrap());
        assert_eq!((a.status, &a.body[..]), (201, &b"made"[..]));
        assert_eq!(a, b);
        let (mut capture, _first) = Capture::new(200, HeaderMap::new());
        let mut second = capture.also();
        drop(capture);
        assert!(
            second.try_recv().unwrap().is_none(),
            "an abandoned body is given up for all"
        );
    }
}
