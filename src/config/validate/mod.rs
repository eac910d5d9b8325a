//! Raw sections ([`super::raw`]) to validated types ([`super::model`]), one file per
//! section. Every check pushes its problem at the offending value's position into the
//! collector ([`super::error`]) and goes on, so that one run reports every problem; a section
//! with problems yields `None`.
//!
//! ```text
//! proxy.rs     [proxy]             -> ProxySettings   (tls.rs for [proxy.tls])
//! upstream.rs  [upstreams.NAME]    -> UpstreamConfig  (tls.rs for ca_file, client_cert/key)
//! route.rs     [[routes]]          -> RouteConfig     (path.rs, methods.rs, canary.rs,
//!                                                      fallback.rs, shadow.rs,
//!                                                      forwarding.rs)
//! record.rs    [record]            -> RecordConfig
//! error_pages.rs [proxy] error_bodies, [proxy.error_pages] (for proxy.rs)
//! tracing.rs   [tracing]           -> TracingConfig
//! values.rs    counts, shares, durations, addresses, names: shared by all of them
//! ```

mod canary;
mod error_pages;
mod fallback;
mod forwarding;
mod methods;
mod path;
mod proxy;
mod record;
mod route;
mod shadow;
mod tls;
mod tracing;
mod upstream;
mod values;

pub use forwarding::base_path_problem;
pub(super) use proxy::validate_proxy;
pub use proxy::{DEFAULT_ADMIN_LISTEN, DEFAULT_LISTEN};
pub(super) use record::validate_record;
pub(super) use route::validate_route;
pub(super) use tracing::validate_tracing;
pub(super) use upstream::validate_upstream;
pub use values::parse_duration;
