//! QBO's per-realm limits: requests per rolling window, batch requests per rolling window and
//! requests in flight. Every breach is counted; when enforcement is on it is also refused.

use std::{
    collections::{HashMap, VecDeque},
    sync::Arc,
    time::{Duration, Instant},
};

use super::{Shared, SimulatorConfig, lock};

/// Which limit a request broke.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Violation {
    Rate,
    Concurrency,
    Batch,
}

#[derive(Debug, Default)]
struct RealmLimits {
    requests: VecDeque<Instant>,
    batches: VecDeque<Instant>,
    in_flight: u32,
}

fn trim(window: &mut VecDeque<Instant>, now: Instant, length: Duration) {
    while window
        .front()
        .is_some_and(|t| now.duration_since(*t) >= length)
    {
        window.pop_front();
    }
}

/// Limit state of every realm.
#[derive(Debug, Default)]
pub struct Limits {
    realms: HashMap<String, RealmLimits>,
}

/// The outcome of admitting one request.
pub struct Admission {
    /// The limit broken, if any (counted either way).
    pub violation: Option<Violation>,
    /// False when the request must be refused.
    pub admitted: bool,
    /// Requests of the realm in flight once this one is admitted.
    pub in_flight: u32,
}

impl Limits {
    /// Admits a request of `realm` at `now`, recording it in the windows when admitted.
    pub fn admit(
        &mut self,
        realm: &str,
        is_batch: bool,
        now: Instant,
        cfg: &SimulatorConfig,
    ) -> Admission {
        let state = self.realms.entry(realm.to_owned()).or_default();
        trim(&mut state.requests, now, cfg.rate_window);
        trim(&mut state.batches, now, cfg.rate_window);
        let violation = if state.in_flight >= cfg.max_concurrent {
            Some(Violation::Concurrency)
        } else if state.requests.len() >= cfg.max_requests_per_window as usize {
            Some(Violation::Rate)
        } else if is_batch && state.batches.len() >= cfg.max_batches_per_window as usize {
            Some(Violation::Batch)
        } else {
            None
        };
        // Refused requests take neither a slot nor a place in the windows.
        let admitted = violation.is_none() || !cfg.enforce_limits;
        if admitted {
            state.in_flight += 1;
            state.requests.push_back(now);
            if is_batch {
                state.batches.push_back(now);
            }
        }
        Admission {
            violation,
            admitted,
            in_flight: state.in_flight,
        }
    }

    /// Charges extra requests to the window (batch items, when items are metered); returns true
    /// when that pushed the realm over the limit.
    pub fn charge_extra(
        &mut self,
        realm: &str,
        extra: usize,
        now: Instant,
        cfg: &SimulatorConfig,
    ) -> bool {
        let state = self.realms.entry(realm.to_owned()).or_default();
        trim(&mut state.requests, now, cfg.rate_window);
        state.requests.extend(std::iter::repeat_n(now, extra));
        state.requests.len() > cfg.max_requests_per_window as usize
    }

    fn release(&mut self, realm: &str) {
        if let Some(state) = self.realms.get_mut(realm) {
            state.in_flight = state.in_flight.saturating_sub(1);
        }
    }
}

/// Gives the concurrency slot back when the request ends, even if its future is dropped.
pub struct SlotGuard {
    pub shared: Arc<Shared>,
    pub realm: String,
}

impl Drop for SlotGuard {
    fn drop(&mut self) {
        lock(&self.shared.limits).release(&self.realm);
    }
}
