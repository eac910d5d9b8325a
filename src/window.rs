//! Windowed counters: requests, 5xx answers and a duration histogram over time, for the
//! figures that must describe *now* rather than the process's lifetime (a route's current
//! evidence period, its last minute; later the dashboard's history and an autopilot's gates).
//!
//! A [`TimeWindow`] is one series. It keeps a running total since it was made and, every
//! [`TICK`] (5 s) in which it records something, a mark: the total as it stood when the tick
//! began. The last [`TICKS`] (12) marks are kept in a ring; the figures of the last minute
//! are the total minus the mark of the oldest tick in that minute that had traffic. So a
//! recording is a load and three relaxed atomic adds (requests, a duration bucket, perhaps
//! 5xx), plus a copy of the total into a mark once per tick; reading is a sum, off the
//! request path.
//!
//! [`SideWindows`] is a route's pair of series (legacy side, new side), kept one copy
//! ([`SideWindowsShard`]) per proxy worker like the per-worker Prometheus metrics: each
//! worker adds to its own cache lines and clones its own `Arc`. Readers sum the copies.
//! A copy (about 4 KB) is made on its worker's first answer, so that a route without
//! traffic (thousands of shadow routes, many workers) costs a pointer per worker, not a
//! copy; once made, a worker finds its copy with one atomic load.
//!
//! Time is explicit: every function takes `now` (an [`Instant`]) and counts ticks from the
//! window's `origin`, so tests drive the clock by adding durations to an origin. The
//! "last minute" is the ticks `t − 11 ..= t` of the current tick `t`: between 55 and 60
//! seconds, or less while the window is younger than that; readers get the seconds covered
//! to turn counts into rates.
//!
//! Exactness: counts are exact; a mark copied while another thread records on the same
//! series may or may not include that one answer. Each worker records its clients' answers
//! on its own copy, and the shadow thread records a copy's answer on the new side of the
//! copy of the worker that served the client (the legacy side, in shadow): two threads
//! meet on one series only where threads outnumber the copies.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime};

/// Upper bounds (seconds) of the duration buckets: those of
/// `strangler_request_duration_seconds`, so quantiles read the same from both.
pub const DURATION_BOUNDS: [f64; 15] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// The buckets: one per bound and one above the last.
const BUCKETS: usize = DURATION_BOUNDS.len() + 1;

/// The length of a tick, the resolution of the recent window.
pub const TICK: Duration = Duration::from_secs(5);

/// Ticks in the recent window: 12 × 5 s, the last minute.
pub const TICKS: usize = 12;

/// A mark not yet written, or being rewritten.
const NO_TICK: u64 = u64::MAX;

/// Counts of one series over some stretch of time, as plain values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Answers recorded.
    pub requests: u64,
    /// Of which with a 5xx status (or no answer at all).
    pub status_5xx: u64,
    /// Answers by duration bucket (not cumulative): `buckets[i]` counts durations up to
    /// `DURATION_BOUNDS[i]` and above the bound before; the last counts those above 30 s.
    pub buckets: [u64; BUCKETS],
}

impl Tally {
    /// The `q`-quantile of the durations, estimated from the buckets as Prometheus'
    /// `histogram_quantile` does; `None` without observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let mut below = 0;
        let cumulative: Vec<(f64, u64)> = DURATION_BOUNDS
            .iter()
            .zip(self.buckets)
            .map(|(bound, count)| {
                below += count;
                (*bound, below)
            })
            .collect();
        histogram_quantile(q, &cumulative, self.buckets.iter().sum())
    }

    /// These counts plus `other`'s.
    fn plus(mut self, other: &Tally) -> Tally {
        self.requests += other.requests;
        self.status_5xx += other.status_5xx;
        for (mine, theirs) in self.buckets.iter_mut().zip(other.buckets) {
            *mine += theirs;
        }
        self
    }

    /// These counts less `earlier`'s (a mark of the same running total).
    fn since(mut self, earlier: &Tally) -> Tally {
        self.requests = self.requests.saturating_sub(earlier.requests);
        self.status_5xx = self.status_5xx.saturating_sub(earlier.status_5xx);
        for (mine, theirs) in self.buckets.iter_mut().zip(earlier.buckets) {
            *mine = mine.saturating_sub(theirs);
        }
        self
    }
}

