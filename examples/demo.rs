//! A self-contained demo: the proxy on `routes.toml`, with a small echo server standing
//! in for every upstream the file names (until the MyThoughts services replace them).
//!
//! `cargo run --example demo [-- routes.toml]`, then open http://127.0.0.1:8000/ and edit
//! routes.toml to watch requests move between upstreams. Ctrl-C stops everything.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let config = PathBuf::from(std::env::args().nth(1).unwrap_or_else(|| "routes.toml".to_owned()));
    let app = {
        let config = config.clone();
        tokio::task::spawn_blocking(move || strangler::App::load(config)).await??
    };
    let snapshot = app.state().snapshot();
    let mut banner = Vec::new();
    for upstream in &snapshot.upstreams {
        let addr: SocketAddr = upstream.authority.as_str().parse()?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| format!("cannot start the echo upstream `{}` on {addr}: {e}", upstream.name))?;
        banner.push(format!(
            "  upstream {:<12} http://{addr}  (echo stand-in)",
            upstream.name
        ));
        tokio::spawn(echo(listener, upstream.name.to_string()));
    }
    let listeners = app.bind().await?;
    let proxy = listeners.proxy.local_addr()?;
    let admin = listeners.admin.local_addr()?;
    println!("strangler demo on {}", config.display());
    println!("  users:    http://{proxy}/   (try /api/thoughts/1 and /thoughts/)");
    println!("  admin:    http://{admin}/admin/routes   metrics: http://{admin}/metrics");
    for line in banner {
        println!("{line}");
    }
    println!("Edit {} to move routes; Ctrl-C stops.", config.display());
    strangler::run(app, listeners, strangler::shutdown_signal()).await?;
    Ok(())
}

/// Answers every request with a line naming this upstream and the request it got.
async fn echo(listener: TcpListener, name: String) {
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let name = name.clone();
        tokio::spawn(async move {
            let service = service_fn(move |request: Request<Incoming>| {
                let text = format!(
                    "{{\"upstream\": \"{name}\", \"method\": \"{}\", \"path\": \"{}\"}}\n",
                    request.method(),
                    request.uri().path()
                );
                async move {
                    let mut response = Response::new(Full::new(Bytes::from(text)));
                    response.headers_mut().insert(
                        http::header::CONTENT_TYPE,
                        http::HeaderValue::from_static("application/json"),
                    );
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}
