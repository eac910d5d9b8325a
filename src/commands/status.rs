//! `strangler status`: the migration board, read from the admin APIs of running replicas
//! (asked through [`crate::commands::admin_client`]).
//!
//! ```text
//! --admin URL …, --admin-dns HOST:PORT … (or routes.toml's proxy.admin_listen)
//!   --(fleet::ask: GET /admin/routes and /admin/parity, one thread per replica)--> [Replica]
//!   --(Board::build: pure)--> Board --(Display, or JSON)--> stdout
//! ```
//!
//! A replica that does not answer is reported, never skipped; the board is healthy only
//! when every replica answers and all of them run the same table version (the digest of
//! routes.toml's bytes, see [`crate::config::version_of`]). A route's parity counts are
//! summed over the replicas in the same evidence period, and the period is shown. Only
//! [`run`] does IO.

use std::fmt;
use std::io::Write;
use std::path::PathBuf;

use serde::Serialize;

use crate::admin::api::{Evidence, ListedRoute, RouteParity};
use crate::commands::admin_client::{ParityAnswer, Replica, ReplicaState, admin_url_of, use_token_of};
use crate::commands::fleet;
use crate::config::LoadError;
use crate::table::Table;

/// The migration board: one row per replica, one per route.
#[derive(Debug, Clone, Serialize)]
pub struct Board {
    /// The replicas, in the order given.
    pub replicas: Vec<ReplicaRow>,
    /// Every route any replica has, in the order first seen.
    pub routes: Vec<BoardRoute>,
    /// Every replica answered.
    pub all_up: bool,
    /// Every replica that answered runs the same table version.
    pub same_version: bool,
    /// Admin URLs left out because they reached a replica already on the board (the same
    /// `instance` id), each `URL is the same process as URL: counted once`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub same_process: Vec<String>,
}

/// A replica on the board.
#[derive(Debug, Clone, Serialize)]
pub struct ReplicaRow {
    /// Admin base URL.
    pub admin: String,
    /// Whether it answered.
    pub up: bool,
    /// It answered 401: it runs, but the admin token is missing or wrong.
    pub needs_token: bool,
    /// Its table version.
    pub version: Option<String>,
    /// Why it is down, or why its parity counts could not be read.
    pub error: Option<String>,
    /// Whether it serves `/admin/parity` (`None` when down or unreadable).
    pub parity_endpoint: Option<bool>,
}

/// A route on the board.
#[derive(Debug, Clone, Serialize)]
pub struct BoardRoute {
    /// Route name.
    pub name: String,
    /// Stage on the first replica that has the route.
    pub stage: String,
    /// Share of traffic to the new upstream there, in percent.
    pub new_share_percent: Option<f64>,
    /// Parity counts summed over the replicas that report them; `None` when no replica
    /// has a parity endpoint.
    pub parity: Option<RouteParity>,
    /// (match + noise) / (match + noise + mismatch + error) over those counts.
    pub match_rate: Option<f64>,
    /// Whether the replicas that answered disagree on this route (stage, share, or
    /// whether they have it at all).
    pub differs: bool,
    /// The evidence period the counts belong to (that of the first replica reporting one);
    /// `None` from builds without evidence periods.
    pub evidence: Option<Evidence>,
    /// Whether the replicas are in different evidence periods of this route; the counts
    /// then sum only the replicas in [`BoardRoute::evidence`]'s period.
    pub periods_differ: bool,
    /// The route on each replica that answered (`stage: null` where it is missing).
    pub per_replica: Vec<RouteOnReplica>,
}

/// A route on one replica.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RouteOnReplica {
    /// Admin base URL of the replica.
    pub admin: String,
    /// The route's stage there; `None` if that replica has no such route.
    pub stage: Option<String>,
    /// Share to new there, in percent.
    pub new_share_percent: Option<f64>,
    /// The route's current evidence period there (`None`: no parity counts with one).
    pub period: Option<String>,
}

