//! The replicas `strangler flip` and `status` ask: `--admin URL` (repeatable) and
//! `--admin-dns HOST:PORT` (every address the name resolves to: a Kubernetes headless
//! Service lists one per ready pod), asked in parallel; and what a fleet says about one
//! route's evidence.
//!
//! ```text
//! --admin URL …, --admin-dns HOST:PORT … --(resolve: std's resolver)--> Targets
//!   --(ask: GET /admin/routes [+ /admin/parity], one thread per replica)--> [Replica]
//!   --(Fleet::split by the edited file's version)--> on the version | elsewhere | down
//!   --(Fleet::evidence: sum the matching periods of the replicas on the version)--> Matched
//! ```
//!
//! Only replicas that run the version of the file being edited speak for it: the others
//! are named, never counted. Only [`resolve`] and [`ask`] do IO.

use crate::admin::api::RouteParity;
use crate::commands::admin_client::{self, ParityAnswer, Replica, ReplicaState};
use crate::commands::evidence::{self, Matched, Period};
use crate::config::EvidenceIdentity;

/// The admin base URLs to ask, and the names that could not be resolved.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Targets {
    /// Admin base URLs (`http://host:port`), without duplicates, in the order given.
    pub admins: Vec<String>,
    /// `(HOST:PORT, why)` for every `--admin-dns` that resolved to nothing.
    pub unresolved: Vec<(String, String)>,
}

impl Targets {
    /// Whether there is nothing at all to ask.
    pub fn is_empty(&self) -> bool {
        self.admins.is_empty() && self.unresolved.is_empty()
    }
}

/// Every address `host_port` resolves to, as admin base URLs (`http://10.0.0.7:9100`,
/// `http://[::1]:9100`). Blocking (the system resolver).
pub fn resolve_dns(host_port: &str) -> Result<Vec<String>, String> {
    use std::net::ToSocketAddrs;
    let spec = host_port.trim();
    let spec = spec.strip_prefix("http://").unwrap_or(spec).trim_end_matches('/');
    if spec
        .rsplit_once(':')
        .is_none_or(|(_, port)| port.parse::<u16>().is_err())
    {
        return Err(format!(
            "--admin-dns {host_port}: expected HOST:PORT, e.g. strangler-admin:9100"
        ));
    }
    let addrs = spec
        .to_socket_addrs()
        .map_err(|e| format!("--admin-dns {host_port}: cannot resolve: {e}"))?;
    let mut urls: Vec<String> = Vec::new();
    for addr in addrs {
        let url = format!("http://{addr}");
        if !urls.contains(&url) {
            urls.push(url);
        }
    }
    if urls.is_empty() {
        return Err(format!("--admin-dns {host_port}: resolves to no address"));
    }
    Ok(urls)
}

/// `admins` as given, then the addresses of every `dns` name. Blocking.
pub fn resolve(admins: &[String], dns: &[String]) -> Targets {
    let mut targets = Targets::default();
    let mut push = |url: String| {
        if !targets.admins.contains(&url) {
            targets.admins.push(url);
        }
    };
    for admin in admins {
        push(admin_client::admin_base(admin));
    }
    let mut unresolved = Vec::new();
    for name in dns {
        match resolve_dns(name) {
            Ok(urls) => urls.into_iter().for_each(&mut push),
            Err(why) => unresolved.push((name.clone(), why)),
        }
    }
    targets.unresolved = unresolved;
    targets
}

/// How many replicas are asked at a time: a `--admin-dns` name may resolve to hundreds of
/// addresses, and one thread (and connection) each would not be bounded.
pub const PARALLEL_ASKS: usize = 16;

/// `work` applied to every item, at most `limit` at a time (scoped threads pulling the next
/// index), results in the items' order; `None` where `work` panicked. Blocking.
pub fn bounded_parallel<T: Sync, R: Send>(items: &[T], limit: usize, work: impl Fn(&T) -> R + Sync) -> Vec<Option<R>> {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<R>>> = items.iter().map(|_| Mutex::new(None)).collect();
    std::thread::scope(|scope| {
        for _ in 0..limit.max(1).min(items.len()) {
            scope.spawn(|| {
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(index) else {
                        break;
                    };
                    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| work(item)));
                    if let (Ok(result), Ok(mut slot)) = (result, results[index].lock()) {
                        *slot = Some(result);
                    }
                }
            });
        }
    });
    results
        .into_iter()
        .map(|slot| slot.into_inner().ok().flatten())
        .collect()
}

