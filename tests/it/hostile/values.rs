//! Hostile values: injections, odd and control characters, huge text, ids stored and not,
//! unknown enum values, junk and forged page tokens, customers with a bad field. A seeded
//! generator per request.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use qbo_sync::proto::v1 as pb;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};

use super::requests::Facts;

/// Injection and escaping attempts, in ids and names.
pub(super) const INJECTIONS: &[&str] = &[
    "'; DROP TABLE links;--",
    "\\' OR 1=1",
    "' OR '1'='1",
    "1' OR '1'='1' --",
    "\") OR 1=1 --",
    "%",
    "_",
    "%_%",
    "\\",
    "\\\\",
    "\\%",
    "'",
    "''",
    "' UNION SELECT token_sha256 FROM callers --",
    "1; SELECT pg_sleep(10)",
    "$$; DROP TABLE jobs; $$",
    "' AND DisplayName LIKE '%",
    "' OR Active IN (true, false) --",
    "x' ORDERBY Id --",
    "Robert'); DROP TABLE digit_customers;--",
    "*",
    "../..",
    "%00",
    "${jndi:ldap://x}",
    "{{7*7}}",
    "<script>",
    "O\u{2019}Brien's",
    "\u{202E}evil\u{202C}",
];

pub(super) const CONTROLS: &[char] = &[
    '\0', '\n', '\r', '\t', '\u{1b}', '\u{7f}', '\u{85}', '\u{9c}',
];

/// A seeded generator of hostile values.
pub struct Gen<'a> {
    pub(super) rng: StdRng,
    pub(super) facts: &'a Facts,
}

impl<'a> Gen<'a> {
    /// The generator of request `index`: its own stream, so a request can be made again from
    /// the seed and its index alone, whatever ran before it.
    pub fn new(seed: u64, index: u64, facts: &'a Facts) -> Self {
        let mixed = seed ^ index.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        Self {
            rng: StdRng::seed_from_u64(mixed),
            facts,
        }
    }

