//! The invariants every chaos scenario ends with, counted rather than asserted one by one so
//! the figures line shows them all: duplicates in QBO, lost or wrong links, stuck jobs,
//! audit events that do not match a link change, limit violations.

use std::collections::{BTreeMap, HashMap, HashSet};

use super::{
    env::{ChaosEnv, REALM, TENANT},
    names,
    sim::counter,
};

/// One scenario's figures.
#[derive(Debug, Default, Clone)]
pub struct Figures {
    pub scenario: &'static str,
    pub rounds: u32,
    pub faults: u64,
    pub customers: u64,
    pub duplicates: u64,
    /// QBO customers the service created that no link holds (a create done twice).
    pub orphans: u64,
    pub lost_links: u64,
    pub wrong_links: u64,
    pub stuck_jobs: u64,
    pub audit_mismatches: u64,
    pub limit_violations: u64,
    pub review_items: u64,
    pub secs: f64,
}

impl Figures {
    /// The one line a scenario prints.
    pub fn line(&self) -> String {
        format!(
            "chaos {}: rounds {}, faults injected {}, customers {}×{}, duplicates {}, \
             orphan creates {}, lost links {}, wrong links {}, stuck jobs {}, audit mismatches {}, \
             limit violations {}, open reviews {}, {:.1} s",
            self.scenario,
            self.rounds,
            self.faults,
            self.customers,
            self.customers,
            self.duplicates,
            self.orphans,
            self.lost_links,
            self.wrong_links,
            self.stuck_jobs,
            self.audit_mismatches,
            self.limit_violations,
            self.review_items,
            self.secs,
        )
    }

    /// Prints the line and asserts every zero.
    pub fn assert_clean(&self) {
        println!("{}", self.line());
        assert_eq!(
            (
                self.duplicates,
                self.orphans,
                self.lost_links,
                self.wrong_links,
                self.stuck_jobs,
                self.audit_mismatches,
                self.limit_violations,
            ),
            (0, 0, 0, 0, 0, 0, 0),
            "{}",
            self.line()
        );
    }
}

/// The tenant's links: Digit id → QBO id.
pub async fn links(env: &ChaosEnv) -> HashMap<String, String> {
    let rows: Vec<(String, String)> =
        sqlx::query_as("SELECT digit_customer_id, qbo_customer_id FROM links WHERE tenant_id = $1")
            .bind(TENANT)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    rows.into_iter().collect()
}

/// Links of `before` that are gone or point elsewhere now (the suite never unlinks).
pub fn lost_since(before: &HashMap<String, String>, now: &HashMap<String, String>) -> u64 {
    before
        .iter()
        .filter(|(digit, qbo)| now.get(*digit) != Some(*qbo))
        .count() as u64
}

/// Fills the end-state counters of `fig`. `must_link` are Digit customers that must be
/// linked at the end (pushed ones; the others may instead wait in review).
pub async fn end_state(env: &ChaosEnv, fig: &mut Figures, must_link: &HashSet<String>) {
    let qbo = env.sim.customers(REALM).await;
    let mut by_key: BTreeMap<String, u64> = BTreeMap::new();
    for (_, name, _) in &qbo {
        *by_key.entry(names::key(name)).or_default() += 1;
    }
    fig.duplicates = by_key.values().map(|n| n - 1).sum();
    let links = links(env).await;
    let linked_qbo: HashSet<&String> = links.values().collect();
    let seeded: HashSet<&String> = env.seeded_qbo.iter().collect();
    fig.orphans = qbo
        .iter()
        .filter(|(id, name, _)| !seeded.contains(name) && !linked_qbo.contains(id))
        .count() as u64;
    let qbo_names: HashMap<&String, &String> = qbo.iter().map(|(id, n, _)| (id, n)).collect();
    let digit: Vec<(String, String)> =
        sqlx::query_as("SELECT id, display_name FROM digit_customers WHERE tenant_id = $1")
            .bind(TENANT)
            .fetch_all(&env.pool)
            .await
            .unwrap();
    let in_review: HashSet<String> = sqlx::query_scalar(
        "SELECT digit_customer_id FROM review_items WHERE tenant_id = $1 AND state = 'open'",
    )
    .bind(TENANT)
    .fetch_all(&env.pool)
    .await
    .unwrap()
    .into_iter()
    .collect();
    fig.review_items = in_review.len() as u64;
    for (id, name) in &digit {
        match links.get(id) {
            Some(q) => {
                let same = qbo_names
                    .get(q)
                    .is_some_and(|qn| names::key(qn) == names::key(name));
                fig.wrong_links += u64::from(!same);
            }
            None => {
                let excused = in_review.contains(id) && !must_link.contains(id);
                fig.lost_links += u64::from(!excused);
            }
        }
    }
    fig.stuck_jobs = stuck_jobs(env).await;
    fig.audit_mismatches = audit_mismatches(env, &links).await;
    fig.limit_violations = counter(&env.sim.stats().await, "limit_violations.total");
}

/// Jobs not finished well (queued, running, parked, dead) and runs still active.
pub async fn stuck_jobs(env: &ChaosEnv) -> u64 {
    let jobs: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM jobs WHERE state IN ('queued', 'running', 'parked', 'dead')",
    )
    .fetch_one(&env.pool)
    .await
    .unwrap();
    let runs: i64 =
        sqlx::query_scalar("SELECT count(*) FROM sync_runs WHERE state IN ('queued', 'running')")
            .fetch_one(&env.pool)
            .await
            .unwrap();
    u64::try_from(jobs + runs).unwrap_or(0)
}

/// Audit events that do not chain (an event's `before` is not the previous `after`), and
/// customers whose last event does not give their link as it stands.
async fn audit_mismatches(env: &ChaosEnv, links: &HashMap<String, String>) -> u64 {
    let events: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT digit_customer_id, before->>'qbo_customer_id', after->>'qbo_customer_id'
         FROM link_events WHERE tenant_id = $1 ORDER BY digit_customer_id, id",
    )
    .bind(TENANT)
    .fetch_all(&env.pool)
    .await
    .unwrap();
    let mut state: HashMap<String, Option<String>> = HashMap::new();
    let mut mismatches = 0u64;
    for (digit, before, after) in events {
        let current = state.entry(digit).or_insert(None);
        mismatches += u64::from(*current != before || *current == after);
        *current = after;
    }
    let mut customers: HashSet<&String> = links.keys().collect();
    customers.extend(state.keys());
    for digit in customers {
        let replayed = state.get(digit).cloned().flatten();
        mismatches += u64::from(replayed.as_ref() != links.get(digit));
    }
    mismatches
}
