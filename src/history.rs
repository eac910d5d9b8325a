//! The last hour of each route's traffic, minute by minute: what the dashboard draws as
//! sparklines (`GET /admin/history`). In memory only, no external store.
//!
//! A [`HistoryRing`] holds one route's minutes: per side (legacy, new), the answers, the
//! 5xx answers and the duration buckets of each minute (a [`Tally`]), so a minute's
//! requests per second, 5xx and p99 can be read back. Minutes are whole minutes of the
//! wall clock (UTC), counted from the Unix epoch; the ring keeps at most [`BUCKETS`] (60)
//! of them, the current, partial one included, and drops the older ones as time moves on.
//! A minute without traffic costs nothing: the ring stores only minutes something was
//! added to, and reads give zeros for the others.
//!
//! [`TrafficHistory`] fills the rings from the counters the proxy already keeps: each
//! route's [`SideWindows`], whose running totals only grow while the route's traffic
//! period lasts. Every [`SAMPLE_EVERY`] (and before each read) the admin API hands it the
//! routes of the table in force; it adds what each route's windows counted since the last
//! sample to the current minute. So nothing is added to the request path, and a sample
//! late by a few seconds moves answers by those seconds at most. A reload that gives a
//! route new windows (a new traffic period) is seen by the windows' identity: the old
//! windows' last counts are taken, then the new ones are followed from zero. A route the
//! table no longer has is forgotten; a route that stays (changed or not) keeps its ring,
//! so a flip shows as the traffic moving from one line to the other.
//!
//! Memory is bounded: a ring holds at most 60 minutes × 2 sides × 18 counters (8 bytes
//! each), about 17 KB per route with traffic in every minute of the hour, plus one
//! reading of its windows (300 bytes) to take differences from.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::window::{SideWindows, Tally, WindowSide};

/// The length of a bucket.
pub const BUCKET: Duration = Duration::from_secs(60);

/// Buckets kept: the last hour, the current minute included.
pub const BUCKETS: usize = 60;

/// How often the windows are sampled into the rings.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(5);

/// The minute `at` falls in, counted from the Unix epoch (0 for times before it).
pub fn minute_of(at: SystemTime) -> u64 {
    at.duration_since(UNIX_EPOCH).unwrap_or_default().as_secs() / BUCKET.as_secs()
}

/// The start of minute `minute`.
pub fn start_of(minute: u64) -> SystemTime {
    UNIX_EPOCH + BUCKET.saturating_mul(u32::try_from(minute).unwrap_or(u32::MAX))
}

/// One minute of a route: what each side answered in it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Minute {
    /// Which minute, counted from the Unix epoch.
    pub minute: u64,
    /// Answers of the legacy upstream.
    pub legacy: Tally,
    /// Answers of the new upstream (in shadow: the copies).
    pub new: Tally,
}

impl Minute {
    fn side_mut(&mut self, side: WindowSide) -> &mut Tally {
        match side {
            WindowSide::Legacy => &mut self.legacy,
            WindowSide::New => &mut self.new,
        }
    }
}

/// `into` plus `more`.
fn add_to(into: &mut Tally, more: &Tally) {
    into.requests = into.requests.saturating_add(more.requests);
    into.status_5xx = into.status_5xx.saturating_add(more.status_5xx);
    for (mine, theirs) in into.buckets.iter_mut().zip(more.buckets) {
        *mine = mine.saturating_add(theirs);
    }
}

/// `later` less `earlier` (two readings of one running total).
fn difference(later: &Tally, earlier: &Tally) -> Tally {
    let mut delta = *later;
    delta.requests = later.requests.saturating_sub(earlier.requests);
    delta.status_5xx = later.status_5xx.saturating_sub(earlier.status_5xx);
    for (mine, theirs) in delta.buckets.iter_mut().zip(earlier.buckets) {
        *mine = mine.saturating_sub(theirs);
    }
    delta
}

/// A route's last hour, minute by minute.
#[derive(Debug, Clone)]
pub struct HistoryRing {
    /// When the history began (the route appeared, or the proxy started).
    started: SystemTime,
    /// The minutes something was added to, oldest first; at most [`BUCKETS`], none older
    /// than [`BUCKETS`] − 1 minutes before the newest.
    minutes: VecDeque<Minute>,
}

impl HistoryRing {
    /// An empty ring whose history begins at `started`.
    pub fn new(started: SystemTime) -> Self {
        Self {
            started,
            minutes: VecDeque::with_capacity(BUCKETS),
        }
    }

    /// When the history began.
    pub fn started(&self) -> SystemTime {
        self.started
    }