    pub(super) fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    pub(super) fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items.choose(&mut self.rng).expect("non-empty").clone()
    }

    pub(super) fn pick_or(&mut self, items: &[String], fallback: &str) -> String {
        items
            .choose(&mut self.rng)
            .cloned()
            .unwrap_or_else(|| fallback.to_owned())
    }

    /// Characters from the places where text handling goes wrong.
    fn char(&mut self) -> char {
        match self.rng.random_range(0..10) {
            0 => self.pick(CONTROLS),
            1 => char::from_u32(self.rng.random_range(0x300..0x370)).unwrap(),
            2 => char::from_u32(self.rng.random_range(0x590..0x700)).unwrap(),
            3 => self.pick(&[
                '\u{200B}', '\u{200F}', '\u{202E}', '\u{FEFF}', '\u{FFFD}', '\u{FFFF}',
            ]),
            4 => self.rng.random::<char>(),
            5 => self.pick(&['\'', '\\', '%', '_', '"', ';', '-', '*', '(', ')']),
            _ => char::from(self.rng.random_range(b' '..=b'~')),
        }
    }

    pub(super) fn chars(&mut self, max: usize) -> String {
        let n = self.rng.random_range(0..=max);
        (0..n).map(|_| self.char()).collect()
    }

    /// Text of every kind: injections, odd characters, control characters, huge.
    pub fn text(&mut self) -> String {
        match self.rng.random_range(0..20) {
            0..=5 => self.pick(INJECTIONS).to_owned(),
            6..=13 => self.chars(24),
            14 => String::new(),
            15 => format!(" {} ", self.chars(6)),
            16 => format!("ok{}ok", self.pick(CONTROLS)),
            17 => "x".repeat(self.rng.random_range(65..2_000)),
            18 => "é".repeat(self.rng.random_range(250..700)),
            _ => {
                // Rare and large: up to 100 KB of one piece.
                let piece = self.chars(4);
                let piece = if piece.is_empty() { "a".into() } else { piece };
                piece.repeat(self.rng.random_range(1_000..25_000))
            }
        }
    }

    /// An id of any kind: a stored one, a valid one that is not stored, or a bad one.
    pub fn id(&mut self, stored: &[String]) -> String {
        match self.rng.random_range(0..10) {
            0..=3 => self.pick_or(stored, "c-none"),
            4..=6 => self.unknown_id(),
            _ => self.bad_id(),
        }
    }

    /// A valid id that no row has.
    pub fn unknown_id(&mut self) -> String {
        match self.rng.random_range(0..3) {
            0 => self.pick(INJECTIONS).to_owned(),
            1 => format!("nobody-{}", self.rng.random::<u32>()),
            _ => {
                let text: String = self.chars(20).chars().filter(|c| !c.is_control()).collect();
                let text = text.trim();
                if text.is_empty() {
                    "nobody".to_owned()
                } else {
                    format!("zz{text}")
                }
            }
        }
    }

    /// An id the rules refuse: empty, blank, padded, too long, or with a control character.
    pub fn bad_id(&mut self) -> String {
        match self.rng.random_range(0..6) {
            0 => String::new(),
            1 => "   ".to_owned(),
            2 => format!(" {}", self.unknown_id()),
            3 => "x".repeat(self.rng.random_range(65..300)),
            4 => "€".repeat(22),
            _ => format!("c{}1", self.pick(CONTROLS)),
        }
    }

    /// A tenant: mostly the seeded ones.
    pub fn tenant(&mut self) -> String {
        match self.rng.random_range(0..20) {
            0..=11 => self.facts.tenant.clone(),
            12..=14 => self.facts.other_tenant.clone(),
            15..=16 => self.unknown_id(),
            _ => self.bad_id(),
        }
    }

    /// A tenant that is connected to no company (so nothing can be synced or disconnected).
    pub fn unconnected_tenant(&mut self) -> String {
        if self.chance(0.5) {
            self.facts.other_tenant.clone()
        } else {
            self.unknown_id()
        }
    }

    /// An enum value: unset, known, or unknown to the contract.
    pub fn enum_value(&mut self, known: std::ops::RangeInclusive<i32>) -> i32 {
        match self.rng.random_range(0..6) {
            0 => 0,
            1 | 2 => self.rng.random_range(known),
            3 => self.pick(&[-1, 7, 99, 1 << 20, i32::MAX, i32::MIN]),
            _ => self.rng.random(),
        }
    }

    pub fn page_size(&mut self) -> i32 {
        self.pick(&[
            0,
            0,
            1,
            2,
            50,
            500,
            501,
            -1,
            1_000,
            i32::MAX,
            i32::MIN,
            100_000,
        ])
    }

    /// Page tokens: junk, ours, and forged ones in our own formats with values out of range.
    pub fn page_token(&mut self) -> String {
        let tenant = self.facts.tenant.clone();
        match self.rng.random_range(0..12) {
            0..=2 => String::new(),
            3 => self.text(),
            4 => self.pick_or(&self.facts.issued_tokens.clone(), ""),
            5 => URL_SAFE_NO_PAD.encode(format!(
                "e1:{}:{tenant}/",
                self.pick(&[i64::MAX, i64::MIN, 0, -1, 1, 9_007_199_254_740_993])
            )),
            6 => URL_SAFE_NO_PAD.encode(format!("e1:5:{}/{}", self.unknown_id(), self.text())),
            7 | 8 => URL_SAFE_NO_PAD.encode(format!(
                "r1:{}:{}:{tenant}",
                self.pick(&[
                    i64::MAX,
                    i64::MIN,
                    -1,
                    0,
                    // the year 200,000 BC and AD: within chrono, beyond PostgreSQL
                    -6_373_000_000_000_000_000,
                    6_248_000_000_000_000_000,
                    253_402_300_800_000_000,
                    -210_866_803_200_000_000,
                ]),
                uuid::Uuid::from_u128(self.rng.random())
            )),
            9 => URL_SAFE_NO_PAD.encode(format!("r1:1:{}:{}", self.text(), self.text())),
            10 => URL_SAFE_NO_PAD.encode(self.rng.random::<[u8; 24]>()),
            _ => "A".repeat(self.rng.random_range(200..400)),
        }
    }

    /// A UUID text: a stored one, a random one, or junk.
    pub fn uuid(&mut self, stored: &[String]) -> String {
        match self.rng.random_range(0..6) {
            0 | 1 => self.pick_or(stored, "00000000-0000-0000-0000-000000000000"),
            2 | 3 => uuid::Uuid::from_u128(self.rng.random()).to_string(),
            4 => uuid::Uuid::from_u128(self.rng.random())
                .simple()
                .to_string(),
            _ => self.text(),
        }
    }

    /// A customer with at least one field the rules refuse.
    pub fn bad_customer(&mut self) -> pb::DigitCustomer {
        let mut customer = pb::DigitCustomer {
            id: self.id(&self.facts.unlinked.clone()),
            display_name: self.text(),
            company_name: if self.chance(0.3) {
                self.text()
            } else {
                String::new()
            },
            given_name: if self.chance(0.2) {
                self.text()
            } else {
                String::new()
            },
            family_name: if self.chance(0.2) {
                self.text()
            } else {
                String::new()
            },
            email: if self.chance(0.3) {
                self.text()
            } else {
                String::new()
            },
            phone: if self.chance(0.2) {
                self.text()
            } else {
                String::new()
            },
            active: self.pick(&[None, Some(true), Some(false)]),
        };
        match self.rng.random_range(0..9) {
            0 => customer.id = self.bad_id(),
            1 => customer.display_name = self.pick(&[String::new(), "  ".into(), "\t".into()]),
            2 => customer.display_name = "n".repeat(self.rng.random_range(501..5_000)),
            3 => customer.display_name = format!("Acme{}Corp", self.pick(CONTROLS)),
            4 => {
                customer.email = self
                    .pick(&["no-at-sign", "a@b", "@x.co", "a@.co", "a @b.co", "a@b.co."])
                    .to_owned();
            }
            5 => customer.phone = "5".repeat(self.rng.random_range(31..200)),
            6 => customer.company_name = "c".repeat(self.rng.random_range(101..1_000)),
            7 => customer.given_name = format!("G{}", self.pick(CONTROLS)),
            _ => customer.family_name = "f".repeat(101),
        }
        customer
    }
}