/// Asks every target, [`PARALLEL_ASKS`] at a time (with `/admin/parity` when
/// `with_parity`); a name that did not resolve is a replica that is down. Blocking.
pub fn ask(targets: &Targets, with_parity: bool) -> Vec<Replica> {
    let answers = bounded_parallel(&targets.admins, PARALLEL_ASKS, |admin| {
        admin_client::fetch_with(admin, with_parity)
    });
    let mut replicas: Vec<Replica> = targets
        .admins
        .iter()
        .zip(answers)
        .map(|(admin, answer)| {
            answer.unwrap_or_else(|| Replica {
                admin: admin.clone(),
                state: ReplicaState::Down("the request thread panicked".to_owned()),
            })
        })
        .collect();
    replicas.extend(targets.unresolved.iter().map(|(name, why)| Replica {
        admin: format!("dns:{name}"),
        state: ReplicaState::Down(why.clone()),
    }));
    replicas
}

/// Keeps one replica per process: of the replicas that answered the same `instance` id
/// (`localhost:P` and `127.0.0.1:P`, `[::1]` and `127.0.0.1` against a dual-stack admin, a
/// name of `--admin-dns` also given as `--admin`), the first stays and the others go, each
/// named: `http://localhost:P is the same process as http://127.0.0.1:P: counted once`.
/// Replicas without an id (builds before it) keep the URL dedupe of [`resolve`]. Pure.
pub fn same_processes(replicas: &mut Vec<Replica>) -> Vec<String> {
    let mut kept: Vec<(String, String)> = Vec::new();
    let mut said = Vec::new();
    replicas.retain(|replica| {
        let ReplicaState::Up {
            instance: Some(instance),
            ..
        } = &replica.state
        else {
            return true;
        };
        if let Some((_, first)) = kept.iter().find(|(id, _)| id == instance) {
            said.push(format!(
                "{} is the same process as {first}: counted once",
                replica.admin
            ));
            return false;
        }
        kept.push((instance.clone(), replica.admin.clone()));
        true
    });
    said
}

/// The replicas split by the table version they run.
#[derive(Debug, Clone)]
pub struct Fleet<'a> {
    /// The version of the file being edited (before the edit).
    pub version: String,
    /// Replicas that run it: their evidence counts.
    pub on_version: Vec<&'a Replica>,
    /// `(admin, version)` of replicas that run another table: their matches not counted.
    pub elsewhere: Vec<(&'a str, &'a str)>,
    /// Those replicas, whose mismatches and errors of matching periods do count.
    pub others: Vec<&'a Replica>,
    /// `(admin, why)` of replicas that did not answer.
    pub down: Vec<(&'a str, &'a str)>,
}

