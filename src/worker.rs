//! Which proxy worker thread the caller runs on.
//!
//! The public listener is served thread-per-core (see [`crate::server`]): each worker owns
//! its upstream pools and its metric shards, and finds them by this index. It lives here,
//! below everything that uses it, so that metrics and upstream pools need not reach up into
//! the server for it; the server sets it when it starts a worker.

use std::cell::Cell;

thread_local! {
    /// Index of the proxy worker running on this thread (0 elsewhere).
    static WORKER_INDEX: Cell<usize> = const { Cell::new(0) };
}

/// Index of the proxy worker running on the calling thread (0 on other threads).
#[inline]
pub fn worker_index() -> usize {
    WORKER_INDEX.with(Cell::get)
}

/// Marks the calling thread as proxy worker `index` (the server, when it starts a worker).
pub fn set_worker_index(index: usize) {
    WORKER_INDEX.with(|w| w.set(index));
}

/// Runs `f` as if on proxy worker `index` (for tests of per-worker state).
#[cfg(test)]
pub(crate) fn as_worker<R>(index: usize, f: impl FnOnce() -> R) -> R {
    let before = WORKER_INDEX.with(|w| w.replace(index));
    let result = f();
    WORKER_INDEX.with(|w| w.set(before));
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn as_worker_sets_the_index_and_restores_it() {
        set_worker_index(0);
        assert_eq!(as_worker(3, worker_index), 3);
        assert_eq!(worker_index(), 0);
    }
}
