//! Upstream connection pools: one per upstream per proxy worker thread.
//!
//! Each worker owns its pools (see [`crate::server`]), so a request, its upstream
//! connection and that connection's driver task all live on one thread: checking a
//! connection out is an uncontended lock and a `Vec::pop`, with no connect future built
//! per request. Connections are HTTP/1.1 keep-alive (hyper's client connection), reused
//! most-recently-used first, dropped when the upstream closes them or when they have been
//! idle longer than `pool_idle_timeout`.
//!
//! A connection goes back to its pool only once the response body has been read to the
//! end; a response abandoned half-way, or an upgraded (101) connection, is never reused.
//! A request that a pooled connection refused before sending a byte (the upstream closed
//! it meanwhile) is retried on another connection: never a request that was sent.

use std::future::poll_fn;
use std::io;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use http::{Request, Response};
use hyper::body::Incoming;

use crate::proxy::body::RequestBody;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

/// Why an exchange with an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The TCP connection could not be made.
    #[error("connect: {0}")]
    Connect(#[source] io::Error),
    /// The TCP connection was not made within `connect_timeout`.
    #[error("connect timed out")]
    ConnectTimeout,
    /// The HTTP/1 handshake failed.
    #[error("handshake: {0}")]
    Handshake(#[source] hyper::Error),
    /// Sending the request or reading the response head failed.
    #[error("{0}")]
    Exchange(#[source] hyper::Error),
}

/// The pool of one upstream for one worker.
#[derive(Debug)]
pub struct ConnectionPool {
    /// `host:port` to connect to.
    address: String,
    connect_timeout: Duration,
    idle_timeout: Duration,
    idle: Mutex<Vec<Idle>>,
}

#[derive(Debug)]
struct Idle {
    sender: SendRequest<RequestBody>,
    since: Instant,
}

/// A connection lent to one exchange; [`Lease::give_back`] returns it to the pool.
#[derive(Debug)]
pub struct Lease {
    sender: SendRequest<RequestBody>,
    pool: Arc<ConnectionPool>,
}

impl Lease {
    /// Returns the connection to its pool (call once the response body is complete).
    pub fn give_back(self) {
        if self.sender.is_closed() {
            return;
        }
        if let Ok(mut idle) = self.pool.idle.lock() {
            idle.push(Idle {
                sender: self.sender,
                since: Instant::now(),
            });
        }
    }
}

impl ConnectionPool {
    /// An empty pool for `address` (`host:port`).
    pub fn new(address: String, connect_timeout: Duration, idle_timeout: Duration) -> Self {
        Self {
            address,
            connect_timeout,
            idle_timeout,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Sends `request` (origin-form URI) on a pooled connection, or a new one.
    pub async fn send(
        self: &Arc<Self>,
        request: Request<RequestBody>,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        self.send_with_retry(request, || false).await
    }

    /// Like [`send`](Self::send); when a new connection is refused (nothing was sent, so any
    /// method may be tried again) and `may_retry` grants it, connects once more after a
    /// short pause. `may_retry` is where the caller's retry budget is spent.
    pub async fn send_with_retry(
        self: &Arc<Self>,
        mut request: Request<RequestBody>,
        may_retry: impl Fn() -> bool,
    ) -> Result<(Response<Incoming>, Lease), SendError> {
        // Connections still finishing their last exchange: kept, not waited for.
        let mut busy = Vec::new();
        let mut retried = false;
        let exchange = loop {
            let Some(mut idle) = self.pop() else {
                let mut sender = match self.connect().await {
                    Ok(sender) => sender,
                    Err(SendError::Connect(e)) if !retried && e.kind() != io::ErrorKind::TimedOut && may_retry() => {
                        retried = true;
                        tracing::debug!(upstream = %self.address, error = %e, "connect refused; retrying once");
                        tokio::time::sleep(retry_pause()).await;
                        continue;
                    }
                    Err(e) => break Err(e),
                };
                let response = sender.send_request(request).await;
                break response.map(|response| (response, sender)).map_err(SendError::Exchange);
            };
            if idle.sender.is_closed() || idle.since.elapsed() >= self.idle_timeout {
                continue;
            }
            match poll_fn(|cx| Poll::Ready(idle.sender.poll_ready(cx))).await {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(_)) => continue,
                Poll::Pending => {
                    busy.push(idle);
                    continue;
                }
            }
            match idle.sender.try_send_request(request).await {
                Ok(response) => break Ok((response, idle.sender)),
                Err(mut refused) => match refused.take_message() {
                    // Never sent: safe to try another connection.
                    Some(unsent) => request = unsent,
                    None => break Err(SendError::Exchange(refused.into_error())),
                },
            }
        };
        if !busy.is_empty()
            && let Ok(mut idle) = self.idle.lock()
        {
            idle.extend(busy);
        }
        let (response, sender) = exchange?;
        Ok((
            response,
            Lease {
                sender,
                pool: self.clone(),
            },
        ))
    }

    /// Closes the connections that have been idle longer than `pool_idle_timeout` or that
    /// the upstream closed. Called periodically, so that an upstream that gets no more
    /// traffic does not keep connections open forever.
    pub fn reap(&self) -> usize {
        let Ok(mut idle) = self.idle.lock() else { return 0 };
        let before = idle.len();
        idle.retain(|c| !c.sender.is_closed() && c.since.elapsed() < self.idle_timeout);
        before - idle.len()
    }

    fn pop(&self) -> Option<Idle> {
        self.idle.lock().ok().and_then(|mut idle| idle.pop())
    }

    async fn connect(&self) -> Result<SendRequest<RequestBody>, SendError> {
        let stream = match tokio::time::timeout(self.connect_timeout, TcpStream::connect(&*self.address)).await {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => return Err(SendError::Connect(e)),
            Err(_) => return Err(SendError::ConnectTimeout),
        };
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY upstream");
        }
        let (sender, connection) = hyper::client::conn::http1::Builder::new()
            .handshake(TokioIo::new(stream))
            .await
            .map_err(SendError::Handshake)?;
        let address = self.address.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.with_upgrades().await {
                tracing::debug!(upstream = %address, error = %e, "upstream connection ended with an error");
            }
        });
        Ok(sender)
    }
}

/// 10–30 ms, jittered so that retries of many requests do not arrive together.
fn retry_pause() -> Duration {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    Duration::from_millis(10 + u64::from(nanos % 20))
}
