//! The hostile requests: one generator per RPC, each drawing from the seeded facts so that
//! requests reach real rows, and each built so that the request must be refused or only read
//! (a random request never writes: the test checks the database did not change).

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use prost::Message;
use qbo_sync::proto::v1 as pb;
use rand::{Rng, SeedableRng, rngs::StdRng, seq::IndexedRandom};
use tonic::Code;

/// Every RPC of both services.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rpc {
    UpsertCustomer,
    BatchUpsertCustomers,
    TriggerSync,
    GetSyncRun,
    WatchSyncRun,
    CancelSyncRun,
    GetLinkStatus,
    LinkCustomers,
    UnlinkCustomer,
    ListLinkEvents,
    ListReviewItems,
    ResolveReviewItem,
    ValidateInvoiceCustomer,
    ConnectCompany,
    GetConnection,
    DisconnectCompany,
}

pub const ALL_RPCS: [Rpc; 16] = [
    Rpc::UpsertCustomer,
    Rpc::BatchUpsertCustomers,
    Rpc::TriggerSync,
    Rpc::GetSyncRun,
    Rpc::WatchSyncRun,
    Rpc::CancelSyncRun,
    Rpc::GetLinkStatus,
    Rpc::LinkCustomers,
    Rpc::UnlinkCustomer,
    Rpc::ListLinkEvents,
    Rpc::ListReviewItems,
    Rpc::ResolveReviewItem,
    Rpc::ValidateInvoiceCustomer,
    Rpc::ConnectCompany,
    Rpc::GetConnection,
    Rpc::DisconnectCompany,
];

impl Rpc {
    /// The HTTP/2 path of the RPC.
    pub fn path(self) -> String {
        let service = match self {
            Rpc::ConnectCompany | Rpc::GetConnection | Rpc::DisconnectCompany => {
                "qbosync.v1.ConnectionService"
            }
            _ => "qbosync.v1.CustomerSyncService",
        };
        format!("/{service}/{self:?}")
    }

    /// The codes the README documents for this RPC, for requests that must not write:
    /// refusals of the caller (UNAUTHENTICATED, PERMISSION_DENIED), of the input
    /// (INVALID_ARGUMENT, OUT_OF_RANGE for a message over the limit), what the RPC itself
    /// answers for ids that do not exist or a state that refuses the change, and UNAVAILABLE,
    /// which any RPC may answer when the database is out of reach or the replica sheds load
    /// (the test requires it to carry the server's own message).
    pub fn documented(self) -> Vec<Code> {
        let mut codes = self.own_codes().to_vec();
        codes.push(Code::Unavailable);
        codes
    }

    fn own_codes(self) -> &'static [Code] {
        use Code::*;
        match self {
            Rpc::UpsertCustomer => &[
                InvalidArgument,
                Unauthenticated,
                PermissionDenied,
                OutOfRange,
            ],
            // A batch whose every customer is bad is answered OK, one INVALID_ARGUMENT each.
            Rpc::BatchUpsertCustomers => &[
                Ok,
                InvalidArgument,
                Unauthenticated,
                PermissionDenied,
                OutOfRange,
            ],
            Rpc::TriggerSync => &[
                InvalidArgument,
                Unauthenticated,
                PermissionDenied,
                FailedPrecondition,
            ],
            Rpc::GetSyncRun | Rpc::WatchSyncRun | Rpc::GetLinkStatus | Rpc::GetConnection => &[
                Ok,
                InvalidArgument,
                Unauthenticated,
                PermissionDenied,
                NotFound,
            ],
            Rpc::CancelSyncRun
            | Rpc::LinkCustomers
            | Rpc::UnlinkCustomer
            | Rpc::ResolveReviewItem => &[
                InvalidArgument,
                Unauthenticated,
                PermissionDenied,
                NotFound,
                FailedPrecondition,
            ],
            // A "no" of the preflight is an answer, not an error.
            Rpc::ListLinkEvents | Rpc::ListReviewItems | Rpc::ValidateInvoiceCustomer => {
                &[Ok, InvalidArgument, Unauthenticated, PermissionDenied]
            }
            Rpc::ConnectCompany => &[
                InvalidArgument,
                Unauthenticated,
                PermissionDenied,
                FailedPrecondition,
            ],
            Rpc::DisconnectCompany => {
                &[InvalidArgument, Unauthenticated, PermissionDenied, NotFound]
            }
        }
    }
}

