//! Lane numbers of one process: a run takes the lowest free number when it
//! starts and gives it back when its teardown was clean. The number is in
//! every name the run makes (namespaces, veths, IQNs, dm names) beside the
//! process's run id, so two live runs of one process never share one,
//! however the suite orders or how many runs it has. A number whose
//! teardown left something behind is not handed out again: its names may
//! still be taken.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

/// Lane numbers one process has (names carry them as one byte; a lane's
/// subnet slot is claimed host-wide apart from its number).
pub const LANES: u16 = 200;

/// The free list.
#[derive(Clone)]
pub struct LanePool {
    free: Arc<Mutex<BTreeSet<u8>>>,
}

/// A lane number held by a run; dropping it gives it back, unless
/// [`LaneTicket::keep_out`] said its names may still be in use.
pub struct LaneTicket {
    number: u8,
    pool: LanePool,
    reusable: bool,
}

impl Default for LanePool {
    fn default() -> Self {
        Self::new()
    }
}

impl LanePool {
    /// Every number free.
    pub fn new() -> LanePool {
        LanePool {
            free: Arc::new(Mutex::new((0..LANES).map(|n| n as u8).collect())),
        }
    }

    /// The lowest free number, if any is left.
    pub fn take(&self) -> Option<LaneTicket> {
        let mut free = self.free.lock().unwrap_or_else(|e| e.into_inner());
        let number = free.pop_first()?;
        Some(LaneTicket {
            number,
            pool: self.clone(),
            reusable: true,
        })
    }

    /// How many numbers are free now.
    pub fn free(&self) -> usize {
        self.free.lock().unwrap_or_else(|e| e.into_inner()).len()
    }
}

impl LaneTicket {
    pub fn number(&self) -> u8 {
        self.number
    }

    /// The run's teardown left something behind: never hand this number
    /// out again in this process.
    pub fn keep_out(&mut self) {
        self.reusable = false;
    }
}

impl Drop for LaneTicket {
    fn drop(&mut self) {
        if self.reusable {
            let mut free = self.pool.free.lock().unwrap_or_else(|e| e.into_inner());
            free.insert(self.number);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn live_runs_never_share_a_number_however_many_runs_there_are() {
        let pool = LanePool::new();
        let mut live = Vec::new();
        // 1,000 runs (a sweep's maximum), 3 at a time, ending out of order.
        for i in 0..1000 {
            let t = pool.take().expect("a free lane");
            assert!(
                live.iter().all(|l: &LaneTicket| l.number() != t.number()),
                "run {i} got a live lane"
            );
            live.push(t);
            if live.len() == 3 {
                live.remove(i % 3);
            }
        }
        assert!(live.iter().all(|t| t.number() < 3));
    }

    #[test]
    fn a_number_whose_teardown_left_something_is_not_given_again() {
        let pool = LanePool::new();
        let mut a = pool.take().unwrap();
        assert_eq!(a.number(), 0);
        a.keep_out();
        drop(a);
        assert_eq!(pool.take().unwrap().number(), 1);
        assert_eq!(pool.free(), usize::from(LANES) - 1);
        let all: Vec<_> = std::iter::from_fn(|| pool.take()).collect();
        assert_eq!(all.len(), usize::from(LANES) - 1);
        assert!(pool.take().is_none());
    }
}
