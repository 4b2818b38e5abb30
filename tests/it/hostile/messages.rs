//! Each hostile request: its RPC, credentials, metadata and message (or junk body), every
//! field drawn from the hostile values, and built so that it must be refused or only read.

use prost::Message;
use qbo_sync::proto::v1 as pb;
use rand::Rng;

use super::{
    requests::{ALL_RPCS, Hostile, RawMetadata, Rpc, Who},
    values::{CONTROLS, Gen},
};

impl Gen<'_> {
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

    pub(super) fn message(&mut self, rpc: Rpc, who: Who, oversized: &mut bool) -> Vec<u8> {
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