/// Who the request claims to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Who {
    /// Every scope, every tenant.
    Full,
    /// Only the `read` scope.
    Reader,
    /// Only `validate`, only the seeded tenant.
    Validator,
    /// Every scope, only the other tenant.
    OtherTenant,
    NoToken,
    UnknownToken,
    /// An `authorization` header that is not `Bearer <token>`.
    Malformed,
    /// An `authorization` header whose value is not UTF-8.
    NotUtf8,
    /// Two `authorization` headers.
    TwoHeaders,
}

impl Who {
    /// Whether the auth layer must refuse it before anything else (UNAUTHENTICATED).
    pub fn unauthenticated(self) -> bool {
        matches!(
            self,
            Who::NoToken | Who::UnknownToken | Who::Malformed | Who::NotUtf8 | Who::TwoHeaders
        )
    }
}

/// A metadata entry as raw bytes: an ASCII key's value may hold any byte from 0x20 up (obs-text
/// included, so not UTF-8); a `-bin` key's value any byte.
pub type RawMetadata = (&'static str, Vec<u8>);

/// One hostile request.
#[derive(Debug)]
pub struct Hostile {
    pub rpc: Rpc,
    pub who: Who,
    /// Extra metadata besides the credentials.
    pub metadata: Vec<RawMetadata>,
    /// The encoded message, or junk.
    pub body: Vec<u8>,
    /// The body is not a message of the RPC's request type.
    pub junk: bool,
    /// The body is over the server's message limit.
    pub oversized: bool,
}

/// The seeded rows the generators aim at.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub tenant: String,
    pub other_tenant: String,
    pub realm: String,
    /// Digit customers of the tenant: linked, not linked (no review), in review.
    pub linked: Vec<String>,
    pub unlinked: Vec<String>,
    pub in_review: Vec<String>,
    /// Digit customers of the other tenant (not connected).
    pub other_customers: Vec<String>,
    pub qbo_ids: Vec<String>,
    pub review_items: Vec<String>,
    /// Finished sync runs of the tenant.
    pub runs: Vec<String>,
    /// Page tokens the server issued (the next page of the listings).
    pub issued_tokens: Vec<String>,
    pub max_message_bytes: usize,
}

