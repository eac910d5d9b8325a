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

pub mod guard;
pub mod h2_send;
pub mod h2_watch;
pub mod head_clock;
pub mod send_deadline;