    /// Adds `answers` of `side` to minute `minute`. A minute older than the newest one
    /// (the wall clock went back) counts in the newest.
    pub fn add(&mut self, minute: u64, side: WindowSide, answers: &Tally) {
        if answers.requests == 0 {
            return;
        }
        match self.minutes.back_mut() {
            Some(newest) if newest.minute >= minute => add_to(newest.side_mut(side), answers),
            _ => {
                let mut fresh = Minute {
                    minute,
                    ..Minute::default()
                };
                add_to(fresh.side_mut(side), answers);
                self.minutes.push_back(fresh);
                self.forget_before(first_kept(minute));
            }
        }
    }

    /// Drops the minutes before `first`.
    fn forget_before(&mut self, first: u64) {
        while self.minutes.front().is_some_and(|oldest| oldest.minute < first) {
            self.minutes.pop_front();
        }
    }

    /// Every minute of the last hour at minute `now` (the current one included, oldest
    /// first) since the one the history began in: zeros where nothing was added.
    pub fn last_hour(&self, now: u64) -> Vec<Minute> {
        let first = first_kept(now).max(minute_of(self.started)).min(now);
        let mut stored = self.minutes.iter().filter(|m| m.minute >= first).peekable();
        (first..=now)
            .map(|minute| match stored.next_if(|m| m.minute <= minute) {
                // A minute newer than `now` (the clock went back) is not in `first..=now`.
                Some(kept) => Minute { minute, ..*kept },
                None => Minute {
                    minute,
                    ..Minute::default()
                },
            })
            .collect()
    }

    /// Minutes stored (those something was added to).
    pub fn stored(&self) -> usize {
        self.minutes.len()
    }
}

/// The oldest minute of the hour that ends with minute `now`.
fn first_kept(now: u64) -> u64 {
    now.saturating_sub(BUCKETS as u64 - 1)
}

/// What a route's windows had counted at the last sample.
#[derive(Debug)]
struct Reading {
    windows: Arc<SideWindows>,
    legacy: Tally,
    new: Tally,
}

impl Reading {
    fn of(windows: &Arc<SideWindows>, now: Instant) -> Self {
        Self {
            windows: windows.clone(),
            legacy: windows.read(WindowSide::Legacy, now).total,
            new: windows.read(WindowSide::New, now).total,
        }
    }
}

/// A route's ring and the reading its next sample takes differences from.
#[derive(Debug)]
struct Followed {
    ring: HistoryRing,
    last: Option<Reading>,
}

impl Followed {
    /// Adds to minute `minute` what `windows` counted since the last reading (all of it
    /// for windows not seen before, and what the previous windows counted after it).
    fn sample(&mut self, windows: &Arc<SideWindows>, now: Instant, minute: u64) {
        let reading = Reading::of(windows, now);
        let zero = Tally::default();
        let (legacy_base, new_base) = match self.last.take() {
            Some(last) if Arc::ptr_eq(&last.windows, windows) => (last.legacy, last.new),
            Some(last) => {
                // New windows: the old ones' counts since the last reading, then the new
                // ones' from zero.
                let old = Reading::of(&last.windows, now);
                self.ring
                    .add(minute, WindowSide::Legacy, &difference(&old.legacy, &last.legacy));
                self.ring.add(minute, WindowSide::New, &difference(&old.new, &last.new));
                (zero, zero)
            }
            None => (zero, zero),
        };
        self.ring
            .add(minute, WindowSide::Legacy, &difference(&reading.legacy, &legacy_base));
        self.ring
            .add(minute, WindowSide::New, &difference(&reading.new, &new_base));
        self.last = Some(reading);
    }
}

/// Every route's last hour, by route name.
#[derive(Debug, Default)]
pub struct TrafficHistory {
    routes: HashMap<Arc<str>, Followed>,
}

