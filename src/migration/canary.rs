//! Canary placement: which side of a `canary` route a request goes to.
//!
//! Each request gets a bucket in `0..10 000` from a hash of the route name and a key; it
//! goes to the new upstream when its bucket is below the route's share in basis points.
//! With a sticky key (a cookie, a header, the client address) the bucket is the same for
//! every request of that user, on every replica and across restarts (xxHash64 with a
//! fixed seed), so a user stays on one side; raising the percentage only moves users from
//! legacy to new, never back, because the threshold only grows. Without a sticky key, or
//! when the request lacks it, the key is the request id: random per request.
//!
//! The decision is [`CanarySplit::side`] (pure); its effect, the count in
//! `strangler_canary_requests_total{route,side}`, is [`CanarySplit::count`].

use std::hash::Hasher;
use std::net::IpAddr;

use http::HeaderMap;
use prometheus::{Histogram, IntCounter};
use twox_hash::XxHash64;

use crate::config::{CanaryConfig, StickyKey};
use crate::metrics::{Metrics, PerWorker};

/// Number of buckets: basis points of a percent.
pub const BUCKETS: u32 = 10_000;

/// Which side of a migration a request goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The legacy upstream.
    Legacy,
    /// The new upstream.
    New,
}

/// How a canary route splits its traffic.
#[derive(Debug)]
pub struct CanarySplit {
    /// Share of the new side, in basis points.
    pub basis_points: u32,
    /// What keeps a user on one side.
    pub sticky: Option<StickyKey>,
    /// The new upstream (an index in the snapshot's upstreams).
    pub new: usize,
    /// Duration histogram for this route and its new upstream.
    pub new_duration: PerWorker<Histogram>,
    /// `strangler_canary_requests_total{route, side="legacy"}`
    pub to_legacy: IntCounter,
    /// `strangler_canary_requests_total{route, side="new"}`
    pub to_new: IntCounter,
}

impl CanarySplit {
    /// The split of route `route` whose new upstream is `new_name`, at index `new`.
    pub fn new(route: &str, config: &CanaryConfig, new: usize, new_name: &str, metrics: &Metrics) -> Self {
        Self {
            basis_points: config.basis_points,
            sticky: config.sticky.clone(),
            new,
            new_duration: metrics.request_duration.with_label_values(&[route, new_name]),
            to_legacy: metrics.canary.with_label_values(&[route, "legacy"]),
            to_new: metrics.canary.with_label_values(&[route, "new"]),
        }
    }

    /// The side a request of route `route` goes to (see [`place`]).
    pub fn side(&self, route: &str, headers: &HeaderMap, client: IpAddr, request_id: &[u8]) -> Side {
        if place(
            route,
            self.basis_points,
            self.sticky.as_ref(),
            headers,
            client,
            request_id,
        ) {
            Side::New
        } else {
            Side::Legacy
        }
    }

    /// Counts a request placed on `side`.
    pub fn count(&self, side: Side) {
        match side {
            Side::New => self.to_new.inc(),
            Side::Legacy => self.to_legacy.inc(),
        }
    }
}

/// The bucket of `key` on `route`.
pub fn bucket(route: &str, key: &[u8]) -> u32 {
    let mut hasher = XxHash64::with_seed(0);
    hasher.write(route.as_bytes());
    hasher.write(&[0xff]);
    hasher.write(key);
    (hasher.finish() % u64::from(BUCKETS)) as u32
}

/// Whether a request in `bucket` goes to the new side when the share is `basis_points`.
#[inline]
pub fn goes_to_new(bucket: u32, basis_points: u32) -> bool {
    bucket < basis_points
}