/// A replica that answered: its admin URL, routes and parity answer.
type UpReplica<'a> = (&'a str, &'a Vec<ListedRoute>, &'a ParityAnswer);

impl BoardRoute {
    /// The row of route `name` over the replicas that answered. The parity counts are summed
    /// over the replicas in the same evidence period as the first one that reports a period.
    fn build(name: &str, up: &[UpReplica<'_>], any_parity: bool) -> BoardRoute {
        let counts_of = |answer: &ParityAnswer| match answer {
            ParityAnswer::Report(report) => report.routes.get(name).cloned(),
            _ => None,
        };
        let per_replica: Vec<RouteOnReplica> = up
            .iter()
            .map(|(admin, routes, answer)| {
                let route = routes.iter().find(|r| r.name == name);
                RouteOnReplica {
                    admin: (*admin).to_owned(),
                    stage: route.map(|r| r.stage.clone()),
                    new_share_percent: route.and_then(ListedRoute::new_share),
                    period: counts_of(answer).and_then(|c| c.evidence.map(|e| e.period)),
                }
            })
            .collect();
        let first = per_replica.iter().find(|p| p.stage.is_some());
        let differs = per_replica
            .iter()
            .any(|p| p.stage != per_replica[0].stage || p.new_share_percent != per_replica[0].new_share_percent);
        let evidence = up
            .iter()
            .find_map(|(_, _, answer)| counts_of(answer).and_then(|c| c.evidence));
        let in_period = |counts: &RouteParity| match (&evidence, &counts.evidence) {
            (Some(first), Some(this)) => first.period == this.period,
            (Some(_), None) => false,
            (None, _) => true,
        };
        let periods_differ = up
            .iter()
            .filter_map(|(_, _, answer)| counts_of(answer))
            .any(|counts| !in_period(&counts));
        let parity = any_parity.then(|| {
            let mut sum = RouteParity::default();
            for counts in up.iter().filter_map(|(_, _, answer)| counts_of(answer)) {
                if in_period(&counts) {
                    sum.add(&counts);
                }
            }
            sum
        });
        BoardRoute {
            name: name.to_owned(),
            stage: first.and_then(|p| p.stage.clone()).unwrap_or_default(),
            new_share_percent: first.and_then(|p| p.new_share_percent),
            match_rate: parity.as_ref().and_then(RouteParity::match_rate),
            parity,
            differs,
            evidence,
            periods_differ,
            per_replica,
        }
    }
}

impl Board {
    /// Builds the board from what the replicas answered.
    pub fn build(replicas: &[Replica]) -> Board {
        let mut names: Vec<&str> = Vec::new();
        for replica in replicas {
            if let ReplicaState::Up { routes, .. } = &replica.state {
                for route in routes {
                    if !names.contains(&route.name.as_str()) {
                        names.push(&route.name);
                    }
                }
            }
        }
        let up: Vec<UpReplica<'_>> = replicas
            .iter()
            .filter_map(|r| match &r.state {
                ReplicaState::Up { routes, parity, .. } => Some((r.admin.as_str(), routes, parity)),
                ReplicaState::Down(_) | ReplicaState::NeedsToken(_) => None,
            })
            .collect();
        let any_parity = up.iter().any(|(_, _, p)| matches!(p, ParityAnswer::Report(_)));
        let routes = names
            .iter()
            .map(|name| BoardRoute::build(name, &up, any_parity))
            .collect();
        let replica_rows: Vec<ReplicaRow> = replicas
            .iter()
            .map(|r| match &r.state {
                ReplicaState::Down(e) | ReplicaState::NeedsToken(e) => ReplicaRow {
                    admin: r.admin.clone(),
                    up: false,
                    needs_token: matches!(r.state, ReplicaState::NeedsToken(_)),
                    version: None,
                    error: Some(e.clone()),
                    parity_endpoint: None,
                },
                ReplicaState::Up { version, parity, .. } => ReplicaRow {
                    admin: r.admin.clone(),
                    up: true,
                    needs_token: false,
                    version: Some(version.clone()),
                    error: match parity {
                        ParityAnswer::Unreadable(e) => Some(e.clone()),
                        _ => None,
                    },
                    parity_endpoint: match parity {
                        ParityAnswer::Absent => Some(false),
                        ParityAnswer::Report(_) => Some(true),
                        ParityAnswer::Unreadable(_) | ParityAnswer::NotAsked => None,
                    },
                },
            })
            .collect();
        let mut versions = replica_rows.iter().filter_map(|r| r.version.as_deref());
        let same_version = match versions.next() {
            Some(first) => versions.all(|v| v == first),
            None => false,
        };
        Board {
            all_up: replica_rows.iter().all(|r| r.up),
            same_version,
            replicas: replica_rows,
            routes,
            same_process: Vec::new(),
        }
    }

