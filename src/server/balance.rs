//! Spreading client connections evenly over the proxy workers.
//!
//! Every worker accepts from the same listening socket, and whichever worker the kernel
//! wakes first takes the connection. A burst of new connections (a load balancer
//! reconnecting, a client pool starting) mostly lands on one worker, and a connection stays
//! on the worker that accepted it for its whole life. Measured with wrk's 100 connections on
//! two workers: a split of one third to two thirds in about half the runs. The busier worker's
//! requests then queue behind each other while the other core has spare time, which shows as
//! a higher p99 and lower throughput until the connections close. nginx has the same skew.
//!
//! So the worker that accepts a connection hands it to the worker with the fewest open
//! client connections when that is not itself: the socket leaves this worker's reactor and
//! goes, with its connection-limit permit, through an unbounded channel to the other
//! worker, which registers it with its own reactor and serves it there. That costs a channel
//! send and a wake-up per connection handed over, nothing per request. The open
//! connections are counted per worker in the gauge `strangler_client_connections{worker}`,
//! which doubles as the count the choice is made on.

use std::net::SocketAddr;
use std::sync::Arc;

use prometheus::{IntGauge, IntGaugeVec};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, mpsc};

/// The open client connections of every worker, and where to send each worker new ones.
#[derive(Debug)]
pub struct Balancer {
    /// Open client connections per worker (the worker's index is the position).
    open: Box<[IntGauge]>,
    /// Each worker's inbox of connections handed over to it.
    inboxes: Box<[mpsc::UnboundedSender<Handover>]>,
}

/// A connection one worker accepted and another is to serve.
#[derive(Debug)]
pub struct Handover {
    /// The socket, out of the accepting worker's reactor.
    pub stream: std::net::TcpStream,
    /// The client's address.
    pub peer: SocketAddr,
    /// Its place under `[proxy] max_connections`, if a limit is set.
    pub permit: Option<OwnedSemaphorePermit>,
    /// Counts it as open on the worker it is handed to.
    pub open: OpenConnection,
}

/// Counts one connection as open on a worker until dropped.
#[derive(Debug)]
pub struct OpenConnection {
    gauge: IntGauge,
}

impl OpenConnection {
    fn on(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self { gauge: gauge.clone() }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.gauge.dec();
    }
}

/// One worker's place in the balancer: how it counts its connections, hands others over
/// and receives its own.
#[derive(Debug)]
pub struct Seat {
    balancer: Arc<Balancer>,
    worker: usize,
    /// This worker's open connections (its gauge in the balancer).
    own: IntGauge,
    inbox: mpsc::UnboundedReceiver<Handover>,
}

/// A connection the accepting worker is to serve itself.
#[derive(Debug)]
pub struct Kept {
    /// The connection, still registered with this worker's reactor.
    pub stream: TcpStream,
    /// Its place under `[proxy] max_connections`.
    pub permit: Option<OwnedSemaphorePermit>,
    /// Counts it as open on this worker.
    pub open: OpenConnection,
}

impl Balancer {
    /// A balancer over one worker per gauge (each counts that worker's open connections);
    /// returns each worker's seat, in the gauges' order.
    pub fn seats(open: Vec<IntGauge>) -> Vec<Seat> {
        let (inboxes, receivers): (Vec<_>, Vec<_>) = open.iter().map(|_| mpsc::unbounded_channel()).unzip();
        let balancer = Arc::new(Self {
            open: open.into_boxed_slice(),
            inboxes: inboxes.into_boxed_slice(),
        });
        receivers
            .into_iter()
            .zip(balancer.open.iter().cloned())
            .enumerate()
            .map(|(worker, (inbox, own))| Seat {
                balancer: balancer.clone(),
                worker,
                own,
                inbox,
            })
            .collect()
    }

    /// Seats for `count` workers (at least one), counted in `open{worker}` by index.
    pub fn per_worker(count: usize, open: &IntGaugeVec) -> Vec<Seat> {
        Self::seats(
            (0..count.max(1))
                .map(|worker| open.with_label_values(&[&worker.to_string()]))
                .collect(),
        )
    }

    /// The worker with the fewest open connections; `own` (with `own_open` of them) when
    /// it has no more than any other.
    fn least_busy(&self, own: usize, own_open: i64) -> usize {
        let mut best = own;
        let mut fewest = own_open;
        for (worker, open) in self.open.iter().enumerate() {
            let open = open.get();
            if open < fewest {
                best = worker;
                fewest = open;
            }
        }
        best
    }
}

impl Seat {
    /// This worker's index.
    pub fn worker(&self) -> usize {
        self.worker
    }

