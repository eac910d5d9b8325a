//! Serving an already-bound listener until a shutdown future completes, then draining for a bounded time.
//! Every MyThoughts binary serves the same way, so this lives in [`mythoughts_common::server`]; re-exported
//! here under its old path.

pub use mythoughts_common::server::{DRAIN_TIMEOUT, serve, shutdown_signal};