    /// Every replica answered and all run the same table.
    pub fn healthy(&self) -> bool {
        self.all_up && self.same_version
    }
}

/// `10 %`, `12.5 %`.
pub fn format_percent(percent: f64) -> String {
    let text = format!("{percent:.2}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text} %")
}

impl fmt::Display for Board {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let admin_width = self.replicas.iter().map(|r| r.admin.len()).max().unwrap_or(0);
        for r in &self.replicas {
            match (&r.version, r.up) {
                (Some(version), true) => {
                    let parity = match r.parity_endpoint {
                        Some(true) => "parity counts read".to_owned(),
                        Some(false) => "no parity counts (no /admin/parity: an older build)".to_owned(),
                        None => format!(
                            "parity counts unreadable: {}",
                            r.error.as_deref().unwrap_or("unknown error")
                        ),
                    };
                    writeln!(f, "{:<admin_width$}  up    version {version}  {parity}", r.admin)?;
                }
                _ => writeln!(
                    f,
                    "{:<admin_width$}  {:<5} {}",
                    r.admin,
                    if r.needs_token { "TOKEN" } else { "DOWN" },
                    r.error.as_deref().unwrap_or("no answer")
                )?,
            }
        }
        for same in &self.same_process {
            writeln!(f, "{same}")?;
        }
        writeln!(f)?;
        let up: Vec<&ReplicaRow> = self.replicas.iter().filter(|r| r.up).collect();
        if up.is_empty() {
            return writeln!(f, "no replica answered; {}", self.unanswered());
        }
        let rows: Vec<[String; 5]> = self
            .routes
            .iter()
            .map(|r| {
                let marker = if r.differs { " *" } else { "" };
                let share = r.new_share_percent.map_or_else(|| "?".to_owned(), format_percent);
                let parity = match (&r.parity, r.match_rate) {
                    (None, _) => "-".to_owned(),
                    (Some(_), None) => "no comparisons yet".to_owned(),
                    (Some(p), Some(rate)) => format!("{rate:.4} ({} compared, {} errors)", p.compared(), p.error),
                };
                let evidence = match (&r.evidence, r.periods_differ) {
                    (None, _) => "-".to_owned(),
                    (Some(e), false) => format!("period {} since {}", e.period, e.since),
                    (Some(e), true) => format!("period {} since {} (periods DIFFER *)", e.period, e.since),
                };
                [format!("{}{marker}", r.name), r.stage.clone(), share, parity, evidence]
            })
            .collect();
        let header = ["route", "stage", "to new", "parity", "evidence"];
        let width = |i: usize| {
            rows.iter()
                .map(|row| row[i].chars().count())
                .chain([header[i].len()])
                .max()
                .unwrap_or(0)
        };
        let (w0, w1, w2, w3) = (width(0), width(1), width(2), width(3));
        writeln!(
            f,
            "{:<w0$}  {:<w1$}  {:>w2$}  {:<w3$}  {}",
            header[0], header[1], header[2], header[3], header[4]
        )?;
        for row in &rows {
            writeln!(
                f,
                "{:<w0$}  {:<w1$}  {:>w2$}  {:<w3$}  {}",
                row[0], row[1], row[2], row[3], row[4]
            )?;
        }
        if self.routes.is_empty() {
            writeln!(f, "(no routes)")?;
        }
        for r in self.routes.iter().filter(|r| r.differs) {
            let places: Vec<String> = r
                .per_replica
                .iter()
                .map(|p| match (&p.stage, p.new_share_percent) {
                    (Some(stage), Some(share)) => format!("{}: {stage} {}", p.admin, format_percent(share)),
                    (Some(stage), None) => format!("{}: {stage}", p.admin),
                    (None, _) => format!("{}: no such route", p.admin),
                })
                .collect();
            writeln!(f, "* `{}` differs: {}", r.name, places.join("; "))?;
        }
        for r in self.routes.iter().filter(|r| r.periods_differ) {
            let places: Vec<String> = r
                .per_replica
                .iter()
                .map(|p| format!("{}: {}", p.admin, p.period.as_deref().unwrap_or("no period")))
                .collect();
            writeln!(
                f,
                "* `{}` evidence periods differ (parity counts only the first): {}",
                r.name,
                places.join("; ")
            )?;
        }
        writeln!(f)?;
        if self.same_version {
            let version = up.first().and_then(|r| r.version.as_deref()).unwrap_or_default();
            write!(f, "versions: all {} answering replica(s) run {version}", up.len())?;
        } else {
            let list: Vec<String> = up
                .iter()
                .map(|r| format!("{} runs {}", r.admin, r.version.as_deref().unwrap_or("?")))
                .collect();
            write!(f, "versions DIFFER: {}", list.join("; "))?;
        }
        if up.len() < self.replicas.len() {
            write!(f, "; {}", self.unanswered())?;
        }
        writeln!(f)
    }
}