/// Places a request: true for the new upstream.
pub fn place(
    route: &str,
    basis_points: u32,
    sticky: Option<&StickyKey>,
    headers: &HeaderMap,
    client: IpAddr,
    request_id: &[u8],
) -> bool {
    if basis_points == 0 {
        return false;
    }
    if basis_points >= BUCKETS {
        return true;
    }
    let bucket = match sticky {
        Some(StickyKey::ClientIp) => bucket(route, client.to_string().as_bytes()),
        Some(StickyKey::Header(name)) => match headers.get(name) {
            Some(value) => bucket(route, value.as_bytes()),
            None => bucket(route, request_id),
        },
        Some(StickyKey::Cookie(name)) => match cookie(headers, name) {
            Some(value) => bucket(route, value),
            None => bucket(route, request_id),
        },
        None => bucket(route, request_id),
    };
    goes_to_new(bucket, basis_points)
}

/// The value of cookie `name` in the request's `Cookie` headers.
fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a [u8]> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|b| *b == b'=')?;
            (&pair[..eq] == name.as_bytes()).then(|| &pair[eq + 1..])
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distribution_is_within_two_percent_of_the_target() {
        for percent in [1u32, 10, 25, 50, 90] {
            let basis_points = percent * 100;
            let to_new = (0..100_000u32)
                .filter(|i| goes_to_new(bucket("thoughts-api", format!("user-{i}").as_bytes()), basis_points))
                .count() as f64;
            let share = to_new / 100_000.0 * 100.0;
            assert!((share - f64::from(percent)).abs() <= 2.0, "{percent}%: got {share:.2}%");
        }
    }

    #[test]
    fn raising_the_share_only_moves_users_to_new() {
        let keys: Vec<String> = (0..20_000).map(|i| format!("session-{i}")).collect();
        let mut previous: Vec<bool> = vec![false; keys.len()];
        for percent in [0u32, 1, 5, 10, 30, 50, 75, 100] {
            let now: Vec<bool> = keys
                .iter()
                .map(|k| goes_to_new(bucket("r", k.as_bytes()), percent * 100))
                .collect();
            for (i, (before, after)) in previous.iter().zip(&now).enumerate() {
                assert!(!before || *after, "key {i} moved back to legacy at {percent}%");
            }
            previous = now;
        }
        assert!(previous.iter().all(|new| *new), "100% sends everyone to new");
    }

    #[test]
    fn buckets_are_stable_and_route_specific() {
        assert_eq!(bucket("r", b"alice"), bucket("r", b"alice"));
        let differ = (0..100).filter(|i| {
            let key = format!("k{i}");
            bucket("a", key.as_bytes()) != bucket("b", key.as_bytes())
        });
        assert!(differ.count() > 90, "routes should bucket users independently");
        // Fixed seed: the same value on every replica and release.
        assert_eq!(bucket("thoughts-api", b"bruce"), bucket("thoughts-api", b"bruce"));
    }

    #[test]
    fn sticky_cookie_and_header_and_ip() {
        let mut headers = HeaderMap::new();
        headers.insert(http::header::COOKIE, "a=1; session=abc; b=2".parse().unwrap());
        headers.insert("x-user", "u-7".parse().unwrap());
        assert_eq!(cookie(&headers, "session"), Some(&b"abc"[..]));
        assert_eq!(cookie(&headers, "missing"), None);
        let ip: IpAddr = "10.1.2.3".parse().unwrap();
        let by_cookie = StickyKey::Cookie("session".into());
        let by_header = StickyKey::Header(http::HeaderName::from_static("x-user"));
        for basis_points in [1000, 5000, 9000] {
            let expect = goes_to_new(bucket("r", b"abc"), basis_points);
            for id in [&b"id-1"[..], b"id-2", b"id-3"] {
                assert_eq!(place("r", basis_points, Some(&by_cookie), &headers, ip, id), expect);
            }
            let expect = goes_to_new(bucket("r", b"u-7"), basis_points);
            assert_eq!(place("r", basis_points, Some(&by_header), &headers, ip, b"x"), expect);
            let expect = goes_to_new(bucket("r", b"10.1.2.3"), basis_points);
            assert_eq!(
                place("r", basis_points, Some(&StickyKey::ClientIp), &headers, ip, b"x"),
                expect
            );
        }
        assert!(!place("r", 0, None, &headers, ip, b"x"));
        assert!(place("r", BUCKETS, None, &headers, ip, b"x"));
    }
}