/// The bucket of a duration.
fn bucket_of(elapsed: Duration) -> usize {
    let seconds = elapsed.as_secs_f64();
    DURATION_BOUNDS.partition_point(|bound| *bound < seconds)
}

/// A [`Tally`] updated by several threads.
#[derive(Debug, Default)]
struct AtomicTally {
    requests: AtomicU64,
    status_5xx: AtomicU64,
    buckets: [AtomicU64; BUCKETS],
}

impl AtomicTally {
    fn add(&self, bucket: usize, server_error: bool) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if let Some(count) = self.buckets.get(bucket) {
            count.fetch_add(1, Ordering::Relaxed);
        }
        if server_error {
            self.status_5xx.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn load(&self) -> Tally {
        Tally {
            requests: self.requests.load(Ordering::Relaxed),
            status_5xx: self.status_5xx.load(Ordering::Relaxed),
            buckets: std::array::from_fn(|i| self.buckets[i].load(Ordering::Relaxed)),
        }
    }

    fn store(&self, tally: &Tally) {
        self.requests.store(tally.requests, Ordering::Relaxed);
        self.status_5xx.store(tally.status_5xx, Ordering::Relaxed);
        for (count, value) in self.buckets.iter().zip(tally.buckets) {
            count.store(value, Ordering::Relaxed);
        }
    }
}

/// The running total as it stood when tick `tick` began.
#[derive(Debug)]
struct Mark {
    tick: AtomicU64,
    at_start: AtomicTally,
}

impl Default for Mark {
    fn default() -> Self {
        Self {
            tick: AtomicU64::new(NO_TICK),
            at_start: AtomicTally::default(),
        }
    }
}

/// What a window holds at a moment: everything since it was made, and the recent ticks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WindowTally {
    /// Since the window was made.
    pub total: Tally,
    /// Since the start of the oldest tick of the recent window.
    pub recent: Tally,
}

/// One series: a running total and the marks of the last [`TICKS`] ticks with traffic.
#[derive(Debug)]
pub struct TimeWindow {
    /// The latest tick a mark was written for.
    last_tick: AtomicU64,
    total: AtomicTally,
    marks: [Mark; TICKS],
}

impl Default for TimeWindow {
    fn default() -> Self {
        Self {
            last_tick: AtomicU64::new(NO_TICK),
            total: AtomicTally::default(),
            marks: std::array::from_fn(|_| Mark::default()),
        }
    }
}

