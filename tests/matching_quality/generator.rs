//! The seeded generator of the labelled matching data set (`tests/data/matching/`).
//!
//! Every Digit customer belongs to one labelled case. QBO customers are written exactly as the
//! QBO API returns them, so the same files also drive the `qbo-sync match` CLI.

use std::collections::HashSet;

use qbo_sync::matching::{DigitCustomerRecord, normalize_name};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

use super::vocab::*;

pub const SEED: u64 = 20_261_125;

/// What a case expects of the matcher.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Class {
    /// A safe variation (case, spacing, punctuation, &/and, legal form spelling, accents, order):
    /// must be linked automatically to `truth`.
    Safe,
    /// Strong evidence (id marker, e-mail with a compatible name): should link to `truth`.
    Strong,
    /// A risky variation (typo, dropped legal form, same e-mail under another name): `truth`
    /// must be proposed (automatic link to it, or among the review candidates).
    Risky,
    /// Only a person can tell (twins, duplicates): never linked automatically; `related` proposed.
    Ambiguous,
    /// `truth` is inactive in QBO: never linked automatically, proposed flagged inactive.
    Inactive,
    /// A person rejected the pair: `forbidden` never proposed again.
    Rejected,
    /// No QBO customer is this one: any automatic link is a false link.
    Negative,
    /// An existing link to `truth` must stand.
    Linked,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Label {
    pub digit_id: String,
    pub case: String,
    pub class: Class,
    pub truth: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub related: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub forbidden: Vec<String>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Labels {
    pub seed: u64,
    pub links: Vec<(String, String)>,
    pub rejected: Vec<(String, String)>,
    pub cases: Vec<Label>,
}

pub struct DataSet {
    pub qbo: Vec<Value>,
    pub digit: Vec<DigitCustomerRecord>,
    pub labels: Labels,
}

/// A generated customer identity before it is written on either side.
#[derive(Debug, Clone)]
pub(super) struct Entity {
    /// The name without legal form, as QBO holds it.
    pub base: String,
    /// Index into [`LEGAL`].
    pub legal: Option<usize>,
    pub person: Option<(String, String)>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

impl Entity {
    pub fn display(&self) -> String {
        match self.legal {
            Some(l) => format!("{} {}", self.base, LEGAL[l][0]),
            None => self.base.clone(),
        }
    }
}

pub(super) struct Gen {
    pub rng: StdRng,
    pub qbo: Vec<Value>,
    pub digit: Vec<DigitCustomerRecord>,
    pub labels: Labels,
    reserved: HashSet<String>,
    next_qbo: u32,
    serial: u32,
}

pub fn strip_accents(s: &str) -> String {
    s.nfd().filter(|c| !is_combining_mark(*c)).collect()
}

impl Gen {
    pub fn new(seed: u64) -> Self {
        let labels = Labels {
            seed,
            ..Labels::default()
        };
        Self {
            rng: StdRng::seed_from_u64(seed),
            qbo: vec![],
            digit: vec![],
            labels,
            reserved: HashSet::new(),
            next_qbo: 100,
            serial: 0,
        }
    }

    pub fn pick<'a>(&mut self, items: &'a [&'a str]) -> &'a str {
        items.choose(&mut self.rng).expect("non-empty list")
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    /// Claims a name for one entity: false when it (or its words in another order) is taken.
    pub fn reserve(&mut self, name: &str) -> bool {
        let n = normalize_name(name);
        let key = format!("{}|{}", n.sorted_core(), n.qualifier.unwrap_or_default());
        self.reserved.insert(key)
    }

    fn contact(&mut self, base: &str) -> (Option<String>, Option<String>) {
        self.serial += 1;
        let slug: String = strip_accents(base)
            .to_lowercase()
            .chars()
            .filter(char::is_ascii_alphanumeric)
            .take(12)
            .collect();
        let email = self
            .chance(0.7)
            .then(|| format!("{slug}{}@example-{}.com", self.serial, self.serial % 97));
        let phone = self.chance(0.5).then(|| {
            format!(
                "(555) {:03}-{:04}",
                self.serial / 10_000 % 1000,
                self.serial % 10_000
            )
        });
        (email, phone)
    }

    fn company_base(&mut self) -> String {
        match self.rng.random_range(0..10) {
            0..=3 => format!("{} {}", self.pick(WORDS), self.pick(INDUSTRY)),
            4..=6 => format!("{} {}", self.pick(LAST), self.pick(INDUSTRY)),
            7 => format!("{} & {}", self.pick(LAST), self.pick(LAST)),
            8 => {
                let (a, b) = *AMP_PAIRS.choose(&mut self.rng).expect("pairs");
                format!("{} {a} & {b}", self.pick(WORDS))
            }
            _ => format!(
                "{} {} {}",
                self.pick(WORDS),
                self.pick(LAST),
                self.pick(INDUSTRY)
            ),
        }
    }

    /// A fresh company whose name no other entity has.
    pub fn company(&mut self, legal: bool) -> Entity {
        loop {
            let base = self.company_base();
            if self.reserve(&base) {
                let legal = legal.then(|| self.rng.random_range(0..LEGAL.len()));
                let (email, phone) = self.contact(&base);
                return Entity {
                    base,
                    legal,
                    person: None,
                    email,
                    phone,
                };
            }
        }
    }

    pub fn company_from(&mut self, base: String, legal: Option<usize>) -> Option<Entity> {
        if !self.reserve(&base) {
            return None;
        }
        let (email, phone) = self.contact(&base);
        Some(Entity {
            base,
            legal,
            person: None,
            email,
            phone,
        })
    }

    /// A fresh person; `accented` picks accented first or last names.
    pub fn person(&mut self, accented: bool) -> Entity {
        loop {
            let (first, last) = if accented && self.chance(0.5) {
                (self.pick(FIRST_ACCENTED), self.pick(LAST))
            } else if accented {
                (self.pick(FIRST), self.pick(LAST_ACCENTED))
            } else {
                (self.pick(FIRST), self.pick(LAST))
            };
            let base = format!("{first} {last}");
            if self.reserve(&base) {
                let (email, phone) = self.contact(&base);
                return Entity {
                    base,
                    legal: None,
                    person: Some((first.into(), last.into())),
                    email,
                    phone,
                };
            }
        }
    }

    /// Writes a QBO customer as the API returns it and returns its Id.
    pub fn add_qbo(
        &mut self,
        display: &str,
        e: &Entity,
        active: bool,
        extra: &[(&str, Value)],
    ) -> String {
        let id = self.next_qbo.to_string();
        self.next_qbo += 1;
        let mut c = json!({"Id": id, "SyncToken": "0", "DisplayName": display, "FullyQualifiedName": display, "Active": active, "Job": false});
        let obj = c.as_object_mut().expect("object");
        if let Some((first, last)) = &e.person {
            obj.insert("GivenName".into(), json!(first));
            obj.insert("FamilyName".into(), json!(last));
        } else {
            obj.insert("CompanyName".into(), json!(display));
        }
        if let Some(email) = &e.email {
            obj.insert("PrimaryEmailAddr".into(), json!({"Address": email}));
        }
        if let Some(phone) = &e.phone {
            obj.insert("PrimaryPhone".into(), json!({"FreeFormNumber": phone}));
        }
        for (k, v) in extra {
            obj.insert((*k).into(), v.clone());
        }
        self.qbo.push(c);
        id
    }

    pub fn add_job(&mut self, display: &str, parent_id: &str, parent_name: &str) -> String {
        let e = Entity {
            base: display.into(),
            legal: None,
            person: None,
            email: None,
            phone: None,
        };
        let fqn = format!("{parent_name}:{display}");
        self.add_qbo(
            display,
            &e,
            true,
            &[
                ("Job", json!(true)),
                ("ParentRef", json!({"value": parent_id})),
                ("FullyQualifiedName", json!(fqn)),
            ],
        )
    }

    /// Adds a Digit customer. `contact`: 0 none, 1 the entity's own, 2 as usual (mostly its own).
    pub fn add_digit(
        &mut self,
        name: &str,
        e: Option<&Entity>,
        contact: u8,
        label: (&str, Class, Option<String>),
    ) -> String {
        let id = format!("d{:05}", self.digit.len() + 1);
        let mut rec = DigitCustomerRecord {
            id: id.clone(),
            display_name: name.into(),
            ..Default::default()
        };
        if let Some(e) = e {
            let roll: f64 = self.rng.random();
            let own = contact == 1 || (contact == 2 && roll < 0.5);
            let fresh = contact == 2 && roll >= 0.8;
            if own {
                rec.email.clone_from(&e.email);
                rec.phone = e.phone.clone().filter(|_| self.chance(0.7));
            } else if fresh {
                self.serial += 1;
                rec.email = Some(format!("owner{}@digit-mail.test", self.serial));
            }
            if let Some((first, last)) = e.person.as_ref().filter(|_| self.chance(0.5)) {
                rec.given_name = Some(first.clone());
                rec.family_name = Some(last.clone());
            }
        }
        self.digit.push(rec);
        let (case, class, truth) = label;
        self.labels.cases.push(Label {
            digit_id: id.clone(),
            case: case.into(),
            class,
            truth,
            related: vec![],
            forbidden: vec![],
        });
        id
    }

    pub fn last_label(&mut self) -> &mut Label {
        self.labels.cases.last_mut().expect("a label")
    }
}

/// Builds the whole data set from a seed.
pub fn generate(seed: u64) -> DataSet {
    let mut set = generate_v2_cases(seed);
    super::version3::version3(&mut set);
    set.into()
}

/// The data set as it was for normalizer version 2: the first records of [`generate`].
pub fn generate_v2(seed: u64) -> DataSet {
    generate_v2_cases(seed).into()
}

fn generate_v2_cases(seed: u64) -> Gen {
    let mut g = generate_v1_cases(seed);
    super::variations::variations(&mut g);
    g
}

impl From<Gen> for DataSet {
    fn from(g: Gen) -> Self {
        DataSet {
            qbo: g.qbo,
            digit: g.digit,
            labels: g.labels,
        }
    }
}

/// The data set as it was for normalizer version 1: the first records of [`generate`], since
/// later cases are only ever appended.
pub fn generate_v1(seed: u64) -> DataSet {
    generate_v1_cases(seed).into()
}

fn generate_v1_cases(seed: u64) -> Gen {
    let mut g = Gen::new(seed);
    super::cases::safe(&mut g);
    super::cases::strong(&mut g);
    super::cases::risky(&mut g);
    super::cases::ambiguous(&mut g);
    super::cases::negatives(&mut g);
    super::cases::distractors(&mut g, 2_700);
    super::sub_customers::sub_customers(&mut g);
    g
}
