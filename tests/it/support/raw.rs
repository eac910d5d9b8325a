//! Raw HTTP/1.1 over TCP: requests a hyper client would not send as written (odd targets,
//! hop-by-hop headers, `Expect`, upgrades, stalls, smuggling attempts) and responses read
//! byte by byte.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long a raw read may wait before the test fails.
pub const RAW_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Sends raw bytes on a fresh connection and reads until the server closes it or 5 s pass.
pub async fn raw(addr: SocketAddr, bytes: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut out)).await;
    String::from_utf8_lossy(&out).into_owned()
}

/// A response read off a raw connection.
#[derive(Debug, Clone)]
pub struct RawResponse {
    pub status: u16,
    /// Header names lower-cased, in arrival order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers.iter().find(|(k, _)| *k == name).map(|(_, v)| v.as_str())
    }

    pub fn has_header(&self, name: &str) -> bool {
        self.header(name).is_some()
    }

    pub fn body_text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body_text()))
    }
}

/// A raw client connection with a read buffer, for requests a hyper client would not
/// send as written (odd paths, hop-by-hop headers, `Expect`, upgrades, stalls).
pub struct RawConn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl RawConn {
    pub async fn connect(addr: SocketAddr) -> RawConn {
        RawConn {
            stream: TcpStream::connect(addr).await.unwrap(),
            buf: Vec::new(),
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
    }

    /// Reads more bytes into the buffer; false at EOF or on a read error.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        match tokio::time::timeout(RAW_READ_TIMEOUT, self.stream.read(&mut chunk)).await {
            Err(_) => panic!("no bytes from the server within {RAW_READ_TIMEOUT:?}"),
            Ok(Ok(0)) | Ok(Err(_)) => false,
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    /// Reads one response head (status line and headers); panics on EOF or timeout.
    pub async fn read_head(&mut self) -> (u16, Vec<(String, String)>) {
        let end = loop {
            if let Some(at) = self.buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            assert!(
                self.fill().await,
                "connection closed before a response head; got {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        };
        let head = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..end + 4);
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
        let headers = lines
            .filter_map(|line| line.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        (status, headers)
    }

    /// Reads exactly `n` bytes (after whatever is buffered).
    pub async fn read_exact_bytes(&mut self, n: usize) -> Vec<u8> {
        while self.buf.len() < n {
            assert!(
                self.fill().await,
                "connection closed after {} of {n} bytes",
                self.buf.len()
            );
        }
        self.buf.drain(..n).collect()
    }

    async fn read_line(&mut self) -> String {
        loop {
            if let Some(at) = self.buf.windows(2).position(|w| w == b"\r\n") {
                let line = String::from_utf8_lossy(&self.buf[..at]).into_owned();
                self.buf.drain(..at + 2);
                return line;
            }
            assert!(self.fill().await, "connection closed inside a chunked body");
        }
    }

    /// Reads one whole response: head, then a Content-Length, chunked or until-EOF body.
    pub async fn read_response(&mut self) -> RawResponse {
        let (status, headers) = self.read_head().await;
        let find = |name: &str| headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone());
        let body = if status < 200 || status == 204 || status == 304 {
            Vec::new()
        } else if let Some(len) = find("content-length") {
            self.read_exact_bytes(len.parse().unwrap()).await
        } else if find("transfer-encoding").is_some_and(|te| te.eq_ignore_ascii_case("chunked")) {
            let mut body = Vec::new();
            loop {
                let size_line = self.read_line().await;
                let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16).unwrap();
                if size == 0 {
                    // Trailers, then the blank line.
                    while !self.read_line().await.is_empty() {}
                    break;
                }
                body.extend(self.read_exact_bytes(size).await);
                assert_eq!(self.read_line().await, "", "chunk not followed by CRLF");
            }
            body
        } else {
            while self.fill().await {}
            std::mem::take(&mut self.buf)
        };
        RawResponse { status, headers, body }
    }

    /// Waits (up to `limit`) for the server to close the connection; returns what it sent
    /// before closing, or None if it was still open after `limit`.
    pub async fn closed_within(&mut self, limit: Duration) -> Option<Vec<u8>> {
        let mut chunk = [0u8; 4096];
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            match tokio::time::timeout_at(deadline, self.stream.read(&mut chunk)).await {
                Err(_) => return None,
                Ok(Ok(0)) | Ok(Err(_)) => return Some(std::mem::take(&mut self.buf)),
                Ok(Ok(n)) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }
}

/// Sends `bytes` on a fresh connection and reads one response. Write errors are ignored:
/// a server may answer (431, 400) and close before it has read everything.
pub async fn raw_response(addr: SocketAddr, bytes: &[u8]) -> RawResponse {
    let mut conn = RawConn::connect(addr).await;
    let _ = conn.stream.write_all(bytes).await;
    conn.read_response().await
}

/// `GET {target}` with a Host and `Connection: close`, as raw bytes.
pub fn get_request(target: &str) -> Vec<u8> {
    format!("GET {target} HTTP/1.1\r\nHost: app.example\r\nConnection: close\r\n\r\n").into_bytes()
}

/// For an upstream written on a raw socket: reads `stream` up to the end of a request head;
/// `None` when the peer closes first (or the read fails).
pub async fn read_request_head(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut request = Vec::new();
    let mut buffer = [0u8; 4096];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return None,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    Some(request)
}