impl TimeWindow {
    /// Records one answer that took `elapsed`, in tick `tick`. The first answer of a tick
    /// marks the total first; an answer whose tick is older than the latest one (its
    /// recorder read the clock before another moved the window on) counts in the latest.
    pub fn record(&self, tick: u64, elapsed: Duration, server_error: bool) {
        let last = self.last_tick.load(Ordering::Acquire);
        if (last == NO_TICK || tick > last)
            && self
                .last_tick
                .compare_exchange(last, tick, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
        {
            self.mark(tick);
        }
        self.total.add(bucket_of(elapsed), server_error);
    }

    /// Writes the mark of `tick`: the total so far. Readers skip a mark while it is rewritten.
    fn mark(&self, tick: u64) {
        let mark = &self.marks[(tick % TICKS as u64) as usize];
        mark.tick.store(NO_TICK, Ordering::Release);
        mark.at_start.store(&self.total.load());
        mark.tick.store(tick, Ordering::Release);
    }

    /// The counts at tick `tick`: the total, and the recent ticks' (`tick − 11 ..= tick`).
    pub fn read(&self, tick: u64) -> WindowTally {
        let oldest = oldest_recent_tick(tick);
        let mut base: Option<(u64, Tally)> = None;
        for mark in &self.marks {
            let marked = mark.tick.load(Ordering::Acquire);
            if marked == NO_TICK || marked < oldest || base.is_some_and(|(b, _)| b <= marked) {
                continue;
            }
            let at_start = mark.at_start.load();
            // Rewritten meanwhile: a newer tick, not this one.
            if mark.tick.load(Ordering::Acquire) == marked {
                base = Some((marked, at_start));
            }
        }
        let total = self.total.load();
        WindowTally {
            total,
            // No mark in the recent ticks: nothing was recorded in them.
            recent: base.map_or_else(Tally::default, |(_, at_start)| total.since(&at_start)),
        }
    }
}

/// The first tick of the recent window that ends with tick `tick`.
fn oldest_recent_tick(tick: u64) -> u64 {
    tick.saturating_sub(TICKS as u64 - 1)
}

/// The tick `now` falls in, counted from `origin`.
pub fn tick_at(origin: Instant, now: Instant) -> u64 {
    now.saturating_duration_since(origin).as_secs() / TICK.as_secs()
}

/// The time the recent window at `now` covers: from the start of its oldest tick (or the
/// origin) to `now`.
pub fn recent_span(origin: Instant, now: Instant) -> Duration {
    let oldest = oldest_recent_tick(tick_at(origin, now));
    let start = TICK.saturating_mul(u32::try_from(oldest).unwrap_or(u32::MAX));
    now.saturating_duration_since(origin).saturating_sub(start)
}

/// The side of a route an answer counts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowSide {
    /// The route's legacy upstream.
    Legacy,
    /// The route's new upstream (client answers, or shadow copies on a shadow route).
    New,
}

/// One worker's copy of a route's two series. Aligned so that two workers' copies never
/// share a cache line.
#[repr(align(128))]
pub struct SideWindowsShard {
    origin: Instant,
    legacy: TimeWindow,
    new: TimeWindow,
}

impl SideWindowsShard {
    /// Records one answer on `side` that ended at `now` after `elapsed`.
    #[inline]
    pub fn record(&self, side: WindowSide, now: Instant, elapsed: Duration, server_error: bool) {
        self.series(side)
            .record(tick_at(self.origin, now), elapsed, server_error);
    }

    fn series(&self, side: WindowSide) -> &TimeWindow {
        match side {
            WindowSide::Legacy => &self.legacy,
            WindowSide::New => &self.new,
        }
    }
}

/// What [`SideWindows::read`] gives for one side.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct WindowReading {
    /// Counts since the windows were made.
    pub total: Tally,
    /// Counts of the recent window (about the last minute).
    pub recent: Tally,
    /// The time the recent window covers.
    pub recent_span: Duration,
}

/// A route's traffic by side since the windows were made (with its traffic period), and
/// over the last minute.
pub struct SideWindows {
    origin: Instant,
    /// The wall-clock start of what the windows count (the period's `since`).
    since: SystemTime,
    /// One slot per worker, filled with its copy on the worker's first answer.
    shards: Box<[OnceLock<Arc<SideWindowsShard>>]>,
}

/// A route's (or a request's) debug output names the windows, not their thousands of counters.
impl std::fmt::Debug for SideWindowsShard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SideWindowsShard")
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for SideWindows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SideWindows")
            .field("origin", &self.origin)
            .field("since", &self.since)
            .field("copies", &self.shards.len())
            .field("allocated", &self.allocated_copies())
            .finish_non_exhaustive()
    }
}

impl SideWindows {
    /// Windows starting now, counting a period that started at `since` (on the wall
    /// clock), with `shards` copies (one per proxy worker; at least one).
    pub fn new(since: SystemTime, shards: usize) -> Self {
        Self {
            since,
            ..Self::starting_at(Instant::now(), shards)
        }
    }

    /// Windows whose ticks count from `origin` (a period starting now on the wall clock).
    pub fn starting_at(origin: Instant, shards: usize) -> Self {
        let shards = (0..shards.max(1)).map(|_| OnceLock::new()).collect();
        Self {
            origin,
            since: SystemTime::now(),
            shards,
        }
    }

