//! The upstream client: how the proxy talks to legacy and new services.
//!
//! - [`pool`]: keep-alive connection pools, one per worker and upstream, HTTP/1.1 or HTTP/2,
//!   with a connection cap and retries of requests that never reached the upstream;
//! - [`body`]: the request body on its way upstream (streamed under `max_body`, or buffered
//!   for a replay);
//! - [`health`]: active health checks, outlier ejection and the retry budget per upstream;
//! - [`tls`]: TLS to `https://` upstreams.
//!
//! Nothing here knows routes or the request path's decisions: the proxy hands it a request
//! and an upstream, and gets an answer or a classified failure back.

pub mod body;
pub mod health;
pub mod pool;
pub mod tls;
