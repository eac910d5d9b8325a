//! Pinning each proxy worker to a CPU of its own (`[proxy] worker_cpu_affinity`).
//!
//! The workers are thread-per-core: each owns its connections for their whole life and
//! never hands a request to another thread. Left to the kernel, a whole benchmark run's
//! p99 lands either near 3 ms or near 4.5 ms; pinned, the slow mode does not occur. The
//! likely cause is placement: two workers sharing one core for a while, each request on
//! them waiting its turn behind the other worker's. Measured on two cores with wrk, the
//! upstream and strangler sharing them (`bash bench/run.sh`'s setup), five alternating
//! rounds: p99 2.8–3.3 ms pinned against 3.5–4.7 ms unpinned, req/s unchanged. nginx has
//! the same switch (`worker_cpu_affinity auto`), off by default.
//!
//! `auto` (the default) pins only when the CPUs this process may run on are exactly as many
//! as the workers, one each. On a machine or a cpuset that is the proxy's (the default
//! worker count is one per CPU), that holds. In a container limited by a CPU quota but
//! allowed on every CPU of the node, or with more or fewer workers than allowed CPUs, it
//! does not, and the kernel keeps placing the workers. The price of pinning: the kernel
//! cannot move a worker off a CPU that another process keeps busy (it moves the other
//! process instead, where it can); where that matters, `off` never pins.

use std::fmt;

use prometheus::IntGaugeVec;

use crate::config::WorkerCpuAffinity;

/// Where the workers run: pinned one per CPU, or wherever the kernel puts them.
#[derive(Debug, Clone)]
pub struct Placement {
    cpus: Cpus,
    /// `strangler_worker_cpu{worker}`: set by each worker once it is pinned.
    gauge: Option<IntGaugeVec>,
}

#[derive(Debug, Clone)]
enum Cpus {
    /// Worker `i` runs on the `i`-th.
    Pinned(Vec<usize>),
    /// Not pinned, and why (for the start-up log line).
    Unpinned(String),
}

impl Placement {
    /// Decides for `workers` workers under `setting`, given the CPUs this process may run
    /// on (`allowed`, ascending; `None` when they cannot be read).
    pub fn plan(setting: WorkerCpuAffinity, workers: usize, allowed: Option<&[usize]>) -> Self {
        let cpus = match (setting, allowed) {
            (WorkerCpuAffinity::Off, _) => Cpus::Unpinned("worker_cpu_affinity = \"off\"".to_owned()),
            (WorkerCpuAffinity::Auto, None) => Cpus::Unpinned("the CPUs this process may use are unknown".to_owned()),
            (WorkerCpuAffinity::Auto, Some(cpus)) if cpus.len() != workers => Cpus::Unpinned(format!(
                "{workers} worker(s) and {} CPU(s) this process may use; `auto` pins only one worker per CPU",
                cpus.len()
            )),
            (WorkerCpuAffinity::Auto, Some(cpus)) => Cpus::Pinned(cpus.to_vec()),
        };
        Self { cpus, gauge: None }
    }

    /// [`Placement::plan`] with the CPUs this process may run on, read from the kernel.
    pub fn for_this_process(setting: WorkerCpuAffinity, workers: usize) -> Self {
        let allowed = allowed_cpus().ok();
        Self::plan(setting, workers, allowed.as_deref())
    }

    /// Reports each pinned worker's CPU in `gauge` (labelled by worker index).
    pub fn reporting_to(mut self, gauge: IntGaugeVec) -> Self {
        self.gauge = Some(gauge);
        self
    }

    /// The CPU worker `index` is to be pinned to, if any.
    pub fn cpu_of(&self, index: usize) -> Option<usize> {
        match &self.cpus {
            Cpus::Pinned(cpus) => cpus.get(index).copied(),
            Cpus::Unpinned(_) => None,
        }
    }

    /// Lets the calling thread run on every CPU the workers were given. A new thread
    /// inherits its creator's CPU mask, so without this the threads a pinned worker's
    /// runtime starts for blocking work (DNS lookups of upstreams named by host name)
    /// would all share that worker's one CPU; the runtime calls it as each one starts.
    pub fn release_current_thread(&self) {
        let Cpus::Pinned(cpus) = &self.cpus else {
            return;
        };
        if let Err(e) = set_current_thread_cpus(cpus) {
            tracing::debug!(error = %e, "cannot widen a blocking thread's CPU mask; it stays on its worker's CPU");
        }
    }

    /// Pins the calling thread, worker `index`, to its CPU if it has one. A failure is
    /// logged and the worker runs unpinned: pinning is an optimisation, never a reason
    /// not to serve.
    pub fn pin_current_worker(&self, index: usize) {
        let Some(cpu) = self.cpu_of(index) else {
            return;
        };
        match set_current_thread_cpus(&[cpu]) {
            Ok(()) => {
                if let Some(gauge) = &self.gauge {
                    gauge.with_label_values(&[&index.to_string()]).set(cpu as i64);
                }
            }
            Err(e) => {
                tracing::warn!(worker = index, cpu, error = %e, "cannot pin the worker to its CPU; it runs unpinned")
            }
        }
    }
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cpus {
            Cpus::Unpinned(why) => write!(f, "workers not pinned to CPUs ({why})"),
            Cpus::Pinned(cpus) => {
                f.write_str("workers pinned one per CPU: ")?;
                for (worker, cpu) in cpus.iter().enumerate() {
                    if worker > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "worker {worker} on CPU {cpu}")?;
                }
                Ok(())
            }
        }
    }
}