impl<'a> Fleet<'a> {
    /// Splits `replicas` by whether they run `version`.
    pub fn split(replicas: &'a [Replica], version: &str) -> Fleet<'a> {
        let mut fleet = Fleet {
            version: version.to_owned(),
            on_version: Vec::new(),
            elsewhere: Vec::new(),
            others: Vec::new(),
            down: Vec::new(),
        };
        for replica in replicas {
            match &replica.state {
                ReplicaState::Up { version: v, .. } if v == version => fleet.on_version.push(replica),
                ReplicaState::Up { version: v, .. } => {
                    fleet.elsewhere.push((&replica.admin, v));
                    fleet.others.push(replica);
                }
                ReplicaState::Down(why) | ReplicaState::NeedsToken(why) => fleet.down.push((&replica.admin, why)),
            }
        }
        fleet
    }

    /// `http://a runs 1a2b…; http://b runs 3c4d…`, for the replicas on another version.
    pub fn describe_elsewhere(&self) -> String {
        let list: Vec<String> = self
            .elsewhere
            .iter()
            .map(|(admin, version)| format!("{admin} runs {version}"))
            .collect();
        list.join("; ")
    }

    /// The mismatches and errors of `route` on the replicas on another version, in periods
    /// whose identity matches `wanted` (see [`evidence::failures`]), and the replicas that
    /// have some. A replica whose parity could not be read adds nothing (it is named as
    /// not counted already).
    pub fn failures_elsewhere(&self, route: &str, wanted: &EvidenceIdentity) -> (RouteParity, Vec<&'a str>) {
        let mut sum = RouteParity::default();
        let mut from = Vec::new();
        for replica in &self.others {
            let ReplicaState::Up {
                parity: ParityAnswer::Report(report),
                ..
            } = &replica.state
            else {
                continue;
            };
            let Some(counts) = report.routes.get(route) else {
                continue;
            };
            let failures = evidence::failures(&Period::of_route(counts), wanted);
            if failures.mismatch > 0 || failures.error > 0 {
                sum.add(&failures);
                from.push(replica.admin.as_str());
            }
        }
        (sum, from)
    }

    /// The evidence for `route` summed over the replicas on the version: the periods of each
    /// whose identity matches `wanted`. `Ok(None)` when no replica has counts for the route.
    /// Refused when one of them has no parity counts to give, or counts of something else.
    pub fn evidence(&self, route: &str, wanted: &EvidenceIdentity) -> Result<Option<Matched>, String> {
        let mut sum: Option<Matched> = None;
        for replica in &self.on_version {
            let ReplicaState::Up { parity, .. } = &replica.state else {
                continue;
            };
            let report = match parity {
                ParityAnswer::Report(report) => report,
                ParityAnswer::Absent => {
                    return Err(format!(
                        "{}/admin/parity answered 404: that proxy has no parity endpoint (a build without \
                         parity checks)",
                        replica.admin
                    ));
                }
                ParityAnswer::Unreadable(why) => return Err(why.clone()),
                ParityAnswer::NotAsked => return Err(format!("{}: parity not asked", replica.admin)),
            };
            let Some(counts) = report.routes.get(route) else {
                continue;
            };
            let matched = evidence::matching(&Period::of_route(counts), wanted)
                .map_err(|unmatched| format!("{}: {unmatched}", replica.admin))?;
            let total = sum.get_or_insert_with(Matched::default);
            total.counts.add(&matched.counts);
            for period in matched.periods {
                if !total.periods.contains(&period) {
                    total.periods.push(period);
                }
            }
            for identity in matched.ignored {
                if !total.ignored.contains(&identity) {
                    total.ignored.push(identity);
                }
            }
        }
        Ok(sum)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::api::{Evidence, ParityCounts};
    use crate::config::EvidenceSide;

    fn identity(new_url: &str) -> EvidenceIdentity {
        EvidenceIdentity {
            stage: "shadow".to_owned(),
            legacy: EvidenceSide {
                name: "legacy".to_owned(),
                url: "http://127.0.0.1:8001/".to_owned(),
            },
            new: Some(EvidenceSide {
                name: "thoughts".to_owned(),
                url: new_url.to_owned(),
            }),
            rules: "r1".to_owned(),
            forwarding: None,
        }
    }

    fn replica(admin: &str, version: &str, matched: u64, new_url: &str) -> Replica {
        let mut report = ParityCounts::default();
        let identity = identity(new_url);
        report.routes.insert(
            "api".to_owned(),
            RouteParity {
                matched,
                evidence: Some(Evidence {
                    since: "2025-01-01T00:00:00Z".to_owned(),
                    period: identity.period(),
                    identity,
                }),
                ..RouteParity::default()
            },
        );
        Replica {
            admin: admin.to_owned(),
            state: ReplicaState::Up {
                version: version.to_owned(),
                instance: None,
                routes: Vec::new(),
                parity: ParityAnswer::Report(report),
            },
        }
    }

    const NEW: &str = "http://127.0.0.1:8002/";

    #[test]
    fn sums_the_replicas_on_the_version_and_names_the_others() {
        let replicas = [
            replica("http://a", "v1", 60, NEW),
            replica("http://b", "v1", 70, NEW),
            replica("http://c", "v2", 1000, NEW),
            Replica {
                admin: "http://d".to_owned(),
                state: ReplicaState::Down("connection refused".to_owned()),
            },
        ];
        let fleet = Fleet::split(&replicas, "v1");
        assert_eq!(fleet.on_version.len(), 2);
        assert_eq!(fleet.elsewhere, [("http://c", "v2")]);
        assert_eq!(fleet.down, [("http://d", "connection refused")]);
        assert_eq!(fleet.describe_elsewhere(), "http://c runs v2");
        let sum = fleet.evidence("api", &identity(NEW)).unwrap().unwrap();
        assert_eq!(sum.counts.matched, 130);
        assert_eq!(sum.periods, [identity(NEW).period()]);
        assert_eq!(fleet.evidence("other-route", &identity(NEW)), Ok(None));
    }

    #[test]
    fn a_replica_with_evidence_of_something_else_refuses_naming_it() {
        let replicas = [
            replica("http://a", "v1", 60, NEW),
            replica("http://b", "v1", 70, "http://x/"),
        ];
        let refused = Fleet::split(&replicas, "v1")
            .evidence("api", &identity(NEW))
            .unwrap_err();
        assert!(
            refused.starts_with("http://b: the parity evidence was gathered against"),
            "{refused}"
        );
    }

    #[test]
    fn failures_of_replicas_on_another_version_are_found_and_named() {
        let mut failing = replica("http://c", "v2", 1000, NEW);
        if let ReplicaState::Up {
            parity: ParityAnswer::Report(report),
            ..
        } = &mut failing.state
        {
            let counts = report.routes.get_mut("api").unwrap();
            (counts.mismatch, counts.error) = (900, 4);
        }
        let replicas = [
            replica("http://a", "v1", 60, NEW),
            failing,
            replica("http://d", "v3", 5, "http://x/"),
        ];
        let fleet = Fleet::split(&replicas, "v1");
        let (failures, from) = fleet.failures_elsewhere("api", &identity(NEW));
        assert_eq!((failures.matched, failures.mismatch, failures.error), (0, 900, 4));
        assert_eq!(from, ["http://c"]);
    }

    #[test]
    fn replicas_are_asked_a_bounded_number_at_a_time_in_order() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let (running, most) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let items: Vec<usize> = (0..100).collect();
        let results = bounded_parallel(&items, 16, |&i| {
            let now = running.fetch_add(1, Ordering::SeqCst) + 1;
            most.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(2));
            running.fetch_sub(1, Ordering::SeqCst);
            i * 2
        });
        assert!(most.load(Ordering::SeqCst) <= 16, "{most:?}");
        let expected: Vec<Option<usize>> = (0..100).map(|i| Some(i * 2)).collect();
        assert_eq!(results, expected);
    }