    /// When the period these windows count started, on the wall clock.
    pub fn since(&self) -> SystemTime {
        self.since
    }

    /// The calling worker's copy (threads beyond the copies share them), made on its
    /// first use.
    #[inline]
    pub fn here(&self) -> &Arc<SideWindowsShard> {
        // `starting_at` makes at least one slot.
        let slot = &self.shards[crate::worker::worker_index() % self.shards.len()];
        slot.get_or_init(|| {
            Arc::new(SideWindowsShard {
                origin: self.origin,
                legacy: TimeWindow::default(),
                new: TimeWindow::default(),
            })
        })
    }

    /// How many workers' copies have been made (those of workers that recorded something).
    pub fn allocated_copies(&self) -> usize {
        self.shards.iter().filter(|slot| slot.get().is_some()).count()
    }

    /// The figures of `side` at `now`, summed over the copies made.
    pub fn read(&self, side: WindowSide, now: Instant) -> WindowReading {
        let tick = tick_at(self.origin, now);
        let (total, recent) = self
            .shards
            .iter()
            .filter_map(OnceLock::get)
            .map(|shard| shard.series(side).read(tick))
            .fold((Tally::default(), Tally::default()), |(total, recent), read| {
                (total.plus(&read.total), recent.plus(&read.recent))
            });
        WindowReading {
            total,
            recent,
            recent_span: recent_span(self.origin, now),
        }
    }
}

