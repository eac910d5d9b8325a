//! How long a client may leave its response unread (`send_timeout`, as nginx's): the
//! longest wait between two writes to its connection that make progress.
//!
//! A client that stops reading blocks hyper's writes: hyper then stops polling the
//! response body (its write buffer is full), so nothing in the body can notice, let alone
//! end the exchange. The connection's IO can: [`SendDeadline`] wraps it, and when a write
//! (or flush) has found the socket full for `send_timeout` it fails with `TimedOut`; hyper
//! then closes the connection (every stream on it, for HTTP/2), the response body is
//! dropped (its upstream connection with it, never reused), and the stall is counted in
//! `strangler_client_errors_total{kind="send_timeout"}`.
//!
//! Cheap: a connection whose writes never block never arms a timer; the first blocked write
//! starts the wait (see [`StallDeadline`]). An HTTP/2 client that stops granting flow-control
//! window (rather than stop reading the socket) is not seen here: the socket never blocks.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use prometheus::IntCounter;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::upstream::body::StallDeadline;

/// A client connection's IO whose writes may stall at most `send_timeout`.
#[derive(Debug)]
pub struct SendDeadline<IO> {
    io: IO,
    deadline: StallDeadline,
    peer: SocketAddr,
    /// `strangler_client_errors_total{kind="send_timeout"}`.
    expired: IntCounter,
}

impl<IO> SendDeadline<IO> {
    /// `io` of the client at `peer`, its writes bounded by `send_timeout`; an expiry counts
    /// in `expired`.
    pub fn new(io: IO, send_timeout: Duration, peer: SocketAddr, expired: IntCounter) -> Self {
        Self {
            io,
            deadline: StallDeadline::new(send_timeout),
            peer,
            expired,
        }
    }

    /// A write found the socket full: Pending until `send_timeout` has passed since the last
    /// write that made progress, then the error that ends the connection.
    fn poll_stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<T>> {
        if self.deadline.poll_expired(cx, None).is_pending() {
            return Poll::Pending;
        }
        self.expired.inc();
        let waited = self.deadline.timeout();
        tracing::warn!(
            client = %self.peer,
            send_timeout_ms = waited.as_millis() as u64,
            "client left the response unread for send_timeout; closing its connection"
        );
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            "the client read nothing for send_timeout",
        )))
    }

    /// The outcome of a write: progress restarts the wait, a blocked socket waits on.
    #[inline]
    fn written<T>(&mut self, cx: &mut Context<'_>, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        match polled {
            Poll::Pending => self.poll_stalled(cx),
            ready => {
                self.deadline.stepped();
                ready
            }
        }
    }
}

impl<IO: AsyncRead + Unpin> AsyncRead for SendDeadline<IO> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<IO: AsyncWrite + Unpin> AsyncWrite for SendDeadline<IO> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write(cx, buf);
        self.written(cx, polled)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let polled = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.written(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_flush(cx);
        self.written(cx, polled)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let polled = Pin::new(&mut self.io).poll_shutdown(cx);
        self.written(cx, polled)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    const TIMEOUT: Duration = Duration::from_secs(60);

    fn counter() -> IntCounter {
        IntCounter::new("send_timeouts", "test").unwrap()
    }

    #[tokio::test(start_paused = true)]
    async fn a_write_blocked_for_send_timeout_fails_and_is_counted() {
        // A peer that never reads: the pipe fills, then writes block.
        let (ours, _theirs) = tokio::io::duplex(1024);
        let expired = counter();
        let mut io = SendDeadline::new(ours, TIMEOUT, "192.0.2.7:5000".parse().unwrap(), expired.clone());
        let started = tokio::time::Instant::now();
        let error = io.write_all(&[0u8; 4096]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), TIMEOUT);
        assert_eq!(expired.get(), 1);
    }

    #[tokio::test(start_paused = true)]
    async fn a_slow_reader_that_keeps_reading_is_not_cut() {
        let (ours, mut theirs) = tokio::io::duplex(1024);
        let expired = counter();
        let mut io = SendDeadline::new(ours, TIMEOUT, "192.0.2.7:5000".parse().unwrap(), expired.clone());
        // Reads 1 KiB every 50 s: each write waits less than the timeout, the whole far more.
        let reader = tokio::spawn(async move {
            let mut buffer = [0u8; 1024];
            let mut total = 0;
            while total < 8 * 1024 {
                tokio::time::sleep(TIMEOUT - Duration::from_secs(10)).await;
                total += tokio::io::AsyncReadExt::read(&mut theirs, &mut buffer).await.unwrap();
            }
            total
        });
        io.write_all(&[0u8; 8 * 1024]).await.unwrap();
        assert_eq!(reader.await.unwrap(), 8 * 1024);
        assert_eq!(expired.get(), 0);
    }
}