/// Injection and escaping attempts, in ids and names.
const INJECTIONS: &[&str] = &[
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

const CONTROLS: &[char] = &[
    '\0', '\n', '\r', '\t', '\u{1b}', '\u{7f}', '\u{85}', '\u{9c}',
];

/// A seeded generator of hostile values.
pub struct Gen<'a> {
    rng: StdRng,
    facts: &'a Facts,
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

    fn chance(&mut self, p: f64) -> bool {
        self.rng.random_bool(p)
    }

    fn pick<T: Clone>(&mut self, items: &[T]) -> T {
        items.choose(&mut self.rng).expect("non-empty").clone()
    }

    fn pick_or(&mut self, items: &[String], fallback: &str) -> String {
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

    fn chars(&mut self, max: usize) -> String {
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

    fn credentials(&mut self) -> Who {
        match self.rng.random_range(0..100) {
            0..=69 => Who::Full,
            70..=75 => Who::Reader,
            76..=79 => Who::Validator,
            80..=84 => Who::OtherTenant,
            85..=87 => Who::NoToken,
            88..=90 => Who::UnknownToken,
            91..=93 => Who::Malformed,
            94..=96 => Who::NotUtf8,
            _ => Who::TwoHeaders,
        }
    }

    /// Metadata besides the credentials: not UTF-8, binary junk, junk deadlines.
    fn metadata(&mut self) -> Vec<RawMetadata> {
        let mut out = Vec::new();
        if self.chance(0.3) {
            let mut junk: Vec<u8> = (0..self.rng.random_range(1..60))
                .map(|_| self.rng.random_range(0x80..=0xFF))
                .collect();
            junk.insert(0, b'v');
            out.push(("x-hostile", junk));
        }
        if self.chance(0.1) {
            let bytes: Vec<u8> = (0..self.rng.random_range(0..200))
                .map(|_| self.rng.random())
                .collect();
            out.push(("x-hostile-bin", bytes));
        }
        if self.chance(0.1) {
            // Deadlines that are not deadlines (a real one could legitimately cut a call short).
            let value = self.pick(&[
                &b"abc"[..],
                b"-5S",
                b"1.5S",
                b"999999999H",
                b"S",
                b"\xff\xfeS",
                b"18446744073709551616n",
            ]);
            out.push(("grpc-timeout", value.to_vec()));
        }
        if self.chance(0.05) {
            // Below HTTP/2's 16 KB header list limit (the test checks beyond it on its own).
            let mut text = self.text().into_bytes();
            text.retain(|b| *b >= 0x20 && *b != 0x7f);
            text.truncate(4_000);
            out.push(("x-request-id", text));
        }
        out
    }

    /// The next hostile request.
    pub fn request(&mut self) -> Hostile {
        let rpc = self.pick(&ALL_RPCS);
        let who = self.credentials();
        let metadata = self.metadata();
        let mut hostile = Hostile {
            rpc,
            who,
            metadata,
            body: Vec::new(),
            junk: false,
            oversized: false,
        };
        if self.chance(0.03) {
            hostile.body = self.junk_body();
            hostile.junk = true;
        } else {
            hostile.body = self.message(rpc, who, &mut hostile.oversized);
        }
        hostile
    }

    /// Bytes that are not a valid message: random, a string field that is not UTF-8, a length
    /// running past the end, a wire type that does not exist.
    fn junk_body(&mut self) -> Vec<u8> {
        match self.rng.random_range(0..4) {
            0 => (0..self.rng.random_range(1..64))
                .map(|_| self.rng.random())
                .collect(),
            1 => vec![0x0a, 0x03, 0xff, 0xfe, 0xfd],
            2 => vec![0x0a, 0x7f, b'a'],
            _ => vec![0x0f, 0x01],
        }
    }

    fn message(&mut self, rpc: Rpc, who: Who, oversized: &mut bool) -> Vec<u8> {
        let f = self.facts.clone();
        match rpc {
            Rpc::UpsertCustomer => pb::UpsertCustomerRequest {
                tenant_id: if self.chance(0.15) {
                    self.bad_id()
                } else {
                    self.tenant()
                },
                customer: (!self.chance(0.05)).then(|| self.bad_customer()),
                skip_push: self.chance(0.5),
            }
            .encode_to_vec(),
            Rpc::BatchUpsertCustomers => self.batch(oversized),
            Rpc::TriggerSync => {
                let mut request = pb::TriggerSyncRequest {
                    tenant_id: self.tenant(),
                    mode: self.enum_value(1..=2),
                    dry_run: self.chance(0.5),
                    link_only: self.chance(0.5),
                    idempotency_key: if self.chance(0.5) {
                        self.text()
                    } else {
                        String::new()
                    },
                };
                // Never a run for the connected tenant: one bad field, or a tenant with no company.
                match self.rng.random_range(0..4) {
                    0 => request.tenant_id = self.bad_id(),
                    1 => request.mode = self.pick(&[0, -1, 3, 42, i32::MAX, i32::MIN]),
                    2 => {
                        request.idempotency_key = format!(
                            "{}{}",
                            self.pick(CONTROLS),
                            "x".repeat(self.rng.random_range(0..80))
                        )
                    }
                    _ => request.tenant_id = self.unconnected_tenant(),
                }
                request.encode_to_vec()
            }
            Rpc::GetSyncRun => pb::GetSyncRunRequest {
                tenant_id: self.tenant(),
                run_id: self.uuid(&f.runs),
            }
            .encode_to_vec(),
            Rpc::WatchSyncRun => pb::WatchSyncRunRequest {
                tenant_id: self.tenant(),
                run_id: self.uuid(&f.runs),
            }
            .encode_to_vec(),
            Rpc::CancelSyncRun => pb::CancelSyncRunRequest {
                tenant_id: self.tenant(),
                run_id: self.uuid(&f.runs),
            }
            .encode_to_vec(),
            Rpc::GetLinkStatus => pb::GetLinkStatusRequest {
                tenant_id: self.tenant(),
                digit_customer_id: self.any_customer(),
            }
            .encode_to_vec(),
            Rpc::LinkCustomers => {
                let mut request = pb::LinkCustomersRequest {
                    tenant_id: self.tenant(),
                    digit_customer_id: self.any_customer(),
                    qbo_customer_id: self.id(&f.qbo_ids),
                    replace_existing: self.chance(0.5),
                    reason: if self.chance(0.5) {
                        self.text()
                    } else {
                        String::new()
                    },
                    on_behalf_of: if self.chance(0.3) {
                        self.text()
                    } else {
                        String::new()
                    },
                };
                // A stored pair of the tenant would link (or re-link): never both sides stored.
                let stored_digit = [&f.linked, &f.unlinked, &f.in_review, &f.other_customers]
                    .iter()
                    .any(|ids| ids.contains(&request.digit_customer_id));
                if stored_digit && f.qbo_ids.contains(&request.qbo_customer_id) {
                    request.qbo_customer_id = self.unknown_id();
                }
                request.encode_to_vec()
            }
            Rpc::UnlinkCustomer => {
                // Never a linked customer: its link would go.
                let mut stored = f.unlinked.clone();
                stored.extend(f.in_review.iter().cloned());
                stored.extend(f.other_customers.iter().cloned());
                pb::UnlinkCustomerRequest {
                    tenant_id: self.tenant(),
                    digit_customer_id: self.id(&stored),
                    reason: if self.chance(0.5) {
                        self.text()
                    } else {
                        String::new()
                    },
                    on_behalf_of: if self.chance(0.3) {
                        self.text()
                    } else {
                        String::new()
                    },
                }
                .encode_to_vec()
            }
            Rpc::ListLinkEvents => pb::ListLinkEventsRequest {
                tenant_id: self.tenant(),
                digit_customer_id: if self.chance(0.5) {
                    String::new()
                } else {
                    self.any_customer()
                },
                page_size: self.page_size(),
                page_token: self.page_token(),
            }
            .encode_to_vec(),
            Rpc::ListReviewItems => pb::ListReviewItemsRequest {
                tenant_id: self.tenant(),
                page_size: self.page_size(),
                page_token: self.page_token(),
            }
            .encode_to_vec(),
            Rpc::ResolveReviewItem => self.resolve(),
            Rpc::ValidateInvoiceCustomer => {
                let digit = self.any_customer();
                // A repair would push a customer that is not linked: only for the others.
                let fixable = f.unlinked.contains(&digit) || f.other_customers.contains(&digit);
                pb::ValidateInvoiceCustomerRequest {
                    tenant_id: self.tenant(),
                    digit_customer_id: digit,
                    repair: !fixable && self.chance(0.5),
                }
                .encode_to_vec()
            }
            Rpc::ConnectCompany => self.connect(),
            Rpc::GetConnection => pb::GetConnectionRequest {
                tenant_id: self.tenant(),
            }
            .encode_to_vec(),
            Rpc::DisconnectCompany => {
                let mut tenant_id = self.tenant();
                // The only caller that may disconnect the connected tenant is kept away from it.
                if tenant_id == f.tenant && who == Who::Full {
                    tenant_id = if self.chance(0.5) {
                        self.bad_id()
                    } else {
                        self.unconnected_tenant()
                    };
                }
                pb::DisconnectCompanyRequest { tenant_id }.encode_to_vec()
            }
        }
    }

    fn any_customer(&mut self) -> String {
        let f = self.facts;
        let pool = match self.rng.random_range(0..4) {
            0 => &f.linked,
            1 => &f.unlinked,
            2 => &f.in_review,
            _ => &f.other_customers,
        };
        self.id(&pool.clone())
    }

    fn batch(&mut self, oversized: &mut bool) -> Vec<u8> {
        let mut tenant_id = self.tenant();
        let customers: Vec<pb::DigitCustomer> = match self.rng.random_range(0..1_000) {
            // Over the server's message limit: a few huge names.
            0 => {
                *oversized = true;
                let big = "B".repeat(1 << 20);
                let count = self.facts.max_message_bytes / big.len() + 2;
                (0..count)
                    .map(|i| pb::DigitCustomer {
                        id: format!("big-{i}"),
                        display_name: big.clone(),
                        ..Default::default()
                    })
                    .collect()
            }
            // More than 1,000 customers, every one of them fine.
            1..=9 => (0..self.rng.random_range(1_001..3_000))
                .map(|i| pb::DigitCustomer {
                    id: format!("many-{i}"),
                    display_name: format!("Many {i}"),
                    ..Default::default()
                })
                .collect(),
            10..=99 => Vec::new(),
            // Every customer bad: answered OK, one INVALID_ARGUMENT each, nothing stored.
            _ => {
                if self.chance(0.2) {
                    tenant_id = self.bad_id();
                }
                (0..self.rng.random_range(1..12))
                    .map(|_| self.bad_customer())
                    .collect()
            }
        };
        pb::BatchUpsertCustomersRequest {
            tenant_id,
            customers,
            skip_push: self.chance(0.5),
        }
        .encode_to_vec()
    }

    fn resolve(&mut self) -> Vec<u8> {
        let f = self.facts.clone();
        let mut request = pb::ResolveReviewItemRequest {
            tenant_id: self.tenant(),
            review_item_id: self.uuid(&f.review_items),
            decision: self.enum_value(1..=3),
            qbo_customer_id: if self.chance(0.5) {
                self.id(&f.qbo_ids)
            } else {
                String::new()
            },
            reason: if self.chance(0.5) {
                self.text()
            } else {
                String::new()
            },
        };
        // An open item must not be resolved: one field the rules refuse.
        if f.review_items.contains(&request.review_item_id) {
            match self.rng.random_range(0..4) {
                0 => request.decision = self.pick(&[0, 4, -3, i32::MAX]),
                1 => {
                    request.decision = pb::ReviewDecision::RejectAll as i32;
                    request.qbo_customer_id = self.pick_or(&f.qbo_ids, "1");
                }
                2 => {
                    request.decision = pb::ReviewDecision::AcceptCandidate as i32;
                    request.qbo_customer_id = self.bad_id();
                }
                _ => {
                    request.reason = format!(
                        "{}{}",
                        self.pick(CONTROLS),
                        "r".repeat(self.rng.random_range(0..1_200))
                    )
                }
            }
        }
        request.encode_to_vec()
    }

    fn connect(&mut self) -> Vec<u8> {
        let f = self.facts.clone();
        let code = format!("junk-code-{}", self.rng.random::<u32>());
        let mut request = pb::ConnectCompanyRequest {
            tenant_id: self.tenant(),
            realm_id: if self.chance(0.5) {
                f.realm.clone()
            } else {
                self.id(&[])
            },
            environment: self.enum_value(1..=2),
            authorization_code: if self.chance(0.6) {
                code
            } else {
                String::new()
            },
            redirect_uri: if self.chance(0.6) {
                "https://example.com/callback".into()
            } else {
                self.text()
            },
            refresh_token: if self.chance(0.3) {
                self.text()
            } else {
                String::new()
            },
            reset_links: self.chance(0.3),
            on_behalf_of: if self.chance(0.3) {
                self.text()
            } else {
                String::new()
            },
        };
        // Codes and tokens are junk, so Intuit (the simulator) refuses any that reach it.
        if self.chance(0.3) {
            request.refresh_token = format!("junk-refresh-{}", self.rng.random::<u32>());
            request.authorization_code.clear();
        }
        request.encode_to_vec()
    }
}
