//! The reactor's time: the service clock in production (the wall clock, unless a development
//! option speeds it up or moves it on), a clock tests move by hand.
//!
//! Every time the Batch rules read — state transition times, the reconnect grace of a node,
//! wall-clock limits, retention — comes from a [`TimeSource`] the reactor is given, so that
//! reactor tests (and job schedules, which need days to pass in seconds) control it.

use crate::model::time::{Clock, Timestamp};
use std::sync::{Arc, Mutex};

/// Where the reactor reads the time.
pub trait TimeSource: Send + Sync + std::fmt::Debug {
    /// The current time (strictly increasing for the wall clock).
    fn now(&self) -> Timestamp;

    /// How many times as fast as real time this clock runs: waits that are about machines,
    /// not Batch rules (an agent's reconnect grace), are stretched by it.
    fn speed(&self) -> f64 {
        1.0
    }

    /// A wall-clock instant (milliseconds since the epoch, as node agents report the times
    /// of processes) as this clock reads it.
    fn wall_ms_to_service(&self, ms: i64) -> i64 {
        ms
    }
}

/// The service clock ([`Clock::now`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct WallClock;

impl TimeSource for WallClock {
    fn now(&self) -> Timestamp {
        Clock::now()
    }

    fn speed(&self) -> f64 {
        Clock::speed()
    }

    fn wall_ms_to_service(&self, ms: i64) -> i64 {
        Clock::from_wall_ms(ms)
    }
}

/// A clock that only moves when told to: for reactor tests.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<Timestamp>>);

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Arc::new(Mutex::new(start)))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *t += by;
    }
}

impl TimeSource for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}