    #[test]
    fn one_process_behind_several_urls_is_counted_once_and_named() {
        let with_instance = |mut replica: Replica, id: Option<&str>| {
            if let ReplicaState::Up { instance, .. } = &mut replica.state {
                *instance = id.map(str::to_owned);
            }
            replica
        };
        let mut replicas = vec![
            with_instance(replica("http://127.0.0.1:9", "v1", 60, NEW), Some("aaaa")),
            with_instance(replica("http://localhost:9", "v1", 60, NEW), Some("aaaa")),
            with_instance(replica("http://[::1]:9", "v1", 60, NEW), Some("aaaa")),
            with_instance(replica("http://b", "v1", 70, NEW), Some("bbbb")),
            with_instance(replica("http://old-1", "v1", 5, NEW), None),
            with_instance(replica("http://old-2", "v1", 5, NEW), None),
        ];
        let said = same_processes(&mut replicas);
        assert_eq!(
            said,
            [
                "http://localhost:9 is the same process as http://127.0.0.1:9: counted once",
                "http://[::1]:9 is the same process as http://127.0.0.1:9: counted once",
            ]
        );
        let admins: Vec<&str> = replicas.iter().map(|r| r.admin.as_str()).collect();
        assert_eq!(
            admins,
            ["http://127.0.0.1:9", "http://b", "http://old-1", "http://old-2"]
        );
        let sum = Fleet::split(&replicas, "v1")
            .evidence("api", &identity(NEW))
            .unwrap()
            .unwrap();
        assert_eq!(sum.counts.matched, 140);
    }

    #[test]
    fn dns_names_resolve_to_every_address_and_bad_ones_are_named() {
        let urls = resolve_dns("127.0.0.1:9100").unwrap();
        assert_eq!(urls, ["http://127.0.0.1:9100"]);
        let local = resolve_dns("localhost:9100").unwrap();
        assert!(
            local
                .iter()
                .all(|u| u == "http://127.0.0.1:9100" || u == "http://[::1]:9100"),
            "{local:?}"
        );
        assert!(resolve_dns("localhost").unwrap_err().contains("expected HOST:PORT"));
        let targets = resolve(
            &["127.0.0.1:1".to_owned(), "http://127.0.0.1:1/".to_owned()],
            &["no-such-host.invalid:9100".to_owned()],
        );
        assert_eq!(targets.admins, ["http://127.0.0.1:1"]);
        assert_eq!(targets.unresolved.len(), 1);
        assert!(targets.unresolved[0].1.contains("cannot resolve"), "{targets:?}");
        let replicas = ask(
            &Targets {
                admins: Vec::new(),
                unresolved: targets.unresolved.clone(),
            },
            false,
        );
        assert_eq!(replicas[0].admin, "dns:no-such-host.invalid:9100");
        assert!(matches!(replicas[0].state, ReplicaState::Down(_)));
    }
}