    /// Places a connection this worker accepted: keeps it (returned) when no other worker
    /// has fewer open connections, otherwise hands it over (`None`). A connection that
    /// cannot leave this worker's reactor, or whose worker has stopped, is kept.
    pub fn place(&self, stream: TcpStream, peer: SocketAddr, permit: Option<OwnedSemaphorePermit>) -> Option<Kept> {
        let target = self.balancer.least_busy(self.worker, self.own.get());
        let (true, Some(target_open), Some(inbox)) = (
            target != self.worker,
            self.balancer.open.get(target),
            self.balancer.inboxes.get(target),
        ) else {
            return Some(self.keep(stream, permit));
        };
        // Counted on the target at once, so that the next accept, here or on another
        // worker, already sees it there.
        let open = OpenConnection::on(target_open);
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                // Deregistering failed: the socket is unusable on any reactor.
                tracing::debug!(%peer, error = %e, "cannot hand a connection over; closing it");
                return None;
            }
        };
        let handover = Handover {
            stream,
            peer,
            permit,
            open,
        };
        match inbox.send(handover) {
            Ok(()) => None,
            Err(mpsc::error::SendError(handover)) => {
                // The target worker has stopped (shutting down): serve it here after all.
                drop(handover.open);
                match TcpStream::from_std(handover.stream) {
                    Ok(stream) => Some(self.keep(stream, handover.permit)),
                    Err(e) => {
                        tracing::debug!(%peer, error = %e, "cannot take a connection back; closing it");
                        None
                    }
                }
            }
        }
    }

    fn keep(&self, stream: TcpStream, permit: Option<OwnedSemaphorePermit>) -> Kept {
        Kept {
            stream,
            permit,
            open: OpenConnection::on(&self.own),
        }
    }

    /// The next connection another worker handed over to this one, registered with this
    /// worker's reactor. Pending while there is none.
    pub async fn handed_over(&mut self) -> Option<(Kept, SocketAddr)> {
        loop {
            let handover = self.inbox.recv().await?;
            match TcpStream::from_std(handover.stream) {
                Ok(stream) => {
                    let kept = Kept {
                        stream,
                        permit: handover.permit,
                        open: handover.open,
                    };
                    return Some((kept, handover.peer));
                }
                Err(e) => {
                    tracing::debug!(peer = %handover.peer, error = %e, "cannot take over a connection; closing it");
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Three gauges (one per worker) and their seats.
    fn three_workers() -> (Vec<IntGauge>, Vec<Seat>) {
        let gauges: Vec<IntGauge> = (0..3)
            .map(|i| IntGauge::new(format!("open_{i}"), "open connections").unwrap())
            .collect();
        let seats = Balancer::seats(gauges.clone());
        (gauges, seats)
    }

    fn counts(gauges: &[IntGauge]) -> Vec<i64> {
        gauges.iter().map(IntGauge::get).collect()
    }

    /// A fresh loopback connection, as accepted (the client end is returned too, to keep
    /// it open).
    async fn accepted() -> (TcpStream, SocketAddr, TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(listener.local_addr().unwrap()).await.unwrap();
        let (stream, peer) = listener.accept().await.unwrap();
        (stream, peer, client)
    }

    #[tokio::test]
    async fn a_worker_keeps_a_connection_unless_another_has_fewer() {
        let (gauges, mut seats) = three_workers();
        let mut clients = Vec::new();
        let mut kept = Vec::new();

        // All at zero: the accepting worker keeps it.
        let (stream, peer, client) = accepted().await;
        clients.push(client);
        kept.push(seats[1].place(stream, peer, None).expect("kept where accepted"));
        assert_eq!(counts(&gauges), [0, 1, 0]);

        // Worker 1 accepts again: worker 0 has fewer (the first of the least busy).
        let (stream, peer, client) = accepted().await;
        clients.push(client);
        assert!(seats[1].place(stream, peer, None).is_none(), "handed over");
        assert_eq!(counts(&gauges), [1, 1, 0]);
        let (taken, from) = seats[0].handed_over().await.expect("in worker 0's inbox");
        assert_eq!(from, peer);
        assert_eq!(
            taken.stream.peer_addr().unwrap(),
            peer,
            "the same socket, now on worker 0"
        );
        kept.push(taken);

        // Worker 0 accepts: worker 2 has none.
        let (stream, peer, client) = accepted().await;
        clients.push(client);
        assert!(seats[0].place(stream, peer, None).is_none());
        kept.push(seats[2].handed_over().await.expect("in worker 2's inbox").0);
        assert_eq!(counts(&gauges), [1, 1, 1]);

        // Closing connections leaves the count.
        drop(kept);
        assert_eq!(counts(&gauges), [0, 0, 0]);
    }

    #[tokio::test]
    async fn a_connection_travels_with_its_permit() {
        let (gauges, mut seats) = three_workers();
        let limit = Arc::new(tokio::sync::Semaphore::new(2));
        gauges[0].set(5);
        gauges[2].set(5);
        let (stream, peer, _client) = accepted().await;
        let permit = limit.clone().try_acquire_owned().unwrap();
        assert!(seats[0].place(stream, peer, Some(permit)).is_none());
        let (taken, _) = seats[1].handed_over().await.unwrap();
        assert!(taken.permit.is_some());
        assert_eq!(limit.available_permits(), 1, "still held while the connection is open");
        drop(taken);
        assert_eq!(limit.available_permits(), 2);
        assert_eq!(counts(&gauges), [5, 0, 5]);
    }

    #[tokio::test]
    async fn a_connection_for_a_stopped_worker_is_kept() {
        let (gauges, mut seats) = three_workers();
        gauges[0].set(3);
        gauges[1].set(3);
        // Worker 2 (the least busy) has stopped: its inbox is gone.
        drop(seats.pop());
        let (stream, peer, _client) = accepted().await;
        let kept = seats[0].place(stream, peer, None).expect("kept after all");
        assert_eq!(kept.stream.peer_addr().unwrap(), peer);
        assert_eq!(counts(&gauges), [4, 3, 0]);
    }
}
