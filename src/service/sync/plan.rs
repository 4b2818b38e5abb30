//! A sync run's plan: what to do for each Digit customer, from the matcher's decisions and
//! what the tenant's state says about each customer. Pure: the same plan serves a dry run
//! (returned) and a real run (applied), so the two cannot differ.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::{
    domain::DigitCustomer,
    matching::{self, Candidate, Decision, MatchOutcome},
    store::{reviews::StoredCandidate, sync_runs::Counts},
};

/// What a run does for one Digit customer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Action {
    /// Link it to a QBO customer.
    Link {
        /// The Digit customer.
        digit: String,
        /// The QBO customer.
        qbo: String,
        /// How the matcher decided.
        method: matching::LinkMethod,
        /// The matcher's score.
        score: f64,
        /// Why.
        reasons: Vec<String>,
    },
    /// Ask a person.
    Review {
        /// The Digit customer.
        digit: String,
        /// Why the matcher could not decide.
        reason: String,
        /// The candidates, best first.
        candidates: Vec<StoredCandidate>,
    },
    /// Create it in QBO (through a push job).
    Push {
        /// The Digit customer.
        digit: String,
    },
    /// Leave it as it is.
    Keep {
        /// The Digit customer.
        digit: String,
        /// Its QBO customer, when linked.
        qbo: Option<String>,
        /// Why nothing is done.
        why: String,
    },
}

impl Action {
    /// The Digit customer the action is for.
    #[must_use]
    pub fn digit(&self) -> &str {
        match self {
            Self::Link { digit, .. }
            | Self::Review { digit, .. }
            | Self::Push { digit }
            | Self::Keep { digit, .. } => digit,
        }
    }
}

/// What the plan must know beside the matcher's decisions.
#[derive(Debug, Default)]
pub struct PlanContext<'a> {
    /// The Digit customers, by id.
    pub digit: HashMap<&'a str, &'a DigitCustomer>,
    /// QBO customers the mirror has (not missing), with whether each is active.
    pub qbo_active: HashMap<&'a str, bool>,
    /// Digit customers with an open review item.
    pub in_review: HashSet<&'a str>,
    /// Digit customers whose push is queued or running.
    pub pushing: HashSet<&'a str>,
    /// The run never creates customers in QBO.
    pub link_only: bool,
}

/// One planned action and what it adds to the run's counters.
#[derive(Debug, Clone, PartialEq)]
pub struct Planned {
    /// The action.
    pub action: Action,
    /// Its counters (a push counts as planned; a real run counts it when QBO answers).
    pub counts: Counts,
}

/// Plans every outcome, in Digit id order (byte order, the order checkpoints use).
#[must_use]
pub fn plan(outcomes: Vec<MatchOutcome>, ctx: &PlanContext<'_>) -> Vec<Planned> {
    let mut planned: Vec<Planned> = outcomes.into_iter().map(|o| plan_one(o, ctx)).collect();
    planned.sort_by(|a, b| a.action.digit().cmp(b.action.digit()));
    planned
}

fn plan_one(outcome: MatchOutcome, ctx: &PlanContext<'_>) -> Planned {
    let digit = outcome.digit_id;
    let mut counts = Counts {
        digit_customers_considered: 1,
        ..Counts::default()
    };
    let keep = |digit: String, qbo: Option<String>, why: &str| Action::Keep {
        digit,
        qbo,
        why: why.to_owned(),
    };
    let action = match outcome.decision {
        Decision::AlreadyLinked { qbo_id } => {
            counts.already_linked = 1;
            let why = match ctx.qbo_active.get(qbo_id.as_str()) {
                Some(true) => "linked already",
                Some(false) => {
                    counts.conflicts = 1;
                    "linked to a QuickBooks customer that is inactive"
                }
                None => {
                    counts.conflicts = 1;
                    "linked to a QuickBooks customer that QuickBooks no longer has"
                }
            };
            keep(digit, Some(qbo_id), why)
        }
        // A push decides for itself when it runs; linking under it could orphan its create.
        _ if ctx.pushing.contains(digit.as_str()) => {
            keep(digit, None, "a push to QuickBooks is under way")
        }
        Decision::AutoLink {
            qbo_id,
            method,
            score,
            reasons,
        } => {
            counts.auto_linked = 1;
            Action::Link {
                digit,
                qbo: qbo_id,
                method,
                score,
                reasons,
            }
        }
        _ if ctx.in_review.contains(digit.as_str()) => {
            keep(digit, None, "waiting for a person's review")
        }
        Decision::Review { reason, candidates } => {
            counts.queued_for_review = 1;
            Action::Review {
                digit,
                reason,
                candidates: candidates.into_iter().map(stored).collect(),
            }
        }
        Decision::Unmatched => {
            let active = ctx.digit.get(digit.as_str()).is_some_and(|c| c.active);
            if !active {
                keep(digit, None, "inactive in Digit: not created in QuickBooks")
            } else if ctx.link_only {
                keep(digit, None, "no QuickBooks customer matches; link-only run")
            } else {
                counts.pushed_to_qbo = 1;
                Action::Push { digit }
            }
        }
    };
    Planned { action, counts }
}

