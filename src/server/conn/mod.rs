//! One client connection's IO below hyper: what the server reads before hyper parses it.
//!
//! - [`guard`]: [`guard::FramingCheck`] reads HTTP/1.1 request heads off the wire and refuses
//!   ambiguous framing (request smuggling shapes) before hyper sees them; [`guard::check`]
//!   checks a parsed head;
//! - [`head_clock`]: the clock that bounds the wait for each request head (slowloris,
//!   idle keep-alive);
//! - [`h2_watch`]: the same clock for HTTP/2 connections, told by a watch of the frame
//!   headers whether a header block is open;
//! - [`send_deadline`]: how long a client may leave its response unread (`send_timeout`);
//! - [`h2_send`]: the same for one HTTP/2 stream whose client grants it no window.

/// `AsyncWrite` for a wrapper that only watches what is read (`$ty<IO>` with the stream in
/// field `$field`): every write goes straight through to the stream.
macro_rules! write_through {
    ($ty:ident<$io:ident>, $field:ident) => {
        impl<$io: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for $ty<$io> {
            fn poll_write(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                buf: &[u8],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.$field).poll_write(cx, buf)
            }

            fn poll_write_vectored(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
                bufs: &[std::io::IoSlice<'_>],
            ) -> std::task::Poll<std::io::Result<usize>> {
                std::pin::Pin::new(&mut self.$field).poll_write_vectored(cx, bufs)
            }

            fn is_write_vectored(&self) -> bool {
                self.$field.is_write_vectored()
            }

            fn poll_flush(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.$field).poll_flush(cx)
            }

            fn poll_shutdown(
                mut self: std::pin::Pin<&mut Self>,
                cx: &mut std::task::Context<'_>,
            ) -> std::task::Poll<std::io::Result<()>> {
                std::pin::Pin::new(&mut self.$field).poll_shutdown(cx)
            }
        }
    };
}
pub(crate) use write_through;

pub mod guard;
pub mod h2_send;
pub mod h2_watch;
pub mod head_clock;
pub mod send_deadline;