impl Board {
    /// `2 replica(s) DOWN, 1 replica(s) need an admin token`: the replicas that gave no
    /// board, split by why (a 401 is a missing token, not an outage).
    fn unanswered(&self) -> String {
        let token = self.replicas.iter().filter(|r| !r.up && r.needs_token).count();
        let down = self.replicas.iter().filter(|r| !r.up && !r.needs_token).count();
        let mut parts = Vec::new();
        if down > 0 {
            parts.push(format!("{down} replica(s) DOWN"));
        }
        if token > 0 {
            parts.push(format!("{token} replica(s) need an admin token (--admin-token-file)"));
        }
        parts.join(", ")
    }
}

/// What `strangler status` was asked.
#[derive(Debug, Clone)]
pub struct Options {
    /// Admin URLs; with `admin_dns` empty, none means the `admin_listen` of `config`.
    pub admins: Vec<String>,
    /// `HOST:PORT` names whose every address is a replica (`--admin-dns`).
    pub admin_dns: Vec<String>,
    /// The table whose `proxy.admin_listen` is the default replica.
    pub config: PathBuf,
    /// Print JSON.
    pub json: bool,
}

/// Why `strangler status` could not even ask.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    /// No `--admin`, and the default could not be read from the table.
    #[error("no --admin URL given and none found in {file}: {reason}")]
    NoAdmin {
        /// The table.
        file: String,
        /// Why.
        reason: String,
    },
    /// A bad `--admin` URL (exit 2).
    #[error("--admin {0}")]
    Usage(String),
    /// Writing the output failed.
    #[error("cannot write the board: {0}")]
    Output(#[from] std::io::Error),
}