/// The CPUs the calling thread may run on (at start-up: the process's), ascending.
#[cfg(target_os = "linux")]
pub fn allowed_cpus() -> std::io::Result<Vec<usize>> {
    let set = rustix::thread::sched_getaffinity(None)?;
    Ok((0..rustix::thread::CpuSet::MAX_CPU)
        .filter(|&cpu| set.is_set(cpu))
        .collect())
}

/// Lets the calling thread run on `cpus` only.
#[cfg(target_os = "linux")]
pub fn set_current_thread_cpus(cpus: &[usize]) -> std::io::Result<()> {
    let mut set = rustix::thread::CpuSet::new();
    for &cpu in cpus {
        set.set(cpu);
    }
    rustix::thread::sched_setaffinity(None, &set)?;
    Ok(())
}

/// Elsewhere the CPUs are unknown, so `auto` never pins.
#[cfg(not(target_os = "linux"))]
pub fn allowed_cpus() -> std::io::Result<Vec<usize>> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

#[cfg(not(target_os = "linux"))]
pub fn set_current_thread_cpus(_cpus: &[usize]) -> std::io::Result<()> {
    Err(std::io::Error::from(std::io::ErrorKind::Unsupported))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auto_pins_one_worker_per_allowed_cpu() {
        let placement = Placement::plan(WorkerCpuAffinity::Auto, 3, Some(&[2, 5, 7]));
        assert_eq!(
            (
                placement.cpu_of(0),
                placement.cpu_of(1),
                placement.cpu_of(2),
                placement.cpu_of(3)
            ),
            (Some(2), Some(5), Some(7), None)
        );
        assert_eq!(
            placement.to_string(),
            "workers pinned one per CPU: worker 0 on CPU 2, worker 1 on CPU 5, worker 2 on CPU 7"
        );
    }

    #[test]
    fn auto_leaves_workers_to_the_kernel_unless_the_counts_match() {
        for (workers, allowed) in [(2, &[0, 1, 2, 3][..]), (4, &[0, 1][..]), (1, &[0, 1][..])] {
            let placement = Placement::plan(WorkerCpuAffinity::Auto, workers, Some(allowed));
            assert_eq!(placement.cpu_of(0), None, "{workers} workers on {allowed:?}");
            assert!(
                placement.to_string().starts_with("workers not pinned to CPUs ("),
                "{placement}"
            );
        }
        let unknown = Placement::plan(WorkerCpuAffinity::Auto, 2, None);
        assert_eq!(unknown.cpu_of(0), None);
    }

    #[test]
    fn off_never_pins() {
        let placement = Placement::plan(WorkerCpuAffinity::Off, 2, Some(&[0, 1]));
        assert_eq!((placement.cpu_of(0), placement.cpu_of(1)), (None, None));
        assert_eq!(
            placement.to_string(),
            "workers not pinned to CPUs (worker_cpu_affinity = \"off\")"
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_pinned_thread_runs_only_on_its_cpu_and_reports_it() {
        let allowed = allowed_cpus().unwrap();
        assert!(!allowed.is_empty());
        let last = *allowed.last().unwrap();
        let gauge = IntGaugeVec::new(prometheus::Opts::new("worker_cpu", "test"), &["worker"]).unwrap();
        let placement =
            Placement::plan(WorkerCpuAffinity::Auto, allowed.len(), Some(&allowed)).reporting_to(gauge.clone());
        let index = allowed.len() - 1;
        let seen = std::thread::spawn(move || {
            placement.pin_current_worker(index);
            allowed_cpus().unwrap()
        })
        .join()
        .unwrap();
        assert_eq!(seen, vec![last]);
        assert_eq!(gauge.with_label_values(&[&index.to_string()]).get(), last as i64);
        // The thread that ran the test keeps its own mask.
        assert_eq!(allowed_cpus().unwrap(), allowed);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn threads_a_pinned_worker_starts_are_released_to_every_worker_cpu() {
        let allowed = allowed_cpus().unwrap();
        let placement = Placement::plan(WorkerCpuAffinity::Auto, allowed.len(), Some(&allowed));
        let masks = std::thread::spawn(move || {
            placement.pin_current_worker(0);
            // What a worker's runtime does: its blocking threads start from the pinned
            // thread, one left as created and one released.
            let inherited = std::thread::spawn(|| allowed_cpus().unwrap()).join().unwrap();
            let released = std::thread::scope(|scope| {
                scope
                    .spawn(|| {
                        placement.release_current_thread();
                        allowed_cpus().unwrap()
                    })
                    .join()
                    .unwrap()
            });
            (inherited, released)
        })
        .join()
        .unwrap();
        assert_eq!(masks.0, vec![allowed[0]], "a new thread inherits the worker's CPU");
        assert_eq!(masks.1, allowed);
    }
}