/// The `q`-quantile (0 to 1) of a histogram, like Prometheus' `histogram_quantile`: find
/// the bucket that holds the rank `q × count` and interpolate linearly inside it (the
/// first bucket starts at 0). `cumulative` lists the finite buckets as `(upper bound,
/// cumulative count)` in ascending order; `count` includes the implicit `+Inf` bucket.
/// A rank beyond the last finite bucket gives that bucket's upper bound. `None` without
/// observations.
pub fn histogram_quantile(q: f64, cumulative: &[(f64, u64)], count: u64) -> Option<f64> {
    if count == 0 || cumulative.is_empty() || q.is_nan() {
        return None;
    }
    let rank = q.clamp(0.0, 1.0) * count as f64;
    let Some(index) = cumulative.iter().position(|(_, c)| *c as f64 >= rank) else {
        return cumulative.last().map(|(upper, _)| *upper);
    };
    let (end, below_end) = cumulative[index];
    if index == 0 && end <= 0.0 {
        return Some(end);
    }
    let (start, below_start) = match index {
        0 => (0.0, 0),
        _ => cumulative[index - 1],
    };
    let in_bucket = below_end.saturating_sub(below_start);
    if in_bucket == 0 {
        return Some(start);
    }
    Some(start + (end - start) * (rank - below_start as f64) / in_bucket as f64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::as_worker;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn secs(n: u64) -> Duration {
        Duration::from_secs(n)
    }

    #[test]
    fn quantile_interpolates_within_the_bucket() {
        // 10 observations ≤ 0.1, 10 more in (0.1, 0.2], none above.
        let buckets = [(0.1, 10), (0.2, 20), (0.5, 20)];
        assert!(close(histogram_quantile(0.5, &buckets, 20), 0.1));
        assert!(close(histogram_quantile(0.25, &buckets, 20), 0.05));
        assert!(close(histogram_quantile(0.75, &buckets, 20), 0.15));
        assert!(close(histogram_quantile(1.0, &buckets, 20), 0.2));
        assert!(close(histogram_quantile(0.0, &buckets, 20), 0.0));
        // Out-of-range quantiles are clamped.
        assert!(close(histogram_quantile(7.0, &buckets, 20), 0.2));
    }

    #[test]
    fn quantile_in_the_inf_bucket_is_the_last_finite_bound() {
        // 4 observations ≤ 1, 6 above every finite bound.
        let buckets = [(0.5, 2), (1.0, 4)];
        assert!(close(histogram_quantile(0.99, &buckets, 10), 1.0));
        assert!(close(histogram_quantile(0.3, &buckets, 10), 0.75));
    }

    #[test]
    fn quantile_of_nothing_is_none() {
        assert_eq!(histogram_quantile(0.5, &[(0.1, 0), (1.0, 0)], 0), None);
        assert_eq!(histogram_quantile(0.5, &[], 3), None);
        assert_eq!(histogram_quantile(f64::NAN, &[(0.1, 1)], 1), None);
        assert_eq!(Tally::default().quantile(0.5), None);
    }

    #[test]
    fn durations_fall_in_the_prometheus_buckets() {
        assert_eq!(bucket_of(Duration::ZERO), 0);
        assert_eq!(bucket_of(Duration::from_micros(500)), 0, "a bound is inclusive");
        assert_eq!(bucket_of(Duration::from_micros(501)), 1);
        assert_eq!(bucket_of(ms(3)), 3);
        assert_eq!(bucket_of(secs(30)), 14);
        assert_eq!(bucket_of(secs(31)), 15, "above every bound");
    }

    #[test]
    fn a_tally_estimates_its_quantiles_from_its_buckets() {
        let window = TimeWindow::default();
        for _ in 0..98 {
            window.record(0, ms(3), false); // (0.0025, 0.005]
        }
        window.record(0, ms(200), true); // (0.1, 0.25]
        window.record(0, ms(300), true); // (0.25, 0.5]
        let total = window.read(0).total;
        assert_eq!((total.requests, total.status_5xx), (100, 2));
        // rank 50 of 98 in (0.0025, 0.005]: 0.0025 + 0.0025 × 50/98, as Prometheus says.
        assert!(close(total.quantile(0.5), 0.0025 + 0.0025 * 50.0 / 98.0));
        assert!(close(total.quantile(0.99), 0.25));
    }

    #[test]
    fn the_recent_window_holds_the_last_twelve_ticks() {
        let window = TimeWindow::default();
        window.record(0, ms(1), false);
        window.record(0, ms(1), true);
        window.record(3, ms(1), false);
        window.record(11, ms(1), false);
        let at = |tick| window.read(tick);
        assert_eq!(at(11).recent.requests, 4, "ticks 0 to 11 are the last minute");
        assert_eq!(at(11).recent.status_5xx, 1);
        // One tick on, tick 0 leaves the window; the mark of tick 3 is the base.
        assert_eq!(at(12).recent.requests, 2);
        assert_eq!(at(12).recent.status_5xx, 0);
        assert_eq!(at(15).recent.requests, 1);
        assert_eq!(at(22).recent.requests, 1, "tick 11 is still in ticks 11..=22");
        assert_eq!(at(23).recent, Tally::default(), "a quiet minute");
        assert_eq!(at(23).total.requests, 4, "the total stays");
    }

    #[test]
    fn marks_are_reused_round_the_ring() {
        let window = TimeWindow::default();
        // One answer per tick for 40 ticks: the ring wraps three times.
        for tick in 0..40 {
            window.record(tick, ms(1), tick % 2 == 0);
        }
        let read = window.read(39);
        assert_eq!(read.total.requests, 40);
        assert_eq!(read.recent.requests, 12, "ticks 28..=39");
        assert_eq!(read.recent.status_5xx, 6);
        // A quiet stretch, then traffic again: only the new answers are recent.
        window.record(60, ms(1), false);
        assert_eq!(window.read(60).recent.requests, 1);
        assert_eq!(window.read(61).recent.requests, 1);
    }

    #[test]
    fn a_late_recorder_counts_in_the_latest_tick() {
        let window = TimeWindow::default();
        window.record(5, ms(1), false);
        window.record(20, ms(1), false);
        // A recorder that read the clock before tick 20 began: no mark rewritten.
        window.record(19, ms(1), false);
        assert_eq!(window.read(20).recent.requests, 2);
        assert_eq!(window.read(20).total.requests, 3);
    }

    #[test]
    fn the_recent_span_grows_to_a_minute_and_stays_near_it() {
        let origin = Instant::now();
        assert_eq!(recent_span(origin, origin), Duration::ZERO);
        assert_eq!(recent_span(origin, origin + secs(30)), secs(30));
        assert_eq!(recent_span(origin, origin + secs(59)), secs(59));
        // At 60 s tick 12 starts and tick 0 leaves: 55 s.
        assert_eq!(recent_span(origin, origin + secs(60)), secs(55));
        assert_eq!(recent_span(origin, origin + ms(64_900)), ms(59_900));
        assert_eq!(recent_span(origin, origin + secs(3600)), secs(55));
        assert_eq!(tick_at(origin, origin + ms(4_999)), 0);
        assert_eq!(tick_at(origin, origin + secs(5)), 1);
        assert_eq!(tick_at(origin + secs(1), origin), 0, "before the origin");
    }

    #[test]
    fn sides_are_summed_over_the_worker_copies() {
        let origin = Instant::now();
        let windows = SideWindows::starting_at(origin, 3);
        for worker in 0..5 {
            as_worker(worker, || {
                let shard = windows.here();
                shard.record(WindowSide::Legacy, origin + secs(1), ms(2), false);
                shard.record(WindowSide::New, origin + secs(2), ms(20), worker == 4);
            });
        }
        // Worker 0's copy is not worker 1's.
        let copies = as_worker(0, || windows.here().clone());
        assert!(!Arc::ptr_eq(&copies, as_worker(1, || windows.here())));
        let at_10s = windows.read(WindowSide::Legacy, origin + secs(10));
        assert_eq!((at_10s.total.requests, at_10s.recent.requests), (5, 5));
        assert_eq!(at_10s.recent_span, secs(10));
        let new = windows.read(WindowSide::New, origin + secs(10));
        assert_eq!((new.total.requests, new.total.status_5xx), (5, 1));
        assert!(close(new.total.quantile(0.5), 0.0175), "{:?}", new.total.quantile(0.5));

        as_worker(1, || {
            windows
                .here()
                .record(WindowSide::Legacy, origin + secs(70), ms(2), true)
        });
        // At 72 s the first five are older than the last minute; the one at 70 s is not.
        let later = windows.read(WindowSide::Legacy, origin + secs(72));
        assert_eq!((later.total.requests, later.recent.requests), (6, 1));
        assert_eq!((later.total.status_5xx, later.recent.status_5xx), (1, 1));
        assert_eq!(later.recent_span, secs(57));
        assert_eq!(
            windows.read(WindowSide::New, origin + secs(72)).recent,
            Tally::default()
        );
    }

    #[test]
    fn a_worker_s_copy_is_made_on_its_first_answer() {
        let origin = Instant::now();
        let windows = SideWindows::starting_at(origin, 16);
        assert_eq!(windows.allocated_copies(), 0, "no traffic, no copy");
        let empty = windows.read(WindowSide::Legacy, origin + secs(1));
        assert_eq!((empty.total, empty.recent), (Tally::default(), Tally::default()));
        // A route of 16 slots without copies costs a few bytes per worker.
        assert!(std::mem::size_of::<OnceLock<Arc<SideWindowsShard>>>() <= 16);
        for worker in [3, 3, 7] {
            as_worker(worker, || {
                windows.here().record(WindowSide::New, origin + secs(1), ms(1), false)
            });
        }
        assert_eq!(windows.allocated_copies(), 2, "workers 3 and 7");
        let first = as_worker(3, || windows.here().clone());
        assert!(Arc::ptr_eq(&first, as_worker(3, || windows.here())), "made once");
        assert_eq!(windows.read(WindowSide::New, origin + secs(2)).total.requests, 3);
    }

    #[test]
    fn copies_do_not_share_cache_lines() {
        assert!(std::mem::align_of::<SideWindowsShard>() >= 128);
        // The size of a route's copy per worker, for the record (two series).
        assert!(std::mem::size_of::<SideWindowsShard>() < 8 * 1024);
    }
}