/// Asks every replica (in parallel) and prints the board. Returns whether it is healthy.
pub fn run(options: &Options, out: &mut dyn Write) -> Result<bool, StatusError> {
    for admin in &options.admins {
        crate::commands::admin_client::parse_admin_url(admin).map_err(StatusError::Usage)?;
    }
    let targets = if options.admins.is_empty() && options.admin_dns.is_empty() {
        let table = Table::load(&options.config).map_err(|e| StatusError::NoAdmin {
            file: options.config.display().to_string(),
            reason: match e {
                LoadError::Read { source, .. } => source.to_string(),
                LoadError::Invalid(errors) => errors.to_string(),
            },
        })?;
        use_token_of(&table.config);
        fleet::Targets {
            admins: vec![admin_url_of(&table.config)],
            unresolved: Vec::new(),
        }
    } else {
        fleet::resolve(&options.admins, &options.admin_dns)
    };
    let mut replicas = fleet::ask(&targets, true);
    let same_process = fleet::same_processes(&mut replicas);
    let mut board = Board::build(&replicas);
    board.same_process = same_process;
    if options.json {
        let text = serde_json::to_string_pretty(&board).map_err(std::io::Error::other)?;
        writeln!(out, "{text}")?;
    } else {
        write!(out, "{board}")?;
    }
    Ok(board.healthy())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::admin::api::ParityCounts;

    fn route(name: &str, stage: &str, percent: Option<f64>) -> ListedRoute {
        ListedRoute {
            name: name.to_owned(),
            kind: "prefix".to_owned(),
            path: format!("/{name}/"),
            methods: None,
            stage: stage.to_owned(),
            legacy: "legacy".to_owned(),
            new: Some("new".to_owned()),
            canary: percent.map(|percent| crate::admin::api::ListedCanary { percent, sticky: None }),
            fallback: None,
            max_body: None,
            upgrades: None,
            case_insensitive: false,
            forwarding: Default::default(),
        }
    }

    fn up(admin: &str, version: &str, routes: Vec<ListedRoute>, parity: ParityAnswer) -> Replica {
        Replica {
            admin: admin.to_owned(),
            state: ReplicaState::Up {
                version: version.to_owned(),
                instance: None,
                routes,
                parity,
            },
        }
    }

    #[test]
    fn the_board_counts_share_and_format_percent() {
        assert_eq!(format_percent(12.5), "12.5 %");
        assert_eq!(format_percent(100.0), "100 %");
        assert_eq!(format_percent(0.0), "0 %");
        let board = Board::build(&[up(
            "http://x",
            "v1",
            vec![route("a", "canary", Some(12.5))],
            ParityAnswer::Absent,
        )]);
        assert_eq!(board.routes[0].new_share_percent, Some(12.5));
    }

    #[test]
    fn same_tables_are_healthy() {
        let routes = vec![route("a", "new", None), route("b", "canary", Some(10.0))];
        let board = Board::build(&[
            up("http://x", "v1", routes.clone(), ParityAnswer::Absent),
            up("http://y", "v1", routes, ParityAnswer::Absent),
        ]);
        assert!(board.healthy());
        assert!(board.routes.iter().all(|r| !r.differs && r.parity.is_none()));
        let text = board.to_string();
        assert!(text.contains("versions: all 2 answering replica(s) run v1"), "{text}");
        assert!(text.contains("10 %"), "{text}");
    }

    #[test]
    fn differing_and_down_replicas_are_named() {
        let mut report = ParityCounts::default();
        report.routes.insert(
            "a".to_owned(),
            RouteParity {
                matched: 10,
                ..RouteParity::default()
            },
        );
        let board = Board::build(&[
            up(
                "http://x",
                "v1",
                vec![route("a", "legacy", None)],
                ParityAnswer::Report(report),
            ),
            up("http://y", "v2", vec![route("a", "new", None)], ParityAnswer::Absent),
            Replica {
                admin: "http://z".to_owned(),
                state: ReplicaState::Down("connection refused".to_owned()),
            },
        ]);
        assert!(!board.healthy());
        assert!(!board.same_version && !board.all_up);
        assert!(board.routes[0].differs);
        assert_eq!(board.routes[0].match_rate, Some(1.0));
        let text = board.to_string();
        assert!(
            text.contains("versions DIFFER: http://x runs v1; http://y runs v2"),
            "{text}"
        );
        assert!(text.contains("http://z  DOWN  connection refused"), "{text}");
        assert!(
            text.contains("* `a` differs: http://x: legacy 0 %; http://y: new 100 %"),
            "{text}"
        );
    }
}
