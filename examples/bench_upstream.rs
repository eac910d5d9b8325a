//! A minimal, fast HTTP/1.1 upstream used by `bench/run.sh`.
//!
//! Every request is answered with `200 OK`, `content-type: text/plain` and a
//! small fixed body; any request body is read and discarded. Connections are
//! kept alive. Once the listener is bound, exactly one line
//! `listening on ADDR` is printed (and flushed) to stdout so that a script can
//! learn the port when started with `--listen 127.0.0.1:0` (the default).
//!
//! ```text
//! cargo run --release --example bench_upstream -- --listen 127.0.0.1:0
//! ```

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

const BODY: &[u8] = b"hello from the upstream\n";
const DEFAULT_LISTEN: &str = "127.0.0.1:0";

type BoxError = Box<dyn std::error::Error + Send + Sync>;

fn usage() -> String {
    format!(
        "usage: bench_upstream [--listen ADDR]\n\n  --listen ADDR  address to bind (default {DEFAULT_LISTEN}; port 0 picks a free port)\n"
    )
}

/// Parses the command line; returns the address to listen on.
fn parse_args() -> Result<SocketAddr, BoxError> {
    let mut listen = DEFAULT_LISTEN.to_owned();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        if arg == "--listen" {
            listen = args
                .next()
                .ok_or_else(|| format!("--listen needs a value\n{}", usage()))?;
        } else if let Some(value) = arg.strip_prefix("--listen=") {
            value.clone_into(&mut listen);
        } else if arg == "-h" || arg == "--help" {
            print!("{}", usage());
            std::process::exit(0);
        } else {
            return Err(format!("unknown argument {arg:?}\n{}", usage()).into());
        }
    }
    listen
        .parse()
        .map_err(|e| format!("invalid --listen address {listen:?}: {e}").into())
}

async fn handle(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    // Drain the request body frame by frame without buffering it. A body that
    // fails mid-way still gets an answer; hyper closes the connection then.
    let mut body = req.into_body();
    while let Some(frame) = body.frame().await {
        if frame.is_err() {
            break;
        }
    }
    let mut resp = Response::new(Full::new(Bytes::from_static(BODY)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    Ok(resp)
}

fn main() -> ExitCode {
    // `run` returns errors instead of panicking; print them readably (Display,
    // not the Debug form a `main() -> Result` would use) and exit non-zero.
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench_upstream: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<(), BoxError> {
    let addr = parse_args()?;
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?
        .block_on(serve(addr))
}

async fn serve(addr: SocketAddr) -> Result<(), BoxError> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|e| format!("cannot bind {addr}: {e}"))?;
    let local = listener.local_addr()?;
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening on {local}")?;
        out.flush()?;
    }

    loop {
        let (stream, _peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(conn) => conn,
                Err(e) => {
                    // E.g. EMFILE under heavy load: back off briefly, keep serving.
                    eprintln!("bench_upstream: accept error: {e}");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            },
            _ = tokio::signal::ctrl_c() => break,
        };
        // Best effort: small responses should not wait for Nagle.
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            // Errors here are clients going away (e.g. wrk stopping mid-request);
            // nothing useful to report for a benchmark upstream.
            let _ = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
    Ok(())
}