fn stored(c: Candidate) -> StoredCandidate {
    StoredCandidate {
        qbo_customer_id: c.qbo_id,
        display_name: c.display_name,
        active: c.active,
        score: c.score,
        reasons: c.reasons,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::DigitCustomerId;

    fn customer(id: &str, active: bool) -> DigitCustomer {
        DigitCustomer {
            id: DigitCustomerId::parse(id).unwrap(),
            display_name: id.to_owned(),
            company_name: None,
            given_name: None,
            family_name: None,
            email: None,
            phone: None,
            active,
        }
    }

    fn outcome(id: &str, decision: Decision) -> MatchOutcome {
        MatchOutcome {
            digit_id: id.to_owned(),
            decision,
        }
    }

    #[test]
    fn each_decision_becomes_one_action_with_its_counter() {
        let customers = [
            customer("a", true),
            customer("b", true),
            customer("c", true),
            customer("d", false),
            customer("e", true),
            customer("f", true),
            customer("g", true),
        ];
        let mut ctx = PlanContext {
            digit: customers.iter().map(|c| (c.id.as_str(), c)).collect(),
            qbo_active: HashMap::from([("1", true), ("2", false)]),
            in_review: HashSet::from(["f"]),
            pushing: HashSet::from(["g"]),
            link_only: false,
        };
        let review = Decision::Review {
            reason: "r".into(),
            candidates: vec![],
        };
        let outcomes = || {
            vec![
                outcome("g", Decision::Unmatched),
                outcome("f", review.clone()),
                outcome("e", Decision::AlreadyLinked { qbo_id: "9".into() }),
                outcome("d", Decision::Unmatched),
                outcome("c", Decision::Unmatched),
                outcome("b", review.clone()),
                outcome(
                    "a",
                    Decision::AutoLink {
                        qbo_id: "1".into(),
                        method: matching::LinkMethod::AutoNormalized,
                        score: 0.97,
                        reasons: vec!["same".into()],
                    },
                ),
            ]
        };
        let planned = plan(outcomes(), &ctx);
        let kinds: Vec<(&str, &str)> = planned
            .iter()
            .map(|p| {
                let kind = match &p.action {
                    Action::Link { .. } => "link",
                    Action::Review { .. } => "review",
                    Action::Push { .. } => "push",
                    Action::Keep { .. } => "keep",
                };
                (p.action.digit(), kind)
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ("a", "link"),
                ("b", "review"),
                ("c", "push"),
                ("d", "keep"),
                ("e", "keep"),
                ("f", "keep"),
                ("g", "keep")
            ]
        );
        let mut total = Counts::default();
        for p in &planned {
            total += p.counts;
        }
        assert_eq!(total.digit_customers_considered, 7);
        assert_eq!(total.auto_linked, 1);
        assert_eq!(total.queued_for_review, 1);
        assert_eq!(total.pushed_to_qbo, 1);
        assert_eq!(total.already_linked, 1);
        assert_eq!(
            total.conflicts, 1,
            "the link to a QBO customer that is gone"
        );

        ctx.link_only = true;
        let planned = plan(outcomes(), &ctx);
        assert!(
            planned
                .iter()
                .all(|p| !matches!(p.action, Action::Push { .. })),
            "a link-only run never plans a push"
        );
    }
}