impl TrafficHistory {
    /// Adds what each of `routes` (name, windows: the table in force) counted since the
    /// last sample to the minute of `wall`, reading the windows at `now` (the same moment);
    /// forgets the routes not among them.
    pub fn sample<'r>(
        &mut self,
        routes: impl IntoIterator<Item = (&'r Arc<str>, &'r Arc<SideWindows>)>,
        now: Instant,
        wall: SystemTime,
    ) {
        let minute = minute_of(wall);
        let mut present = HashSet::new();
        for (name, windows) in routes {
            let followed = self.routes.entry(name.clone()).or_insert_with(|| Followed {
                ring: HistoryRing::new(wall),
                last: None,
            });
            followed.sample(windows, now, minute);
            present.insert(name.clone());
        }
        self.routes.retain(|name, _| present.contains(name));
    }

    /// The ring of route `name`, if it is followed.
    pub fn ring(&self, name: &str) -> Option<&HistoryRing> {
        self.routes.get(name).map(|followed| &followed.ring)
    }

    /// How many routes are followed.
    pub fn len(&self) -> usize {
        self.routes.len()
    }

    /// Whether no route is followed.
    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::worker::as_worker;

    /// `requests` answers of `millis` each, `errors` of them 5xx.
    fn answers(requests: u64, errors: u64, millis: u64) -> Tally {
        let mut tally = Tally {
            requests,
            status_5xx: errors,
            ..Tally::default()
        };
        let seconds = millis as f64 / 1000.0;
        let bucket = crate::window::DURATION_BOUNDS.partition_point(|bound| *bound < seconds);
        tally.buckets[bucket] = requests;
        tally
    }

    fn at_minute(minute: u64, second: u64) -> SystemTime {
        start_of(minute) + Duration::from_secs(second)
    }

    #[test]
    fn minutes_are_whole_minutes_of_the_wall_clock() {
        assert_eq!(minute_of(UNIX_EPOCH + Duration::from_secs(119)), 1);
        assert_eq!(minute_of(UNIX_EPOCH + Duration::from_secs(120)), 2);
        assert_eq!(start_of(2), UNIX_EPOCH + Duration::from_secs(120));
        assert_eq!(minute_of(UNIX_EPOCH - Duration::from_secs(5)), 0);
    }

    #[test]
    fn a_minute_collects_its_answers_and_the_next_minute_rolls_over() {
        let mut ring = HistoryRing::new(at_minute(100, 30));
        ring.add(100, WindowSide::Legacy, &answers(3, 1, 2));
        ring.add(100, WindowSide::Legacy, &answers(2, 0, 2));
        ring.add(100, WindowSide::New, &answers(4, 0, 40));
        ring.add(101, WindowSide::Legacy, &answers(7, 0, 2));
        let hour = ring.last_hour(102);
        assert_eq!(hour.iter().map(|m| m.minute).collect::<Vec<_>>(), [100, 101, 102]);
        assert_eq!((hour[0].legacy.requests, hour[0].legacy.status_5xx), (5, 1));
        assert_eq!(hour[0].new.requests, 4);
        assert_eq!((hour[1].legacy.requests, hour[1].new.requests), (7, 0));
        // The current minute, nothing in it yet.
        assert_eq!(
            hour[2],
            Minute {
                minute: 102,
                ..Minute::default()
            }
        );
        // A late sample of an older minute counts in the newest.
        ring.add(100, WindowSide::Legacy, &answers(1, 0, 2));
        assert_eq!(ring.last_hour(101)[1].legacy.requests, 8);
        // Nothing to add stores nothing.
        ring.add(105, WindowSide::New, &Tally::default());
        assert_eq!(ring.stored(), 2);
    }

    #[test]
    fn the_ring_keeps_an_hour_and_no_more() {
        let mut ring = HistoryRing::new(at_minute(0, 0));
        for minute in 0..200 {
            ring.add(minute, WindowSide::Legacy, &answers(minute + 1, 0, 2));
            assert!(ring.stored() <= BUCKETS, "minute {minute}: {}", ring.stored());
        }
        assert_eq!(ring.stored(), BUCKETS);
        let hour = ring.last_hour(199);
        assert_eq!(hour.len(), BUCKETS);
        assert_eq!((hour[0].minute, hour[0].legacy.requests), (140, 141));
        assert_eq!((hour[59].minute, hour[59].legacy.requests), (199, 200));
        // Half an hour of quiet later: the last 30 minutes are zeros, the older ones gone.
        let later = ring.last_hour(229);
        assert_eq!(later.len(), BUCKETS);
        assert_eq!(later[0].minute, 170);
        assert_eq!(later[29].legacy.requests, 200);
        assert!(later[30..].iter().all(|m| m.legacy.requests == 0));
        // A long gap: a new minute drops every stored one that fell out of the hour.
        ring.add(1000, WindowSide::New, &answers(1, 0, 2));
        assert_eq!(ring.stored(), 1);
    }

    #[test]
    fn a_young_history_starts_at_its_first_minute() {
        let ring = HistoryRing::new(at_minute(500, 45));
        let hour = ring.last_hour(502);
        assert_eq!(hour.iter().map(|m| m.minute).collect::<Vec<_>>(), [500, 501, 502]);
        // A clock that went back before the start still gives the current minute.
        assert_eq!(ring.last_hour(499).iter().map(|m| m.minute).collect::<Vec<_>>(), [499]);
    }

    #[test]
    fn the_p99_of_a_minute_is_read_from_its_buckets() {
        let mut ring = HistoryRing::new(at_minute(7, 0));
        // 99 fast answers (≤ 5 ms) and one slow (in (0.25, 0.5]).
        ring.add(7, WindowSide::New, &answers(99, 0, 4));
        ring.add(7, WindowSide::New, &answers(1, 1, 300));
        let minute = ring.last_hour(7)[0];
        let p99 = minute.new.quantile(0.99).unwrap();
        assert!((0.0025..=0.005).contains(&p99), "{p99}");
        let p999 = minute.new.quantile(0.999).unwrap();
        assert!((0.25..=0.5).contains(&p999), "{p999}");
        assert_eq!(minute.new.status_5xx, 1);
        assert_eq!(minute.legacy.quantile(0.99), None);
    }

    #[test]
    fn samples_add_what_the_windows_counted_since_the_last_one() {
        let origin = Instant::now();
        let windows = Arc::new(SideWindows::starting_at(origin, 1));
        let name: Arc<str> = Arc::from("api");
        let record = |side, n: u64, error: bool| {
            as_worker(0, || {
                for _ in 0..n {
                    windows.here().record(side, origin, Duration::from_millis(2), error);
                }
            });
        };
        let mut history = TrafficHistory::default();
        record(WindowSide::Legacy, 4, false);
        history.sample([(&name, &windows)], origin, at_minute(10, 5));
        record(WindowSide::Legacy, 2, true);
        record(WindowSide::New, 3, false);
        history.sample([(&name, &windows)], origin, at_minute(10, 10));
        record(WindowSide::New, 1, false);
        history.sample([(&name, &windows)], origin, at_minute(11, 0));
        history.sample([(&name, &windows)], origin, at_minute(11, 5));
        let hour = history.ring("api").unwrap().last_hour(11);
        assert_eq!((hour[0].legacy.requests, hour[0].legacy.status_5xx), (6, 2));
        assert_eq!((hour[0].new.requests, hour[1].new.requests), (3, 1));
        assert_eq!(hour[1].legacy.requests, 0);
    }

    #[test]
    fn a_reload_keeps_the_rings_of_routes_that_stay_and_forgets_the_others() {
        let origin = Instant::now();
        let (api, pages, search): (Arc<str>, Arc<str>, Arc<str>) = ("api".into(), "pages".into(), "search".into());
        let api_windows = Arc::new(SideWindows::starting_at(origin, 1));
        let pages_windows = Arc::new(SideWindows::starting_at(origin, 1));
        let record = |windows: &SideWindows, side, n: u64| {
            as_worker(0, || {
                for _ in 0..n {
                    windows.here().record(side, origin, Duration::from_millis(2), false);
                }
            });
        };
        let mut history = TrafficHistory::default();
        record(&api_windows, WindowSide::Legacy, 5);
        record(&pages_windows, WindowSide::Legacy, 2);
        history.sample(
            [(&api, &api_windows), (&pages, &pages_windows)],
            origin,
            at_minute(20, 0),
        );
        // Before the next sample: 1 more answer on api's old windows, then a reload gives
        // api new windows (a new period: a stage change), drops pages and adds search.
        record(&api_windows, WindowSide::Legacy, 1);
        let api_renewed = Arc::new(SideWindows::starting_at(origin, 1));
        record(&api_renewed, WindowSide::New, 4);
        let search_windows = Arc::new(SideWindows::starting_at(origin, 1));
        history.sample(
            [(&api, &api_renewed), (&search, &search_windows)],
            origin,
            at_minute(20, 30),
        );
        assert_eq!(history.len(), 2);
        assert!(history.ring("pages").is_none(), "a removed route's ring goes");
        let api_ring = history.ring("api").unwrap();
        assert_eq!(
            api_ring.started(),
            at_minute(20, 0),
            "a route that stays keeps its ring"
        );
        let minute = api_ring.last_hour(20)[0];
        assert_eq!((minute.legacy.requests, minute.new.requests), (6, 4));
        assert_eq!(history.ring("search").unwrap().started(), at_minute(20, 30));
        // The renewed windows are followed from here on.
        record(&api_renewed, WindowSide::New, 2);
        history.sample([(&api, &api_renewed)], origin, at_minute(21, 0));
        let hour = history.ring("api").unwrap().last_hour(21);
        assert_eq!((hour[0].new.requests, hour[1].new.requests), (4, 2));
        assert!(history.ring("search").is_none() && !history.is_empty());
    }
}
