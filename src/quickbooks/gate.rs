//! The in-process half of the concurrency limit: per realm, one permit per concurrency slot.
//!
//! A call waits here before it books a start time or touches PostgreSQL, so the calls queued
//! inside one replica cost no queries; only a call holding a pass leases a slot row. Passes
//! mirror the slot rows: the *shared* passes stand for slots `0..max − interactive_slots`,
//! which both lanes use, and the *reserved* passes for the last `interactive_slots` slots,
//! which only interactive calls use. Within one replica a pass therefore always finds its slot
//! range with a free row; only another replica's calls can have taken them all.

use std::{
    collections::HashMap,
    ops::Range,
    sync::{Arc, Mutex, PoisonError},
};

use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};

use super::limiter::Lane;
use crate::domain::RealmId;

/// The gates of every realm this replica has called.
#[derive(Debug)]
pub(super) struct RealmGates {
    max_concurrent: u16,
    interactive_slots: u16,
    gates: Mutex<HashMap<RealmId, Arc<RealmGate>>>,
}

/// The gate of one realm.
#[derive(Debug)]
pub(super) struct RealmGate {
    shared: Arc<Semaphore>,
    reserved: Arc<Semaphore>,
    split: u16,
    max_concurrent: u16,
    /// Set once the realm's slot rows are known to exist, so that insert runs once per realm.
    pub slots_ready: OnceCell<()>,
}

/// Leave to lease one slot of `slots`; dropping it lets the next waiter of the realm in.
#[derive(Debug)]
pub(super) struct GatePass {
    _permit: OwnedSemaphorePermit,
    slots: Range<u16>,
}

impl GatePass {
    /// The slot rows this pass may lease.
    pub fn slots(&self) -> Range<u16> {
        self.slots.clone()
    }
}

impl RealmGates {
    /// `interactive_slots` must be below `max_concurrent` (the settings ensure it).
    pub fn new(max_concurrent: u16, interactive_slots: u16) -> Self {
        Self {
            max_concurrent,
            interactive_slots,
            gates: Mutex::new(HashMap::new()),
        }
    }

    /// The realm's gate, made on first use.
    pub fn of(&self, realm: &RealmId) -> Arc<RealmGate> {
        // The map only grows and every entry is valid on its own, so a panic elsewhere while
        // the lock was held leaves nothing half-done: carry on with the poisoned map.
        let mut gates = self.gates.lock().unwrap_or_else(PoisonError::into_inner);
        let gate = gates.entry(realm.clone()).or_insert_with(|| {
            Arc::new(RealmGate::new(self.max_concurrent, self.interactive_slots))
        });
        Arc::clone(gate)
    }
}

impl RealmGate {
    fn new(max_concurrent: u16, interactive_slots: u16) -> Self {
        let split = max_concurrent - interactive_slots;
        Self {
            shared: Arc::new(Semaphore::new(usize::from(split))),
            reserved: Arc::new(Semaphore::new(usize::from(interactive_slots))),
            split,
            max_concurrent,
            slots_ready: OnceCell::new(),
        }
    }

    /// Waits for a pass. Background calls queue for the shared passes only; interactive calls
    /// take a reserved pass when one is free and otherwise whichever frees first, so a
    /// background backlog never holds them up for long.
    pub async fn enter(&self, lane: Lane) -> GatePass {
        match lane {
            Lane::Background => self.shared_pass().await,
            Lane::Interactive => {
                tokio::select! {
                    biased;
                    pass = self.reserved_pass() => pass,
                    pass = self.shared_pass() => pass,
                }
            }
        }
    }

    async fn shared_pass(&self) -> GatePass {
        GatePass {
            _permit: acquire(&self.shared).await,
            slots: 0..self.split,
        }
    }

    async fn reserved_pass(&self) -> GatePass {
        GatePass {
            _permit: acquire(&self.reserved).await,
            slots: self.split..self.max_concurrent,
        }
    }
}

async fn acquire(semaphore: &Arc<Semaphore>) -> OwnedSemaphorePermit {
    // Acquiring fails only on a closed semaphore, and these are never closed.
    Arc::clone(semaphore)
        .acquire_owned()
        .await
        .expect("gate semaphores are never closed")
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn realm() -> RealmId {
        RealmId::parse("gate-realm").unwrap()
    }

    async fn times_out(gate: &RealmGate, lane: Lane) -> bool {
        tokio::time::timeout(Duration::from_millis(20), gate.enter(lane))
            .await
            .is_err()
    }

    #[tokio::test]
    async fn background_never_takes_the_reserved_slots() {
        let gates = RealmGates::new(3, 1);
        let gate = gates.of(&realm());
        let a = gate.enter(Lane::Background).await;
        let b = gate.enter(Lane::Background).await;
        assert_eq!((a.slots(), b.slots()), (0..2, 0..2));
        assert!(times_out(&gate, Lane::Background).await);
        let interactive = gate.enter(Lane::Interactive).await;
        assert_eq!(interactive.slots(), 2..3);
        assert!(times_out(&gate, Lane::Interactive).await, "all three held");
        drop(a);
        assert_eq!(gate.enter(Lane::Background).await.slots(), 0..2);
    }

    #[tokio::test]
    async fn interactive_prefers_reserved_then_falls_back_to_shared() {
        let gates = RealmGates::new(3, 1);
        let gate = gates.of(&realm());
        let first = gate.enter(Lane::Interactive).await;
        let second = gate.enter(Lane::Interactive).await;
        let third = gate.enter(Lane::Interactive).await;
        assert_eq!(
            (first.slots(), second.slots(), third.slots()),
            (2..3, 0..2, 0..2)
        );
        // A waiting interactive call gets whichever pass frees first.
        let waiting = tokio::spawn({
            let gate = Arc::clone(&gate);
            async move { gate.enter(Lane::Interactive).await.slots() }
        });
        tokio::time::sleep(Duration::from_millis(10)).await;
        drop(second);
        assert_eq!(waiting.await.unwrap(), 0..2);
    }

    #[tokio::test]
    async fn one_gate_per_realm() {
        let gates = RealmGates::new(2, 1);
        let a = gates.of(&realm());
        assert!(Arc::ptr_eq(&a, &gates.of(&realm())));
        let other = gates.of(&RealmId::parse("other-realm").unwrap());
        assert!(!Arc::ptr_eq(&a, &other));
    }
}
