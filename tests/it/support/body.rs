//! Bodies the tests send and read: small whole ones, and large ones made and counted on
//! the fly without holding them in memory.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};

pub type BoxBody = http_body_util::combinators::BoxBody<Bytes, Box<dyn std::error::Error + Send + Sync>>;

pub fn full(body: impl Into<Bytes>) -> BoxBody {
    Full::new(body.into()).map_err(|never| match never {}).boxed()
}

/// A body of `total` bytes made on the fly, 64 KiB at a time (never held in memory), with
/// no size hint, so it goes out chunked.
#[allow(dead_code)]
pub fn generated_body(total: u64) -> BoxBody {
    struct Generated {
        remaining: u64,
        chunk: Bytes,
    }
    impl hyper::body::Body for Generated {
        type Data = Bytes;
        type Error = Box<dyn std::error::Error + Send + Sync>;
        fn poll_frame(
            mut self: std::pin::Pin<&mut Self>,
            _cx: &mut std::task::Context<'_>,
        ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
            if self.remaining == 0 {
                return std::task::Poll::Ready(None);
            }
            let n = self.remaining.min(self.chunk.len() as u64);
            self.remaining -= n;
            let data = self.chunk.slice(..n as usize);
            std::task::Poll::Ready(Some(Ok(hyper::body::Frame::data(data))))
        }
    }
    let chunk: Bytes = (0..64 * 1024).map(|i| (i % 251) as u8).collect::<Vec<u8>>().into();
    BodyExt::boxed(Generated {
        remaining: total,
        chunk,
    })
}

/// Counts the data bytes of a body without keeping them.
#[allow(dead_code)]
pub async fn count_body_bytes<B>(mut body: B) -> Result<u64, B::Error>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let mut total = 0u64;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame?.data_ref() {
            total += data.len() as u64;
        }
    }
    Ok(total)
}
